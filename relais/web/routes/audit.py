"""``GET /audit``: the audit log, for ops only (paged in SQL, filtered, with the counted refusals:
relais/web/views/auditview.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from relais.web.routes.common import Ops, Site, render
from relais.web.views import auditview

router = APIRouter()


@router.get("/audit")
def audit_page(request: Request, site: Site, user: Ops) -> Response:
    context = auditview.context(site.rt.store, request.query_params)  # a bad filter: params.BadParam, a 400
    return render(request, "audit.html", user, **context)
