"""A billing file's page (``GET /billing-files/{id}``: relais/web/views/billing.py, templates/billing_file.html):
its pieces and their status histories as a timeline. `id` is the file's id or any of its pieces'. A file
none of whose pieces the reader may see is a 404, exactly as an unknown one."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from relais.web import params
from relais.web.routes.common import Refused, SignedIn, Site, lang_of, render
from relais.web.views import billing

router = APIRouter()


@router.get("/billing-files/{file_id}")
def billing_file_page(request: Request, file_id: str, site: Site, user: SignedIn) -> Response:
    found = billing.billing_file(site.rt, file_id, user, lang_of(request)) if params.usable_path(file_id, 64) else None
    if found is None:
        raise Refused(404, "not-found")
    return render(request, "billing_file.html", user, d=found)
