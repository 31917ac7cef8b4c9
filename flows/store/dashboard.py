"""The store's part for the web application's landing page and rejects page (relais/web/views/dashboard.py):
flows and invoices per day, the rejection rate, the rules that reject most, how long each stage takes,
what waits in the outbox, and what waits in the billing circuits (`circuit_waits`).

A mixin of ``flows.store.Store`` (which provides ``self.engine``). The flows and invoices per day and the
rejects by rule are read from the daily roll-ups (flows.store.rollups, kept by triggers: the same figures,
`dashboard_from_rollups`); the rest is one or a few aggregate queries (GROUP BY in the database), over the flows
received in the last `days` days (UTC days, today included), for one partner when `partner` is given
(a partner user sees only its own). Days without any row are filled in with zeros (or None for a
rate), so that a chart always has `days` points. A day is the flow's reception day in UTC: on SQLite
``date(received_at)`` (dates are stored as naive UTC text), on PostgreSQL ``received_at AT TIME ZONE
'UTC'`` cast to a date (whatever the session's time zone).

A reject is a ``fatal`` finding (``validation_errors.flag``); an invoice is rejected when its status
is one of `REJECTED` (04 REJETEE_ROUTAGE, 05 REJETEE). A rule's "invoices" count the distinct invoices
it rejected, its "whole_flows" the flows it rejected as a whole (a finding on no invoice), apart: a
duplicate empty flow is not an invoice.

>>> percentile([], 0.5) is None, percentile([4.0], 0.95), percentile([1.0, 2.0, 3.0, 4.0], 0.5)
(True, 4.0, 2.5)
>>> percentile([float(k) for k in range(1, 101)], 0.95)  # as PostgreSQL's percentile_cont
95.05
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa

from flows.domain.circuits import STEP_OF
from flows.domain.lifecycle import FlowStatus, InvoiceStatus
from flows.domain.model import Flag, utcnow
from flows.domain.outbox import OutboxKind, OutboxStatus
from flows.store import tables as t
from flows.store.records import current_findings
from flows.store.rollups import RollupsRepo, flow_rows, rule_days, rule_latest, rule_rows
from flows.store.rollups import Span as _Span

#: Invoice statuses that count as rejected.
REJECTED = tuple(s.value for s in InvoiceStatus if s.is_rejected)
#: Flow statuses whose processing is over (the "processing" stage ends at their `updated_at`).
CLOSED = (FlowStatus.IN_INTEGRE.value, FlowStatus.IN_INTEGRE_PARTIEL.value, FlowStatus.IN_REJETE.value)
#: The stages `stage_latencies` measures, in this order.
STAGES = ("processing", "integration report", "delivery")
#: `stage_latencies` measures the latest this many flows of the period.
LATENCY_SAMPLE = 2_000  # few enough that PostgreSQL probes the outbox's flow index (bench/web.py: 10 ms)
EXAMPLES = 3
#: The statuses where a piece waits for an actor of its circuit (`circuit_waits`), in the circuits' order.
WAITING = tuple(s for s in STEP_OF if not s.is_reserved)
#: A waiting piece is "due soon" when its deadline falls within this time.
DUE_SOON = dt.timedelta(hours=48)


class RuleCount(NamedTuple):
    rule: str
    invoices: int  # invoices rejected (distinct)
    flows: int  # flows with a reject of it, on an invoice or on the whole flow
    last_seen: dt.datetime  # the latest reception (UTC) of a flow it rejected
    whole_flows: int = 0  # flows it rejected as a whole (a finding on no invoice: RLS-T11, RLS-T02...)


class RejectExample(NamedTuple):
    flow_id: str
    invoice_id: str | None
    location: str
    message: str


class RuleRejects(NamedTuple):
    rule: str
    invoices: int  # as `RuleCount.invoices`
    flows: int
    findings: int  # fatal findings (one invoice may break a rule at several locations)
    last_seen: dt.datetime
    trend: list[int]  # rejects per day (invoices + whole flows), oldest first, one per day of the period
    examples: list[RejectExample]  # the latest ones, at most `EXAMPLES`
    whole_flows: int = 0  # as `RuleCount.whole_flows`


class Latency(NamedTuple):
    p50: float | None  # seconds; None without samples
    p95: float | None
    samples: int


class CircuitWait(NamedTuple):
    """The pieces waiting in one status of the billing circuits, now."""

    status: InvoiceStatus
    waiting: int
    overdue: int  # due_at <= now: the deadline step should have moved them (an incident)
    due_soon: int  # now < due_at <= now + DUE_SOON
    oldest_id: str | None = None  # the first received of them (invoice ids grow with reception)
    oldest_file: str | None = None  # its billing file
    oldest_received: dt.datetime | None = None  # its flow's reception (UTC)


class RuleFlow(NamedTuple):
    flow_id: str
    received_at: dt.datetime
    partner: str
    status: str
    invoices: int  # as `RuleCount.invoices`, in this flow
    message: str  # one of its messages
    whole_flow: bool = False  # the rule rejected the flow as a whole (a finding on no invoice)
    rule: str = ""  # the rule's code


def percentile(values: Sequence[float], q: float) -> float | None:
    """The `q` quantile of sorted `values`, interpolated as PostgreSQL's ``percentile_cont``."""
    if not values:
        return None
    pos = q * (len(values) - 1)
    low = int(pos)
    high = min(low + 1, len(values) - 1)
    return round(values[low] + (values[high] - values[low]) * (pos - low), 6)


