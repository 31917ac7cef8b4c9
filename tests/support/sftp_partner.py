"""A partner's own SFTP server for the pickup tests: asyncssh's stock SFTP server, chrooted.

Relais's hosted server (`connectors.sftp.hosted.server`) is deliberately strict (writes
only into ``in/``, no mkdir, no rename out of ``in/``, symbolic links hidden).
A partner's server is usually a plain OpenSSH-like one: the pickup folder can be
renamed in and moved out of, ``processed/`` can be created, symbolic links are
listed as such. This is that server, on 127.0.0.1, in a thread, with
public-key authentication only. ``deny`` makes it refuse some operations with a
real SFTP "permission denied" (the tests run as root, so file modes cannot).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import asyncssh

from tests.support.waiting import SERVER_START_SECONDS


class _Policy:
    def __init__(self) -> None:
        self.deny: set[str] = set()  # "rename", "remove", "mkdir", "rename_to:<prefix>"
        self.renamed: list[str] = []  # paths renamed to, in order (files arriving under their final name)


class _SFTP(asyncssh.SFTPServer):
    def __init__(self, chan: asyncssh.SSHServerChannel, root: Path, policy: _Policy) -> None:
        super().__init__(chan, chroot=str(root).encode())
        self._policy = policy

    def _check(self, op: str) -> None:
        if op in self._policy.deny:
            raise asyncssh.SFTPPermissionDenied(f"{op}: permission denied")

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._check("rename")
        for rule in self._policy.deny:
            if rule.startswith("rename_to:") and newpath.decode(errors="replace").lstrip("/").startswith(
                rule.removeprefix("rename_to:")
            ):
                raise asyncssh.SFTPPermissionDenied("rename: permission denied")
        super().rename(oldpath, newpath)
        self._policy.renamed.append(newpath.decode(errors="replace").lstrip("/"))

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._check("rename")
        super().posix_rename(oldpath, newpath)
        self._policy.renamed.append(newpath.decode(errors="replace").lstrip("/"))

    def remove(self, path: bytes) -> None:
        self._check("remove")
        return super().remove(path)

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self._check("mkdir")
        return super().mkdir(path, attrs)


class _SSH(asyncssh.SSHServer):
    def __init__(self, owner: PartnerServer) -> None:
        self._owner = owner

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._owner.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        pass

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False


class PartnerServer:
    """``with PartnerServer(root, user, authorized_key, tmp_path / "hostkey") as srv: srv.port``."""

    def __init__(
        self, root: Path, user: str, authorized_key: str, host_key_path: Path, host_key_type: str = "ssh-ed25519"
    ) -> None:
        self.root = Path(root)
        self.user = user
        self.authorized_key = authorized_key
        if Path(host_key_path).exists():
            self.host_key = asyncssh.read_private_key(str(host_key_path))
        else:
            self.host_key = asyncssh.generate_private_key(host_key_type)
            Path(host_key_path).write_bytes(self.host_key.export_private_key("openssh"))
        self.host_key_line = " ".join(self.host_key.export_public_key("openssh").decode().split()[:2])
        self.policy = _Policy()
        self.connections: set[asyncssh.SSHServerConnection] = set()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None

    @property
    def deny(self) -> set[str]:
        return self.policy.deny

    @property
    def renamed(self) -> list[str]:
        """Paths (relative to the root) renamed to, in order: the order files arrived under their final name."""
        return self.policy.renamed

    def start(self) -> PartnerServer:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name="partner-sftp")
        self._thread.start()
        assert ready.wait(SERVER_START_SECONDS), "the partner's SFTP server's loop did not start"
        self._loop = loop
        keys = asyncssh.import_authorized_keys(self.authorized_key + "\n")

        async def listen() -> asyncssh.SSHAcceptor:
            return await asyncssh.create_server(
                lambda: _SSH(self),
                "127.0.0.1",
                self.port,
                server_host_keys=[self.host_key],
                authorized_client_keys=keys,
                sftp_factory=lambda chan: _SFTP(chan, self.root, self.policy),
                allow_scp=False,
                password_auth=False,
                kbdint_auth=False,
            )

        self._acceptor = asyncio.run_coroutine_threadsafe(listen(), loop).result(SERVER_START_SECONDS)
        self.port = self._acceptor.get_port()
        return self

    def stop(self) -> None:
        """Close the listener and drop every live connection (a server going down)."""
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            assert self._acceptor is not None
            self._acceptor.close()
            for conn in list(self.connections):
                conn.abort()
            self.connections.clear()
            await self._acceptor.wait_closed()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)

        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_rest(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        assert self._thread is not None
        self._thread.join(10)
        loop.close()
        self._loop = self._thread = self._acceptor = None

    def restart(self) -> PartnerServer:
        self.stop()
        return self.start()

    def __enter__(self) -> PartnerServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
