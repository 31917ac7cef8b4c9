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

import importlib.util
import subprocess
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

if importlib.util.find_spec("airflow") is None:
    pytest.skip("apache-airflow is not installed (pip install -e '.[airflow]')", allow_module_level=True)

from flows.domain.model import Channel, FlowStatus
from flows.pipeline.intake import Arrival
from flows.store import tables as t
from relais import generate as gen
from relais.compose import Runtime
from tests.conftest import PG_URL, require_pg
from tests.support.airflow_stack_support import (
    VENV_BIN,
    _check_exactly_once,
    _directory,
    _drop,
    _home,
    _logs,
    _stack,
    _stack_env,
    _task_states,
    _wait_closed,
)
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.airflow, pytest.mark.xdist_group("airflow")]


def _prepare(env: dict[str, str], work: Path) -> list[Path]:
    """Directory imported; the files to drop: zips and a tar.gz of 100+ invoices, one-invoice files."""
    recipients = _directory(env, work, "stack-1")
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


def _check_airflow_side(airflow_db_url: str, run_dir: Path) -> None:
    # A task whose flows are closed may still be reporting its end to Airflow: wait for that (bounded).
    def process_tasks() -> list:
        return [s for s in _task_states(airflow_db_url) if s[0] == "process"]

    wait_until(
        lambda: all(s[1] not in ("running", "queued", "scheduled") for s in process_tasks()),
        120,
        "every process task to end",
        every=1,
    )
    states = _task_states(airflow_db_url)
    process = [s for s in states if s[0] == "process"]
    assert process, f"no process task ran\n{_logs(run_dir)}"
    assert all(state == "success" for _, state, _ in process), f"{process}\n{_task_errors(run_dir)}\n{_logs(run_dir)}"
    assert all(label and " docs, " in label for _, _, label in process), process  # labelled groups
    assert all(
        state in ("success", "running", "queued", "scheduled", None) for task, state, _ in states if task == "intake"
    ), states


def _task_errors(run_dir: Path) -> str:
    """The warnings and errors the tasks logged (AIRFLOW_HOME/logs), for a failure's message."""
    lines = []
    for log in sorted((run_dir.parent / "logs").rglob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if '"level":"error"' in line or '"level":"warning"' in line or "Traceback" in line:
                lines.append(f"{log.relative_to(run_dir.parent)}: {line[:600]}")
    return "\n".join(lines[-40:])


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

        # An incident: the archive lost the bytes of a recorded flow (an internal failure, not the sender's
        # fault). Recorded here, its object moved aside first, so that no DAG run can take it before. (With no
        # directory imported the DAG's intake refuses to start instead: tests/e2e/test_airflow.py.)
        [late] = gen.write_batch(
            tmp_path / "gen" / "e", "ubl", 12, 2, batch="zip", seed=25, start=4001, recipients=gen.sample_directory()
        )
        rt = Runtime.open(_home(env), migrate=False)
        try:
            obj = rt.archive.put_bytes(late.read_bytes())
            stored = rt.settings.archive_dir / "objects" / obj.sha256[:2] / obj.sha256[2:4] / obj.sha256
            lost = stored.rename(stored.with_name(obj.sha256 + ".lost"))
            rt.intake.ingest_archived(Arrival("op-a", Channel.FOLDER, late.name), obj)
        finally:
            rt.close()
        _wait_closed(env, len(files) + 1, run_dir, timeout=180)  # parked counts as settled
        rt = Runtime.open(_home(env), migrate=False)
        try:
            [flow] = rt.store.list_flows(status=[FlowStatus.IN_INCIDENTE])
            assert flow.parked and flow.incidents == 2  # tried, retried once, parked
            [report] = rt.settings.outbox_dir(flow.partner).glob(f"CR_{flow.id}_*.xml")
            assert report.name == f"CR_{flow.id}_IN_INCIDENTE.xml"  # the partner is told
            assert b"RLS-T99" in report.read_bytes()
            assert str(rt.settings.archive_dir).encode() not in report.read_bytes()  # no server path, no exception
        finally:
            rt.close()

        # the task reports its failure just after the flow is parked
        def failed_tasks() -> list:
            return [s for s in _task_states(airflow_db) if s[0] == "process" and s[1] == "failed"]

        wait_until(lambda: len(failed_tasks()) >= 2, 60, "two failed process tasks", every=0.5)
        failed = failed_tasks()
        assert len(failed) == 2, "each run whose group held the incident failed its task"
        assert all(label.startswith(flow.id) for _, _, label in failed)

        # Ops restore the archived object and reprocess: integrated, every invoice delivered once.
        lost.rename(stored)
        cli = [str(VENV_BIN / "relais"), "--home", env["RELAIS_HOME"]]
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
            # the running DAG may have taken the requeued flow itself
            wait_until(
                lambda: (f := rt.store.get_flow(flow.id)) is None or f.status.is_final, 60, "the flow's end", every=0.5
            )
            again = rt.store.get_flow(flow.id)
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
                r[0]
                for r in conn.execute(
                    sa.select(t.outbox.c.invoice_id).where(
                        t.outbox.c.kind == "delivery",
                        t.outbox.c.status != "superseded",  # earlier runs': never sent
                    )
                )
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
