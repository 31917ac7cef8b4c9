"""What both HTTP servers (`relais web serve`, `relais api serve`) allow a client, before the application
sees its request: how long it may take to send its headers and its body, how large a web form may be,
and whose ``X-Forwarded-For`` is believed.

- **Deadlines** (`protocol`): uvicorn 0.54 has only ``timeout_keep_alive``, the idle time between two
  requests; a client that connects and says nothing, sends its headers a byte at a time or holds a body
  open would keep its connection (and a slot of the server) forever. `protocol` returns uvicorn's own
  HTTP protocol class (httptools, else h11) with two deadlines per request: the headers must be whole
  within ``RELAIS_HTTP_HEADER_TIMEOUT`` seconds of the connection or of the request's first byte
  (default 10), and the body within ``RELAIS_HTTP_BODY_TIMEOUT`` seconds of the headers (default 20),
  a deadline pushed back each time another `BODY_STEP` bytes arrived (a large upload at a useful rate
  goes on: only a trickle is cut; while the application has not taken what came, the client is not
  blamed). Past a deadline the server answers ``408 Request Timeout`` (unless an answer was started) and
  closes the connection; the application sees the client gone (``http.disconnect``).
- **Body cap** (`BodyLimit`, the web application): a body larger than ``RELAIS_WEB_MAX_BODY`` bytes
  (default 64 KiB: the web's forms are small) gets ``413`` at once: from its Content-Length before a
  byte of it is read, or, for a chunked body, as soon as what arrived passes the cap; the connection is
  then closed, the rest never read.
- **Forwarded headers** (`trusted_proxies`): ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed
  only from the addresses (or networks) listed in ``RELAIS_TRUSTED_PROXIES`` (comma separated, empty by
  default: the client is the address of the connection, whoever says otherwise). uvicorn's default
  trusts 127.0.0.1, so any process of the machine could pick the address written in the audit log and
  counted by the login throttle.

>>> trusted_proxies({"RELAIS_TRUSTED_PROXIES": " 10.0.0.1, 192.168.0.0/24 ,::1"})
('10.0.0.1', '192.168.0.0/24', '::1')
>>> trusted_proxies({})
()
>>> trusted_proxies({"RELAIS_TRUSTED_PROXIES": "proxy.example"})
Traceback (most recent call last):
...
ValueError: RELAIS_TRUSTED_PROXIES: 'proxy.example' is not an IP address or network
>>> EdgeSettings.from_env({"RELAIS_HTTP_HEADER_TIMEOUT": "2.5"}).header_timeout
2.5
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from typing import Any

from relais import log

_log = log.get("relais.http")

ASGIApp = Any  # (scope, receive, send) -> awaitable

HEADER_TIMEOUT = 10.0
BODY_TIMEOUT = 20.0
WEB_MAX_BODY = 64 * 1024
#: Each time this many more bytes of a body arrived, its deadline starts again.
BODY_STEP = 64 * 1024


def trusted_proxies(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The addresses or networks whose forwarded headers are believed (RELAIS_TRUSTED_PROXIES)."""
    env = os.environ if env is None else env
    found = []
    for item in (env.get("RELAIS_TRUSTED_PROXIES") or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"RELAIS_TRUSTED_PROXIES: {item!r} is not an IP address or network") from None
        found.append(item)
    return tuple(found)


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not 0 < value <= 3600:
        raise ValueError(f"{name} must be between 0 and 3600 seconds, not {raw!r}")
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class EdgeSettings:
    header_timeout: float = HEADER_TIMEOUT
    body_timeout: float = BODY_TIMEOUT
    web_max_body: int = WEB_MAX_BODY
    trusted_proxies: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EdgeSettings:
        env = os.environ if env is None else env
        raw = (env.get("RELAIS_WEB_MAX_BODY") or "").strip()
        if raw and (not raw.isdigit() or int(raw) < 1024):
            raise ValueError(f"RELAIS_WEB_MAX_BODY must be a number of bytes (at least 1024), not {raw!r}")
        return cls(
            header_timeout=_seconds(env, "RELAIS_HTTP_HEADER_TIMEOUT", HEADER_TIMEOUT),
            body_timeout=_seconds(env, "RELAIS_HTTP_BODY_TIMEOUT", BODY_TIMEOUT),
            web_max_body=int(raw) if raw else WEB_MAX_BODY,
            trusted_proxies=trusted_proxies(env),
        )

    def uvicorn_options(self) -> dict[str, Any]:
        """The keyword arguments of `uvicorn.Config` these settings decide."""
        return {
            "http": protocol(self.header_timeout, self.body_timeout),
            "proxy_headers": bool(self.trusted_proxies),
            "forwarded_allow_ips": list(self.trusted_proxies),
        }


# ---- deadlines: a subclass of uvicorn's HTTP protocol ------------------------------------------------

_TIMEOUT_BODY = b"408 Request Timeout: the request did not arrive in time.\n"
_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\nconnection: close\r\n\r\n" + _TIMEOUT_BODY
)


