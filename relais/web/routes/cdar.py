"""The CDAR messages (relais/web/views/cdar.py): the list page (``GET /cdar``) and a message's bytes as archived
(``GET /cdar/{id}/download``: ``Content-Disposition: attachment``, ``application/xml``, served only while they
match their SHA-256, ``X-Content-SHA256``). A message another partner's is a 404 for a partner user, exactly as
an unknown one (ids are not probed)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from relais import cdarview
from relais.web import params
from relais.web.routes.common import Refused, SignedIn, Site, own, render
from relais.web.views import cdar

router = APIRouter()


@router.get("/cdar")
def cdar_page(request: Request, site: Site, user: SignedIn) -> Response:
    f = cdar.filters(request.query_params, own(user))
    context = cdar.list_context(site.rt, user, f, request.query_params.multi_items())
    return render(request, "cdar.html", user, **context)


@router.get("/cdar/{message}/download")
def cdar_download(message: str, site: Site, user: SignedIn) -> Response:
    rt = site.rt
    usable = message.isascii() and message.isdigit() and 0 < int(message) <= params.MAX_INT
    rec = rt.store.cdar_get(int(message)) if usable else None
    if rec is None or not cdar.visible(user, rec):
        raise Refused(404, "not-found")
    try:
        data = cdarview.archived_bytes(rt.archive, rec.sha256)
    except cdarview.NotArchived:  # never serve bytes that no longer match their SHA-256
        raise Refused(500, "not-found") from None
    return Response(
        data,
        media_type="application/xml",
        headers={
            "Content-Disposition": f'attachment; filename="{cdarview.file_name(rec)}"',
            "X-Content-SHA256": rec.sha256,
        },
    )
