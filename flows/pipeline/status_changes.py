"""Change an invoice's status: the lifecycle's rules, who may, the reason, and the history, in one place.

Every status change after an invoice is recorded goes through `change` (the recipient API, the
platform's own moves, an operator): it checks the move against `flows.domain.lifecycle.INVOICE` for the
actor, requires a reason where the lifecycle says so, and appends the history entry in the same
transaction as the new status (`Store.set_invoice_status`). Refused moves change nothing.
"""

from __future__ import annotations

import datetime as dt

from flows.domain import circuits
from flows.domain.errors import RelaisError
from flows.domain.history import HistoryEntry, Source
from flows.domain.lifecycle import INVOICE, Actor, InvoiceStatus
from flows.domain.reasons import REASONS
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


# ==== SHIM (branch i22-api) ==================================================================================
# A minimal stand-in for the progression's `act` (branch i22-progress), so that the API (relais/api/recipients.py)
# and its tests run before it lands. Integrator: keep i22-progress's `act` (and `NotYourTurn`, if it has one)
# and drop this block; the API needs only the signature below and the exceptions it raises.


class NotYourTurn(RelaisError, PermissionError):
    """The piece's turn is not this SIRET's (another actor's, or nobody's any more)."""

    def __init__(self, invoice_id: str, current: InvoiceStatus) -> None:
        self.invoice_id, self.current = invoice_id, current
        super().__init__(f"it is not this actor's turn on {invoice_id} ({current.name})")


def act(
    store: Store,
    invoice_id: str,
    target: InvoiceStatus,
    *,
    siret: str,
    service_code: str | None,
    source: Source,
    reason: str | None = None,
    reason_code: str | None = None,
    deadlines: circuits.Deadlines | None = None,
) -> list[HistoryEntry]:
    """SHIM. Move `invoice_id` to `target` as the actor whose turn `siret` holds, then let the platform pass
    it on (`flows.domain.circuits.pass_on`), in one transaction. Raises `UnknownInvoice`, `ReasonRequired`,
    `flows.domain.reasons.ReasonCodeRefused`, `NotYourTurn`, `IllegalTransition`; nothing is changed then."""
    del service_code  # the API checked the service (`flows.store.api.holds`)
    deadlines = deadlines or circuits.Deadlines()
    reason = (reason or "").strip()[:MAX_REASON] or None
    if target.needs_reason and not reason:
        raise ReasonRequired(target)
    inv = store.get_invoice(invoice_id)
    if inv is None:
        raise UnknownInvoice(invoice_id)
    parties = circuits.Parties(
        buyer=inv.buyer_siret, supplier=inv.supplier_id, validator_1=inv.validator_1,
        validator_2=inv.validator_2, moe=inv.moe_siret, moa=inv.moa_siret,
    )  # fmt: skip
    actor = circuits.actor_of(inv.status) or Actor.RECIPIENT  # a final status: the lifecycle refuses the move
    buyer = inv.buyer_siret

    def check(current: InvoiceStatus, holder: str | None) -> None:
        if (holder if holder is not None else buyer) != siret:
            raise NotYourTurn(invoice_id, current)
        INVOICE.check(current, target, actor)
        REASONS.check(reason_code, target)

    now = dt.datetime.now(dt.UTC)
    with store.engine.begin() as conn:
        first = store.set_invoice_status(
            invoice_id, target, actor=actor, source=source, reason=reason, check=check, reason_code=reason_code,
            turn=(circuits.holder_of(target, parties), deadlines.due(target, now)), conn=conn,
        )  # fmt: skip
        if first is None:
            raise UnknownInvoice(invoice_id)
        entries = [first]
        turn = circuits.pass_on(inv.framework, target, parties)
        if turn is not None:
            nxt = turn.status

            def platform_may(current: InvoiceStatus, _holder: str | None) -> None:
                INVOICE.check(current, nxt, Actor.PLATFORM)

            then = store.set_invoice_status(
                invoice_id, nxt, actor=Actor.PLATFORM, source=Source.PLATFORM, reason=None,
                check=platform_may,
                turn=(turn.holder, deadlines.due(turn.status, now)), conn=conn,
            )  # fmt: skip
            assert then is not None
            entries.append(then)
    return entries
