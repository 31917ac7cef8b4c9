"""Hosted SFTP drop zones: ``relais sftp serve`` (asyncssh).

Each partner with a ``[hosted]`` section in its partner file logs in as its
partner id with one of its ``authorized_keys`` and lands in its own drop zone
folder, ``dropzones/<partner>/``, seen as ``/``::

    /in/    upload here; files enter the pipeline like any folder drop zone
    /out/   return flows (CPPStatut) to download; delete them to acknowledge

Security rules (each refusal is logged with the partner id, operation and path):

- Public-key authentication only: no password, no keyboard-interactive, no
  host-based or GSS authentication. An unknown user is asked for a key like
  any other and refused, so user names cannot be probed. Only the SFTP
  subsystem is served: no shell, exec, scp, port, agent or X11 forwarding.
- Every partner is confined to its own folder: paths are normalised against
  ``/`` before being joined to the root, so ``..``, absolute paths and
  ``../other-partner`` stay inside it. No symbolic link is ever followed:
  a path with a symlink anywhere in it is "no such file", symlinks are not
  listed, and ``symlink``/``readlink``/hard links are refused. Files are
  opened with ``O_NOFOLLOW`` and must be regular files (no FIFO, device...).
- Writes only into ``/in/<name>``: no sub-folders (``mkdir`` refused), no
  writes into ``/``, ``/out`` or anything else. Names with control
  characters, ``/``, ``.``/``..``, longer than 255 bytes or that are not UTF-8
  are refused.
- Uploads to a final name are atomic: the bytes go to a hidden temporary
  file in ``in/`` (ignored by the drop-zone scan) that becomes ``in/<name>``
  only when the client closes the file. An upload cut short (client gone,
  connection lost, server stopped) leaves nothing behind. Uploads to a
  temporary name (``*.part``, ``*.tmp``, dot-files: see
  ``connectors.folder.dropzone.is_temporary``) are written in place, can be
  resumed, and are renamed within ``in/`` by the client when complete.
- Names the drop-zone scan never takes (dot-files, ``*.part``, ``*.tmp``...)
  are accepted only as such temporary names, since clients upload under them
  (``put x.part`` then ``rename``, WinSCP's ``*.filepart``, lftp's dot-files,
  resumable uploads). A rename is the client saying "complete": a rename *to*
  such a name is refused ("never taken by the intake"). A file left under a
  temporary name is not lost silently either: the scan reports it once it has
  been idle for an hour (``dropzone.ignored_file``, once per file).
- Channel ``sftp``: every file this server writes into ``in/`` is marked (an
  extended attribute on the file, ``connectors.folder.dropzone.mark_sftp``)
  before it gets a name the scan takes, so the scan records it with channel
  ``sftp``, not ``folder``. The mark is on the inode, so a rename keeps it and
  a crash cannot separate it from the file; see ``connectors.folder.dropzone``.
  At start the server checks that each drop zone can hold the mark and logs
  ``sftp.channel_mark_unsupported`` otherwise (uploads then count as ``folder``).
- ``/in``: list, read back, rename and delete the partner's own files
  (not yet taken by the pipeline). ``/out``: list, download, delete (the
  partner acknowledges a return flow by deleting it; Relais keeps its own
  copy in the archive and the store). Relais's own temporary files in
  ``out/`` are neither listed nor readable.
- Attribute changes (``put -p``, ``chmod``, ``touch``) on ``/in`` files are
  accepted and ignored, so that clients preserving times work but a partner
  cannot make a file unreadable or look older than it is. Only truncation of
  an open upload is applied.
- ``max_upload_bytes`` (per account; ``accounts_for_dropzones`` uses
  ``RELAIS_MAX_FLOW_BYTES``): a write past it fails and the upload is
  discarded. ``MAX_OPEN_FILES`` handles per session and ``MAX_CONNECTIONS_PER_USER``
  connections per partner at most; ``LOGIN_TIMEOUT`` seconds to log in. There is no
  disk quota per partner: watch the file system holding the drop zones.

The per-account file-system rules live in ``connectors.sftp.hosted.handler``. ``handlers``
(`serve`, `ServerThread`) serves some accounts with another SFTP handler than their drop
zone: the tests and benchmarks use it for a plain chrooted account standing in for a
partner's own server (``tests/support/sftp_plain.py``); Relais itself serves drop zones only.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import asyncssh

from connectors.folder.dropzone import mark_sftp
from connectors.sftp.hosted.handler import (  # noqa: F401  # re-exported: connectors.sftp.hosted.server is the entry point
    MAX_OPEN_FILES,
    NAME_MAX,
    UPLOAD_PREFIX,
    Account,
    DropzoneSFTPServer,
    _Handle,
    _Session,
    _suppress_missing,
)
from flows.domain import log

_log = log.get("relais.sftp")

#: Makes the SFTP session of one login: ``handler(channel, account, session)``.
SFTPHandler = Callable[[asyncssh.SSHServerChannel, Account, "_Session | None"], DropzoneSFTPServer]

MAX_CONNECTIONS_PER_USER = 16  # logged-in connections of one partner at once
LOGIN_TIMEOUT = 30.0  # seconds to authenticate


# ---- host key -----------------------------------------------------------------------


def host_key(path: Path) -> asyncssh.SSHKey:
    """The server's private host key at `path`; created (ed25519, mode 0600) when missing.

    The public key is written beside it as ``<path>.pub``.
    """
    path = Path(path)
    if path.exists():
        if path.stat().st_mode & 0o077:
            _log.warning("sftp.host_key_readable_by_others", path=str(path), mode=oct(path.stat().st_mode & 0o777))
        return asyncssh.read_private_key(str(path))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = asyncssh.generate_private_key("ssh-ed25519", comment="relais-sftp")
    data = key.export_private_key("openssh")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # created meanwhile by another process: use that one
        return asyncssh.read_private_key(str(path))
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, 0o600)
    Path(f"{path}.pub").write_text(public_key_line(key) + " relais-sftp\n", encoding="ascii")
    _log.info("sftp.host_key_created", path=str(path), fingerprint=key.get_fingerprint())
    return key


def fingerprint_line(key: asyncssh.SSHKey) -> str:
    """The key as ``ssh-keygen -lf`` shows it: ``256 SHA256:... relais-sftp (ED25519)``.

    Bits, SHA-256 fingerprint (what an OpenSSH client prints at the first connection), comment, type.
    """
    algorithm = key.algorithm.decode("ascii")
    pyca: Any = getattr(key, "pyca_key", None)  # the `cryptography` key
    if algorithm == "ssh-ed25519":
        bits, kind = 256, "ED25519"
    elif algorithm == "ssh-ed448":
        bits, kind = 456, "ED448"
    elif algorithm.startswith("ecdsa-sha2-"):
        bits, kind = pyca.curve.key_size, "ECDSA"
    elif algorithm == "ssh-rsa":
        bits, kind = pyca.key_size, "RSA"
    else:  # not made by host_key() nor by ssh-keygen's usual types
        bits, kind = 0, algorithm.upper()
    return f"{bits} {key.get_fingerprint('sha256')} {key.get_comment() or 'no comment'} ({kind})"


def public_key_line(key: asyncssh.SSHKey) -> str:
    """``"ssh-ed25519 AAAA..."`` (no comment), the form clients pin."""
    algorithm, blob = key.export_public_key("openssh").decode("ascii").split()[:2]
    return f"{algorithm} {blob}"


# ---- SSH server ------------------------------------------------------------------------


class _Registry:
    """Live connections and SFTP sessions of one listener (ServerThread.stop drops them)."""

    def __init__(self) -> None:
        self.connections: dict[asyncssh.SSHServerConnection, _SSHServer] = {}
        self.live: set[DropzoneSFTPServer] = set()  # SFTP sessions not yet cleaned up


class _SSHServer(asyncssh.SSHServer):
    def __init__(
        self, accounts: Mapping[str, Account], keys: Mapping[str, asyncssh.SSHAuthorizedKeys], registry: _Registry
    ) -> None:
        self._accounts = accounts
        self._keys = keys
        self._registry = registry
        self._conn: asyncssh.SSHServerConnection | None = None
        self.session = _Session(registry.live)
        self.user: str | None = None
        self.authenticated = False
        self.peer = ""

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        peer = conn.get_extra_info("peername") or ("?", 0)
        self.peer = f"{peer[0]}:{peer[1]}"
        self._registry.connections[conn] = self

    def connection_lost(self, exc: Exception | None) -> None:
        self.session.lost = True
        for server in list(self.session.sftp):
            server.lost = True
        if self._conn is not None:
            self._registry.connections.pop(self._conn, None)
        if self.authenticated:
            _log.info("sftp.disconnect", partner=self.user, peer=self.peer, error=str(exc) if exc else None)
        elif self.user is not None:
            _log.warning("sftp.login_failed", user=self.user, peer=self.peer, known=self.user in self._accounts)

    def begin_auth(self, username: str) -> bool:
        self.user = username
        keys = self._keys.get(username)
        if keys is not None and self._conn is not None:
            self._conn.set_authorized_keys(keys)
        return True  # always ask for a key, even for unknown users (no user probing)

    def auth_completed(self) -> None:
        self.authenticated = True
        live = sum(1 for s in self._registry.connections.values() if s.authenticated and s.user == self.user)
        if live > MAX_CONNECTIONS_PER_USER and self._conn is not None:
            _log.warning("sftp.too_many_connections", partner=self.user, peer=self.peer, limit=MAX_CONNECTIONS_PER_USER)
            self._conn.disconnect(asyncssh.DISC_TOO_MANY_CONNECTIONS, "too many connections")
            return
        _log.info("sftp.login", partner=self.user, peer=self.peer)

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def host_based_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return False  # only the account's authorized_keys (checked by asyncssh before this)

    def validate_ca_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return False

    def session_requested(self) -> bool:
        return False  # only the SFTP subsystem (handled by sftp_factory)


def _authorized_keys(accounts: Mapping[str, Account]) -> dict[str, asyncssh.SSHAuthorizedKeys]:
    keys = {}
    for user, account in accounts.items():
        if user != account.user:
            raise ValueError(f"account {account.user!r} is filed under {user!r}")
        if not account.authorized_keys:
            raise ValueError(f"account {user}: no authorized key")
        try:
            keys[user] = asyncssh.import_authorized_keys("\n".join(account.authorized_keys) + "\n")
        except (ValueError, asyncssh.KeyImportError) as e:
            raise ValueError(f"account {user}: bad authorized key: {e}") from e
    return keys


def _clean_stale_uploads(accounts: Mapping[str, Account]) -> None:
    """Temporary files of uploads cut short by a server crash (never complete: removed)."""
    for account in accounts.values():
        inbox = Path(account.root) / "in"
        if not inbox.is_dir():
            continue
        for path in inbox.glob(UPLOAD_PREFIX + "*"):
            with _suppress_missing():
                path.unlink()
                _log.warning("sftp.stale_upload_removed", partner=account.user, path=str(path))


def _check_marks(accounts: Mapping[str, Account]) -> None:
    """Log, at start, drop zones whose file system cannot hold the channel mark (see the module doc)."""
    for account in accounts.values():
        probe = Path(account.root) / "in" / f"{UPLOAD_PREFIX}probe-{secrets.token_hex(4)}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError:
            continue  # an unwritable inbox shows soon enough
        try:
            mark_sftp(fd)
        except OSError as e:
            _log.error(
                "sftp.channel_mark_unsupported",
                partner=account.user,
                path=str(probe.parent),
                error=str(e),
                detail="uploads will be recorded with channel folder, not sftp",
            )
        finally:
            os.close(fd)
            with _suppress_missing():
                probe.unlink()


async def serve(
    accounts: dict[str, Account],
    host_key_path: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    registry: _Registry | None = None,
    handlers: Mapping[str, SFTPHandler] | None = None,
) -> asyncssh.SSHAcceptor:
    """Listen for SFTP logins of `accounts` (keyed by user name); returns the asyncssh acceptor.

    ``acceptor.get_port()`` gives the port when `port` is 0. Closing the acceptor stops
    new logins; live sessions go on (ServerThread.stop also drops them).

    Every account is a drop zone (`DropzoneSFTPServer`; ``in/`` and ``out/`` are made, stale
    uploads removed, the channel mark checked) unless `handlers` names another SFTP handler
    for it: that account gets the same SSH side (keys, limits) and only its root is made.
    """
    keys = _authorized_keys(accounts)
    registry = _Registry() if registry is None else registry
    handlers = dict(handlers or {})
    unknown = sorted(set(handlers) - set(accounts))
    if unknown:
        raise ValueError(f"handlers for unknown accounts: {', '.join(unknown)}")
    dropzones = {user: account for user, account in accounts.items() if user not in handlers}
    for account in accounts.values():
        Path(account.root).mkdir(parents=True, exist_ok=True)
    for account in dropzones.values():
        for sub in ("in", "out"):
            (Path(account.root) / sub).mkdir(parents=True, exist_ok=True)
    _clean_stale_uploads(dropzones)
    _check_marks(dropzones)
    server_key = host_key(host_key_path)

    def sftp_factory(chan: asyncssh.SSHServerChannel) -> DropzoneSFTPServer:
        conn = chan.get_connection()
        user = conn.get_extra_info("username")
        owner = registry.connections.get(conn) if isinstance(conn, asyncssh.SSHServerConnection) else None
        _log.info("sftp.session", partner=user)
        handler = handlers.get(user, DropzoneSFTPServer)
        return handler(chan, accounts[user], owner.session if owner else None)

    acceptor = await asyncssh.create_server(
        lambda: _SSHServer(accounts, keys, registry),
        host,
        port,
        server_host_keys=[server_key],
        sftp_factory=sftp_factory,
        sftp_version=3,
        allow_scp=False,
        public_key_auth=True,
        password_auth=False,
        kbdint_auth=False,
        gss_host=None,
        host_based_auth=False,
        agent_forwarding=False,
        x11_forwarding=False,
        login_timeout=LOGIN_TIMEOUT,
        keepalive_interval=60,
    )
    _log.info(
        "sftp.listening",
        host=host,
        port=acceptor.get_port(),
        accounts=sorted(accounts),
        fingerprint=server_key.get_fingerprint(),
    )
    return acceptor


# ---- a server in a thread (tests, benchmarks, the CLI) ----------------------------------


class ServerThread:
    """`serve` in its own event loop, in a daemon thread.

    ``stop()`` closes the listener and drops every live connection (as a server going
    down would); ``restart()`` listens again on the same port. `handlers`: see `serve`.
    """

    def __init__(
        self,
        accounts: dict[str, Account],
        host_key_path: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        handlers: Mapping[str, SFTPHandler] | None = None,
    ) -> None:
        self.accounts = accounts
        self.handlers = dict(handlers or {})
        self.host_key_path = Path(host_key_path)
        self.host = host
        self.port = port
        key = host_key(self.host_key_path)
        self.host_key_line = public_key_line(key)
        self.fingerprint = key.get_fingerprint()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._registry = _Registry()

    @property
    def running(self) -> bool:
        return self._acceptor is not None

    @property
    def connections(self) -> int:
        """Live SSH connections (logged in or not)."""
        return len(self._registry.connections)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no connection is left (clients gone and cleaned up); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._registry.connections or self._registry.live:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def start(self) -> ServerThread:
        if self._acceptor is not None:
            return self
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        thread = threading.Thread(target=run, name=f"relais-sftp-{self.port}", daemon=True)
        thread.start()
        ready.wait()
        self._loop, self._thread = loop, thread
        try:
            self._acceptor = asyncio.run_coroutine_threadsafe(
                serve(
                    self.accounts,
                    self.host_key_path,
                    self.host,
                    self.port,
                    registry=self._registry,
                    handlers=self.handlers,
                ),
                loop,
            ).result(timeout=30)
        except BaseException:
            self._end_loop()
            raise
        self.port = self._acceptor.get_port()
        return self

    def stop(self) -> None:
        """Close the listener and drop all live connections; returns once they are gone."""
        if self._loop is None:
            return
        if self._acceptor is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=30)
        self._acceptor = None
        self._end_loop()

    async def _shutdown(self) -> None:
        assert self._acceptor is not None
        self._acceptor.close()
        conns = list(self._registry.connections)
        for conn in conns:
            conn.abort()
        for conn in conns:
            try:
                await asyncio.wait_for(conn.wait_closed(), 5)
            except (TimeoutError, Exception):  # going down anyway
                pass
        # let the SFTP sessions run their clean-up (abandoned uploads are removed there)
        for _ in range(500):
            if not self._registry.live:
                break
            await asyncio.sleep(0.01)
        await self._acceptor.wait_closed()

    def _end_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None:
            return

        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(cancel_rest(), loop).result(timeout=10)
        except Exception:
            pass
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=10)
        loop.close()

    def restart(self) -> ServerThread:
        """Stop (if running) and listen again on the same port."""
        self.stop()
        return self.start()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---- drop zones of the configured partners ---------------------------------------------


def accounts_for_dropzones(settings: Any, partners: Mapping[str, Any]) -> dict[str, Account]:
    """One account per partner with a ``[hosted]`` section: user = partner id, chroot = its drop zone."""
    accounts = {}
    for partner in partners.values():
        if partner.hosted is None:
            continue
        root = Path(settings.dropzones_dir) / partner.id
        for sub in ("in", "out"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        accounts[partner.id] = Account(
            user=partner.id,
            root=root,
            authorized_keys=tuple(partner.hosted.authorized_keys),
            max_upload_bytes=getattr(settings, "max_flow_bytes", None),
        )
    return accounts
