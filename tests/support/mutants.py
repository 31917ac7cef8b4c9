"""Deterministic mutants of real and generated invoices, for differential tests of the rule engines.

`mutants(corpus)` yields at least 2,000 `Mutant` documents (seeded: the same
list, in the same order, on every run), each a well-formed XML document and
labelled with what was done to which base document. The bases are

- invoices Relais generates itself (`relais.generate`): UBL invoices and credit
  notes, plain CII, and the same CII claiming each Factur-X profile (the
  generator writes the EN 16931 guideline; the other profiles only get their
  guideline id, so their rules see a document richer than the profile);
- the example invoices of the public corpus (`corpus_documents`): the CEN
  EN 16931 examples, the XRechnung test-suite instances and the CII embedded
  in each Factur-X PDF.

Two families of mutations:

generic
    every distinct element path of the base (repeated lines counted once) and
    every attribute gets operators chosen by the kind of its value: removal,
    emptied, whitespace only, non-breaking space, leading/trailing spaces,
    duplicated; numbers +0.01, negated, 0, huge, many decimals, ``1e3``,
    ``abc``, half-cent (x.xx5); codes changed to unknown or to other valid
    codes; dates invalid, earlier, later; attributes (schemeID, currencyID,
    unitCode, ...) removed or changed. A seeded sample of the (path, operator)
    pairs is taken per base.
targeted
    (generated bases, whose structure is known) every VAT category S, E, AE, K,
    G, O, Z, L, M with consistent and inconsistent rates, amounts, exemption
    reasons and VAT identifiers; mixed categories; document-level allowances
    and charges (with/without reason, code, category) with totals recomputed
    or left off; line allowances/charges; invoice periods; preceding
    invoices; rounding at half-cent boundaries; currency changes with or
    without a VAT accounting currency; and a few shapes for rules the generic
    operators leave unseen.

Nothing here judges anything: see tests/validators/test_native_differential.py.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import random
import re
from collections.abc import Callable, Iterable, Iterator
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from lxml import etree

NS = {
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
}
CBC = f"{{{NS['cbc']}}}"
CAC = f"{{{NS['cac']}}}"
RAM = f"{{{NS['ram']}}}"
UDT = f"{{{NS['udt']}}}"
QDT = f"{{{NS['qdt']}}}"

SEED = 16931
#: Factur-X profile -> the guideline id (BT-24) a CII document of that profile carries.
FACTURX_GUIDELINES = {
    "minimum": "urn:factur-x.eu:1p0:minimum",
    "basicwl": "urn:factur-x.eu:1p0:basicwl",
    "basic": "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic",
    "en16931": "urn:cen.eu:en16931:2017",
    "extended": "urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended",
}


@dataclasses.dataclass(frozen=True)
class Document:
    """One invoice XML to judge: `syntax` "ubl" or "cii"; `profile` a Factur-X profile (embedded in a PDF or
    claimed by a generated CII), "xrechnung" for an XRechnung embedded in a PDF, None for plain XML."""

    name: str
    syntax: str
    profile: str | None
    french: bool
    xml: bytes


@dataclasses.dataclass(frozen=True)
class Mutant(Document):
    base: str = ""
    label: str = ""  # what was done


# ---- base documents -------------------------------------------------------------------------------


def _bytes(root: etree._Element) -> bytes:
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")


@functools.cache
def generated_documents() -> tuple[Document, ...]:
    """Invoices of `relais.generate`: UBL invoice / credit note, CII, CII of each Factur-X profile."""
    from relais import generate as gen

    recipients = gen.sample_directory()
    docs: list[Document] = []
    for lines, seed, credit in ((1, 1, False), (3, 2, False), (2, 4, True), (5, 3, False)):
        spec = next(gen.plan(1, lines, recipients, seed=seed, credit_note_ratio=1.0 if credit else 0.0))
        kind = "cn" if credit else "inv"
        ubl, cii = gen.invoice_xml("ubl", spec), gen.invoice_xml("cii", spec)
        # French content, but BR-FR is run only on the -fr- variants, which also satisfy it
        docs.append(Document(f"gen:ubl-{kind}:{lines}l:s{seed}", "ubl", None, False, ubl))
        docs.append(Document(f"gen:cii-{kind}:{lines}l:s{seed}", "cii", None, False, cii))
        docs.append(Document(f"gen:ubl-fr-{kind}:{lines}l:s{seed}", "ubl", None, True, _french_ubl(ubl)))
        docs.append(Document(f"gen:cii-fr-{kind}:{lines}l:s{seed}", "cii", None, True, _french_cii(cii)))
        if lines <= 3:
            for profile, guideline in FACTURX_GUIDELINES.items():
                root = etree.fromstring(cii)
                _first(root, "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID").text = guideline
                name = f"gen:fx-{profile}-{kind}:{lines}l:s{seed}"
                docs.append(Document(name, "cii", profile, False, _bytes(root)))
    return tuple(docs)


_FR_NOTES = (
    ("PMT", "Indemnité forfaitaire pour frais de recouvrement : 40 EUR"),
    ("PMD", "Pénalités de retard : trois fois le taux d'intérêt légal"),
    ("AAB", "Pas d'escompte pour paiement anticipé"),
)


def _french_ubl(xml: bytes) -> bytes:
    """A generated UBL invoice that also satisfies the French BR-FR rules (notes, billing mode, SIREN)."""
    root = etree.fromstring(xml)
    cid = root.find(f"{CBC}CustomizationID")
    cid.addnext(_el(f"{CBC}ProfileID", "B1"))
    anchor = root.find(f"{CBC}DocumentCurrencyCode")
    for code, text in _FR_NOTES:
        anchor.addprevious(_el(f"{CBC}Note", f"#{code}#{text}"))
    for party in _all(root, "cac:AccountingSupplierParty/cac:Party | cac:AccountingCustomerParty/cac:Party"):
        legal = party.find(f"{CAC}PartyLegalEntity/{CBC}CompanyID")
        siret = party.find(f"{CAC}PartyIdentification/{CBC}ID")
        if legal is not None:
            legal.text, legal.attrib["schemeID"] = (siret.text if siret is not None else legal.text)[:9], "0002"
    return _bytes(root)


def _french_cii(xml: bytes) -> bytes:
    """A generated CII invoice that also satisfies the French BR-FR rules (notes, billing mode, SIREN)."""
    root = etree.fromstring(xml)
    ctx = _first(root, "rsm:ExchangedDocumentContext")
    bp = _el(f"{RAM}BusinessProcessSpecifiedDocumentContextParameter")
    _sub(bp, f"{RAM}ID", "B1")
    ctx.insert(0, bp)
    doc = _first(root, "rsm:ExchangedDocument")
    for code, text in _FR_NOTES:
        note = _sub(doc, f"{RAM}IncludedNote")
        _sub(note, f"{RAM}Content", text)
        _sub(note, f"{RAM}SubjectCode", code)
    for party in _all(root, "//ram:SellerTradeParty | //ram:BuyerTradeParty"):
        legal = party.find(f"{RAM}SpecifiedLegalOrganization/{RAM}ID")
        gid = party.find(f"{RAM}GlobalID")
        if legal is not None:
            legal.text = (gid.text if gid is not None else legal.text)[:9]
            legal.set("schemeID", "0002")
    return _bytes(root)


_FRENCH = re.compile(r"(^|/)(Facture_FR|Avoir_FR)|FNFE|python-factur-x", re.I)


@functools.cache
def corpus_documents(corpus: Path) -> tuple[Document, ...]:
    """Every XML invoice of the corpus and the invoice XML embedded in each readable Factur-X PDF."""
    from flows.domain.errors import Rejected
    from flows.domain.model import Container, Syntax
    from flows.io import detect
    from validators.document import facturx_profile

    docs: list[Document] = []
    for folder in ("en16931-examples", "xrechnung"):
        for path in sorted((corpus / folder).rglob("*")):
            if not path.is_file() or path.suffix.lower() != ".xml":
                continue
            data = path.read_bytes()
            try:
                syntax = detect.xml_syntax(data)
            except Rejected:
                continue
            rel = str(path.relative_to(corpus))
            kind = "cii" if syntax is Syntax.CII else "ubl"
            docs.append(Document(rel, kind, None, False, data))
    for path in sorted((corpus / "facturx").rglob("*.pdf")):
        rel = str(path.relative_to(corpus))
        try:
            found = detect.detect(Container.PDF, path.read_bytes())
        except Rejected:
            continue  # ZUGFeRD 1.0, malformed embedded XML: nothing for the business rules
        tree = etree.fromstring(found.xml).getroottree()
        profile = facturx_profile(tree) or "en16931"
        docs.append(Document(rel, "cii", profile, bool(_FRENCH.search(rel)), found.xml))
    return tuple(docs)


# ---- helpers ----------------------------------------------------------------------------------------


def _first(root: etree._Element, xpath: str) -> etree._Element:
    return root.xpath(xpath, namespaces=NS)[0]


def _all(root: etree._Element, xpath: str) -> list:
    return root.xpath(xpath, namespaces=NS)


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    el = etree.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


def _insert_after(anchor: etree._Element, el: etree._Element) -> etree._Element:
    anchor.addnext(el)
    return el


def _el(tag: str, text: str | None = None, children: list[etree._Element] | None = None, **attrib: str):
    el = etree.Element(tag, attrib)
    if text is not None:
        el.text = text
    for c in children or []:
        el.append(c)
    return el


def _dec(text: str | None) -> Decimal | None:
    try:
        return Decimal((text or "").strip())
    except InvalidOperation:
        return None


def _money(d: Decimal) -> str:
    return str(d.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _local(tag: str) -> str:
    return etree.QName(tag).localname


def _path(el: etree._Element) -> str:
    """Index-free path of an element: the same field of every line is one path."""
    parts = []
    while el is not None:
        parts.append(_local(el.tag))
        el = el.getparent()
    return "/".join(reversed(parts))


# ---- generic operators --------------------------------------------------------------------------------

_NUMBER = re.compile(r"^\s*-?\d+(\.\d+)?\s*$")
_DATE_UBL = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_CII = re.compile(r"^\d{8}$")
_CODE = re.compile(r"^[A-Z0-9][A-Z0-9:._-]{0,5}$")

#: other valid values (and a few invalid ones) of well-known coded elements, by local name
CODES: dict[str, tuple[str, ...]] = {
    "DocumentCurrencyCode": ("USD", "GBP", "CHF", "SEK", "EUR", "EURO", "eur"),
    "TaxCurrencyCode": ("EUR", "USD", "GBP", "XXX"),
    "InvoiceCurrencyCode": ("USD", "GBP", "CHF", "SEK", "EUR", "EURO", "eur"),
    "TaxCurrencyCode_cii": ("EUR", "USD"),
    "IdentificationCode": ("DE", "IT", "GR", "EL", "XI", "FR", "NO", "XX", "fr"),
    "CountryID": ("DE", "IT", "GR", "EL", "XI", "FR", "NO", "XX", "fr"),
    "InvoiceTypeCode": ("380", "381", "384", "389", "751", "326", "386", "393", "875", "261", "262", "71", "999"),
    "CreditNoteTypeCode": ("381", "380", "396", "532", "261", "262", "308", "999"),
    "TypeCode": ("380", "381", "384", "389", "751", "VAT", "30", "58", "49", "916", "130", "50", "999", "ZZZ"),
    "PaymentMeansCode": ("1", "10", "30", "31", "42", "48", "49", "54", "55", "57", "58", "59", "97", "ZZZ", "999"),
    "ID_tax": ("S", "E", "AE", "K", "G", "O", "Z", "L", "M", "Q", "B"),
    "CategoryCode": ("S", "E", "AE", "K", "G", "O", "Z", "L", "M", "Q", "B"),
    "TaxExemptionReasonCode": (
        "VATEX-EU-AE",
        "VATEX-EU-IC",
        "VATEX-EU-G",
        "VATEX-EU-O",
        "VATEX-EU-79-C",
        "VATEX-FR-FRANCHISE",
        "VATEX-EU-132-1A",
        "VATEX-XX",
    ),
    "ExemptionReasonCode": (
        "VATEX-EU-AE",
        "VATEX-EU-IC",
        "VATEX-EU-G",
        "VATEX-EU-O",
        "VATEX-EU-79-C",
        "VATEX-FR-FRANCHISE",
        "VATEX-XX",
    ),
    "AllowanceChargeReasonCode": ("95", "100", "41", "60", "FC", "ABL", "AA", "ZZZ", "999"),
    "ReasonCode": ("95", "100", "41", "60", "FC", "ABL", "AA", "ZZZ", "999"),
    "TaxPointDate": (),
    "DescriptionCode": ("3", "35", "432", "5", "29", "72", "999"),
    "DueDateTypeCode": ("5", "29", "72", "999"),
    "SubjectCode": ("AAI", "PMT", "REG", "ABL", "AAB", "PMD", "ZZZ"),
    "ItemClassificationCode": ("12345", ""),
    "InvoicedQuantity": (),
    "ChargeIndicator": ("true", "false", "TRUE", "1", "yes"),
    "ChargeIndicator_cii": ("true", "false"),
}
ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "currencyID": ("USD", "GBP", "EUR", "EURO", ""),
    "unitCode": ("C62", "H87", "EA", "HUR", "KGM", "XPP", "ZZZ", ""),
    "schemeID": ("0002", "0009", "0088", "0225", "9957", "0204", "EM", "VA", "SEPA", "0000", "ZZZ", ""),
    "listID": ("STI", "CPV", "UNSPSC", "ZZZ", ""),
    "mimeCode": ("application/pdf", "image/png", "text/csv", "text/plain", ""),
    "format": ("102", "610", "616", "203", "999", ""),
    "unitCodeListID": ("UNECERec20", "ZZZ"),
    "listAgencyID": ("6", "ZZZ"),
}

Op = Callable[[etree._Element], bool]


def _value_kind(el: etree._Element) -> str:
    text = (el.text or "").strip()
    name = _local(el.tag)
    if len(el) and any(isinstance(c.tag, str) for c in el):
        return "aggregate"
    if _DATE_UBL.match(text) or (name == "DateTimeString") or (_DATE_CII.match(text) and "Date" in _path(el)):
        return "date"
    if name in CODES or (name == "ID" and _local(el.getparent().tag) in ("TaxCategory", "ClassifiedTaxCategory")):
        return "code"
    if _NUMBER.match(text):
        return "number"
    if _CODE.match(text):
        return "code"
    return "text"


def _set_text(value: str) -> Op:
    def op(el: etree._Element) -> bool:
        if el.text == value:
            return False
        el.text = value
        return True

    return op


def _number_op(fn: Callable[[Decimal], str]) -> Op:
    def op(el: etree._Element) -> bool:
        d = _dec(el.text)
        if d is None:
            return False
        new = fn(d)
        if new == el.text:
            return False
        el.text = new
        return True

    return op


def _date_op(days: int) -> Op:
    import datetime as dt

    def op(el: etree._Element) -> bool:
        text = (el.text or "").strip()
        try:
            if _DATE_UBL.match(text):
                d = dt.date.fromisoformat(text) + dt.timedelta(days=days)
                el.text = d.isoformat()
            elif _DATE_CII.match(text):
                d = dt.date(int(text[:4]), int(text[4:6]), int(text[6:])) + dt.timedelta(days=days)
                el.text = d.strftime("%Y%m%d")
            else:
                return False
        except ValueError:
            return False
        return True

    return op


def _invalid_date(el: etree._Element) -> bool:
    text = (el.text or "").strip()
    if _DATE_UBL.match(text):
        el.text = text[:5] + "02-30"
    elif _DATE_CII.match(text):
        el.text = text[:4] + "0230"
    else:
        return False
    return True


def _remove(el: etree._Element) -> bool:
    parent = el.getparent()
    if parent is None:
        return False
    parent.remove(el)
    return True


def _duplicate(el: etree._Element) -> bool:
    if el.getparent() is None:
        return False
    el.addnext(copy.deepcopy(el))
    return True


def _empty_children(el: etree._Element) -> bool:
    if not len(el):
        return False
    for c in list(el):
        el.remove(c)
    return True


COMMON_LEAF_OPS: dict[str, Op] = {
    "remove": _remove,
    "empty": _set_text(""),
    "blank": _set_text("   "),
    "nbsp": _set_text("\u00a0"),
    "duplicate": _duplicate,
}
TEXT_OPS: dict[str, Op] = {
    "pad": lambda el: bool(el.text) and _set_text(f"  {el.text}  ")(el),
    "nbsp-pad": lambda el: bool(el.text) and _set_text(f"\u00a0{el.text}\u00a0")(el),
    "long": lambda el: _set_text((el.text or "x") * 12 + "-1234567890-ABCDEFGHIJ")(el),
    "odd-chars": _set_text("A/B\\C;#&<> é€"),
    "number-text": _set_text("12"),
}
NUMBER_OPS: dict[str, Op] = {
    "plus-cent": _number_op(lambda d: _money(d + Decimal("0.01"))),
    "minus-cent": _number_op(lambda d: _money(d - Decimal("0.01"))),
    "negate": _number_op(lambda d: str(-d) if d else "-1.00"),
    "zero": _set_text("0"),
    "zero-decimals": _set_text("0.00"),
    "huge": _set_text("999999999999.99"),
    "many-decimals": _number_op(lambda d: f"{d.quantize(Decimal('0.01'))}123456"),
    "three-decimals": _number_op(lambda d: f"{d.quantize(Decimal('0.01'))}1"),
    "half-cent": _number_op(lambda d: f"{d.quantize(Decimal('0.01'))}5"),
    "exponent": _set_text("1e3"),
    "abc": _set_text("abc"),
    "pad-number": lambda el: bool(el.text) and _set_text(f" {el.text.strip()} ")(el),
    "plus-sign": lambda el: bool(el.text) and _set_text(f"+{el.text.strip()}")(el),
    "double": _number_op(lambda d: _money(d * 2)),
    "long-number": _set_text("1234567890123456789012345678901234567890"),
    "hundred": _set_text("100"),
}
DATE_OPS: dict[str, Op] = {
    "invalid-date": _invalid_date,
    "earlier-year": _date_op(-400),
    "later-year": _date_op(400),
    "next-day": _date_op(1),
    "far-past": _set_text("1999-12-31"),
    "far-future": _set_text("2101-01-01"),
    "iso-in-cii": _set_text("2026-01-05"),
    "compact": _set_text("20260105"),
    "garbage-date": _set_text("05/01/2026"),
}
CODE_OPS: dict[str, Op] = {
    "unknown-code": _set_text("ZZZ9"),
    "lowercase": lambda el: bool(el.text) and _set_text(el.text.lower())(el),
    "pad-code": lambda el: bool(el.text) and _set_text(f" {el.text.strip()} ")(el),
}
AGGREGATE_OPS: dict[str, Op] = {
    "remove": _remove,
    "duplicate": _duplicate,
    "empty-aggregate": _empty_children,
}


def _other_codes(el: etree._Element) -> dict[str, Op]:
    name = _local(el.tag)
    if name == "ID" and _local(el.getparent().tag) in ("TaxCategory", "ClassifiedTaxCategory"):
        name = "ID_tax"
    if name == "ID" and _local(el.getparent().tag) == "TaxScheme":
        return {"code=GST": _set_text("GST"), "code=vat": _set_text("vat")}
    values = CODES.get(name, ())
    return {f"code={v}": _set_text(v) for v in values if v != (el.text or "")}


def _ops_for(el: etree._Element) -> dict[str, Op]:
    kind = _value_kind(el)
    if kind == "aggregate":
        return dict(AGGREGATE_OPS)
    ops = dict(COMMON_LEAF_OPS)
    ops.update({"number": NUMBER_OPS, "date": DATE_OPS, "code": CODE_OPS, "text": TEXT_OPS}[kind])
    if kind == "code":
        ops.update(_other_codes(el))
    if kind == "text" and (el.text or "").strip().isdigit():
        ops.update(NUMBER_OPS)
    return ops


def _attr_ops(name: str) -> dict[str, Callable[[etree._Element, str], bool]]:
    def remove(el: etree._Element, attr: str) -> bool:
        del el.attrib[attr]
        return True

    def setter(value: str) -> Callable[[etree._Element, str], bool]:
        def op(el: etree._Element, attr: str) -> bool:
            if el.get(attr) == value:
                return False
            el.set(attr, value)
            return True

        return op

    ops: dict[str, Callable[[etree._Element, str], bool]] = {"remove": remove, "unknown": setter("ZZZ9")}
    for v in ATTRIBUTE_VALUES.get(name, ("", " ")):
        ops[f"={v}"] = setter(v)
    return ops


@dataclasses.dataclass(frozen=True)
class _Site:
    path: str  # index-free path (+ "@attr")
    nth: int  # which occurrence of that path in the base, as chosen
    op: str


def _sites(root: etree._Element, rng: random.Random) -> list[tuple[str, int, str, str | None]]:
    """(path, occurrence, operator, attribute) for every distinct element and attribute path of `root`."""
    occurrences: dict[str, list[etree._Element]] = {}
    for el in root.iter():
        if not isinstance(el.tag, str) or el is root:
            continue
        occurrences.setdefault(_path(el), []).append(el)
    out = []
    for path, els in occurrences.items():
        nth = 0 if len(els) == 1 or rng.random() < 0.6 else rng.randrange(len(els))
        el = els[nth]
        for op in _ops_for(el):
            out.append((path, nth, op, None))
        for attr in el.attrib:
            for op in _attr_ops(etree.QName(attr).localname):
                out.append((path, nth, op, attr))
    return out


def _apply_site(root: etree._Element, path: str, nth: int, op: str, attr: str | None) -> bool:
    els = [el for el in root.iter() if isinstance(el.tag, str) and el is not root and _path(el) == path]
    if nth >= len(els):
        return False
    el = els[nth]
    if attr is not None:
        if attr not in el.attrib:
            return False
        return _attr_ops(etree.QName(attr).localname)[op](el, attr)
    ops = _ops_for(el)
    return op in ops and bool(ops[op](el))


def generic_mutants(base: Document, count: int, seed: int = SEED) -> Iterator[Mutant]:
    """`count` seeded (path, operator) mutants of `base`, all distinct."""
    rng = random.Random(f"{seed}:{base.name}")
    root0 = etree.fromstring(base.xml)
    sites = _sites(root0, rng)
    rng.shuffle(sites)
    made = 0
    for path, nth, op, attr in sites:
        if made >= count:
            break
        root = copy.deepcopy(root0)
        if not _apply_site(root, path, nth, op, attr):
            continue
        made += 1
        where = f"{path}[{nth}]" + (f"/@{etree.QName(attr).localname}" if attr else "")
        yield _mutant(base, root, f"{op} {where}")


def mutants_of(
    base: Document, mutations: Iterable[tuple[str, Callable[[etree._Element], bool | None]]]
) -> Iterator[Mutant]:
    """One mutant of `base` per (label, mutation), each on a fresh copy of its tree; a mutation that returns
    False (it found nothing to change) gives none."""
    root0 = etree.fromstring(base.xml)
    for label, mutate in mutations:
        root = copy.deepcopy(root0)
        if mutate(root) is not False:
            yield _mutant(base, root, label)


def _mutant(base: Document, root: etree._Element, label: str) -> Mutant:
    return Mutant(
        name=f"{base.name} | {label}",
        syntax=base.syntax,
        profile=base.profile,
        french=base.french,
        xml=_bytes(root),
        base=base.name,
        label=label,
    )


# ---- targeted mutations of generated UBL ------------------------------------------------------------------

ZERO_RATED = {"E", "AE", "K", "G", "O", "Z"}
EXEMPTION = {
    "E": ("VATEX-EU-132-1A", "Exonération article 261 du CGI"),
    "AE": ("VATEX-EU-AE", "Autoliquidation"),
    "K": ("VATEX-EU-IC", "Livraison intracommunautaire"),
    "G": ("VATEX-EU-G", "Export hors UE"),
    "O": ("VATEX-EU-O", "Hors champ de la TVA"),
}
RATES = {"S": "20", "L": "7", "M": "9.5"}


@dataclasses.dataclass
class _Ac:
    charge: bool
    amount: Decimal
    category: str
    rate: str | None
    reason: str | None = "Remise"
    code: str | None = "95"


class _Ubl:
    """Structure of a generated UBL invoice / credit note, to rebuild consistent variants."""

    def __init__(self, root: etree._Element) -> None:
        self.root = root
        self.line_tag = CAC + ("CreditNoteLine" if _local(root.tag) == "CreditNote" else "InvoiceLine")
        self.cur = _first(root, "cbc:DocumentCurrencyCode").text

    def lines(self) -> list[etree._Element]:
        return self.root.findall(self.line_tag)

    def set_line_id(self, line: etree._Element, value: str) -> None:
        line.find(f"{CBC}ID").text = value

    def set_line_category(self, line: etree._Element, cat: str, rate: str | None) -> None:
        tc = line.find(f"{CAC}Item/{CAC}ClassifiedTaxCategory")
        tc.find(f"{CBC}ID").text = cat
        pct = tc.find(f"{CBC}Percent")
        if rate is None and pct is not None:
            tc.remove(pct)
        elif rate is not None:
            if pct is None:
                pct = etree.Element(f"{CBC}Percent")
                tc.find(f"{CBC}ID").addnext(pct)
            pct.text = rate

    def rebuild(
        self,
        acs: list[_Ac] = (),
        reasons: bool = True,
        rate_in_header: bool = True,
        off: dict[str, Decimal] | None = None,
    ) -> None:
        """Tax subtotals, document allowances/charges and totals consistent with the lines and `acs`."""
        off = off or {}
        root, cur = self.root, self.cur
        for old in root.findall(f"{CAC}AllowanceCharge"):
            root.remove(old)
        groups: dict[tuple[str, str | None], Decimal] = {}
        line_sum = Decimal(0)
        for line in self.lines():
            amount = _dec(line.find(f"{CBC}LineExtensionAmount").text) or Decimal(0)
            tc = line.find(f"{CAC}Item/{CAC}ClassifiedTaxCategory")
            pct = tc.find(f"{CBC}Percent")
            key = (tc.find(f"{CBC}ID").text, pct.text if pct is not None else None)
            groups[key] = groups.get(key, Decimal(0)) + amount
            line_sum += amount
        allowances = charges = Decimal(0)
        anchor = root.find(f"{CAC}TaxTotal")
        for ac in acs:
            el = _el(f"{CAC}AllowanceCharge")
            _sub(el, f"{CBC}ChargeIndicator", "true" if ac.charge else "false")
            if ac.code:
                _sub(el, f"{CBC}AllowanceChargeReasonCode", ac.code)
            if ac.reason:
                _sub(el, f"{CBC}AllowanceChargeReason", ac.reason)
            _sub(el, f"{CBC}Amount", _money(ac.amount), currencyID=cur)
            tc = _sub(el, f"{CAC}TaxCategory")
            _sub(tc, f"{CBC}ID", ac.category)
            if ac.rate is not None:
                _sub(tc, f"{CBC}Percent", ac.rate)
            _sub(_sub(tc, f"{CAC}TaxScheme"), f"{CBC}ID", "VAT")
            anchor.addprevious(el)
            key = (ac.category, ac.rate)
            groups[key] = groups.get(key, Decimal(0)) + (ac.amount if ac.charge else -ac.amount)
            if ac.charge:
                charges += ac.amount
            else:
                allowances += ac.amount
        total = root.find(f"{CAC}TaxTotal")
        for st in total.findall(f"{CAC}TaxSubtotal"):
            total.remove(st)
        vat = Decimal(0)
        for (cat, rate), basis in groups.items():
            tax = (basis * Decimal(rate or 0) / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
            vat += tax
            st = _sub(total, f"{CAC}TaxSubtotal")
            _sub(st, f"{CBC}TaxableAmount", _money(basis + off.get(f"basis-{cat}", 0)), currencyID=cur)
            _sub(st, f"{CBC}TaxAmount", _money(tax + off.get(f"tax-{cat}", 0)), currencyID=cur)
            tc = _sub(st, f"{CAC}TaxCategory")
            _sub(tc, f"{CBC}ID", cat)
            if rate is not None and rate_in_header:
                _sub(tc, f"{CBC}Percent", rate)
            if reasons == "force" or (reasons and cat in EXEMPTION):
                code, text = EXEMPTION.get(cat, ("VATEX-EU-O", "Exonération"))
                code = "VATEX-XX" if reasons == "bogus" else code
                _sub(tc, f"{CBC}TaxExemptionReasonCode", code)
                _sub(tc, f"{CBC}TaxExemptionReason", text)
            _sub(_sub(tc, f"{CAC}TaxScheme"), f"{CBC}ID", "VAT")
        total.find(f"{CBC}TaxAmount").text = _money(vat + off.get("vat", 0))
        lmt = root.find(f"{CAC}LegalMonetaryTotal")
        for child in list(lmt):
            lmt.remove(child)
        excl = line_sum - allowances + charges
        _sub(lmt, f"{CBC}LineExtensionAmount", _money(line_sum + off.get("lines", 0)), currencyID=cur)
        _sub(lmt, f"{CBC}TaxExclusiveAmount", _money(excl + off.get("excl", 0)), currencyID=cur)
        _sub(lmt, f"{CBC}TaxInclusiveAmount", _money(excl + vat + off.get("incl", 0)), currencyID=cur)
        if allowances:
            _sub(lmt, f"{CBC}AllowanceTotalAmount", _money(allowances + off.get("allow", 0)), currencyID=cur)
        if charges:
            _sub(lmt, f"{CBC}ChargeTotalAmount", _money(charges + off.get("charge", 0)), currencyID=cur)
        if "prepaid" in off:
            _sub(lmt, f"{CBC}PrepaidAmount", _money(off["prepaid"]), currencyID=cur)
        payable = excl + vat - off.get("prepaid", 0) + off.get("payable", 0)
        _sub(lmt, f"{CBC}PayableAmount", _money(payable), currencyID=cur)
        if "rounding" in off:
            _sub(lmt, f"{CBC}PayableRoundingAmount", _money(off["rounding"]), currencyID=cur)
            lmt.find(f"{CBC}PayableAmount").text = _money(payable + off["rounding"])

    def buyer(self) -> etree._Element:
        return _first(self.root, "cac:AccountingCustomerParty/cac:Party")

    def seller(self) -> etree._Element:
        return _first(self.root, "cac:AccountingSupplierParty/cac:Party")

    def add_buyer_vat(self, vat: str = "DE123456789") -> None:
        party = self.buyer()
        pts = _el(f"{CAC}PartyTaxScheme")
        _sub(pts, f"{CBC}CompanyID", vat)
        _sub(_sub(pts, f"{CAC}TaxScheme"), f"{CBC}ID", "VAT")
        party.find(f"{CAC}PostalAddress").addnext(pts)

    def set_buyer_country(self, code: str) -> None:
        self.buyer().find(f"{CAC}PostalAddress/{CAC}Country/{CBC}IdentificationCode").text = code

    def remove_seller_vat(self) -> None:
        for pts in self.seller().findall(f"{CAC}PartyTaxScheme"):
            self.seller().remove(pts)

    def add_seller_tax_rep(self) -> None:
        rep = _el(f"{CAC}TaxRepresentativeParty")
        _sub(_sub(rep, f"{CAC}PartyName"), f"{CBC}Name", "Représentant fiscal SA")
        addr = _sub(rep, f"{CAC}PostalAddress")
        _sub(addr, f"{CBC}CityName", "Paris")
        _sub(_sub(addr, f"{CAC}Country"), f"{CBC}IdentificationCode", "FR")
        pts = _sub(rep, f"{CAC}PartyTaxScheme")
        _sub(pts, f"{CBC}CompanyID", "FR12345678901")
        _sub(_sub(pts, f"{CAC}TaxScheme"), f"{CBC}ID", "VAT")
        self.root.find(f"{CAC}AccountingCustomerParty").addnext(rep)

    def delivery(self) -> etree._Element:
        d = self.root.find(f"{CAC}Delivery")
        if d is None:
            d = _el(f"{CAC}Delivery")
            self.root.find(f"{CAC}AccountingCustomerParty").addnext(d)
        return d

    def add_delivery_country(self, code: str) -> None:
        loc = _sub(self.delivery(), f"{CAC}DeliveryLocation")
        addr = _sub(loc, f"{CAC}Address")
        _sub(addr, f"{CBC}CityName", "Berlin")
        _sub(_sub(addr, f"{CAC}Country"), f"{CBC}IdentificationCode", code)


def _ubl_other_targets() -> Iterator[tuple[str, Callable[[etree._Element], None]]]:
    def line_ac(charge: bool, amount: str, reason: str | None, code: str | None):
        def mutate(root: etree._Element) -> None:
            u = _Ubl(root)
            line = u.lines()[0]
            ac = _el(f"{CAC}AllowanceCharge")
            _sub(ac, f"{CBC}ChargeIndicator", "true" if charge else "false")
            if code:
                _sub(ac, f"{CBC}AllowanceChargeReasonCode", code)
            if reason:
                _sub(ac, f"{CBC}AllowanceChargeReason", reason)
            _sub(ac, f"{CBC}MultiplierFactorNumeric", "10")
            _sub(ac, f"{CBC}Amount", amount, currencyID=u.cur)
            _sub(ac, f"{CBC}BaseAmount", "100.00", currencyID=u.cur)
            line.find(f"{CAC}Item").addprevious(ac)
            net = _dec(line.find(f"{CBC}LineExtensionAmount").text)
            delta = Decimal(amount) if charge else -Decimal(amount)
            line.find(f"{CBC}LineExtensionAmount").text = _money(net + delta)
            u.rebuild([])

        return mutate

    def period(start: str, end: str, line: bool = False):
        def mutate(root: etree._Element) -> None:
            u = _Ubl(root)
            p = _el(f"{CAC}InvoicePeriod")
            if start:
                _sub(p, f"{CBC}StartDate", start)
            if end:
                _sub(p, f"{CBC}EndDate", end)
            if line:
                u.lines()[0].find(f"{CBC}LineExtensionAmount").addnext(p)
            else:
                root.find(f"{CAC}AccountingSupplierParty").addprevious(p)

        return mutate

    def preceding(with_id: bool, date: str | None):
        def mutate(root: etree._Element) -> None:
            br = _el(f"{CAC}BillingReference")
            ref = _sub(br, f"{CAC}InvoiceDocumentReference")
            if with_id:
                _sub(ref, f"{CBC}ID", "INV-000000")
            else:
                _sub(ref, f"{CBC}UUID", "x")
            if date:
                _sub(ref, f"{CBC}IssueDate", date)
            root.find(f"{CAC}AccountingSupplierParty").addprevious(br)

        return mutate

    def tax_currency(code: str, amount: str | None, cur: str | None = None):
        def mutate(root: etree._Element) -> None:
            dcc = root.find(f"{CBC}DocumentCurrencyCode")
            tcc = _el(f"{CBC}TaxCurrencyCode", code)
            dcc.addnext(tcc)
            if amount is not None:
                tt = _el(f"{CAC}TaxTotal")
                _sub(tt, f"{CBC}TaxAmount", amount, currencyID=cur or code)
                root.find(f"{CAC}TaxTotal").addnext(tt)

        return mutate

    def doc_currency(code: str):
        def mutate(root: etree._Element) -> None:
            old = root.find(f"{CBC}DocumentCurrencyCode").text
            root.find(f"{CBC}DocumentCurrencyCode").text = code
            for el in root.iter():
                if isinstance(el.tag, str) and el.get("currencyID") == old:
                    el.set("currencyID", code)

        return mutate

    def attachment(mime: str | None, filename: str | None, content: bool = True, uri: bool = False):
        def mutate(root: etree._Element) -> None:
            ref = _el(f"{CAC}AdditionalDocumentReference")
            _sub(ref, f"{CBC}ID", "ATT-1")
            _sub(ref, f"{CBC}DocumentDescription", "Annexe")
            att = _sub(ref, f"{CAC}Attachment")
            if content:
                attrs = {}
                if mime is not None:
                    attrs["mimeCode"] = mime
                if filename is not None:
                    attrs["filename"] = filename
                _sub(att, f"{CBC}EmbeddedDocumentBinaryObject", "SGVsbG8=", **attrs)
            if uri:
                _sub(_sub(att, f"{CAC}ExternalReference"), f"{CBC}URI", "https://example.org/a.pdf")
            root.find(f"{CAC}AccountingSupplierParty").addprevious(ref)

        return mutate

    def payee(with_name: bool, same_as_seller: bool = False):
        def mutate(root: etree._Element) -> None:
            p = _el(f"{CAC}PayeeParty")
            pid = _sub(p, f"{CAC}PartyIdentification")
            _sub(pid, f"{CBC}ID", "FR123", schemeID="SEPA")
            if with_name:
                _sub(
                    _sub(p, f"{CAC}PartyName"),
                    f"{CBC}Name",
                    "Papeterie Martin SARL" if same_as_seller else "Affactureur",
                )
            root.find(f"{CAC}AccountingCustomerParty").addnext(p)

        return mutate

    def card(pan: str | None):
        def mutate(root: etree._Element) -> None:
            pm = root.find(f"{CAC}PaymentMeans")
            pm.find(f"{CBC}PaymentMeansCode").text = "54"
            c = _el(f"{CAC}CardAccount")
            if pan is not None:
                _sub(c, f"{CBC}PrimaryAccountNumberID", pan)
            _sub(c, f"{CBC}NetworkID", "VISA")
            pm.append(c)

        return mutate

    def mandate(with_ref: bool):
        def mutate(root: etree._Element) -> None:
            pm = root.find(f"{CAC}PaymentMeans")
            pm.find(f"{CBC}PaymentMeansCode").text = "59"
            m = _el(f"{CAC}PaymentMandate")
            if with_ref:
                _sub(m, f"{CBC}ID", "MANDATE-1")
            _sub(_sub(m, f"{CAC}PayerFinancialAccount"), f"{CBC}ID", "FR7630006000011234567890189")
            pm.append(m)

        return mutate

    def item_attr(name: str | None, value: str | None):
        def mutate(root: etree._Element) -> None:
            item = _Ubl(root).lines()[0].find(f"{CAC}Item")
            prop = _el(f"{CAC}AdditionalItemProperty")
            if name is not None:
                _sub(prop, f"{CBC}Name", name)
            if value is not None:
                _sub(prop, f"{CBC}Value", value)
            item.find(f"{CAC}ClassifiedTaxCategory").addnext(prop)

        return mutate

    def item_ids(std_scheme: str | None, class_list: str | None):
        def mutate(root: etree._Element) -> None:
            item = _Ubl(root).lines()[0].find(f"{CAC}Item")
            anchor = item.find(f"{CAC}ClassifiedTaxCategory")
            std = _el(f"{CAC}StandardItemIdentification")
            attrs = {"schemeID": std_scheme} if std_scheme is not None else {}
            _sub(std, f"{CBC}ID", "4012345678901", **attrs)
            anchor.addprevious(std)
            cls = _el(f"{CAC}CommodityClassification")
            attrs = {"listID": class_list} if class_list is not None else {}
            _sub(cls, f"{CBC}ItemClassificationCode", "12345678", **attrs)
            anchor.addprevious(cls)

        return mutate

    def price_details(base_qty: str | None, gross: str | None, discount: str | None):
        def mutate(root: etree._Element) -> None:
            price = _Ubl(root).lines()[0].find(f"{CAC}Price")
            if base_qty is not None:
                _sub(price, f"{CBC}BaseQuantity", base_qty, unitCode="C62")
            if gross is not None or discount is not None:
                ac = _sub(price, f"{CAC}AllowanceCharge")
                _sub(ac, f"{CBC}ChargeIndicator", "false")
                _sub(ac, f"{CBC}Amount", discount or "0.00", currencyID="EUR")
                if gross is not None:
                    _sub(ac, f"{CBC}BaseAmount", gross, currencyID="EUR")

        return mutate

    def note(subject: str | None, times: int = 1):
        def mutate(root: etree._Element) -> None:
            for _ in range(times):
                n = _el(f"{CBC}Note", f"#{subject}#Texte" if subject else "Texte libre")
                root.find(f"{CBC}DocumentCurrencyCode").addprevious(n)

        return mutate

    def tax_point(code: str | None, date: str | None):
        def mutate(root: etree._Element) -> None:
            anchor = root.find(f"{CBC}DocumentCurrencyCode")
            if date:
                anchor.addprevious(_el(f"{CBC}TaxPointDate", date))
            if code:
                p = _el(f"{CAC}InvoicePeriod")
                _sub(p, f"{CBC}DescriptionCode", code)
                root.find(f"{CAC}AccountingSupplierParty").addprevious(p)

        return mutate

    def doc_refs(*kinds: str):
        def mutate(root: etree._Element) -> None:
            anchor = root.find(f"{CAC}AccountingSupplierParty")
            for i, kind in enumerate(kinds):
                ref = _el(f"{CAC}AdditionalDocumentReference")
                attrs = {"schemeID": "ABT"} if kind == "other-scheme" else {}
                _sub(ref, f"{CBC}ID", f"REF-{i}", **attrs)
                if kind.startswith("130"):
                    _sub(ref, f"{CBC}DocumentTypeCode", "130")
                if kind == "130-full":
                    _sub(ref, f"{CBC}DocumentDescription", "Objet facturé")
                    att = _sub(ref, f"{CAC}Attachment")
                    _sub(
                        att,
                        f"{CBC}EmbeddedDocumentBinaryObject",
                        "SGVsbG8=",
                        mimeCode="application/pdf",
                        filename="a.pdf",
                    )
                anchor.addprevious(ref)

        return mutate

    def extra_attribute(xpath: str, name: str):
        def mutate(root: etree._Element) -> None:
            for el in _all(root, xpath)[:1]:
                el.set(name, "x")

        return mutate

    def payment_means(n: int, *, with_name: bool, payment_ids: bool):
        def mutate(root: etree._Element) -> None:
            pm = root.find(f"{CAC}PaymentMeans")
            if with_name:
                pm.find(f"{CBC}PaymentMeansCode").set("name", "Virement")
            if payment_ids:
                pm.find(f"{CBC}PaymentMeansCode").addnext(_el(f"{CBC}PaymentID", "PAY-0"))
            for i in range(1, n):
                other = copy.deepcopy(pm)
                for pid in other.findall(f"{CBC}PaymentID"):
                    pid.text = f"PAY-{i}"
                pm.addnext(other)

        return mutate

    def sepa_ids(n: int):
        def mutate(root: etree._Element) -> None:
            parties = _all(root, "cac:AccountingSupplierParty/cac:Party | cac:AccountingCustomerParty/cac:Party")
            for party in parties[:n]:
                pid = _el(f"{CAC}PartyIdentification")
                _sub(pid, f"{CBC}ID", "FR00ZZZ123456", schemeID="SEPA")
                party.insert(1, pid)

        return mutate

    yield "tax currency unknown", tax_currency("EURO", "100.00")
    yield "invoiced object reference (130) with description and attachment", doc_refs("130-full")
    yield "two invoiced object references (130)", doc_refs("130", "130")
    yield "one invoiced object reference (130)", doc_refs("130")
    yield "additional document with an ID scheme", doc_refs("other-scheme")
    yield "name attribute on the invoice ID", extra_attribute("cbc:ID", "name")
    yield "name attribute on the payment means code", payment_means(1, with_name=True, payment_ids=False)
    yield "two payment means with named codes", payment_means(2, with_name=True, payment_ids=False)
    yield "two payment means with different payment IDs", payment_means(2, with_name=False, payment_ids=True)
    yield "one payment means with a payment ID", payment_means(1, with_name=False, payment_ids=True)
    yield "two SEPA party identifiers", sepa_ids(2)
    yield "one SEPA party identifier", sepa_ids(1)
    yield "line allowance consistent", line_ac(False, "5.00", "Remise", "95")
    yield "line charge consistent", line_ac(True, "5.00", "Emballage", "ABL")
    yield "line allowance without reason", line_ac(False, "5.00", None, None)
    yield "line charge without reason", line_ac(True, "5.00", None, None)
    yield "line allowance unknown code", line_ac(False, "5.00", "Remise", "ZZZ")
    yield "invoice period ok", period("2026-01-01", "2026-01-31")
    yield "invoice period reversed", period("2026-01-31", "2026-01-01")
    yield "invoice period empty", period("", "")
    yield "invoice period start only", period("2026-01-01", "")
    yield "line period ok", period("2026-01-01", "2026-01-31", line=True)
    yield "line period reversed", period("2026-01-31", "2026-01-01", line=True)
    yield "line period empty", period("", "", line=True)
    yield "preceding invoice ok", preceding(True, "2025-12-01")
    yield "preceding invoice without id", preceding(False, "2025-12-01")
    yield "tax currency with amount", tax_currency("USD", "100.00")
    yield "tax currency same as document", tax_currency("EUR", "100.00")
    yield "tax currency without amount", tax_currency("USD", None)
    yield "tax currency amount in other currency", tax_currency("USD", "100.00", "GBP")
    yield "document currency USD everywhere", doc_currency("USD")
    yield "document currency unknown everywhere", doc_currency("ABC")
    for mime in ("application/pdf", "image/png", "text/csv", "application/zip", "", None):
        yield f"attachment mime={mime}", attachment(mime, "annexe.pdf")
    yield "attachment without filename", attachment("application/pdf", None)
    yield "attachment uri only", attachment(None, None, content=False, uri=True)
    yield "attachment nothing", attachment(None, None, content=False)
    yield "payee with name", payee(True)
    yield "payee without name", payee(False)
    yield "payee same as seller", payee(True, same_as_seller=True)
    yield "card with pan", card("1234")
    yield "card without pan", card(None)
    yield "direct debit with mandate", mandate(True)
    yield "direct debit without mandate id", mandate(False)
    yield "item attribute ok", item_attr("Couleur", "Bleu")
    yield "item attribute without value", item_attr("Couleur", None)
    yield "item attribute without name", item_attr(None, "Bleu")
    yield "item ids with schemes", item_ids("0160", "STI")
    yield "item ids without schemes", item_ids(None, None)
    yield "item ids unknown schemes", item_ids("ZZZ", "ZZZ")
    yield "price base quantity", price_details("1", None, None)
    yield "price base quantity zero", price_details("0", None, None)
    yield "price base quantity negative", price_details("-1", None, None)
    yield "gross price and discount", price_details(None, "80.00", "6.47")
    yield "gross price negative", price_details(None, "-80.00", "1.00")
    yield "price discount without gross", price_details(None, None, "1.00")
    yield "note with subject", note("AAI")
    yield "note with unknown subject", note("QQQ")
    yield "two notes same subject", note("PMT", 2)
    yield "plain note", note(None)
    yield "tax point date", tax_point(None, "2026-01-05")
    yield "tax point code", tax_point("35", None)
    yield "tax point code and date", tax_point("35", "2026-01-05")
    yield "tax point unknown code", tax_point("999", None)


def ubl_targeted(base: Document) -> Iterator[Mutant]:
    targets = [*_category_variants(_Ubl), *_ubl_other_targets()]
    return mutants_of(base, ((f"targeted: {label}", mutate) for label, mutate in targets))


# ---- targeted mutations of generated CII -------------------------------------------------------------------


class _Cii:
    def __init__(self, root: etree._Element) -> None:
        self.root = root
        self.tx = _first(root, "rsm:SupplyChainTradeTransaction")
        self.settlement = self.tx.find(f"{RAM}ApplicableHeaderTradeSettlement")
        self.agreement = self.tx.find(f"{RAM}ApplicableHeaderTradeAgreement")
        self.cur = self.settlement.find(f"{RAM}InvoiceCurrencyCode").text

    def lines(self) -> list[etree._Element]:
        return self.tx.findall(f"{RAM}IncludedSupplyChainTradeLineItem")

    def set_line_id(self, line: etree._Element, value: str) -> None:
        line.find(f"{RAM}AssociatedDocumentLineDocument/{RAM}LineID").text = value

    def line_tax(self, line: etree._Element) -> etree._Element:
        return line.find(f"{RAM}SpecifiedLineTradeSettlement/{RAM}ApplicableTradeTax")

    def set_line_category(self, line: etree._Element, cat: str, rate: str | None) -> None:
        t = self.line_tax(line)
        t.find(f"{RAM}CategoryCode").text = cat
        r = t.find(f"{RAM}RateApplicablePercent")
        if rate is None and r is not None:
            t.remove(r)
        elif rate is not None:
            if r is None:
                r = _sub(t, f"{RAM}RateApplicablePercent")
            r.text = rate

    def line_amount(self, line: etree._Element) -> Decimal:
        el = line.find(f".//{RAM}SpecifiedTradeSettlementLineMonetarySummation/{RAM}LineTotalAmount")
        return _dec(el.text) or Decimal(0)

    def rebuild(self, acs: list[_Ac] = (), reasons: bool = True, rate_in_header: bool = True, off=None) -> None:
        off = off or {}
        s = self.settlement
        for old in s.findall(f"{RAM}ApplicableTradeTax") + s.findall(f"{RAM}SpecifiedTradeAllowanceCharge"):
            s.remove(old)
        groups: dict[tuple[str, str | None], Decimal] = {}
        line_sum = Decimal(0)
        for line in self.lines():
            t = self.line_tax(line)
            r = t.find(f"{RAM}RateApplicablePercent")
            key = (t.find(f"{RAM}CategoryCode").text, r.text if r is not None else None)
            groups[key] = groups.get(key, Decimal(0)) + self.line_amount(line)
            line_sum += self.line_amount(line)
        allowances = charges = Decimal(0)
        ac_els = []
        for ac in acs:
            el = _el(f"{RAM}SpecifiedTradeAllowanceCharge")
            ind = _sub(el, f"{RAM}ChargeIndicator")
            _sub(ind, f"{UDT}Indicator", "true" if ac.charge else "false")
            _sub(el, f"{RAM}ActualAmount", _money(ac.amount))
            if ac.code:
                _sub(el, f"{RAM}ReasonCode", ac.code)
            if ac.reason:
                _sub(el, f"{RAM}Reason", ac.reason)
            t = _sub(el, f"{RAM}CategoryTradeTax")
            _sub(t, f"{RAM}TypeCode", "VAT")
            _sub(t, f"{RAM}CategoryCode", ac.category)
            if ac.rate is not None:
                _sub(t, f"{RAM}RateApplicablePercent", ac.rate)
            ac_els.append(el)
            key = (ac.category, ac.rate)
            groups[key] = groups.get(key, Decimal(0)) + (ac.amount if ac.charge else -ac.amount)
            if ac.charge:
                charges += ac.amount
            else:
                allowances += ac.amount
        anchor = s.find(f"{RAM}SpecifiedTradePaymentTerms")
        if anchor is None:
            anchor = s.find(f"{RAM}SpecifiedTradeSettlementHeaderMonetarySummation")
        vat = Decimal(0)
        for (cat, rate), basis in groups.items():
            tax = (basis * Decimal(rate or 0) / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
            vat += tax
            t = _el(f"{RAM}ApplicableTradeTax")
            _sub(t, f"{RAM}CalculatedAmount", _money(tax + off.get(f"tax-{cat}", 0)))
            _sub(t, f"{RAM}TypeCode", "VAT")
            if reasons == "force" or (reasons and cat in EXEMPTION):
                _sub(t, f"{RAM}ExemptionReason", EXEMPTION.get(cat, ("", "Exonération"))[1])
            _sub(t, f"{RAM}BasisAmount", _money(basis + off.get(f"basis-{cat}", 0)))
            _sub(t, f"{RAM}CategoryCode", cat)
            if reasons == "force" or (reasons and cat in EXEMPTION):
                code = "VATEX-XX" if reasons == "bogus" else EXEMPTION.get(cat, ("VATEX-EU-O", ""))[0]
                _sub(t, f"{RAM}ExemptionReasonCode", code)
            if rate is not None and rate_in_header:
                _sub(t, f"{RAM}RateApplicablePercent", rate)
            anchor.addprevious(t)
        for el in ac_els:
            anchor.addprevious(el)
        summ = s.find(f"{RAM}SpecifiedTradeSettlementHeaderMonetarySummation")
        for child in list(summ):
            summ.remove(child)
        excl = line_sum - allowances + charges
        _sub(summ, f"{RAM}LineTotalAmount", _money(line_sum + off.get("lines", 0)))
        if charges:
            _sub(summ, f"{RAM}ChargeTotalAmount", _money(charges + off.get("charge", 0)))
        if allowances:
            _sub(summ, f"{RAM}AllowanceTotalAmount", _money(allowances + off.get("allow", 0)))
        _sub(summ, f"{RAM}TaxBasisTotalAmount", _money(excl + off.get("excl", 0)))
        _sub(summ, f"{RAM}TaxTotalAmount", _money(vat + off.get("vat", 0)), currencyID=self.cur)
        if "rounding" in off:
            _sub(summ, f"{RAM}RoundingAmount", _money(off["rounding"]))
        _sub(summ, f"{RAM}GrandTotalAmount", _money(excl + vat + off.get("incl", 0)))
        if "prepaid" in off:
            _sub(summ, f"{RAM}TotalPrepaidAmount", _money(off["prepaid"]))
        due = excl + vat - off.get("prepaid", 0) + off.get("payable", 0) + off.get("rounding", 0)
        _sub(summ, f"{RAM}DuePayableAmount", _money(due))

    def buyer(self) -> etree._Element:
        return self.agreement.find(f"{RAM}BuyerTradeParty")

    def seller(self) -> etree._Element:
        return self.agreement.find(f"{RAM}SellerTradeParty")

    def add_buyer_vat(self, vat: str = "DE123456789") -> None:
        reg = _sub(self.buyer(), f"{RAM}SpecifiedTaxRegistration")
        _sub(reg, f"{RAM}ID", vat, schemeID="VA")

    def set_buyer_country(self, code: str) -> None:
        self.buyer().find(f"{RAM}PostalTradeAddress/{RAM}CountryID").text = code

    def remove_seller_vat(self) -> None:
        for reg in self.seller().findall(f"{RAM}SpecifiedTaxRegistration"):
            self.seller().remove(reg)

    def add_seller_tax_rep(self) -> None:
        rep = _el(f"{RAM}SellerTaxRepresentativeTradeParty")
        _sub(rep, f"{RAM}Name", "Représentant fiscal SA")
        addr = _sub(rep, f"{RAM}PostalTradeAddress")
        _sub(addr, f"{RAM}CityName", "Paris")
        _sub(addr, f"{RAM}CountryID", "FR")
        reg = _sub(rep, f"{RAM}SpecifiedTaxRegistration")
        _sub(reg, f"{RAM}ID", "FR12345678901", schemeID="VA")
        self.buyer().addnext(rep)

    def add_delivery_country(self, code: str) -> None:
        delivery = self.tx.find(f"{RAM}ApplicableHeaderTradeDelivery")
        party = _el(f"{RAM}ShipToTradeParty")
        addr = _sub(party, f"{RAM}PostalTradeAddress")
        _sub(addr, f"{RAM}CityName", "Berlin")
        _sub(addr, f"{RAM}CountryID", code)
        delivery.insert(0, party)


# ---- VAT categories, allowances and totals: one family, driven by the data below, for both syntaxes ---------

CATEGORIES = ("S", "E", "AE", "K", "G", "O", "Z", "L", "M")
# What a category needs of the parties to be consistent (the "party requirements" of its rules).
_PARTY_NEEDS: dict[str, dict[str, Any]] = {
    "AE": {"buyer_vat": True},
    "K": {"buyer_vat": True, "buyer_country": "DE", "delivery": "DE"},
    "G": {"buyer_country": "US"},
    "O": {"seller_vat": False},
}
# Document-level allowances and charges in category S: (label, [(charge, amount, reason, code)], offsets).
_S_ALLOWANCES: tuple[tuple[str, list[tuple[bool, str, str | None, str | None]], dict[str, str]], ...] = (
    ("allowance S consistent", [(False, "12.34", "Remise", "95")], {}),
    ("charge S consistent", [(True, "7.50", "Transport", "FC")], {}),
    ("allowance without reason nor code", [(False, "1.00", None, None)], {}),
    ("charge without reason nor code", [(True, "1.00", None, None)], {}),
    ("allowance reason only", [(False, "1.00", "Remise", None)], {}),
    ("allowance code only", [(False, "1.00", None, "95")], {}),
    ("allowance unknown code", [(False, "1.00", "Remise", "ZZZ")], {}),
    ("charge unknown code", [(True, "1.00", "Frais", "999")], {}),
    ("allowance total off", [(False, "2.00", "Remise", "95")], {"allow": "0.01"}),
    ("charge total off", [(True, "2.00", "Remise", "95")], {"charge": "0.01"}),
    ("allowance with 3 decimals", [(False, "2.005", "Remise", "95")], {}),
)
# Totals off (category S): (label in UBL, label in CII, offsets); the two syntaxes name some totals apart.
_TOTALS_OFF: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("prepaid amount", "prepaid amount", {"prepaid": "100.00"}),
    ("prepaid and payable off", "prepaid and payable off", {"prepaid": "100.00", "payable": "1"}),
    ("rounding amount", "rounding amount", {"rounding": "0.01"}),
    ("line sum off", "line sum off", {"lines": "0.01"}),
    ("tax exclusive off", "tax basis off", {"excl": "0.01"}),
    ("tax inclusive off", "grand total off", {"incl": "-0.01"}),
    ("vat total off", "vat total off", {"vat": "0.01"}),
    ("payable off", "due off", {"payable": "0.01"}),
)
_MIXED: tuple[tuple[str, list[tuple[str, str]]], ...] = (
    ("mixed S+E", [("S", "20"), ("E", "0")]),
    ("mixed S+Z+AE", [("S", "20"), ("Z", "0"), ("AE", "0")]),
    ("mixed S 20 + S 5.5", [("S", "20"), ("S", "5.5")]),
    ("mixed S+L+M", [("S", "20"), ("L", "3"), ("M", "4")]),
    ("mixed S+G+K", [("S", "20"), ("G", "0"), ("K", "0")]),
)

_Syntax = type[_Ubl] | type[_Cii]
Mutation = Callable[[etree._Element], None]


def _variant(
    doc: _Syntax,
    cat: str,
    rate: str | None,
    *,
    reasons: bool | str = True,
    buyer_vat: bool = False,
    seller_vat: bool = True,
    delivery: str | None = None,
    buyer_country: str | None = None,
    header_rate: bool = True,
    tax_rep: bool = False,
    first_only: bool = False,
    acs: Iterable[_Ac] = (),
    off: dict[str, Decimal] | None = None,
) -> Mutation:
    """The lines (all, or the first) in `cat` at `rate`, the parties as asked, the breakdown and totals
    rebuilt consistent with them and `acs`, then put `off` where asked."""

    def mutate(root: etree._Element) -> None:
        d = doc(root)
        for line in d.lines()[:1] if first_only else d.lines():
            d.set_line_category(line, cat, rate)
        if buyer_vat:
            d.add_buyer_vat()
        if buyer_country:
            d.set_buyer_country(buyer_country)
        if not seller_vat:
            d.remove_seller_vat()
        if tax_rep:
            d.add_seller_tax_rep()
        if delivery:
            d.add_delivery_country(delivery)
        d.rebuild(list(acs), reasons=reasons, rate_in_header=header_rate, off=off)

    return mutate


def _category(doc: _Syntax, cat: str) -> Iterator[tuple[str, Mutation]]:
    """Category `cat`, consistent or not: rates, exemption reasons, parties, breakdown, allowances."""
    good = RATES.get(cat, "0")
    wrong = "20" if cat in ZERO_RATED else "0"
    needs = _PARTY_NEEDS.get(cat, {})
    but_seller = {k: v for k, v in needs.items() if k != "seller_vat"}

    def v(rate: str | None = good, **kw: Any) -> Mutation:
        return _variant(doc, cat, rate, **{**needs, **kw})

    yield f"vat {cat} {good}% consistent", v()
    yield f"vat {cat} wrong rate", v(wrong)
    yield f"vat {cat} no rate", v(None)
    yield f"vat {cat} no exemption reason", v(reasons=False)
    if cat not in EXEMPTION:
        yield f"vat {cat} with an exemption reason", v(reasons="force")
    else:
        yield f"vat {cat} unknown exemption reason code", v(reasons="bogus")
    yield f"vat {cat} allowance with an unknown category", v(acs=[_Ac(False, Decimal("1.00"), "Q", "20")])
    yield f"vat {cat} without the category's party requirements", _variant(doc, cat, good)
    tax_rep = _variant(doc, cat, good, seller_vat=False, tax_rep=True, **but_seller)
    yield f"vat {cat} seller VAT via tax representative only", tax_rep
    yield f"vat {cat} first line only", v(first_only=True)
    yield f"vat {cat} header without rate", v(header_rate=False)
    yield f"vat {cat} tax amount off by 0.01", v(off={f"tax-{cat}": Decimal("0.01")})
    yield f"vat {cat} basis off by 1", v(off={f"basis-{cat}": Decimal("1")})
    charge = _Ac(True, Decimal("5.00"), cat, good, "Port", "FC")
    yield f"vat {cat} with allowance and charge", v(acs=[_Ac(False, Decimal("10.00"), cat, good), charge])
    both = [_Ac(False, Decimal("6.00"), cat, good), _Ac(True, Decimal("3.00"), cat, good, "Port", "FC")]
    yield (
        f"vat {cat} allowance and charge without the category's party requirements",
        _variant(doc, cat, good, acs=both),
    )
    no_seller_vat = _variant(doc, cat, good, acs=both, seller_vat=False, **but_seller)
    yield f"vat {cat} allowance and charge, no seller VAT", no_seller_vat
    yield f"vat {cat} allowance and charge at a wrong rate", v(acs=[dataclasses.replace(a, rate=wrong) for a in both])
    yield f"vat {cat} allowance and charge without rate", v(acs=[dataclasses.replace(a, rate=None) for a in both])
    if cat != "S":
        yield f"vat {cat} allowance in S on a {cat} invoice", v(acs=[_Ac(False, Decimal("3.00"), "S", "20")])
    if cat == "O":
        acs = [_Ac(False, Decimal("4.00"), "O", None), _Ac(True, Decimal("2.00"), "O", None, "Port", "FC")]
        yield "vat O allowance and charge without rate", v(None, acs=acs)
        yield "vat O with seller VAT id", _variant(doc, cat, good)
        yield "vat O with buyer VAT id", _variant(doc, cat, good, seller_vat=False, buyer_vat=True)
        yield "vat O mixed with S lines", _variant(doc, cat, good, seller_vat=False, first_only=True)
    if cat == "K":
        yield "vat K without delivery country", _variant(doc, cat, good, buyer_vat=True, buyer_country="DE")
        same = _variant(doc, cat, good, buyer_vat=True, buyer_country="FR", delivery="FR")
        yield "vat K same country", same


def _category_variants(doc: _Syntax) -> Iterator[tuple[str, Mutation]]:
    """(label, mutation) pairs of `doc`'s syntax (`_Ubl` or `_Cii`): each VAT category, consistent or not;
    document allowances, charges and totals; a line outside the breakdown; mixed categories."""
    for cat in CATEGORIES:
        yield from _category(doc, cat)
    s = ("S", "20")
    for label, acs, off in _S_ALLOWANCES:
        allowances = [_Ac(charge, Decimal(amount), *s, reason, code) for charge, amount, reason, code in acs]
        yield label, _variant(doc, *s, acs=allowances, off={k: Decimal(x) for k, x in off.items()} or None)
    for ubl_label, cii_label, off in _TOTALS_OFF:
        yield ubl_label if doc is _Ubl else cii_label, _variant(doc, *s, off={k: Decimal(x) for k, x in off.items()})
    for cat in CATEGORIES:
        yield f"first line {cat} without its breakdown", _line_only(doc, cat, RATES.get(cat, "0"))
    for label, cats in _MIXED:
        yield label, _mixed(doc, cats)


def _line_only(doc: _Syntax, cat: str, rate: str) -> Mutation:
    """The first line in `cat`, the VAT breakdown left as it was (no breakdown for `cat`)."""

    def mutate(root: etree._Element) -> None:
        d = doc(root)
        d.set_line_category(d.lines()[0], cat, rate)

    return mutate


def _mixed(doc: _Syntax, cats: list[tuple[str, str]]) -> Mutation:
    """As many lines as `cats` (copies of the last one), each in its category; the breakdown rebuilt."""

    def mutate(root: etree._Element) -> None:
        d = doc(root)
        lines = d.lines()
        while len(lines) < len(cats):
            lines[-1].addnext(copy.deepcopy(lines[-1]))
            lines = d.lines()
        for i, line in enumerate(lines):
            d.set_line_id(line, str(i + 1))
            d.set_line_category(line, *cats[i % len(cats)])
        d.rebuild([])

    return mutate


def _cii_other_targets() -> Iterator[tuple[str, Callable[[etree._Element], None]]]:
    def line_ac(charge: bool, amount: str, reason: str | None, code: str | None):
        def mutate(root: etree._Element) -> None:
            c = _Cii(root)
            line = c.lines()[0]
            ls = line.find(f"{RAM}SpecifiedLineTradeSettlement")
            ac = _el(f"{RAM}SpecifiedTradeAllowanceCharge")
            _sub(_sub(ac, f"{RAM}ChargeIndicator"), f"{UDT}Indicator", "true" if charge else "false")
            _sub(ac, f"{RAM}CalculationPercent", "10")
            _sub(ac, f"{RAM}BasisAmount", "100.00")
            _sub(ac, f"{RAM}ActualAmount", amount)
            if code:
                _sub(ac, f"{RAM}ReasonCode", code)
            if reason:
                _sub(ac, f"{RAM}Reason", reason)
            ls.find(f"{RAM}SpecifiedTradeSettlementLineMonetarySummation").addprevious(ac)
            el = ls.find(f"{RAM}SpecifiedTradeSettlementLineMonetarySummation/{RAM}LineTotalAmount")
            delta = Decimal(amount) if charge else -Decimal(amount)
            el.text = _money(_dec(el.text) + delta)
            c.rebuild([])

        return mutate

    def period(start: str, end: str, line: bool = False):
        def mutate(root: etree._Element) -> None:
            c = _Cii(root)
            p = _el(f"{RAM}BillingSpecifiedPeriod")
            for tag, value in (("StartDateTime", start), ("EndDateTime", end)):
                if value:
                    _sub(_sub(p, f"{RAM}{tag}"), f"{UDT}DateTimeString", value, format="102")
            if line:
                ls = c.lines()[0].find(f"{RAM}SpecifiedLineTradeSettlement")
                ls.find(f"{RAM}ApplicableTradeTax").addnext(p)
            else:
                c.settlement.find(f"{RAM}ApplicableTradeTax").addnext(p)

        return mutate

    def preceding(with_id: bool, date: str | None):
        def mutate(root: etree._Element) -> None:
            c = _Cii(root)
            ref = _el(f"{RAM}InvoiceReferencedDocument")
            if with_id:
                _sub(ref, f"{RAM}IssuerAssignedID", "INV-000000")
            if date:
                _sub(_sub(ref, f"{RAM}FormattedIssueDateTime"), f"{QDT}DateTimeString", date, format="102")
            c.settlement.find(f"{RAM}SpecifiedTradeSettlementHeaderMonetarySummation").addnext(ref)

        return mutate

    def tax_currency(code: str, amount: str | None, cur: str | None = None):
        def mutate(root: etree._Element) -> None:
            c = _Cii(root)
            icc = c.settlement.find(f"{RAM}InvoiceCurrencyCode")
            icc.addprevious(_el(f"{RAM}TaxCurrencyCode", code))
            if amount is not None:
                summ = c.settlement.find(f"{RAM}SpecifiedTradeSettlementHeaderMonetarySummation")
                summ.find(f"{RAM}TaxTotalAmount").addnext(_el(f"{RAM}TaxTotalAmount", amount, currencyID=cur or code))

        return mutate

    def doc_currency(code: str):
        def mutate(root: etree._Element) -> None:
            c = _Cii(root)
            old = c.cur
            c.settlement.find(f"{RAM}InvoiceCurrencyCode").text = code
            for el in root.iter():
                if isinstance(el.tag, str) and el.get("currencyID") == old:
                    el.set("currencyID", code)

        return mutate

    def attachment(mime: str | None, filename: str | None, content: bool = True, uri: bool = False):
        def mutate(root: etree._Element) -> None:
            c = _Cii(root)
            ref = _el(f"{RAM}AdditionalReferencedDocument")
            _sub(ref, f"{RAM}IssuerAssignedID", "ATT-1")
            if uri:
                _sub(ref, f"{RAM}URIID", "https://example.org/a.pdf")
            _sub(ref, f"{RAM}TypeCode", "916")
            _sub(ref, f"{RAM}Name", "Annexe")
            if content:
                attrs = {}
                if mime is not None:
                    attrs["mimeCode"] = mime
                if filename is not None:
                    attrs["filename"] = filename
                _sub(ref, f"{RAM}AttachmentBinaryObject", "SGVsbG8=", **attrs)
            c.agreement.append(ref)

        return mutate

    def payee(with_name: bool):
        def mutate(root: etree._Element) -> None:
            c = _Cii(root)
            p = _el(f"{RAM}PayeeTradeParty")
            _sub(p, f"{RAM}ID", "FR123")
            if with_name:
                _sub(p, f"{RAM}Name", "Affactureur")
            c.settlement.find(f"{RAM}InvoiceCurrencyCode").addnext(p)

        return mutate

    def card(pan: str | None):
        def mutate(root: etree._Element) -> None:
            c = _Cii(root)
            pm = c.settlement.find(f"{RAM}SpecifiedTradeSettlementPaymentMeans")
            pm.find(f"{RAM}TypeCode").text = "54"
            card = _el(f"{RAM}ApplicableTradeSettlementFinancialCard")
            if pan is not None:
                _sub(card, f"{RAM}ID", pan)
            _sub(card, f"{RAM}CardholderName", "Jean Dupont")
            pm.find(f"{RAM}TypeCode").addnext(card)

        return mutate

    def mandate(with_ref: bool, with_creditor: bool = True):
        def mutate(root: etree._Element) -> None:
            c = _Cii(root)
            pm = c.settlement.find(f"{RAM}SpecifiedTradeSettlementPaymentMeans")
            pm.find(f"{RAM}TypeCode").text = "59"
            _sub(pm, f"{RAM}PayerPartyDebtorFinancialAccount").append(
                _el(f"{RAM}IBANID", "FR7630006000011234567890189")
            )
            if with_creditor:
                c.settlement.insert(0, _el(f"{RAM}CreditorReferenceID", "FR00ZZZ123456"))
            terms = c.settlement.find(f"{RAM}SpecifiedTradePaymentTerms")
            if with_ref and terms is not None:
                _sub(terms, f"{RAM}DirectDebitMandateID", "MANDATE-1")

        return mutate

    def item_attr(name: str | None, value: str | None):
        def mutate(root: etree._Element) -> None:
            prod = _Cii(root).lines()[0].find(f"{RAM}SpecifiedTradeProduct")
            ch = _sub(prod, f"{RAM}ApplicableProductCharacteristic")
            if name is not None:
                _sub(ch, f"{RAM}Description", name)
            if value is not None:
                _sub(ch, f"{RAM}Value", value)

        return mutate

    def item_ids(std_scheme: str | None, class_list: str | None):
        def mutate(root: etree._Element) -> None:
            prod = _Cii(root).lines()[0].find(f"{RAM}SpecifiedTradeProduct")
            attrs = {"schemeID": std_scheme} if std_scheme is not None else {}
            prod.insert(0, _el(f"{RAM}GlobalID", "4012345678901", **attrs))
            cls = _sub(prod, f"{RAM}DesignatedProductClassification")
            attrs = {"listID": class_list} if class_list is not None else {}
            _sub(cls, f"{RAM}ClassCode", "12345678", **attrs)

        return mutate

    def gross_price(gross: str | None, discount: str | None, base_qty: str | None = None):
        def mutate(root: etree._Element) -> None:
            agr = _Cii(root).lines()[0].find(f"{RAM}SpecifiedLineTradeAgreement")
            net = agr.find(f"{RAM}NetPriceProductTradePrice")
            if base_qty is not None:
                _sub(net, f"{RAM}BasisQuantity", base_qty, unitCode="C62")
            if gross is not None or discount is not None:
                g = _el(f"{RAM}GrossPriceProductTradePrice")
                if gross is not None:
                    _sub(g, f"{RAM}ChargeAmount", gross)
                if discount is not None:
                    ac = _sub(g, f"{RAM}AppliedTradeAllowanceCharge")
                    _sub(_sub(ac, f"{RAM}ChargeIndicator"), f"{UDT}Indicator", "false")
                    _sub(ac, f"{RAM}ActualAmount", discount)
                net.addprevious(g)

        return mutate

    def note(subject: str | None, times: int = 1):
        def mutate(root: etree._Element) -> None:
            doc = _first(root, "rsm:ExchangedDocument")
            for _ in range(times):
                n = _sub(doc, f"{RAM}IncludedNote")
                _sub(n, f"{RAM}Content", "Texte")
                if subject:
                    _sub(n, f"{RAM}SubjectCode", subject)

        return mutate

    def tax_point(code: str | None, date: str | None):
        def mutate(root: etree._Element) -> None:
            c = _Cii(root)
            t = c.settlement.find(f"{RAM}ApplicableTradeTax")
            if date:
                _sub(_sub(t, f"{RAM}TaxPointDate"), f"{UDT}DateString", date, format="102")
            if code:
                _sub(t, f"{RAM}DueDateTypeCode", code)

        return mutate

    def seller_contact(kind: str):
        def mutate(root: etree._Element) -> None:
            c = _Cii(root)
            seller = c.seller()
            if kind == "uri-without-scheme":
                _sub(_sub(seller, f"{RAM}URIUniversalCommunication"), f"{RAM}URIID", "x@example.org")
            elif kind == "uri-unknown-scheme":
                _sub(_sub(seller, f"{RAM}URIUniversalCommunication"), f"{RAM}URIID", "x@example.org", schemeID="ZZZ")
            elif kind == "uri-ok":
                _sub(_sub(seller, f"{RAM}URIUniversalCommunication"), f"{RAM}URIID", "x@example.org", schemeID="EM")
            elif kind == "legal-org-unknown-scheme":
                org = seller.find(f"{RAM}SpecifiedLegalOrganization")
                if org is not None and org.find(f"{RAM}ID") is not None:
                    org.find(f"{RAM}ID").set("schemeID", "ZZZ")

        return mutate

    def delivery_date(value: str):
        def mutate(root: etree._Element) -> None:
            c = _Cii(root)
            for el in c.tx.iterfind(
                f".//{RAM}ActualDeliverySupplyChainEvent/{RAM}OccurrenceDateTime/{UDT}DateTimeString"
            ):
                el.text = value

        return mutate

    def k_without_dates(root: etree._Element) -> None:
        c = _Cii(root)
        for line in c.lines():
            c.set_line_category(line, "K", "0")
        c.add_buyer_vat()
        c.set_buyer_country("DE")
        c.rebuild([])
        delivery = c.tx.find(f"{RAM}ApplicableHeaderTradeDelivery")
        for ev in delivery.findall(f"{RAM}ActualDeliverySupplyChainEvent"):
            delivery.remove(ev)

    def basis_decimals(header: bool):
        def mutate(root: etree._Element) -> None:
            c = _Cii(root)
            if header:
                c.rebuild(
                    [_Ac(False, Decimal("10.00"), "S", "20"), _Ac(True, Decimal("5.00"), "S", "20", "Port", "FC")]
                )
                acs = c.settlement.findall(f"{RAM}SpecifiedTradeAllowanceCharge")
            else:
                line_ac(False, "5.00", "Remise", "95")(root)
                line_ac(True, "5.00", "Emballage", "ABL")(root)
                acs = root.findall(f".//{RAM}SpecifiedLineTradeSettlement/{RAM}SpecifiedTradeAllowanceCharge")
            for ac in acs:
                for b in ac.findall(f"{RAM}BasisAmount"):
                    ac.remove(b)
                ac.find(f"{RAM}ChargeIndicator").addnext(_el(f"{RAM}BasisAmount", "100.123"))

        return mutate

    def referenced(where: str, *codes: str):
        def mutate(root: etree._Element) -> None:
            c = _Cii(root)
            parent = c.agreement if where == "header" else c.lines()[0].find(f"{RAM}SpecifiedLineTradeSettlement")
            for i, code in enumerate(codes):
                ref = _el(f"{RAM}AdditionalReferencedDocument")
                _sub(ref, f"{RAM}IssuerAssignedID", f"REF-{i}")
                _sub(ref, f"{RAM}TypeCode", code)
                if where == "header":
                    parent.append(ref)
                else:
                    parent.find(f"{RAM}SpecifiedTradeSettlementLineMonetarySummation").addnext(ref)

        return mutate

    def buyer_contact(person: bool, department: bool):
        def mutate(root: etree._Element) -> None:
            contact = _el(f"{RAM}DefinedTradeContact")
            if person:
                _sub(contact, f"{RAM}PersonName", "Jeanne Martin")
            if department:
                _sub(contact, f"{RAM}DepartmentName", "Achats")
            buyer = _Cii(root).buyer()
            buyer.find(f"{RAM}PostalTradeAddress").addprevious(contact)

        return mutate

    def both_ids(party: str, with_id: bool, with_global: bool):
        def mutate(root: etree._Element) -> None:
            c = _Cii(root)
            p = _el(f"{RAM}{party}")
            if with_id:
                _sub(p, f"{RAM}ID", "P-1")
            if with_global:
                _sub(p, f"{RAM}GlobalID", "3012345678901", schemeID="0088")
            _sub(p, f"{RAM}Name", "Partie")
            if party == "ShipToTradeParty":
                c.tx.find(f"{RAM}ApplicableHeaderTradeDelivery").insert(0, p)
            else:
                c.settlement.find(f"{RAM}InvoiceCurrencyCode").addnext(p)

        return mutate

    def due_date_codes(*codes: str):
        def mutate(root: etree._Element) -> None:
            _mixed(_Cii, [("S", "20"), ("E", "0")])(root)
            c = _Cii(root)
            for tax, code in zip(c.settlement.findall(f"{RAM}ApplicableTradeTax"), codes, strict=False):
                _sub(tax, f"{RAM}DueDateTypeCode", code)

        return mutate

    def payment_info(*infos: str):
        def mutate(root: etree._Element) -> None:
            c = _Cii(root)
            pm = c.settlement.find(f"{RAM}SpecifiedTradeSettlementPaymentMeans")
            pm.find(f"{RAM}TypeCode").addnext(_el(f"{RAM}Information", infos[0]))
            for info in infos[1:]:
                other = copy.deepcopy(pm)
                other.find(f"{RAM}Information").text = info
                pm.addnext(other)

        return mutate

    def payment_references(n: int):
        def mutate(root: etree._Element) -> None:
            c = _Cii(root)
            for i in range(n):
                c.settlement.insert(0, _el(f"{RAM}PaymentReference", f"REF-{i}"))

        return mutate

    def unit_only_on_basis_quantity(root: etree._Element) -> None:
        for q in root.iter(f"{RAM}BilledQuantity"):
            q.attrib.pop("unitCode", None)
        net = _Cii(root).lines()[0].find(f"{RAM}SpecifiedLineTradeAgreement/{RAM}NetPriceProductTradePrice")
        _sub(net, f"{RAM}BasisQuantity", "1", unitCode="C62")

    def allowance_tax_exemption(root: etree._Element) -> None:
        c = _Cii(root)
        c.rebuild([_Ac(False, Decimal("2.00"), "S", "20")])
        for t in root.iter(f"{RAM}CategoryTradeTax"):
            t.find(f"{RAM}CategoryCode").addprevious(_el(f"{RAM}ExemptionReason", "Exonération"))
            t.find(f"{RAM}CategoryCode").addnext(_el(f"{RAM}ExemptionReasonCode", "VATEX-EU-O"))

    def line_tax_header_fields(root: etree._Element) -> None:
        tax = _Cii(root).line_tax(_Cii(root).lines()[0])
        tax.find(f"{RAM}TypeCode").addnext(_el(f"{RAM}BasisAmount", "100.00"))
        _sub(_sub(tax, f"{RAM}TaxPointDate"), f"{UDT}DateString", "20260105", format="102")
        _sub(tax, f"{RAM}DueDateTypeCode", "5")

    yield "line VAT with basis amount, tax point date and due date code", line_tax_header_fields
    yield "allowance VAT with an exemption reason", allowance_tax_exemption
    yield "quantity unit only on a basis quantity", unit_only_on_basis_quantity
    yield "vat K without delivery date nor period", k_without_dates
    yield "header allowance and charge basis with 3 decimals", basis_decimals(True)
    yield "line allowance and charge basis with 3 decimals", basis_decimals(False)
    yield "two invoiced object references (130)", referenced("header", "130", "130")
    yield "two tender references (50)", referenced("header", "50", "50")
    yield "references 50 and 130", referenced("header", "50", "130")
    yield "two line object references (130)", referenced("line", "130", "130")
    yield "one line object reference (130)", referenced("line", "130")
    yield "buyer contact person and department", buyer_contact(True, True)
    yield "buyer contact person only", buyer_contact(True, False)
    yield "ship-to with ID and global ID", both_ids("ShipToTradeParty", True, True)
    yield "ship-to with ID only", both_ids("ShipToTradeParty", True, False)
    yield "payee with ID and global ID", both_ids("PayeeTradeParty", True, True)
    yield "payee with global ID only", both_ids("PayeeTradeParty", False, True)
    yield "due date type codes differ", due_date_codes("5", "29")
    yield "due date type codes agree", due_date_codes("5", "5")
    yield "payment means information differs", payment_info("Virement", "Chèque")
    yield "payment means information agrees", payment_info("Virement", "Virement")
    yield "two payment references", payment_references(2)
    yield "one payment reference", payment_references(1)
    yield "tax currency unknown", tax_currency("EURO", "100.00")
    yield "line allowance consistent", line_ac(False, "5.00", "Remise", "95")
    yield "line charge consistent", line_ac(True, "5.00", "Emballage", "ABL")
    yield "line allowance without reason", line_ac(False, "5.00", None, None)
    yield "line charge without reason", line_ac(True, "5.00", None, None)
    yield "line allowance unknown code", line_ac(False, "5.00", "Remise", "ZZZ")
    yield "invoice period ok", period("20260101", "20260131")
    yield "invoice period reversed", period("20260131", "20260101")
    yield "invoice period empty", period("", "")
    yield "invoice period start only", period("20260101", "")
    yield "line period ok", period("20260101", "20260131", line=True)
    yield "line period reversed", period("20260131", "20260101", line=True)
    yield "line period empty", period("", "", line=True)
    yield "preceding invoice ok", preceding(True, "20251201")
    yield "preceding invoice without id", preceding(False, "20251201")
    yield "tax currency with amount", tax_currency("USD", "100.00")
    yield "tax currency same as document", tax_currency("EUR", "100.00")
    yield "tax currency without amount", tax_currency("USD", None)
    yield "tax currency amount in other currency", tax_currency("USD", "100.00", "GBP")
    yield "document currency USD everywhere", doc_currency("USD")
    yield "document currency unknown everywhere", doc_currency("ABC")
    for mime in ("application/pdf", "image/png", "text/csv", "application/zip", "", None):
        yield f"attachment mime={mime}", attachment(mime, "annexe.pdf")
    yield "attachment without filename", attachment("application/pdf", None)
    yield "attachment uri only", attachment(None, None, content=False, uri=True)
    yield "payee with name", payee(True)
    yield "payee without name", payee(False)
    yield "card with pan", card("1234")
    yield "card without pan", card(None)
    yield "direct debit with mandate", mandate(True)
    yield "direct debit without mandate id", mandate(False)
    yield "direct debit without creditor id", mandate(True, with_creditor=False)
    yield "item attribute ok", item_attr("Couleur", "Bleu")
    yield "item attribute without value", item_attr("Couleur", None)
    yield "item attribute without name", item_attr(None, "Bleu")
    yield "item ids with schemes", item_ids("0160", "STI")
    yield "item ids without schemes", item_ids(None, None)
    yield "item ids unknown schemes", item_ids("ZZZ", "ZZZ")
    yield "price base quantity", gross_price(None, None, "1")
    yield "price base quantity zero", gross_price(None, None, "0")
    yield "price base quantity negative", gross_price(None, None, "-1")
    yield "gross price and discount", gross_price("80.00", "6.47")
    yield "gross price negative", gross_price("-80.00", "1.00")
    yield "price discount without gross", gross_price(None, "1.00")
    yield "note with subject", note("AAI")
    yield "note with unknown subject", note("QQQ")
    yield "two notes same subject", note("PMT", 2)
    yield "plain note", note(None)
    yield "tax point date", tax_point(None, "20260105")
    yield "tax point code", tax_point("5", None)
    yield "tax point code and date", tax_point("5", "20260105")
    yield "tax point unknown code", tax_point("999", None)
    for kind in ("uri-without-scheme", "uri-unknown-scheme", "uri-ok", "legal-org-unknown-scheme"):
        yield f"seller {kind}", seller_contact(kind)
    yield "delivery date invalid", delivery_date("20260230")
    yield "delivery date ISO", delivery_date("2026-01-05")


def cii_targeted(base: Document) -> Iterator[Mutant]:
    targets = [*_category_variants(_Cii), *_cii_other_targets()]
    return mutants_of(base, ((f"targeted: {label}", mutate) for label, mutate in targets))


# ---- asserts on the presence or cardinality of elements (read from the rule set's XSLT) ---------------------

_STEP = r"(?:@[\w.-]+(?::[\w.-]+)?|[\w.-]+:[\w.-]+)"
_SIMPLE_PATH = rf"{_STEP}(?:/{_STEP})*"
_NOT = re.compile(rf"^\(?\s*not\(({_SIMPLE_PATH})\)\s*\)?$")
_NOT_OR = re.compile(rf"^\(?\s*not\s*\(({_SIMPLE_PATH})\)\s+or\s")
_AT_MOST = re.compile(rf"^\(?\s*(?:not\(({_SIMPLE_PATH})\)\s+or\s+)?count\(({_SIMPLE_PATH})\)\s*(<=|=)\s*(\d)\s*\)?$")
XSL_NS = "http://www.w3.org/1999/XSL/Transform"
SVRL_NS = "http://purl.oclc.org/dsdl/svrl"


@dataclasses.dataclass(frozen=True)
class _Shape:
    rule: str  # assert id
    context: str  # XPath 1.0 for lxml, from the rule's match pattern
    path: str
    copies: int  # how many to create: 1 for not(P), N+1 for count(P) <= N
    avoid: tuple[str, ...] = ()  # context elements the test exempts (``or self::ram:X``)


def _lxml_context(raw: str, namespaces: dict[str, str]) -> str | None:
    """A schematron rule context (an XSLT match pattern, XPath 2.0) as an XPath 1.0 lxml can select, or None."""
    branches = [b.strip() for b in raw.split("|")]
    context = " | ".join(b if b.startswith("/") else f"//{b}" for b in branches)
    context = re.sub(r"=\s*(true|false)\(\)", r"='\1'", context)  # XPath 2.0 casts; lxml's 1.0 would not
    context = re.sub(
        r"ends-with\(name\(\),\s*'([^']+)'\)",
        lambda m: f"substring(name(), string-length(name()) - {len(m.group(1)) - 1}) = '{m.group(1)}'",
        context,
    )
    try:
        etree.XPath(context, namespaces=namespaces)
    except etree.XPathSyntaxError:
        return None
    return context


@functools.cache
def presence_shapes(xslt: Path) -> tuple[tuple[_Shape, ...], dict[str, str]]:
    """The asserts of `xslt` that forbid an element (``not(P)``) or bound its count, and the XSLT's namespaces."""
    root = etree.parse(str(xslt)).getroot()
    namespaces = {k: v for k, v in root.nsmap.items() if k}
    shapes = []
    for t in root.iter(f"{{{XSL_NS}}}template"):
        fired = t.find(f"{{{SVRL_NS}}}fired-rule")
        if fired is None or not fired.get("context"):
            continue
        context = _lxml_context(fired.get("context"), namespaces)
        if context is None:
            continue
        for a in t.iter(f"{{{SVRL_NS}}}failed-assert"):
            test = " ".join((a.get("test") or "").split())
            test = re.sub(rf"\(({_STEP})\s*\|\s*{_STEP}\)/", r"\1/", test)  # (A|B)/c -> A/c
            rid = a.xpath("string(xsl:attribute[@name='id'])", namespaces={"xsl": XSL_NS})
            if m := re.fullmatch(r"\(?\s*not\(//@([\w.-]+)\)\s*\)?", test):  # an attribute nowhere
                shapes.append(_Shape(rid, "/*/*[1]", "@" + m.group(1), 1))
                continue
            if m := re.fullmatch(rf"\(?\s*not\(//({_SIMPLE_PATH})\)\s*\)?", test):  # a path nowhere
                steps = m.group(1).split("/")
                where = "//" + "/".join(steps[:-1]) if len(steps) > 1 else "/*"
                shapes.append(_Shape(rid, where, steps[-1], 1))
                continue
            if m := _AT_MOST.match(test):
                limit = int(m.group(4))
                shapes.append(_Shape(rid, context, m.group(2), limit + 1 if m.group(3) == "<=" else max(2, limit + 1)))
            elif m := _NOT.match(test) or _NOT_OR.match(test):
                avoid = tuple(re.findall(r"self::[\w.-]+:([\w.-]+)", test))
                shapes.append(_Shape(rid, context, m.group(1), 1, avoid))
    return tuple(shapes), namespaces


