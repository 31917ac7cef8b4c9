"""What generated code needs beyond expressions: predicates, ranges, set operators, typed parameters,
lazy variables, messages and locations, and ``and``/``or`` that tolerate an error in one operand."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lxml import etree

from validators.native.runtime.casts import CASTS, ebv, to_integer, to_string
from validators.native.runtime.nodes import (
    COMMENT_OR_PI,
    ELEMENT,
    Attr,
    Doc,
    atom1,
    atomize,
    doc_order,
    is_element,
    is_node,
    node_name,
)
from validators.native.runtime.values import Date, U, XPathError, is_num, type_name


def fn_index(seq: Sequence[Any], n: int) -> list[Any]:
    return [seq[n - 1]] if 1 <= n <= len(seq) else []


def position_match(value: Sequence[Any], pos: int) -> bool:
    """A predicate's verdict: numeric -> position test, else its effective boolean value."""
    if len(value) == 1:
        x = value[0]
        if is_num(x):
            return bool(x == pos)
    return ebv(value)


def to_range(a: Sequence[Any], b: Sequence[Any]) -> list[int]:
    x, y = atom1(a), atom1(b)
    if x is None or y is None:
        return []
    lo = to_integer(x) if not isinstance(x, int) else x
    hi = to_integer(y) if not isinstance(y, int) else y
    return list(range(lo, hi + 1))


def set_op(doc: Doc, op: str, a: Sequence[Any], b: Sequence[Any]) -> list[Any]:
    if any(not is_node(x) for x in a) or any(not is_node(x) for x in b):
        raise XPathError("XPTY0004", f"{op} of atomic values")
    if op == "union":
        if not a or not b:  # one side empty (cac:InvoiceLine | cac:CreditNoteLine): already in order
            return list(b or a)  # (both sides were checked to be nodes above)
        return doc_order(doc, [*a, *b])
    keys = set(b)
    if op == "intersect":
        return doc_order(doc, [x for x in a if x in keys])
    return doc_order(doc, [x for x in a if x not in keys])


def convert_param(seq: Sequence[Any], type_local: str, occurrence: str) -> list[Any]:
    """Function conversion rules for an ``as="xs:T?"`` parameter or result."""
    if type_local.endswith("()"):  # element(), node(), item(): no atomisation
        if occurrence in ("", "?") and len(seq) > 1:
            raise XPathError("XPTY0004", f"{len(seq)} items where {type_local}{occurrence} is required")
        if occurrence in ("", "+") and not seq:
            raise XPathError("XPTY0004", f"an empty sequence where {type_local}{occurrence} is required")
        if type_local == "element()" and not all(is_element(x) for x in seq):
            raise XPathError("XPTY0004", "an item that is not an element where element() is required")
        if type_local == "node()" and not all(is_node(x) for x in seq):
            raise XPathError("XPTY0004", "an item that is not a node where node() is required")
        return list(seq)
    values = atomize(seq)
    if occurrence in ("", "?") and len(values) > 1:
        raise XPathError("XPTY0004", f"a sequence of {len(values)} items where xs:{type_local}{occurrence} is required")
    if occurrence in ("", "+") and not values:
        raise XPathError("XPTY0004", f"an empty sequence where xs:{type_local}{occurrence} is required")
    out = []
    for v in values:
        if isinstance(v, U):
            out.append(CASTS[type_local](v) if type_local in CASTS else v)
        else:
            out.append(_promote(v, type_local))
    return out


def _promote(v: Any, type_local: str) -> Any:
    if type_local in ("anyAtomicType", "item"):
        return v
    ok = {
        "string": lambda x: isinstance(x, str),
        "boolean": lambda x: isinstance(x, bool),
        "decimal": lambda x: is_num(x) and not isinstance(x, float),
        "integer": lambda x: isinstance(x, int) and not isinstance(x, bool),
        "double": is_num,
        "date": lambda x: isinstance(x, Date),
    }.get(type_local)
    if ok is None or not ok(v):
        raise XPathError("XPTY0004", f"{type_name(v)} where xs:{type_local} is required")
    if type_local == "double":
        return float(v)
    return v


class Lazy:
    """A variable: evaluated on first use (an error in one never used is no error, as in Saxon)."""

    __slots__ = ("fn", "value")

    def __init__(self, fn: Callable[[], list[Any]]) -> None:
        self.fn: Callable[[], list[Any]] | None = fn
        self.value: list[Any] = []

    def __call__(self) -> list[Any]:
        if self.fn is not None:
            self.value = self.fn()
            self.fn = None
        return self.value


def value_of(seq: Sequence[Any]) -> str:
    """xsl:value-of: the atomised items as strings, separated by spaces."""
    return " ".join(to_string(x) for x in atomize(seq))


def first_node(seq: Sequence[Any], default: Any) -> Any:
    return seq[0] if seq and is_node(seq[0]) else default


def full_path(n: Any) -> str:
    """The skeleton's ``schematron-select-full-path``: ``/*:Invoice[namespace-uri()='...'][1]/...``."""
    parts: list[str] = []
    if isinstance(n, Attr):
        if n.name.startswith("{"):
            ns, local = n.name[1:].split("}", 1)
            parts.append(f"/@*[local-name()='{local}' and namespace-uri()='{ns}']")
        else:
            parts.append(f"/@{n.name}")
        n = n.parent
    while isinstance(n, ELEMENT):
        q = etree.QName(n)
        local, ns = q.localname, q.namespace or ""
        count = 1
        for s in n.itersiblings(preceding=True):
            if not isinstance(s, COMMENT_OR_PI) and s.tag == n.tag:
                count += 1
        if ns:
            parts.append(f"/*:{local}[namespace-uri()='{ns}'][{count}]")
        else:
            parts.append(f"/{node_name(n)}[{count}]")
        n = n.getparent()
    return "".join(reversed(parts))


def t_and(a: Callable[[], bool], b: Callable[[], bool]) -> bool:
    """``a and b`` when an operand may raise: false if either operand alone is false."""
    try:
        x = a()
    except XPathError:
        if not b():
            return False
        raise
    return x and b()


def t_or(a: Callable[[], bool], b: Callable[[], bool]) -> bool:
    """``a or b`` when an operand may raise: true if either operand alone is true."""
    try:
        x = a()
    except XPathError:
        if b():
            return True
        raise
    return x or b()
