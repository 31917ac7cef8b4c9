"""Routing rules (RLS-R..) and platform rules (RLS-P..), one module per rule.

Each module has the same shape: ``RULE`` (its code, flag and messages) and a
pure ``check(...) -> ValidationError | None``. Routing rules take
``(addressing, structure)`` and `validators.routing` runs them; platform rules
take the invoice's facts (`flows.extract.Facts`), one attachment
(`flows.attachments.Attachment`) or a size, with `limits.Limits`, and
`validators.platform_rules` runs them. Locations name the EN 16931 business
term read, or the attachment's place in the document.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class Addressing:
    """What an invoice says about where it goes."""

    buyer_siret: str | None
    service_code: str | None = None
    commitment_number: str | None = None


BUYER = "BT-46/BT-47 (buyer identifier, SIRET)"
SERVICE = "BT-10 (buyer reference: service code)"
EJ = "BT-13 (purchase order reference: commitment number)"

INVOICE_NUMBER = "BT-1 (invoice number)"
CURRENCY = "BT-5 (invoice currency code)"
TYPE_CODE = "BT-3 (invoice type code)"
TOTAL_WITHOUT_VAT = "BT-109 (invoice total amount without VAT)"
TOTAL_VAT = "BT-110 (invoice total VAT amount)"
TOTAL_WITH_VAT = "BT-112 (invoice total amount with VAT)"
AMOUNT_DUE = "BT-115 (amount due for payment)"
