"""What every route of the web application shares: the application's parts (`Web`, on ``app.state.web``),
the dependencies that give a route its user (`SignedIn`: the signed-in user, else a redirect to /login;
`Ops`: an ops user, else a 404 page), `render` (a page in the visitor's language), the checked form of an
action (CSRF token, role: `checked_form`) and its audit row.

A refusal is an exception turned into a page by relais/web/routes/errors.py: `Refused` (an error page
with its status) and `ToLogin` (the redirect to /login, which comes back to the asked page).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from flows.domain.model import Flow
from flows.store.web import WebUser
from relais.compose import Runtime
from relais.web import background, i18n, params
from relais.web.auth import security, sessions
from relais.web.views import dashboard


@dataclasses.dataclass(frozen=True)
class Web:
    """The application's parts, made once by `relais.web.app.create_app`."""

    rt: Runtime
    policy: sessions.Policy
    templates: Jinja2Templates
    throttle: security.Throttle
    charts: dashboard.Cache  # the landing and rejects pages' figures, computed at most every N seconds
    reprocessing: background.Reprocessing


class Refused(Exception):
    """An error page (error.html) with this status and message key."""

    def __init__(self, status: int, key: str) -> None:
        self.status, self.key = status, key


class ToLogin(Exception):
    """Nobody is signed in (or the session is over): the login page, which comes back here."""


def web(request: Request) -> Web:
    found: Web = request.app.state.web
    return found


def maybe_user(request: Request) -> WebUser | None:
    """The request's signed-in user, or None (blocking: FastAPI calls it in the thread pool)."""
    w = web(request)
    return sessions.current(request, w.rt, w.policy)


def signed_in(user: Annotated[WebUser | None, Depends(maybe_user)]) -> WebUser:
    if user is None:
        raise ToLogin()
    return user


def ops_only(user: Annotated[WebUser, Depends(signed_in)]) -> WebUser:
    """An ops user; any other is answered as for an address that does not exist."""
    if user.role != "ops":
        raise Refused(404, "not-found")
    return user


Site = Annotated[Web, Depends(web)]
MaybeUser = Annotated[WebUser | None, Depends(maybe_user)]
SignedIn = Annotated[WebUser, Depends(signed_in)]
Ops = Annotated[WebUser, Depends(ops_only)]


def lang_of(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get("relais_lang") or "fr"
    return lang if lang in i18n.LANGS else "fr"  # a bad ?lang= is a 400 (render), in French


def own(user: WebUser) -> str | None:
    """The partner a partner user sees; None (every partner) for the others."""
    return user.partner if user.role == "partner" else None


def render(request: Request, template: str, user: WebUser | None, status: int = 200, **ctx: Any) -> Response:
    """The page `template` in the visitor's language (``?lang=``, then its cookie, else French)."""
    if status < 400:
        params.language(request.query_params)  # BadParam("lang") for a language the pages do not speak
    lang = lang_of(request)
    response = web(request).templates.TemplateResponse(
        request,
        template,
        {
            "t": lambda key: i18n.text(lang, key),
            "lang": lang,
            "user": user,
            "may_act": user is not None and security.may_act(user),
            "csrf": request.session.get("csrf", ""),
            "flash": request.session.pop("flash", None),
            **ctx,
        },
        status_code=status,
    )
    if request.query_params.get("lang") in i18n.LANGS:
        response.set_cookie("relais_lang", lang, max_age=365 * 86400, samesite="strict", httponly=True)
    return response


def audit(
    rt: Runtime, user: WebUser | None, action: str, target: str | None, outcome: str, status: int, detail: str
) -> None:
    """One audit row of a signed-in user's action (principal ``web:<user>``; blocking)."""
    rt.store.audit(security.principal(user), action, target=target, outcome=outcome, http_status=status, detail=detail)


async def checked_form(
    request: Request, user: WebUser, action: str, target: str, *, ops_only: bool = True
) -> dict[str, Any]:
    """The POST's form once its CSRF token and (`ops_only`) the user's role allow it (else `Refused`,
    audited)."""
    rt = web(request).rt
    form = dict(await request.form())
    if not security.csrf_ok(request.session.get("csrf"), form.get("csrf")):
        await run_in_threadpool(audit, rt, user, action, target, "refused", 403, "missing or wrong CSRF token")
        raise Refused(403, "csrf")
    if ops_only and not security.may_act(user):
        await run_in_threadpool(audit, rt, user, action, target, "refused", 403, f"role {user.role} may not act")
        raise Refused(403, "forbidden")
    return form


def visible_flow(rt: Runtime, user: WebUser, flow_id: str) -> Flow:
    """The flow `flow_id` if `user` may see it; else `Refused` 404, exactly as an unknown one."""
    flow = rt.store.get_flow(flow_id) if params.usable_path(flow_id, 64) else None
    if flow is None or not security.sees_partner(user, flow.partner):
        raise Refused(404, "not-found")
    return flow
