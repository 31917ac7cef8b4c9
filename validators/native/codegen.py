"""XPath AST -> Python source: each expression becomes one Python expression over `runtime`.

`Compiler.expr(node)` returns ``(code, kind)``: `kind` says what the code
evaluates to, so that the common cases skip building sequences:

- ``"seq"``: a list (an XPath sequence);
- ``"bool"``: a Python bool (one xs:boolean);
- ``"str"``: a Python str (one xs:string);
- ``"int"``: a Python int (one xs:integer).

Names in generated code: ``c`` the context item, ``pos``/``size`` the context
position and size (inside predicates), ``cur`` the rule's context node
(``current()``), ``D`` the document's run state (`validators.native.engine.State`),
``R`` the runtime module, ``K`` the module's constants. What the compiler
does not understand raises `Unsupported`.

Beside this module: `validators.native.builtins` (the XPath functions, one
table entry each), `validators.native.navigation` (axis steps, libxml2
paths), `validators.native.analysis` (what an expression reads and yields).

>>> c = Compiler({}, {}, set())
>>> c.expr(("call", "count", [("path", None, [("step", "child", ("name", "", "a"), [])])]))
("len(D.ch(c, 'a'))", 'int')
"""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from typing import Any

from validators.native.analysis import (
    DOS_NODE,
    depends,
    exact_name,
    relative_children_only,
    union_names,
    uses_focus,
    yields_nodes,
)
from validators.native.builtins import builtin
from validators.native.hoist import split_predicates
from validators.native.navigation import axis_code, libxml_path
from validators.native.scope import Scope
from validators.native.xpath import Node, Unsupported

XS = "http://www.w3.org/2001/XMLSchema"
FN = "http://www.w3.org/2005/xpath-functions"
REVERSE_AXES = frozenset({"parent", "ancestor", "ancestor-or-self", "preceding-sibling", "preceding"})


