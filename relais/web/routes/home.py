"""The landing page (``GET /``: charts of the last 30 days, what waits in the drop zones, the partners in
qualification) and the rejects pages (``GET /rejects``: rejects grouped by rule; ``GET /rejects/{rule}``:
the flows a rule rejected). Their figures are aggregates over a month of flows, computed at most every
N seconds per (page, partner, language) (`Web.charts`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from relais.web import params
from relais.web.routes.common import Refused, SignedIn, Site, lang_of, own, render
from relais.web.views import cdar, dashboard, waiting

router = APIRouter()


@router.get("/")
def home(request: Request, site: Site, user: SignedIn) -> Response:
    """The landing page: charts of the last 30 days (relais/web/views/dashboard.py)."""
    lang = lang_of(request)
    context = site.charts.get(
        ("home", own(user), lang), lambda: dashboard.home_context(site.rt.store, own(user), lang=lang)
    )
    more = {**waiting.home_context(site.rt, user), **cdar.home_context(site.rt, user)}  # current, not cached
    return render(request, "home.html", user, **context, **more)


@router.get("/rejects")
def rejects(request: Request, site: Site, user: SignedIn) -> Response:
    """Rejected flows and invoices grouped by rule: counts, trend, examples."""
    lang = lang_of(request)
    context = site.charts.get(
        ("rejects", own(user), lang), lambda: dashboard.rejects_context(site.rt.store, own(user), lang=lang)
    )
    return render(request, "rejects.html", user, **context)


@router.get("/rejects/{rule:path}")
def rejects_rule(request: Request, rule: str, site: Site, user: SignedIn) -> Response:
    """The flows a rule rejected, newest first."""
    if not params.usable_path(rule):
        raise Refused(404, "not-found")
    context = dashboard.rule_context(site.rt.store, rule, own(user), lang=lang_of(request))
    return render(request, "rejects_rule.html", user, **context)
