"""Write a file so that readers see the old bytes or the new ones, never half of them; and clean up
after a writer that was killed.

Temporary files are named ``.relais~<pid>~<start>~...`` (`temp_prefix`): the writing process and its
start time (`flows.domain.lease`). A process killed between writing and renaming leaves one behind; `sweep`
removes those of processes that are gone (this machine's only), so nothing half-written stays
visible. Scanners never take these names (dot-files).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

from flows.domain import lease

_TEMP = re.compile(r"^\.relais~(\d+)~(\d+)~")
_OLD_STYLE = re.compile(r"^\.relais-.*\.part$")  # before temporary names carried their writer
OLD_STYLE_AFTER = 3600.0  # seconds: an old-style temporary file this old has no writer left


def temp_prefix(what: str = "") -> str:
    """The prefix of this process's temporary files (`what` says what they are, for people reading)."""
    _, pid, started = lease.worker_id().split(":")
    return f".relais~{pid}~{started}~{what}"


#: Files handed to partners (return flows in their out/ folder, deliveries): readable by their account, which
#: is not Relais's (RELAIS_RETURN_FILE_MODE changes it; a temporary file alone is 0600).
PARTNER_FILE_MODE = 0o644


def write_atomic(target: Path, data: bytes, mode: int | None = None) -> None:
    """Write `data` to a temporary name beside `target`, fsync it, then rename it over `target` (with the
    permissions `mode` when given, whatever the umask; else 0600)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=temp_prefix(), suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def stage(target: Path, data: bytes, mode: int) -> Path:
    """Write `data` beside `target` under a temporary name (not yet durable, not yet visible), with the
    permissions `mode` (whatever the umask); `publish` makes it durable and visible."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=temp_prefix(), suffix=".part")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def publish(staged: list[tuple[Path, Path]]) -> None:
    """Make staged files (temporary path, target) durable with one sync for them all, then rename each over its
    target and sync their folders: what `write_atomic` does file by file, for a batch. On a failure, the
    temporary files not renamed yet are removed and the error raised (their targets keep their old bytes)."""
    if not staged:
        return
    done = 0
    try:
        os.sync()  # one flush for the whole batch instead of one fsync per file
        for tmp, target in staged:
            os.replace(tmp, target)
            done += 1
        for folder in {target.parent for _, target in staged}:
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    except BaseException:
        for tmp, _ in staged[done:]:
            tmp.unlink(missing_ok=True)
        raise


def is_orphan(name: str, mtime: float, now: float | None = None) -> bool:
    """A temporary file whose writer is gone.

    >>> import os
    >>> is_orphan(temp_prefix() + "x.part", 0.0), is_orphan(".relais~999999~1~x.part", 0.0)
    (False, True)
    >>> is_orphan("invoice.xml", 0.0), is_orphan(".relais-abc.part", 0.0, now=10.0)
    (False, False)
    """
    if (m := _TEMP.match(name)) is not None:
        return bool(lease.is_dead(f"{lease.HOST}:{m.group(1)}:{m.group(2)}"))
    if _OLD_STYLE.match(name):
        return (now if now is not None else time.time()) - mtime > OLD_STYLE_AFTER
    return False


def sweep(folder: Path, *, recursive: bool = True) -> list[Path]:
    """Remove the temporary files of dead writers under `folder`; the paths removed."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    stack = [folder]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    if recursive:
                        stack.append(Path(entry.path))
                    continue
                if entry.name.startswith(".relais") and entry.is_file(follow_symlinks=False):
                    try:
                        if is_orphan(entry.name, entry.stat(follow_symlinks=False).st_mtime):
                            os.unlink(entry.path)
                            removed.append(Path(entry.path))
                    except FileNotFoundError:
                        continue
    return removed
