"""XPath regular expressions translated to Python's, and the functions that use them.

The translation keeps what means the same in both dialects; what does not
(``\\p{..}``, ``\\w``, class subtraction...) raises `UnsupportedRegex`, so the
compiler leaves the assert to Saxon. ``\\s`` is XML whitespace only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from validators.native.runtime.casts import str_arg
from validators.native.runtime.values import XPathError

_REGEX_CACHE: dict[tuple[str, str], re.Pattern[str]] = {}


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
