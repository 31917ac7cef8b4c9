"""Differential test of the native rule engine (issue 14) against the official schematron XSLTs.

Every document of the public corpus (each XML invoice, and the invoice XML embedded in each
readable Factur-X PDF) and every mutant of `tests.support.mutants` is judged with the rule sets Relais
would pick for it (`validators.document.DocumentJudge._business_rules`: the EN 16931 UBL or CII
rules, a Factur-X profile's rules, plus the CEN CII rules for an EN16931-profile Factur-X, plus
BR-FR for French-flavoured documents), once by `validators.schematron.Runner` (Saxon running the
official XSLT) and once by `validators.native.NativeRunner`. The findings must be identical as
ordered lists of (rule, flag, location, message with whitespace collapsed), and so must the
abort (an exception raised or not, and its type).

The documents are split in `SHARDS` tests, so that xdist spreads them over its workers. Each
shard writes what the native engine saw (`NativeRunner.outcomes()`) to
``var/test-artifacts/native-coverage/<run>/shard-<k>.json``; the shard that finishes last
merges them into ``var/test-artifacts/native-coverage.json`` and checks the coverage: every
natively evaluated assert of the `FULL_COVERAGE` rule sets (EN 16931 UBL and CII, BR-FR UBL and CII:
the BR-FR ones through the directed mutants of `tests.support.brfr_mutants`, one table entry per
assert id) must have been seen both failing and passing (but the `UNREACHABLE` ones, each with its
reason: constant tests, shadowed rules, tests that cannot fail in a run that completes), and the
other rule sets must not fall below `FLOORS` (asserts seen both ways). The JSON holds, per rule set, the counts (both ways, only
failing, only passing, never, fallback) and the unseen asserts with the reason when known.
(Run a subset of the shards and no coverage is checked.) Mismatches go to
``native-mismatches.json`` beside it.

Without ``validators.native`` the tests are skipped; ``RELAIS_NATIVE_STANDIN=1`` runs the harness
with the official Runner on both sides instead, its coverage read from the official SVRL
(fired rules and failed asserts), to develop the mutants.
"""

from __future__ import annotations

import collections
import difflib
import fcntl
import functools
import json
import os
import shutil
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from flows.io import safexml
from tests.support import mutants as mut

pytestmark = pytest.mark.slow

SHARDS = 8
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"
COVERAGE_JSON = ARTIFACTS / "native-coverage.json"
MISMATCHES_JSON = ARTIFACTS / "native-mismatches.json"
STANDIN = os.environ.get("RELAIS_NATIVE_STANDIN") == "1"
#: rule sets whose every natively evaluated assert must be seen both failing and passing
FULL_COVERAGE = ("en16931-ubl", "en16931-cii", "br-fr-ubl", "br-fr-cii")
#: the others: asserts seen both ways, at least (what the corpus and the mutants reach today)
FLOORS: dict[str, int] = {
    "facturx-minimum": 90,
    "facturx-basicwl": 204,
    "facturx-basic": 253,
    "facturx-en16931": 315,
    "facturx-extended": 1096,  # tests.support.extended_mutants (structural) + directed and targeted mutants
}
#: asserts that no document can make both fail and pass: (rule set, assert id) -> why. Asserts whose test
#: is a constant (``true()``...) are found in the XSLT and added to these (`_constant_asserts`).
UNREACHABLE: dict[tuple[str, str], str] = {
    **{
        ("en16931-cii", rule): "its rule (context /rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:TypeCode, "
        "priority 1008) is shadowed in the same pattern (M11) by the rule on //ram:TypeCode (priority 1009): "
        "it never fires"
        for rule in ("CII-DT-010", "CII-DT-011", "CII-DT-012")
    },
    **{
        ("en16931-ubl", rule): "its test reads //cac:TaxTotal/cbc:TaxAmount[@currencyID = cbc:DocumentCurrencyCode] "
        "(or TaxCurrencyCode): a child of cbc:TaxAmount, which never exists, so the test is always true"
        for rule in ("BR-DEC-13", "BR-DEC-15")
    },
    **{
        ("en16931-cii", rule): "its test is 'every $rate in ../ram:RateApplicablePercent ...' from the context "
        "ram:ApplicableTradeTax: '..' is ram:ApplicableHeaderTradeSettlement, which has no RateApplicablePercent, "
        "so the test is always true"
        for rule in ("BR-AF-08", "BR-AG-08")
    },
    # BR-FR (tests.support.brfr_mutants aims a mutant at every other assert)
    **{
        (key, rule): f"shadowed: its rule has the same context as the rule of {other}, earlier in the same pattern "
        "(higher priority), so it never fires"
        for key, rule, other in (
            ("br-fr-cii", "BR-FR-DEC-01_BT-111", "BR-FR-DEC-01_BT-110 (TaxTotalAmount)"),
            ("br-fr-ubl", "BR-FR-DEC-01_BT-111", "BR-FR-DEC-01_BT-110 (cac:TaxTotal/cbc:TaxAmount)"),
            ("br-fr-ubl", "BR-FR-16_BT-103", "BR-FR-16_BT-96 (cac:AllowanceCharge/cac:TaxCategory)"),
        )
    },
    # "at most one X": a second X makes another assert of the same rule set read a sequence where it wants
    # one item (XPTY0004), so the official run aborts (compared as such) instead of reporting the assert
    **{
        (key, rule): "one too many makes the official run abort (XPTY0004 in an assert reading it as a single "
        "item): the assert is never seen failing in a run that completes"
        for key, rules in (
            ("en16931-ubl", ("UBL-SR-09", "UBL-SR-15", "UBL-SR-22", "UBL-SR-23", "UBL-SR-27")),
            (
                "en16931-cii",
                ("CII-SR-477", "CII-SR-478", "CII-SR-479", "CII-SR-480", "CII-SR-481", "CII-SR-482", "CII-SR-484")
                + ("CII-SR-487",),
            ),
        )
        for rule in rules
    },
}
_LOCAL_RUN = uuid.uuid4().hex


