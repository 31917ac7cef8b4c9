"""What generated rule code calls: XPath 2.0 values, atomisation, comparisons, arithmetic and functions.

Values follow the XPath 2.0 data model as the official Saxon run sees an
untyped (not schema-validated) invoice:

- a sequence is a Python list; nodes are lxml elements, `Attr`, `Text` and `Doc`;
- ``xs:untypedAtomic`` (what a node atomises to) is `U`, a ``str`` subclass;
  ``xs:string`` is ``str``, ``xs:boolean`` ``bool``, ``xs:integer`` ``int``,
  ``xs:decimal`` ``Decimal`` (exact; division as Saxon: at least 18 decimals,
  rounded half down), ``xs:double`` ``float``, ``xs:date`` `Date`;
- general comparisons cast untyped operands to the other side's type (to
  ``xs:double`` against a number: ``'abc' > 0`` is a dynamic error, as in
  Saxon); arithmetic casts them to ``xs:double``;
- ``round`` rounds halves towards positive infinity (``round(-2.5)`` is -2);
- ``normalize-space`` and the regex ``\\s`` know only space, tab, CR and LF
  (not the non-breaking space);
- a dynamic error raises `XPathError` with its XPath error code: the
  document's run is aborted, as Saxon's is.

>>> gcmp("=", [U("1.0")], [1])
True
>>> fn_round([Decimal("-2.5")]), fn_round([2.5]), fn_round([U("0.5")])
([Decimal('-2')], [3.0], [1.0])
>>> arith("div", [1], [3])
[Decimal('0.333333333333333333')]
>>> fn_normalize_space(["\\u00a0 a  b "])
['\\xa0 a b']
"""

from __future__ import annotations

import datetime
import decimal
import math
import re
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

from lxml import etree

_CTX = decimal.Context(prec=200, rounding=decimal.ROUND_HALF_EVEN, traps=[decimal.InvalidOperation, decimal.Overflow])
DIVIDE_SCALE = 18  # Saxon: BigDecimal.divide(other, max(18, scales), HALF_DOWN)


class XPathError(Exception):
    """A dynamic error: the official run aborts on it, so the native run does too."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"{code}: {message}")


class U(str):
    """xs:untypedAtomic."""

    __slots__ = ()


class Attr:
    __slots__ = ("parent", "name", "value")

    def iterchildren(self, tag: Any = None) -> tuple[()]:
        return ()

    def __init__(self, parent: Any, name: str, value: str) -> None:
        self.parent = parent
        self.name = name
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Attr) and other.parent is self.parent and other.name == self.name

    def __hash__(self) -> int:
        return hash((id(self.parent), self.name))


class Text:
    __slots__ = ("parent", "index", "value")

    def iterchildren(self, tag: Any = None) -> tuple[()]:
        return ()

    def __init__(self, parent: Any, index: int, value: str) -> None:
        self.parent = parent
        self.index = index
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Text) and other.parent is self.parent and other.index == self.index

    def __hash__(self) -> int:
        return hash((id(self.parent), self.index))


class Doc:
    """The document node."""

    __slots__ = ("root", "_order")

    def iterchildren(self, tag: Any = None) -> list[Any]:
        return [self.root] if tag is None or _tag_ok(self.root, tag) else []

    def __init__(self, root: Any) -> None:
        self.root = root
        self._order: dict[Any, int] | None = None

    @property
    def order(self) -> dict[Any, int]:
        """Every node's position in document order; built on first use (sorting is rare, and
        holding a proxy for each of a 100,000-line invoice's millions of elements is not free)."""
        if self._order is None:
            self._order = {el: i for i, el in enumerate(self.root.iter())}
        return self._order


class Date:
    __slots__ = ("date", "tz")

    def __init__(self, date: datetime.date, tz: int | None) -> None:
        self.date = date
        self.tz = tz  # minutes, None when absent

    def _key(self) -> datetime.datetime:
        start = datetime.datetime(self.date.year, self.date.month, self.date.day)
        return start - datetime.timedelta(minutes=self.tz or 0)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Date) and self._key() == other._key()

    def __lt__(self, other: Date) -> bool:
        return self._key() < other._key()

    def __le__(self, other: Date) -> bool:
        return self._key() <= other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        text = self.date.isoformat()
        if self.tz is None:
            return text
        if self.tz == 0:
            return text + "Z"
        sign = "+" if self.tz > 0 else "-"
        return f"{text}{sign}{abs(self.tz) // 60:02d}:{abs(self.tz) % 60:02d}"


_ELEMENT = etree._Element
_ELEMENT_TYPE = type(etree.Element("x"))
_COMMENT_OR_PI = (etree._Comment, etree._ProcessingInstruction, etree._Entity)


def is_node(x: object) -> bool:
    return isinstance(x, (_ELEMENT, Attr, Text, Doc))


def is_element(x: object) -> bool:
    return isinstance(x, _ELEMENT) and not isinstance(x, _COMMENT_OR_PI)


# ---- nodes ----------------------------------------------------------------------


def string_value(n: Any) -> str:
    if isinstance(n, _ELEMENT):
        if isinstance(n, _COMMENT_OR_PI):
            return n.text or ""
        if len(n) == 0:
            return n.text or ""
        return "".join(_texts(n))
    if isinstance(n, (Attr, Text)):
        return n.value
    if isinstance(n, Doc):
        return string_value(n.root)
    raise TypeError(n)