def _plausible(local: str, parent: etree._Element) -> str:
    """A value a new element can carry without stopping the run (dates, amounts, indicators)."""
    cii = parent.tag.startswith(RAM) or parent.tag.startswith("{urn:un:unece")
    if "Date" in local:
        return "20260105" if cii else "2026-01-05"
    if local.endswith("Indicator"):
        return "true"
    if local.endswith(("Amount", "Quantity", "Measure", "Numeric", "Percent", "Rate")):
        return "1.00"
    return "1"


def _build(node: etree._Element, path: str, copies: int, namespaces: dict[str, str]) -> bool:
    steps = path.split("/")
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        if step.startswith("@"):
            name = step[1:]
            if ":" in name:
                prefix, local = name.split(":")
                name = f"{{{namespaces[prefix]}}}{local}"
            node.set(name, "1")
            return True
        prefix, local = step.split(":")
        if prefix not in namespaces:
            return False
        tag = f"{{{namespaces[prefix]}}}{local}"
        found = node.find(tag)
        if last and copies == 1 and found is not None:
            return False  # already there: the assert fails as it is
        if last or found is None:
            existing = len(node.findall(tag))
            for _ in range(max(1, copies - existing) if last else 1):
                found = etree.SubElement(node, tag)
                found.text = _plausible(local, node)
        node = found
    return True


