"""Airflow 3 DAG: drop zones -> one mapped task per group of flows, each flow's return flow sent
as soon as it is closed.

A thin wrapper over the same functions as `relais run` (relais/runner.py):

- `intake` takes nothing and fails, after waiting RELAIS_INTAKE_WAIT_SECONDS for one, while no recipient
  directory is imported (every flow would become an incident: `relais directory import FILE` first).
  Otherwise it takes complete files from every drop zone (archive first), sends the
  outbox rows that are due (retries, async AS2 MDNs) and returns the pending
  flows in groups sized by their work (relais/grouping.py). When nothing is
  pending it keeps looking for RELAIS_INTAKE_WAIT_SECONDS (30 s) before it
  returns, so with the continuous schedule a file is taken within about a
  second of being complete, and an idle stack starts one run per half minute.
- `apply_deadlines`, after the groups (whatever became of them), moves on the pieces of billing circuits
  whose validator or MOE let its deadline pass (flows/pipeline/deadlines.py: tacit validation, or the
  piece goes to the MOA), exactly as `relais run` does once per pass; a piece it makes available to its
  recipient is delivered by the next run's intake (which sends what the outbox has due).
- `statuses`, after the deadlines (whatever became of them), emits the status
  return flows that are due (invoice status changes reported to their senders,
  flows/pipeline/status_returns.py) and sends them, exactly as `relais run` does.
- `process` is mapped over the groups (label: first flow id, flow and document
  counts, size), at most RELAIS_DAG_TASKS at once (default: one per CPU with the LocalExecutor; with
  Celery, each worker's concurrency). Each judges in its own
  process (RELAIS_TASK_WORKERS=0, the default; N: N validation workers of its own), so a host never
  runs more than RELAIS_DAG_TASKS judges, whatever the burst. Each flow is processed and its
  deliveries and return flow dispatched right away; then the task keeps taking the files dropped
  meanwhile (up to RELAIS_TASK_LINGER_SECONDS from its start, 0 by default: off; it stops after 2 s without
  any), so a file need not wait for the next DAG run. A group in which a flow became an incident fails the
  task (Airflow's alerting sees it); the flow itself is retried by Relais with
  backoff, then parked (`relais flows --status IN_INCIDENTE`, `relais flows
  reprocess`).

The schedule is RELAIS_DAG_SCHEDULE (default ``@continuous``: a new run as soon
as the previous one ends; a cron expression or ``@hourly`` also works). Tasks
never migrate the store: run `relais db upgrade` when deploying. XComs hold
ids and counts only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airflow.sdk import dag, get_current_context, task

if TYPE_CHECKING:
    from relais.compose import Runtime


def _dag_tasks() -> int | None:
    """At most this many `process` tasks at once: RELAIS_DAG_TASKS, else one per CPU with the LocalExecutor
    (the tasks run on this host), else (Celery) no cap here: each Celery worker runs its concurrency."""
    value = os.environ.get("RELAIS_DAG_TASKS", "").strip()
    try:
        tasks = int(value) if value else 0
    except ValueError:
        raise ValueError(f"RELAIS_DAG_TASKS must be a whole number, not {value!r}") from None
    if tasks > 0:
        return tasks
    if "Celery" in os.environ.get("AIRFLOW__CORE__EXECUTOR", ""):
        return None
    return os.cpu_count() or 1


@contextlib.contextmanager
def _runtime() -> Iterator[Runtime]:
    """A pipeline runtime for one task, its store and validation workers closed afterwards. A task judges
    in its own process (RELAIS_TASK_WORKERS=0, the default) or with that many validation workers of its own:
    RELAIS_WORKERS is `relais run`'s."""
    import dataclasses

    from relais.compose import Runtime
    from relais.settings import Settings

    settings = Settings.from_env()
    settings = dataclasses.replace(
        settings, workers=settings.task_workers, dag_tasks=_dag_tasks() or os.cpu_count() or 1
    )
    rt = Runtime.open(settings, migrate=False)
    try:
        yield rt
    finally:
        rt.close()


