"""The store's AS2 messages (received and sent) and the state of their MDNs.

A mixin of ``flows.store.Store`` (which provides ``self.engine``); split out to keep each module small.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from flows.domain.model import utcnow
from flows.domain.outbox import OutboxKind
from flows.store import tables as t
from flows.store.records import As2Message, OutboxStatus, _as2, _as2_row


class As2Repo:
    """AS2 messages."""

    engine: sa.Engine

    def as2_record(self, msg: As2Message) -> tuple[As2Message, bool]:
        """Insert `msg` unless (partner, message id, direction) exists: (the row, True when inserted)."""
        now = utcnow()
        msg.received_at = msg.received_at or now
        msg.updated_at = now
        row = _as2_row(msg)
        del row["id"]
        try:
            with self.engine.begin() as conn:
                msg.id = conn.execute(
                    sa.insert(t.as2_messages).values(**row).returning(t.as2_messages.c.id)
                ).scalar_one()
            return msg, True
        except sa.exc.IntegrityError:
            if msg.partner is None:
                raise
            existing = self.as2_find(msg.partner, msg.message_id, msg.direction)
            if existing is None:  # pragma: no cover - the constraint that failed is another one
                raise
            return existing, False

    def as2_find(self, partner: str, message_id: str, direction: str) -> As2Message | None:
        c = t.as2_messages.c
        q = sa.select(t.as2_messages).where(c.partner == partner, c.message_id == message_id, c.direction == direction)
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return _as2(row) if row else None

    def as2_get(self, msg_id: int) -> As2Message | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.as2_messages).where(t.as2_messages.c.id == msg_id)).mappings().first()
        return _as2(row) if row else None

    def as2_for_outbox(self, outbox_id: int) -> As2Message | None:
        """The message sent for a return flow's outbox row (kept across retries: same Message-ID)."""
        c = t.as2_messages.c
        q = sa.select(t.as2_messages).where(c.outbox_id == outbox_id, c.direction == "out").order_by(c.id.desc())
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return _as2(row) if row else None

    def as2_for_flow(self, flow_id: str) -> list[As2Message]:
        c = t.as2_messages.c
        with self.engine.connect() as conn:
            return [
                _as2(r)
                for r in conn.execute(sa.select(t.as2_messages).where(c.flow_id == flow_id).order_by(c.id)).mappings()
            ]

    def as2_list(
        self, *, partner: str | None = None, direction: str | None = None, limit: int = 100
    ) -> list[As2Message]:
        c = t.as2_messages.c
        q = sa.select(t.as2_messages).order_by(c.id.desc()).limit(limit)
        if partner:
            q = q.where(c.partner == partner)
        if direction:
            q = q.where(c.direction == direction)
        with self.engine.connect() as conn:
            return [_as2(r) for r in conn.execute(q).mappings()]

    def as2_update(
        self, msg: As2Message, *, mdn_outbox: dict[str, Any] | None = None, only_if_status: Sequence[str] | None = None
    ) -> bool:
        """Save `msg` (only while its stored status is one of `only_if_status`, when given: False if not).

        With `mdn_outbox` (key, address: a `flows.domain.outbox.Address`, archive_sha256), its async MDN is queued in the same
        transaction (an outbox row of kind "as2-mdn" without a flow).
        """
        msg.updated_at = utcnow()
        row = _as2_row(msg)
        del row["id"]
        stmt = sa.update(t.as2_messages).where(t.as2_messages.c.id == msg.id)
        if only_if_status is not None:
            stmt = stmt.where(t.as2_messages.c.mdn_status.in_(list(only_if_status)))
        with self.engine.begin() as conn:
            if conn.execute(stmt.values(**row)).rowcount != 1:
                return False
            if mdn_outbox is not None:
                exists = conn.execute(sa.select(t.outbox.c.id).where(t.outbox.c.key == mdn_outbox["key"])).first()
                if not exists:
                    address = mdn_outbox["address"]
                    conn.execute(
                        sa.insert(t.outbox).values(
                            key=mdn_outbox["key"],
                            kind=str(OutboxKind.MDN),
                            flow_id=None,
                            invoice_id=None,
                            channel=address.channel,
                            partner=address.partner,
                            destination=address.destination,
                            archive_sha256=mdn_outbox["archive_sha256"],
                            status=OutboxStatus.PENDING,
                            attempts=0,
                            created_at=msg.updated_at,
                        )
                    )
        return True
