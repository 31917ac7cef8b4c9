"""The store's invoice status history: appended with every change, in the transaction that makes it.

A mixin of ``flows.store.Store`` (which provides ``self.engine``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence

import sqlalchemy as sa

from flows.domain.history import HistoryEntry, Source
from flows.domain.lifecycle import Actor, InvoiceStatus
from flows.domain.model import Invoice, ValidationError, utcnow
from flows.domain.outbox import Address, OutboxKind, OutboxStatus
from flows.store import tables as t
from flows.store.records import CdarRecord, _aware_required, _invoice, insert_cdar, supersede_not_sent


class _Taken(Exception):
    """The CDAR message of a status return is recorded already: another emitter took its range."""


#: A piece's new turn: (holder SIRET, due time), set with a status change (`HistoryRepo.set_invoice_status`).
Turn = tuple[str | None, dt.datetime | None]


class StatusChanged(RuntimeError):
    """The invoice's status changed between reading and writing it (another change won): try again."""


def _entry(r: sa.RowMapping) -> HistoryEntry:
    return HistoryEntry(
        id=r["id"],
        invoice_id=r["invoice_id"],
        partner=r["partner"],
        status=InvoiceStatus(r["status"]),
        previous=InvoiceStatus(r["previous"]) if r["previous"] else None,
        actor=Actor(r["actor"]),
        source=Source(r["source"]),
        reason=r["reason"],
        at=_aware_required(r["at"]),
        reason_code=r.get("reason_code"),
    )


#: The reason of the entries a flow's rerun records when ops did not ask for it (an incident retried, a
#: worker's flow taken over).
RERUN_REASON = "Nouveau traitement du flux (après un incident ou une interruption)"


def history_rows(conn: sa.Connection, invoice_ids: Sequence[str], at: dt.datetime) -> None:
    """The entry each newly saved invoice is recorded with (its status, no previous one). An invoice
    recorded by an earlier run of its flow (reprocessed, reopened) keeps that run's entries: this one
    follows them, by ops with their reason (`flows.reprocess_reason`) when they asked for the rerun."""
    if not invoice_ids:
        return
    i, f, h = t.invoices.c, t.flows.c, t.invoice_history.c
    ids = list(invoice_ids)
    rows = conn.execute(
        sa.select(i.id, i.status, f.partner, f.reprocess_reason)
        .join(t.flows, f.id == i.flow_id)
        .where(i.id.in_(ids))
        .order_by(i.flow_id, i.position)
    ).all()
    again = {r[0] for r in conn.execute(sa.select(h.invoice_id).where(h.invoice_id.in_(ids)).distinct())}
    conn.execute(
        sa.insert(t.invoice_history),
        [
            {
                "invoice_id": inv_id,
                "partner": partner,
                "status": status,
                "previous": None,
                "actor": str(Actor.OPS if inv_id in again and why else Actor.PLATFORM),
                "source": str(Source.PLATFORM),
                "reason": (why or RERUN_REASON) if inv_id in again else None,
                "at": at,
            }
            for inv_id, status, partner, why in rows
        ],
    )


def take_numbers(
    conn: sa.Connection, invoices: Sequence[Invoice], duplicate: Callable[[Invoice, str], ValidationError]
) -> list[Invoice]:
    """Take the numbers of the accepted invoices (`invoice_numbers`); those another invoice holds are
    rejected in place (REJETEE with `duplicate`'s finding) and returned."""
    wanted: dict[tuple[str, str, int], Invoice] = {}
    for inv in invoices:
        if inv.status.frees_number or inv.rejected or not inv.supplier_id or not inv.number or not inv.issue_date:
            continue
        wanted.setdefault((inv.supplier_id, inv.number, inv.issue_date.year), inv)
    if not wanted:
        return []
    rows = [{"supplier_id": s, "number": n, "year": y, "invoice_id": i.id} for (s, n, y), i in wanted.items()]
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(t.invoice_numbers).on_conflict_do_nothing(), rows)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(t.invoice_numbers).on_conflict_do_nothing(), rows)
    n = t.invoice_numbers.c
    owners: dict[tuple[str, str, int], str] = {}
    for supplier in {k[0] for k in wanted}:
        for s_id, number, year, owner in conn.execute(
            sa.select(n.supplier_id, n.number, n.year, n.invoice_id).where(
                n.supplier_id == supplier, n.number.in_([k[1] for k in wanted if k[0] == supplier])
            )
        ):
            owners[(s_id, number, year)] = owner
    lost = []
    for key, inv in wanted.items():
        owner = owners.get(key)
        if owner is not None and owner != inv.id:
            inv.errors.append(duplicate(inv, owner))
            inv.status = InvoiceStatus.REJETEE
            lost.append(inv)
    # The same number twice in one chunk: the later ones are left to the in-flow duplicate check.
    return lost


