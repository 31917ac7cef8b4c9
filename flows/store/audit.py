"""The store's part for reading the audit log a page at a time, and for counting anonymous refusals.

A mixin of ``flows.store.Store`` (which provides ``self.engine``). Two tables:

- ``audit_log``: one row per audited request (written by `flows.store.api.ApiRepo.audit`, append-only).
  `audit_page` reads it newest first, a page at a time (keyset on the row id: page N costs what page 1
  costs), filtered by actor, action, outcome and period in SQL.
- ``audit_refusals``: the refusals of a client that is not known yet (no session, no valid token),
  counted per (client address, minute, action) by `audit_refusal` (an atomic upsert on SQLite and
  PostgreSQL: ``INSERT ... ON CONFLICT DO UPDATE SET count = count + 1``). A client refused a thousand
  times in a minute adds one row, not a thousand. `refusal_page` reads them as `audit_page` does.

An actor or action filter ending with ``*`` matches a prefix (``web:*``: every web user).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import sqlalchemy as sa

from flows.store import tables as t
from flows.store.api import AuditRow, audit_row
from flows.store.records import _aware_required

AUDIT_PAGE = 100


@dataclasses.dataclass(frozen=True, slots=True)
class AuditQuery:
    """A page of the audit log: filters (all optional), then the rows older than `before` (a row id)."""

    actor: str | None = None  # a principal ("web:alice", "partner:op-a", "anonymous"), or a prefix "web:*"
    action: str | None = None  # "web.login", "invoice.status", or a prefix "web.*"
    outcome: str | None = None  # "ok" | "refused" | "error"
    since: dt.datetime | None = None  # at or after
    until: dt.datetime | None = None  # before
    before: int | None = None  # the previous page's last row id
    limit: int = AUDIT_PAGE


@dataclasses.dataclass(frozen=True, slots=True)
class RefusalCount:
    """`count` refusals of `action` for `client` within `minute` (UTC), the last one's status and detail."""

    id: int
    client: str
    minute: dt.datetime
    action: str
    principal: str
    count: int
    first_at: dt.datetime
    last_at: dt.datetime
    last_status: int | None
    last_target: str | None
    last_detail: str | None


