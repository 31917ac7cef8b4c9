"""Static analysis of XPath ASTs, for the compiler's optimisations.

What an expression reads (`depends`: its outer context, for hoisting document
constants; `uses_focus`: the focus it is evaluated with, for indexed
predicates), what it yields (`yields_nodes`), the exact child names of
simple paths (`exact_name`, `union_names`), and the guards that skip a
"shall not be used" test where its element is absent (`guard_keys`).
"""

from __future__ import annotations

from typing import Any

from validators.native.xpath import Node

CONTEXT_CALLS = frozenset(
    {"name", "local-name", "namespace-uri", "string", "string-length", "normalize-space", "number"}
)


def depends(node: Any, globals_: set[str], depth: int) -> bool:
    """Does `node` read its outer context (., a relative path, current(), a local variable, position())?

    `depth` > 0 inside a predicate or a path step, where . and relative paths are
    the inner context's. Constant, literal-only expressions count as dependent
    (nothing to gain from memoising them).
    """
    if not isinstance(node, tuple) or not node:
        return False
    kind = node[0]
    if kind == "lit":
        return depth == 0
    if kind == "ctx":
        return depth == 0
    if kind == "var":
        return node[1] not in globals_
    if kind == "root":
        return False
    if kind == "path":
        _, start, steps = node
        if start is None and depth == 0:
            return True
        if start is not None and start != ("root",) and depends(start, globals_, depth):
            return True
        return any(depends(s, globals_, depth + 1) for s in steps)
    if kind == "step":
        return any(depends(p, globals_, depth) for p in node[3])
    if kind == "filter":
        return depends(node[1], globals_, depth) or any(depends(p, globals_, depth + 1) for p in node[2])
    if kind == "call":
        name = node[1].rpartition(":")[2]
        if name in ("current", "position", "last"):
            return True
        if not node[2] and name in CONTEXT_CALLS:
            return depth == 0
        if not node[2]:
            return depth == 0  # true(), false(): nothing to memoise
        return any(depends(a, globals_, depth) for a in node[2])
    if kind in ("for", "some", "every"):
        return True  # bound variables: kept inline
    if kind == "seq":
        return any(depends(x, globals_, depth) for x in node[1]) or (depth == 0 and not node[1])
    deps = [x for x in node[1:] if isinstance(x, tuple)]
    return any(depends(x, globals_, depth) for x in deps) if deps else depth == 0


DOS_NODE: Node = ("step", "descendant-or-self", ("kind", "node"), [])


def relative_children_only(node: Node) -> bool:
    """A union of relative paths whose first step is a child or attribute name test."""
    if node[0] == "union":
        return relative_children_only(node[1]) and relative_children_only(node[2])
    if node[0] == "path" and node[1] is None and node[2]:
        first = node[2][0]
        return first[0] == "step" and first[1] in ("child", "attribute") and first[2][0] == "name"
    return False


def guard_keys(node: Node) -> list[str] | None:
    """Child (and grandchild) names whose absence makes a test true without evaluating it.

    ``not(P)`` and ``not(P) or ...`` (the left operand is evaluated first, so
    nothing on the right can raise when it is true), where P is a path (or a
    union of paths) from the context: when the context has no child named as
    P's first step (or no such child with a child named as its second), P is
    empty and the test is true. Keys are ``{ns}a`` or ``{ns}a/{ns}b``
    (`validators.native.engine.State.tags`). Most "shall not be used" rules
    (UBL-CR-*, CII-SR-*) have this shape; skipping them where the element is
    absent is most of the native engine's speed.
    """
    if node[0] == "or":
        return guard_keys(node[1])
    if node[0] == "call" and node[1] in ("not", "fn:not") and len(node[2]) == 1:
        return path_keys(node[2][0])
    return None


def exact_name(step: Node) -> str | None:
    if step[0] == "step" and step[1] == "child" and step[2][0] == "name":
        _, ns, local = step[2]
        if ns is not None and local is not None:
            return "{" + ns + "}" + local if ns else local
    return None


def path_keys(p: Node) -> list[str] | None:
    """Keys for a path from the context: the names of its leading child steps, joined by '/'."""
    if p[0] == "union":
        a, b = path_keys(p[1]), path_keys(p[2])
        return a + b if a is not None and b is not None else None
    if p[0] != "path":
        return None
    _, start, steps = p
    if start is None:
        heads = [""]
    elif start[0] == "union":
        found = _union_heads(start)
        if found is None:
            return None
        heads = found
    else:
        return None
    prefix = []
    for s in steps:
        name = exact_name(s)
        if name is None:
            break
        prefix.append(name)
    if not prefix and heads == [""]:
        return None
    tail = "/".join(prefix)
    return [f"{h}/{tail}" if h and tail else (h or tail) for h in heads]


def _union_heads(u: Node) -> list[str] | None:
    """The names of a union of one-step relative child paths."""
    if u[0] == "union":
        a, b = _union_heads(u[1]), _union_heads(u[2])
        return a + b if a is not None and b is not None else None
    if u[0] == "path" and u[1] is None and len(u[2]) == 1:
        name = exact_name(u[2][0])
        return [name] if name else None
    return None


def yields_nodes(node: Node) -> bool:
    """Does the expression always give nodes (a path ending with an axis step, a union of such)?"""
    if node[0] in ("union", "intersect", "except"):
        return yields_nodes(node[1]) and yields_nodes(node[2])
    if node[0] == "root":
        return True
    if node[0] == "path":
        return bool(node[2]) and node[2][-1][0] == "step"
    return False


def union_names(node: Node) -> list[str] | None:
    """The exact names of a union of one-step child paths without predicates: (a | b)."""
    if node[0] == "union":
        a, b = union_names(node[1]), union_names(node[2])
        return a + b if a is not None and b is not None else None
    if node[0] == "path" and node[1] is None and len(node[2]) == 1 and not node[2][0][3]:
        name = exact_name(node[2][0])
        return [name] if name else None
    return None


def uses_focus(node: Any, depth: int) -> bool:
    """Does `node` read the focus it is evaluated with (., a relative path, position(), last(),
    a context function)? Inside nested predicates and steps the focus is another one."""
    if not isinstance(node, tuple) or not node:
        return False
    kind = node[0]
    if kind == "ctx":
        return depth == 0
    if kind in ("lit", "var", "root"):
        return False
    if kind == "path":
        _, start, steps = node
        if start is None:
            return depth == 0 or any(uses_focus(s, depth + 1) for s in steps)
        if start != ("root",) and uses_focus(start, depth):
            return True
        return any(uses_focus(s, depth + 1) for s in steps)
    if kind == "step":
        return any(uses_focus(p, depth) for p in node[3])
    if kind == "filter":
        return uses_focus(node[1], depth) or any(uses_focus(p, depth + 1) for p in node[2])
    if kind == "call":
        name = node[1].rpartition(":")[2]
        if name in ("position", "last"):
            return depth == 0
        if not node[2] and name in CONTEXT_CALLS:
            return depth == 0
        return any(uses_focus(a, depth) for a in node[2])
    if kind in ("for", "some", "every"):
        return any(uses_focus(e, depth) for _, e in node[1]) or uses_focus(node[2], depth)
    if kind == "seq":
        return any(uses_focus(x, depth) for x in node[1])
    return any(uses_focus(x, depth) for x in node[1:] if isinstance(x, tuple))
