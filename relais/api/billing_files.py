"""Billing circuits in the API: a billing file as a timeline, and the refusal reason codes
(docs/billing-frameworks.md §3, §5, §6).

A billing file (dossier de facturation) is shown to a recipient token whose SIRET holds the turn of one of its
pieces, is the buyer (of the token's service, when it has one), or is named by one as validator, MOE or MOA; and to a partner token whose flows brought
one of its pieces. Any other file is answered exactly like an unknown one (404, same body).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from flows.domain.frameworks import Framework
from flows.domain.model import Invoice
from flows.domain.reasons import REASONS
from flows.store.api import PieceView, concerns
from relais.api import auth, params
from relais.api.auth import ApiError, Principal
from relais.api.models import BillingFile, Error, HistoryItem, ReasonInfo, ReasonList, Status, TimelinePiece

router = APIRouter(prefix="/api/v1", tags=["billing circuits"])

NOT_FOUND = "billing file not found"
_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"model": Error, "description": "missing, malformed, revoked or forged token"},
}


def _shown(principal: Principal, inv: Invoice, view: PieceView | None) -> bool:
    """Whether this piece lets the principal see its billing file (and is shown in it)."""
    tok = principal.token
    if view is None:
        return False
    if tok.kind == auth.PARTNER:
        return view.partner == tok.partner and view.flow_closed
    return view.accepted and tok.siret is not None and concerns(inv, tok.siret, tok.service_code)


@router.get(
    "/billing-files/{file_id}",
    name="billing_file.get",
    response_model=BillingFile,
    responses={**_AUTH, 404: {"model": Error, "description": "no such billing file, or none of this token's"}},
)
def get_billing_file(request: Request, file_id: str, principal: Principal = Depends(auth.any_token)) -> BillingFile:
    """A billing file as a timeline: its pieces in the order they were recorded (the first piece's id is the
    file's; a piece's id names its file too), each with its framework, who deposits it, where it is and every
    status it took (oldest first). For a token whose SIRET is a holder, the buyer, a validator, the MOE or the
    MOA of one of its pieces, or a sender of one of them."""
    if not params.well_formed_id(file_id):
        raise ApiError(404, NOT_FOUND)
    store = auth.runtime(request).store
    pieces = store.billing_file(file_id)
    if not pieces and (alone := store.get_invoice(file_id)) is not None and alone.billing_file_id is None:
        pieces = [alone]  # recorded before billing files: a one-piece file
    views = store.api_pieces([p.id for p in pieces])
    if not any(_shown(principal, p, views.get(p.id)) for p in pieces):
        raise ApiError(404, NOT_FOUND)
    tok = principal.token
    # Every accepted piece of a file the token may see; for a sender, what it sent too (even rejected).
    listed = [
        p for p in pieces if views[p.id].accepted or (tok.kind == auth.PARTNER and _shown(principal, p, views[p.id]))
    ]
    return BillingFile(
        id=pieces[0].billing_file_id or pieces[0].id,
        pieces=[_piece(p, views[p.id]) for p in listed],
    )


def _piece(inv: Invoice, view: PieceView) -> TimelinePiece:
    framework = Framework(inv.framework)
    return TimelinePiece(
        id=inv.id,
        number=inv.number,
        framework=framework.value,
        framework_label=framework.label_fr,
        depositor=framework.info.depositor.value,
        status=Status.of(inv.status),
        holder=inv.holder,
        previous_id=inv.previous_id,
        history=[HistoryItem.of(e) for e in view.history],
    )


@router.get("/reasons", name="reasons.list", response_model=ReasonList, responses=_AUTH)
def list_reasons(principal: Principal = Depends(auth.any_token)) -> ReasonList:
    """The refusal and suspension reason codes (motifs) and the statuses each may accompany, with the
    list's version: a refusal or suspension (POST /api/v1/invoices/{invoice_id}/status) takes one of them."""
    del principal
    return ReasonList(
        version=REASONS.version,
        reasons=[
            ReasonInfo(
                code=r.code,
                label_fr=r.label_fr,
                label_en=r.label_en,
                statuses=[s.name for s in sorted(r.statuses, key=lambda s: s.code)],
            )
            for r in REASONS.values()
        ],
    )
