"""RLS-P02: an attachment's file name is longer than allowed (50 characters, extension included).

>>> from flows.attachments import Attachment
>>> check(Attachment("x" * 47 + ".pdf", "application/pdf", 10, "Attachment"), Limits()).message
"The attachment's file name is too long: 51 characters, at most 50"
>>> check(Attachment("x" * 46 + ".pdf", "application/pdf", 10, "A"), Limits()) is None
True
"""

from __future__ import annotations

from flows.attachments import Attachment
from flows.model import Flag, ValidationError
from validators.platform.limits import Limits
from flows.rule import Rule

RULE = Rule(
    "RLS-P02",
    Flag.FATAL,
    "The attachment's file name is too long",
    "Le nom de fichier de la pièce jointe est trop long",
)


def check(a: Attachment, limits: Limits) -> ValidationError | None:
    if a.name is not None and len(a.name) > limits.attachment_name_max:
        return RULE.error(a.location, f"{len(a.name)} characters, at most {limits.attachment_name_max}")
    return None
