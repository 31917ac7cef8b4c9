"""Liveness and readiness of Relais's servers (`relais as2|sftp|api serve`).

``/healthz`` (liveness) answers 200 while the process serves. ``/readyz`` (readiness) answers 200
only when the store answers a query and the archive answers a lookup, else 503: a load balancer or an
orchestrator stops sending traffic to a server that cannot record what it receives. Its callers are
anonymous, so the answer says only ``ready`` or ``not ready``; what failed (an exception's text may name
hosts, paths or users) goes to the log (``health.not_ready``, with each check's result), for the web
server (relais/web) as for the others. The SFTP server has no HTTP side: `HealthServer` serves the two
paths on a port of its own (``relais sftp serve --health-port``).
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable

import sqlalchemy as sa

from relais import log
from relais.compose import Runtime

_log = log.get("relais.health")
Checks = dict[str, str]


def readiness(rt: Runtime) -> tuple[bool, Checks]:
    """(ready, {"store": "ok" | error, "archive": "ok" | error})."""
    checks: Checks = {}
    try:
        with rt.store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["store"] = "ok"
    except Exception as e:  # reported, never raised
        checks["store"] = f"{type(e).__name__}: {e}"[:300]
    try:
        rt.archive.exists("0" * 64)
        checks["archive"] = "ok"
    except Exception as e:
        checks["archive"] = f"{type(e).__name__}: {e}"[:300]
    return all(v == "ok" for v in checks.values()), checks


def answer(path: str, ready: Callable[[], tuple[bool, Checks]]) -> tuple[int, bytes] | None:
    """The (status, JSON body) of a health path; None for any other path. The body of ``/readyz`` is only
    ``{"status": "ready"}`` or ``{"status": "not ready"}``: the failed checks are logged, never answered."""
    if path == "/healthz":
        return 200, b'{"status": "ok"}\n'
    if path == "/readyz":
        ok, checks = ready()
        if not ok:
            _log.warning("health.not_ready", **checks)
        return (200 if ok else 503), (json.dumps({"status": "ready" if ok else "not ready"}) + "\n").encode()
    return None


class HealthServer:
    """``/healthz`` and ``/readyz`` over plain HTTP on `host`:`port` (0: a free port), in a daemon thread."""

    def __init__(self, ready: Callable[[], tuple[bool, Checks]], host: str = "127.0.0.1", port: int = 0) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the http.server API
                found = answer(self.path.split("?", 1)[0], ready) or (404, b'{"error": "not found"}\n')
                self.send_response(found[0])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(found[1])))
                self.end_headers()
                self.wfile.write(found[1])

            def log_message(self, format: str, *args: object) -> None:  # quiet
                return None

        self.httpd = http.server.ThreadingHTTPServer((host, port), Handler)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="relais-health", daemon=True)

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
