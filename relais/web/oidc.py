"""Signing in through the organisation's OpenID Connect provider instead of local passwords.

`install(app, rt, config)` adds two routes to the web application (relais/web/app.py):

- ``GET /login/oidc``: redirect to the provider (authorization code flow, PKCE S256, ``state`` and
  ``nonce``), through Authlib's Starlette client and the provider's discovery document
  (``<issuer>/.well-known/openid-configuration``);
- ``GET /login/oidc/callback``: exchange the code (client secret and PKCE verifier), validate the ID
  token (signature by the provider's JWKS, ``iss``, ``aud``, ``nonce``, ``exp``: Authlib does it, with
  ``iss`` and ``aud`` made essential here), map its groups to a Relais role, create or update the
  user's ``web_users`` row (no password: a local login never works for it) and open the same session
  as a password login, then go to /flows.

The account is linked to the provider's identity, (issuer, ``sub``), at its first sign-in through the
provider (a new user, or an existing local user not linked yet: its password is then dropped). A later
sign-in whose ``preferred_username`` names the account but whose (issuer, ``sub``) differs is refused
(another person given the same name at the provider, or another provider), as is an identity already
linked to another account (a renamed login): ``identity-mismatch``, audited.

A refusal (no group maps to a role, a disabled user, a token that does not validate, a provider error)
is a plain-text 403, audited as ``web.login`` by ``web:oidc:<sub>`` (``web:oidc:unverified`` while no
ID token was accepted). Configuration: `OidcConfig.from_env` (docs/web-oidc.md).

The session cookie is SameSite=Strict, so a browser does not send it with the provider's redirect to
the callback (a cross-site navigation): the callback then answers a tiny page that reloads it from
this site (``hop=1``), and the cookie, holding Authlib's state, comes with that second request.

>>> c = OidcConfig("https://idp.example", "relais", "s3cret")
>>> c.role_for(["staff", "relais-partner-op-a"]), c.role_for(["relais-viewer", "relais-ops"])
(('partner', 'op-a'), ('ops', None))
>>> c.role_for(["staff"]), c.role_for(["relais-partner-op-a", "relais-partner-op-b"])
(None, None)
>>> OidcConfig.from_env({}) is None
True
>>> OidcConfig.from_env({"RELAIS_OIDC_ISSUER": "https://idp.example/realms/x", "RELAIS_OIDC_CLIENT_ID": "r",
...     "RELAIS_OIDC_CLIENT_SECRET": "s", "RELAIS_OIDC_SCOPES": "profile groups",
...     "RELAIS_OIDC_GROUP_ROLES": "edi-team=ops, acme=partner:op-a"}).scopes
('openid', 'profile', 'groups')
"""

from __future__ import annotations

import dataclasses
import html
import os
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from flows.store.web import WebUser
from relais import log
from relais.compose import Runtime
from relais.web import params, security, sessions

_log = log.get("relais.web.oidc")

NAME = "oidc"  # Authlib's client name: its state lives in the session under "_state_oidc_<state>"
DEFAULT_GROUP_ROLES: Mapping[str, str] = {"relais-ops": "ops", "relais-viewer": "viewer"}
DEFAULT_PARTNER_PREFIX = "relais-partner-"
_MAX_NAME = 100  # web_users.name, web_users.partner


