"""The DAG under Airflow's CeleryExecutor: api-server + scheduler + dag-processor + two Celery workers.

Started with the README's own helper (`RELAIS_AIRFLOW_EXECUTOR=CeleryExecutor RELAIS_CELERY_WORKERS=2
scripts/airflow.sh start`): Airflow's metadata DB is a fresh PostgreSQL database (also Celery's result
backend, `db+postgresql+psycopg://`), the broker Redis on a Redis db number and a Celery queue of this
run's own (so that concurrent runs never share tasks), Relais's store a private schema of PostgreSQL
`test`. Each worker runs one task at a time, so the two groups of a run go to the two workers.

A mix of batches (zips and tar.gz of several invoices, with invalid and misrouted invoices) and
one-invoice files is dropped into two partners' drop zones while the stack runs; once every flow is
closed the test checks that nothing was processed, delivered or returned twice: each dropped file is
exactly one flow, in a final state, of the partner it was dropped for; each accepted invoice has exactly
one sent delivery row and one file in delivery/; each flow exactly one integration report (CR_*.xml) in
its partner's out/ folder; every task instance ran on this run's queue and both workers executed tasks
(each task instance's Celery task id is in exactly one worker's log); nothing is left running after stop.

Runtime: 50-60 s on 2 cores (measured 49 s, 57 s): start-up with migrations and workers ~25 s, the files
~15 s, stop ~10 s.
"""

from __future__ import annotations

import importlib.util
import random
import re
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

if importlib.util.find_spec("airflow") is None or importlib.util.find_spec("airflow.providers.celery") is None:
    pytest.skip(
        "apache-airflow and apache-airflow-providers-celery are not installed (pip install -e '.[airflow]')",
        allow_module_level=True,
    )

from relais import generate as gen
from relais.compose import Runtime
from tests.conftest import PG_URL, require_pg
from tests.support.airflow_stack_support import (
    _check_exactly_once,
    _directory,
    _drop,
    _home,
    _logs,
    _stack,
    _stack_env,
    _wait_closed,
)
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.airflow, pytest.mark.postgres, pytest.mark.xdist_group("airflow")]

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def _require_redis() -> None:
    import redis

    try:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=2).ping()
    except Exception as e:
        pytest.skip(f"Redis not reachable on {REDIS_HOST}:{REDIS_PORT}: {type(e).__name__}: {e}")


@pytest.fixture
def celery_backing():
    """A fresh PostgreSQL database for Airflow (and Celery's results), a private schema of `test` for Relais,
    and a Redis db number plus a queue name of this run's own; the queue's Redis keys removed afterwards."""
    require_pg()
    _require_redis()
    import redis

    name = f"relais_afc_{uuid.uuid4().hex[:10]}"
    schema = f"relais_t_{uuid.uuid4().hex[:12]}"
    queue = f"relais-{uuid.uuid4().hex[:12]}"
    db = random.randint(1, 15)
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield {
            "airflow_db": PG_URL.rsplit("/", 1)[0] + f"/{name}",
            "schema": schema,
            "broker": f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}",
            "queue": queue,
        }
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
        r = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
        for key in r.scan_iter(match=f"*{queue}*"):
            r.delete(key)


def _prepare(env: dict[str, str], work: Path) -> list[Path]:
    """Directory imported; the files: 2 zips and 2 tar.gz (UBL and CII, with invalid and misrouted invoices),
    16 one-invoice files (one invalid, some misrouted)."""
    recipients = _directory(env, work, "celery-1")
    common = {"recipients": recipients}
    files = gen.write_batch(
        work / "a", "ubl", 30, 3, batch="zip", seed=31, start=1, invalid_ratio=0.1, misrouted_ratio=0.1, **common
    )
    files += gen.write_batch(work / "b", "cii", 25, 2, batch="zip", seed=32, start=101, invalid_ratio=0.1, **common)
    files += gen.write_batch(
        work / "c", "cii", 25, 3, batch="tar.gz", seed=33, start=201, misrouted_ratio=0.1, **common
    )
    files += gen.write_batch(
        work / "d", "ubl", 20, 2, batch="tar.gz", seed=34, start=301, invalid_ratio=0.1, misrouted_ratio=0.1, **common
    )
    files += gen.write_batch(work / "e", "ubl", 10, 2, batch="none", seed=35, start=401, invalid_ratio=0.1, **common)
    files += gen.write_batch(work / "f", "cii", 6, 2, batch="none", seed=36, start=501, misrouted_ratio=0.2, **common)
    return files


