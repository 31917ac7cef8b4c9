"""RLS-C02: the line names no invoice Relais knows.

An invoice is found by its number (BT-1) and its seller's SIREN (the first 9 digits of its supplier SIRET),
and by its issue date when the line gives one; an invoice of a flow in qualification is not one (it has no
lifecycle). Several invoices matching (the same number and seller, different years, and no date to tell
them apart) is refused too: Relais never guesses which one a status is for.

>>> import datetime as dt
>>> from flows.domain.cdar import StatusLine
>>> from flows.domain.frameworks import Framework
>>> from flows.domain.lifecycle import InvoiceStatus
>>> from flows.store.cdar import CdarTarget
>>> inv = CdarTarget("CPP1-1", "F-1", "12345678900011", dt.date(2026, 3, 1), InvoiceStatus.EN_COURS_ACHEMINEMENT,
...                  Framework.A1, "seller", frozenset({"pf"}), False)
>>> match(StatusLine("F-1", "205", seller_siren="123456789"), [inv])[0].id
'CPP1-1'
>>> print(check(StatusLine("F-1", "205", seller_siren="123456789"), 1, [inv]))
None
>>> check(StatusLine("F-1", "205", seller_siren="999999999"), 1, [inv]).rule
'RLS-C02'
>>> check(StatusLine("F-1", "205", invoice_issue_date=dt.date(2025, 3, 1), seller_siren="123456789"), 1, [inv]).rule
'RLS-C02'
"""

from __future__ import annotations

from collections.abc import Sequence

from flows.domain.cdar import StatusLine
from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from flows.store.cdar import CdarTarget
from validators.cdar_rules import location

RULE = Rule(
    "RLS-C02",
    Flag.FATAL,
    "The CDAR line names no invoice known to Relais",
    "La ligne CDAR ne désigne aucune facture connue de Relais",
    category=Category.LIFECYCLE,
    stage=Stage.STORE,
)


def match(line: StatusLine, candidates: Sequence[CdarTarget]) -> list[CdarTarget]:
    """The candidates (invoices with the line's number) the line names: same seller SIREN, same issue date
    when the line gives one, not in qualification."""
    return [
        c
        for c in candidates
        if not c.qualification
        and c.number == line.invoice_number
        and line.seller_siren
        and (c.supplier_id or "")[:9] == line.seller_siren
        and (line.invoice_issue_date is None or c.issue_date == line.invoice_issue_date)
    ]


def check(line: StatusLine, position: int, candidates: Sequence[CdarTarget]) -> ValidationError | None:
    found = match(line, candidates)
    if len(found) == 1:
        return None
    when = f", issued {line.invoice_issue_date.isoformat()}" if line.invoice_issue_date else ""
    what = f"invoice {line.invoice_number} of seller {line.seller_siren or '?'}{when}"
    detail = f"{what}: {len(found)} invoices match, give the issue date" if found else what
    return RULE.error(location(line, position), detail)
