"""Limits of the platform rules on attachments, configurable per deployment.

The defaults are the publicly stated Chorus Pro limits (domain.md): attachment
names of at most 50 characters with an extension from the list below, each
attachment under 10 MB, an invoice and its attachments at most 120 MB
(decimal megabytes: 1 MB = 1,000,000 bytes).

`ALLOWED_EXTENSIONS` is the list of file types Chorus Pro accepts as
attachments, as it publishes it in upper case. Matching ignores case
(``annexe.pdf`` and ``ANNEXE.PDF`` are both a PDF).

>>> Limits().allows("Bon-de-livraison.PDF"), Limits().allows("setup.exe"), Limits().allows("README")
(True, False, False)
>>> Limits(allowed_extensions=frozenset({"pdf"})).allows("a.xml")
False
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

ALLOWED_EXTENSIONS: frozenset[str] = frozenset(
    "BMP GIF FAX ODT PPT TIFF XLS BZ2 GZ JPEG P7S RTF TXT XML CSV GZIP JPG PDF SVG XHTML "
    "XLSX DOC HTM ODP PNG TGZ XLC ZIP DOCX HTML ODS PPS TIF XLM PPTX".split()
)

# Amounts are compared with this tolerance: EN 16931 amounts have two decimals,
# and a difference of one cent is left to the EN 16931 rules (exact) to judge.
AMOUNT_TOLERANCE = Decimal("0.01")


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    attachment_name_max: int = 50  # characters, extension included
    attachment_max_bytes: int = 10_000_000  # each attachment must be smaller than this
    invoice_total_max_bytes: int = 120_000_000  # invoice + attachments: at most this
    allowed_extensions: frozenset[str] = ALLOWED_EXTENSIONS  # any case

    def __post_init__(self) -> None:
        normalised = frozenset(e.lower().lstrip(".") for e in self.allowed_extensions)
        object.__setattr__(self, "allowed_extensions", normalised)

    def allows(self, name: str | None) -> bool:
        """Whether file `name` has an allowed extension."""
        if not name or "." not in name:
            return False
        return name.rsplit(".", 1)[1].lower() in self.allowed_extensions
