"""The rule catalogue: unique codes, one home each, documented in docs/rules.md."""

import re
from pathlib import Path

from relais.rulesdoc import render
from validators.rules import all_rules

ROOT = Path(__file__).resolve().parents[2]


def test_docs_rules_is_up_to_date():
    assert (ROOT / "docs" / "rules.md").read_text() == render(), "run: python -m relais.rulesdoc > docs/rules.md"


def test_every_rule_code_is_defined_in_exactly_one_module():
    for rule in all_rules():
        homes = [
            p
            for folder in ("flows", "validators")
            for p in (ROOT / folder).rglob("*.py")
            if re.search(rf'Rule\(\s*"{re.escape(rule.code)}"', p.read_text())
        ]
        assert len(homes) == 1, (rule.code, homes)
        assert rule.message_en and rule.message_fr
