"""Platform rules (RLS-P..): duplicates across and within flows, attachment limits, amounts.

Documents are built from relais.generate and edited with lxml; duplicates across
flows run on a real store (SQLite and PostgreSQL).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import doctest
import importlib
import io
from decimal import Decimal

import pytest
import sqlalchemy as sa
from lxml import etree

from flows.domain.model import (
    Category,
    Channel,
    Container,
    Flag,
    Flow,
    Invoice,
    InvoiceStatus,
    Syntax,
    ValidationError,
    invoice_id,
)
from flows.domain.rule import Stage
from flows.io import attachments as att
from flows.io import detect, extract, safexml
from flows.store import Store
from relais import generate as gen
from validators import runner
from validators.context import InvoiceContext
from validators.limits import Limits
from validators.platform import duplicate_invoice
from validators.platform.duplicate_invoice import Seen

NS = extract.NS
CBC, CAC, RAM = (f"{{{NS[p]}}}" for p in ("cbc", "cac", "ram"))
SUPPLIER, SUPPLIER_NAME = gen.sample_suppliers()[0]
OTHER_SUPPLIER = gen.sample_suppliers()[1][0]
BUYER = gen.sample_directory()[0]
DAY = dt.date(2026, 3, 2)

RULE_MODULES = [
    "flows.io.attachments",
    "validators.limits",
    "validators.platform.duplicate_invoice",
    "validators.platform.attachment_name",
    "validators.platform.attachment_extension",
    "validators.platform.attachment_size",
    "validators.platform.attachment_unreadable",
    "validators.platform.invoice_size",
    "validators.platform.totals_mismatch",
    "validators.platform.amount_due_exceeds_total",
    "validators.platform.negative_invoice",
    "validators.platform.currency_missing",
    "validators.platform.currency_mismatch",
    "validators.context",
    "validators.runner",
]


# ---- helpers -----------------------------------------------------------------------


def spec(number: str = "F-0001", day: dt.date = DAY, supplier: str = SUPPLIER, credit_note: bool = False):
    return gen.InvoiceSpec(
        number=number,
        issue_date=day,
        supplier_siret=supplier,
        supplier_name=SUPPLIER_NAME,
        buyer=BUYER,
        buyer_siret=BUYER.siret,
        service_code=None,
        ej=None,
        lines=3,
        credit_note=credit_note,
    )


def ubl(**kw) -> etree._Element:
    return etree.fromstring(gen.invoice_xml("ubl", spec(**kw)))


def cii(**kw) -> etree._Element:
    return etree.fromstring(gen.invoice_xml("cii", spec(**kw)))


def syntax_of(root: etree._Element) -> Syntax:
    return detect.xml_syntax(etree.tostring(root))


def check_invoice(facts, syntax, tree, seen, store, limits, *, flow_id, **kw) -> list[ValidationError]:
    """The platform rules (stages STORE and DOCUMENT) on one invoice, through the runner."""
    ctx = InvoiceContext.of_document(facts, syntax, tree, limits=limits, **kw)
    ctx = dataclasses.replace(ctx, seen=seen, store=store, flow_id=flow_id)
    return runner.run(ctx, [Stage.STORE, Stage.DOCUMENT])


def dup(facts, seen, store, *, flow_id) -> ValidationError | None:
    return duplicate_invoice.check(InvoiceContext(facts=facts, seen=seen, store=store, flow_id=flow_id))


def run(root: etree._Element, limits: Limits = Limits(), **kw) -> list[ValidationError]:
    syntax = syntax_of(root)
    facts = extract.extract(syntax, root.getroottree())
    kw.setdefault("xml_size", len(etree.tostring(root)))
    return check_invoice(facts, syntax, root, None, None, limits, flow_id="CPP0000000009", **kw)


def codes(errors) -> list[str]:
    return [e.rule for e in errors]


def b64(n: int) -> str:
    """Base64 of n bytes, wrapped at 76 characters like MIME."""
    text = base64.b64encode(b"\x00" * n).decode()
    return "\n".join(text[i : i + 76] for i in range(0, len(text), 76))


def add_ubl_attachment(
    root: etree._Element, filename: str | None, size: int = 100, mime: str = "application/pdf"
) -> None:
    """A cac:AdditionalDocumentReference with an embedded attachment, where UBL 2.1 puts it."""
    ref = etree.Element(f"{CAC}AdditionalDocumentReference")
    etree.SubElement(ref, f"{CBC}ID").text = f"DOC-{len(root.findall(f'{CAC}AdditionalDocumentReference')) + 1}"
    obj = etree.SubElement(etree.SubElement(ref, f"{CAC}Attachment"), f"{CBC}EmbeddedDocumentBinaryObject")
    obj.set("mimeCode", mime)
    if filename is not None:
        obj.set("filename", filename)
    obj.text = b64(size)
    root.find(f"{CAC}AccountingSupplierParty").addprevious(ref)


def add_cii_attachment(
    root: etree._Element, filename: str | None, size: int = 100, mime: str = "application/pdf"
) -> None:
    agreement = root.find(".//ram:ApplicableHeaderTradeAgreement", NS)
    ref = etree.SubElement(agreement, f"{RAM}AdditionalReferencedDocument")
    etree.SubElement(ref, f"{RAM}IssuerAssignedID").text = "DOC"
    etree.SubElement(ref, f"{RAM}TypeCode").text = "916"
    obj = etree.SubElement(ref, f"{RAM}AttachmentBinaryObject")
    obj.set("mimeCode", mime)
    if filename is not None:
        obj.set("filename", filename)
    obj.text = b64(size)


def set_amount(root: etree._Element, path: str, value: str) -> None:
    el = root.find(path, NS)
    assert el is not None, path
    el.text = value


# ---- doctests and the catalogue -------------------------------------------------------


@pytest.mark.parametrize("name", RULE_MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0


def test_every_platform_rule_runs_from_the_runner():
    from validators.rules import all_rules

    platform = [m for m in runner.rules() if m.RULE.category is Category.PLATFORM]
    assert {m.RULE.code for m in platform} == {r.code for r in all_rules() if r.category is Category.PLATFORM}
    assert all(m.RULE.flag is Flag.FATAL for m in platform)
    # the duplicate and association rules need the store: the pipeline runs them, a validation worker never does
    assert [m.RULE.code for m in runner.rules([Stage.STORE])] == ["RLS-P01", *(f"RLS-P{n}" for n in range(16, 21))]
    assert "RLS-P01" not in {m.RULE.code for m in runner.rules([Stage.DOCUMENT])}


def test_a_correct_generated_invoice_passes_every_platform_rule():
    assert run(ubl()) == []
    assert run(cii()) == []
    assert run(ubl(credit_note=True)) == []


# ---- RLS-P01 duplicates ---------------------------------------------------------------


def _flow(store: Store) -> Flow:
    return store.create_flow(
        Flow(id="", partner="op-a", channel=Channel.FOLDER, original_name="f.xml", size=1, sha256="cd" * 32)
    )


def _save(store: Store, flow: Flow, *specs: tuple[str, str, dt.date, InvoiceStatus]) -> list[Invoice]:
    invs = [
        Invoice(
            id=invoice_id(flow.id, pos),
            flow_id=flow.id,
            position=pos,
            entry_name=f"{number}.xml",
            syntax=Syntax.UBL_INVOICE,
            supplier_id=supplier,
            number=number,
            issue_date=day,
            status=status,
        )
        for pos, (supplier, number, day, status) in enumerate(specs, 1)
    ]
    store.save_invoices(invs, [])
    return invs


def test_the_lookup_index_exists(store):
    indexes = {ix["name"]: ix["column_names"] for ix in sa.inspect(store.engine).get_indexes("invoices")}
    assert indexes["ix_invoices_supplier_number"] == ["supplier_id", "number", "issue_date"]


def test_find_invoice_across_flows(store):
    first = _flow(store)
    accepted, routed_back, rejected = _save(
        store,
        first,
        (SUPPLIER, "F-1", dt.date(2025, 12, 31), InvoiceStatus.DEPOSEE),
        (SUPPLIER, "F-2", dt.date(2025, 6, 1), InvoiceStatus.REJETEE_ROUTAGE),
        (SUPPLIER, "F-3", dt.date(2025, 6, 1), InvoiceStatus.REJETEE),
    )
    assert store.find_invoice(SUPPLIER, "F-1", 2025) == accepted.id
    assert store.find_invoice(SUPPLIER, "F-1", 2025, exclude_flow_id=first.id) is None  # its own flow
    assert store.find_invoice(SUPPLIER, "F-1", 2026) is None  # another year
    assert store.find_invoice(OTHER_SUPPLIER, "F-1", 2025) is None  # another supplier
    assert store.find_invoice(SUPPLIER, "f-1", 2025) is None  # numbers are compared as written
    assert store.find_invoice(SUPPLIER, "F-2", 2025) is None  # rejected (routing): may be resent
    assert store.find_invoice(SUPPLIER, "F-3", 2025) is None  # rejected


def test_duplicate_across_flows_with_a_real_store(store):
    first = _flow(store)
    (earlier,) = _save(store, first, (SUPPLIER, "F-0001", DAY, InvoiceStatus.MISE_A_DISPOSITION))
    second = _flow(store)
    root = ubl()
    facts = extract.extract(Syntax.UBL_INVOICE, root.getroottree())
    assert facts.supplier_id == SUPPLIER and facts.number == "F-0001"
    errors = check_invoice(facts, Syntax.UBL_INVOICE, root, Seen(), store, Limits(), flow_id=second.id)
    assert codes(errors) == ["RLS-P01"]
    assert earlier.id in errors[0].message and errors[0].location == "BT-1 (invoice number)"
    # the same number from another supplier, or in another year, is no duplicate
    for other in (ubl(supplier=OTHER_SUPPLIER), ubl(day=dt.date(2027, 1, 4))):
        f = extract.extract(Syntax.UBL_INVOICE, other.getroottree())
        assert dup(f, Seen(), store, flow_id=second.id) is None
    # a credit note with the number of an invoice of the same supplier and year is one (documented choice)
    credit = extract.extract(Syntax.UBL_CREDITNOTE, ubl(credit_note=True).getroottree())
    assert dup(credit, Seen(), store, flow_id=second.id).rule == "RLS-P01"
    # a flow being reprocessed does not collide with its own saved invoices
    assert dup(facts, Seen(), store, flow_id=first.id) is None


def test_a_rejected_invoice_may_be_resent_with_the_same_number(store):
    first = _flow(store)
    _save(store, first, (SUPPLIER, "F-0001", DAY, InvoiceStatus.REJETEE))
    facts = extract.extract(Syntax.CII, cii().getroottree())
    assert dup(facts, Seen(), store, flow_id=_flow(store).id) is None


def test_duplicates_within_a_flow():
    """The pipeline's loop: check, then record the invoice in `seen` only when it is accepted."""

    def facts(number, day=DAY, supplier=SUPPLIER):
        return extract.Facts(supplier_id=supplier, number=number, issue_date=day)

    seen = Seen()
    verdicts = []
    for f, rejected_by_other_rules in [
        (facts("A"), False),
        (facts("B"), True),  # rejected (e.g. unknown SIRET): does not count
        (facts("A"), False),  # duplicate of the first
        (facts("B"), False),  # the corrected resend of the rejected one
        (facts("A", supplier=OTHER_SUPPLIER), False),
        (facts("A", day=dt.date(2027, 1, 1)), False),
        (extract.Facts(supplier_id=SUPPLIER, number=None, issue_date=DAY), False),  # no key: not checked
    ]:
        e = dup(f, seen, None, flow_id="CPP1")
        verdicts.append(e.rule if e else None)
        if e is None and not rejected_by_other_rules:
            seen.add(f)
    assert verdicts == [None, None, "RLS-P01", None, None, None, None]
    assert len(seen) == 4
    assert "earlier in this flow" in dup(facts("A"), seen, None, flow_id="CPP1").message


