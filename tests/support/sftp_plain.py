"""A plain chrooted account on Relais's own SFTP server, standing in for a partner's server.

Relais serves drop zones only (`connectors.sftp.hosted.handler.DropzoneSFTPServer`: writes only
into ``/in/<name>``, no folders, symbolic links hidden). The pickup tests and ``bench/sftp.py``
need a partner's server instead: the whole root writable (folders, renames and deletes anywhere
in it), uploads written in place, symbolic links listed but never followed. `PlainSFTPServer`
is that, plugged into the production server through its ``handlers`` hook; it keeps the same
authentication, confinement and symlink rules::

    accounts = {"relais": Account("relais", root, (public_key,))}
    with ServerThread(accounts, host_key_path, handlers=plain("relais")) as srv: ...

(`tests.support.sftp_partner.PartnerServer` is the other stand-in: asyncssh's stock SFTP server.)
"""

from __future__ import annotations

import os
import stat

import asyncssh

from connectors.sftp.hosted.handler import DropzoneSFTPServer, _deny, _log, _v

__all__ = ["PlainSFTPServer", "plain"]


class PlainSFTPServer(DropzoneSFTPServer):
    """A chrooted account, the whole root writable; no drop-zone rule (see the module doc)."""

    # -- paths: confined, nothing hidden; lstat and remove do not follow a link at the end

    def _resolve(self, op: str, path: bytes) -> tuple[tuple[str, ...], str]:
        parts = self._parts(op, path)
        return parts, self._confine(op, parts)

    def _resolve_link(self, op: str, path: bytes) -> tuple[tuple[str, ...], str]:
        """Like `_resolve`, but the last component may itself be a symbolic link (not followed)."""
        parts = self._parts(op, path)
        if not parts:
            return self._resolve(op, path)
        self._confine(op, parts[:-1])
        return parts, os.path.join(self._root, *parts)

    def _writable(self, parts: tuple[str, ...]) -> bool:
        return bool(parts)  # anything but the root itself

    def _upload_name(self, op: str, parts: tuple[str, ...]) -> None:
        if not self._writable(parts):
            self._denied(op, parts, "not the root")
            raise _deny(op, _v(parts), "not the root")
        self._check_name(op, parts)

    # -- files: written in place, not marked (no drop zone scans this root)

    def _in_place(self, parts: tuple[str, ...]) -> bool:
        return True

    def _mark(self, fd: int, vpath: str) -> None:
        pass

    # -- names

    def lstat(self, path: bytes) -> os.stat_result:
        return os.lstat(self._resolve_link("stat", path)[1])

    def _listed(self, parts: tuple[str, ...], name: str, st: os.stat_result) -> bool:
        return stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode)

    def remove(self, path: bytes) -> None:
        parts, local = self._resolve_link("remove", path)
        if not os.path.islink(local):  # a link itself can be removed, its target is untouched
            self._regular("remove", parts, local)
        os.unlink(local)
        _log.info("sftp.remove", partner=self.partner, path=_v(parts))

    def _rename(self, oldpath: bytes, newpath: bytes, replace: bool) -> None:
        old, old_local = self._resolve("rename", oldpath)
        new, new_local = self._resolve("rename", newpath)
        if not old:
            self._denied("rename", f"{_v(old)} -> {_v(new)}", "not the root")
            raise _deny("rename", _v(old), "not the root")
        self._upload_name("rename", new)
        if not os.path.isdir(old_local):  # folders can be moved too
            self._regular("rename", old, old_local)
        self._replace(old, old_local, new, new_local, replace)

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        parts, local = self._resolve("mkdir", path)
        self._upload_name("mkdir", parts)
        os.mkdir(local, 0o777)
        _log.info("sftp.mkdir", partner=self.partner, path=_v(parts))

    def rmdir(self, path: bytes) -> None:
        parts, local = self._resolve("rmdir", path)
        if not parts:
            raise _deny("rmdir", "/", "the root stays")
        os.rmdir(local)
        _log.info("sftp.rmdir", partner=self.partner, path=_v(parts))


def plain(*users: str) -> dict[str, type[PlainSFTPServer]]:
    """``handlers=`` for `connectors.sftp.hosted.server.ServerThread`: `users` get plain accounts."""
    return dict.fromkeys(users, PlainSFTPServer)
