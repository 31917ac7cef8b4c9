"""Helpers for the real-Airflow-stack tests (tests/e2e/test_airflow_stack.py, tests/e2e/test_airflow_celery.py).

The stack is started and stopped with the README's own helper, scripts/airflow.sh, in a private
AIRFLOW_HOME and RELAIS_HOME; files are dropped as an SFTP client would (temporary name, then
renamed); the checks read Relais's store and the folders it writes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.domain.model import FlowStatus
from flows.returns import report as returnflow
from flows.store import OutboxStatus
from flows.store import tables as t
from relais.compose import Runtime
from relais.settings import Settings
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
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
    """The stack started by scripts/airflow.sh (with its Celery workers, if any); stopped by session, nothing left
    running."""
    run_dir = Path(env["AIRFLOW_HOME"]) / "run"
    started = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=300)
    pgid_file = run_dir / "stack.pgid"
    pgid = int(pgid_file.read_text()) if pgid_file.exists() else None
    try:
        assert started.returncode == 0, f"{started.stdout}\n{started.stderr}\n{_logs(run_dir)}"
        yield run_dir
    finally:
        # Celery workers (scripts/airflow.sh workers, or start with RELAIS_CELERY_WORKERS): a session each.
        sessions = {"the stack": pgid} | {p.stem: int(p.read_text()) for p in run_dir.glob("worker-*.pid")}
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120)
        leftovers = {}
        for what, sid in sessions.items():
            if sid is not None and (left := _alive(sid)):
                for pid in left:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                leftovers[what] = (sid, left)
        if leftovers:
            pytest.fail(f"processes still running after stop (session, pids): {leftovers}")


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


def _directory(env: dict[str, str], work: Path, tag: str) -> list:
    """A sample directory of recipients, imported into the stack's store; the recipients."""
    import json

    from flows.directory import importer as directory
    from relais import generate as gen

    recipients = gen.sample_directory()
    work.mkdir(parents=True, exist_ok=True)
    directory_file = work / "annuaire.json"
    directory_file.write_text(json.dumps(gen.directory_document(recipients, tag)))
    rt = Runtime.open(_home(env))
    try:
        directory.import_file(rt.store, directory_file)
    finally:
        rt.close()
    return recipients


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

        def all_closed() -> bool:
            flows = rt.store.list_flows(limit=10_000)
            closed = [f for f in flows if f.status.is_final or f.parked]
            return len(flows) >= expected_flows and len(closed) == len(flows) and not rt.store.pending_outbox()

        with contextlib.suppress(AssertionError):
            wait_until(all_closed, timeout, "every flow closed", every=1)
            return
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
                sa.select(t.outbox.c.kind, t.outbox.c.flow_id, t.outbox.c.invoice_id, t.outbox.c.status).where(
                    t.outbox.c.status != "superseded"  # an earlier run's rows, never sent
                )
            ).all()
        returns = [r.flow_id for r in rows if r.kind == "return" and r.flow_id]  # status return flows: no flow
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