# ---- attachments: reading ---------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 57, 58, 59, 1000])
def test_base64_size_is_the_decoded_length(n):
    data = bytes(range(256)) * 4
    text = base64.encodebytes(data[:n]).decode()  # with line breaks
    assert att.base64_size(text) == n
    assert att.base64_size(text.replace("\n", "").rstrip("=")) == n  # unpadded


def test_attachments_of_ubl_and_cii_with_their_places():
    root = ubl()
    add_ubl_attachment(root, "devis.pdf", 1234)
    add_ubl_attachment(root, "photo.PNG", 10, "image/png")
    found = att.attachments(Syntax.UBL_INVOICE, root)
    assert [(a.name, a.mime, a.size) for a in found] == [
        ("devis.pdf", "application/pdf", 1234),
        ("photo.PNG", "image/png", 10),
    ]
    assert found[1].location == "AdditionalDocumentReference[2]/Attachment (photo.PNG)"
    assert extract.extract(Syntax.UBL_INVOICE, root.getroottree()).has_attachments

    root = cii()
    add_cii_attachment(root, "bon.pdf", 77)
    (a,) = att.attachments(Syntax.CII, root)
    assert (a.name, a.size) == ("bon.pdf", 77)
    assert a.location == (
        "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement/"
        "AdditionalReferencedDocument/AttachmentBinaryObject (bon.pdf)"
    )


