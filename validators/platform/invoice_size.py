"""RLS-P05: the invoice and its attachments are larger than allowed (120 MB, 120,000,000 bytes).

The size is `InvoiceContext.total_size` (`flows.io.attachments.total_size`): the
invoice XML without the base64 text of its attachments, plus each attachment
decoded; a PDF counts at least its own size. Unknown size: nothing to report.

>>> check(InvoiceContext(total_size=120_000_001)).message
'The invoice and its attachments exceed the size limit: 120000001 bytes, at most 120000000'
>>> print(check(InvoiceContext(total_size=120_000_000)))
None
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext

RULE = Rule(
    "RLS-P05",
    Flag.FATAL,
    "The invoice and its attachments exceed the size limit",
    "La facture et ses pièces jointes dépassent la taille maximale",
    category=Category.PLATFORM,
    stage=Stage.DOCUMENT,
)


def check(ctx: InvoiceContext) -> ValidationError | None:
    most = ctx.limits.invoice_total_max_bytes
    if ctx.total_size is not None and ctx.total_size > most:
        return RULE.error("/", f"{ctx.total_size} bytes, at most {most}")
    return None
