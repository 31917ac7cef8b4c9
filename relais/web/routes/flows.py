"""The flows list (``GET /flows``: filtered, sorted, paged by keyset; relais/web/params.py parses its
query) and its poll (``GET /flows/poll``: how many new flows match, asked by static/app.js)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from flows.domain.lifecycle import FlowStatus
from flows.domain.model import Flow
from flows.store.web import FlowQuery, WebUser
from relais.compose import Runtime
from relais.web import params
from relais.web.routes.common import MaybeUser, SignedIn, Site, lang_of, own, render
from relais.web.views import findings

router = APIRouter()
PAGE = 50


def _query(request: Request, user: WebUser) -> FlowQuery:
    return params.flow_filters(request.query_params, own(user), limit=PAGE)


@router.get("/flows")
def flows_page(request: Request, site: Site, user: SignedIn) -> Response:
    rt = site.rt
    q = _query(request, user)
    rows, next_key = rt.store.query_flows(q)
    base = [(k, v) for k, v in request.query_params.multi_items() if k not in ("after_id", "after_value", "lang")]
    next_url = None
    if next_key is not None:
        next_url = "/flows?" + urlencode([*base, ("after_value", next_key[0]), ("after_id", next_key[1])])

    def sort_url(column: str) -> str:
        order = "asc" if q.sort == column and q.descending else "desc"
        keep = [(k, v) for k, v in base if k not in ("sort", "order")]
        return "/flows?" + urlencode([*keep, ("sort", column), ("order", order)])

    return render(
        request,
        "flows.html",
        user,
        flows=rows,
        q=q,
        next_url=next_url,
        first_url="/flows?" + urlencode(base) if q.after else None,
        sort_url=sort_url,
        partners=rt.store.partners_seen() if user.role != "partner" else [user.partner],
        paused=rt.store.paused_partners(),
        reasons=_reasons(rt, rows, lang_of(request)),
        newest=rows[0].id if rows and q.after is None and q.sort == "id" and q.descending else "",
    )


@router.get("/flows/poll")
def flows_poll(request: Request, site: Site, user: MaybeUser) -> Response:
    """How many flows matching the list's filters arrived after `newest` (the page's script asks)."""
    if user is None:
        return JSONResponse({"error": "login"}, status_code=401)
    try:
        q, newest = _query(request, user), params.newest(request.query_params)
    except params.BadParam as bad:
        return JSONResponse({"error": "invalid parameter", "parameter": bad.name}, status_code=400)
    rows, _ = site.rt.store.query_flows(_newer(q))
    return JSONResponse({"new": sum(1 for f in rows if f.id > newest)})


def _reasons(rt: Runtime, rows: list[Flow], lang: str) -> dict[str, tuple[str, findings.Said]]:
    """{flow id: (rule, message)} of the listed flows with a reject: their first fatal finding."""
    ids = [f.id for f in rows if f.rejected_count or f.status in _WITH_REASON]
    return {k: (rule, findings.message(rule, text, lang)) for k, (rule, text) in rt.store.first_findings(ids).items()}


_WITH_REASON = (FlowStatus.IN_REJETE, FlowStatus.IN_INTEGRE_PARTIEL, FlowStatus.IN_INCIDENTE)


def _newer(q: FlowQuery) -> FlowQuery:
    return FlowQuery(
        partner=q.partner,
        statuses=q.statuses,
        channel=q.channel,
        flow_code=q.flow_code,
        since=q.since,
        until=q.until,
        search=q.search,
        sort="id",
        descending=True,
        after=None,
        limit=100,
    )
