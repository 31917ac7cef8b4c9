"""The invoice's life after routing: delivery, status changes, history, status return flows."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from click.testing import CliRunner
from lxml import etree

from connectors.partners import Partner
from flows.domain.history import Source
from flows.domain.lifecycle import Actor, IllegalTransition
from flows.domain.lifecycle import InvoiceStatus as I
from flows.domain.model import utcnow
from flows.pipeline import status_changes as statuses
from flows.returns import report as returnflow
from flows.returns import status as statusflow
from relais import generate as gen
from relais.cli import main
from relais.runner import emit_statuses
from tests.support.helpers import drop, run


def _send(rt, recipients, *, n=2, seed=1, start=1, partner="op-a", name="batch.zip", salt=b""):
    """A zip of `n` valid invoices (numbers INV-<start>...) dropped by `partner` and run; its invoices.
    `salt` (an XML comment) changes the bytes but not the invoices: the same numbers, another file."""
    specs = list(gen.plan(n, 2, recipients, seed=seed, start=start))
    docs = [(entry, data + salt) for entry, data in (gen.document("ubl", s) for s in specs)]
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for entry, data in docs:
            z.writestr(entry, data)
    drop(rt, partner, name, buf.getvalue())
    [flow] = run(rt)
    return flow, list(rt.store.iter_invoices(flow.id))


def _status_files(rt, partner="op-a"):
    out = rt.settings.outbox_dir(partner)
    return sorted(out.glob("ST*.xml")) if out.exists() else []


def _entries(path):
    data = path.read_bytes()
    returnflow.validate(data)  # every emitted file validates
    root = etree.fromstring(data)
    return root, [
        (e.findtext("IdFacture"), e.findtext("DonneesStatut/IdStatut"), e.findtext("DonneesStatut/Acteur"))
        for e in root.iter("CPPFactureStatut")
    ]


def test_delivery_makes_invoices_available_and_the_history_says_so(rt, directory_file):
    flow, invoices = _send(rt, directory_file[1])
    assert all(i.status is I.MISE_A_DISPOSITION for i in invoices)
    history = rt.store.invoice_history(invoices[0].id)
    assert [(h.previous, h.status, h.actor, h.source) for h in history] == [
        (None, I.DEPOSEE, Actor.PLATFORM, Source.PLATFORM),
        (I.DEPOSEE, I.MISE_A_DISPOSITION, Actor.PLATFORM, Source.PLATFORM),
    ]


def test_a_status_change_is_checked_appended_and_reported_once(rt, directory_file):
    flow, invoices = _send(rt, directory_file[1])
    inv = invoices[0]
    [first] = _status_files(rt)  # `relais run` reported the deliveries (03) already
    assert [code for _, code, _ in _entries(first)[1]] == ["03", "03"]

    entry = statuses.change(rt.store, inv.id, I.SERVICE_FAIT, actor=Actor.RECIPIENT, source=Source.API)
    assert entry.previous is I.MISE_A_DISPOSITION and entry.status is I.SERVICE_FAIT
    with pytest.raises(IllegalTransition) as refused:  # MISE_EN_PAIEMENT needs MANDATEE ... first
        statuses.change(rt.store, inv.id, I.MISE_EN_PAIEMENT, actor=Actor.RECIPIENT, source=Source.API)
    assert "allowed: 05, 06, 08" in str(refused.value)
    with pytest.raises(statuses.ReasonRequired):
        statuses.change(rt.store, inv.id, I.SUSPENDUE, actor=Actor.RECIPIENT, source=Source.API, reason="  ")
    with pytest.raises(statuses.UnknownInvoice):
        statuses.change(rt.store, "CPP-nope", I.SERVICE_FAIT, actor=Actor.RECIPIENT, source=Source.API)
    with pytest.raises(IllegalTransition):  # the supplier completes, never moves the recipient's processing
        statuses.change(rt.store, inv.id, I.MANDATEE, actor=Actor.SUPPLIER, source=Source.API)
    assert rt.store.invoice_status(inv.id)[0] is I.SERVICE_FAIT  # the refusals changed nothing
    assert len(rt.store.invoice_history(inv.id)) == 3

    assert emit_statuses(rt).status_returns == 1
    second = [p for p in _status_files(rt) if p != first]
    root, entries = _entries(second[0])
    assert entries == [(inv.id, "07", "DESTINATAIRE")]
    assert root.get("Vocabulaire") == "CPP" and root.findtext(".//Parametres/IdFlx").startswith("ST")
    assert root.findtext(".//Recepteur/Id") == "op-a"
    assert emit_statuses(rt).status_returns == 0  # never twice
    assert len(_status_files(rt)) == 2


def test_changes_wait_for_the_interval_then_go_together(rt, directory_file):
    rt.status_returns.interval_seconds = 3600
    flow, invoices = _send(rt, directory_file[1])
    assert _status_files(rt) == [] and rt.status_returns.emit_due().returns == 0  # the deliveries wait
    for inv in invoices:
        statuses.change(rt.store, inv.id, I.SERVICE_FAIT, actor=Actor.RECIPIENT, source=Source.API)
    later = utcnow() + dt.timedelta(hours=2)
    report = rt.status_returns.emit_due(now=later)
    assert (report.returns, report.entries) == (1, 4)  # 2 deliveries + 2 SERVICE_FAIT, one file, in order
    from flows.pipeline import dispatch

    dispatch.dispatch(rt.outbound)  # sends it
    [path] = _status_files(rt)
    assert [code for _, code, _ in _entries(path)[1]] == ["03", "03", "07", "07"]


def test_a_partner_that_is_down_gets_its_status_returns_later_in_order(rt, directory_file, monkeypatch):
    from connectors.folder import channel
    from flows.pipeline import dispatch

    real = channel.FolderSender.send

    def down(self, item, data):
        raise OSError("the partner's share is gone")

    monkeypatch.setattr(channel.FolderSender, "send", down)
    flow, invoices = _send(rt, directory_file[1])  # its integration report and the deliveries' 03 wait
    statuses.change(rt.store, invoices[0].id, I.SERVICE_FAIT, actor=Actor.RECIPIENT, source=Source.API)
    assert emit_statuses(rt).failed_sends >= 1
    assert _status_files(rt) == []
    pending = [o for o in rt.store.pending_outbox() if o.key.startswith("status:")]
    assert len(pending) == 2
    monkeypatch.setattr(channel.FolderSender, "send", real)
    for o in rt.store.pending_outbox():  # their retry time has come
        rt.store.mark_failed(o, "test", dt.timedelta(seconds=-1))
    dispatch.dispatch(rt.outbound)
    files = _status_files(rt)
    assert [[c for _, c, _ in _entries(p)[1]] for p in files] == [["03", "03"], ["07"]]
    dispatch.dispatch(rt.outbound)
    emit_statuses(rt)
    assert len(_status_files(rt)) == 2  # never twice


def test_cdar_vocabulary_is_chosen_per_partner(rt, directory_file):
    """A "cdar" partner gets CDAR messages (tests/flows/pipeline/test_cdar_out.py), never CPPStatut."""
    from flows.returns import cdar as cdarflow
    from validators import cdar as check

    rt.partners = {"op-a": Partner(id="op-a", name="A", status_vocabulary="cdar")}
    flow, invoices = _send(rt, directory_file[1], n=1)
    inv = invoices[0].id
    for status, reason in ((I.SERVICE_FAIT, None), (I.MANDATEE, None), (I.MISE_A_DISPOSITION_COMPTABLE, None)):
        statuses.change(rt.store, inv, status, actor=Actor.RECIPIENT, source=Source.API, reason=reason)
    emit_statuses(rt)
    assert _status_files(rt) == []  # no CPPStatut
    files = sorted(rt.settings.outbox_dir("op-a").glob("CDAR_ST*.xml"))
    codes = []
    for path in files:
        assert check.check(path.read_bytes(), runner=check.saxon()) == []
        root = etree.fromstring(path.read_bytes())
        codes += [
            c.text for c in root.iterfind(".//ram:ReferenceReferencedDocument/ram:ProcessConditionCode", cdarflow.NSMAP)
        ]
    assert codes == ["203", "205", "204"]  # 09 has no CDAR code: not sent


def test_a_recycled_invoice_number_may_be_sent_again(rt, directory_file):
    flow, invoices = _send(rt, directory_file[1], n=1)
    inv = invoices[0]
    statuses.change(rt.store, inv.id, I.A_RECYCLER, actor=Actor.RECIPIENT, source=Source.API)
    again, [resent] = _send(rt, directory_file[1], n=1, name="again.zip", salt=b"<!-- resent -->")
    assert resent.number == inv.number and resent.status is I.MISE_A_DISPOSITION  # no RLS-P01
    # An invoice whose number is still taken is a duplicate, as before.
    third, [dup] = _send(rt, directory_file[1], n=1, name="third.zip", salt=b"<!-- third -->")
    assert dup.status is I.REJETEE and "RLS-P01" in {e.rule for e in dup.errors}


def test_a_suspended_invoice_is_completed_by_a_new_flow_with_its_number(rt, directory_file):
    flow, [inv] = _send(rt, directory_file[1], n=1)
    statuses.change(
        rt.store,
        inv.id,
        I.SUSPENDUE,
        actor=Actor.RECIPIENT,
        source=Source.API,
        reason="bon de commande absent",
        reason_code="ENGAGEMENT",
    )
    completion, [new] = _send(rt, directory_file[1], n=1, name="completion.zip", salt=b"<!-- completed -->")
    assert new.status is I.MISE_A_DISPOSITION  # not a duplicate: it completes the suspended one
    status, _ = rt.store.invoice_status(inv.id)
    assert status is I.COMPLETEE
    [*_, last] = rt.store.invoice_history(inv.id)
    assert (last.actor, last.source) == (Actor.SUPPLIER, Source.PLATFORM) and new.id in (last.reason or "")
    statuses.change(rt.store, inv.id, I.SERVICE_FAIT, actor=Actor.RECIPIENT, source=Source.API)  # goes on


def test_relais_invoices_and_flows_show_the_history(rt, directory_file):
    flow, [inv, _] = _send(rt, directory_file[1])
    statuses.change(
        rt.store,
        inv.id,
        I.SUSPENDUE,
        actor=Actor.RECIPIENT,
        source=Source.API,
        reason="pièce manquante",
        reason_code="PIECE_JOINTE",
    )
    home = ["--home", str(rt.settings.home)]
    out = CliRunner().invoke(main, [*home, "invoices", inv.id])
    assert out.exit_code == 0, out.output
    assert (
        "03 -> 06 SUSPENDUE par recipient (api) [motif PIECE_JOINTE : Pièce justificative absente ou illisible]: pièce manquante"
        in out.output
    )
    data = json.loads(CliRunner().invoke(main, [*home, "invoices", inv.id, "--json"]).output)
    assert [h["code"] for h in data["history"]] == ["01", "03", "06"]
    shown = CliRunner().invoke(main, [*home, "flows", flow.id]).output
    assert "01 -> 03 MISE_A_DISPOSITION par platform" in shown and "SUSPENDUE" in shown
    flow_json = json.loads(CliRunner().invoke(main, [*home, "flows", flow.id, "--json"]).output)
    assert [h["code"] for h in flow_json["invoices"][0]["history"]] == ["01", "03", "06"]
    missing = CliRunner().invoke(main, [*home, "invoices", "CPP-none"])
    assert missing.exit_code == 1 and "aucune facture" in missing.output


def test_relais_run_emits_status_returns(rt, directory_file):
    flow, [inv, _] = _send(rt, directory_file[1])
    statuses.change(rt.store, inv.id, I.SERVICE_FAIT, actor=Actor.RECIPIENT, source=Source.API)
    result = CliRunner().invoke(main, ["--home", str(rt.settings.home), "run", "-q"])
    assert result.exit_code == 0, result.output
    files = _status_files(rt)
    assert [[c for _, c, _ in _entries(p)[1]] for p in files] == [["03", "03"], ["07"]]


def test_the_status_return_flow_writer_refuses_a_change_of_another_partner(rt, directory_file):
    flow, [inv, _] = _send(rt, directory_file[1])
    [entry] = [h for h in rt.store.invoice_history(inv.id) if h.previous is not None]
    other = dataclasses.replace(entry, partner="op-b")
    with pytest.raises(returnflow.ReturnFlowInvalid):
        statusflow.build("ST1", "op-a", [statusflow.Change(other, inv)])


def test_mise_en_paiement_is_not_sent_for_a_structure_that_does_not_report_it(rt, directory_file):
    from flows.directory import importer as directory

    path, recipients = directory_file
    doc = json.loads(path.read_text())
    for structure in doc["structures"]:
        structure["payment_status_not_reported"] = True
    doc["version"] = "test-2"
    path.write_text(json.dumps(doc))
    directory.import_file(rt.store, path)
    flow, [inv, _] = _send(rt, recipients)
    for status in (I.SERVICE_FAIT, I.MANDATEE, I.MISE_A_DISPOSITION_COMPTABLE, I.COMPTABILISEE, I.MISE_EN_PAIEMENT):
        statuses.change(rt.store, inv.id, status, actor=Actor.RECIPIENT, source=Source.API)
    report = emit_statuses(rt)
    assert report.status_returns == 1
    codes = [c for p in _status_files(rt) for _, c, _ in _entries(p)[1]]
    assert codes == ["03", "03", "07", "08", "09", "10"]  # 11 is left out, and counted as reported
    assert rt.store.invoice_status(inv.id)[0] is I.MISE_EN_PAIEMENT  # the status itself is set
    assert emit_statuses(rt).status_returns == 0
