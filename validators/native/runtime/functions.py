"""The XPath functions generated code calls (those the compiler does not inline), regex ones aside.

>>> fn_round([Decimal("-2.5")]), fn_round([2.5]), fn_round([U("0.5")])
([Decimal('-2')], [3.0], [1.0])
>>> fn_normalize_space(["\\u00a0 a  b "])
['\\xa0 a b']
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from validators.native.runtime.casts import normalize, str_arg, to_double, to_string
from validators.native.runtime.nodes import atom1, atomize, is_node, local_name, namespace_uri, node_name, string_value
from validators.native.runtime.operators import arith1, compare
from validators.native.runtime.values import CTX, U, XPathError, is_num, type_name


def _sum_operand(x: Any) -> Any:
    if isinstance(x, U):
        return to_double(x)
    if isinstance(x, bool) or not is_num(x):
        raise XPathError("FORG0006", f"sum of {type_name(x)}")
    return x


def fn_sum(seq: Sequence[Any], zero: Sequence[Any] | None = None) -> list[Any]:
    values = atomize(seq)
    if not values:
        return list(zero) if zero is not None else [0]
    total = _sum_operand(values[0])
    for v in values[1:]:
        total = arith1("+", total, _sum_operand(v))
    return [total]


def _minmax(seq: Sequence[Any], greater: bool) -> list[Any]:
    values = [to_double(v) if isinstance(v, U) else v for v in atomize(seq)]
    if not values:
        return []
    if any(isinstance(v, float) for v in values) and all(is_num(v) for v in values):
        values = [float(v) for v in values]
        if any(math.isnan(v) for v in values):
            return [math.nan]
    best = values[0]
    for v in values[1:]:
        if compare(">" if greater else "<", v, best):
            best = v
    return [best]


def fn_max(seq: Sequence[Any]) -> list[Any]:
    return _minmax(seq, True)


def fn_min(seq: Sequence[Any]) -> list[Any]:
    return _minmax(seq, False)


def _numeric_arg(seq: Sequence[Any]) -> Any:
    x = atom1(seq)
    if x is None:
        return None
    if isinstance(x, U):
        return to_double(x)
    if isinstance(x, bool) or not is_num(x):
        raise XPathError("XPTY0004", f"a numeric argument expected, got {type_name(x)}")
    return x


def fn_round(seq: Sequence[Any]) -> list[Any]:
    x = _numeric_arg(seq)
    if x is None:
        return []
    if isinstance(x, int):
        return [x]
    if isinstance(x, Decimal):
        return [CTX.add(x, Decimal("0.5")).to_integral_value(rounding=decimal.ROUND_FLOOR)]
    if math.isnan(x) or math.isinf(x) or x == 0:
        return [x]
    if -0.5 <= x < 0:
        return [-0.0]
    f = math.floor(x)
    return [float(f + 1) if x - f >= 0.5 else float(f)]


def fn_abs(seq: Sequence[Any]) -> list[Any]:
    x = _numeric_arg(seq)
    return [] if x is None else [abs(x)]


def fn_floor(seq: Sequence[Any]) -> list[Any]:
    x = _numeric_arg(seq)
    if x is None:
        return []
    if isinstance(x, float):
        return [x if math.isnan(x) or math.isinf(x) else float(math.floor(x))]
    if isinstance(x, Decimal):
        return [x.to_integral_value(rounding=decimal.ROUND_FLOOR)]
    return [x]


def fn_ceiling(seq: Sequence[Any]) -> list[Any]:
    x = _numeric_arg(seq)
    if x is None:
        return []
    if isinstance(x, float):
        return [x if math.isnan(x) or math.isinf(x) else float(math.ceil(x))]
    if isinstance(x, Decimal):
        return [x.to_integral_value(rounding=decimal.ROUND_CEILING)]
    return [x]


def fn_number(seq: Sequence[Any]) -> list[float]:
    x = atom1(seq)
    if x is None:
        return [math.nan]
    try:
        return [to_double(x)]
    except XPathError:
        return [math.nan]


def fn_string(seq: Sequence[Any]) -> str:
    if not seq:
        return ""
    if len(seq) > 1:
        raise XPathError("XPTY0004", "string() of a sequence of several items")
    x = seq[0]
    return string_value(x) if is_node(x) else to_string(x)


def fn_normalize_space(seq: Sequence[Any]) -> list[str]:
    return [normalize(str_arg(seq))]


def fn_substring(seq: Sequence[Any], start: Sequence[Any], length: Sequence[Any] | None = None) -> str:
    s = str_arg(seq)
    st = _round_double(_double_arg(start))
    if length is None:
        end = math.inf
    else:
        end = st + _round_double(_double_arg(length))
    if math.isnan(st) or math.isnan(end):
        return ""
    out = []
    for i, ch in enumerate(s, start=1):
        if i >= st and i < end:
            out.append(ch)
    return "".join(out)


def _double_arg(seq: Sequence[Any]) -> float:
    x = atom1(seq)
    if x is None:
        raise XPathError("XPTY0004", "an empty sequence where a number is required")
    return to_double(x) if not is_num(x) else float(x)


def _round_double(x: float) -> float:
    if math.isnan(x) or math.isinf(x):
        return x
    f = math.floor(x)
    return float(f + 1) if x - f >= 0.5 else float(f)


def fn_substring_before(a: Sequence[Any], b: Sequence[Any]) -> str:
    s, t = str_arg(a), str_arg(b)
    i = s.find(t)
    return s[:i] if i >= 0 and t else ""


def fn_substring_after(a: Sequence[Any], b: Sequence[Any]) -> str:
    s, t = str_arg(a), str_arg(b)
    if not t:
        return s
    i = s.find(t)
    return s[i + len(t) :] if i >= 0 else ""


def fn_translate(a: Sequence[Any], b: Sequence[Any], c: Sequence[Any]) -> str:
    s, frm, to = str_arg(a), str_arg(b), str_arg(c)
    table: dict[int, int | None] = {}
    for i, ch in enumerate(frm):
        if ord(ch) not in table:
            table[ord(ch)] = ord(to[i]) if i < len(to) else None
    return s.translate(table)


def fn_concat(*args: Sequence[Any]) -> str:
    return "".join(str_arg(a) for a in args)


def fn_string_join(seq: Sequence[Any], sep: Sequence[Any]) -> str:
    return str_arg(sep).join(to_string(x) for x in atomize(seq))


def fn_distinct_values(seq: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    keys: set[Any] = set()
    for x in atomize(seq):
        if isinstance(x, U):
            x = str(x)  # untyped values compare as strings
        if isinstance(x, float) and math.isnan(x):
            key: Any = ("nan",)
        elif is_num(x):
            key = ("n", Decimal(repr(x)) if isinstance(x, float) else Decimal(x))
        elif isinstance(x, str):
            key = ("s", x)
        else:
            key = (type(x).__name__, x)
        if key not in keys:
            keys.add(key)
            out.append(x)
    return out


def _one_node(seq: Sequence[Any] | None, ctx: Any, what: str) -> Any:
    if seq is None:
        if not is_node(ctx):
            raise XPathError("XPTY0004", f"{what}() with no context node")
        return ctx
    if not seq:
        return None
    if len(seq) > 1:
        raise XPathError("XPTY0004", f"{what}() of several nodes")
    if not is_node(seq[0]):
        raise XPathError("XPTY0004", f"{what}() of an atomic value")
    return seq[0]


def fn_name(ctx: Any, seq: Sequence[Any] | None = None) -> str:
    n = _one_node(seq, ctx, "name")
    return "" if n is None else node_name(n)


def fn_local_name(ctx: Any, seq: Sequence[Any] | None = None) -> str:
    n = _one_node(seq, ctx, "local-name")
    return "" if n is None else local_name(n)


def fn_namespace_uri(ctx: Any, seq: Sequence[Any] | None = None) -> str:
    n = _one_node(seq, ctx, "namespace-uri")
    return "" if n is None else namespace_uri(n)
