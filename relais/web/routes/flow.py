"""One flow's page (``GET /flows/{id}``: relais/web/views/detail.py, templates/flow.html) and its files:
the original file, one invoice of a container, a return flow sent to the partner. Bytes are served only
while they match their SHA-256 (``X-Content-SHA256``). A flow another partner owns is a 404 for a partner
user, exactly as an unknown one."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

from flows.io import split
from relais.compose import Runtime
from relais.web import params
from relais.web.routes.common import Refused, SignedIn, Site, lang_of, render, visible_flow
from relais.web.views import cdar, detail

router = APIRouter()


@router.get("/flows/{flow_id}")
def flow_page(request: Request, flow_id: str, site: Site, user: SignedIn) -> Response:
    rt = site.rt
    flow = visible_flow(rt, user, flow_id)
    table = params.invoice_filters(request.query_params, rejections=flow.rejected_count > 0)
    d = detail.flow_detail(rt, flow, table, lang=lang_of(request), partner_view=user.role == "partner")
    url = lambda **change: detail.table_url(flow, table, **change)  # noqa: E731  # the table's links
    messages = cdar.of_flow(rt, user, flow, [row["inv"].id for row in d["invoices"]])
    return render(
        request,
        "flow.html",
        user,
        d=d,
        url=url,
        as2_state=detail.as2_state,
        paused=rt.store.paused_partners(),
        **messages,
    )


@router.get("/flows/{flow_id}/file")
def flow_file(flow_id: str, site: Site, user: SignedIn) -> Response:
    flow = visible_flow(site.rt, user, flow_id)
    return _archived(site.rt, flow.sha256, _safe(flow.original_name) or flow.id, None)


@router.get("/flows/{flow_id}/invoices/{position}/file")
def invoice_file(flow_id: str, position: int, site: Site, user: SignedIn) -> Response:
    rt = site.rt
    flow = visible_flow(rt, user, flow_id)
    if flow.container is None or not rt.archive.verify(flow.sha256):
        raise Refused(500, "not-found")
    with rt.archive.open(flow.sha256) as f:
        for d in split.documents(f, flow.container, flow.original_name, rt.archive_limits):
            if d.position == position:
                pdf = d.data.startswith(b"%PDF")
                return Response(
                    d.data,
                    media_type="application/pdf" if pdf else "application/xml",
                    headers={
                        "X-Content-SHA256": hashlib.sha256(d.data).hexdigest(),
                        "Content-Disposition": f'attachment; filename="{flow.id}-{position:05d}.{"pdf" if pdf else "xml"}"',
                    },
                )
    raise Refused(404, "not-found")


@router.get("/flows/{flow_id}/returns/{row_id}")
def return_file(flow_id: str, row_id: int, site: Site, user: SignedIn) -> Response:
    rt = site.rt
    flow = visible_flow(rt, user, flow_id)
    row = next((o for o in rt.store.outbox_for_flow(flow.id) if o.id == row_id and o.archive_sha256), None)
    if row is None or row.archive_sha256 is None:
        raise Refused(404, "not-found")
    name = _safe(Path(row.destination).name) or f"{flow.id}-{row_id}.xml"
    return _archived(rt, row.archive_sha256, name, "application/xml")


def _archived(rt: Runtime, sha256: str, name: str, media_type: str | None) -> Response:
    if not rt.archive.verify(sha256):  # never serve bytes that no longer match their SHA-256
        raise Refused(500, "not-found")
    data = rt.archive.read(sha256)
    return Response(
        data,
        media_type=media_type or "application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "X-Content-SHA256": sha256},
    )


def _safe(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in base)[:200]