@dataclasses.dataclass(frozen=True)
class OidcConfig:
    """Where the provider is, who Relais is to it, and how its claims become a Relais user.

    `group_roles` maps a group name to ``ops``, ``viewer`` or ``partner:<partner id>``; a group named
    `partner_group_prefix` + ``<partner id>`` (``relais-partner-op-a``) also makes a partner user. When
    several groups match, ops beats viewer beats partner; two different partners are refused.
    """

    issuer: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    username_claim: str = "preferred_username"
    groups_claim: str = "groups"
    group_roles: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(DEFAULT_GROUP_ROLES))
    partner_group_prefix: str = DEFAULT_PARTNER_PREFIX
    redirect_uri: str | None = None  # default: this request's <scheme://host>/login/oidc/callback

    def __post_init__(self) -> None:
        if "openid" not in self.scopes:  # without it Authlib sends no nonce and validates no ID token
            object.__setattr__(self, "scopes", ("openid", *self.scopes))
        for group, role in self.group_roles.items():
            if role not in ("ops", "viewer") and not (role.startswith("partner:") and role[8:]):
                raise ValueError(f"group {group!r}: role must be ops, viewer or partner:<partner id>, not {role!r}")

    @property
    def metadata_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OidcConfig | None:
        """The configuration from RELAIS_OIDC_* variables; None when RELAIS_OIDC_ISSUER is unset."""
        env = os.environ if env is None else env
        issuer = env.get("RELAIS_OIDC_ISSUER", "").strip()
        if not issuer:
            return None
        missing = [k for k in ("RELAIS_OIDC_CLIENT_ID", "RELAIS_OIDC_CLIENT_SECRET") if not env.get(k)]
        if missing:
            raise ValueError(f"RELAIS_OIDC_ISSUER is set but not {', '.join(missing)}")
        kwargs: dict[str, Any] = {}
        if env.get("RELAIS_OIDC_SCOPES", "").strip():
            kwargs["scopes"] = tuple(env["RELAIS_OIDC_SCOPES"].replace(",", " ").split())
        if env.get("RELAIS_OIDC_USERNAME_CLAIM", "").strip():
            kwargs["username_claim"] = env["RELAIS_OIDC_USERNAME_CLAIM"].strip()
        if env.get("RELAIS_OIDC_GROUPS_CLAIM", "").strip():
            kwargs["groups_claim"] = env["RELAIS_OIDC_GROUPS_CLAIM"].strip()
        if env.get("RELAIS_OIDC_GROUP_ROLES", "").strip():
            roles = {}
            for pair in env["RELAIS_OIDC_GROUP_ROLES"].split(","):
                group, sep, role = pair.partition("=")
                if not sep or not group.strip():
                    raise ValueError(f"RELAIS_OIDC_GROUP_ROLES: {pair.strip()!r} is not group=role")
                roles[group.strip()] = role.strip()
            kwargs["group_roles"] = roles
        if "RELAIS_OIDC_PARTNER_GROUP_PREFIX" in env:
            kwargs["partner_group_prefix"] = env["RELAIS_OIDC_PARTNER_GROUP_PREFIX"].strip()
        if env.get("RELAIS_OIDC_REDIRECT_URI", "").strip():
            kwargs["redirect_uri"] = env["RELAIS_OIDC_REDIRECT_URI"].strip()
        return cls(issuer, env["RELAIS_OIDC_CLIENT_ID"], env["RELAIS_OIDC_CLIENT_SECRET"], **kwargs)

    def role_for(self, groups: Iterable[str]) -> tuple[str, str | None] | None:
        """(role, partner) for these groups, or None when none maps to a role (or two partners do)."""
        roles: set[str] = set()
        partners: set[str] = set()
        prefix = self.partner_group_prefix
        for group in groups:
            group = group.lstrip("/")  # Keycloak's "full group path" form: /relais-ops
            mapped = self.group_roles.get(group)
            if mapped is not None and mapped.startswith("partner:"):
                partners.add(mapped[8:])
            elif mapped is not None:
                roles.add(mapped)
            elif prefix and group.startswith(prefix) and len(group) > len(prefix):
                partners.add(group[len(prefix) :])
        if "ops" in roles:
            return "ops", None
        if "viewer" in roles:
            return "viewer", None
        if len(partners) == 1 and len(p := next(iter(partners))) <= _MAX_NAME:
            return "partner", p
        return None


class _Refusal(Exception):
    """Nobody signs in: `reason` is audited, `shown` (default: `reason`) is what the browser reads."""

    def __init__(self, reason: str, sub: str | None = None, target: str | None = None, shown: str = "") -> None:
        super().__init__(reason)
        self.reason, self.sub, self.target, self.shown = reason, sub, target, shown or reason


