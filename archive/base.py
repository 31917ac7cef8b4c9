"""The archive interface: what Relais needs from a place that keeps every byte.

Everything outside `archive/` sees an archive only through `Archive`, and
objects only through their SHA-256 and binary file objects: never a file
path. A backend (the local folder today, an object store tomorrow) is one
subclass implementing `put_stream`, `open` and `exists`; `put_bytes`,
`put_file`, `read` and `verify` are built on those and may be overridden when
the backend can do better (much as httpx's transports implement
`BaseTransport.handle_request` and inherit the rest).

The contract, checked for every backend by tests/archive/test_archive.py:

* ``put_stream(stream)`` copies the stream in bounded memory while hashing it,
  and returns only once the bytes are durable (fsync'd or the store's
  equivalent). Objects are content-addressed and written once: storing the
  same bytes again returns the same `ArchivedObject` and changes nothing.
* ``open(sha256)`` returns a readable, seekable binary file object positioned
  at the start (the caller closes it, ideally in a ``with``); a missing object
  raises FileNotFoundError.
* ``put_many(sources)`` stores several files or byte strings: all durable once it returns (never
  one visible under its digest before its bytes are durable).
* ``exists(sha256)`` tells whether the object is stored; ``verify(sha256)``
  re-hashes it: False when its bytes no longer match, or when it is missing.
* A string that is not a lowercase SHA-256 hex digest raises ValueError.
* A backend that checks what it serves (archive/s3.py: every `open`) raises `CorruptObject` rather
  than hand out bytes whose SHA-256 is not the one asked for.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import io
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

CHUNK = 1024 * 1024

_HEX = frozenset("0123456789abcdef")


@dataclasses.dataclass(frozen=True, slots=True)
class ArchivedObject:
    sha256: str
    size: int


class CorruptObject(OSError):
    """The bytes stored under `sha256` no longer hash to it (or its recorded digest says otherwise):
    they are never served."""

    def __init__(self, sha256: str, detail: str) -> None:
        super().__init__(f"archive object {sha256} is corrupt: {detail}")
        self.sha256 = sha256
        self.detail = detail


def check_digest(sha256: str) -> str:
    """`sha256` if it is a lowercase SHA-256 hex digest; ValueError otherwise (keys stay inert).

    >>> check_digest("../../etc/passwd")
    Traceback (most recent call last):
    ...
    ValueError: not a SHA-256 hex digest: '../../etc/passwd'
    """
    if not isinstance(sha256, str) or len(sha256) != 64 or not _HEX.issuperset(sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return sha256


def chunks(stream: BinaryIO) -> Iterator[bytes]:
    """`stream`'s bytes, `CHUNK` at a time (bounded memory)."""
    while chunk := stream.read(CHUNK):
        yield chunk


def hash_copy(source: Iterable[bytes], out: BinaryIO | None = None) -> ArchivedObject:
    """SHA-256 and size of the bytes of `source`, each chunk also written to `out` when given: the one
    loop that hashes what a backend spools, reads back or re-checks."""
    digest = hashlib.sha256()
    size = 0
    for chunk in source:
        digest.update(chunk)
        size += len(chunk)
        if out is not None:
            out.write(chunk)
    return ArchivedObject(digest.hexdigest(), size)


def spool(
    source: BinaryIO | Path | bytes, directory: Path | None, prefix: str, *, fsync: bool
) -> tuple[ArchivedObject, Path]:
    """Copy `source` (a stream, a local file or bytes) to a new temporary file of `directory` (None: the
    system's) while hashing it; with `fsync`, its bytes are durable once this returns. The caller removes
    the file (`Path.unlink`); on an error it is already removed."""
    fd, name = tempfile.mkstemp(dir=directory, prefix=prefix)
    try:
        with os.fdopen(fd, "wb") as out:
            if isinstance(source, bytes):
                obj = hash_copy([source] if source else [], out)
            elif isinstance(source, Path):
                with source.open("rb") as stream:
                    obj = hash_copy(chunks(stream), out)
            else:
                obj = hash_copy(chunks(source), out)
            if fsync:
                out.flush()
                os.fsync(out.fileno())
    except BaseException:
        os.unlink(name)
        raise
    return obj, Path(name)


class Archive(abc.ABC):
    """Write-once, content-addressed storage of every received and emitted byte."""

    @abc.abstractmethod
    def put_stream(self, stream: BinaryIO) -> ArchivedObject:
        """Store what `stream` holds, in bounded memory; durable once this returns."""

    @abc.abstractmethod
    def open(self, sha256: str) -> BinaryIO:
        """A readable, seekable binary file object on the stored bytes (FileNotFoundError if missing)."""

    @abc.abstractmethod
    def exists(self, sha256: str) -> bool:
        """Whether an object is stored under `sha256`."""

    def put_bytes(self, data: bytes) -> ArchivedObject:
        return self.put_stream(io.BytesIO(data))

    def put_file(self, src: Path) -> ArchivedObject:
        """Store a local file's bytes (a convenience over `put_stream`)."""
        with Path(src).open("rb") as f:
            return self.put_stream(f)

    def put_many(self, sources: Sequence[Path | bytes]) -> list[ArchivedObject]:
        """Store several local files or byte strings; every one is durable once this returns (like
        `put_file` / `put_bytes`, one after the other; a backend may group its syncs: archive/local.py)."""
        return [self.put_file(s) if isinstance(s, Path) else self.put_bytes(s) for s in sources]

    def read(self, sha256: str) -> bytes:
        """The whole object in memory: for small objects only (MDNs, return flows); else `open`."""
        with self.open(sha256) as f:
            return f.read()

    def verify(self, sha256: str) -> bool:
        """Re-hash the stored bytes, in bounded memory: True only if they still match `sha256`."""
        try:
            with self.open(sha256) as f:
                return hash_copy(chunks(f)).sha256 == sha256
        except FileNotFoundError:
            return False
