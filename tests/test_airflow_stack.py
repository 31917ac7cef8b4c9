"""The DAG under a real Airflow 3 stack: api-server + scheduler + dag-processor, LocalExecutor.

Started with the README's own helper (`scripts/airflow.sh start`) in a private AIRFLOW_HOME,
every server on 127.0.0.1, and stopped by process group. Files are dropped while the
stack runs (the continuous schedule takes them); the test then checks what production
needs: no incident, every flow closed with exactly one return flow, every accepted
invoice delivered exactly once, labelled mapped tasks, and no process left behind (the stack
is one session: its components' process groups and each task's own group).

- SQLite (Airflow's metadata DB and Relais's store), with an incident phase: a flow
  that fails internally fails its Airflow task, is retried, parked with an
  IN_INCIDENTE return flow, then `relais flows reprocess` integrates it.
- PostgreSQL for both, parallelism 4.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

if importlib.util.find_spec("airflow") is None:
    pytest.skip("apache-airflow is not installed (pip install -e '.[airflow]')", allow_module_level=True)

from flows import directory, returnflow  # noqa: E402
from flows import tables as t  # noqa: E402
from flows.model import FlowStatus  # noqa: E402
from flows.store import OutboxStatus  # noqa: E402
from relais import generate as gen  # noqa: E402
from relais.compose import Runtime  # noqa: E402
from relais.settings import Settings  # noqa: E402
from tests.conftest import PG_URL, require_pg  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.airflow, pytest.mark.xdist_group("airflow")]

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "airflow.sh"
VENV_BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stack_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW", "RELAIS_"))}
    env.update(
        AIRFLOW_HOME=str(tmp / "airflow"),
        RELAIS_HOME=str(tmp / "relais"),
        RELAIS_VENV_BIN=str(VENV_BIN),
        AIRFLOW__API__PORT=str(_free_port()),
        RELAIS_INTAKE_WAIT_SECONDS="5",
        RELAIS_LOG_LEVEL="INFO",
        PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}",
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def _stack(env: dict[str, str]) -> Iterator[Path]:
    """The stack started by scripts/airflow.sh; stopped by process group, nothing left running."""
    run_dir = Path(env["AIRFLOW_HOME"]) / "run"
    started = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=300)
    pgid_file = run_dir / "stack.pgid"
    pgid = int(pgid_file.read_text()) if pgid_file.exists() else None
    try:
        assert started.returncode == 0, f"{started.stdout}\n{started.stderr}\n{_logs(run_dir)}"
        yield run_dir
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120)
        if pgid is not None and (left := _alive(pgid)):
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            pytest.fail(f"processes {left} of the stack's session {pgid} were still running after stop")


def _alive(sid: int) -> list[int]:
    """Live members of the stack's session: its process groups, task processes included (zombies, which a
    non-reaping init may leave, do not count)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                found.append(int(stat.parent.name))
    return found


def _logs(run_dir: Path) -> str:
    out = []
    for log in sorted(run_dir.glob("*.log")):
        out.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-25:]))
    return "\n".join(out)


def _home(env: dict[str, str]) -> Settings:
    return Settings.from_env(
        env["RELAIS_HOME"],
        database_url=env.get("RELAIS_DATABASE_URL") or None,
        database_schema=env.get("RELAIS_DATABASE_SCHEMA") or None,
    )


def _prepare(env: dict[str, str], work: Path) -> list[Path]:
    """Directory imported; the files to drop: zips and a tar.gz of 100+ invoices, one-invoice files."""
    recipients = gen.sample_directory()
    work.mkdir(parents=True, exist_ok=True)
    directory_file = work / "annuaire.json"
    directory_file.write_text(json.dumps(gen.directory_document(recipients, "stack-1")))
    rt = Runtime.open(_home(env))
    try:
        directory.import_file(rt.store, directory_file)
    finally:
        rt.close()
    files = gen.write_batch(
        work / "a",
        "ubl",
        120,
        3,
        batch="zip",
        recipients=recipients,
        seed=21,
        start=1,
        invalid_ratio=0.05,
        misrouted_ratio=0.1,
    )
    files += gen.write_batch(
        work / "b", "cii", 110, 3, batch="tar.gz", recipients=recipients, seed=22, start=1001, misrouted_ratio=0.1
    )
    files += gen.write_batch(work / "c", "ubl", 30, 2, batch="none", recipients=recipients, seed=23, start=2001)
    files += gen.write_batch(work / "d", "cii", 10, 2, batch="none", recipients=recipients, seed=24, start=3001)
    return files


