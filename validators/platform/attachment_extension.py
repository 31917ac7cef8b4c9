"""RLS-P03: an attachment's file type (its name's extension) is not an allowed one.

The allowed list is `limits.Limits.allowed_extensions` (by default the Chorus Pro
list, any case). An attachment without a file name, or whose name has no
extension, has no allowed type either.

>>> from flows.attachments import Attachment
>>> check(Attachment("setup.exe", None, 10, "AdditionalDocumentReference[2]/Attachment (setup.exe)"), Limits()).message
"The attachment's file type (extension) is not allowed: '.exe'"
>>> check(Attachment(None, "application/pdf", 10, "A"), Limits()).message
"The attachment's file type (extension) is not allowed: the attachment has no file name"
>>> check(Attachment("Annexe.PDF", None, 10, "A"), Limits()) is None
True
"""

from __future__ import annotations

from flows.attachments import Attachment
from flows.model import Flag, ValidationError
from validators.platform.limits import Limits
from flows.rule import Rule

RULE = Rule(
    "RLS-P03",
    Flag.FATAL,
    "The attachment's file type (extension) is not allowed",
    "Le type de fichier (extension) de la pièce jointe n'est pas autorisé",
)


def check(a: Attachment, limits: Limits) -> ValidationError | None:
    if limits.allows(a.name):
        return None
    if not a.name:
        return RULE.error(a.location, "the attachment has no file name")
    if a.extension is None:
        return RULE.error(a.location, "the file name has no extension")
    return RULE.error(a.location, repr(f".{a.extension}"))
