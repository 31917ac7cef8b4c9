"""RLS-P11: an attachment cannot be read (a PDF's embedded file whose stream is broken).

Its size cannot be known, so the attachment limits cannot be checked: fail closed. Per attachment.

>>> from flows.io.attachments import Attachment
>>> [e.rule for e in check(InvoiceContext(attachments=(Attachment("a.pdf", None, None, "PDF/EmbeddedFiles[2] (a.pdf)"),)))]
['RLS-P11']
>>> check(InvoiceContext(attachments=(Attachment("a.pdf", None, 0, "A"),)))
[]
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext

RULE = Rule(
    "RLS-P11",
    Flag.FATAL,
    "An attachment cannot be read",
    "Une pièce jointe est illisible",
    category=Category.PLATFORM,
    stage=Stage.DOCUMENT,
)


def check(ctx: InvoiceContext) -> list[ValidationError]:
    return [RULE.error(a.location) for a in ctx.attachments if a.size is None]
