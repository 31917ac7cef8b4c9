"""Recognise what a document is from its content, never from its name.

- XML: the root element's namespace and name give the syntax (UBL 2.1 Invoice or
  CreditNote, CII CrossIndustryInvoice); anything else is refused (RLS-T10);
- a CDAR D22B lifecycle message (`is_cdar`) is no invoice: a flow that is one is taken by
  `flows.pipeline.cdar_in`, never split nor judged by the invoice validators; found inside a batch or a
  PDF, it is refused as an unsupported invoice syntax (RLS-T10, saying what it is);
- PDF: the embedded invoice XML (Factur-X, ZUGFeRD 2.x, XRechnung attachment) is
  taken from the PDF's attachments (pypdf), read with `flows.io.safexml` like any
  received XML, then recognised as above (ZUGFeRD 1.0 is refused, RLS-T10);
- zip / tar.gz batches are recognised by `flows.io.safearchive.sniff`.
"""

from __future__ import annotations

import dataclasses
import io
import logging

from flows.domain import cdar, technical
from flows.domain.errors import Rejected
from flows.domain.model import Container, Syntax
from flows.io import safexml

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
    declared_profile: str | None = None  # a PDF's XMP fx:ConformanceLevel, as a facturx level


def xml_syntax(data: bytes) -> Syntax:
    """Syntax of an XML invoice from its root element; Rejected when it is not one.

    >>> xml_syntax(b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"/>')
    <Syntax.UBL_INVOICE: 'ubl-invoice'>
    >>> xml_syntax(b'<order/>')
    Traceback (most recent call last):
    ...
    flows.domain.errors.Rejected: RLS-T10: The XML is not a supported invoice syntax: root element <order>
    """
    ns, local = safexml.peek_root(data)
    if ns == UBL_INVOICE_NS and local == "Invoice":
        return Syntax.UBL_INVOICE
    if ns == UBL_CREDITNOTE_NS and local == "CreditNote":
        return Syntax.UBL_CREDITNOTE
    if ns == CII_NS and local == "CrossIndustryInvoice":
        return Syntax.CII
    name = f"{{{ns}}}{local}" if ns else local
    if ns == cdar.RSM and local == cdar.ROOT:
        raise Rejected(technical.UNSUPPORTED_SYNTAX, "a CDAR lifecycle message is a flow of its own, not an invoice")
    if ns == ZUGFERD1_NS:
        raise Rejected(
            technical.UNSUPPORTED_SYNTAX, f"ZUGFeRD 1.0 ({local}) is not supported; send Factur-X / ZUGFeRD 2.x"
        )
    raise Rejected(technical.UNSUPPORTED_SYNTAX, f"root element <{name}>")


def is_cdar(data: bytes) -> bool:
    """Whether an XML document is a CDAR D22B lifecycle message (its root element; nothing else is read).

    >>> is_cdar(b'<rsm:CrossDomainAcknowledgementAndResponse xmlns:rsm="' + cdar.RSM.encode() + b'"/>')
    True
    >>> is_cdar(b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"/>'), is_cdar(b'<a')
    (False, False)
    """
    try:
        return safexml.peek_root(data) == (cdar.RSM, cdar.ROOT)
    except Rejected:
        return False


