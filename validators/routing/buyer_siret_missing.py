"""RLS-R01: the invoice names no buyer SIRET.

`FINAL`: a breach ends the routing checks (no recipient to look for).

>>> from validators.addressing import Addressing
>>> check(InvoiceContext(addressing=Addressing(None))).rule
'RLS-R01'
>>> print(check(InvoiceContext(addressing=Addressing("11000201100044"))))
None
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext
from validators.terms import BUYER

RULE = Rule(
    "RLS-R01",
    Flag.FATAL,
    "The invoice does not give the recipient's SIRET",
    "La facture n'indique pas le SIRET du destinataire",
    category=Category.ROUTING,
    stage=Stage.DIRECTORY,
)
FINAL = True


def check(ctx: InvoiceContext) -> ValidationError | None:
    if ctx.addressing is None or ctx.reform_known:  # B2B: the reform's directory knows the buyer (BT-49)
        return None
    return RULE.error(BUYER) if not ctx.addressing.buyer_siret else None
