"""An XPath 2.0 parser for the expressions of compiled schematron: text -> a small AST of tuples.

The grammar is XPath 2.0's (for, some/every, if, general/value/node comparisons,
arithmetic, unions, casts, paths with axes and predicates, function calls), as
the EN 16931, Factur-X and BR-FR stylesheets use it. What it does not know it
refuses with `Unsupported`, naming the construct: the rule that holds it then
runs on Saxon instead (`validators.native.stylesheet`).

AST nodes are tuples whose first item names them::

    ("lit", value)                 str | int | Decimal | float
    ("var", name)                  $name
    ("ctx",)                       .
    ("root",)                      /
    ("seq", [expr, ...])           (a, b) and ()
    ("call", name, [args])         name as written (prefix kept), resolved later
    ("path", start, [step, ...])   start: None (context), ("root",) or an expression
    ("step", axis, test, [preds])  test: ("name", ns | None, local | None) or ("kind", kind)
    ("filter", expr, [preds])      a primary expression with predicates (also a path step)
    ("or"|"and", a, b) ("gcmp"|"vcmp"|"ncmp", op, a, b) ("arith", op, a, b) ("neg", a)
    ("union"|"intersect"|"except", a, b) ("range", a, b)
    ("for"|"some"|"every", [(name, expr), ...], body) ("if", cond, then, else)
    ("cast"|"castable", expr, type_name, optional)

>>> parse("normalize-space(cbc:ID) != ''", {"cbc": "urn:c"})[0]
'gcmp'
>>> parse("count(//x[1]) div 2", {})[1]
'div'
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

Node = tuple[Any, ...]


class Unsupported(Exception):
    """An expression the compiler does not understand (its rule then runs on Saxon)."""


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<comment>\(:)
    | (?P<str>"(?:[^"]|"")*"|'(?:[^']|'')*')
    | (?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<var>\$[A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)
    | (?P<name>(?:[A-Za-z_][\w.\-]*|\*):(?:[A-Za-z_][\w.\-]*|\*)(?!:)|[A-Za-z_][\w.\-]*)
    | (?P<op>//|::|!=|<=|>=|<<|>>|\.\.|[/()\[\],@.=<>|+\-*?])
    )""",
    re.X,
)

KIND_TESTS = frozenset({"node", "text", "comment", "processing-instruction", "element", "attribute", "document-node"})
_RESERVED_CALLS = KIND_TESTS | {"if", "item", "empty-sequence", "schema-element", "schema-attribute", "typeswitch"}
AXES = frozenset(
    {
        "child",
        "descendant",
        "attribute",
        "self",
        "descendant-or-self",
        "following-sibling",
        "following",
        "parent",
        "ancestor",
        "preceding-sibling",
        "preceding",
        "ancestor-or-self",
    }
)
_GCMP = {"=", "!=", "<", "<=", ">", ">="}
_VCMP = {"eq", "ne", "lt", "le", "gt", "ge"}


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos, end = 0, len(text)
    while pos < end:
        m = _TOKEN.match(text, pos)
        if m is None:
            if text[pos:].strip() == "":
                break
            raise Unsupported(f"cannot read {text[pos : pos + 20]!r}")
        kind = m.lastgroup or ""
        if kind == "comment":
            close = text.find(":)", m.end())
            if close < 0:
                raise Unsupported("unclosed comment")
            pos = close + 2
            continue
        tokens.append((kind, m.group(kind)))
        pos = m.end()
        if pos < end and text[pos:].strip() == "":
            break
    tokens.append(("end", ""))
    return tokens


