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
    flows.domain.errors.UnsafeInput: RLS-T04: ...: the document has a DOCTYPE declaration

Structural limits (`XmlLimits`, RLS-T19) are those of the XML parser Saxon uses
for the business rules (the JDK's JAXP limits, measured with saxonche 12:
element depth 100, 200 attributes per element namespace declarations included,
names, prefixes, processing-instruction targets and namespace URIs of 1,000
characters). A document over them is refused here, as the sender's fault,
instead of failing inside Saxon (an incident). Text nodes, attribute values,
comments and CDATA sections are bounded by `XmlLimits.max_text_bytes` (RLS-T05)
without ever being held whole: documents are parsed with libxml2's default
limits first (10,000,000 bytes per text node), and only one that exceeds them
is streamed (its text counted, nothing kept) before being parsed again without
them.

    >>> parse(b"<a>" * 101 + b"</a>" * 101)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    flows.domain.errors.UnsafeInput: RLS-T19: ...: element depth over 100 (<a>), line 1

Parser objects are created per call: building one costs under a microsecond,
against hundreds for a typical invoice, and a fresh parser is safe across
threads and forks without any `threading.local` bookkeeping.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Any, NoReturn

from lxml import etree

from flows.domain import technical
from flows.domain.errors import Rejected, UnsafeInput

__all__ = ["XmlLimits", "make_parser", "parse", "peek_root"]

_HARDENED: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    # libxml2's default limits (10,000,000 bytes per text node, 256 levels): lifted only for a
    # document whose text was first counted against XmlLimits.max_text_bytes (`_parse_huge`).
    "huge_tree": False,
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
    """Limits applied to one XML document.

    `max_text_bytes` bounds one text node, attribute value, comment, CDATA section or
    processing instruction (in UTF-8 bytes, RLS-T05): a base64 attachment under the
    platform's 10 MB limit is up to 13.7 MB with line breaks. The structural limits
    (RLS-T19) must stay at or below those of Saxon's parser (the module doc): depth in
    elements (the root is 1), attributes of one element with its namespace declarations,
    and the length (UTF-16 code units, as Java counts) of a prefix, a local name, a
    processing-instruction target or a namespace URI.
    """

    max_bytes: int = 200 * 1024 * 1024
    max_text_bytes: int = 16 * 1024 * 1024
    max_depth: int = 100
    max_attributes: int = 200
    max_name_length: int = 1000


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
    `limits.max_bytes` or a text over `limits.max_text_bytes`, RLS-T19 over the
    structural limits, naming the limit and where).
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
        try:
            root = etree.fromstring(data, make_parser())
        except etree.XMLSyntaxError as exc:
            if not _over_default_limits(exc):
                raise
            root = _parse_huge(data, limits)  # over libxml2's default limits: counted first
    except etree.XMLSyntaxError as exc:
        if _out_of_memory(exc.error_log):  # a resource failure is an incident, never a verdict
            raise MemoryError("libxml2 ran out of memory while parsing") from None
        raise _syntax_error(exc) from None
    except (LookupError, ValueError, UnicodeError) as exc:  # encoding trouble inside lxml
        raise Rejected(technical.NOT_WELL_FORMED, str(exc), "line 1, column 1") from None
    tree = root.getroottree()
    _check_docinfo(tree)
    _check_structure(root, limits)
    return tree


def _over_default_limits(exc: etree.XMLSyntaxError) -> bool:
    """Whether libxml2 stopped at one of its default limits (not at a syntax error)."""
    types = etree.ErrorTypes
    if exc.code in (types.ERR_RESOURCE_LIMIT, types.ERR_NAME_TOO_LONG):
        return True
    too_big = exc.code in (types.ERR_COMMENT_NOT_FINISHED, types.ERR_CDATA_NOT_FINISHED)
    return too_big and "too big" in (exc.msg or "")


def _parse_huge(data: bytes, limits: XmlLimits) -> etree._Element:
    """Parse a document over libxml2's default limits, once a streaming pass has found it within ours.

    The first pass hands every text to `_Counter` in pieces (a parser target builds no
    tree), so a 200 MB text node costs no more memory than a small one.
    """
    _check_spans(data, limits)
    counter = _Counter(limits)
    etree.fromstring(data, etree.XMLParser(target=counter, **{**_HARDENED, "huge_tree": True}))
    return etree.fromstring(data, etree.XMLParser(**{**_HARDENED, "huge_tree": True}))


