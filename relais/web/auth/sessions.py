"""Server-side sessions of the web application: the cookie names a session, the store decides.

Once logged in, the signed session cookie (Starlette's SessionMiddleware) holds only a random token
(``sid``, 256 bits; and for one redirect a flash message), never the user's name nor a time: the user
is the one of the session's record (``web_sessions``, flows/store/sessions.py, which keeps only the
token's SHA-256). The session's CSRF token is derived from the token (`csrf_for`, keyed by the
server's secret) by `OnlyTheSessionInTheCookie`, not stored. Before the login, the cookie holds the
login form's CSRF token (and Authlib's state for an OpenID Connect sign-in). Every request reads
the record; the user is out (redirected to /login, which says why) when the session was revoked
(logout, password change, user disabled, role change, "log out everywhere"), is older than the
absolute lifetime (``RELAIS_WEB_SESSION_HOURS``, default 8) or was not seen for the idle timeout
(``RELAIS_WEB_IDLE_MINUTES``, default 30). The last-seen time is written at most once a minute per
session (more often only when the idle timeout is under two minutes: half of it), not on every request.

>>> p = Policy.from_env({"RELAIS_WEB_SESSION_HOURS": "2", "RELAIS_WEB_IDLE_MINUTES": "15"})
>>> p.lifetime, p.idle, p.touch
(datetime.timedelta(seconds=7200), datetime.timedelta(seconds=900), datetime.timedelta(seconds=60))
>>> Policy.from_env({}).lifetime.total_seconds() / 3600, Policy(idle_minutes=0.1).touch.total_seconds()
(8.0, 3.0)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Any

from fastapi import Request

from flows.store.sessions import WebSession
from flows.store.web import WebUser
from relais import log
from relais.compose import Runtime

_log = log.get("relais.web.sessions")


@dataclasses.dataclass(frozen=True)
class Policy:
    hours: float = 8.0
    idle_minutes: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Policy:
        env = os.environ if env is None else env
        hours = float(env.get("RELAIS_WEB_SESSION_HOURS") or 8)
        idle = float(env.get("RELAIS_WEB_IDLE_MINUTES") or 30)
        if hours <= 0 or idle <= 0:
            raise ValueError("RELAIS_WEB_SESSION_HOURS and RELAIS_WEB_IDLE_MINUTES must be positive")
        return cls(hours, idle)

    @property
    def lifetime(self) -> dt.timedelta:
        return dt.timedelta(hours=self.hours)

    @property
    def idle(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.idle_minutes)

    @property
    def touch(self) -> dt.timedelta:
        """How often a session's last-seen time is written at most."""
        return min(dt.timedelta(minutes=1), self.idle / 2)

    def ended(self, s: WebSession, user: WebUser, now: dt.datetime) -> str | None:
        """Why the session is over ("revoked", "expired", "idle"), or None while it is open."""
        if s.revoked_at is not None or user.disabled:
            return "revoked"
        if now - s.created_at >= self.lifetime:
            return "expired"
        if now - s.last_seen_at >= self.idle:
            return "idle"
        return None


def begin(request: Request, rt: Runtime, user: str) -> WebSession:
    """Open a new session for `user` (blocking: call it in a thread): a new token and CSRF token in
    the cookie, everything else in it dropped (no session fixation)."""
    client = request.client.host if request.client else None
    token, session = rt.store.open_web_session(user, client, request.headers.get("user-agent"))
    request.session.clear()
    request.session["sid"] = token  # the CSRF token follows from it (OnlyTheSessionInTheCookie)
    return session


def current(request: Request, rt: Runtime, policy: Policy) -> WebUser | None:
    """The user of the request's session, or None (anonymous, or the session is over: the cookie is
    then emptied and the login page says why)."""
    token = request.session.get("sid")
    if not isinstance(token, str):
        return None
    cached = getattr(request.state, "web_session", None)
    if cached is not None:
        return cached[1]
    found = rt.store.web_session(token)
    now = dt.datetime.now(dt.UTC)
    why = "revoked" if found is None else policy.ended(found[0], found[1], now)
    if found is None or why is not None:
        request.session.clear()
        request.session["ended"] = why
        if found is not None and found[0].revoked_at is None:
            rt.store.end_web_session(found[0].id, f"{why} (after {policy.hours} h / {policy.idle_minutes} min)")
            _log.info("web.session_ended", user=found[1].name, why=why)
        return None
    session, user = found
    if now - session.last_seen_at >= policy.touch:
        rt.store.touch_web_session(session.id, now - policy.touch)
    request.state.web_session = found
    return user


def session_of(request: Request) -> WebSession | None:
    """The request's open session, once `current` accepted it."""
    found = getattr(request.state, "web_session", None)
    return found[0] if found is not None else None


def end(request: Request, rt: Runtime, why: str) -> None:
    """End the request's session (blocking) and empty its cookie."""
    token = request.session.get("sid")
    if isinstance(token, str):
        from flows.store.sessions import session_id

        rt.store.end_web_session(session_id(token), why)
    request.session.clear()


def csrf_for(secret: str, token: str) -> str:
    """The CSRF token of the session whose token is `token`.

    >>> csrf_for("k", "t") == csrf_for("k", "t") != csrf_for("k", "u"), len(csrf_for("k", "t"))
    (True, 64)
    """
    return hmac.new(secret.encode(), b"relais-web-csrf:" + token.encode(), hashlib.sha256).hexdigest()


class OnlyTheSessionInTheCookie:
    """ASGI middleware placed inside Starlette's SessionMiddleware: while a request runs, a logged-in
    session has its CSRF token (``session["csrf"]``, derived from its token); it is taken out again
    before the cookie is written, and adding it does not make the cookie be written again."""

    def __init__(self, app: Any, secret: str) -> None:
        self.app, self.secret = app, secret

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        session = scope.get("session") if scope["type"] == "http" else None
        if session is None:
            await self.app(scope, receive, send)
            return
        token = session.get("sid")
        if isinstance(token, str):
            dict.__setitem__(session, "csrf", csrf_for(self.secret, token))  # not marked as modified

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                current = scope.get("session")
                if current is not None and isinstance(current.get("sid"), str):
                    dict.pop(current, "csrf", None)
            await send(message)

        await self.app(scope, receive, send_wrapper)
