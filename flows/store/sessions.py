"""The store's part for the web application's server-side sessions (``web_sessions``).

The browser holds a random token (256 bits) in its signed session cookie; the store keeps only the
token's SHA-256 (`session_id`), so that reading the table opens no session. A session is open while it
is not revoked, younger than the absolute lifetime and seen within the idle timeout (both decided by
relais/web/auth/sessions.py, which passes them here). Revoked rows stay (who ended it, why) until they are
older than `KEEP_DAYS`.

A mixin of ``flows.store.Store`` (which provides ``self.engine``).

>>> len(session_id("x")), session_id("x") == session_id("x"), session_id("x") == session_id("y")
(64, True, False)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa

from flows.domain.model import utcnow
from flows.store import tables as t
from flows.store.records import _aware, _aware_required
from flows.store.web import WebUser, _user, end_sessions

#: Ended or expired sessions are forgotten after this many days (the audit log keeps the logins and logouts).
KEEP_DAYS = 30


def session_id(token: str) -> str:
    """The stored id of a session token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclasses.dataclass(frozen=True, slots=True)
class WebSession:
    id: str  # SHA-256 of the browser's token
    user: str
    created_at: dt.datetime
    last_seen_at: dt.datetime
    revoked_at: dt.datetime | None
    revoked_why: str | None
    client: str | None
    user_agent: str | None


class SessionsRepo:
    engine: sa.Engine

    def open_web_session(self, user: str, client: str | None, user_agent: str | None) -> tuple[str, WebSession]:
        """A new session for `user`: (the token for the browser's cookie, the stored record)."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        session = WebSession(
            session_id(token),
            user,
            now,
            now,
            None,
            None,
            (client or "")[:100] or None,
            (user_agent or "")[:300] or None,
        )
        c = t.web_sessions.c
        with self.engine.begin() as conn:
            conn.execute(sa.delete(t.web_sessions).where(c.created_at < now - dt.timedelta(days=KEEP_DAYS)))
            conn.execute(
                sa.insert(t.web_sessions).values(
                    id=session.id,
                    user_name=user,
                    created_at=now,
                    last_seen_at=now,
                    client=session.client,
                    user_agent=session.user_agent,
                )
            )
        return token, session

    def web_session(self, token: str) -> tuple[WebSession, WebUser] | None:
        """The session a browser's token names, with its user (one query); None when unknown."""
        s, u = t.web_sessions, t.web_users
        stmt = (
            sa.select(s, *[col.label(f"u_{col.key}") for col in u.c])
            .join(u, u.c.name == s.c.user_name)
            .where(s.c.id == session_id(token))
        )
        with self.engine.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        if row is None:
            return None
        user = _user({k[2:]: v for k, v in row.items() if k.startswith("u_")})  # type: ignore[arg-type]
        return _session(row), user

    def touch_web_session(self, sid: str, older_than: dt.datetime) -> bool:
        """Note that the session was seen now, unless it was seen after `older_than` (so that a busy
        session is written at most once per interval, whatever the concurrency)."""
        c = t.web_sessions.c
        with self.engine.begin() as conn:
            return (
                conn.execute(
                    sa.update(t.web_sessions)
                    .where(c.id == sid, c.revoked_at.is_(None), c.last_seen_at < older_than)
                    .values(last_seen_at=utcnow())
                ).rowcount
                == 1
            )

    def end_web_session(self, sid: str, why: str) -> bool:
        c = t.web_sessions.c
        with self.engine.begin() as conn:
            return (
                conn.execute(
                    sa.update(t.web_sessions)
                    .where(c.id == sid, c.revoked_at.is_(None))
                    .values(revoked_at=utcnow(), revoked_why=why[:200])
                ).rowcount
                == 1
            )

    def end_web_sessions(self, user: str, why: str, keep: str | None = None) -> int:
        """End every open session of `user` but `keep` (a session id); how many."""
        with self.engine.begin() as conn:
            return end_sessions(conn, user, why, keep)

    def open_web_sessions(
        self, user: str | None, created_after: dt.datetime, seen_after: dt.datetime
    ) -> list[WebSession]:
        """Open sessions (not revoked, created after `created_after`, seen after `seen_after`), of one
        user or of all, newest first."""
        c = t.web_sessions.c
        stmt = sa.select(t.web_sessions).where(
            c.revoked_at.is_(None), c.created_at > created_after, c.last_seen_at > seen_after
        )
        if user is not None:
            stmt = stmt.where(c.user_name == user)
        with self.engine.connect() as conn:
            return [_session(r) for r in conn.execute(stmt.order_by(c.user_name, c.created_at.desc())).mappings()]


def _session(r: sa.RowMapping) -> WebSession:
    return WebSession(
        id=r["id"],
        user=r["user_name"],
        created_at=_aware_required(r["created_at"]),
        last_seen_at=_aware_required(r["last_seen_at"]),
        revoked_at=_aware(r["revoked_at"]),
        revoked_why=r["revoked_why"],
        client=r["client"],
        user_agent=r["user_agent"],
    )
