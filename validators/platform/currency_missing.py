"""RLS-P09: the invoice gives no currency (BT-5).

The EN 16931 rule sets say the same (BR-05); the platform records the currency
with the invoice and does not depend on the rule set in use to know it is there.
`SAME_AS`: see `totals_mismatch`. Without facts (not read yet) there is nothing to judge.

>>> from flows.io.extract import Facts
>>> check(InvoiceContext(facts=Facts())).rule
'RLS-P09'
>>> print(check(InvoiceContext(facts=Facts(currency="EUR"))))
None
>>> print(check(InvoiceContext(facts=Facts(), prior=frozenset({"BR-05"}))))
None
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext
from validators.terms import CURRENCY

RULE = Rule(
    "RLS-P09",
    Flag.FATAL,
    "The invoice currency code is missing",
    "Le code devise de la facture est absent",
    category=Category.PLATFORM,
    stage=Stage.DOCUMENT,
)
SAME_AS = "BR-05"


def check(ctx: InvoiceContext) -> ValidationError | None:
    if ctx.facts is None or SAME_AS in ctx.prior:
        return None
    return RULE.error(CURRENCY) if not ctx.facts.currency else None
