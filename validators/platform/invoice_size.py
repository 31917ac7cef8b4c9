"""RLS-P05: the invoice and its attachments are larger than allowed (120 MB, 120,000,000 bytes).

The size is `flows.attachments.total_size`: the invoice XML without the base64
text of its attachments, plus each attachment decoded; a PDF counts at least
its own size.

>>> check(120_000_001, Limits()).message
'The invoice and its attachments exceed the size limit: 120000001 bytes, at most 120000000'
>>> check(120_000_000, Limits()) is None
True
"""

from __future__ import annotations

from flows.model import Flag, ValidationError
from validators.platform.limits import Limits
from flows.rule import Rule

RULE = Rule(
    "RLS-P05",
    Flag.FATAL,
    "The invoice and its attachments exceed the size limit",
    "La facture et ses pièces jointes dépassent la taille maximale",
)


def check(total_bytes: int, limits: Limits) -> ValidationError | None:
    if total_bytes > limits.invoice_total_max_bytes:
        return RULE.error("/", f"{total_bytes} bytes, at most {limits.invoice_total_max_bytes}")
    return None
