"""The scheduled step of the billing circuits: pieces whose actor let its deadline pass move on.

A validator silent for `Deadlines.validator_days` validates tacitly (``A_VALIDER_n`` ->
``ABSENCE_VALIDATION_n_HORS_DELAI``), then the platform passes the piece on to its next step (the second
validator, the MOE, or its recipient, its delivery released); a MOE silent for `Deadlines.moe_days` after the
piece was made available to it lets it go to the MOA (``ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE`` ->
``MISE_A_DISPOSITION_MOA``, the MOA or the buyer holding it). Each piece moves in one transaction: the
expiry (`Actor.PLATFORM`, `Move.DEADLINE`, a French reason) and the pass on (`Move.PASS_ON`).

`apply` is what `relais run` (once per pass) and the DAG's ``apply_deadlines`` task call. The clock is an
argument: a piece is due at ``due_at <= now``, exactly at its deadline and not before. Idempotent and safe
beside another runner: a piece is moved only from the status (and holder) it was read with, so of two
runners applying deadlines at once each piece is moved by one; a piece an actor or ops moved meanwhile is
left alone.

>>> late_reason(InvoiceStatus.A_VALIDER_1, Deadlines())
'Délai de validation de 15 jours dépassé : validation tacite'
>>> late_reason(InvoiceStatus.MISE_A_DISPOSITION_MOE, Deadlines(moe_days=7))
"Délai de réponse de la maîtrise d'œuvre de 7 jours dépassé : transmise à la maîtrise d'ouvrage"
"""

from __future__ import annotations

import datetime as dt

from flows.domain import log
from flows.domain.circuits import EXPIRED, Deadlines
from flows.domain.history import Source
from flows.domain.lifecycle import INVOICE, Actor, InvoiceStatus
from flows.domain.model import Invoice
from flows.pipeline.status_changes import pass_on_moves
from flows.store import StatusChanged, Store
from flows.store.circuits import StatusMove

_log = log.get("relais.deadlines")
BATCH = 500  # pieces read at a time


class _Moved(StatusChanged):
    """The piece is no longer where it was read (an actor, ops or another runner moved it): skipped."""


def late_reason(status: InvoiceStatus, deadlines: Deadlines) -> str:
    """The history reason of a deadline that passed in `status` (French: it reaches the return flow)."""
    days = deadlines.days(status)
    if status in (InvoiceStatus.A_VALIDER_1, InvoiceStatus.A_VALIDER_2):
        return f"Délai de validation de {days} jours dépassé : validation tacite"
    days = deadlines.moe_days
    return f"Délai de réponse de la maîtrise d'œuvre de {days} jours dépassé : transmise à la maîtrise d'ouvrage"


def apply(store: Store, now: dt.datetime, deadlines: Deadlines, *, batch: int = BATCH) -> int:
    """Move on every piece whose deadline passed at `now`; how many moved."""
    moved = 0
    while True:
        due = store.due_pieces(now, list(EXPIRED), limit=batch)
        done = sum(expire(store, inv, now, deadlines) for inv in due)
        moved += done
        if len(due) < batch or not done:  # the rest (if any) is what others moved meanwhile
            break
    if moved:
        _log.info("deadlines.applied", pieces=moved)
    return moved


def expire(store: Store, inv: Invoice, now: dt.datetime, deadlines: Deadlines) -> bool:
    """Move one due piece (as read: `inv`) to its expired status and on; False when it moved meanwhile."""
    source_status, holder = inv.status, inv.holder
    target = EXPIRED[source_status]

    def check(current: InvoiceStatus, now_holder: str | None) -> None:
        if current is not source_status or now_holder != holder:
            raise _Moved(f"invoice {inv.id} moved meanwhile")
        INVOICE.check(current, target, Actor.PLATFORM)

    first = StatusMove(
        target=target,
        actor=Actor.PLATFORM,
        source=Source.PLATFORM,
        check=check,
        reason=late_reason(source_status, deadlines),
        turn=(None, None),
    )
    then, deliver = pass_on_moves(inv, target, deadlines, now)
    try:
        entries = store.move_piece(inv.id, [first, *then], deliver=deliver)
    except StatusChanged:  # _Moved, or its status changed between the check and the write
        return False
    if not entries:
        return False
    _log.info(
        "deadline.passed",
        invoice_id=inv.id,
        was=source_status.name,
        now=entries[-1].status.name,
        due_at=inv.due_at.isoformat() if inv.due_at else None,
    )
    return True
