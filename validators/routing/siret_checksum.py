"""RLS-R02: the buyer SIRET is not a valid SIRET (14 digits, Luhn key, La Poste's exception).

`FINAL`: a breach ends the routing checks.

>>> from validators.addressing import Addressing
>>> check(InvoiceContext(addressing=Addressing("11000201100045"))).rule
'RLS-R02'
>>> print(check(InvoiceContext(addressing=Addressing("11000201100044"))))
None
>>> print(check(InvoiceContext(addressing=Addressing("35600000000048"))))  # La Poste: not Luhn, still valid
None
"""

from __future__ import annotations

from stdnum.fr import siret

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext
from validators.terms import BUYER

RULE = Rule(
    "RLS-R02",
    Flag.FATAL,
    "The recipient's SIRET is not valid (14 digits with a correct check key)",
    "Le SIRET du destinataire n'est pas valide (14 chiffres avec une clé correcte)",
    category=Category.ROUTING,
    stage=Stage.DIRECTORY,
)
FINAL = True


def check(ctx: InvoiceContext) -> ValidationError | None:
    a = ctx.addressing
    if ctx.reform_known:  # B2B: the reform's directory addresses the buyer by SIREN (RLS-R10, RLS-R11)
        return None
    if a is not None and a.buyer_siret and not siret.is_valid(a.buyer_siret):
        return RULE.error(BUYER, repr(a.buyer_siret))
    return None