def install(app: FastAPI, rt: Runtime, config: OidcConfig) -> None:
    """Add /login/oidc and /login/oidc/callback to `app` (made by `relais.web.app.create_app`, whose
    SessionMiddleware Authlib's client needs)."""
    from authlib.integrations.starlette_client import OAuth

    oauth = OAuth()
    oauth.register(
        NAME,
        client_id=config.client_id,
        client_secret=config.client_secret,
        server_metadata_url=config.metadata_url,
        client_kwargs={"scope": " ".join(config.scopes), "code_challenge_method": "S256", "timeout": 15},
    )
    client = oauth.create_client(NAME)
    app.state.oidc = client

    def audit(principal: str, target: str | None, outcome: str, status: int, detail: str) -> None:
        rt.store.audit(principal, "web.login", target=target, outcome=outcome, http_status=status, detail=detail)

    async def metadata() -> dict[str, Any]:
        found = await client.load_server_metadata()
        if str(found.get("issuer", "")).rstrip("/") != config.issuer.rstrip("/"):
            client.server_metadata.clear()  # fetched again next time
            raise _Refusal(f"the discovery document names issuer {found.get('issuer')!r}, not {config.issuer!r}")
        return found

    @app.get("/login/oidc")
    async def oidc_login(request: Request) -> Response:
        target = request.query_params.get("next") or "/flows"
        target = security.local_path(target, "/flows")
        redirect_uri = config.redirect_uri or str(request.url_for("oidc_callback"))
        try:
            await metadata()
            response = await client.authorize_redirect(request, redirect_uri)
        except Exception as exc:  # noqa: BLE001 - the provider is unreachable or misconfigured
            _log.warning("oidc.provider_failed", issuer=config.issuer, error=f"{type(exc).__name__}: {exc}")
            return PlainTextResponse(
                "Le fournisseur d'identité ne répond pas. / The identity provider is not answering.\n", 502
            )
        request.session["oidc_next"] = target
        return response

    @app.get("/login/oidc/callback", name="oidc_callback")
    async def oidc_callback(request: Request) -> Response:
        client_host = request.client.host if request.client else "?"
        try:  # what the provider sends back: no control character (the audit row keeps `error`)
            state = params.text(request.query_params, "state", limit=params.MAX_TEXT) or ""
            params.text(request.query_params, "error", limit=params.MAX_TEXT)
        except params.BadParam as bad:
            return PlainTextResponse(f"Paramètre refusé / Refused parameter: {bad.name}\n", status_code=400)
        if f"_state_{NAME}_{state}" not in request.session and not request.query_params.get("error"):
            if request.query_params.get("hop") != "1":
                return _reload_from_here(request)
            await run_in_threadpool(
                rt.store.audit_refusal,
                client_host,
                "web.login",
                principal="web:oidc:unverified",
                http_status=403,
                detail="unknown or expired state",
            )
            return _refused("login-expired")
        target = request.session.get("oidc_next") or "/flows"
        try:
            user, sub = await _sign_in(request)
        except _Refusal as r:
            principal = f"web:oidc:{r.sub}" if r.sub else "web:oidc:unverified"
            await run_in_threadpool(audit, principal, r.target, "refused", 403, f"{r.reason} ({client_host})")
            return _refused(r.shown)
        await run_in_threadpool(sessions.begin, request, rt, user.name)
        await run_in_threadpool(
            audit, security.principal(user), user.name, "ok", 303, f"OpenID Connect sub={sub} from {client_host}"
        )
        return RedirectResponse(target, status_code=303)

    async def _sign_in(request: Request) -> tuple[WebUser, str]:
        if request.query_params.get("error"):
            raise _Refusal(f"the provider answered {request.query_params['error'][:100]}")
        try:
            found = await metadata()
            token = await client.authorize_access_token(
                request,
                claims_options={
                    "iss": {"essential": True, "value": found["issuer"]},
                    "aud": {"essential": True, "values": [config.client_id]},
                },
            )
        except _Refusal:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever fails, nobody is signed in
            raise _Refusal(f"no valid ID token: {type(exc).__name__}: {exc}", shown="no valid ID token") from exc
        claims = dict(token.get("userinfo") or {})
        sub = claims.get("sub")
        if not claims or not isinstance(sub, str) or not sub:
            raise _Refusal("no valid ID token: the token response holds none")
        if (config.username_claim not in claims or config.groups_claim not in claims) and found.get(
            "userinfo_endpoint"
        ):
            claims = {**await _userinfo(token, sub), **claims}
        name = claims.get(config.username_claim)
        if not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME:
            raise _Refusal(f"no usable {config.username_claim!r} claim", sub)
        groups = claims.get(config.groups_claim) or []
        groups = [groups] if isinstance(groups, str) else [g for g in groups if isinstance(g, str)]
        mapped = config.role_for(groups)
        if mapped is None:
            raise _Refusal(f"no group maps to a Relais role (groups: {', '.join(groups) or 'none'})", sub, name)
        issuer = str(claims.get("iss") or found["issuer"])
        user = await run_in_threadpool(_enrol, rt, name, *mapped, sub=sub, issuer=issuer)
        return user, sub

    async def _userinfo(token: dict[str, Any], sub: str) -> dict[str, Any]:
        try:
            info = dict(await client.userinfo(token=token))
        except Exception as exc:  # noqa: BLE001 - the ID token alone then decides
            _log.warning("oidc.userinfo_failed", error=f"{type(exc).__name__}: {exc}")
            return {}
        return info if info.get("sub") == sub else {}  # OIDC Core 5.3.2: another sub is not this user


