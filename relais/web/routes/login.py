"""Signing in with a password and out: ``GET /login`` (the form, with a CSRF token of its own), ``POST
/login`` (throttled per user and client, refusals counted without growing the audit log) and ``POST
/logout``. Signing in through the organisation's provider: relais/web/routes/oidc.py."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from relais.compose import Runtime
from relais.web.auth import security, sessions
from relais.web.auth.passwords import verify_password
from relais.web.routes.common import MaybeUser, Refused, Site, audit, render

router = APIRouter()


def refuse_anonymous(rt: Runtime, client: str, target: str | None, status: int, detail: str) -> None:
    """A login refused before anyone is known: counted per (client, minute) in `audit_refusals`, so an
    anonymous client cannot grow the audit log (flows/store/audit.py); /audit shows the counts."""
    rt.store.audit_refusal(
        client, "web.login", principal=security.principal(None), http_status=status, target=target, detail=detail
    )


@router.get("/login")
def login_form(request: Request) -> Response:
    """The login form, with a CSRF token of its own (a pre-session): no other site can log a visitor
    in under an account of its choosing (login CSRF)."""
    ended = request.session.pop("ended", None)
    if not isinstance(request.session.get("csrf"), str):
        request.session["csrf"] = security.new_csrf()
    notice = f"session-{ended}" if ended in ("revoked", "expired", "idle") else None
    return render(
        request, "login.html", None, next=security.local_path(request.query_params.get("next"), "/"), notice=notice
    )


@router.post("/login")
async def login(request: Request, site: Site) -> Response:
    rt = site.rt
    form = await request.form()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    target = security.local_path(form.get("next") or "/flows", "/flows")
    client = request.client.host if request.client else "?"
    if not security.csrf_ok(request.session.get("csrf"), form.get("csrf")):
        await run_in_threadpool(refuse_anonymous, rt, client, username, 403, "no login form token")
        request.session["csrf"] = security.new_csrf()
        return render(request, "login.html", None, status=403, error="csrf", next=target)
    ticket = site.throttle.reserve(username, client)  # counted before the check: N at once check at most the limit
    if ticket is None:
        await run_in_threadpool(refuse_anonymous, rt, client, username, 429, "throttled")
        return render(request, "login.html", None, status=429, error="throttled", next=target)
    user = await run_in_threadpool(rt.store.web_user, username)
    hashed = user.password_hash if user is not None and not user.disabled else None
    if not await run_in_threadpool(verify_password, hashed, password):
        await run_in_threadpool(refuse_anonymous, rt, client, username, 401, "bad credentials")
        return render(request, "login.html", None, status=401, error="bad-login", next=target)
    site.throttle.succeeded(ticket)
    await run_in_threadpool(sessions.begin, request, rt, username)
    await run_in_threadpool(audit, rt, user, "web.login", username, "ok", 303, f"from {client}")
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
async def logout(request: Request, site: Site, user: MaybeUser) -> Response:
    if user is None:
        return RedirectResponse("/login", status_code=303)
    form = await request.form()
    if not security.csrf_ok(request.session.get("csrf"), form.get("csrf")):
        # Never a login page over a session still open (a form of an older page, another site's post).
        await run_in_threadpool(
            audit, site.rt, user, "web.logout", user.name, "refused", 403, "missing or wrong CSRF token"
        )
        raise Refused(403, "csrf")
    await run_in_threadpool(sessions.end, request, site.rt, "logout")
    await run_in_threadpool(audit, site.rt, user, "web.logout", user.name, "ok", 303, "session ended")
    return RedirectResponse("/login", status_code=303)