def _texts(el: Any) -> Iterable[str]:
    if el.text:
        yield el.text
    for child in el:
        if not isinstance(child, _COMMENT_OR_PI):
            yield from _texts(child)
        if child.tail:
            yield child.tail


def atomize(seq: Sequence[Any]) -> list[Any]:
    out = []
    for x in seq:
        if isinstance(x, _ELEMENT):
            out.append(U(x.text or "") if len(x) == 0 and not isinstance(x, _COMMENT_OR_PI) else U(string_value(x)))
        elif isinstance(x, (Attr, Text)):
            out.append(U(x.value))
        elif isinstance(x, Doc):
            out.append(U(string_value(x.root)))
        else:
            out.append(x)
    return out


def atom1(seq: Sequence[Any], what: str = "an operand") -> Any:
    """Zero or one atomic item: None or the item; more is a type error."""
    if not seq:
        return None
    if len(seq) > 1:
        raise XPathError("XPTY0004", f"a sequence of more than one item is not allowed as {what}")
    x = seq[0]
    if type(x) is _ELEMENT_TYPE:
        return U(x.text or "") if len(x) == 0 else U(string_value(x))
    if isinstance(x, _ELEMENT):
        return U(x.text or "") if len(x) == 0 and not isinstance(x, _COMMENT_OR_PI) else U(string_value(x))
    if isinstance(x, (Attr, Text)):
        return U(x.value)
    if isinstance(x, Doc):
        return U(string_value(x.root))
    return x


def sort_key(doc: Doc) -> Callable[[Any], tuple[int, int, str]]:
    order = doc.order

    def key(n: Any) -> tuple[int, int, str]:
        if isinstance(n, _ELEMENT):
            return (order.get(n, -1), 0, "")
        if isinstance(n, Attr):
            return (order.get(n.parent, -1), 1, n.name)
        if isinstance(n, Text):
            return (order.get(n.parent, -1), 2, f"{n.index:08d}")
        return (-2, 0, "")

    return key


def doc_order(doc: Doc, nodes: list[Any]) -> list[Any]:
    """Distinct nodes in document order (atomic values are a type error in a path)."""
    if len(nodes) < 2:
        return nodes
    seen: dict[Any, None] = {}
    for n in nodes:
        if not is_node(n):
            raise XPathError("XPTY0019", "a path step returned atomic values among nodes")
        seen[n] = None
    return sorted(seen, key=sort_key(doc))


def node_name(n: Any) -> str:
    """The QName as written (prefix:local)."""
    if isinstance(n, _ELEMENT) and not isinstance(n, _COMMENT_OR_PI):
        local = local_name(n)
        prefix = n.prefix
        return f"{prefix}:{local}" if prefix else local
    if isinstance(n, Attr):
        if n.name.startswith("{"):
            ns, local = n.name[1:].split("}", 1)
            prefix = _prefix_of(n.parent, ns)
            return f"{prefix}:{local}" if prefix else local
        return n.name
    return ""


def _prefix_of(el: Any, ns: str) -> str | None:
    if ns == "http://www.w3.org/XML/1998/namespace":
        return "xml"
    for p, u in el.nsmap.items():
        if u == ns and p:
            return str(p)
    return None


def local_name(n: Any) -> str:
    if isinstance(n, _ELEMENT) and not isinstance(n, _COMMENT_OR_PI):
        tag = n.tag
        return tag[tag.index("}") + 1 :] if tag[0] == "{" else tag
    if isinstance(n, Attr):
        return n.name.split("}", 1)[1] if n.name.startswith("{") else n.name
    return ""


def namespace_uri(n: Any) -> str:
    if isinstance(n, _ELEMENT) and not isinstance(n, _COMMENT_OR_PI):
        tag = n.tag
        return tag[1 : tag.index("}")] if tag[0] == "{" else ""
    if isinstance(n, Attr) and n.name.startswith("{"):
        return n.name[1:].split("}", 1)[0]
    return ""


def parent_of(n: Any, doc: Doc) -> Any:
    if isinstance(n, _ELEMENT):
        p = n.getparent()
        if p is not None:
            return p
        return doc if n is doc.root else None
    if isinstance(n, (Attr, Text)):
        return n.parent
    return None


# ---- axes (each takes one context node) ---------------------------------------


def children(n: Any, tag: Any) -> list[Any]:
    """Child elements of `n` matching an lxml tag filter (etree.Element for any element)."""
    try:
        return list(n.iterchildren(tag))
    except AttributeError:  # an atomic value: no children
        return []


def descendants_named(n: Any, tags: tuple[str, ...]) -> list[Any]:
    """descendant::* named one of `tags` (from the document node: every element), in document order."""
    if isinstance(n, Doc):
        return list(n.root.iter(*tags))
    if isinstance(n, _ELEMENT) and not isinstance(n, _COMMENT_OR_PI):
        return [e for e in n.iter(*tags) if e is not n]
    return []


def self_and_descendants(n: Any) -> list[Any]:
    """The document node (when `n` is) and every element under `n`, `n` included, in document order."""
    if isinstance(n, Doc):
        return [n, *n.root.iter(etree.Element)]
    if isinstance(n, _ELEMENT) and not isinstance(n, _COMMENT_OR_PI):
        return list(n.iter(etree.Element))
    return [n]


