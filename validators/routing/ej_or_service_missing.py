"""RLS-R09: the recipient requires a commitment number or a service code, and the invoice gives neither.

>>> from validators.addressing import Addressing
>>> from flows.domain.structures import Directory, Structure
>>> s = Structure("26690001800018", "Hôpital", True, False, False, True, {"ACHATS": ("Achats", True)})
>>> directory = Directory("v1", {s.siret: s})
>>> check(InvoiceContext(addressing=Addressing(s.siret), directory=directory)).rule
'RLS-R09'
>>> check(InvoiceContext(addressing=Addressing(s.siret), directory=directory)).location
'BT-13 (purchase order reference: commitment number) | BT-10 (buyer reference: service code)'
>>> print(check(InvoiceContext(addressing=Addressing(s.siret, "ACHATS"), directory=directory)))
None
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext
from validators.terms import EJ, SERVICE

RULE = Rule(
    "RLS-R09",
    Flag.FATAL,
    "The recipient requires a commitment number or a service code, and neither is given",
    "Le destinataire exige un numéro d'engagement juridique ou un code service, et aucun n'est renseigné",
    category=Category.ROUTING,
    stage=Stage.DIRECTORY,
)


def check(ctx: InvoiceContext) -> ValidationError | None:
    s, a = ctx.recipient, ctx.addressing
    if s is not None and a is not None and s.ej_or_service and not a.commitment_number and not a.service_code:
        return RULE.error(f"{EJ} | {SERVICE}", s.siret)
    return None
