"""Recipient endpoints: a structure (or one of its services) lists the pieces whose turn it holds, reads one,
downloads its document, reads its history and sets its status (``flows.pipeline.status_changes.act``).

A recipient token speaks for a SIRET; it sees the pieces whose *holder* (whose turn it is) is that SIRET: the
validator, the project manager (MOE), the contracting authority (MOA), then the buyer, restricted to the token's
service when the holder is the buyer (`flows.store.api.holds`; docs/billing-frameworks.md §5). A piece held by
another, one the platform rejected, or one of a flow still in progress is answered exactly like an unknown one
(404, same body): the API tells nothing about pieces it does not show.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from flows.domain import circuits
from flows.domain.history import Source
from flows.domain.lifecycle import INVOICE, Actor, IllegalTransition, InvoiceStatus
from flows.domain.model import Flow, Invoice
from flows.domain.reasons import REASONS, ReasonCodeRefused
from flows.io import split
from flows.pipeline import status_changes as statuses
from flows.store.api import concerns, holds
from relais.api import auth, params
from relais.api.auth import ApiError, Principal
from relais.api.models import (
    Conflict,
    Error,
    HistoryItem,
    InvoiceDetail,
    InvoicePage,
    InvoiceSummary,
    ReasonCodeError,
    StatusChange,
    StatusSet,
)
from relais.compose import Runtime

router = APIRouter(prefix="/api/v1/invoices", tags=["recipient"])

NOT_FOUND = "invoice not found"
_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"model": Error, "description": "missing, malformed, revoked or forged token"},
    403: {"model": Error, "description": "a token of the other kind"},
    422: {"model": Error, "description": "invalid request"},
}
_404: dict[int | str, dict[str, Any]] = {
    404: {"model": Error, "description": "no such invoice, or not one of this token's"}
}


def _unknown_status(value: str) -> ApiError:
    return ApiError(422, "unknown status", status=value, known=[s.name for s in InvoiceStatus])


def _recipient_may_see(principal: Principal, inv: Invoice, visible: bool, *, acting: bool = False) -> bool:
    """A recipient token sees the pieces whose turn it holds; it may try to act on any it is an actor of
    (`concerns`): a move that is not its turn is then a 409, as a move another actor made first."""
    tok = principal.token
    if not visible or tok.kind != auth.RECIPIENT or tok.siret is None:
        return False
    return (concerns if acting else holds)(inv, tok.siret, tok.service_code)


def _sender_may_see(principal: Principal, flow: Flow) -> bool:
    tok = principal.token
    return tok.kind == auth.PARTNER and flow.partner == tok.partner and flow.status.is_final


def visible_invoice(
    request: Request, principal: Principal, invoice_id: str, *, with_errors: bool = False, acting: bool = False
) -> tuple[Invoice, Flow]:
    """The invoice and its flow when the principal may see it (`acting`: act on it); else 404, the same
    whether it exists or not."""
    found = None
    if params.well_formed_id(invoice_id):
        found = auth.runtime(request).store.api_invoice(invoice_id, with_errors=with_errors)
    if found is not None:
        inv, flow, visible = found
        if _recipient_may_see(principal, inv, visible, acting=acting) or _sender_may_see(principal, flow):
            return inv, flow
    raise ApiError(404, NOT_FOUND)


@router.get("", name="invoice.list", response_model=InvoicePage, responses=_AUTH)
def list_invoices(
    request: Request,
    principal: Principal = Depends(auth.recipient),
    status: params.Status | None = Query(
        None, description="current status: label (SERVICE_FAIT, A_VALIDER_1, MISE_A_DISPOSITION_MOE) or code (07)"
    ),
    framework: params.FrameworkName | None = Query(
        None, description="billing framework: code (A9) or the platform's API name (A9_FACTURE_SOUSTRAITANT)"
    ),
    since: params.Since | None = Query(None, description="flows received at or after this ISO 8601 time"),
    service: str | None = Query(
        None, max_length=100, pattern=params.TEXT_PATTERN, description="only this service code"
    ),
    cursor: params.Cursor | None = Query(None, description="`next_cursor` of the previous page"),
    limit: int = Query(50, ge=1, le=500),
) -> InvoicePage:
    """The pieces whose turn the token's SIRET holds (as validator, MOE, MOA or buyer) that the platform
    accepted, in closed flows: newest flow first, then in flow order."""
    tok = principal.token
    if service is not None and tok.service_code is not None and service != tok.service_code:
        return InvoicePage(invoices=[], next_cursor=None)
    assert tok.siret is not None
    rows = auth.runtime(request).store.recipient_invoices(
        tok.siret,
        service_code=tok.service_code,
        service=service,
        statuses=[params.status_of(status)] if status is not None else None,
        frameworks=[params.framework_of(framework)] if framework is not None else None,
        since=since,
        after=params.decode_cursor(cursor) if cursor else None,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    next_cursor = (
        params.encode_cursor((last.received_at, last.invoice.flow_id, last.invoice.position)) if more and last else None
    )
    return InvoicePage(invoices=[InvoiceSummary.of(r.invoice, r.received_at) for r in rows], next_cursor=next_cursor)


@router.get("/{invoice_id}", name="invoice.get", response_model=InvoiceDetail, responses={**_AUTH, **_404})
def get_invoice(request: Request, invoice_id: str, principal: Principal = Depends(auth.recipient)) -> InvoiceDetail:
    """The invoice's facts, its current status and its findings (errors, warnings)."""
    inv, flow = visible_invoice(request, principal, invoice_id, with_errors=True)
    return InvoiceDetail.of(inv, flow)


