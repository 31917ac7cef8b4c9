"""BT-23, BT-25 and the circuit's actors (BG-24) read from UBL, CII and Factur-X (docs/billing-frameworks.md, 1)."""

from __future__ import annotations

import pytest
from lxml import etree

from flows.domain.model import Syntax
from flows.io.extract import extract
from relais import generate as gen
from tests.support.pieces import facturx, piece, spec_for
from validators.document import JudgeConfig
from validators.pool import Job, PoolConfig, ValidationPool

ACTORS = {
    "VALIDEUR": "35600000000048",
    "valideur_2": "11000201100044",
    " MOE ": "21750001600019",
    "MOA": "13002526500013",
}
EXPECTED = {
    "framework_text": "A10_PROJET_DECOMPTE_MENSUEL_SOUSTRAITANT",
    "previous_number": "PREV-1",
    "validator_1": "35600000000048",
    "validator_2": "11000201100044",
    "moe_siret": "21750001600019",
    "moa_siret": "13002526500013",
}


def _xml(fmt: str, **kw) -> bytes:
    return piece(gen.invoice_xml(fmt, spec_for()), **kw)


def _facts(xml: bytes, syntax: Syntax):
    f = extract(syntax, etree.fromstring(xml).getroottree())
    return {k: getattr(f, k) for k in EXPECTED}


@pytest.mark.parametrize(("fmt", "syntax"), [("ubl", Syntax.UBL_INVOICE), ("cii", Syntax.CII)])
def test_framework_previous_piece_and_actors_are_read(fmt, syntax):
    xml = _xml(fmt, framework=EXPECTED["framework_text"], previous="PREV-1", actors=ACTORS)
    assert _facts(xml, syntax) == EXPECTED


@pytest.mark.parametrize(("fmt", "syntax"), [("ubl", Syntax.UBL_INVOICE), ("cii", Syntax.CII)])
def test_a_plain_invoice_names_none_of_them(fmt, syntax):
    assert set(_facts(gen.invoice_xml(fmt, spec_for()), syntax).values()) == {None}


def test_other_supporting_documents_name_no_actor():
    # an UBL attachment reference that is no role, a CII document of another type than 916 with a role
    ubl = _xml("ubl", actors={"Bon de livraison": "BL-7", "VALIDEUR": "35600000000048", "valideur_1": "x"})
    assert _facts(ubl, Syntax.UBL_INVOICE)["validator_1"] == "35600000000048"  # the first of a role wins
    cii = piece(gen.invoice_xml("cii", spec_for()), actors={"MOE": "21750001600019"}).replace(
        b"<ram:TypeCode>916</ram:TypeCode>", b"<ram:TypeCode>130</ram:TypeCode>"
    )
    assert _facts(cii, Syntax.CII)["moe_siret"] is None


def test_facts_cross_the_validation_pool_intact():
    """The workers read the facts (UBL, CII and Factur-X, whose XML is the CII path) and send them back."""
    cii = _xml("cii", framework=EXPECTED["framework_text"], previous="PREV-1", actors=ACTORS)
    docs = [
        ("a.xml", _xml("ubl", framework=EXPECTED["framework_text"], previous="PREV-1", actors=ACTORS)),
        ("b.xml", cii),
        ("c.pdf", facturx(cii)),
    ]
    pool = ValidationPool(PoolConfig(judge=JudgeConfig(business_rules=False), workers=2, chunk_size=1, inline_below=0))
    try:
        jobs = [Job(n, data, None, name) for n, (name, data) in enumerate(docs, 1)]
        verdicts = [v for _, v in pool.judge_all(iter(jobs), expected=len(jobs))]
    finally:
        pool.close()
    assert [v.syntax for v in verdicts] == [Syntax.UBL_INVOICE, Syntax.CII, Syntax.FACTURX]
    for v in verdicts:
        assert [e.rule for e in v.errors] == []  # XSD-valid where the schema wants each element
        assert {k: getattr(v.facts, k) for k in EXPECTED} == EXPECTED
