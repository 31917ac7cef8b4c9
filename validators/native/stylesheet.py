"""Compiled schematron XSLT -> a Python module of rule functions, plus what could not be compiled.

A compiled schematron stylesheet (the ISO skeleton's output, as the CEN,
Factur-X and BR-FR artefacts are) has a regular shape, which is all this
reader accepts:

- the root template applies one mode per pattern, in order (``M11``, ``M12`` ...);
- each mode has rule templates (``match``, an explicit ``priority``, then
  ``xsl:variable`` lets, asserts as ``xsl:choose``/``xsl:when``/``xsl:otherwise``
  with an ``svrl:failed-assert``, reports as ``xsl:if`` with an
  ``svrl:successful-report``, and a last ``xsl:apply-templates`` to ``@*|*``
  (or ``*``: the newer skeleton, BR-FR's, does not visit attributes; or
  ``*|comment()|processing-instruction()``: the older one, BR-FR-CDV's, the same walk as ``*`` since no rule
  matches a comment or a processing instruction and they have no children), and the
  two default templates (``text()`` and ``@*|node()``);
- ``@id`` and ``@flag`` are literal, the location is the full path of a node,
  the message is text and ``xsl:value-of``;
- global ``xsl:variable`` and ``xsl:function`` (``xsl:param``, lets, one
  ``xsl:sequence``) as BR-FR has them.

Per assert, what the XPath compiler (`validators.native.codegen`) refuses is
recorded with the reason: that assert runs on Saxon, in a copy of the
stylesheet reduced to the refused asserts (`Program.reduced_xslt`). A mode
whose match patterns cannot all be compiled runs on Saxon whole (which rule
matches a node first decides what fires). A stylesheet of another shape is
refused as a whole (`Unsupported`): all of it runs on Saxon. Match patterns
are compiled by `validators.native.patterns`.
"""

from __future__ import annotations

import copy as copy_module
import dataclasses
import re
from pathlib import Path
from typing import Any

from lxml import etree

from validators.native.analysis import guard_keys
from validators.native.codegen import Compiler, Scope
from validators.native.guards import key_depth, skip_absent
from validators.native.patterns import Patterns
from validators.native.xpath import Node, Unsupported, parse

XSL = "http://www.w3.org/1999/XSL/Transform"
SVRL = "http://purl.oclc.org/dsdl/svrl"
_X = "{" + XSL + "}"
_S = "{" + SVRL + "}"
FULL_PATH_MODE = "schematron-select-full-path"


@dataclasses.dataclass(frozen=True)
class Assert:
    uid: str  # f"{rule id}#{ordinal}": ordinal counts the stylesheet's asserts and reports from 1
    rule: str
    flag: str | None
    kind: str  # "failed-assert" or "successful-report"
    test: str
    native: bool
    reason: str | None = None  # why it runs on Saxon


@dataclasses.dataclass
class Program:
    """What `compile_stylesheet` makes of one stylesheet."""

    source: str  # the Python module
    asserts: list[Assert]
    reduced_xslt: bytes | None  # the stylesheet with only the Saxon asserts, None when there are none
    modes: int

    @property
    def fallback(self) -> list[Assert]:
        return [a for a in self.asserts if not a.native]


@dataclasses.dataclass
class _Rule:
    mode: int
    priority: float
    position: int
    element: Any
    alternatives: list[Any]  # compiled match alternatives (python source of a tuple)
    code: list[str]


def compile_stylesheet(path: Path, data: bytes | None = None) -> Program:
    data = Path(path).read_bytes() if data is None else data
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, remove_blank_text=False)
    tree = etree.fromstring(data, parser).getroottree()
    return _Reader(Path(path), tree).program()


#: What a mode's templates apply themselves to, as the walk it amounts to: comments and processing
#: instructions match no rule (rules match elements) and have no children, so visiting them changes nothing.
_SAME_WALK = {"*|comment()|processing-instruction()": "*"}


