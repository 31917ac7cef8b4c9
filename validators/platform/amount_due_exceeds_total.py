"""RLS-P07: the amount due exceeds the total with VAT and nothing explains it (BT-115 > BT-112).

EN 16931 (BR-CO-16): amount due = total with VAT − prepaid amount (BT-113) +
rounding amount (BT-114). Only what is certainly wrong is flagged: the check
applies when no prepaid amount is given (absent or zero: a prepaid amount of
either sign is left to BR-CO-16), and allows a positive rounding amount and a
tolerance of 0.01. A due amount above the total asks the buyer to pay more than
the invoice is worth. Some profiles (Factur-X MINIMUM) cannot state a rounding
amount: there an undeclared rounding up is reported too.
`SAME_AS`: see `totals_mismatch`.

>>> from decimal import Decimal as D
>>> from flows.io.extract import Facts
>>> check(InvoiceContext(facts=Facts(total_with_vat=D("120"), amount_due=D("150")))).message
'The amount due exceeds the total with VAT, with no prepaid amount to explain it: 150 > 120'
>>> print(check(InvoiceContext(facts=Facts(total_with_vat=D("120"), amount_due=D("150"), prepaid_amount=D("-30")))))
None
>>> print(check(InvoiceContext(facts=Facts(total_with_vat=D("99.98"), amount_due=D("100"), rounding_amount=D("0.02")))))
None
>>> print(check(InvoiceContext(facts=Facts(total_with_vat=D("120"), amount_due=D("90")))))  # less: BR-CO-16's to judge
None
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext
from validators.limits import AMOUNT_TOLERANCE
from validators.terms import AMOUNT_DUE

RULE = Rule(
    "RLS-P07",
    Flag.FATAL,
    "The amount due exceeds the total with VAT, with no prepaid amount to explain it",
    "Le montant à payer dépasse le total TTC sans montant déjà payé qui l'explique",
    category=Category.PLATFORM,
    stage=Stage.DOCUMENT,
)
SAME_AS = "BR-CO-16"


def check(ctx: InvoiceContext) -> ValidationError | None:
    facts = ctx.facts
    if facts is None or SAME_AS in ctx.prior:
        return None
    due, gross = facts.amount_due, facts.total_with_vat
    if due is None or gross is None or facts.prepaid_amount:
        return None
    rounding = max(facts.rounding_amount or 0, 0)
    if due > gross + rounding + AMOUNT_TOLERANCE:
        extra = f" + rounding {rounding}" if rounding else ""
        return RULE.error(AMOUNT_DUE, f"{due} > {gross}{extra}")
    return None
