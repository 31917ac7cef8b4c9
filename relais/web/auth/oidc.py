"""Signing in through the organisation's OpenID Connect provider instead of local passwords.

Its two routes are relais/web/routes/oidc.py; this module holds their configuration (`OidcConfig`) and
the account linking (`enrol`):

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
import os
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from flows.store.web import WebUser
from relais.compose import Runtime

NAME = "oidc"  # Authlib's client name: its state lives in the session under "_state_oidc_<state>"
DEFAULT_GROUP_ROLES: Mapping[str, str] = {"relais-ops": "ops", "relais-viewer": "viewer"}
DEFAULT_PARTNER_PREFIX = "relais-partner-"
MAX_NAME = 100  # web_users.name, web_users.partner


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
        if len(partners) == 1 and len(p := next(iter(partners))) <= MAX_NAME:
            return "partner", p
        return None


class Refusal(Exception):
    """Nobody signs in: `reason` is audited, `shown` (default: `reason`) is what the browser reads."""

    def __init__(self, reason: str, sub: str | None = None, target: str | None = None, shown: str = "") -> None:
        super().__init__(reason)
        self.reason, self.sub, self.target, self.shown = reason, sub, target, shown or reason


def enrol(rt: Runtime, name: str, role: str, partner: str | None, *, sub: str, issuer: str) -> WebUser:
    """The user's row, created or brought to its groups' role (and without a password), linked to the
    identity (issuer, sub) at its first sign-in here; another identity under the same name is refused."""
    other = rt.store.web_user_by_identity(issuer, sub)
    if other is not None and other.name != name:
        raise Refusal(
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
        raise Refusal("the user is disabled", sub, name)
    if user.oidc_sub is None and user.oidc_issuer is None:
        rt.store.link_web_identity(name, issuer, sub)  # first sign-in through the provider: linked now
        user = rt.store.web_user(name)
        assert user is not None
    if (user.oidc_issuer, user.oidc_sub) != (issuer, sub):
        raise Refusal(
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
            raise Refusal("the user is disabled", sub, name)
    return user
