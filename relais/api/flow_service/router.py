"""The AFNOR XP Z12-013 Flow Service's operations (docs/reform.md §3), over Relais's intake and store.

createFlow deposits through `relais.api.senders`'s ingest (archive first; the ``trackingId`` is the deposit's
idempotence key: the same bytes again answer the first flow, other bytes 422 ``ALREADY_EXISTING_FLOW``);
getFlow / searchFlows read `flows.pipeline.flow_views`; webhooks are kept by `flows.store.flow_service` and
served through the outbox (flows/pipeline/webhooks.py, connectors/webhook).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import tempfile
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from connectors.webhook import url as urls
from flows.domain import flow_service as fs
from flows.domain.model import utcnow
from flows.pipeline.flow_views import in_view, out_view, views
from flows.store.flow_service import IN_PREFIX, SearchFilter, Webhook
from relais.api import auth, params, senders
from relais.api.auth import ApiError, Principal
from relais.api.flow_service import inputs
from relais.api.flow_service.errors import FlowServiceError, partner
from relais.compose import Runtime

router = APIRouter(prefix="/v1")
MAX_WEBHOOKS = 20  # per partner [choice]
MAX_BATCHES = 10  # a filtered search reads at most this many store pages for one answer
DOC_TYPES = ("Metadata", "Original", "Converted", "ReadableView")


def _rt(request: Request) -> Runtime:
    return auth.runtime(request)


def _partner(principal: Principal) -> str:
    assert principal.token.partner is not None
    return principal.token.partner


@router.get("/healthcheck", name="flow_service.health")
def health(request: Request) -> Response:
    from relais import health as probe

    found = probe.answer("/readyz", lambda: probe.readiness(_rt(request)))
    if found is None or found[0] != 200:
        raise FlowServiceError(503, "the store or the archive does not answer")
    return Response(status_code=200)


@router.post("/flows", name="flow_service.create", status_code=202)
async def create_flow(request: Request, principal: Principal = Depends(partner)) -> JSONResponse:
    rt = _rt(request)
    limit = rt.settings.max_flow_bytes
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        raise FlowServiceError(400, "Content-Length is required")
    if int(length) > limit + 64 * 1024:
        raise FlowServiceError(413, f"the flow is larger than {limit} bytes", "FILE_SIZE_EXCEEDED")
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise FlowServiceError(400, "the request must be multipart/form-data (flowInfo, file)")
    try:
        form = await request.form(max_files=2, max_fields=4, max_part_size=64 * 1024)
    except Exception as e:  # a malformed multipart body (starlette says why)
        raise FlowServiceError(400, f"malformed multipart body: {type(e).__name__}") from e
    try:
        return await _create(request, rt, principal, form, limit)
    finally:
        await form.close()


async def _create(request: Request, rt: Runtime, principal: Principal, form: Any, limit: int) -> JSONResponse:
    raw_info, upload = form.get("flowInfo"), form.get("file")
    if raw_info is None or upload is None:
        raise FlowServiceError(400, "flowInfo and file are both required", "MISSING_REQUIRED_FIELD")
    if isinstance(raw_info, UploadFile):
        raw_info = await raw_info.read(64 * 1024 + 1)
    if not isinstance(upload, UploadFile):
        raise FlowServiceError(400, "file must be a file part", "MISSING_REQUIRED_FIELD")
    info = inputs.flow_info(raw_info)
    if info.syntax not in fs.ACCEPTED_SYNTAXES:
        raise FlowServiceError(
            422, "e-reporting flows (FRR) are not handled by this platform", "UNSUPPORTED_FLOW_SYNTAX"
        )
    staging = rt.settings.staging_dir
    staging.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=staging, prefix=".afnor-", suffix=".part")
    digest, size, head = hashlib.sha256(), 0, b""
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := await upload.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise FlowServiceError(413, f"the flow is larger than {limit} bytes", "FILE_SIZE_EXCEEDED")
                if len(head) < 4096:
                    head += chunk[: 4096 - len(head)]
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise FlowServiceError(400, "the file is empty", "EMPTY_FLOW")
        sha256 = digest.hexdigest()
        if info.sha256 is not None and info.sha256 != sha256:
            raise FlowServiceError(422, "the file's SHA-256 is not the declared one", "CHECKSUM_MISMATCH")
        found = inputs.sniff(head)
        if found is None:
            raise FlowServiceError(
                422, "the file is neither a UBL, CII, Factur-X invoice nor a CDAR message", "FLOW_TYPE_ERROR"
            )
        if found != info.syntax:
            raise FlowServiceError(422, f"flowSyntax says {info.syntax}, the file is {found}", "FLOW_TYPE_ERROR")
        who = _partner(principal)
        key = f"afnor:{info.tracking_id}" if info.tracking_id else None
        name = senders.sanitize(info.name)
        try:
            flow, created = await run_in_threadpool(senders._ingest, rt, who, name, Path(tmp), sha256, key)
        except ApiError as e:
            if e.http_status == 409:
                raise FlowServiceError(422, "this trackingId was used for another file", "ALREADY_EXISTING_FLOW") from e
            raise
    finally:
        Path(tmp).unlink(missing_ok=True)
    from flows.store.flow_service import DeclaredInfo

    declared = DeclaredInfo(flow.id, who, info.syntax, sha256, info.tracking_id, info.profile, info.processing_rule)
    await run_in_threadpool(rt.store.record_declared, declared)
    processor = getattr(request.app.state, "processor", None)
    if created and processor is not None:
        processor.submit(flow.id)
    await run_in_threadpool(
        auth.audit,
        rt,
        request,
        outcome="ok",
        http_status=202,
        detail=f"name={name} size={size} sha256={sha256}",
        target=flow.id,
    )
    answer: dict[str, Any] = {
        "flowId": flow.id,
        "submittedAt": fs.iso(flow.received_at),
        "name": info.name,
        "flowSyntax": info.syntax,
        "sha256": sha256,
    }
    for k, v in (
        ("trackingId", info.tracking_id),
        ("processingRule", info.processing_rule),
        ("flowProfile", info.profile),
    ):
        if v is not None:
            answer[k] = v
    return JSONResponse(answer, status_code=202)


def _view(rt: Runtime, who: str, flow_id: str) -> tuple[fs.FlowView, str]:
    """(view, archived sha256) of one of the partner's flows, else 404."""
    if flow_id.startswith(IN_PREFIX) and flow_id[len(IN_PREFIX) :].isdigit() and len(flow_id) < 20:
        message = rt.store.sent_message(who, int(flow_id[len(IN_PREFIX) :]))
        if message is not None:
            return in_view(message), message.sha256
    elif params.well_formed_id(flow_id):
        flow = rt.store.get_flow(flow_id)
        if flow is not None and flow.partner == who:
            return out_view(rt.store, flow, rt.store.declared([flow.id]).get(flow.id)), flow.sha256
    raise FlowServiceError(404, "Requested resource is Not Found", "MISSING_RESOURCE")


