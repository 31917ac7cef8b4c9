"""Ops' actions on one flow, from its page: reprocess it (``POST /flows/{id}/reprocess``: through the
pipeline in a background thread of the server, relais/web/background.py) and send its return flows again
(``POST /flows/{id}/resend``: at once). Plain form POSTs with the session's CSRF token, audited (principal
``web:<user>``), answered by a redirect to the flow's page with a flash message."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from flows.domain.lifecycle import FlowStatus
from relais import runner
from relais.web import background, i18n
from relais.web.routes.common import SignedIn, Site, audit, checked_form, lang_of, visible_flow
from relais.web.views import labels

router = APIRouter()


@router.post("/flows/{flow_id}/reprocess")
async def reprocess(request: Request, flow_id: str, site: Site, user: SignedIn) -> Response:
    rt = site.rt
    flow = visible_flow(rt, user, flow_id)
    await checked_form(request, user, "web.flow.reprocess", flow.id)
    refused = await run_in_threadpool(runner.requeue, rt, flow.id, f"Suivi des flux, {user.name}")
    detail = refused or f"{flow.status} -> IN_EN_ATTENTE_RETRAITEMENT_CPP: being reprocessed"
    outcome = "refused" if refused else "ok"
    await run_in_threadpool(audit, rt, user, "web.flow.reprocess", flow.id, outcome, 303, detail)
    lang = lang_of(request)
    if not refused:
        site.reprocessing.start(flow.id)
        request.session["flash"] = i18n.text(lang, "flash-reprocess")
    else:  # the page offers it only where it applies: the flow moved meanwhile (another click, a worker)
        now = rt.store.get_flow(flow.id) or flow
        key = (
            "flash-reprocess-waiting"
            if now.status is FlowStatus.IN_EN_ATTENTE_RETRAITEMENT_CPP
            else "flash-no-reprocess"
        )
        request.session["flash"] = i18n.text(lang, key).format(status=labels.flow_status_label(now.status, lang))
    return RedirectResponse(f"/flows/{flow.id}", status_code=303)


@router.post("/flows/{flow_id}/resend")
async def resend(request: Request, flow_id: str, site: Site, user: SignedIn) -> Response:
    rt = site.rt
    flow = visible_flow(rt, user, flow_id)
    await checked_form(request, user, "web.flow.resend", flow.id)
    count, sent, failed = await run_in_threadpool(background.resend, rt, flow.id)  # at once
    detail = f"{count} return flow(s) sent again: {sent} sent, {failed} failed" if count else "no return flow sent yet"
    outcome = ("error" if failed else "ok") if count else "refused"
    await run_in_threadpool(audit, rt, user, "web.flow.resend", flow.id, outcome, 303, detail)
    say = i18n.text(lang_of(request), "flash-resend" if count else "flash-resend-none").format(sent=sent, failed=failed)
    request.session["flash"] = say + (" " + i18n.text(lang_of(request), "flash-resend-retry") if failed else "")
    return RedirectResponse(f"/flows/{flow.id}", status_code=303)
