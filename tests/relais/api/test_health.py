"""/healthz and /readyz on every server: the API, the AS2 endpoint, the hosted SFTP server's health port."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from relais import health
from tests.support.waiting import SERVER_START_SECONDS, get_when_up

ROOT = Path(__file__).resolve().parents[3]


def test_readiness_names_what_fails(rt):
    assert health.readiness(rt) == (True, {"store": "ok", "archive": "ok"})
    rt.store.engine.dispose()
    import sqlalchemy as sa

    rt.store.engine = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")  # a store that is down
    ok, checks = health.readiness(rt)
    assert not ok and checks["store"] != "ok" and checks["archive"] == "ok"
    status, body = health.answer("/readyz", lambda: (ok, checks))
    assert status == 503 and json.loads(body)["status"] == "not ready"
    assert health.answer("/healthz", lambda: (ok, checks))[0] == 200  # alive all the same
    assert health.answer("/other", lambda: (ok, checks)) is None


def test_api_and_as2_servers_answer_health_and_readiness(rt):
    from connectors.as2 import receiver
    from connectors.as2.server import ServerThread
    from tests.support.api_server import serving

    with serving(rt) as api:
        assert httpx.get(f"{api.url}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"{api.url}/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    app = receiver.make_app(
        rt.intake, {}, rt.outbound, health=lambda path: health.answer(path, lambda: health.readiness(rt))
    )
    server = ServerThread(app).start(SERVER_START_SECONDS)
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/readyz").json() == {"status": "ready"}
        assert httpx.get(f"{base}/as2").status_code == 200  # the endpoint itself is unchanged
    finally:
        server.stop()


def test_sftp_serve_has_a_health_port(settings, tmp_path):
    home = settings.home
    (home / "partners").mkdir(parents=True)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pub = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    (home / "partners" / "op-a.toml").write_text(f'id = "op-a"\n[hosted]\nauthorized_keys = ["{pub}"]\n')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "relais.cli",
            "--home",
            str(home),
            "sftp",
            "serve",
            "--port",
            "0",
            "--health-port",
            str(free),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        got = get_when_up(f"http://127.0.0.1:{free}/readyz", proc)
        assert got.status_code == 200 and got.json() == {"status": "ready"}
        assert httpx.get(f"http://127.0.0.1:{free}/healthz").json() == {"status": "ok"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
