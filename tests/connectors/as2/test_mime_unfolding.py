"""MIME header unfolding in the AS2 MIME reader (connectors/as2/mime.py), as properties (hypothesis).

RFC 5322 §2.2.3: a header field may be folded by inserting a CRLF before any WSP (space or tab), and
"unfolding is accomplished by simply removing any CRLF that is immediately followed by WSP". So a
header block folded anywhere it may be reads as the same headers as the block unfolded: the same names
and values (values stripped of the white space around them, `mime.parse`'s documented form), whatever
the line ends (CRLF, or the bare LF `mime` accepts too), and the bytes are kept as received.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from connectors.as2 import mime
from tests.support.fuzzing import bounded

NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!#$%&'*^`|~"
NAMES = st.text(NAME_CHARS, min_size=1, max_size=20).filter(lambda n: n[0].isalnum())
# A field body: visible characters (any script, ':' and ';' included), spaces and tabs; no CR, no LF.
VALUES = st.text(
    st.one_of(
        st.sampled_from(" \t"),
        st.characters(min_codepoint=0x21, max_codepoint=0x7E),
        st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp", "Zs")),
    ),
    max_size=60,
)
HEADERS = st.lists(st.tuples(NAMES, VALUES), min_size=1, max_size=6)


@st.composite
def folded(draw: st.DrawFn, name: str, value: str, eol: bytes) -> bytes:
    """``name: value`` with a line break inserted before some of the value's WSP (never making a line of
    WSP only, RFC 5322 §3.2.2), then the line end."""
    line = f"{name}: {value}".encode()
    out = bytearray()
    start = 0
    for i in range(len(name) + 1, len(line)):  # WSP of the field body, the one after the colon included
        if line[i : i + 1] in (b" ", b"\t") and draw(st.booleans()):
            piece, rest = line[start:i], line[i:]
            if piece.strip(b" \t") and rest.strip(b" \t"):
                out += piece + eol
                start = i
    return bytes(out + line[start:] + eol)


def _read(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(n, v.strip(" \t")) for n, v in headers]


@given(headers=HEADERS, data=st.data(), eol=st.sampled_from([b"\r\n", b"\n"]), body=st.binary(max_size=40))
@bounded(150)
@example(headers=[("Subject", "a  b")], data=None, eol=b"\r\n", body=b"")  # two spaces, folded between them
@example(headers=[("X-A", "a\tb")], data=None, eol=b"\r\n", body=b"")  # folded before a tab
@example(headers=[("X-A", "é  é\xff")], data=None, eol=b"\n", body=b"x")
def test_folded_headers_read_as_unfolded(headers, data, eol: bytes, body: bytes) -> None:
    unfolded = b"".join(f"{n}: {v}".encode() + eol for n, v in headers) + eol + body
    if data is None:  # the explicit examples: fold before every WSP that may be folded
        lines = []
        for n, v in headers:
            line = f"{n}: {v}".encode()
            cut = [i for i in range(len(n) + 2, len(line)) if line[i : i + 1] in b" \t" and line[:i].strip()]
            parts = [line[a:b] for a, b in zip([0, *cut], [*cut, len(line)], strict=True)]
            lines.append(eol.join(parts) + eol)
        raw = b"".join(lines) + eol + body
    else:
        raw = b"".join(data.draw(folded(n, v, eol)) for n, v in headers) + eol + body
    one, other = mime.parse(unfolded), mime.parse(raw)
    assert other.headers == one.headers == _read(headers)
    assert other.raw == raw and other.body == body  # nothing rewritten
    assert other.header_bytes == raw[: len(raw) - len(body)]


@given(headers=HEADERS, body=st.binary(max_size=40))
@bounded(100)
def test_made_entities_read_back(headers, body: bytes) -> None:
    """`mime.make` (one line per header) and `mime.parse` agree: the headers come back, stripped."""
    raw = mime.make("application/edi-x12", body, headers)
    entity = mime.parse(raw)
    assert entity.headers == [("Content-Type", "application/edi-x12"), *_read(headers)]
    assert entity.body == body and entity.content_type == "application/edi-x12"


@given(value=VALUES, eol=st.sampled_from([b"\r\n", b"\n"]), data=st.data())
@bounded(80)
def test_folded_content_type_parameters_are_unchanged(value: str, eol: bytes, data) -> None:
    """Content-Type parameters (the boundary of a multipart) survive folding."""
    boundary = "b" + "".join(c for c in value if c.isalnum())[:30]
    header = f'multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="{boundary}"'
    raw = data.draw(folded("Content-Type", header, eol)) + eol
    entity = mime.parse(raw)
    assert entity.content_type == "multipart/signed"
    assert entity.params == {"protocol": "application/pkcs7-signature", "micalg": "sha-256", "boundary": boundary}
