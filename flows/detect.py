"""Recognise what a document is from its content, never from its name.

- XML: the root element's namespace and name give the syntax (UBL 2.1 Invoice or
  CreditNote, CII CrossIndustryInvoice); anything else is refused (RLS-T10);
- PDF: the embedded invoice XML (Factur-X, ZUGFeRD 2.x, XRechnung attachment) is
  extracted with the `factur-x` library, then recognised as above;
- zip / tar.gz batches are recognised by `flows.safearchive.sniff`.
"""

from __future__ import annotations

import dataclasses
import io
import logging

from flows import safexml
from flows.errors import Rejected
from flows.model import Container, Syntax
from validators import technical

UBL_INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CREDITNOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CII_NS = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
ZUGFERD1_NS = "urn:ferd:CrossIndustryDocument:invoice:1p0"

EMBEDDED_XML_NAMES = ["factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml", "ZUGFeRD-invoice.xml"]

for _noisy in ("pypdf", "factur-x", "facturx"):
    logging.getLogger(_noisy).setLevel(logging.ERROR)


@dataclasses.dataclass(frozen=True, slots=True)
class Detected:
    syntax: Syntax
    xml: bytes  # the invoice XML (the embedded one for a PDF)
    embedded_name: str | None = None


def xml_syntax(data: bytes) -> Syntax:
    """Syntax of an XML invoice from its root element; Rejected when it is not one.

    >>> xml_syntax(b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"/>')
    <Syntax.UBL_INVOICE: 'ubl-invoice'>
    >>> xml_syntax(b'<order/>')
    Traceback (most recent call last):
    ...
    flows.errors.Rejected: RLS-T10: The XML is not a supported invoice syntax: root element <order>
    """
    ns, local = safexml.peek_root(data)
    if ns == UBL_INVOICE_NS and local == "Invoice":
        return Syntax.UBL_INVOICE
    if ns == UBL_CREDITNOTE_NS and local == "CreditNote":
        return Syntax.UBL_CREDITNOTE
    if ns == CII_NS and local == "CrossIndustryInvoice":
        return Syntax.CII
    name = f"{{{ns}}}{local}" if ns else local
    if ns == ZUGFERD1_NS:
        raise Rejected(technical.UNSUPPORTED_SYNTAX, f"ZUGFeRD 1.0 ({local}) is not supported; send Factur-X / ZUGFeRD 2.x")
    raise Rejected(technical.UNSUPPORTED_SYNTAX, f"root element <{name}>")


def pdf_xml(data: bytes) -> tuple[str, bytes]:
    """(attachment name, XML bytes) of the invoice XML embedded in a PDF."""
    import facturx
    from pypdf import PdfReader

    try:
        name, xml = facturx.get_xml_from_pdf(data, check_xsd=False, filenames=list(EMBEDDED_XML_NAMES))
    except Exception as e:  # pypdf raises many types on broken PDFs
        raise Rejected(technical.PDF_WITHOUT_XML, f"unreadable PDF ({type(e).__name__}: {e})") from e
    if name and xml:
        return name, xml
    # Nothing usable: say precisely why (an embedded XML that does not parse, or none at all).
    try:
        attachments = [(a.name, a.content) for a in PdfReader(io.BytesIO(data)).attachment_list]
    except Exception:
        attachments = []
    for att_name, content in attachments:
        if att_name.lower() in {n.lower() for n in EMBEDDED_XML_NAMES} or att_name.lower().endswith(".xml"):
            safexml.parse(content)  # raises the precise refusal (malformed, DTD, ...)
            xml_syntax(content)  # or: not an invoice syntax
            return att_name, content
    names = ", ".join(n for n, _ in attachments) or "none"
    raise Rejected(technical.PDF_WITHOUT_XML, f"embedded files: {names}")


def detect(container: Container, data: bytes) -> Detected:
    """Syntax and invoice XML of one document (XML or PDF)."""
    if container is Container.PDF:
        name, xml = pdf_xml(data)
        syntax = xml_syntax(xml)
        if syntax is Syntax.CII:
            syntax = Syntax.FACTURX
        return Detected(syntax, xml, name)
    if container is Container.XML:
        return Detected(xml_syntax(data), data)
    raise Rejected(technical.UNKNOWN_FORMAT)
