"""The web application: `create_app(rt, secret=...)` over one `relais.compose.Runtime`.

Pages are server-rendered (Jinja2, relais/web/templates); the one script (static/app.js, the
project's own) only polls for new flows. Every page but /login, /healthz and /readyz needs a session
(/metrics: an ops user's); an anonymous request is redirected to /login. Query parameters are parsed by
relais/web/params.py (a 400 page names a bad one); relais/web/headers.py adds the security headers. A flow another partner owns is a 404 for a
partner user, exactly as an unknown one (ids are not probed). Actions are plain form POSTs, for ops
only, with the session's CSRF token, and audited (``audit_log``, principal ``web:<user>``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from connectors import partners as partners_config
from flows.domain.lifecycle import FlowStatus
from flows.domain.model import Channel, Flow, FlowCode
from flows.io import split
from flows.store.web import FlowQuery, WebUser
from relais import log, runner
from relais.compose import Runtime
from relais.web import (
    account,
    background,
    dashboard,
    findings,
    headers,
    i18n,
    labels,
    metrics,
    params,
    partners_view,
    security,
    sessions,
    waiting,
)
from relais.web.oidc import OidcConfig
from relais.web.passwords import verify_password

_log = log.get("relais.web")
HERE = Path(__file__).resolve().parent
PAGE = 50


class _Refused(Exception):
    def __init__(self, status: int, key: str) -> None:
        self.status, self.key = status, key


def create_app(
    rt: Runtime,
    *,
    secret: str,
    secure_cookies: bool = False,
    oidc: OidcConfig | None = None,
    charts_seconds: float = 30.0,
) -> FastAPI:
    """The application; with `oidc`, users may also sign in through the organisation's OpenID Connect
    provider (relais/web/oidc.py, docs/web-oidc.md). The landing page's and the rejects page's figures
    are computed at most every `charts_seconds` per (page, partner, language): aggregates over a month
    of flows are the costly queries at millions of flows (bench/web.py)."""
    app = FastAPI(title="Relais — Suivi des flux", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.rt = rt
    app.state.throttle = security.Throttle()
    reprocessing = background.Reprocessing(rt)
    charts_cache = dashboard.Cache(charts_seconds)
    policy = app.state.session_policy = sessions.Policy.from_env()  # the record decides (relais/web/sessions.py)
    app.add_middleware(sessions.OnlyTheSessionInTheCookie, secret=secret)  # inside SessionMiddleware
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie="relais_session",
        max_age=int(policy.lifetime.total_seconds()) + 3600,  # kept past the end: /login then says why
        same_site="strict",  # the OpenID callback reloads itself from this site to get it (relais/web/oidc.py)
        https_only=secure_cookies,
    )
    # Security headers on every answer (relais/web/headers.py): outermost, so redirects and errors get them too.
    app.add_middleware(headers.SecurityHeaders, oidc_issuer=oidc.issuer if oidc is not None else None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def server_timing(request: Request, call_next: Any) -> Response:
        """Every answer says how long the server took (``Server-Timing: app;dur=<ms>``: bench/web.py)."""
        start = time.perf_counter()
        response: Response = await call_next(request)
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - start) * 1000:.1f}"
        return response

    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals["statuses"] = [s.value for s in FlowStatus]
    templates.env.globals["channels"] = [c.value for c in Channel]
    templates.env.globals["flow_codes"] = [c.value for c in FlowCode]
    templates.env.globals["delta_day"] = dt.timedelta(days=1)
    templates.env.globals["oidc"] = oidc is not None
    templates.env.globals["flow_status_label"] = labels.flow_status_label
    templates.env.globals["invoice_status_label"] = labels.invoice_status_label
    templates.env.globals["outbox_state_label"] = labels.outbox_state_label
    templates.env.globals["finding_message"] = findings.message
    templates.env.globals["finding_location"] = findings.location
    if oidc is not None:
        from relais.web import oidc as oidc_login

        oidc_login.install(app, rt, oidc)

    # ---- plumbing ---------------------------------------------------------------------------

    def lang_of(request: Request) -> str:
        lang = request.query_params.get("lang") or request.cookies.get("relais_lang") or "fr"
        return lang if lang in i18n.LANGS else "fr"  # a bad ?lang= is a 400 (render), in French

    def user_of(request: Request) -> WebUser | None:
        return sessions.current(request, rt, policy)

    def render(request: Request, template: str, user: WebUser | None, status: int = 200, **ctx: Any) -> Response:
        if status < 400:
            params.language(request.query_params)  # BadParam("lang") for a language the pages do not speak
        lang = lang_of(request)
        response = templates.TemplateResponse(
            request,
            template,
            {
                "t": lambda key: i18n.text(lang, key),
                "lang": lang,
                "user": user,
                "may_act": user is not None and security.may_act(user),
                "csrf": request.session.get("csrf", ""),
                "flash": request.session.pop("flash", None),
                **ctx,
            },
            status_code=status,
        )
        if request.query_params.get("lang") in i18n.LANGS:
            response.set_cookie("relais_lang", lang, max_age=365 * 86400, samesite="strict", httponly=True)
        return response

    def to_login(request: Request) -> RedirectResponse:
        return RedirectResponse("/login?" + urlencode({"next": request.url.path}), status_code=303)

    def visible_flow(user: WebUser, flow_id: str) -> Flow:
        flow = rt.store.get_flow(flow_id) if params.usable_path(flow_id, 64) else None
        if flow is None or not security.sees_partner(user, flow.partner):
            raise _Refused(404, "not-found")
        return flow

    async def checked_form(
        request: Request, user: WebUser, action: str, target: str, *, ops_only: bool = True
    ) -> dict[str, Any]:
        """The POST's form once its CSRF token and (`ops_only`) the user's role allow it (else `_Refused`,
        audited)."""
        form = dict(await request.form())
        if not security.csrf_ok(request.session.get("csrf"), form.get("csrf")):
            await run_in_threadpool(audit, user, action, target, "refused", 403, "missing or wrong CSRF token")
            raise _Refused(403, "csrf")
        if ops_only and not security.may_act(user):
            await run_in_threadpool(audit, user, action, target, "refused", 403, f"role {user.role} may not act")
            raise _Refused(403, "forbidden")
        return form

    def audit(user: WebUser | None, action: str, target: str | None, outcome: str, status: int, detail: str) -> None:
        rt.store.audit(
            security.principal(user), action, target=target, outcome=outcome, http_status=status, detail=detail
        )

    def refuse_anonymous(client: str, target: str | None, status: int, detail: str) -> None:
        """A login refused before anyone is known: counted per (client, minute) in `audit_refusals`, so an
        anonymous client cannot grow the audit log (flows/store/audit.py); /audit shows the counts."""
        rt.store.audit_refusal(
            client, "web.login", principal=security.principal(None), http_status=status, target=target, detail=detail
        )

    account.install(  # /sessions, /account
        app,
        rt,
        render=render,
        user_of=user_of,
        audit=audit,
        lang_of=lang_of,
        to_login=to_login,
        checked=lambda request, user, action, target: checked_form(request, user, action, target, ops_only=False),
    )
    waiting.install(app, rt, render=render, user_of=user_of, lang_of=lang_of, to_login=to_login)  # /waiting
    partners_view.install(  # qualification: the landing page's table, POST /qualification/{p}/production
        app, rt, templates=templates, user_of=user_of, lang_of=lang_of, to_login=to_login, checked=checked_form
    )

    @app.exception_handler(_Refused)
    async def refused(request: Request, exc: _Refused) -> Response:
        return render(request, "error.html", user_of(request), status=exc.status, key=exc.key, code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def not_found(request: Request, exc: StarletteHTTPException) -> Response:
        """An address the application does not have: the French-first 404 page, not a JSON detail."""
        if exc.status_code != 404:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return render(request, "error.html", user_of(request), status=404, key="not-found", code=404)

    @app.exception_handler(params.BadParam)
    async def bad_param(request: Request, exc: params.BadParam) -> Response:
        """A query parameter that does not parse (relais/web/params.py): a 400 page naming it."""
        return render(request, "error.html", user_of(request), status=400, key="bad-param", param=exc.name, code=400)

    @app.exception_handler(RequestValidationError)
    async def bad_path(request: Request, exc: RequestValidationError) -> Response:
        """A path parameter of the wrong type (an invoice position that is not a number): a 400 page."""
        where = [str(p) for e in exc.errors() for p in e.get("loc", ())[1:2]]
        where_ = ",".join(where)
        return render(request, "error.html", user_of(request), status=400, key="bad-param", param=where_, code=400)

    # ---- health and metrics -----------------------------------------------------------------

    @app.get("/healthz")
    def healthz() -> Response:
        return Response(b'{"status": "ok"}\n', media_type="application/json")

    @app.get("/readyz")
    def readyz() -> Response:
        """Ready or not, and nothing more: what failed (exception texts) goes to the log only (relais/health.py)."""
        from relais import health

        found = health.answer("/readyz", lambda: health.readiness(rt))
        assert found is not None
        return Response(found[1], status_code=found[0], media_type="application/json")

    @app.get("/metrics")
    def metrics_page(request: Request) -> Response:
        """Platform-wide counts: for ops users only (a scraper: RELAIS_WEB_METRICS_ADDRESS,
        relais/web/metrics_server.py)."""
        user = user_of(request)
        if user is None:
            return to_login(request)
        if user.role != "ops":
            raise _Refused(404, "not-found")
        body, content_type = metrics.render(rt)
        return Response(body, media_type=content_type)

    # ---- login ------------------------------------------------------------------------------

    @app.get("/login")
    def login_form(request: Request) -> Response:
        """The login form, with a CSRF token of its own (a pre-session): no other site can log a visitor
        in under an account of its choosing (login CSRF)."""
        ended = request.session.pop("ended", None)
        if not isinstance(request.session.get("csrf"), str):
            request.session["csrf"] = security.new_csrf()
        notice = f"session-{ended}" if ended in ("revoked", "expired", "idle") else None
        return render(
            request, "login.html", None, next=security.local_path(request.query_params.get("next"), "/"), notice=notice
        )

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        target = security.local_path(form.get("next") or "/flows", "/flows")
        client = request.client.host if request.client else "?"
        if not security.csrf_ok(request.session.get("csrf"), form.get("csrf")):
            await run_in_threadpool(refuse_anonymous, client, username, 403, "no login form token")
            request.session["csrf"] = security.new_csrf()
            return render(request, "login.html", None, status=403, error="csrf", next=target)
        throttle: security.Throttle = app.state.throttle
        ticket = throttle.reserve(username, client)  # counted before the check: N at once check at most the limit
        if ticket is None:
            await run_in_threadpool(refuse_anonymous, client, username, 429, "throttled")
            return render(request, "login.html", None, status=429, error="throttled", next=target)
        user = await run_in_threadpool(rt.store.web_user, username)
        hashed = user.password_hash if user is not None and not user.disabled else None
        if not await run_in_threadpool(verify_password, hashed, password):
            await run_in_threadpool(refuse_anonymous, client, username, 401, "bad credentials")
            return render(request, "login.html", None, status=401, error="bad-login", next=target)
        throttle.succeeded(ticket)
        await run_in_threadpool(sessions.begin, request, rt, username)
        await run_in_threadpool(audit, user, "web.login", username, "ok", 303, f"from {client}")
        return RedirectResponse(target, status_code=303)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        user = user_of(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        form = await request.form()
        if not security.csrf_ok(request.session.get("csrf"), form.get("csrf")):
            # Never a login page over a session still open (a form of an older page, another site's post).
            await run_in_threadpool(audit, user, "web.logout", user.name, "refused", 403, "missing or wrong CSRF token")
            raise _Refused(403, "csrf")
        await run_in_threadpool(sessions.end, request, rt, "logout")
        await run_in_threadpool(audit, user, "web.logout", user.name, "ok", 303, "session ended")
        return RedirectResponse("/login", status_code=303)

    # ---- flows ------------------------------------------------------------------------------

    def own(user: WebUser) -> str | None:
        return user.partner if user.role == "partner" else None

    @app.get("/")
    def home(request: Request) -> Response:
        """The landing page: charts of the last 30 days (relais/web/dashboard.py)."""
        user = user_of(request)
        if user is None:
            return to_login(request)
        lang = lang_of(request)
        context = charts_cache.get(
            ("home", own(user), lang), lambda: dashboard.home_context(rt.store, own(user), lang=lang)
        )
        return render(request, "home.html", user, **context, **waiting.home_context(rt, user))

    @app.get("/rejects")
    def rejects(request: Request) -> Response:
        """Rejected flows and invoices grouped by rule: counts, trend, examples."""
        user = user_of(request)
        if user is None:
            return to_login(request)
        lang = lang_of(request)
        context = charts_cache.get(
            ("rejects", own(user), lang), lambda: dashboard.rejects_context(rt.store, own(user), lang=lang)
        )
        return render(request, "rejects.html", user, **context)

    @app.get("/rejects/{rule:path}")
    def rejects_rule(request: Request, rule: str) -> Response:
        """The flows a rule rejected, newest first."""
        user = user_of(request)
        if user is None:
            return to_login(request)
        if not params.usable_path(rule):
            raise _Refused(404, "not-found")
        context = dashboard.rule_context(rt.store, rule, own(user), lang=lang_of(request))
        return render(request, "rejects_rule.html", user, **context)

    def _query(request: Request, user: WebUser) -> FlowQuery:
        return params.flow_filters(request.query_params, own(user), limit=PAGE)

    @app.get("/flows")
    def flows_page(request: Request) -> Response:
        user = user_of(request)
        if user is None:
            return to_login(request)
        q = _query(request, user)
        rows, next_key = rt.store.query_flows(q)
        base = [(k, v) for k, v in request.query_params.multi_items() if k not in ("after_id", "after_value", "lang")]
        next_url = None
        if next_key is not None:
            next_url = "/flows?" + urlencode([*base, ("after_value", next_key[0]), ("after_id", next_key[1])])

        def sort_url(column: str) -> str:
            order = "asc" if q.sort == column and q.descending else "desc"
            keep = [(k, v) for k, v in base if k not in ("sort", "order")]
            return "/flows?" + urlencode([*keep, ("sort", column), ("order", order)])

        return render(
            request,
            "flows.html",
            user,
            flows=rows,
            q=q,
            next_url=next_url,
            first_url="/flows?" + urlencode(base) if q.after else None,
            sort_url=sort_url,
            partners=rt.store.partners_seen() if user.role != "partner" else [user.partner],
            paused=rt.store.paused_partners(),
            reasons=_reasons(rt, rows, lang_of(request)),
            newest=rows[0].id if rows and q.after is None and q.sort == "id" and q.descending else "",
        )

    @app.get("/flows/poll")
    def flows_poll(request: Request) -> Response:
        """How many flows matching the list's filters arrived after `newest` (the page's script asks)."""
        user = user_of(request)
        if user is None:
            return JSONResponse({"error": "login"}, status_code=401)
        try:
            q, newest = _query(request, user), params.newest(request.query_params)
        except params.BadParam as bad:
            return JSONResponse({"error": "invalid parameter", "parameter": bad.name}, status_code=400)
        rows, _ = rt.store.query_flows(_newer(q))
        return JSONResponse({"new": sum(1 for f in rows if f.id > newest)})

    @app.get("/flows/{flow_id}")
    def flow_page(request: Request, flow_id: str) -> Response:
        user = user_of(request)
        if user is None:
            return to_login(request)
        flow = visible_flow(user, flow_id)
        from relais.web import detail

        table = params.invoice_filters(request.query_params, rejections=flow.rejected_count > 0)
        d = detail.flow_detail(rt, flow, table, lang=lang_of(request), partner_view=user.role == "partner")
        url = lambda **change: detail.table_url(flow, table, **change)  # noqa: E731 - the table's links
        return render(
            request, "flow.html", user, d=d, url=url, as2_state=detail.as2_state, paused=rt.store.paused_partners()
        )

    @app.get("/flows/{flow_id}/file")
    def flow_file(request: Request, flow_id: str) -> Response:
        user = user_of(request)
        if user is None:
            return to_login(request)
        flow = visible_flow(user, flow_id)
        return _archived(flow.sha256, _safe(flow.original_name) or flow.id, None)

    @app.get("/flows/{flow_id}/invoices/{position}/file")
    def invoice_file(request: Request, flow_id: str, position: int) -> Response:
        user = user_of(request)
        if user is None:
            return to_login(request)
        flow = visible_flow(user, flow_id)
        if flow.container is None or not rt.archive.verify(flow.sha256):
            raise _Refused(500, "not-found")
        with rt.archive.open(flow.sha256) as f:
            for d in split.documents(f, flow.container, flow.original_name, rt.archive_limits):
                if d.position == position:
                    pdf = d.data.startswith(b"%PDF")
                    return Response(
                        d.data,
                        media_type="application/pdf" if pdf else "application/xml",
                        headers={
                            "X-Content-SHA256": hashlib.sha256(d.data).hexdigest(),
                            "Content-Disposition": f'attachment; filename="{flow.id}-{position:05d}.{"pdf" if pdf else "xml"}"',
                        },
                    )
        raise _Refused(404, "not-found")

    @app.get("/flows/{flow_id}/returns/{row_id}")
    def return_file(request: Request, flow_id: str, row_id: int) -> Response:
        user = user_of(request)
        if user is None:
            return to_login(request)
        flow = visible_flow(user, flow_id)
        row = next((o for o in rt.store.outbox_for_flow(flow.id) if o.id == row_id and o.archive_sha256), None)
        if row is None or row.archive_sha256 is None:
            raise _Refused(404, "not-found")
        name = _safe(Path(row.destination).name) or f"{flow.id}-{row_id}.xml"
        return _archived(row.archive_sha256, name, "application/xml")

    def _archived(sha256: str, name: str, media_type: str | None) -> Response:
        if not rt.archive.verify(sha256):  # never serve bytes that no longer match their SHA-256
            raise _Refused(500, "not-found")
        data = rt.archive.read(sha256)
        return Response(
            data,
            media_type=media_type or "application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{name}"', "X-Content-SHA256": sha256},
        )

    # ---- actions (ops) ----------------------------------------------------------------------

    @app.post("/flows/{flow_id}/reprocess")
    async def reprocess(request: Request, flow_id: str) -> Response:
        user = user_of(request)
        if user is None:
            return to_login(request)
        flow = visible_flow(user, flow_id)
        await checked_form(request, user, "web.flow.reprocess", flow.id)
        refused = await run_in_threadpool(runner.requeue, rt, flow.id, f"Suivi des flux, {user.name}")
        detail = refused or f"{flow.status} -> IN_EN_ATTENTE_RETRAITEMENT_CPP: being reprocessed"
        await run_in_threadpool(audit, user, "web.flow.reprocess", flow.id, "refused" if refused else "ok", 303, detail)
        lang = lang_of(request)
        if not refused:
            reprocessing.start(flow.id)
            request.session["flash"] = i18n.text(lang, "flash-reprocess")
        else:  # the page offers it only where it applies: the flow moved meanwhile (another click, a worker)
            now = rt.store.get_flow(flow.id) or flow
            key = (
                "flash-reprocess-waiting"
                if now.status is FlowStatus.IN_EN_ATTENTE_RETRAITEMENT_CPP
                else "flash-no-reprocess"
            )
            request.session["flash"] = i18n.text(lang, key).format(status=labels.flow_status_label(now.status, lang))
        return RedirectResponse(f"/flows/{flow.id}", status_code=303)

    @app.post("/flows/{flow_id}/resend")
    async def resend(request: Request, flow_id: str) -> Response:
        user = user_of(request)
        if user is None:
            return to_login(request)
        flow = visible_flow(user, flow_id)
        await checked_form(request, user, "web.flow.resend", flow.id)
        count, sent, failed = await run_in_threadpool(background.resend, rt, flow.id)  # at once
        detail = (
            f"{count} return flow(s) sent again: {sent} sent, {failed} failed" if count else "no return flow sent yet"
        )
        outcome = ("error" if failed else "ok") if count else "refused"
        await run_in_threadpool(audit, user, "web.flow.resend", flow.id, outcome, 303, detail)
        say = i18n.text(lang_of(request), "flash-resend" if count else "flash-resend-none").format(
            sent=sent, failed=failed
        )
        request.session["flash"] = say + (" " + i18n.text(lang_of(request), "flash-resend-retry") if failed else "")
        return RedirectResponse(f"/flows/{flow.id}", status_code=303)

    @app.post("/partners/{partner}/{action}")
    async def partner_action(request: Request, partner: str, action: str) -> Response:
        user = user_of(request)
        if user is None:
            return to_login(request)
        if action not in ("pause", "resume") or not security.sees_partner(user, partner):
            raise _Refused(404, "not-found")
        if not await run_in_threadpool(_known_partner, rt, partner):
            raise _Refused(404, "not-found")  # no partner file, drop zone, flow or pause: a typo, not a partner
        form = await checked_form(request, user, f"web.partner.{action}", partner)
        if action == "pause":
            done = await run_in_threadpool(
                rt.store.pause_partner, partner, security.principal(user), form.get("reason")
            )
        else:
            done = await run_in_threadpool(rt.store.resume_partner, partner)
        detail = f"intake {'paused' if action == 'pause' else 'resumed'}" if done else f"already {action}d"
        await run_in_threadpool(audit, user, f"web.partner.{action}", partner, "ok" if done else "refused", 303, detail)
        key = ("flash-paused" if action == "pause" else "flash-resumed") if done else f"flash-already-{action}d"
        request.session["flash"] = f"{partner} : {i18n.text(lang_of(request), key)}"
        back = str(form.get("back") or "/flows")
        return RedirectResponse(security.local_path(back, "/flows"), status_code=303)

    @app.get("/audit")
    def audit_page(request: Request) -> Response:
        user = user_of(request)
        if user is None:
            return to_login(request)
        if user.role != "ops":
            raise _Refused(404, "not-found")
        from relais.web import auditview  # paged in SQL, filtered, with the counted refusals

        context = auditview.context(rt.store, request.query_params)  # a bad filter: params.BadParam, a 400
        return render(request, "audit.html", user, **context)

    return app


def _reasons(rt: Runtime, rows: list[Flow], lang: str) -> dict[str, tuple[str, findings.Said]]:
    """{flow id: (rule, message)} of the listed flows with a reject: their first fatal finding."""
    ids = [f.id for f in rows if f.rejected_count or f.status in _WITH_REASON]
    return {k: (rule, findings.message(rule, text, lang)) for k, (rule, text) in rt.store.first_findings(ids).items()}


_WITH_REASON = (FlowStatus.IN_REJETE, FlowStatus.IN_INTEGRE_PARTIEL, FlowStatus.IN_INCIDENTE)


def _newer(q: FlowQuery) -> FlowQuery:
    return FlowQuery(
        partner=q.partner,
        statuses=q.statuses,
        channel=q.channel,
        flow_code=q.flow_code,
        since=q.since,
        until=q.until,
        search=q.search,
        sort="id",
        descending=True,
        after=None,
        limit=100,
    )


def _known_partner(rt: Runtime, partner: str) -> bool:
    """Whether Relais knows `partner`: a partner file (good or bad), a drop zone, a flow, or a pause."""
    if "/" in partner or "\\" in partner or partner in (".", ".."):
        return False
    if partner in rt.store.paused_partners() or (rt.settings.dropzones_dir / partner / "in").is_dir():
        return True
    found = partners_config.load(rt.settings.partners_dir)  # read again: files change while the server runs
    if partner in found or partner in found.problems or partner in found.held:
        return True
    rows, _ = rt.store.query_flows(FlowQuery(partner=partner, limit=1))
    return bool(rows)


def _safe(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in base)[:200]
