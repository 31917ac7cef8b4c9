"""The XPath regular expression dialect, translated to Python's (`validators.native.runtime.regex`).

What means the same in both dialects is translated; what does not is refused
(`UnsupportedRegex`: the compiler then leaves the assert to Saxon); what is
invalid in XPath is a dynamic error, as in Saxon. A sample of patterns is
also run on Saxon itself.
"""

from __future__ import annotations

import pytest

from tests.support.xpath_oracle import native, same, saxon
from validators.native.runtime import XPathError
from validators.native.runtime.regex import UnsupportedRegex, fn_matches, fn_replace, fn_tokenize, regex


def test_backslash_s_is_xml_whitespace_only() -> None:
    rx = regex(r"^\s+$")
    assert rx.search(" \t\r\n") is not None
    assert rx.search("\u00a0") is None and rx.search("\u2003") is None  # Python's \s would take them
    assert regex(r"^[\sa]+$").search("a \n") is not None
    assert regex(r"^\S+$").search("a\u00a0b") is not None


@pytest.mark.parametrize(
    "pattern",
    [r"\p{L}", r"\P{Lu}", r"\w", r"\W", r"\i", r"\c", r"[\S]", "[a-z-[aeiou]]"],
)
def test_what_means_something_else_in_python_is_refused(pattern: str) -> None:
    with pytest.raises(UnsupportedRegex):
        regex(pattern)


def test_dollar_is_the_end_of_the_string_unless_multiline() -> None:
    assert regex("a$").search("a\n") is None  # Python's $ also matches before a final newline
    assert regex("a$").search("a") is not None
    assert regex("a$", "m").search("a\nb") is not None


def test_flags() -> None:
    assert regex("ABC", "i").search("xabcx") is not None
    assert regex("a.b", "s").search("a\nb") is not None and regex("a.b").search("a\nb") is None
    assert regex("a b c", "x").search("abc") is not None
    with pytest.raises(XPathError, match="FORX0001"):
        regex("a", "z")


@pytest.mark.parametrize("pattern", ["a\\", r"\q", "(?i)a", "(a", "a{2,1}"])
def test_invalid_patterns_are_dynamic_errors(pattern: str) -> None:
    with pytest.raises(XPathError, match="FORX0002"):
        regex(pattern)


def test_translations_are_cached() -> None:
    assert regex("[0-9]{4}") is regex("[0-9]{4}")
    assert regex("[0-9]{4}") is not regex("[0-9]{4}", "i")


def test_matches_tokenize_replace() -> None:
    assert fn_matches(["FR123"], ["^[A-Z]{2}[0-9]+$"]) is True
    assert fn_tokenize(["a, b,c"], [",\\s*"]) == ["a", "b", "c"]
    assert fn_tokenize([""], [","]) == []
    assert fn_tokenize(["a1b22c"], ["([0-9])+"]) == ["a", "b", "c"]  # groups do not add tokens
    assert fn_replace(["2024-01-31"], ["(\\d+)-(\\d+)-(\\d+)"], ["$3/$2/$1"]) == "31/01/2024"
    assert fn_replace(["a.b"], ["\\."], ["\\$"]) == "a$b"
    with pytest.raises(XPathError, match="FORX0003"):
        fn_tokenize(["abc"], ["x*"])
    with pytest.raises(XPathError, match="FORX0003"):
        fn_replace(["abc"], ["x?"], ["y"])
    with pytest.raises(XPathError, match="FORX0004"):
        fn_replace(["abc"], ["b"], ["$"])


@pytest.mark.parametrize(
    "expr",
    [
        "matches('12.50', '^[0-9]+(\\.[0-9]{1,2})?$')",
        "matches('a\u00a0', '^a\\s$')",
        "matches('a\n', 'a$')",
        "matches('A\nb', '^b$', 'm')",
        "matches('ABC', 'abc', 'i')",
        "matches('a b', 'a b', 'x')",
        "matches('FR 12', '^[A-Z]{2}[^0-9]')",
        "matches('x[y', '[\\[]')",
        "tokenize('a,b,,c', ',')",
        "tokenize(' a  b ', '\\s+')",
        "replace('2024-01-31', '(\\d+)-(\\d+)-(\\d+)', '$3/$2/$1')",
        "replace('abc', 'b', '\\$')",
        "replace('abc', 'x*', 'y')",
        "matches('a', 'a', 'z')",
        "matches('a', '(?i)a')",
    ],
)
def test_as_saxon_runs_them(expr: str) -> None:
    expected, got = saxon(expr), native(expr)
    assert same(expected, got), f"{expr}: Saxon {expected}, native {got}"
