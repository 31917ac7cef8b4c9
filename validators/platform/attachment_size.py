"""RLS-P04: an attachment is too large (each must be smaller than 10 MB, 10,000,000 bytes).

The size is the attachment's own, decoded (not its base64 text in the XML).

>>> from flows.attachments import Attachment
>>> check(Attachment("a.pdf", None, 10_000_000, "A"), Limits()).message
'The attachment is too large: 10000000 bytes, it must be under 10000000'
>>> check(Attachment("a.pdf", None, 9_999_999, "A"), Limits()) is None
True
"""

from __future__ import annotations

from flows.attachments import Attachment
from flows.model import Flag, ValidationError
from validators.platform.limits import Limits
from flows.rule import Rule

RULE = Rule(
    "RLS-P04",
    Flag.FATAL,
    "The attachment is too large",
    "La pièce jointe est trop volumineuse",
)


def check(a: Attachment, limits: Limits) -> ValidationError | None:
    if a.size is not None and a.size >= limits.attachment_max_bytes:
        size = f"more than {a.size}" if a.at_least else str(a.size)
        return RULE.error(a.location, f"{size} bytes, it must be under {limits.attachment_max_bytes}")
    return None
