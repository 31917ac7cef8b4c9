"""RLS-P08: a commercial invoice (type 380) has a negative total: it must be sent as a credit note (381).

EN 16931 allows negative invoices; the platform does not: a public buyer
cannot put a negative amount into payment, and a credit is a credit note
(the Factur-X corpus agrees: FNFE's "Avoir_FR_type380" example, a credit sent
as type 380 with a negative total, was moved to the failing examples). Fatal,
and only for type 380: other types (corrective invoice 384, self-billed 389,
prepayment 386 ...) are left alone, as is a zero total.

>>> from decimal import Decimal as D
>>> from flows.io.extract import Facts
>>> check(InvoiceContext(facts=Facts(type_code="380", total_with_vat=D("-233.47")))).rule
'RLS-P08'
>>> print(check(InvoiceContext(facts=Facts(type_code="381", total_with_vat=D("-233.47")))))
None
>>> print(check(InvoiceContext(facts=Facts(type_code="380", total_with_vat=D("0")))))
None
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext
from validators.terms import TOTAL_WITH_VAT

RULE = Rule(
    "RLS-P08",
    Flag.FATAL,
    "An invoice (type 380) has a negative total: send a credit note (type 381)",
    "Une facture (type 380) a un montant total négatif : émettre un avoir (type 381)",
    category=Category.PLATFORM,
    stage=Stage.DOCUMENT,
)
COMMERCIAL_INVOICE = "380"


def check(ctx: InvoiceContext) -> ValidationError | None:
    facts = ctx.facts
    if facts is None or facts.type_code != COMMERCIAL_INVOICE:
        return None
    if facts.total_with_vat is not None and facts.total_with_vat < 0:
        return RULE.error(TOTAL_WITH_VAT, str(facts.total_with_vat))
    return None
