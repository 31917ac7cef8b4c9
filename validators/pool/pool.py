"""A pool of validation worker processes sized to the machine, with bounded memory.

Documents go to the workers in small chunks; at most two chunks per worker are in
flight, so memory stays flat whatever the batch size, and verdicts come back in
document order. Chunks are bounded in bytes as well (`CHUNK_BYTES`: a large document
travels alone) and so is what is in flight (`INFLIGHT_BYTES`, at least one chunk):
a batch of 100 MB documents holds a few of them in this process, never the batch. Each worker keeps one `DocumentJudge` (schemas and stylesheets
compiled once per process).

The workers are plain ``python -m validators.pool.worker`` processes started with
`subprocess` (see that module for the protocol), not `multiprocessing`: they do not
depend on how this process was started (an ``airflow`` task whose ``__main__`` must not
be re-run, a daemonic Celery worker that may not fork children). They are all started
at once on the first pooled flow and reused by the next ones. One thread per worker
sends it a chunk and waits for its verdicts (``poll`` on its pipes, within the chunk's
time budget); the flow collects the threads' futures in order.

Fail closed: a worker that dies (out of memory, killed), a chunk that takes longer
than its time budget, or any error raised while judging becomes an `Incident` for
the whole flow (errors raised by the judge keep their type); after a lost worker the
pool is closed and the next flow gets fresh workers.

>>> pool = ValidationPool(PoolConfig(workers=0))
>>> pool.workers, pool._executor is None  # judges in this process; no worker is ever started
(0, True)
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import math
import os
import pickle
import queue
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from flows.domain.errors import Incident
from validators.document import DocumentJudge, Verdict
from validators.pool import worker as pool_worker
from validators.pool.config import Job, PoolConfig

CHUNK_BYTES = 16 * 1024 * 1024  # a chunk is cut once its documents reach this size
INFLIGHT_BYTES = 256 * 1024 * 1024  # documents sent but not yet answered (beyond one chunk)
STARTUP_SECONDS = 300.0  # a worker builds its judge (imports, XSDs) within this
STOP_SECONDS = 2.0  # close(): time given to idle workers to exit before SIGKILL
DIED = "a validation worker died (out of memory or killed)"


Results = list[tuple[int, Verdict]]


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker (the `__cause__` of its copy here)."""

    def __str__(self) -> str:
        return str(self.args[0])


class _Timeout(Exception):
    pass


class _Died(Exception):
    pass


def _command() -> tuple[list[str], dict[str, str]]:
    """``python -P -m validators.pool.worker``, finding this very copy of the package first."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    env = dict(os.environ, PYTHONPATH=root + (os.pathsep + path if path else ""))
    return [sys.executable, "-P", "-m", "validators.pool.worker"], env


class _Worker:
    """One worker process and its pipes; used by one thread at a time."""

    def __init__(self, config: PoolConfig) -> None:
        argv, env = _command()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, close_fds=True, bufsize=0, env=env
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._to, self._from = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        os.set_blocking(self._to, False)
        os.set_blocking(self._from, False)
        self._writable, self._readable = select.poll(), select.poll()
        self._writable.register(self._to, select.POLLOUT)
        self._readable.register(self._from, select.POLLIN)
        self.ready = self.dead = self.busy = False
        try:
            self._send(config, time.monotonic() + STARTUP_SECONDS)  # a small frame: the pipe takes it now
        except (_Died, _Timeout):
            self.kill()  # its first chunk reports it

    def call(self, request: tuple[list[Job], bool, bool], budget: float) -> Results:
        """Verdicts of one chunk, within `budget` seconds (after the worker is ready)."""
        if self.dead:
            raise Incident(DIED)
        late = f"a validation worker did not start within {STARTUP_SECONDS:.0f} s"
        try:
            if not self.ready:
                self._reply("ready", time.monotonic() + STARTUP_SECONDS)
                self.ready = True
            late = f"validation of {len(request[0])} documents took more than {budget:.0f} s"
            deadline = time.monotonic() + budget
            self._send(request, deadline)
            return self._reply("verdicts", deadline)
        except _Timeout:
            self.kill()  # stuck: never wait for it
            raise Incident(late) from None
        except _Died:
            self.kill()
            raise Incident(DIED) from None

    def _reply(self, kind: str, deadline: float) -> Any:
        (size,) = pool_worker.HEADER.unpack(self._read(pool_worker.HEADER.size, deadline))
        try:
            tag, value = pickle.loads(self._read(size, deadline))
        except (_Timeout, _Died):
            raise
        except Exception as e:
            raise _Died(f"unreadable reply: {e}") from e
        if tag == "failed":
            if kind == "ready" or value.out_of_memory:
                self.kill()  # it exits: the pool is closed, the next flow starts fresh workers
            _raise(value)
        if tag != kind:
            raise _Died(f"{tag!r} instead of {kind!r}")
        return value

    def _send(self, obj: object, deadline: float) -> None:
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        for part in (memoryview(pool_worker.HEADER.pack(len(data))), memoryview(data)):
            while part:
                try:
                    part = part[os.write(self._to, part) :]
                except BlockingIOError:
                    self._wait(self._writable, deadline)
                except (BrokenPipeError, ConnectionResetError) as e:
                    raise _Died from e

    def _read(self, size: int, deadline: float) -> bytearray:
        buf = bytearray(size)
        view, got = memoryview(buf), 0
        while got < size:
            try:
                n = os.readv(self._from, [view[got:]])
            except BlockingIOError:
                self._wait(self._readable, deadline)
                continue
            if n == 0:
                raise _Died("end of output")
            got += n
        return buf

    @staticmethod
    def _wait(poll: select.poll, deadline: float) -> None:
        if not poll.poll(max(0, math.ceil((deadline - time.monotonic()) * 1000))):
            raise _Timeout

    def kill(self) -> None:
        self.dead = True
        if self.proc.poll() is None:
            self.proc.kill()

    def end_input(self) -> None:
        """Close the pipe to the worker (an idle worker exits at the end of its input); idempotent."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.close()
        except OSError:  # the worker is gone (EPIPE on a last flush): nothing more to tell it
            pass

    def stop(self, deadline: float) -> None:
        """Reap the process (SIGKILL if it is still there at `deadline`) and close its pipes; idempotent."""
        self.end_input()
        try:
            self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.dead = True


