"""Formats, defect names and fixed values shared by the generator modules."""

from __future__ import annotations

import datetime as dt
from typing import Literal

Fmt = Literal["ubl", "cii", "facturx"]
Batch = Literal["none", "zip", "tar.gz"]

#: Defects that make the document fail its XSD (the flow is rejected whole).
XSD_DEFECTS: tuple[str, ...] = ("xsd-amount", "xsd-missing-id")
#: Defects that keep the document XSD-valid but break a platform routing rule.
ROUTING_DEFECTS: tuple[str, ...] = (
    "unknown-siret",
    "bad-siret-checksum",
    "missing-service",
    "missing-ej",
    "inactive-recipient",
    "unknown-service",
    "inactive-service",
)
DEFECTS: tuple[str, ...] = XSD_DEFECTS + ROUTING_DEFECTS

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017"
DIRECTORY_FORMAT = "relais-directory/1"
VAT_RATE = 20  # percent, category S
PAYMENT_DAYS = 30

_EPOCH = dt.date(2026, 1, 5)  # first issue date of a plan
_ZIP_TIME = (2026, 1, 1, 0, 0, 0)
_TAR_MTIME = 1767225600  # 2026-01-01T00:00:00Z
