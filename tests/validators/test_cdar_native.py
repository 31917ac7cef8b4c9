"""The native engine on the BR-FR-CDV schematron (CDAR) against Saxon, the oracle: the same findings (rule,
flag, location, message) on valid messages Relais writes and on messages mutated field by field."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from lxml import etree

from flows.domain import cdar as C
from flows.pipeline.cdar_out import CdarOut
from flows.returns import cdar as writer
from validators import cdar as check
from validators.native import NativeRunner

NS = writer.NSMAP
OUT = CdarOut(platform_id="9998", platform_name="Relais", partner_platform=lambda p: "0042")
DAY = dt.date(2026, 9, 1)
BUYER = C.Party("BY", "987654321", "0002")


def _line(status: str, code: str | None = None, **kw) -> C.StatusLine:
    return C.StatusLine(
        f"FA-{status}", status, invoice_issue_date=DAY, seller_siren="123456789", reason_code=code, **kw
    )


def _message(lines: list[C.StatusLine], issuer: C.Party | None = None) -> bytes:
    return writer.write(OUT.message("M-1", "pf", lines, issuer))


TRANSMISSION = _message([_line("200"), _line("213", "DOUBLON"), _line("203", buyer=BUYER), _line("201")])
PROCESSING = _message(
    [
        _line("210", "TX_TVA_ERR"),
        _line("207", "AUTRE", reason="texte libre"),
        _line("208", "JUSTIF_ABS", action_code="NIN"),
        _line("212", amounts=(C.Amount("MEN", Decimal("120"), Decimal("20")),)),
        _line("205"),
    ],
    BUYER,
)
REFUSED = _message([C.StatusLine("lot.zip", "501", reason_code="IRR_SYNTAX")])


def _set(path: str, value: str):
    def edit(root):
        for el in root.xpath(path, namespaces=NS):
            el.text = value

    return edit


def _drop(path: str):
    def edit(root):
        for el in root.xpath(path, namespaces=NS):
            el.getparent().remove(el)

    return edit


_REF = "//rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument"
_REF210 = "//ram:ReferenceReferencedDocument[ram:ProcessConditionCode='210']"
MUTATIONS = {
    "missing reason for 210": (PROCESSING, _drop(f"{_REF210}/ram:SpecifiedDocumentStatus/ram:ReasonCode")),
    "reason not allowed for 213": (
        TRANSMISSION,
        _set(f"{_REF}/ram:SpecifiedDocumentStatus/ram:ReasonCode", "JUSTIF_ABS"),
    ),
    "unknown reason": (PROCESSING, _set(f"{_REF210}/ram:SpecifiedDocumentStatus/ram:ReasonCode", "FOO")),
    "wrong acknowledgement TypeCode": (TRANSMISSION, _set("//rsm:AcknowledgementDocument/ram:TypeCode", "999")),
    "wrong invoice TypeCode": (TRANSMISSION, _set(f"{_REF}/ram:TypeCode", "999")),
    "missing SIREN": (PROCESSING, _drop(f"{_REF}/ram:IssuerTradeParty/ram:GlobalID")),
    "missing issue date": (TRANSMISSION, _drop(f"{_REF}/ram:FormattedIssueDateTime")),
    "missing sequence": (PROCESSING, _drop(f"{_REF}/ram:SpecifiedDocumentStatus/ram:SequenceNumeric")),
    "212 without rate": (PROCESSING, _drop("//ram:SpecifiedDocumentCharacteristic/ram:ValuePercent")),
    "unknown characteristic": (PROCESSING, _set("//ram:SpecifiedDocumentCharacteristic/ram:TypeCode", "XXX")),
    "unknown action": (PROCESSING, _set("//ram:RequestedActionCode", "ZZZ")),
    "wrong guideline": (TRANSMISSION, _set("//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID", "urn:x")),
    "wrong business process": (
        TRANSMISSION,
        _set("//ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID", "X"),
    ),
    "sender not WK for 305": (TRANSMISSION, _set("//rsm:ExchangedDocument/ram:SenderTradeParty/ram:RoleCode", "BY")),
    "issuer WK for 23": (PROCESSING, _set("//rsm:ExchangedDocument/ram:IssuerTradeParty/ram:RoleCode", "WK")),
    "issuer without id for 23": (PROCESSING, _drop("//rsm:ExchangedDocument/ram:IssuerTradeParty/ram:GlobalID")),
    "recipient SE without URI": (
        TRANSMISSION,
        _set("//rsm:ExchangedDocument/ram:RecipientTradeParty/ram:RoleCode", "SE"),
    ),
    "recipient role unknown": (
        TRANSMISSION,
        _set("//rsm:ExchangedDocument/ram:RecipientTradeParty/ram:RoleCode", "ZZ"),
    ),
    "seller role not SE": (TRANSMISSION, _set(f"{_REF}/ram:IssuerTradeParty/ram:RoleCode", "BY")),
    "unknown status": (TRANSMISSION, _set(f"{_REF}/ram:ProcessConditionCode", "777")),
    "501 with a 213 reason": (REFUSED, _set("//ram:ReasonCode", "DOUBLON")),
    "501 without reason": (REFUSED, _drop("//ram:ReasonCode")),
    "200 with a reason other than NON_TRANSMISE": (TRANSMISSION, lambda root: _reason_200(root, "DOUBLON")),
}


def _reason_200(root, code: str) -> None:
    status = root.xpath(f"{_REF}[ram:ProcessConditionCode='200']/ram:SpecifiedDocumentStatus", namespaces=NS)[0]
    reason = etree.Element(f"{{{C.RAM}}}ReasonCode")
    reason.text = code
    status.insert(0, reason)


def _mutate(data: bytes, edit) -> bytes:
    root = etree.fromstring(data)
    edit(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@pytest.fixture(scope="module")
def native():
    return NativeRunner()


def test_the_native_engine_compiles_every_br_fr_cdv_assert(native):
    assert native.fallback_uids(check.ruleset()) == []
    assert len(native.assert_uids(check.ruleset())) == 42


@pytest.mark.parametrize("data", [TRANSMISSION, PROCESSING, REFUSED], ids=["305", "23", "501"])
def test_valid_messages_pass_on_both_engines(data, native):
    assert check.check(data, runner=check.saxon()) == [] == check.check(data, runner=native)


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_mutated_messages_get_the_same_findings(name, native):
    base, edit = MUTATIONS[name]
    data = _mutate(base, edit)
    oracle = check.check(data, runner=check.saxon())
    mine = check.check(data, runner=native)
    assert [(e.rule, e.flag, e.location, e.message) for e in mine] == [
        (e.rule, e.flag, e.location, e.message) for e in oracle
    ]
    everything = check.saxon().run(check.ruleset(), data)  # warnings included, even where the XSD refuses it
    assert [(e.rule, e.flag, e.location, e.message) for e in native.run(check.ruleset(), data)] == [
        (e.rule, e.flag, e.location, e.message) for e in everything
    ]
    assert oracle or everything, f"{name}: the mutation should break a rule"
