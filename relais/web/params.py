"""The web application's query parameters, read into typed values before a route uses them.

Every parameter a GET route reads goes through here: a value that does not parse (an unknown status,
a date that is not yyyy-mm-dd, a keyset value that is not of its column's type, a number past what the
store holds, a control character, a text longer than any real one) raises `BadParam` naming the
parameter, which relais/web/routes/errors.py answers with a 400 page (error.html, ``bad-param``): never a 500
from deeper down. An absent or empty parameter is its default. Parameters a route does not know are
ignored.

>>> from starlette.datastructures import QueryParams
>>> flow_filters(QueryParams("sort=invoices&order=asc&after_id=CPP1&after_value=12"), None).after
('12', 'CPP1')
>>> flow_filters(QueryParams("sort=invoices&after_id=X&after_value=abc"), None)
Traceback (most recent call last):
...
relais.web.params.BadParam: after_value
>>> flow_filters(QueryParams("sort=received&after_id=CPP1&after_value=2026-12-06T17:35:22%00"), None)
Traceback (most recent call last):
...
relais.web.params.BadParam: after_value
>>> flow_filters(QueryParams("since=2024-05-01&until=9999-12-31&q=%20F1%20"), "op-a").partner
'op-a'
>>> invoice_filters(QueryParams("inv_status=03&sort=amount&order=desc&page=2"), rejections=True).offset
50
>>> invoice_filters(QueryParams(""), rejections=True).status, invoice_filters(QueryParams(""), rejections=False).status
('rejected', 'all')
>>> invoice_filters(QueryParams("cadre=A10"), rejections=True).frameworks, invoice_filters(QueryParams(""), rejections=True).frameworks
(['A10'], None)
>>> invoice_filters(QueryParams("cadre=A26"), rejections=False)
Traceback (most recent call last):
...
relais.web.params.BadParam: cadre
>>> invoice_filters(QueryParams("page=0"), rejections=False)
Traceback (most recent call last):
...
relais.web.params.BadParam: page
>>> language(QueryParams("lang=xx"))
Traceback (most recent call last):
...
relais.web.params.BadParam: lang
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence

from starlette.datastructures import QueryParams

from flows.domain.frameworks import Framework
from flows.domain.lifecycle import FlowStatus, InvoiceStatus
from flows.domain.model import Channel, FlowCode
from flows.store.invoices import INVOICE_SORTS
from flows.store.web import SORTS, FlowQuery
from relais.web import i18n

PAGE = 50
MAX_TEXT = 200  # a search term, a partner id, a flow id: real ones are far shorter
MAX_INT = 2**31 - 1  # flows.invoice_count is an INTEGER on PostgreSQL

_STATUSES = frozenset(s.value for s in FlowStatus)
_CHANNELS = frozenset(c.value for c in Channel)
_CODES = frozenset(c.value for c in FlowCode)


class BadParam(Exception):
    """The query parameter `name` has a value this route cannot use (a 400 page names it)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclasses.dataclass(frozen=True, slots=True)
class Keyset:
    """Where the next page of the flow list starts: the previous page's last (sort value, flow id)."""

    value: int | dt.datetime | str
    flow_id: str

    @property
    def text(self) -> str:
        """The value as the store reads it back (flows.store.web: ISO 8601 for an instant)."""
        return self.value.isoformat() if isinstance(self.value, dt.datetime) else str(self.value)


def text(params: QueryParams | Mapping[str, str], name: str, *, limit: int = MAX_TEXT) -> str | None:
    """A free text parameter (None when absent or empty): at most `limit` characters, no control
    character (PostgreSQL refuses NUL in a text, nothing legitimate holds the others)."""
    value = params.get(name)
    if not value:
        return None
    if len(value) > limit or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise BadParam(name)
    return value


def choice(params: QueryParams | Mapping[str, str], name: str, allowed: frozenset[str] | Sequence[str]) -> str | None:
    value = params.get(name)
    if not value:
        return None
    if value not in allowed:
        raise BadParam(name)
    return value


def day(params: QueryParams | Mapping[str, str], name: str, *, end: bool = False) -> dt.datetime | None:
    """A yyyy-mm-dd filter as a UTC instant (the end of the day for `end`); None when absent."""
    value = text(params, name, limit=10)
    if value is None:
        return None
    try:
        d = dt.date.fromisoformat(value)
    except ValueError:
        raise BadParam(name) from None
    start = dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)
    if end:  # the day after 9999-12-31 is past datetime's range: its last instant then
        return start + dt.timedelta(days=1) if d < dt.date.max else dt.datetime.max.replace(tzinfo=dt.UTC)
    return start


def language(params: QueryParams | Mapping[str, str]) -> str | None:
    """The page's language asked for in the query (None: the cookie's or French)."""
    return choice(params, "lang", i18n.LANGS)


