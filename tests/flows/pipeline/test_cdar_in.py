"""CDAR in: a CDAR D22B lifecycle message dropped by a partner platform or a seller is a flow of its own,
validated against the official XSD and BR-FR-CDV schematron (Saxon), and applied to the invoices it names.

The messages are built field by field from the XSD by `tests.support.cdar_messages` (no Relais writer), and
each valid one is checked valid by the official artefacts before it is sent. The flows go through the folder
drop zone and the runner (`relais run`'s one pass), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from click.testing import CliRunner
from lxml import etree

from flows.domain.history import Source
from flows.domain.lifecycle import Actor
from flows.domain.lifecycle import InvoiceStatus as I
from flows.domain.model import FlowCode, FlowStatus
from flows.returns import report as returnflow
from flows.store.cdar import Outcome
from relais import generate as gen
from relais import report
from relais.cli import main
from relais.runner import emit_statuses
from tests.support import cdar_messages as cm
from tests.support.helpers import drop, return_flow, rf_error_codes, run
from validators import cdar as official

PLATFORM = "0042"


@pytest.fixture
def any_rt(store_url, tmp_path, directory_file):
    """A runtime on SQLite and on PostgreSQL, the sample directory imported."""
    from flows.directory import importer as directory
    from relais.compose import Runtime
    from relais.settings import Settings

    url, schema = store_url
    settings = Settings.from_env(tmp_path / "h", stable_seconds=0.0, database_url=url, database_schema=schema)
    rt = Runtime.open(settings)
    directory.import_file(rt.store, directory_file[0])
    try:
        yield rt
    finally:
        rt.close()


def _partner_file(rt, partner_id: str, platform_id: str | None = None) -> None:
    rt.settings.partners_dir.mkdir(parents=True, exist_ok=True)
    text = f'id = "{partner_id}"\nname = "{partner_id}"\n' + (f'platform_id = "{platform_id}"\n' if platform_id else "")
    (rt.settings.partners_dir / f"{partner_id}.toml").write_text(text)
    rt.__dict__.pop("partners", None)  # read again


def _invoices(rt, recipients, n=2):
    """`n` invoices deposited by op-a (the seller's side) and delivered to their buyer (MISE_A_DISPOSITION);
    the buyer's SIRET is a partner platform (the partner its deliveries are addressed to)."""
    _partner_file(rt, "op-a")
    specs = list(gen.plan(n, 2, recipients, seed=3))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for entry, data in (gen.document("ubl", s) for s in specs):
            z.writestr(entry, data)
    drop(rt, "op-a", "lot.zip", buf.getvalue())
    [flow] = run(rt)
    invoices = list(rt.store.iter_invoices(flow.id))
    assert all(i.status is I.MISE_A_DISPOSITION for i in invoices)
    for inv in invoices:
        _partner_file(rt, inv.buyer_siret, PLATFORM)
    return invoices


def _line(inv, status, **kw):
    return cm.Line(inv.number, status, seller_siren=inv.supplier_id[:9], issue_date=inv.issue_date, **kw)


def _send(rt, partner, data, name="cdar.xml", *, valid=True):
    if valid:
        assert official.check(data) == [], "the test's message must be valid CDAR"
    drop(rt, partner, name, data)
    [flow] = run(rt)
    return flow, [(e.rule, e.location) for e in rt.store.flow_errors(flow.id)]


def _status_codes(rt, partner="op-a"):
    out = rt.settings.outbox_dir(partner)
    codes = []
    for path in sorted(out.glob("ST*.xml")) if out.exists() else []:
        data = path.read_bytes()
        returnflow.validate(data)
        codes += [
            (e.findtext("IdFacture"), e.findtext("DonneesStatut/IdStatut"), e.findtext("DonneesStatut/Acteur"))
            for e in etree.fromstring(data).iter("CPPFactureStatut")
        ]
    return codes


def test_a_platforms_message_is_applied_and_the_depositor_hears_it(any_rt, directory_file, capsys):
    rt = any_rt
    inv, _ = _invoices(rt, directory_file[1])
    emit_statuses(rt)
    before = _status_codes(rt)
    data = cm.message([_line(inv, "204"), _line(inv, "207", reason_code="QTE_ERR", reason="3 colis, pas 4")])
    flow, errors = _send(rt, inv.buyer_siret, data)

    assert (flow.status, flow.flow_code, errors) == (FlowStatus.IN_INTEGRE, FlowCode.CDAR, [])
    assert rt.store.get_invoice(inv.id).status is I.EN_LITIGE
    history = rt.store.invoice_history(inv.id)[-2:]
    assert [(h.previous, h.status, h.actor, h.source, h.reason_code, h.reason) for h in history] == [
        (I.MISE_A_DISPOSITION, I.PRISE_EN_CHARGE, Actor.PARTNER_PLATFORM, Source.CDAR, None, None),
        (I.PRISE_EN_CHARGE, I.EN_LITIGE, Actor.PARTNER_PLATFORM, Source.CDAR, "QTE_ERR", "3 colis, pas 4"),
    ]
    [rec] = rt.store.cdar_list(direction="in", flow_id=flow.id)
    rec = rt.store.cdar_get(rec.id)
    assert (rec.issuer, rec.message_id, rec.partner, rec.outcome, rec.sha256) == (
        f"0238:{PLATFORM}",
        "CDV-0001",
        inv.buyer_siret,
        Outcome.APPLIED,
        flow.sha256,
    )
    assert [(ln.invoice_id, ln.status, ln.outcome, ln.history_id) for ln in rec.lines] == [
        (inv.id, "204", "applied", history[0].id),
        (inv.id, "207", "applied", history[1].id),
    ]
    # the integration report goes back to the platform; the depositor hears the changes in its vocabulary
    assert return_flow(rt, flow).findtext(".//CodeFlx") == FlowCode.CDAR.value
    emit_statuses(rt)
    after = _status_codes(rt)[len(before) :]
    assert [(i, code) for i, code, _ in after] == [(inv.id, "61"), (inv.id, "64")]
    # `relais flows` shows the flow's syntax
    report.print_flows([flow])
    assert "IN_DP_CDAR_D22B" in capsys.readouterr().out


def test_each_refused_line_has_its_rule(any_rt, directory_file):
    rt = any_rt
    inv, other = _invoices(rt, directory_file[1])
    data = cm.message(
        [
            _line(inv, "205"),  # applied
            _line(inv, "214", action="NOA"),  # C05: valid CDAR, not applied by Relais
            cm.Line("NO-SUCH-1", "205", seller_siren=inv.supplier_id[:9]),  # C02
            _line(inv, "212", amounts=(("10.00", "20"),)),  # C03: the seller's status, from the buyer's platform
            _line(inv, "204"),  # C04: after 205, not back to 204
        ]
    )
    flow, errors = _send(rt, inv.buyer_siret, data)
    assert flow.status is FlowStatus.IN_INTEGRE_PARTIEL
    assert errors == [
        ("RLS-C05", f"ligne 2, facture {inv.number}"),
        ("RLS-C02", "ligne 3, facture NO-SUCH-1"),
        ("RLS-C03", f"ligne 4, facture {inv.number}"),
        ("RLS-C04", f"ligne 5, facture {inv.number}"),
    ]
    [rec] = rt.store.cdar_list(direction="in", flow_id=flow.id)
    rec = rt.store.cdar_get(rec.id)
    assert [(ln.outcome, ln.rule) for ln in rec.lines] == [
        ("applied", None),
        ("refused", "RLS-C05"),
        ("refused", "RLS-C02"),
        ("refused", "RLS-C03"),
        ("refused", "RLS-C04"),
    ]
    assert rec.lines[3].amounts == [{"type_code": "MEN", "amount": "10.00", "currency": "EUR", "vat_rate": "20"}]
    assert rt.store.get_invoice(inv.id).status is I.APPROUVEE
    messages = [e.message for e in rt.store.flow_errors(flow.id)]
    assert "only the invoice's depositor may send it" in messages[2]
    assert "allowed:" in messages[3]
    codes = rf_error_codes(return_flow(rt, flow))
    assert codes == ["RLS-C05", "RLS-C02", "RLS-C03", "RLS-C04"]

    # another platform (to which the invoice was not issued) may not set its buyer's statuses: C03, none applied
    _partner_file(rt, "pf-b", "0043")
    flow2, errors2 = _send(rt, "pf-b", cm.message([_line(other, "205")], platform="0043", message_id="B-1"))
    assert (flow2.status, errors2) == (FlowStatus.IN_REJETE, [("RLS-C03", f"ligne 1, facture {other.number}")])
    assert rt.store.get_invoice(other.id).status is I.MISE_A_DISPOSITION
    # a message naming another platform than its partner's: C03
    flow3, errors3 = _send(rt, inv.buyer_siret, cm.message([_line(other, "205")], platform="0099", message_id="X"))
    assert [r for r, _ in errors3] == ["RLS-C03"] and flow3.status is FlowStatus.IN_REJETE


def test_the_seller_sends_212_with_its_amounts(any_rt, directory_file):
    rt = any_rt
    inv, _ = _invoices(rt, directory_file[1])
    data = cm.message(
        [_line(inv, "212", amounts=(("100.00", "20"), ("50.00", "5.5")))],
        platform="0077",  # the seller's own platform; op-a is no platform of the reform
        issuer=("SE", inv.supplier_id[:9], "0002"),
        message_id="SE-1",
    )
    flow, errors = _send(rt, "op-a", data)
    assert (flow.status, errors) == (FlowStatus.IN_INTEGRE, [])
    last = rt.store.invoice_history(inv.id)[-1]
    assert (last.status, last.actor, last.source) == (I.ENCAISSEE, Actor.SUPPLIER, Source.CDAR)
    [rec] = rt.store.cdar_list(direction="in", flow_id=flow.id)
    assert rt.store.cdar_get(rec.id).lines[0].amounts == [
        {"type_code": "MEN", "amount": "100.00", "currency": "EUR", "vat_rate": "20"},
        {"type_code": "MEN", "amount": "50.00", "currency": "EUR", "vat_rate": "5.5"},
    ]


def test_a_replay_is_not_applied_again_and_is_answered_as_the_first(any_rt, directory_file):
    rt = any_rt
    inv, _ = _invoices(rt, directory_file[1])
    data = cm.message([_line(inv, "204"), cm.Line("NO-SUCH", "205")], message_id="R-1")
    first, errors = _send(rt, inv.buyer_siret, data)
    assert first.status is FlowStatus.IN_INTEGRE_PARTIEL and errors == [("RLS-C02", "ligne 2, facture NO-SUCH")]
    entries = len(rt.store.invoice_history(inv.id))

    # the same bytes again (not refused as a duplicate file: answered as the first, RLS-C06)
    again, errors_again = _send(rt, inv.buyer_siret, data, name="again.xml")
    assert again.status is FlowStatus.IN_INTEGRE_PARTIEL
    assert [r for r, _ in errors_again] == ["RLS-C06", "RLS-C02"]
    # other bytes, same id and issuer (a 205 this time): nothing applied either
    other = cm.message([_line(inv, "205")], message_id="R-1")
    third, errors_third = _send(rt, inv.buyer_siret, other, name="third.xml")
    assert third.status is FlowStatus.IN_INTEGRE_PARTIEL and errors_third[0][0] == "RLS-C06"
    assert len(rt.store.invoice_history(inv.id)) == entries
    assert rt.store.get_invoice(inv.id).status is I.PRISE_EN_CHARGE
    assert [r.flow_id for r in rt.store.cdar_list(direction="in")] == [first.id]


def test_an_invalid_message_is_refused_with_the_official_findings(any_rt, directory_file):
    rt = any_rt
    inv, _ = _invoices(rt, directory_file[1])
    # the schematron: a 207 needs a reason code (BR-FR-CDV-15)
    no_reason = cm.message([_line(inv, "207")], message_id="S-1")
    findings = official.check(no_reason)
    assert {f.rule for f in findings} == {"BR-FR-CDV-15_MDT-113"}
    flow, errors = _send(rt, inv.buyer_siret, no_reason, valid=False)
    assert flow.status is FlowStatus.IN_REJETE and flow.flow_code is FlowCode.CDAR
    assert [r for r, _ in errors] == ["RLS-C01", "BR-FR-CDV-15_MDT-113"]
    stored = rt.store.flow_errors(flow.id)
    assert stored[1].message == findings[0].message  # verbatim
    # the XSD: an element out of place
    bad = no_reason.replace(b"<ram:Name>Statut de facture</ram:Name>", b"<ram:Oops>x</ram:Oops>")
    flow2, errors2 = _send(rt, inv.buyer_siret, bad, name="bad.xml", valid=False)
    assert flow2.status is FlowStatus.IN_REJETE and [r for r, _ in errors2][:2] == ["RLS-C01", "XSD"]
    assert rt.store.cdar_list(direction="in") == []  # not recorded: the sender may send it again, corrected
    assert rt.store.get_invoice(inv.id).status is I.MISE_A_DISPOSITION
    # corrected, the same id is applied
    fixed = cm.message([_line(inv, "207", reason_code="PU_ERR")], message_id="S-1")
    flow3, errors3 = _send(rt, inv.buyer_siret, fixed, name="fixed.xml")
    assert (flow3.status, errors3) == (FlowStatus.IN_INTEGRE, [])


def test_hostile_cdar_is_refused_like_any_xml(any_rt, directory_file):
    rt = any_rt
    inv, _ = _invoices(rt, directory_file[1])
    valid = cm.message([_line(inv, "205")], message_id="H-1")
    head, rest = valid.split(b"?>", 1) if valid.startswith(b"<?xml") else (b"", valid)
    doctype = b'<!DOCTYPE rsm:CrossDomainAcknowledgementAndResponse [<!ENTITY x "boom">]>'
    flow, errors = _send(rt, inv.buyer_siret, doctype + rest, name="dtd.xml", valid=False)
    assert flow.status is FlowStatus.IN_REJETE and errors[0][0] == "RLS-T04"
    huge = valid.replace(b"<ram:Name>Statut de facture</ram:Name>", b"<ram:Name>" + b"x" * 17_000_000 + b"</ram:Name>")
    flow2, errors2 = _send(rt, inv.buyer_siret, huge, name="huge.xml", valid=False)
    assert flow2.status is FlowStatus.IN_REJETE and errors2[0][0] == "RLS-T05"
    deep = valid.replace(b"<ram:Name>Statut de facture</ram:Name>", b"<a>" * 150 + b"</a>" * 150)
    flow3, errors3 = _send(rt, inv.buyer_siret, deep, name="deep.xml", valid=False)
    assert flow3.status is FlowStatus.IN_REJETE and errors3[0][0] == "RLS-T19"
    assert rt.store.cdar_list(direction="in") == []
    assert rt.store.get_invoice(inv.id).status is I.MISE_A_DISPOSITION


def test_relais_run_takes_a_cdar_file_from_the_drop_zone(rt, directory_file):
    """`relais run` (the CLI, its own partner files and store) over the folder drop zone, end to end."""
    inv, _ = _invoices(rt, directory_file[1])
    emit_statuses(rt)
    before = _status_codes(rt)
    data = cm.message([_line(inv, "205")], message_id="E2E-1")
    assert official.check(data) == []
    drop(rt, inv.buyer_siret, "statut.xml", data)
    home = ["--home", str(rt.settings.home)]
    result = CliRunner().invoke(main, [*home, "run", "-q"])
    assert result.exit_code == 0, result.output
    assert rt.store.get_invoice(inv.id).status is I.APPROUVEE
    assert [(i, code) for i, code, _ in _status_codes(rt)[len(before) :]] == [(inv.id, "62")]
    flows = json.loads(CliRunner().invoke(main, [*home, "flows", "--json"]).output)["flows"]
    assert [(f["flow_code"], f["status"]) for f in flows if f["partner"] == inv.buyer_siret] == [
        ("IN_DP_CDAR_D22B", "IN_INTEGRE")
    ]
