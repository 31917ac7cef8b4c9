"""Status return flows (flows/returns/report.py) against schemas/xsd/relais-cppstatut.xsd."""

from __future__ import annotations

import datetime as dt
import tempfile
import tracemalloc
from collections.abc import Iterator

import pytest
from lxml import etree

from flows.domain.errors import Incident, RelaisError
from flows.domain.model import (
    Category,
    Channel,
    Flag,
    Flow,
    FlowCode,
    FlowStatus,
    Invoice,
    InvoiceStatus,
    ValidationError,
    invoice_id,
)
from flows.domain.rule import XSD
from flows.domain.technical import DUPLICATE_FLOW, FORBIDDEN_DTD
from flows.returns import report as rf

PRODUCED = dt.datetime(2026, 3, 2, 9, 30, 0, tzinfo=dt.UTC)
UPDATED = dt.datetime(2026, 3, 2, 9, 29, 58, tzinfo=dt.UTC)
SHA = "3f" * 32
XS = {"xs": "http://www.w3.org/2001/XMLSchema"}


def make_flow(**changes: object) -> Flow:
    values: dict[str, object] = dict(
        id="CPP20260302000001",
        partner="OPERATEUR-42",
        channel=Channel.SFTP,
        original_name="lot_mars.zip",
        size=12345,
        sha256=SHA,
        status=FlowStatus.IN_INTEGRE,
        flow_code=FlowCode.E1_UBL,
        received_at=UPDATED,
        updated_at=UPDATED,
    )
    values.update(changes)
    return Flow(**values)  # type: ignore[arg-type]


def make_invoice(flow: Flow, position: int, **changes: object) -> Invoice:
    values: dict[str, object] = dict(
        id=invoice_id(flow.id, position),
        flow_id=flow.id,
        position=position,
        entry_name=f"facture_{position}.xml",
        number=f"FA-2026-{position:04d}",
        type_code="380",
        supplier_id="73282932000074",
        supplier_id_type="1",
        buyer_siret="11000201100044",
        service_code="SERV-COMPTA",
    )
    values.update(changes)
    return Invoice(**values)  # type: ignore[arg-type]


def build(
    flow: Flow, flow_errors: list[ValidationError], invoices: list[Invoice], language: str = "fr"
) -> etree._Element:
    """Build (which validates), re-validate explicitly, and parse."""
    data = rf.build(flow, flow_errors, iter(invoices), produced_at=PRODUCED, language=language)
    rf.validate(data)
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<CPPStatut")
    return etree.fromstring(data)


def texts(root: etree._Element, path: str) -> list[str]:
    return [e.text or "" for e in root.iterfind(path)]


def one(root: etree._Element, path: str) -> str:
    found = texts(root, path)
    assert len(found) == 1, (path, found)
    return found[0]


FLUX = "CPPFluxStatuts/CPPFluxStatut"
PARAMS = "Enveloppe/EnveloppeUnitaire/Parametres"


# ------------------------------------------------------------------ scenarios


