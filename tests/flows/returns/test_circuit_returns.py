"""Return flows of billing frameworks (docs/billing-frameworks.md §4, §6): the pieces name their framework, billing
file and previous piece; status return flows carry every circuit status, actor and reason code, and validate
against schemas/xsd/relais-cppstatut.xsd in both vocabularies (CPP, CDAR) and both languages."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from lxml import etree

from flows.domain.frameworks import Framework
from flows.domain.history import HistoryEntry, Source
from flows.domain.lifecycle import INVOICE, Actor, InvoiceStatus, cdar_code
from flows.domain.model import Channel, Flow, FlowCode, FlowStatus, Invoice, invoice_id
from flows.domain.reasons import REASONS
from flows.pipeline.cdar_out import CdarOut
from flows.returns import cdar as cdar_writer
from flows.returns import cdar_map
from flows.returns import report as rf
from flows.returns import status as st
from flows.store import Store
from tests.support import billing_files
from validators import cdar as cdar_check

I = InvoiceStatus  # noqa: E741
AT = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)
FLOW_ID = "CPP0000000042"


def _flow(**changes: object) -> Flow:
    values: dict[str, object] = dict(
        id=FLOW_ID, partner="op-sub", channel=Channel.SFTP, original_name="lot.zip", size=1, sha256="3f" * 32,
        status=FlowStatus.IN_INTEGRE, flow_code=FlowCode.E1_UBL, received_at=AT, updated_at=AT,
    )  # fmt: skip
    values.update(changes)
    return Flow(**values)  # type: ignore[arg-type]


def _piece(position: int, framework: Framework, **changes: object) -> Invoice:
    inv = Invoice(
        id=invoice_id(FLOW_ID, position), flow_id=FLOW_ID, position=position, entry_name=f"p{position}.xml",
        number=f"N-{position}", supplier_id="73282932000074", supplier_id_type="1", buyer_siret="11000201100044",
        framework=framework, billing_file_id=invoice_id(FLOW_ID, position),
    )  # fmt: skip
    for k, v in changes.items():
        setattr(inv, k, v)
    return inv


def _children(element: etree._Element) -> list[str]:
    return [c.tag for c in element]


# ---- the integration report ----------------------------------------------------------------------------


def test_the_integration_report_names_the_framework_file_and_previous_piece_of_circuit_pieces_only() -> None:
    first = _piece(1, Framework.A10, status=I.A_VALIDER_1)
    follower = _piece(2, Framework.A15, status=I.MISE_A_DISPOSITION_MOA, billing_file_id=first.id, previous_id="X-1")
    plain = _piece(3, Framework.A1)
    root = etree.fromstring(rf.build(_flow(invoice_count=3), [], [first, follower, plain], produced_at=AT))
    a, b, c = root.iterfind("CPPFactureStatuts/CPPFactureStatut")
    assert _children(a) == [
        "IdFacture", "Position", "NomEntree", "IdFournisseur", "TypeIdFournisseur", "IdDestinataire", "NumeroFacture",
        "CadreFacturation", "IdDossierFacturation", "DonneesStatut",
    ]  # fmt: skip
    assert (a.findtext("CadreFacturation"), a.findtext("IdDossierFacturation")) == ("A10", first.id)
    assert (a.findtext("DonneesStatut/IdStatut"), a.findtext("DonneesStatut/LibelleStatut")) == ("20", "A_VALIDER_1")
    assert [b.findtext(t) for t in ("CadreFacturation", "IdDossierFacturation", "IdFacturePrecedente")] == [
        "A15",
        first.id,
        "X-1",
    ]
    assert b.findtext("DonneesStatut/IdStatut") == "40"
    # A plain invoice: exactly the elements it always had (older readers see nothing new).
    assert "CadreFacturation" not in _children(c) and "IdDossierFacturation" not in _children(c)


@pytest.mark.parametrize("framework", list(Framework))
def test_every_framework_is_in_the_schema(framework: Framework) -> None:
    inv = _piece(1, framework, status=I.DEPOSEE, previous_id="CPP1-00001")
    root = etree.fromstring(rf.build(_flow(invoice_count=1), [], [inv], produced_at=AT))  # validates
    assert root.findtext("CPPFactureStatuts/CPPFactureStatut/CadreFacturation") == framework.value


def test_the_schema_refuses_a_framework_that_is_not_one() -> None:
    data = rf.build(_flow(invoice_count=1), [], [_piece(1, Framework.A4)], produced_at=AT)
    with pytest.raises(rf.ReturnFlowInvalid, match="CadreFacturation"):
        rf.validate(data.replace(b">A4<", b">A26<"))


# ---- status return flows ---------------------------------------------------------------------------------


#: Every move of a circuit, by each actor allowed to make it (the statuses 20..55 and what leads to them).
def _in_circuit(status: InvoiceStatus) -> bool:
    """The circuits' statuses: Relais's numbers 20..55 (60.. are the reform's, docs/reform.md)."""
    return 20 <= int(status.value) < 60


CIRCUIT_MOVES = [
    (t.source, t.target, actor)
    for t in INVOICE.transitions
    for actor in sorted(t.actors)
    if _in_circuit(t.source) or _in_circuit(t.target)
]


def _changes(moves: list[tuple[InvoiceStatus, InvoiceStatus, Actor]]) -> list[st.Change]:
    found = []
    for n, (source, target, actor) in enumerate(moves, start=1):
        code = REASONS.allowed(target)[-1] if target.needs_reason else None
        entry = HistoryEntry(
            id=n, invoice_id=invoice_id(FLOW_ID, n), partner="op-sub", status=target, previous=source, actor=actor,
            source=Source.API, reason="motif donné" if code else None, at=AT, reason_code=code,
        )  # fmt: skip
        framework = Framework.A10 if int(target.value) < 40 else Framework.A15
        found.append(st.Change(entry, _piece(n, framework, status=target, previous_id="CPP1-00001")))
    return found


def test_every_circuit_status_is_reached_by_some_move() -> None:
    reached = {t for _, t, _ in CIRCUIT_MOVES} | {s for s, _, _ in CIRCUIT_MOVES}
    circuit = {s for s in InvoiceStatus if _in_circuit(s) and not s.is_reserved}
    # A_ASSOCIER_FOURNISSEUR is only where an A20 starts: its integration report says it (test_returnflow.py)
    assert reached == (circuit - {I.A_ASSOCIER_FOURNISSEUR}) | {I.MISE_A_DISPOSITION}
    assert I.A_ASSOCIER_FOURNISSEUR in INVOICE.initial
    assert {a for _, _, a in CIRCUIT_MOVES} == {Actor.PLATFORM, Actor.VALIDATOR, Actor.MOE, Actor.MOA, Actor.OPS}


@pytest.mark.parametrize(("vocabulary", "language"), itertools.product(("cpp",), ("fr", "en")))
def test_every_circuit_move_is_written_and_validates(vocabulary: str, language: str) -> None:
    changes = _changes(CIRCUIT_MOVES)
    data, count = st.build(
        "ST0000000001", "op-sub", changes, vocabulary=vocabulary, language=language, produced_at=AT
    )  # validated by build
    rf.validate(data)
    root = etree.fromstring(data)
    written = list(root.iterfind("CPPFactureStatuts/CPPFactureStatut"))
    expected = [c for c in changes if st.code_of(c, vocabulary) is not None]
    assert count == len(written) == len(expected)
    assert count == len(CIRCUIT_MOVES)
    for element, change in zip(written, expected, strict=True):
        entry = change.entry
        data_ = element.find("DonneesStatut")
        assert element.findtext("IdFacture") == entry.invoice_id
        assert data_.findtext("IdStatut") == entry.status.code
        assert data_.findtext("LibelleStatut") == entry.status.name
        assert data_.findtext("Acteur") == st.ACTORS[entry.actor]
        assert element.findtext("CadreFacturation") == str(change.invoice.framework)
        assert element.findtext("IdFacturePrecedente") == "CPP1-00001"
        if entry.reason_code:
            reason = REASONS[entry.reason_code]
            assert _children(data_)[3:6] == ["Motif", "CodeMotif", "LibelleMotif"]
            assert data_.findtext("CodeMotif") == entry.reason_code
            assert data_.findtext("LibelleMotif") == (reason.label_en if language == "en" else reason.label_fr)
        else:
            assert data_.find("CodeMotif") is None and data_.find("LibelleMotif") is None


def test_a_cdar_partner_gets_no_cppstatut() -> None:
    with pytest.raises(rf.ReturnFlowInvalid, match="CDAR partners get CDAR messages"):
        st.build("ST0000000001", "op-sub", _changes(CIRCUIT_MOVES), vocabulary="cdar", produced_at=AT)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_every_circuit_move_with_a_cdar_code_is_a_valid_cdar_message(language: str) -> None:
    """In CDAR (docs/reform.md §1): made available, taken in, passed on, refused; each a message that passes
    the official XSD and BR-FR-CDV schematron (Saxon)."""
    changes = _changes(CIRCUIT_MOVES)
    written = cdar_map.history_lines([(c.entry, c.invoice) for c in changes], language=language)
    assert [w.line.status for w in written] == [
        cdar_code(c.entry.status, c.entry.actor) for c in changes if cdar_code(c.entry.status, c.entry.actor)
    ]
    assert {w.line.status for w in written} >= {"203", "204", "205", "210"}
    out = CdarOut()
    by_id = {c.entry.id: c.entry for c in changes}
    for w in written:
        key = cdar_map.issuer_key(by_id[w.history_id], w.line)
        message = out.message("ST1", "op-sub", [w.line], cdar_map.issuer_party(key, out.platform))
        assert cdar_check.check(cdar_writer.write(message, language=language), runner=cdar_check.saxon()) == []


def test_each_actor_has_its_word_in_the_schema() -> None:
    tree = etree.parse(str(rf.SCHEMA_PATH))
    words = tree.xpath(
        "//xs:element[@name='Acteur']//xs:enumeration/@value", namespaces={"xs": "http://www.w3.org/2001/XMLSchema"}
    )
    assert set(st.ACTORS) == set(Actor)
    assert sorted(words) == sorted(st.ACTORS.values())
    assert st.ACTORS[Actor.VALIDATOR] == "VALIDATEUR" and st.ACTORS[Actor.MOE] == "MOE"


def test_a_reason_code_the_list_no_longer_has_is_written_without_a_label() -> None:
    [change] = _changes([(I.A_VALIDER_1, I.REFUSEE_1, Actor.VALIDATOR)])
    old = st.Change(HistoryEntry(**{**_asdict(change.entry), "reason_code": "ANCIEN_CODE"}), change.invoice)
    data, _ = st.build("ST0000000002", "op-sub", [old], produced_at=AT)
    root = etree.fromstring(data)
    assert root.findtext(".//CodeMotif") == "ANCIEN_CODE" and root.find(".//LibelleMotif") is None
    with pytest.raises(rf.ReturnFlowInvalid, match="CodeMotif"):  # a code is capitals, digits and _
        rf.validate(data.replace(b"ANCIEN_CODE", b"ancien code"))


@pytest.mark.parametrize(("language", "motif"), [("fr", "mise à disposition du destinataire"), ("en", None)])
def test_the_platforms_delivery_is_told_in_the_partners_language(language: str, motif: str | None) -> None:
    [change] = _changes([(I.DEPOSEE, I.MISE_A_DISPOSITION, Actor.PLATFORM)])
    delivered = {**_asdict(change.entry), "reason": "delivered to the recipient"}  # as flows/store/history.py
    data, _ = st.build(
        "ST0000000003", "op-sub", [st.Change(HistoryEntry(**delivered), change.invoice)], language=language
    )
    assert etree.fromstring(data).findtext(".//Motif") == (motif or "delivered to the recipient")


def _asdict(entry: HistoryEntry) -> dict[str, object]:
    return {f: getattr(entry, f) for f in entry.__slots__}  # type: ignore[attr-defined]


# ---- from the store, as the emitter reads it ------------------------------------------------------------


@pytest.fixture
def store(store_url):
    url, schema = store_url  # SQLite, then PostgreSQL
    s = Store.open(url, schema=schema)
    yield s
    s.close()


@pytest.mark.parametrize("vocabulary", ["cpp", "cdar"])
def test_a_billing_file_recorded_in_the_store_is_reported_to_each_depositor(store, vocabulary: str) -> None:
    """CPPStatut for a cpp partner; CDAR status lines for a cdar one (reasons mapped: docs/reform.md §1)."""
    seeded = billing_files.seed(store)
    reported: dict[str, list[tuple[str, ...]]] = {}
    for partner in ("op-sub", "op-moe"):
        entries = store.history_after(partner, 0)
        pieces = store.invoices_by_id([h.invoice_id for h in entries])
        changes = [st.Change(h, pieces[h.invoice_id]) for h in entries]
        if vocabulary == "cdar":
            written = cdar_map.history_lines([(h, pieces[h.invoice_id]) for h in entries])
            reported[partner] = [(w.invoice_id or "", w.line.status, w.line.reason_code or "") for w in written]
            continue
        data, _ = st.build(f"ST-{partner}", partner, changes, vocabulary=vocabulary, produced_at=AT)
        root = etree.fromstring(data)
        reported[partner] = [
            tuple(
                e.findtext(p) or ""
                for p in (
                    "IdFacture",
                    "CadreFacturation",
                    "DonneesStatut/IdStatut",
                    "DonneesStatut/Acteur",
                    "DonneesStatut/CodeMotif",
                    "DonneesStatut/LibelleMotif",
                )
            )  # fmt: skip
            for e in root.iterfind("CPPFactureStatuts/CPPFactureStatut")
        ]
    draft, refused, statement = seeded.draft.id, seeded.refused.id, seeded.statement.id
    if vocabulary == "cpp":
        assert reported["op-sub"] == [
            (draft, "A10", "21", "VALIDATEUR", "", ""),
            (draft, "A10", "30", "PLATEFORME", "", ""),
            (draft, "A10", "31", "MOE", "", ""),
            (
                refused,
                "A9",
                "22",
                "VALIDATEUR",
                "NON_AGREE",
                "Sous-traitant non accepté ou non agréé au paiement direct",
            ),
        ]
        assert reported["op-moe"] == [
            (statement, "A15", "43", "MOA", "MARCHE", "Référence du marché absente ou erronée")
        ]
    else:  # VALIDEE_1 has no CDAR code: not written; NON_AGREE -> EMMET_INC, MARCHE -> REF_CT_ABSENT
        assert reported["op-sub"] == [(draft, "203", ""), (draft, "204", ""), (refused, "210", "EMMET_INC")]
        assert reported["op-moe"] == [(statement, "210", "REF_CT_ABSENT")]


def test_every_reason_the_platform_writes_in_a_circuit_reads_in_english_for_an_english_partner() -> None:
    from flows.domain.circuits import Deadlines, Turn
    from flows.domain.frameworks import Step
    from flows.domain.lifecycle import InvoiceStatus as S
    from flows.pipeline.deadlines import late_reason
    from flows.pipeline.status_changes import passed_reason
    from flows.returns.status import platform_reason
    from flows.store.circuits import REPLACED_REASON

    said = [passed_reason(Turn(s, "1", Step.RECIPIENT)) for s in (S.A_VALIDER_2, S.MISE_A_DISPOSITION_MOE,
            S.MISE_A_DISPOSITION_MOA, S.MISE_A_DISPOSITION)]  # fmt: skip
    said += [
        late_reason(s, Deadlines(validator_days=12, moe_days=9)) for s in (S.A_VALIDER_1, S.MISE_A_DISPOSITION_MOE)
    ]
    said.append(REPLACED_REASON.format(id="CPP0000000042-00001"))
    english = [platform_reason(r, "en") for r in said]
    assert all(e != r for e, r in zip(english, said, strict=True)), english
    assert "12 days" in english[4] and "9 days" in english[5] and "CPP0000000042-00001" in english[6]
    assert [platform_reason(r, "fr") for r in said] == said  # French partners read them as recorded