# ---- the engines ----------------------------------------------------------------------------------------------


def _native_runner_class() -> Any:
    try:
        from validators.native import NativeRunner
    except ImportError as e:
        if STANDIN:
            return None
        pytest.skip(f"validators.native is not importable yet ({e}): nothing to compare with the official rules")
    return NativeRunner


@functools.cache
def _rulesets(rules_dir: Path):  # validators.schematron.RuleSets
    from validators import schematron

    return schematron.discover(rules_dir)


@functools.cache
def _official():
    from validators.schematron import Runner

    return Runner()


def chosen_rulesets(sets: Any, doc: mut.Document) -> list[Any]:
    """What `DocumentJudge._business_rules` runs on `doc` (the rules folder being the CEN artefacts)."""
    from flows.domain.model import Syntax
    from validators.document import XRECHNUNG

    if doc.syntax == "ubl":
        chosen = sets.for_document(Syntax.UBL_INVOICE, None, br_fr=doc.french)
    elif doc.profile is None or doc.profile == XRECHNUNG:
        chosen = sets.for_document(Syntax.CII, None, br_fr=doc.french)
    else:
        chosen = sets.for_document(Syntax.FACTURX, doc.profile, br_fr=doc.french)
        if doc.profile == "en16931" and sets.cii.source == "rules-dir":
            chosen.insert(1, sets.cii)
    return chosen


def _norm(errors: list[Any]) -> list[tuple[str, str, str, str]]:
    return [(e.rule, str(e.flag.value), e.location, " ".join(e.message.split())) for e in errors]


Outcome = tuple[str | None, list[tuple[str, str, str, str]], str]


def _outcome(runner: Any, ruleset: Any, xml: Any) -> Outcome:
    """(exception type name or None, normalised findings, exception message): compared without the message."""
    try:
        return None, _norm(runner.run(ruleset, xml)), ""
    except Exception as e:  # SchematronError, UnsafeInput: compared by type
        return type(e).__name__, [], " ".join(str(e).split())[:300]


def _same(a: Outcome, b: Outcome) -> bool:
    return a[:2] == b[:2]


def _show(outcome: Outcome) -> list[str]:
    abort, findings, message = outcome
    lines = [f"ABORT {abort}: {message}"] if abort else []
    return lines + [" | ".join(f) for f in findings]


