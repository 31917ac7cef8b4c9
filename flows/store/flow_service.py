"""The store's side of the AFNOR flow service (docs/reform.md §3): what a deposit declared, the search over a
partner's flows (Out: deposited by it) and the CDAR messages Relais sent it (In), and webhook subscriptions
with the events not yet queued for them.

A mixin of ``flows.store.Store`` (which provides ``self.engine``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence

import sqlalchemy as sa

from flows.domain.model import Flow, ValidationError, utcnow
from flows.domain.outbox import OutboxKind, OutboxStatus
from flows.store import tables as t
from flows.store.records import _aware_required, _error, _flow, current_findings

#: The id of an In flow (a CDAR message Relais sent): this prefix and its ``cdar_messages`` row id.
IN_PREFIX = "CDAR-"
#: The outcome of a sent CDAR message that was queued to its partner (flows.store.cdar.Outcome.QUEUED).
QUEUED = "queued"
WEBHOOK_CHANNEL = "webhook"

Cursor = tuple[dt.datetime, str]  # (updatedAt, flowId) of the previous page's last flow


@dataclasses.dataclass(frozen=True, slots=True)
class DeclaredInfo:
    """What a deposit's ``flowInfo`` declared (None: not declared, Relais computes it)."""

    flow_id: str
    partner: str
    flow_syntax: str
    sha256: str
    tracking_id: str | None = None
    flow_profile: str | None = None
    processing_rule: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SentMessage:
    """A CDAR message Relais sent to a partner: an In flow of the flow service."""

    id: int
    partner: str
    flow_id: str | None
    sha256: str
    created_at: dt.datetime

    @property
    def flow_service_id(self) -> str:
        return f"{IN_PREFIX}{self.id}"


@dataclasses.dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    partner: str
    callback_url: str
    signing_key: str
    created_at: dt.datetime
    flow_types: tuple[str, ...] | None = None
    flow_direction: str | None = None
    ack_status: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SearchFilter:
    partner: str
    updated_after: dt.datetime | None = None
    updated_before: dt.datetime | None = None
    statuses: Sequence[str] | None = None  # Relais flow statuses (None: any)
    tracking_id: str | None = None
    after: Cursor | None = None
    limit: int = 25


def webhook_key(webhook_id: str, flow_id: str, status: str) -> str:
    """The outbox key of one event: one row per (webhook, flow, status), ever.

    >>> webhook_key("w", "CPP1", "IN_INTEGRE")
    'webhook:w:CPP1:IN_INTEGRE'
    """
    return f"webhook:{webhook_id}:{flow_id}:{status}"


def _webhook(r: sa.RowMapping) -> Webhook:
    return Webhook(
        id=r["id"],
        partner=r["partner"],
        callback_url=r["callback_url"],
        signing_key=r["signing_key"],
        created_at=_aware_required(r["created_at"]),
        flow_types=tuple(json.loads(r["flow_types"])) if r["flow_types"] else None,
        flow_direction=r["flow_direction"],
        ack_status=r["ack_status"],
    )


def _message(r: sa.RowMapping) -> SentMessage:
    return SentMessage(r["id"], r["partner"], r["flow_id"], r["sha256"], _aware_required(r["created_at"]))


def _page(stmt: sa.Select, at: sa.ColumnElement, key: sa.ColumnElement, f: SearchFilter) -> sa.Select:
    if f.updated_after is not None:
        stmt = stmt.where(at > f.updated_after)
    if f.updated_before is not None:
        stmt = stmt.where(at < f.updated_before)
    if f.after is not None:
        stmt = stmt.where(sa.or_(at > f.after[0], sa.and_(at == f.after[0], key > f.after[1])))
    return stmt.order_by(at, key).limit(f.limit)


