"""The native rule engine (validators/native) against the official Saxon run, construct by construct.

Each test writes a small stylesheet in the shape of the ISO schematron
skeleton's output (what the CEN, Factur-X and BR-FR artefacts are), runs it on
a document with both `NativeRunner` and the official `schematron.Runner`, and
checks that both give the same findings (rule, flag, location, message) or
both abort, and that the verdict is the one XPath 2.0 prescribes.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.native_rules import Rule, stylesheet
from validators import schematron
from validators.native import NativeRunner, engine, runtime
from validators.native.runtime.casts import to_decimal
from validators.native.xpath import Unsupported, parse
from validators.schematron import RuleSet, SchematronError


@pytest.fixture(scope="module")
def official() -> schematron.Runner:
    return schematron.Runner()


@pytest.fixture
def both(tmp_path: Path, official: schematron.Runner):
    """run(patterns, xml) -> the findings, identical in both engines (or SchematronError in both)."""
    native = NativeRunner(cache_dir=tmp_path / "cache")
    count = [0]

    def run(patterns: list[list[Rule]], xml: str, functions: str = "") -> list[tuple[str, str, str]]:
        count[0] += 1
        path = tmp_path / f"rules{count[0]}.xslt"
        path.write_text(stylesheet(patterns, functions), encoding="utf-8")
        rs = RuleSet("test", "test", "1", path, "rules-dir")
        results = []
        for runner in (official, native):
            try:
                found = runner.run(rs, xml.encode())
                results.append([(e.rule, e.location, e.message) for e in found])
            except SchematronError:
                results.append("abort")
        assert results[0] == results[1], f"official {results[0]} != native {results[1]}"
        if results[1] == "abort":
            raise SchematronError("both aborted")
        assert not native.fallback_uids(rs), "everything here must compile natively"
        return results[1]

    return run


def fired(findings: list[tuple[str, str, str]]) -> list[str]:
    return [rule for rule, _, _ in findings]


DOC = "<t:doc xmlns:t='urn:t'><t:a>2.5</t:a><t:b>-2.5</t:b><t:c>0.1</t:c><t:c>0.2</t:c></t:doc>"


def test_round_rounds_halves_up_not_to_even(both) -> None:
    tests = [
        ("R1", "round(t:a) = 3"),  # untyped -> xs:double: round(2.5) = 3
        ("R2", "round(t:b) = -2"),  # towards positive infinity, not away from zero
        ("R3", "round(xs:decimal(t:a)) = 3"),
        ("R4", "round(xs:decimal('0.125') * 100) = 13"),  # 12.5 -> 13 (half-even would give 12)
        ("R5", "round(2.5) = 2"),  # false: fires
    ]
    assert fired(both([[Rule("/t:doc", tests)]], DOC)) == ["R5"]


def test_double_arithmetic_where_the_rule_computes_in_double_and_decimal_where_in_decimal(both) -> None:
    tests = [
        ("D1", "sum(t:c) = 0.3"),  # untyped values sum as xs:double: 0.30000000000000004, fires
        ("D2", "sum(t:c/xs:decimal(.)) = 0.3"),  # xs:decimal: exact
        ("D3", "0.1 + 0.2 = 0.3"),  # decimal literals
        ("D4", "xs:double('0.1') + xs:double('0.2') = 0.3"),  # fires
        ("D5", "1 div 3 * 3 = 1"),  # decimal division keeps 18 digits: 0.999..., fires
        ("D6", "xs:decimal(10) div 4 = 2.5"),
        ("D7", "(xs:decimal(t:a) * 3) = 7.5"),
    ]
    assert fired(both([[Rule("/t:doc", tests)]], DOC)) == ["D1", "D4", "D5"]


def test_normalize_space_and_regex_know_only_xml_whitespace(both) -> None:
    doc = "<t:doc xmlns:t='urn:t'><t:n>&#160;x&#160;</t:n><t:s>  a \n b  </t:s><t:d>&#1635;</t:d></t:doc>"
    tests = [
        ("S1", "normalize-space(t:s) = 'a b'"),
        ("S2", "normalize-space(t:n) = 'x'"),  # the NBSP is not whitespace: fires
        ("S3", "not(matches(t:n, '^\\s'))"),  # \s is [ \t\n\r] only
        ("S4", "matches(t:d, '^\\d$')"),  # \d is any Unicode decimal digit
        ("S5", "matches('ab', 'b$') and not(matches('a&#10;', 'a$'))"),  # $ ends the string only
        ("S6", "string-length(t:n) = 3"),
        ("S7", "tokenize('a  b', '\\s+')[2] = 'b'"),
        ("S8", "replace('2024-01-02', '(\\d+)-(\\d+)-(\\d+)', '$3/$2/$1') = '02/01/2024'"),
    ]
    assert fired(both([[Rule("/t:doc", tests)]], doc)) == ["S2"]


def test_general_comparisons_cast_untyped_values_to_the_other_side(both) -> None:
    doc = "<t:doc xmlns:t='urn:t'><t:x>10</t:x><t:x>2</t:x><t:f>false</t:f><t:y> 7 </t:y></t:doc>"
    tests = [
        ("G1", "t:x = 2"),  # some x equals 2 (as numbers)
        ("G2", "t:x = '2'"),
        ("G3", "t:x > 9"),  # 10 > 9 as numbers (as strings '10' < '9')
        ("G4", "t:f = false()"),  # untyped -> xs:boolean
        ("G5", "t:y = 7"),  # whitespace collapsed by the cast
        ("G6", "t:y = '7'"),  # as strings: ' 7 ' != '7': fires
        ("G7", "not(t:x != 10)"),  # some x differs from 10: fires
        ("G8", "count(t:x) eq 2"),
    ]
    assert fired(both([[Rule("/t:doc", tests)]], doc)) == ["G6", "G7"]


def test_a_later_rule_of_the_same_pattern_does_not_fire_on_a_node_an_earlier_rule_matched(both) -> None:
    doc = "<t:doc xmlns:t='urn:t'><t:i k='1'/><t:i/><t:j/></t:doc>"
    first = [
        Rule("t:i[@k]", [("P1", "false()")]),  # matches the first i
        Rule("t:i", [("P2", "false()")]),  # the second i only
        Rule("t:i | t:j", [("P3", "false()")]),  # j only: both i are taken
    ]
    other = [Rule("t:i", [("Q1", "false()")])]  # another pattern: every i
    found = both([first, other], doc)
    assert fired(found) == ["P1", "P2", "P3", "Q1", "Q1"]
    assert [loc for _, loc, _ in found][:2] == [
        "/*:doc[namespace-uri()='urn:t'][1]/*:i[namespace-uri()='urn:t'][1]",
        "/*:doc[namespace-uri()='urn:t'][1]/*:i[namespace-uri()='urn:t'][2]",
    ]


def test_an_assert_that_raises_aborts_the_document_in_both_engines(both) -> None:
    doc = "<t:doc xmlns:t='urn:t'><t:amount>41,45</t:amount></t:doc>"
    with pytest.raises(SchematronError):
        both([[Rule("/t:doc", [("E1", "t:amount > 0")])]], doc)  # '41,45' cannot become a double
    with pytest.raises(SchematronError):
        both([[Rule("t:amount", [("E2", "xs:decimal(.) > 0")])]], doc)


def test_an_unused_variable_that_would_raise_raises_nothing(both) -> None:
    doc = "<t:doc xmlns:t='urn:t'><t:amount>41,45</t:amount></t:doc>"
    rule = Rule("/t:doc", [("V1", "true()"), ("V2", "$ok = 1")], lets=[("bad", "xs:decimal(t:amount)"), ("ok", "1")])
    assert fired(both([[rule]], doc)) == []


def test_messages_take_their_values_from_the_document(both) -> None:
    doc = "<t:doc xmlns:t='urn:t'><t:a>x  y</t:a><t:a>z</t:a></t:doc>"
    found = both([[Rule("/t:doc", [("M1", "false()")], message="t:a")]], doc)
    assert found[0][2] == "[M1] failed x y z"


def test_paths_axes_and_predicates(both) -> None:
    doc = (
        "<t:doc xmlns:t='urn:t'><t:l n='1'><t:v>1</t:v></t:l><t:l n='2'><t:v>2</t:v></t:l>"
        "<t:l n='3'><t:v>3</t:v></t:l><t:tot>6</t:tot></t:doc>"
    )
    rules = [
        Rule("/t:doc", [("A1", "sum(//t:v) = t:tot"), ("A2", "count(t:l[t:v > 1]) = 2"), ("A3", "t:l[2]/@n = '2'")]),
        Rule(
            "t:l",
            [
                ("A4", "../t:tot > 0"),
                ("A5", "count(preceding-sibling::t:l) + 1 = @n"),
                ("A6", "not(following-sibling::t:l) or following-sibling::t:l[1]/@n = @n + 1"),
                ("A7", "ancestor::t:doc"),
                ("A8", "every $v in t:v satisfies $v = @n"),
                ("A9", "@n != '3'"),  # fires on the third line
            ],
        ),
    ]
    found = both([rules], doc)
    assert fired(found) == ["A9"]
    assert found[0][1].endswith("*:l[namespace-uri()='urn:t'][3]")


def test_what_the_engine_skips_or_shares_gives_the_official_findings(both) -> None:
    """The speed paths (docs/architecture.md): preceding:: without a whole-document scan, wildcard
    rules guarded by their name, "shall not be used" asserts skipped where absent (in groups),
    document constants sharing their parts, string comparisons without atomisation."""
    doc = (
        "<t:doc xmlns:t='urn:t' xmlns:u='urn:t'><t:h><t:c>A</t:c></t:h>"
        "<t:l><t:c>B</t:c><t:LineAmount>5</t:LineAmount><u:PriceAmount>1</u:PriceAmount></t:l>"
        "<t:l><t:c>A</t:c><t:c>C</t:c><t:LineAmount>x</t:LineAmount><t:s><t:c>B</t:c></t:s></t:l>"
        "<t:Amount>6</t:Amount></t:doc>"
    )
    shall_not = [(f"N{i}", f"not(t:l/t:{name})") for i, name in enumerate(["x", "y", "s", "z", "w"])]
    rules = [
        Rule(
            "/t:doc",
            [
                *shall_not,  # N2 fires: the second line has an s
                ("D1", "count(//t:l[t:c = 'A']) = 1"),
                ("D2", "count(//t:l[t:c = 'A'][t:LineAmount = 'x']) = 1"),
                ("D3", "count(//t:l[t:c = 'B']) = 2"),  # fires: one line has a c B
                ("D4", "t:h/t:c = ('A', 'Z')"),
                ("D5", "not(//t:c = 'Q')"),
            ],
        ),
        Rule("t:c", [("P1", "not(. = preceding::t:c)")]),  # fires on the second A and the second B
        Rule(
            "*[ends-with(name(), 'Amount') and not(ends-with(name(), 'PriceAmount'))]",
            [("W1", ". castable as xs:decimal")],
        ),
    ]
    found = both([rules], doc)
    assert fired(found) == ["N2", "D3", "P1", "W1", "P1"]  # document order: A again, x, B again


def test_constant_predicates_hoisted_out_of_paths_that_read_a_variable_give_the_official_findings(both) -> None:
    """BR-S-08's shape: ``X[constant][uses $rate]`` per VAT rate, from / (once per document) and
    through ``..`` (once per node reached, shared by the contexts that reach it); a positional
    predicate keeps the path as it is."""
    doc = (
        "<t:doc xmlns:t='urn:t'><t:tot>"
        "<t:sub><t:rate>10</t:rate><t:base>5</t:base></t:sub><t:sub><t:rate>20</t:rate><t:base>7</t:base></t:sub>"
        "</t:tot>"
        "<t:l><t:cat>S</t:cat><t:rate>10</t:rate><t:amt>2</t:amt></t:l>"
        "<t:l><t:cat>S</t:cat><t:rate>10</t:rate><t:amt>3</t:amt></t:l>"
        "<t:l><t:cat>Z</t:cat><t:rate>20</t:rate><t:amt>4</t:amt></t:l>"
        "<t:l><t:cat>S</t:cat><t:rate>20</t:rate><t:amt>6</t:amt></t:l></t:doc>"
    )
    per_rate = "every $r in xs:decimal(t:rate) satisfies"
    rules = [
        Rule(
            "/t:doc/t:tot/t:sub",
            [
                ("H1", f"{per_rate} sum(../../t:l[t:cat = 'S'][xs:decimal(t:rate) = $r]/xs:decimal(t:amt)) = t:base"),
                ("H2", f"{per_rate} exists(//t:l[t:cat = 'Z'][xs:decimal(t:rate) = $r])"),
                ("H3", "every $r in t:rate satisfies count(../../t:l[t:cat = 'S'][t:rate = $r][2]) = 1"),
            ],
        ),
        Rule("t:rate", [("H4", "every $r in . satisfies count(../../t:l[t:cat = 'S'][t:rate = $r]) = 2")]),
    ]
    found = both([rules], doc)
    # the first subtotal: no Z line at 10 %; the second: 6 != 7, one S line at 20 %; a subtotal's
    # rate (../.. has no lines) and the rates of the lines at 20 % (one S line)
    assert fired(found) == ["H2", "H4", "H1", "H3", "H4", "H4", "H4"]


def test_xsl_functions_with_typed_parameters(both) -> None:
    functions = """<xsl:function name="t:codes" as="xs:boolean">
      <xsl:param name="code" as="xs:string?"/>
      <xsl:variable name="all" as="xs:string" select="'S E AE'"/>
      <xsl:sequence select="$code = tokenize($all, '\\s+')"/>
    </xsl:function>"""
    doc = "<t:doc xmlns:t='urn:t'><t:c>AE</t:c><t:c>Q</t:c></t:doc>"
    rules = [Rule("t:c", [("F1", "t:codes(.)")])]
    assert fired(both([rules], doc, functions)) == ["F1"]  # Q is not a code
    with pytest.raises(SchematronError):  # two items for an xs:string? parameter: a type error in both
        both([[Rule("/t:doc", [("F2", "t:codes(t:c)")])]], doc, functions)


# ---- fallback, cache, refusal ---------------------------------------------------------


def _rules_file(tmp_path: Path, rules: list[Rule], name: str = "rules.xslt") -> RuleSet:
    path = tmp_path / name
    path.write_text(stylesheet([rules]), encoding="utf-8")
    return RuleSet("test", "test", "1", path, "rules-dir")


def test_an_assert_the_compiler_does_not_understand_runs_on_saxon_and_says_why(tmp_path: Path) -> None:
    rs = _rules_file(
        tmp_path,
        [
            Rule(
                "/t:doc",
                [("N1", "count(t:a) = 1"), ("X1", "t:a instance of element()"), ("X2", "matches(t:a, '\\p{Lu}')")],
            )
        ],
    )
    native = NativeRunner(cache_dir=tmp_path / "cache")
    fallback = {a.rule: a.reason for a in native.fallbacks(rs)}
    assert set(fallback) == {"X1", "X2"} and "instance" in (fallback["X1"] or "") and "\\p" in (fallback["X2"] or "")
    doc = b"<t:doc xmlns:t='urn:t'><t:a>lower</t:a></t:doc>"
    found = native.run(rs, doc)
    assert [e.rule for e in found] == ["X2"]  # found by Saxon, in the reduced copy
    assert [e.rule for e in schematron.Runner().run(rs, doc)] == ["X2"]


def test_relais_rules_sets_lists_the_asserts_on_saxon(tmp_path: Path) -> None:
    from relais.cli import main

    folder = tmp_path / "artefacts"
    folder.mkdir()
    xslt = stylesheet([[Rule("/*", [("OK-1", "true()"), ("ODD-1", "t:a instance of element()")])]])
    (folder / "EN16931-UBL-validation.xslt").write_text(xslt, encoding="utf-8")
    env = {"RELAIS_HOME": str(tmp_path / "home"), "RELAIS_NATIVE_CACHE": str(tmp_path / "cache")}
    result = CliRunner().invoke(main, ["rules", "sets", "--rules", str(folder)], env=env)
    assert result.exit_code == 0, result.output
    assert "native en16931-ubl" in result.output and "1/2 asserts native, 1 on Saxon" in result.output
    assert "on Saxon: ODD-1#2" in result.output
    report = json.loads(CliRunner().invoke(main, ["rules", "sets", "--json", "--rules", str(folder)], env=env).output)
    assert report["native"]["en16931-ubl"]["saxon"][0]["assert"] == "ODD-1#2"
    assert report["native"]["en16931-cii"]["saxon"] == []  # the Factur-X EN16931 XSLT: all native


def test_generated_code_is_cached_by_the_stylesheet_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rs = _rules_file(tmp_path, [Rule("/t:doc", [("C1", "false()")])])
    cache = tmp_path / "cache"
    assert [e.rule for e in NativeRunner(cache_dir=cache).run(rs, b"<t:doc xmlns:t='urn:t'/>")] == ["C1"]
    assert len(list(cache.glob("*.native"))) == 1

    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("compiled again")

    monkeypatch.setattr(engine, "compile_stylesheet", refuse)
    assert [e.rule for e in NativeRunner(cache_dir=cache).run(rs, b"<t:doc xmlns:t='urn:t'/>")] == ["C1"]
    # a changed stylesheet is another hash: compiled anew (here: refused, proving it is not reused)
    rs.path.write_text(stylesheet([[Rule("/t:doc", [("C2", "false()")])]]), encoding="utf-8")
    with pytest.raises(AssertionError, match="compiled again"):
        NativeRunner(cache_dir=cache).run(rs, b"<t:doc xmlns:t='urn:t'/>")


def test_a_truncated_stylesheet_is_refused_not_skipped(tmp_path: Path) -> None:
    rs = _rules_file(tmp_path, [Rule("/t:doc", [("T1", "false()")])])
    rs.path.write_bytes(rs.path.read_bytes()[:-200])
    with pytest.raises(SchematronError, match="cannot read stylesheet"):
        NativeRunner(cache_dir=tmp_path / "cache").run(rs, b"<t:doc xmlns:t='urn:t'/>")


def test_the_parser_refuses_what_it_does_not_know() -> None:
    with pytest.raises(Unsupported):
        parse("a instance of xs:string", {})
    with pytest.raises(Unsupported):
        parse("foo::bar", {})
    assert parse("- 1", {}) == ("neg", ("lit", 1))


def test_runtime_casts_and_comparisons() -> None:
    assert runtime.gcmp("=", [runtime.U("1.0")], [1]) is True
    assert runtime.gcmp("<", [runtime.U("10")], [runtime.U("9")]) is True  # untyped vs untyped: strings
    with pytest.raises(runtime.XPathError, match="FORG0001"):
        runtime.gcmp("=", [runtime.U("abc")], [1])
    with pytest.raises(runtime.XPathError, match="XPTY0004"):
        runtime.vcmp("eq", ["a"], [1])
    assert runtime.fn_round([-0.4]) == [-0.0] and runtime.fn_round([0.49999999999999994]) == [0.0]
    assert to_decimal(runtime.U(" 12.50 ")) == Decimal("12.50")


# ---- the official rule sets -------------------------------------------------------


def test_every_shipped_rule_set_compiles_entirely_to_python(tmp_path: Path) -> None:
    """factur-x's XSLTs (Factur-X profiles, BR-FR, the CEN UBL copy): no assert left to Saxon."""
    sets = schematron.discover(None)
    native = NativeRunner(cache_dir=tmp_path / "cache")
    for rs in sets.all():
        assert native.assert_uids(rs), rs.key
        assert native.fallbacks(rs) == [], (rs.key, native.fallbacks(rs)[:3])


