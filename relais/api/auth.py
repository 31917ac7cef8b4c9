"""Bearer tokens and the audit log of the API.

A token reads ``rls_<id>_<secret>``: `id` names its row of ``api_tokens``, `secret` is 32 random bytes
(URL-safe base64). Only the SHA-256 of the secret is stored: the secret has 256 bits of entropy, so a fast
hash cannot be brute-forced, and it is compared in constant time. A missing, malformed, unknown, revoked
or forged token is refused with 401; an address with too many refused tokens is answered 429 for a while
(`relais.api.throttle`, counted before each check; the first 429 of a throttled period is audited, the
others only logged, so a throttled client cannot grow the audit log). Every refused request and every state change is audited
(`audit`, table ``audit_log``).

>>> token, row = new_token("recipient", siret="21103837732046")
>>> parse(token) == (row.id, token.split("_", 2)[2]), row.principal
(True, 'recipient:21103837732046')
>>> parse("rls_x"), parse("Bearer abc")
(None, None)
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import re
import secrets
import threading
from typing import Any

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from flows.domain.model import utcnow
from flows.store.api import ApiToken
from relais.api.throttle import Throttle
from relais.compose import Runtime

PREFIX = "rls_"
RECIPIENT, PARTNER = "recipient", "partner"
_ID = re.compile(r"[0-9a-f]{16}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")

bearer = HTTPBearer(auto_error=False, description="`rls_<id>_<secret>`, made by `relais api token create`")


class ApiError(Exception):
    """An answer other than success: its HTTP status and JSON body (``{"error": ..., ...}``), audited."""

    def __init__(
        self,
        http_status: int,
        error: str,
        /,
        *,
        outcome: str = "refused",
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        audited: bool = True,
        **extra: Any,
    ) -> None:
        super().__init__(error)
        self.http_status, self.error, self.outcome, self.extra = http_status, error, outcome, extra
        self.detail = detail or error
        self.headers = headers
        self.audited = audited  # False: logged only (a repeat the audit log already has)

    def body(self) -> dict[str, Any]:
        return {"error": self.error, **self.extra}


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def new_token(
    kind: str, *, siret: str | None = None, service_code: str | None = None, partner: str | None = None
) -> tuple[str, ApiToken]:
    """A new token (shown once) and the row to store (with only the secret's hash)."""
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    row = ApiToken(
        id=token_id,
        kind=kind,
        siret=siret,
        service_code=service_code,
        partner=partner,
        secret_hash=hash_secret(secret),
        created_at=utcnow(),
    )
    return f"{PREFIX}{token_id}_{secret}", row


def parse(token: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token, else None."""
    if not token.startswith(PREFIX):
        return None
    token_id, sep, secret = token[len(PREFIX) :].partition("_")
    if not sep or not _ID.fullmatch(token_id) or not _SECRET.fullmatch(secret):
        return None
    return token_id, secret


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request, as its token says."""

    token: ApiToken

    @property
    def name(self) -> str:
        return self.token.principal

    @property
    def kind(self) -> str:
        return self.token.kind


def _unauthorized(why: str) -> ApiError:
    return ApiError(
        401, "unauthorized", reason=why, detail=f"unauthorized: {why}", headers={"WWW-Authenticate": "Bearer"}
    )


def authenticate(rt: Runtime, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("missing bearer token")
    parsed = parse(credentials.credentials.strip())
    if parsed is None:
        raise _unauthorized("malformed token")
    token_id, secret = parsed
    row = rt.store.get_token(token_id)
    # The hash is compared even when the row is missing, so that timing tells nothing about which ids exist.
    expected = row.secret_hash if row is not None else hash_secret("x" * 43)
    if not hmac.compare_digest(hash_secret(secret), expected) or row is None:
        raise _unauthorized("unknown token")
    if row.revoked_at is not None:
        raise _unauthorized("revoked token")
    return Principal(row)


_SQLITE_WRITER = threading.Lock()


def writing(rt: Runtime) -> contextlib.AbstractContextManager[object]:
    """Around a write transaction: on SQLite (one writer at a time) the server's threads take turns here
    rather than in SQLite's busy handler, whose sleeps make latency spikes; PostgreSQL needs no turn."""
    return _SQLITE_WRITER if rt.store.engine.dialect.name == "sqlite" else contextlib.nullcontext()


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.rt
    return rt


def client_address(request: Request) -> str:
    """The address the request came from (as uvicorn gives it: forwarded headers only from trusted proxies)."""
    return request.client.host if request.client else "unknown"


def _throttled(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    """`authenticate`, each presented token counted by the app's `relais.api.throttle.Throttle` first: a
    missing token is no guess and is not counted; a refused (401) one is a failure of its address."""
    throttle: Throttle | None = getattr(request.app.state, "auth_throttle", None)
    if throttle is None or credentials is None:
        return authenticate(runtime(request), credentials)
    address = client_address(request)
    if not throttle.attempt(address):
        wait, refused = throttle.retry_after(address) or 1, throttle.refused(address)
        raise ApiError(
            429,
            "too many failed authentications from this address",
            retry_after=wait,
            detail=f"throttled: {throttle.limit} failed tokens from {address} within {throttle.window:g} s",
            headers={"Retry-After": str(wait)},
            audited=refused <= 1,  # the first refusal of a throttled period is audited, the others logged
        )
    failed = False
    try:
        return authenticate(runtime(request), credentials)
    except ApiError as e:
        failed = e.http_status == 401
        raise
    finally:
        throttle.done(address, failed=failed)


def _requires(kind: str):  # a FastAPI dependency
    def dependency(request: Request, credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> Principal:
        principal = _throttled(request, credentials)
        request.state.principal = principal.name
        if kind != "any" and principal.kind != kind:
            raise ApiError(403, f"this endpoint is for {kind} tokens", token_kind=principal.kind)
        return principal

    return dependency


recipient = _requires(RECIPIENT)
partner = _requires(PARTNER)
any_token = _requires("any")


def audit(
    rt: Runtime,
    request: Request,
    *,
    outcome: str,
    http_status: int,
    detail: str | None = None,
    target: str | None = None,
) -> None:
    """Append the request's audit row: its principal (``anonymous`` before a token was accepted), its action
    (the route's name), its target (the invoice or flow id of the path, unless given)."""
    route = request.scope.get("route")
    action = getattr(route, "name", None) or "http"
    params = request.path_params
    target = target or params.get("invoice_id") or params.get("flow_id") or request.url.path
    principal = getattr(request.state, "principal", None) or "anonymous"
    with writing(rt):
        if principal == "anonymous" and outcome == "refused":
            # Counted per (client, minute, action) in `audit_refusals`: an anonymous client cannot grow the
            # audit log (flows/store/audit.py); the web's /audit shows the counts.
            client = request.client.host if request.client else None
            rt.store.audit_refusal(
                client, action, principal=principal, http_status=http_status, target=target, detail=detail
            )
            return
        rt.store.audit(principal, action, target=target, outcome=outcome, http_status=http_status, detail=detail)
