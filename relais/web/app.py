"""The web application: `create_app(rt, secret=...)` over one `relais.compose.Runtime`.

Pages are server-rendered (Jinja2, relais/web/templates); the one script (static/app.js, the
project's own) only polls for new flows. Every page but /login, /healthz and /readyz needs a session
(/metrics and /audit: an ops user's); an anonymous request is redirected to /login (the `SignedIn`
dependency of relais/web/routes/common.py). Query parameters are parsed by relais/web/params.py (a 400
page names a bad one); relais/web/auth/headers.py adds the security headers. A flow another partner owns
is a 404 for a partner user, exactly as an unknown one (ids are not probed). Actions are plain form POSTs,
for ops only, with the session's CSRF token, and audited (``audit_log``, principal ``web:<user>``).

`create_app` only assembles: middlewares, templates, the routers of relais/web/routes/ and their error pages.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from flows.domain.lifecycle import FlowStatus
from flows.domain.model import Channel, FlowCode
from relais import cdarview
from relais.compose import Runtime
from relais.web import background, routes
from relais.web.auth import headers, security, sessions
from relais.web.auth.oidc import OidcConfig
from relais.web.routes import errors
from relais.web.routes.common import Web
from relais.web.views import dashboard, findings, labels, qualification

HERE = Path(__file__).resolve().parent


def create_app(
    rt: Runtime,
    *,
    secret: str,
    secure_cookies: bool = False,
    oidc: OidcConfig | None = None,
    charts_seconds: float = 30.0,
) -> FastAPI:
    """The application; with `oidc`, users may also sign in through the organisation's OpenID Connect
    provider (relais/web/routes/oidc.py, docs/web-oidc.md). The landing page's and the rejects page's figures
    are computed at most every `charts_seconds` per (page, partner, language): aggregates over a month
    of flows are the costly queries at millions of flows (bench/web.py)."""
    app = FastAPI(
        title="Relais — Suivi des flux",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        exception_handlers=errors.HANDLERS,
    )
    policy = sessions.Policy.from_env()  # the record decides (relais/web/auth/sessions.py)
    web = Web(
        rt,
        policy,
        _templates(rt, oidc),
        security.Throttle(),
        dashboard.Cache(charts_seconds),
        background.Reprocessing(rt),
    )
    app.state.web, app.state.rt, app.state.throttle, app.state.session_policy = web, rt, web.throttle, policy
    app.add_middleware(sessions.OnlyTheSessionInTheCookie, secret=secret)  # inside SessionMiddleware
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie="relais_session",
        max_age=int(policy.lifetime.total_seconds()) + 3600,  # kept past the end: /login then says why
        same_site="strict",  # the OpenID callback reloads itself from this site to get it (relais/web/routes/oidc.py)
        https_only=secure_cookies,
    )
    # Security headers on every answer (relais/web/auth/headers.py): outermost, so redirects and errors get them too.
    app.add_middleware(headers.SecurityHeaders, oidc_issuer=oidc.issuer if oidc is not None else None)
    app.middleware("http")(_server_timing)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    if oidc is not None:
        from relais.web.routes import oidc as oidc_login

        app.state.oidc = oidc_login.Provider.of(oidc)
        app.include_router(oidc_login.router)
    for router in routes.ROUTERS:
        app.include_router(router)
    return app


def _templates(rt: Runtime, oidc: OidcConfig | None) -> Jinja2Templates:
    """The pages' templates and the names they use beyond a page's own context."""
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals.update(
        statuses=[s.value for s in FlowStatus],
        channels=[c.value for c in Channel],
        flow_codes=[c.value for c in FlowCode],
        delta_day=dt.timedelta(days=1),
        oidc=oidc is not None,
        flow_status_label=labels.flow_status_label,
        invoice_status_label=labels.invoice_status_label,
        framework_label=labels.framework_label,
        framework_name=labels.framework_name,
        reason_label=labels.reason_label,
        outbox_state_label=labels.outbox_state_label,
        finding_message=findings.message,
        finding_location=findings.location,
        cdar_outcome_label=cdarview.outcome_label,
        cdar_direction_label=cdarview.direction_label,
        cdar_line_outcome_label=cdarview.line_outcome_label,
        cdar_status_text=cdarview.status_text,
        cdar_outcomes=list(cdarview.OUTCOMES),
        cdar_alerts=cdarview.ALERTS,
    )
    # the landing page's "Partenaires en qualification" table (templates/_home_qualification.html)
    templates.env.globals["qualification_rows"] = lambda user: qualification.qualification_rows(rt, user)
    return templates


async def _server_timing(request: Request, call_next: Any) -> Response:
    """Every answer says how long the server took (``Server-Timing: app;dur=<ms>``: bench/web.py)."""
    start = time.perf_counter()
    response: Response = await call_next(request)
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - start) * 1000:.1f}"
    return response