# ---- stand-in coverage from the official SVRL -------------------------------------------------------------------

XSL = "{http://www.w3.org/1999/XSL/Transform}"
SVRL_NS = "http://purl.oclc.org/dsdl/svrl"
_COVERAGE_WRAPPER = """<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:svrl="http://purl.oclc.org/dsdl/svrl" exclude-result-prefixes="#all">
  <xsl:import href="{href}"/>
  <xsl:output method="xml" omit-xml-declaration="yes" standalone="omit" indent="no"/>
  <xsl:template match="/">
    <xsl:variable name="report"><xsl:apply-imports/></xsl:variable>
    <c><xsl:for-each select="$report/svrl:schematron-output/*">
      <xsl:choose>
        <xsl:when test="self::svrl:active-pattern"><p/></xsl:when>
        <xsl:when test="self::svrl:fired-rule"><r c="{@context}"/></xsl:when>
        <xsl:when test="self::svrl:failed-assert or self::svrl:successful-report"><a i="{@id}" t="{@test}"/></xsl:when>
      </xsl:choose>
    </xsl:for-each></c>
  </xsl:template>
</xsl:stylesheet>"""


class _XsltIndex:
    """The asserts of a compiled schematron XSLT: per (pattern number, rule context), its asserts in order."""

    def __init__(self, path: Path) -> None:
        tree = etree.parse(str(path))
        root = tree.getroot()
        templates = {}
        for t in root.iter(f"{XSL}template"):
            fired = t.find(f"{{{SVRL_NS}}}fired-rule")
            if fired is None or t.get("mode") is None:
                continue
            key = (t.get("mode"), fired.get("context"))
            if key in templates:  # a shadowed duplicate: never fires
                continue
            asserts = [
                (a.get("test"), a.xpath("string(xsl:attribute[@name='id'])", namespaces={"xsl": XSL[1:-1]}))
                for a in t.iter(f"{{{SVRL_NS}}}failed-assert", f"{{{SVRL_NS}}}successful-report")
            ]
            templates[key] = asserts
        main = next(t for t in root.iter(f"{XSL}template") if t.get("match") == "/" and t.get("mode") is None)
        modes: list[str] = []
        for el in main.iter(f"{{{SVRL_NS}}}active-pattern", f"{XSL}apply-templates"):
            if el.tag == f"{{{SVRL_NS}}}active-pattern":
                modes.append("")
            elif el.get("mode") and modes and not modes[-1]:
                modes[-1] = el.get("mode")
        self.modes = modes
        self.templates = templates
        self.uids = [f"{m}|{c}#{i}" for (m, c), asserts in templates.items() for i in range(len(asserts))]
        self.rule_of = {f"{m}|{c}#{i}": a[1] for (m, c), asserts in templates.items() for i, a in enumerate(asserts)}


class StandInRunner:
    """The official Runner on the native side; outcomes read from the SVRL of a second official run."""

    def __init__(self, record: bool = True) -> None:
        self.runner = _official()
        self._outcomes: dict[str, dict[str, list[int]]] = {}
        self._compiled: dict[Path, Any] = {}
        self._index: dict[Path, _XsltIndex] = {}

    def _coverage_exe(self, ruleset: Any) -> Any:
        path = Path(ruleset.path).resolve()
        if path not in self._compiled:
            from xml.sax.saxutils import quoteattr

            proc = self.runner._processor  # started by the first official run
            wrapper = _COVERAGE_WRAPPER.replace('"{href}"', quoteattr(path.as_uri()))
            self._compiled[path] = proc.new_xslt30_processor().compile_stylesheet(stylesheet_text=wrapper)
            self._index[path] = _XsltIndex(path)
        return self._compiled[path], self._index[path]

    def run(self, ruleset: Any, xml: Any) -> list[Any]:
        from validators import schematron

        found = self.runner.run(ruleset, xml)
        exe, index = self._coverage_exe(ruleset)
        text = schematron._source_text(xml)
        node = self.runner._processor.parse_xml(xml_text=text, encoding="UTF-8")
        out = etree.fromstring(exe.transform_to_string(xdm_node=node).encode("utf-8"))
        counts = self._outcomes.setdefault(ruleset.key, {})
        pattern = -1
        current: tuple[str, str] | None = None
        failed: set[int] = set()

        def close() -> None:
            if current is None or current not in index.templates:
                return
            for i in range(len(index.templates[current])):
                c = counts.setdefault(f"{current[0]}|{current[1]}#{i}", [0, 0])
                c[0 if i in failed else 1] += 1

        for el in out:
            if el.tag == "p":
                close()
                current, failed = None, set()
                pattern += 1
            elif el.tag == "r":
                close()
                mode = index.modes[pattern] if 0 <= pattern < len(index.modes) else ""
                current, failed = (mode, el.get("c")), set()
            elif el.tag == "a" and current in index.templates:
                tests = index.templates[current]
                for i, (test, rid) in enumerate(tests):
                    if i not in failed and rid == el.get("i") and test == el.get("t"):
                        failed.add(i)
                        break
        close()
        return found

    def outcomes(self) -> dict[str, dict[str, list[int]]]:
        return self._outcomes

    def assert_uids(self, ruleset: Any) -> list[str]:
        self._coverage_exe(ruleset)
        return self._index[Path(ruleset.path).resolve()].uids

    def fallback_uids(self, ruleset: Any) -> list[str]:
        return []


