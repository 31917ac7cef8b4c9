"""The AFNOR XP Z12-013 Directory Service (Annex B, ``directory-service-1.3.0.json``) over the reform's
directory Relais imported (`relais directory import --reform`), under ``/directory-service/v1/...``.

Every operation of the contract: SIREN, SIRET, routing code and directory line, each by key (GET) and by
search (POST: filters with the contract's operators, sorting, fields, include, limit/ignore), and the
healthcheck. Bearer authentication on Relais's API tokens (any kind, [choice]); every refusal is the
contract's ``Error`` (``errorCode``, ``errorMessage``) with a 4xx, a request is never answered 500 for its
content. `requests` checks the requests, `payloads` writes the answers. docs/reform.md §4.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.security.utils import get_authorization_scheme_param

from relais import log
from relais.api import auth
from relais.api.directory_service import payloads as pl
from relais.api.directory_service import requests as rq
from relais.compose import Runtime

_log = log.get("relais.api.directory_service")
router = APIRouter(prefix="/directory-service", include_in_schema=False)
MAX_BODY = 64 * 1024
_SIREN, _SIRET = rq.re.compile(r"[0-9]{9}"), rq.re.compile(r"[0-9]{14}")


def _error(e: rq.ServiceError) -> JSONResponse:
    return JSONResponse({"errorCode": e.code, "errorMessage": e.message}, status_code=e.status, headers=e.headers)


def _serve(request: Request, answer: Callable[[Runtime], Any]) -> Response:
    """Authenticate, answer, and turn every refusal into the contract's Error (audited)."""
    rt: Runtime = request.app.state.rt
    try:
        scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
        credentials = HTTPAuthorizationCredentials(scheme=scheme, credentials=token) if scheme and token else None
        try:
            principal = auth._throttled(request, credentials)
        except auth.ApiError as e:
            code = {401: "UNAUTHORIZED", 429: "TOO_MANY_REQUESTS"}.get(e.http_status, "FORBIDDEN")
            raise rq.ServiceError(e.http_status, code, e.error, e.headers) from e
        request.state.principal = principal.name
        return JSONResponse(answer(rt))
    except rq.ServiceError as e:
        auth.audit(rt, request, outcome="refused", http_status=e.status, detail=e.message)
        return _error(e)


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


async def _body(request: Request) -> Any:
    data = await request.body()
    if len(data) > MAX_BODY:
        return rq.ServiceError(413, "PAYLOAD_TOO_LARGE", f"the body is larger than {MAX_BODY} bytes")
    if not data.strip():
        return None
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return rq.ServiceError(400, "INVALID_REQUEST", "the body is not JSON")


def _missing(what: str) -> rq.ServiceError:
    return rq.ServiceError(404, "MISSING_RESOURCE", f"{what} is not in the directory")


def _check(pattern: rq.re.Pattern[str], value: str, what: str) -> None:
    if not pattern.fullmatch(value):
        raise rq.bad(f"{what} is not valid: {value[:50]!r}")


@router.get("/v1/healthcheck")
def healthcheck(request: Request) -> Response:
    """No token needed [choice], as the flow service's: the contract secures it but answers only 200, 500, 503
    (no 401, no 429), and a health probe carries no token."""
    rt: Runtime = request.app.state.rt
    return JSONResponse({"status": "ok", "version": rt.store.reform_version()})


# ---- SIREN (legal units) ------------------------------------------------------------------------------


@router.get("/v1/siren/code-insee:{siren}")
def get_siren(request: Request, siren: str) -> Response:
    def answer(rt: Runtime) -> dict[str, Any]:
        fields = rq.query_list(request.query_params.get("fields"), list(rq.SIREN.fields), "fields")
        _check(_SIREN, siren, "siren")
        row = rt.store.reform_get("siren", siren=siren)
        if row is None:
            raise _missing(f"SIREN {siren}")
        return pl.legal_unit(row, fields)

    return _serve(request, answer)


@router.post("/v1/siren/search")
async def search_siren(request: Request) -> Response:
    return await _search(request, rq.SIREN, lambda rt, row, s: pl.legal_unit(row, s.fields))


# ---- SIRET (facilities) -------------------------------------------------------------------------------


@router.get("/v1/siret/code-insee:{siret}")
def get_siret(request: Request, siret: str) -> Response:
    def answer(rt: Runtime) -> dict[str, Any]:
        fields = rq.query_list(request.query_params.get("fields"), list(rq.SIRET.fields), "fields")
        include = rq.query_list(request.query_params.get("include"), rq.SIRET.includes, "include") or []
        _check(_SIRET, siret, "siret")
        row = rt.store.reform_get("siret", siret=siret)
        if row is None:
            raise _missing(f"SIRET {siret}")
        unit = rt.store.reform_get("siren", siren=row["siren"]) if "siren" in include else None
        return pl.facility(row, fields, unit)

    return _serve(request, answer)