def parse(text: str, namespaces: dict[str, str]) -> Node:
    """The AST of `text`; prefixes of name tests are resolved with `namespaces` (function names are not)."""
    p = _Parser(tokenize(text), namespaces)
    node = p.expr()
    if p.peek()[0] != "end":
        raise Unsupported(f"unexpected {p.peek()[1]!r}")
    return node


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], namespaces: dict[str, str]) -> None:
        self.t = tokens
        self.i = 0
        self.ns = namespaces

    # -- token helpers
    def peek(self, k: int = 0) -> tuple[str, str]:
        return self.t[min(self.i + k, len(self.t) - 1)]

    def next(self) -> tuple[str, str]:
        tok = self.t[self.i]
        self.i += 1
        return tok

    def at(self, value: str, kind: str | None = None) -> bool:
        k, v = self.peek()
        return v == value and (kind is None or k == kind) and k != "str"

    def accept(self, value: str) -> bool:
        if self.at(value):
            self.i += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if not self.accept(value):
            raise Unsupported(f"expected {value!r}, found {self.peek()[1]!r}")

    def at_keyword(self, word: str) -> bool:
        return self.peek() == ("name", word)

    # -- grammar
    def expr(self) -> Node:
        items = [self.single()]
        while self.accept(","):
            items.append(self.single())
        return items[0] if len(items) == 1 else ("seq", items)

    def single(self) -> Node:
        k, v = self.peek()
        if k == "name" and v in ("for", "some", "every") and self.peek(1)[0] == "var":
            self.next()
            bindings = self._bindings()
            self.expect_keyword("return" if v == "for" else "satisfies")
            return (v, bindings, self.single())
        if k == "name" and v == "if" and self.peek(1)[1] == "(":
            self.next()
            self.expect("(")
            cond = self.expr()
            self.expect(")")
            self.expect_keyword("then")
            then = self.single()
            self.expect_keyword("else")
            return ("if", cond, then, self.single())
        return self.or_expr()

    def expect_keyword(self, word: str) -> None:
        if not self.at_keyword(word):
            raise Unsupported(f"expected {word!r}, found {self.peek()[1]!r}")
        self.next()

    def _bindings(self) -> list[tuple[str, Node]]:
        out = []
        while True:
            k, v = self.next()
            if k != "var":
                raise Unsupported("expected a variable")
            self.expect_keyword("in")
            out.append((v[1:], self.single()))
            if not (self.at(",") and self.peek(1)[0] == "var"):
                return out
            self.next()

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.at_keyword("or"):
            self.next()
            node = ("or", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.comparison()
        while self.at_keyword("and"):
            self.next()
            node = ("and", node, self.comparison())
        return node

    def comparison(self) -> Node:
        left = self.range_expr()
        k, v = self.peek()
        if k == "op" and v in _GCMP:
            self.next()
            return ("gcmp", v, left, self.range_expr())
        if k == "name" and v in _VCMP:
            self.next()
            return ("vcmp", v, left, self.range_expr())
        if (k == "name" and v == "is") or (k == "op" and v in ("<<", ">>")):
            self.next()
            return ("ncmp", v, left, self.range_expr())
        return left

    def range_expr(self) -> Node:
        left = self.additive()
        if self.at_keyword("to"):
            self.next()
            return ("range", left, self.additive())
        return left

    def additive(self) -> Node:
        node = self.multiplicative()
        while self.peek() in (("op", "+"), ("op", "-")):
            op = self.next()[1]
            node = ("arith", op, node, self.multiplicative())
        return node

    def multiplicative(self) -> Node:
        node = self.union()
        while True:
            k, v = self.peek()
            if (k == "op" and v == "*") or (k == "name" and v in ("div", "idiv", "mod")):
                self.next()
                node = ("arith", v, node, self.union())
            else:
                return node

    def union(self) -> Node:
        node = self.intersect()
        while self.at("|", "op") or self.at_keyword("union"):
            self.next()
            node = ("union", node, self.intersect())
        return node

    def intersect(self) -> Node:
        node = self.instance_of()
        while self.at_keyword("intersect") or self.at_keyword("except"):
            op = self.next()[1]
            node = (op, node, self.instance_of())
        return node

    def instance_of(self) -> Node:
        node = self.castable()
        if self.at_keyword("instance") or self.at_keyword("treat"):
            raise Unsupported(f"'{self.peek()[1]}' expressions")
        return node

    def castable(self) -> Node:
        node = self.cast()
        if self.at_keyword("castable") and self.peek(1) == ("name", "as"):
            self.i += 2
            name, optional = self._single_type()
            return ("castable", node, name, optional)
        return node

    def cast(self) -> Node:
        node = self.unary()
        if self.at_keyword("cast") and self.peek(1) == ("name", "as"):
            self.i += 2
            name, optional = self._single_type()
            return ("cast", node, name, optional)
        return node

    def _single_type(self) -> tuple[str, bool]:
        k, v = self.next()
        if k != "name":
            raise Unsupported("expected a type name")
        return v, self.accept("?")

    def unary(self) -> Node:
        signs = []
        while self.peek() in (("op", "-"), ("op", "+")):
            signs.append(self.next()[1])
        node = self.path()
        for s in reversed(signs):
            node = ("neg", node) if s == "-" else ("arith", "+", ("lit", 0), node)
        return node

    # -- paths
    def path(self) -> Node:
        if self.at("/", "op"):
            self.next()
            if self._starts_step():
                return ("path", ("root",), self._relative())
            return ("root",)
        if self.at("//", "op"):
            self.next()
            return ("path", ("root",), [_DOS, *self._relative()])
        steps = self._relative()
        if len(steps) == 1 and steps[0][0] == "filter" and not steps[0][2]:
            return steps[0][1]  # a bare primary expression
        if steps[0][0] == "filter":
            first = steps[0]
            start = first[1] if not first[2] else first
            return ("path", start, steps[1:]) if len(steps) > 1 else first
        return ("path", None, steps)

    def _starts_step(self) -> bool:
        k, v = self.peek()
        if k == "name":
            return v not in ("div", "idiv", "mod", "and", "or", "union", "intersect", "except", "eq", "ne") or (
                self.peek(1)[1] in ("(", "::")
            )
        return (k == "op" and v in ("*", "@", ".", "..", "(")) or k in ("var", "str", "num")

    def _relative(self) -> list[Node]:
        steps = [self._step()]
        while True:
            if self.at("/", "op"):
                self.next()
            elif self.at("//", "op"):
                self.next()
                steps.append(_DOS)
            else:
                return steps
            steps.append(self._step())

    def _step(self) -> Node:
        k, v = self.peek()
        if k == "op" and v == "..":
            self.next()
            return ("step", "parent", ("kind", "node"), self._predicates())
        if k == "op" and v == "@":
            self.next()
            return ("step", "attribute", self._node_test("attribute"), self._predicates())
        if k == "name" and self.peek(1)[1] == "::":
            if v not in AXES:
                raise Unsupported(f"axis {v}")
            self.i += 2
            return ("step", v, self._node_test(v), self._predicates())
        if (k == "name" and not (self.peek(1)[1] == "(" and v not in KIND_TESTS)) or (k == "op" and v == "*"):
            return ("step", "child", self._node_test("child"), self._predicates())
        primary = self._primary()
        return ("filter", primary, self._predicates())

    def _node_test(self, axis: str) -> Node:
        k, v = self.next()
        if k == "op" and v == "*":
            return ("name", None, None)
        if k != "name":
            raise Unsupported(f"expected a node test, found {v!r}")
        if v in KIND_TESTS and self.at("(", "op"):
            self.next()
            if not self.accept(")"):
                raise Unsupported(f"{v}() with arguments")
            return ("kind", v)
        if ":" in v:
            prefix, local = v.split(":", 1)
            if prefix == "*":
                return ("name", None, local)
            if prefix not in self.ns:
                raise Unsupported(f"undeclared prefix {prefix}")
            return ("name", self.ns[prefix], None if local == "*" else local)
        # unprefixed element names are in no namespace (XPath 2.0 default element namespace unset)
        return ("name", "", v)

    def _predicates(self) -> list[Node]:
        preds = []
        while self.accept("["):
            preds.append(self.expr())
            self.expect("]")
        return preds

    def _primary(self) -> Node:
        k, v = self.next()
        if k == "str":
            q = v[0]
            return ("lit", v[1:-1].replace(q + q, q))
        if k == "num":
            if "e" in v or "E" in v:
                return ("lit", float(v))
            if "." in v:
                return ("lit", Decimal(v))
            return ("lit", int(v))
        if k == "var":
            return ("var", v[1:])
        if k == "op" and v == "(":
            if self.accept(")"):
                return ("seq", [])
            inner = self.expr()
            self.expect(")")
            return inner if inner[0] != "seq" else inner
        if k == "op" and v == ".":
            return ("ctx",)
        if k == "name" and self.at("(", "op") and v not in _RESERVED_CALLS:
            self.next()
            args: list[Node] = []
            if not self.accept(")"):
                args.append(self.single())
                while self.accept(","):
                    args.append(self.single())
                self.expect(")")
            return ("call", v, args)
        raise Unsupported(f"unexpected {v!r}")


_DOS: Node = ("step", "descendant-or-self", ("kind", "node"), [])