def presence_mutants(base: Document, xslt: Path, per_mutant: int = 5, seed: int = SEED) -> Iterator[Mutant]:
    """Mutants of `base` that add forbidden elements (`per_mutant` asserts at a time) or one too many (alone)."""
    return presence_pool_mutants([base], xslt, per_mutant, seed)


def _shape_node(root: etree._Element, shape: _Shape, namespaces: dict[str, str]) -> etree._Element | None:
    """The context node to change: the last one the test does not exempt (the first is often matched by an
    earlier, more specific rule of the same pattern)."""
    nodes = [n for n in root.xpath(shape.context, namespaces=namespaces) if isinstance(n, etree._Element)]
    nodes = [n for n in nodes if _local(n.tag) not in shape.avoid]
    return nodes[-1] if nodes else None


def presence_pool_mutants(pool: list[Document], xslt: Path, per_mutant: int = 5, seed: int = SEED) -> Iterator[Mutant]:
    """`presence_mutants` over a pool: each shape goes to the first base of `pool` that has its context."""
    shapes, namespaces = presence_shapes(xslt)
    roots = [etree.fromstring(b.xml) for b in pool]
    groups: dict[int, list[_Shape]] = {}
    for shape in shapes:
        for i, root in enumerate(roots):
            try:
                if root.xpath(shape.context, namespaces=namespaces):
                    groups.setdefault(i, []).append(shape)
                    break
            except etree.XPathError:
                break
    for i, group in sorted(groups.items()):
        base, root0 = pool[i], roots[i]
        random.Random(f"{seed}:presence:{base.name}:{xslt.name}").shuffle(group)
        # one too many of an element often stops the whole run (XPTY0004 in another assert): alone
        batches = [[s] for s in group if s.copies > 1]
        single = [s for s in group if s.copies == 1]
        batches += [single[k : k + per_mutant] for k in range(0, len(single), per_mutant)]
        for batch in batches:
            root = copy.deepcopy(root0)
            done = []
            for shape in batch:
                node = _shape_node(root, shape, namespaces)
                if node is not None and _build(node, shape.path, shape.copies, namespaces):
                    done.append(f"{shape.rule}:{shape.path}x{shape.copies}")
            if done:
                yield _mutant(base, root, "presence: " + ", ".join(done))


