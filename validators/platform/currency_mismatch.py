"""RLS-P10: invoice totals are stated in a currency other than the invoice currency (BT-5).

EN 16931: every amount is in the invoice currency except the VAT total in
accounting currency (BT-111). Read: the currencyID of UBL
``cac:LegalMonetaryTotal`` amounts and of the CII header monetary summation
amounts other than ``ram:TaxTotalAmount`` (where BT-111 lives). The EN 16931
rule sets do not check it.

>>> from flows.io.extract import Facts
>>> check(InvoiceContext(facts=Facts(currency="EUR", total_currencies=("EUR", "USD")))).message
'Invoice totals are stated in a currency other than the invoice currency: USD in an invoice in EUR'
>>> print(check(InvoiceContext(facts=Facts(currency="EUR", total_currencies=("EUR",)))))
None
>>> print(check(InvoiceContext(facts=Facts(currency=None, total_currencies=("USD",)))))  # RLS-P09 reports that
None
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext
from validators.terms import CURRENCY

RULE = Rule(
    "RLS-P10",
    Flag.FATAL,
    "Invoice totals are stated in a currency other than the invoice currency",
    "Des montants totaux de la facture sont exprimés dans une autre devise que celle de la facture",
    category=Category.PLATFORM,
    stage=Stage.DOCUMENT,
)


def check(ctx: InvoiceContext) -> ValidationError | None:
    facts = ctx.facts
    if facts is None or not facts.currency:
        return None
    other = [c for c in facts.total_currencies if c != facts.currency]
    if other:
        return RULE.error(CURRENCY, f"{', '.join(other)} in an invoice in {facts.currency}")
    return None