def _enrol(rt: Runtime, name: str, role: str, partner: str | None, *, sub: str, issuer: str) -> WebUser:
    """The user's row, created or brought to its groups' role (and without a password), linked to the
    identity (issuer, sub) at its first sign-in here; another identity under the same name is refused."""
    other = rt.store.web_user_by_identity(issuer, sub)
    if other is not None and other.name != name:
        raise _Refusal(
            f"identity-mismatch: this identity is linked to the account {other.name!r}, not {name!r}",
            sub,
            name,
            shown="identity-mismatch",
        )
    user = rt.store.web_user(name)
    if user is None:
        try:
            rt.store.add_web_user(name, role, partner, None)
        except sa.exc.IntegrityError:  # a concurrent first login of the same name
            pass
        user = rt.store.web_user(name)
        assert user is not None
    if user.disabled:
        raise _Refusal("the user is disabled", sub, name)
    if user.oidc_sub is None and user.oidc_issuer is None:
        rt.store.link_web_identity(name, issuer, sub)  # first sign-in through the provider: linked now
        user = rt.store.web_user(name)
        assert user is not None
    if (user.oidc_issuer, user.oidc_sub) != (issuer, sub):
        raise _Refusal(
            f"identity-mismatch: the account is linked to sub={user.oidc_sub} of {user.oidc_issuer}, "
            f"not sub={sub} of {issuer}",
            sub,
            name,
            shown="identity-mismatch",
        )
    if (user.role, user.partner, user.password_hash) != (role, partner, None):
        rt.store.set_web_role(name, role, partner)
        user = rt.store.web_user(name)
        if user is None or user.disabled:
            raise _Refusal("the user is disabled", sub, name)
    return user


_MESSAGES = {
    "login-expired": "La connexion a expiré : recommencez depuis /login/oidc. / The sign-in expired: start again.",
    "identity-mismatch": (
        "Accès refusé : ce compte Relais est lié à une autre identité du fournisseur ; contactez l'équipe "
        "d'exploitation. / Access refused: this Relais account is linked to another identity at the provider; "
        "contact the operations team."
    ),
}


def _refused(reason: str) -> Response:
    text = _MESSAGES.get(reason) or f"Accès refusé. / Access refused: {reason}."
    return PlainTextResponse(text + "\n", status_code=403)


def _reload_from_here(request: Request) -> Response:
    """The callback again, from this site: the SameSite=Strict session cookie comes with it."""
    url = "/login/oidc/callback?" + urlencode([*request.query_params.multi_items(), ("hop", "1")])
    href = html.escape(url, quote=True)
    body = (
        '<!doctype html><html><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0;url={href}"><title>Relais</title></head>'
        f'<body><p><a href="{href}">Continuer / Continue</a></p></body></html>'
    )
    return HTMLResponse(body, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
