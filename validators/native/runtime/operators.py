"""Comparisons (general and value) and arithmetic, with XPath 2.0's promotions and Saxon's decimal division.

>>> gcmp("=", [U("1.0")], [1])
True
>>> arith("div", [1], [3])
[Decimal('0.333333333333333333')]
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from validators.native.runtime.casts import to_boolean, to_date, to_double
from validators.native.runtime.nodes import ELEMENT_TYPE, atom1, atomize, string_value
from validators.native.runtime.values import CTX, DIVIDE_SCALE, Date, U, XPathError, is_num, type_name


def _prepare_general(a: Any, b: Any) -> tuple[Any, Any]:
    ua, ub = isinstance(a, U), isinstance(b, U)
    if ua or ub:
        if ua and ub:
            return str(a), str(b)
        other, untyped = (b, a) if ua else (a, b)
        if isinstance(other, str):
            conv: Any = str(untyped)
        elif is_num(other):
            conv = to_double(untyped)
        elif isinstance(other, bool):
            conv = to_boolean(untyped)
        elif isinstance(other, Date):
            conv = to_date(untyped)
        else:
            conv = str(untyped)
        return (conv, other) if ua else (other, conv)
    return a, b


def compare(op: str, a: Any, b: Any) -> bool:
    if is_num(a) and is_num(b):
        if isinstance(a, float) or isinstance(b, float):
            a, b = float(a), float(b)
    elif isinstance(a, bool) and isinstance(b, bool):
        pass
    elif isinstance(a, str) and isinstance(b, str):
        a, b = str(a), str(b)
    elif isinstance(a, Date) and isinstance(b, Date):
        if op in ("=", "!="):
            return (a == b) == (op == "=")
    else:
        raise XPathError("XPTY0004", f"cannot compare {type_name(a)} with {type_name(b)}")
    if op == "=":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def gcmp(op: str, left: Sequence[Any], right: Sequence[Any]) -> bool:
    """General comparison (=, !=, <, <=, >, >=): true when some pair compares true."""
    if not left or not right:
        return False
    la, ra = atomize(left), atomize(right)
    for a in la:
        for b in ra:
            x, y = _prepare_general(a, b)
            if compare(op, x, y):
                return True
    return False


_STR_OPS = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def gcmp_str(op: str, seq: Sequence[Any], s: Any, flip: bool = False) -> bool:
    """``seq op s`` (``s op seq`` when `flip`) with `s` one xs:string: `gcmp`'s verdict without its
    atomisation when the items are strings, untyped values or elements (compared as strings); the
    first other item hands the whole comparison to `gcmp` (the same order, so the same errors)."""
    if type(s) is not str:
        return gcmp(op, [s], seq) if flip else gcmp(op, seq, [s])
    f = _STR_OPS[op]
    for x in seq:
        t = type(x)
        if t is str or t is U:
            v = str(x)
        elif t is ELEMENT_TYPE:
            v = (x.text or "") if len(x) == 0 else string_value(x)
        else:
            return gcmp(op, [s], seq) if flip else gcmp(op, seq, [s])
        if f(s, v) if flip else f(v, s):
            return True
    return False


_VOPS = {"eq": "=", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def vcmp(op: str, left: Sequence[Any], right: Sequence[Any]) -> list[bool]:
    """Value comparison (eq, ne, lt, ...): untyped operands are strings; empty gives empty."""
    a, b = atom1(left), atom1(right)
    if a is None or b is None:
        return []
    if isinstance(a, U):
        a = str(a)
    if isinstance(b, U):
        b = str(b)
    return [compare(_VOPS[op], a, b)]


# ---- arithmetic -------------------------------------------------------------------


def _num_operand(x: Any) -> Any:
    if isinstance(x, U):
        return to_double(x)
    if isinstance(x, bool) or not is_num(x):
        raise XPathError("XPTY0004", f"arithmetic on {type_name(x)}")
    return x


def arith(op: str, left: Sequence[Any], right: Sequence[Any]) -> list[Any]:
    a, b = atom1(left), atom1(right)
    if a is None or b is None:
        return []
    return [arith1(op, _num_operand(a), _num_operand(b))]


def arith1(op: str, a: Any, b: Any) -> Any:
    if isinstance(a, float) or isinstance(b, float):
        a, b = float(a), float(b)
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "div":
            if b == 0:
                if a == 0 or math.isnan(a):
                    return math.nan
                return math.copysign(math.inf, a) * math.copysign(1, b)
            return a / b
        if op == "mod":
            if b == 0 or math.isinf(a) or math.isnan(a) or math.isnan(b):
                return math.nan
            return math.fmod(a, b)
        if op == "idiv":
            if b == 0:
                raise XPathError("FOAR0001", "integer division by zero")
            if math.isnan(a) or math.isnan(b) or math.isinf(a):
                raise XPathError("FOAR0002", "idiv of NaN or infinity")
            return int(a / b)
    if isinstance(a, int) and isinstance(b, int) and op != "div":
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if b == 0:
            raise XPathError("FOAR0001", "division by zero")
        if op == "idiv":
            q = abs(a) // abs(b)
            return q if (a >= 0) == (b >= 0) else -q
        r = abs(a) % abs(b)
        return r if a >= 0 else -r  # mod: the dividend's sign
    da, db = Decimal(a), Decimal(b)
    if op == "+":
        return CTX.add(da, db)
    if op == "-":
        return CTX.subtract(da, db)
    if op == "*":
        return CTX.multiply(da, db)
    if db == 0:
        raise XPathError("FOAR0001", "decimal division by zero")
    if op == "div":
        scale = max(DIVIDE_SCALE, -int(da.as_tuple().exponent), -int(db.as_tuple().exponent))
        quotient: Decimal = CTX.divide(da, db)
        return quotient.quantize(Decimal(1).scaleb(-scale), rounding=decimal.ROUND_HALF_DOWN, context=CTX)
    if op == "idiv":
        return int(CTX.divide_int(da, db))
    return CTX.remainder(da, db)


def negate(seq: Sequence[Any]) -> list[Any]:
    a = atom1(seq)
    if a is None:
        return []
    a = _num_operand(a)
    return [-a]
