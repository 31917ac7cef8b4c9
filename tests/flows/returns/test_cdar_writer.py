"""CDAR out (docs/reform.md §1): every status Relais emits is a CDAR D22B message that passes the official XSD and
the BR-FR-CDV schematron run by Saxon (the oracle, not the native engine); the reason mapping always gives a
code the status allows; random lines are either written valid or refused by the writer before writing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from flows.domain import cdar as C
from flows.domain.history import HistoryEntry, Source
from flows.domain.lifecycle import Actor
from flows.domain.lifecycle import InvoiceStatus as I
from flows.domain.model import Flag, Flow, FlowStatus, Invoice, ValidationError
from flows.domain.reasons import REASONS
from flows.pipeline.cdar_out import CdarOut, flow_lines
from flows.returns import cdar as writer
from flows.returns import cdar_map
from validators import cdar as check

AT = dt.datetime(2026, 9, 15, 10, 30, tzinfo=dt.UTC)
OUT = CdarOut(platform_id="9998", platform_name="Relais", partner_platform=lambda p: "0042" if p == "pf" else None)


def saxon(data: bytes) -> list[str]:
    """Every fatal finding of the official XSD and schematron, the schematron run by Saxon."""
    return [f"{f.rule}: {f.message}" for f in check.check(data, runner=check.saxon())]


def invoice(**kw) -> Invoice:
    values = dict(
        id="F1-00001",
        flow_id="F1",
        position=1,
        entry_name="a.xml",
        number="FA-2026-001",
        type_code="380",
        issue_date=dt.date(2026, 9, 1),
        supplier_id="12345678900011",
        supplier_id_type="1",
        buyer_siret="98765432100017",
        currency="EUR",
        total_without_vat=Decimal("100.00"),
        total_vat=Decimal("20.00"),
        total_with_vat=Decimal("120.00"),
    )
    values.update(kw)
    return Invoice(**values)  # type: ignore[arg-type]


def entry(status: I, actor: Actor = Actor.RECIPIENT, reason: str | None = None, code: str | None = None, n=1):
    return HistoryEntry(n, "F1-00001", "op-a", status, I.MISE_A_DISPOSITION, actor, Source.API, reason, AT, code)


#: (CDAR status, the history change or the outcome that makes it)
HISTORY = [
    ("201", entry(I.EN_COURS_ACHEMINEMENT, Actor.PLATFORM)),
    ("203", entry(I.MISE_A_DISPOSITION, Actor.PLATFORM)),
    ("204", entry(I.MANDATEE)),
    ("205", entry(I.SERVICE_FAIT)),
    ("206", entry(I.APPROUVEE_PARTIELLEMENT, Actor.PARTNER_PLATFORM, "quantités livrées : 8 sur 10", "QTE_ERR")),
    ("207", entry(I.EN_LITIGE, Actor.PARTNER_PLATFORM, None, "MONTANT")),
    ("208", entry(I.SUSPENDUE, reason="pièce manquante", code="PIECE_JOINTE")),
    ("209", entry(I.COMPLETEE, Actor.SUPPLIER)),
    ("210", entry(I.REJETEE, reason="taux de TVA erroné", code="TVA")),
    ("211", entry(I.MISE_EN_PAIEMENT)),
    ("212", entry(I.ENCAISSEE, Actor.SUPPLIER)),
    ("213", entry(I.REJETEE, Actor.PLATFORM, reason="doublon", code="DOUBLON")),
]


def message_of(e: HistoryEntry, inv: Invoice, partner: str = "pf") -> C.Message:
    line = cdar_map.history_line(e, inv)
    assert line is not None
    issuer = cdar_map.issuer_party(cdar_map.issuer_key(e, line), OUT.platform)
    return OUT.message("ST000000000001", partner, [line], issuer)


@pytest.mark.parametrize(("code", "change"), HISTORY, ids=[c for c, _ in HISTORY])
@pytest.mark.parametrize("partner", ["pf", "op-a"])
def test_every_status_change_is_a_valid_cdar_message(code, change, partner):
    message = message_of(change, invoice(), partner)
    assert [line.status for line in message.lines] == [code]
    data = writer.write(message)
    assert saxon(data) == []
    assert check.check(data) == []  # the native engine agrees
    root = etree.fromstring(data)
    ns = writer.NSMAP
    assert root.findtext("rsm:AcknowledgementDocument/ram:TypeCode", namespaces=ns) == str(C.STATUSES[code].phase)
    ref = root.find("rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument", ns)
    assert ref.findtext("ram:IssuerAssignedID", namespaces=ns) == "FA-2026-001"
    assert ref.findtext("ram:IssuerTradeParty/ram:GlobalID", namespaces=ns) == "123456789"
    assert ref.find("ram:IssuerTradeParty/ram:GlobalID", ns).get("schemeID") == "0002"
    if code in C.REASON_REQUIRED:
        reason = ref.findtext("ram:SpecifiedDocumentStatus/ram:ReasonCode", namespaces=ns)
        assert C.reason_allowed(code, reason)
        assert ref.findtext("ram:SpecifiedDocumentStatus/ram:Reason", namespaces=ns)
    sender = root.find("rsm:ExchangedDocument/ram:SenderTradeParty", ns)
    assert (sender.findtext("ram:GlobalID", namespaces=ns), sender.findtext("ram:RoleCode", namespaces=ns)) == (
        "9998",
        "WK",
    )
    recipient = root.find("rsm:ExchangedDocument/ram:RecipientTradeParty", ns)
    if partner == "pf":
        assert recipient.findtext("ram:GlobalID", namespaces=ns) == "0042"
    else:
        assert recipient.findtext("ram:URIUniversalCommunication/ram:URIID", namespaces=ns) == "op-a"


def test_212_carries_the_amounts_received_else_the_invoice_total():
    e = entry(I.ENCAISSEE, Actor.SUPPLIER)
    received = [
        {"type": "MEN", "amount": "50.00", "vat_rate": "20.00"},
        {"type": "MEN", "amount": "10", "vat_rate": "5.5"},
    ]
    line = cdar_map.history_line(e, invoice(), received_amounts=received)
    assert [(a.amount, a.vat_rate) for a in line.amounts] == [
        (Decimal("50.00"), Decimal("20.00")),
        (10, Decimal("5.5")),
    ]
    assert [(a.amount, a.vat_rate) for a in cdar_map.history_line(e, invoice()).amounts] == [(120, Decimal("20.00"))]
    message = OUT.message("M", "pf", [line], cdar_map.issuer_party(cdar_map.issuer_key(e, line), OUT.platform))
    data = writer.write(message)
    assert saxon(data) == []
    assert data.count(b"<ram:ValuePercent>") == 2


def test_flow_outcomes_200_213_and_501_are_valid():
    flow = Flow(id="F1", partner="op-a", channel="folder", original_name="lot.zip", size=1, sha256="x")  # type: ignore[arg-type]
    good = invoice()
    bad = invoice(id="F1-00002", position=2, number="FA-2026-002", status=I.REJETEE_ROUTAGE)
    bad.errors = [ValidationError("RLS-P01", Flag.FATAL, "/", "facture déjà reçue")]
    written = flow_lines(flow, [], [good, bad])
    assert [(w.line.status, w.line.reason_code, w.rule) for w in written] == [
        ("200", None, None),
        ("213", "DOUBLON", "RLS-P01"),
    ]
    assert saxon(writer.write(OUT.message("F1", "op-a", [w.line for w in written]))) == []

    flow.status = FlowStatus.IN_REJETE
    refused = flow_lines(flow, [ValidationError("RLS-T03", Flag.FATAL, "/", "XML mal formé")], [])
    assert [(w.line.status, w.line.reason_code, w.line.invoice_number) for w in refused] == [
        ("501", "IRR_SYNTAX", "lot.zip")
    ]
    assert saxon(writer.write(OUT.message("F1", "op-a", [w.line for w in refused]))) == []


def test_an_unreadable_invoice_is_still_named():
    xsd = ValidationError("XSD", Flag.FATAL, "/", "invalide")
    bare = invoice(number=None, issue_date=None, supplier_id=None, buyer_siret=None, entry_name="x.xml")
    line = cdar_map.rejected_line(bare, xsd, at=AT)  # no seller: irrecevable
    assert (line.invoice_number, line.status, line.reason_code) == ("x.xml", "501", "IRR_SYNTAX")
    undated = invoice(number=None, issue_date=None, supplier_id="DE123456789", entry_name="y.xml", type_code="XX")
    line = cdar_map.rejected_line(undated, xsd, at=AT)
    assert (line.invoice_number, line.status, line.reason_code) == ("y.xml", "213", "REJ_UNI")
    assert (line.invoice_issue_date, line.seller_siren, line.invoice_type_code) == (AT.date(), "DE123456789", "380")
    assert saxon(writer.write(OUT.message("M", "op-a", [line]))) == []


@pytest.mark.parametrize("status", sorted(C.REASONS_BY_STATUS))
@pytest.mark.parametrize("relais", sorted([*REASONS, None, "NOPE"], key=str))
def test_every_relais_reason_maps_to_a_code_the_status_allows(status, relais):
    reason = cdar_map.cdar_reason(status, relais)
    assert C.reason_allowed(status, reason), (status, relais, reason)


def test_documented_reason_mappings():
    assert cdar_map.cdar_reason("210", "MONTANT") == "MONTANTTOTAL_ERR"
    assert cdar_map.cdar_reason("210", "DOUBLON") == "DOUBLON"
    assert cdar_map.cdar_reason("207", "COORDONNEES_BANCAIRES") == "COORD_BANC_ERR"
    assert cdar_map.cdar_reason("208", "ENGAGEMENT") == "CMD_ERR"
    assert cdar_map.cdar_reason("210", "MARCHE") == "REF_CT_ABSENT"
    assert cdar_map.cdar_reason("206", "MONTANT") == "PU_ERR"  # MONTANTTOTAL_ERR, CALCUL_ERR not allowed for 206
    assert cdar_map.cdar_reason("213", "JUSTIF_ABS") == "REJ_SEMAN"  # a CDAR code the status refuses: fallback


def test_the_writer_refuses_what_the_schematron_would():
    line = C.StatusLine("F", "213", invoice_issue_date=dt.date(2026, 1, 1), seller_siren="123456789")
    for bad, why in (
        (line, "requires a reason"),
        (C.StatusLine("F", "210", reason_code="DEST_INC"), "may not accompany"),
        (C.StatusLine("F", "212"), "amounts"),
        (C.StatusLine("F", "999"), "unknown status"),
    ):
        with pytest.raises(writer.CdarRefused, match=why):
            writer.write(OUT.message("M", "pf", [bad]))
    mixed = [C.StatusLine("F", "203"), C.StatusLine("F", "205")]
    with pytest.raises(writer.CdarRefused, match="one phase"):
        writer.write(OUT.message("M", "pf", mixed))


# ---- property: written messages always pass, or the writer refuses before writing ----------------------

EMITTED = ["200", "201", "203", "204", "205", "206", "207", "208", "209", "210", "211", "212", "213", "501"]
amounts = st.lists(
    st.builds(
        C.Amount,
        st.just("MEN"),
        st.decimals(min_value=Decimal("-99999999"), max_value=Decimal("99999999"), places=2),
        st.sampled_from([Decimal("20"), Decimal("5.5"), Decimal("0"), Decimal("10"), Decimal("2.1")]),
    ),
    max_size=3,
)
lines = st.builds(
    C.StatusLine,
    invoice_number=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9\-_/ ]{0,30}", fullmatch=True),
    status=st.sampled_from(EMITTED),
    invoice_type_code=st.sampled_from(["380", "381", "389", "384"]),
    invoice_issue_date=st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)),
    seller_siren=st.from_regex(r"[0-9]{9}", fullmatch=True),
    reason_code=st.one_of(st.none(), st.sampled_from(sorted(C.REASON_CODES))),
    reason=st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)),
    action_code=st.one_of(st.none(), st.sampled_from(sorted(C.ACTION_CODES))),
    amounts=amounts,
    sequence=st.integers(1, 99),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=lines, partner=st.sampled_from(["pf", "op-a"]))
def test_written_messages_always_pass_or_are_refused_before_writing(line, partner):
    issuer = OUT.platform if line.phase is C.Phase.TRANSMISSION else C.Party("BY", "987654321", "0002")
    message = OUT.message("M-1", partner, [line], issuer)
    try:
        data = writer.write(message)
    except writer.CdarRefused:
        assert writer.line_refusal(line) is not None
        return
    assert saxon(data) == []
