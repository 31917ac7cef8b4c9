"""Signing in through the organisation's OpenID Connect provider (relais/web/auth/oidc.py, docs/web-oidc.md):
``GET /login/oidc`` redirects to the provider, ``GET /login/oidc/callback`` validates its answer, enrols the
user (`oidc.enrol`) and opens the same session as a password login. Included by
`relais.web.app.create_app` only when a provider is configured (`Provider`, on ``app.state.oidc``)."""

from __future__ import annotations

import dataclasses
import html
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from flows.store.web import WebUser
from relais import log
from relais.compose import Runtime
from relais.web import params
from relais.web.auth import security, sessions
from relais.web.auth.oidc import MAX_NAME, NAME, OidcConfig, Refusal, enrol
from relais.web.routes.common import Site

_log = log.get("relais.web.oidc")
router = APIRouter()


@dataclasses.dataclass(frozen=True)
class Provider:
    """The provider's configuration and Authlib's Starlette client for it (which needs the application's
    SessionMiddleware: its state lives in the session)."""

    config: OidcConfig
    client: Any  # authlib.integrations.starlette_client.StarletteOAuth2App

    @classmethod
    def of(cls, config: OidcConfig) -> Provider:
        from authlib.integrations.starlette_client import OAuth

        oauth = OAuth()
        oauth.register(
            NAME,
            client_id=config.client_id,
            client_secret=config.client_secret,
            server_metadata_url=config.metadata_url,
            client_kwargs={"scope": " ".join(config.scopes), "code_challenge_method": "S256", "timeout": 15},
        )
        return cls(config, oauth.create_client(NAME))

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document, once it names the configured issuer (else `Refusal`)."""
        found: dict[str, Any] = await self.client.load_server_metadata()
        if str(found.get("issuer", "")).rstrip("/") != self.config.issuer.rstrip("/"):
            self.client.server_metadata.clear()  # fetched again next time
            raise Refusal(f"the discovery document names issuer {found.get('issuer')!r}, not {self.config.issuer!r}")
        return found


def provider(request: Request) -> Provider:
    found: Provider = request.app.state.oidc
    return found


Oidc = Annotated[Provider, Depends(provider)]


def _audit(rt: Runtime, principal: str, target: str | None, outcome: str, status: int, detail: str) -> None:
    rt.store.audit(principal, "web.login", target=target, outcome=outcome, http_status=status, detail=detail)


@router.get("/login/oidc")
async def oidc_login(request: Request, oidc: Oidc) -> Response:
    target = request.query_params.get("next") or "/flows"
    target = security.local_path(target, "/flows")
    redirect_uri = oidc.config.redirect_uri or str(request.url_for("oidc_callback"))
    try:
        await oidc.metadata()
        response: Response = await oidc.client.authorize_redirect(request, redirect_uri)
    except Exception as exc:  # the provider is unreachable or misconfigured
        _log.warning("oidc.provider_failed", issuer=oidc.config.issuer, error=f"{type(exc).__name__}: {exc}")
        return PlainTextResponse(
            "Le fournisseur d'identité ne répond pas. / The identity provider is not answering.\n", 502
        )
    request.session["oidc_next"] = target
    return response


@router.get("/login/oidc/callback", name="oidc_callback")
async def oidc_callback(request: Request, site: Site, oidc: Oidc) -> Response:
    rt = site.rt
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
        user, sub = await _sign_in(request, rt, oidc)
    except Refusal as r:
        principal = f"web:oidc:{r.sub}" if r.sub else "web:oidc:unverified"
        await run_in_threadpool(_audit, rt, principal, r.target, "refused", 403, f"{r.reason} ({client_host})")
        return _refused(r.shown)
    await run_in_threadpool(sessions.begin, request, rt, user.name)
    detail = f"OpenID Connect sub={sub} from {client_host}"
    await run_in_threadpool(_audit, rt, security.principal(user), user.name, "ok", 303, detail)
    return RedirectResponse(target, status_code=303)


async def _sign_in(request: Request, rt: Runtime, oidc: Provider) -> tuple[WebUser, str]:
    """The user the provider's answer vouches for, enrolled (and its ``sub``); else `Refusal`."""
    config = oidc.config
    if request.query_params.get("error"):
        raise Refusal(f"the provider answered {request.query_params['error'][:100]}")
    try:
        found = await oidc.metadata()
        token = await oidc.client.authorize_access_token(
            request,
            claims_options={
                "iss": {"essential": True, "value": found["issuer"]},
                "aud": {"essential": True, "values": [config.client_id]},
            },
        )
    except Refusal:
        raise
    except Exception as exc:  # whatever fails, nobody is signed in
        raise Refusal(f"no valid ID token: {type(exc).__name__}: {exc}", shown="no valid ID token") from exc
    claims = dict(token.get("userinfo") or {})
    sub = claims.get("sub")
    if not claims or not isinstance(sub, str) or not sub:
        raise Refusal("no valid ID token: the token response holds none")
    if (config.username_claim not in claims or config.groups_claim not in claims) and found.get("userinfo_endpoint"):
        claims = {**await _userinfo(oidc, token, sub), **claims}
    name = claims.get(config.username_claim)
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise Refusal(f"no usable {config.username_claim!r} claim", sub)
    groups = claims.get(config.groups_claim) or []
    groups = [groups] if isinstance(groups, str) else [g for g in groups if isinstance(g, str)]
    mapped = config.role_for(groups)
    if mapped is None:
        raise Refusal(f"no group maps to a Relais role (groups: {', '.join(groups) or 'none'})", sub, name)
    issuer = str(claims.get("iss") or found["issuer"])
    user = await run_in_threadpool(enrol, rt, name, *mapped, sub=sub, issuer=issuer)
    return user, sub


async def _userinfo(oidc: Provider, token: dict[str, Any], sub: str) -> dict[str, Any]:
    try:
        info = dict(await oidc.client.userinfo(token=token))
    except Exception as exc:  # the ID token alone then decides
        _log.warning("oidc.userinfo_failed", error=f"{type(exc).__name__}: {exc}")
        return {}
    return info if info.get("sub") == sub else {}  # OIDC Core 5.3.2: another sub is not this user


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
