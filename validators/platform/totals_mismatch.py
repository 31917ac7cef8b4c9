"""RLS-P06: the total with VAT is not the total without VAT plus the VAT total (BT-112 ≠ BT-109 + BT-110).

Checked only when the three amounts are given and the VAT total is in the
invoice currency, with a tolerance of 0.01 (EN 16931 amounts have two decimals;
the exact check is BR-CO-15). The platform checks it itself because not every
rule set does (the Factur-X MINIMUM and EXTENDED schematrons do not).
`SAME_AS`: the EN 16931 rule with the same meaning; when it already fired
(`InvoiceContext.prior`), this one is not reported a second time.

>>> from decimal import Decimal as D
>>> from flows.io.extract import Facts
>>> wrong = Facts(total_without_vat=D("100"), total_vat=D("20"), total_with_vat=D("121"), currency="EUR")
>>> check(InvoiceContext(facts=wrong)).message
'The total with VAT is not the total without VAT plus the VAT total: 121 ≠ 100 + 20'
>>> print(check(InvoiceContext(facts=wrong, prior=frozenset({"BR-CO-15"}))))  # already said by EN 16931
None
>>> print(check(InvoiceContext(facts=Facts(total_without_vat=D("100"), total_vat=D("20"), total_with_vat=D("120.01")))))
None
>>> print(check(InvoiceContext(facts=Facts(total_without_vat=D("100"), total_with_vat=D("130")))))  # no VAT total
None
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext
from validators.limits import AMOUNT_TOLERANCE
from validators.terms import TOTAL_WITH_VAT

RULE = Rule(
    "RLS-P06",
    Flag.FATAL,
    "The total with VAT is not the total without VAT plus the VAT total",
    "Le total TTC n'est pas égal au total HT augmenté du total de TVA",
    category=Category.PLATFORM,
    stage=Stage.DOCUMENT,
)
SAME_AS = "BR-CO-15"


def check(ctx: InvoiceContext) -> ValidationError | None:
    facts = ctx.facts
    if facts is None or SAME_AS in ctx.prior:
        return None
    net, vat, gross = facts.total_without_vat, facts.total_vat, facts.total_with_vat
    if net is None or vat is None or gross is None:
        return None
    if facts.total_vat_currency and facts.currency and facts.total_vat_currency != facts.currency:
        return None  # only a VAT total in the accounting currency (BT-111): not comparable
    if abs(gross - (net + vat)) > AMOUNT_TOLERANCE:
        return RULE.error(TOTAL_WITH_VAT, f"{gross} ≠ {net} + {vat}")
    return None
