"""Airflow 3 DAG: drop zones -> one mapped task per group of flows -> outbox.

A thin wrapper over `flows/`: every task calls the same functions as the CLI
(`relais run`). Airflow schedules groups of flows sized to carry seconds of
work (see relais/grouping.py), never one task per invoice.
Configuration comes from the environment (RELAIS_HOME, RELAIS_DATABASE_URL,
RELAIS_MAX_FLOWS_PER_GROUP...).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING

from airflow.sdk import dag, task

if TYPE_CHECKING:
    from flows.pipeline import Runtime


@contextlib.contextmanager
def _runtime() -> Iterator[Runtime]:
    """A pipeline runtime for one task, its store and validation workers closed afterwards (tasks may share a process)."""
    from flows.pipeline import Runtime
    from relais.settings import Settings

    rt = Runtime.open(Settings.from_env())
    try:
        yield rt
    finally:
        rt.close()


@dag(
    dag_id="relais_flows",
    schedule=dt.timedelta(minutes=1),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    tags=["relais"],
    doc_md=__doc__,
)
def relais_flows() -> None:
    @task
    def intake() -> list[list[str]]:
        """Poll the partners' SFTP servers and take complete files from the local drop zones
        (archive first); return the pending flows' ids in groups."""
        from relais.grouping import pending_groups
        from relais.runner import intake as take_all

        with _runtime() as rt:
            take_all(rt)
            return pending_groups(rt)

    @task(multiple_outputs=False)
    def process(flow_ids: list[str]) -> list[list[str]]:
        """Process one group of flows; returns [flow id, final status] pairs (small XCom)."""
        from flows.pipeline import process_flow

        with _runtime() as rt:
            return [[f, str(process_flow(rt, f).status)] for f in flow_ids]

    @task(multiple_outputs=False, trigger_rule="none_failed")
    def deliver() -> dict[str, int]:
        """Carry out the outbox: routed invoices to recipients, return flows to partners.

        Runs after every group, and also when there was nothing to process (`process` then has
        no mapped instance and is skipped): it retries what an earlier run failed to deliver.
        """
        from flows.dispatch import dispatch

        with _runtime() as rt:
            report = dispatch(rt)
        return {"delivered": report.delivered, "returned": report.returned, "failed": report.failed}

    process.expand(flow_ids=intake()) >> deliver()


relais_flows()
