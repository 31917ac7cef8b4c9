"""RLS-P04: an attachment is too large (each must be smaller than 10 MB, 10,000,000 bytes).

The size is the attachment's own, decoded (not its base64 text in the XML). Per attachment.

>>> from flows.io.attachments import Attachment
>>> [e.message for e in check(InvoiceContext(attachments=(Attachment("a.pdf", None, 10_000_000, "A"),)))]
['The attachment is too large: 10000000 bytes, it must be under 10000000']
>>> check(InvoiceContext(attachments=(Attachment("a.pdf", None, 9_999_999, "A"),)))
[]
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext

RULE = Rule(
    "RLS-P04",
    Flag.FATAL,
    "The attachment is too large",
    "La pièce jointe est trop volumineuse",
    category=Category.PLATFORM,
    stage=Stage.DOCUMENT,
)


def check(ctx: InvoiceContext) -> list[ValidationError]:
    most = ctx.limits.attachment_max_bytes
    return [
        RULE.error(a.location, f"{'more than ' if a.at_least else ''}{a.size} bytes, it must be under {most}")
        for a in ctx.attachments
        if a.size is not None and a.size >= most
    ]