# ---- assert-directed mutations (every assert of a rule set, read from its XSLT) ---------------------------------

_REF = re.compile(
    r"(?<![\w:$@'\"/.-])((?:\.\./)*[a-z]+:[A-Za-z]+(?:/[a-z]+:[A-Za-z]+)*(?:/@[A-Za-z]+)?|@[A-Za-z]+)(?![\w(:-])"
)


@dataclasses.dataclass(frozen=True)
class _Target:
    rule: str
    context: str  # XPath 1.0 for lxml
    refs: tuple[str, ...]  # relative paths the test reads ("." when none)
    test: str = ""


@functools.cache
def assert_targets(xslt: Path) -> tuple[tuple[_Target, ...], dict[str, str]]:
    root = etree.parse(str(xslt)).getroot()
    namespaces = {k: v for k, v in root.nsmap.items() if k}
    out = []
    for t in root.iter(f"{{{XSL_NS}}}template"):
        fired = t.find(f"{{{SVRL_NS}}}fired-rule")
        if fired is None or not fired.get("context"):
            continue
        context = _lxml_context(fired.get("context"), namespaces)
        if context is None:
            continue
        for a in t.iter(f"{{{SVRL_NS}}}failed-assert", f"{{{SVRL_NS}}}successful-report"):
            test = a.get("test") or ""
            rid = a.xpath("string(xsl:attribute[@name='id'])", namespaces={"xsl": XSL_NS})
            refs = tuple(dict.fromkeys(m.group(1) for m in _REF.finditer(test))) or (".",)
            out.append(_Target(rid, context, refs, " ".join(test.split())))
    return tuple(out), namespaces