def _size(job: Job) -> int:
    """Bytes of a job's document (anything else is the judge's to refuse, in the worker)."""
    return len(job.data) if isinstance(job.data, bytes | bytearray | memoryview) else 0


def _raise(failure: pool_worker.Failure) -> NoReturn:
    """Raise here what a worker raised: its own exception when it unpickles, else an Incident."""
    if failure.out_of_memory:
        raise Incident("a validation worker ran out of memory") from RemoteTraceback(failure.traceback)
    error: BaseException | None = None
    if failure.exception is not None:
        try:
            error = pickle.loads(failure.exception)
        except Exception:
            error = None
    if not isinstance(error, BaseException):
        error = Incident(f"{failure.type_name}: {failure.message}")
    raise error from RemoteTraceback(failure.traceback)


class _Workers:
    """The worker processes of one pool generation, and one thread per worker to talk to it."""

    def __init__(self, config: PoolConfig, count: int) -> None:
        self.owner = os.getpid()  # a forked child inherits the object, not the threads nor the workers
        self._stopped = False
        self._all: list[_Worker] = []
        try:
            for _ in range(count):  # all started now; they build their judges in parallel
                self._all.append(_Worker(config))
        except BaseException:
            self.close()
            raise
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        for w in self._all:
            self._idle.put(w)
        self._threads = cf.ThreadPoolExecutor(count, thread_name_prefix="relais-validation")
        self._lock = threading.Lock()
        self._closed = False

    @property
    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._all]

    @property
    def broken(self) -> bool:
        return any(w.dead for w in self._all)

    def submit(self, jobs: list[Job], keep_going: bool, br_fr: bool, budget: float) -> cf.Future[Results]:
        return self._threads.submit(self._run, (jobs, keep_going, br_fr), budget)

    def _run(self, request: tuple[list[Job], bool, bool], budget: float) -> Results:
        worker = self._idle.get()  # never waits: one worker per thread
        try:
            with self._lock:
                if self._closed:
                    raise Incident("the validation pool was closed")
                worker.busy = True
            return worker.call(request, budget)
        finally:
            worker.busy = False
            self._idle.put(worker)

    def close(self) -> None:
        """Kill the workers busy on a chunk, let the idle ones exit, reap them all; idempotent.

        Only in the process that started them (a forked child must not touch the parent's pipes)."""
        if self.owner != os.getpid() or self._stopped:
            return
        self._stopped = True
        threads = getattr(self, "_threads", None)
        if threads is not None:
            threads.shutdown(wait=False, cancel_futures=True)
            with self._lock:
                self._closed = True
                for w in self._all:
                    if w.busy:
                        w.kill()
            threads.shutdown(wait=True)
        for w in self._all:
            w.end_input()  # end of input: an idle worker exits
        deadline = time.monotonic() + STOP_SECONDS
        for w in self._all:
            w.stop(deadline)