@router.get(
    "/{invoice_id}/file",
    name="invoice.file",
    response_class=Response,
    responses={
        200: {
            "content": {"application/xml": {}, "application/pdf": {}},
            "description": "the document as received",
        },
        **_AUTH,
        **_404,
        500: {"model": Error, "description": "the archived flow is corrupt: nothing is served"},
    },
)
def invoice_file(request: Request, invoice_id: str, principal: Principal = Depends(auth.recipient)) -> Response:
    """The invoice's document as received (XML or PDF), re-read from the archived flow once its bytes are
    verified against their SHA-256."""
    inv, flow = visible_invoice(request, principal, invoice_id)
    rt = auth.runtime(request)
    if not rt.archive.verify(flow.sha256):
        raise ApiError(
            500,
            "archived flow is corrupt: its bytes no longer match their SHA-256",
            outcome="error",
            flow_id=flow.id,
            sha256=flow.sha256,
        )
    if flow.container is None:
        raise ApiError(500, "the flow has no known container", outcome="error", flow_id=flow.id)
    with rt.archive.open(flow.sha256) as f:
        data = next(
            (
                d.data
                for d in split.documents(f, flow.container, flow.original_name, rt.archive_limits)
                if d.position == inv.position
            ),
            None,
        )
    if data is None:
        raise ApiError(500, "the document is missing from its archived flow", outcome="error", flow_id=flow.id)
    pdf = data.startswith(b"%PDF")
    name = inv.entry_name.replace("\\", "/").rsplit("/", 1)[-1] or inv.id
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    return Response(
        content=data,
        media_type="application/pdf" if pdf else "application/xml",
        headers={"Content-Disposition": f'attachment; filename="{safe}"'},
    )


@router.get(
    "/{invoice_id}/history", name="invoice.history", response_model=list[HistoryItem], responses={**_AUTH, **_404}
)
def invoice_history(
    request: Request, invoice_id: str, principal: Principal = Depends(auth.any_token)
) -> list[HistoryItem]:
    """Every status the invoice took, oldest first; for its recipient, or for the partner that sent it."""
    visible_invoice(request, principal, invoice_id)
    return [HistoryItem.of(e) for e in auth.runtime(request).store.invoice_history(invoice_id)]