@router.post("/v1/siret/search")
async def search_siret(request: Request) -> Response:
    def one(rt: Runtime, row: dict[str, Any], s: rq.Search) -> dict[str, Any]:
        unit = rt.store.reform_get("siren", siren=row["siren"]) if "siren" in s.include else None
        return pl.facility(row, s.fields, unit)

    return await _search(request, rq.SIRET, one)


# ---- routing codes ------------------------------------------------------------------------------------


@router.get("/v1/routing-code/siret:{siret}/code:{routing_identifier:path}")
def get_routing_code(request: Request, siret: str, routing_identifier: str) -> Response:
    def answer(rt: Runtime) -> dict[str, Any]:
        fields = rq.query_list(request.query_params.get("fields"), list(rq.ROUTING_CODE.fields), "fields")
        include = rq.query_list(request.query_params.get("include"), rq.ROUTING_CODE.includes, "include") or []
        _check(_SIRET, siret, "siret")
        if not 0 < len(routing_identifier) <= 100:
            raise rq.bad("routing-identifier must have 1 to 100 characters")
        row = rt.store.reform_get("routing-code", siret=siret, routing_identifier=routing_identifier)
        if row is None:
            raise _missing(f"routing code {routing_identifier[:100]!r} of SIRET {siret}")
        return _routing_code(rt, row, fields, include)

    return _serve(request, answer)


def _routing_code(rt: Runtime, row: dict[str, Any], fields: list[str] | None, include: list[str]) -> dict[str, Any]:
    unit = rt.store.reform_get("siren", siren=row["siret"][:9]) if "siren" in include else None
    fac = rt.store.reform_get("siret", siret=row["siret"]) if "siret" in include else None
    return pl.routing_code(row, fields, unit, fac)


@router.post("/v1/routing-code/search")
async def search_routing_code(request: Request) -> Response:
    return await _search(request, rq.ROUTING_CODE, lambda rt, row, s: _routing_code(rt, row, s.fields, s.include))


# ---- directory lines ----------------------------------------------------------------------------------


@router.get("/v1/directory-line/code:{addressing_identifier:path}")
def get_directory_line(request: Request, addressing_identifier: str) -> Response:
    def answer(rt: Runtime) -> dict[str, Any]:
        fields = rq.query_list(request.query_params.get("fields"), list(rq.DIRECTORY_LINE.fields), "fields")
        include = rq.query_list(request.query_params.get("include"), rq.DIRECTORY_LINE.includes, "include") or []
        if not 0 < len(addressing_identifier) <= 125:
            raise rq.bad("addressing-identifier must have 1 to 125 characters")
        row = rt.store.reform_get("directory-line", addressing_identifier=addressing_identifier)
        if row is None:
            raise _missing(f"addressing identifier {addressing_identifier!r}")
        return _line(rt, row, fields, include, single=True)

    return _serve(request, answer)


def _line(
    rt: Runtime, row: dict[str, Any], fields: list[str] | None, include: list[str], *, single: bool
) -> dict[str, Any]:
    unit = rt.store.reform_get("siren", siren=row["siren"]) if "siren" in include else None
    fac = rt.store.reform_get("siret", siret=row["siret"]) if "siret" in include and row["siret"] else None
    code = (
        rt.store.reform_get("routing-code", siret=row["siret"], routing_identifier=row["routing_identifier"])
        if "routingCode" in include and row["routing_identifier"]
        else None
    )
    return pl.directory_line(row, _today(), single=single, fields=fields, unit=unit, fac=fac, code=code)


@router.post("/v1/directory-line/search")
async def search_directory_line(request: Request) -> Response:
    return await _search(
        request, rq.DIRECTORY_LINE, lambda rt, row, s: _line(rt, row, s.fields, s.include, single=False)
    )


# ---- search, for every resource -----------------------------------------------------------------------


Render = Callable[[Runtime, dict[str, Any], rq.Search], dict[str, Any]]


async def _search(request: Request, resource: rq.Resource, render: Render) -> Response:
    from fastapi.concurrency import run_in_threadpool

    body = await _body(request)
    return await run_in_threadpool(_search_sync, request, resource, render, body)


def _search_sync(request: Request, resource: rq.Resource, render: Render, body: Any) -> Response:
    def answer(rt: Runtime) -> dict[str, Any]:
        if isinstance(body, rq.ServiceError):
            raise body
        s = rq.parse_search(body, resource)
        total, rows = rt.store.reform_search(resource.name, s.filters, s.sorting, s.limit, s.ignore)
        return {"search": body or {}, "totalNumberOfResults": total, "results": [render(rt, r, s) for r in rows]}

    return _serve(request, answer)