def made_available(conn: sa.Connection, invoice_ids: Sequence[str], at: dt.datetime) -> None:
    """Delivered invoices still DEPOSEE become MISE_A_DISPOSITION (03), by the platform, with their entry; those
    issued to another platform of the reform (``routed_away``) become EN_COURS_ACHEMINEMENT (02, CDAR 201)."""
    i, f = t.invoices.c, t.flows.c
    ids = list(invoice_ids)
    if not ids:
        return
    rows = conn.execute(
        sa.select(i.id, f.partner, i.routed_away, i.routed_platform)
        .join(t.flows, f.id == i.flow_id)
        .where(i.id.in_(ids), i.status == str(InvoiceStatus.DEPOSEE))
    ).all()
    for away in (False, True):
        chosen = [r for r in rows if bool(r[2]) is away]
        if not chosen:
            continue
        status = InvoiceStatus.EN_COURS_ACHEMINEMENT if away else InvoiceStatus.MISE_A_DISPOSITION
        conn.execute(
            sa.update(t.invoices)
            .where(i.id.in_([r[0] for r in chosen]), i.status == str(InvoiceStatus.DEPOSEE))
            .values(status=str(status))
        )
        conn.execute(
            sa.insert(t.invoice_history),
            [
                {
                    "invoice_id": r[0],
                    "partner": r[1],
                    "status": str(status),
                    "previous": str(InvoiceStatus.DEPOSEE),
                    "actor": str(Actor.PLATFORM),
                    "source": str(Source.PLATFORM),
                    "reason": f"issued to platform {r[3]}" if away else "delivered to the recipient",
                    "at": at,
                }
                for r in chosen
            ],
        )


