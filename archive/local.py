"""Local-folder archive: objects stored by SHA-256, written once and fsync'd.

``objects/ab/cd/abcd…`` holds the bytes whose SHA-256 is ``abcd…``. An object
is streamed to a temporary file in the same file system while it is hashed,
fsync'd, then linked to its final name (never overwritten) and the folder
fsync'd: once `put_*` returns, the bytes survive a crash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

CHUNK = 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class ArchivedObject:
    sha256: str
    size: int


class LocalArchive:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._objects = self.root / "objects"
        self._tmp = self.root / "tmp"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self._objects / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def open(self, sha256: str) -> BinaryIO:
        return self.path(sha256).open("rb")

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def put_bytes(self, data: bytes) -> ArchivedObject:
        return self.put_stream(io.BytesIO(data))

    def put_file(self, src: Path) -> ArchivedObject:
        with Path(src).open("rb") as f:
            return self.put_stream(f)

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
            final = self.path(obj.sha256)
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