_LITERAL_CHILD = re.compile(r"([a-z]+:[A-Za-z]+)\[(?:normalize-space\()?([a-z]+:[A-Za-z]+)\)?\s*=\s*'([^']*)'")
_LITERAL_SELF = re.compile(
    r"(?:([a-z]+:[A-Za-z]+)(?:\[[^\]]*\])?/)?([a-z]+:[A-Za-z]+)\[\s*(?:normalize-space\()?\.\)?\s*=\s*'([^']*)'"
)
_LITERAL = re.compile(r"(?:normalize-space\()?([a-z]+:[A-Za-z]+)\)?\s*(?:=|!=)\s*'([^']*)'")


def _literal_mutants(
    base: Document, root0: etree._Element, target_rule: str, test: str, namespaces: dict[str, str], limit: int
) -> Iterator[Mutant]:
    """Set the elements a test compares with a literal to that literal (e.g. a line VAT category to 'AE')."""
    pairs = [(p, c, v) for p, c, v in _LITERAL_CHILD.findall(test)]
    pairs += [(p or None, c, v) for p, c, v in _LITERAL_SELF.findall(test)]
    pairs += [(None, c, v) for c, v in _LITERAL.findall(test)]
    done = 0
    seen = set()
    for parent, child, value in pairs:
        if done >= limit or (parent, child, value) in seen:
            continue
        seen.add((parent, child, value))
        xpath = f"//{parent}/{child}" if parent else f"//{child}"
        try:
            found = [e for e in root0.xpath(xpath, namespaces=namespaces) if isinstance(e, etree._Element)]
        except (etree.XPathError, KeyError):
            continue
        found = [e for e in found if (e.text or "").strip() != value and not len(e)]
        if not found:
            continue
        position = next(i for i, e in enumerate(root0.iter()) if e is found[-1])
        root = copy.deepcopy(root0)
        el = next(e for i, e in enumerate(root.iter()) if i == position)
        el.text = value
        done += 1
        yield _mutant(base, root, f"directed {target_rule}: {_path(el)}={value!r}")


