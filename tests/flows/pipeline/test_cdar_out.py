"""CDAR out through the pipeline (docs/reform.md §1), on SQLite and PostgreSQL: a "cdar" partner deposits a
flow (folder drop zone) with a good and a bad invoice and receives, in its out folder, a CDAR message with
200 and 213 that passes the official XSD and BR-FR-CDV schematron run by Saxon; a recipient's status change
then reaches it as a CDAR status return; a message forced invalid is never sent, recorded not_sent, and its
changes wait for a fix."""

from __future__ import annotations

import io
import zipfile

import pytest
from lxml import etree

from connectors.partners import Partner
from flows.domain.history import Source
from flows.domain.lifecycle import Actor
from flows.domain.lifecycle import InvoiceStatus as I
from flows.pipeline import status_changes as statuses
from flows.returns import cdar as writer
from flows.store.cdar import Outcome
from relais import generate as gen
from relais.runner import emit_statuses
from tests.support.helpers import drop, run
from validators import cdar as check

NS = writer.NSMAP


@pytest.fixture
def crt(store_url, tmp_path, directory_file):
    """A runtime on each store, partner op-a speaking CDAR (op-b: a platform of the reform, 0042)."""
    from flows.directory import importer as directory
    from relais.compose import Runtime
    from relais.settings import Settings

    url, schema = store_url
    settings = Settings.from_env(tmp_path / "h", stable_seconds=0.0, database_url=url, database_schema=schema)
    rt = Runtime.open(settings)
    rt.partners = {
        "op-a": Partner(id="op-a", name="A", status_vocabulary="cdar"),
        "op-b": Partner(id="op-b", name="B", status_vocabulary="cdar", platform_id="0042"),
    }
    directory.import_file(rt.store, directory_file[0])
    try:
        yield rt
    finally:
        rt.close()


def _deposit(rt, recipients, partner="op-a"):
    """A zip of two invoices, the second refused by the XSD (the generator's defect), dropped and run."""
    specs = list(gen.plan(2, 2, recipients, 0.5, 0.0, seed=3))
    assert [bool(s.defect) for s in specs] == [False, True]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for spec in specs:
            z.writestr(*gen.document("ubl", spec))
    drop(rt, partner, "lot.zip", buf.getvalue())
    [flow] = run(rt)
    return flow, list(rt.store.iter_invoices(flow.id))


def _cdar_files(rt, partner="op-a"):
    out = rt.settings.outbox_dir(partner)
    return sorted(out.glob("CDAR_*.xml")) if out.exists() else []


def _lines(path):
    """(invoice number, status, reason) of a received file, which passes the XSD and the schematron on Saxon."""
    data = path.read_bytes()
    assert check.check(data, runner=check.saxon()) == []
    root = etree.fromstring(data)
    return root, [
        (
            ref.findtext("ram:IssuerAssignedID", namespaces=NS),
            ref.findtext("ram:ProcessConditionCode", namespaces=NS),
            ref.findtext("ram:SpecifiedDocumentStatus/ram:ReasonCode", namespaces=NS),
        )
        for ref in root.iterfind("rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument", NS)
    ]


def test_a_cdar_partner_gets_cdar_for_its_flow_and_its_status_changes(crt, directory_file):
    flow, invoices = _deposit(crt, directory_file[1])
    good, bad = invoices
    out = crt.settings.outbox_dir("op-a")
    assert not list(out.glob("CR_*.xml"))  # no CPPStatut for a CDAR partner
    report = out / writer.file_name(flow.id)
    root, lines = _lines(report)
    assert lines == [(good.number, "200", None), (bad.number or bad.entry_name, "213", "REJ_UNI")]
    assert root.findtext("rsm:ExchangedDocument/ram:ID", namespaces=NS) == flow.id
    assert root.findtext("rsm:ExchangedDocument/ram:SenderTradeParty/ram:GlobalID", namespaces=NS) == "9998"
    recipient = root.find("rsm:ExchangedDocument/ram:RecipientTradeParty", NS)
    assert recipient.findtext("ram:URIUniversalCommunication/ram:URIID", namespaces=NS) == "op-a"
    [record] = crt.store.cdar_list(flow_id=flow.id)
    assert (record.direction, record.outcome, record.message_id) == ("out", Outcome.QUEUED, flow.id)
    full = crt.store.cdar_get(record.id)
    assert [(x.invoice_id, x.status, x.outcome) for x in full.lines] == [
        (good.id, "200", "written"),
        (bad.id, "213", "written"),
    ]
    assert full.lines[1].rule == "XSD"

    # the delivery's 203 went out as its own return (phase 305); the recipient's approval (205, phase 23) next
    statuses.change(crt.store, good.id, I.SERVICE_FAIT, actor=Actor.RECIPIENT, source=Source.API)
    emit_statuses(crt)
    returns = [p for p in _cdar_files(crt) if p.name.startswith("CDAR_ST")]
    assert [_lines(p)[1] for p in returns] == [[(good.number, "203", None)], [(good.number, "205", None)]]
    second, _ = _lines(returns[1])
    issuer = second.find("rsm:ExchangedDocument/ram:IssuerTradeParty", NS)
    assert issuer.findtext("ram:RoleCode", namespaces=NS) == "BY"  # BR-FR-CDV-CL-03: the buyer issues a 205
    assert issuer.findtext("ram:GlobalID", namespaces=NS) == good.buyer_siret[:9]
    sent = [r for r in crt.store.cdar_list(direction="out") if r.return_id]
    assert sorted((r.message_id, r.outcome) for r in sent) == sorted((p.name[5:-4], Outcome.QUEUED) for p in returns)
    history = {x.history_id for r in sent for x in crt.store.cdar_get(r.id).lines}
    assert history == {h.id for h in crt.store.invoice_history(good.id) if h.previous is not None}
    assert emit_statuses(crt).status_returns == 0  # never twice