def test_a_dynamic_error_fails_closed_in_the_judge(tmp_path: Path) -> None:
    """Fail closed through the judge: a CII amount written '41,45' makes a Factur-X assert raise
    (it cannot become a number); with --keep-going the rules run past the XSD error and the
    document gets RLS-T18 (rules not run) in both engines, never a verdict of the rules."""
    from flows.domain.errors import Incident
    from flows.domain.model import Container
    from relais import generate as gen
    from validators.document import DocumentJudge, JudgeConfig

    spec = next(iter(gen.plan(1, 2, gen.sample_directory())))
    xml = gen.invoice_xml("cii", spec)
    start = xml.index(b"<ram:LineTotalAmount>") + len(b"<ram:LineTotalAmount>")
    end = xml.index(b"</ram:LineTotalAmount>", start)
    broken = xml[:start] + xml[start:end].replace(b".", b",") + xml[end:]
    outcomes = []
    for engine_name in ("official", "native"):
        judge = DocumentJudge(JudgeConfig(rules_engine=engine_name, native_cache=tmp_path / "cache"))
        try:
            verdict = judge.judge(broken, Container.XML, keep_going=True)
        except Incident:
            outcomes.append("incident")
            continue
        outcomes.append(
            "RLS-T18" if any(e.rule == "RLS-T18" for e in verdict.errors) else f"verdict {verdict.rejected}"
        )
    assert outcomes[0] == outcomes[1], outcomes
    assert outcomes[1] in ("incident", "RLS-T18"), outcomes  # never "valid", never a verdict of the rules


