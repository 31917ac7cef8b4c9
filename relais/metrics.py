"""Prometheus metrics (prometheus-client), read at each scrape: from the store (flows and invoices by
status, rejects by rule, outbox backlog, paused partners, stage latencies as histograms, the pieces waiting
in the billing circuits by status with those overdue and due soon: `CircuitCollector`), from the drop
zones (files waiting, by partner and reason: connectors/folder/waiting.py) and, in a
process that validates (`relais run --watch --metrics-port N`), from its validation pool.

Served at ``/metrics`` by `relais web serve` (the store's part) and by `relais run --metrics-port`
(both). A registry of its own per server: nothing global, several apps in one process do not clash.

>>> _buckets([0.5, 2.0, 2.0, 70.0], (1.0, 5.0, 60.0))
[('1.0', 1), ('5.0', 3), ('60.0', 3), ('+Inf', 4)]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from flows.store import tables as t
from flows.store.dashboard import DUE_SOON
from relais import runner
from relais.compose import Runtime

#: The latency histograms cover the latest `SAMPLE` flows received in this window (a bounded read: a
#: scrape stays fast at millions of flows).
WINDOW_HOURS = 24
SAMPLE = 2_000
#: Upper bounds (seconds) of the latency histograms: from a small file to a very large batch.
BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
CLOSED = ("IN_INTEGRE", "IN_INTEGRE_PARTIEL", "IN_REJETE")


def _buckets(values: Sequence[float], bounds: Sequence[float]) -> list[tuple[str, int]]:
    out = [(str(b), sum(1 for v in values if v <= b)) for b in bounds]
    return [*out, ("+Inf", len(values))]


def _seconds(conn: sa.Connection, end: Any, start: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return sa.func.extract("epoch", end - start)
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0


class StoreCollector:
    """What the store says, at each scrape (aggregate queries only)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        flows = GaugeMetricFamily("relais_flows", "Flows by status", labels=["status"])
        invoices = GaugeMetricFamily("relais_invoices", "Invoices by lifecycle status", labels=["status"])
        rejects = GaugeMetricFamily("relais_rejects", "Fatal findings by rule", labels=["rule"])
        backlog = GaugeMetricFamily("relais_outbox_pending", "Outbox rows not sent yet, by kind", labels=["kind"])
        paused = GaugeMetricFamily("relais_partners_paused", "Partners whose intake is paused")
        cdar = GaugeMetricFamily(
            "relais_cdar_messages",
            "CDAR lifecycle messages by direction and outcome (out, not_sent: failed the official check, never sent)",
            labels=["direction", "outcome"],
        )
        with self.rt.store.engine.connect() as conn:
            m = t.cdar_messages.c
            for direction, outcome, n in conn.execute(
                sa.select(m.direction, m.outcome, sa.func.count()).group_by(m.direction, m.outcome)
            ):
                cdar.add_metric([direction, outcome], n)
            for status, n in conn.execute(sa.select(t.flows.c.status, sa.func.count()).group_by(t.flows.c.status)):
                flows.add_metric([status], n)
            i = t.invoices.c
            for status, n in conn.execute(sa.select(i.status, sa.func.count()).group_by(i.status)):
                invoices.add_metric([status], n)
            e = t.validation_errors.c
            for rule, n in conn.execute(
                sa.select(e.rule, sa.func.count()).where(e.flag == "fatal", e.superseded_at.is_(None)).group_by(e.rule)
            ):
                rejects.add_metric([rule], n)
            o = t.outbox.c
            for kind, n in conn.execute(
                sa.select(o.kind, sa.func.count()).where(o.status == "pending").group_by(o.kind)
            ):
                backlog.add_metric([kind], n)
            paused.add_metric([], conn.execute(sa.select(sa.func.count()).select_from(t.partner_pauses)).scalar_one())
            stages = HistogramMetricFamily(
                "relais_stage_seconds",
                f"Seconds from a flow's reception to the end of a stage, for the latest {SAMPLE} flows received "
                f"in the last {WINDOW_HOURS} h (processing: its verdict; report: its integration report sent; delivery: each "
                "invoice made available)",
                labels=["stage"],
            )
            f = t.flows.c
            since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=WINDOW_HOURS)
            latest = sa.select(f.id).where(f.received_at >= since).order_by(f.id.desc()).limit(SAMPLE)
            recent = f.id.in_(latest.scalar_subquery())
            for stage, query in (
                (
                    "processing",
                    sa.select(_seconds(conn, f.updated_at, f.received_at)).where(recent, f.status.in_(CLOSED)),
                ),
                (
                    "report",
                    sa.select(_seconds(conn, o.sent_at, f.received_at))
                    .select_from(t.flows.join(t.outbox, f.id == o.flow_id))
                    .where(recent, o.kind == "return", o.sent_at.is_not(None)),
                ),
                (
                    "delivery",
                    sa.select(_seconds(conn, o.sent_at, f.received_at))
                    .select_from(t.flows.join(t.outbox, f.id == o.flow_id))
                    .where(recent, o.kind == "delivery", o.sent_at.is_not(None)),
                ),
            ):
                sub = query.subquery()
                col = sub.c[0]
                row = conn.execute(
                    sa.select(
                        *[sa.func.coalesce(sa.func.sum(sa.case((col <= b, 1), else_=0)), 0) for b in BUCKETS],
                        sa.func.count(col),
                        sa.func.coalesce(sa.func.sum(col), 0.0),
                    )
                ).one()
                counts = [(str(b), int(n)) for b, n in zip(BUCKETS, row[: len(BUCKETS)], strict=True)]
                stages.add_metric([stage], [*counts, ("+Inf", int(row[len(BUCKETS)]))], float(row[-1]))
        yield from (flows, invoices, rejects, backlog, paused, stages, cdar)