def _check_spans(data: bytes, limits: XmlLimits) -> None:
    """Refuse, from the bytes alone, a run without '<' far over `max_text_bytes` (a text or
    attribute value that large), before libxml2 buffers any of it (ASCII-compatible input)."""
    codec, _skip = _detect_encoding(data)
    if codec not in (None, "utf-8"):
        return  # UTF-16/32: the streaming pass counts them
    span = 2 * limits.max_text_bytes + 4096  # over any text or attribute within the limit, tag included
    step = span // 2
    for start in range(0, max(len(data) - step + 1, 0), step):
        if data.find(b"<", start, start + step) == -1:
            begin = data.rfind(b"<", 0, start) + 1
            end = data.find(b"<", start + step)
            end = len(data) if end == -1 else end
            if end - begin > span:
                line = data.count(b"\n", 0, begin) + 1
                raise UnsafeInput(
                    technical.TOO_LARGE,
                    f"{end - begin} bytes of text without markup, over the limit of"
                    f" {limits.max_text_bytes} bytes for one text or attribute value",
                    f"line {line}",
                )


class _Counter:
    """A parser target that checks sizes and structure while keeping nothing (`_parse_huge`)."""

    def __init__(self, limits: XmlLimits) -> None:
        self.limits = limits
        self.depth = 0
        self.text = 0  # UTF-8 bytes of the current run of text

    def _too_large(self, what: str, size: int) -> NoReturn:
        raise UnsafeInput(
            technical.TOO_LARGE,
            f"{what} of over {self.limits.max_text_bytes} bytes (at least {size}),"
            f" over the limit of {self.limits.max_text_bytes} bytes",
            f"in the element at depth {self.depth}",
        )

    def start(self, tag: str, attrib: dict[str, str], nsmap: dict[str | None, str] | None = None) -> None:
        self.depth += 1
        self.text = 0
        if self.depth > self.limits.max_depth:
            raise UnsafeInput(
                technical.XML_LIMITS,
                f"element depth over {self.limits.max_depth} (<{_local(tag)}>)",
                f"at depth {self.depth}",
            )
        for name, value in attrib.items():
            if len(value) > self.limits.max_text_bytes // 3 and len(value.encode()) > self.limits.max_text_bytes:
                self._too_large(f"the attribute {_local(name)!r}", len(value.encode()))

    def end(self, tag: str) -> None:
        self.depth -= 1
        self.text = 0

    def data(self, text: str) -> None:
        self.text += len(text) if text.isascii() else len(text.encode())
        if self.text > self.limits.max_text_bytes:
            self._too_large("a text node", self.text)

    def comment(self, text: str) -> None:
        if len(text.encode()) > self.limits.max_text_bytes:
            self._too_large("a comment", len(text.encode()))

    def pi(self, target: str, data: str | None = None) -> None:
        if len((data or "").encode()) > self.limits.max_text_bytes:
            self._too_large(f"the processing instruction {target!r}", len((data or "").encode()))

    def close(self) -> None:
        return None


def _local(name: str) -> str:
    local = name.rpartition("}")[2]
    return local if len(local) <= 40 else local[:40] + "..."


