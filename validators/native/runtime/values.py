"""XPath atomic values that are not Python's own: ``xs:untypedAtomic``, ``xs:date``; dynamic errors.

``xs:string`` is ``str``, ``xs:boolean`` ``bool``, ``xs:integer`` ``int``,
``xs:decimal`` ``Decimal``, ``xs:double`` ``float``; `U` and `Date` are the rest.
"""

from __future__ import annotations

import datetime
import decimal
from decimal import Decimal
from typing import Any

CTX = decimal.Context(prec=200, rounding=decimal.ROUND_HALF_EVEN, traps=[decimal.InvalidOperation, decimal.Overflow])
DIVIDE_SCALE = 18  # Saxon: BigDecimal.divide(other, max(18, scales), HALF_DOWN)


class XPathError(Exception):
    """A dynamic error: the official run aborts on it, so the native run does too."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"{code}: {message}")


class U(str):
    """xs:untypedAtomic."""

    __slots__ = ()


class Date:
    __slots__ = ("date", "tz")

    def __init__(self, date: datetime.date, tz: int | None) -> None:
        self.date = date
        self.tz = tz  # minutes, None when absent

    def _key(self) -> datetime.datetime:
        start = datetime.datetime(self.date.year, self.date.month, self.date.day)
        return start - datetime.timedelta(minutes=self.tz or 0)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Date) and self._key() == other._key()

    def __lt__(self, other: Date) -> bool:
        return self._key() < other._key()

    def __le__(self, other: Date) -> bool:
        return self._key() <= other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        text = self.date.isoformat()
        if self.tz is None:
            return text
        if self.tz == 0:
            return text + "Z"
        sign = "+" if self.tz > 0 else "-"
        return f"{text}{sign}{abs(self.tz) // 60:02d}:{abs(self.tz) % 60:02d}"


NUMERIC = (int, float, Decimal)


def is_num(x: Any) -> bool:
    return isinstance(x, NUMERIC) and not isinstance(x, bool)


def type_name(x: Any) -> str:
    if isinstance(x, U):
        return "xs:untypedAtomic"
    if isinstance(x, str):
        return "xs:string"
    if isinstance(x, bool):
        return "xs:boolean"
    if isinstance(x, int):
        return "xs:integer"
    if isinstance(x, Decimal):
        return "xs:decimal"
    if isinstance(x, float):
        return "xs:double"
    return type(x).__name__
