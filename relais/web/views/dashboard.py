"""What the landing page (``GET /`` -> home.html), the rejects page (``GET /rejects`` -> rejects.html)
and a rule's page (``GET /rejects/{rule}`` -> rejects_rule.html) show: their template context, from the
store's aggregates (``flows.store.dashboard``) and the charts (``relais.web.views.charts``).

A route passes the store, the partner the user is limited to (``user.partner`` for a ``partner`` user,
else None: everything) and the page's language; it adds the context to app.py's `render`, e.g.::

    partner = user.partner if user.role == "partner" else None
    return render(request, "home.html", user, **dashboard.home_context(rt.store, partner, lang=lang_of(request)))

The charts are ``markupsafe.Markup`` (their text is escaped by relais.web.views.charts): templates print them
as they are.

>>> duration(0.4), duration(42), duration(75), duration(3 * 3600 + 5 * 60), duration(None)
('0,4 s', '42 s', '1 min 15 s', '3 h 05 min', '—')
>>> duration(2 * 86400 + 3600, "en"), duration(1.25, "en")
('2 d 1 h', '1.2 s')
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any, Protocol
from urllib.parse import quote

from markupsafe import Markup

from flows.domain.model import utcnow
from flows.store.dashboard import STAGES, CircuitWait, Latency, RuleCount, RuleFlow, RuleRejects
from relais.web import i18n
from relais.web.views import charts, circuits, findings
from relais.web.views.detail import explain

DAYS = 30
TOP_RULES = 10
RULE_FLOWS = 50
_STAGE_KEYS = {"processing": "stage-processing", "integration report": "stage-report", "delivery": "stage-delivery"}
_GROUP_KEYS = {"ok": "group-ok", "partial": "group-partial", "rejected": "group-rejected", "other": "group-other"}


class DashboardStore(Protocol):
    """What these pages need of the store (``flows.store.Store``)."""

    def flows_per_day(
        self, days: int = ..., partner: str | None = ..., *, today: dt.date | None = ...
    ) -> list[tuple[dt.date, dict[str, int]]]: ...
    def invoices_per_day(
        self, days: int = ..., partner: str | None = ..., *, today: dt.date | None = ...
    ) -> list[tuple[dt.date, dict[str, int]]]: ...
    def top_reject_rules(
        self, days: int = ..., partner: str | None = ..., limit: int = ..., *, today: dt.date | None = ...
    ) -> list[RuleCount]: ...
    def rejects_by_rule(
        self, days: int = ..., partner: str | None = ..., limit: int = ..., *, today: dt.date | None = ...
    ) -> list[RuleRejects]: ...
    def stage_latencies(
        self, days: int = ..., partner: str | None = ..., *, today: dt.date | None = ...
    ) -> dict[str, Latency]: ...
    def returns_pending_per_partner(self, partner: str | None = ...) -> dict[str, int]: ...
    def outbox_backlog(self, partner: str | None = ...) -> dict[str, int]: ...
    def rule_flows(self, rule: str, partner: str | None = ..., limit: int = ...) -> list[RuleFlow]: ...
    def circuit_waits(self, partner: str | None = ..., *, now: dt.datetime | None = ...) -> list[CircuitWait]: ...


def home_context(
    store: DashboardStore,
    user_partner: str | None,
    *,
    lang: str = "fr",
    days: int = DAYS,
    today: dt.date | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The landing page's context (home.html and the parts it includes document each variable); `now`: the
    billing circuits' clock (relais/web/views/circuits.py)."""
    groups = _groups(lang)
    flow_days = [
        (d, charts.group_statuses(counts)) for d, counts in store.flows_per_day(days, user_partner, today=today)
    ]
    invoice_days = store.invoices_per_day(days, user_partner, today=today)
    top = store.top_reject_rules(days, user_partner, TOP_RULES, today=today)
    rates = [(d, _rate(n)) for d, n in invoice_days]
    invoices = sum(n["accepted"] + n["rejected"] for _, n in invoice_days)
    rejected = sum(n["rejected"] for _, n in invoice_days)
    flows_by_group = {g.key: sum(c[g.key] for _, c in flow_days) for g in groups}
    return {
        "days": days,
        "period": (flow_days[0][0], flow_days[-1][0]),
        "partner": user_partner,
        "groups": groups,
        "totals": {
            "flows": sum(flows_by_group.values()),
            "flows_by_group": flows_by_group,
            "invoices": invoices,
            "rejected": rejected,
            "rate": percent(rejected / invoices if invoices else None, lang),
        },
        "flow_days": [(d, c, sum(c.values())) for d, c in flow_days],
        "invoice_days": [
            (d, n["accepted"], n["rejected"], percent(rate, lang))
            for (d, n), (_, rate) in zip(invoice_days, rates, strict=True)
        ],
        "top_rules": [_rule_row(r.rule, r.invoices, r.flows, r.last_seen, lang, r.whole_flows) for r in top],
        "latencies": _latency_rows(store.stage_latencies(days, user_partner, today=today), lang),
        "backlog": sorted(store.outbox_backlog(user_partner).items()),
        "returns_pending": list(store.returns_pending_per_partner(user_partner).items()),
        "charts": _home_charts(flow_days, invoice_days, rates, top, lang),
        **circuits.home_context(store, user_partner, lang=lang, now=now),
    }