def _drop(env: dict[str, str], files: list[Path]) -> None:
    inbox = {
        p: Path(env["RELAIS_HOME"]) / "dropzones" / ("op-a" if i % 2 else "op-b") / "in" for i, p in enumerate(files)
    }
    for path, folder in inbox.items():  # written under a temporary name, then renamed: as an SFTP client does
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{path.name}.part"
        tmp.write_bytes(path.read_bytes())
        tmp.rename(folder / path.name)


def _wait_closed(env: dict[str, str], expected_flows: int, run_dir: Path, timeout: float = 420) -> None:
    rt = Runtime.open(_home(env), migrate=False)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            flows = rt.store.list_flows(limit=10_000)
            closed = [f for f in flows if f.status.is_final or f.parked]
            if len(flows) >= expected_flows and len(closed) == len(flows) and not rt.store.pending_outbox():
                return
            time.sleep(1)
        counts = rt.store.status_counts()
    finally:
        rt.close()
    pytest.fail(f"flows not all closed after {timeout} s: {counts}\n{_logs(run_dir)}")


def _check_exactly_once(env: dict[str, str]) -> dict[str, int]:
    """No incident; one return flow per flow (outbox and out/ folder); each accepted invoice delivered once."""
    rt = Runtime.open(_home(env), migrate=False)
    try:
        flows = rt.store.list_flows(limit=10_000)
        assert not [f.id for f in flows if f.status is FlowStatus.IN_INCIDENTE]
        with rt.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.outbox.c.kind, t.outbox.c.flow_id, t.outbox.c.invoice_id, t.outbox.c.status)
            ).all()
        returns = [r.flow_id for r in rows if r.kind == "return"]
        assert sorted(returns) == sorted(f.id for f in flows), "exactly one return flow per flow"
        assert all(r.status == OutboxStatus.SENT for r in rows)
        for f in flows:
            written = list(rt.settings.outbox_dir(f.partner).glob(f"CR_{f.id}_*.xml"))
            assert [p.name for p in written] == [returnflow.file_name(f)]
            returnflow.validate(written[0].read_bytes())
        accepted = [inv for f in flows for inv in rt.store.iter_invoices(f.id) if not inv.status.is_rejected]
        deliveries = [r.invoice_id for r in rows if r.kind == "delivery"]
        assert len(deliveries) == len(set(deliveries)) == len(accepted)
        assert sorted(deliveries) == sorted(inv.id for inv in accepted)
        on_disk = [p for p in (Path(env["RELAIS_HOME"]) / "delivery").rglob("*") if p.is_file()]
        assert len(on_disk) == len(accepted) and not [p for p in on_disk if p.name.endswith(".part")]
        assert all(Path(inv.delivered_to or "").is_file() for inv in accepted)
        return {"flows": len(flows), "invoices": sum(f.invoice_count for f in flows), "delivered": len(accepted)}
    finally:
        rt.close()


def _task_states(airflow_db_url: str) -> list[tuple[str, str, str | None]]:
    eng = sa.create_engine(airflow_db_url)
    try:
        with eng.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    sa.text(
                        "SELECT task_id, state, rendered_map_index FROM task_instance WHERE dag_id = 'relais_flows'"
                    )
                )
            ]
    finally:
        eng.dispose()


def _check_airflow_side(airflow_db_url: str, run_dir: Path) -> None:
    states = _task_states(airflow_db_url)
    process = [s for s in states if s[0] == "process"]
    assert process, f"no process task ran\n{_logs(run_dir)}"
    assert all(state == "success" for _, state, _ in process), process
    assert all(label and " docs, " in label for _, _, label in process), process  # labelled groups
    assert all(
        state in ("success", "running", "queued", "scheduled", None) for task, state, _ in states if task == "intake"
    ), states


