"""The attachments an invoice carries, with their names and decoded sizes.

- UBL: every ``cbc:EmbeddedDocumentBinaryObject`` (BT-125, normally under
  ``cac:AdditionalDocumentReference/cac:Attachment``), its ``@filename`` and ``@mimeCode``;
- CII (and the XML of a Factur-X): every ``ram:AttachmentBinaryObject`` (normally under
  ``ram:AdditionalReferencedDocument``), its ``@filename`` and ``@mimeCode``;
- a PDF (Factur-X): its embedded files other than the invoice XML (pypdf).

The size of an XML attachment is the length of its base64 content once
decoded, computed from the text without decoding it. A PDF's embedded file is
decompressed (pypdf, which stops at `pypdf.filters.ZLIB_MAX_OUTPUT_LENGTH`: a
larger file is reported with that size as a lower bound, ``at_least=True``).

>>> from lxml import etree
>>> ubl = etree.fromstring(
...     b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"'
...     b' xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"'
...     b' xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">'
...     b'<cac:AdditionalDocumentReference><cbc:ID>1</cbc:ID></cac:AdditionalDocumentReference>'
...     b'<cac:AdditionalDocumentReference><cbc:ID>2</cbc:ID><cac:Attachment>'
...     b'<cbc:EmbeddedDocumentBinaryObject mimeCode="text/plain" filename="a.txt">aGVs\\nbG8='
...     b'</cbc:EmbeddedDocumentBinaryObject>'
...     b'</cac:Attachment></cac:AdditionalDocumentReference></Invoice>')
>>> (a,) = attachments(Syntax.UBL_INVOICE, ubl)
>>> a.name, a.mime, a.size, a.encoded
('a.txt', 'text/plain', 5, 9)
>>> a.location
'AdditionalDocumentReference[2]/Attachment (a.txt)'
"""

from __future__ import annotations

import dataclasses
import io

from lxml import etree

from flows.domain.model import Syntax

_UBL_OBJECT = "{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}EmbeddedDocumentBinaryObject"
_CII_OBJECT = (
    "{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100}AttachmentBinaryObject"
)
_WHITESPACE = " \t\r\n"
_NAME_IN_LOCATION = 80


@dataclasses.dataclass(frozen=True, slots=True)
class Attachment:
    """One attachment: its file name (None when the document gives none), MIME type,
    decoded size in bytes (None when it cannot be read), where it is, and how many
    characters it occupies in the invoice XML (0 for a PDF's embedded file)."""

    name: str | None
    mime: str | None
    size: int | None
    location: str
    encoded: int = 0
    at_least: bool = False  # `size` is a lower bound: decoding stopped at a safety limit

    @property
    def extension(self) -> str | None:
        """Lower-case extension of the name, None without one.

        >>> Attachment("Devis.PDF", None, 1, "/").extension, Attachment("README", None, 1, "/").extension
        ('pdf', None)
        """
        if not self.name or "." not in self.name:
            return None
        return self.name.rsplit(".", 1)[1].lower() or None


def base64_size(text: str) -> int:
    """Bytes that base64 `text` decodes to, whitespace ignored, without decoding it.

    Each `str.count` is one pass in C over the text: no copy of a large attachment.

    >>> base64_size("aGVsbG8="), base64_size("aGVs\\n bG8="), base64_size("aGVsbG8"), base64_size("")
    (5, 5, 5, 0)
    """
    chars = len(text) - sum(text.count(c) for c in _WHITESPACE)
    padding = 0
    i = len(text) - 1
    while i >= 0 and padding < 2:
        c = text[i]
        if c == "=":
            padding += 1
        elif c not in _WHITESPACE:
            break
        i -= 1
    return max(0, (chars - padding) * 3 // 4)


def attachments(syntax: Syntax, tree: etree._ElementTree | etree._Element) -> list[Attachment]:
    """The attachments embedded in an invoice XML, in document order."""
    root = tree.getroot() if hasattr(tree, "getroot") else tree
    tag = _CII_OBJECT if syntax in (Syntax.CII, Syntax.FACTURX) else _UBL_OBJECT
    found = []
    for obj in root.iter(tag):
        text = (obj.text or "") if len(obj) == 0 else "".join(obj.itertext())
        name = _clean(obj.get("filename"))
        # UBL names the Attachment (the object's parent), CII the object itself.
        where = _path(root, obj.getparent() if tag == _UBL_OBJECT else obj)
        found.append(Attachment(name, _clean(obj.get("mimeCode")), base64_size(text), _located(where, name), len(text)))
    return found


def pdf_attachments(pdf: bytes, xml_name: str | None) -> list[Attachment]:
    """The files embedded in a PDF besides its invoice XML (the first one named `xml_name`).

    A file whose content cannot be read has ``size=None``; a PDF whose file list
    cannot be read gives one such attachment at location ``PDF``.
    """
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError
    from pypdf.filters import ZLIB_MAX_OUTPUT_LENGTH

    found: list[Attachment] = []
    try:
        files = list(PdfReader(io.BytesIO(pdf)).attachment_list)
    except Exception:  # pypdf raises many types on broken PDFs
        return [Attachment(None, None, None, "PDF")]
    skipped = False
    for i, f in enumerate(files, 1):
        name = _clean(str(f.name)) if f.name is not None else None
        if not skipped and xml_name is not None and name == xml_name:
            skipped = True
            continue
        try:
            mime = _clean(str(f.subtype).lstrip("/")) if f.subtype is not None else None
        except Exception:
            mime = None
        size: int | None
        at_least = False
        try:
            size = len(f.content)
        except LimitReachedError:
            size, at_least = ZLIB_MAX_OUTPUT_LENGTH, True
        except Exception:
            size = None
        found.append(Attachment(name, mime, size, _located(f"PDF/EmbeddedFiles[{i}]", name), 0, at_least))
    return found


def total_size(xml_size: int, found: list[Attachment], pdf_size: int | None = None) -> int:
    """Size of an invoice and its attachments, in bytes.

    `found` holds the XML's attachments (`encoded` > 0) and, for a PDF, its embedded
    files. The invoice XML counts without the base64 text of its attachments, and
    each attachment counts decoded. A PDF counts at least its own size (it holds
    the XML and its embedded files, compressed): the result is a lower bound of
    what the recipient receives, never more.

    >>> a = Attachment("a.pdf", None, 750, "/", encoded=1000)
    >>> total_size(1200, [a]), total_size(1200, [a], pdf_size=5000)
    (950, 5000)
    """
    content = xml_size - sum(a.encoded for a in found) + sum(a.size or 0 for a in found)
    return content if pdf_size is None else max(pdf_size, content)


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    return " ".join(value.split()) or None


def _located(where: str, name: str | None) -> str:
    if not name:
        return where
    shown = name if len(name) <= _NAME_IN_LOCATION else name[: _NAME_IN_LOCATION - 1] + "…"
    return f"{where} ({shown})"


def _path(root: etree._Element, element: etree._Element) -> str:
    """Local-name path of `element` below `root`, with [n] where a name repeats.

    Only the element's ancestors and their siblings are looked at.
    """
    steps = []
    node = element
    while node is not None and node is not root:
        parent = node.getparent()
        name = etree.QName(node).localname
        if parent is not None:
            before = sum(1 for _ in node.itersiblings(node.tag, preceding=True))
            if before or next(node.itersiblings(node.tag), None) is not None:
                name = f"{name}[{before + 1}]"
        steps.append(name)
        node = parent
    return "/".join(reversed(steps))
