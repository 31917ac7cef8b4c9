"""Change an invoice's status: the lifecycle's rules, who may, the reason, and the history, in one place.

Every status change after an invoice is recorded goes through `change` (the recipient API, the
platform's own moves, an operator): it checks the move against `flows.domain.lifecycle.INVOICE` for the
actor, requires a reason where the lifecycle says so, and appends the history entry in the same
transaction as the new status (`Store.set_invoice_status`). Refused moves change nothing.
"""

from __future__ import annotations

from flows.domain.errors import RelaisError
from flows.domain.history import HistoryEntry, Source
from flows.domain.lifecycle import INVOICE, Actor, InvoiceStatus
from flows.store import StatusChanged, Store


class UnknownInvoice(RelaisError, LookupError):
    """No such invoice (or, for the API, none the caller may see)."""


class ReasonRequired(RelaisError, ValueError):
    """REJETEE and SUSPENDUE need a reason."""

    def __init__(self, status: InvoiceStatus) -> None:
        self.status = status
        super().__init__(f"a reason is required to set {status.label}")


MAX_REASON = 2000


def change(
    store: Store,
    invoice_id: str,
    target: InvoiceStatus,
    *,
    actor: Actor,
    source: Source,
    reason: str | None = None,
) -> HistoryEntry:
    """Move `invoice_id` to `target` as `actor`. Raises `UnknownInvoice`, `ReasonRequired` or
    `flows.domain.lifecycle.IllegalTransition` (naming the moves allowed); nothing is changed then."""
    reason = (reason or "").strip()[:MAX_REASON] or None
    if target.needs_reason and not reason:
        raise ReasonRequired(target)

    def check(current: InvoiceStatus, holder: str | None) -> None:
        INVOICE.check(current, target, actor)

    for attempt in range(3):
        try:
            entry = store.set_invoice_status(invoice_id, target, actor=actor, source=source, reason=reason, check=check)
        except StatusChanged:
            if attempt == 2:
                raise
            continue
        if entry is None:
            raise UnknownInvoice(invoice_id)
        return entry
    raise AssertionError("unreachable")