@router.get("/flows/{flowId}", name="flow_service.get")
def get_flow(request: Request, flowId: str, principal: Principal = Depends(partner)) -> Response:
    doc_type = request.query_params.get("docType", "Metadata")
    if doc_type not in DOC_TYPES:
        raise FlowServiceError(400, f"docType must be one of {', '.join(DOC_TYPES)}")
    if len(flowId) > 64:
        raise FlowServiceError(400, "flowId is at most 64 characters")
    rt = _rt(request)
    view, sha = _view(rt, _partner(principal), flowId)
    if doc_type == "Metadata":
        return JSONResponse(fs.flow_json(view))
    if doc_type != "Original":  # Relais converts nothing and makes no readable view [choice]
        raise FlowServiceError(404, f"this flow has no {doc_type} document", "MISSING_RESOURCE")
    if not rt.archive.verify(sha):
        raise FlowServiceError(500, "the archived file is corrupt", "INTERNAL_ERROR")
    name = senders.sanitize(view.name)
    return Response(
        rt.archive.read(sha),
        media_type="application/octet-stream",
        headers={"Content-Disposition": f"attachment;filename={name}"},
    )


@router.post("/flows/search", name="flow_service.search")
async def search_flows(request: Request, principal: Principal = Depends(partner)) -> JSONResponse:
    raw = await request.body()
    if len(raw) > 64 * 1024:
        raise FlowServiceError(400, "the search is larger than 64 KiB")
    q = inputs.search(raw)
    return JSONResponse(await run_in_threadpool(_search, _rt(request), _partner(principal), q))


