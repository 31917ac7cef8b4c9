"""A validation worker: a plain ``python -m validators.pool.worker`` process serving `validators.pool`.

The pool starts its workers with `subprocess`, not `multiprocessing`, so a worker never
depends on how its parent was started: it does not re-run the parent's ``__main__`` (the
``airflow`` or ``celery`` entry script, with its settings and database guards) and it can
be started from a daemonic process (Celery prefork).

Protocol: length-prefixed pickle frames (an 8-byte big-endian length, then the pickle)
over the worker's stdin and stdout, one synchronous request at a time::

    parent -> worker   PoolConfig                  once, first
                       (jobs, keep_going, br_fr)   a chunk; the parent waits for its reply
    worker -> parent   ("ready", None)             the judge is built
                       ("verdicts", [(key, Verdict), ...])
                       ("failed", Failure)         what building the judge or the chunk raised

The worker applies the pool's memory cap (RLIMIT_DATA), builds one `DocumentJudge`,
ignores SIGINT (its parent handles it) and exits at the end of its input: when the
pool is closed, or when its parent dies. After a MemoryError it reports and exits.
Its fds 0 and 1 are pointed at /dev/null and stderr, so a stray print (or a C library
writing to stdout) cannot corrupt the frames.

>>> import io
>>> buf = io.BytesIO(); write_frame(buf, ("ready", None)); _ = buf.seek(0)
>>> read_frame(buf), read_frame(buf)
(('ready', None), None)
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import signal
import struct
import sys
import traceback
from typing import IO, TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from validators.document import DocumentJudge
    from validators.pool.config import PoolConfig

HEADER = struct.Struct("!Q")


@dataclasses.dataclass(frozen=True)
class Failure:
    """An exception raised in a worker, as its parent needs it."""

    type_name: str
    message: str
    traceback: str
    exception: bytes | None = None  # the pickled exception, when it survives a round trip
    out_of_memory: bool = False

    @classmethod
    def of(cls, e: BaseException) -> Failure:
        try:
            data = pickle.dumps(e, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.loads(data)  # e.g. an exception whose __init__ takes other arguments than its args
            blob: bytes | None = data
        except Exception:
            blob = None
        return cls(type(e).__name__, str(e), "".join(traceback.format_exception(e)), blob, isinstance(e, MemoryError))


def write_frame(out: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(HEADER.pack(len(data)))
    out.write(data)
    out.flush()


def read_frame(inp: IO[bytes]) -> Any:
    """The next frame; None at the end of the input."""
    head = inp.read(HEADER.size)
    if not head:
        return None
    (size,) = HEADER.unpack(head) if len(head) == HEADER.size else (-1,)
    data = inp.read(size) if size >= 0 else b""
    if size < 0 or len(data) < size:
        raise EOFError("truncated frame")
    return pickle.loads(data)


def make_judge(config: PoolConfig) -> DocumentJudge:
    from validators.document import DocumentJudge

    if config.worker_memory_mb:
        import resource

        # RLIMIT_DATA, not RLIMIT_AS: Saxon reserves tens of GB of address space it never uses.
        limit = config.worker_memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    return DocumentJudge(config.judge)


def _claim_pipes() -> tuple[IO[bytes], IO[bytes]]:
    """Private copies of the pipes to the parent; fds 0 and 1 then point at /dev/null and stderr."""
    inp, out = os.fdopen(os.dup(0), "rb"), os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    sys.stdin, sys.stdout = open(os.devnull), sys.stderr
    return inp, out


def serve(inp: IO[bytes], out: IO[bytes]) -> int:
    """Build the judge from the first frame, then judge chunks until the end of the input."""
    config = read_frame(inp)
    if config is None:
        return 0
    try:
        judge = make_judge(config)
    except Exception as e:
        write_frame(out, ("failed", Failure.of(e)))
        return 1
    write_frame(out, ("ready", None))
    while True:
        request = None
        try:
            request = read_frame(inp)
            if request is None:
                return 0
            jobs, keep_going, br_fr = request
            reply: tuple[str, Any] = (
                "verdicts",
                [
                    (
                        j.key,
                        judge.judge(j.data, j.container, entry_name=j.entry_name, keep_going=keep_going, br_fr=br_fr),
                    )
                    for j in jobs
                ],
            )
        except Exception as e:
            reply = ("failed", Failure.of(e))
        del request  # the chunk's documents, before the reply is pickled
        write_frame(out, reply)
        if reply[0] == "failed" and reply[1].out_of_memory:
            return 1


def main() -> NoReturn:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the whole group: the parent handles it
    inp, out = _claim_pipes()
    try:
        code = serve(inp, out)
    except (BrokenPipeError, EOFError):
        code = 1  # the parent went away
    sys.stderr.flush()
    os._exit(code)  # nothing left to flush: skip the interpreter's (and Saxon's) slow teardown


if __name__ == "__main__":
    # Run the imported module, not this __main__ copy, so that Failure pickles as
    # validators.pool.worker.Failure.
    from validators.pool.worker import main as _main

    _main()
