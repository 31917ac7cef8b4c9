"""RLS-R07: the service code given is an inactive service of the recipient.

>>> from validators.addressing import Addressing
>>> from flows.domain.structures import Directory, Structure
>>> s = Structure("21750001600019", "Ville", True, False, False, False,
...               {"COMPTA": ("Comptabilité", True), "OLD": ("Ancien", False)})
>>> directory = Directory("v1", {s.siret: s})
>>> check(InvoiceContext(addressing=Addressing(s.siret, "OLD"), directory=directory)).message
"The recipient's service is inactive: 'OLD' (Ancien)"
>>> print(check(InvoiceContext(addressing=Addressing(s.siret, "COMPTA"), directory=directory)))
None
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext
from validators.terms import SERVICE

RULE = Rule(
    "RLS-R07",
    Flag.FATAL,
    "The recipient's service is inactive",
    "Le service du destinataire est inactif",
    category=Category.ROUTING,
    stage=Stage.DIRECTORY,
)


def check(ctx: InvoiceContext) -> ValidationError | None:
    s, a = ctx.recipient, ctx.addressing
    if s is None or a is None:
        return None
    service = s.services.get(a.service_code or "")
    if service is not None and not service[1]:
        return RULE.error(SERVICE, f"{a.service_code!r} ({service[0]})")
    return None