def test_integrated_flow_with_three_invoices() -> None:
    flow = make_flow(invoice_count=3)
    root = build(flow, [], [make_invoice(flow, p) for p in (1, 2, 3)])

    assert root.get("Version") == "1.0"
    assert one(root, f"{PARAMS}/DtPrd") == "2026-03-02T09:30:00Z"
    assert one(root, f"{PARAMS}/IdFlx") == flow.id
    assert one(root, f"{PARAMS}/CodeFlx") == "IN_DP_E1_UBL_INVOICE"
    assert one(root, f"{PARAMS}/NomFichier") == "lot_mars.zip"
    assert one(root, f"{PARAMS}/Empreinte") == SHA
    assert one(root, "Enveloppe/EnveloppeUnitaire/Partenaires/Emetteur/Id") == "RELAIS"
    assert one(root, "Enveloppe/EnveloppeUnitaire/Partenaires/Recepteur/Id") == "OPERATEUR-42"

    assert one(root, f"{FLUX}/IdFlx") == flow.id
    assert one(root, f"{FLUX}/StatutFlux") == "IN_INTEGRE"
    assert one(root, f"{FLUX}/IdStatut") == "91"
    assert one(root, f"{FLUX}/DateStatut") == "2026-03-02T09:29:58Z"
    assert one(root, f"{FLUX}/NbFactures") == "3"
    assert one(root, f"{FLUX}/NbFacturesRejetees") == "0"
    assert root.find(f"{FLUX}/FluxDoublon") is None
    assert root.find(f"{FLUX}/Details") is None

    statuses = root.findall("CPPFactureStatuts/CPPFactureStatut")
    assert [one(s, "Position") for s in statuses] == ["1", "2", "3"]
    assert [one(s, "IdFacture") for s in statuses] == [invoice_id(flow.id, p) for p in (1, 2, 3)]
    first = statuses[0]
    assert one(first, "NomEntree") == "facture_1.xml"
    assert one(first, "IdFournisseur") == "73282932000074"
    assert one(first, "TypeIdFournisseur") == "1"
    assert one(first, "IdDestinataire") == "11000201100044"
    assert one(first, "CodeServiceDestinataire") == "SERV-COMPTA"
    assert one(first, "NumeroFacture") == "FA-2026-0001"
    assert one(first, "TypeFacture") == "380"
    for status in statuses:
        assert one(status, "DonneesStatut/IdStatut") == "01"
        assert one(status, "DonneesStatut/LibelleStatut") == "DEPOSEE"
        assert one(status, "DonneesStatut/DateStatut") == "2026-03-02T09:29:58Z"
        assert status.find("DonneesStatut/Motif") is None
        assert status.find("Erreurs") is None


def test_partially_integrated_flow_reports_errors_and_warning() -> None:
    flow = make_flow(status=FlowStatus.IN_INTEGRE_PARTIEL, invoice_count=2, rejected_count=1)
    xsd_error = XSD.error("line 3, column 5", "Element 'cbc:IssueDate': '2026-13-01' is not a valid date")
    routing = ValidationError(
        "RLS-R03",
        Flag.FATAL,
        "/Invoice/cac:AccountingCustomerParty/cac:Party/cac:PartyIdentification/cbc:ID",
        "The recipient SIRET is not in the directory: 11000201100045",
    )
    warning = ValidationError("BR-FR-05", Flag.WARNING, "/Invoice/cbc:Note", "A note should be present")
    rejected = make_invoice(flow, 2, status=InvoiceStatus.REJETEE, errors=[xsd_error, routing, warning])
    root = build(flow, [], [make_invoice(flow, 1), rejected], language="en")  # a partner with language = "en"

    assert one(root, f"{FLUX}/StatutFlux") == "IN_INTEGRE_PARTIEL"
    assert one(root, f"{FLUX}/IdStatut") == "96"
    assert one(root, f"{FLUX}/NbFactures") == "2"
    assert one(root, f"{FLUX}/NbFacturesRejetees") == "1"

    ok, bad = root.findall("CPPFactureStatuts/CPPFactureStatut")
    assert ok.find("Erreurs") is None
    assert one(bad, "DonneesStatut/IdStatut") == "05"
    assert one(bad, "DonneesStatut/LibelleStatut") == "REJETEE"
    assert one(bad, "DonneesStatut/Motif") == xsd_error.message
    lines = bad.findall("Erreurs/LigneErreurDetail")
    assert [one(x, "NatureErreur") for x in lines] == ["XSD", "METIER", "METIER"]
    assert [one(x, "CodeErreur") for x in lines] == ["XSD", "RLS-R03", "BR-FR-05"]
    assert [one(x, "Severite") for x in lines] == ["fatal", "fatal", "warning"]
    assert [one(x, "Localisation") for x in lines] == [xsd_error.location, routing.location, warning.location]
    assert [one(x, "DescriptionErreur") for x in lines] == [
        xsd_error.message,
        routing.message,
        warning.message,
    ]
    assert one(lines[0], "LibelleErreur") == XSD.message_en
    assert one(lines[1], "LibelleErreur") == "The recipient SIRET is not in the directory"
    assert one(lines[2], "LibelleErreur") == "A note should be present"

    # By default (the platform's language) the same report in French: Relais's rules in their French
    # words, the specifics kept; the official rule's message verbatim, what it is beside it.
    root = build(flow, [], [make_invoice(flow, 1), rejected])
    ok, bad = root.findall("CPPFactureStatuts/CPPFactureStatut")
    detail = xsd_error.message.split(": ", 1)[1]
    assert one(bad, "DonneesStatut/Motif") == f"{XSD.message_fr} : {detail}"
    lines = bad.findall("Erreurs/LigneErreurDetail")
    assert [one(x, "CodeErreur") for x in lines] == ["XSD", "RLS-R03", "BR-FR-05"]
    assert one(lines[0], "LibelleErreur") == XSD.message_fr
    assert one(lines[0], "DescriptionErreur") == f"{XSD.message_fr} : {detail}"
    assert one(lines[2], "LibelleErreur") == "A note should be present"
    assert one(lines[2], "DescriptionErreur").startswith("A note should be present (Règle française de la réforme")


