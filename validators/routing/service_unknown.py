"""RLS-R06: the service code given is not a service of the recipient.

>>> from validators.addressing import Addressing
>>> from flows.domain.structures import Directory, Structure
>>> s = Structure("21750001600019", "Ville", True, False, False, False, {"COMPTA": ("Comptabilité", True)})
>>> directory = Directory("v1", {s.siret: s})
>>> check(InvoiceContext(addressing=Addressing(s.siret, "NOPE"), directory=directory)).message
"The service code is not a service of the recipient: 'NOPE' for 21750001600019"
>>> print(check(InvoiceContext(addressing=Addressing(s.siret, "COMPTA"), directory=directory)))
None
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext
from validators.terms import SERVICE

RULE = Rule(
    "RLS-R06",
    Flag.FATAL,
    "The service code is not a service of the recipient",
    "Le code service n'est pas un service du destinataire",
    category=Category.ROUTING,
    stage=Stage.DIRECTORY,
)


def check(ctx: InvoiceContext) -> ValidationError | None:
    s, a = ctx.recipient, ctx.addressing
    if s is not None and a is not None and a.service_code and a.service_code not in s.services:
        return RULE.error(SERVICE, f"{a.service_code!r} for {s.siret}")
    return None