# ---- documents ----------------------------------------------------------------------------------------------------


def all_documents(corpus: Path) -> list[mut.Document]:
    """The corpus documents, then the mutants: one deterministic list."""
    return [*mut.corpus_documents(corpus), *mut.cached_mutants(corpus)]


def _parse(xml: bytes) -> etree._ElementTree:
    return safexml.parse(xml, limits=safexml.XmlLimits(max_bytes=max(len(xml), safexml.XmlLimits().max_bytes)))


def test_there_are_enough_mutants(corpus: Path) -> None:
    ms = mut.cached_mutants(corpus)
    assert len(ms) >= 2000
    assert len({m.name for m in ms}) == len(ms), "mutant labels must be unique"
    kinds = collections.Counter((m.syntax, m.profile) for m in ms)
    for key in [("ubl", None), ("cii", None), *(("cii", p) for p in mut.FACTURX_GUIDELINES)]:
        assert kinds[key] >= 100, (key, kinds)
    for m in ms[:: max(1, len(ms) // 200)]:
        etree.fromstring(m.xml)  # well-formed


@pytest.mark.parametrize("shard", range(SHARDS))
def test_native_matches_official(shard: int, corpus: Path, cen_rules_dir: Path, request) -> None:
    cls = _native_runner_class()
    native = cls(record=True) if cls is not None else StandInRunner(record=True)
    official = _official()
    sets = _rulesets(cen_rules_dir)
    docs = [d for d in all_documents(corpus) if zlib.crc32(d.name.encode()) % SHARDS == shard]  # balanced
    mismatches: list[dict[str, Any]] = []
    started = time.perf_counter()
    runs = 0
    for i, doc in enumerate(docs):
        tree = _parse(doc.xml)
        chosen = chosen_rulesets(sets, doc)
        expected = [_outcome(official, rs, tree) for rs in chosen]
        native_input = doc.xml if i % 4 == 0 else tree  # both inputs of the contract
        for rs, want in zip(chosen, expected, strict=True):
            got = _outcome(native, rs, native_input)
            runs += 1
            if not _same(got, want):
                mismatches.append(_mismatch(doc, rs.key, want, got))
    elapsed = time.perf_counter() - started
    _write_shard(request.config, shard, native, sets, mismatches, len(docs), runs, elapsed)
    merged = _merge_if_last(request.config)
    problems = []
    if mismatches:
        problems.append(_mismatch_report(mismatches))
    if merged is not None:
        problems.extend(_coverage_problems(merged))
    assert not problems, "\n\n".join(problems)


def _mismatch(doc: mut.Document, key: str, want: Any, got: Any) -> dict[str, Any]:
    diff = "\n".join(difflib.unified_diff(_show(want), _show(got), "official", "native", lineterm="", n=1))
    rules = sorted({f[0] for f in set(want[1]) ^ set(got[1])} | ({"ABORT"} if want[0] != got[0] else set()))
    if not rules:
        rules = ["ORDER"]
    return {
        "document": doc.name,
        "ruleset": key,
        "rules": rules,
        "diff": diff,
        "official": _show(want),
        "native": _show(got),
    }


def _mismatch_report(mismatches: list[dict[str, Any]]) -> str:
    by_rule = collections.Counter(r for m in mismatches for r in m["rules"])
    head = f"{len(mismatches)} document/rule-set pairs differ; by rule: " + ", ".join(
        f"{r} {n}" for r, n in by_rule.most_common(40)
    )
    shown = [f"--- {m['document']}  [{m['ruleset']}]\n{m['diff']}" for m in mismatches[:15]]
    return "\n".join([head, *shown, f"(all of them in {MISMATCHES_JSON})"])


# ---- coverage across shards ------------------------------------------------------------------------------------


def _run_id(config: pytest.Config) -> str:
    workerinput = getattr(config, "workerinput", None)
    return workerinput["testrunuid"] if workerinput else _LOCAL_RUN


def _run_dir(config: pytest.Config) -> Path:
    return ARTIFACTS / "native-coverage" / _run_id(config)


def _write_shard(config, shard, native, sets, mismatches, docs, runs, elapsed) -> None:
    keys = {rs.key: rs for rs in sets.all()}
    record = {
        "shard": shard,
        "documents": docs,
        "runs": runs,
        "seconds": round(elapsed, 1),
        "outcomes": native.outcomes(),
        "uids": {k: list(native.assert_uids(rs)) for k, rs in keys.items()},
        "fallback": {k: list(native.fallback_uids(rs)) for k, rs in keys.items()},
        "rule_of": _rule_ids(native, keys),
        "why": {k: _unreachable(rs) for k, rs in keys.items()},
        "mismatches": mismatches,
        "standin": isinstance(native, StandInRunner),
    }
    folder = _run_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".shard-{shard}.tmp"
    tmp.write_text(json.dumps(record))
    tmp.replace(folder / f"shard-{shard}.json")


@functools.cache
def _constant_asserts(path: Path) -> dict[str, str]:
    """{uid: why} of the asserts of an XSLT whose test is a constant; uid as the native engine numbers them
    ('<assert id>#<1-based position among the XSLT's asserts and reports>')."""
    root = etree.parse(str(path)).getroot()
    out = {}
    items = root.iter(f"{{{SVRL_NS}}}failed-assert", f"{{{SVRL_NS}}}successful-report")
    for i, a in enumerate(items, 1):
        test = " ".join((a.get("test") or "").split())
        rid = a.xpath("string(xsl:attribute[@name='id'])", namespaces={"xsl": XSL[1:-1]})
        rid = rid or f"SVRL-{etree.QName(a).localname}"  # as the native engine names an assert without id
        if test in ("true()", "false()", "1", "0"):
            out[f"{rid}#{i}"] = f"its test is the constant {test}: it can only ever go one way"
        elif test == "false":  # a child element named 'false': never there
            out[f"{rid}#{i}"] = "its test is the path 'false' (no such element): it fails wherever its rule fires"
    return out


def _unreachable(ruleset: Any) -> dict[str, str]:
    found = dict(_constant_asserts(Path(ruleset.path).resolve()))
    for (key, rule), why in UNREACHABLE.items():
        if key == ruleset.key:
            found[rule] = why  # by assert id: resolved against uids in _merge
    return found


def _rule_ids(native: Any, keys: dict[str, Any]) -> dict[str, dict[str, str]]:
    """uid -> assert id (the SVRL rule id) for the report; the native uid is '<rule id>#<ordinal>'."""
    out = {}
    for k, rs in keys.items():
        if isinstance(native, StandInRunner):
            out[k] = dict(native._index[Path(rs.path).resolve()].rule_of)
        else:
            out[k] = {u: u.rsplit("#", 1)[0] for u in native.assert_uids(rs)}
    return out


def _merge_if_last(config: pytest.Config) -> dict[str, Any] | None:
    """The merged coverage when every shard of this run has written its record, else None."""
    folder = _run_dir(config)
    with open(folder / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = sorted(folder.glob("shard-*.json"))
        if len(done) < SHARDS or (folder / "merged").exists():
            return None
        (folder / "merged").touch()
    records = [json.loads(p.read_text()) for p in done]
    shutil.rmtree(folder, ignore_errors=True)  # this run's shard records live on in the merged files
    merged = _merge(records)
    COVERAGE_JSON.write_text(json.dumps(merged, indent=1, sort_keys=True))
    MISMATCHES_JSON.write_text(json.dumps([m for r in records for m in r["mismatches"]], indent=1))
    print("\n" + _summary_table(merged))  # shown with -s / -rA; the JSON has it all
    return merged


def _merge(records: list[dict[str, Any]]) -> dict[str, Any]:
    first = records[0]
    counts: dict[str, dict[str, list[int]]] = {}
    for r in records:
        for key, per in r["outcomes"].items():
            dest = counts.setdefault(key, {})
            for uid, (failed, passed) in per.items():
                c = dest.setdefault(uid, [0, 0])
                c[0] += failed
                c[1] += passed
    sets = {}
    for key, uids in first["uids"].items():
        per = counts.get(key, {})
        fallback = set(first["fallback"].get(key, []))
        rule_of = first["rule_of"].get(key, {})
        why = first["why"].get(key, {})
        native = [u for u in uids if u not in fallback]
        both = [u for u in native if per.get(u, [0, 0])[0] and per.get(u, [0, 0])[1]]
        only_failed = [u for u in native if per.get(u, [0, 0])[0] and not per.get(u, [0, 0])[1]]
        only_passed = [u for u in native if per.get(u, [0, 0])[1] and not per.get(u, [0, 0])[0]]
        never = [u for u in native if not any(per.get(u, [0, 0]))]
        sets[key] = {
            "asserts": len(uids),
            "native": len(native),
            "fallback": len(fallback),
            "both": len(both),
            "only_failed": len(only_failed),
            "only_passed": len(only_passed),
            "never": len(never),
            "floor": FLOORS.get(key),
            "unseen": {
                "only_failed": [f"{u} ({rule_of.get(u, '?')})" for u in only_failed],
                "only_passed": [f"{u} ({rule_of.get(u, '?')})" for u in only_passed],
                "never": [f"{u} ({rule_of.get(u, '?')})" for u in never],
                "why": {
                    u: why[u] if u in why else why[rule_of.get(u, "")]
                    for u in only_failed + only_passed + never
                    if u in why or rule_of.get(u, "") in why
                },
            },
            "fallback_uids": sorted(fallback),
        }
    return {
        "standin": first["standin"],
        "documents": sum(r["documents"] for r in records),
        "runs": sum(r["runs"] for r in records),
        "seconds_per_shard": [r["seconds"] for r in records],
        "mismatches": sum(len(r["mismatches"]) for r in records),
        "rulesets": sets,
    }


def _summary_table(merged: dict[str, Any]) -> str:
    rows = [
        f"native coverage ({merged['documents']} documents, {merged['runs']} rule-set runs"
        f"{', STAND-IN' if merged['standin'] else ''}): {COVERAGE_JSON}",
        f"{'rule set':18} {'asserts':>7} {'native':>7} {'both':>6} {'fail':>6} {'pass':>6} {'never':>6} {'fallbk':>6}",
    ]
    for key, s in merged["rulesets"].items():
        rows.append(
            f"{key:18} {s['asserts']:7} {s['native']:7} {s['both']:6} {s['only_failed']:6} "
            f"{s['only_passed']:6} {s['never']:6} {s['fallback']:6}"
        )
    return "\n".join(rows)


def _coverage_problems(merged: dict[str, Any]) -> list[str]:
    problems = []
    for key, s in merged["rulesets"].items():
        if key in FULL_COVERAGE:
            missing = [
                u
                for kind in ("only_failed", "only_passed", "never")
                for u in s["unseen"][kind]
                if u.split(" (")[0] not in s["unseen"]["why"]
            ]
            if missing:
                problems.append(
                    f"{key}: {len(missing)} asserts not seen both failing and passing: " + ", ".join(missing[:60])
                )
        elif FLOORS.get(key) is not None and s["both"] < FLOORS[key]:
            problems.append(f"{key}: {s['both']} asserts seen both ways, below the floor {FLOORS[key]}")
    if problems:
        problems.insert(0, _summary_table(merged))
    return problems
