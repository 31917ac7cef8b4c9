"""RLS-P02: an attachment's file name is longer than allowed (50 characters, extension included).

Per attachment: one finding for each attachment of `InvoiceContext.attachments`.

>>> from flows.io.attachments import Attachment
>>> long = Attachment("x" * 47 + ".pdf", "application/pdf", 10, "Attachment")
>>> [e.message for e in check(InvoiceContext(attachments=(long,)))]
["The attachment's file name is too long: 51 characters, at most 50"]
>>> check(InvoiceContext(attachments=(Attachment("x" * 46 + ".pdf", "application/pdf", 10, "A"),)))
[]
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext

RULE = Rule(
    "RLS-P02",
    Flag.FATAL,
    "The attachment's file name is too long",
    "Le nom de fichier de la pièce jointe est trop long",
    category=Category.PLATFORM,
    stage=Stage.DOCUMENT,
)


def check(ctx: InvoiceContext) -> list[ValidationError]:
    most = ctx.limits.attachment_name_max
    return [
        RULE.error(a.location, f"{len(a.name)} characters, at most {most}")
        for a in ctx.attachments
        if a.name is not None and len(a.name) > most
    ]
