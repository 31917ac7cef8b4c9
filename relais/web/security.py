"""Who is asking, and may they: sessions, CSRF tokens, login throttling, roles.

- The session is a signed cookie (Starlette's SessionMiddleware: HttpOnly, SameSite=Strict, Secure
  behind HTTPS) holding the user's name and a CSRF token; the user is read again on every request, so
  a disabled user is out at once.
- Every state-changing request (POST) carries the session's CSRF token in a ``csrf`` form field;
  without it, or with another, it is refused (403) and audited.
- Failed logins are throttled per username (after `MAX_FAILURES` within `WINDOW` seconds) and per
  client address (after `MAX_CLIENT_FAILURES`, whatever the names tried): further attempts are refused
  for `LOCKOUT` seconds (429), without checking the password.
- Roles: ``ops`` sees and does everything; ``partner`` sees only its own partner's flows; ``viewer``
  reads everything and acts on nothing.

>>> t = Throttle()
>>> [t.allowed("u", "1.2.3.4", now=0.0) for _ in range(2)]
[True, True]
>>> for k in range(MAX_FAILURES): t.failed("u", "1.2.3.4", now=float(k))
>>> t.allowed("u", "5.6.7.8", now=10.0), t.allowed("v", "1.2.3.4", now=10.0), t.allowed("u", "5.6.7.8", now=100.0)
(False, True, True)
"""

from __future__ import annotations

import collections
import hmac
import secrets
import threading
import time

from flows.store_web import WebUser

MAX_FAILURES = 5
MAX_CLIENT_FAILURES = 20
WINDOW = 300.0
LOCKOUT = 60.0


class Throttle:
    """Failed logins per key (username, client address) in this server process."""

    def __init__(self) -> None:
        self._failures: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._locked: dict[str, float] = {}
        self._lock = threading.Lock()

    def allowed(self, username: str, client: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            return all(self._locked.get(k, -1.0) <= now for k in (f"u:{username}", f"c:{client}"))

    def failed(self, username: str, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            for key in (f"u:{username}", f"c:{client}"):
                seen = self._failures[key]
                seen.append(now)
                while seen and seen[0] < now - WINDOW:
                    seen.popleft()
                if len(seen) >= (MAX_FAILURES if key.startswith("u:") else MAX_CLIENT_FAILURES):
                    self._locked[key] = now + LOCKOUT
                    seen.clear()

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(f"u:{username}", None)


def local_path(target: object, default: str = "/") -> str:
    """`target` when it is a path on this site, else `default` (no open redirect: ``//host``,
    ``/\\host``, a scheme or control characters are refused).

    >>> local_path("/flows?q=1"), local_path("//evil.example"), local_path("/\\evil.example"), local_path("https://x")
    ('/flows?q=1', '/', '/', '/')
    """
    if (
        not isinstance(target, str)
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 32 for c in target)
    ):
        return default
    return target


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(session_token: object, sent: object) -> bool:
    return (
        isinstance(session_token, str)
        and isinstance(sent, str)
        and bool(sent)
        and hmac.compare_digest(session_token.encode(), sent.encode())
    )


def may_act(user: WebUser) -> bool:
    return user.role == "ops"


def sees_partner(user: WebUser, partner: str) -> bool:
    return user.role != "partner" or user.partner == partner


def principal(user: WebUser | None) -> str:
    return f"web:{user.name}" if user else "web:anonymous"
