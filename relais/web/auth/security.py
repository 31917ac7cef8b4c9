"""Who is asking, and may they: sessions, CSRF tokens, login throttling, roles.

- The session is a record in the store named by a random token in a signed cookie (Starlette's
  SessionMiddleware: HttpOnly, SameSite=Strict, Secure behind HTTPS); relais/web/auth/sessions.py reads it
  on every request, so that a session ended (logout, password, role, disabled user) or too old is out
  at once.
- Every state-changing request (POST) carries the session's CSRF token in a ``csrf`` form field;
  without it, or with another, it is refused (403) and audited.
- Login attempts are counted *before* the password is checked: each attempt reserves a slot per
  username (`MAX_FAILURES` within `WINDOW` seconds) and per client address (`MAX_CLIENT_FAILURES`,
  whatever the names tried); an attempt finding no free slot locks the key for `LOCKOUT` seconds (429,
  the password not checked). However many attempts run at once, no more than the limit reach the
  password check. A success frees the user's slots taken up to it and its own slot of the address (not
  the address's earlier ones: one good account does not reset an address that tries others), so an
  office's many right logins behind one address never lock it.
- Roles: ``ops`` sees and does everything; ``partner`` sees only its own partner's flows; ``viewer``
  reads everything and acts on nothing.

>>> t = Throttle()
>>> [t.reserve("u", "1.2.3.4", now=float(k)) is not None for k in range(MAX_FAILURES + 1)]
[True, True, True, True, True, False]
>>> t.reserve("u", "5.6.7.8", now=10.0), t.reserve("v", "1.2.3.4", now=10.0) is not None
(None, True)
>>> t.reserve("u", "5.6.7.8", now=100.0) is not None
True
>>> ok = t.reserve("w", "9.9.9.9", now=0.0); t.succeeded(ok); t.reserve("w", "9.9.9.9", now=1.0) is not None
True
>>> office = Throttle()  # 50 right logins of 10 people from one address: never locked
>>> sum(1 for k in range(50) if (tk := office.reserve(f"p{k % 10}", "10.0.0.1", now=k)) and not office.succeeded(tk))
50
>>> office.reserve("p0", "10.0.0.1", now=60.0) is not None
True
"""

from __future__ import annotations

import collections
import hmac
import secrets
import threading
import time

from flows.store.web import WebUser

MAX_FAILURES = 5
MAX_CLIENT_FAILURES = 20
WINDOW = 300.0
LOCKOUT = 60.0


MIN_PASSWORD = 12  # characters of a password set by `relais users password` or /account/password


class Throttle:
    """Login attempts per key (username, client address) in this server process."""

    def __init__(self) -> None:
        self._slots: dict[str, collections.deque[tuple[float, int]]] = collections.defaultdict(collections.deque)
        self._locked: dict[str, float] = {}
        self._seq = 0
        self._lock = threading.Lock()

    def reserve(self, username: str, client: str, now: float | None = None) -> tuple[str, str, int] | None:
        """A slot for one attempt of `username` from `client`, taken before its password is checked
        (the ticket for `succeeded`); None when either key is locked or full (then locked)."""
        now = time.monotonic() if now is None else now
        keys = (f"u:{username}", f"c:{client}")
        with self._lock:
            if any(self._locked.get(k, -1.0) > now for k in keys):
                return None
            full = False
            for key in keys:
                seen = self._slots[key]
                while seen and seen[0][0] < now - WINDOW:
                    seen.popleft()
                if len(seen) >= (MAX_FAILURES if key.startswith("u:") else MAX_CLIENT_FAILURES):
                    self._locked[key] = now + LOCKOUT
                    seen.clear()
                    full = True
            if full:
                return None
            self._seq += 1
            for key in keys:
                self._slots[key].append((now, self._seq))
            return username, client, self._seq

    def succeeded(self, ticket: tuple[str, str, int]) -> None:
        """The attempt of `ticket` was right: the user's slots taken up to it are freed, and the address's
        slot of this attempt only (a right password counts against nobody, yet one valid account does
        not clear what its address tried on others); a lockout already in force stays."""
        username, client, seq = ticket
        with self._lock:
            seen = self._slots.get(f"u:{username}")
            while seen and seen[0][1] <= seq:
                seen.popleft()
            mine = self._slots.get(f"c:{client}")
            if mine:
                self._slots[f"c:{client}"] = collections.deque(s for s in mine if s[1] != seq)


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
