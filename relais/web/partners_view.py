"""Qualification before production on the web: the landing page's "Partenaires en qualification" table
(`qualification_rows`, shown by templates/_home_qualification.html) and the ops action that switches a
partner to production (``POST /qualification/{partner}/production``: CSRF token, ops role, audited),
which calls the same core function as ``relais partners production P``
(`relais.compose.Runtime.switch_partner_mode`).

A partner is in qualification when ops' latest switch says so, else its partner file's ``mode``
(connectors/partners.py). Its pass rate is the share of its flows processed in qualification that were
integrated whole (IN_INTEGRE) among all its flows processed in qualification.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from flows.domain.lifecycle import FlowStatus
from flows.store.web import WebUser
from relais.compose import Runtime
from relais.web import i18n, params, security

#: The qualification table's and action's words, in both languages (relais/web/i18n.py).
i18n.add(
    fr={
        "qualification": "Qualification",
        "qualification-title": "Flux de qualification : jugé et répondu, rien n'est transmis aux destinataires",
        "in-qualification": "Partenaires en qualification",
        "qualif-received": "Flux reçus",
        "qualif-integrated": "Intégrés",
        "qualif-partial": "Intégrés partiellement",
        "qualif-rejected": "Rejetés",
        "qualif-pass-rate": "Taux de réussite",
        "qualif-since": "Mode décidé par",
        "qualif-file": "fichier du partenaire",
        "to-production": "Passer en production",
        "to-production-confirm": "Passer ce partenaire en production ? Ses prochains flux seront transmis aux destinataires.",
        "flash-production": "passé en production : ses prochains flux seront transmis",
    },
    en={
        "qualification": "Qualification",
        "qualification-title": "Qualification flow: judged and answered, nothing is delivered to recipients",
        "in-qualification": "Partners in qualification",
        "qualif-received": "Flows received",
        "qualif-integrated": "Integrated",
        "qualif-partial": "Partially integrated",
        "qualif-rejected": "Rejected",
        "qualif-pass-rate": "Pass rate",
        "qualif-since": "Mode set by",
        "qualif-file": "partner file",
        "to-production": "Switch to production",
        "to-production-confirm": "Switch this partner to production? Its next flows will be delivered to recipients.",
        "flash-production": "switched to production: its next flows will be delivered",
    },
)


def qualification_rows(rt: Runtime, user: WebUser | None) -> list[dict[str, Any]]:
    """The partners in qualification that `user` sees, with their qualification flows' counts and pass
    rate (one query for the switches, one aggregate over those partners' flows)."""
    if user is None:
        return []
    switches = rt.store.partner_modes()
    found = rt.partners
    ids = [
        pid
        for pid in sorted(found)
        if security.sees_partner(user, pid) and rt.partner_mode(pid, switches) == "qualification"
    ]
    counts = rt.store.qualification_counts(ids)
    rows = []
    for pid in ids:
        by_status = counts.get(pid, {})
        received = sum(by_status.values())
        integrated = by_status.get(str(FlowStatus.IN_INTEGRE), 0)
        switch = switches.get(pid)
        rows.append(
            {
                "partner": pid,
                "name": found[pid].name,
                "received": received,
                "integrated": integrated,
                "partial": by_status.get(str(FlowStatus.IN_INTEGRE_PARTIEL), 0),
                "rejected": by_status.get(str(FlowStatus.IN_REJETE), 0),
                "rate": f"{100 * integrated / received:.0f} %" if received else "—",
                "switch": switch,
            }
        )
    return rows


def install(
    app: FastAPI,
    rt: Runtime,
    *,
    templates: Jinja2Templates,
    user_of: Callable[[Request], WebUser | None],
    lang_of: Callable[[Request], str],
    to_login: Callable[[Request], Response],
    checked: Callable[[Request, WebUser, str, str], Awaitable[dict[str, Any]]],
) -> None:
    """The landing page's data function (a template global) and the switch-to-production action."""
    templates.env.globals["qualification_rows"] = lambda user: qualification_rows(rt, user)

    @app.post("/qualification/{partner}/production")
    async def to_production(request: Request, partner: str) -> Response:
        """Ops switch a partner in qualification to production (audited, principal ``web:<user>``); a
        partner Relais has no good file for is a 404, as any unknown address."""
        user = user_of(request)
        if user is None:
            return to_login(request)
        if not params.usable_path(partner, 128) or not security.sees_partner(user, partner):
            raise StarletteHTTPException(status_code=404)
        form = await checked(request, user, "web.partner.production", partner)
        reason = str(form.get("reason") or "").strip()[:500] or None
        if await run_in_threadpool(lambda: rt.partners.get(partner)) is None:
            await run_in_threadpool(
                rt.store.audit,
                security.principal(user),
                "web.partner.production",
                target=partner,
                outcome="refused",
                http_status=404,
                detail="no such partner",
            )
            raise StarletteHTTPException(status_code=404)
        refused = await run_in_threadpool(
            rt.switch_partner_mode, partner, "production", security.principal(user), reason
        )
        request.session["flash"] = f"{partner} : {refused or i18n.text(lang_of(request), 'flash-production')}"
        return RedirectResponse("/", status_code=303)
