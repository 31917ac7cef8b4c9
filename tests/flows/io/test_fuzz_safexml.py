"""Fuzz `flows.io.safexml` (the one XML parser of received bytes) with hypothesis.

For any bytes, random or a mutation of a valid UBL or CII invoice (or of hostile seeds: a DOCTYPE, deep
nesting, UTF-16), `parse` returns a tree or refuses with `Rejected` (`UnsafeInput` is one), and
`peek_root` returns (namespace, name) or refuses the same way: never another exception, within the
per-input deadline (tests/support/fuzzing.py); Python's peak memory stays a small multiple of the
input on the largest inputs.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from flows.domain.errors import Rejected
from flows.io import safexml
from relais import generate as gen
from tests.support.fuzzing import fuzzed, hostile_bytes, mutations, no_hang, peak_memory

RECIPIENTS = gen.sample_directory()
UBL = gen.invoice_xml("ubl", next(gen.plan(1, 1, RECIPIENTS, seed=1)))
CII = gen.invoice_xml("cii", next(gen.plan(1, 1, RECIPIENTS, seed=2)))
SEEDS = (
    UBL,
    CII,
    b'<?xml version="1.0" encoding="UTF-16"?>'.decode().encode("utf-16") + "<a>é</a>".encode("utf-16-le"),
    b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>',
    b"<a xmlns='urn:x'>" * 60 + b"</a>" * 60,
    b'<?xml version="1.0" encoding="ISO-8859-1"?><a b="\xe9">&#xe9;<![CDATA[x]]><!--c--><?pi x?></a>',
)
XML_BITS = st.lists(
    st.sampled_from([b"<", b">", b"</", b"/>", b"<?xml ", b"?>", b"<!--", b"-->", b"<![CDATA[", b"]]>", b"&", b";"])
    | st.sampled_from([b"<!DOCTYPE", b"<!ENTITY", b"encoding='", b"utf-16", b"xmlns:a='urn:a'", b"a:", b"\xef\xbb\xbf"])
    | st.binary(max_size=8),
    max_size=40,
).map(b"".join)


def _parse(data: bytes) -> None:
    with no_hang():
        try:
            tree = safexml.parse(data)
        except Rejected:
            pass
        else:
            assert tree.getroot() is not None
        try:
            namespace, name = safexml.peek_root(data)
        except Rejected:
            pass
        else:
            assert isinstance(name, str) and (namespace is None or isinstance(namespace, str))


@given(data=hostile_bytes(*SEEDS) | XML_BITS | st.sampled_from(SEEDS).flatmap(lambda s: mutations(s, 2)))
@fuzzed(300)
@example(data=b"")
@example(data=b"\xff\xfe")
@example(data=b"\x00\x00\x00<")
@example(data=b'<?xml version="1.0" encoding="rot13"?><a/>')
@example(data=b'<?xml\tencoding="\x00"')  # found: a NUL in the encoding name raised ValueError (fixed)
def test_any_bytes_parse_or_are_refused(data: bytes) -> None:
    _parse(data)


def test_the_largest_inputs_stay_in_bounds() -> None:
    """Megabytes of an invoice's bytes (a 3 MB comment, shuffled, repeated, random): Python's peak does
    not grow with the input (the bytes are never copied nor decoded whole)."""
    import random

    rng = random.Random(21)
    big_text = UBL.replace(b"</Invoice>", b"<!--" + b"x" * 3_000_000 + b"--></Invoice>")
    shuffled = bytearray(UBL * 300)
    rng.shuffle(shuffled)
    inputs = [big_text, bytes(shuffled), UBL[:-20] * 300, rng.randbytes(2_000_000)]
    for data in inputs:
        with no_hang():
            peak = peak_memory(lambda d=data: safexml.parse(d))
        assert peak < 2_000_000, (len(data), peak)  # measured: 10 to 20 kB; libxml2's own memory is not Python's