def test_documents_with_attachments_stay_xsd_valid():
    """The test documents are realistic: the attachments sit where the schemas put them."""
    from validators.xsd import XsdValidator

    xsd = XsdValidator()
    root = ubl()
    add_ubl_attachment(root, "devis.pdf")
    assert xsd.validate(Syntax.UBL_INVOICE, safexml.parse(etree.tostring(root))) == []
    root = cii()
    add_cii_attachment(root, "devis.pdf")
    assert xsd.validate(Syntax.CII, safexml.parse(etree.tostring(root))) == []


# ---- attachments: rules -----------------------------------------------------------------


@pytest.mark.parametrize("make, add", [(ubl, add_ubl_attachment), (cii, add_cii_attachment)])
def test_attachment_name_length(make, add):
    root = make()
    add(root, "n" * 46 + ".pdf")  # 50 characters: allowed
    assert run(root) == []
    add(root, "n" * 47 + ".pdf")  # 51
    errors = run(root)
    assert codes(errors) == ["RLS-P02"]
    assert "[2]" in errors[0].location and "51 characters, at most 50" in errors[0].message


@pytest.mark.parametrize("make, add", [(ubl, add_ubl_attachment), (cii, add_cii_attachment)])
def test_attachment_extension(make, add):
    root = make()
    add(root, "ANNEXE.PDF")
    add(root, "tableau.xlsx")
    add(root, "archive.tar.gz")
    assert run(root) == []
    add(root, "setup.exe", mime="application/octet-stream")
    add(root, None)
    add(root, "README")
    errors = run(root)
    assert codes(errors) == ["RLS-P03"] * 3
    assert "'.exe'" in errors[0].message
    assert "no file name" in errors[1].message and "no extension" in errors[2].message
    assert "(setup.exe)" in errors[0].location
    assert len(run(root, Limits(allowed_extensions=frozenset({"PDF", "xlsx", "gz", "exe", "txt"})))) == 2