def test_flow_rejected_whole_has_no_invoice_statuses() -> None:
    flow = make_flow(status=FlowStatus.IN_REJETE, flow_code=None, original_name="lot.xml")
    error = FORBIDDEN_DTD.error("line 2, column 1", "<!DOCTYPE Invoice [<!ENTITY x 'y'>]>")
    root = build(flow, [error], [])

    assert one(root, f"{FLUX}/StatutFlux") == "IN_REJETE"
    assert one(root, f"{FLUX}/IdStatut") == "93"
    assert one(root, f"{FLUX}/NbFactures") == "0"
    assert root.find(f"{PARAMS}/CodeFlx") is None
    assert root.find("CPPFactureStatuts") is None
    (line,) = root.findall(f"{FLUX}/Details/LigneErreurDetail")
    assert one(line, "NatureErreur") == "TECHNIQUE"
    assert one(line, "CodeErreur") == "RLS-T04"
    assert one(line, "Severite") == "fatal"
    assert one(line, "Localisation") == "line 2, column 1"
    assert one(line, "LibelleErreur") == FORBIDDEN_DTD.message_fr
    assert one(line, "DescriptionErreur") == f"{FORBIDDEN_DTD.message_fr} : <!DOCTYPE Invoice [<!ENTITY x 'y'>]>"
    assert "<!DOCTYPE Invoice" in one(line, "DescriptionErreur")


def test_duplicate_flow_names_the_original() -> None:
    flow = make_flow(status=FlowStatus.IN_REJETE, duplicate_of="CPP20260301000777")
    root = build(flow, [DUPLICATE_FLOW.error("/", "CPP20260301000777")], [])

    assert one(root, f"{FLUX}/FluxDoublon") == "CPP20260301000777"
    assert one(root, f"{FLUX}/Details/LigneErreurDetail/CodeErreur") == "RLS-T11"
    assert one(root, f"{FLUX}/Details/LigneErreurDetail/NatureErreur") == "TECHNIQUE"
    assert rf.file_name(flow) == "CR_CPP20260302000001_IN_REJETE.xml"


def test_invoice_with_unreadable_number() -> None:
    flow = make_flow(status=FlowStatus.IN_INTEGRE_PARTIEL, invoice_count=1, rejected_count=1)
    unreadable = make_invoice(
        flow,
        1,
        number=None,
        type_code=None,
        supplier_id=None,
        supplier_id_type=None,
        buyer_siret=None,
        service_code="",
        status=InvoiceStatus.REJETEE,
        errors=[XSD.error("line 1, column 40", "no cbc:ID")],
    )
    root = build(flow, [], [unreadable])

    (status,) = root.findall("CPPFactureStatuts/CPPFactureStatut")
    for absent in (
        "NumeroFacture",
        "TypeFacture",
        "IdFournisseur",
        "TypeIdFournisseur",
        "IdDestinataire",
        "CodeServiceDestinataire",
    ):
        assert status.find(absent) is None, absent
    assert one(status, "NomEntree") == "facture_1.xml"
    assert one(status, "DonneesStatut/LibelleStatut") == "REJETEE"


