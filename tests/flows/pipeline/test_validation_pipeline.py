"""Issue 4 end to end: business rules in the pipeline, rule-set versions on flows, fail closed, bad input."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
from lxml import etree

from flows.directory import importer as directory
from flows.domain.model import FlowStatus
from relais import generate as gen
from relais.compose import Runtime
from tests.support.helpers import drop, return_flow, rf_error_codes, run

CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"


def _runtime(settings, directory_file, **overrides) -> Runtime:
    rt = Runtime.open(dataclasses.replace(settings, **overrides))
    directory.import_file(rt.store, directory_file[0])
    return rt


def _ubl(recipients, lines=2, seed=31, mutate=None) -> bytes:
    data = gen.invoice_xml("ubl", next(gen.plan(1, lines, recipients, seed=seed)))
    if mutate is None:
        return data
    root = etree.fromstring(data)
    mutate(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _break_payable(root):
    el = root.find(f".//{{{CBC}}}PayableAmount")
    el.text = f"{float(el.text) + 1:.2f}"


def test_business_rule_rejects_and_versions_are_recorded(rt, directory_file):
    _, recipients = directory_file
    drop(rt, "op-a", "bad-total.xml", _ubl(recipients, mutate=_break_payable))
    [flow] = run(rt)
    assert flow.status is FlowStatus.IN_REJETE
    [inv] = rt.store.iter_invoices(flow.id)
    br = [e for e in inv.errors if e.rule == "BR-CO-16"]
    assert br and br[0].fatal and br[0].location.startswith("/") and "Amount due for payment" in br[0].message
    stored = rt.store.get_flow(flow.id)
    assert stored.rulesets["en16931-ubl"].startswith("1.3.")
    assert "BR-CO-16" in rf_error_codes(return_flow(rt, flow))


def test_warnings_are_reported_and_the_invoice_goes_on(rt, directory_file, corpus):
    # An official example that fires warning-flag rules only (corpus README: 03.07a CII, +2 warnings),
    # re-addressed to a structure of the directory.
    from flows.io.extract import NS

    _, recipients = directory_file
    target = next(
        r for r in recipients if r.active and not (r.service_code_required or r.ej_required or r.ej_or_service)
    )
    root = etree.fromstring((corpus / "xrechnung/business-cases/standard/03.07a-INVOICE_uncefact.xml").read_bytes())
    buyer = root.find(".//ram:BuyerTradeParty", NS)
    org = buyer.find("ram:SpecifiedLegalOrganization", NS)
    if org is None:
        org = etree.SubElement(buyer, f"{{{NS['ram']}}}SpecifiedLegalOrganization")
        buyer.remove(org)
        name = buyer.find("ram:Name", NS)
        name.addnext(org)
    for child in list(org):
        org.remove(child)
    ident = etree.SubElement(org, f"{{{NS['ram']}}}ID", schemeID="0009")
    ident.text = target.siret
    for ref in root.findall(".//ram:ApplicableHeaderTradeAgreement/ram:BuyerReference", NS):
        ref.getparent().remove(ref)  # a Leitweg-ID, not a service code of the French directory
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    home2 = rt.settings.home.parent / "h2"
    rt2 = _runtime(
        rt.settings,
        directory_file,
        home=home2,
        database_url=f"sqlite:///{home2 / 'relais.db'}",
        cii_xsd=corpus / "xsd/cii-d16b/uncoupled/uncefact/data/standard/CrossIndustryInvoice_100pD16B.xsd",
        rules_dir=corpus / "schematron",
    )
    try:
        drop(rt2, "op-a", "xr.xml", data)
        [flow] = run(rt2)
        [inv] = rt2.store.iter_invoices(flow.id)
        warnings = [e for e in inv.errors if not e.fatal]
        assert flow.status is FlowStatus.IN_INTEGRE, inv.errors
        assert {w.rule for w in warnings} >= {"CII-SR-475"}
        root = return_flow(rt2, flow)
        assert "warning" in root.xpath("//LigneErreurDetail/Severite/text()")
    finally:
        rt2.close()


def test_a_stylesheet_that_cannot_load_is_an_incident(settings, directory_file, tmp_path):
    rules = tmp_path / "rules"
    (rules / "ubl").mkdir(parents=True)
    (rules / "ubl" / "EN16931-UBL-validation.xslt").write_text("<xsl:stylesheet this is not XSLT")
    rt = _runtime(settings, directory_file, rules_dir=rules)
    try:
        _, recipients = directory_file
        drop(rt, "op-a", "ok.xml", _ubl(recipients))
        [flow] = run(rt)
        assert flow.status is FlowStatus.IN_INCIDENTE
        assert [e.rule for e in rt.store.flow_errors(flow.id)] == ["RLS-T99"]
        assert list(rt.store.iter_invoices(flow.id)) == []
        assert not rt.settings.outbox_dir("op-a").exists() or not any(rt.settings.outbox_dir("op-a").iterdir())
    finally:
        rt.close()


def test_a_saxon_runtime_error_is_an_incident(settings, directory_file, tmp_path):
    rules = tmp_path / "rules"
    (rules / "ubl").mkdir(parents=True)
    (rules / "ubl" / "EN16931-UBL-validation.xslt").write_text(
        '<xsl:stylesheet version="2.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">'
        "<!--Schematron version 9.9.9-->"
        '<xsl:template match="/"><xsl:sequence select="error((), \'boom\')"/></xsl:template></xsl:stylesheet>'
    )
    rt = _runtime(settings, directory_file, rules_dir=rules)
    try:
        _, recipients = directory_file
        drop(rt, "op-a", "ok.xml", _ubl(recipients))
        [flow] = run(rt)
        assert flow.status is FlowStatus.IN_INCIDENTE
    finally:
        rt.close()


def test_a_flow_over_its_time_budget_is_an_incident(settings, directory_file, tmp_path):
    _, recipients = directory_file
    rt = _runtime(settings, directory_file, workers=1, seconds_per_document=0.001)
    try:
        [path] = gen.write_batch(tmp_path / "g", "ubl", 20, 200, batch="zip", recipients=recipients, seed=9)
        drop(rt, "op-a", path.name, path.read_bytes())
        [flow] = run(rt)
        assert flow.status is FlowStatus.IN_INCIDENTE
        assert "took more than" in rt.store.flow_errors(flow.id)[0].message
    finally:
        rt.close()


def test_br_fr_applies_only_to_partners_that_asked(settings, directory_file):
    _, recipients = directory_file
    rt = _runtime(settings, directory_file, br_fr_partners=frozenset({"op-fr"}))
    try:
        data = _ubl(recipients, seed=40)
        drop(rt, "op-fr", "a.xml", data)
        drop(rt, "op-x", "a.xml", data)
        flows = {f.partner: f for f in run(rt)}
        fr = [e.rule for i in rt.store.iter_invoices(flows["op-fr"].id) for e in i.errors]
        other = [e.rule for i in rt.store.iter_invoices(flows["op-x"].id) for e in i.errors]
        assert any(r.startswith("BR-FR-") for r in fr)
        assert not any(r.startswith("BR-FR-") for r in other)
    finally:
        rt.close()


def test_duplicate_invoice_across_flows(rt, directory_file):
    _, recipients = directory_file
    first = _ubl(recipients, seed=50)
    drop(rt, "op-a", "a.xml", first)
    [f1] = run(rt)
    # The same invoice number again, in a different file (another line count): a duplicate invoice.
    second = _ubl(recipients, seed=50, lines=3)
    drop(rt, "op-a", "b.xml", second)
    [f2] = run(rt)
    assert f1.status is FlowStatus.IN_INTEGRE and f2.status is FlowStatus.IN_REJETE
    [inv] = rt.store.iter_invoices(f2.id)
    assert [e.rule for e in inv.errors if e.fatal] == ["RLS-P01"]


# ---- bad input -----------------------------------------------------------------------------


def _pdf_with_two_xmls(recipients) -> bytes:
    from pypdf import PdfReader, PdfWriter

    pdf = gen.facturx_pdf(next(gen.plan(1, 1, recipients, seed=60)))
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    other = gen.invoice_xml("cii", next(gen.plan(1, 1, recipients, seed=61)))
    writer.add_attachment("zugferd-invoice.xml", other)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_with_two_invoice_xmls_is_refused(rt, directory_file):
    _, recipients = directory_file
    drop(rt, "op-a", "two.pdf", _pdf_with_two_xmls(recipients))
    [flow] = run(rt)
    assert flow.status is FlowStatus.IN_REJETE
    [err] = rt.store.flow_errors(flow.id)
    assert err.rule == "RLS-T16" and "factur-x.xml" in err.message and "zugferd-invoice.xml" in err.message


def test_unsupported_syntax_version_is_refused(rt):
    d16a = (
        b'<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:13">'
        b"</rsm:CrossIndustryInvoice>"
    )
    drop(rt, "op-a", "old.xml", d16a)
    [flow] = run(rt)
    assert [e.rule for e in rt.store.flow_errors(flow.id)] == ["RLS-T10"]
    assert "CrossIndustryInvoice:13" in rt.store.flow_errors(flow.id)[0].message


@pytest.mark.slow
def test_a_100000_line_invoice_gets_a_verdict(rt, directory_file):
    _, recipients = directory_file
    data = gen.invoice_xml("ubl", next(gen.plan(1, 100_000, recipients, seed=70)))
    drop(rt, "op-a", "huge.xml", data)
    [flow] = run(rt)
    assert flow.status is FlowStatus.IN_INTEGRE, rt.store.flow_errors(flow.id)
    [inv] = rt.store.iter_invoices(flow.id)
    assert inv.errors == [] and inv.delivered_to


# ---- CLI -----------------------------------------------------------------------------------


def test_rules_install_and_validate_with_rules(tmp_path, cen_rules_dir, directory_file):
    from click.testing import CliRunner

    from relais.cli import main

    home = tmp_path / "home"
    runner = CliRunner()
    result = runner.invoke(
        main, ["--home", str(home), "rules", "install", str(cen_rules_dir)], env={"RELAIS_RULES_DIR": ""}
    )
    assert result.exit_code == 0, result.output
    assert "1.3.16" in result.output and (home / "rules" / "current.json").is_file()
    _, recipients = directory_file
    bad = tmp_path / "bad.xml"
    bad.write_bytes(_ubl(recipients, mutate=_break_payable))
    result = runner.invoke(main, ["--home", str(home), "validate", "--json", str(bad)], env={"RELAIS_RULES_DIR": ""})
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["rulesets"]["en16931-ubl-source"] == "rules-dir"
    assert doc["rulesets"]["en16931-cii-source"] == "rules-dir"
    assert "BR-CO-16" in {e["rule"] for e in doc["documents"][0]["errors"]}


def test_keep_going_reports_both_layers(tmp_path, directory_file, cen_rules_dir):
    from click.testing import CliRunner

    from relais.cli import main

    _, recipients = directory_file

    def both(root):
        _break_payable(root)
        root.find(f"{{{CBC}}}IssueDate").addprevious(etree.Element(f"{{{CBC}}}Bogus"))

    f = tmp_path / "both.xml"
    f.write_bytes(_ubl(recipients, mutate=both))
    runner = CliRunner()
    stop = json.loads(runner.invoke(main, ["validate", "--json", "--rules", str(cen_rules_dir), str(f)]).stdout)
    go = json.loads(
        runner.invoke(main, ["validate", "--json", "--keep-going", "--rules", str(cen_rules_dir), str(f)]).stdout
    )
    assert {e["rule"] for e in stop["documents"][0]["errors"]} == {"XSD"}
    assert {"XSD", "BR-CO-16"} <= {e["rule"] for e in go["documents"][0]["errors"]}

    # Content that makes the official XSLT itself stop: reported, not a crash, not "valid".
    def odd(root):
        root.find(f".//{{{CBC}}}PayableAmount").text = "abc"

    f.write_bytes(_ubl(recipients, mutate=odd))
    result = runner.invoke(main, ["validate", "--json", "--keep-going", "--rules", str(cen_rules_dir), str(f)])
    assert result.exit_code == 1, result.output
    rules = {e["rule"] for e in json.loads(result.stdout)["documents"][0]["errors"]}
    assert "XSD" in rules and ("RLS-T18" in rules or "BR-CO-16" in rules)