def _directed_ops(el: etree._Element, rng: random.Random, n: int, test: str = "") -> list[tuple[str, Op]]:
    ops = _ops_for(el)
    kind = _value_kind(el)
    first = []
    if "contains(' " in test:  # a code list
        first += ["unknown-code", "lowercase"]
    if "substring-after" in test and "'.'" in test:
        first.append("three-decimals")
    if "count(" in test:
        first.append("duplicate")
    if "string-length" in test or "matches(" in test:
        first += ["long", "long-number", "empty"]
    first = [k for k in first if k in ops]
    if first:
        return [(k, ops[k]) for k in dict.fromkeys([*first, "remove"]) if k in ops][:n]
    preferred = {
        "number": ["zero", "negate", "plus-cent", "three-decimals", "huge", "half-cent", "hundred"],
        "code": [k for k in ops if k.startswith("code=")] + ["unknown-code", "lowercase"],
        "date": ["invalid-date", "earlier-year", "later-year", "garbage-date"],
        "text": ["empty", "blank", "long", "number-text"],
        "aggregate": ["remove", "duplicate", "empty-aggregate"],
    }[kind]
    choice = [k for k in preferred if k in ops]
    rng.shuffle(choice)
    picked = ["remove"] + choice[: n - 1] if kind != "aggregate" else choice[:n]
    return [(k, ops[k]) for k in dict.fromkeys(picked) if k in ops][:n]


