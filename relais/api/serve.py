"""Serving the API with uvicorn: in the foreground (`relais api serve`) or in a thread (tests, benchmarks).

Both servers (this one and relais/web/serve.py) cut a client that does not send its headers or its body
in time, and believe ``X-Forwarded-For`` only from RELAIS_TRUSTED_PROXIES (relais/httpguard.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import uvicorn

from connectors import uvicorn_thread
from relais.api.app import create_app
from relais.api.config import ApiConfig
from relais.compose import Runtime
from relais.httpguard import EdgeSettings


class Server(uvicorn_thread.Server):
    """connectors/uvicorn_thread.py's server (it knows its port once started), stopping the uploads'
    processor when it ends."""

    def run(self, sockets: Any = None) -> None:
        try:
            super().run(sockets)
        finally:  # the uploads' processor (relais/api/worker.py): the flow in progress finishes
            processor = _processor(self.config.app)
            if processor is not None:
                processor.stop()


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
    served = uvicorn.Config(
        create_app(rt, config),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
        **EdgeSettings.from_env().uvicorn_options(),  # deadlines, trusted proxies
    )
    return Server(served, on_ready=on_ready)


def serve(
    rt: Runtime,
    host: str,
    port: int,
    on_ready: Callable[[Server], None] | None = None,
    config: ApiConfig | None = None,
) -> None:
    """Serve until interrupted (SIGINT / SIGTERM)."""
    server(rt, host, port, on_ready, config).run()


class ServerThread(uvicorn_thread.ServerThread):
    """The API served in a background thread on 127.0.0.1: ``with ServerThread(rt) as s: s.url``."""

    def __init__(self, rt: Runtime, host: str = "127.0.0.1", port: int = 0, config: ApiConfig | None = None) -> None:
        super().__init__(server(rt, host, port, config=config), name="relais-api")