def _tag_ok(el: Any, tag: Any) -> bool:
    if tag is etree.Element:
        return True
    t = el.tag
    if tag.startswith("{*}"):
        return etree.QName(el).localname == tag[3:]
    if tag.endswith("}*"):
        return t.startswith(tag[:-1])
    return bool(t == tag)


def child_nodes(n: Any) -> list[Any]:
    """child::node(): elements, text, comments and processing instructions."""
    if isinstance(n, Doc):
        return [n.root]
    if not isinstance(n, _ELEMENT) or isinstance(n, _COMMENT_OR_PI):
        return []
    out: list[Any] = []
    index = 0
    if n.text:
        out.append(Text(n, index, n.text))
        index += 1
    for c in n:
        out.append(c)
        if c.tail:
            out.append(Text(n, index, c.tail))
            index += 1
    return out


def text_children(n: Any) -> list[Any]:
    return [x for x in child_nodes(n) if isinstance(x, Text)]


def attributes(n: Any, name: str | None) -> list[Any]:
    if not isinstance(n, _ELEMENT) or isinstance(n, _COMMENT_OR_PI):
        return []
    if name is None:
        return [Attr(n, k, v) for k, v in n.attrib.items()]
    v = n.get(name)
    return [] if v is None else [Attr(n, name, v)]


def descendants(n: Any, tag: Any, self_too: bool = False) -> list[Any]:
    if isinstance(n, Doc):
        return list(n.root.iter(tag))
    if not isinstance(n, _ELEMENT) or isinstance(n, _COMMENT_OR_PI):
        return []
    out = list(n.iter(tag))
    if not self_too and out and out[0] is n:
        out = out[1:]
    return out


def descendant_nodes(n: Any, self_too: bool) -> list[Any]:
    """descendant(-or-self)::node()."""
    out: list[Any] = [n] if self_too else []
    for c in child_nodes(n):
        if isinstance(c, _ELEMENT) and not isinstance(c, _COMMENT_OR_PI):
            out.extend(descendant_nodes(c, True))
        else:
            out.append(c)
    return out


def ancestors(n: Any, doc: Doc, self_too: bool) -> list[Any]:
    out = [n] if self_too else []
    p = parent_of(n, doc)
    while p is not None:
        out.append(p)
        p = parent_of(p, doc)
    out.reverse()
    return out


def siblings(n: Any, preceding: bool) -> list[Any]:
    if not isinstance(n, _ELEMENT):
        return []
    it = n.itersiblings(preceding=preceding)
    out = [s for s in it if not isinstance(s, _COMMENT_OR_PI)]
    if preceding:
        out.reverse()
    return out


def preceding_nodes(n: Any, doc: Doc) -> list[Any]:
    """preceding::* (elements only: the rule sets use it with element tests)."""
    if not isinstance(n, _ELEMENT):
        n = parent_of(n, doc)
        if not isinstance(n, _ELEMENT):
            return []
    anc = set(ancestors(n, doc, False))
    limit = doc.order.get(n, -1)
    return [e for e in doc.root.iter(etree.Element) if doc.order.get(e, -1) < limit and e not in anc]


def following_nodes(n: Any, doc: Doc) -> list[Any]:
    if not isinstance(n, _ELEMENT):
        n = parent_of(n, doc)
        if not isinstance(n, _ELEMENT):
            return []
    out: list[Any] = []
    cur = n
    while cur is not None and isinstance(cur, _ELEMENT):
        for s in cur.itersiblings():
            if not isinstance(s, _COMMENT_OR_PI):
                out.extend(s.iter(etree.Element))
        cur = cur.getparent()
    return out


def matches_test(n: Any, test: tuple[Any, ...], principal_attribute: bool = False) -> bool:
    """Does node `n` pass a node test (for the self, parent and ancestor axes)?"""
    if test[0] == "kind":
        kind = test[1]
        if kind == "node":
            return True
        if kind == "element":
            return is_element(n)
        if kind == "attribute":
            return isinstance(n, Attr)
        if kind == "text":
            return isinstance(n, Text)
        if kind == "document-node":
            return isinstance(n, Doc)
        if kind == "comment":
            return isinstance(n, etree._Comment)
        return isinstance(n, etree._ProcessingInstruction)
    _, ns, local = test
    if principal_attribute:
        if not isinstance(n, Attr):
            return False
        return (local is None or local_name(n) == local) and (ns is None or namespace_uri(n) == ns)
    if not is_element(n):
        return False
    return (local is None or local_name(n) == local) and (ns is None or namespace_uri(n) == ns)


# ---- effective boolean value, strings -----------------------------------------


def ebv(seq: Sequence[Any]) -> bool:
    if not seq:
        return False
    x = seq[0]
    if is_node(x):
        return True
    if len(seq) > 1:
        raise XPathError("FORG0006", "effective boolean value of a sequence of several atomic values")
    return ebv1(x)


def ebv1(x: Any) -> bool:
    if isinstance(x, bool):
        return x
    if isinstance(x, str):
        return len(x) > 0
    if isinstance(x, float):
        return not (x == 0 or math.isnan(x))
    if isinstance(x, (int, Decimal)):
        return x != 0
    if is_node(x):
        return True
    raise XPathError("FORG0006", f"no effective boolean value for {type(x).__name__}")