def test_text_needing_escaping_round_trips() -> None:
    nasty = "Montant <total> & TVA « réduite » — 12 € ✓ 🧾 \"q\" 'a'"
    flow = make_flow(
        status=FlowStatus.IN_INTEGRE_PARTIEL,
        original_name="lot été & <printemps>.zip",
        invoice_count=1,
        rejected_count=1,
    )
    error = ValidationError("BR-CO-15", Flag.FATAL, "/Invoice/cac:LegalMonetaryTotal[1]", nasty)
    invoice = make_invoice(
        flow,
        1,
        entry_name="dossier/facture n°1 <copie> & 🧾.xml",
        number="FA<1>&2 é",
        status=InvoiceStatus.REJETEE,
        errors=[error],
    )
    data = rf.build(flow, [], [invoice], produced_at=PRODUCED)
    assert b"&lt;total&gt; &amp; TVA" in data
    assert "🧾".encode() in data  # UTF-8, not character references
    root = etree.fromstring(data)
    assert one(root, f"{PARAMS}/NomFichier") == "lot été & <printemps>.zip"
    status = root.find("CPPFactureStatuts/CPPFactureStatut")
    assert status is not None
    assert one(status, "NomEntree") == "dossier/facture n°1 <copie> & 🧾.xml"
    assert one(status, "NumeroFacture") == "FA<1>&2 é"
    assert one(status, "DonneesStatut/Motif").startswith(nasty + " (Règle métier de la norme EN 16931")
    assert one(status, "Erreurs/LigneErreurDetail/DescriptionErreur").startswith(nasty)
    assert one(status, "Erreurs/LigneErreurDetail/LibelleErreur") == nasty.split(": ", 1)[0]
    assert one(status, "Erreurs/LigneErreurDetail/Localisation") == "/Invoice/cac:LegalMonetaryTotal[1]"


def test_characters_xml_cannot_carry_are_replaced() -> None:
    flow = make_flow(status=FlowStatus.IN_INTEGRE_PARTIEL, invoice_count=1, rejected_count=1)
    invoice = make_invoice(
        flow,
        1,
        entry_name="bad\udcffname.xml",  # a surrogate-escaped byte from an archive entry name
        status=InvoiceStatus.REJETEE,
        errors=[ValidationError("RLS-T03", Flag.FATAL, "line 1, column 2", "bad \x00\x0b byte")],
    )
    root = build(flow, [], [invoice])
    assert one(root, "CPPFactureStatuts/CPPFactureStatut/NomEntree") == "bad\ufffdname.xml"
    assert one(root, "CPPFactureStatuts/CPPFactureStatut/DonneesStatut/Motif") == "bad \ufffd\ufffd byte"


# ------------------------------------------------------------------ the schema bites


def _valid_document() -> bytes:
    flow = make_flow(status=FlowStatus.IN_INTEGRE_PARTIEL, invoice_count=1, rejected_count=1)
    invoice = make_invoice(flow, 1, status=InvoiceStatus.REJETEE, errors=[XSD.error("line 3, column 5", "x")])
    return rf.build(flow, [], [invoice], produced_at=PRODUCED)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (b"<IdStatut>96</IdStatut>", b"<IdStatut>97</IdStatut>", "IdStatut"),
        (b"<IdStatut>05</IdStatut>", b"<IdStatut>14</IdStatut>", "IdStatut"),
        (b"<NatureErreur>XSD</NatureErreur>", b"<NatureErreur>AUTRE</NatureErreur>", "NatureErreur"),
        (b"<Severite>fatal</Severite>", b"<Severite>error</Severite>", "Severite"),
        (f"<Empreinte>{SHA}</Empreinte>".encode(), b"<Empreinte>3F</Empreinte>", "Empreinte"),
        (b"2026-03-02T09:30:00Z", b"2026-03-02T09:30:00", "DtPrd"),
        (b"<Position>1</Position>", b"<Position>0</Position>", "Position"),
        (b'Version="1.0"', b'Version="2.0"', "Version"),
        (b"<StatutFlux>IN_INTEGRE_PARTIEL</StatutFlux>", b"<StatutFlux>OK</StatutFlux>", "StatutFlux"),
        (b"<NbFactures>1</NbFactures>", b"", "NbFactures"),
        (b"<Recepteur>", b"<Recepteur><Id>X</Id>", "Id"),
    ],
)
def test_broken_document_does_not_validate(old: bytes, new: bytes, expected: str) -> None:
    good = _valid_document()
    rf.validate(good)
    assert old in good
    with pytest.raises(rf.ReturnFlowInvalid, match=expected) as caught:
        rf.validate(good.replace(old, new, 1))
    assert isinstance(caught.value, Incident)
    assert isinstance(caught.value, RelaisError)
    assert isinstance(caught.value, ValueError)