def test_attachment_size_limit_is_exclusive_at_10_mb():
    root = ubl()
    add_ubl_attachment(root, "plan.pdf", 9_999_999)
    assert run(root) == []
    root = ubl()
    add_ubl_attachment(root, "plan.pdf", 10_000_000)  # base64 text set through lxml, not parsed
    errors = run(root)
    assert codes(errors) == ["RLS-P04"]
    assert errors[0].message.endswith("10000000 bytes, it must be under 10000000")


def test_invoice_and_attachments_total_limit():
    root = cii()
    add_cii_attachment(root, "a.pdf", 900)
    add_cii_attachment(root, "b.pdf", 900)
    data = etree.tostring(root)
    found = att.attachments(Syntax.CII, root)
    # the XML counts without the base64 text, which counts decoded: 1,800 bytes, not ~2,400 characters
    total = att.total_size(len(data), found)
    assert total == len(data) - sum(a.encoded for a in found) + 1_800 and sum(a.encoded for a in found) > 2_400
    at_limit = Limits(attachment_max_bytes=1_000, invoice_total_max_bytes=total)
    assert run(root, at_limit, xml_size=len(data)) == []
    over = Limits(attachment_max_bytes=1_000, invoice_total_max_bytes=total - 1)
    errors = run(root, over, xml_size=len(data))
    assert codes(errors) == ["RLS-P05"] and errors[0].location == "/"
    assert errors[0].message.endswith(f"{total} bytes, at most {total - 1}")


