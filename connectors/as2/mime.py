"""MIME on raw bytes: what is signed and hashed is never re-serialised.

AS2 MICs and S/MIME signatures cover a MIME entity's header block and body
*as transmitted*. The `email` package re-folds and re-orders headers when it
writes them back, so this module never writes back what it parsed: `parse`
keeps slices of the original bytes and `split_multipart` returns each body
part byte for byte.

Definitions used throughout:

- ``Entity.header_bytes`` is the header block exactly as received, *including*
  the empty line that ends it (``b"...\\r\\n\\r\\n"``), so that always
  ``entity.raw == entity.header_bytes + entity.body``. An entity without
  headers has ``header_bytes`` equal to its leading empty line, or ``b""``.
- Header lines may end in CRLF or bare LF; ``Name:value`` (no space) and
  folded (continued) header lines are accepted. ``headers`` holds them
  unfolded, names and values stripped, in their original order.
- Multipart bodies follow RFC 2046 §5.1.1: the line break *before* a boundary
  delimiter belongs to the delimiter, not to the preceding part.
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

from connectors.as2.errors import MalformedMessage

__all__ = [
    "Entity",
    "canonical",
    "decoded_body",
    "entity",
    "filename",
    "make",
    "parse",
    "parse_content_type",
    "split_multipart",
]

CRLF = b"\r\n"
# a header field name as MIME and HTTP use them (RFC 7230 token minus '+'), then ':'; stricter than
# RFC 5322 so that EDI content such as "UNB+UNOC:3+..." is not taken for a header
_HEADER_NAME = re.compile(rb"^[A-Za-z0-9][A-Za-z0-9!#$%&'*.^_`|~-]*[ \t]*:")


@dataclass(frozen=True)
class Entity:
    """A MIME entity parsed without altering a byte.

    ``raw == header_bytes + body`` (a property, built on first use).
    ``content_type`` is the lowercased ``type/subtype`` (``text/plain`` when
    there is no Content-Type, RFC 2045 §5.2); ``params`` its parameters with
    lowercased names, values unquoted.
    """

    header_bytes: bytes
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "text/plain"
    params: dict[str, str] = field(default_factory=dict)

    @cached_property
    def raw(self) -> bytes:
        """The whole entity as received: ``header_bytes + body``."""
        return self.header_bytes + self.body

    def header(self, name: str) -> str | None:
        """Value of the first header called `name` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