class DashboardRepo(RollupsRepo):
    engine: sa.Engine
    #: The per-day figures and the rejects by rule come from the daily roll-ups (flows.store.rollups); False:
    #: counted from the flows and findings at each call (the reference the roll-ups are tested against).
    dashboard_from_rollups: bool = True

    # ---- per day ----------------------------------------------------------------------------

    def flows_per_day(
        self, days: int = 30, partner: str | None = None, *, today: dt.date | None = None
    ) -> list[tuple[dt.date, dict[str, int]]]:
        """Flows received each day, by status: [(day, {status: count})], oldest day first."""
        f = t.flows.c
        span = _Span(days, today)
        found: dict[dt.date, dict[str, int]] = {}
        if self.dashboard_from_rollups:
            with self._rollups_read() as conn:
                for d, status, n, _, _ in flow_rows(conn, span, partner):
                    found.setdefault(d, {})[status] = n
            return [(d, found.get(d, {})) for d in span.days]
        day = self._day(f.received_at)
        q = sa.select(day, f.status, sa.func.count()).where(*span.where(f.received_at)).group_by(day, f.status)
        if partner:
            q = q.where(f.partner == partner)
        with self.engine.connect() as conn:
            for d, status, n in conn.execute(q):
                found.setdefault(_date(d), {})[status] = n
        return [(d, found.get(d, {})) for d in span.days]

    def invoices_per_day(
        self, days: int = 30, partner: str | None = None, *, today: dt.date | None = None
    ) -> list[tuple[dt.date, dict[str, int]]]:
        """Invoices of the flows received each day: [(day, {"accepted": n, "rejected": n})], oldest first,
        as the flows' verdicts counted them (`invoice_count`, `rejected_count`: read from the flows'
        received_at index alone, without the invoices; a recipient's later refusal is not counted)."""
        f = t.flows.c
        span = _Span(days, today)
        found: dict[dt.date, tuple[int, int]] = {}
        if self.dashboard_from_rollups:
            with self._rollups_read() as conn:
                for d, _, _, total, bad in flow_rows(conn, span, partner):
                    before = found.get(d, (0, 0))
                    found[d] = (before[0] + total, before[1] + bad)
            return [(d, _verdicts(*found.get(d, (0, 0)))) for d in span.days]
        day = self._day(f.received_at)
        q = (
            sa.select(day, sa.func.sum(f.invoice_count), sa.func.sum(f.rejected_count))
            .where(*span.where(f.received_at))
            .group_by(day)
        )
        if partner:
            q = q.where(f.partner == partner)
        with self.engine.connect() as conn:
            for d, total, bad in conn.execute(q):
                found[_date(d)] = (int(total), int(bad or 0))
        return [(d, _verdicts(*found.get(d, (0, 0)))) for d in span.days]

    def rejection_rate(
        self, days: int = 30, partner: str | None = None, *, today: dt.date | None = None
    ) -> list[tuple[dt.date, float | None]]:
        """Rejected invoices / invoices of each day's flows (0..1): [(day, rate)], None on a day
        without invoices."""
        out: list[tuple[dt.date, float | None]] = []
        for d, n in self.invoices_per_day(days, partner, today=today):
            total = n["accepted"] + n["rejected"]
            out.append((d, n["rejected"] / total if total else None))
        return out

    # ---- rejects by rule --------------------------------------------------------------------

    def top_reject_rules(
        self, days: int = 30, partner: str | None = None, limit: int = 10, *, today: dt.date | None = None
    ) -> list[RuleCount]:
        """The rules that rejected most: [(rule, invoices, flows, last seen)], most invoices first."""
        if self.dashboard_from_rollups:
            return [
                RuleCount(r.rule, r.invoices, r.flows, r.last_seen, r.whole_flows)
                for r in self._rollup_rules(_Span(days, today), partner, limit, 1)
            ]
        return [
            RuleCount(r.rule, r.invoices, r.flows, r.last_seen, r.whole_flows)
            for r in self._rule_counts(_Span(days, today), partner, limit)
        ]

    def rejects_by_rule(
        self, days: int = 30, partner: str | None = None, limit: int = 100, *, today: dt.date | None = None
    ) -> list[RuleRejects]:
        """The rejects page: each rule (most invoices first, at most `limit`) with its counts, its
        trend per day and its latest examples. Three queries: counts, counts per day, examples."""
        span = _Span(days, today)
        if self.dashboard_from_rollups:
            return self._rollup_rules(span, partner, limit, EXAMPLES)
        return self._counted_rules(span, partner, limit)

    def _counted_rules(self, span: _Span, partner: str | None, limit: int) -> list[RuleRejects]:
        """`rejects_by_rule` counted from the findings."""
        counts = self._rule_counts(span, partner, limit)
        if not counts:
            return []
        rules = [r.rule for r in counts]
        e, f = t.validation_errors.c, t.flows.c
        joined = t.validation_errors.join(t.flows, f.id == e.flow_id)
        where = [e.flag == str(Flag.FATAL), current_findings(), e.rule.in_(rules), *span.where(f.received_at)]
        if partner:
            where.append(f.partner == partner)
        day = self._day(f.received_at)
        per_day = (
            sa.select(e.rule, day, sa.func.count(sa.distinct(_rejected_item())))
            .select_from(joined)
            .where(*where)
            .group_by(e.rule, day)
        )
        rank = (
            sa.func.row_number().over(partition_by=e.rule, order_by=(f.received_at.desc(), e.id.desc())).label("rank")
        )
        ranked = (
            sa.select(e.rule, e.flow_id, e.invoice_id, e.location, e.message, rank)
            .select_from(joined)
            .where(*where)
            .subquery()
        )
        examples_q = sa.select(ranked).where(ranked.c.rank <= EXAMPLES).order_by(ranked.c.rule, ranked.c.rank)
        trends: dict[str, dict[dt.date, int]] = {}
        examples: dict[str, list[RejectExample]] = {}
        with self.engine.connect() as conn:
            for rule, d, n in conn.execute(per_day):
                trends.setdefault(rule, {})[_date(d)] = n
            for r in conn.execute(examples_q):
                examples.setdefault(r.rule, []).append(RejectExample(r.flow_id, r.invoice_id, r.location, r.message))
        return [
            RuleRejects(
                rule=c.rule,
                invoices=c.invoices,
                flows=c.flows,
                findings=c.findings,
                last_seen=c.last_seen,
                trend=[trends.get(c.rule, {}).get(d, 0) for d in span.days],
                examples=examples.get(c.rule, []),
                whole_flows=c.whole_flows,
            )
            for c in counts
        ]

    def rule_flows(self, rule: str, partner: str | None = None, limit: int = 50) -> list[RuleFlow]:
        """The flows a rule rejected, newest first (at most `limit`, any date), with their counts."""
        e, f = t.validation_errors.c, t.flows.c
        q = (
            sa.select(
                f.id,
                f.received_at,
                f.partner,
                f.status,
                sa.func.count(sa.distinct(e.invoice_id)),
                sa.func.min(e.message),
                sa.func.count(_whole_flow()),
            )
            .select_from(t.validation_errors.join(t.flows, f.id == e.flow_id))
            .where(e.rule == rule, e.flag == str(Flag.FATAL), current_findings())
            .group_by(f.id, f.received_at, f.partner, f.status)
            .order_by(f.id.desc())  # flow ids grow with reception
            .limit(limit)
        )
        if partner:
            q = q.where(f.partner == partner)
        with self.engine.connect() as conn:
            return [RuleFlow(r[0], _utc(r[1]), r[2], r[3], int(r[4]), r[5], bool(r[6]), rule) for r in conn.execute(q)]

    def flows_with_rule(self, rule: str, partner: str | None = None, limit: int = 50) -> list[str]:
        """Ids of the flows a rule rejected, newest first (at most `limit`)."""
        return [r.flow_id for r in self.rule_flows(rule, partner, limit)]

    # ---- latencies --------------------------------------------------------------------------

    def stage_latencies(
        self, days: int = 30, partner: str | None = None, *, today: dt.date | None = None
    ) -> dict[str, Latency]:
        """p50 and p95 in seconds of each of `STAGES`, over the latest `LATENCY_SAMPLE` flows received
        in the period (by id: ids grow with reception, so the primary key serves it without a sort):

        - "processing": reception -> the flow's last update, for closed flows (`CLOSED`);
        - "integration report": reception -> each of its return flows (outbox ``return``) sent;
        - "delivery": reception -> each of its invoices' deliveries (outbox ``delivery``) sent.

        PostgreSQL computes them (``percentile_cont``); SQLite, which has no percentile function, in
        Python from the same rows. The sample keeps the page fast at millions of flows: the outbox rows
        of 2,000 flows are found through its flow index, not by scanning the outbox."""
        f, o = t.flows.c, t.outbox.c
        span = _Span(days, today)
        out: dict[str, Latency] = {}
        with self.engine.connect() as conn:
            for stage in STAGES:
                recent_q = sa.select(f.id, f.received_at, f.updated_at).where(*span.where(f.received_at))
                if partner:
                    recent_q = recent_q.where(f.partner == partner)
                if stage == "processing":
                    recent_q = recent_q.where(f.status.in_(CLOSED))
                recent = recent_q.order_by(f.id.desc()).limit(LATENCY_SAMPLE).subquery("recent")
                if stage == "processing":
                    source: Any = recent
                    start, end, where = recent.c.received_at, recent.c.updated_at, []
                else:
                    kind = OutboxKind.RETURN if stage == "integration report" else OutboxKind.DELIVERY
                    sent = [o.status == OutboxStatus.SENT, o.kind == str(kind), o.sent_at.is_not(None)]
                    source = recent.join(t.outbox, o.flow_id == recent.c.id)
                    start, end, where = recent.c.received_at, o.sent_at, sent
                if stage != "processing" and self.engine.dialect.name == "postgresql":
                    # Each sampled flow's rows through the outbox's flow index: a LATERAL subquery, kept apart
                    # by its OFFSET, else the planner may hash the whole outbox (0.1-0.5 s).
                    rows = sa.select(o.sent_at).where(o.flow_id == recent.c.id, *sent).offset(0).lateral("sent")
                    source = recent.join(rows, sa.true())
                    end, where = rows.c.sent_at, []
                if self.engine.dialect.name == "postgresql":
                    seconds = sa.func.extract("epoch", end - start)
                    q = sa.select(
                        sa.func.percentile_cont(0.5).within_group(seconds),
                        sa.func.percentile_cont(0.95).within_group(seconds),
                        sa.func.count(),
                    )
                    p50, p95, n = conn.execute(q.select_from(source).where(*where)).one()
                    out[stage] = Latency(_seconds(p50), _seconds(p95), int(n))
                else:
                    pairs = conn.execute(sa.select(start, end).select_from(source).where(*where))
                    values = sorted((_utc(b) - _utc(a)).total_seconds() for a, b in pairs)
                    out[stage] = Latency(percentile(values, 0.5), percentile(values, 0.95), len(values))
        return out

    # ---- the outbox now ---------------------------------------------------------------------

    def returns_pending_per_partner(self, partner: str | None = None) -> dict[str, int]:
        """Return flows (integration reports and status returns) not sent yet: {partner: rows}, most first."""
        o = t.outbox.c
        n = sa.func.count()
        q = (
            sa.select(o.partner, n)
            .where(o.kind == str(OutboxKind.RETURN), o.status == OutboxStatus.PENDING)
            .group_by(o.partner)
            .order_by(n.desc(), o.partner)
        )
        if partner:
            q = q.where(o.partner == partner)
        with self.engine.connect() as conn:
            return {p or "": int(c) for p, c in conn.execute(q)}

    def outbox_backlog(self, partner: str | None = None) -> dict[str, int]:
        """Outbox rows not sent yet, by kind ("delivery", "return", "as2-mdn"): {kind: rows}. For a
        partner: the rows addressed to it and those of its flows (deliveries go to recipients)."""
        o, f = t.outbox.c, t.flows.c
        q = sa.select(o.kind, sa.func.count()).where(o.status == OutboxStatus.PENDING).group_by(o.kind)
        if partner:
            own = sa.select(f.id).where(f.id == o.flow_id, f.partner == partner).exists()
            q = q.where(sa.or_(o.partner == partner, own))
        with self.engine.connect() as conn:
            return {k: int(c) for k, c in conn.execute(q)}

    # ---- the billing circuits now -----------------------------------------------------------

    def circuit_waits(self, partner: str | None = None, *, now: dt.datetime | None = None) -> list[CircuitWait]:
        """What waits for an actor in the billing circuits: for each of `WAITING` (zeros included), the pieces
        in it, how many are past their deadline or due within `DUE_SOON`, and the oldest one. For a partner:
        the pieces of its flows. Two queries: the counts through the partial index ``ix_invoices_waiting``
        (the waiting pieces only, never the whole table), then the oldest pieces' files and receptions by key."""
        i, f = t.invoices.c, t.flows.c
        now = now or utcnow()
        soon = now + DUE_SOON
        q = (
            sa.select(
                i.status,
                sa.func.count(),
                sa.func.count(sa.case((i.due_at <= now, 1))),
                sa.func.count(sa.case((sa.and_(i.due_at > now, i.due_at <= soon), 1))),
                sa.func.min(i.id),
            )
            # A piece still in a waiting status that nobody holds was answered by a follower (the MOE's A15
            # after an A4): its step is over, it waits for nobody.
            .where(_waiting(i.status), i.holder.is_not(None))
            .group_by(i.status)
        )
        if partner is not None:
            q = q.where(sa.select(f.id).where(f.id == i.flow_id, f.partner == partner).exists())
        with self.engine.connect() as conn:
            counts = {InvoiceStatus(r[0]): (int(r[1]), int(r[2]), int(r[3]), r[4]) for r in conn.execute(q)}
            oldest = [c[3] for c in counts.values()]
            found = {
                r.id: (r.billing_file_id or r.id, _utc(r.received_at))
                for r in conn.execute(
                    sa.select(i.id, i.billing_file_id, f.received_at)
                    .select_from(t.invoices.join(t.flows, f.id == i.flow_id))
                    .where(i.id.in_(oldest))
                )
            }
        out = []
        for status in WAITING:
            n, overdue, due_soon, first = counts.get(status, (0, 0, 0, None))
            file, received = found.get(first, (None, None)) if first else (None, None)
            out.append(CircuitWait(status, n, overdue, due_soon, first, file, received))
        return out

    # ---- helpers ----------------------------------------------------------------------------

    def _rollup_rules(self, span: _Span, partner: str | None, limit: int, need: int) -> list[RuleRejects]:
        """`rejects_by_rule` from the roll-ups (flows.store.rollups): the counts and trends summed, the last
        reception and the `need` latest examples read from the findings of each rule's latest days only."""
        with self._rollups_read() as conn:
            counts = rule_rows(conn, span, partner, limit)
            per_day = rule_days(conn, span, partner, [c[0] for c in counts])
            latest = rule_latest(conn, span, partner, per_day, need)
        if any(not latest.get(c[0]) for c in counts):  # roll-ups out of step (a load without triggers)
            return self._counted_rules(span, partner, limit)
        out = []
        for rule, invoices, flows, findings, whole in counts:
            rows = latest[rule]
            days = per_day.get(rule, {})
            out.append(
                RuleRejects(
                    rule=rule,
                    invoices=invoices,
                    flows=flows,
                    findings=findings,
                    last_seen=_utc(rows[0][6]),
                    trend=[days[d].rejects if d in days else 0 for d in span.days],
                    examples=[RejectExample(r[2], r[3], r[4], r[5]) for r in rows[:EXAMPLES]],
                    whole_flows=whole,
                )
            )
        return out

    def _rule_counts(self, span: _Span, partner: str | None, limit: int) -> list[_Counts]:
        e, f = t.validation_errors.c, t.flows.c
        count = sa.func.count(sa.distinct(_rejected_item()))
        invoices = sa.func.count(sa.distinct(e.invoice_id))
        whole = sa.func.count(sa.distinct(_whole_flow()))
        flows = sa.func.count(sa.distinct(e.flow_id))
        q = (
            sa.select(e.rule, invoices, flows, sa.func.count(), sa.func.max(f.received_at), whole)
            .select_from(t.validation_errors.join(t.flows, f.id == e.flow_id))
            .where(e.flag == str(Flag.FATAL), current_findings(), *span.where(f.received_at))
            .group_by(e.rule)
            .order_by(count.desc(), flows.desc(), e.rule)
            .limit(limit)
        )
        if partner:
            q = q.where(f.partner == partner)
        with self.engine.connect() as conn:
            return [_Counts(r, int(c), int(fl), int(n), _utc(last), int(w)) for r, c, fl, n, last, w in conn.execute(q)]

    def _day(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """The UTC day of a timestamp column, in SQL. No bound parameter in it: PostgreSQL must see the
        GROUP BY expression as the selected one."""
        if self.engine.dialect.name == "postgresql":
            return sa.cast(sa.func.timezone(sa.literal_column("'UTC'"), column), sa.Date)
        return sa.func.date(column)


class _Counts(NamedTuple):
    rule: str
    invoices: int
    flows: int
    findings: int
    last_seen: dt.datetime
    whole_flows: int


def _verdicts(total: int, bad: int) -> dict[str, int]:
    return {"accepted": total - bad, "rejected": bad}


def _waiting(status: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """``status IN WAITING_STATUSES`` with the codes written in the SQL, as the predicate of the partial index
    ``ix_invoices_waiting``: the planner must see the values to use it (SQLite, and PostgreSQL's generic plans
    of prepared statements, do not with bound parameters). The codes are constants of tables.py."""
    return status.in_([sa.literal_column(f"'{code}'") for code in t.WAITING_STATUSES])


def _rejected_item() -> sa.ColumnElement[Any]:
    """What one reject is: the invoice, or the flow for a finding on the whole flow (ids never collide)."""
    e = t.validation_errors.c
    return sa.func.coalesce(e.invoice_id, e.flow_id)


def _whole_flow() -> sa.ColumnElement[Any]:
    """The flow of a finding on the whole flow (no invoice), else NULL (counted by nothing)."""
    e = t.validation_errors.c
    return sa.case((e.invoice_id.is_(None), e.flow_id), else_=sa.null())


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 6)


def _utc(value: dt.datetime) -> dt.datetime:
    if isinstance(value, str):  # SQLite's max() of a DATETIME column comes back as its text
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
