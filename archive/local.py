"""Local-folder archive: objects stored by SHA-256, written once and fsync'd.

``objects/ab/cd/abcd…`` holds the bytes whose SHA-256 is ``abcd…``. An object
is streamed to a temporary file in the same file system while it is hashed,
fsync'd, then linked to its final name (never overwritten) and the folder
fsync'd: once `put_*` returns, the bytes survive a crash. Object files are
read-only (0444). Their paths stay private: callers use `open`.

`put_many` groups the syncs of many small objects (a drop zone full of one-invoice files): every
temporary file is written, then one sync of the file system (``syncfs``) makes them all durable, then
they are linked to their final names, then one more sync makes the links durable. An object is never
visible under its digest before its bytes are durable, as with `put_stream`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from archive.base import Archive, ArchivedObject, check_digest, spool

__all__ = ["ArchivedObject", "LocalArchive"]


class LocalArchive(Archive):
    """The archive as a folder on a local (or mounted) file system."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root)
        self._objects = self._root / "objects"
        self._tmp = self._root / "tmp"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self._root)!r})"

    def _path(self, sha256: str) -> Path:
        check_digest(sha256)
        return self._objects / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def open(self, sha256: str) -> BinaryIO:
        return self._path(sha256).open("rb")

    def read(self, sha256: str) -> bytes:
        return self._path(sha256).read_bytes()

    def put_stream(self, stream: BinaryIO) -> ArchivedObject:
        """Copy `stream` into the archive in constant memory; return its hash and size."""
        obj, tmp = spool(stream, self._tmp, "put-", fsync=True)
        try:
            if self._link(obj, tmp):
                _fsync_dir(self._path(obj.sha256).parent)
            return obj
        finally:
            tmp.unlink(missing_ok=True)

    def put_many(self, sources: Sequence[Path | bytes]) -> list[ArchivedObject]:
        """Store several files or byte strings with two file-system syncs in all (the module doc)."""
        if len(sources) < 2:
            return super().put_many(sources)
        staged: list[tuple[ArchivedObject, Path]] = []
        try:
            for source in sources:
                staged.append(spool(source, self._tmp, "put-", fsync=False))
            _sync_fs(self._tmp)  # every staged file's bytes are durable
            linked = [self._link(obj, tmp) for obj, tmp in staged]
            if any(linked):
                _sync_fs(self._objects)  # the new names are durable
            return [obj for obj, _ in staged]
        finally:
            for _, tmp in staged:
                tmp.unlink(missing_ok=True)

    def _link(self, obj: ArchivedObject, tmp: Path) -> bool:
        """Give the spooled file `tmp` (durable) its final name, read-only, unless `obj` is already stored
        (with its size, else OSError): True when the name is new (its folder is not synced yet)."""
        final = self._path(obj.sha256)
        if final.exists():
            if final.stat().st_size != obj.size:
                raise OSError(f"archive object {obj.sha256} exists with another size")
            return False
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o444)
        try:
            os.link(tmp, final)  # fails if it exists: write-once
        except FileExistsError:
            return False
        return True


def _sync_fs(path: Path) -> None:
    """Make everything written to the file system holding `path` durable: ``syncfs(2)`` (Linux), else
    ``sync()``. Both wait for the data and metadata of every file and folder of that file system."""
    syncfs = _libc_syncfs()
    if syncfs is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


@functools.cache
def _libc_syncfs() -> Callable[[int], int] | None:
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