class CircuitCollector:
    """The pieces waiting for an actor of their billing circuit, by status name (``A_VALIDER_1``...; every
    waiting status, zeros included): `flows.store.dashboard.DashboardRepo.circuit_waits`, as the landing page
    shows them. An overdue piece is one the deadline step did not move on: alert on it."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        waiting = GaugeMetricFamily(
            "relais_circuit_pieces_waiting", "Pieces waiting for an actor of their billing circuit", labels=["status"]
        )
        overdue = GaugeMetricFamily(
            "relais_circuit_pieces_overdue",
            "Pieces waiting past their deadline (the deadline step did not move them on)",
            labels=["status"],
        )
        soon = GaugeMetricFamily(
            "relais_circuit_pieces_due_soon",
            f"Pieces waiting whose deadline falls within {DUE_SOON.total_seconds() / 3600:g} hours",
            labels=["status"],
        )
        for w in self.rt.store.circuit_waits():
            waiting.add_metric([w.status.name], w.waiting)
            overdue.add_metric([w.status.name], w.overdue)
            soon.add_metric([w.status.name], w.due_soon)
        yield from (waiting, overdue, soon)


class WaitingCollector:
    """Files waiting in the drop zones per partner and reason (connectors/folder/waiting.py: one scandir
    per inbox, no content read), and those stuck until someone acts."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        found = runner.waiting_files(self.rt.settings, self.rt.store, limit=0)
        files = GaugeMetricFamily(
            "relais_dropzone_waiting_files",
            "Files waiting in the drop zones, by partner and reason",
            labels=["partner", "reason"],
        )
        for (partner, reason), n in found.counts.items():
            files.add_metric([partner, reason.value], n)
        stuck = GaugeMetricFamily(
            "relais_dropzone_stuck_files",
            "Files waiting in the drop zones until someone acts (paused, held, never completed...)",
        )
        stuck.add_metric([], found.stuck)
        yield from (files, stuck)


class PoolCollector:
    """The validation pool of this process (`validators.pool.ValidationPool.state`)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        workers = GaugeMetricFamily("relais_validation_workers", "Validation worker processes", labels=["state"])
        for state, n in self.rt.pool.state().items():
            workers.add_metric([state], n)
        yield workers


def registry(rt: Runtime, *, pool: bool) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(StoreCollector(rt))
    reg.register(CircuitCollector(rt))
    reg.register(WaitingCollector(rt))
    if pool:
        reg.register(PoolCollector(rt))
    return reg


def render(rt: Runtime, *, pool: bool = False) -> tuple[bytes, str]:
    return generate_latest(registry(rt, pool=pool)), CONTENT_TYPE_LATEST