def keyset(params: QueryParams | Mapping[str, str], sort: str) -> Keyset | None:
    """`after_value` in the type of the `sort` column, with `after_id` (both, or neither)."""
    flow_id = text(params, "after_id", limit=64)
    raw = params.get("after_value", "")
    if flow_id is None:
        if raw:
            raise BadParam("after_id")
        return None
    value: int | dt.datetime | str
    if sort == "invoices":
        if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or int(raw) > MAX_INT:
            raise BadParam("after_value")
        value = int(raw)
    elif sort == "received":
        try:
            if len(raw) > 40 or not raw.isascii() or not raw.isprintable():  # fromisoformat takes a NUL
                raise ValueError(raw)
            parsed = dt.datetime.fromisoformat(raw)
            value = parsed.astimezone(dt.UTC) if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        except (ValueError, OverflowError):
            raise BadParam("after_value") from None
    else:
        found = text(params, "after_value", limit=MAX_TEXT)
        if found is None and sort == "id":
            raise BadParam("after_value")
        value = found or ""
    return Keyset(value, flow_id)


def flow_filters(params: QueryParams, own_partner: str | None, *, limit: int = PAGE) -> FlowQuery:
    """The flow list's filters, order and page (``/flows``, ``/flows/poll``); a partner user's
    `own_partner` replaces whatever partner the query names."""
    statuses = [s for s in params.getlist("status") if s]
    if any(s not in _STATUSES for s in statuses):
        raise BadParam("status")
    sort = choice(params, "sort", tuple(SORTS)) or "id"
    order = choice(params, "order", ("asc", "desc")) or "desc"
    partner = text(params, "partner", limit=100)
    after = keyset(params, sort)
    since, until = day(params, "since"), day(params, "until", end=True)
    return FlowQuery(
        partner=own_partner if own_partner is not None else partner,
        statuses=statuses,
        channel=choice(params, "channel", _CHANNELS),
        flow_code=choice(params, "code", _CODES),
        since=since,
        until=until,
        search=text(params, "q"),
        sort=sort,
        descending=order != "asc",
        after=None if after is None else (after.text, after.flow_id),
        limit=limit,
    )


#: A flow page's invoice filter: "rejected", "all", or one invoice status code ("03").
INVOICE_FILTERS = ("rejected", "all", *(s.value for s in InvoiceStatus))
MAX_PAGE = 100_000  # a flow holds at most a few tens of thousands of invoices (max_invoices_per_flow)


@dataclasses.dataclass(frozen=True, slots=True)
class InvoiceFilters:
    """The invoice table of a flow's page (``/flows/{id}``): which invoices, in which order, which page."""

    status: str  # an `INVOICE_FILTERS` value
    search: str | None
    sort: str  # an `INVOICE_SORTS` key
    descending: bool
    page: int  # 1-based
    size: int = PAGE
    framework: str | None = None  # one billing framework (A1..A25, ``cadre``); None: every one

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    @property
    def statuses(self) -> list[str] | None:
        """The invoice status codes the table shows (None: every one)."""
        if self.status == "all":
            return None
        if self.status == "rejected":
            return [s.value for s in InvoiceStatus if s.is_rejected]
        return [self.status]

    @property
    def frameworks(self) -> list[str] | None:
        """The billing frameworks the table shows (None: every one)."""
        return None if self.framework is None else [self.framework]


#: A flow page's framework filter (``cadre``): one billing framework.
FRAMEWORKS = tuple(f.value for f in Framework)


def invoice_filters(params: QueryParams | Mapping[str, str], *, rejections: bool) -> InvoiceFilters:
    """``inv_status``, ``cadre``, ``q``, ``sort``, ``order``, ``page`` of a flow's page; with no ``inv_status``,
    the rejected invoices only when the flow has `rejections` (else all); with no ``cadre``, every framework."""
    raw_page = params.get("page") or "1"
    if not raw_page.isascii() or not raw_page.isdigit() or len(raw_page) > 6 or not 1 <= int(raw_page) <= MAX_PAGE:
        raise BadParam("page")
    return InvoiceFilters(
        status=choice(params, "inv_status", INVOICE_FILTERS) or ("rejected" if rejections else "all"),
        search=text(params, "q"),
        sort=choice(params, "sort", tuple(INVOICE_SORTS)) or "position",
        descending=(choice(params, "order", ("asc", "desc")) or "asc") == "desc",
        page=int(raw_page),
        framework=choice(params, "cadre", FRAMEWORKS),
    )


def usable_path(value: str, limit: int = MAX_TEXT) -> bool:
    """Whether a path parameter (a flow id, a rule code) can name anything: not too long, no control
    character (PostgreSQL refuses NUL). An unusable one is a 404, like an unknown one."""
    return 0 < len(value) <= limit and not any(ord(c) < 32 or ord(c) == 127 for c in value)


def newest(params: QueryParams) -> str:
    """``/flows/poll``'s `newest`: the id of the newest flow the page shows ('' when none)."""
    return text(params, "newest", limit=64) or ""