def test_not_xml_does_not_validate() -> None:
    for data in (b"", b"<CPPStatut", b"<Autre/>"):
        with pytest.raises(rf.ReturnFlowInvalid):
            rf.validate(data)


def _enumeration(simple_type: str) -> set[str]:
    tree = etree.parse(str(rf.SCHEMA_PATH))
    found = tree.xpath(f"//xs:simpleType[@name='{simple_type}']/xs:restriction/xs:enumeration/@value", namespaces=XS)
    assert found, simple_type
    return set(found)


def test_schema_enumerations_follow_the_model() -> None:
    assert _enumeration("StatutFluxType") == {s.value for s in FlowStatus}
    assert _enumeration("CodeFluxType") == {c.value for c in FlowCode}
    assert _enumeration("IdStatutFluxType") >= set(rf.FLOW_STATUS_CODES.values())
    assert _enumeration("LibelleStatutType") >= {s.label for s in InvoiceStatus}
    assert _enumeration("NatureErreurType") == {"TECHNIQUE", "XSD", "METIER"}
    assert _enumeration("SeveriteType") == {f.value for f in Flag}


@pytest.mark.parametrize("status", list(FlowStatus))
def test_every_flow_status_maps_and_validates(status: FlowStatus) -> None:
    expected = {
        FlowStatus.IN_INTEGRE: "91",
        FlowStatus.IN_INTEGRE_PARTIEL: "96",
        FlowStatus.IN_REJETE: "93",
        FlowStatus.IN_INCIDENTE: "93",
    }.get(status, "90")
    root = build(make_flow(status=status), [], [])
    assert one(root, f"{FLUX}/IdStatut") == expected
    assert one(root, f"{FLUX}/StatutFlux") == status.value


@pytest.mark.parametrize("status", list(InvoiceStatus))
def test_every_invoice_status_validates(status: InvoiceStatus) -> None:
    flow = make_flow(invoice_count=1)
    root = build(flow, [], [make_invoice(flow, 1, status=status)])
    assert one(root, "CPPFactureStatuts/CPPFactureStatut/DonneesStatut/IdStatut") == status.value
    assert one(root, "CPPFactureStatuts/CPPFactureStatut/DonneesStatut/LibelleStatut") == status.label


# ------------------------------------------------------------------ details


@pytest.mark.parametrize(
    ("rule", "nature"),
    [("XSD", "XSD"), ("RLS-T04", "TECHNIQUE"), ("RLS-R03", "METIER"), ("BR-CO-15", "METIER"), ("BR-FR-05", "METIER")],
)
def test_error_nature(rule: str, nature: str) -> None:
    """From the finding's category: declared by its rule, also when rebuilt from a stored row (no category)."""
    from validators.rules import all_rules

    rules = {r.code: r for r in all_rules()}
    made = rules[rule].error("/") if rule in rules else ValidationError(rule, Flag.FATAL, "/", "x", Category.EN16931)
    assert rf.error_nature(made) == nature
    assert rf.error_nature(ValidationError(rule, Flag.FATAL, "/", "x")) == nature  # as the store rebuilds it


@pytest.mark.parametrize(
    ("category", "nature"),
    [
        (Category.SCHEMA, "XSD"),
        (Category.TECHNICAL, "TECHNIQUE"),
        (Category.ROUTING, "METIER"),
        (Category.PLATFORM, "METIER"),
        (Category.EN16931, "METIER"),
        (None, "METIER"),
    ],
)
def test_error_nature_is_read_from_the_category(category, nature) -> None:
    assert rf.error_nature(ValidationError("ANY-CODE", Flag.FATAL, "/", "x", category)) == nature


def test_dates_are_written_in_utc() -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    flow = make_flow(updated_at=dt.datetime(2026, 6, 1, 12, 0, 0))  # naive: taken as UTC
    data = rf.build(flow, [], [], produced_at=dt.datetime(2026, 6, 1, 14, 0, 5, 123, tzinfo=paris))
    root = etree.fromstring(data)
    assert one(root, f"{PARAMS}/DtPrd") == "2026-06-01T12:00:05Z"
    assert one(root, f"{FLUX}/DateStatut") == "2026-06-01T12:00:00Z"


