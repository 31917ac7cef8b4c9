"""The dashboard's daily roll-ups (migration 0021): counts per UTC reception day and partner that the landing
page and the rejects page read instead of counting a month of flows and findings at each view.

- ``rollup_flows``: per status, the flows, their invoices (``invoice_count``) and rejected invoices;
- ``rollup_rejects``: per rule of the current fatal findings, the invoices it rejects (distinct), the flows
  it rejects as a whole (a finding on no invoice), the flows it touches, its findings.

Triggers on ``flows`` and ``validation_errors`` append a signed row for each change (the old status -1,
the new +1; a finding's invoice counted once however many findings of the rule it has), in the writer's
own transaction: the roll-ups are never out of step with the flows, whatever writes them (the pipeline, a
reprocessing, a reopening, a claim, a bulk write). Writers only INSERT: no lock, no deadlock between
workers closing flows of the same partner and day. Readers SUM the rows of the period (a few thousand);
`RollupsRepo.compact_rollups` sums the appended rows (``merged`` false) into one row per key, and
`RollupsRepo.rebuild_rollups` recounts everything from the flows and findings (``relais db rollups``).

A mixin of ``flows.store.Store`` (which provides ``self.engine``); the dashboard's queries
(flows.store.dashboard) read through `flow_rows`, `rule_rows` and `rule_latest`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa

from flows.domain.model import Flag, utcnow
from flows.store import tables as t
from flows.store.records import current_findings

FLOW_COUNTS = ("flows", "invoices", "rejected")
REJECT_COUNTS = ("invoices", "whole_flows", "flows", "findings")
BOUNDS = ("first_flow", "last_flow")  # of rollup_rejects: the least and greatest flow id counted there
#: A reader compacts the roll-ups first when one holds at least this many appended rows.
COMPACT_AT = 2_000
#: ... looking at most every this many seconds.
CHECK_EVERY = 10.0
#: The PostgreSQL advisory lock of compactions and rebuilds (one at a time; other schemas share it).
_LOCK = 0x52454C41  # "RELA"


def _rollup(name: str, key: sa.Column[str], *counts: str, extra: tuple[sa.Column[str], ...] = ()) -> sa.Table:
    """A roll-up table (of flows.store.tables.metadata): signed counts per UTC day, partner and key."""
    fresh = sa.column("merged") == sa.false()  # appended by the triggers, not compacted yet
    return sa.Table(
        name,
        t.metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("partner", sa.String(128), nullable=False),
        key,
        *[sa.Column(c, sa.Integer, nullable=False) for c in counts],
        *extra,
        sa.Column("merged", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Index(f"ix_{name}_day", "day", "partner", key.name),
        sa.Index(f"ix_{name}_fresh", "id", postgresql_where=fresh, sqlite_where=fresh),
    )


rollup_flows = _rollup(
    "rollup_flows", sa.Column("status", sa.String(40), nullable=False), "flows", "invoices", "rejected"
)
rollup_rejects = _rollup(
    "rollup_rejects",
    sa.Column("rule", sa.String(64), nullable=False),
    *("invoices", "whole_flows", "flows", "findings"),
    extra=(sa.Column("first_flow", sa.String(32)), sa.Column("last_flow", sa.String(32))),  # bounds of its flow ids
)


class Span:
    """The period: `days` UTC days ending with `today` (default: today), as a half-open interval."""

    def __init__(self, days: int, today: dt.date | None) -> None:
        days = max(1, int(days))
        last = today or utcnow().date()
        first = last - dt.timedelta(days=days - 1)
        self.days = [first + dt.timedelta(days=k) for k in range(days)]
        self.start = _midnight(first)
        self.end = _midnight(last) + dt.timedelta(days=1)

    def where(self, column: sa.ColumnElement[Any]) -> list[sa.ColumnElement[bool]]:
        """`column` (a flows column) in the period, of production flows only: a qualification flow is
        counted apart, with its partner's pass rate (Store.qualification_counts)."""
        flows = getattr(column, "table")  # noqa: B009  # a Column's table (ColumnElement does not type it)
        return [column >= self.start, column < self.end, flows.c.qualification == sa.false()]

    def rollup(self, table: sa.Table, partner: str | None) -> list[sa.ColumnElement[bool]]:
        """A roll-up's rows of the period (and of `partner`)."""
        where = [table.c.day >= self.days[0], table.c.day <= self.days[-1]]
        return where + ([table.c.partner == partner] if partner else [])


