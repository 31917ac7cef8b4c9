"""``/metrics`` of the web application for Prometheus, on an address of its own.

On the web port, ``/metrics`` is served only to a logged-in ops user (relais/web/routes/health.py). A scraper
has no session: set RELAIS_WEB_METRICS_ADDRESS (``127.0.0.1:9108``, ``[::1]:9108``, ``0.0.0.0:9108``)
and `relais web serve` also starts this tiny server, which answers ``GET /metrics`` (and nothing else:
404) on that address, in a thread of the same process. Whoever can reach the address reads the
platform-wide counts: bind it to loopback or to a network only Prometheus reaches
(docs/operations.md).

>>> address("127.0.0.1:9108"), address("[::1]:9108"), address(" ")
(('127.0.0.1', 9108), ('::1', 9108), None)
>>> address("9108")
Traceback (most recent call last):
...
ValueError: RELAIS_WEB_METRICS_ADDRESS: '9108' is not host:port
"""

from __future__ import annotations

import threading
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relais import metrics
from relais.api.serve import Server
from relais.compose import Runtime
from relais.web.auth.headers import SecurityHeaders


def address(value: str | None) -> tuple[str, int] | None:
    """(host, port) of RELAIS_WEB_METRICS_ADDRESS; None when unset or empty."""
    if value is None or not value.strip():
        return None
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"RELAIS_WEB_METRICS_ADDRESS: {value!r} is not host:port")
    return host.strip("[]"), int(port)


def app(rt: Runtime) -> Any:
    def scrape(_request: Request) -> Response:
        body, content_type = metrics.render(rt, pool=False)  # the store's, as /metrics on the web port
        return Response(body, media_type=content_type)

    return SecurityHeaders(Starlette(routes=[Route("/metrics", scrape, methods=["GET"])]))


class MetricsThread:
    """The metrics server in a background thread of the web server's process."""

    def __init__(self, rt: Runtime, host: str, port: int) -> None:
        self._ready = threading.Event()
        config = uvicorn.Config(app(rt), host=host, port=port, log_level="warning", access_log=False, lifespan="off")
        self.server = Server(config, on_ready=lambda _s: self._ready.set())
        self.host = host
        self._thread = threading.Thread(target=self.server.run, name="relais-web-metrics", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.server.port}"

    def start(self, timeout: float = 15.0) -> MetricsThread:
        self._thread.start()
        if not self._ready.wait(timeout) or self.server.port is None:
            self.stop()
            raise RuntimeError(f"the metrics server did not start on {self.host}")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(10)
