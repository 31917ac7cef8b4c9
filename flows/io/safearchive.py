"""The one archive reader of Relais: zip and tar.gz, read safely and one entry at a time.

`check()` inspects a whole archive before anything in it is processed;
`iter_entries()` then streams its files in archive order. Both read a seekable
binary file object (an archived flow: ``rt.archive.open(sha256)``) from its
start, and leave closing it to the caller. Both refuse, with a typed exception
naming the entry:

* path traversal, absolute paths, links, devices, fifos → `UnsafeInput` RLS-T06;
* too many entries, an entry or a total too large, a compression ratio too
  high, a size that lied → `UnsafeInput` RLS-T07;
* a corrupt, truncated or encrypted archive → `Rejected` RLS-T13.

Directories and macOS litter (``__MACOSX/``, ``._*``, ``.DS_Store``) are
skipped; names come back normalised to relative POSIX paths. Nested archives
are the caller's business (`sniff()` the bytes of each entry).
"""

from __future__ import annotations

import codecs
import contextlib
import copy
import errno
import functools
import gzip
import io
import lzma
import os
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, BinaryIO

from flows.domain import technical
from flows.domain.errors import Rejected, UnsafeInput
from flows.domain.model import Container

__all__ = ["ArchiveLimits", "Entry", "check", "iter_entries", "sniff"]

_MIB = 1024 * 1024
_RATIO_FLOOR = _MIB  # compression ratios are only judged beyond 1 MiB uncompressed
_CHUNK = _MIB
# A central directory record is 46 bytes plus name, extra field and comment;
# 2 KiB on average is generous, and bounds what zipfile loads into memory.
_MAX_CD_BYTES_PER_ENTRY = 2048
# How far GzipFile may have read ahead of what it handed out (judging per-entry ratios).
_GZIP_SLACK = 2 * max(io.DEFAULT_BUFFER_SIZE, getattr(gzip, "READ_BUFFER_SIZE", 0), 64 * 1024)
_DRIVE = re.compile(r"^[A-Za-z]:")
_UNREADABLE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    gzip.BadGzipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    NotImplementedError,  # zip compression method unsupported (Deflate64, AES...)
    ValueError,
    OverflowError,
    struct.error,
)


@dataclass(frozen=True)
class ArchiveLimits:
    """Decompression limits; `max_ratio` is uncompressed/compressed, judged per entry
    (entries over 1 MiB uncompressed) and over the whole archive (over 1 MiB in all)."""

    max_entries: int = 10_000
    max_entry_bytes: int = 200 * _MIB
    max_total_bytes: int = 2 * 1024**3
    max_ratio: float = 200.0


@dataclass(frozen=True)
class Entry:
    """One file of an archive: its normalised name, its size, and `read()`.

    `read()` returns the whole content, at most `size` bytes (refusing with
    RLS-T07 if the data turns out longer than declared). Call it at most once,
    and before the iterator moves on: tar.gz archives are read as a stream.
    """

    name: str
    size: int
    _reader: Callable[[], bytes] = field(repr=False, compare=False)

    def read(self) -> bytes:
        return self._reader()


def sniff(head: bytes) -> Container:
    """The container of a file, from its first bytes (1 KiB is plenty).

    >>> sniff(b"PK\\x03\\x04..."), sniff(b"\\x1f\\x8b\\x08..."), sniff(b"%PDF-1.7")
    (<Container.ZIP: 'zip'>, <Container.TAR_GZ: 'tar.gz'>, <Container.PDF: 'pdf'>)
    >>> sniff(b"\\xef\\xbb\\xbf\\n <Invoice/>"), sniff("<a/>".encode("utf-16")), sniff(b"hello")
    (<Container.XML: 'xml'>, <Container.XML: 'xml'>, <Container.UNKNOWN: 'unknown'>)
    """
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return Container.ZIP
    if head.startswith(b"\x1f\x8b"):
        return Container.TAR_GZ  # any gzip: check() refuses one that holds no tar
    text = _decode_head(head).lstrip(" \t\r\n")
    if text.startswith("%PDF-"):
        return Container.PDF
    if text.startswith("<"):
        return Container.XML
    if b"%PDF-" in head[:1024]:
        return Container.PDF
    return Container.UNKNOWN


