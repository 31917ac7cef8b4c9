"""The rules of a received CDAR message (validators/cdar_rules/): one module per RLS-C code, each with its
doctest, registered (so `relais rules` and docs/rules.md list it), answered as a 501 IRR_SYNTAX."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import validators.cdar_rules
from flows.domain.cdar import rejection_reason
from flows.domain.model import Category
from flows.domain.rule import REGISTRY
from validators.rules import all_rules

MODULES = sorted(
    info.name
    for info in pkgutil.iter_modules(validators.cdar_rules.__path__, "validators.cdar_rules.")
    if hasattr(importlib.import_module(info.name), "RULE")
)


def test_one_module_per_code_and_every_code_registered():
    codes = sorted(importlib.import_module(m).RULE.code for m in MODULES)
    assert codes == [f"RLS-C0{i}" for i in range(1, 7)]
    assert {r.code for r in all_rules() if r.category is Category.LIFECYCLE} == set(codes)
    assert all(rejection_reason(c) == "IRR_SYNTAX" for c in codes)


@pytest.mark.parametrize("name", MODULES)
def test_each_rule_has_its_messages_and_a_doctest(name):
    module = importlib.import_module(name)
    rule = module.RULE
    assert REGISTRY[rule.code] is rule and rule.message_fr and rule.message_en and callable(module.check)
    result = doctest.testmod(module)
    assert result.attempted >= 2 and result.failed == 0