def _latency_rows(latencies: dict[str, Latency], lang: str) -> list[dict[str, Any]]:
    """The landing page's table of stage latencies (p50, p95), in the pipeline's order."""
    return [
        {
            "stage": stage,
            "label": i18n.text(lang, _STAGE_KEYS[stage]),
            "p50": duration(latencies[stage].p50, lang),
            "p95": duration(latencies[stage].p95, lang),
            "samples": latencies[stage].samples,
        }
        for stage in STAGES
        if stage in latencies
    ]


def _home_charts(
    flow_days: list[Any], invoice_days: list[Any], rates: list[Any], top: list[RuleCount], lang: str
) -> dict[str, Markup | None]:
    """The landing page's four charts (inline SVG: relais/web/views/charts.py)."""

    def t(key: str) -> str:
        return i18n.text(lang, key)

    decimal = "," if lang == "fr" else "."
    groups = _groups(lang)
    invoice_series = (
        charts.Series("accepted", t("accepted"), charts.OK, "solid", "✔"),
        charts.Series("rejected", t("rejected"), charts.BAD, "cross", "✖"),
    )
    return {
        "flows": Markup(
            charts.stacked_bars(
                flow_days, groups, title=t("flows-per-day"), ident="chart-flows", total_label=t("total")
            )
        ),
        "invoices": Markup(
            charts.stacked_bars(
                invoice_days,
                invoice_series,
                title=t("invoices-per-day"),
                ident="chart-invoices",
                total_label=t("total"),
            )
        ),
        "rate": Markup(charts.line_chart(rates, title=t("rejection-rate"), ident="chart-rate", decimal=decimal)),
        "rules": Markup(
            charts.hbars(
                [charts.Bar(r.rule, r.invoices + r.whole_flows, _bar_note(r, lang), rule_href(r.rule)) for r in top],
                title=t("top-rules"),
                ident="chart-rules",
            )
        )
        if top
        else None,
    }


