"""A user's own account and everybody's sessions: the routes of the page family.

- ``GET /sessions``: open sessions. Ops see every user's, each with "log out everywhere" (``POST
  /sessions/end-user``, field ``user``: every session of that user, their own included); every user
  sees their own, with "log out my other sessions" (``POST /sessions/end-others``). A partner or a
  viewer sees nobody else's and ends nobody else's (403, audited).
- ``GET /account/password`` and ``POST /account/password``: change one's own password (the current one,
  the new one twice, at least `security.MIN_PASSWORD` characters, not the current one). It ends every
  session of the user and opens a new one for this browser (a new token: the old cookie is dead).

Every POST carries the session's CSRF token and is audited (``web.sessions.end``,
``web.account.password``), as the other actions (relais/web/routes/common.py: `checked_form`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from flows.store.web import WebUser
from relais.web import i18n
from relais.web.auth import security, sessions
from relais.web.auth.passwords import hash_password, verify_password
from relais.web.routes.common import SignedIn, Site, Web, audit, checked_form, lang_of, render

router = APIRouter()


def _open_sessions(site: Web, user: WebUser) -> list[Any]:
    now = dt.datetime.now(dt.UTC)
    who = None if user.role == "ops" else user.name
    return site.rt.store.open_web_sessions(who, now - site.policy.lifetime, now - site.policy.idle)


@router.get("/sessions")
def sessions_page(request: Request, site: Site, user: SignedIn) -> Response:
    mine = sessions.session_of(request)
    return render(
        request,
        "sessions.html",
        user,
        rows=_open_sessions(site, user),
        current=mine.id if mine else "",
        policy=site.policy,
    )


@router.post("/sessions/end-user")
async def end_user(request: Request, site: Site, user: SignedIn) -> Response:
    """Ops: end every session of one user (``user``; oneself included: then back to /login)."""
    rt = site.rt
    form = await checked_form(request, user, "web.sessions.end", "?", ops_only=False)
    target = str(form.get("user") or "")[:100]
    if user.role != "ops":
        detail = f"role {user.role} may not end others' sessions"
        await run_in_threadpool(audit, rt, user, "web.sessions.end", target, "refused", 403, detail)
        return render(request, "error.html", user, status=403, key="forbidden")
    if await run_in_threadpool(rt.store.web_user, target) is None:
        return render(request, "error.html", user, status=404, key="not-found")
    count = await run_in_threadpool(rt.store.end_web_sessions, target, f"logged out everywhere by {user.name}")
    await run_in_threadpool(audit, rt, user, "web.sessions.end", target, "ok", 303, f"{count} session(s) ended")
    if target == user.name:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)
    request.session["flash"] = f"{target} : {i18n.text(lang_of(request), 'flash-sessions-ended')} ({count})"
    return RedirectResponse("/sessions", status_code=303)


@router.post("/sessions/end-others")
async def end_others(request: Request, site: Site, user: SignedIn) -> Response:
    """Any user: end their own sessions but this one."""
    await checked_form(request, user, "web.sessions.end", user.name, ops_only=False)
    mine = sessions.session_of(request)
    count = await run_in_threadpool(
        site.rt.store.end_web_sessions, user.name, "logged out from another session", mine.id if mine else None
    )
    detail = f"{count} other session(s) ended"
    await run_in_threadpool(audit, site.rt, user, "web.sessions.end", user.name, "ok", 303, detail)
    request.session["flash"] = f"{i18n.text(lang_of(request), 'flash-sessions-ended')} ({count})"
    return RedirectResponse("/sessions", status_code=303)


@router.get("/account/password")
def password_form(request: Request, user: SignedIn) -> Response:
    return render(request, "password.html", user, min_length=security.MIN_PASSWORD)


@router.post("/account/password")
async def password_change(request: Request, site: Site, user: SignedIn) -> Response:
    rt = site.rt
    form = await checked_form(request, user, "web.account.password", user.name, ops_only=False)
    current, new, again = (str(form.get(k) or "") for k in ("current", "new", "again"))
    client = request.client.host if request.client else "?"

    async def refuse(key: str, status: int, detail: str) -> Response:
        await run_in_threadpool(audit, rt, user, "web.account.password", user.name, "refused", status, detail)
        return render(request, "password.html", user, status=status, error=key, min_length=security.MIN_PASSWORD)

    ticket = site.throttle.reserve(user.name, client)  # the current password is guessed no faster here
    if ticket is None:
        return await refuse("throttled", 429, f"throttled ({client})")
    if not await run_in_threadpool(verify_password, user.password_hash, current):
        return await refuse("pw-wrong-current", 400, "wrong current password")
    site.throttle.succeeded(ticket)
    if new != again:
        return await refuse("pw-mismatch", 400, "the two new passwords differ")
    if len(new) < security.MIN_PASSWORD:
        return await refuse("pw-short", 400, f"shorter than {security.MIN_PASSWORD} characters")
    if new == current:
        return await refuse("pw-same", 400, "the new password is the current one")
    await run_in_threadpool(rt.store.set_web_user, user.name, password_hash=hash_password(new))
    request.state.web_session = None
    await run_in_threadpool(sessions.begin, request, rt, user.name)  # this browser only, with a new token
    detail = "password changed; every other session ended"
    await run_in_threadpool(audit, rt, user, "web.account.password", user.name, "ok", 303, detail)
    request.session["flash"] = i18n.text(lang_of(request), "flash-password-changed")
    return RedirectResponse("/flows", status_code=303)