class HistoryRepo:
    engine: sa.Engine

    def invoice_status(self, invoice_id: str) -> tuple[InvoiceStatus, str] | None:
        """(current status, sender partner) of an invoice; None when there is no such invoice."""
        i, f = t.invoices.c, t.flows.c
        q = sa.select(i.status, f.partner).join(t.flows, f.id == i.flow_id).where(i.id == invoice_id)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return (InvoiceStatus(row[0]), row[1]) if row else None

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
    ) -> HistoryEntry | None:
        """Move an invoice to `target` and append the history entry, atomically. `check(current, holder)`
        raises to refuse the move (`holder`: the SIRET whose turn it is). `turn`: the new (holder, due_at),
        when the move hands the piece to another actor; None keeps them. None when there is no such
        invoice; `StatusChanged` when it changed meanwhile."""
        if conn is None:
            with self.engine.begin() as c:
                return self.set_invoice_status(
                    invoice_id, target, actor=actor, source=source, reason=reason, check=check,
                    reason_code=reason_code, turn=turn, conn=c,
                )  # fmt: skip
        i, f = t.invoices.c, t.flows.c
        q = sa.select(i.status, f.partner, i.holder).join(t.flows, f.id == i.flow_id).where(i.id == invoice_id)
        if conn.dialect.name == "postgresql":
            q = q.with_for_update(of=t.invoices)
        row = conn.execute(q).first()
        if row is None:
            return None
        current, partner, holder = InvoiceStatus(row[0]), row[1], row[2]
        check(current, holder)
        if target.frees_number:  # A_RECYCLER, SUSPENDUE, a rejection: the supplier may use the number again
            conn.execute(sa.delete(t.invoice_numbers).where(t.invoice_numbers.c.invoice_id == invoice_id))
        changes: dict[str, object] = {"status": str(target)}
        if turn is not None:
            changes["holder"], changes["due_at"] = turn
        done = conn.execute(sa.update(t.invoices).where(i.id == invoice_id, i.status == str(current)).values(**changes))
        if done.rowcount != 1:
            raise StatusChanged(f"invoice {invoice_id} changed status meanwhile")
        at = utcnow()
        values = {
            "invoice_id": invoice_id,
            "partner": partner,
            "status": str(target),
            "previous": str(current),
            "actor": str(actor),
            "source": str(source),
            "reason": reason,
            "reason_code": reason_code,
            "at": at,
        }
        inserted = conn.execute(sa.insert(t.invoice_history).values(**values)).inserted_primary_key
        assert inserted is not None
        new_id = inserted[0]
        return _entry({"id": new_id, **values})  # type: ignore[arg-type]

    def invoice_history(self, invoice_id: str) -> list[HistoryEntry]:
        h = t.invoice_history.c
        q = sa.select(t.invoice_history).where(h.invoice_id == invoice_id).order_by(h.id)
        with self.engine.connect() as conn:
            return [_entry(r) for r in conn.execute(q).mappings()]

    def history_of_flow(self, flow_id: str) -> dict[str, list[HistoryEntry]]:
        """Every history entry of a flow's invoices, by invoice id, oldest first (one query)."""
        h = t.invoice_history.c
        ids = sa.select(t.invoices.c.id).where(t.invoices.c.flow_id == flow_id)
        found: dict[str, list[HistoryEntry]] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(sa.select(t.invoice_history).where(h.invoice_id.in_(ids)).order_by(h.id)).mappings():
                found.setdefault(r["invoice_id"], []).append(_entry(r))
        return found

    def get_invoice(self, invoice_id: str) -> Invoice | None:
        return self.invoices_by_id([invoice_id]).get(invoice_id)

    def invoices_by_number(self, number: str, *, limit: int = 100) -> list[Invoice]:
        """The recorded invoices with this number (any supplier, any flow), newest flow first: what
        `relais invoices NUMBER` lists (index ``ix_invoices_number``)."""
        i = t.invoices.c
        q = sa.select(t.invoices).where(i.number == number).order_by(i.flow_id.desc(), i.position).limit(limit)
        with self.engine.connect() as conn:
            return [_invoice(r) for r in conn.execute(q).mappings()]

    def history_after(self, partner: str, after_id: int, *, limit: int = 10_000) -> list[HistoryEntry]:
        """A partner's status changes after history id `after_id`, oldest first (initial entries left out:
        the integration report already gave them)."""
        h = t.invoice_history.c
        q = (
            sa.select(t.invoice_history)
            .where(h.partner == partner, h.id > after_id, h.previous.is_not(None))
            .order_by(h.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_entry(r) for r in conn.execute(q).mappings()]

    def iter_history(self, *, after_id: int = 0) -> Iterator[HistoryEntry]:
        h = t.invoice_history.c
        with self.engine.connect() as conn:
            yield from (
                _entry(r)
                for r in conn.execute(sa.select(t.invoice_history).where(h.id > after_id).order_by(h.id)).mappings()
            )

    def suspended_matches(self, flow_id: str) -> list[tuple[str, str]]:
        """(accepted invoice of `flow_id`, SUSPENDUE invoice of another flow) pairs with the same supplier,
        number and issue year: the new invoice completes the suspended one."""
        new, old = t.invoices.alias("new"), t.invoices.alias("old")
        q = (
            sa.select(new.c.id, old.c.id, new.c.issue_date, old.c.issue_date)
            .join(old, sa.and_(old.c.supplier_id == new.c.supplier_id, old.c.number == new.c.number))
            .where(
                new.c.flow_id == flow_id,
                new.c.status.not_in([str(s) for s in InvoiceStatus if s.is_rejected]),
                old.c.status == str(InvoiceStatus.SUSPENDUE),
                old.c.flow_id != flow_id,
            )
            .order_by(new.c.position)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [(n, o) for n, o, nd, od in rows if nd is not None and od is not None and nd.year == od.year]

    def suspended_matches_of(self, flow_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """`suspended_matches` of several flows in one query: flow id -> its pairs (flows without any left out)."""
        if not flow_ids:
            return {}
        new, old = t.invoices.alias("new"), t.invoices.alias("old")
        q = (
            sa.select(new.c.flow_id, new.c.id, old.c.id, new.c.issue_date, old.c.issue_date)
            .join(old, sa.and_(old.c.supplier_id == new.c.supplier_id, old.c.number == new.c.number))
            .where(
                new.c.flow_id.in_(list(flow_ids)),
                new.c.status.not_in([str(s) for s in InvoiceStatus if s.is_rejected]),
                old.c.status == str(InvoiceStatus.SUSPENDUE),
                old.c.flow_id != new.c.flow_id,
            )
            .order_by(new.c.flow_id, new.c.position)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        found: dict[str, list[tuple[str, str]]] = {}
        for fid, n, o, nd, od in rows:
            if nd is not None and od is not None and nd.year == od.year:
                found.setdefault(fid, []).append((n, o))
        return found

    # ---- status return flows (flows/pipeline/status_returns.py) ------------------------------------

    def pending_status_partners(self) -> dict[str, tuple[int, dt.datetime, int]]:
        """Partners with status changes not reported yet: partner -> (cursor, oldest change's time, count).
        The cursor is the last history id already reported to that partner (0: none yet)."""
        h, r = t.invoice_history.c, t.status_returns.c
        reported = sa.select(r.partner, sa.func.max(r.last_history_id).label("cursor")).group_by(r.partner).subquery()
        cursor = sa.func.coalesce(reported.c.cursor, 0)
        q = (
            sa.select(h.partner, cursor, sa.func.min(h.at), sa.func.count())
            .select_from(t.invoice_history.outerjoin(reported, reported.c.partner == h.partner))
            .where(h.previous.is_not(None), h.id > cursor)
            .group_by(h.partner, cursor)
        )
        with self.engine.connect() as conn:
            return {p: (c, _aware_required(at), n) for p, c, at, n in conn.execute(q).all()}

    def invoices_by_id(self, ids: Sequence[str]) -> dict[str, Invoice]:
        if not ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.invoices).where(t.invoices.c.id.in_(list(set(ids))))).mappings()
            return {r["id"]: _invoice(r) for r in rows}

    def queue_status_return(
        self,
        return_id: str,
        partner: str,
        first_id: int,
        last_id: int,
        entries: int,
        archive_sha256: str,
        address: Address | None,
        cdar: CdarRecord | None = None,
    ) -> bool:
        """Record a status return flow covering history ids first_id..last_id of `partner`, and queue it
        in the outbox (to `address`; None: nothing to send, the changes are only marked reported), in one
        transaction. False when another emitter recorded this range first (nothing is done twice).
        `cdar`: the CDAR message it is (docs/reform.md §1), recorded in that transaction; an earlier
        attempt of the same message that was not sent keeps its row, renamed (`supersede_not_sent`)."""
        now = utcnow()
        try:
            with self.engine.begin() as conn:
                if cdar is not None:
                    supersede_not_sent(conn, cdar.issuer, cdar.message_id)
                    if not insert_cdar(conn, cdar):
                        raise _Taken(cdar.message_id)  # rolls the transaction back
                conn.execute(
                    sa.insert(t.status_returns).values(
                        id=return_id,
                        partner=partner,
                        first_history_id=first_id,
                        last_history_id=last_id,
                        entries=entries,
                        archive_sha256=archive_sha256,
                        created_at=now,
                    )
                )
                if address is not None:
                    conn.execute(
                        sa.insert(t.outbox).values(
                            key=f"status:{return_id}",
                            kind=str(OutboxKind.RETURN),
                            flow_id=None,
                            invoice_id=None,
                            channel=address.channel,
                            partner=address.partner,
                            destination=address.destination,
                            archive_sha256=archive_sha256,
                            status=OutboxStatus.PENDING,
                            attempts=0,
                            created_at=now,
                        )
                    )
        except (sa.exc.IntegrityError, _Taken):
            return False
        return True

    def status_returns_of(self, partner: str) -> list[dict[str, object]]:
        r = t.status_returns.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.status_returns).where(r.partner == partner).order_by(r.first_history_id))
            return [dict(row) for row in rows.mappings()]