def check(f: BinaryIO, container: Container, limits: ArchiveLimits = ArchiveLimits()) -> int:
    """Inspect the whole archive in `f`, data included, and return its number of files.

    Raises on the first unsafe or unreadable trait, before the caller has
    processed anything. Directories and macOS litter are not counted.
    """
    count = 0
    for _entry, junk, drain in _walk(f, container, limits):
        drain()  # decompress and discard: verifies CRCs and true sizes
        count += not junk
    return count


def iter_entries(f: BinaryIO, container: Container, limits: ArchiveLimits = ArchiveLimits()) -> Iterator[Entry]:
    """The files of the archive in `f`, one at a time, in archive order (never all in memory).

    Enforces the same limits as `check()`: a zip is refused before its first
    entry; a tar.gz, being a stream, as soon as the offending entry is reached.
    Keep `f` open until the iterator is done.
    """
    for entry, junk, _drain in _walk(f, container, limits):
        if not junk:
            yield entry


# --- walking an archive --------------------------------------------------------

_Walked = tuple[Entry, bool, Callable[[], object]]  # (entry, is macOS litter, read-and-discard)


def _walk(fp: IO[bytes], container: Container, limits: ArchiveLimits) -> Iterator[_Walked]:
    if container is Container.ZIP:
        return _walk_zip(fp, limits)
    if container is Container.TAR_GZ:
        return _walk_tar_gz(fp, limits)
    raise ValueError(f"not an archive container: {container!r}")


class _Cursor:
    """Which entry may still be read: entries are readable once, while current."""

    def __init__(self) -> None:
        self.position = -1
        self.read = False

    def advance(self) -> int:
        self.position += 1
        self.read = False
        return self.position

    def claim(self, position: int, name: str) -> None:
        if position != self.position or self.read:
            raise RuntimeError(f"archive entry {name!r} read twice or after the iterator moved on")
        self.read = True


def _walk_zip(fp: IO[bytes], limits: ArchiveLimits) -> Iterator[_Walked]:
    archive_size = fp.seek(0, os.SEEK_END)
    fp.seek(0)
    with _unreadable(None):
        _check_zip_directory(fp, limits)
        with zipfile.ZipFile(fp) as zf:
            plan = _plan_zip(zf, archive_size, limits)
            cursor = _Cursor()
            for info, name, junk in plan:
                position = cursor.advance()

                def read(
                    info: zipfile.ZipInfo = info, name: str = name, at: int = position, keep: bool = True
                ) -> bytes:
                    cursor.claim(at, name)
                    with _unreadable(name):
                        return _read_zip_member(zf, info, name, limits, keep)

                entry = Entry(name, info.file_size, read)
                try:
                    yield entry, junk, functools.partial(read, keep=False)
                finally:
                    cursor.advance()  # the entry is no longer readable once the iterator moves


def _check_zip_directory(fp: IO[bytes], limits: ArchiveLimits) -> None:
    """Refuse a central directory too big to load, before zipfile loads it."""
    end_record = getattr(zipfile, "_EndRecData", None)
    if end_record is None:  # private helper gone: zipfile's own checks remain
        return
    record = end_record(fp)
    if record is None:
        raise zipfile.BadZipFile("no end of central directory record (not a zip, or truncated)")
    entries = record[zipfile._ECD_ENTRIES_TOTAL]  # type: ignore[attr-defined]
    cd_size = record[zipfile._ECD_SIZE]  # type: ignore[attr-defined]
    if entries > limits.max_entries or cd_size > limits.max_entries * _MAX_CD_BYTES_PER_ENTRY:
        raise UnsafeInput(
            technical.ARCHIVE_BOMB,
            f"the zip directory declares {entries} entries in {cd_size} bytes,"
            f" over the limit of {limits.max_entries} entries",
        )
    fp.seek(0)


