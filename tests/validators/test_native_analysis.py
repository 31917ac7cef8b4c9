"""What the native compiler reads off an expression before compiling it (`validators.native.analysis`):
which expressions read their focus, which depend on the rule's context (not memoisable), which
always give nodes, and which child names a ``not(...)`` test needs present to be evaluated at all."""

from __future__ import annotations

import pytest

from validators.native import analysis
from validators.native.xpath import parse

NS = {"t": "urn:t"}
A, B, C = "{urn:t}a", "{urn:t}b", "{urn:t}c"


@pytest.mark.parametrize(
    ("expr", "keys"),
    [
        ("not(t:a | t:b)", [A, B]),
        ("not((t:a | t:b)/t:c) or t:x = 1", [f"{A}/{C}", f"{B}/{C}"]),
        ("not(t:a/t:b[1]/t:c)", [f"{A}/{B}/{C}"]),
        ("not(t:a/@x)", [A]),
        ("not(/t:a)", None),  # from the root: the context's children say nothing
        ("not(*)", None),
        ("not((t:a | *)/t:c)", None),
        ("not(t:a | @x)", None),
        ("not((t:a | /t:b)/t:c)", None),
        ("not((t:a | t:b/t:c)/t:c)", None),
        ("not(. = 1)", None),
        ("not(@x)", None),
        ("t:a or not(t:b)", None),  # the left operand runs first: it must be a not(...)
        ("count(t:a) = 0", None),
    ],
)
def test_guard_keys_name_the_children_a_not_test_needs(expr: str, keys: list[str] | None) -> None:
    assert analysis.guard_keys(parse(expr, NS)) == keys


@pytest.mark.parametrize(
    ("expr", "children_only", "names", "nodes"),
    [
        ("t:a | t:b", True, [A, B], True),
        ("t:a | @b", True, None, True),
        ("t:a | /t:b", False, None, True),
        ("(t:a | t:b)/t:c", False, None, True),
        ("t:a[1] | t:b", True, None, True),
        ("t:a | t:b/t:c", True, None, True),
        ("t:a intersect t:b", False, None, True),
        ("t:a except 1", False, None, False),
        ("/", False, None, True),
        (".", False, None, False),
        ("*", True, None, True),  # a name test, any name
        ("t:a/string()", True, None, False),
        ("1", False, None, False),
    ],
)
def test_what_a_union_of_paths_is_made_of(expr: str, children_only: bool, names: list[str] | None, nodes: bool) -> None:
    node = parse(expr, NS)
    assert analysis.relative_children_only(node) is children_only
    assert analysis.union_names(node) == names
    assert analysis.yields_nodes(node) is nodes


@pytest.mark.parametrize(
    ("expr", "focus", "focus_inside"),
    [
        (". + 1", True, False),
        ("position()", True, False),
        ("last() - 1", True, False),
        ("string()", True, False),
        ("string(1)", False, False),
        ("t:a", True, False),
        ("t:a[. = 1]", True, False),
        ("t:a[position() = last()]", True, False),
        ("/t:a", False, False),
        ("/t:a[. = 1]", False, False),
        ("$v", False, False),
        ("$v[. = 1]", False, False),
        ("$v/t:a", False, False),
        ("(.)[1]", True, False),
        ("-(.)", True, False),
        ("current()", False, False),
        ("(1, 2)[position() = 1]", False, False),
        ("(1, .)", True, False),
        ("()", False, False),
        ("for $x in t:a return $x", True, False),
        ("for $x in $v return $x + .", True, False),
        ("some $x in (1, 2) satisfies $x = .", True, False),
        ("every $x in $v satisfies $x", False, False),
        ("if (.) then 1 else 2", True, False),
        ("1 to 3", False, False),
    ],
)
def test_uses_focus_sees_what_reads_the_focus(expr: str, focus: bool, focus_inside: bool) -> None:
    node = parse(expr, NS)
    assert analysis.uses_focus(node, 0) is focus
    assert analysis.uses_focus(node, 1) is focus_inside


@pytest.mark.parametrize(
    ("expr", "outer", "in_a_predicate"),
    [
        ("1", True, False),  # a literal: nothing to gain from memoising it
        (".", True, False),
        ("t:a", True, False),
        ("/t:a", False, False),
        ("/t:a[. = 1]", False, False),
        ("/t:a[current() = 1]", True, True),
        ("$g", False, False),
        ("$local", True, True),
        ("$g[. = 1]", False, False),
        ("$g/t:a", False, False),
        ("position()", True, True),
        ("string()", True, False),
        ("true()", True, False),
        ("count(/t:a)", False, False),
        ("count(t:a)", True, False),
        ("for $x in /t:a return $x", True, True),
        ("()", True, False),
        ("(/t:a, /t:b)", False, False),
        ("/t:a | /t:b", False, False),
        ("-count(/t:a)", False, False),
    ],
)
def test_depends_sees_what_reads_the_rule_context(expr: str, outer: bool, in_a_predicate: bool) -> None:
    node = parse(expr, NS)
    assert analysis.depends(node, {"g"}, 0) is outer
    assert analysis.depends(node, {"g"}, 1) is in_a_predicate


def test_the_analyses_take_non_expressions_as_reading_nothing() -> None:
    assert analysis.depends((), set(), 0) is False
    assert analysis.uses_focus((), 0) is False
    assert analysis.depends(("root",), set(), 0) is False
