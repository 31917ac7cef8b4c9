"""Serving the API with uvicorn: in the foreground (`relais api serve`) or in a thread (tests, benchmarks).

Both servers (this one and relais/web/serve.py) cut a client that does not send its headers or its body
in time, and believe ``X-Forwarded-For`` only from RELAIS_TRUSTED_PROXIES (relais/httpguard.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import uvicorn

from relais.api.app import create_app
from relais.api.config import ApiConfig
from relais.compose import Runtime
from relais.httpguard import EdgeSettings


class Server(uvicorn.Server):
    """A uvicorn server that knows the port it listens on (port 0: a free one) once started."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[Server], None] | None = None) -> None:
        super().__init__(config)
        self.on_ready = on_ready
        self.port: int | None = None

    def run(self, sockets: Any = None) -> None:
        try:
            super().run(sockets)
        finally:  # the uploads' processor (relais/api/worker.py): the flow in progress finishes
            processor = _processor(self.config.app)
            if processor is not None:
                processor.stop()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.servers and self.servers[0].sockets:
            self.port = self.servers[0].sockets[0].getsockname()[1]
        if self.started and self.on_ready is not None:
            self.on_ready(self)


def _processor(app: Any) -> Any:
    """The uploads' processor of the FastAPI application, under the ASGI wrappers (BodyLimit...)."""
    while app is not None:
        state = getattr(app, "state", None)
        if state is not None:
            return getattr(state, "processor", None)
        app = getattr(app, "app", None)
    return None


def server(
    rt: Runtime,
    host: str = "127.0.0.1",
    port: int = 8091,
    on_ready: Callable[[Server], None] | None = None,
    config: ApiConfig | None = None,
) -> Server:
    uvicorn_config = uvicorn.Config(
        create_app(rt, config),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
        **EdgeSettings.from_env().uvicorn_options(),  # deadlines, trusted proxies
    )
    return Server(uvicorn_config, on_ready=on_ready)


def serve(
    rt: Runtime,
    host: str,
    port: int,
    on_ready: Callable[[Server], None] | None = None,
    config: ApiConfig | None = None,
) -> None:
    """Serve until interrupted (SIGINT / SIGTERM)."""
    server(rt, host, port, on_ready, config).run()


class ServerThread:
    """The API served in a background thread on 127.0.0.1: ``with ServerThread(rt) as s: s.url``."""

    def __init__(self, rt: Runtime, host: str = "127.0.0.1", port: int = 0, config: ApiConfig | None = None) -> None:
        self._ready = threading.Event()
        self.server = server(rt, host, port, on_ready=lambda _s: self._ready.set(), config=config)
        self.host = host
        self._thread = threading.Thread(target=self.server.run, name="relais-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server.port}"

    def start(self, timeout: float = 15.0) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(timeout) or self.server.port is None:
            self.stop()
            raise RuntimeError("the API server did not start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(10)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
