"""RLS-R05: the recipient requires a service code and the invoice gives none.

>>> from validators.addressing import Addressing
>>> from flows.domain.structures import Directory, Structure
>>> s = Structure("21750001600019", "Ville", True, True, False, False, {"COMPTA": ("Comptabilité", True)})
>>> directory = Directory("v1", {s.siret: s})
>>> check(InvoiceContext(addressing=Addressing(s.siret), directory=directory)).rule
'RLS-R05'
>>> print(check(InvoiceContext(addressing=Addressing(s.siret, "COMPTA"), directory=directory)))
None
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext
from validators.terms import SERVICE

RULE = Rule(
    "RLS-R05",
    Flag.FATAL,
    "The recipient requires a service code and none is given",
    "Le destinataire exige un code service et aucun n'est renseigné",
    category=Category.ROUTING,
    stage=Stage.DIRECTORY,
)


def check(ctx: InvoiceContext) -> ValidationError | None:
    s, a = ctx.recipient, ctx.addressing
    if s is not None and a is not None and s.service_code_required and not a.service_code:
        return RULE.error(SERVICE, s.siret)
    return None
