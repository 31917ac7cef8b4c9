"""The store's CDAR messages: the reform's lifecycle messages Relais sent and received (docs/reform.md).

A mixin of ``flows.store.Store`` (which provides ``self.engine``). `insert_cdar` takes a connection, so that
a message is recorded in the transaction that queues it (out) or applies it (in); `cdar_record` is the same
in a transaction of its own. A message is unique per (direction, issuer, message id): recording it twice
returns the first row and False, which is how a replayed message is recognised (applied once).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from flows.domain.model import utcnow
from flows.store import tables as t


class Outcome(enum.StrEnum):
    """What became of a CDAR message."""

    QUEUED = "queued"  # out: written, checked, archived, queued in the outbox to its partner
    REFUSED_OUT = "not_sent"  # out: failed the official XSD or schematron: an incident, never sent
    APPLIED = "applied"  # in: every line applied
    PARTIAL = "partially_applied"  # in: some lines applied, some refused
    REFUSED = "refused"  # in: invalid, or no line applied


@dataclasses.dataclass(slots=True)
class CdarLineRecord:
    position: int
    invoice_number: str
    status: str
    outcome: str  # "written" | "applied" | "refused"
    invoice_id: str | None = None
    reason_code: str | None = None
    rule: str | None = None
    history_id: int | None = None
    amounts: list[dict[str, str]] | None = None


@dataclasses.dataclass(slots=True)
class CdarRecord:
    direction: str  # "in" | "out"
    message_id: str
    issuer: str
    sha256: str
    outcome: Outcome
    partner: str | None = None
    flow_id: str | None = None
    return_id: str | None = None
    detail: str | None = None
    lines: list[CdarLineRecord] = dataclasses.field(default_factory=list)
    id: int | None = None
    created_at: dt.datetime | None = None


def _record(row: Any, lines: Sequence[Any] = ()) -> CdarRecord:
    return CdarRecord(
        id=row["id"],
        direction=row["direction"],
        message_id=row["message_id"],
        issuer=row["issuer"],
        sha256=row["sha256"],
        outcome=Outcome(row["outcome"]),
        partner=row["partner"],
        flow_id=row["flow_id"],
        return_id=row["return_id"],
        detail=row["detail"],
        created_at=row["created_at"],
        lines=[
            CdarLineRecord(
                position=r["position"],
                invoice_number=r["invoice_number"],
                status=r["status"],
                outcome=r["outcome"],
                invoice_id=r["invoice_id"],
                reason_code=r["reason_code"],
                rule=r["rule"],
                history_id=r["history_id"],
                amounts=json.loads(r["amounts"]) if r["amounts"] else None,
            )
            for r in lines
        ],
    )


def insert_cdar(conn: sa.Connection, rec: CdarRecord) -> bool:
    """Insert `rec` and its lines on `conn` (the caller's transaction): False, nothing written, when a message
    with the same (direction, issuer, message id) is recorded already. Sets ``rec.id``."""
    rec.created_at = rec.created_at or utcnow()
    values = {f: getattr(rec, f) for f in ("direction", "message_id", "issuer", "partner", "flow_id", "return_id")}
    stmt = sa.insert(t.cdar_messages).values(
        **values,
        sha256=rec.sha256,
        lines=len(rec.lines),
        outcome=str(rec.outcome),
        detail=rec.detail,
        created_at=rec.created_at,
    )
    try:
        with conn.begin_nested():
            rec.id = conn.execute(stmt.returning(t.cdar_messages.c.id)).scalar_one()
    except sa.exc.IntegrityError:
        return False
    if rec.lines:
        conn.execute(
            sa.insert(t.cdar_lines),
            [
                {
                    "message": rec.id,
                    "position": line.position,
                    "invoice_id": line.invoice_id,
                    "invoice_number": line.invoice_number,
                    "status": line.status,
                    "reason_code": line.reason_code,
                    "outcome": line.outcome,
                    "rule": line.rule,
                    "history_id": line.history_id,
                    "amounts": json.dumps(line.amounts) if line.amounts else None,
                }
                for line in rec.lines
            ],
        )
    return True


def supersede_not_sent(conn: sa.Connection, issuer: str, message_id: str) -> None:
    """An outgoing message recorded ``not_sent`` and now written again (after a fix) keeps its row, its id
    suffixed with ``~<row id>`` (as a superseded outbox row's key), so that the new attempt is recorded."""
    c = t.cdar_messages.c
    conn.execute(
        sa.update(t.cdar_messages)
        .where(
            c.direction == "out",
            c.issuer == issuer,
            c.message_id == message_id,
            c.outcome == str(Outcome.REFUSED_OUT),
        )
        .values(message_id=c.message_id + "~" + sa.cast(c.id, sa.String))
    )


class CdarRepo:
    """CDAR messages sent and received."""

    engine: sa.Engine

    def cdar_record(self, rec: CdarRecord) -> tuple[CdarRecord, bool]:
        """Record `rec` unless its (direction, issuer, message id) is: (the row, True when inserted)."""
        with self.engine.begin() as conn:
            if insert_cdar(conn, rec):
                return rec, True
        found = self.cdar_find(rec.direction, rec.issuer, rec.message_id)
        if found is None:  # pragma: no cover - another constraint failed
            raise RuntimeError(f"CDAR message {rec.message_id} neither inserted nor found")
        return found, False

    def cdar_find(self, direction: str, issuer: str, message_id: str) -> CdarRecord | None:
        c = t.cdar_messages.c
        q = sa.select(c.id).where(c.direction == direction, c.issuer == issuer, c.message_id == message_id)
        with self.engine.connect() as conn:
            pk = conn.execute(q).scalar()
        return self.cdar_get(pk) if pk is not None else None

    def cdar_get(self, pk: int) -> CdarRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.cdar_messages).where(t.cdar_messages.c.id == pk)).mappings().first()
            if row is None:
                return None
            lines = (
                conn.execute(
                    sa.select(t.cdar_lines).where(t.cdar_lines.c.message == pk).order_by(t.cdar_lines.c.position)
                )
                .mappings()
                .all()
            )
        return _record(row, lines)

    def cdar_list(
        self,
        *,
        direction: str | None = None,
        partner: str | None = None,
        flow_id: str | None = None,
        invoice_id: str | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> list[CdarRecord]:
        """Messages, newest first (``before``: a page's last id), without their lines but those of `invoice_id`."""
        c = t.cdar_messages.c
        q = sa.select(t.cdar_messages).order_by(c.id.desc()).limit(limit)
        if direction:
            q = q.where(c.direction == direction)
        if partner:
            q = q.where(c.partner == partner)
        if flow_id:
            q = q.where(c.flow_id == flow_id)
        if before is not None:
            q = q.where(c.id < before)
        if invoice_id:
            lc = t.cdar_lines.c
            q = q.where(c.id.in_(sa.select(lc.message).where(lc.invoice_id == invoice_id)))
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
            lines: dict[int, list[Any]] = {}
            if invoice_id and rows:
                lc = t.cdar_lines.c
                for r in conn.execute(
                    sa.select(t.cdar_lines)
                    .where(lc.invoice_id == invoice_id, lc.message.in_([r["id"] for r in rows]))
                    .order_by(lc.message, lc.position)
                ).mappings():
                    lines.setdefault(r["message"], []).append(r)
        return [_record(r, lines.get(r["id"], ())) for r in rows]

    def cdar_set_outcome(self, pk: int, outcome: Outcome, detail: str | None = None) -> None:
        """Change a message's outcome (e.g. queued -> not_sent); its lines are never rewritten."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t.cdar_messages).where(t.cdar_messages.c.id == pk).values(outcome=str(outcome), detail=detail)
            )

    def cdar_amounts(self, history_ids: Sequence[int]) -> dict[int, list[dict[str, str]]]:
        """The 212 amounts of the received CDAR lines that made these history entries (history id -> amounts)."""
        if not history_ids:
            return {}
        lc = t.cdar_lines.c
        q = sa.select(lc.history_id, lc.amounts).where(lc.history_id.in_(list(history_ids)), lc.amounts.is_not(None))
        with self.engine.connect() as conn:
            return {h: json.loads(a) for h, a in conn.execute(q) if a}

    def cdar_counts(self) -> dict[str, int]:
        """Messages per outcome (the dashboard, the metrics)."""
        c = t.cdar_messages.c
        q = sa.select(c.outcome, sa.func.count()).group_by(c.outcome)
        with self.engine.connect() as conn:
            return {o: n for o, n in conn.execute(q)}
