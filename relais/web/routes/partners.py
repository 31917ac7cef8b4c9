"""Ops' actions on a partner: pause or resume its intake (``POST /partners/{partner}/pause|resume``, from
the flows list, the flow page or /waiting) and switch a partner in qualification to production (``POST
/qualification/{partner}/production``, from the landing page's table, relais/web/views/qualification.py),
which calls the same core function as ``relais partners production P``
(`relais.compose.Runtime.switch_partner_mode`). CSRF token, ops role, audited (principal ``web:<user>``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors import partners as partners_config
from flows.store.web import FlowQuery
from relais.compose import Runtime
from relais.web import i18n, params
from relais.web.auth import security
from relais.web.routes.common import Refused, SignedIn, Site, audit, checked_form, lang_of

router = APIRouter()


@router.post("/partners/{partner}/{action}")
async def partner_action(request: Request, partner: str, action: str, site: Site, user: SignedIn) -> Response:
    rt = site.rt
    if action not in ("pause", "resume") or not security.sees_partner(user, partner):
        raise Refused(404, "not-found")
    if not await run_in_threadpool(_known_partner, rt, partner):
        raise Refused(404, "not-found")  # no partner file, drop zone, flow or pause: a typo, not a partner
    form = await checked_form(request, user, f"web.partner.{action}", partner)
    if action == "pause":
        done = await run_in_threadpool(rt.store.pause_partner, partner, security.principal(user), form.get("reason"))
    else:
        done = await run_in_threadpool(rt.store.resume_partner, partner)
    detail = f"intake {'paused' if action == 'pause' else 'resumed'}" if done else f"already {action}d"
    await run_in_threadpool(audit, rt, user, f"web.partner.{action}", partner, "ok" if done else "refused", 303, detail)
    key = ("flash-paused" if action == "pause" else "flash-resumed") if done else f"flash-already-{action}d"
    request.session["flash"] = f"{partner} : {i18n.text(lang_of(request), key)}"
    back = str(form.get("back") or "/flows")
    return RedirectResponse(security.local_path(back, "/flows"), status_code=303)


@router.post("/qualification/{partner}/production")
async def to_production(request: Request, partner: str, site: Site, user: SignedIn) -> Response:
    """Ops switch a partner in qualification to production (audited, principal ``web:<user>``); a
    partner Relais has no good file for is a 404, as any unknown address."""
    rt = site.rt
    if not params.usable_path(partner, 128) or not security.sees_partner(user, partner):
        raise StarletteHTTPException(status_code=404)
    form = await checked_form(request, user, "web.partner.production", partner)
    reason = str(form.get("reason") or "").strip()[:500] or None
    if await run_in_threadpool(lambda: rt.partners.get(partner)) is None:
        await run_in_threadpool(audit, rt, user, "web.partner.production", partner, "refused", 404, "no such partner")
        raise StarletteHTTPException(status_code=404)
    refused = await run_in_threadpool(rt.switch_partner_mode, partner, "production", security.principal(user), reason)
    request.session["flash"] = f"{partner} : {refused or i18n.text(lang_of(request), 'flash-production')}"
    return RedirectResponse("/", status_code=303)


def _known_partner(rt: Runtime, partner: str) -> bool:
    """Whether Relais knows `partner`: a partner file (good or bad), a drop zone, a flow, or a pause."""
    if "/" in partner or "\\" in partner or partner in (".", ".."):
        return False
    if partner in rt.store.paused_partners() or (rt.settings.dropzones_dir / partner / "in").is_dir():
        return True
    found = partners_config.load(rt.settings.partners_dir)  # read again: files change while the server runs
    if partner in found or partner in found.problems or partner in found.held:
        return True
    rows, _ = rt.store.query_flows(FlowQuery(partner=partner, limit=1))
    return bool(rows)