def _match(column: sa.ColumnElement[Any], value: str) -> sa.ColumnElement[bool]:
    """`column` equals `value`, or starts with it when it ends with ``*`` (LIKE, its wildcards escaped)."""
    if value.endswith("*"):
        prefix = value[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return column.like(prefix + "%", escape="\\")
    return column == value


def _refusal(r: sa.RowMapping) -> RefusalCount:
    return RefusalCount(
        id=r["id"],
        client=r["client"],
        minute=_aware_required(r["minute"]),
        action=r["action"],
        principal=r["principal"],
        count=r["count"],
        first_at=_aware_required(r["first_at"]),
        last_at=_aware_required(r["last_at"]),
        last_status=r["last_status"],
        last_target=r["last_target"],
        last_detail=r["last_detail"],
    )


def _page(rows: list[Any], limit: int) -> tuple[list[Any], int | None]:
    """The page's rows and the key of the next page (None: this is the last one)."""
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None


class AuditRepo:
    engine: sa.Engine

    def audit_refusal(
        self,
        client: str | None,
        action: str,
        *,
        principal: str,
        http_status: int | None,
        target: str | None = None,
        detail: str | None = None,
        at: dt.datetime | None = None,
    ) -> None:
        """Count one refusal of a client not known yet: one row per (client, minute, action), its count
        raised atomically when it exists (concurrent callers never lose a count nor add a second row)."""
        now = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        values = {
            "client": (client or "?")[:64],
            "minute": now.replace(second=0, microsecond=0),
            "action": action[:64],
            "principal": principal[:200],
            "count": 1,
            "first_at": now,
            "last_at": now,
            "last_status": http_status,
            "last_target": target[:200] if target else None,
            "last_detail": detail[:1000] if detail else None,
        }
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt: Any = pg_insert(t.audit_refusals).values(**values)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt = sqlite_insert(t.audit_refusals).values(**values)
        c = t.audit_refusals.c
        stmt = stmt.on_conflict_do_update(
            index_elements=[c.client, c.minute, c.action],
            set_={
                "count": c.count + 1,
                "last_at": stmt.excluded.last_at,
                "last_status": stmt.excluded.last_status,
                "last_target": stmt.excluded.last_target,
                "last_detail": stmt.excluded.last_detail,
            },
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def audit_page(self, q: AuditQuery) -> tuple[list[AuditRow], int | None]:
        """A page of the audit log, newest first, and the `before` of the next page (None: no more)."""
        a = t.audit_log.c
        stmt = sa.select(t.audit_log)
        if q.actor:
            stmt = stmt.where(_match(a.principal, q.actor))
        if q.action:
            stmt = stmt.where(_match(a.action, q.action))
        if q.outcome:
            stmt = stmt.where(a.outcome == q.outcome)
        if q.since is not None:
            stmt = stmt.where(a.at >= q.since)
        if q.until is not None:
            stmt = stmt.where(a.at < q.until)
        if q.before is not None:
            stmt = stmt.where(a.id < q.before)
        stmt = stmt.order_by(a.id.desc()).limit(q.limit + 1)
        with self.engine.connect() as conn:
            rows = [audit_row(r) for r in conn.execute(stmt).mappings()]
        return _page(rows, q.limit)

    def refusal_page(self, q: AuditQuery) -> tuple[list[RefusalCount], int | None]:
        """A page of the counted refusals, newest first; the actor filter matches the client address or
        the principal, the period the refusals' minute; an outcome other than ``refused`` matches none."""
        r = t.audit_refusals.c
        if q.outcome and q.outcome != "refused":
            return [], None
        stmt = sa.select(t.audit_refusals)
        if q.actor:
            stmt = stmt.where(sa.or_(_match(r.client, q.actor), _match(r.principal, q.actor)))
        if q.action:
            stmt = stmt.where(_match(r.action, q.action))
        if q.since is not None:
            stmt = stmt.where(r.last_at >= q.since)
        if q.until is not None:
            stmt = stmt.where(r.minute < q.until)
        if q.before is not None:
            stmt = stmt.where(r.id < q.before)
        stmt = stmt.order_by(r.id.desc()).limit(q.limit + 1)
        with self.engine.connect() as conn:
            rows = [_refusal(x) for x in conn.execute(stmt).mappings()]
        return _page(rows, q.limit)


# ---- `relais archive verify`: every archive object the store refers to ------------------------------
#
# The store keeps SHA-256 digests of archived bytes in five places: a flow's bytes (``flows.sha256``), an
# outbox row's payload (return flows, MDNs: ``outbox.archive_sha256``), an AS2 message as received or sent
# and its MDN (``as2_messages.raw_sha256``, ``mdn_archive_sha256``), and a status return flow
# (``status_returns.archive_sha256``).


@dataclasses.dataclass(frozen=True, slots=True)
class ArchiveRef:
    """One reference of the store to an archived object: which table and row, and when it was recorded."""

    sha256: str
    source: str  # "flow" | "outbox" | "as2_raw" | "as2_mdn" | "status_return"
    ref: str  # the row's id
    at: dt.datetime


class ArchiveRefsRepo:
    engine: sa.Engine

    def archive_refs(self, since: dt.datetime | None = None) -> list[ArchiveRef]:
        """Every archived object the store refers to (recorded at or after `since`), oldest first."""
        sources = (
            ("flow", t.flows.c.sha256, t.flows.c.id, t.flows.c.received_at),
            ("outbox", t.outbox.c.archive_sha256, t.outbox.c.id, t.outbox.c.created_at),
            ("as2_raw", t.as2_messages.c.raw_sha256, t.as2_messages.c.id, t.as2_messages.c.received_at),
            ("as2_mdn", t.as2_messages.c.mdn_archive_sha256, t.as2_messages.c.id, t.as2_messages.c.received_at),
            ("status_return", t.status_returns.c.archive_sha256, t.status_returns.c.id, t.status_returns.c.created_at),
        )
        refs: list[ArchiveRef] = []
        with self.engine.connect() as conn:
            for source, digest, ident, at in sources:
                q = sa.select(digest, ident, at).where(digest.is_not(None))
                if since is not None:
                    q = q.where(at >= since)
                for sha256, row_id, when in conn.execute(q.order_by(at, ident)):
                    if when is not None and when.tzinfo is None:
                        when = when.replace(tzinfo=dt.UTC)  # SQLite gives naive UTC datetimes
                    refs.append(ArchiveRef(sha256, source, str(row_id), when))
        refs.sort(key=lambda r: r.at)
        return refs