def _decode_header(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def parse(raw: bytes) -> Entity:
    """Split `raw` into its header block and body, without changing either.

    The header block ends at the first empty line (CRLF CRLF, or bare LF
    line ends). When a line before it is not a header line (or the data does
    not start with one), the data is not a MIME entity: no headers, all body.
    When there is no empty line but every line is a header line, it is all
    headers and the body is empty.
    """
    raw = bytes(raw)
    lines: list[bytes] = []  # header lines with their line ends
    pos = 0
    end_of_headers: int | None = None
    while pos < len(raw):
        nl = raw.find(b"\n", pos)
        line = raw[pos:] if nl < 0 else raw[pos : nl + 1]
        content = line.rstrip(b"\r\n")
        if content == b"":
            if nl < 0:  # a lone trailing "\r": treat as the end of the header block
                end_of_headers = len(raw)
            else:
                end_of_headers = nl + 1
            break
        if content[:1] in (b" ", b"\t"):
            if not lines:  # continuation without a header: not a header block
                return Entity(b"", raw)
        elif not _HEADER_NAME.match(content):
            # not (or no longer) a header block: the data is not a MIME entity, all body
            return Entity(b"", raw)
        lines.append(line)
        if nl < 0:
            pos = len(raw)
            break
        pos = nl + 1
    if end_of_headers is None:
        end_of_headers = len(raw)
    header_bytes, body = raw[:end_of_headers], raw[end_of_headers:]

    fields: list[bytes] = []  # each header field unfolded: RFC 5322 §2.2.3 removes the line break only
    for line in lines:
        content = line.rstrip(b"\r\n")
        if content[:1] in (b" ", b"\t") and fields:
            fields[-1] += content
        else:
            fields.append(content)
    headers: list[tuple[str, str]] = []
    for field_bytes in fields:
        raw_name, _, raw_value = field_bytes.partition(b":")
        headers.append((_decode_header(raw_name.strip()), _decode_header(raw_value.strip())))

    content_type, params = "text/plain", dict[str, str]()
    for name, value in headers:
        if name.lower() == "content-type":
            content_type, params = parse_content_type(value)
            break
    return Entity(header_bytes, body, headers, content_type, params)


def entity(headers: Sequence[tuple[str, str]], body: bytes) -> Entity:
    """An `Entity` for `body` under `headers` (e.g. HTTP headers), without copying `body`."""
    header_bytes = b"".join(f"{k}: {v}".encode("utf-8", "surrogateescape") + CRLF for k, v in headers) + CRLF
    content_type, params = "text/plain", dict[str, str]()
    for name, value in headers:
        if name.lower() == "content-type":
            content_type, params = parse_content_type(value)
            break
    return Entity(header_bytes, body, [(k, v) for k, v in headers], content_type, params)


def _split_params(value: str) -> list[str]:
    """Split on ';' outside double quotes."""
    out: list[str] = []
    buf: list[str] = []
    quoted = escaped = False
    for ch in value:
        if escaped:
            buf.append(ch)
            escaped = False
        elif ch == "\\" and quoted:
            buf.append(ch)
            escaped = True
        elif ch == '"':
            buf.append(ch)
            quoted = not quoted
        elif ch == ";" and not quoted:
            out.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    out.append("".join(buf))
    return out


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """``"Multipart/Signed; Boundary=\\"b\\""`` -> ``("multipart/signed", {"boundary": "b"})``.

    Also parses Content-Disposition (``("attachment", {"filename": ...})``).
    Parameter names are lowercased, values unquoted; RFC 2231 extended values
    (``filename*=utf-8''na%C3%AFve.xml``, continuations ``name*0``...) are
    decoded and stored under the plain name.
    """
    pieces = _split_params(value)
    main = pieces[0].strip().lower()
    params: dict[str, str] = {}
    extended: dict[str, dict[int, tuple[str, bool]]] = {}
    for piece in pieces[1:]:
        name, sep, val = piece.partition("=")
        if not sep:
            continue
        name = name.strip().lower()
        m = re.fullmatch(r"([^*]+)(?:\*(\d+))?(\*)?", name)
        if m and (m.group(2) is not None or m.group(3)):
            extended.setdefault(m.group(1), {})[int(m.group(2) or 0)] = (val.strip(), bool(m.group(3)))
        else:
            params[name] = _unquote(val)
    for name, chunks in extended.items():
        charset = "utf-8"
        text = ""
        for i in sorted(chunks):
            val, encoded = chunks[i]
            if encoded:
                if i == 0 and val.count("'") >= 2:
                    charset, _lang, val = val.split("'", 2)
                try:
                    text += urllib.parse.unquote(val, encoding=charset or "utf-8", errors="replace")
                except LookupError:
                    text += urllib.parse.unquote(val, errors="replace")
            else:
                text += _unquote(val)
        params[name] = text
    return main, params


def split_multipart(entity: Entity) -> list[bytes]:
    """The body parts of a multipart entity, each exactly as between its delimiters.

    A delimiter is ``--boundary`` at the start of the body or right after a
    line break, followed by ``--`` (the close delimiter) or by optional
    spaces/tabs and a line break. The line break before a delimiter (CRLF,
    or a bare LF from LF-only writers such as ``openssl smime``) is not part
    of the preceding body part. The preamble and epilogue are dropped. A
    missing close delimiter is tolerated: the last part then runs to the end
    of the body, minus one trailing line break.
    """
    boundary = entity.params.get("boundary")
    if not boundary:
        raise MalformedMessage(f"{entity.content_type} without a boundary parameter")
    body = entity.body
    delim = b"--" + boundary.encode("latin-1")
    # (start of the line break before the delimiter, end of the delimiter line, is_close)
    marks: list[tuple[int, int, bool]] = []
    pos = 0
    while True:
        i = body.find(delim, pos)
        if i < 0:
            break
        pos = i + len(delim)
        if i > 0 and body[i - 1 : i] != b"\n":
            continue
        after = i + len(delim)
        if body[after : after + 2] == b"--":
            before = i
            if i >= 2 and body[i - 2 : i] == CRLF:
                before = i - 2
            elif i >= 1:
                before = i - 1
            marks.append((before, after + 2, True))
            break
        j = after
        while j < len(body) and body[j : j + 1] in (b" ", b"\t"):
            j += 1
        if body[j : j + 2] == CRLF:
            line_end = j + 2
        elif body[j : j + 1] == b"\n":
            line_end = j + 1
        elif j == len(body):
            line_end = j
        else:
            continue  # "--boundary" followed by more text: not a delimiter
        before = i
        if i >= 2 and body[i - 2 : i] == CRLF:
            before = i - 2
        elif i >= 1:
            before = i - 1
        marks.append((before, line_end, False))
    if not marks or marks[0][2]:
        raise MalformedMessage(f"{entity.content_type}: no body part found for boundary {boundary!r}")
    parts: list[bytes] = []
    for k, (_before, line_end, is_close) in enumerate(marks):
        if is_close:
            break
        if k + 1 < len(marks):
            parts.append(body[line_end : max(line_end, marks[k + 1][0])])
        else:  # no close delimiter
            tail = body[line_end:]
            if tail.endswith(CRLF):
                tail = tail[:-2]
            elif tail.endswith(b"\n"):
                tail = tail[:-1]
            parts.append(tail)
    return parts


def make(content_type: str, body: bytes, headers: Sequence[tuple[str, str]] = ()) -> bytes:
    """A MIME entity: ``Content-Type``, then `headers`, CRLF line ends, an empty line, `body`.

    Header values must be single lines (no CR or LF) and are written as UTF-8;
    use RFC 2231 parameters for non-ASCII file names.
    """
    out = bytearray()
    for name, value in (("Content-Type", content_type), *headers):
        if any(c in name for c in "\r\n:") or "\r" in value or "\n" in value:
            raise ValueError(f"invalid MIME header {name!r}: {value!r}")
        out += f"{name}: {value}".encode() + CRLF
    out += CRLF
    out += body
    return bytes(out)


def canonical(data: bytes) -> bytes:
    """Text canonicalisation (RFC 5751 §3.1.1): every line ends in CRLF (bare LF -> CRLF)."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def decoded_body(entity: Entity) -> bytes:
    """The body with its Content-Transfer-Encoding undone (base64, quoted-printable; others as is)."""
    cte = (entity.header("Content-Transfer-Encoding") or "binary").strip().lower()
    if cte == "base64":
        try:
            return base64.b64decode(re.sub(rb"\s+", b"", entity.body), validate=True)
        except (binascii.Error, ValueError) as e:
            raise MalformedMessage(f"invalid base64 body: {e}") from e
    if cte == "quoted-printable":
        return binascii.a2b_qp(entity.body)
    return entity.body


def filename(entity: Entity) -> str | None:
    """The file name from Content-Disposition (or Content-Type ``name``), untrusted, or None."""
    disposition = entity.header("Content-Disposition")
    if disposition:
        _kind, params = parse_content_type(disposition)
        if params.get("filename"):
            return params["filename"]
    return entity.params.get("name") or None