def _plan_zip(zf: zipfile.ZipFile, archive_size: int, limits: ArchiveLimits) -> list[tuple[zipfile.ZipInfo, str, bool]]:
    """Check every entry's metadata; the files to read, as (info, name, is litter)."""
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise UnsafeInput(technical.ARCHIVE_BOMB, f"{len(infos)} entries, over the limit of {limits.max_entries}")
    plan, total = [], 0
    for info in infos:
        # orig_filename: zipfile cuts `filename` at a NUL byte, which would hide it.
        name = _clean_name(info.orig_filename)
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            kind_name = _KINDS.get(kind, "special file")
            raise UnsafeInput(technical.UNSAFE_ENTRY, f"{name!r} is a {kind_name}")
        if info.is_dir() or kind == stat.S_IFDIR:
            continue
        if not name:
            raise UnsafeInput(technical.UNSAFE_ENTRY, f"empty entry name {info.filename!r}")
        if info.flag_bits & 0x1:
            raise Rejected(technical.UNREADABLE_ARCHIVE, f"encrypted entry {name!r}")
        _check_entry_size(name, info.file_size, info.compress_size, limits)
        total += info.file_size
        _check_total(name, total, limits)
        plan.append((info, name, _is_litter(name)))
    if total > _RATIO_FLOOR and total > limits.max_ratio * max(archive_size, 1):
        raise UnsafeInput(
            technical.ARCHIVE_BOMB,
            f"{total} bytes uncompressed from a {archive_size}-byte archive,"
            f" over the ratio limit of {limits.max_ratio:g}",
        )
    return plan


def _read_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limits: ArchiveLimits, keep: bool) -> bytes:
    try:
        with zf.open(info) as member:
            return _read_bounded(member, name, info.file_size, keep)
    except zipfile.BadZipFile as exc:
        if "CRC" in str(exc) and _zip_size_lied(zf, info, limits.max_entry_bytes):
            raise UnsafeInput(
                technical.ARCHIVE_BOMB,
                f"{name!r} holds more data than its declared {info.file_size} bytes",
            ) from None
        raise