def test_a_message_that_fails_its_check_is_never_sent(crt, directory_file, monkeypatch):
    flow, [good, _] = _deposit(crt, directory_file[1])
    emit_statuses(crt)
    before = _cdar_files(crt)
    real = crt.cdar_out.write

    def broken(message, language):  # a reason the status does not allow, past the writer's own guard
        return real(message, language).replace(
            b"<ram:SequenceNumeric>", b"<ram:ReasonCode>FOO</ram:ReasonCode><ram:SequenceNumeric>"
        )

    monkeypatch.setattr(crt.cdar_out, "write", broken)
    statuses.change(crt.store, good.id, I.SERVICE_FAIT, actor=Actor.RECIPIENT, source=Source.API)
    assert emit_statuses(crt).status_returns == 0
    assert _cdar_files(crt) == before  # nothing left
    [failed] = [r for r in crt.store.cdar_list(direction="out") if r.outcome is Outcome.REFUSED_OUT]
    assert "BR-FR-CDV-CL-09_MDT-113" in (failed.detail or "")
    assert "op-a" in crt.store.pending_status_partners()  # the change waits, visible

    monkeypatch.setattr(crt.cdar_out, "write", real)  # the fix
    emit_statuses(crt)
    after = [p for p in _cdar_files(crt) if p not in before]
    assert [_lines(p)[1] for p in after] == [[(good.number, "205", None)]]
    outcomes = sorted((r.message_id.split("~")[0], r.outcome) for r in crt.store.cdar_list(direction="out"))
    assert outcomes.count((failed.message_id, Outcome.QUEUED)) == 1
    assert (failed.message_id, Outcome.REFUSED_OUT) in outcomes  # the failed attempt is kept, renamed
    assert "op-a" not in crt.store.pending_status_partners()


def test_a_platform_partner_is_addressed_by_its_registration_number(crt, directory_file):
    flow, _ = _deposit(crt, directory_file[1], partner="op-b")
    root, lines = _lines(crt.settings.outbox_dir("op-b") / writer.file_name(flow.id))
    recipient = root.find("rsm:ExchangedDocument/ram:RecipientTradeParty", NS)
    assert (recipient.findtext("ram:GlobalID", namespaces=NS), recipient.findtext("ram:RoleCode", namespaces=NS)) == (
        "0042",
        "WK",
    )
    assert recipient.find("ram:GlobalID", NS).get("schemeID") == "0238"


def test_a_flow_outcome_that_fails_its_check_is_never_sent(crt, directory_file, monkeypatch):
    real = crt.cdar_out.write
    monkeypatch.setattr(
        crt.cdar_out, "write", lambda message, language: real(message, language).replace(b"REGULATED", b"NOPE")
    )
    flow, _ = _deposit(crt, directory_file[1])
    assert flow.status.is_final  # closed, with nothing queued to the partner
    out = crt.settings.outbox_dir("op-a")
    assert not (out.exists() and list(out.glob("CDAR_F*.xml")) + list(out.glob("CR_*.xml")))
    [record] = crt.store.cdar_list(flow_id=flow.id)
    assert record.outcome is Outcome.REFUSED_OUT and "BR-FR-CDV-CL-01_MDT-2" in (record.detail or "")
    assert crt.store.cdar_counts() == {"not_sent": 2}  # the delivery's 203 (status return) failed as well
    assert "op-a" in crt.store.pending_status_partners()