@pytest.mark.slow
def test_a_100000_line_invoice_gets_a_verdict_within_a_worker_memory_cap(tmp_path: Path, cen_rules_dir: Path) -> None:
    """XSD and the native CEN rules on a ~100 MB invoice, in a pool worker capped at 3 GB of data."""
    from flows.domain.model import Container
    from relais import generate as gen
    from validators.document import JudgeConfig
    from validators.pool import ValidationPool
    from validators.pool.config import Job, PoolConfig

    data = gen.invoice_xml("cii", next(iter(gen.plan(1, 100_000, gen.sample_directory()))))
    config = PoolConfig(
        judge=JudgeConfig(rules_dir=cen_rules_dir, native_cache=tmp_path / "cache"),
        workers=1,
        worker_memory_mb=3072,
        inline_below=0,
        seconds_per_document=900,
    )
    pool = ValidationPool(config)
    try:
        [(_, verdict)] = list(pool.judge_all([Job(1, data, Container.XML, "big.xml")], expected=1))
    finally:
        pool.close()
    assert verdict.xsd_valid and not verdict.rejected, [e.rule for e in verdict.errors][:5]


def test_saxons_evaluation_order_where_an_error_depends_on_it(both) -> None:
    """Three places where whether the run aborts depends on what Saxon evaluates, checked on Saxon itself."""
    doc = "<t:doc xmlns:t='urn:t'><t:x><t:t>30</t:t><t:t>30</t:t><t:y/></t:x></t:doc>"
    # 1. an error while matching a rule's pattern: the pattern does not match (XSLT 2.0 5.5.3)
    assert fired(both([[Rule("t:x[normalize-space(t:t) = '30']", [("P1", "false()")])]], doc)) == []
    # 2. Saxon evaluates the cheaper operand of and/or first: not(t:y) is false, the other is never read
    test = "count(t:x[(normalize-space(t:t) = '30' or normalize-space(t:t) = '58') and not(t:y)]) = 0"
    assert fired(both([[Rule("/t:doc", [("P2", test)])]], doc)) == []
    with pytest.raises(SchematronError):  # without t:y the erroneous operand is evaluated: both abort
        both([[Rule("/t:doc", [("P3", test)])]], doc.replace("<t:y/>", ""))
    # 3. a function's variable read only by the result is evaluated where it is read (here never: the
    # left operand is false). (BR-FR's date check, whose variables are read by other variables, aborts
    # on a blank date in both engines: the differential test's BR-FR mutants check that shape.)
    functions = """<xsl:function name="t:once" as="xs:boolean">
      <xsl:param name="v" as="xs:string?"/>
      <xsl:variable name="n" select="xs:decimal($v)"/>
      <xsl:sequence select="$v = 'no' and $n = 1"/>
    </xsl:function>"""
    bad = "<t:doc xmlns:t='urn:t'><t:v>x</t:v></t:doc>"
    assert fired(both([[Rule("/t:doc", [("F1", "not(t:once(t:v))")])]], bad, functions)) == []


@pytest.mark.parametrize("module", ["operators", "functions"])
def test_runtime_doctests(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"validators.native.runtime.{module}"))
    assert result.attempted > 0 and result.failed == 0


def test_every_builtin_calls_only_what_the_runtime_exports() -> None:
    """Each entry of the function table compiles, to code that reads only names `runtime` re-exports."""
    import re

    from validators.native.builtins import BUILTINS, VARIADIC
    from validators.native.codegen import Compiler, Scope

    compiler = Compiler({}, {}, set())
    compiler.scope = Scope({}, has_position=True)
    for (name, arity), emit in BUILTINS.items():
        code, kind = emit(compiler, [("lit", "a")] * (2 if arity == VARIADIC else arity))
        assert kind in ("seq", "bool", "str", "int"), name
        assert set(re.findall(r"\bR\.(\w+)", code)) <= set(runtime.__all__), (name, code)
