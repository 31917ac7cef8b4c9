"""The native engine's walk, rule matching, typed functions, code lists and cache, against the
official Saxon run: small stylesheets in the skeleton's shape (`tests.support.native_rules`), run by
`NativeRunner` and by `schematron.Runner`, must give the same findings (rule, location, message)."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from tests.support.native_rules import Rule, stylesheet
from validators import schematron
from validators.native import NativeRunner, engine
from validators.schematron import RuleSet, SchematronError

Findings = list[tuple[str, str, str]]


@pytest.fixture(scope="module")
def official() -> schematron.Runner:
    return schematron.Runner()


@pytest.fixture
def both(tmp_path: Path, official: schematron.Runner) -> Callable[..., Findings]:
    """run(patterns, xml, functions) -> the findings, identical in both engines (SchematronError if
    both abort); every assert must have compiled natively."""
    native = NativeRunner(cache_dir=tmp_path / "cache")
    count = [0]

    def run(patterns: list[list[Rule]], xml: str, functions: str = "") -> Findings:
        count[0] += 1
        path = tmp_path / f"rules{count[0]}.xslt"
        path.write_text(stylesheet(patterns, functions), encoding="utf-8")
        rs = RuleSet("test", "test", "1", path, "rules-dir")
        results: list[Findings | str] = []
        for runner in (official, native):
            try:
                results.append([(e.rule, e.location, e.message) for e in runner.run(rs, xml.encode())])
            except SchematronError:
                results.append("abort")
        assert results[0] == results[1], f"official {results[0]} != native {results[1]}"
        assert not native.fallback_uids(rs), "everything here must compile natively"
        if results[1] == "abort":
            raise SchematronError("both aborted")
        return results[1]  # type: ignore[return-value]

    return run


DOC = (
    "<t:doc xmlns:t='urn:t' xmlns:u='urn:u' t:v='1' plain='p'>"
    "<t:l n='1'><t:a code='S'>1</t:a></t:l><t:l n='2' u:x='y'><t:a code='Z'>2</t:a><t:a>3</t:a></t:l>"
    "<t:l n='3'><t:g><t:a code='E'>x</t:a></t:g></t:l></t:doc>"
)


def _rules(findings: Findings) -> list[str]:
    return [r for r, _, _ in findings]


def test_match_patterns_pick_the_rules_saxon_picks(both: Callable[..., Findings]) -> None:
    rules = [
        Rule("t:l[2]", [("P-POS", "false()")]),
        Rule("t:l[@n = '3']//t:a", [("P-DESC", "false()")]),
        Rule("t:doc/t:l/t:a[last()]", [("P-LAST", "false()")]),
        Rule("t:l/t:a[@code]", [("P-ATT", ". = 'never'")]),
        Rule("/t:doc", [("P-ROOT", "false()")]),
        Rule("*", [("P-ANY", "local-name() != 'g'")]),
    ]
    found = both([rules], DOC)
    # the first line's one a is its last (the earlier rule wins); the g (a "*" rule) precedes its a
    assert _rules(found) == ["P-ROOT", "P-LAST", "P-POS", "P-ATT", "P-LAST", "P-ANY", "P-DESC"]


def test_attribute_rules_fire_on_the_attributes_saxon_visits(tmp_path: Path, official: schematron.Runner) -> None:
    rules = [Rule("@code", [("A-CODE", ". = ('S', 'E')")]), Rule("@t:v", [("A-TV", ". != '1'")]), Rule("@plain", [])]
    rs = _ruleset(tmp_path, rules)
    native = NativeRunner(cache_dir=tmp_path / "cache")
    found = native.run(rs, DOC.encode())
    assert not native.fallback_uids(rs)
    assert [(e.rule, e.message) for e in found] == [(e.rule, e.message) for e in official.run(rs, DOC.encode())]
    # (the test stylesheet has no full-path template for attributes: Saxon writes their value there)
    assert [(e.rule, e.location) for e in found] == [
        ("A-TV", "/*:doc[namespace-uri()='urn:t'][1]/@*[local-name()='v' and namespace-uri()='urn:t']"),
        (
            "A-CODE",
            "/*:doc[namespace-uri()='urn:t'][1]/*:l[namespace-uri()='urn:t'][2]/*:a[namespace-uri()='urn:t'][1]/@code",
        ),
    ]


def test_elements_without_a_namespace_have_their_name_in_the_location(both: Callable[..., Findings]) -> None:
    found = both([[Rule("item", [("N1", ". != 'b'")])]], "<list><item>a</item><item>b</item></list>")
    assert found == [("N1", "/list[1]/item[2]", "[N1] failed")]


def test_reports_fire_when_true_and_only_flagged_ones_are_kept(both: Callable[..., Findings]) -> None:
    rules = [Rule("t:a", [], reports=[("R-FLAG", "@code = 'Z'", "warning"), ("R-NOFLAG", "true()", None)])]
    found = both([rules], DOC)
    assert _rules(found) == ["R-FLAG"]


def test_a_rule_that_does_not_descend_hides_its_subtree_from_its_pattern(both: Callable[..., Findings]) -> None:
    rules = [Rule("t:l[@n = '2']", [("S-L", "false()")], descend=False), Rule("t:a", [("S-A", "false()")])]
    found = both([rules, [Rule("t:a", [("OTHER", "false()")])]], DOC)
    assert _rules(found) == ["S-A", "S-L", "S-A", "OTHER", "OTHER", "OTHER", "OTHER"]


@pytest.mark.parametrize(
    "test",
    [
        "not(t:g | t:x)",
        "not((t:a | t:g)/t:a) or @n = '2'",
        "not(t:g/t:a[1]) or t:g/t:a = 'y'",
        "not(t:a/@code) or t:a/@code = 'S'",
    ],
)
def test_a_not_test_skipped_where_its_children_are_absent_gives_saxons_verdict(
    both: Callable[..., Findings], test: str
) -> None:
    found = both([[Rule("t:l", [("G", test)])]], DOC)
    assert found  # some line fails each of them
    assert len(found) < 3  # and some line passes it


def test_messages_join_the_values_of_a_sequence_with_spaces(both: Callable[..., Findings]) -> None:
    found = both([[Rule("t:l[2]", [("M1", "false()")], message="t:a")]], DOC)
    assert found[0][2] == "[M1] failed 2 3"


FUNCTIONS = """<xsl:function name="t:first" as="element()?">
  <xsl:param name="nodes" as="element()*"/>
  <xsl:sequence select="$nodes[1]"/>