def to_string(x: Any) -> str:
    """xs:string of one atomic value (or a node's string value)."""
    if isinstance(x, str):
        return str.__str__(x) if type(x) is not str else x
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, Decimal):
        return decimal_string(x)
    if isinstance(x, float):
        return double_string(x)
    if isinstance(x, Date):
        return str(x)
    if is_node(x):
        return string_value(x)
    raise XPathError("XPTY0004", f"cannot make a string of {type(x).__name__}")


def decimal_string(d: Decimal) -> str:
    if d == 0:
        return "0"
    text = format(d.normalize(_CTX), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def double_string(f: float) -> str:
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "INF" if f > 0 else "-INF"
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    if 1e-6 <= abs(f) < 1e6:
        text = repr(f)
        if "e" in text or "E" in text:
            text = format(Decimal(text), "f")
        if text.endswith(".0"):
            text = text[:-2]
        return text
    d = Decimal(repr(f))
    sign, digits, exponent = d.as_tuple()
    s = "".join(map(str, digits)).rstrip("0") or "0"
    e = len(digits) - 1 + int(exponent)
    m = s[0] + "." + (s[1:] or "0")
    return f"{'-' if sign else ''}{m}E{e}"


def str_arg(seq: Sequence[Any], what: str = "an argument") -> str:
    """A function's xs:string? argument: '' when empty."""
    if len(seq) == 1:
        x = seq[0]
        if type(x) is _ELEMENT_TYPE:
            return (x.text or "") if len(x) == 0 else string_value(x)
        if type(x) is str:
            return x
    x = atom1(seq, what)
    return "" if x is None else to_string(x)


_XML_SPACE = re.compile(r"[ \t\r\n]+")


def normalize(s: str) -> str:
    if "  " in s or "\t" in s or "\n" in s or "\r" in s:
        return _XML_SPACE.sub(" ", s).strip(" ")
    return s.strip(" ")


# ---- casts ----------------------------------------------------------------------

_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)\Z")
_DOUBLE = re.compile(r"(?:[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|INF)|NaN)\Z")
_INTEGER = re.compile(r"[+-]?\d+\Z")
_DATE = re.compile(r"(-?\d{4,})-(\d{2})-(\d{2})(Z|[+-]\d{2}:\d{2})?\Z")


def _collapse(s: str) -> str:
    return s.strip(" \t\r\n")


def to_double(x: Any) -> float:
    if isinstance(x, float):
        return x
    if isinstance(x, bool):
        return 1.0 if x else 0.0
    if isinstance(x, (int, Decimal)):
        return float(x)
    if isinstance(x, str):
        s = _collapse(x)
        if not _DOUBLE.match(s):
            raise XPathError("FORG0001", f"cannot convert {x!r} to xs:double")
        return float(s.replace("INF", "inf"))
    raise XPathError("XPTY0004", f"cannot convert {type(x).__name__} to xs:double")


def to_decimal(x: Any) -> Decimal:
    if isinstance(x, bool):
        return Decimal(1 if x else 0)
    if isinstance(x, Decimal):
        return x
    if isinstance(x, int):
        return Decimal(x)
    if isinstance(x, float):
        if math.isnan(x) or math.isinf(x):
            raise XPathError("FOCA0002", f"cannot convert {double_string(x)} to xs:decimal")
        return Decimal(x)  # exact, as Saxon's BigDecimal(double): 573.38 - 1 gives 572.3799999999999954525...
    if isinstance(x, str):
        s = _collapse(x)
        if not _DECIMAL.match(s):
            raise XPathError("FORG0001", f"cannot convert {x!r} to xs:decimal")
        return Decimal(s)
    raise XPathError("XPTY0004", f"cannot convert {type(x).__name__} to xs:decimal")


def to_integer(x: Any) -> int:
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, int):
        return x
    if isinstance(x, (Decimal, float)):
        if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
            raise XPathError("FOCA0002", "cannot convert to xs:integer")
        return int(x)
    if isinstance(x, str):
        s = _collapse(x)
        if not _INTEGER.match(s):
            raise XPathError("FORG0001", f"cannot convert {x!r} to xs:integer")
        return int(s)
    raise XPathError("XPTY0004", f"cannot convert {type(x).__name__} to xs:integer")


def to_boolean(x: Any) -> bool:
    if isinstance(x, bool):
        return x
    if isinstance(x, str):
        s = _collapse(x)
        if s in ("true", "1"):
            return True
        if s in ("false", "0"):
            return False
        raise XPathError("FORG0001", f"cannot convert {x!r} to xs:boolean")
    if isinstance(x, float):
        return not (x == 0 or math.isnan(x))
    if isinstance(x, (int, Decimal)):
        return x != 0
    raise XPathError("XPTY0004", f"cannot convert {type(x).__name__} to xs:boolean")


def to_date(x: Any) -> Date:
    if isinstance(x, Date):
        return x
    if isinstance(x, str):
        m = _DATE.match(_collapse(x))
        if m:
            try:
                day = datetime.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                day = None
            if day is not None:
                tz = m.group(4)
                minutes = None
                if tz == "Z":
                    minutes = 0
                elif tz:
                    minutes = (1 if tz[0] == "+" else -1) * (int(tz[1:3]) * 60 + int(tz[4:6]))
                return Date(day, minutes)
        raise XPathError("FORG0001", f"cannot convert {x!r} to xs:date")
    raise XPathError("XPTY0004", f"cannot convert {type(x).__name__} to xs:date")


