"""The /audit page (ops only): the audit log a page at a time, and the counted anonymous refusals.

The page's filters are a GET form: ``actor`` (a principal, ``web:alice``, or a prefix, ``web:*``),
``action`` (``web.login``, ``web.*``), ``outcome`` (ok, refused, error), ``since`` and ``until``
(yyyy-mm-dd, UTC days, both included); ``before`` (a row id) is where the next page starts: the store
reads 100 rows newest first (keyset on the id, `flows.store.audit`), whatever the size of the log.
``view=refusals`` lists the refusals of clients not known yet, counted per (address, minute, action);
the log view shows the latest of them above the table.

A parameter that does not parse raises `BadParam` naming it (a 400 page, never a 500):

>>> parse({"actor": "web:*", "outcome": "refused", "since": "2026-12-01", "before": "42"}).query.before
42
>>> parse({"since": "yesterday"})
Traceback (most recent call last):
...
relais.web.params.BadParam: since
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from flows.store import Store
from flows.store.audit import AUDIT_PAGE, AuditQuery
from relais.web import params as params_
from relais.web.params import BadParam

OUTCOMES = ("ok", "refused", "error")
VIEWS = ("log", "refusals")
PREVIEW = 10  # counted refusals shown above the log


@dataclasses.dataclass(frozen=True, slots=True)
class AuditFilters:
    view: str
    query: AuditQuery

    def params(self) -> list[tuple[str, str]]:
        """The filters as query parameters (the form's values), without the page key."""
        q = self.query
        out = [("actor", q.actor), ("action", q.action), ("outcome", q.outcome)]
        out += [("since", q.since.date().isoformat() if q.since else None)]
        out += [("until", (q.until - dt.timedelta(days=1)).date().isoformat() if q.until else None)]
        out += [("view", self.view if self.view != "log" else None)]
        return [(k, v) for k, v in out if v]


def parse(params: Mapping[str, str]) -> AuditFilters:
    """The page's filters, or `BadParam` for the first one that does not parse."""
    outcome = params_.text(params, "outcome")
    if outcome is not None and outcome not in OUTCOMES:
        raise BadParam("outcome")
    view = params_.text(params, "view") or "log"
    if view not in VIEWS:
        raise BadParam("view")
    before = None
    if raw := (params.get("before") or "").strip():
        if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) <= params_.MAX_INT:
            raise BadParam("before")
        before = int(raw)
    query = AuditQuery(
        actor=params_.text(params, "actor"),
        action=params_.text(params, "action"),
        outcome=outcome,
        since=params_.day(params, "since"),
        until=params_.day(params, "until", end=True),
        before=before,
        limit=AUDIT_PAGE,
    )
    return AuditFilters(view=view, query=query)


def context(store: Store, params: Mapping[str, str]) -> dict[str, Any]:
    """What templates/audit.html shows for these query parameters (`BadParam` when one is bad)."""
    filters = parse(params)
    base = filters.params()
    rows: list[Any]
    if filters.view == "refusals":
        rows, next_key = store.refusal_page(filters.query)
        preview: list[Any] = []
    else:
        rows, next_key = store.audit_page(filters.query)
        preview, _ = store.refusal_page(dataclasses.replace(filters.query, before=None, limit=PREVIEW))
    next_url = "/audit?" + urlencode([*base, ("before", str(next_key))]) if next_key is not None else None
    first_url = "/audit?" + urlencode(base) if filters.query.before is not None else None
    others = [(k, v) for k, v in base if k != "view"]
    return {
        "filters": filters,
        "q": filters.query,
        "view": filters.view,
        "rows": rows,
        "preview": preview,
        "outcomes": OUTCOMES,
        "next_url": next_url,
        "first_url": first_url,
        "log_url": "/audit?" + urlencode(others),
        "refusals_url": "/audit?" + urlencode([*others, ("view", "refusals")]),
    }