</xsl:function>
<xsl:function name="t:any" as="node()">
  <xsl:param name="n" as="node()"/>
  <xsl:sequence select="$n"/>
</xsl:function>
<xsl:function name="t:twice" as="xs:decimal">
  <xsl:param name="d" as="xs:decimal"/>
  <xsl:sequence select="$d * 2"/>
</xsl:function>
<xsl:function name="t:int" as="xs:integer">
  <xsl:param name="i" as="xs:integer"/>
  <xsl:sequence select="$i + 1"/>
</xsl:function>
<xsl:function name="t:dbl" as="xs:double">
  <xsl:param name="x" as="xs:double"/>
  <xsl:sequence select="$x"/>
</xsl:function>
<xsl:function name="t:day" as="xs:date?">
  <xsl:param name="s" as="xs:date?"/>
  <xsl:sequence select="$s"/>
</xsl:function>
<xsl:function name="t:yes" as="xs:boolean">
  <xsl:param name="b" as="xs:boolean"/>
  <xsl:sequence select="$b"/>
</xsl:function>
<xsl:function name="t:some" as="xs:string+">
  <xsl:param name="s" as="xs:string*"/>
  <xsl:sequence select="($s, 'end')"/>
</xsl:function>
<xsl:function name="t:atom" as="xs:anyAtomicType">
  <xsl:param name="a" as="xs:anyAtomicType"/>
  <xsl:sequence select="$a"/>
