"""RLS-P10: invoice totals are stated in a currency other than the invoice currency (BT-5).

EN 16931: every amount is in the invoice currency except the VAT total in
accounting currency (BT-111). Read: the currencyID of UBL
``cac:LegalMonetaryTotal`` amounts and of the CII header monetary summation
amounts other than ``ram:TaxTotalAmount`` (where BT-111 lives). The EN 16931
rule sets do not check it.

>>> from flows.extract import Facts
>>> check(Facts(currency="EUR", total_currencies=("EUR", "USD"))).message
'Invoice totals are stated in a currency other than the invoice currency: USD in an invoice in EUR'
>>> check(Facts(currency="EUR", total_currencies=("EUR",))) is None
True
>>> check(Facts(currency=None, total_currencies=("USD",))) is None  # RLS-P09 reports that
True
"""

from __future__ import annotations

from flows.extract import Facts
from flows.model import Flag, ValidationError
from validators.platform import CURRENCY
from flows.rule import Rule

RULE = Rule(
    "RLS-P10",
    Flag.FATAL,
    "Invoice totals are stated in a currency other than the invoice currency",
    "Des montants totaux de la facture sont exprimés dans une autre devise que celle de la facture",
)


def check(facts: Facts) -> ValidationError | None:
    if not facts.currency:
        return None
    other = [c for c in facts.total_currencies if c != facts.currency]
    if other:
        return RULE.error(CURRENCY, f"{', '.join(other)} in an invoice in {facts.currency}")
    return None
