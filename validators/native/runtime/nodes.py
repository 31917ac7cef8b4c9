"""Nodes: lxml elements plus `Attr`, `Text` and `Doc`; string values, atomisation, names, document order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from lxml import etree

from validators.native.runtime.values import U, XPathError


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
        return [self.root] if tag is None or tag_ok(self.root, tag) else []

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


ELEMENT = etree._Element
ELEMENT_TYPE = type(etree.Element("x"))
COMMENT_OR_PI = (etree._Comment, etree._ProcessingInstruction, etree._Entity)


def is_node(x: object) -> bool:
    return isinstance(x, (ELEMENT, Attr, Text, Doc))


def is_element(x: object) -> bool:
    return isinstance(x, ELEMENT) and not isinstance(x, COMMENT_OR_PI)


# ---- nodes ----------------------------------------------------------------------


def string_value(n: Any) -> str:
    if isinstance(n, ELEMENT):
        if isinstance(n, COMMENT_OR_PI):
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
        if not isinstance(child, COMMENT_OR_PI):
            yield from _texts(child)
        if child.tail:
            yield child.tail


def atomize(seq: Sequence[Any]) -> list[Any]:
    out = []
    for x in seq:
        if isinstance(x, ELEMENT):
            out.append(U(x.text or "") if len(x) == 0 and not isinstance(x, COMMENT_OR_PI) else U(string_value(x)))
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
    if type(x) is ELEMENT_TYPE:
        return U(x.text or "") if len(x) == 0 else U(string_value(x))
    if isinstance(x, ELEMENT):
        return U(x.text or "") if len(x) == 0 and not isinstance(x, COMMENT_OR_PI) else U(string_value(x))
    if isinstance(x, (Attr, Text)):
        return U(x.value)
    if isinstance(x, Doc):
        return U(string_value(x.root))
    return x


def sort_key(doc: Doc) -> Callable[[Any], tuple[int, int, str]]:
    order = doc.order

    def key(n: Any) -> tuple[int, int, str]:
        if isinstance(n, ELEMENT):
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
    if type(n) is ELEMENT_TYPE:
        tag = n.tag
        prefix = n.prefix
        local = tag[tag.index("}") + 1 :] if tag[0] == "{" else tag
        return f"{prefix}:{local}" if prefix else local
    if isinstance(n, ELEMENT) and not isinstance(n, COMMENT_OR_PI):
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
    if isinstance(n, ELEMENT) and not isinstance(n, COMMENT_OR_PI):
        tag = n.tag
        return tag[tag.index("}") + 1 :] if tag[0] == "{" else tag
    if isinstance(n, Attr):
        return n.name.split("}", 1)[1] if n.name.startswith("{") else n.name
    return ""


def namespace_uri(n: Any) -> str:
    if isinstance(n, ELEMENT) and not isinstance(n, COMMENT_OR_PI):
        tag = n.tag
        return tag[1 : tag.index("}")] if tag[0] == "{" else ""
    if isinstance(n, Attr) and n.name.startswith("{"):
        return n.name[1:].split("}", 1)[0]
    return ""


def parent_of(n: Any, doc: Doc) -> Any:
    if isinstance(n, ELEMENT):
        p = n.getparent()
        if p is not None:
            return p
        return doc if n is doc.root else None
    if isinstance(n, (Attr, Text)):
        return n.parent
    return None


def tag_ok(el: Any, tag: Any) -> bool:
    if tag is etree.Element:
        return True
    t = el.tag
    if tag.startswith("{*}"):
        return etree.QName(el).localname == tag[3:]
    if tag.endswith("}*"):
        return t.startswith(tag[:-1])
    return bool(t == tag)
