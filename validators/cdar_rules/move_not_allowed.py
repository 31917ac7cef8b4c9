"""RLS-C04: the invoice's lifecycle does not allow this status from the status it has.

The move is checked as every status change is (`flows.domain.lifecycle.INVOICE`, for the actor the CDAR status
belongs to: `Actor.PARTNER_PLATFORM` for the buyer's, `Actor.SUPPLIER` for the seller's): the reform's order,
never back, nothing after a final status. It is checked again when the line is applied, from the status
the invoice has then (an earlier line of the same message may have moved it).

>>> from flows.domain.cdar import StatusLine
>>> from flows.domain.lifecycle import InvoiceStatus
>>> print(check(StatusLine("F-1", "205"), 1, InvoiceStatus.MISE_A_DISPOSITION))
None
>>> check(StatusLine("F-1", "202"), 1, InvoiceStatus.APPROUVEE).rule
'RLS-C04'
"""

from __future__ import annotations

from flows.domain.cdar import RELAIS_STATUS, StatusLine, actor_of
from flows.domain.lifecycle import INVOICE, IllegalTransition, InvoiceStatus
from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.cdar_rules import location

RULE = Rule(
    "RLS-C04",
    Flag.FATAL,
    "The invoice's lifecycle does not allow this status from its current status",
    "Le cycle de vie de la facture n'autorise pas ce statut depuis son statut actuel",
    category=Category.LIFECYCLE,
    stage=Stage.STORE,
)


def refusal(line: StatusLine, position: int, e: IllegalTransition) -> ValidationError:
    """The finding of a move the lifecycle refused (`IllegalTransition` names the moves allowed)."""
    return RULE.error(location(line, position), f"{line.status}: {e}")


def check(line: StatusLine, position: int, current: InvoiceStatus) -> ValidationError | None:
    try:
        INVOICE.check(current, RELAIS_STATUS[line.status], actor_of(line.status))
    except IllegalTransition as e:
        return refusal(line, position, e)
    return None
