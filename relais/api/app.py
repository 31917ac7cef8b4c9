"""The API application: `create_app(rt)` over one `relais.compose.Runtime`.

Refusals are JSON (``{"error": ...}``) and audited, whatever raised them: an `auth.ApiError`, a request that
does not validate (422), an unknown route (404) or a failure inside Relais (500). Blocking work (the store,
the archive) runs in the thread pool: every endpoint is a plain ``def`` but the streaming upload.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from relais import log
from relais.api import auth, billing_files, directory_service, docs, flow_service, headers, recipients, senders, worker
from relais.api.auth import ApiError
from relais.api.config import ApiConfig
from relais.api.throttle import WAIT_SECONDS, Throttle
from relais.compose import Runtime

_log = log.get("relais.api")
API_VERSION = "1.0.0"
TITLE = "Relais API"
DESCRIPTION = (
    "Recipient structures and the actors of billing circuits (validators, project managers, contracting "
    "authorities) read the pieces whose turn they hold and set their statuses; senders upload flows (the "
    '"mode API") and read their integration reports. '
    "Authenticate with `Authorization: Bearer rls_<id>_<secret>` "
    "(`relais api token create`)."
)


async def _refuse(
    request: Request,
    status: int,
    body: dict[str, Any],
    *,
    outcome: str,
    detail: str,
    headers: dict[str, str] | None,
    audited: bool = True,
) -> JSONResponse:
    rt: Runtime = request.app.state.rt
    if audited:
        await run_in_threadpool(auth.audit, rt, request, outcome=outcome, http_status=status, detail=detail)
    else:  # a repeat the audit log already has (relais.api.auth: a throttled address's further tries)
        _log.info("api.refused", http_status=status, path=request.url.path, detail=detail)
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(rt: Runtime, config: ApiConfig | None = None) -> FastAPI:
    """The API over `rt`; `config` defaults to the environment's (`relais.api.config`)."""
    config = config or ApiConfig.from_env()
    app = FastAPI(
        title=TITLE,
        version=API_VERSION,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # FastAPI's pages load Swagger UI / ReDoc from a CDN: relais.api.docs instead
        redoc_url=None,
        generate_unique_id_function=lambda route: route.name.replace(".", "_"),
        exception_handlers=HANDLERS,
    )
    app.state.rt = rt
    app.state.config = config
    app.state.processor = worker.Processor(rt) if config.process else None  # stopped by relais.api.serve
    app.state.auth_throttle = Throttle(config.auth_failures, config.auth_window_seconds, wait=WAIT_SECONDS)
    app.add_middleware(headers.SecurityHeaders)
    docs.install(app, wanted=config.docs)
    app.include_router(recipients.router)
    app.include_router(senders.router)
    app.include_router(billing_files.router)
    app.include_router(directory_service.router)  # XP Z12-013 Directory Service (docs/reform.md §4)
    app.include_router(probes)
    app.mount(f"/{flow_service.SERVICE_NAME}", flow_service.create(app))  # AFNOR XP Z12-013, docs/reform.md §3
    return app


probes = APIRouter()  # liveness and readiness, outside the OpenAPI document


@probes.get("/healthz", include_in_schema=False)
def healthz() -> Response:
    """Liveness: the server answers (relais/health.py)."""
    return Response(b'{"status": "ok"}\n', media_type="application/json")


@probes.get("/readyz", include_in_schema=False)
def readyz(request: Request) -> Response:
    """Readiness: the store and the archive answer (else 503; what failed is logged, not answered)."""
    from relais import health

    found = health.answer("/readyz", lambda: health.readiness(request.app.state.rt))
    assert found is not None
    return Response(found[1], status_code=found[0], media_type="application/json")


# ---- refusals: JSON, audited ----------------------------------------------------------------------


async def api_error(request: Request, exc: ApiError) -> JSONResponse:
    return await _refuse(
        request,
        exc.http_status,
        exc.body(),
        outcome=exc.outcome,
        detail=exc.detail,
        headers=exc.headers,
        audited=exc.audited,
    )


async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in exc.errors()]
    detail = "; ".join(f"{'.'.join(p['loc'])}: {p['msg']}" for p in problems)
    return await _refuse(
        request,
        422,
        {"error": "invalid request", "problems": problems},
        outcome="refused",
        detail=detail,
        headers=None,
    )


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if request.url.path.startswith(f"/{flow_service.SERVICE_NAME}/"):  # one its mount did not take (a newline...)
        return await flow_service.errors.http_error(request, exc)
    if request.url.path.startswith(f"{directory_service.router.prefix}/"):  # a path no route of it takes: its Error
        code = "MISSING_RESOURCE" if exc.status_code == 404 else "INVALID_REQUEST"
        body = {"errorCode": code, "errorMessage": f"{request.method} {request.url.path[:100]!r}: {exc.detail}"}
        hdrs = getattr(exc, "headers", None)
        return await _refuse(request, exc.status_code, body, outcome="refused", detail=str(exc.detail), headers=hdrs)
    return await _refuse(
        request,
        exc.status_code,
        {"error": str(exc.detail)},
        outcome="refused",
        detail=str(exc.detail),
        headers=getattr(exc, "headers", None),
    )


async def failure(request: Request, exc: Exception) -> JSONResponse:
    return await _refuse(
        request,
        500,
        {"error": "internal error"},
        outcome="error",
        detail=f"{type(exc).__name__}: {exc}",
        headers=headers.for_path(request.url.path),  # answered outside the middleware stack
    )


HANDLERS: dict[int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]] = {
    ApiError: api_error,
    RequestValidationError: invalid,
    StarletteHTTPException: http_error,
    Exception: failure,
}


def openapi_document() -> str:
    """The OpenAPI document as committed in ``docs/api/openapi.json`` (no runtime needed to describe the API)."""
    import json

    return json.dumps(create_app(None).openapi(), indent=2, ensure_ascii=False) + "\n"  # type: ignore[arg-type]