def rejects_context(
    store: DashboardStore,
    user_partner: str | None,
    *,
    lang: str = "fr",
    days: int = DAYS,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """The rejects page's context (rejects.html documents each variable)."""
    found = store.rejects_by_rule(days, user_partner, today=today)
    first = (today or utcnow().date()) - dt.timedelta(days=days - 1)
    rules = []
    for k, r in enumerate(found):
        row = _rule_row(r.rule, r.invoices, r.flows, r.last_seen, lang, r.whole_flows)
        row.update(
            findings=r.findings,
            trend=r.trend,
            sparkline=Markup(
                charts.sparkline(
                    r.trend,
                    title=f"{r.rule} : {i18n.text(lang, 'rejects').lower()} {i18n.text(lang, 'per-day')}",
                    ident=f"spark-{k}",
                    peak_label=i18n.text(lang, "max"),
                    days=[first + dt.timedelta(days=d) for d in range(len(r.trend))],
                )
            ),
            examples=[
                {
                    "flow_id": ex.flow_id,
                    "invoice_id": ex.invoice_id,
                    "location": findings.location(ex.location, lang),
                    "said": findings.message(r.rule, ex.message, lang),
                }
                for ex in r.examples
            ],
        )
        rules.append(row)
    return {
        "days": days,
        "period": (first, first + dt.timedelta(days=days - 1)),
        "partner": user_partner,
        "rules": rules,
        "total": sum(r.invoices for r in found),
        "total_whole_flows": sum(r.whole_flows for r in found),
    }


def rule_context(
    store: DashboardStore, rule: str, user_partner: str | None, *, lang: str = "fr", limit: int = RULE_FLOWS
) -> dict[str, Any]:
    """A rule's page context (rejects_rule.html documents each variable)."""
    return {
        "rule": rule,
        "explain": explain(rule, lang),
        "partner": user_partner,
        "flows": [
            {"flow": f, "said": findings.message(rule, f.message, lang)}
            for f in store.rule_flows(rule, user_partner, limit)
        ],
        "limit": limit,
    }


def rule_href(rule: str) -> str:
    """The rule's page.

    >>> rule_href("BR-FR-12"), rule_href("a b")
    ('/rejects/BR-FR-12', '/rejects/a%20b')
    """
    return "/rejects/" + quote(rule, safe="")


def percent(rate: float | None, lang: str = "fr") -> str:
    """A rate (0..1) in %: ``percent(0.125) == '12,5 %'``; '—' for None."""
    return charts._pct(rate, "," if lang == "fr" else ".")


def duration(seconds: float | None, lang: str = "fr") -> str:
    """A duration for people: seconds (one decimal under 10 s), minutes, hours, days."""
    if seconds is None:
        return "—"
    s = float(seconds)
    if s < 10:
        text = f"{s:.1f}".removesuffix(".0")
        return (text.replace(".", ",") if lang == "fr" else text) + " s"
    whole = round(s)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        m, sec = divmod(whole, 60)
        return f"{m} min {sec} s" if sec else f"{m} min"
    if whole < 86400:
        h, rest = divmod(whole, 3600)
        return f"{h} h {rest // 60:02d} min"
    d, rest = divmod(whole, 86400)
    return f"{d} {'j' if lang == 'fr' else 'd'} {rest // 3600} h"


def _groups(lang: str) -> tuple[charts.Series, ...]:
    return tuple(
        charts.Series(s.key, i18n.text(lang, _GROUP_KEYS[s.key]), s.colour, s.pattern, s.symbol)
        for s in charts.STATUS_GROUPS
    )


def _rate(n: dict[str, int]) -> float | None:
    total = n["accepted"] + n["rejected"]
    return n["rejected"] / total if total else None


def _bar_note(r: RuleCount, lang: str) -> str:
    """'(3 factures, 4 flux entiers)': what a bar of the top rules counts."""
    parts = []
    if r.invoices or not r.whole_flows:
        parts.append(f"{r.invoices} {i18n.text(lang, 'invoices-short' if r.invoices > 1 else 'invoice-short')}")
    if r.whole_flows:
        plural = "whole-flows-short" if r.whole_flows > 1 else "whole-flow"
        parts.append(f"{r.whole_flows} {i18n.text(lang, plural)}")
    return "(" + ", ".join(parts) + ")"


def _rule_row(
    rule: str, count: int, flows: int, last_seen: dt.datetime, lang: str, whole_flows: int = 0
) -> dict[str, Any]:
    return {
        "rule": rule,
        "href": rule_href(rule),
        "count": count,
        "whole_flows": whole_flows,
        "flows": flows,
        "last_seen": last_seen,
        "explain": explain(rule, lang),
    }


class Cache:
    """The landing and rejects pages' figures (relais/web/routes/home.py): values kept `seconds` (0: not kept), per key, in this server process."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._values: dict[object, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: object, compute: Any) -> Any:
        now = time.monotonic()
        with self._lock:
            found = self._values.get(key)
        if found is not None and now - found[0] < self.seconds:
            return found[1]
        value = compute()
        if self.seconds > 0:
            with self._lock:
                self._values[key] = (now, value)
        return value