def _zip_size_lied(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bool:
    """Whether a member with a bad CRC is a size lie rather than plain corruption.

    zipfile stops at the declared size, so a lie shows as a CRC error. Reading
    on without the size bound (and without CRC check: ZipExtFile checks only
    when the ZipInfo has a CRC) tells them apart: a lie decompresses to more
    than declared, consistently with the declared CRC, or to more than `limit`.
    """
    try:
        probe = copy.copy(info)
        probe.file_size = limit + 1
        del probe.CRC
        crc, size = 0, 0
        with zf.open(probe) as member:
            while chunk := member.read(_CHUNK):
                crc, size = zlib.crc32(chunk, crc), size + len(chunk)
                if size > limit:
                    return True
        return size > info.file_size and crc == info.CRC
    except Exception:  # a failed probe means plain corruption
        return False


def _walk_tar_gz(fp: IO[bytes], limits: ArchiveLimits) -> Iterator[_Walked]:
    fp.seek(0)
    with _unreadable(None):
        compressed = _CountingReader(fp)
        stream = _InflatedStream(gzip.GzipFile(fileobj=compressed, mode="rb"), compressed, limits)  # type: ignore[call-overload]
        with tarfile.open(fileobj=stream, mode="r|", tarinfo=_StrictTarInfo, encoding="utf-8") as tf:  # type: ignore[call-overload]
            cursor, members, total = _Cursor(), 0, 0
            for member in tf:
                members += 1
                name = _clean_name(member.name)
                stream.start_segment(name)
                if members > limits.max_entries:
                    raise UnsafeInput(
                        technical.ARCHIVE_BOMB,
                        f"more than {limits.max_entries} entries (at {name!r})",
                    )
                if member.isdir():
                    continue
                if not member.isreg() or member.issparse():
                    raise UnsafeInput(technical.UNSAFE_ENTRY, f"{name!r} is a {_tar_kind(member)}")
                if not name:
                    raise UnsafeInput(technical.UNSAFE_ENTRY, f"empty entry name {member.name!r}")
                _check_entry_size(name, member.size, None, limits)
                total += member.size
                _check_total(name, total, limits)
                position = cursor.advance()

                def read(
                    member: tarfile.TarInfo = member, name: str = name, at: int = position, keep: bool = True
                ) -> bytes:
                    cursor.claim(at, name)
                    with _unreadable(name):
                        data = tf.extractfile(member)
                        assert data is not None  # a regular file
                        with data:
                            return _read_bounded(data, name, member.size, keep)

                entry = Entry(name, member.size, read)
                try:
                    yield entry, _is_litter(name), functools.partial(read, keep=False)
                finally:
                    cursor.advance()  # the entry is no longer readable once the iterator moves
            stream.drain()  # to the gzip trailer: verifies its CRC and length


class _StrictTarInfo(tarfile.TarInfo):
    """tarfile ends the archive quietly on a bad header past the first; refuse it instead."""

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> _StrictTarInfo:
        try:
            return super().fromtarfile(tarfile_)
        except (tarfile.InvalidHeaderError, tarfile.TruncatedHeaderError) as exc:  # type: ignore[attr-defined]
            raise tarfile.ReadError(f"bad tar header: {exc}") from None


class _CountingReader:
    """A binary reader counting the bytes it hands out."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.count += len(data)
        return data


class _InflatedStream:
    """The decompressed tar stream, refusing it as soon as it outgrows the limits.

    The compression ratio is judged over the whole stream and over each entry
    (from one header to the next), against compressed bytes actually read.
    """

    def __init__(self, inflated: gzip.GzipFile, compressed: _CountingReader, limits: ArchiveLimits):
        self._inflated = inflated
        self._compressed = compressed
        self._limits = limits
        # Tar headers and padding: up to ~1 KiB per entry plus the end blocks.
        self._max_total = limits.max_total_bytes + 1024 * (limits.max_entries + 64)
        self.count = 0
        self._segment_start = (0, 0)
        self._entry = "the archive start"

    def start_segment(self, entry: str) -> None:
        """Mark the start of `entry`'s data (its header just read)."""
        self._segment_start = (self.count, self._compressed.count)
        self._entry = repr(entry)

    def read(self, size: int = -1) -> bytes:
        data = self._inflated.read(size if size is not None and size >= 0 else _CHUNK)
        self.count += len(data)
        if self.count > self._max_total:
            raise UnsafeInput(
                technical.ARCHIVE_BOMB,
                f"over {self._limits.max_total_bytes} bytes once decompressed (at {self._entry})",
            )
        out, compressed = self.count, self._compressed.count
        if out > _RATIO_FLOOR and out > self._limits.max_ratio * max(compressed, 1):
            raise UnsafeInput(
                technical.ARCHIVE_BOMB,
                f"{out} bytes decompressed from {compressed} (at {self._entry}),"
                f" over the ratio limit of {self._limits.max_ratio:g}",
            )
        out -= self._segment_start[0]
        compressed -= self._segment_start[1]
        if out > _RATIO_FLOOR and out > self._limits.max_ratio * (compressed + _GZIP_SLACK):
            raise UnsafeInput(
                technical.ARCHIVE_BOMB,
                f"{self._entry} decompresses to over {self._limits.max_ratio:g} times its compressed size",
            )
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass


def _read_bounded(member: IO[bytes], name: str, declared: int, keep: bool) -> bytes:
    """Read a member's data, never more than `declared` + 1 bytes."""
    chunks, got = [], 0
    while chunk := member.read(min(_CHUNK, declared + 1 - got)):
        got += len(chunk)
        if got > declared:
            raise UnsafeInput(
                technical.ARCHIVE_BOMB,
                f"{name!r} holds more data than its declared {declared} bytes",
            )
        if keep:
            chunks.append(chunk)
    if got < declared:
        raise Rejected(
            technical.UNREADABLE_ARCHIVE,
            f"{name!r}: {got} bytes instead of the declared {declared}",
        )
    return b"".join(chunks)


# --- checks ----------------------------------------------------------------------

_KINDS = {
    stat.S_IFLNK: "symbolic link",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}


def _tar_kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return f"symbolic link to {member.linkname!r}"
    if member.islnk():
        return f"hard link to {member.linkname!r}"
    if member.ischr() or member.isblk():
        return "device"
    if member.isfifo():
        return "fifo"
    if member.issparse():
        return "sparse file"
    return f"tar entry of type {member.type!r}"


def _clean_name(raw: str) -> str:
    """The entry name as a relative POSIX path; refuses traversal and absolute paths.

    >>> _clean_name("./batch\\\\2025//inv-1.xml")
    'batch/2025/inv-1.xml'
    >>> _clean_name("a/../../etc/passwd")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    flows.domain.errors.UnsafeInput: RLS-T06: ...: path traversal in 'a/../../etc/passwd'
    """
    # Undecodable bytes (tar names are read with surrogateescape) become U+FFFD.
    name = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    name = name.replace("\\", "/")
    if "\x00" in name:
        raise UnsafeInput(technical.UNSAFE_ENTRY, f"NUL character in the name {raw!r}")
    if name.startswith("/") or _DRIVE.match(name):
        raise UnsafeInput(technical.UNSAFE_ENTRY, f"absolute path {raw!r}")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    # '..', and what Windows would read as '..' ('...', '.. ').
    if any(part.rstrip(". ") == "" for part in parts):
        raise UnsafeInput(technical.UNSAFE_ENTRY, f"path traversal in {raw!r}")
    return "/".join(parts)


def _is_litter(name: str) -> bool:
    """macOS metadata that archivers add: never an invoice."""
    parts = name.split("/")
    return "__MACOSX" in parts or parts[-1].startswith("._") or parts[-1] == ".DS_Store"


def _check_entry_size(name: str, size: int, compressed: int | None, limits: ArchiveLimits) -> None:
    if size > limits.max_entry_bytes:
        raise UnsafeInput(
            technical.ARCHIVE_BOMB,
            f"{name!r} is {size} bytes, over the limit of {limits.max_entry_bytes} per entry",
        )
    ratio_applies = compressed is not None and size > _RATIO_FLOOR
    if ratio_applies and size > limits.max_ratio * max(compressed or 0, 1):
        raise UnsafeInput(
            technical.ARCHIVE_BOMB,
            f"{name!r} expands from {compressed} to {size} bytes, over the ratio limit of {limits.max_ratio:g}",
        )


def _check_total(name: str, total: int, limits: ArchiveLimits) -> None:
    if total > limits.max_total_bytes:
        raise UnsafeInput(
            technical.ARCHIVE_BOMB,
            f"over {limits.max_total_bytes} bytes in all (reached at {name!r})",
        )


@contextlib.contextmanager
def _unreadable(entry: str | None) -> Iterator[None]:
    """Turn the archive libraries' errors into RLS-T13, naming the entry being read."""
    try:
        yield
    except Rejected:
        raise
    except _UNREADABLE_ERRORS as exc:
        raise Rejected(technical.UNREADABLE_ARCHIVE, _describe(entry, exc)) from None
    except OSError as exc:
        # Decoders (bz2) and bad seeks (EINVAL) report corrupt data as OSError;
        # any other OSError is the machine's, not the sender's: let it through.
        if exc.errno not in (None, errno.EINVAL):
            raise
        raise Rejected(technical.UNREADABLE_ARCHIVE, _describe(entry, exc)) from None


def _describe(entry: str | None, exc: BaseException) -> str:
    message = str(exc) or type(exc).__name__
    return message if entry is None else f"{entry!r}: {message}"


def _decode_head(head: bytes) -> str:
    for bom, codec in (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if head.startswith(bom):
            return head[len(bom) : 1024].decode(codec, "replace")
    if head[:1] == b"\x00":
        return head[:1024].decode("utf-16-be", "replace")
    if head[1:2] == b"\x00":
        return head[:1024].decode("utf-16-le", "replace")
    return head[:1024].decode("latin-1")
