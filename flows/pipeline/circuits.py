"""Billing circuits in the pipeline: where a piece starts when it is taken in (docs/billing-frameworks.md).

`flows.pipeline.process` judges a piece (the association rules found the piece it follows,
`validators.association`) and asks `place` where it starts: its framework, its billing file, the piece it
follows and, once accepted, its first turn (`flows.domain.circuits.entry`): status, holder, deadline. The
answer says whether its delivery is queued now, queued HELD (its circuit reaches the recipient after a
validator: A9, A12) or not at all (its circuit goes to the MOE, the MOA or the supplier first).

>>> import datetime as dt
>>> from flows.domain.model import Invoice
>>> inv = Invoice(id="F-00001", flow_id="F", position=1, entry_name="x", buyer_siret="B", validator_1="T")
>>> now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
>>> place(inv, Framework.A9, None, Deadlines(), now)
<Delivery.HELD: 'held'>
>>> inv.status.name, inv.holder, inv.due_at.date(), inv.billing_file_id
('A_VALIDER_1', 'T', datetime.date(2026, 1, 16), 'F-00001')
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING

from flows.domain.circuits import Deadlines, Parties, entry
from flows.domain.frameworks import Framework, Step
from flows.domain.model import Invoice

if TYPE_CHECKING:
    from flows.store.circuits import PieceRef

__all__ = ["Deadlines", "Delivery", "place"]


class Delivery(enum.StrEnum):
    """What becomes of a piece's delivery to its recipient at intake."""

    NOW = "now"  # queued, sent once its flow is closed (a plain invoice)
    HELD = "held"  # queued HELD: sent when its circuit reaches the recipient (A9, A12 after their validator)
    NONE = "none"  # not queued: its circuit does not reach the recipient from here (MOE, MOA, supplier)


def place(
    inv: Invoice,
    framework: Framework | None,
    previous: PieceRef | None,
    deadlines: Deadlines,
    now: dt.datetime,
    *,
    circuits: bool = True,
) -> Delivery:
    """Set a judged piece's framework (A1 when BT-23 names none: RLS-P12 rejected it), billing file, the
    piece it follows and, accepted, its first turn; what becomes of its delivery.

    A rejected piece stays the recipient's (``holder``), in no billing file, without a deadline. Without
    `circuits` (a flow in qualification) an accepted piece is a one-piece file, DEPOSEE as a plain invoice.
    """
    inv.framework = framework or Framework.A1
    inv.holder, inv.due_at = inv.buyer_siret, None
    if inv.rejected:
        inv.previous_id = inv.billing_file_id = None
        return Delivery.NONE
    if previous is not None and circuits:
        inv.previous_id, inv.billing_file_id = previous.id, previous.billing_file_id or previous.id
    else:
        inv.previous_id, inv.billing_file_id = None, inv.id
    if not circuits:
        return Delivery.NOW
    turn = entry(inv.framework, Parties.named_by(inv))
    inv.status, inv.holder, inv.due_at = turn.status, turn.holder, deadlines.due(turn.status, now)
    steps = inv.framework.steps
    if steps[0] is Step.RECIPIENT:
        return Delivery.NOW
    return Delivery.HELD if Step.RECIPIENT in steps else Delivery.NONE
