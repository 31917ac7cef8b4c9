"""Every rule module has one shape: ``RULE`` (with its category and stage) and ``check(ctx)``.

The modules are found on disk (`validators/platform/*.py`, `validators/routing/*.py`
that define a ``RULE``), so a new rule module is checked without being listed
here. Each has a doctest with a passing example (None, or no finding) and a
failing one (a finding of its own rule), and the runner runs it.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import validators.platform
import validators.routing
from flows.domain.model import Category, ValidationError
from flows.domain.rule import REGISTRY, Rule, Stage
from validators import runner
from validators.context import InvoiceContext

PACKAGES = (validators.platform, validators.routing)
MODULES = sorted(
    name
    for package in PACKAGES
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
    if not info.ispkg and hasattr(importlib.import_module(name := info.name), "RULE")
)
EXPECTED_CATEGORY = {"validators.platform": Category.PLATFORM, "validators.routing": Category.ROUTING}


def _package(name: str) -> str:
    """The rule package of a module (`validators.platform`, also for its subpackages)."""
    return ".".join(name.split(".")[:2])


NO_FINDING = ("None", "[]")


def test_the_rule_modules_are_found():
    # every module of the two packages is a rule module (none is left out of these tests for lacking RULE) ...
    files = sorted(
        ".".join((package.__name__, *path.relative_to(Path(package.__file__).parent).with_suffix("").parts))
        for package in PACKAGES
        for path in Path(package.__file__).parent.rglob("*.py")
        if path.stem != "__init__"
    )
    assert MODULES == files and {_package(m) for m in MODULES} == set(EXPECTED_CATEGORY)
    # ... and every platform and routing rule Relais registers has its module here
    registered = {r.code for r in REGISTRY.values() if r.category in (Category.PLATFORM, Category.ROUTING)}
    assert sorted(importlib.import_module(m).RULE.code for m in MODULES) == sorted(registered)


@pytest.mark.parametrize("name", MODULES)
def test_rule_declares_its_category_and_stage(name):
    rule = importlib.import_module(name).RULE
    assert isinstance(rule, Rule) and REGISTRY[rule.code] is rule
    assert isinstance(rule.category, Category) and isinstance(rule.stage, Stage)
    assert rule.category is EXPECTED_CATEGORY[_package(name)]
    assert rule.error("/").category is rule.category  # the finding carries it


@pytest.mark.parametrize("name", MODULES)
def test_check_takes_one_context(name):
    check = importlib.import_module(name).check
    (param,) = inspect.signature(check).parameters.values()
    assert param.name == "ctx" and param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    hints = inspect.get_annotations(check, eval_str=True)
    assert hints["ctx"] is InvoiceContext
    assert hints["return"] in (ValidationError | None, list[ValidationError])


@pytest.mark.parametrize("name", MODULES)
def test_doctest_shows_a_finding_and_no_finding(name):
    module = importlib.import_module(name)
    rule = module.RULE
    examples = [ex for test in doctest.DocTestFinder().find(module) for ex in test.examples if "check(" in ex.source]
    outcomes = [ex.want.strip() for ex in examples]
    assert any(w in NO_FINDING for w in outcomes), f"{name}: no example where check(ctx) finds nothing"
    assert any(rule.code in w or rule.message_en in w for w in outcomes if w not in NO_FINDING), (
        f"{name}: no example of a finding"
    )
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("name", MODULES)
def test_the_runner_runs_it_once(name):
    module = importlib.import_module(name)
    assert runner.rules().count(module) == 1


def test_the_runner_order_is_by_stage_then_declared():
    """STORE first (the pipeline runs it before routing), DOCUMENT, then DIRECTORY with its FINAL rules first."""
    stages = [m.RULE.stage for m in runner.rules()]
    assert stages == sorted(stages, key=[Stage.STORE, Stage.DOCUMENT, Stage.DIRECTORY].index)
    routing = runner.rules([Stage.DIRECTORY])
    finals = [getattr(m, "FINAL", False) for m in routing]
    assert finals == sorted(finals, reverse=True) and any(finals)


def test_a_validation_worker_runs_the_document_stage_only(monkeypatch):
    """The duplicate rule (STORE) and the routing rules (DIRECTORY) never run in a worker."""
    from lxml import etree

    from flows.domain.model import Container
    from tests.validators.test_platform_rules import ubl
    from validators.document import DocumentJudge, JudgeConfig

    def must_not_run(ctx):
        raise AssertionError("a STORE or DIRECTORY rule ran in a validation worker")

    for m in runner.rules([Stage.STORE, Stage.DIRECTORY]):
        monkeypatch.setattr(m, "check", must_not_run)
    data = etree.tostring(ubl(), xml_declaration=True, encoding="UTF-8")
    verdict = DocumentJudge(JudgeConfig(business_rules=False)).judge(data, Container.XML)
    assert verdict.facts is not None and verdict.xsd_valid
    assert verdict.errors == []