class ValidationPool:
    def __init__(self, config: PoolConfig = PoolConfig()) -> None:
        self.config = config
        self.workers = (os.cpu_count() or 1) if config.workers is None else config.workers
        self._executor: _Workers | None = None
        self._local: DocumentJudge | None = None
        self._versions: dict[str, str] | None = None

    @property
    def local(self) -> DocumentJudge:
        """The in-process judge (small flows, `relais validate`)."""
        if self._local is None:
            self._local = DocumentJudge(self.config.judge)
        return self._local

    def versions(self) -> dict[str, str]:
        """The rule sets' versions (read once: they are the artefacts this pool's judges were built with)."""
        if self._versions is None:
            self._versions = self.local.versions()
        return dict(self._versions)

    def state(self) -> dict[str, int]:
        """How many worker processes are configured, running, busy on a chunk, and dead (lost: the next
        flow gets fresh ones). Workers start with the first pooled flow: none run before.

        >>> ValidationPool(PoolConfig(workers=2)).state()
        {'configured': 2, 'running': 0, 'busy': 0, 'dead': 0}
        """
        executor = self._executor if self._executor is not None and self._executor.owner == os.getpid() else None
        workers = list(executor._all) if executor is not None else []
        return {
            "configured": self.workers,
            "running": sum(1 for w in workers if not w.dead),
            "busy": sum(1 for w in workers if w.busy and not w.dead),
            "dead": sum(1 for w in workers if w.dead),
        }

    def _pool(self) -> _Workers:
        if self._executor is not None and self._executor.owner != os.getpid():
            self._executor = None  # forked since: those workers are the parent's
        if self._executor is None:
            self._executor = _Workers(self.config, self.workers)
        return self._executor

    def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None and executor.owner == os.getpid():
            executor.close()

    def judge_all(
        self, jobs: Iterable[Job], *, expected: int, keep_going: bool = False, br_fr: bool = False
    ) -> Iterator[tuple[Job, Verdict]]:
        """Verdicts of `jobs`, in order. `expected` (the number of jobs) picks inline or pooled."""
        if self.workers == 0 or expected < self.config.inline_below:
            for job in jobs:
                yield (
                    job,
                    self.local.judge(
                        job.data, job.container, entry_name=job.entry_name, keep_going=keep_going, br_fr=br_fr
                    ),
                )
            return
        yield from self._pooled(jobs, keep_going, br_fr)

    def _pooled(self, jobs: Iterable[Job], keep_going: bool, br_fr: bool) -> Iterator[tuple[Job, Verdict]]:
        pool = self._pool()
        window = 2 * self.workers
        pending: collections.deque[tuple[list[Job], cf.Future[Results]]] = collections.deque()
        chunk: list[Job] = []
        sizes = {"chunk": 0, "inflight": 0}

        def submit(c: list[Job]) -> None:
            pending.append((c, pool.submit(c, keep_going, br_fr, self.config.seconds_per_document * len(c))))
            sizes["inflight"] += sizes["chunk"]
            sizes["chunk"] = 0

        def collect() -> Iterator[tuple[Job, Verdict]]:
            c, future = pending.popleft()
            sizes["inflight"] -= sum(_size(j) for j in c)
            try:
                results = future.result()  # the worker's thread enforces the chunk's time budget
            except BaseException:
                if pool.broken and self._executor is pool:
                    self.close()  # a worker was lost: the next flow gets fresh workers
                raise
            by_key = dict(results)
            for job in c:
                yield job, by_key[job.key]

        def full() -> bool:
            return len(pending) >= window or (len(pending) > 1 and sizes["inflight"] > INFLIGHT_BYTES)

        try:
            for job in jobs:
                chunk.append(job)
                sizes["chunk"] += _size(job)
                if len(chunk) >= self.config.chunk_size or sizes["chunk"] >= CHUNK_BYTES:
                    submit(chunk)
                    chunk = []
                    while full():
                        yield from collect()
            if chunk:
                submit(chunk)
            while pending:
                yield from collect()
        except BaseException:
            for _, future in pending:
                future.cancel()
            raise
