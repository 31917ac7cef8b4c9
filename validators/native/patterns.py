"""Match patterns of a compiled schematron stylesheet -> the alternatives the engine indexes.

Each alternative of a rule's ``match`` (unions distributed by `expand_pattern`)
becomes ``(kind, key, steps, rooted, matcher)``: ``kind`` "elem", "attr" or
"doc", ``key`` the exact name the engine indexes it by (None: any), ``steps``
from the last to the first, each with its predicate functions, and a
``matcher`` function for the common shapes (None: `validators.native.engine`
walks the steps). Predicate and matcher functions are appended to the
module's source lines.
"""

from __future__ import annotations

import re

from validators.native.analysis import yields_nodes
from validators.native.codegen import Compiler, Scope
from validators.native.xpath import Node, Unsupported


class Patterns:
    """Compiles the match patterns of one stylesheet with its `Compiler`, into its source `lines`."""

    def __init__(self, compiler: Compiler, lines: list[str]) -> None:
        self.compiler = compiler
        self.lines = lines
        self._positional: dict[str, bool] = {}  # predicate function -> does it read the position

    def compile(self, node: Node) -> list[str]:
        """The alternatives of a parsed ``match``, as Python source."""
        return [self._alternative(a) for a in expand_pattern(node)]

    def _alternative(self, node: Node) -> str:
        """("elem"|"attr"|"doc", key, steps, rooted): steps from the last to the first."""
        if node == ("root",):
            return "('doc', None, (), True)"
        if node[0] != "path" or node[1] not in (None, ("root",)):
            raise Unsupported("a pattern that is not a path")
        rooted = node[1] == ("root",)
        raw = list(node[2])
        steps: list[tuple[str, Node, list[Node]]] = []  # (separator before, step test, preds)
        sep = "/"
        for s in raw:
            if s == ("step", "descendant-or-self", ("kind", "node"), []):
                sep = "//"
                continue
            if s[0] != "step" or s[1] not in ("child", "attribute"):
                raise Unsupported(f"pattern step {s[0]} {s[1] if len(s) > 1 else ''}")
            steps.append((sep, s, s[3]))
            sep = "/"
        if not steps:
            raise Unsupported("an empty pattern")
        if steps[0][0] == "//":
            rooted = False
        parts = []
        for i, (sep_before, s, preds) in enumerate(steps):
            axis, test = s[1], s[2]
            if axis == "attribute" and i != len(steps) - 1:
                raise Unsupported("attribute step inside a pattern")
            pred_fns = [self._pattern_predicate(p) for p in preds]
            parts.append((sep_before if i > 0 else ("/" if rooted else "//"), axis, test, pred_fns))
        last_axis, last_test = steps[-1][1][1], steps[-1][1][2]
        if last_axis == "attribute":
            if last_test[0] != "name" or last_test[2] is None:
                raise Unsupported("attribute pattern with a wildcard")
            ns, local = last_test[1], last_test[2]
            key = ("{" + ns + "}" + local) if ns else local
            kind = "attr"
        else:
            if last_test[0] == "kind":
                if last_test[1] not in ("element", "node"):
                    raise Unsupported(f"pattern {last_test[1]}()")
                key = None
            else:
                _, ns, local = last_test
                key = None if ns is None or local is None else ("{" + ns + "}" + local if ns else local)
            kind = "elem"
        rev = list(reversed(parts))
        steps_code = ", ".join(
            f"({sep!r}, {self.compiler.const(test)}, {axis == 'attribute'}, ({''.join(f + ', ' for f in fns)}))"
            for sep, axis, test, fns in rev
        )
        matcher = self._matcher(rev, kind, key)
        guard = None
        wildcard = (
            last_test[0] == "name" and last_test[2] is None or last_test in (("kind", "element"), ("kind", "node"))
        )
        if kind == "elem" and key is None and wildcard:
            tests = [g for p in steps[-1][2] for g in self._name_guards(p)]
            guard = f"lambda t: {' and '.join(tests)}" if tests else None
        return f"({kind!r}, {key!r}, ({steps_code},), {rooted}, {matcher}, {guard})"

    def _name_guards(self, pred: Node) -> list[str]:
        """Conditions on the local name ``t`` that a wildcard's predicate requires, e.g.
        ``ends-with(name(), 'Amount')`` -> ``t.endswith('Amount')``: the engine drops the rule
        for the element names that fail them (the rule would not match), never running it."""
        if pred[0] == "and":
            return self._name_guards(pred[1]) + self._name_guards(pred[2])
        negate = False
        if pred[0] == "call" and self._fn(pred[1]) == "not" and len(pred[2]) == 1:
            negate, pred = True, pred[2][0]
        if pred[0] != "call" or self._fn(pred[1]) != "ends-with" or len(pred[2]) != 2:
            return []
        subject, suffix = pred[2]
        if subject[0] != "call" or subject[2] not in ([], [("ctx",)]) or suffix[0] != "lit":
            return []
        if not isinstance(suffix[1], str) or ":" in suffix[1]:
            return []
        if self._fn(subject[1]) not in ("name", "local-name"):
            return []  # name() ends with a suffix without ':' only where its local part does
        test = f"t.endswith({suffix[1]!r})"
        return [f"(not {test})" if negate else test]

    def _fn(self, name: str) -> str | None:
        """The local name of a call to a standard function (None: another namespace)."""
        prefix, _, local = name.rpartition(":")
        if prefix and self.compiler.ns.get(prefix) != "http://www.w3.org/2005/xpath-functions":
            return None
        return local

    def _matcher(self, rev: list[tuple[str, str, Node, list[str]]], kind: str, key: str | None) -> str:
        """A function testing the pattern on a node the index picked by name (None: the generic test).

        Only child steps joined by '/' without positional predicates are compiled;
        the last step's name was checked by the index when `key` is exact.
        """
        if any(sep == "//" for sep, *_ in rev[:-1]) or any(self._positional[f] for *_, fns in rev for f in fns):
            return "None"  # ancestors at any depth, sibling positions: the generic test
        name = self.compiler.fresh("pm_")
        lines = [f"def {name}(n, D):"]
        var = "n"
        for i, (_sep, axis, test, fns) in enumerate(rev):
            if i == 0:
                if key is None or kind != "elem":
                    cond = f"R.matches_test(n, {self.compiler.const(test)}, {axis == 'attribute'})"
                    lines.append(f"    if not {cond}: return False")
            else:
                parent = f"x{i}"
                getp = f"{var}.parent" if var == "n" and kind == "attr" else f"{var}.getparent()"
                lines.append(f"    {parent} = {getp}")
                exact = _exact_name(test)
                if exact is not None:
                    lines.append(f"    if {parent} is None or {parent}.tag != {exact!r}: return False")
                else:
                    cond = f"R.matches_test({parent}, {self.compiler.const(test)})"
                    lines.append(f"    if {parent} is None or not {cond}: return False")
                var = parent
            for f in fns:
                lines.append(f"    if not {f}({var}, 1, 1, D): return False")
        sep = rev[-1][0]
        if sep == "/":  # rooted: the first step's node is the document element
            getp = f"{var}.parent" if var == "n" and kind == "attr" else f"{var}.getparent()"
            lines.append(f"    return {getp} is None")
        else:
            lines.append("    return True")
        self.lines.append("\n".join(lines))
        return name

    def _pattern_predicate(self, pred: Node) -> str:
        name = self.compiler.fresh("pp_")
        self.compiler.scope = Scope({}, has_context=True, has_position=True, has_current=True)
        code, kind = self.compiler.expr(pred)
        if kind in ("bool", "str"):
            test = self.compiler.as_bool(code, kind)
        elif yields_nodes(pred):
            test = f"(len({code}) > 0)"
        else:
            test = f"R.position_match({self.compiler.as_seq(code, kind)}, pos)"
        uses_pos = re.search(r"\b(pos|size)\b", test) is not None
        # An error while matching a pattern is recoverable in XSLT 2.0 (5.5.3): Saxon treats the
        # pattern as not matching that node (e.g. normalize-space() of two ram:TypeCode).
        self.lines.append(
            f"def {name}(c, pos, size, D):\n    cur = c\n    try:\n        return {test}\n"
            "    except R.XPathError:\n        return False"
        )
        self.lines.append(f"{name}.positional = {uses_pos}")
        self._positional[name] = uses_pos
        return name