def _search(rt: Runtime, who: str, q: inputs.Search) -> dict[str, Any]:
    """One page: Out and In flows merged by (updatedAt, flowId), the computed filters applied after the store's
    (a page may come short; `nextCursor` is given while more may follow)."""
    directions = q.directions or fs.DIRECTIONS
    statuses = [str(s) for s in fs.STATUSES_BY_ACK[q.ack]] if q.ack else None
    cursor, results, more = q.cursor, [], False
    for _ in range(MAX_BATCHES):
        f = SearchFilter(who, q.updated_after, q.updated_before, statuses, q.tracking_id, cursor, q.limit + 1)
        batch: list[fs.FlowView] = []
        if "Out" in directions:
            batch += views(rt.store, rt.store.search_out(f))
        if "In" in directions and q.tracking_id is None and q.ack in (None, "Ok"):
            batch += [in_view(m) for m in rt.store.search_in(f)]
        batch.sort(key=lambda v: (v.updated_at, v.flow_id))
        more = len(batch) > q.limit
        for v in batch[: q.limit]:
            cursor = (v.updated_at, v.flow_id)
            if _kept(v, q):
                results.append(v)
                if len(results) == q.limit:
                    break
        if len(results) == q.limit or not more:
            break
    answer: dict[str, Any] = {"limit": q.limit, "filters": q.where, "results": [fs.flow_json(v) for v in results]}
    if more and cursor is not None:
        answer["nextCursor"] = inputs.encode_cursor(cursor)
    return answer


def _kept(v: fs.FlowView, q: inputs.Search) -> bool:
    if q.flow_types is not None and v.flow_type not in q.flow_types:
        return False
    return q.processing_rules is None or v.processing_rule in q.processing_rules


# ---- webhooks -------------------------------------------------------------------------------------


def _webhook_json(w: Webhook) -> dict[str, Any]:
    out: dict[str, Any] = {"webhookId": w.id, "createdAt": fs.iso(w.created_at), "callbackUrl": w.callback_url}
    if w.flow_types is not None:
        out["flowTypes"] = list(w.flow_types)
    if w.flow_direction:
        out["flowDirection"] = w.flow_direction
    if w.ack_status:
        out["ackStatus"] = w.ack_status
    return out


@router.get("/webhooks", name="flow_service.webhooks")
def list_webhooks(request: Request, principal: Principal = Depends(partner)) -> JSONResponse:
    hooks = _rt(request).store.webhooks(_partner(principal))
    # The contract requires ``webhookIds`` but describes ``webhooks``: both are given [choice].
    return JSONResponse(
        {"count": len(hooks), "webhookIds": [w.id for w in hooks], "webhooks": [_webhook_json(w) for w in hooks]}
    )


@router.post("/webhooks", name="flow_service.webhook_create", status_code=201)
async def create_webhook(request: Request, principal: Principal = Depends(partner)) -> JSONResponse:
    raw = await request.body()
    if len(raw) > 64 * 1024:
        raise FlowServiceError(400, "the webhook is larger than 64 KiB")
    params = inputs.webhook(raw)
    if (why := urls.problem(params.callback_url)) is not None:
        raise FlowServiceError(400, why, "INVALID_CALLBACK_URL")
    rt, who = _rt(request), _partner(principal)
    if len(await run_in_threadpool(rt.store.webhooks, who)) >= MAX_WEBHOOKS:
        raise FlowServiceError(400, f"at most {MAX_WEBHOOKS} webhooks per organization", "TOO_MANY_WEBHOOKS")
    hook = Webhook(
        id=str(uuid.uuid4()),
        partner=who,
        callback_url=params.callback_url,
        signing_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        created_at=utcnow(),
        flow_types=params.flow_types,
        flow_direction=params.direction,
        ack_status=params.ack,
    )
    with auth.writing(rt):
        await run_in_threadpool(rt.store.create_webhook, hook)
    await run_in_threadpool(
        auth.audit, rt, request, outcome="ok", http_status=201, detail=params.callback_url, target=hook.id
    )
    return JSONResponse(
        {"webhookId": hook.id, "signingKey": hook.signing_key, "createdAt": fs.iso(hook.created_at)}, status_code=201
    )


@router.delete("/webhooks/{webhookUid}", name="flow_service.webhook_delete", status_code=204)
def delete_webhook(request: Request, webhookUid: str, principal: Principal = Depends(partner)) -> Response:
    uid = inputs.webhook_uid(webhookUid)
    if not uid:
        raise FlowServiceError(400, "webhookUid must be a UUID")
    rt = _rt(request)
    with auth.writing(rt):
        done = rt.store.delete_webhook(_partner(principal), uid)
    if not done:
        raise FlowServiceError(404, "Requested resource is Not Found", "MISSING_RESOURCE")
    auth.audit(rt, request, outcome="ok", http_status=204, target=uid)
    return Response(status_code=204)
