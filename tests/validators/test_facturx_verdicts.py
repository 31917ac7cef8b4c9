"""Every corpus Factur-X PDF gets the verdict of its folder (correct / fail), or a documented reason why not.

Run with the CEN artefacts of the corpus installed as the rules folder (what an
operator is told to do), through the same judge the pipeline's workers use.
"""

from __future__ import annotations

import pytest

from flows.domain.model import Container
from validators.document import DocumentJudge, JudgeConfig

#: Files whose corpus folder predates the artefacts Relais applies (Factur-X 1.09.2 code lists and
#: schemas, CEN 1.3.16): Relais rejects them, with exactly these rules, on purpose.
KNOWN_DISAGREEMENTS = {
    "facturx/XML-Rechnung/FX/EN16931_ElektronischeAdresse.pdf": (
        {"BR-CL-25", "FX-SCH-A-000571"},
        "electronic address scheme 9958 is no longer in the EAS code list",
    ),
    "facturx/ZUGFeRDv2/correct/intarsys/EXTENDED/zugferd_2p0_EXTENDED_Fremdwaehrung.pdf": (
        {"FX-SCH-A-000704", "FX-SCH-A-000973", "FX-SCH-A-001137"},
        "ZUGFeRD 2.0 file: scheme 9958 and reason codes ABK/CAO/ADZ left the Factur-X 1.09 code lists",
    ),
    "facturx/ZUGFeRDv2/correct/intarsys/EXTENDED/zugferd_2p0_EXTENDED_Warenrechnung.pdf": (
        {"FX-SCH-A-001084"},
        "ZUGFeRD 2.0 file: package unit codes CT/BO/BC/PX left the code list",
    ),
    "facturx/ZUGFeRDv2/correct/intarsys/MINIMUM/zugferd_2p0_MINIMUM.pdf": (
        {"XSD"},
        "ZUGFeRD 2.0 MINIMUM allowed PostcodeCode and LineTotalAmount; Factur-X 1.09 MINIMUM does not",
    ),
    "facturx/ZUGFeRDv2/correct/symtrax/Beispiele/MINIMUM/zugferd_2p1_MINIMUM_Rechnung.pdf": (
        {"XSD"},
        "ZUGFeRD 2.1 MINIMUM allowed PostcodeCode; Factur-X 1.09 MINIMUM does not",
    ),
    "facturx/ZUGFeRDv1/correct/Intarsys/ZUGFeRD_1p0_BASIC_Einfach.pdf": (
        {"RLS-T10"},
        "ZUGFeRD 1.0 (CrossIndustryDocument) is out of scope: refused as unsupported",
    ),
}


@pytest.fixture(scope="module")
def judge(cen_rules_dir):
    return DocumentJudge(JudgeConfig(rules_dir=cen_rules_dir))


def _pdfs(corpus):
    return sorted(p for p in (corpus / "facturx").rglob("*.pdf"))


def test_every_corpus_pdf_gets_its_folder_verdict(corpus, judge):
    pdfs = _pdfs(corpus)
    assert len(pdfs) == 23
    wrong = []
    for pdf in pdfs:
        rel = str(pdf.relative_to(corpus))
        verdict = judge.judge(pdf.read_bytes(), Container.PDF)
        fatal = {e.rule for e in verdict.errors if e.fatal}
        if rel in KNOWN_DISAGREEMENTS:
            rules, _reason = KNOWN_DISAGREEMENTS[rel]
            if fatal != rules:
                wrong.append((rel, "expected exactly", sorted(rules), "got", sorted(fatal)))
            continue
        expected_valid = "/correct/" in rel or rel.startswith("facturx/XML-Rechnung/")
        if verdict.rejected == expected_valid:
            wrong.append((rel, "folder says", "correct" if expected_valid else "fail", "got", sorted(fatal)))
    assert wrong == []


def test_fail_folder_verdicts_name_their_reason(corpus, judge):
    reasons = {
        "Facture_FR_EN16931.pdf": "CII-DT-031",  # currencyID on amounts, refused by the CEN CII rules
        "Avoir_FR_type380_MINIMUM.pdf": "XSD",  # InvoiceReferencedDocument is not part of MINIMUM
        "python-factur-x.pdf": "XSD",  # product Description is not part of BASIC
        "factur-x-invalid-xml-encoding-attribute.pdf": "RLS-T03",
    }
    for pdf in (corpus / "facturx/ZUGFeRDv2/fail").rglob("*.pdf"):
        verdict = judge.judge(pdf.read_bytes(), Container.PDF)
        assert reasons[pdf.name] in {e.rule for e in verdict.errors if e.fatal}, (pdf.name, verdict.errors)


def test_legacy_factur_x_1_0_guideline_is_accepted_with_a_warning(corpus, judge):
    pdf = corpus / "facturx/ZUGFeRDv2/correct/FNFE-factur-x-examples/Avoir_FR_type381_BASIC.pdf"
    verdict = judge.judge(pdf.read_bytes(), Container.PDF)
    assert not verdict.rejected
    assert [e.rule for e in verdict.errors if e.rule == "RLS-T17"] == ["RLS-T17"]
