"""The one hardened XML parser of Relais: every received byte of XML goes through here.

Invoices never need a DTD, so any DOCTYPE is refused outright (RLS-T04), before
parsing (a scan of the prolog, decoded per the BOM or declared encoding) and
again after it (docinfo). The parser itself never resolves entities, never
loads a DTD and never touches the network or the file system, so even a
DOCTYPE that slipped past the scan could not do harm.

    >>> tree = parse(b'<Invoice xmlns="urn:x"><ID>1</ID></Invoice>')
    >>> tree.getroot().findtext("{urn:x}ID")
    '1'
    >>> peek_root(b'<?xml version="1.0"?><a:Invoice xmlns:a="urn:x">...')
    ('urn:x', 'Invoice')
    >>> parse(b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>')  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    flows.errors.UnsafeInput: RLS-T04: ...: the document has a DOCTYPE declaration

Parser objects are created per call: building one costs under a microsecond,
against hundreds for a typical invoice, and a fresh parser is safe across
threads and forks without any `threading.local` bookkeeping.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Any

from lxml import etree

from flows import technical
from flows.errors import Rejected, UnsafeInput

__all__ = ["XmlLimits", "make_parser", "parse", "peek_root"]

_HARDENED: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    # Lifts libxml2's 10 MB text-node cap (a base64 attachment under the platform's 10 MB limit
    # is up to 13.3 MB) and sets nesting to 2048 levels; the document itself stays under
    # XmlLimits.max_bytes, and entities cannot amplify anything since DTDs are refused.
    "huge_tree": True,
    "remove_comments": False,
}

# Byte order marks, longest first (the UTF-32-LE BOM starts with the UTF-16-LE one).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# BOM-less signatures of '<' or '<?' in multi-byte encodings (XML 1.0, appendix F).
_SIGNATURES = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
)
_DECLARED_ENCODING = re.compile(r"""<\?xml\s[^>]*?\bencoding\s*=\s*(["'])(.*?)\1""", re.S)
# Whitespace, processing instructions (the XML declaration among them) and comments.
_PROLOG_MISC = re.compile(r"(?:\s+|<\?.*?\?>|<!--.*?-->)*", re.S)
_POSITION_SUFFIX = re.compile(r",? line \d+, column \d+\s*$")
_RESOURCE_LIMIT = ("Resource limit exceeded", "Excessive depth", "XML_PARSE_HUGE")
# Names the XML spec suggests that Python's codecs do not know.
_XML_ENCODING_NAMES = {
    "iso-10646-ucs-2": "utf-16",
    "ucs-2": "utf-16",
    "iso-10646-ucs-4": "utf-32",
    "ucs-4": "utf-32",
}
_ASCII_SUPERSETS = ("utf-8", "ascii", "iso8859-", "latin-1", "cp125")
_FIRST_WINDOW = 4096
_PEEK_FIRST_CHUNK = 512
_PEEK_MAX_CHUNK = 64 * 1024


@dataclass(frozen=True)
class XmlLimits:
    """Limits applied to one XML document (libxml2's own limits apply as well:
    text nodes up to 10,000,000 characters, nesting up to 256 levels)."""

    max_bytes: int = 200 * 1024 * 1024


def make_parser(**extra: Any) -> etree.XMLParser:
    """A new parser with the hardened settings; `extra` adds options but cannot weaken them.

    >>> make_parser(remove_blank_text=True).resolvers is not None
    True
    >>> make_parser(resolve_entities=True)
    Traceback (most recent call last):
    ...
    ValueError: make_parser() cannot override the hardened option resolve_entities
    """
    for key, value in extra.items():
        if key in _HARDENED and value != _HARDENED[key]:
            raise ValueError(f"make_parser() cannot override the hardened option {key}")
    return etree.XMLParser(**{**_HARDENED, **extra})


def parse(data: bytes, *, limits: XmlLimits = XmlLimits()) -> etree._ElementTree:
    """Parse one XML document from bytes, refusing anything unsafe.

    Raises `Rejected` (RLS-T01 empty, RLS-T03 not well-formed, with libxml2's
    message and position) or `UnsafeInput` (RLS-T04 any DOCTYPE, RLS-T05 over
    `limits.max_bytes` or over libxml2's depth/text-node limits).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"parse() takes bytes, not {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise Rejected(technical.EMPTY_FILE)
    if len(data) > limits.max_bytes:
        raise UnsafeInput(
            technical.TOO_LARGE,
            f"{len(data)} bytes, over the limit of {limits.max_bytes} bytes for an XML document",
        )
    _check_prolog(data)
    try:
        root = etree.fromstring(data, make_parser())
    except etree.XMLSyntaxError as exc:
        if _out_of_memory(exc.error_log):  # a resource failure is an incident, never a verdict
            raise MemoryError("libxml2 ran out of memory while parsing") from None
        raise _syntax_error(exc) from None
    except (LookupError, ValueError, UnicodeError) as exc:  # encoding trouble inside lxml
        raise Rejected(technical.NOT_WELL_FORMED, str(exc), "line 1, column 1") from None
    tree = root.getroottree()
    _check_docinfo(tree)
    return tree


def peek_root(data: bytes) -> tuple[str | None, str]:
    """(namespace URI, local name) of the root element, reading only the start of `data`.

    Same hardening and refusals as `parse()` for what comes before the root
    element; what follows it is not read, so need not be well-formed.

    >>> ubl = b"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
    >>> peek_root(b'\\xef\\xbb\\xbf<Invoice xmlns="' + ubl + b'"><ID>...')
    ('urn:oasis:names:specification:ubl:schema:xsd:Invoice-2', 'Invoice')
    >>> peek_root(b"<CrossIndustryInvoice/>")
    (None, 'CrossIndustryInvoice')
    """
    data = bytes(data)
    if not data:
        raise Rejected(technical.EMPTY_FILE)
    _check_prolog(data)
    parser = etree.XMLPullParser(events=("start",), **_HARDENED)
    try:
        start, chunk = 0, _PEEK_FIRST_CHUNK
        while start < len(data):
            # Small chunks first: libxml2 reports the root as soon as its start tag is
            # complete, and a large first chunk would make it parse (and report) far more.
            parser.feed(data[start : start + chunk])
            for _event, element in parser.read_events():
                _check_docinfo(element.getroottree())
                qname = etree.QName(element)
                return qname.namespace, qname.localname
            start, chunk = start + chunk, min(chunk * 2, _PEEK_MAX_CHUNK)
        parser.close()  # no root element: raises with libxml2's message
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(exc) from None
    except (LookupError, ValueError, UnicodeError) as exc:
        raise Rejected(technical.NOT_WELL_FORMED, str(exc), "line 1, column 1") from None
    raise Rejected(technical.NOT_WELL_FORMED, "no root element", "line 1, column 1")


def _out_of_memory(log: etree._ListErrorLog) -> bool:
    return any(e.type == etree.ErrorTypes.ERR_NO_MEMORY for e in log)


def _syntax_error(exc: etree.XMLSyntaxError) -> Rejected:
    """The refusal for a libxml2 error: its message, without lxml's position suffix."""
    message = _POSITION_SUFFIX.sub("", exc.msg or str(exc)).strip() or "malformed XML"
    line, column = exc.position if exc.position else (1, 1)
    location = f"line {line}, column {column}"
    if "amplification" in message:  # entity expansion: only a DTD can declare entities
        return UnsafeInput(technical.FORBIDDEN_DTD, message, location)
    if any(marker in message for marker in _RESOURCE_LIMIT):
        return UnsafeInput(technical.TOO_LARGE, message, location)
    return Rejected(technical.NOT_WELL_FORMED, message, location)


def _check_docinfo(tree: etree._ElementTree) -> None:
    info = tree.docinfo
    if info.internalDTD is not None or info.externalDTD is not None or info.doctype:
        raise UnsafeInput(technical.FORBIDDEN_DTD, "the document has a DOCTYPE declaration")


def _check_prolog(data: bytes) -> None:
    """Refuse a DOCTYPE, an unknown encoding or one the bytes contradict, before parsing.

    The prolog (what precedes the first element) is decoded per the BOM or the
    BOM-less UTF-16/32 signature; otherwise both as Latin-1 (any ASCII-compatible
    encoding) and as the declared encoding (for UTF-7 and the like).

    >>> _check_prolog(b'<?xml version="1.0" encoding="UTF-8-W/O-BOM"?><a/>')  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    flows.errors.Rejected: RLS-T03: ...: unknown encoding 'UTF-8-W/O-BOM' in the XML declaration
    """
    codec, skip = _detect_encoding(data)
    head = data[skip : skip + 1024].decode(codec or "latin-1", errors="replace")
    declared = _DECLARED_ENCODING.match(head)
    name = declared.group(2) if declared else None
    if name is not None:
        try:
            seen = b"<?xml".decode(_XML_ENCODING_NAMES.get(name.lower(), name), errors="replace")
        except (LookupError, TypeError):  # unknown, or not a text encoding (rot13, base64...)
            raise Rejected(
                technical.NOT_WELL_FORMED,
                f"unknown encoding {name!r} in the XML declaration",
                "line 1, column 1",
            ) from None
        if codec is None and seen != "<?xml":
            raise Rejected(
                technical.NOT_WELL_FORMED,
                f"the XML declaration says encoding {name!r}, but the bytes are not in that encoding",
                "line 1, column 1",
            )
    _scan_prolog(data, skip, codec or "latin-1")
    if codec is None and name is not None:
        python_name = codecs.lookup(_XML_ENCODING_NAMES.get(name.lower(), name)).name
        if not python_name.startswith(_ASCII_SUPERSETS):
            _scan_prolog(data, 0, python_name)  # UTF-7 and the like spell '<' otherwise


def _detect_encoding(data: bytes) -> tuple[str | None, int]:
    """(codec, BOM length) from the BOM or the BOM-less UTF-16/32 signature; None: 8-bit."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return codec, len(bom)
    for signature, codec in _SIGNATURES:
        if data.startswith(signature):
            return codec, 0
    return None, 0


def _scan_prolog(data: bytes, start: int, codec: str) -> None:
    window = _FIRST_WINDOW
    while True:
        text = data[start : start + window].decode(codec, errors="replace")
        end = _PROLOG_MISC.match(text).end()  # type: ignore[union-attr]
        rest = text[end:]
        if rest[:9].upper() == "<!DOCTYPE":
            line = text.count("\n", 0, end) + 1
            column = end - text.rfind("\n", 0, end)
            raise UnsafeInput(
                technical.FORBIDDEN_DTD,
                "the document has a DOCTYPE declaration",
                f"line {line}, column {column}",
            )
        unfinished = len(rest) < 9 or rest.startswith(("<?", "<!--"))
        if not unfinished or start + window >= len(data):
            return
        window *= 8
