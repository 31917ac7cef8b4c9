"""The BR-FR directed mutants (`tests.support.brfr_mutants`) hit what their table says.

Each entry names the asserts it aims at: on its mutant each of them fails, and on the document it was
made from (the rich base, or the base with the entry's setup) none of them does. Judged by the native
engine (fast); `test_native_differential` compares its verdicts with the official XSLT on the same
mutants.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from lxml import etree

from tests.support import brfr_mutants as fr
from tests.support import brfr_ubl as fr_ubl
from tests.support import mutants as mut

TABLES = {
    "cii": (fr.CII_BASE, fr.RICH_CII, fr.CII + fr.CII_SPECIAL),
    "ubl": (fr_ubl.UBL_BASE, fr_ubl.RICH_UBL, fr_ubl.UBL),
    "ubl-cn": (fr_ubl.UBL_CN_BASE, (), fr_ubl.UBL_CN),
}


def _rules(runner, ruleset, root: etree._Element) -> set[str]:
    return {e.rule for e in runner.run(ruleset, etree.ElementTree(copy.deepcopy(root)))}


@pytest.mark.parametrize("table", list(TABLES))
def test_each_entry_fails_its_asserts_and_only_there(table: str, corpus: Path, cen_rules_dir: Path) -> None:
    native = pytest.importorskip("validators.native")
    from validators import schematron

    base_name, rich, entries = TABLES[table]
    base = next(d for d in mut.generated_documents() if d.name == base_name)
    ruleset = schematron.discover(cen_rules_dir).br_fr[base.syntax]
    runner = native.NativeRunner()
    root0 = etree.fromstring(base.xml)
    fr.apply(root0, rich)
    aimed_all = {r for d in entries for r in d.rule.split()}
    on_rich = _rules(runner, ruleset, root0) & aimed_all
    assert not on_rich, f"the rich base breaks {sorted(on_rich)}"
    wrong = []
    for d in entries:
        root = copy.deepcopy(root0)
        fr.apply(root, d.setup)
        before = _rules(runner, ruleset, root)
        fr.apply(root, d.fail)
        after = _rules(runner, ruleset, root)
        aimed = set(d.rule.split())
        if aimed & before or aimed - after:
            wrong.append(f"{d.rule}: before {sorted(aimed & before)}, not failing after {sorted(aimed - after)}")
    assert not wrong, "\n".join(wrong)


def test_an_edit_that_matches_nothing_is_an_error() -> None:
    root = etree.fromstring(b"<a><b/></a>")
    fr.apply(root, [("set", "/a/b", "1")])
    assert root.find("b").text == "1"
    with pytest.raises(LookupError):
        fr.apply(root, [("del", "/a/c", "")])