# ---- attachments of a Factur-X PDF --------------------------------------------------------


def _with_attachments(pdf: bytes, files: dict[str, bytes]) -> bytes:
    """`pdf` with more embedded files, Flate-compressed as a PDF producer would store them."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    for name, data in files.items():
        ref = writer.add_attachment(name, data).pdf_object["/EF"].raw_get("/F")
        writer._replace_object(ref, ref.get_object().flate_encode())  # add_attachment stores it raw
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _run_pdf(pdf: bytes, limits: Limits = Limits()) -> list[ValidationError]:
    """As the pipeline does it: detect, parse, extract, check."""
    detected = detect.detect(Container.PDF, pdf)
    tree = safexml.parse(detected.xml)
    facts = extract.extract(detected.syntax, tree)
    return check_invoice(
        facts,
        detected.syntax,
        tree,
        Seen(),
        None,
        limits,
        flow_id="CPP1",
        xml_size=len(detected.xml),
        pdf=pdf,
        xml_name=detected.embedded_name,
    )


def test_facturx_pdf_attachments():
    pdf = gen.facturx_pdf(spec())
    assert att.pdf_attachments(pdf, "factur-x.xml") == []
    assert _run_pdf(pdf) == []
    pdf2 = _with_attachments(pdf, {"bon-de-livraison.pdf": b"%PDF-1.4 ...", "virus.exe": b"MZ" * 10})
    found = att.pdf_attachments(pdf2, "factur-x.xml")
    assert [(a.name, a.size) for a in found] == [("bon-de-livraison.pdf", 12), ("virus.exe", 20)]
    assert found[1].location.startswith("PDF/EmbeddedFiles[") and found[1].location.endswith("(virus.exe)")
    errors = _run_pdf(pdf2)
    assert codes(errors) == ["RLS-P03"] and "virus.exe" in errors[0].location


def test_facturx_pdf_attachment_size_and_total():
    pdf = _with_attachments(gen.facturx_pdf(spec()), {"scan.pdf": b"\x00" * 10_000_001, "n" * 51 + ".txt": b"x"})
    assert len(pdf) < 200_000  # zeros compress: the PDF is small, the attachment is not
    assert sorted(codes(_run_pdf(pdf))) == ["RLS-P02", "RLS-P04"]
    # the total counts the decoded attachments, not the PDF's compressed size
    limits = Limits(attachment_max_bytes=20_000_000, invoice_total_max_bytes=10_000_000)
    assert "RLS-P05" in codes(_run_pdf(pdf, limits))


def test_unreadable_pdf_attachments_fail_closed(monkeypatch):
    from pypdf.errors import LimitReachedError
    from pypdf.filters import ZLIB_MAX_OUTPUT_LENGTH
    from pypdf.generic import EmbeddedFile

    pdf = _with_attachments(gen.facturx_pdf(spec()), {"annexe.pdf": b"x" * 100})
    real = EmbeddedFile.content

    def bomb(self):
        if self.name == "annexe.pdf":
            raise LimitReachedError("limit reached")
        return real.fget(self)

    monkeypatch.setattr(EmbeddedFile, "content", property(bomb))
    (a,) = att.pdf_attachments(pdf, "factur-x.xml")
    assert (a.size, a.at_least) == (ZLIB_MAX_OUTPUT_LENGTH, True)
    errors = _run_pdf(pdf)
    assert codes(errors) == ["RLS-P04"] and f"more than {ZLIB_MAX_OUTPUT_LENGTH} bytes" in errors[0].message

    def broken(self):
        if self.name == "annexe.pdf":
            raise ValueError("bad stream")
        return real.fget(self)

    monkeypatch.setattr(EmbeddedFile, "content", property(broken))
    assert codes(_run_pdf(pdf)) == ["RLS-P11"]
    assert att.pdf_attachments(b"%PDF-1.7 not really", "factur-x.xml") == [att.Attachment(None, None, None, "PDF")]


# ---- amounts ------------------------------------------------------------------------------

UBL_TOTAL = "cac:LegalMonetaryTotal"
CII_SUM = ".//ram:SpecifiedTradeSettlementHeaderMonetarySummation"


def test_totals_mismatch_ubl_and_cii():
    root = ubl()
    gross = Decimal(root.findtext(f"{UBL_TOTAL}/cbc:TaxInclusiveAmount", namespaces=NS))
    set_amount(root, f"{UBL_TOTAL}/cbc:TaxInclusiveAmount", str(gross + Decimal("0.01")))
    set_amount(root, f"{UBL_TOTAL}/cbc:PayableAmount", str(gross + Decimal("0.01")))
    assert run(root) == []  # within the tolerance: BR-CO-15 (exact) judges
    set_amount(root, f"{UBL_TOTAL}/cbc:TaxInclusiveAmount", str(gross + 1))
    set_amount(root, f"{UBL_TOTAL}/cbc:PayableAmount", str(gross + 1))
    assert codes(run(root)) == ["RLS-P06"]
    # reported once: not again when the EN 16931 rule with the same meaning already fired
    prior = [ValidationError("BR-CO-15", Flag.FATAL, "/", "x")]
    assert run(root, prior=prior) == []
    assert codes(run(root, prior=[ValidationError("BR-CO-15", Flag.WARNING, "/", "x")])) == ["RLS-P06"]

    root = cii()
    set_amount(root, f"{CII_SUM}/ram:TaxBasisTotalAmount", "1.00")
    errors = run(root)
    assert codes(errors) == ["RLS-P06"] and errors[0].location == "BT-112 (invoice total amount with VAT)"


def test_vat_total_in_accounting_currency_first_is_not_taken_for_bt110():
    root = ubl()
    first = root.find("cac:TaxTotal", NS)
    accounting = etree.Element(f"{CAC}TaxTotal")
    etree.SubElement(accounting, f"{CBC}TaxAmount", currencyID="SEK").text = "9999.00"
    first.addprevious(accounting)  # BT-111 before BT-110 in document order
    facts = extract.extract(Syntax.UBL_INVOICE, root.getroottree())
    assert facts.total_vat == Decimal(first.findtext("cbc:TaxAmount", namespaces=NS))
    assert facts.total_vat_currency == "EUR"
    assert run(root) == []


def test_amount_due_above_total():
    root = ubl()
    gross = Decimal(root.findtext(f"{UBL_TOTAL}/cbc:TaxInclusiveAmount", namespaces=NS))
    set_amount(root, f"{UBL_TOTAL}/cbc:PayableAmount", str(gross + 50))
    errors = run(root)
    assert codes(errors) == ["RLS-P07"] and errors[0].location == "BT-115 (amount due for payment)"
    assert run(root, prior=[ValidationError("BR-CO-16", Flag.FATAL, "/", "x")]) == []
    # a prepaid amount (of any sign) is BR-CO-16's business, not this rule's
    prepaid = etree.Element(f"{CBC}PrepaidAmount", currencyID="EUR")
    prepaid.text = "-50.00"
    root.find(f"{UBL_TOTAL}/cbc:PayableAmount", NS).addprevious(prepaid)
    facts = extract.extract(Syntax.UBL_INVOICE, root.getroottree())
    assert facts.prepaid_amount == Decimal("-50.00")
    assert run(root) == []
    # less than the total (a prepayment) is not flagged
    root = cii()
    set_amount(root, f"{CII_SUM}/ram:DuePayableAmount", "0.00")
    assert run(root) == []


def test_amount_due_rounding_is_allowed():
    root = cii()
    s = root.find(CII_SUM, NS)
    gross = Decimal(s.findtext("ram:GrandTotalAmount", namespaces=NS))
    rounding = etree.Element(f"{RAM}RoundingAmount")
    rounding.text = "0.40"
    s.find("ram:GrandTotalAmount", NS).addnext(rounding)
    set_amount(root, f"{CII_SUM}/ram:DuePayableAmount", str(gross + Decimal("0.40")))
    assert extract.extract(Syntax.CII, root.getroottree()).rounding_amount == Decimal("0.40")
    assert run(root) == []


def _negate(root: etree._Element, paths: list[str]) -> None:
    for path in paths:
        for el in root.findall(path, NS):
            el.text = str(-Decimal(el.text))


UBL_AMOUNTS = [f"{UBL_TOTAL}/*", "cac:TaxTotal/cbc:TaxAmount"]
CII_AMOUNTS = [f"{CII_SUM}/*"]


def test_negative_invoice_must_be_a_credit_note():
    root = ubl()
    _negate(root, UBL_AMOUNTS)
    errors = run(root)
    assert codes(errors) == ["RLS-P08"] and errors[0].message.endswith(
        root.findtext(f"{UBL_TOTAL}/cbc:TaxInclusiveAmount", namespaces=NS)
    )
    root = cii()
    _negate(root, CII_AMOUNTS)
    assert codes(run(root)) == ["RLS-P08"]
    credit = ubl(credit_note=True)
    _negate(credit, UBL_AMOUNTS)
    assert run(credit) == []  # a negative credit note is EN 16931's to judge
    root = cii()
    root.find(".//rsm:ExchangedDocument/ram:TypeCode", {**NS, "rsm": NS["rsm"]}).text = "384"
    _negate(root, CII_AMOUNTS)
    assert run(root) == []  # a corrective invoice may be negative


def test_currency_missing_and_mismatch():
    root = ubl()
    root.remove(root.find("cbc:DocumentCurrencyCode", NS))
    assert codes(run(root)) == ["RLS-P09"]
    assert run(root, prior=[ValidationError("BR-05", Flag.FATAL, "/", "x")]) == []
    root = cii()
    el = root.find(".//ram:InvoiceCurrencyCode", NS)
    el.getparent().remove(el)
    assert codes(run(root)) == ["RLS-P09"]

    root = ubl()
    root.find(f"{UBL_TOTAL}/cbc:PayableAmount", NS).set("currencyID", "USD")
    errors = run(root)
    assert codes(errors) == ["RLS-P10"] and "USD in an invoice in EUR" in errors[0].message
    root = cii()
    root.find(f"{CII_SUM}/ram:GrandTotalAmount", NS).set("currencyID", "GBP")
    assert codes(run(root)) == ["RLS-P10"]
    root = cii()  # BT-111: the VAT total in accounting currency may differ
    vat = root.find(f"{CII_SUM}/ram:TaxTotalAmount", NS)
    extra = etree.Element(f"{RAM}TaxTotalAmount", currencyID="SEK")
    extra.text = "500.00"
    vat.addnext(extra)
    assert run(root) == []


def test_attachment_findings_read_attachment_by_attachment():
    """Per-attachment rules run each attachment in turn: the findings keep the document's order."""
    root = ubl()
    add_ubl_attachment(root, "x" * 60 + ".exe")
    add_ubl_attachment(root, "y" * 60 + ".pdf")
    errors = run(root)
    assert codes(errors) == ["RLS-P02", "RLS-P03", "RLS-P02"]
    assert ["[1]" in e.location for e in errors] == [True, True, False]


def test_all_rules_report_together():
    root = ubl()
    add_ubl_attachment(root, "x" * 60 + ".exe")
    _negate(root, UBL_AMOUNTS)
    root.find(f"{UBL_TOTAL}/cbc:PayableAmount", NS).set("currencyID", "USD")
    assert codes(run(root)) == ["RLS-P02", "RLS-P03", "RLS-P08", "RLS-P10"]