def _synthesized_context(
    base: Document, root0: etree._Element, target: _Target, namespaces: dict[str, str], n: int
) -> Iterator[Mutant]:
    """The rule's context (a plain absolute path under the document element) added to `base`, with a plausible
    value, then with an odd one: the rule fires, its asserts go one way or the other."""
    for branch in target.context.split(" | "):
        steps = branch.strip().lstrip("/").split("/")
        if len(steps) < 2 or not all(re.fullmatch(_STEP, st) and not st.startswith("@") for st in steps):
            continue
        prefix, local = steps[0].split(":")
        if namespaces.get(prefix) is None or root0.tag != f"{{{namespaces[prefix]}}}{local}":
            continue
        path = "/".join(steps[1:])
        for value in ("", "x" * 40)[:n]:
            root = copy.deepcopy(root0)
            if not _build(root, path, 1, namespaces):
                break
            leaf = root.xpath(path, namespaces=namespaces)[-1]
            if value and not len(leaf):
                leaf.text = value
            shown = value[:5] + "..." if value else "plausible"
            yield _mutant(base, root, f"directed {target.rule}: context {path} added ({shown})")
        return


def directed_mutants(
    bases: list[Document],
    xslt: Path,
    per_assert: int = 2,
    seed: int = SEED,
    only: Callable[[str], bool] | None = None,
) -> Iterator[Mutant]:
    """For each assert of `xslt` (but those `presence_mutants` handle, and those `only` refuses by id): a base
    holding its context, and `per_assert` changes of what its test reads (removed, emptied, changed; added when
    absent)."""
    targets, namespaces = assert_targets(xslt)
    presence = {s.rule for s in presence_shapes(xslt)[0]}
    roots = [(b, etree.fromstring(b.xml)) for b in bases]
    for index, target in enumerate(targets):
        if target.rule in presence or (only is not None and not only(target.rule)):
            continue
        rng = random.Random(f"{seed}:directed:{xslt.name}:{index}")
        order = list(range(len(roots)))
        rng.shuffle(order)
        chosen = None
        for i in order:
            base, root0 = roots[i]
            try:
                nodes = root0.xpath(target.context, namespaces=namespaces)
            except etree.XPathError:
                break
            nodes = [n for n in nodes if isinstance(n, etree._Element)]
            if not nodes:
                continue
            node = nodes[rng.randrange(len(nodes))]
            for ref in target.refs:
                if ref == "." or ref.startswith("@"):
                    if ref.startswith("@") and ref[1:] not in node.attrib:
                        continue
                    chosen = (base, root0, node, ref)
                    break
                try:
                    found = [
                        e
                        for e in node.xpath(ref.split("/@")[0], namespaces=namespaces)
                        if isinstance(e, etree._Element)
                    ]
                except etree.XPathError:
                    continue
                if found:
                    chosen = (base, root0, found[0], "/@" + ref.split("/@")[1] if "/@" in ref else ".")
                    break
            if chosen:
                break
            chosen = (base, root0, node, "+" + target.refs[0]) if target.refs[0] not in (".",) else None
            if chosen:
                break
        if not chosen:
            if roots:  # no base has the rule's context: build it (when it is a plain path) in the first one
                yield from _synthesized_context(roots[0][0], roots[0][1], target, namespaces, per_assert)
            continue
        base, root0, el, how = chosen
        yield from _literal_mutants(base, root0, target.rule, target.test, namespaces, 2)
        position = next(i for i, e in enumerate(root0.iter()) if e is el)
        where = _path(el)

        def locate(root: etree._Element, position: int = position) -> etree._Element:
            return next(e for i, e in enumerate(root.iter()) if i == position)

        if how.startswith("+"):  # what the test reads is absent: add it
            path = how[1:].lstrip("./")
            if path.startswith("@") or not re.fullmatch(_SIMPLE_PATH, path):
                continue
            second = (
                "1.123" if "substring-after" in target.test else "x" * 400 if "string-length" in target.test else "0"
            )
            for value in ("1", second)[:per_assert]:
                root = copy.deepcopy(root0)
                node = locate(root)
                if _build(node, path, 1, namespaces):
                    for leaf in node.xpath(path, namespaces=namespaces)[-1:]:
                        if isinstance(leaf, etree._Element) and not len(leaf):
                            leaf.text = value
                    yield _mutant(base, root, f"directed {target.rule}: add {path}={value} under {where}")
            continue
        if how.startswith("/@") or how.startswith("@"):
            attr = how.split("@")[1]
            for op in list(_attr_ops(attr))[:per_assert]:
                root = copy.deepcopy(root0)
                node = locate(root)
                if attr in node.attrib and _attr_ops(attr)[op](node, attr):
                    yield _mutant(base, root, f"directed {target.rule}: {op} {where}/@{attr}")
            continue
        for name, _ in _directed_ops(el, rng, per_assert, target.test):
            root = copy.deepcopy(root0)
            node = locate(root)
            if _ops_for(node)[name](node):
                yield _mutant(base, root, f"directed {target.rule}: {name} {where}")


