"""Invoice status history records (domain): one entry per status an invoice took, appended, never changed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum

from flows.domain.lifecycle import Actor, InvoiceStatus


class Source(enum.StrEnum):
    """Where a status change came from."""

    PLATFORM = "platform"  # Relais: the verdict an invoice is recorded with, its delivery, a completion
    API = "api"  # the recipient API (relais/api)
    RETURN_FLOW = "return_flow"  # a status file the recipient sent back by one of its channels
    CLI = "cli"  # an operator (`relais invoices status`)
    CDAR = "cdar"  # a CDAR lifecycle message from a partner platform or the seller (docs/reform.md)


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryEntry:
    id: int
    invoice_id: str
    partner: str  # the sender of the invoice, to whom the change is reported
    status: InvoiceStatus
    previous: InvoiceStatus | None  # None: the status the invoice was recorded with
    actor: Actor
    source: Source
    reason: str | None
    at: dt.datetime
    reason_code: str | None = None  # a refusal's or suspension's code (flows.domain.reasons)

    def as_json(self) -> dict[str, object]:
        return {
            "status": self.status.label,
            "code": self.status.code,
            "previous": self.previous.code if self.previous else None,
            "actor": str(self.actor),
            "source": str(self.source),
            "reason": self.reason,
            "reason_code": self.reason_code,
            "at": self.at.isoformat(),
        }