class Day(NamedTuple):
    """A rule's day in `rule_days`."""

    rejects: int  # invoices and whole flows
    findings: int
    first_flow: str | None  # bounds of the ids of its flows
    last_flow: str | None


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def flow_rows(conn: sa.Connection, span: Span, partner: str | None) -> list[tuple[dt.date, str, int, int, int]]:
    """(day, status, flows, invoices, rejected) of the period, statuses with flows only."""
    r = rollup_flows.c
    flows = sa.func.sum(r.flows)
    q = (
        sa.select(r.day, r.status, flows, sa.func.sum(r.invoices), sa.func.sum(r.rejected))
        .where(*span.rollup(rollup_flows, partner))
        .group_by(r.day, r.status)
        .having(flows != 0)
    )
    return [(_date(d), s, int(n), int(i), int(b)) for d, s, n, i, b in conn.execute(q)]


def rule_rows(conn: sa.Connection, span: Span, partner: str | None, limit: int) -> list[tuple[str, int, int, int, int]]:
    """(rule, invoices, flows, findings, whole flows) of the rules with current fatal findings in the period,
    most rejects (invoices and whole flows) first, then most flows, then by code; at most `limit`."""
    r = rollup_rejects.c
    invoices, whole, flows = sa.func.sum(r.invoices), sa.func.sum(r.whole_flows), sa.func.sum(r.flows)
    q = (
        sa.select(r.rule, invoices, flows, sa.func.sum(r.findings), whole)
        .where(*span.rollup(rollup_rejects, partner))
        .group_by(r.rule)
        .having(sa.func.sum(r.findings) > 0)
        .order_by((invoices + whole).desc(), flows.desc(), r.rule)
        .limit(limit)
    )
    return [(rule, int(i), int(f), int(n), int(w)) for rule, i, f, n, w in conn.execute(q)]


def rule_days(
    conn: sa.Connection, span: Span, partner: str | None, rules: Sequence[str]
) -> dict[str, dict[dt.date, Day]]:
    """{rule: {day: Day}} of the period, days with findings only."""
    r = rollup_rejects.c
    findings = sa.func.sum(r.findings)
    q = (
        sa.select(
            r.rule,
            r.day,
            sa.func.sum(r.invoices) + sa.func.sum(r.whole_flows),
            findings,
            sa.func.min(r.first_flow),
            sa.func.max(r.last_flow),
        )
        .where(r.rule.in_(list(rules)), *span.rollup(rollup_rejects, partner))
        .group_by(r.rule, r.day)
        .having(findings > 0)
    )
    out: dict[str, dict[dt.date, Day]] = {}
    for rule, d, n, k, lo, hi in conn.execute(q):
        out.setdefault(rule, {})[_date(d)] = Day(int(n), int(k), lo, hi)
    return out


def rule_latest(
    conn: sa.Connection, span: Span, partner: str | None, days: dict[str, dict[dt.date, Day]], need: int
) -> dict[str, list[Any]]:
    """Each rule's latest current fatal findings of the period, at least `need` of them (all those of its
    latest days), newest first (reception, then id): rows of (rule, id, flow_id, invoice_id, location,
    message, received_at). Exact and cheap: the roll-up says from which day the `need` latest are, and
    bounds of the ids of those days' flows; one query reads, for each rule, its findings of that range of
    flow ids through the rule's index (``ix_errors_rule_flow``), and keeps those of flows received since."""
    e, f = t.validation_errors.c, t.flows.c
    members = []
    starts: dict[str, dt.datetime] = {}
    for rule, per_day in days.items():
        total, since, lo, hi = 0, None, None, None
        for d in sorted(per_day, reverse=True):
            day = per_day[d]
            total, since = total + day.findings, d
            lo = day.first_flow if lo is None or (day.first_flow is not None and day.first_flow < lo) else lo
            hi = day.last_flow if hi is None or (day.last_flow is not None and day.last_flow > hi) else hi
            if total >= need:
                break
        if since is None or lo is None or hi is None:
            continue
        q = (
            sa.select(
                e.rule, e.id, e.flow_id, e.invoice_id, e.location, e.message, f.received_at, f.partner, f.qualification
            )
            .select_from(t.validation_errors.join(t.flows, f.id == e.flow_id))
            .where(e.rule == rule, e.flow_id >= lo, e.flow_id <= hi, e.flag == str(Flag.FATAL), current_findings())
        )
        members.append(q)
        starts[rule] = _midnight(since)
    out: dict[str, list[Any]] = {}
    if not members:
        return out
    queries = members
    union = queries[0] if len(queries) == 1 else sa.union_all(*queries)
    # The period, the partner and production flows are kept here: in SQL, PostgreSQL read the whole day's
    # flows through their reception index for each rule instead of a few primary key probes.
    for row in conn.execute(union):
        received = _aware(row[6])
        if received >= starts[row[0]] and received < span.end and not row[8] and (not partner or row[7] == partner):
            out.setdefault(row[0], []).append(row)
    for rows in out.values():
        rows.sort(key=lambda r: (r[6], r[1]), reverse=True)
    return out


