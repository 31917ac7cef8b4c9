"""One XPath expression evaluated by Saxon (saxonche, the official run's engine) and by the native engine.

Both give the same description of the result: ``("value", "<type> <string>|...")``
for a sequence of atomic values (its items' types and string values; a finite,
non-zero double is written as its exact decimal value, which compares values
whatever the digits each engine writes for it; xs:integer and xs:decimal are
both "decimal": Saxon gives some integral decimals as integers, a difference
only ``instance of`` sees, which the native engine does not compile), or
``("error", code)`` for a dynamic error (``code`` may be ``None`` when Saxon
reports a static error without a code). The native side compiles the
expression with `validators.native.codegen.Compiler` and evaluates the code
over `validators.native.runtime`, as a rule's test is.
"""

from __future__ import annotations

import functools
import math
import re
from decimal import Decimal
from typing import Any

from validators.native import runtime as R
from validators.native.codegen import XS, Compiler
from validators.native.runtime.nodes import node_name
from validators.native.xpath import parse

Outcome = tuple[str, str | None]

_TYPE_OF = """if ($x instance of xs:boolean) then 'boolean'
 else if ($x instance of xs:decimal) then 'decimal' else if ($x instance of xs:double) then 'double'
 else if ($x instance of xs:untypedAtomic) then 'untypedAtomic' else if ($x instance of xs:string) then 'string'
 else 'other'"""
_STRING_OF = """if (not($x instance of xs:double)) then string($x) else (let $d := xs:double($x) return
 if ($d = $d and abs($d) ne xs:double('INF') and $d ne 0) then string(xs:decimal($d)) else string($d))"""
_CODE = re.compile(r"\b([A-Z]{4}\d{4})\b")


@functools.cache
def _xquery() -> Any:
    import saxonche

    return saxonche.PySaxonProcessor(license=False).new_xquery_processor()


def saxon(expr: str) -> Outcome:
    """`expr` evaluated by Saxon (an XQuery try/catch around it gives dynamic errors' codes)."""
    import saxonche

    query = (
        f"try {{ string-join(for $x in ({expr}) return concat({_TYPE_OF}, ' ', {_STRING_OF}), '|') }}"
        " catch * { concat('error ', local-name-from-QName($err:code)) }"
    )
    try:
        text = _xquery().run_query_to_string(query_text=query) or ""
    except saxonche.PySaxonApiError as e:  # a static error: Saxon saw it without running
        found = _CODE.search(str(e))
        return ("error", found.group(1) if found else None)
    text = text.split("?>", 1)[1] if text.startswith("<?xml") else text
    if text.startswith("error "):
        return ("error", text[6:])
    return ("value", text)


def _type(x: Any) -> str:
    if isinstance(x, bool):
        return "boolean"
    if isinstance(x, (int, Decimal)):
        return "decimal"
    if isinstance(x, float):
        return "double"
    if isinstance(x, R.U):
        return "untypedAtomic"
    if isinstance(x, str):
        return "string"
    return "other"


def native(expr: str) -> Outcome:
    """`expr` compiled and run by the native engine (no context item: literals, casts and functions only)."""
    namespaces = {"xs": XS}
    compiler = Compiler(namespaces, {}, set())
    code, kind = compiler.expr(parse(expr, namespaces))
    try:
        value = eval(Compiler.as_seq(code, kind), {"R": R, "K": compiler.constants})  # our own code
    except R.XPathError as e:
        return ("error", e.code)
    return ("value", "|".join(f"{_type(x)} {_string(x)}" for x in value))


def _string(x: Any) -> str:
    if isinstance(x, float) and math.isfinite(x) and x != 0:
        return R.to_string(Decimal(x))
    return R.to_string(x)


def same(expected: Outcome, got: Outcome) -> bool:
    """Saxon's outcome and the native one agree (an error without a code agrees with any error)."""
    if expected[0] == "error" and got[0] == "error" and expected[1] is None:
        return True
    return expected == got


# ---- over a document: the expression's context item is the document node of `xml`

_NODE_TYPE = "if ($x instance of node()) then 'node' else " + _TYPE_OF
_NODE_STRING = f"if ($x instance of node()) then concat(name($x), '=', string($x)) else ({_STRING_OF})"


def saxon_on(xml: str, expr: str, namespaces: dict[str, str] | None = None) -> Outcome:
    """`expr` evaluated by Saxon with the document `xml` as context item (and `namespaces`'
    prefixes declared); a node is described as ``node <name>=<string value>``."""
    import saxonche

    literal = "'" + xml.replace("&", "&amp;").replace("'", "''") + "'"
    prolog = "".join(f"declare namespace {p} = '{u}'; " for p, u in (namespaces or {}).items())
    query = prolog + (
        f"try {{ string-join(for $x in (parse-xml({literal}) ! ({expr})) return"
        f" concat({_NODE_TYPE}, ' ', {_NODE_STRING}), '|') }}"
        " catch * { concat('error ', local-name-from-QName($err:code)) }"
    )
    try:
        text = _xquery().run_query_to_string(query_text=query) or ""
    except saxonche.PySaxonApiError as e:
        found = _CODE.search(str(e))
        return ("error", found.group(1) if found else None)
    text = text.split("?>", 1)[1] if text.startswith("<?xml") else text
    if text.startswith("error "):
        return ("error", text[6:])
    return ("value", text)


def native_on(xml: str, expr: str, namespaces: dict[str, str] | None = None) -> Outcome:
    """`expr` compiled by the native compiler and run with the document `xml` as context item
    (and as ``current()``), over a run state of the engine (`validators.native.engine.State`)."""
    from pathlib import Path

    from lxml import etree

    from validators.native.engine import Loaded, NativeRunner, State

    ns = {"xs": XS, **(namespaces or {})}
    compiler = Compiler(ns, {}, set())
    code, kind = compiler.expr(parse(expr, ns))
    tree = etree.ElementTree(etree.fromstring(xml.encode()))
    loaded = Loaded("oracle", "", [], [], {}, None, Path("."))
    state = State(NativeRunner(), loaded, tree)
    scope = {"R": R, "K": compiler.constants, "c": state.doc, "cur": state.doc, "D": state}
    try:
        value = eval(Compiler.as_seq(code, kind), scope)  # our own code
    except R.XPathError as e:
        return ("error", e.code)
    return ("value", "|".join(_describe(x) for x in value))


def _describe(x: Any) -> str:
    if R.is_node(x):
        return f"node {node_name(x)}={R.string_value(x)}"
    return f"{_type(x)} {_string(x)}"
