"""Sender endpoints, the "mode API": a partner uploads a flow, follows it, and reads its integration report.

The body of ``POST /api/v1/flows`` is streamed to a file under the staging folder, capped at
``max_flow_bytes`` (413 beyond, the partial file deleted: nothing is archived), then handed to
`flows.pipeline.intake.Intake.ingest` like any channel's file; `relais run` or the DAG processes it (or the server
itself, right after the upload, with RELAIS_API_PROCESS=1: relais/api/worker.py). An upload that
does not arrive whole (the client goes away, fewer bytes than its Content-Length) records nothing. An
``Idempotency-Key`` makes a retried upload answer the flow of the first (200), or 409 when its bytes differ.

The key is reserved, not merely checked: its row of ``api_uploads`` (primary key (partner, key)) is inserted
in the transaction that records the flow (`flows.store.api.ApiRepo.create_api_flow`), so exactly one flow
exists per (partner, key) whatever the concurrency, and a 409 has recorded nothing (no flow, so nothing is
processed or delivered). No reservation outlives its request: there is nothing stale to expire after a
crash (a crash before the commit leaves no row and the retry records the flow; after it, the retry gets
200). Within one server, concurrent uploads with one key also take turns (`_KeyLocks`), so a duplicate
waits for the first to be recorded and answers its flow; across servers, a loser's bytes may stay in the
write-once archive, unreferenced, like those of any upload interrupted before its flow was recorded.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from flows.domain.lifecycle import FlowStatus
from flows.domain.model import Channel, Flow, utcnow
from flows.pipeline.intake import Arrival
from flows.store.api import IdempotencyKeyTaken
from flows.store.web import FlowQuery
from relais.api import auth, params
from relais.api.auth import ApiError, Principal
from relais.api.models import Error, FlowCreated, FlowInfo, FlowPage, ReportPending
from relais.compose import Runtime

router = APIRouter(prefix="/api/v1/flows", tags=["sender"])

DEFAULT_NAME = "api-upload"
NOT_FOUND = "flow not found"
_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"model": Error, "description": "missing, malformed, revoked or forged token"},
    403: {"model": Error, "description": "a token of the other kind"},
    422: {"model": Error, "description": "invalid request"},
}
_404: dict[int | str, dict[str, Any]] = {404: {"model": Error, "description": "no such flow, or not this partner's"}}
_FILENAME = re.compile(r"""filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)|filename\s*=\s*("(?:[^"\\]|\\.)*"|[^;]+)""")


def sanitize(name: str | None) -> str:
    """A safe flow name: the last path component, letters, digits and ``._-`` only, at most 200 characters.

    >>> sanitize("../../etc/pass wd.xml"), sanitize(".hidden"), sanitize(None), sanitize("C:\\\\x\\\\f.zip")
    ('pass_wd.xml', 'hidden', 'api-upload', 'f.zip')
    """
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")[:200]
    return safe or DEFAULT_NAME


def disposition_name(header: str | None) -> str | None:
    """The file name of a Content-Disposition header.

    >>> disposition_name('attachment; filename="a b.xml"'), disposition_name("attachment; filename*=UTF-8''%C3%A9.zip")
    ('a b.xml', 'é.zip')
    """
    if not header:
        return None
    m = _FILENAME.search(header)
    if m is None:
        return None
    if m.group(1):
        return urllib.parse.unquote(m.group(1).strip())
    value = m.group(2).strip()
    return value[1:-1].replace('\\"', '"') if value.startswith('"') else value


def _own_flow(request: Request, principal: Principal, flow_id: str) -> Flow:
    flow = auth.runtime(request).store.get_flow(flow_id) if params.well_formed_id(flow_id) else None
    if flow is None or flow.partner != principal.token.partner:
        raise ApiError(404, NOT_FOUND)
    return flow