CASTS: dict[str, Callable[[Any], Any]] = {
    "decimal": to_decimal,
    "double": to_double,
    "float": to_double,
    "integer": to_integer,
    "boolean": to_boolean,
    "string": to_string,
    "date": to_date,
    "untypedAtomic": lambda x: U(to_string(x)),
}


def cast(seq: Sequence[Any], type_local: str, optional: bool = True) -> list[Any]:
    x = atom1(seq, f"the operand of a cast to xs:{type_local}")
    if x is None:
        if optional:
            return []
        raise XPathError("XPTY0004", f"an empty sequence cannot be cast to xs:{type_local}")
    return [CASTS[type_local](x)]


def castable(seq: Sequence[Any], type_local: str, optional: bool) -> bool:
    try:
        cast(seq, type_local, optional)
    except XPathError:
        return False
    return True


# ---- comparisons ------------------------------------------------------------------

_NUMERIC = (int, float, Decimal)


def _is_num(x: Any) -> bool:
    return isinstance(x, _NUMERIC) and not isinstance(x, bool)


def _prepare_general(a: Any, b: Any) -> tuple[Any, Any]:
    ua, ub = isinstance(a, U), isinstance(b, U)
    if ua or ub:
        if ua and ub:
            return str(a), str(b)
        other, untyped = (b, a) if ua else (a, b)
        if isinstance(other, str):
            conv: Any = str(untyped)
        elif _is_num(other):
            conv = to_double(untyped)
        elif isinstance(other, bool):
            conv = to_boolean(untyped)
        elif isinstance(other, Date):
            conv = to_date(untyped)
        else:
            conv = str(untyped)
        return (conv, other) if ua else (other, conv)
    return a, b


def _compare(op: str, a: Any, b: Any) -> bool:
    if _is_num(a) and _is_num(b):
        if isinstance(a, float) or isinstance(b, float):
            a, b = float(a), float(b)
    elif isinstance(a, bool) and isinstance(b, bool):
        pass
    elif isinstance(a, str) and isinstance(b, str):
        a, b = str(a), str(b)
    elif isinstance(a, Date) and isinstance(b, Date):
        if op in ("=", "!="):
            return (a == b) == (op == "=")
    else:
        raise XPathError("XPTY0004", f"cannot compare {_type(a)} with {_type(b)}")
    if op == "=":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def _type(x: Any) -> str:
    if isinstance(x, U):
        return "xs:untypedAtomic"
    if isinstance(x, str):
        return "xs:string"
    if isinstance(x, bool):
        return "xs:boolean"
    if isinstance(x, int):
        return "xs:integer"
    if isinstance(x, Decimal):
        return "xs:decimal"
    if isinstance(x, float):
        return "xs:double"
    return type(x).__name__


def gcmp(op: str, left: Sequence[Any], right: Sequence[Any]) -> bool:
    """General comparison (=, !=, <, <=, >, >=): true when some pair compares true."""
    if not left or not right:
        return False
    la, ra = atomize(left), atomize(right)
    for a in la:
        for b in ra:
            x, y = _prepare_general(a, b)
            if _compare(op, x, y):
                return True
    return False


