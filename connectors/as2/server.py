"""Running the AS2 endpoint under uvicorn, with limits against slow and hostile clients.

uvicorn has no deadline for a request's headers: a client sending them a byte
at a time (slowloris) holds its connection forever, and enough of them
exhaust ``limit_concurrency``. `guarded_protocol` adds that deadline to
uvicorn's h11 protocol: a connection whose request line and headers are not
complete ``header_timeout`` seconds after it opened (or after its previous
response) is closed. h11 bounds the header block (``max_header_bytes``); the
app bounds the body (size, idle time, total time).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from connectors import uvicorn_thread
from connectors.as2.receiver import As2App, ServerLimits


def guarded_protocol(header_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, closing connections whose request head is late."""

    class GuardedH11Protocol(H11Protocol):
        _head_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._head_deadline = self.loop.call_later(header_timeout, self._head_late)

        def _disarm(self) -> None:
            if self._head_deadline is not None:
                self._head_deadline.cancel()
                self._head_deadline = None

        def _head_late(self) -> None:
            self._head_deadline = None
            # Still no complete request head (the client is IDLE for h11): drop the connection.
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.logger.warning("AS2: closing a connection whose request headers did not arrive in time")
                self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request on this keep-alive connection has the same deadline

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return GuardedH11Protocol


def config(
    app: As2App,
    host: str = "127.0.0.1",
    port: int = 4080,
    *,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    log_level: str = "warning",
) -> uvicorn.Config:
    limits: ServerLimits = app.limits
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(limits.header_timeout),
        lifespan="on",
        timeout_keep_alive=limits.keep_alive,
        limit_concurrency=limits.limit_concurrency,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        log_level=log_level,
        access_log=False,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
        server_header=False,
        date_header=False,  # MDNs carry their own Date
        ws="none",
        proxy_headers=False,
    )


class ServerThread(uvicorn_thread.ServerThread):
    """The endpoint in a background thread (tests, benchmark): ``.start()``, ``.port``, ``.url``, ``.stop()``."""

    def __init__(self, app: As2App, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> None:
        super().__init__(config(app, host, port, **kwargs), name="as2-server")
        self.app = app

    @property
    def url(self) -> str:
        return f"{super().url}/as2"
