"""RLS-P09: the invoice gives no currency (BT-5).

The EN 16931 rule sets say the same (BR-05); the platform records the currency
with the invoice and does not depend on the rule set in use to know it is there.
`SAME_AS`: see `totals_mismatch`.

>>> from flows.extract import Facts
>>> check(Facts()).rule, check(Facts(currency="EUR"))
('RLS-P09', None)
"""

from __future__ import annotations

from flows.model import Flag, InvoiceFacts, ValidationError
from validators.platform import CURRENCY
from flows.rule import Rule

RULE = Rule(
    "RLS-P09",
    Flag.FATAL,
    "The invoice currency code is missing",
    "Le code devise de la facture est absent",
)
SAME_AS = "BR-05"


def check(facts: InvoiceFacts) -> ValidationError | None:
    return RULE.error(CURRENCY) if not facts.currency else None