def pdf_xml(data: bytes, limits: safexml.XmlLimits | None = None) -> tuple[str, bytes]:
    """(attachment name, XML bytes) of the invoice XML embedded in a PDF.

    The attachments are read with pypdf and every candidate goes through
    `flows.io.safexml` (never through another XML parser). The standard names
    (`EMBEDDED_XML_NAMES`, in that order of preference) are tried first, and
    only they when the PDF has one; other ``*.xml`` attachments only when it
    has none. The first candidate that is well-formed and of a supported
    syntax wins; when none is, the refusal of the first candidate is raised,
    naming the attachment (e.g. RLS-T03 "embedded factur-x.xml: unknown
    encoding ..."); with no XML attachment at all, RLS-T09.
    """
    from pypdf import PdfReader

    limits = limits or safexml.XmlLimits()
    try:
        found = list(PdfReader(io.BytesIO(data)).attachment_list)
    except Exception as e:  # pypdf raises many types on broken PDFs
        raise Rejected(technical.PDF_WITHOUT_XML, f"unreadable PDF ({type(e).__name__}: {e})") from e
    names = [str(a.name or "") for a in found]
    preference = [n.lower() for n in EMBEDDED_XML_NAMES]
    standard = [i for i, n in enumerate(names) if n.lower() in preference]
    if standard:
        order = sorted(standard, key=lambda i: preference.index(names[i].lower()))
    else:
        order = [i for i, n in enumerate(names) if n.lower().endswith(".xml")]
    first: Rejected | None = None
    invoices: list[tuple[str, bytes]] = []
    for i in order:
        name = names[i]
        try:
            try:
                content = found[i].content
            except Exception as e:  # a broken embedded stream
                raise Rejected(technical.PDF_WITHOUT_XML, f"unreadable ({type(e).__name__}: {e})") from e
            safexml.parse(content, limits=limits)  # refuses malformed, DTD, oversized
            xml_syntax(content)  # refuses what is no supported invoice
        except Rejected as r:
            first = first or _in_attachment(r, name)
            continue
        invoices.append((name, content))
    if len(invoices) > 1:  # which one is the invoice? Refuse rather than guess.
        raise Rejected(technical.SEVERAL_INVOICE_XML, ", ".join(n for n, _ in invoices))
    if invoices:
        return invoices[0]
    if first is not None:
        raise first
    raise Rejected(technical.PDF_WITHOUT_XML, f"embedded files: {', '.join(names) or 'none'}")


def _in_attachment(r: Rejected, name: str) -> Rejected:
    """The same refusal (same class and rule), its detail naming the PDF attachment."""
    detail = f"embedded {name}" + (f": {r.detail}" if r.detail else "")
    refusal = type(r)(r.rule, detail, r.location)
    refusal.__cause__ = r
    return refusal


_LEVELS = {
    "MINIMUM": "minimum",
    "BASIC WL": "basicwl",
    "BASICWL": "basicwl",
    "BASIC": "basic",
    "EN 16931": "en16931",
    "EN16931": "en16931",
    "COMFORT": "en16931",
    "EXTENDED": "extended",
}


def declared_profile(pdf: bytes) -> str | None:
    """The Factur-X profile the PDF declares in its XMP metadata (fx:ConformanceLevel), if any.

    Returned as a `facturx` level name (minimum, basicwl, basic, en16931, extended);
    None when the PDF declares none or one Relais does not map (e.g. XRECHNUNG).
    """
    from pypdf import PdfReader

    try:
        metadata = PdfReader(io.BytesIO(pdf)).trailer["/Root"].get("/Metadata")  # type: ignore[attr-defined]
        xmp = metadata.get_object().get_data() if metadata is not None else None
    except Exception:
        return None
    if not xmp:
        return None
    try:
        tree = safexml.parse(xmp)
    except Rejected:
        return None
    values = tree.xpath("//*[local-name()='ConformanceLevel']/text() | //@*[local-name()='ConformanceLevel']")
    return _LEVELS.get(" ".join(str(values[0]).split()).upper()) if values else None


def detect(container: Container, data: bytes, limits: safexml.XmlLimits | None = None) -> Detected:
    """Syntax and invoice XML of one document (XML or PDF)."""
    if container is Container.PDF:
        name, xml = pdf_xml(data, limits)
        syntax = xml_syntax(xml)
        if syntax is Syntax.CII:
            syntax = Syntax.FACTURX
        return Detected(syntax, xml, name, declared_profile(data))
    if container is Container.XML:
        return Detected(xml_syntax(data), data)
    raise Rejected(technical.UNKNOWN_FORMAT)