def test_supplier_id_type() -> None:
    flow = make_flow(invoice_count=3)
    invoices = [
        make_invoice(flow, 1, supplier_id_type="2"),
        make_invoice(flow, 2, supplier_id_type="0009"),
        make_invoice(flow, 3, supplier_id_type="0088"),
    ]
    root = build(flow, [], invoices)
    assert texts(root, "CPPFactureStatuts/CPPFactureStatut/TypeIdFournisseur") == ["2", "1"]


def test_output_is_deterministic_and_platform_id_is_configurable() -> None:
    flow = make_flow(invoice_count=2)
    invoices = [make_invoice(flow, 1), make_invoice(flow, 2)]
    first = rf.build(flow, [], invoices, produced_at=PRODUCED, platform_id="RELAIS-QUALIF")
    second = rf.build(flow, [], iter(invoices), produced_at=PRODUCED, platform_id="RELAIS-QUALIF")
    assert first == second
    root = etree.fromstring(first)
    assert one(root, "Enveloppe/EnveloppeUnitaire/Partenaires/Emetteur/Id") == "RELAIS-QUALIF"


def test_inconsistent_inputs_are_refused() -> None:
    flow = make_flow(invoice_count=3)
    with pytest.raises(rf.ReturnFlowInvalid, match="counts 3 invoices, 2 were listed"):
        rf.build(flow, [], [make_invoice(flow, 1), make_invoice(flow, 2)])
    with pytest.raises(rf.ReturnFlowInvalid, match="position 1 comes after position 2"):
        rf.build(flow, [], [make_invoice(flow, 2), make_invoice(flow, 1), make_invoice(flow, 3)])
    other = make_flow(id="CPP20260302000002")
    with pytest.raises(rf.ReturnFlowInvalid, match="belongs to flow CPP20260302000002"):
        rf.build(flow, [], [make_invoice(other, 1)])


def test_file_name() -> None:
    assert rf.file_name(make_flow()) == "CR_CPP20260302000001_IN_INTEGRE.xml"


# ------------------------------------------------------------------ streaming

STREAMED = 50_000


def test_streams_a_large_flow_in_bounded_memory() -> None:
    """50,000 invoices from a generator: output reaches the file while the
    generator is still running, and traced Python memory stays small.

    For scale: merely holding these 50,000 Invoice objects in a list costs
    ~24 MB of traced memory, so the 10 MB bound catches an implementation that
    materialises `invoices` (30 MB would not).
    """
    flow = make_flow(
        status=FlowStatus.IN_INTEGRE_PARTIEL,
        invoice_count=STREAMED,
        rejected_count=STREAMED // 10,
    )
    progress: dict[int, int] = {}

    with tempfile.TemporaryFile() as out:

        def invoices() -> Iterator[Invoice]:
            for position in range(1, STREAMED + 1):
                if position % 10_000 == 0:
                    progress[position] = out.tell()
                rejected = position % 10 == 0
                yield make_invoice(
                    flow,
                    position,
                    status=InvoiceStatus.REJETEE if rejected else InvoiceStatus.DEPOSEE,
                    errors=[
                        ValidationError(
                            "BR-CO-15",
                            Flag.FATAL,
                            "/Invoice/cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount",
                            f"Total with VAT does not add up (invoice {position})",
                        )
                    ]
                    if rejected
                    else [],
                )

        tracemalloc.start()
        try:
            written = rf.write(out, flow, [], invoices(), produced_at=PRODUCED)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        size = out.tell()

        assert written == STREAMED
        assert peak < 10 * 1024 * 1024, f"peak traced memory {peak / 1e6:.1f} MB"
        # Incremental: by the time invoice 40,000 was asked for, most of the
        # first 39,999 were already written out.
        assert progress[40_000] > 0.7 * size * 39_999 / STREAMED

        out.seek(0)
        rf.validate(out)
        out.seek(0)
        count = rejected_count = 0
        for _, element in etree.iterparse(out, events=("end",), tag="CPPFactureStatut"):
            count += 1
            rejected_count += element.findtext("DonneesStatut/LibelleStatut") == "REJETEE"
            element.clear()
        assert (count, rejected_count) == (STREAMED, STREAMED // 10)