class Compiler:
    """Compiles expressions of one stylesheet; collects the constants the code refers to."""

    def __init__(
        self, namespaces: dict[str, str], functions: dict[tuple[str, str], tuple[str, int]], globals_: set[str]
    ):
        self.ns = namespaces  # prefix -> uri, for function names
        self.functions = functions  # (uri, local) -> (python name, arity)
        self.globals = globals_
        self.constants: list[Any] = []
        self._const_ids: dict[Any, int] = {}
        self._n = 0
        self.scope = Scope({})
        self.memo: list[str] | None = None  # set: document constants are hoisted into these functions
        self.tolerant = False  # and/or try their other operand when one raises (`tolerant_bool`)
        self.memo_ids: dict[str, tuple[int, str]] = {}

    def const(self, value: Any) -> str:
        key = (type(value).__name__, repr(value))
        if key not in self._const_ids:
            self._const_ids[key] = len(self.constants)
            self.constants.append(value)
        return f"K[{self._const_ids[key]}]"

    def fresh(self, base: str) -> str:
        self._n += 1
        return f"{base}{self._n}"

    # ---- conversions
    @staticmethod
    def as_seq(code: str, kind: str) -> str:
        return code if kind == "seq" else f"[{code}]"

    @staticmethod
    def as_bool(code: str, kind: str) -> str:
        if kind == "bool":
            return code
        if kind == "str":
            return f"({code} != '')"
        if kind == "int":
            return f"({code} != 0)"
        return f"R.ebv({code})"

    @staticmethod
    def as_str(code: str, kind: str) -> str:
        """An xs:string? argument ('' when empty)."""
        if kind == "str":
            return code
        if kind == "int":
            return f"str({code})"
        if kind == "bool":
            return f"R.to_string({code})"
        return f"R.str_arg({code})"

    def seq(self, node: Node) -> str:
        return self.as_seq(*self.expr(node))

    def bool_(self, node: Node) -> str:
        return self.as_bool(*self.expr(node))

    def str_(self, node: Node) -> str:
        if (
            node[0] == "path"
            and node[1] is None
            and len(node[2]) == 1
            and self.scope.has_context
            and (self.memo is None or depends(node, self.globals, 0))
        ):
            step = node[2][0]
            name = exact_name(step) if not step[3] else None
            if name is not None:
                return f"D.chs(c, {name!r})"  # the string value of the one child so named ('' when none)
        return self.as_str(*self.expr(node))

    # ---- expressions
    def expr(self, node: Node) -> tuple[str, str]:
        kind = node[0]
        method = getattr(self, "_" + kind, None)
        if method is None:
            raise Unsupported(f"{kind} expressions")
        if self.memo is not None and kind in _MEMO_KINDS and not depends(node, self.globals, 0):
            return self._memoized(node, method)
        result: tuple[str, str] = method(node)
        return result

    def _memoized(self, node: Node, method: Any) -> tuple[str, str]:
        """A document constant (no context, no local variable): computed once per document.

        Its own constant parts are memoised too (the memo stays on while it compiles), so the
        constants that share a part (``//cac:TaxCategory[cac:TaxScheme/...='VAT']`` in some
        twenty root rules) compute it once."""
        key = repr(node)
        if key not in self.memo_ids:
            saved = self.scope
            self.scope = Scope({}, has_context=True, has_position=False, has_current=False)
            try:
                code, kind = method(node)
            finally:
                self.scope = saved
            index = len(self.memo_ids)
            self.memo_ids[key] = (index, kind)
            assert self.memo is not None
            self.memo.append(f"def k_{index}(D):\n    c = cur = D.doc\n    return {code}")
        index, kind = self.memo_ids[key]
        return f"D.k({index}, k_{index})", kind

    def _lit(self, node: Node) -> tuple[str, str]:
        v = node[1]
        if isinstance(v, str):
            return repr(v), "str"
        if isinstance(v, bool):  # pragma: no cover - no boolean literals in XPath
            return repr(v), "bool"
        if isinstance(v, int):
            return repr(v), "int"
        if isinstance(v, Decimal):
            return f"[{self.const(v)}]", "seq"
        return f"[{v!r}]", "seq"

    def _var(self, node: Node) -> tuple[str, str]:
        name = node[1]
        if name in self.scope.vars:
            return self.scope.vars[name], "seq"
        if name in self.globals:
            return f"D.glob({name!r})", "seq"
        raise Unsupported(f"unknown variable ${name}")

    def _ctx(self, node: Node) -> tuple[str, str]:
        self.need_context()
        return "[c]", "seq"

    def need_context(self) -> None:
        if not self.scope.has_context:
            raise Unsupported("a path without a context item (in a function)")

    def _root(self, node: Node) -> tuple[str, str]:
        return "[D.doc]", "seq"

    def _seq(self, node: Node) -> tuple[str, str]:
        items = [self.seq(x) for x in node[1]]
        if not items:
            return "[]", "seq"
        return "[" + ", ".join(f"*{x}" for x in items) + "]", "seq"

    def _or(self, node: Node) -> tuple[str, str]:
        if self.tolerant:
            return f"R.t_or(lambda: {self.bool_(node[1])}, lambda: {self.bool_(node[2])})", "bool"
        return f"({self.bool_(node[1])} or {self.bool_(node[2])})", "bool"

    def _and(self, node: Node) -> tuple[str, str]:
        if self.tolerant:
            return f"R.t_and(lambda: {self.bool_(node[1])}, lambda: {self.bool_(node[2])})", "bool"
        return f"({self.bool_(node[1])} and {self.bool_(node[2])})", "bool"

    def tolerant_bool(self, node: Node) -> str:
        """The test again, for when its plain evaluation raised: ``and``/``or`` then try the other
        operand, which may decide alone. Saxon evaluates the cheaper operand first (it reorders
        them), so an error in the operand it never evaluates does not abort its run."""
        saved = self.tolerant, self.memo
        self.tolerant, self.memo = True, None
        try:
            return self.bool_(node)
        finally:
            self.tolerant, self.memo = saved

    def _gcmp(self, node: Node) -> tuple[str, str]:
        _, op, a, b = node
        ca, ka = self.expr(a)
        cb, kb = self.expr(b)
        pyop = "==" if op == "=" else op
        if ka == "str" and kb == "str":
            return f"({ca} {pyop} {cb})", "bool"
        if ka == "int" and kb == "int":
            return f"({ca} {pyop} {cb})", "bool"
        if kb == "str" and ka == "seq":
            return f"R.gcmp_str({op!r}, {ca}, {cb})", "bool"
        if ka == "str" and kb == "seq":
            return f"R.gcmp_str({op!r}, {cb}, {ca}, True)", "bool"
        return f"R.gcmp({op!r}, {self.as_seq(ca, ka)}, {self.as_seq(cb, kb)})", "bool"

    def _vcmp(self, node: Node) -> tuple[str, str]:
        _, op, a, b = node
        return f"R.vcmp({op!r}, {self.seq(a)}, {self.seq(b)})", "seq"

    def _arith(self, node: Node) -> tuple[str, str]:
        _, op, a, b = node
        ca, ka = self.expr(a)
        cb, kb = self.expr(b)
        if ka == "int" and kb == "int" and op in ("+", "-", "*"):
            return f"({ca} {op} {cb})", "int"
        return f"R.arith({op!r}, {self.as_seq(ca, ka)}, {self.as_seq(cb, kb)})", "seq"

    def _neg(self, node: Node) -> tuple[str, str]:
        c, k = self.expr(node[1])
        if k == "int":
            return f"(-{c})", "int"
        return f"R.negate({self.as_seq(c, k)})", "seq"

    def _range(self, node: Node) -> tuple[str, str]:
        return f"R.to_range({self.seq(node[1])}, {self.seq(node[2])})", "seq"

    def _union(self, node: Node) -> tuple[str, str]:
        return f"R.set_op(D.doc, 'union', {self.seq(node[1])}, {self.seq(node[2])})", "seq"

    def _intersect(self, node: Node) -> tuple[str, str]:
        return f"R.set_op(D.doc, 'intersect', {self.seq(node[1])}, {self.seq(node[2])})", "seq"

    def _except(self, node: Node) -> tuple[str, str]:
        return f"R.set_op(D.doc, 'except', {self.seq(node[1])}, {self.seq(node[2])})", "seq"

    def _if(self, node: Node) -> tuple[str, str]:
        _, cond, then, other = node
        ct, kt = self.expr(then)
        co, ko = self.expr(other)
        if kt != ko:
            ct, co, kt = self.as_seq(ct, kt), self.as_seq(co, ko), "seq"
        return f"({ct} if {self.bool_(cond)} else {co})", kt

    def _bound(self, bindings: list[tuple[str, Node]]) -> tuple[list[tuple[str, str]], dict[str, str]]:
        """Compile binding sequences, each in the scope of the previous variables."""
        saved = self.scope.vars
        names: list[tuple[str, str]] = []
        inner = dict(saved)
        for var, source in bindings:
            self.scope.vars = inner
            code = self.seq(source)
            py = self.fresh("l_")
            names.append((py, code))
            inner = dict(inner)
            inner[var] = f"[{py}]"
        self.scope.vars = saved
        return names, inner

    def _for(self, node: Node) -> tuple[str, str]:
        names, inner = self._bound(node[1])
        saved = self.scope.vars
        self.scope.vars = inner
        try:
            body = self.seq(node[2])
        finally:
            self.scope.vars = saved
        out = self.fresh("o_")
        loops = " ".join(f"for {py} in {code}" for py, code in names)
        return f"[{out} {loops} for {out} in {body}]", "seq"

    def _some(self, node: Node) -> tuple[str, str]:
        return self._quantified(node, "any")

    def _every(self, node: Node) -> tuple[str, str]:
        return self._quantified(node, "all")

    def _quantified(self, node: Node, fn: str) -> tuple[str, str]:
        names, inner = self._bound(node[1])
        saved = self.scope.vars
        self.scope.vars = inner
        try:
            body = self.bool_(node[2])
        finally:
            self.scope.vars = saved
        loops = " ".join(f"for {py} in {code}" for py, code in names)
        return f"{fn}({body} {loops})", "bool"

    def _cast(self, node: Node) -> tuple[str, str]:
        _, inner, type_name, optional = node
        local = self._xs_type(type_name)
        return f"R.cast({self.seq(inner)}, {local!r}, {optional!r})", "seq"

    def _castable(self, node: Node) -> tuple[str, str]:
        _, inner, type_name, optional = node
        local = self._xs_type(type_name)
        return f"R.castable({self.seq(inner)}, {local!r}, {optional!r})", "bool"

    def _xs_type(self, name: str) -> str:
        prefix, _, local = name.rpartition(":")
        if self.ns.get(prefix) != XS:
            raise Unsupported(f"type {name}")
        from validators.native.runtime import CASTS

        if local not in CASTS:
            raise Unsupported(f"type {name}")
        return local

    def _filter(self, node: Node) -> tuple[str, str]:
        _, primary, preds = node
        code = self.seq(primary)
        for p in preds:
            code = self._predicate(code, p)
        return code, "seq"

    def _keyed_predicate(self, code: str, pred: Node) -> str | None:
        """``S[@a = E]`` with E free of the predicate's focus: a lookup in an index of S by @a.

        The code lists of the Factur-X stylesheets (``document(...)/codedb/cl[@id=8]/
        enumeration[@value=$code]``) are thousands of entries read for each coded value.
        `validators.native.engine.State.lookup` builds the index once per sequence and
        falls back to the plain comparison when E is not a string.
        """
        if pred[0] != "gcmp" or pred[1] != "=":
            return None
        for attr, other in ((pred[2], pred[3]), (pred[3], pred[2])):
            if (
                attr[0] == "path"
                and attr[1] is None
                and len(attr[2]) == 1
                and attr[2][0][0] == "step"
                and attr[2][0][1] == "attribute"
                and attr[2][0][2][0] == "name"
                and attr[2][0][2][1] == ""
                and attr[2][0][2][2]
                and not attr[2][0][3]
                and not uses_focus(other, 0)
            ):
                name = attr[2][0][2][2]
                rhs = self.seq(other)
                return f"D.lookup({code}, {name!r}, {rhs})"
        return None

    def _positional(self, pred: Node) -> bool:
        """Does a predicate depend on the position (a number, position(), last())?"""
        if pred[0] == "lit":
            return not isinstance(pred[1], str)
        saved = self.scope
        self.scope = dataclasses.replace(saved, has_context=True, has_position=True)
        try:
            code, kind = self.expr(pred)
        finally:
            self.scope = saved
        return (kind not in ("bool", "str") and not yields_nodes(pred)) or re.search(
            r"\b(pos|size)\b", code
        ) is not None

    def _predicate(self, code: str, pred: Node) -> str:
        if pred[0] == "lit" and isinstance(pred[1], int):
            return f"R.fn_index({code}, {pred[1]})"
        keyed = self._keyed_predicate(code, pred)
        if keyed is not None:
            return keyed
        saved = self.scope
        self.scope = dataclasses.replace(saved, has_context=True, has_position=True)
        try:
            pc, pk = self.expr(pred)
        finally:
            self.scope = saved
        if pk in ("bool", "str"):
            test = self.as_bool(pc, pk)
        elif yields_nodes(pred):
            test = f"(len({pc}) > 0)"  # nodes: never a position
        else:
            test = f"R.position_match({self.as_seq(pc, pk)}, pos)"
        if re.search(r"\b(pos|size)\b", test) is None:
            return f"[c for c in {code} if {test}]"  # no position: a plain filter (c is the item)
        return f"D.filt({code}, lambda c, pos, size: {test})"

    # ---- paths
    def _path(self, node: Node) -> tuple[str, str]:
        _, start, steps = node
        fast = libxml_path(self, start, steps)
        if fast is not None:
            return fast, "seq"
        hoisted = split_predicates(self, start, steps)
        if hoisted is not None:
            return hoisted, "seq"
        if self.memo is not None and start is not None and len(steps) > 1:
            # the longest document-constant prefix (document('codedb.xml')/codedb/cl[@id=8]) once per document
            for k in range(len(steps) - 1, 0, -1):
                if steps[k - 1] == DOS_NODE:
                    continue  # never split // from its step
                prefix: Node = ("path", start, steps[:k])
                if not depends(prefix, self.globals, 0):
                    code, _ = self.expr(prefix)
                    return self._path(("path", ("memo", code), steps[k:]))
        if start is not None and start[0] == "memo":
            start_code = start[1]
            return self._steps(start_code, False, steps), "seq"
        if start is None:
            self.need_context()
            current, single = "c", True
        elif start == ("root",):
            current, single = "D.doc", True
        else:
            current, single = self.seq(start), False
        return self._steps(current, single, steps), "seq"

    def _steps(self, current: str, single: bool, steps: list[Node]) -> str:
        """Code applying path `steps` to `current` (one node when `single`, else a sequence)."""
        i = 0
        same_depth = False  # the current nodes are distinct and none is another's ancestor
        while i < len(steps):
            step = steps[i]
            flat = not single and same_depth and step[0] == "step" and step[1] in ("child", "attribute", "self")
            n = current if single else (self.fresh("n") if flat else "n")
            # descendant-or-self::node()/child::x (//x) without predicates -> descendant::x
            if (
                step == ("step", "descendant-or-self", ("kind", "node"), [])
                and i + 1 < len(steps)
                and steps[i + 1][0] == "step"
                and steps[i + 1][1] == "child"
                and steps[i + 1][2][0] == "name"
                and not any(self._positional(p) for p in steps[i + 1][3])
            ):
                one = axis_code(self, "descendant", steps[i + 1][2], n)
                for p in steps[i + 1][3]:
                    one = self._predicate(one, p)
                i += 2
                axis = "descendant"
            elif (
                step == DOS_NODE
                and i + 1 < len(steps)
                and steps[i + 1][0] == "filter"
                and not steps[i + 1][2]
                and union_names(steps[i + 1][1])
            ):
                names = union_names(steps[i + 1][1]) or []
                one = f"R.descendants_named({n}, {tuple(names)!r})"  # //(a | b): one pass over the tree
                i += 2
                axis = "descendant"
            elif step == DOS_NODE and i + 1 < len(steps) and self._element_contexts_suffice(steps[i + 1]):
                one = f"R.self_and_descendants({n})"  # text nodes have no children nor attributes
                i += 1
                axis = "descendant"
            elif step[0] == "step":
                one = self._axis_step(step, n)
                i += 1
                axis = step[1]
            else:
                atomic = None if single or step[2] else self._atomic_step(step[1])
                if atomic is not None:  # one atomic value per node (e.g. .../xs:decimal(.)): in node order
                    current = f"[{atomic} for c in {current}]"
                    same_depth = False
                    i += 1
                    continue
                one = self._filter_step(step, n)
                i += 1
                axis = "filter"
            if single:
                current, single = one, False
                same_depth = axis in ("child", "attribute", "self")
            elif flat:
                m = self.fresh("m")
                current = f"[{m} for {n} in {current} for {m} in {one}]"  # same depth: already in order
            else:
                current = f"D.each({current}, lambda n: {one})"
                same_depth = False
        return current

    @staticmethod
    def _element_contexts_suffice(step: Node) -> bool:
        """Would `step` find nothing from a text, comment or PI context (so // may skip those)?"""
        if step[0] == "step":
            return step[1] in ("child", "attribute", "descendant") and step[2][0] == "name"
        if step[0] == "filter":
            return relative_children_only(step[1])
        return False

    def _atomic_step(self, primary: Node) -> str | None:
        """The code of a path step giving exactly one atomic value per context node, if it is one."""
        saved = self.scope
        self.scope = dataclasses.replace(saved, has_context=True, has_position=False)
        try:
            code, kind = self.expr(primary)
        finally:
            self.scope = saved
        return code if kind in ("str", "bool", "int") else None

    def _filter_step(self, step: Node, n: str) -> str:
        _, primary, preds = step
        saved = self.scope
        self.scope = dataclasses.replace(saved, has_context=True, has_position=False)
        try:
            code = self.seq(primary)
            for p in preds:
                code = self._predicate(code, p)
        finally:
            self.scope = saved
        return f"(lambda c: {code})({n})"

    def _axis_step(self, step: Node, n: str) -> str:
        _, axis, test, preds = step
        code = axis_code(self, axis, test, n)
        if not preds:
            return code
        if axis in REVERSE_AXES:
            code = f"{code}[::-1]"
        for p in preds:
            code = self._predicate(code, p)
        if axis in REVERSE_AXES:
            code = f"{code}[::-1]"
        return code

    # ---- function calls
    def _call(self, node: Node) -> tuple[str, str]:
        _, name, args = node
        prefix, _, local = name.rpartition(":")
        uri = self.ns.get(prefix) if prefix else FN
        if prefix and uri is None:
            raise Unsupported(f"undeclared function prefix {prefix}")
        if uri == XS:
            from validators.native.runtime import CASTS

            if local not in CASTS or len(args) != 1:
                raise Unsupported(f"constructor {name}")
            return f"R.cast({self.seq(args[0])}, {local!r}, True)", "seq"
        if uri == FN:
            return builtin(self, local, args)
        if (uri or "", local) in self.functions:
            py, arity = self.functions[(uri or "", local)]
            if arity != len(args):
                raise Unsupported(f"{name} with {len(args)} arguments")
            return f"{py}(D, {', '.join(self.seq(a) for a in args)})", "seq"
        raise Unsupported(f"function {name}")


_MEMO_KINDS = frozenset({"path", "call", "filter", "union", "gcmp", "arith", "for", "some", "every", "if", "and", "or"})