class FlowServiceRepo:
    engine: sa.Engine

    # ---- deposits ---------------------------------------------------------------------------------

    def record_declared(self, info: DeclaredInfo) -> None:
        """Keep what the deposit declared (once per flow: a replayed deposit keeps the first)."""
        c = t.flow_service_flows.c
        with self.engine.begin() as conn:
            if conn.execute(sa.select(c.flow_id).where(c.flow_id == info.flow_id)).first() is None:
                conn.execute(sa.insert(t.flow_service_flows).values(**dataclasses.asdict(info), created_at=utcnow()))

    def declared(self, flow_ids: Sequence[str]) -> dict[str, DeclaredInfo]:
        if not flow_ids:
            return {}
        c = t.flow_service_flows.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.flow_service_flows).where(c.flow_id.in_(list(flow_ids)))).mappings()
            return {
                r["flow_id"]: DeclaredInfo(
                    r["flow_id"],
                    r["partner"],
                    r["flow_syntax"],
                    r["sha256"],
                    r["tracking_id"],
                    r["flow_profile"],
                    r["processing_rule"],
                )
                for r in rows
            }

    def flow_by_tracking_id(self, partner: str, tracking_id: str) -> tuple[str, str] | None:
        """(flow id, sha256) of the partner's deposit with this trackingId, the first one."""
        c = t.flow_service_flows.c
        q = (
            sa.select(c.flow_id, c.sha256)
            .where(c.partner == partner, c.tracking_id == tracking_id)
            .order_by(c.created_at, c.flow_id)
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return (row[0], row[1]) if row else None

    def flow_findings(self, flow_id: str, limit: int = 500) -> list[tuple[str | None, ValidationError]]:
        """The current findings of a flow (its own, then its invoices'), with the invoice each is about."""
        e = t.validation_errors.c
        q = (
            sa.select(t.validation_errors)
            .where(e.flow_id == flow_id, current_findings())
            .order_by(e.invoice_id.is_not(None), e.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [(r["invoice_id"], _error(r)) for r in conn.execute(q).mappings()]

    # ---- search -----------------------------------------------------------------------------------

    def search_out(self, f: SearchFilter) -> list[Flow]:
        """The partner's deposited flows, by (updated_at, id), one page after `f.after`."""
        c = t.flows.c
        stmt = sa.select(t.flows).where(c.partner == f.partner)
        if f.statuses is not None:
            stmt = stmt.where(c.status.in_(list(f.statuses)))
        if f.tracking_id is not None:
            d = t.flow_service_flows.c
            stmt = stmt.where(
                c.id.in_(sa.select(d.flow_id).where(d.partner == f.partner, d.tracking_id == f.tracking_id))
            )
        with self.engine.connect() as conn:
            return [_flow(r) for r in conn.execute(_page(stmt, c.updated_at, c.id, f)).mappings()]

    def search_in(self, f: SearchFilter) -> list[SentMessage]:
        """The CDAR messages Relais queued to the partner, by (created_at, id), one page after `f.after`."""
        m = t.cdar_messages.c
        key = sa.literal(IN_PREFIX) + sa.cast(m.id, sa.String)
        stmt = sa.select(t.cdar_messages).where(m.direction == "out", m.partner == f.partner, m.outcome == QUEUED)
        with self.engine.connect() as conn:
            return [_message(r) for r in conn.execute(_page(stmt, m.created_at, key, f)).mappings()]

    def sent_message(self, partner: str, message_id: int) -> SentMessage | None:
        m = t.cdar_messages.c
        q = sa.select(t.cdar_messages).where(
            m.id == message_id, m.direction == "out", m.partner == partner, m.outcome == QUEUED
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return _message(row) if row else None

    # ---- webhooks ---------------------------------------------------------------------------------

    def create_webhook(self, w: Webhook) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(t.webhooks).values(
                    id=w.id,
                    partner=w.partner,
                    callback_url=w.callback_url,
                    flow_types=json.dumps(list(w.flow_types)) if w.flow_types is not None else None,
                    flow_direction=w.flow_direction,
                    ack_status=w.ack_status,
                    signing_key=w.signing_key,
                    created_at=w.created_at,
                )
            )

    def webhooks(self, partner: str | None = None) -> list[Webhook]:
        """The live subscriptions (of `partner` only when given), oldest first."""
        c = t.webhooks.c
        q = sa.select(t.webhooks).where(c.deleted_at.is_(None)).order_by(c.created_at, c.id)
        if partner is not None:
            q = q.where(c.partner == partner)
        with self.engine.connect() as conn:
            return [_webhook(r) for r in conn.execute(q).mappings()]

    def webhook(self, webhook_id: str) -> Webhook | None:
        """A subscription, live or deleted (a delivery queued before its deletion still needs its key)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.webhooks).where(t.webhooks.c.id == webhook_id)).mappings().first()
        return _webhook(row) if row else None

    def delete_webhook(self, partner: str, webhook_id: str) -> bool:
        """Unsubscribe (the row kept, marked; its pending deliveries are not sent); False: none of `partner`'s."""
        c, o = t.webhooks.c, t.outbox.c
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(t.webhooks)
                .where(c.id == webhook_id, c.partner == partner, c.deleted_at.is_(None))
                .values(deleted_at=utcnow())
            ).rowcount
            if done:
                conn.execute(
                    sa.update(t.outbox)
                    .where(
                        o.kind == str(OutboxKind.WEBHOOK),
                        o.status == OutboxStatus.PENDING,
                        o.key.startswith(f"webhook:{webhook_id}:", autoescape=True),
                    )
                    .values(status=OutboxStatus.SUPERSEDED, last_error="webhook deleted")
                )
        return bool(done)

    def unnotified_flows(self, w: Webhook, statuses: Sequence[str], limit: int = 500) -> list[Flow]:
        """The partner's flows in `statuses`, changed since the subscription, with no event queued yet."""
        c, o = t.flows.c, t.outbox.c
        key = sa.literal(f"webhook:{w.id}:") + c.id + sa.literal(":") + c.status
        q = (
            sa.select(t.flows)
            .where(
                c.partner == w.partner,
                c.status.in_(list(statuses)),
                c.updated_at >= w.created_at,
                ~sa.select(o.id).where(o.key == key).exists(),
            )
            .order_by(c.updated_at, c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_flow(r) for r in conn.execute(q).mappings()]

    def unnotified_messages(self, w: Webhook, status: str, limit: int = 500) -> list[SentMessage]:
        """The CDAR messages queued to the partner since the subscription, with no event queued yet."""
        m, o = t.cdar_messages.c, t.outbox.c
        key = sa.literal(f"webhook:{w.id}:{IN_PREFIX}") + sa.cast(m.id, sa.String) + sa.literal(f":{status}")
        q = (
            sa.select(t.cdar_messages)
            .where(
                m.direction == "out",
                m.partner == w.partner,
                m.outcome == QUEUED,
                m.created_at >= w.created_at,
                ~sa.select(o.id).where(o.key == key).exists(),
            )
            .order_by(m.created_at, m.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_message(r) for r in conn.execute(q).mappings()]

    def queue_webhook_event(self, key: str, w: Webhook, flow_id: str | None, payload_sha256: str | None) -> bool:
        """Queue one event (its payload archived first); False: that event was queued already. Without a
        payload: an event the webhook's filters leave out, recorded (never sent) so that it is not read again."""
        o = t.outbox.c
        with self.engine.begin() as conn:
            if conn.execute(sa.select(o.id).where(o.key == key)).first() is not None:
                return False
            conn.execute(
                sa.insert(t.outbox).values(
                    key=key,
                    kind=str(OutboxKind.WEBHOOK),
                    flow_id=flow_id,
                    invoice_id=None,
                    channel=WEBHOOK_CHANNEL,
                    partner=w.partner,
                    destination=w.callback_url,
                    archive_sha256=payload_sha256,
                    status=OutboxStatus.PENDING if payload_sha256 else OutboxStatus.SUPERSEDED,
                    last_error=None if payload_sha256 else "left out by the webhook's filters",
                    attempts=0,
                    created_at=utcnow(),
                )
            )
        return True


__all__ = ["DeclaredInfo", "FlowServiceRepo", "SearchFilter", "SentMessage", "Webhook"]