_VOPS = {"eq": "=", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def vcmp(op: str, left: Sequence[Any], right: Sequence[Any]) -> list[bool]:
    """Value comparison (eq, ne, lt, ...): untyped operands are strings; empty gives empty."""
    a, b = atom1(left), atom1(right)
    if a is None or b is None:
        return []
    if isinstance(a, U):
        a = str(a)
    if isinstance(b, U):
        b = str(b)
    return [_compare(_VOPS[op], a, b)]


# ---- arithmetic -------------------------------------------------------------------


def _num_operand(x: Any) -> Any:
    if isinstance(x, U):
        return to_double(x)
    if isinstance(x, bool) or not _is_num(x):
        raise XPathError("XPTY0004", f"arithmetic on {_type(x)}")
    return x


def arith(op: str, left: Sequence[Any], right: Sequence[Any]) -> list[Any]:
    a, b = atom1(left), atom1(right)
    if a is None or b is None:
        return []
    return [arith1(op, _num_operand(a), _num_operand(b))]


def arith1(op: str, a: Any, b: Any) -> Any:
    if isinstance(a, float) or isinstance(b, float):
        a, b = float(a), float(b)
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "div":
            if b == 0:
                if a == 0 or math.isnan(a):
                    return math.nan
                return math.copysign(math.inf, a) * math.copysign(1, b)
            return a / b
        if op == "mod":
            if b == 0 or math.isinf(a) or math.isnan(a) or math.isnan(b):
                return math.nan
            return math.fmod(a, b)
        if op == "idiv":
            if b == 0:
                raise XPathError("FOAR0001", "integer division by zero")
            if math.isnan(a) or math.isnan(b) or math.isinf(a):
                raise XPathError("FOAR0002", "idiv of NaN or infinity")
            return int(a / b)
    if isinstance(a, int) and isinstance(b, int) and op != "div":
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if b == 0:
            raise XPathError("FOAR0001", "division by zero")
        if op == "idiv":
            q = abs(a) // abs(b)
            return q if (a >= 0) == (b >= 0) else -q
        r = abs(a) % abs(b)
        return r if a >= 0 else -r  # mod: the dividend's sign
    da, db = Decimal(a), Decimal(b)
    if op == "+":
        return _CTX.add(da, db)
    if op == "-":
        return _CTX.subtract(da, db)
    if op == "*":
        return _CTX.multiply(da, db)
    if db == 0:
        raise XPathError("FOAR0001", "decimal division by zero")
    if op == "div":
        scale = max(DIVIDE_SCALE, -int(da.as_tuple().exponent), -int(db.as_tuple().exponent))
        quotient: Decimal = _CTX.divide(da, db)
        return quotient.quantize(Decimal(1).scaleb(-scale), rounding=decimal.ROUND_HALF_DOWN, context=_CTX)
    if op == "idiv":
        return int(_CTX.divide_int(da, db))
    return _CTX.remainder(da, db)


def negate(seq: Sequence[Any]) -> list[Any]:
    a = atom1(seq)
    if a is None:
        return []
    a = _num_operand(a)
    return [-a]


# ---- functions ----------------------------------------------------------------------


def fn_count(seq: Sequence[Any]) -> list[int]:
    return [len(seq)]


def _sum_operand(x: Any) -> Any:
    if isinstance(x, U):
        return to_double(x)
    if isinstance(x, bool) or not _is_num(x):
        raise XPathError("FORG0006", f"sum of {_type(x)}")
    return x


def fn_sum(seq: Sequence[Any], zero: Sequence[Any] | None = None) -> list[Any]:
    values = atomize(seq)
    if not values:
        return list(zero) if zero is not None else [0]
    total = _sum_operand(values[0])
    for v in values[1:]:
        total = arith1("+", total, _sum_operand(v))
    return [total]


def _minmax(seq: Sequence[Any], greater: bool) -> list[Any]:
    values = [to_double(v) if isinstance(v, U) else v for v in atomize(seq)]
    if not values:
        return []
    if any(isinstance(v, float) for v in values) and all(_is_num(v) for v in values):
        values = [float(v) for v in values]
        if any(math.isnan(v) for v in values):
            return [math.nan]
    best = values[0]
    for v in values[1:]:
        if _compare(">" if greater else "<", v, best):
            best = v
    return [best]


def fn_max(seq: Sequence[Any]) -> list[Any]:
    return _minmax(seq, True)


def fn_min(seq: Sequence[Any]) -> list[Any]:
    return _minmax(seq, False)


def _numeric_arg(seq: Sequence[Any]) -> Any:
    x = atom1(seq)
    if x is None:
        return None
    if isinstance(x, U):
        return to_double(x)
    if isinstance(x, bool) or not _is_num(x):
        raise XPathError("XPTY0004", f"a numeric argument expected, got {_type(x)}")
    return x


def fn_round(seq: Sequence[Any]) -> list[Any]:
    x = _numeric_arg(seq)
    if x is None:
        return []
    if isinstance(x, int):
        return [x]
    if isinstance(x, Decimal):
        return [_CTX.add(x, Decimal("0.5")).to_integral_value(rounding=decimal.ROUND_FLOOR)]
    if math.isnan(x) or math.isinf(x) or x == 0:
        return [x]
    if -0.5 <= x < 0:
        return [-0.0]
    f = math.floor(x)
    return [float(f + 1) if x - f >= 0.5 else float(f)]


def fn_abs(seq: Sequence[Any]) -> list[Any]:
    x = _numeric_arg(seq)
    return [] if x is None else [abs(x)]


def fn_floor(seq: Sequence[Any]) -> list[Any]:
    x = _numeric_arg(seq)
    if x is None:
        return []
    if isinstance(x, float):
        return [x if math.isnan(x) or math.isinf(x) else float(math.floor(x))]
    if isinstance(x, Decimal):
        return [x.to_integral_value(rounding=decimal.ROUND_FLOOR)]
    return [x]


def fn_ceiling(seq: Sequence[Any]) -> list[Any]:
    x = _numeric_arg(seq)
    if x is None:
        return []
    if isinstance(x, float):
        return [x if math.isnan(x) or math.isinf(x) else float(math.ceil(x))]
    if isinstance(x, Decimal):
        return [x.to_integral_value(rounding=decimal.ROUND_CEILING)]
    return [x]


def fn_number(seq: Sequence[Any]) -> list[float]:
    x = atom1(seq)
    if x is None:
        return [math.nan]
    try:
        return [to_double(x)]
    except XPathError:
        return [math.nan]


def fn_string(seq: Sequence[Any]) -> str:
    if not seq:
        return ""
    if len(seq) > 1:
        raise XPathError("XPTY0004", "string() of a sequence of several items")
    x = seq[0]
    return string_value(x) if is_node(x) else to_string(x)


def fn_normalize_space(seq: Sequence[Any]) -> list[str]:
    return [normalize(str_arg(seq))]


def fn_string_length(seq: Sequence[Any]) -> int:
    return len(str_arg(seq))


def fn_substring(seq: Sequence[Any], start: Sequence[Any], length: Sequence[Any] | None = None) -> str:
    s = str_arg(seq)
    st = _round_double(_double_arg(start))
    if length is None:
        end = math.inf
    else:
        end = st + _round_double(_double_arg(length))
    if math.isnan(st) or math.isnan(end):
        return ""
    out = []
    for i, ch in enumerate(s, start=1):
        if i >= st and i < end:
            out.append(ch)
    return "".join(out)


def _double_arg(seq: Sequence[Any]) -> float:
    x = atom1(seq)
    if x is None:
        raise XPathError("XPTY0004", "an empty sequence where a number is required")
    return to_double(x) if not _is_num(x) else float(x)


def _round_double(x: float) -> float:
    if math.isnan(x) or math.isinf(x):
        return x
    f = math.floor(x)
    return float(f + 1) if x - f >= 0.5 else float(f)


def fn_substring_before(a: Sequence[Any], b: Sequence[Any]) -> str:
    s, t = str_arg(a), str_arg(b)
    i = s.find(t)
    return s[:i] if i >= 0 and t else ""


def fn_substring_after(a: Sequence[Any], b: Sequence[Any]) -> str:
    s, t = str_arg(a), str_arg(b)
    if not t:
        return s
    i = s.find(t)
    return s[i + len(t) :] if i >= 0 else ""


def fn_translate(a: Sequence[Any], b: Sequence[Any], c: Sequence[Any]) -> str:
    s, frm, to = str_arg(a), str_arg(b), str_arg(c)
    table: dict[int, int | None] = {}
    for i, ch in enumerate(frm):
        if ord(ch) not in table:
            table[ord(ch)] = ord(to[i]) if i < len(to) else None
    return s.translate(table)


def fn_concat(*args: Sequence[Any]) -> str:
    return "".join(str_arg(a) for a in args)


def fn_string_join(seq: Sequence[Any], sep: Sequence[Any]) -> str:
    return str_arg(sep).join(to_string(x) for x in atomize(seq))


def fn_distinct_values(seq: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    keys: set[Any] = set()
    for x in atomize(seq):
        if isinstance(x, U):
            x = str(x)  # untyped values compare as strings
        if isinstance(x, float) and math.isnan(x):
            key: Any = ("nan",)
        elif _is_num(x):
            key = ("n", Decimal(repr(x)) if isinstance(x, float) else Decimal(x))
        elif isinstance(x, str):
            key = ("s", x)
        else:
            key = (type(x).__name__, x)
        if key not in keys:
            keys.add(key)
            out.append(x)
    return out


def fn_upper_case(seq: Sequence[Any]) -> str:
    return str_arg(seq).upper()


def fn_lower_case(seq: Sequence[Any]) -> str:
    return str_arg(seq).lower()


def fn_contains(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return str_arg(b) in str_arg(a)


def fn_starts_with(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return str_arg(a).startswith(str_arg(b))


def fn_ends_with(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return str_arg(a).endswith(str_arg(b))


# -- regular expressions: the XPath dialect, translated to Python's


_REGEX_CACHE: dict[tuple[str, str], re.Pattern[str]] = {}
_CLASS_ESCAPES = {"s": " \\t\\n\\r", "n": "\\n", "r": "\\r", "t": "\\t"}


def regex(pattern: str, flags: str = "") -> re.Pattern[str]:
    """An XPath regular expression as a compiled Python one (`UnsupportedRegex` when it cannot be)."""
    key = (pattern, flags)
    found = _REGEX_CACHE.get(key)
    if found is None:
        found = _REGEX_CACHE[key] = _translate_regex(pattern, flags)
    return found


class UnsupportedRegex(ValueError):
    pass


def _translate_regex(pattern: str, flags: str) -> re.Pattern[str]:
    py_flags = 0
    for f in flags:
        if f == "i":
            py_flags |= re.I
        elif f == "s":
            py_flags |= re.S
        elif f == "m":
            py_flags |= re.M
        elif f == "x":
            pattern = re.sub(r"[ \t\r\n]", "", pattern)
        else:
            raise XPathError("FORX0001", f"invalid regular expression flag {f!r}")
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                raise XPathError("FORX0002", f"invalid regular expression {pattern!r}")
            e = pattern[i + 1]
            if e in "pPiIcC":
                raise UnsupportedRegex(f"\\{e} in {pattern!r}")
            if e == "s":
                out.append(" \\t\\n\\r" if in_class else "[ \\t\\n\\r]")
            elif e == "S":
                if in_class:
                    raise UnsupportedRegex(f"\\S inside a class in {pattern!r}")
                out.append("[^ \\t\\n\\r]")
            elif e in "wW":  # XPath's \w is not Python's (symbols in, punctuation out): left to Saxon
                raise UnsupportedRegex(f"\\{e} in {pattern!r}")
            elif e in "dDnrt\\|.-^?*+{}()[]$":
                out.append("\\" + e)
            else:
                raise XPathError("FORX0002", f"invalid escape \\{e} in {pattern!r}")
            i += 2
            continue
        if in_class:
            if ch == "-" and i + 1 < n and pattern[i + 1] == "[":
                raise UnsupportedRegex(f"character class subtraction in {pattern!r}")
            if ch == "]":
                in_class = False
            elif ch == "[":
                out.append("\\[")
                i += 1
                continue
            out.append(ch)
        elif ch == "[":
            in_class = True
            out.append(ch)
            if i + 1 < n and pattern[i + 1] == "^":
                out.append("^")
                i += 1
        elif ch == "$":
            out.append("\\Z" if not (py_flags & re.M) else "(?=\\n|\\Z)")
        elif ch == "(" and i + 1 < n and pattern[i + 1] == "?":
            raise XPathError("FORX0002", f"invalid regular expression {pattern!r}")
        else:
            out.append(ch)
        i += 1
    try:
        return re.compile("".join(out), py_flags)
    except re.error as e:
        raise XPathError("FORX0002", f"invalid regular expression {pattern!r}: {e}") from e


def fn_matches(a: Sequence[Any], pattern: Sequence[Any], flags: Sequence[Any] | None = None) -> bool:
    rx = regex(str_arg(pattern), str_arg(flags) if flags is not None else "")
    return rx.search(str_arg(a)) is not None


def fn_tokenize(a: Sequence[Any], pattern: Sequence[Any], flags: Sequence[Any] | None = None) -> list[str]:
    s = str_arg(a)
    rx = regex(str_arg(pattern), str_arg(flags) if flags is not None else "")
    if rx.search("") is not None:
        raise XPathError("FORX0003", "the pattern of tokenize() matches an empty string")
    if not s:
        return []
    return rx.split(s) if rx.groups == 0 else _split_no_groups(rx, s)


def _split_no_groups(rx: re.Pattern[str], s: str) -> list[str]:
    out, last = [], 0
    for m in rx.finditer(s):
        out.append(s[last : m.start()])
        last = m.end()
    out.append(s[last:])
    return out


def fn_replace(a: Sequence[Any], pattern: Sequence[Any], rep: Sequence[Any], flags: Sequence[Any] | None = None) -> str:
    s = str_arg(a)
    rx = regex(str_arg(pattern), str_arg(flags) if flags is not None else "")
    if rx.search("") is not None:
        raise XPathError("FORX0003", "the pattern of replace() matches an empty string")
    template = str_arg(rep)

    def expand(m: re.Match[str]) -> str:
        out, i = [], 0
        while i < len(template):
            ch = template[i]
            if ch == "\\" and i + 1 < len(template) and template[i + 1] in "\\$":
                out.append(template[i + 1])
                i += 2
            elif ch == "$":
                j = i + 1
                while j < len(template) and template[j].isdigit():
                    j += 1
                if j == i + 1:
                    raise XPathError("FORX0004", "invalid replacement string")
                g = int(template[i + 1 : j])
                out.append((m.group(g) or "") if g <= rx.groups else "")
                i = j
            elif ch == "\\":
                raise XPathError("FORX0004", "invalid replacement string")
            else:
                out.append(ch)
                i += 1
        return "".join(out)

    return rx.sub(expand, s)


def fn_boolean(seq: Sequence[Any]) -> bool:
    return ebv(seq)


def fn_exists(seq: Sequence[Any]) -> bool:
    return len(seq) > 0


def fn_empty(seq: Sequence[Any]) -> bool:
    return len(seq) == 0


def fn_not(seq: Sequence[Any]) -> bool:
    return not ebv(seq)


def _one_node(seq: Sequence[Any] | None, ctx: Any, what: str) -> Any:
    if seq is None:
        if not is_node(ctx):
            raise XPathError("XPTY0004", f"{what}() with no context node")
        return ctx
    if not seq:
        return None
    if len(seq) > 1:
        raise XPathError("XPTY0004", f"{what}() of several nodes")
    if not is_node(seq[0]):
        raise XPathError("XPTY0004", f"{what}() of an atomic value")
    return seq[0]


def fn_name(ctx: Any, seq: Sequence[Any] | None = None) -> str:
    n = _one_node(seq, ctx, "name")
    return "" if n is None else node_name(n)


def fn_local_name(ctx: Any, seq: Sequence[Any] | None = None) -> str:
    n = _one_node(seq, ctx, "local-name")
    return "" if n is None else local_name(n)


def fn_namespace_uri(ctx: Any, seq: Sequence[Any] | None = None) -> str:
    n = _one_node(seq, ctx, "namespace-uri")
    return "" if n is None else namespace_uri(n)


def fn_index(seq: Sequence[Any], n: int) -> list[Any]:
    return [seq[n - 1]] if 1 <= n <= len(seq) else []


def position_match(value: Sequence[Any], pos: int) -> bool:
    """A predicate's verdict: numeric -> position test, else its effective boolean value."""
    if len(value) == 1:
        x = value[0]
        if _is_num(x):
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
        "decimal": lambda x: _is_num(x) and not isinstance(x, float),
        "integer": lambda x: isinstance(x, int) and not isinstance(x, bool),
        "double": _is_num,
        "date": lambda x: isinstance(x, Date),
    }.get(type_local)
    if ok is None or not ok(v):
        raise XPathError("XPTY0004", f"{_type(v)} where xs:{type_local} is required")
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
    while isinstance(n, _ELEMENT):
        q = etree.QName(n)
        local, ns = q.localname, q.namespace or ""
        count = 1
        for s in n.itersiblings(preceding=True):
            if not isinstance(s, _COMMENT_OR_PI) and s.tag == n.tag:
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
