"""Platform rules (RLS-P..), one module per rule: duplicates, attachments, amounts.

Each module has the same shape: ``RULE`` (its code, flag, category and stage,
with its messages) and ``check(ctx: validators.context.InvoiceContext)``
returning a ``ValidationError`` or None (a list, one per attachment, for the
attachment rules); `validators.runner` runs them. Locations name the EN 16931
business term read (`validators.terms`), or the attachment's place in the
document. `limits` holds their configurable limits. The routing rules (RLS-R..)
live in `validators.routing`.

`Addressing` and the location names are re-exported here for older callers.
"""

from __future__ import annotations

from validators.addressing import Addressing
from validators.terms import (
    AMOUNT_DUE,
    BUYER,
    CURRENCY,
    EJ,
    INVOICE_NUMBER,
    SERVICE,
    TOTAL_VAT,
    TOTAL_WITH_VAT,
    TOTAL_WITHOUT_VAT,
    TYPE_CODE,
)

__all__ = [
    "AMOUNT_DUE",
    "BUYER",
    "CURRENCY",
    "EJ",
    "INVOICE_NUMBER",
    "SERVICE",
    "TOTAL_VAT",
    "TOTAL_WITHOUT_VAT",
    "TOTAL_WITH_VAT",
    "TYPE_CODE",
    "Addressing",
]