class _Deadlines:
    """Header and body deadlines over one of uvicorn's HTTP protocols (attributes and methods of
    ``uvicorn.protocols.http.*_impl``: `transport`, `loop`, `cycle`, `flow`, `client`)."""

    header_timeout: float = HEADER_TIMEOUT
    body_timeout: float = BODY_TIMEOUT
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    cycle: Any
    flow: Any
    client: tuple[str, int] | None

    _timer: asyncio.TimerHandle | None = None
    _waiting: str | None = None  # "headers" | "body" | None
    _body_bytes = 0
    #: Bytes this connection read from its client (the tests measure what a refused body cost).
    bytes_read = 0

    def _arm(self, what: str) -> None:
        self._disarm()
        self._waiting, self._body_bytes = what, 0
        delay = self.header_timeout if what == "headers" else self.body_timeout
        self._timer = self.loop.call_later(delay, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._waiting = None, None

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm("headers")  # a connection that says nothing is cut as well

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        self.bytes_read += len(data)
        if self._waiting == "body":
            self._body_bytes += len(data)
            if self._body_bytes >= BODY_STEP:  # the body comes at a useful rate: its deadline starts again
                self._arm("body")
        super().data_received(data)  # type: ignore[misc]

    def _expired(self) -> None:
        what = self._waiting
        self._timer, self._waiting = None, None
        if what is None or self.transport.is_closing():
            return
        cycle = self.cycle
        if what == "body" and getattr(self.flow, "read_paused", False):
            self._arm("body")  # the application has not taken what came yet: not the client's fault
            return
        if what == "headers":
            answer = cycle is None or cycle.response_complete
        else:
            answer = cycle is not None and not cycle.response_started
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the application's receive() answers http.disconnect, its send() is dropped
            cycle.message_event.set()
        client = self.client[0] if self.client else "?"
        _log.info("http.request_timeout", waiting_for=what, client=client, bytes_read=self.bytes_read)
        if answer:
            self.transport.write(_TIMEOUT)
        self.transport.close()


def _httptools_class(base: type) -> type:
    class GuardedHttpToolsProtocol(_Deadlines, base):
        def on_message_begin(self) -> None:
            if self._waiting is None:
                self._arm("headers")
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._arm("body")  # disarmed by on_message_complete, at once when there is no body
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            if self._waiting == "body":
                self._disarm()
            super().on_message_complete()

    return GuardedHttpToolsProtocol


def _h11_class(base: type) -> type:
    import h11

    class GuardedH11Protocol(_Deadlines, base):
        def handle_events(self) -> None:
            super().handle_events()
            theirs = self.conn.their_state
            if theirs is h11.IDLE:
                if self.conn.trailing_data[0] and self._waiting is None:
                    self._arm("headers")  # a request has begun
                elif self._waiting == "body":
                    self._disarm()
            elif theirs is h11.SEND_BODY:
                if self._waiting != "body":
                    self._arm("body")
            elif self._waiting is not None:
                self._disarm()

    return GuardedH11Protocol


def protocol(header_timeout: float = HEADER_TIMEOUT, body_timeout: float = BODY_TIMEOUT) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools when installed, as uvicorn's "auto", else h11) with the deadlines."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        cls = _httptools_class(HttpToolsProtocol)
    except ImportError:  # pragma: no cover - httptools is a dependency of uvicorn[standard]
        from uvicorn.protocols.http.h11_impl import H11Protocol

        cls = _h11_class(H11Protocol)
    return type(cls.__name__, (cls,), {"header_timeout": header_timeout, "body_timeout": body_timeout})


def h11_protocol(header_timeout: float = HEADER_TIMEOUT, body_timeout: float = BODY_TIMEOUT) -> type[asyncio.Protocol]:
    """The same deadlines over uvicorn's h11 protocol (``uvicorn.Config(http=...)``; tests)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    cls = _h11_class(H11Protocol)
    return type(cls.__name__, (cls,), {"header_timeout": header_timeout, "body_timeout": body_timeout})


# ---- the web's body cap: a pure ASGI middleware ------------------------------------------------------

_TOO_LARGE = "413 : requête trop volumineuse (les formulaires de Relais sont petits). / Request too large.\n"


class BodyLimit:
    """Refuses with 413 a request body larger than `max_bytes`, before reading it (see above)."""

    def __init__(self, app: ASGIApp, max_bytes: int = WEB_MAX_BODY) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, scope: dict[str, Any], send: Any, why: str) -> None:
        client = scope.get("client")
        _log.info(
            "http.body_too_large",
            client=client[0] if client else "?",
            path=scope.get("path"),
            limit=self.max_bytes,
            why=why,
        )
        body = _TOO_LARGE.encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),  # the rest of the body is never read
                    (b"x-content-type-options", b"nosniff"),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if length is not None and length.isdigit() and int(length) > self.max_bytes:  # (a bad one: uvicorn's 400)
            await self._refuse(scope, send, "content-length")
            return
        state = {"received": 0, "cut": False, "started": False, "gone": False}

        async def capped_receive() -> dict[str, Any]:
            if state["cut"]:
                return {"type": "http.disconnect"}
            message: dict[str, Any] = await receive()
            if message["type"] == "http.disconnect":
                state["gone"] = True  # the client left, or a deadline cut it (see `protocol`)
            elif message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_bytes:
                    state["cut"] = True
                    if not state["started"]:
                        state["started"] = True
                        await self._refuse(scope, send, "body")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            if state["cut"]:
                return  # the 413 was the answer
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, capped_receive, guarded_send)
        except Exception as e:
            if not (state["cut"] or state["gone"]):
                raise
            # the application saw the client gone (ClientDisconnect): nobody is left to answer
            _log.info("http.client_gone", path=scope.get("path"), error=type(e).__name__, refused=bool(state["cut"]))