@dag(
    dag_id="relais_flows",
    schedule=os.environ.get("RELAIS_DAG_SCHEDULE") or "@continuous",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0},  # Relais retries incidents itself, with backoff (relais/runner.py)
    tags=["relais"],
    doc_md=__doc__,
)
def relais_flows() -> None:
    @task(multiple_outputs=False)
    def intake() -> list[dict[str, Any]]:
        """Take complete files from the drop zones, send what the outbox has due, and return the
        pending flows in groups (ids, label and counts)."""
        import signal
        import time

        from relais import log
        from relais.runner import directory_missing, intake_until_work

        # Airflow answers SIGTERM (the stack stopping) with the operator's on_kill() only, and lets the task
        # run on: stop waiting for files then, so a shutdown does not wait out the intake's wait.
        stopping: list[int] = []
        previous = signal.getsignal(signal.SIGTERM)

        def on_term(signum: int, frame: Any) -> None:
            stopping.append(signum)
            if callable(previous):
                previous(signum, frame)

        signal.signal(signal.SIGTERM, on_term)
        with _runtime() as rt:
            deadline = time.monotonic() + rt.settings.intake_wait_seconds
            while refused := directory_missing(rt):  # else every flow would become an incident
                if time.monotonic() >= deadline or stopping:  # an idle pace: one failed run per wait
                    from airflow.sdk.exceptions import AirflowFailException

                    raise AirflowFailException(refused)
                time.sleep(1.0)
            groups = intake_until_work(rt, wait_seconds=rt.settings.intake_wait_seconds, stop=lambda: bool(stopping))
        log.get("relais.dag").info(
            "intake.groups",
            groups=len(groups),
            flows=sum(len(g.flow_ids) for g in groups),
            documents=sum(g.documents for g in groups),
        )
        return [{**g.as_xcom(), "groups": len(groups)} for g in groups]

    @task(
        multiple_outputs=False,
        map_index_template="{{ relais_group }}",
        max_active_tis_per_dag=_dag_tasks(),
    )
    def process(group: dict[str, Any]) -> dict[str, object]:
        """Process one group of flows, then what comes meanwhile (up to RELAIS_TASK_LINGER_SECONDS); returns
        counts. Fails when a flow it processed became an incident."""
        from airflow.sdk.exceptions import AirflowFailException

        from relais import log
        from relais.grouping import expand_ids
        from relais.runner import process_and_linger

        context = get_current_context()
        context["relais_group"] = group["label"]  # type: ignore[typeddict-unknown-key]
        flow_ids = expand_ids(group["flows"])
        index = int(context["ti"].map_index or 0)
        with _runtime() as rt:
            report = process_and_linger(
                rt,
                flow_ids,
                linger_seconds=rt.settings.task_linger_seconds,
                share=(max(0, index), max(1, int(group.get("groups", 1)))),
            )
            summary = report.summary()
            log.get("relais.dag").info("process.done", group=group["label"], **summary)
            if report.incidents:
                parked = sum(1 for f in report.flows if f.parked)
                raise AirflowFailException(
                    f"{len(report.incidents)} of {len(flow_ids)} flows became incidents (RLS-T99), "
                    f"first {report.incidents[0]}; {parked} parked after their retries, the others are "
                    f"retried automatically. See `relais flows --status IN_INCIDENTE`."
                )
        return summary

    @task(trigger_rule="all_done")
    def apply_deadlines() -> dict[str, object]:
        """Move on the pieces whose actor's deadline passed (tacit validation, MOE silent: to the MOA)."""
        from relais import log
        from relais.runner import apply_deadlines as apply

        with _runtime() as rt:
            summary = apply(rt).summary()
        log.get("relais.dag").info("deadlines.done", deadlines=summary["deadlines"])
        return summary

    @task(trigger_rule="all_done")
    def statuses() -> dict[str, object]:
        """Emit the status return flows that are due (invoice status changes, grouped per sender over
        RELAIS_STATUS_INTERVAL_SECONDS) and send them; runs after the groups, whatever became of them."""
        from relais import log
        from relais.runner import emit_statuses

        with _runtime() as rt:
            summary = emit_statuses(rt).summary()
        log.get("relais.dag").info("statuses.done", **summary)
        return summary

    process.expand(group=intake()) >> apply_deadlines() >> statuses()


relais_flows()
