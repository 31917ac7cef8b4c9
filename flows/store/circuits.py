"""The store's billing circuits: the pieces an association may refer to, billing files, pieces whose time ran out.

A mixin of ``flows.store.Store`` (which provides ``self.engine``). Every query here uses an index
(``ix_invoices_number``, ``ix_invoices_billing_file``, ``ix_invoices_due``, ``piece_links``' key):
association lookups stay O(log n) however many pieces the store holds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa

from flows.domain.circuits import STEP_OF
from flows.domain.frameworks import Framework
from flows.domain.history import HistoryEntry, Source
from flows.domain.lifecycle import INVOICE, Actor, InvoiceStatus
from flows.domain.model import Invoice, ValidationError
from flows.domain.outbox import OutboxKind, OutboxStatus
from flows.store import tables as t
from flows.store.history import Turn
from flows.store.records import _invoice


@dataclasses.dataclass(frozen=True, slots=True)
class PieceRef:
    """A recorded piece an association (BT-25) may name: what the association rules check."""

    id: str
    framework: Framework
    number: str
    supplier_id: str | None
    buyer_siret: str | None
    status: InvoiceStatus
    billing_file_id: str | None
    followed_by: str | None  # the piece that follows it (not refused), if any
    qualification: bool  # recorded while its partner was in qualification: never a real predecessor


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StatusMove:
    """One status change of `CircuitsRepo.move_piece`: the arguments of `HistoryRepo.set_invoice_status`."""

    target: InvoiceStatus
    actor: Actor
    source: Source
    check: Callable[[InvoiceStatus, str | None], None]  # (current status, holder): raises to refuse the move
    reason: str | None = None
    reason_code: str | None = None
    turn: Turn | None = None  # the new (holder, due_at); None keeps them


def take_links(conn: sa.Connection, pairs: Sequence[tuple[str, str]]) -> set[str]:
    """Record (previous_id, follower_id) associations; the followers whose previous piece another
    follower took first (meanwhile, or in this very chunk) are returned: they lose."""
    if not pairs:
        return set()
    rows = [{"previous_id": p, "invoice_id": i} for p, i in pairs]
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(t.piece_links).on_conflict_do_nothing(), rows)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(t.piece_links).on_conflict_do_nothing(), rows)
    lk = t.piece_links.c
    owners = dict(
        conn.execute(sa.select(lk.previous_id, lk.invoice_id).where(lk.previous_id.in_([p for p, _ in pairs]))).all()
    )
    return {i for p, i in pairs if owners.get(p) != i}


def link_followers(
    conn: sa.Connection, invoices: Sequence[Invoice], lost_race: Callable[[Invoice], ValidationError]
) -> list[Invoice]:
    """Take the links of the accepted followers of a chunk (`take_links`); those whose previous piece
    another follower took first are rejected in place (REJETEE with `lost_race`'s finding, out of any
    billing file) and returned."""
    followers = [i for i in invoices if i.previous_id and not i.rejected]
    losers = take_links(conn, [(i.previous_id, i.id) for i in followers if i.previous_id])
    lost = []
    for inv in followers:
        if inv.id in losers:
            inv.errors.append(lost_race(inv))
            inv.status = InvoiceStatus.REJETEE
            inv.holder, inv.due_at = inv.buyer_siret, None
            inv.previous_id = inv.billing_file_id = None
            lost.append(inv)
    return lost


#: The reason of the history entry of a piece an A22 replaces (French first: people read it).
REPLACED_REASON = "Remplacée par le projet de décompte général {id} (A22, procédure tacite)"


def followed(conn: sa.Connection, followers: Sequence[Invoice], at: dt.datetime) -> None:
    """What an accepted follower does to the piece it follows, in the transaction that records it: the
    piece's actor answered (its deadline is cleared); a framework that replaces (A22) moves it to
    REMPLACEE_PAR_A22 (by the platform, with its history entry) where the platform may replace it."""
    i, f = t.invoices.c, t.flows.c
    previous = [inv.previous_id for inv in followers if inv.previous_id and not inv.rejected]
    if not previous:
        return
    conn.execute(sa.update(t.invoices).where(i.id.in_(previous)).values(due_at=None))
    # Its actor's step is over (the MOE answered an A4 with its A15, the MOA an A15 with its A19, the supplier
    # an A20 with its A8): nobody's turn. A piece at its recipient (an A5 followed by an A6) stays the buyer's.
    waiting = [str(s) for s in STEP_OF]
    conn.execute(sa.update(t.invoices).where(i.id.in_(previous), i.status.in_(waiting)).values(holder=None))
    target = InvoiceStatus.REMPLACEE_PAR_A22
    for inv in followers:
        if inv.rejected or not inv.previous_id or not inv.framework.info.replaces:
            continue
        q = sa.select(i.status, f.partner).join(t.flows, f.id == i.flow_id).where(i.id == inv.previous_id)
        if conn.dialect.name == "postgresql":
            q = q.with_for_update(of=t.invoices)
        row = conn.execute(q).first()
        if row is None or not INVOICE.allowed(InvoiceStatus(row[0]), target, Actor.PLATFORM):
            continue  # it moved meanwhile to where it cannot be replaced: the follower stands, the piece stays
        conn.execute(
            sa.update(t.invoices)
            .where(i.id == inv.previous_id, i.status == row[0])
            .values(status=str(target), holder=None, due_at=None)
        )
        conn.execute(
            sa.insert(t.invoice_history).values(
                invoice_id=inv.previous_id,
                partner=row[1],
                status=str(target),
                previous=row[0],
                actor=str(Actor.PLATFORM),
                source=str(Source.PLATFORM),
                reason=REPLACED_REASON.format(id=inv.id),
                at=at,
            )
        )


def release_link(conn: sa.Connection, invoice_id: str) -> None:
    """A follower refused or rejected: the piece it followed may be followed again."""
    conn.execute(sa.delete(t.piece_links).where(t.piece_links.c.invoice_id == invoice_id))


class CircuitsRepo:
    engine: sa.Engine

    if TYPE_CHECKING:  # provided by flows.store.history.HistoryRepo, combined in Store

        def set_invoice_status(
            self,
            invoice_id: str,
            target: InvoiceStatus,
            *,
            actor: Actor,
            source: Source,
            reason: str | None,
            check: Callable[[InvoiceStatus, str | None], None],
            reason_code: str | None = None,
            turn: Turn | None = None,
            conn: sa.Connection | None = None,
        ) -> HistoryEntry | None: ...

    def move_piece(
        self,
        invoice_id: str,
        moves: Sequence[StatusMove],
        *,
        release: bool = False,
        deliver: bool = False,
        validator: tuple[int, str] | None = None,
    ) -> list[HistoryEntry] | None:
        """Make `moves` one after the other on one piece, in one transaction, with what goes with them:
        `release` frees the association it took (a follower refused or rejected: `release_link`),
        `deliver` makes its held delivery pending (made available to its recipient: the dispatcher sends
        it), `validator` (level, SIRET) records a corrected validator. All or nothing: a check that raises,
        or `flows.store.history.StatusChanged`, leaves the piece as it was. None when there is no such piece."""
        entries: list[HistoryEntry] = []
        with self.engine.begin() as conn:
            for m in moves:
                entry = self.set_invoice_status(
                    invoice_id, m.target, actor=m.actor, source=m.source, reason=m.reason, check=m.check,
                    reason_code=m.reason_code, turn=m.turn, conn=conn,
                )  # fmt: skip
                if entry is None:
                    return None
                entries.append(entry)
            if validator is not None:
                level, siret = validator
                column = "validator_2" if level == 2 else "validator_1"
                conn.execute(sa.update(t.invoices).where(t.invoices.c.id == invoice_id).values({column: siret}))
            if release:
                release_link(conn, invoice_id)
            if deliver:
                o = t.outbox.c
                conn.execute(
                    sa.update(t.outbox)
                    .where(
                        o.invoice_id == invoice_id,
                        o.kind == str(OutboxKind.DELIVERY),
                        o.status == OutboxStatus.HELD,
                    )
                    .values(status=OutboxStatus.PENDING)
                )
        return entries

    def delivery_status(self, invoice_id: str) -> str | None:
        """The status of a piece's delivery outbox row (pending, held, sent...); None when it has none."""
        o = t.outbox.c
        q = sa.select(o.status).where(o.invoice_id == invoice_id, o.kind == str(OutboxKind.DELIVERY)).order_by(o.id)
        with self.engine.connect() as conn:
            rows = conn.execute(q).scalars().all()
        return rows[-1] if rows else None

    def pieces_by_number(self, number: str, *, limit: int = 50) -> list[PieceRef]:
        """The recorded pieces with this number (any supplier), accepted or not, newest first: the
        candidates of an association (index ``ix_invoices_number``)."""
        i, f, lk = t.invoices.c, t.flows.c, t.piece_links.c
        q = (
            sa.select(
                i.id,
                i.framework,
                i.number,
                i.supplier_id,
                i.buyer_siret,
                i.status,
                i.billing_file_id,
                lk.invoice_id,
                f.qualification,
            )  # fmt: skip
            .join(t.flows, f.id == i.flow_id)
            .outerjoin(t.piece_links, lk.previous_id == i.id)
            .where(i.number == number)
            .order_by(i.flow_id.desc(), i.position)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                PieceRef(r[0], Framework(r[1] or "A1"), r[2], r[3], r[4], InvoiceStatus(r[5]), r[6], r[7], bool(r[8]))
                for r in conn.execute(q).all()
            ]

    def billing_file(self, file_id: str) -> list[Invoice]:
        """The pieces of a billing file, in the order they were recorded (empty: no such file). A piece's
        id is accepted too: its file is read."""
        i = t.invoices.c
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(i.billing_file_id).where(i.id == file_id)).scalar()
            key = found or file_id
            rows = conn.execute(
                sa.select(t.invoices).where(i.billing_file_id == key).order_by(i.flow_id, i.position)
            ).mappings()
            return [_invoice(r) for r in rows]

    def due_pieces(self, now: dt.datetime, statuses: Sequence[InvoiceStatus], *, limit: int = 500) -> list[Invoice]:
        """Pieces whose actor's time ran out (``due_at`` <= `now`) in one of `statuses`, oldest first
        (index ``ix_invoices_due``)."""
        i = t.invoices.c
        q = (
            sa.select(t.invoices)
            .where(i.due_at.is_not(None), i.due_at <= now, i.status.in_([str(s) for s in statuses]))
            .order_by(i.due_at, i.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_invoice(r) for r in conn.execute(q).mappings()]
