"""RLS-R03: the buyer SIRET is not a structure of the directory.

`FINAL`: a breach ends the routing checks (no structure to check the service of).
Without a directory (not known at this stage) there is nothing to judge.

>>> from validators.addressing import Addressing
>>> from flows.domain.structures import Directory, Structure
>>> directory = Directory("v1", {"11000201100044": Structure("11000201100044", "Commune", True, False, False, False, {})})
>>> check(InvoiceContext(addressing=Addressing("35600000000048"), directory=directory)).message
"The recipient's SIRET is not in the directory of public structures: 35600000000048"
>>> print(check(InvoiceContext(addressing=Addressing("11000201100044"), directory=directory)))
None
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext
from validators.terms import BUYER

RULE = Rule(
    "RLS-R03",
    Flag.FATAL,
    "The recipient's SIRET is not in the directory of public structures",
    "Le SIRET du destinataire est absent de l'annuaire des structures publiques",
    category=Category.ROUTING,
    stage=Stage.DIRECTORY,
)
FINAL = True


def check(ctx: InvoiceContext) -> ValidationError | None:
    a = ctx.addressing
    if ctx.directory is None or a is None or not a.buyer_siret:
        return None
    if ctx.recipient is not None or ctx.reform_known:  # B2B: the reform's directory judges it (RLS-R10, R11)
        return None
    return RULE.error(BUYER, a.buyer_siret)