def _walk(select: str) -> str:
    """The walk a mode's ``xsl:apply-templates`` select amounts to.

    >>> _walk("*|comment()|processing-instruction()"), _walk("@*|*")
    ('*', '@*|*')
    """
    return _SAME_WALK.get(select.replace(" ", ""), select)


class _Reader:
    def __init__(self, path: Path, tree: Any) -> None:
        self.path = path
        self.tree = tree
        self.root = tree.getroot()
        if self.root.tag != _X + "stylesheet" and self.root.tag != _X + "transform":
            raise Unsupported("not an XSLT stylesheet")
        self.lines: list[str] = []
        self.asserts: list[Assert] = []
        self.native_elements: list[Any] = []  # the assert elements compiled natively (removed from the reduced copy)
        self.globals: dict[str, Any] = {}
        self.functions: dict[tuple[str, str], tuple[str, int]] = {}
        self.compiler = Compiler(self._ns(self.root), self.functions, set())
        self.compiler.memo = []
        self.patterns = Patterns(self.compiler, self.lines)
        self._select: dict[str, str] = {}
        self._stops: dict[
            str, bool
        ] = {}  # rule function -> its node's subtree is not visited (no apply-templates)  # mode -> what its templates apply themselves to (@*|* or *)

    @staticmethod
    def _ns(el: Any) -> dict[str, str]:
        return {k: v for k, v in el.nsmap.items() if k}

    def parse(self, text: str, el: Any) -> Node:
        return parse(text, self._ns(el))

    def with_ns(self, el: Any) -> None:
        self.compiler.ns = self._ns(el)

    # ---- the whole
    def program(self) -> Program:
        modes = self._modes()
        self._global_variables()
        self._functions()
        out = self.lines
        out.append("")
        mode_specs: list[str] = []
        fallback_modes: list[int] = []
        for index, mode in enumerate(modes):
            spec = self._mode(index, mode)
            if spec is None:
                fallback_modes.append(index)
            mode_specs.append(spec or "None")
        out.append("MODES = [" + ", ".join(mode_specs) + "]")
        out.extend(self.compiler.memo or [])
        header = [
            "# Generated by validators.native from " + self.path.name + ": do not edit, never commit.",
            "from decimal import Decimal",
            "from validators.native import runtime as R",
            "K = " + repr(self.compiler.constants),
            "",
        ]
        source = "\n".join(header + out) + "\n"
        return Program(source, self.asserts, self._reduced(), len(modes))

    def _modes(self) -> list[str]:
        roots = [t for t in self.root.iterchildren(_X + "template") if t.get("match") == "/" and not t.get("mode")]
        if len(roots) != 1:
            raise Unsupported("no single root template")
        modes = [a.get("mode") for a in roots[0].iter(_X + "apply-templates") if a.get("mode")]
        if not modes or any(a.get("select") != "/" for a in roots[0].iter(_X + "apply-templates") if a.get("mode")):
            raise Unsupported("the root template does not apply the patterns' modes to /")
        return [m for m in modes if m]

    def _global_variables(self) -> None:
        variables = list(self.root.iterchildren(_X + "variable", _X + "param"))
        self.compiler.globals = {v.get("name") for v in variables}
        bodies: dict[str, str] = {}
        changed = True
        while changed:  # a variable that cannot be compiled makes those that use it unknown too
            changed = False
            for v in variables:
                name = v.get("name")
                if name not in self.compiler.globals:
                    continue
                try:
                    bodies[name] = self._global_body(v)
                except Unsupported:
                    self.compiler.globals.discard(name)
                    bodies.pop(name, None)
                    changed = True
        for v in variables:
            name = v.get("name")
            if name in bodies:
                py = "g_" + _ident(name)
                self.lines.append(f"def {py}(D):\n    c = cur = D.doc\n    return {bodies[name]}")
                self.globals[name] = py
        self.lines.append("GLOBALS = {" + ", ".join(f"{k!r}: {v}" for k, v in self.globals.items()) + "}")

    def _global_body(self, v: Any) -> str:
        select = v.get("select")
        if select is not None:
            self.with_ns(v)
            self.compiler.scope = Scope({}, has_context=True, has_position=False, has_current=False)
            return self.compiler.seq(self.parse(select, v))
        if v.get("name") == "document-uri":
            return "['']"  # the document is given as text: it has no URI
        if v.tag == _X + "param" and not (v.text or "").strip() and len(v) == 0:
            return "['']"  # an unset parameter: a zero-length string
        raise Unsupported("a variable with content")

    def _functions(self) -> None:
        fns = list(self.root.iterchildren(_X + "function"))
        for i, f in enumerate(fns):
            prefix, _, local = (f.get("name") or "").rpartition(":")
            uri = f.nsmap.get(prefix)
            params = list(f.iterchildren(_X + "param"))
            self.functions[(uri or "", local)] = (f"fn_{i}", len(params))
        keys = {f"fn_{i}": key for key, (py, _) in self.functions.items() for i in [int(py[3:])]}
        bodies: dict[str, str] = {}
        changed = True
        while changed:  # a function that cannot be compiled makes its callers unknown too
            changed = False
            for i, f in enumerate(fns):
                py = f"fn_{i}"
                if keys[py] not in self.functions:
                    continue
                try:
                    bodies[py] = self._function(py, f)
                except Unsupported:
                    del self.functions[keys[py]]
                    bodies.pop(py, None)
                    changed = True
        self.lines.extend(bodies[k] for k in sorted(bodies))

    def _function(self, py: str, f: Any) -> str:
        params = list(f.iterchildren(_X + "param"))
        lines = [f"def {py}(D, {', '.join('p_' + _ident(p.get('name')) for p in params)}):"]
        if True:
            scope_vars: dict[str, str] = {}
            for p in params:
                t, occ = _seq_type(p.get("as"))
                name = "p_" + _ident(p.get("name"))
                lines.append(f"    {name} = R.convert_param({name}, {t!r}, {occ!r})" if t else f"    {name} = {name}")
                scope_vars[p.get("name")] = name
            result = None
            for child in f:
                if not isinstance(child.tag, str):
                    continue
                if child.tag == _X + "param":
                    continue
                self.with_ns(child)
                self.compiler.scope = Scope(dict(scope_vars), has_context=False, has_current=False)
                if child.tag == _X + "variable" and child.get("select") is not None:
                    v = "v_" + _ident(child.get("name"))
                    code = self.compiler.seq(self.parse(child.get("select"), child))
                    lines.append(f"    {v} = R.Lazy(lambda: {code})")
                    if _read_by_variables(child.get("name"), f):
                        # As Saxon does, observed: a function's variable read by another variable
                        # is evaluated at its declaration, one read only by the result where it
                        # is read. BR-FR's date check aborts on a blank date ($year, read by
                        # $isLeapYear) but not on "2026-01-05" ($day, read by the result only,
                        # after $isFormatValid is false): tests/validators/test_native.py checks both shapes
                        lines.append(f"    {v}()")
                    scope_vars[child.get("name")] = f"{v}()"
                elif child.tag == _X + "sequence" and child.get("select") is not None and result is None:
                    result = self.compiler.seq(self.parse(child.get("select"), child))
                else:
                    raise Unsupported(f"<{etree.QName(child).localname}> in a function")
            if result is None:
                raise Unsupported("a function without xsl:sequence")
            t, occ = _seq_type(f.get("as"))
            lines.append(f"    return R.convert_param({result}, {t!r}, {occ!r})" if t else f"    return {result}")
        return "\n".join(lines)

    # ---- one mode
    def _mode(self, index: int, mode: str) -> str | None:
        """The mode's spec: a list of (priority, position, alternatives, rule function); None -> Saxon."""
        templates = [t for t in self.root.iterchildren(_X + "template") if t.get("mode") == mode]
        rules = []
        defaults = 0
        for pos, t in enumerate(templates):
            match, priority = t.get("match"), t.get("priority")
            if (match, priority) == ("text()", "-1") and len(t) == 0:
                defaults += 1
                continue
            if (match, priority) == ("@*|node()", "-2"):
                applied = [c for c in t if isinstance(c.tag, str)]
                if len(applied) == 1 and applied[0].tag == _X + "apply-templates":
                    self._select[mode] = _walk(applied[0].get("select") or "node()")
                defaults += 1
                continue
            rules.append((pos, t))
        if defaults != 2 or self._select.get(mode) not in ("@*|*", "*"):
            self._all_to_saxon(templates, f"mode {mode}: not the skeleton's default templates")
            return None
        patterns = []
        for pos, t in rules:
            try:
                patterns.append((pos, t, self._pattern(t), float(t.get("priority"))))
            except (Unsupported, TypeError, ValueError) as e:
                self._all_to_saxon(templates, f"mode {mode}: match {t.get('match')!r}: {e}")
                return None
        specs = []
        for pos, t, alts, priority in patterns:
            fn = f"r_{index}_{pos}"
            try:
                self._rule(fn, t, mode)
            except Unsupported as e:
                self._all_to_saxon([t], f"rule {t.get('match')!r}: {e}")
                self.lines.append(f"def {fn}(c, D):\n    return None")
            specs.append(f"({priority!r}, {pos}, [{', '.join(alts)}], {fn})")
            self.lines.append(f"{fn}.stops = {self._stops.get(fn, False)}")
        visit_attributes = self._select[mode] == "@*|*"
        return "([" + ", ".join(specs) + f"], {visit_attributes})"

    def _all_to_saxon(self, templates: list[Any], reason: str) -> None:
        for t in templates:
            for el in t.iter(_S + "failed-assert", _S + "successful-report"):
                uid = self._uid(el)
                if uid not in {a.uid for a in self.asserts}:
                    self.asserts.append(self._assert_record(el, uid, False, reason))

    def _uid(self, el: Any) -> str:
        if not hasattr(self, "_uids"):
            self._uids: dict[Any, str] = {}
            ordinal = 0
            for a in self.root.iter(_S + "failed-assert", _S + "successful-report"):
                ordinal += 1
                self._uids[a] = f"{_literal_attribute(a, 'id') or 'SVRL-' + etree.QName(a).localname}#{ordinal}"
        return self._uids[el]

    def _assert_record(self, el: Any, uid: str, native: bool, reason: str | None) -> Assert:
        return Assert(
            uid,
            uid.rsplit("#", 1)[0],
            _literal_attribute(el, "flag"),
            etree.QName(el).localname,
            el.get("test") or "",
            native,
            reason,
        )

    # ---- patterns
    def _pattern(self, t: Any) -> list[str]:
        self.with_ns(t)
        node = self.parse(t.get("match"), t)
        return self.patterns.compile(node)

    # ---- one rule
    def _rule(self, fn: str, t: Any, mode: str) -> None:
        body = [c for c in t if isinstance(c.tag, str)]
        descends = bool(body) and body[-1].tag == _X + "apply-templates"
        if descends:
            if _walk(body[-1].get("select") or "node()") != self._select[mode]:
                raise Unsupported(f"a rule that does not end by applying templates to {self._select[mode]}")
            if body[-1].get("mode") != mode:
                raise Unsupported("a rule that applies another mode")
            body = body[:-1]
        elif any(c.tag == _X + "apply-templates" for c in body):
            raise Unsupported("a rule that applies templates before its end")
        self._stops[fn] = not descends
        lines = [f"def {fn}(c, D):", "    cur = c"]
        scope_vars: dict[str, str] = {}
        records: list[Assert] = []
        natives: list[Any] = []
        guarded = False
        present_at = depth = 0
        runs: list[tuple[int, int, list[str]]] = []  # the guarded asserts: their lines, their keys
        for child in body:
            tag = child.tag
            if tag == _S + "fired-rule":
                continue
            self.with_ns(child)
            if tag == _X + "variable":
                if child.get("select") is None:
                    raise Unsupported("a let with content")
                self.compiler.scope = Scope(dict(scope_vars))
                v = "v_" + _ident(child.get("name"))
                try:
                    code = self.compiler.seq(self.parse(child.get("select"), child))
                except Unsupported:
                    scope_vars.pop(child.get("name"), None)  # the asserts that use it run on Saxon
                    continue
                lines.append(f"    {v} = R.Lazy(lambda: {code})")
                scope_vars[child.get("name")] = f"{v}()"
                continue
            found = _assert_of(child)
            if found is None:
                raise Unsupported(f"<{etree.QName(child).localname}> in a rule")
            test, el = found
            uid = self._uid(el)
            try:
                self.compiler.scope = Scope(dict(scope_vars))
                ast = self.parse(test, child)
                ok = self.compiler.bool_(ast)
                retry = self.compiler.tolerant_bool(ast) if _has_boolean_operator(ast) else None
                location = self._location(el, scope_vars)
                message = self._message(el, scope_vars)
            except Unsupported as e:
                records.append(self._assert_record(el, uid, False, str(e)))
                continue
            index = len(self.asserts) + len(records)
            records.append(self._assert_record(el, uid, True, None))
            natives.append(child)
            is_report = el.tag == _S + "successful-report"
            guard = guard_keys(ast) if not is_report else None
            start = len(lines)
            if guard:
                if not guarded:
                    present_at = len(lines)
                    lines.append("")
                    guarded = True
                    start += 1
                depth = max([depth, *map(key_depth, guard)])
                condition = " or ".join(f"{k!r} in present" for k in guard)
                first = f"ok = {ok} if ({condition}) else True"
            else:
                first = f"ok = {ok}"
            if retry is None:
                lines.append(f"    {first}")
            else:  # an error: evaluate again, letting and/or decide on the operand that does not raise
                lines += [f"    try:\n        {first}", f"    except R.XPathError:\n        ok = {retry}"]
            lines.append(f"    if D.record: D.seen({index}, {'not ok' if is_report else 'ok'})")
            cond = "ok" if is_report else "not ok"
            lines.append(f"    if {cond}: D.fail({index}, {location}, lambda: {message})")
            if guard:
                runs.append((start, len(lines), guard))
        if guarded:  # the name paths under c, as deep as the deepest key
            lines[present_at] = f"    present = D.tags(c, {depth})"
            lines = skip_absent(lines, runs, self.compiler.const)
        if len(lines) == 2:
            lines.append("    return None")
        self.lines.append("\n".join(lines))
        self.asserts.extend(records)
        self.native_elements.extend(natives)

    def _location(self, el: Any, scope_vars: dict[str, str]) -> str:
        for a in el.iterchildren(_X + "attribute"):
            if a.get("name") != "location":
                continue
            inner = [c for c in a if isinstance(c.tag, str)]
            if len(inner) == 1 and inner[0].tag == _X + "apply-templates" and inner[0].get("mode") == FULL_PATH_MODE:
                select = inner[0].get("select") or "."
                if select == ".":
                    return "c"
                self.compiler.scope = Scope(dict(scope_vars))
                return f"R.first_node({self.compiler.seq(self.parse(select, inner[0]))}, c)"
            raise Unsupported("a location that is not a full path")
        location = el.get("location")
        if location is None:
            return "None"
        raise Unsupported("a literal location")

    def _message(self, el: Any, scope_vars: dict[str, str]) -> str:
        parts: list[str] = []
        texts = list(el.iterchildren(_S + "text"))
        for i, t in enumerate(texts):
            if i:
                parts.append("' '")
            if t.text and (t.text.strip() or len(t) == 0):
                parts.append(repr(t.text))
            for c in t:
                # whitespace-only text between instructions is stripped from a stylesheet (XSLT 4.2)
                tail = c.tail if c.tail and c.tail.strip() else None
                if not isinstance(c.tag, str):
                    if tail:
                        parts.append(repr(tail))
                    continue
                if c.tag == _X + "value-of" and c.get("select"):
                    self.with_ns(c)
                    self.compiler.scope = Scope(dict(scope_vars))
                    parts.append(f"R.value_of({self.compiler.seq(self.parse(c.get('select'), c))})")
                elif c.tag == _X + "text":
                    parts.append(repr(c.text or ""))
                else:
                    raise Unsupported(f"<{etree.QName(c).localname}> in a message")
                if tail:
                    parts.append(repr(tail))
        return "R.normalize(" + (" + ".join(parts) if parts else "''") + ")"

    # ---- the Saxon copy
    def _reduced(self) -> bytes | None:
        if all(a.native for a in self.asserts):
            return None
        copy = copy_module.deepcopy(self.root)
        native = set(self.native_elements)
        doomed = [c for o, c in zip(self.root.iter(), copy.iter(), strict=True) if o in native]
        for e in doomed:
            e.getparent().remove(e)
        base = self.path.resolve().parent.as_uri() + "/"
        text = etree.tostring(copy, xml_declaration=True, encoding="UTF-8")
        return re.sub(rb"document\('(?![a-z]+:)", b"document('" + base.encode(), text)