def _units(text: str) -> int:
    """Length in UTF-16 code units, as Java (hence Saxon's parser) counts it."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def _check_structure(root: etree._Element, limits: XmlLimits) -> None:
    """Refuse a tree over the structural limits (RLS-T19), naming the limit and the element.

    One walk of the elements: depth, attributes plus namespace declarations, names and
    namespace URIs (checked exactly only when long enough to matter: a string of n
    characters is at most 2n UTF-16 units).
    """
    depth, declared, near = 0, 0, limits.max_name_length // 2

    def refuse(what: str, el: etree._Element) -> NoReturn:
        where = f"line {el.sourceline}" if el.sourceline else "/"
        raise UnsafeInput(technical.XML_LIMITS, f"{what}, {where}" if el.sourceline else what, where)

    for event, el in etree.iterwalk(root, events=("start", "end", "start-ns")):
        if event == "start":
            depth += 1
            if depth > limits.max_depth:
                refuse(f"element depth over {limits.max_depth} (<{_local(el.tag)}>)", el)
            attrib = el.attrib
            if attrib or declared:
                if len(attrib) + declared > limits.max_attributes:
                    refuse(
                        f"{len(attrib)} attributes and {declared} namespace declarations on <{_local(el.tag)}>,"
                        f" over the limit of {limits.max_attributes} in all",
                        el,
                    )
                declared = 0
                for name in attrib:
                    if len(name) > near:
                        _check_local(name, f"an attribute name of <{_local(el.tag)}>", limits, refuse, el)
            if len(el.tag) > near:
                _check_local(el.tag, "an element name", limits, refuse, el)
        elif event == "end":
            depth -= 1
        else:
            prefix, uri = el  # a (prefix, URI) tuple: declared on the next element
            declared += 1
            for what, text in (("a namespace prefix", prefix), ("a namespace URI", uri)):
                if len(text) > near and _units(text) > limits.max_name_length:
                    refuse(f"{what} of {_units(text)} characters, over the limit of {limits.max_name_length}", root)
    for pi in _processing_instructions(root):
        if len(pi.target) > near and _units(pi.target) > limits.max_name_length:
            refuse(
                f"a processing-instruction target of {_units(pi.target)} characters,"
                f" over the limit of {limits.max_name_length}",
                pi,
            )


def _check_local(name: str, what: str, limits: XmlLimits, refuse: Any, el: etree._Element) -> None:
    """The local part of a ``{URI}local`` name (prefixes and URIs come with their declarations)."""
    local = name.rpartition("}")[2]
    if _units(local) > limits.max_name_length:
        refuse(f"{what} of {_units(local)} characters, over the limit of {limits.max_name_length}", el)


def _processing_instructions(root: etree._Element) -> list[Any]:
    found = list(root.iter(etree.ProcessingInstruction))
    found.extend(s for s in root.itersiblings(preceding=True) if isinstance(s, etree._ProcessingInstruction))
    found.extend(s for s in root.itersiblings() if isinstance(s, etree._ProcessingInstruction))
    return found


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
    flows.domain.errors.Rejected: RLS-T03: ...: unknown encoding 'UTF-8-W/O-BOM' in the XML declaration
    """
    codec, skip = _detect_encoding(data)
    head = data[skip : skip + 1024].decode(codec or "latin-1", errors="replace")
    declared = _DECLARED_ENCODING.match(head)
    name = declared.group(2) if declared else None
    if name is not None:
        try:
            seen = b"<?xml".decode(_XML_ENCODING_NAMES.get(name.lower(), name), errors="replace")
        except (LookupError, TypeError, ValueError):  # unknown, not a text encoding (rot13...), a NUL in the name
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
        if codec is not None and not _same_family(codec, name):
            mark = "byte order mark" if skip else "byte order of the first characters"
            raise Rejected(
                technical.NOT_WELL_FORMED,
                f"the {mark} says {codec.upper().removesuffix('-LE').removesuffix('-BE')},"
                f" but the XML declaration says encoding {name!r}",
                "line 1, column 1",
            )
    _scan_prolog(data, skip, codec or "latin-1")
    if codec is None and name is not None:
        python_name = codecs.lookup(_XML_ENCODING_NAMES.get(name.lower(), name)).name
        if not python_name.startswith(_ASCII_SUPERSETS):
            _scan_prolog(data, 0, python_name)  # UTF-7 and the like spell '<' otherwise


def _same_family(codec: str, declared: str) -> bool:
    """Whether a declared encoding agrees with the one the BOM (or the UTF-16/32 signature) gives.

    >>> _same_family("utf-8", "UTF-8"), _same_family("utf-16-le", "UTF-16"), _same_family("utf-8", "ISO-8859-1")
    (True, True, False)
    """
    python_name = codecs.lookup(_XML_ENCODING_NAMES.get(declared.lower(), declared)).name
    family = codec.rsplit("-", 1)[0] if codec.startswith(("utf-16", "utf-32")) else codec
    return python_name in (family, codec, family + "-sig")


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
