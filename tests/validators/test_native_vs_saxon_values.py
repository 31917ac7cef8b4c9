"""The native runtime's casts, comparisons and ``round`` against Saxon, on generated values.

Hypothesis builds XPath expressions over integers, decimals, doubles (NaN,
INF, -INF, -0 included), strings and untyped values that look (or almost
look) like numbers, and booleans; each expression is evaluated by Saxon and
by the native engine (`tests.support.xpath_oracle`): both must give the same
typed values, or both the same dynamic error.
"""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.support.xpath_oracle import native, same, saxon

EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TYPES = ["integer", "decimal", "double", "boolean", "string", "untypedAtomic"]
GENERAL = ["=", "!=", "<", "<=", ">", ">="]
VALUE = ["eq", "ne", "lt", "le", "gt", "ge"]


def _double_lexical(f: float) -> str:
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "INF" if f > 0 else "-INF"
    return repr(f)


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


# doubles whose exact decimal value has at most ~150 significant digits (see the xfail below for more)
_DOUBLES = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 0.5, -0.5, 1.5, -2.5, 0.49999999999999994, 1e16]),
    st.floats(min_value=-1e20, max_value=1e20, allow_subnormal=False).filter(lambda f: f == 0 or abs(f) > 1e-20),
)
_DECIMALS = st.decimals(min_value=Decimal("-1e20"), max_value=Decimal("1e20"), allow_nan=False, places=6)
_NUMBERISH = st.builds(
    lambda ws1, sign, whole, dot, frac, exp, ws2: ws1 + sign + whole + dot + frac + exp + ws2,
    st.sampled_from(["", " ", "\t", "\u00a0"]),
    st.sampled_from(["", "-", "+"]),
    st.sampled_from(["", "0", "1", "12", "007", "123456789012345678901234567890"]),
    st.sampled_from(["", "."]),
    st.sampled_from(["", "5", "50", "25", "999"]),
    st.sampled_from(["", "e3", "E-2", "e", "e+1"]),
    st.sampled_from(["", " ", "\n"]),
) | st.sampled_from(["INF", "-INF", "+INF", "NaN", "nan", "true", "false", "1", "0", " true ", "abc", ""])


def _atoms(doubles: st.SearchStrategy[float]) -> st.SearchStrategy[str]:
    """Atomic operands, as XPath source."""
    return st.one_of(
        st.integers(min_value=-(10**20), max_value=10**20).map(lambda i: f"xs:integer('{i}')"),
        _DECIMALS.map(lambda d: f"xs:decimal('{format(d, 'f')}')"),
        doubles.map(lambda f: f"xs:double('{_double_lexical(f)}')"),
        _NUMBERISH.map(_quote),
        _NUMBERISH.map(lambda s: f"xs:untypedAtomic({_quote(s)})"),
        st.sampled_from(["true()", "false()"]),
    )


ATOMS = _atoms(_DOUBLES)
# what a double is written as differs beyond 1e6 (see the xfail below): casts to strings take smaller ones
ATOMS_WRITTEN_ALIKE = _atoms(_DOUBLES.filter(lambda f: not math.isfinite(f) or abs(f) < 1e6))


def _check(expr: str) -> None:
    expected, got = saxon(expr), native(expr)
    assert same(expected, got), f"{expr}: Saxon {expected}, native {got}"


@EXAMPLES
@given(st.data(), st.sampled_from(TYPES), st.booleans())
def test_casts_agree_with_saxon(data: st.DataObject, type_local: str, castable: bool) -> None:
    atom = data.draw(ATOMS_WRITTEN_ALIKE if type_local in ("string", "untypedAtomic") else ATOMS)
    _check(f"{atom} {'castable' if castable else 'cast'} as xs:{type_local}?")


@EXAMPLES
@given(ATOMS, st.sampled_from(GENERAL + VALUE), ATOMS)
def test_comparisons_agree_with_saxon(left: str, op: str, right: str) -> None:
    nan = "xs:double('NaN')"
    assume(
        not ((left == nan and "untypedAtomic" in right) or (right == nan and "untypedAtomic" in left))
    )  # xfail below
    # an untyped 'NaN' against a number: Saxon and the native engine differ (an xfail in test_native_runtime_functions)
    assume("xs:untypedAtomic('NaN')" not in (left, right))
    _check(f"{left} {op} {right}")


@EXAMPLES
@given(st.one_of(ATOMS, ATOMS.map(lambda a: f"xs:double({a})"), ATOMS.map(lambda a: f"xs:decimal({a})")))
def test_round_agrees_with_saxon(operand: str) -> None:
    _check(f"round({operand})")


# Known differences. Saxon compares NaN with an untyped value that is not a number without casting it
# (false, or true for !=); the native engine casts it and aborts the document (fails closed).


@pytest.mark.xfail(strict=True, reason="Saxon does not cast the untyped operand of a comparison with NaN")
def test_nan_against_an_untyped_value_that_is_not_a_number() -> None:
    _check("number('x') = xs:untypedAtomic('abc')")


# How values are written (messages only, never a verdict)


@pytest.mark.xfail(strict=True, reason="decimal strings keep 200 significant digits; Saxon's are exact")
def test_a_decimal_of_more_than_200_digits_is_written_whole() -> None:
    _check("xs:double('1e300') cast as xs:decimal")


@pytest.mark.xfail(strict=True, reason="Saxon writes some doubles in E notation with more digits than needed")
def test_a_large_double_is_written_with_saxons_digits() -> None:
    _check("xs:double('3.664230767772946e+16') cast as xs:string")
