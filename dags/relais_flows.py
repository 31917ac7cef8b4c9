"""Airflow 3 DAG: drop zones -> one mapped task per group of flows -> outbox.

A thin wrapper over `flows/`: every task calls the same functions as the CLI
(`relais run`). Airflow schedules groups of flows sized to carry seconds of
work (see docs/airflow.md), never one task per invoice.
Configuration comes from the environment (RELAIS_HOME, RELAIS_DATABASE_URL...).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task

from relais.grouping import group_flows


def _runtime():  # noqa: ANN202
    from flows.pipeline import Runtime
    from relais.settings import Settings

    return Runtime.open(Settings.from_env())


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
        """Take complete files from every drop zone (archive first), group the pending flows."""
        from connectors.folder import dropzone
        from relais.runner import pending_flow_ids

        rt = _runtime()
        dropzone.scan(rt)
        ids = pending_flow_ids(rt)
        return group_flows([(f, rt.store.get_flow(f).size) for f in ids])  # type: ignore[union-attr]

    @task(multiple_outputs=False)
    def process(flow_ids: list[str]) -> list[list[str]]:
        """Process one group of flows; returns [flow id, final status] pairs (small XCom)."""
        from flows.pipeline import process_flow

        rt = _runtime()
        return [[f, str(process_flow(rt, f).status)] for f in flow_ids]

    @task(trigger_rule="none_failed")
    def deliver(results: list[list[list[str]]] | None = None) -> dict[str, int]:
        """Carry out the outbox: routed invoices to recipients, return flows to partners."""
        from flows.dispatch import dispatch

        report = dispatch(_runtime())
        return {"delivered": report.delivered, "returned": report.returned, "failed": report.failed}

    deliver(process.expand(flow_ids=intake()))


relais_flows()
