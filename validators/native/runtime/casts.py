"""Effective boolean values, strings of values, and the casts between atomic types (as Saxon does them)."""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from validators.native.runtime.nodes import ELEMENT_TYPE, atom1, is_node, string_value
from validators.native.runtime.values import CTX, Date, U, XPathError


def ebv(seq: Sequence[Any]) -> bool:
    if not seq:
        return False
    x = seq[0]
    if is_node(x):
        return True
    if len(seq) > 1:
        raise XPathError("FORG0006", "effective boolean value of a sequence of several atomic values")
    return ebv1(x)


def ebv1(x: Any) -> bool:
    if isinstance(x, bool):
        return x
    if isinstance(x, str):
        return len(x) > 0
    if isinstance(x, float):
        return not (x == 0 or math.isnan(x))
    if isinstance(x, (int, Decimal)):
        return x != 0
    if is_node(x):
        return True
    raise XPathError("FORG0006", f"no effective boolean value for {type(x).__name__}")


def to_string(x: Any) -> str:
    """xs:string of one atomic value (or a node's string value)."""
    if isinstance(x, str):
        return str.__str__(x) if type(x) is not str else x
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, Decimal):
        return decimal_string(x)
    if isinstance(x, float):
        return double_string(x)
    if isinstance(x, Date):
        return str(x)
    if is_node(x):
        return string_value(x)
    raise XPathError("XPTY0004", f"cannot make a string of {type(x).__name__}")


def decimal_string(d: Decimal) -> str:
    if d == 0:
        return "0"
    text = format(d.normalize(CTX), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def double_string(f: float) -> str:
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "INF" if f > 0 else "-INF"
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    if 1e-6 <= abs(f) < 1e6:
        text = repr(f)
        if "e" in text or "E" in text:
            text = format(Decimal(text), "f")
        if text.endswith(".0"):
            text = text[:-2]
        return text
    d = Decimal(repr(f))
    sign, digits, exponent = d.as_tuple()
    s = "".join(map(str, digits)).rstrip("0") or "0"
    e = len(digits) - 1 + int(exponent)
    m = s[0] + "." + (s[1:] or "0")
    return f"{'-' if sign else ''}{m}E{e}"


def str_arg(seq: Sequence[Any], what: str = "an argument") -> str:
    """A function's xs:string? argument: '' when empty."""
    if len(seq) == 1:
        x = seq[0]
        if type(x) is ELEMENT_TYPE:
            return (x.text or "") if len(x) == 0 else string_value(x)
        if type(x) is str:
            return x
    x = atom1(seq, what)
    return "" if x is None else to_string(x)


_XML_SPACE = re.compile(r"[ \t\r\n]+")


def normalize(s: str) -> str:
    if "  " in s or "\t" in s or "\n" in s or "\r" in s:
        return _XML_SPACE.sub(" ", s).strip(" ")
    return s.strip(" ")


# ---- casts ----------------------------------------------------------------------

_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)\Z")
_DOUBLE = re.compile(r"(?:[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|INF)|NaN)\Z")
_INTEGER = re.compile(r"[+-]?\d+\Z")
_DATE = re.compile(r"(-?\d{4,})-(\d{2})-(\d{2})(Z|[+-]\d{2}:\d{2})?\Z")


def _collapse(s: str) -> str:
    return s.strip(" \t\r\n")


def to_double(x: Any) -> float:
    if isinstance(x, float):
        return x
    if isinstance(x, bool):
        return 1.0 if x else 0.0
    if isinstance(x, (int, Decimal)):
        return float(x)
    if isinstance(x, str):
        s = _collapse(x)
        if not _DOUBLE.match(s):
            raise XPathError("FORG0001", f"cannot convert {x!r} to xs:double")
        return float(s.replace("INF", "inf"))
    raise XPathError("XPTY0004", f"cannot convert {type(x).__name__} to xs:double")


def to_decimal(x: Any) -> Decimal:
    if isinstance(x, bool):
        return Decimal(1 if x else 0)
    if isinstance(x, Decimal):
        return x
    if isinstance(x, int):
        return Decimal(x)
    if isinstance(x, float):
        if math.isnan(x) or math.isinf(x):
            raise XPathError("FOCA0002", f"cannot convert {double_string(x)} to xs:decimal")
        return Decimal(x)  # exact, as Saxon's BigDecimal(double): 573.38 - 1 gives 572.3799999999999954525...
    if isinstance(x, str):
        s = _collapse(x)
        if not _DECIMAL.match(s):
            raise XPathError("FORG0001", f"cannot convert {x!r} to xs:decimal")
        return Decimal(s)
    raise XPathError("XPTY0004", f"cannot convert {type(x).__name__} to xs:decimal")


def to_integer(x: Any) -> int:
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, int):
        return x
    if isinstance(x, (Decimal, float)):
        if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
            raise XPathError("FOCA0002", "cannot convert to xs:integer")
        return int(x)
    if isinstance(x, str):
        s = _collapse(x)
        if not _INTEGER.match(s):
            raise XPathError("FORG0001", f"cannot convert {x!r} to xs:integer")
        return int(s)
    raise XPathError("XPTY0004", f"cannot convert {type(x).__name__} to xs:integer")


def to_boolean(x: Any) -> bool:
    if isinstance(x, bool):
        return x
    if isinstance(x, str):
        s = _collapse(x)
        if s in ("true", "1"):
            return True
        if s in ("false", "0"):
            return False
        raise XPathError("FORG0001", f"cannot convert {x!r} to xs:boolean")
    if isinstance(x, float):
        return not (x == 0 or math.isnan(x))
    if isinstance(x, (int, Decimal)):
        return x != 0
    raise XPathError("XPTY0004", f"cannot convert {type(x).__name__} to xs:boolean")


def to_date(x: Any) -> Date:
    if isinstance(x, Date):
        return x
    if isinstance(x, str):
        m = _DATE.match(_collapse(x))
        if m:
            try:
                day = datetime.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                day = None
            if day is not None:
                tz = m.group(4)
                minutes = None
                if tz == "Z":
                    minutes = 0
                elif tz:
                    minutes = (1 if tz[0] == "+" else -1) * (int(tz[1:3]) * 60 + int(tz[4:6]))
                return Date(day, minutes)
        raise XPathError("FORG0001", f"cannot convert {x!r} to xs:date")
    raise XPathError("XPTY0004", f"cannot convert {type(x).__name__} to xs:date")


CASTS: dict[str, Callable[[Any], Any]] = {
    "decimal": to_decimal,
    "double": to_double,
    "float": to_double,
    "integer": to_integer,
    "boolean": to_boolean,
    "string": to_string,
    "date": to_date,
    "untypedAtomic": lambda x: U(to_string(x)),
}


def cast(seq: Sequence[Any], type_local: str, optional: bool = True) -> list[Any]:
    x = atom1(seq, f"the operand of a cast to xs:{type_local}")
    if x is None:
        if optional:
            return []
        raise XPathError("XPTY0004", f"an empty sequence cannot be cast to xs:{type_local}")
    return [CASTS[type_local](x)]


def castable(seq: Sequence[Any], type_local: str, optional: bool) -> bool:
    try:
        cast(seq, type_local, optional)
    except XPathError:
        return False
    return True
