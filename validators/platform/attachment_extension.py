"""RLS-P03: an attachment's file type (its name's extension) is not an allowed one.

The allowed list is `limits.Limits.allowed_extensions` (by default the Chorus Pro
list, any case). An attachment without a file name, or whose name has no
extension, has no allowed type either. Per attachment.

>>> from flows.io.attachments import Attachment
>>> exe = Attachment("setup.exe", None, 10, "AdditionalDocumentReference[2]/Attachment (setup.exe)")
>>> [e.message for e in check(InvoiceContext(attachments=(exe, Attachment(None, "application/pdf", 10, "A"))))]
["The attachment's file type (extension) is not allowed: '.exe'", "The attachment's file type (extension) is not allowed: the attachment has no file name"]
>>> check(InvoiceContext(attachments=(Attachment("Annexe.PDF", None, 10, "A"),)))
[]
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from flows.io.attachments import Attachment
from validators.context import InvoiceContext

RULE = Rule(
    "RLS-P03",
    Flag.FATAL,
    "The attachment's file type (extension) is not allowed",
    "Le type de fichier (extension) de la pièce jointe n'est pas autorisé",
    category=Category.PLATFORM,
    stage=Stage.DOCUMENT,
)


def check(ctx: InvoiceContext) -> list[ValidationError]:
    return [RULE.error(a.location, _why(a)) for a in ctx.attachments if not ctx.limits.allows(a.name)]


def _why(a: Attachment) -> str:
    if not a.name:
        return "the attachment has no file name"
    if a.extension is None:
        return "the file name has no extension"
    return repr(f".{a.extension}")
