"""A stub OpenID Connect provider for tests: ``with StubProvider("relais", "secret") as idp: idp.url``.

Served by uvicorn in a thread on 127.0.0.1 (a free port), it answers:

- ``/.well-known/openid-configuration`` (discovery) and ``/jwks`` (an RSA key generated at start);
- ``/authorize``: no login page, it redirects at once back to ``redirect_uri`` with a code and the
  state, for the user the test chose (``idp.login_as = "alice"``, among ``idp.users``); with
  ``idp.login_page = True`` it first shows a page whose "Sign in" link (``#sign-in``) does that, so
  that a browser comes back from a navigation the provider's page started (a cross-site one);
- ``/token``: checks the client's credentials (HTTP basic or form), the code (once, same
  redirect_uri) and the PKCE verifier against the S256 challenge, and returns an access token and an
  RS256 ID token (iss, aud, azp, sub, nonce, exp, iat, preferred_username, groups) signed with PyJWT;
  ``idp.tamper`` spoils it on purpose: "signature" (another key, same kid), "audience", "nonce",
  "expired", "issuer";
- ``/userinfo``: the user's claims for its access token (``idp.userinfo_only`` claims are only there).

Each token request is noted in ``idp.token_requests``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from connectors.uvicorn_thread import ServerThread
from tests.support.waiting import SERVER_START_SECONDS

KID = "stub-key-1"


class StubProvider:
    def __init__(self, client_id: str, client_secret: str, host: str = "127.0.0.1") -> None:
        self.client_id, self.client_secret, self.host = client_id, client_secret, host
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.users: dict[str, dict[str, Any]] = {}  # login -> claims (sub, preferred_username, groups...)
        self.login_as: str | None = None
        self.login_page = False
        self.tamper: str | None = None
        self.userinfo_only: set[str] = set()  # claims left out of the ID token, served by /userinfo
        self.token_requests: list[dict[str, Any]] = []
        self._codes: dict[str, dict[str, Any]] = {}
        self._access: dict[str, dict[str, Any]] = {}
        app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/userinfo", self.userinfo, methods=["GET", "POST"]),
            ]
        )
        config = uvicorn.Config(app, host=host, port=0, log_level="warning", access_log=False, lifespan="off")
        self._thread = ServerThread(config, name="oidc-stub")

    @property
    def url(self) -> str:
        return self._thread.url

    def add_user(self, login: str, groups: list[str], **claims: Any) -> dict[str, Any]:
        self.users[login] = {"sub": f"sub-{login}-{secrets.token_hex(4)}", "preferred_username": login}
        self.users[login].update(groups=groups, **claims)
        return self.users[login]

    def __enter__(self) -> StubProvider:
        self._thread.start(SERVER_START_SECONDS)
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.stop()

    # ---- endpoints --------------------------------------------------------------------------

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "jwks_uri": f"{self.url}/jwks",
                "userinfo_endpoint": f"{self.url}/userinfo",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "scopes_supported": ["openid", "profile", "email", "groups"],
            }
        )

    async def jwks(self, request: Request) -> Response:
        jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return JSONResponse({"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]})

    async def authorize(self, request: Request) -> Response:
        p = request.query_params
        if p.get("client_id") != self.client_id or p.get("response_type") != "code":
            return JSONResponse({"error": "unauthorized_client"}, status_code=400)
        if p.get("code_challenge_method") != "S256" or not p.get("code_challenge"):
            return JSONResponse({"error": "invalid_request", "error_description": "PKCE S256 required"}, 400)
        if "openid" not in p.get("scope", "").split():
            return JSONResponse({"error": "invalid_scope"}, status_code=400)
        if self.login_page and p.get("confirmed") != "1":
            again = html.escape(f"/authorize?{urlencode([*p.multi_items(), ('confirmed', '1')])}", quote=True)
            return HTMLResponse(f'<!doctype html><title>Stub IdP</title><a id="sign-in" href="{again}">Sign in</a>')
        login = p.get("login_hint") or self.login_as
        if login not in self.users:
            return JSONResponse({"error": "access_denied", "error_description": f"no user {login}"}, 400)
        code = secrets.token_urlsafe(24)
        self._codes[code] = {
            "login": login,
            "redirect_uri": p["redirect_uri"],
            "nonce": p.get("nonce"),
            "challenge": p["code_challenge"],
        }
        return RedirectResponse(f"{p['redirect_uri']}?{urlencode({'code': code, 'state': p.get('state', '')})}", 302)

    async def token(self, request: Request) -> Response:
        form = dict(await request.form())
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        noted: dict[str, Any] = {"client_id": client_id, "grant_type": form.get("grant_type")}
        self.token_requests.append(noted)
        if client_id != self.client_id or secret != self.client_secret:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self._codes.pop(str(form.get("code", "")), None)  # a code is good once
        if form.get("grant_type") != "authorization_code" or grant is None:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "redirect_uri"}, status_code=400)
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not verifier or challenge != grant["challenge"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, status_code=400)
        noted["pkce"] = "S256"
        user = self.users[grant["login"]]
        access = secrets.token_urlsafe(24)
        self._access[access] = user
        return JSONResponse(
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self.id_token(user, grant["nonce"]),
            }
        )

    async def userinfo(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        user = self._access.get(auth[7:]) if auth.lower().startswith("bearer ") else None
        if user is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse(user)

    # ---- the ID token -----------------------------------------------------------------------

    def id_token(self, user: dict[str, Any], nonce: str | None) -> str:
        now = int(time.time())
        claims = {k: v for k, v in user.items() if k not in self.userinfo_only}
        claims.update(iss=self.url, aud=self.client_id, azp=self.client_id, iat=now, exp=now + 300)
        if nonce is not None:
            claims["nonce"] = nonce
        key = self.key
        if self.tamper == "signature":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif self.tamper == "audience":
            claims["aud"] = "another-client"  # azp still names ours: only the aud check refuses it
        elif self.tamper == "nonce":
            claims["nonce"] = "not-the-nonce-sent"
        elif self.tamper == "expired":
            claims.update(iat=now - 3600, exp=now - 1800)
        elif self.tamper == "issuer":
            claims["iss"] = "http://issuer.invalid"
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})
