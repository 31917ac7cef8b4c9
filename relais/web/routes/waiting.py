"""``GET /waiting``: the files waiting in the drop zones the user sees, oldest first, each with why it
waits (relais/web/views/waiting.py builds its rows)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from connectors.folder import waiting as w
from relais import runner
from relais.web import params
from relais.web.routes.common import SignedIn, Site, lang_of, render
from relais.web.views import waiting

router = APIRouter()


@router.get("/waiting")
def waiting_page(request: Request, site: Site, user: SignedIn) -> Response:
    """The files waiting in the drop zones the user sees, oldest first, each with why it waits."""
    asked = params.text(request.query_params, "partner", limit=100)  # a bad one: BadParam, a 400
    own = waiting.own_partner(user)
    partner = own if own is not None else asked  # a partner user's own, whatever the query says
    lang = lang_of(request)
    report = runner.waiting_files(site.rt.settings, site.rt.store, partner=partner, limit=waiting.PAGE_LIMIT)
    ops = user.role != "partner"
    by_partner = [
        (p, n, [(w.label(r, lang), c) for (q, r), c in report.counts.items() if q == p])
        for p, n in report.by_partner().items()
    ]
    return render(
        request,
        "waiting.html",
        user,
        report=report,
        rows=waiting.rows(report, lang, details=ops),
        by_partner=by_partner,
        partner=partner,
        limit=waiting.PAGE_LIMIT,
    )