def _assert_of(el: Any) -> tuple[str, Any] | None:
    """(test, svrl element) of an assert (choose/when/otherwise) or a report (if)."""
    if el.tag == _X + "choose":
        kids = [c for c in el if isinstance(c.tag, str)]
        if len(kids) == 2 and kids[0].tag == _X + "when" and kids[1].tag == _X + "otherwise":
            when, other = kids
            if len([c for c in when if isinstance(c.tag, str)]) == 0:
                inner = [c for c in other if isinstance(c.tag, str)]
                if len(inner) == 1 and inner[0].tag == _S + "failed-assert":
                    return when.get("test"), inner[0]
        return None
    if el.tag == _X + "if":
        inner = [c for c in el if isinstance(c.tag, str)]
        if len(inner) == 1 and inner[0].tag == _S + "successful-report":
            return el.get("test"), inner[0]
    return None


def _literal_attribute(el: Any, name: str) -> str | None:
    for a in el.iterchildren(_X + "attribute"):
        if a.get("name") == name:
            if len(a):
                return None
            return (a.text or "").strip()
    value = el.get(name)
    return value.strip() if value is not None else None


def _seq_type(as_: str | None) -> tuple[str | None, str]:
    if not as_:
        return None, ""
    m = re.fullmatch(r"\s*(element|node|item)\(\)\s*([?*+]?)\s*", as_)
    if m:
        return m.group(1) + "()", m.group(2)
    m = re.fullmatch(r"\s*xs:(\w+)\s*([?*+]?)\s*", as_)
    if not m:
        raise Unsupported(f"type {as_}")
    return m.group(1), m.group(2)


def _ident(name: str) -> str:
    return re.sub(r"\W", "_", name)


def _read_by_variables(name: str, function: Any) -> bool:
    """Is ``$name`` read by another xsl:variable of `function`?"""
    pattern = re.compile(r"\$" + re.escape(name) + r"(?![\w.\-])")
    return any(
        pattern.search(v.get("select") or "") for v in function.iterchildren(_X + "variable") if v.get("name") != name
    )


def _has_boolean_operator(node: Any) -> bool:
    if not isinstance(node, tuple) or not node:
        return False
    if node[0] in ("and", "or"):
        return True
    return any(_has_boolean_operator(x) for x in node[1:] if isinstance(x, (tuple, list))) or any(
        _has_boolean_operator(y) for x in node[1:] if isinstance(x, list) for y in x
    )