@router.post(
    "/{invoice_id}/status",
    name="invoice.status",
    response_model=StatusSet,
    responses={
        **_AUTH,
        **_404,
        409: {"model": Conflict, "description": "not allowed from the current status, or not this token's turn"},
        422: {
            "model": ReasonCodeError,
            "description": "unknown status, a reason is required, or a reason code missing, unknown or not allowed",
        },
    },
)
def set_status(
    request: Request, invoice_id: str, body: StatusChange, principal: Principal = Depends(auth.recipient)
) -> StatusSet:
    """Move the piece on, as the actor whose turn the token's SIRET holds: the buyer (SERVICE_FAIT, MANDATEE,
    ..., MISE_EN_PAIEMENT), a validator (VALIDEE_1, REFUSEE_1, ERREUR_FOURNISSEUR_SUR_VALIDEUR), the MOE
    (PRISE_EN_COMPTE_MOE, REFUSEE_MOE), the MOA (PRISE_EN_COMPTE_MOA, TRANSMISE_MOA, REFUSEE_MOA). A refusal
    or a suspension needs a reason and a reason code (GET /api/v1/reasons). The change is reported to the
    depositor in its status return flow; `then` lists the moves the platform made at once (a validated piece
    made available to its next actor). Setting the status the piece already has changes nothing (a retried
    request): 200 with its current status's history entry, no new entry, nothing reported again."""
    target = params.parse_status(body.status)
    if target is None:
        raise _unknown_status(body.status)
    inv, _flow = visible_invoice(request, principal, invoice_id, acting=True)
    rt = auth.runtime(request)
    tok = principal.token
    assert tok.siret is not None
    if (
        inv.status is target
        and holds(inv, tok.siret, tok.service_code)
        and (unchanged := _current_entry(rt, invoice_id, target)) is not None
    ):
        auth.audit(
            rt, request, outcome="ok", http_status=200, detail=f"{target.code} unchanged (already {target.name})"
        )
        return StatusSet(**unchanged.model_dump())
    try:
        with auth.writing(rt):
            entries = statuses.act(
                rt.store, invoice_id, target, siret=tok.siret, service_code=tok.service_code, source=Source.API,
                reason=body.reason, reason_code=body.reason_code, deadlines=_deadlines(rt),
            )  # fmt: skip
    except statuses.ReasonRequired as e:
        raise ApiError(422, str(e), status=target.name, allowed=REASONS.allowed(target)) from e
    except ReasonCodeRefused as e:
        raise ApiError(422, str(e), status=target.name, reason_code=e.code, allowed=e.allowed) from e
    except statuses.UnknownInvoice as e:
        raise ApiError(404, NOT_FOUND) from e
    except statuses.NotYourTurn as e:
        raise ApiError(409, str(e), detail=str(e), current=e.status.label, allowed=[]) from e
    except IllegalTransition as e:
        current = InvoiceStatus(e.source)
        actor = circuits.actor_of(current) or Actor.RECIPIENT
        allowed = sorted(INVOICE.targets(current, actor=actor), key=lambda s: s.code)
        raise ApiError(409, str(e), detail=str(e), current=current.label, allowed=[s.label for s in allowed]) from e
    first, *then = entries
    moves = " ".join(f"{e.previous} -> {e.status}" for e in entries)
    auth.audit(rt, request, outcome="ok", http_status=200, detail=moves)
    return StatusSet(**HistoryItem.of(first).model_dump(), then=[HistoryItem.of(e) for e in then])


def _deadlines(rt: Runtime) -> circuits.Deadlines:
    """The circuits' deadlines (settings ``RELAIS_CIRCUITS_VALIDATOR_DAYS``, ``RELAIS_CIRCUITS_MOE_DAYS``)."""
    return rt.settings.deadlines


def _current_entry(rt: Runtime, invoice_id: str, status: InvoiceStatus) -> HistoryItem | None:
    """The history entry that gave the invoice its current `status` (None: the history says otherwise, e.g.
    a change that just happened: the request is then handled as a change)."""
    history = rt.store.invoice_history(invoice_id)
    if history and history[-1].status is status:
        return HistoryItem.of(history[-1])
    return None
