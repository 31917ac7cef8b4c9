"""The XPath axes, each from one context node, and node tests."""

from __future__ import annotations

from typing import Any

from lxml import etree

from validators.native.runtime.nodes import (
    COMMENT_OR_PI,
    ELEMENT,
    Attr,
    Doc,
    Text,
    is_element,
    local_name,
    namespace_uri,
    parent_of,
)


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
    if isinstance(n, ELEMENT) and not isinstance(n, COMMENT_OR_PI):
        return [e for e in n.iter(*tags) if e is not n]
    return []


def self_and_descendants(n: Any) -> list[Any]:
    """The document node (when `n` is) and every element under `n`, `n` included, in document order."""
    if isinstance(n, Doc):
        return [n, *n.root.iter(etree.Element)]
    if isinstance(n, ELEMENT) and not isinstance(n, COMMENT_OR_PI):
        return list(n.iter(etree.Element))
    return [n]


def child_nodes(n: Any) -> list[Any]:
    """child::node(): elements, text, comments and processing instructions."""
    if isinstance(n, Doc):
        return [n.root]
    if not isinstance(n, ELEMENT) or isinstance(n, COMMENT_OR_PI):
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
    if not isinstance(n, ELEMENT) or isinstance(n, COMMENT_OR_PI):
        return []
    if name is None:
        return [Attr(n, k, v) for k, v in n.attrib.items()]
    v = n.get(name)
    return [] if v is None else [Attr(n, name, v)]


def descendants(n: Any, tag: Any, self_too: bool = False) -> list[Any]:
    if isinstance(n, Doc):
        return list(n.root.iter(tag))
    if not isinstance(n, ELEMENT) or isinstance(n, COMMENT_OR_PI):
        return []
    out = list(n.iter(tag))
    if not self_too and out and out[0] is n:
        out = out[1:]
    return out


def descendant_nodes(n: Any, self_too: bool) -> list[Any]:
    """descendant(-or-self)::node()."""
    out: list[Any] = [n] if self_too else []
    for c in child_nodes(n):
        if isinstance(c, ELEMENT) and not isinstance(c, COMMENT_OR_PI):
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
    if not isinstance(n, ELEMENT):
        return []
    it = n.itersiblings(preceding=preceding)
    out = [s for s in it if not isinstance(s, COMMENT_OR_PI)]
    if preceding:
        out.reverse()
    return out


def preceding_nodes(n: Any, doc: Doc) -> list[Any]:
    """preceding::* (elements only: the rule sets use it with element tests), in document order:
    the subtrees of the preceding siblings of n and of each of its ancestors (never the whole
    document nor its order index: a 10,000-line invoice's rules ask it for one code)."""
    if not isinstance(n, ELEMENT):
        n = parent_of(n, doc)
        if not isinstance(n, ELEMENT):
            return []
    chunks: list[list[Any]] = []  # nearest level first: the preceding siblings of n, of its parent, ...
    cur = n
    while cur is not None:
        level = [s for s in cur.itersiblings(preceding=True) if not isinstance(s, COMMENT_OR_PI)]
        chunk: list[Any] = []
        for s in reversed(level):
            chunk.extend(s.iter(etree.Element))
        chunks.append(chunk)
        cur = cur.getparent()
    out: list[Any] = []
    for chunk in reversed(chunks):  # the farthest level's subtrees come first in document order
        out.extend(chunk)
    return out


def following_nodes(n: Any, doc: Doc) -> list[Any]:
    if not isinstance(n, ELEMENT):
        n = parent_of(n, doc)
        if not isinstance(n, ELEMENT):
            return []
    out: list[Any] = []
    cur = n
    while cur is not None and isinstance(cur, ELEMENT):
        for s in cur.itersiblings():
            if not isinstance(s, COMMENT_OR_PI):
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
