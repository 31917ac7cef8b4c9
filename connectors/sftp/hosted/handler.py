"""The SFTP side of the hosted drop zones: one account's confined file system (asyncssh).

`DropzoneSFTPServer` resolves every path against the account's root (confinement, no
symbolic link followed) and applies the upload rules of a drop zone (writes only into
``/in/<name>``, atomic uploads, channel mark, size limit). The rules are listed in the
module doc of `connectors.sftp.hosted.server`, which serves this over SSH.

Only drop zones are served by Relais. The tests and benchmarks of the pickup side plug a
plain chrooted account of their own into the server (``handlers`` of
`connectors.sftp.hosted.server.serve`; see ``tests/support/sftp_plain.py``), a subclass of
`DropzoneSFTPServer` that overrides its drop-zone rules.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import posixpath
import secrets
import stat
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh.sftp import (
    FXF_APPEND,
    FXF_CREAT,
    FXF_EXCL,
    FXF_READ,
    FXF_TRUNC,
    FXF_WRITE,
)

from connectors.folder.dropzone import is_temporary, mark_sftp
from flows.domain import log

_log = log.get("relais.sftp")

UPLOAD_PREFIX = ".relais-upload-"  # hidden temporary files of atomic uploads (see connectors.sftp.hosted.server)
NAME_MAX = 255  # bytes in one path component (Linux file systems)
MAX_OPEN_FILES = 64  # per SFTP session


@dataclasses.dataclass(frozen=True)
class Account:
    """One hosted login: `user` is confined to `root` (its chroot) and authenticates with a key."""

    user: str
    root: Path
    authorized_keys: tuple[str, ...]
    max_upload_bytes: int | None = None


# ---- SFTP file system policy ------------------------------------------------------------


def _deny(op: str, path: str, reason: str = "permission denied") -> asyncssh.SFTPError:
    return asyncssh.SFTPPermissionDenied(f"{op} {path}: {reason}")


@dataclasses.dataclass(eq=False)
class _Handle:
    file: Any  # raw file object (buffering=0)
    vpath: str  # the path the client opened
    local: str  # where the bytes are on disk (temporary file for atomic uploads)
    target: str | None = None  # final local name of an atomic upload
    readable: bool = True
    writable: bool = False
    bytes_read: int = 0
    size: int = 0  # highest offset written
    failed: bool = False  # upload refused (too large): discarded on close


def _own(file_obj: object) -> _Handle:
    """The handle asyncssh gives back: one `DropzoneSFTPServer.open` returned (asyncssh types it `object`)."""
    if not isinstance(file_obj, _Handle):
        raise asyncssh.SFTPFailure("not a file handle of this server")
    return file_obj


class DropzoneSFTPServer(asyncssh.SFTPServer):
    """asyncssh SFTP server confined to one account's drop zone (see the module doc)."""

    def __init__(self, chan: asyncssh.SSHServerChannel, account: Account, session: _Session | None = None):
        super().__init__(chan)  # no asyncssh chroot: every path goes through _resolve
        self.account = account
        self.partner = account.user
        self._root = os.path.realpath(account.root)
        self._session = session
        self._handles: set[_Handle] = set()
        self.lost = False  # set when the connection dropped: open uploads are abandoned
        if session is not None:
            session.sftp.add(self)
            session.live.add(self)

    # -- paths --------------------------------------------------------------------

    def _parts(self, op: str, path: bytes) -> tuple[str, ...]:
        try:
            text = path.decode("utf-8")
        except UnicodeDecodeError:
            raise asyncssh.SFTPNoSuchFile(f"{op}: path is not UTF-8") from None
        if "\x00" in text:
            raise asyncssh.SFTPNoSuchFile(f"{op}: bad path")
        norm = posixpath.normpath(posixpath.join("/", text))
        return tuple(p for p in norm.split("/") if p)

    def _resolve(self, op: str, path: bytes) -> tuple[tuple[str, ...], str]:
        """(virtual parts, local path); refuses any path through a symbolic link or out of the root,
        and hides the server's own temporary files (atomic uploads, Relais's temporaries in ``out/``)."""
        parts = self._parts(op, path)
        local = self._confine(op, parts)
        if any(p.startswith(UPLOAD_PREFIX) for p in parts):
            raise asyncssh.SFTPNoSuchFile(f"{op} {_v(parts)}: no such file")
        if len(parts) >= 2 and parts[0] == "out" and is_temporary(parts[1]):
            raise asyncssh.SFTPNoSuchFile(f"{op} {_v(parts)}: no such file")  # Relais's own temporaries
        return parts, local

    def _confine(self, op: str, parts: tuple[str, ...]) -> str:
        """The local path of `parts`; "no such file" for a path through a symbolic link or out of the root."""
        local = self._root
        for part in parts:
            if len(part.encode("utf-8")) > NAME_MAX:
                break  # cannot exist (os.lstat would fail): the name checks below and in _upload_name say why
            local = os.path.join(local, part)
            try:
                st = os.lstat(local)
            except FileNotFoundError:
                break  # the rest does not exist either
            except NotADirectoryError:
                raise asyncssh.SFTPNoSuchFile(f"{op} {_v(parts)}: no such file") from None
            if stat.S_ISLNK(st.st_mode):
                self._denied(op, parts, "symbolic link")
                raise asyncssh.SFTPNoSuchFile(f"{op} {_v(parts)}: no such file")
        local = os.path.join(self._root, *parts)
        real = os.path.realpath(local)
        if real != self._root and not real.startswith(self._root + os.sep):  # belt and braces
            self._denied(op, parts, "outside the root")
            raise asyncssh.SFTPNoSuchFile(f"{op} {_v(parts)}: no such file")
        return local

    def _denied(self, op: str, parts: tuple[str, ...] | str, reason: str) -> None:
        path = parts if isinstance(parts, str) else _v(parts)
        _log.warning("sftp.denied", partner=self.partner, op=op, path=path, reason=reason)

    def _writable(self, parts: tuple[str, ...]) -> bool:
        """Whether the client may write `parts`: ``in/<name>`` only."""
        return len(parts) == 2 and parts[0] == "in"

    def _upload_name(self, op: str, parts: tuple[str, ...]) -> None:
        """Refuse unless `parts` is ``in/<valid name>``."""
        if not self._writable(parts):
            self._denied(op, parts, "uploads go into /in only")
            raise _deny(op, _v(parts), "uploads go into /in only")
        self._check_name(op, parts)
        if parts[-1].startswith(UPLOAD_PREFIX):
            self._denied(op, parts, "invalid file name")
            raise asyncssh.SFTPInvalidFilename(f"{op} {_v(parts)}: invalid file name")

    def _check_name(self, op: str, parts: tuple[str, ...]) -> None:
        """Refuse control characters in the name and components longer than NAME_MAX bytes."""
        if any(ord(c) < 32 or ord(c) == 127 for c in parts[-1]) or any(
            len(p.encode("utf-8")) > NAME_MAX for p in parts
        ):
            self._denied(op, parts, "invalid file name")
            raise asyncssh.SFTPInvalidFilename(f"{op} {_v(parts)}: invalid file name")

    def _regular(self, op: str, parts: tuple[str, ...], local: str) -> os.stat_result:
        st = os.lstat(local)  # FileNotFoundError -> "no such file"
        if not stat.S_ISREG(st.st_mode):
            if stat.S_ISDIR(st.st_mode):
                raise asyncssh.SFTPFileIsADirectory(f"{op} {_v(parts)}: is a folder")
            raise asyncssh.SFTPNoSuchFile(f"{op} {_v(parts)}: no such file")
        return st

    def map_path(self, path: bytes) -> bytes:  # used by nothing of ours; kept safe anyway
        return os.fsencode(self._resolve("map", path)[1])

    def reverse_map_path(self, path: bytes) -> bytes:
        local = os.fsdecode(path)
        if local == self._root:
            return b"/"
        if local.startswith(self._root + os.sep):
            return os.fsencode(local[len(self._root) :])
        raise asyncssh.SFTPNoSuchFile("no such file")

    # -- files --------------------------------------------------------------------

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> _Handle:
        parts, local = self._resolve("open", path)
        vpath = _v(parts)
        if len(self._handles) >= MAX_OPEN_FILES:
            self._denied("open", parts, "too many open files")
            raise asyncssh.SFTPFailure(f"open {vpath}: too many open files")
        write = bool(pflags & (FXF_WRITE | FXF_APPEND | FXF_CREAT | FXF_TRUNC))
        read = bool(pflags & FXF_READ) or not write
        if not write:
            self._regular("open", parts, local)
            fd = os.open(local, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            handle = _Handle(os.fdopen(fd, "rb", buffering=0), vpath, local)
            self._check_opened(handle, parts)
            _log.info("sftp.open", partner=self.partner, op="read", path=vpath)
            return handle
        self._upload_name("open", parts)
        exists = os.path.lexists(local)
        if exists:
            self._regular("open", parts, local)
        if pflags & FXF_EXCL and exists:
            raise asyncssh.SFTPFileAlreadyExists(f"open {vpath}: file exists")
        if not exists and not pflags & FXF_CREAT:
            raise asyncssh.SFTPNoSuchFile(f"open {vpath}: no such file")
        flags = (os.O_RDWR if read else os.O_WRONLY) | os.O_NOFOLLOW | os.O_NONBLOCK
        if pflags & FXF_APPEND:
            flags |= os.O_APPEND
        mode = "r+b" if read else "wb"
        if self._in_place(parts):
            # written in place: the drop zone ignores the name until the client renames it
            flags |= os.O_CREAT
            if pflags & FXF_TRUNC:
                flags |= os.O_TRUNC
            if pflags & FXF_EXCL:
                flags |= os.O_EXCL
            fd = os.open(local, flags, 0o666)  # client-requested permissions are ignored
            handle = _Handle(os.fdopen(fd, mode, buffering=0), vpath, local, readable=read, writable=True)
            self._mark(fd, vpath)  # before the client renames it to a name the scan takes
        else:
            # atomic: a hidden temporary file becomes `local` on close
            tmp = os.path.join(os.path.dirname(local), UPLOAD_PREFIX + secrets.token_hex(8))
            fd = os.open(tmp, flags | os.O_CREAT | os.O_EXCL, 0o666)
            handle = _Handle(os.fdopen(fd, mode, buffering=0), vpath, tmp, target=local, readable=read, writable=True)
            self._mark(fd, vpath)  # on the hidden file: `local` appears (os.replace) already marked
            try:
                if exists and not pflags & FXF_TRUNC:  # resume / update: start from the current bytes
                    with open(local, "rb") as src:
                        while chunk := src.read(1 << 20):
                            os.write(fd, chunk)
                            handle.size += len(chunk)
            except BaseException:
                handle.file.close()
                os.unlink(tmp)
                raise
        self._check_opened(handle, parts)
        _log.info("sftp.open", partner=self.partner, op="write", path=vpath)
        return handle

    def _in_place(self, parts: tuple[str, ...]) -> bool:
        """Uploads to a temporary name are written in place (resumable); the others are atomic."""
        return is_temporary(parts[-1])

    def _mark(self, fd: int, vpath: str) -> None:
        """Mark an upload as ours (channel sftp, see the module doc); a failure is logged, not fatal."""
        try:
            mark_sftp(fd)
        except OSError as e:
            _log.warning(
                "sftp.channel_mark_failed",
                partner=self.partner,
                path=vpath,
                error=str(e),
                detail="the upload will be recorded with channel folder",
            )

    def _check_opened(self, handle: _Handle, parts: tuple[str, ...]) -> None:
        st = os.fstat(handle.file.fileno())
        if not stat.S_ISREG(st.st_mode):
            handle.file.close()
            raise asyncssh.SFTPNoSuchFile(f"open {_v(parts)}: no such file")
        self._handles.add(handle)

    def open56(self, *args: Any, **kwargs: Any) -> object:  # SFTP v5+: never negotiated (sftp_version=3)
        raise asyncssh.SFTPOpUnsupported("SFTP version 5 and later are not supported")

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        handle = _own(file_obj)
        if not handle.readable:
            raise _deny("read", handle.vpath, "opened for writing only")
        handle.file.seek(offset)
        data = handle.file.read(size)
        handle.bytes_read += len(data)
        return data

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        handle = _own(file_obj)
        if not handle.writable:
            raise _deny("write", handle.vpath, "opened for reading only")
        if handle.failed:
            raise asyncssh.SFTPFailure(f"write {handle.vpath}: upload refused")
        limit = self.account.max_upload_bytes
        end = offset + len(data)
        if limit is not None and end > limit:
            self._discard(handle, f"larger than {limit} bytes")
            raise asyncssh.SFTPFailure(f"write {handle.vpath}: file larger than {limit} bytes refused")
        handle.file.seek(offset)
        written = handle.file.write(data)
        handle.size = max(handle.size, end)
        return written

    def _discard(self, handle: _Handle, reason: str) -> None:
        handle.failed = True
        try:
            os.unlink(handle.local)
        except FileNotFoundError:
            pass
        _log.warning("sftp.upload_refused", partner=self.partner, path=handle.vpath, reason=reason)

    def close(self, file_obj: object) -> None:
        handle = _own(file_obj)
        self._handles.discard(handle)
        handle.file.close()
        if not handle.writable:
            _log.info("sftp.download", partner=self.partner, path=handle.vpath, bytes=handle.bytes_read)
            return
        if handle.failed:
            return
        if self._abandoned():
            # the client never closed the file: the connection or the session went away
            if handle.target is not None:
                with _suppress_missing():
                    os.unlink(handle.local)
            _log.warning(
                "sftp.upload_abandoned",
                partner=self.partner,
                path=handle.vpath,
                bytes=handle.size,
                kept=handle.target is None,
            )
            return
        if handle.target is not None:
            os.replace(handle.local, handle.target)
        size = os.stat(handle.target or handle.local).st_size
        _log.info("sftp.upload", partner=self.partner, path=handle.vpath, bytes=size)

    def _abandoned(self) -> bool:
        if self.lost or (self._session is not None and self._session.lost):
            return True
        # The client closed the channel (or sent EOF) with the file still open. asyncssh closes
        # leftover handles in its session clean-up; a CLOSE request always arrives on an open channel.
        return getattr(self.channel, "_recv_state", "open") != "open"

    def fstat(self, file_obj: object) -> os.stat_result:
        handle = _own(file_obj)
        return os.fstat(handle.file.fileno())

    def fsetstat(self, file_obj: object, attrs: asyncssh.SFTPAttrs) -> None:
        handle = _own(file_obj)
        if not handle.writable:
            raise _deny("setstat", handle.vpath)
        if attrs.size is not None:
            limit = self.account.max_upload_bytes
            if limit is not None and attrs.size > limit:
                raise asyncssh.SFTPFailure(f"setstat {handle.vpath}: larger than {limit} bytes")
            os.ftruncate(handle.file.fileno(), attrs.size)
            handle.size = attrs.size
        # permissions, owner and times: ignored (see the module doc)

    def fsync(self, file_obj: object) -> None:
        handle = _own(file_obj)
        os.fsync(handle.file.fileno())

    def fstatvfs(self, file_obj: object) -> os.statvfs_result:
        return os.statvfs(self._root)

    # -- names ----------------------------------------------------------------------

    def lstat(self, path: bytes) -> os.stat_result:
        return os.lstat(self._resolve("stat", path)[1])

    def stat(self, path: bytes) -> os.stat_result:
        return os.lstat(self._resolve("stat", path)[1])  # no symlink reaches here: lstat == stat

    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        parts, local = self._resolve("setstat", path)
        if not self._writable(parts):
            self._denied("setstat", parts, "read-only")
            raise _deny("setstat", _v(parts), "read-only")
        self._regular("setstat", parts, local)
        if attrs.size is not None:
            self._denied("setstat", parts, "size change")
            raise _deny("setstat", _v(parts), "size changes only through an open file")
        # permissions, owner and times: ignored (see the module doc)

    lsetstat = setstat

    def statvfs(self, path: bytes) -> os.statvfs_result:
        return os.statvfs(self._resolve("statvfs", path)[1])

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        parts, local = self._resolve("list", path)
        st = os.lstat(local)
        if not stat.S_ISDIR(st.st_mode):
            raise asyncssh.SFTPNotADirectory(f"list {_v(parts)}: not a folder")
        _log.info("sftp.list", partner=self.partner, path=_v(parts))
        yield asyncssh.SFTPName(b".", attrs=asyncssh.SFTPAttrs.from_local(st))
        parent = os.lstat(os.path.dirname(local)) if parts else st  # "/.." is "/"
        yield asyncssh.SFTPName(b"..", attrs=asyncssh.SFTPAttrs.from_local(parent))
        with os.scandir(local) as it:
            entries = list(it)
        for entry in sorted(entries, key=lambda e: e.name):
            try:
                est = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if self._listed(parts, entry.name, est):
                yield asyncssh.SFTPName(os.fsencode(entry.name), attrs=asyncssh.SFTPAttrs.from_local(est))

    def _listed(self, parts: tuple[str, ...], name: str, st: os.stat_result) -> bool:
        """Whether folder `parts` lists `name`: regular files and folders, not the server's own temporaries."""
        if name.startswith(UPLOAD_PREFIX) or (parts == ("out",) and is_temporary(name)):
            return False
        return stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)  # no symlinks, FIFOs, sockets, devices

    def remove(self, path: bytes) -> None:
        parts, local = self._resolve("remove", path)
        if len(parts) != 2 or parts[0] not in ("in", "out"):
            self._denied("remove", parts, "only files of /in and /out can be deleted")
            raise _deny("remove", _v(parts))
        self._regular("remove", parts, local)
        os.unlink(local)
        _log.info("sftp.remove", partner=self.partner, path=_v(parts))

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._rename(oldpath, newpath, replace=False)

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._rename(oldpath, newpath, replace=True)

    def _rename(self, oldpath: bytes, newpath: bytes, replace: bool) -> None:
        old, old_local = self._resolve("rename", oldpath)
        new, new_local = self._resolve("rename", newpath)
        if len(old) != 2 or old[0] != "in":
            self._denied("rename", f"{_v(old)} -> {_v(new)}", "renames only within /in")
            raise _deny("rename", _v(old), "renames only within /in")
        self._upload_name("rename", new)
        if is_temporary(new[-1]):
            reason = "temporary or hidden name, never taken by the intake"
            self._denied("rename", f"{_v(old)} -> {_v(new)}", reason)
            raise asyncssh.SFTPInvalidFilename(
                f"rename {_v(new)}: {reason} (no leading '.', no .part/.tmp/.partial/.filepart/.crdownload)"
            )
        self._regular("rename", old, old_local)
        self._replace(old, old_local, new, new_local, replace)

    def _replace(
        self, old: tuple[str, ...], old_local: str, new: tuple[str, ...], new_local: str, replace: bool
    ) -> None:
        """The rename itself, once allowed: an existing regular file is replaced only by a posix-rename."""
        if os.path.lexists(new_local):
            if not replace:
                raise asyncssh.SFTPFailure(f"rename {_v(new)}: file already exists")
            self._regular("rename", new, new_local)
        os.replace(old_local, new_local)
        _log.info("sftp.rename", partner=self.partner, path=_v(old), to=_v(new))

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        parts = self._parts("mkdir", path)
        self._denied("mkdir", parts, "folders cannot be created")
        raise _deny("mkdir", _v(parts), "folders cannot be created")

    def rmdir(self, path: bytes) -> None:
        parts = self._parts("rmdir", path)
        self._denied("rmdir", parts, "folders cannot be removed")
        raise _deny("rmdir", _v(parts), "folders cannot be removed")

    def realpath(self, path: bytes) -> bytes:
        parts, _local = self._resolve("realpath", path)
        return _v(parts).encode("utf-8")

    def readlink(self, path: bytes) -> bytes:
        parts = self._parts("readlink", path)
        raise asyncssh.SFTPNoSuchFile(f"readlink {_v(parts)}: no symbolic links here")

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        parts = self._parts("symlink", newpath)
        self._denied("symlink", parts, "symbolic links are not allowed")
        raise _deny("symlink", _v(parts), "symbolic links are not allowed")

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        parts = self._parts("link", newpath)
        self._denied("link", parts, "links are not allowed")
        raise _deny("link", _v(parts), "links are not allowed")

    def exit(self) -> None:
        for handle in list(self._handles):  # normally closed already by asyncssh's clean-up
            with _suppress_missing():
                self.close(handle)
        if self._session is not None:
            self._session.sftp.discard(self)
            self._session.live.discard(self)


def _v(parts: Iterable[str]) -> str:
    return "/" + "/".join(parts)


class _suppress_missing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        return (
            exc_type is not None
            and issubclass(exc_type, OSError)
            and getattr(exc, "errno", None) in (errno.ENOENT, errno.EBADF)
        )


@dataclasses.dataclass(eq=False)
class _Session:
    """The SFTP sessions of one SSH connection."""

    live: set[DropzoneSFTPServer]  # the listener's registry's
    sftp: set[DropzoneSFTPServer] = dataclasses.field(default_factory=set)
    lost: bool = False