def expand_pattern(node: Node) -> list[Node]:
    """A pattern as a list of plain path patterns: unions, and parenthesised unions inside paths
    (``(a/b | c/d)/e``, ``(a | b)[p]/(c | d)``), distributed into alternatives."""
    if node[0] == "union":
        return expand_pattern(node[1]) + expand_pattern(node[2])
    if node[0] == "filter":
        _, primary, preds = node
        out = []
        for alt in expand_pattern(primary):
            if alt[0] != "path" or not alt[2] or alt[2][-1][0] != "step":
                raise Unsupported("a predicate on a pattern that is not a path")
            last = alt[2][-1]
            out.append(("path", alt[1], [*alt[2][:-1], ("step", last[1], last[2], [*last[3], *preds])]))
        return out
    if node[0] != "path":
        return [node]
    _, start, steps = node
    if start in (None, ("root",)):
        heads: list[Node] = [("path", start, [])]
    else:
        heads = expand_pattern(start)
    for step in steps:
        if step[0] == "filter":
            parts = expand_pattern(step)
            grown = []
            for h in heads:
                for part in parts:
                    if part[0] != "path" or part[1] is not None:
                        raise Unsupported("a parenthesised step that is not a relative path")
                    grown.append(("path", h[1], [*h[2], *part[2]]))
            heads = grown
        else:
            heads = [("path", h[1], [*h[2], step]) for h in heads]
    return [h if h[2] or h[1] is None else h[1] for h in heads]


def _exact_name(test: Node) -> str | None:
    if test[0] == "name" and test[1] is not None and test[2] is not None:
        return "{" + test[1] + "}" + test[2] if test[1] else test[2]
    return None
