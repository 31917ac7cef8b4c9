"""RLS-P11: an attachment cannot be read (a PDF's embedded file whose stream is broken).

Its size cannot be known, so the attachment limits cannot be checked: fail closed.

>>> from flows.attachments import Attachment
>>> check(Attachment("a.pdf", None, None, "PDF/EmbeddedFiles[2] (a.pdf)")).rule
'RLS-P11'
>>> check(Attachment("a.pdf", None, 0, "A")) is None
True
"""

from __future__ import annotations

from flows.attachments import Attachment
from flows.model import Flag, ValidationError
from flows.rule import Rule

RULE = Rule(
    "RLS-P11",
    Flag.FATAL,
    "An attachment cannot be read",
    "Une pièce jointe est illisible",
)


def check(a: Attachment) -> ValidationError | None:
    return RULE.error(a.location) if a.size is None else None
