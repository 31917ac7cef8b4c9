"""RLS-R11: the reform's directory line that matches the buyer is disabled, or not yet (no longer) effective.

The most specific matching line is named; a less specific line that is effective would have routed the
invoice (docs/reform.md §4), so every matching line is disabled here. An ``Upcoming`` line whose date has
come counts as enabled. `FINAL`.

>>> import datetime as dt
>>> from validators.addressing import Addressing
>>> from flows.domain.reform_directory import Address, DirectoryLine, Platform
>>> class Lines:
...     lines = [DirectoryLine(Address("702042755"), Platform("0042"), "Upcoming", dt.date(2026, 9, 1))]
...     def reform_lines(self, ids): return [ln for ln in self.lines if ln.identifier in ids]
...     def reform_siren_known(self, siren): return True
>>> ctx = InvoiceContext(addressing=Addressing("702042755"), reform=Lines(), today=dt.date(2026, 8, 31))
>>> check(ctx).message
"The reform's directory line matching the buyer is disabled or not yet effective: 702042755 (Upcoming, from 2026-09-01)"
>>> print(check(InvoiceContext(addressing=Addressing("702042755"), reform=Lines(), today=dt.date(2026, 9, 1))))
None
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext
from validators.terms import BUYER

RULE = Rule(
    "RLS-R11",
    Flag.FATAL,
    "The reform's directory line matching the buyer is disabled or not yet effective",
    "La ligne de l'annuaire de la réforme correspondant à l'acheteur est désactivée ou pas encore en vigueur",
    category=Category.ROUTING,
    stage=Stage.DIRECTORY,
)
FINAL = True


def check(ctx: InvoiceContext) -> ValidationError | None:
    m = ctx.reform_match
    if m is None or m.best is None or m.line is not None:
        return None
    best = m.best
    dates = [f"from {best.effective_from}"] if best.effective_from else []
    dates += [f"until {best.effective_to}"] if best.effective_to else []
    return RULE.error(BUYER, f"{best.identifier} ({', '.join([best.status, *dates])})")