# ---- the whole set --------------------------------------------------------------------------------------------

#: generic mutants per base document: generated bases are small and known, the corpus is varied
GENERIC_PER_GENERATED = {"plain": 25, "fr": 30, "fx": 20}
GENERIC_PER_CORPUS = 6
DIRECTED_PER_ASSERT = 2
DIRECTED_PROFILES = ("minimum", "basicwl", "basic", "en16931")
#: the generated bases that also get every targeted variant (the Factur-X ones get every other one)
TARGETED_BASES = ("gen:ubl-inv:3l:s2", "gen:ubl-cn:2l:s4", "gen:cii-inv:3l:s2", "gen:cii-cn:2l:s4")
MAX_CORPUS_BASE_BYTES = 400_000  # bigger examples (an embedded 3 MB attachment) are judged, not mutated


def mutants(corpus: Path | None, seed: int = SEED) -> list[Mutant]:
    """The whole deterministic list of mutants (`corpus` None: generated bases only)."""
    return list(_unique(corpus, seed))


@functools.cache
def _cached(corpus: Path | None, seed: int) -> tuple[Mutant, ...]:
    return tuple(_unique(corpus, seed))


def _unique(corpus: Path | None, seed: int) -> Iterator[Mutant]:
    """`_mutants` without repeats (two ways to the same change of the same base)."""
    seen: set[str] = set()
    for m in _mutants(corpus, seed):
        if m.name not in seen:
            seen.add(m.name)
            yield m


def cached_mutants(corpus: Path | None, seed: int = SEED) -> tuple[Mutant, ...]:
    return _cached(corpus, seed)


def _mutants(corpus: Path | None, seed: int) -> Iterator[Mutant]:
    from validators import schematron

    sets = schematron.discover(corpus / "schematron" if corpus else None)
    generated = generated_documents()
    corpus_docs = [d for d in corpus_documents(corpus) if len(d.xml) <= MAX_CORPUS_BASE_BYTES] if corpus else []
    for base in generated:
        family = "fx" if base.profile else "fr" if base.french else "plain"
        yield from generic_mutants(base, GENERIC_PER_GENERATED[family], seed)
        if base.name in TARGETED_BASES:
            yield from (ubl_targeted(base) if base.syntax == "ubl" else cii_targeted(base))
        elif base.profile and base.name.endswith(":1l:s1"):
            yield from presence_mutants(base, Path(sets.facturx[base.profile].path), seed=seed)
            offset = list(FACTURX_GUIDELINES).index(base.profile) % 2  # alternate halves between profiles
            yield from list(cii_targeted(base))[offset :: 1 if base.profile == "extended" else 2]
    # every EN 16931 assert: what its test reads, changed in a base that has its context
    for syntax, rs in (("ubl", sets.ubl), ("cii", sets.cii)):
        pool = [d for d in (*generated, *corpus_docs) if d.syntax == syntax and not d.profile and not d.french]
        first = [d for d in pool if d.name in TARGETED_BASES]
        yield from presence_pool_mutants(first + [d for d in pool if d not in first], Path(rs.path), seed=seed)
        yield from directed_mutants(pool, Path(rs.path), DIRECTED_PER_ASSERT, seed)
    # the Factur-X profiles (but EXTENDED, 1,464 asserts): one change per assert
    for profile in DIRECTED_PROFILES:
        pool = [d for d in (*generated, *corpus_docs) if d.profile == profile]
        yield from directed_mutants(pool, Path(sets.facturx[profile].path), 1, seed)
    # EXTENDED: its schema-like asserts, from a skeleton holding every plain-path context (extended_mutants)
    from tests.support import extended_mutants  # it builds on this module

    extended_base = next(d for d in generated if d.profile == "extended" and d.name.endswith(":1l:s1"))
    extended = Path(sets.facturx["extended"].path)
    yield from extended_mutants.extended_mutants(extended_base, extended)
    # ... and its business rules (EN 16931 and BR-FXEXT ones), one change each, as for the other profiles
    pool = [d for d in generated if d.profile == "extended"]
    yield from directed_mutants(pool, extended, 1, seed, only=lambda rule: not rule.startswith("FX-SCH-"))
    # BR-FR: one change per assert, in the documents that satisfy it or are French
    for syntax in ("ubl", "cii"):
        pool = [d for d in (*generated, *corpus_docs) if d.syntax == syntax and d.french]
        yield from directed_mutants(pool, Path(sets.br_fr[syntax].path), 1, seed)
    yield from _brfr_directed(generated)
    for base in corpus_docs:
        yield from generic_mutants(base, GENERIC_PER_CORPUS, seed)


def _brfr_directed(generated: tuple[Document, ...]) -> Iterator[Mutant]:
    """BR-FR: each assert made to fail, from a French base given every optional part (`brfr_mutants`)."""
    from tests.support import brfr_mutants as fr  # it builds on this module

    by_name = {d.name: d for d in generated}
    from tests.support import brfr_ubl as fr_ubl

    yield from fr.directed(by_name[fr.CII_BASE], fr.RICH_CII, fr.CII + fr.CII_SPECIAL)
    yield from fr.directed(by_name[fr_ubl.UBL_BASE], fr_ubl.RICH_UBL, fr_ubl.UBL)
    yield from fr.directed(by_name[fr_ubl.UBL_CN_BASE], (), fr_ubl.UBL_CN)
