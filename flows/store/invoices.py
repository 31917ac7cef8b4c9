"""The store's invoices and their findings (validation errors).

A mixin of ``flows.store.Store`` (which provides ``self.engine``); split out to keep each module small.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence

import sqlalchemy as sa

from flows.domain.model import Flag, Invoice, ValidationError, utcnow
from flows.domain.outbox import Address, OutboxKind
from flows.store import tables as t
from flows.store.circuits import followed, link_followers
from flows.store.history import history_rows, take_numbers
from flows.store.records import (
    PAGE,
    OutboxStatus,
    _aware_required,
    _error,
    _error_row,
    _invoice,
    _invoice_row,
    current_findings,
    supersede_outbox,
)

#: The orders of a flow's invoice table (`InvoicesRepo.invoice_page`): name -> column of ``invoices``.
INVOICE_SORTS = {
    "position": "position",
    "number": "number",
    "supplier": "supplier_id",
    "buyer": "buyer_siret",
    "amount": "total_with_vat",
    "status": "status",
}


class InvoicesRepo:
    """Invoices of flows, their findings and their delivery outbox rows."""

    engine: sa.Engine

    def reset_flow_results(self, flow_id: str) -> None:
        """Forget the results of a flow's earlier run (before processing it again): its findings are kept,
        marked superseded; its return flows and deliveries not sent yet too (never sent); its invoice rows
        (the current state) and their numbers go, to be recorded anew. Their history is kept: the rerun's
        entries follow the earlier ones (`flows.store.history.history_rows`)."""
        self.reset_results_of([flow_id])

    def reset_results_of(self, flow_ids: Sequence[str]) -> None:
        """`reset_flow_results` for several flows, in one transaction."""
        if not flow_ids:
            return
        now = utcnow()
        with self.engine.begin() as conn:
            e = t.validation_errors.c  # `supersede_findings` of all their findings
            conn.execute(
                sa.update(t.validation_errors)
                .where(e.flow_id.in_(list(flow_ids)), current_findings())
                .values(superseded_at=now)
            )
            ids = sa.select(t.invoices.c.id).where(t.invoices.c.flow_id.in_(list(flow_ids)))
            conn.execute(sa.delete(t.invoice_numbers).where(t.invoice_numbers.c.invoice_id.in_(ids)))
            conn.execute(sa.delete(t.piece_links).where(t.piece_links.c.invoice_id.in_(ids)))
            conn.execute(sa.delete(t.invoices).where(t.invoices.c.flow_id.in_(list(flow_ids))))
            supersede_outbox(conn, t.outbox.c.flow_id.in_(list(flow_ids)))

    def add_flow_errors(self, flow_id: str, errors: Iterable[ValidationError]) -> None:
        rows = [_error_row(flow_id, None, e) for e in errors]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(t.validation_errors), rows)

    def save_invoices(
        self,
        invoices: Sequence[Invoice],
        deliveries: Sequence[tuple[Invoice, Address]],
        duplicate: Callable[[Invoice, str], ValidationError] | None = None,
        lost_race: Callable[[Invoice], ValidationError] | None = None,
        held: Collection[str] = (),
    ) -> list[Invoice]:
        """Record a chunk of invoices, their findings and their delivery outbox rows, atomically.

        Each accepted invoice takes its number (`invoice_numbers`, unique per supplier, number and year).
        One whose number another invoice took meanwhile (a flow judged at the same moment) is rejected
        here with `duplicate(invoice, owner_id)`'s finding and not delivered: returned, for the caller's
        counts. Without `duplicate`, numbers are not taken (tests of the store alone).

        Each accepted follower (``previous_id``) takes the link to its previous piece
        (`flows.store.circuits.take_links`); one whose previous piece another follower took first is
        rejected here with `lost_race(invoice)`'s finding (returned too); the others act on the piece they
        follow (`flows.store.circuits.followed`). Without `lost_race`, no link is taken (qualification).
        The deliveries of the invoices in `held` are queued HELD: never sent until their circuit reaches
        the recipient.
        """
        if not invoices:
            return []
        with self.engine.begin() as conn:
            return _save_chunk(conn, invoices, deliveries, duplicate, lost_race, held, utcnow())

    def save_invoice_groups(
        self,
        chunks: Sequence[tuple[Sequence[Invoice], Sequence[tuple[Invoice, Address]], Collection[str]]],
        duplicate: Callable[[Invoice, str], ValidationError] | None = None,
        lost_race: Callable[[Invoice], ValidationError] | None = None,
    ) -> list[Invoice]:
        """`save_invoices` for the invoices of several flows at once (a group of small flows,
        `flows.pipeline.grouped`): one transaction, each table written once (executemany) for all of them.
        Each chunk is (invoices, deliveries, held) of one flow; returns the invoices rejected here."""
        invoices = [i for c in chunks for i in c[0]]
        if not invoices:
            return []
        deliveries = [d for c in chunks for d in c[1]]
        held = {h for c in chunks for h in c[2]}
        with self.engine.begin() as conn:
            return _save_chunk(conn, invoices, deliveries, duplicate, lost_race, held, utcnow())

    def flow_errors(self, flow_id: str) -> list[ValidationError]:
        q = (
            sa.select(t.validation_errors)
            .where(
                t.validation_errors.c.flow_id == flow_id,
                t.validation_errors.c.invoice_id.is_(None),
                current_findings(),
            )
            .order_by(t.validation_errors.c.id)
        )
        with self.engine.connect() as conn:
            return [_error(r) for r in conn.execute(q).mappings()]

    def flow_errors_of(self, flow_ids: Sequence[str]) -> dict[str, list[ValidationError]]:
        """`flow_errors` of several flows in one query: flow id -> its current flow-level findings."""
        e = t.validation_errors.c
        found: dict[str, list[ValidationError]] = {fid: [] for fid in flow_ids}
        if flow_ids:
            q = (
                sa.select(t.validation_errors)
                .where(e.flow_id.in_(list(flow_ids)), e.invoice_id.is_(None), current_findings())
                .order_by(e.id)
            )
            with self.engine.connect() as conn:
                for r in conn.execute(q).mappings():
                    found[r["flow_id"]].append(_error(r))
        return found

    def invoices_of(self, flow_ids: Sequence[str]) -> dict[str, list[Invoice]]:
        """`iter_invoices` of several small flows in two queries: flow id -> its invoices in position order,
        with their current findings (a group of small flows, `flows.pipeline.grouped`)."""
        found: dict[str, list[Invoice]] = {fid: [] for fid in flow_ids}
        if not flow_ids:
            return found
        i, e = t.invoices.c, t.validation_errors.c
        ids = list(flow_ids)
        with self.engine.connect() as conn:
            rows = list(conn.execute(sa.select(t.invoices).where(i.flow_id.in_(ids)).order_by(i.position)).mappings())
            errs: dict[str, list[ValidationError]] = {}
            for r in conn.execute(
                sa.select(t.validation_errors)
                .where(e.flow_id.in_(ids), e.invoice_id.is_not(None), current_findings())
                .order_by(e.id)
            ).mappings():
                errs.setdefault(r["invoice_id"], []).append(_error(r))
        for r in rows:
            inv = _invoice(r)
            inv.errors = errs.get(inv.id, [])
            found[inv.flow_id].append(inv)
        return found

    def superseded_findings(self, flow_id: str) -> list[tuple[str | None, ValidationError, dt.datetime]]:
        """(invoice id or None for the flow, finding, when superseded) of a flow's earlier runs, oldest
        first: kept when the flow was processed again, shown as such on its page."""
        e = t.validation_errors.c
        q = sa.select(t.validation_errors).where(e.flow_id == flow_id, e.superseded_at.is_not(None)).order_by(e.id)
        with self.engine.connect() as conn:
            return [
                (r["invoice_id"], _error(r), _aware_required(r["superseded_at"])) for r in conn.execute(q).mappings()
            ]

    def iter_invoices(self, flow_id: str) -> Iterator[Invoice]:
        """Invoices of a flow in position order with their findings, page by page."""
        last = 0
        while True:
            with self.engine.connect() as conn:
                rows = list(
                    conn.execute(
                        sa.select(t.invoices)
                        .where(t.invoices.c.flow_id == flow_id, t.invoices.c.position > last)
                        .order_by(t.invoices.c.position)
                        .limit(PAGE)
                    ).mappings()
                )
                if not rows:
                    return
                ids = [r["id"] for r in rows]
                errs: dict[str, list[ValidationError]] = {}
                for r in conn.execute(
                    sa.select(t.validation_errors)
                    .where(
                        t.validation_errors.c.flow_id == flow_id,
                        t.validation_errors.c.invoice_id.in_(ids),
                        current_findings(),
                    )
                    .order_by(t.validation_errors.c.id)
                ).mappings():
                    errs.setdefault(r["invoice_id"], []).append(_error(r))
            for r in rows:
                inv = _invoice(r)
                inv.errors = errs.get(inv.id, [])
                yield inv
            last = rows[-1]["position"]

    def invoice_page(
        self,
        flow_id: str,
        *,
        statuses: Sequence[str] | None = None,
        frameworks: Sequence[str] | None = None,
        search: str | None = None,
        sort: str = "position",
        descending: bool = False,
        offset: int = 0,
        limit: int = PAGE,
    ) -> tuple[list[Invoice], int]:
        """One page of a flow's invoices with their current findings, and how many match (the flow page's
        table): only those whose status is in `statuses` and whose framework is in `frameworks` (when given;
        A1..A25, flows.domain.frameworks) and whose number, supplier, buyer SIRET or service code contains
        `search` (any case); ordered by `sort` (`INVOICE_SORTS`), then position. Filtered, counted and paged
        in SQL (a flow of thousands of invoices reads one page)."""
        i = t.invoices.c
        where: list[sa.ColumnElement[bool]] = [i.flow_id == flow_id]
        if statuses is not None:
            where.append(i.status.in_(list(statuses)))
        if frameworks is not None:
            where.append(i.framework.in_(list(frameworks)))
        if search:
            needle = search.lower()
            where.append(
                sa.or_(
                    *(
                        sa.func.lower(col).contains(needle, autoescape=True)
                        for col in (i.number, i.supplier_id, i.buyer_siret, i.service_code)
                    )
                )
            )
        col = getattr(i, INVOICE_SORTS.get(sort, "position"))
        order = [col.desc(), i.position.desc()] if descending else [col.asc(), i.position.asc()]
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(t.invoices).where(*where)).scalar_one()
            rows = list(
                conn.execute(
                    sa.select(t.invoices).where(*where).order_by(*order).offset(offset).limit(limit)
                ).mappings()
            )
            errs: dict[str, list[ValidationError]] = {}
            if rows:
                e = t.validation_errors.c
                for r in conn.execute(
                    sa.select(t.validation_errors)
                    .where(e.flow_id == flow_id, e.invoice_id.in_([r["id"] for r in rows]), current_findings())
                    .order_by(e.id)
                ).mappings():
                    errs.setdefault(r["invoice_id"], []).append(_error(r))
        found = []
        for r in rows:
            inv = _invoice(r)
            inv.errors = errs.get(inv.id, [])
            found.append(inv)
        return found, int(total)

    def top_errors(self, limit: int = 10, flow_ids: Sequence[str] | None = None) -> list[tuple[str, str, int]]:
        """(rule, an example message, count) of the most frequent fatal findings."""
        c = t.validation_errors.c
        q = (
            sa.select(c.rule, sa.func.min(c.message), sa.func.count())
            .where(c.flag == str(Flag.FATAL), current_findings())
            .group_by(c.rule)
            .order_by(sa.func.count().desc())
            .limit(limit)
        )
        if flow_ids is not None:
            q = q.where(c.flow_id.in_(list(flow_ids)))
        with self.engine.connect() as conn:
            return [(r, m, n) for r, m, n in conn.execute(q)]


def _save_chunk(
    conn: sa.Connection,
    invoices: Sequence[Invoice],
    deliveries: Sequence[tuple[Invoice, Address]],
    duplicate: Callable[[Invoice, str], ValidationError] | None,
    lost_race: Callable[[Invoice], ValidationError] | None,
    held: Collection[str],
    now: dt.datetime,
) -> list[Invoice]:
    """`InvoicesRepo.save_invoices`'s writes, in the caller's transaction (invoices of one flow or several)."""
    # Also a heartbeat: a flow whose worker saves chunks is not stale.
    flow_ids = sorted({i.flow_id for i in invoices})
    conn.execute(sa.update(t.flows).where(t.flows.c.id.in_(flow_ids)).values(updated_at=now))
    lost = link_followers(conn, invoices, lost_race) if lost_race is not None else []
    numbers = take_numbers(conn, invoices, duplicate) if duplicate is not None else []
    if numbers and lost_race is not None:  # a follower whose number was taken lets its link go
        lk = t.piece_links.c
        conn.execute(sa.delete(t.piece_links).where(lk.invoice_id.in_([i.id for i in numbers])))
    for inv in numbers:  # rejected: out of any billing file and circuit, the recipient's as any rejection
        inv.holder, inv.due_at, inv.previous_id, inv.billing_file_id = inv.buyer_siret, None, None, None
    lost += numbers
    if lost:
        gone = {i.id for i in lost}
        deliveries = [(inv, address) for inv, address in deliveries if inv.id not in gone]
    conn.execute(sa.insert(t.invoices), [_invoice_row(i) for i in invoices])
    history_rows(conn, [i.id for i in invoices], now)
    if lost_race is not None:
        followed(conn, invoices, now)
    errors = [_error_row(i.flow_id, i.id, e) for i in invoices for e in i.errors]
    if errors:
        conn.execute(sa.insert(t.validation_errors), errors)
    if deliveries:
        # An invoice delivered by an earlier run of this flow (reprocessing) is not delivered again.
        keys = [f"delivery:{inv.id}" for inv, _ in deliveries]
        done = dict(
            conn.execute(
                sa.select(t.outbox.c.key, t.outbox.c.destination).where(
                    t.outbox.c.key.in_(keys), t.outbox.c.status == OutboxStatus.SENT
                )
            ).all()
        )
        if done:
            conn.execute(
                sa.update(t.invoices)
                .where(t.invoices.c.id == sa.bindparam("b_id"))
                .values(delivered_to=sa.bindparam("b_target")),
                [
                    {"b_id": inv.id, "b_target": done[f"delivery:{inv.id}"]}
                    for inv, _ in deliveries
                    if f"delivery:{inv.id}" in done
                ],
            )
            deliveries = [(inv, target) for inv, target in deliveries if f"delivery:{inv.id}" not in done]
    if deliveries:
        conn.execute(
            sa.insert(t.outbox),
            [
                {
                    "key": f"delivery:{inv.id}",
                    "kind": str(OutboxKind.DELIVERY),
                    "flow_id": inv.flow_id,
                    "invoice_id": inv.id,
                    "position": inv.position,
                    "channel": address.channel,
                    "partner": address.partner,
                    "destination": address.destination,
                    "archive_sha256": None,
                    "status": OutboxStatus.HELD if inv.id in held else OutboxStatus.PENDING,
                    "attempts": 0,
                    "created_at": now,
                }
                for inv, address in deliveries
            ],
        )
    return lost
