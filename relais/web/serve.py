"""Serving the web application with uvicorn: in the foreground (`relais web serve`) or in a thread
(tests). The session secret comes from RELAIS_WEB_SECRET, else from ``<RELAIS_HOME>/web-secret``
(created once, mode 0600), so sessions survive a restart and several servers can share it.

The application is served behind `relais.httpguard.BodyLimit` (a body over RELAIS_WEB_MAX_BODY is a 413
before it is read), with the deadlines and the trusted proxies of both servers (relais/httpguard.py)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

import uvicorn

from connectors import uvicorn_thread
from relais.api.serve import Server
from relais.compose import Runtime
from relais.httpguard import BodyLimit, EdgeSettings
from relais.web.app import create_app
from relais.web.auth.headers import secure_cookies
from relais.web.auth.oidc import OidcConfig


def session_secret(home: Path) -> str:
    if os.environ.get("RELAIS_WEB_SECRET"):
        return os.environ["RELAIS_WEB_SECRET"]
    path = home / "web-secret"
    if not path.is_file():
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def server(
    rt: Runtime, host: str = "127.0.0.1", port: int = 8090, on_ready: Callable[[Server], None] | None = None
) -> Server:
    app = create_app(
        rt,
        secret=session_secret(rt.settings.home),
        secure_cookies=secure_cookies(host),  # RELAIS_WEB_SECURE_COOKIES, else on but on loopback
        oidc=OidcConfig.from_env(),
        charts_seconds=float(os.environ.get("RELAIS_WEB_CHARTS_SECONDS") or 30),
    )
    edge = EdgeSettings.from_env()
    config = uvicorn.Config(
        BodyLimit(app, edge.web_max_body),  # outermost: refused before anything reads the body
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
        **edge.uvicorn_options(),  # deadlines, trusted proxies
    )
    return Server(config, on_ready=on_ready)


class WebThread(uvicorn_thread.ServerThread):
    """The web application served in a background thread: ``with WebThread(rt) as w: w.url``."""

    def __init__(self, rt: Runtime, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(server(rt, host, port), name="relais-web")
