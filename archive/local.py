"""Local-folder archive: objects stored by SHA-256, written once and fsync'd.

``objects/ab/cd/abcd…`` holds the bytes whose SHA-256 is ``abcd…``. An object
is streamed to a temporary file in the same file system while it is hashed,
fsync'd, then linked to its final name (never overwritten) and the folder
fsync'd: once `put_*` returns, the bytes survive a crash. Object files are
read-only (0444). Their paths stay private: callers use `open`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
