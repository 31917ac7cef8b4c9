"""The store's part for the "Suivi des flux" web application (relais/web): its users and the flow list
with filters, search and keyset pagination (partners' pauses and modes: flows/store/partners.py).

A change of a user's credentials or rights (password, disabled, role or partner) ends their open web
sessions (``web_sessions``, flows/store/sessions.py) in the same transaction, whoever makes it: the
web application, `relais users` or an OpenID Connect sign-in.

A mixin of ``flows.store.Store`` (which provides ``self.engine``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa

from flows.domain.model import Flag, Flow, utcnow
from flows.store import tables as t
from flows.store.records import _flow, current_findings

ROLES = ("ops", "partner", "viewer")
#: Columns the flow list sorts by (always then by id, so that the keyset is total).
SORTS = {"id": "id", "received": "received_at", "partner": "partner", "status": "status", "invoices": "invoice_count"}


@dataclasses.dataclass(frozen=True, slots=True)
class WebUser:
    name: str
    role: str
    partner: str | None
    password_hash: str | None
    disabled: bool
    created_at: dt.datetime
    oidc_issuer: str | None = None  # the OpenID Connect identity linked at its first sign-in (relais/web/auth/oidc.py)
    oidc_sub: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class FlowQuery:
    """What the flow list shows: filters (all optional), a search, an order and a page."""

    partner: str | None = None  # a partner user's own partner is forced here by relais/web
    statuses: Sequence[str] = ()
    channel: str | None = None
    flow_code: str | None = None  # e.g. IN_DP_E1_UBL_INVOICE (flows.domain.model.FlowCode)
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    search: str | None = None  # a flow id, an invoice number, a SIRET (buyer or supplier), a file name's part
    name: str | None = None  # part of the file's name, any case (the API's `name` filter)
    sort: str = "id"
    descending: bool = True
    after: tuple[str, str] | None = None  # keyset: (sort value, flow id) of the previous page's last row
    limit: int = 50


class WebRepo:
    engine: sa.Engine

    # ---- users ------------------------------------------------------------------------------

    def add_web_user(self, name: str, role: str, partner: str | None, password_hash: str | None) -> WebUser:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if (role == "partner") != bool(partner):
            raise ValueError("a partner user names its partner (--partner), and only a partner user does")
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(t.web_users).values(
                    name=name,
                    role=role,
                    partner=partner,
                    password_hash=password_hash,
                    disabled=False,
                    created_at=utcnow(),
                )
            )
        user = self.web_user(name)
        assert user is not None
        return user

    def web_user(self, name: str) -> WebUser | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.web_users).where(t.web_users.c.name == name)).mappings().first()
        return _user(row) if row else None

    def web_users(self) -> list[WebUser]:
        with self.engine.connect() as conn:
            return [_user(r) for r in conn.execute(sa.select(t.web_users).order_by(t.web_users.c.name)).mappings()]

    def set_web_user(self, name: str, *, disabled: bool | None = None, password_hash: str | None = None) -> bool:
        """Disable or enable a user, or set their password; disabling and a new password end every open
        session of the user (the web application opens a new one for a user who changed their own)."""
        values: dict[str, object] = {}
        if disabled is not None:
            values["disabled"] = disabled
        if password_hash is not None:
            values["password_hash"] = password_hash
        with self.engine.begin() as conn:
            done = conn.execute(sa.update(t.web_users).where(t.web_users.c.name == name).values(**values)).rowcount
            if done == 1 and (disabled or password_hash is not None):
                end_sessions(conn, name, "user disabled" if disabled else "password changed")
            return done == 1

    def set_web_role(self, name: str, role: str, partner: str | None) -> bool:
        """Give an active user this role (and partner), without a password: a user whose identity the
        organisation's OpenID Connect provider vouches for (relais/web/auth/oidc.py). A change of role, of
        partner or a password dropped ends the user's open sessions."""
        c = t.web_users.c
        with self.engine.begin() as conn:
            before = conn.execute(sa.select(c.role, c.partner, c.password_hash).where(c.name == name)).first()
            done = conn.execute(
                sa.update(t.web_users)
                .where(c.name == name, c.disabled.is_(False))
                .values(role=role, partner=partner, password_hash=None)
            ).rowcount
            if done == 1 and before is not None and tuple(before) != (role, partner, None):
                end_sessions(conn, name, "role changed" if tuple(before)[:2] != (role, partner) else "password dropped")
            return done == 1

    def link_web_identity(self, name: str, issuer: str, sub: str) -> bool:
        """Link a user not linked yet to an OpenID Connect identity (issuer, sub); False when the user is
        already linked (to this identity or another: the caller compares) or absent."""
        c = t.web_users.c
        with self.engine.begin() as conn:
            return (
                conn.execute(
                    sa.update(t.web_users)
                    .where(c.name == name, c.oidc_sub.is_(None), c.oidc_issuer.is_(None))
                    .values(oidc_issuer=issuer, oidc_sub=sub)
                ).rowcount
                == 1
            )

    def web_user_by_identity(self, issuer: str, sub: str) -> WebUser | None:
        c = t.web_users.c
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(t.web_users).where(c.oidc_issuer == issuer, c.oidc_sub == sub))
                .mappings()
                .first()
            )
        return _user(row) if row else None

    def resend_returns(self, flow_id: str) -> int:
        """Queue a flow's return flows already sent to be sent again, under the same names (ops resend a
        report a partner lost); how many."""
        o = t.outbox.c
        with self.engine.begin() as conn:
            return conn.execute(
                sa.update(t.outbox)
                .where(o.flow_id == flow_id, o.kind == "return", o.status == "sent")
                .values(
                    status="pending",
                    attempts=0,
                    next_attempt_at=None,
                    last_error=None,
                    leased_by=None,
                    lease_until=None,
                )
            ).rowcount

    # ---- the flow list ----------------------------------------------------------------------

    def query_flows(self, q: FlowQuery) -> tuple[list[Flow], tuple[str, str] | None]:
        """One page of flows and the keyset of the next page (None: last page). The keyset is on
        (sort column, id), served by the (partner, id), (status, id) and primary key indexes."""
        c = t.flows.c
        col = getattr(c, SORTS.get(q.sort, "id"))
        stmt = sa.select(t.flows)
        if q.partner:
            stmt = stmt.where(c.partner == q.partner)
        if q.statuses:
            stmt = stmt.where(c.status.in_(list(q.statuses)))
        if q.channel:
            stmt = stmt.where(c.channel == q.channel)
        if q.flow_code:
            stmt = stmt.where(c.flow_code == q.flow_code)
        if q.since:
            stmt = stmt.where(c.received_at >= q.since)
        if q.until:
            stmt = stmt.where(c.received_at < q.until)
        if q.name:
            stmt = stmt.where(sa.func.lower(c.original_name).contains(q.name.lower(), autoescape=True))
        if q.search:
            term = q.search.strip()
            i = t.invoices.c
            matching = sa.select(i.flow_id).where(
                sa.or_(i.number == term, i.buyer_siret == term, i.supplier_id == term, i.id == term)
            )
            # One IN over a UNION (not "id = term OR id IN (...)"): both sides use their indexes.
            keyed = c.id.in_(sa.union_all(sa.select(sa.literal(term.upper())), matching))
            with self.engine.connect() as conn:
                found = conn.execute(stmt.with_only_columns(c.id).where(keyed).limit(1)).first()
            # Else a part of the received file's name, any case (``lower(original_name) LIKE '%term%'``),
            # searched only when no flow has the term as a key (ids, numbers and SIRETs stay index-fast, and
            # a page and the next search alike). No index serves it: the flows are read in the page's order
            # until a page is found; a rare part reads all the flows the other filters leave (0.6-1.2 s at a
            # million flows on PostgreSQL on a busy 2-core machine; a pg_trgm GIN index would serve it).
            stmt = stmt.where(keyed if found is not None else c.original_name.icontains(term, autoescape=True))
        if q.after is not None:
            value, last_id = q.after
            key = _typed(col, value)
            if q.descending:
                stmt = stmt.where(sa.or_(col < key, sa.and_(col == key, c.id < last_id)))
            else:
                stmt = stmt.where(sa.or_(col > key, sa.and_(col == key, c.id > last_id)))
        order = (col.desc(), c.id.desc()) if q.descending else (col.asc(), c.id.asc())
        stmt = stmt.order_by(*order).limit(q.limit + 1)
        with self.engine.connect() as conn:
            flows = [_flow(r) for r in conn.execute(stmt).mappings()]
        if len(flows) <= q.limit:
            return flows, None
        flows = flows[: q.limit]
        last = flows[-1]
        value = getattr(last, col.key)
        return flows, (_keyset_text(value), last.id)

    def first_findings(self, flow_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """{flow id: (rule, message)} of the first fatal current finding of each of `flow_ids` that has
        one: why a flow of the list was rejected (or partly). One query over the flows' findings index."""
        if not flow_ids:
            return {}
        e = t.validation_errors.c
        first = (
            sa.select(sa.func.min(e.id))
            .where(e.flow_id.in_(list(flow_ids)), e.flag == str(Flag.FATAL), current_findings())
            .group_by(e.flow_id)
        )
        with self.engine.connect() as conn:
            return {
                r.flow_id: (r.rule, r.message)
                for r in conn.execute(sa.select(e.flow_id, e.rule, e.message).where(e.id.in_(first)))
            }

    def flow_counts_by_status(self, partner: str | None = None) -> dict[str, int]:
        c = t.flows.c
        q = sa.select(c.status, sa.func.count()).group_by(c.status)
        if partner:
            q = q.where(c.partner == partner)
        with self.engine.connect() as conn:
            return {s: n for s, n in conn.execute(q)}


def _keyset_text(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


def _typed(col: sa.ColumnElement[object], value: str) -> object:
    """The keyset value back in the column's type (from the page link)."""
    if col.key == "invoice_count":
        return int(value)
    if col.key == "received_at":
        parsed = dt.datetime.fromisoformat(value)
        return parsed.astimezone(dt.UTC) if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return value


def _user(r: sa.RowMapping) -> WebUser:
    created = r["created_at"]
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    return WebUser(
        name=r["name"],
        role=r["role"],
        partner=r["partner"],
        password_hash=r["password_hash"],
        disabled=bool(r["disabled"]),
        created_at=created,
        oidc_issuer=r.get("oidc_issuer"),
        oidc_sub=r.get("oidc_sub"),
    )


def end_sessions(conn: sa.Connection, name: str, why: str, keep: str | None = None) -> int:
    """End a user's open web sessions (but `keep`, a session id), in the caller's transaction; how many."""
    c = t.web_sessions.c
    stmt = sa.update(t.web_sessions).where(c.user_name == name, c.revoked_at.is_(None))
    if keep is not None:
        stmt = stmt.where(c.id != keep)
    return conn.execute(stmt.values(revoked_at=utcnow(), revoked_why=why[:200])).rowcount