class RollupsRepo:
    engine: sa.Engine
    _rollups_checked: float = -CHECK_EVERY  # when a reader last looked for rows to compact (time.monotonic)

    def compact_rollups(self, *, wait: bool = True) -> int:
        """Sum the rows the triggers appended, with the merged row of the same key, into one merged row per
        (day, partner, status or rule) (keys whose counts all cancel out go): how many rows were summed.
        One transaction; on PostgreSQL one compaction at a time (`wait` False: none if one is running)."""
        done = 0
        with self.engine.begin() as conn:
            if not _lock(conn, wait):
                return 0
            for table, counts in ((rollup_flows, FLOW_COUNTS), (rollup_rejects, REJECT_COUNTS)):
                done += _compact(conn, table, counts)
        return done

    def rebuild_rollups(self) -> tuple[int, int]:
        """Count the roll-ups again from the flows and findings (after a restore, or a doubt): their rows
        replaced in one transaction (on PostgreSQL one snapshot: the writes made meanwhile are counted once,
        by their triggers). The rows of (rollup_flows, rollup_rejects)."""
        for attempt in range(3):
            try:
                return self._rebuild()
            except sa.exc.OperationalError as e:  # PostgreSQL: a compaction deleted rows meanwhile
                if attempt == 2 or getattr(e.orig, "sqlstate", None) != "40001":
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _rebuild(self) -> tuple[int, int]:
        with self.engine.connect() as base:
            pg = self.engine.dialect.name == "postgresql"
            conn = base.execution_options(isolation_level="REPEATABLE READ") if pg else base
            with conn.begin():
                _lock(conn, True)
                conn.execute(sa.delete(rollup_flows))
                conn.execute(sa.delete(rollup_rejects))
                f, e = t.flows.c, t.validation_errors.c
                day = _day(conn, f.received_at)
                flows_q = (
                    sa.select(
                        day,
                        f.partner,
                        f.status,
                        sa.func.count(),
                        sa.func.coalesce(sa.func.sum(f.invoice_count), 0),
                        sa.func.coalesce(sa.func.sum(f.rejected_count), 0),
                        sa.true(),
                    )
                    .where(f.qualification == sa.false())
                    .group_by(day, f.partner, f.status)
                )
                whole = sa.case((e.invoice_id.is_(None), e.flow_id), else_=sa.null())
                rejects_q = (
                    sa.select(
                        day,
                        f.partner,
                        e.rule,
                        sa.func.count(sa.distinct(e.invoice_id)),
                        sa.func.count(sa.distinct(whole)),
                        sa.func.count(sa.distinct(e.flow_id)),
                        sa.func.count(),
                        sa.func.min(e.flow_id),
                        sa.func.max(e.flow_id),
                        sa.true(),
                    )
                    .select_from(t.validation_errors.join(t.flows, f.id == e.flow_id))
                    .where(e.flag == str(Flag.FATAL), current_findings(), f.qualification == sa.false())
                    .group_by(day, f.partner, e.rule)
                )
                keys = ("day", "partner")
                n1 = conn.execute(
                    sa.insert(rollup_flows).from_select([*keys, "status", *FLOW_COUNTS, "merged"], flows_q)
                ).rowcount
                n2 = conn.execute(
                    sa.insert(rollup_rejects).from_select([*keys, "rule", *REJECT_COUNTS, *BOUNDS, "merged"], rejects_q)
                ).rowcount
        return int(n1), int(n2)

    def rollups_fresh(self) -> int:
        """How many appended rows wait for a compaction (both roll-ups)."""
        with self.engine.connect() as conn:
            return sum(conn.execute(sa.select(_fresh(rollup_flows, None), _fresh(rollup_rejects, None))).one())

    def _rollups_read(self) -> sa.Connection:
        """A connection to read the roll-ups with, compacted first when `COMPACT_AT` rows wait (looked at most
        every `CHECK_EVERY` seconds; without waiting for a compaction already running: the readers sum its
        rows meanwhile)."""
        now = time.monotonic()
        if now - self._rollups_checked >= CHECK_EVERY:
            self._rollups_checked = now
            with self.engine.connect() as conn:
                waiting = [_fresh(table, COMPACT_AT) for table in (rollup_flows, rollup_rejects)]
                due = max(conn.execute(sa.select(*waiting)).one()) >= COMPACT_AT
            if due:
                self.compact_rollups(wait=False)
        conn = self.engine.connect()
        if self.engine.dialect.name == "postgresql":  # one snapshot for the page's few queries
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            # Small queries: starting parallel workers for them cost more than they do (30 ms under load).
            conn.execute(sa.text("SET LOCAL max_parallel_workers_per_gather = 0"))
        return conn