def _task_instances(airflow_db_url: str) -> list[sa.Row]:
    eng = sa.create_engine(airflow_db_url)
    try:
        with eng.connect() as conn:
            return list(
                conn.execute(
                    sa.text(
                        "SELECT task_id, state, rendered_map_index, queue, external_executor_id, run_id"
                        " FROM task_instance WHERE dag_id = 'relais_flows'"
                    )
                )
            )
    finally:
        eng.dispose()


def test_celery_executor_two_workers_batches_and_single_files_exactly_once(tmp_path, celery_backing):
    b = celery_backing
    env = _stack_env(
        tmp_path,
        RELAIS_AIRFLOW_EXECUTOR="CeleryExecutor",
        RELAIS_CELERY_WORKERS="2",
        RELAIS_CELERY_BROKER=b["broker"],
        AIRFLOW__OPERATORS__DEFAULT_QUEUE=b["queue"],
        AIRFLOW__CELERY__WORKER_CONCURRENCY="1",  # one task at a time per worker: a run's groups use both
        AIRFLOW__CORE__PARALLELISM="4",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=b["airflow_db"],
        RELAIS_DATABASE_URL=PG_URL,
        RELAIS_DATABASE_SCHEMA=b["schema"],
    )
    files = _prepare(env, tmp_path / "gen")
    partner_of = {p.name: ("op-a" if i % 2 else "op-b") for i, p in enumerate(files)}  # as _drop puts them
    with _stack(env) as run_dir:
        worker_logs = sorted(run_dir.glob("worker-*.log"))
        assert [p.name for p in worker_logs] == ["worker-1.log", "worker-2.log"], _logs(run_dir)
        _drop(env, files)
        _wait_closed(env, len(files), run_dir, timeout=300)

        # Each dropped file is exactly one flow, closed in a final state, of the partner it was dropped for.
        rt = Runtime.open(_home(env), migrate=False)
        try:
            flows = rt.store.list_flows(limit=10_000)
        finally:
            rt.close()
        assert sorted(f.original_name for f in flows) == sorted(partner_of), "one flow per dropped file"
        assert all(f.status.is_final and not f.parked for f in flows), [(f.id, f.status) for f in flows]
        assert all(f.partner == partner_of[f.original_name] for f in flows)
        # One return flow per flow (outbox and out/), one sent delivery row and one delivered file per
        # accepted invoice, no incident.
        figures = _check_exactly_once(env)
        assert figures["flows"] == len(files) and figures["invoices"] == 30 + 25 + 25 + 20 + 10 + 6
        assert 0 < figures["delivered"] < figures["invoices"]  # the invalid and misrouted ones are rejected

        # The Airflow side: every task on this run's queue, every process task a success, labelled. A task
        # whose flows are closed may still be reporting its end to Airflow: wait for that (bounded).
        wait_until(
            lambda: all(
                ti.state not in ("running", "queued", "scheduled")
                for ti in _task_instances(b["airflow_db"])
                if ti.task_id == "process"
            ),
            120,
            "every process task to end",
            every=1,
        )
        tis = _task_instances(b["airflow_db"])
        process = [ti for ti in tis if ti.task_id == "process"]
        assert process and all(ti.state == "success" for ti in process), process
        assert all(ti.rendered_map_index and " docs, " in ti.rendered_map_index for ti in process), process
        assert {ti.queue for ti in tis} == {b["queue"]}
        # Both workers executed tasks: each finished task instance's Celery task id was received by exactly
        # one worker (the workers' logs), and each worker received some.
        received = {
            p.stem: set(re.findall(r"execute_workload\[([0-9a-f-]{36})\] received", p.read_text(errors="replace")))
            for p in worker_logs
        }
        done = [ti for ti in tis if ti.state in ("success", "failed")]
        assert done and all(ti.external_executor_id for ti in done), done
        for ti in done:
            where = [w for w, ids in received.items() if ti.external_executor_id in ids]
            assert len(where) == 1, (ti, where)
        assert all(ids for ids in received.values()), {w: len(ids) for w, ids in received.items()}
        ran_process = {w for w, ids in received.items() for ti in process if ti.external_executor_id in ids}
        assert ran_process == set(received), f"process tasks ran on {ran_process} only"
