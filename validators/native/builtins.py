"""The XPath functions the compiler knows: one entry per (name, arity) in `BUILTINS`.

An entry takes the compiler and the call's arguments and returns the call's
code and kind (see `validators.native.codegen`). Most call a ``fn_*`` of the
runtime on the arguments' sequences; the cheap ones are inlined (``count``,
``exists``, ``contains``...). Teaching the compiler a function is one entry
here (and its ``fn_*`` in `validators.native.runtime.functions`).
"""

from __future__ import annotations

from collections.abc import Callable

from validators.native.scope import Emitter
from validators.native.xpath import Node, Unsupported

Emit = Callable[[Emitter, list[Node]], tuple[str, str]]
VARIADIC = -1  # the arity of an entry that takes any number of arguments (from 2)


def builtin(c: Emitter, local: str, args: list[Node]) -> tuple[str, str]:
    """The code of a call of the function ``fn:{local}`` with `args`; `Unsupported` if unknown."""
    emit = BUILTINS.get((local, len(args)))
    if emit is None and len(args) >= 2:
        emit = BUILTINS.get((local, VARIADIC))
    if emit is None:
        raise Unsupported(f"function {local}#{len(args)}")
    return emit(c, args)


def _calls(fn: str, kind: str = "seq") -> Emit:
    """``fn(arg sequences...)``."""
    return lambda c, args: (f"{fn}({', '.join(c.seq(a) for a in args)})", kind)


def _in_context(code: str, kind: str) -> Emit:
    """Code reading the context item ``c`` (a function called without its argument)."""

    def emit(c: Emitter, args: list[Node]) -> tuple[str, str]:
        c.need_context()
        return code, kind

    return emit


def _regex(fn: str, kind: str, flags_at: int) -> Emit:
    """A regex function: its literal pattern is translated now (`check_regex`)."""

    def emit(c: Emitter, args: list[Node]) -> tuple[str, str]:
        check_regex(args[1], args[flags_at] if len(args) > flags_at else None)
        return _calls(fn, kind)(c, args)

    return emit


def _node_name(fn: str) -> dict[tuple[str, int], Emit]:
    return {
        (fn, 0): _in_context(f"R.fn_{fn.replace('-', '_')}(c)", "str"),
        (fn, 1): lambda c, a: (f"R.fn_{fn.replace('-', '_')}(None, {c.seq(a[0])})", "str"),
    }


def _current(c: Emitter, args: list[Node]) -> tuple[str, str]:
    if not c.scope.has_current:
        raise Unsupported("current() outside a rule")
    return "[cur]", "seq"


def _focus(name: str, code: str) -> Emit:
    def emit(c: Emitter, args: list[Node]) -> tuple[str, str]:
        if not c.scope.has_position:
            raise Unsupported(f"{name}() outside a predicate")
        return code, "int"

    return emit


def _document(c: Emitter, args: list[Node]) -> tuple[str, str]:
    if args[0][0] == "lit" and isinstance(args[0][1], str):
        return f"D.document({args[0][1]!r})", "seq"
    raise Unsupported("function document#1")


def _two_strings(fmt: str) -> Emit:
    def emit(c: Emitter, args: list[Node]) -> tuple[str, str]:
        a = c.str_(args[0])
        return fmt.format(a=a, b=c.str_(args[1])), "bool"

    return emit


BUILTINS: dict[tuple[str, int], Emit] = {
    # numbers and sequences
    ("sum", 1): _calls("R.fn_sum"),
    ("sum", 2): _calls("R.fn_sum"),
    ("round", 1): _calls("R.fn_round"),
    ("abs", 1): _calls("R.fn_abs"),
    ("floor", 1): _calls("R.fn_floor"),
    ("ceiling", 1): _calls("R.fn_ceiling"),
    ("number", 1): _calls("R.fn_number"),
    ("distinct-values", 1): _calls("R.fn_distinct_values"),
    ("max", 1): _calls("R.fn_max"),
    ("min", 1): _calls("R.fn_min"),
    ("count", 1): lambda c, a: (f"len({c.seq(a[0])})", "int"),
    ("exists", 1): lambda c, a: (f"(len({c.seq(a[0])}) > 0)", "bool"),
    ("empty", 1): lambda c, a: (f"(len({c.seq(a[0])}) == 0)", "bool"),
    # booleans
    ("not", 1): lambda c, a: (f"(not {c.bool_(a[0])})", "bool"),
    ("boolean", 1): lambda c, a: (c.bool_(a[0]), "bool"),
    ("true", 0): lambda c, a: ("True", "bool"),
    ("false", 0): lambda c, a: ("False", "bool"),
    # strings
    ("normalize-space", 0): _in_context("R.normalize(R.string_value(c))", "str"),
    ("normalize-space", 1): lambda c, a: (f"R.normalize({c.str_(a[0])})", "str"),
    ("string", 0): _in_context("R.fn_string([c])", "str"),
    ("string", 1): _calls("R.fn_string", "str"),
    ("string-length", 0): _in_context("len(R.string_value(c))", "int"),
    ("string-length", 1): lambda c, a: (f"len({c.str_(a[0])})", "int"),
    ("upper-case", 1): lambda c, a: (f"{c.str_(a[0])}.upper()", "str"),
    ("lower-case", 1): lambda c, a: (f"{c.str_(a[0])}.lower()", "str"),
    ("contains", 2): _two_strings("({b} in {a})"),
    ("starts-with", 2): _two_strings("{a}.startswith({b})"),
    ("ends-with", 2): _two_strings("{a}.endswith({b})"),
    ("substring-before", 2): _calls("R.fn_substring_before", "str"),
    ("substring-after", 2): _calls("R.fn_substring_after", "str"),
    ("substring", 2): _calls("R.fn_substring", "str"),
    ("substring", 3): _calls("R.fn_substring", "str"),
    ("translate", 3): _calls("R.fn_translate", "str"),
    ("string-join", 2): _calls("R.fn_string_join", "str"),
    ("concat", VARIADIC): _calls("R.fn_concat", "str"),
    # regular expressions
    ("matches", 2): _regex("R.fn_matches", "bool", 2),
    ("matches", 3): _regex("R.fn_matches", "bool", 2),
    ("tokenize", 2): _regex("R.fn_tokenize", "seq", 2),
    ("tokenize", 3): _regex("R.fn_tokenize", "seq", 2),
    ("replace", 3): _regex("R.fn_replace", "str", 3),
    ("replace", 4): _regex("R.fn_replace", "str", 3),
    # nodes, focus, documents
    **_node_name("name"),
    **_node_name("local-name"),
    **_node_name("namespace-uri"),
    ("current", 0): _current,
    ("position", 0): _focus("position", "pos"),
    ("last", 0): _focus("last", "size"),
    ("document-uri", 1): lambda c, a: (f"(lambda _d: [])({c.seq(a[0])})", "seq"),
    ("document", 1): _document,
}


def check_regex(pattern: Node, flags: Node | None) -> None:
    """Literal patterns are translated now: one the translator refuses makes the rule unsupported."""
    if pattern[0] != "lit" or not isinstance(pattern[1], str):
        raise Unsupported("a regular expression that is not a literal")
    if flags is not None and (flags[0] != "lit" or not isinstance(flags[1], str)):
        raise Unsupported("regular expression flags that are not a literal")
    from validators.native import runtime

    try:
        runtime.regex(pattern[1], flags[1] if flags is not None else "")
    except runtime.UnsupportedRegex as e:
        raise Unsupported(f"regular expression: {e}") from e
    except runtime.XPathError:
        pass  # a static error Saxon would report at compile time: left to the official run
