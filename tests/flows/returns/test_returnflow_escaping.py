"""Return-flow escaping, as properties (hypothesis): any text in a finding, a file name or a reason.

Whatever a sender's file puts in a finding's message or location, in its own name or its entries'
names (control characters, ``<&>"'``, astral characters, and lone surrogates, which file names read
with ``surrogateescape`` can hold), and whatever a recipient writes as a reason: the integration report
(flows/returns/report.py) and the status return flow (flows/returns/status.py) are well-formed, valid
against schemas/xsd/relais-cppstatut.xsd, read by Relais's own parser, and carry the text back as it
was, but for the characters XML 1.0 cannot hold, which become U+FFFD (report.py's documented
replacement).
"""

from __future__ import annotations

import datetime as dt

from hypothesis import example, given
from hypothesis import strategies as st
from lxml import etree

from flows.domain.history import HistoryEntry, Source
from flows.domain.lifecycle import Actor, FlowStatus, InvoiceStatus
from flows.domain.model import Channel, Flag, Flow, FlowCode, Invoice, ValidationError, invoice_id
from flows.domain.rule import XSD
from flows.io import safexml
from flows.returns import report, status
from tests.support.fuzzing import bounded

AT = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
HOSTILE = "\x00\x01\x08\x0b\x0c\x1f\x7f\x85\r\n\t <&>\"']]>&amp;\ud800\udcff\udfff\ufffe\uffff\U0001f600\U00010000"
# Any code point (surrogates included), biased towards the ones that need care.
TEXT = st.text(
    st.one_of(
        st.characters(),
        st.sampled_from(HOSTILE),
        st.characters(min_codepoint=0x10000),  # astral
        st.characters(categories=["Cs", "Cc"]),  # lone surrogates, control characters
    ),
    max_size=80,
)


def xml_kept(text: str) -> str:
    """`text` as XML 1.0 can carry it (the Char production): anything else becomes U+FFFD."""

    def ok(c: str) -> bool:
        n = ord(c)
        return c in "\t\n\r" or 0x20 <= n <= 0xD7FF or 0xE000 <= n <= 0xFFFD or n >= 0x10000

    return "".join(c if ok(c) else "\ufffd" for c in text)


def _text(root: etree._Element, path: str) -> list[str]:
    return [e.text or "" for e in root.iterfind(path)]


def _label(message: str) -> str:
    head = message.split(": ", 1)[0].rstrip()
    return head if len(head) <= 120 else head[:119] + "…"


@given(name=TEXT, entry=TEXT, message=TEXT, location=TEXT, detail=TEXT, language=st.sampled_from(["fr", "en"]))
@bounded(120)
@example(name=HOSTILE, entry=HOSTILE, message=HOSTILE, location=HOSTILE, detail=HOSTILE, language="fr")
@example(name="a\r\nb", entry=" x ", message="  ", location="", detail="\r", language="en")
def test_any_text_in_a_report_comes_back(name, entry, message, location, detail, language) -> None:
    flow = Flow(
        id="CPP20260302000001",
        partner="OPERATEUR-42",
        channel=Channel.FOLDER,
        original_name=name,
        size=1,
        sha256="3f" * 32,
        status=FlowStatus.IN_INTEGRE_PARTIEL,
        flow_code=FlowCode.E1_UBL,
        received_at=AT,
        updated_at=AT,
        invoice_count=2,
        rejected_count=1,
    )
    foreign = ValidationError("XX-TEST", Flag.FATAL, location, message)  # a code Relais does not define
    relais_rule = XSD.error(location, detail)  # a Relais rule: its message, then the recorded specifics
    invoices = [
        Invoice(id=invoice_id(flow.id, 1), flow_id=flow.id, position=1, entry_name=entry, errors=[foreign]),
        Invoice(id=invoice_id(flow.id, 2), flow_id=flow.id, position=2, entry_name=entry + "2"),
    ]
    data = report.build(flow, [relais_rule, foreign], iter(invoices), produced_at=AT, language=language)
    root = safexml.parse(data).getroot()  # report.build validated it against the schema already
    report.validate(data)

    assert _text(root, "Enveloppe/EnveloppeUnitaire/Parametres/NomFichier") == [xml_kept(name)]
    assert _text(root, "CPPFactureStatuts/CPPFactureStatut/NomEntree") == [xml_kept(entry), xml_kept(entry + "2")]
    lines = root.findall(".//LigneErreurDetail")
    assert [line.findtext("Localisation") or "" for line in lines] == [xml_kept(location)] * 3
    assert [line.findtext("CodeErreur") for line in lines] == ["XSD", "XX-TEST", "XX-TEST"]
    foreign_lines = lines[1:]
    assert [line.findtext("LibelleErreur") or "" for line in foreign_lines] == [xml_kept(_label(message))] * 2
    described = [line.findtext("DescriptionErreur") or "" for line in foreign_lines]
    assert described == [xml_kept(message)] * 2  # a code Relais does not define: its message verbatim
    motifs = _text(root, "CPPFactureStatuts/CPPFactureStatut/DonneesStatut/Motif")
    assert motifs == ([xml_kept(message)] if message else [])  # the first fatal finding's message
    if language == "en":  # in English, a Relais rule's finding is its recorded message as it is
        assert (lines[0].findtext("DescriptionErreur") or "") == xml_kept(relais_rule.message)


@given(reason=TEXT, entry=TEXT, number=TEXT, vocabulary=st.just("cpp"))  # cdar: CDAR messages (test_cdar_writer.py)
@bounded(80)
@example(reason=HOSTILE, entry=HOSTILE, number=HOSTILE, vocabulary="cpp")
def test_any_reason_in_a_status_return_flow_comes_back(reason, entry, number, vocabulary) -> None:
    invoice = Invoice(
        id="CPP20260302000001-00001",
        flow_id="CPP20260302000001",
        position=1,
        entry_name=entry,
        number=number,
        status=InvoiceStatus.REJETEE,
    )
    change = status.Change(
        HistoryEntry(
            id=7,
            invoice_id=invoice.id,
            partner="OPERATEUR-42",
            status=InvoiceStatus.REJETEE,
            previous=InvoiceStatus.MISE_A_DISPOSITION,
            actor=Actor.RECIPIENT,
            source=Source.API,
            reason=reason,
            at=AT,
        ),
        invoice,
    )
    data, count = status.build("ST20260302000001", "OPERATEUR-42", [change], vocabulary=vocabulary, produced_at=AT)
    assert count == 1
    root = safexml.parse(data).getroot()
    report.validate(data)
    [element] = root.iterfind("CPPFactureStatuts/CPPFactureStatut")
    assert (element.findtext("NomEntree") or "") == xml_kept(entry)
    assert (element.findtext("NumeroFacture") or "") == (xml_kept(number) if number else "")
    assert (element.findtext("DonneesStatut/Motif") or "") == (xml_kept(reason) if reason else "")
