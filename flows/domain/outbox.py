"""Outbox records (domain): side effects waiting to be carried out, with a typed address.

Rows are written in the same transaction as the state change that causes
them (a closed flow queues its return flow, a saved invoice its delivery) and
carried out by `flows.pipeline.dispatch` through the channels (`flows.pipeline.channels`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum


class OutboxKind(enum.StrEnum):
    """What an outbox row carries."""

    DELIVERY = "delivery"  # a routed invoice, to its recipient's folder
    RETURN = "return"  # a return flow, to the partner that sent the flow
    MDN = "as2-mdn"  # an asynchronous AS2 receipt, to the URL the partner asked for
    WEBHOOK = "webhook"  # an AFNOR flow service event, posted to a partner's webhook (connectors/webhook)


class OutboxStatus:
    PENDING = "pending"
    SENT = "sent"
    #: A row of an earlier run of a flow processed again, never sent: kept (the flow's page shows it), never
    #: dispatched; its key is suffixed with ``~<id>`` so that the rerun may queue its own.
    SUPERSEDED = "superseded"
    #: A delivery waiting for its piece's circuit (a sub-contractor's or co-contractor's invoice before its
    #: validation): never dispatched; made pending when the piece is made available to its recipient
    #: (`flows.pipeline.status_changes`, in the transaction of that status change).
    HELD = "held"


#: The channel of deliveries to recipients (their folders under ``delivery/``).
DELIVERY_CHANNEL = "folder"


@dataclasses.dataclass(frozen=True, slots=True)
class Address:
    """Where one outbox row goes.

    `destination` is in the channel's own terms: a local path (``folder``), a
    path on the partner's server (``sftp``), the file name sent (``as2``), the
    URL an asynchronous MDN is posted to (``as2`` MDN rows). `partner` is the
    partner a return flow or MDN goes to, or the recipient's SIRET for a delivery.

    >>> Address("sftp", "op-a", "inbound/CR_CPP1.xml")
    Address(channel='sftp', partner='op-a', destination='inbound/CR_CPP1.xml')
    """

    channel: str
    partner: str | None
    destination: str


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    key: str
    kind: OutboxKind
    flow_id: str | None  # None: an async AS2 MDN for a message that made no flow
    invoice_id: str | None
    position: int | None  # a delivery: the invoice's position in its flow
    channel: str
    partner: str | None
    destination: str
    archive_sha256: str | None
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: dt.datetime | None = None
    created_at: dt.datetime | None = None

    @property
    def address(self) -> Address:
        return Address(self.channel, self.partner, self.destination)
