"""The store's outbox: return flows and deliveries waiting to be sent.

A mixin of ``flows.store.Store`` (which provides ``self.engine``); split out to keep each module small.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa

from flows.domain import lifecycle
from flows.domain.model import Flow, utcnow
from flows.domain.outbox import Address, OutboxItem, OutboxKind, OutboxStatus
from flows.store import tables as t
from flows.store.history import made_available
from flows.store.records import CdarRecord, _outbox_item, insert_cdar, supersede_not_sent


class OutboxRepo:
    """The outbox (`flows.domain.outbox.OutboxKind` rows, each with its `Address`)."""

    engine: sa.Engine

    if TYPE_CHECKING:  # provided by FlowsRepo in Store

        def update_flow(self, flow: Flow, conn: sa.Connection | None = None) -> None: ...

        def update_flows(self, flows: Sequence[Flow], conn: sa.Connection) -> None: ...

    def finish_flow(
        self, flow: Flow, return_to: Address | None, return_sha256: str | None, cdar: CdarRecord | None = None
    ) -> None:
        """Close a flow and queue its return flow (to `return_to`), in one transaction; `cdar`: the return flow
        is that CDAR message (a CDAR partner's, docs/reform.md §1), recorded in the same transaction."""
        with self.engine.begin() as conn:
            self.update_flow(flow, conn)
            if cdar is not None:
                supersede_not_sent(conn, cdar.issuer, cdar.message_id)
                insert_cdar(conn, cdar)  # False: recorded by an earlier attempt at closing this flow
            if return_to is not None and return_sha256:
                key = f"return:{flow.id}:{return_sha256[:16]}"
                exists = conn.execute(sa.select(t.outbox.c.id).where(t.outbox.c.key == key)).first()
                if not exists:
                    conn.execute(
                        sa.insert(t.outbox).values(
                            key=key,
                            kind=str(OutboxKind.RETURN),
                            flow_id=flow.id,
                            invoice_id=None,
                            channel=return_to.channel,
                            partner=return_to.partner,
                            destination=return_to.destination,
                            archive_sha256=return_sha256,
                            status=OutboxStatus.PENDING,
                            attempts=0,
                            created_at=utcnow(),
                        )
                    )

    def finish_flows(self, closing: Sequence[tuple[Flow, Address, str]]) -> None:
        """`finish_flow` for several flows (flow, return address, return flow's SHA-256), in one transaction."""
        if not closing:
            return
        with self.engine.begin() as conn:
            self.update_flows([flow for flow, _, _ in closing], conn)
            keys = {f"return:{flow.id}:{sha[:16]}": (flow, to, sha) for flow, to, sha in closing}
            exists = {r[0] for r in conn.execute(sa.select(t.outbox.c.key).where(t.outbox.c.key.in_(list(keys))))}
            rows = [
                {
                    "key": key,
                    "kind": str(OutboxKind.RETURN),
                    "flow_id": flow.id,
                    "invoice_id": None,
                    "channel": to.channel,
                    "partner": to.partner,
                    "destination": to.destination,
                    "archive_sha256": sha,
                    "status": OutboxStatus.PENDING,
                    "attempts": 0,
                    "created_at": utcnow(),
                }
                for key, (flow, to, sha) in keys.items()
                if key not in exists
            ]
            if rows:
                conn.execute(sa.insert(t.outbox), rows)

    def returns_of(self, flow_ids: Sequence[str]) -> dict[str, list[OutboxItem]]:
        """The return flow rows (`OutboxKind.RETURN`) of several flows, each flow's oldest first."""
        found: dict[str, list[OutboxItem]] = {fid: [] for fid in flow_ids}
        if flow_ids:
            o = t.outbox.c
            q = sa.select(t.outbox).where(o.flow_id.in_(list(flow_ids)), o.kind == str(OutboxKind.RETURN))
            with self.engine.connect() as conn:
                for r in conn.execute(q.order_by(o.id)).mappings():
                    item = _outbox_item(r)
                    found[r["flow_id"]].append(item)
        return found

    def pending_outbox(
        self, *, kind: OutboxKind | None = None, flow_id: str | None = None, flow_ids: Sequence[str] | None = None
    ) -> list[OutboxItem]:
        """Rows not sent yet, oldest first (due or not: see `OutboxItem.next_attempt_at`); only those of
        `flow_id`, or of the flows `flow_ids`, when given.

        Deliveries of a flow still being processed are left out: an invoice goes to its recipient
        only once its flow is closed (a flow that ends as an incident delivers nothing).
        """
        o, f = t.outbox.c, t.flows.c
        open_flow = sa.select(f.id).where(
            f.id == o.flow_id, f.status.not_in([str(s) for s in lifecycle.FINAL_FLOW_STATUSES])
        )
        q = (
            sa.select(t.outbox)
            .where(
                o.status == OutboxStatus.PENDING,
                sa.not_(sa.and_(o.kind == str(OutboxKind.DELIVERY), open_flow.exists())),
            )
            .order_by(o.id)
        )
        if kind:
            q = q.where(o.kind == str(kind))
        if flow_id:
            q = q.where(o.flow_id == flow_id)
        if flow_ids is not None:
            q = q.where(o.flow_id.in_(list(flow_ids)))
        with self.engine.connect() as conn:
            return [_outbox_item(r) for r in conn.execute(q).mappings()]

    def outbox_for_flow(self, flow_id: str) -> list[OutboxItem]:
        q = sa.select(t.outbox).where(t.outbox.c.flow_id == flow_id).order_by(t.outbox.c.id)
        with self.engine.connect() as conn:
            return [_outbox_item(r) for r in conn.execute(q).mappings()]

    def lease_outbox(
        self,
        items: Sequence[OutboxItem],
        worker: str,
        lease: dt.timedelta,
        is_dead: Callable[[str | None], bool | None] | None = None,
    ) -> set[int]:
        """Lease pending rows to `worker` for `lease` (a dispatcher sends only what it leased, so two
        dispatchers never send one row at the same time); the ids it holds. Rows leased by another
        worker whose lease has not expired are not taken (PostgreSQL: locked ones are skipped)."""
        if not items:
            return set()
        o = t.outbox.c
        now = utcnow()
        ids = [i.id for i in items]
        if is_dead is not None:  # rows held by a dispatcher of this machine that was killed: free at once
            with self.engine.connect() as conn:
                held = conn.execute(
                    sa.select(o.id, o.leased_by).where(o.id.in_(ids), o.leased_by.is_not(None), o.lease_until >= now)
                ).all()
            dead = [row_id for row_id, by in held if by != worker and is_dead(by)]
            if dead:
                with self.engine.begin() as conn:
                    conn.execute(sa.update(t.outbox).where(o.id.in_(dead)).values(leased_by=None, lease_until=None))
        free = sa.and_(
            o.id.in_(ids),
            o.status == OutboxStatus.PENDING,
            sa.or_(o.lease_until.is_(None), o.lease_until < now, o.leased_by == worker),
        )
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                ids = [r[0] for r in conn.execute(sa.select(o.id).where(free).with_for_update(skip_locked=True))]
                if not ids:
                    return set()
                free = sa.and_(free, o.id.in_(ids))
            conn.execute(sa.update(t.outbox).where(free).values(leased_by=worker, lease_until=now + lease))
            return {r[0] for r in conn.execute(sa.select(o.id).where(o.id.in_(ids), o.leased_by == worker))}

    def release_outbox(self, ids: Sequence[int], worker: str) -> None:
        """Give back leased rows not sent (their queue could not go out in order)."""
        if ids:
            o = t.outbox.c
            with self.engine.begin() as conn:
                conn.execute(
                    sa.update(t.outbox)
                    .where(o.id.in_(list(ids)), o.leased_by == worker)
                    .values(leased_by=None, lease_until=None)
                )

    def release_leases(self, worker: str) -> int:
        """Give back every pending row `worker` leased (a graceful stop); how many."""
        o = t.outbox.c
        with self.engine.begin() as conn:
            return conn.execute(
                sa.update(t.outbox)
                .where(o.leased_by == worker, o.status == OutboxStatus.PENDING)
                .values(leased_by=None, lease_until=None)
            ).rowcount

    def mark_sent(self, items: Sequence[OutboxItem]) -> None:
        if not items:
            return
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t.outbox)
                .where(t.outbox.c.id.in_([i.id for i in items]))
                .values(
                    status=OutboxStatus.SENT,
                    sent_at=now,
                    attempts=t.outbox.c.attempts + 1,
                    leased_by=None,
                    lease_until=None,
                )
            )
            deliveries = [
                {"b_id": i.invoice_id, "b_target": i.destination} for i in items if i.kind is OutboxKind.DELIVERY
            ]
            if deliveries:
                conn.execute(
                    sa.update(t.invoices)
                    .where(t.invoices.c.id == sa.bindparam("b_id"))
                    .values(delivered_to=sa.bindparam("b_target")),
                    deliveries,
                )
                made_available(conn, [str(d["b_id"]) for d in deliveries], now)

    def mark_failed(self, item: OutboxItem, error: str, retry_after: dt.timedelta | None = None) -> None:
        """Record a failed attempt; the row stays pending, due again after `retry_after`."""
        due = utcnow() + retry_after if retry_after is not None else None
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t.outbox)
                .where(t.outbox.c.id == item.id)
                .values(
                    attempts=t.outbox.c.attempts + 1,
                    last_error=error[:2000],
                    next_attempt_at=due,
                    leased_by=None,
                    lease_until=None,
                )
            )
