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
import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from archive.base import CHUNK, Archive, ArchivedObject, check_digest

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
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="put-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            obj = ArchivedObject(digest.hexdigest(), size)
            final = self._path(obj.sha256)
            if final.exists():
                if final.stat().st_size != size:
                    raise OSError(f"archive object {obj.sha256} exists with another size")
                return obj
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp_name, 0o444)
            try:
                os.link(tmp_name, final)  # fails if it exists: write-once
            except FileExistsError:
                return obj
            _fsync_dir(final.parent)
            return obj
        finally:
            try:
                os.unlink(tmp_name)
            except FileNotFoundError:
                pass

    def put_many(self, sources: Sequence[Path | bytes]) -> list[ArchivedObject]:
        """Store several files or byte strings with two file-system syncs in all (the module doc)."""
        if len(sources) < 2:
            return super().put_many(sources)
        staged: list[tuple[ArchivedObject, str]] = []
        try:
            for source in sources:
                staged.append(self._stage(source))
            _sync_fs(self._tmp)  # every staged file's bytes are durable
            linked = False
            for obj, tmp_name in staged:
                final = self._path(obj.sha256)
                if final.exists():
                    if final.stat().st_size != obj.size:
                        raise OSError(f"archive object {obj.sha256} exists with another size")
                    continue
                final.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp_name, 0o444)
                try:
                    os.link(tmp_name, final)  # fails if it exists: write-once
                    linked = True
                except FileExistsError:
                    continue
            if linked:
                _sync_fs(self._objects)  # the new names are durable
            return [obj for obj, _ in staged]
        finally:
            for _, tmp_name in staged:
                try:
                    os.unlink(tmp_name)
                except FileNotFoundError:
                    pass

    def _stage(self, source: Path | bytes) -> tuple[ArchivedObject, str]:
        """Write `source` to a temporary file of the archive while hashing it (not synced)."""
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="put-")
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(source, bytes):
                    digest.update(source)
                    size = len(source)
                    out.write(source)
                else:
                    with Path(source).open("rb") as stream:
                        while chunk := stream.read(CHUNK):
                            digest.update(chunk)
                            size += len(chunk)
                            out.write(chunk)
        except BaseException:
            os.unlink(tmp_name)
            raise
        return ArchivedObject(digest.hexdigest(), size), tmp_name


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