def test_real_scheduler_sqlite_batches_and_single_files_then_an_incident_parked_and_reprocessed(tmp_path):
    env = _stack_env(tmp_path, RELAIS_INCIDENT_RETRIES="1", RELAIS_INCIDENT_BACKOFF_SECONDS="1")
    files = _prepare(env, tmp_path / "gen")
    with _stack(env) as run_dir:
        _drop(env, files)
        _wait_closed(env, len(files), run_dir)
        figures = _check_exactly_once(env)
        assert figures["flows"] == len(files) and figures["invoices"] == 120 + 110 + 30 + 10
        airflow_db = f"sqlite:///{Path(env['AIRFLOW_HOME']) / 'airflow.db'}"
        _check_airflow_side(airflow_db, run_dir)

        # An incident: the directory vanishes (an internal failure, not the sender's fault).
        rt = Runtime.open(_home(env), migrate=False)
        try:
            with rt.store.engine.begin() as conn:
                for table in (t.services, t.structures, t.directory_versions):
                    conn.execute(sa.delete(table))
        finally:
            rt.close()
        [late] = gen.write_batch(
            tmp_path / "gen" / "e", "ubl", 12, 2, batch="zip", seed=25, start=4001, recipients=gen.sample_directory()
        )
        _drop(env, [late])
        _wait_closed(env, len(files) + 1, run_dir, timeout=180)  # parked counts as settled
        rt = Runtime.open(_home(env), migrate=False)
        try:
            [flow] = rt.store.list_flows(status=[FlowStatus.IN_INCIDENTE])
            assert flow.parked and flow.incidents == 2  # tried, retried once, parked
            [report] = rt.settings.outbox_dir(flow.partner).glob(f"CR_{flow.id}_*.xml")
            assert report.name == f"CR_{flow.id}_IN_INCIDENTE.xml"  # the partner is told
            assert b"RLS-T99" in report.read_bytes()
        finally:
            rt.close()
        deadline = time.monotonic() + 60  # the task reports its failure just after the flow is parked
        while (
            len(failed := [s for s in _task_states(airflow_db) if s[0] == "process" and s[1] == "failed"]) < 2
            and time.monotonic() < deadline
        ):
            time.sleep(0.5)
        assert len(failed) == 2, "each run whose group held the incident failed its task"
        assert all(label.startswith(flow.id) for _, _, label in failed)

        # Ops fix the directory and reprocess: integrated, every invoice delivered once.
        (tmp_path / "gen" / "annuaire.json").write_text(
            json.dumps(gen.directory_document(gen.sample_directory(), "stack-2"))
        )
        cli = [str(VENV_BIN / "relais"), "--home", env["RELAIS_HOME"]]
        done = subprocess.run(
            [*cli, "directory", "import", str(tmp_path / "gen" / "annuaire.json")],
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        done = subprocess.run(
            [*cli, "flows", "reprocess", "--status", "IN_INCIDENTE"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        rt = Runtime.open(_home(env), migrate=False)
        try:
            deadline = time.monotonic() + 60  # the running DAG may have taken the requeued flow itself
            while (again := rt.store.get_flow(flow.id)) and not again.status.is_final and time.monotonic() < deadline:
                time.sleep(0.5)
            assert again is not None and again.status is FlowStatus.IN_INTEGRE
            assert sorted(p.name for p in rt.settings.outbox_dir(flow.partner).glob(f"CR_{flow.id}_*.xml")) == [
                f"CR_{flow.id}_IN_INCIDENTE.xml",
                f"CR_{flow.id}_IN_INTEGRE.xml",
            ]
        finally:
            rt.close()
        _check_exactly_once_after_reprocess(env)


def _check_exactly_once_after_reprocess(env: dict[str, str]) -> None:
    rt = Runtime.open(_home(env), migrate=False)
    try:
        with rt.store.engine.connect() as conn:
            deliveries = [
                r[0] for r in conn.execute(sa.select(t.outbox.c.invoice_id).where(t.outbox.c.kind == "delivery"))
            ]
        assert len(deliveries) == len(set(deliveries))
        on_disk = [p for p in (Path(env["RELAIS_HOME"]) / "delivery").rglob("*") if p.is_file()]
        assert len(on_disk) == len(deliveries)
    finally:
        rt.close()


@pytest.fixture
def pg_databases():
    """A fresh PostgreSQL database for Airflow's metadata and a private schema of `test` for Relais."""
    require_pg()
    name = f"relais_af_{uuid.uuid4().hex[:10]}"
    schema = f"relais_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}", schema
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.mark.postgres
def test_real_scheduler_postgresql_metadata_and_store_parallel_tasks(tmp_path, pg_databases):
    airflow_db, schema = pg_databases
    env = _stack_env(
        tmp_path,
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=airflow_db,
        AIRFLOW__CORE__PARALLELISM="4",
        RELAIS_DATABASE_URL=PG_URL,
        RELAIS_DATABASE_SCHEMA=schema,
    )
    files = _prepare(env, tmp_path / "gen")
    with _stack(env) as run_dir:
        _drop(env, files)
        _wait_closed(env, len(files), run_dir)
        figures = _check_exactly_once(env)
        assert figures["flows"] == len(files)
        _check_airflow_side(airflow_db, run_dir)
        states = _task_states(airflow_db)
        assert len([s for s in states if s[0] == "process"]) >= 2  # groups ran as parallel mapped tasks