def _fresh(table: sa.Table, cap: int | None) -> sa.ScalarSelect[int]:
    """How many rows of `table` wait for a compaction (at most `cap`), as a scalar subquery."""
    q = sa.select(table.c.id).where(table.c.merged == sa.false())
    if cap is not None:
        q = q.limit(cap)
    return sa.select(sa.func.count()).select_from(q.subquery()).scalar_subquery()


def _compact(conn: sa.Connection, table: sa.Table, counts: Iterable[str]) -> int:
    c = table.c
    key_cols = [c.day, c.partner, c[c.keys()[3]]]
    count_cols = [c[name] for name in counts]
    bounds = [c[name] for name in BOUNDS if name in c]
    fresh = sa.select(*key_cols).where(c.merged == sa.false())
    gone = conn.execute(
        sa.delete(table).where(sa.tuple_(*key_cols).in_(fresh)).returning(*key_cols, *count_cols, *bounds)
    ).all()
    sums: dict[tuple[Any, ...], list[Any]] = {}
    n = len(count_cols)
    for row in gone:
        acc = sums.setdefault(tuple(row[:3]), [0] * n + [None] * len(bounds))
        for k in range(n):
            acc[k] += int(row[3 + k])
        if bounds:
            lo, hi = row[3 + n], row[4 + n]
            acc[n] = lo if acc[n] is None or (lo is not None and lo < acc[n]) else acc[n]
            acc[n + 1] = hi if acc[n + 1] is None or (hi is not None and hi > acc[n + 1]) else acc[n + 1]
    names = [*counts, *(b.name for b in bounds)]
    rows = [
        {
            "day": _date(k[0]),
            "partner": k[1],
            key_cols[2].name: k[2],
            **dict(zip(names, acc, strict=True)),
            "merged": True,
        }
        for k, acc in sums.items()
        if any(acc[:n])
    ]
    if rows:
        conn.execute(sa.insert(table), rows)
    return len(gone)


def _lock(conn: sa.Connection, wait: bool) -> bool:
    if conn.dialect.name != "postgresql":
        return True  # SQLite: one writer at a time already
    if wait:
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_LOCK)))
        return True
    return bool(conn.execute(sa.select(sa.func.pg_try_advisory_xact_lock(_LOCK))).scalar())


def _day(conn: sa.Connection, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """The UTC day of a timestamp, as flows.store.dashboard and the triggers of migration 0021 compute it."""
    if conn.dialect.name == "postgresql":
        return sa.cast(sa.func.timezone(sa.literal_column("'UTC'"), column), sa.Date)
    return sa.func.date(column)


def _aware(value: Any) -> dt.datetime:
    """A timestamp read back (SQLite: naive UTC) as an aware UTC datetime."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))
