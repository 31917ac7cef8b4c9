"""One invoice as bytes: UBL / CII XML or a Factur-X PDF/A-3, and its file name."""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Literal

from relais.generate.cii import _cii
from relais.generate.constants import Fmt
from relais.generate.specs import InvoiceSpec
from relais.generate.ubl import _ubl


def invoice_xml(fmt: Literal["ubl", "cii"], spec: InvoiceSpec) -> bytes:
    """The invoice as UBL 2.1 (Invoice / CreditNote) or CII D16B, UTF-8 bytes."""
    if fmt == "ubl":
        return _ubl(spec).encode()
    if fmt == "cii":
        return _cii(spec).encode()
    raise ValueError(f"not an XML format: {fmt!r}")


# --------------------------------------------------------------------------- Factur-X


@lru_cache(maxsize=1)
def _blank_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)  # A4 portrait, in points
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def facturx_pdf(spec: InvoiceSpec) -> bytes:
    """A Factur-X (EN 16931 profile) PDF/A-3: a blank A4 page + factur-x.xml.

    The page carries no text: an unembedded font would break PDF/A, and the
    invoice number is in the PDF title metadata anyway.
    """
    from facturx import generate_from_binary

    kind = "Avoir" if spec.credit_note else "Facture"
    metadata = {
        "author": spec.supplier_name,
        "keywords": f"{kind}, Factur-X",
        "title": f"{spec.supplier_name}: {kind} {spec.number}",
        "subject": f"{kind} {spec.number} du {spec.issue_date.isoformat()} émise par {spec.supplier_name}",
    }
    return generate_from_binary(
        _blank_pdf(),
        invoice_xml("cii", spec),
        flavor="factur-x",
        level="en16931",
        check_xsd=False,
        pdf_metadata=metadata,
        lang="fr-FR",
    )


def document(fmt: Fmt, spec: InvoiceSpec) -> tuple[str, bytes]:
    """(file name, bytes) of one invoice: "INV-000001.xml" or "INV-000001.pdf"."""
    if fmt == "facturx":
        return f"{spec.number}.pdf", facturx_pdf(spec)
    return f"{spec.number}.xml", invoice_xml(fmt, spec)
