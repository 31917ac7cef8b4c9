"""The code of axis steps from one node, and of the navigation paths libxml2 walks in C.

Part of the compiler (`validators.native.codegen`): each function takes the
compiler (an `Emitter`) whose constants and scope the code uses.
"""

from __future__ import annotations

from validators.native.scope import Emitter
from validators.native.xpath import Node, Unsupported


def tag_filter(test: Node) -> str:
    _, ns, local = test
    if ns is None and local is None:
        return "R.etree.Element"
    if ns is None:
        return repr("{*}" + local)
    if local is None:
        return repr("{" + ns + "}*")
    return repr("{" + ns + "}" + local if ns else local)


def axis_code(c: Emitter, axis: str, test: Node, n: str) -> str:
    if axis == "child":
        if test[0] == "kind":
            if test[1] == "node":
                return f"R.child_nodes({n})"
            if test[1] == "text":
                return f"R.text_children({n})"
            if test[1] == "element":
                return f"R.children({n}, R.etree.Element)"
            raise Unsupported(f"child::{test[1]}()")
        _, ns, local = test
        if ns is not None and local is not None:
            return f"D.ch({n}, {tag_filter(test)})"  # an exact name: the element's child index
        return f"R.children({n}, {tag_filter(test)})"
    if axis == "attribute":
        if test[0] == "kind":
            if test[1] in ("node", "attribute"):
                return f"R.attributes({n}, None)"
            return "[]"
        _, ns, local = test
        if local is None and ns is None:
            return f"R.attributes({n}, None)"
        if ns is None or local is None:
            raise Unsupported("attribute wildcard with a namespace")
        name = "{" + ns + "}" + local if ns else local
        return f"R.attributes({n}, {name!r})"
    if axis in ("descendant", "descendant-or-self"):
        self_too = axis == "descendant-or-self"
        if test[0] == "kind":
            if test[1] == "node":
                return f"R.descendant_nodes({n}, {self_too})"
            if test[1] == "element":
                return f"R.descendants({n}, R.etree.Element, {self_too})"
            raise Unsupported(f"{axis}::{test[1]}()")
        return f"R.descendants({n}, {tag_filter(test)}, {self_too})"
    t = c.const(test)
    if axis == "self":
        if test == ("kind", "node"):
            return f"[{n}]"
        return f"([{n}] if R.matches_test({n}, {t}) else [])"
    if axis == "parent":
        return f"[p for p in (R.parent_of({n}, D.doc),) if p is not None and R.matches_test(p, {t})]"
    if axis in ("ancestor", "ancestor-or-self"):
        return f"[a for a in R.ancestors({n}, D.doc, {axis == 'ancestor-or-self'}) if R.matches_test(a, {t})]"
    if axis in ("preceding-sibling", "following-sibling"):
        return f"[s for s in R.siblings({n}, {axis == 'preceding-sibling'}) if R.matches_test(s, {t})]"
    if axis == "preceding":
        return f"[s for s in R.preceding_nodes({n}, D.doc) if R.matches_test(s, {t})]"
    if axis == "following":
        return f"[s for s in R.following_nodes({n}, D.doc) if R.matches_test(s, {t})]"
    raise Unsupported(f"axis {axis}")


def libxml_path(c: Emitter, start: Node | None, steps: list[Node]) -> str | None:
    """A path of name tests with // in it, without predicates: libxml2's XPath walks it in C.

    Navigation alone means the same in XPath 1.0 and 2.0 (the node-set, in
    document order); only paths with a descendant step gain from it.
    """
    if start not in (None, ("root",)) or not steps:
        return None
    if start is None and not c.scope.has_context:
        return None
    if not any(s[0] == "step" and s[1] in ("descendant", "descendant-or-self") for s in steps):
        return None
    if steps[-1][0] == "step" and steps[-1][2][0] == "kind":
        return None  # node() last: text nodes too, which D.xp does not return
    parts = []
    ns: dict[str, str] = {}
    for s in steps:
        if s[0] != "step" or s[3]:
            return None
        _, axis, test = s[0], s[1], s[2]
        if axis not in ("child", "descendant", "descendant-or-self", "attribute", "self", "parent"):
            return None
        if test[0] == "kind":
            if test[1] != "node" or axis not in ("descendant-or-self", "self", "parent"):
                return None
            parts.append(f"{axis}::node()")
            continue
        _, uri, local = test
        if uri is None or local is None:
            return None
        if axis == "attribute" and uri:
            return None
        if uri:
            prefix = ns.setdefault(uri, f"n{len(ns)}")
            parts.append(f"{axis}::{prefix}:{local}")
        else:
            parts.append(f"{axis}::{local}")
    text = ("/" if start == ("root",) else "") + "/".join(parts)
    xp = c.const(("xpath", text, tuple(sorted((p, u) for u, p in ns.items()))))
    return f"D.xp({xp}, {'D.doc' if start == ('root',) else 'c'})"
