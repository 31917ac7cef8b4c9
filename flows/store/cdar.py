"""The store's CDAR messages: the reform's lifecycle messages Relais sent and received (docs/reform.md).

A mixin of ``flows.store.Store`` (which provides ``self.engine``). `insert_cdar` takes a connection, so that
a message is recorded in the transaction that queues it (out) or applies it (in); `cdar_record` is the same
in a transaction of its own. A message is unique per (direction, issuer, message id): recording it twice
returns the first row and False, which is how a replayed message is recognised (applied once).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from flows.domain.frameworks import Framework
from flows.domain.history import HistoryEntry
from flows.domain.lifecycle import InvoiceStatus
from flows.domain.outbox import OutboxKind
from flows.store import tables as t
from flows.store.circuits import StatusMove, release_link
from flows.store.records import (  # noqa: F401  # re-exported: the CDAR records live with the others
    CdarLineRecord,
    CdarRecord,
    Outcome,
    _cdar,
    insert_cdar,
    supersede_not_sent,
)


@dataclasses.dataclass(frozen=True, slots=True)
class CdarTarget:
    """A recorded invoice a received CDAR line may name (`CdarRepo.cdar_targets`): who deposited it, to whom
    it was delivered, where it stands."""

    id: str
    number: str
    supplier_id: str | None
    issue_date: dt.date | None
    status: InvoiceStatus
    framework: Framework
    depositor: str  # the partner that sent the invoice's flow (the seller's side)
    delivered_to: frozenset[str]  # the partners (or SIRETs) its delivery rows were addressed to (the buyer's side)
    qualification: bool  # recorded by a flow in qualification: no lifecycle


#: A received line to apply (`CdarRepo.cdar_apply`): its record's position, the invoice, the move; `refused`
#: turns (the line's position, the exception its move's check raised) into the line's rule (None: let it
#: propagate: an incident).
CdarMove = tuple[int, str, StatusMove]
Refusal = Callable[[int, Exception], str | None]


class _Replayed(Exception):
    """The message was recorded meanwhile (same direction, issuer, id): roll this application back."""


class CdarRepo:
    """CDAR messages sent and received."""

    engine: sa.Engine

    if TYPE_CHECKING:  # provided by flows.store.history.HistoryRepo, combined in Store

        def set_invoice_status(
            self,
            invoice_id: str,
            target: InvoiceStatus,
            *,
            actor: Any,
            source: Any,
            reason: str | None,
            check: Callable[[InvoiceStatus, str | None], None],
            reason_code: str | None = None,
            turn: Any = None,
            conn: sa.Connection | None = None,
        ) -> HistoryEntry | None: ...

    def cdar_targets(self, number: str, *, limit: int = 50) -> list[CdarTarget]:
        """The recorded invoices with this number (BT-1), any supplier, newest first, with their depositor
        and the partners their deliveries went to (index ``ix_invoices_number``)."""
        i, f, o = t.invoices.c, t.flows.c, t.outbox.c
        q = (
            sa.select(i.id, i.number, i.supplier_id, i.issue_date, i.status, i.framework, f.partner, f.qualification)
            .join(t.flows, f.id == i.flow_id)
            .where(i.number == number)
            .order_by(i.flow_id.desc(), i.position)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
            delivered: dict[str, set[str]] = {}
            if rows:
                d = sa.select(o.invoice_id, o.partner).where(
                    o.invoice_id.in_([r[0] for r in rows]), o.kind == str(OutboxKind.DELIVERY)
                )
                for inv_id, partner in conn.execute(d):
                    if partner:
                        delivered.setdefault(inv_id, set()).add(partner)
        return [
            CdarTarget(
                id=r[0],
                number=r[1],
                supplier_id=r[2],
                issue_date=r[3],
                status=InvoiceStatus(r[4]),
                framework=Framework(r[5] or "A1"),
                depositor=r[6],
                delivered_to=frozenset(delivered.get(r[0], ())),
                qualification=bool(r[7]),
            )
            for r in rows
        ]

    def cdar_apply(self, rec: CdarRecord, moves: Sequence[CdarMove], refused: Refusal) -> tuple[CdarRecord, bool]:
        """Apply a received message's moves in order and record it with its lines' outcomes, in one transaction.

        Each move is tried on a savepoint: one its check refuses (`refused` gives the rule) is undone alone and
        its line marked refused with that rule; an applied one gets its history id (a rejection frees the piece
        it followed, as `move_piece` does). ``rec.outcome`` is then set from the lines. When the message is
        recorded already (a replay, or the same message applied meanwhile by another worker), nothing is
        changed: (the recorded message, False); else (`rec`, True)."""
        lines = {line.position: line for line in rec.lines}
        try:
            with self.engine.begin() as conn:
                for position, invoice_id, m in moves:
                    line = lines[position]
                    try:
                        with conn.begin_nested():
                            entry = self.set_invoice_status(
                                invoice_id, m.target, actor=m.actor, source=m.source, reason=m.reason,
                                check=m.check, reason_code=m.reason_code, turn=m.turn, conn=conn,
                            )  # fmt: skip
                            if entry is not None and m.target.is_rejected:
                                release_link(conn, invoice_id)
                    except Exception as e:
                        rule = refused(position, e)
                        if rule is None:
                            raise
                        line.outcome, line.rule = "refused", rule
                        continue
                    if entry is None:  # deleted meanwhile (its flow reprocessed): not applied
                        line.outcome, line.rule = "refused", refused(position, LookupError(invoice_id)) or "unknown"
                        continue
                    line.outcome, line.history_id = "applied", entry.id
                applied = sum(line.outcome == "applied" for line in rec.lines)
                rec.outcome = (
                    Outcome.APPLIED
                    if rec.lines and applied == len(rec.lines)
                    else Outcome.PARTIAL
                    if applied
                    else Outcome.REFUSED
                )
                if not insert_cdar(conn, rec):
                    raise _Replayed
        except _Replayed:
            found = self.cdar_find(rec.direction, rec.issuer, rec.message_id)
            if found is None:  # pragma: no cover - another constraint failed
                raise RuntimeError(f"CDAR message {rec.message_id} neither inserted nor found") from None
            return found, False
        return rec, True

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
        return _cdar(row, lines)

    def cdar_list(
        self,
        *,
        direction: str | None = None,
        partner: str | None = None,
        flow_id: str | None = None,
        invoice_id: str | None = None,
        before: int | None = None,
        limit: int = 100,
        outcome: str | None = None,
        invoice_ids: Sequence[str] = (),
    ) -> list[CdarRecord]:
        """Messages, newest first (``before``: a page's last id), without their lines but those of `invoice_id`
        (or of any of `invoice_ids`: the messages naming one of them)."""
        wanted = [invoice_id] if invoice_id else list(dict.fromkeys(invoice_ids))
        c = t.cdar_messages.c
        q = sa.select(t.cdar_messages).order_by(c.id.desc()).limit(limit)
        if direction:
            q = q.where(c.direction == direction)
        if partner:
            q = q.where(c.partner == partner)
        if flow_id:
            q = q.where(c.flow_id == flow_id)
        if outcome:
            q = q.where(c.outcome == outcome)
        if before is not None:
            q = q.where(c.id < before)
        if wanted:
            lc = t.cdar_lines.c
            q = q.where(c.id.in_(sa.select(lc.message).where(lc.invoice_id.in_(wanted))))
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
            lines: dict[int, list[Any]] = {}
            if wanted and rows:
                lc = t.cdar_lines.c
                for r in conn.execute(
                    sa.select(t.cdar_lines)
                    .where(lc.invoice_id.in_(wanted), lc.message.in_([r["id"] for r in rows]))
                    .order_by(lc.message, lc.position)
                ).mappings():
                    lines.setdefault(r["message"], []).append(r)
        return [_cdar(r, lines.get(r["id"], ())) for r in rows]

    def cdar_set_outcome(self, pk: int, outcome: Outcome, detail: str | None = None) -> None:
        """Change a message's outcome (e.g. queued -> not_sent); its lines are never rewritten."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t.cdar_messages).where(t.cdar_messages.c.id == pk).values(outcome=str(outcome), detail=detail)
            )

    def cdar_outcome_counts(self, partner: str | None = None) -> dict[tuple[str, str], int]:
        """Messages per (direction, outcome), of one partner or all (the web pages, the metrics)."""
        c = t.cdar_messages.c
        q = sa.select(c.direction, c.outcome, sa.func.count()).group_by(c.direction, c.outcome)
        if partner is not None:
            q = q.where(c.partner == partner)
        with self.engine.connect() as conn:
            return {(d, o): n for d, o, n in conn.execute(q)}

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
