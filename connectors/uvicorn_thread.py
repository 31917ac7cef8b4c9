"""A uvicorn server in a background thread of this process: the one way Relais runs one there (the AS2
endpoint, the API and the web application in tests and benchmarks, the test stubs of tests/support/).

- `Server` is uvicorn's server that knows the port it listens on once started (port 0: a free one)
  and then calls ``on_ready`` (the CLI prints its address); relais/api/serve.py builds on it.
- `ServerThread` runs a `Server` in a daemon thread. `start` returns once the socket accepts
  connections, or raises `ServerDidNotStart` (its port taken, its application's startup failed) with
  the thread ended; `stop` asks uvicorn to finish (the requests in progress end, within the config's
  ``timeout_graceful_shutdown``), waits for the thread and raises if it does not end. As a context
  manager: ``with ServerThread(config) as s: s.url``.

It lives in connectors/, the lowest layer that serves HTTP (connectors/as2/server.py); relais/ and the
tests import it from here.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any, Self

import uvicorn

__all__ = ["Server", "ServerDidNotStart", "ServerThread"]


class ServerDidNotStart(RuntimeError):
    """The server of a `ServerThread` is not listening (a port taken, a failed application startup)."""


class Server(uvicorn.Server):
    """A uvicorn server that knows the port it listens on (port 0: a free one) once started."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[Self], None] | None = None) -> None:
        super().__init__(config)
        self.on_ready: Callable[[Any], None] | None = on_ready  # called with this server
        self.port: int | None = None
        #: Set once startup is over, whether the server listens (``started``) or not.
        self.startup_over = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)  # a port taken: uvicorn logs it and raises SystemExit
            if self.servers and self.servers[0].sockets:
                self.port = self.servers[0].sockets[0].getsockname()[1]
            if self.started and self.on_ready is not None:
                self.on_ready(self)
        finally:
            self.startup_over.set()


class ServerThread:
    """A `Server` (or one built on a uvicorn config) in a daemon thread: ``start``, ``port``, ``url``, ``stop``."""

    def __init__(self, server: Server | uvicorn.Config, *, name: str = "uvicorn") -> None:
        self.server = server if isinstance(server, Server) else Server(server)
        self.host: str = self.server.config.host
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self.server.run()
        except SystemExit:  # uvicorn's way of ending a failed startup (it logged why): `start` raises
            pass
        finally:  # the config failed to load before startup, or the server ended: nobody waits in vain
            self.server.startup_over.set()

    def start(self, timeout: float = 120.0) -> Self:
        """Start the thread; return once the server accepts connections (else `ServerDidNotStart`). The bound
        is generous: on a loaded machine an application's start-up (imports, the store) may take a while,
        and a port taken or a failed start-up ends the wait at once anyway."""
        self._thread.start()
        if not self.server.startup_over.wait(timeout) or not self.server.started or self.server.port is None:
            self.stop()
            raise ServerDidNotStart(f"the server {self._thread.name!r} did not start on {self.host}")
        return self

    @property
    def port(self) -> int:
        if self.server.port is None:
            raise ServerDidNotStart(f"the server {self._thread.name!r} is not listening")
        return self.server.port

    @property
    def url(self) -> str:
        """``http://host:port`` (an IPv6 host in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the server to finish, wait for its thread; then force it (open connections are cut)."""
        if not self._thread.is_alive():
            return
        self.server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.server.force_exit = True
            self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"the server {self._thread.name!r} did not stop")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
