"""The Factur-X EXTENDED structural mutants (`tests.support.extended_mutants`) do what they say.

The skeleton breaks none of the schema-like asserts it was shaped for, and a mutant of each family
breaks more asserts (or fires more reports) than the skeleton does. Judged by the native engine;
`test_native_differential` compares it with the official XSLT on all of them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import extended_mutants as em
from tests.support import mutants as mut


def _failed(runner, ruleset, xml: bytes) -> int:
    before = sum(f for f, _ in runner.outcomes().get(ruleset.key, {}).values())
    runner.run(ruleset, xml)
    return sum(f for f, _ in runner.outcomes()[ruleset.key].values()) - before


def test_skeleton_passes_its_shapes_and_each_family_breaks_some(cen_rules_dir: Path) -> None:
    native = pytest.importorskip("validators.native")
    from validators import schematron

    ruleset = schematron.discover(cen_rules_dir).facturx["extended"]
    base = next(d for d in mut.generated_documents() if d.profile == "extended" and d.name.endswith(":1l:s1"))
    runner = native.NativeRunner(record=True)
    made = list(em.extended_mutants(base, Path(ruleset.path)))
    skeleton = made[0]
    assert skeleton.label == "extended skeleton"
    assert not [e.rule for e in runner.run(ruleset, skeleton.xml) if e.rule.startswith("FX-SCH-")]
    on_skeleton = _failed(runner, ruleset, skeleton.xml)  # the constant reports (elements not in the profile)
    families = {}
    for m in made[1:]:
        families.setdefault(m.label.split(" #")[0], m)
    assert set(families) == {f"extended {k}" for k in ("missing", "no-attr", "attr", "bad-code", "twice")}
    for label, m in families.items():
        if label != "extended twice":  # its first one may stop the run (compared as such by the differential)
            assert _failed(runner, ruleset, m.xml) > on_skeleton, m.label
