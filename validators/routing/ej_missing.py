"""RLS-R08: the recipient requires a commitment number (EJ) and the invoice gives none.

>>> from validators.addressing import Addressing
>>> from flows.domain.structures import Directory, Structure
>>> s = Structure("19350936100013", "Lycée EJ", True, False, True, False, {})
>>> directory = Directory("v1", {s.siret: s})
>>> check(InvoiceContext(addressing=Addressing(s.siret), directory=directory)).rule
'RLS-R08'
>>> print(check(InvoiceContext(addressing=Addressing(s.siret, None, "EJ-123"), directory=directory)))
None
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext
from validators.terms import EJ

RULE = Rule(
    "RLS-R08",
    Flag.FATAL,
    "The recipient requires a commitment number (engagement juridique) and none is given",
    "Le destinataire exige un numéro d'engagement juridique et aucun n'est renseigné",
    category=Category.ROUTING,
    stage=Stage.DIRECTORY,
)


def check(ctx: InvoiceContext) -> ValidationError | None:
    s, a = ctx.recipient, ctx.addressing
    if s is not None and a is not None and s.ej_required and not s.ej_or_service and not a.commitment_number:
        return RULE.error(EJ, s.siret)
    return None