class _KeyLocks:
    """One lock per (partner, Idempotency-Key) in use in this process: concurrent uploads with one key take
    turns, so a duplicate waits for the first to be recorded and answers its flow without archiving its own
    bytes. The store's unique claim (`Store.create_api_flow`) is what guarantees one flow per key, across
    processes too; these locks only spare the losers' work."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], tuple[threading.Lock, int]] = {}

    @contextlib.contextmanager
    def held(self, partner: str, key: str) -> Iterator[None]:
        k = (partner, key)
        with self._guard:
            lock, users = self._locks.get(k, (threading.Lock(), 0))
            self._locks[k] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[k]
                if users == 1:
                    del self._locks[k]
                else:
                    self._locks[k] = (lock, users - 1)


_KEYS = _KeyLocks()


def _ingest(rt: Runtime, partner: str, name: str, path: Path, sha256: str, key: str | None) -> tuple[Flow, bool]:
    """(flow, created) of an uploaded file. With an Idempotency-Key, the key is claimed in the transaction
    that records the flow: a key already held answers its flow (same bytes) or 409, with nothing recorded."""
    arrival = Arrival(partner, Channel.API, name, written_at=utcnow())
    if not key:
        ingested = rt.intake.ingest(arrival, path)
        return ingested.flow, ingested.created
    with _KEYS.held(partner, key):
        previous = rt.store.api_upload(partner, key)
        if previous is not None:
            return _replayed(rt, previous, sha256), False
        try:
            ingested = rt.intake.ingest(arrival, path, idempotency_key=key)
        except IdempotencyKeyTaken as taken:  # another process claimed the key first
            return _replayed(rt, (taken.flow_id, taken.sha256), sha256), False
    return ingested.flow, ingested.created


def _replayed(rt: Runtime, previous: tuple[str, str], sha256: str) -> Flow:
    flow_id, previous_sha = previous
    if previous_sha != sha256:
        raise ApiError(409, "this Idempotency-Key was used for other bytes", flow_id=flow_id)
    flow = rt.store.get_flow(flow_id)
    assert flow is not None
    return flow


@router.post(
    "",
    name="flow.upload",
    status_code=201,
    response_model=FlowCreated,
    responses={
        200: {"model": FlowCreated, "description": "already received (same Idempotency-Key and bytes)"},
        **_AUTH,
        400: {"model": Error, "description": "empty or truncated body"},
        409: {"model": Error, "description": "Idempotency-Key already used for other bytes"},
        413: {"model": Error, "description": "over the flow size limit"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload_flow(
    request: Request,
    principal: Principal = Depends(auth.partner),
    name: str | None = Query(None, max_length=1024, description="file name (else Content-Disposition's)"),
    idempotency_key: str | None = Header(None, max_length=200),
) -> JSONResponse:
    """Upload one file (an invoice XML or PDF, or a zip / tar.gz batch) as a new flow of this partner."""
    rt = auth.runtime(request)
    limit = rt.settings.max_flow_bytes
    declared: int | None = None
    if (length := request.headers.get("content-length")) is not None:
        if not length.isdigit():
            raise ApiError(400, "invalid Content-Length")
        declared = int(length)
        if declared > limit:
            raise ApiError(413, "flow too large", limit=limit, size=declared)
    file_name = sanitize(name if name is not None else disposition_name(request.headers.get("content-disposition")))
    staging = rt.settings.staging_dir
    staging.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=staging, prefix=".api-", suffix=".part")
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise ApiError(413, "flow too large", limit=limit)
                    digest.update(chunk)
                    out.write(chunk)
            except ClientDisconnect as e:
                raise ApiError(400, "upload interrupted: the body did not arrive whole", received=size) from e
        if declared is not None and size != declared:
            raise ApiError(400, "truncated upload: fewer bytes than Content-Length", received=size, expected=declared)
        if size == 0:
            raise ApiError(400, "empty body")
        partner = principal.token.partner
        assert partner is not None
        sha256 = digest.hexdigest()
        flow, created = await run_in_threadpool(_ingest, rt, partner, file_name, Path(tmp), sha256, idempotency_key)
    finally:
        Path(tmp).unlink(missing_ok=True)
    code = 201 if created else 200
    processor = getattr(request.app.state, "processor", None)  # relais/api/worker.py, when enabled
    if created and processor is not None:
        processor.submit(flow.id)
    detail = f"name={file_name} size={size} sha256={sha256}" + (f" key={idempotency_key}" if idempotency_key else "")
    await run_in_threadpool(auth.audit, rt, request, outcome="ok", http_status=code, detail=detail, target=flow.id)
    return JSONResponse(FlowCreated(flow_id=flow.id, status=str(flow.status)).model_dump(), status_code=code)


@router.get("", name="flow.list", response_model=FlowPage, responses=_AUTH)
def list_flows(
    request: Request,
    principal: Principal = Depends(auth.partner),
    status: list[params.FlowStatusName] = Query([], description="only flows in this status (repeatable)"),
    since: params.Since | None = Query(None, description="received at or after this ISO 8601 time"),
    until: params.Since | None = Query(None, description="received before this ISO 8601 time"),
    name: str | None = Query(
        None, max_length=200, pattern=params.TEXT_PATTERN, description="part of the file name, any case"
    ),
    cursor: params.FlowCursor | None = Query(None, description="`next_cursor` of the previous page"),
    limit: int = Query(50, ge=1, le=500),
) -> FlowPage:
    """This partner's flows (never another's), newest first, page by page: what `relais flows` lists."""
    query = FlowQuery(
        partner=principal.token.partner,
        statuses=[params.flow_status_of(s).value for s in status],
        since=since,
        until=until,
        name=name or None,
        after=(cursor, cursor) if cursor else None,
        limit=limit,
    )
    flows, after = auth.runtime(request).store.query_flows(query)
    return FlowPage(flows=[FlowInfo.of(f) for f in flows], next_cursor=after[1] if after else None)


@router.get("/{flow_id}", name="flow.get", response_model=FlowInfo, responses={**_AUTH, **_404})
def get_flow(request: Request, flow_id: str, principal: Principal = Depends(auth.partner)) -> FlowInfo:
    """The flow's status, its counts and when it was received."""
    return FlowInfo.of(_own_flow(request, principal, flow_id))