</xsl:function>"""

TYPED = "<t:doc xmlns:t='urn:t'><t:a>2.5</t:a><t:a>4</t:a><t:d>2024-02-29</t:d><t:b>true</t:b></t:doc>"


@pytest.mark.parametrize(
    ("test", "holds"),
    [
        ("t:first(t:a) = 2.5", True),
        ("empty(t:first(()))", True),
        ("t:any(t:d) = '2024-02-29'", True),
        ("t:twice(t:a[1]) = 5", True),
        ("t:twice(1) = 2", True),
        ("t:int(t:a[2]) = 5", True),
        ("t:dbl(t:a[1]) = 2.5", True),
        ("t:dbl(2) = 2", True),
        ("t:day(t:d) = xs:date('2024-02-29')", True),
        ("empty(t:day(()))", True),
        ("t:yes(t:b)", True),
        ("t:yes(true())", True),
        ("count(t:some(t:a)) = 3", True),
        ("t:atom(t:a[2]) = '4'", True),
        ("t:atom(3) = 3", True),
        ("t:twice(t:a[1]) = 4", False),
    ],
)
def test_typed_function_parameters_and_results_convert_as_saxon(
    both: Callable[..., Findings], test: str, holds: bool
) -> None:
    found = both([[Rule("/t:doc", [("F", test)])]], TYPED, FUNCTIONS)
    assert _rules(found) == ([] if holds else ["F"])


@pytest.mark.parametrize(
    "test",
    [
        "exists(t:first(('a')))",  # an atomic value where element()* is required
        "exists(t:any(()))",  # an empty sequence where node() is required
        "t:any((t:a, t:d)) = 1",  # two nodes where one is required
        "t:twice(t:a) = 1",  # two values where one is required
        "exists(t:twice(()))",  # none where one is required
        "exists(t:twice('1'))",  # a string where a decimal is required
        "t:int(t:a[1]) = 1",  # 2.5 is not an integer
        "exists(t:yes(1))",  # an integer where a boolean is required
        "exists(t:day('2024-02-29'))",  # a string where a date is required
        "exists(t:int(2.5))",  # a decimal where an integer is required
    ],
)
def test_typed_function_arguments_of_the_wrong_type_abort_in_both(both: Callable[..., Findings], test: str) -> None:
    with pytest.raises(SchematronError):
        both([[Rule("/t:doc", [("F", test)])]], TYPED, FUNCTIONS)


CODES = "<codes><cl id='8'><v value='S'/><v value='E'/></cl><cl id='9'><v value='1'/><v value='2.50'/></cl></codes>"


def test_code_lists_read_with_document_as_saxon(tmp_path: Path, both: Callable[..., Findings]) -> None:
    (tmp_path / "codes.xml").write_text(CODES, encoding="utf-8")
    rules = [
        Rule("t:a[@code]", [("CL", "@code = document('codes.xml')//cl[@id = 8]/v/@value")]),
        Rule("t:l", [("CN", "exists(document('codes.xml')//cl[@id = '9']/v[@value = @n])")]),
    ]
    found = both([rules], DOC)
    assert _rules(found) == ["CN", "CN", "CL", "CN"]


def test_a_missing_code_list_aborts_the_document(tmp_path: Path) -> None:
    path = tmp_path / "rules.xslt"
    path.write_text(stylesheet([[Rule("/t:doc", [("CL", "exists(document('absent.xml')/codes)")])]]), "utf-8")
    rs = RuleSet("test", "test", "1", path, "rules-dir")
    with pytest.raises(SchematronError, match="dynamic error"):
        NativeRunner(cache_dir=tmp_path / "cache").run(rs, DOC.encode())


# ---- the runner: outcomes, inputs, cache -------------------------------------------------


def _ruleset(tmp_path: Path, rules: list[Rule]) -> RuleSet:
    path = tmp_path / "rules.xslt"
    path.write_text(stylesheet([rules]), encoding="utf-8")
    return RuleSet("test", "test", "1", path, "rules-dir")


def test_a_recording_runner_counts_each_asserts_failures_and_passes(tmp_path: Path) -> None:
    rs = _ruleset(tmp_path, [Rule("t:a", [("C1", "@code")])])
    native = NativeRunner(record=True, cache_dir=tmp_path / "cache")
    native.run(rs, DOC.encode())
    native.run(rs, DOC.encode())
    assert native.outcomes() == {"test": {native.assert_uids(rs)[0]: [2, 6]}}


def test_a_parsed_tree_or_element_is_judged_as_its_bytes(tmp_path: Path) -> None:
    rs = _ruleset(tmp_path, [Rule("t:a", [("E1", "@code = 'S'")])])
    native = NativeRunner(cache_dir=tmp_path / "cache")
    root = etree.fromstring(DOC.encode())
    by_bytes = [(e.rule, e.location) for e in native.run(rs, DOC.encode())]
    assert [(e.rule, e.location) for e in native.run(rs, root)] == by_bytes
    assert [(e.rule, e.location) for e in native.run(rs, root.getroottree())] == by_bytes
    assert len(by_bytes) == 3


def test_a_missing_stylesheet_is_an_error_not_a_pass(tmp_path: Path) -> None:
    rs = RuleSet("test", "test", "1", tmp_path / "absent.xslt", "rules-dir")
    with pytest.raises(SchematronError, match="cannot read stylesheet"):
        NativeRunner(cache_dir=tmp_path / "cache").run(rs, DOC.encode())


def test_a_stylesheet_of_another_shape_runs_wholly_on_saxon(tmp_path: Path) -> None:
    rs = _ruleset(tmp_path, [Rule("t:a", [("W1", "@code = 'S'")])])
    text = rs.path.read_text("utf-8").replace('<xsl:template match="/">', '<xsl:template match="/" name="root">', 1)
    text = text.replace("</xsl:stylesheet>", '<xsl:template match="/" mode="other"/></xsl:stylesheet>')
    text = text.replace('<xsl:template match="/" name="root">', '<xsl:template match="/">')
    text = text.replace('<xsl:template match="/" mode="other"/>', '<xsl:template match="/" priority="-5"/>')
    rs.path.write_text(text, "utf-8")
    native = NativeRunner(cache_dir=tmp_path / "cache")
    loaded = native.compile(rs)
    assert loaded.compile_error == "no single root template" and loaded.reduced is not None
    found = [(e.rule, e.location) for e in native.run(rs, DOC.encode())]
    assert found == [(e.rule, e.location) for e in schematron.Runner().run(rs, DOC.encode())]
    assert [r for r, _ in found] == ["W1", "W1", "W1"]


@pytest.mark.parametrize(
    "garbage",
    [b"not a pickle", pickle.dumps(("relais-native/0", None, [], None, None)), pickle.dumps([1, 2]), b""],
)
def test_a_corrupt_or_foreign_cache_file_is_rebuilt(tmp_path: Path, garbage: bytes) -> None:
    rs = _ruleset(tmp_path, [Rule("t:a", [("K1", "@code = 'S'")])])
    cache = tmp_path / "cache"
    first = [(e.rule, e.location) for e in NativeRunner(cache_dir=cache).run(rs, DOC.encode())]
    (cached,) = cache.glob("*.native")
    cached.write_bytes(garbage)
    assert [(e.rule, e.location) for e in NativeRunner(cache_dir=cache).run(rs, DOC.encode())] == first
    assert pickle.loads(cached.read_bytes())[0] == engine.CACHE_FORMAT


def test_an_unwritable_cache_still_runs_the_rules(tmp_path: Path) -> None:
    rs = _ruleset(tmp_path, [Rule("t:a", [("U1", "@code = 'S'")])])
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be", "utf-8")
    found = NativeRunner(cache_dir=blocker / "cache").run(rs, DOC.encode())
    assert [e.rule for e in found] == ["U1", "U1", "U1"]


def test_the_cache_folder_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAIS_NATIVE_CACHE", str(tmp_path / "configured"))
    assert engine.default_cache_dir() == tmp_path / "configured"
    monkeypatch.delenv("RELAIS_NATIVE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert engine.default_cache_dir() == tmp_path / "xdg" / "relais" / "native"
