"""Where findings point: the EN 16931 business terms the rules read, named in their locations.

Kept apart from the rule packages so that every rule module, routing or
platform, imports the same names without importing a package that runs rules.
"""

from __future__ import annotations

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

FRAMEWORK = "BT-23 (business process type: billing framework)"
PRECEDING = "BT-25 (preceding invoice reference: the previous piece)"
VALIDATOR = "BG-24 (supporting document VALIDEUR: the validator's SIRET)"
MOE = "BG-24 (supporting document MOE: the project manager's SIRET)"