@router.get(
    "/{flow_id}/report",
    name="flow.report",
    response_class=Response,
    responses={
        200: {"content": {"application/xml": {}}, "description": "the integration report (CPPStatut)"},
        202: {"model": ReportPending, "description": "the flow is being processed: no report yet"},
        **_AUTH,
        404: {"model": Error, "description": "no such flow, or not this partner's"},
        500: {"model": Error, "description": "the archived report is corrupt"},
    },
)
def flow_report(request: Request, flow_id: str, principal: Principal = Depends(auth.partner)) -> Response:
    """The flow's integration report (CPPStatut XML), once the flow is closed (or parked as an incident);
    before that, 202 and the flow's current status (ask again later)."""
    flow = _own_flow(request, principal, flow_id)
    rt = auth.runtime(request)
    sha = rt.store.return_flow_sha256(flow.id)
    closed = flow.status.is_final or (flow.status is FlowStatus.IN_INCIDENTE and flow.parked)
    if not closed or sha is None:
        if flow.status is FlowStatus.IN_INCIDENTE:
            detail = "an incident occurred while processing the flow: it is retried automatically at retry_at"
        elif closed:
            detail = "the flow is closed and its report is being written: ask again in a few seconds"
        else:
            detail = "the flow is being processed: its report is written once it is closed; ask again later"
        pending = ReportPending(
            flow_id=flow.id, status=str(flow.status), code=flow.status.code, detail=detail, retry_at=flow.retry_at
        )
        return JSONResponse(pending.model_dump(mode="json"), status_code=202)
    if not rt.archive.verify(sha):
        raise ApiError(500, "archived report is corrupt", outcome="error", flow_id=flow.id, sha256=sha)
    return Response(content=rt.archive.read(sha), media_type="application/xml")
