"""Bad input: a clear error, the flow recorded, the bytes archived, the return flow naming the problem."""

from __future__ import annotations

import io
import zipfile

import pytest

from flows.domain.model import FlowStatus
from relais import generate as gen
from tests.support.helpers import drop, return_flow, rf_error_codes, run

UBL_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def _blank_pdf() -> bytes:
    from pypdf import PdfWriter

    w = PdfWriter()
    w.add_blank_page(595, 842)
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


XXE = (
    b'<?xml version="1.0"?>\n<!DOCTYPE Invoice [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b'<Invoice xmlns="' + UBL_NS.encode() + b'"><ID>&xxe;</ID></Invoice>'
)
LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10))
    + b']>\n<Invoice xmlns="'
    + UBL_NS.encode()
    + b'"><ID>&lol9;</ID></Invoice>'
)

FLOW_LEVEL = {
    "empty": (b"", "RLS-T01"),
    "not-xml": (b"hello, this is not an invoice\n", "RLS-T02"),
    "truncated": (b'<?xml version="1.0"?>\n<Invoice xmlns="' + UBL_NS.encode() + b'"><cbc:ID', "RLS-T03"),
    "wrong-encoding": (
        b'<?xml version="1.0" encoding="UTF-8-W/O-BOM"?>\n<Invoice xmlns="' + UBL_NS.encode() + b'"/>',
        "RLS-T03",
    ),
    "latin1-declared-utf8": (
        (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Invoice xmlns="' + UBL_NS + '"><ID>Fact\u00e9</ID></Invoice>'
        ).encode("latin-1"),
        "RLS-T03",
    ),
    "xxe": (XXE, "RLS-T04"),
    "billion-laughs": (LAUGHS, "RLS-T04"),
    "not-an-invoice-xml": (b"<order><id>1</id></order>", "RLS-T10"),
    "pdf-without-xml": (None, "RLS-T09"),
    "zip-traversal": (None, "RLS-T06"),
    "zip-bomb": (None, "RLS-T07"),
}


def _payload(case: str, data: bytes | None) -> bytes:
    if case == "pdf-without-xml":
        return _blank_pdf()
    if case == "zip-traversal":
        return _zip({"../../evil.xml": b"<a/>"})
    if case == "zip-bomb":
        return _zip({"bomb.xml": b"<a>" + b" " * (60 << 20) + b"</a>"})
    assert data is not None
    return data


@pytest.mark.parametrize("case", sorted(FLOW_LEVEL))
def test_flow_level_refusal(rt, case):
    data, rule = FLOW_LEVEL[case]
    payload = _payload(case, data)
    drop(rt, "op-bad", f"{case}.bin", payload)
    [flow] = run(rt)
    assert flow.status is FlowStatus.IN_REJETE
    assert rt.archive.read(flow.sha256) == payload  # nothing lost
    errors = rt.store.flow_errors(flow.id)
    assert [e.rule for e in errors] == [rule], errors
    assert errors[0].message and len(errors[0].message) > 10
    root = return_flow(rt, flow)
    assert rf_error_codes(root) == [rule]
    assert root.findtext(".//StatutFlux") == "IN_REJETE"
    assert not list(rt.settings.delivery_dir.rglob("*.*"))


def test_xxe_does_not_leak_file_contents(rt):
    drop(rt, "op-bad", "xxe.xml", XXE)
    [flow] = run(rt)
    data = b"".join(p.read_bytes() for p in rt.settings.outbox_dir("op-bad").iterdir())
    assert b"root:" not in data


def test_nested_zip_is_refused_entry_by_entry(rt, directory_file):
    _, recipients = directory_file
    name, good = gen.document("ubl", next(gen.plan(1, 2, recipients, seed=11)))
    inner = _zip({"inner.xml": good})
    drop(rt, "op-a", "nested.zip", _zip({name: good, "inner.zip": inner}))
    [flow] = run(rt)
    assert flow.status is FlowStatus.IN_INTEGRE_PARTIEL
    invoices = {i.entry_name: i for i in rt.store.iter_invoices(flow.id)}
    assert [e.rule for e in invoices["inner.zip"].errors] == ["RLS-T08"]
    assert invoices["inner.zip"].errors[0].location == "inner.zip"
    assert invoices[name].delivered_to
    assert "RLS-T08" in rf_error_codes(return_flow(rt, flow))


def test_unknown_buyer_is_rejected_and_not_delivered(rt, directory_file):
    _, recipients = directory_file
    spec = next(s for s in gen.plan(100, 1, recipients, misrouted_ratio=1.0, seed=3) if s.defect == "unknown-siret")
    name, data = gen.document("cii", spec)
    drop(rt, "op-a", name, data)
    [flow] = run(rt)
    assert flow.status is FlowStatus.IN_REJETE
    [inv] = rt.store.iter_invoices(flow.id)
    assert [e.rule for e in inv.errors] == ["RLS-R03"]
    assert inv.status.value == "04"
    assert "RLS-R03" in rf_error_codes(return_flow(rt, flow))
    assert not list(rt.settings.delivery_dir.rglob("*.xml"))


def test_duplicate_file_is_answered_not_processed(rt, directory_file):
    _, recipients = directory_file
    name, data = gen.document("ubl", next(gen.plan(1, 2, recipients, seed=12)))
    drop(rt, "op-a", name, data)
    [first] = run(rt)
    drop(rt, "op-a", "resent-" + name, data)
    [second] = run(rt)
    assert first.status is FlowStatus.IN_INTEGRE
    assert second.status is FlowStatus.IN_REJETE and second.duplicate_of == first.id
    assert [e.rule for e in rt.store.flow_errors(second.id)] == ["RLS-T11"]
    root = return_flow(rt, second)
    assert root.findtext(".//FluxDoublon") == first.id
    assert len(list(rt.settings.delivery_dir.rglob("*.xml"))) == 1  # delivered once
    # The same bytes from another partner are not a duplicate.
    drop(rt, "op-b", name, data)
    [other] = run(rt)
    assert other.duplicate_of is None
