"""The store's part for the HTTP API (relais/api): bearer tokens, the audit log, upload idempotency keys,
and the views of invoices a recipient structure (or a sender) may see.

A mixin of ``flows.store.Store`` (which provides ``self.engine``). Only a hash of each token's secret is
kept (`ApiToken.secret_hash`); the token itself is shown once, when it is created.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa

from flows.domain import lifecycle
from flows.domain.frameworks import Framework
from flows.domain.history import HistoryEntry
from flows.domain.lifecycle import Actor, FlowStatus, InvoiceStatus
from flows.domain.model import Flow, Invoice, utcnow
from flows.domain.outbox import OutboxKind
from flows.store import tables as t
from flows.store.history import _entry
from flows.store.records import _aware, _aware_required, _error, _flow, _flow_row, _invoice, current_findings


@dataclasses.dataclass(frozen=True, slots=True)
class ApiToken:
    """A bearer token of the API: a recipient structure (optionally one service) or a sender partner."""

    id: str
    kind: str  # "recipient" | "partner"
    siret: str | None
    service_code: str | None
    partner: str | None
    secret_hash: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None

    @property
    def principal(self) -> str:
        """Who the token speaks for, as written in the audit log."""
        if self.kind == "recipient":
            return f"recipient:{self.siret}" + (f"/{self.service_code}" if self.service_code else "")
        return f"partner:{self.partner}"


@dataclasses.dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: dt.datetime
    principal: str
    action: str
    target: str | None
    outcome: str
    http_status: int | None
    detail: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class ListedInvoice:
    invoice: Invoice
    received_at: dt.datetime  # of its flow


@dataclasses.dataclass(frozen=True, slots=True)
class PieceView:
    """What the API needs to show one piece of a billing file (`ApiRepo.api_pieces`)."""

    partner: str  # the sender of its flow
    flow_closed: bool  # its flow's processing is over (a sender sees it then)
    accepted: bool  # the platform accepted it, in a closed flow (its actors see it then)
    history: list[HistoryEntry]


class IdempotencyKeyTaken(Exception):
    """Another upload of this partner holds the Idempotency-Key: its (flow id, SHA-256). Nothing was recorded."""

    def __init__(self, flow_id: str, sha256: str) -> None:
        super().__init__(flow_id)
        self.flow_id, self.sha256 = flow_id, sha256


#: (flow received_at, flow id, position) of the last invoice of a page: where the next page starts.
InvoiceKey = tuple[dt.datetime, str, int]


def audit_row(r: sa.RowMapping) -> AuditRow:
    """An `audit_log` row as its value (flows.store.audit pages them)."""
    return AuditRow(
        id=r["id"],
        at=_aware_required(r["at"]),
        principal=r["principal"],
        action=r["action"],
        target=r["target"],
        outcome=r["outcome"],
        http_status=r["http_status"],
        detail=r["detail"],
    )


def _token(r: sa.RowMapping) -> ApiToken:
    return ApiToken(
        id=r["id"],
        kind=r["kind"],
        siret=r["siret"],
        service_code=r["service_code"],
        partner=r["partner"],
        secret_hash=r["secret_hash"],
        created_at=_aware_required(r["created_at"]),
        revoked_at=_aware(r["revoked_at"]),
    )


def _text(value: str) -> str:
    """A crafted request's text as an audit row can hold it (PostgreSQL refuses NUL characters).

    >>> _text("CPP\\x00")
    'CPP\\ufffd'
    """
    return value.replace("\x00", "\ufffd")


def _accepted() -> sa.ColumnElement[bool]:
    """The status the invoice was last recorded with (its first history entry, or that of the latest run of
    a reprocessed flow: entries without a previous status) is no rejection by the platform (04, or 05 set
    by the platform or a rerun), and its flow is closed and was not processed in qualification: the invoice
    reached its recipient's side."""
    h, i, f = t.invoice_history.c, t.invoices.c, t.flows.c
    later = t.invoice_history.alias("later")
    rejected_first = sa.select(h.id).where(
        h.invoice_id == i.id,
        h.previous.is_(None),
        sa.or_(
            h.status == str(InvoiceStatus.REJETEE_ROUTAGE),
            sa.and_(h.status == str(InvoiceStatus.REJETEE), h.actor.in_([str(Actor.PLATFORM), str(Actor.OPS)])),
        ),
        ~sa.select(later.c.id)
        .where(later.c.invoice_id == h.invoice_id, later.c.previous.is_(None), later.c.id > h.id)
        .exists(),
    )
    return sa.and_(
        f.status.in_([str(s) for s in lifecycle.FINAL_FLOW_STATUSES]),
        f.qualification.is_(sa.false()),
        sa.not_(rejected_first.exists()),
    )


#: The statuses of a plain invoice's life at its recipient (01..13: DEPOSEE to A_RECYCLER): a piece in one of
#: them whose ``holder`` is not recorded (recorded before billing circuits, or whose turn is over, e.g. paid)
#: is its buyer's. A piece of a circuit (20..55) without a holder is nobody's (refused, validated, replaced).
RECIPIENT_SIDE = frozenset(s for s in InvoiceStatus if int(s.code) < 20)


def holds(inv: Invoice, siret: str, service_code: str | None) -> bool:
    """Whether a recipient token of `siret` (restricted to `service_code`, when given) holds the turn of
    `inv`: its ``holder`` is `siret` (or, without a holder, its buyer is, at the recipient's side); when the
    holder is the buyer, only the token's service's pieces. `holding` is the same as SQL.

    >>> inv = Invoice(id="x", flow_id="f", position=1, entry_name="e", buyer_siret="B", service_code="DSI")
    >>> holds(inv, "B", None), holds(inv, "B", "DSI"), holds(inv, "B", "RH"), holds(inv, "V", None)
    (True, True, False, False)
    >>> inv.holder, inv.status = "V", InvoiceStatus.A_VALIDER_1
    >>> holds(inv, "V", "RH"), holds(inv, "B", None)
    (True, False)
    """
    if inv.holder is not None:
        mine = inv.holder == siret
    else:
        mine = inv.buyer_siret == siret and inv.status in RECIPIENT_SIDE
    as_buyer = inv.buyer_siret == siret
    return mine and (service_code is None or not as_buyer or inv.service_code == service_code)


def concerns(inv: Invoice, siret: str, service_code: str | None) -> bool:
    """Whether `siret` is an actor of `inv` at all: its buyer (only `service_code`'s pieces, when given), a
    validator, its MOE, its MOA, or its holder. It may see the piece's billing file; a move on the piece
    that is not its turn is refused as such (not as an unknown piece).

    >>> inv = Invoice(id="x", flow_id="f", position=1, entry_name="e", buyer_siret="B", service_code="DSI",
    ...               validator_1="V", moe_siret="M", holder="V")
    >>> [concerns(inv, s, None) for s in ("B", "V", "M", "X")], concerns(inv, "B", "RH"), concerns(inv, "M", "RH")
    ([True, True, True, False], False, True)
    """
    if inv.buyer_siret == siret:
        return service_code is None or inv.service_code == service_code
    return siret in (inv.validator_1, inv.validator_2, inv.moe_siret, inv.moa_siret, inv.holder)


def holding(siret: str, service_code: str | None) -> sa.ColumnElement[bool]:
    """`holds` as a condition on ``invoices`` (indexes ``ix_invoices_holder_status``, ``ix_invoices_buyer_siret``)."""
    i = t.invoices.c
    mine = sa.or_(
        i.holder == siret,
        sa.and_(i.holder.is_(None), i.buyer_siret == siret, i.status.in_(sorted(str(s) for s in RECIPIENT_SIDE))),
    )
    if service_code is None:
        return mine
    return sa.and_(mine, sa.or_(i.buyer_siret.is_distinct_from(siret), i.service_code == service_code))


class ApiRepo:
    engine: sa.Engine

    # ---- tokens ------------------------------------------------------------------

    def create_token(self, token: ApiToken) -> ApiToken:
        with self.engine.begin() as conn:
            conn.execute(sa.insert(t.api_tokens).values(**dataclasses.asdict(token)))
        return token

    def get_token(self, token_id: str) -> ApiToken | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.api_tokens).where(t.api_tokens.c.id == token_id)).mappings().first()
        return _token(row) if row else None

    def list_tokens(self) -> list[ApiToken]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.api_tokens).order_by(t.api_tokens.c.created_at, t.api_tokens.c.id))
            return [_token(r) for r in rows.mappings()]

    def revoke_token(self, token_id: str) -> bool:
        """Revoke a token; False when there is no such token or it was already revoked."""
        c = t.api_tokens.c
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(t.api_tokens).where(c.id == token_id, c.revoked_at.is_(None)).values(revoked_at=utcnow())
            )
            return done.rowcount == 1

    # ---- audit -------------------------------------------------------------------

    def audit(
        self,
        principal: str,
        action: str,
        *,
        target: str | None,
        outcome: str,
        http_status: int | None,
        detail: str | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(t.audit_log).values(
                    at=dt.datetime.now(dt.UTC),
                    principal=_text(principal[:200]),
                    action=_text(action[:64]),
                    target=_text(target[:200]) if target else None,
                    outcome=_text(outcome[:16]),
                    http_status=http_status,
                    detail=_text(detail[:4000]) if detail else None,
                )
            )

    def audit_rows(self, *, target: str | None = None, after_id: int = 0) -> list[AuditRow]:
        a = t.audit_log.c
        q = sa.select(t.audit_log).where(a.id > after_id).order_by(a.id)
        if target is not None:
            q = q.where(a.target == target)
        with self.engine.connect() as conn:
            return [audit_row(r) for r in conn.execute(q).mappings()]

    # ---- invoices as the API shows them -------------------------------------------

    def recipient_invoices(
        self,
        siret: str,
        *,
        service_code: str | None = None,
        service: str | None = None,
        statuses: Sequence[InvoiceStatus] | None = None,
        frameworks: Sequence[Framework] | None = None,
        since: dt.datetime | None = None,
        after: InvoiceKey | None = None,
        limit: int = 50,
    ) -> list[ListedInvoice]:
        """Pieces whose turn `siret` holds (`holding`: the validator, the MOE, the MOA, then the buyer, only
        `service_code`'s pieces then) that the platform accepted, in closed flows, newest flow first then in
        flow order; `service` keeps one service's pieces; `after` is the key of the previous page's last one."""
        i, f = t.invoices.c, t.flows.c
        q = (
            sa.select(t.invoices, f.received_at.label("flow_received_at"))
            .join(t.flows, f.id == i.flow_id)
            .where(holding(siret, service_code), _accepted())
        )
        if service is not None:
            q = q.where(i.service_code == service)
        if statuses is not None:
            q = q.where(i.status.in_([str(s) for s in statuses]))
        if frameworks is not None:
            q = q.where(i.framework.in_([str(fw) for fw in frameworks]))
        if since is not None:
            q = q.where(f.received_at >= since)
        if after is not None:
            at, flow_id, position = after
            q = q.where(
                sa.or_(
                    f.received_at < at,
                    sa.and_(f.received_at == at, i.flow_id < flow_id),
                    sa.and_(f.received_at == at, i.flow_id == flow_id, i.position > position),
                )
            )
        q = q.order_by(f.received_at.desc(), i.flow_id.desc(), i.position).limit(limit)
        with self.engine.connect() as conn:
            return [
                ListedInvoice(_invoice(r), _aware_required(r["flow_received_at"])) for r in conn.execute(q).mappings()
            ]

    def api_invoice(self, invoice_id: str, *, with_errors: bool = True) -> tuple[Invoice, Flow, bool] | None:
        """An invoice (with its findings unless not `with_errors`), its flow, and whether the API may show
        it to its recipient (accepted by the platform, flow closed); None when there is no such invoice."""
        i, f = t.invoices.c, t.flows.c
        q = (
            sa.select(t.invoices, *[c.label(f"flow__{c.name}") for c in f], _accepted().label("api_visible"))
            .join(t.flows, f.id == i.flow_id)
            .where(i.id == invoice_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
            if row is None:
                return None
            inv = _invoice(row)
            if with_errors:
                errors = conn.execute(
                    sa.select(t.validation_errors)
                    .where(
                        t.validation_errors.c.flow_id == inv.flow_id,
                        t.validation_errors.c.invoice_id == invoice_id,
                        current_findings(),
                    )
                    .order_by(t.validation_errors.c.id)
                ).mappings()
                inv.errors = [_error(e) for e in errors]
        flow = _flow({c.name: row[f"flow__{c.name}"] for c in f})
        return inv, flow, bool(row["api_visible"])

    def api_pieces(self, invoice_ids: Sequence[str]) -> dict[str, PieceView]:
        """For each of these pieces: its sender, whether the API shows it to its actors (`_accepted`), and its
        status history, oldest first (two queries, whatever the number of pieces)."""
        ids = list(invoice_ids)
        if not ids:
            return {}
        i, f, h = t.invoices.c, t.flows.c, t.invoice_history.c
        q = (
            sa.select(i.id, f.partner, f.status, _accepted().label("api_visible"))
            .join(t.flows, f.id == i.flow_id)
            .where(i.id.in_(ids))
        )
        with self.engine.connect() as conn:
            found = {
                r.id: PieceView(r.partner, FlowStatus(r.status).is_final, bool(r.api_visible), [])
                for r in conn.execute(q)
            }
            entries = conn.execute(sa.select(t.invoice_history).where(h.invoice_id.in_(ids)).order_by(h.id))
            for r in entries.mappings():
                if r["invoice_id"] in found:
                    found[r["invoice_id"]].history.append(_entry(r))
        return found

    # ---- the "mode API": uploads ---------------------------------------------------

    def api_upload(self, partner: str, key: str) -> tuple[str, str] | None:
        """(flow id, SHA-256) of the upload made with this Idempotency-Key, if any."""
        u = t.api_uploads.c
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(u.flow_id, u.sha256).where(u.partner == partner, u.idempotency_key == key)
            ).first()
        return (row[0], row[1]) if row else None

    def create_api_flow(self, flow: Flow, key: str) -> Flow:
        """Record an uploaded flow and claim its Idempotency-Key in one transaction (the key's row of
        ``api_uploads``, primary key (partner, key)): exactly one flow per (partner, key), whatever the
        concurrency. When another upload claimed the key first, nothing is recorded (the transaction rolls
        back, the flow row with it) and `IdempotencyKeyTaken` says which flow holds the key."""
        assert flow.id, "the flow's id is given (flows.pipeline.intake)"
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(t.flows).values(**_flow_row(flow)))
                conn.execute(
                    sa.insert(t.api_uploads).values(
                        partner=flow.partner,
                        idempotency_key=key,
                        flow_id=flow.id,
                        sha256=flow.sha256,
                        created_at=utcnow(),
                    )
                )
        except sa.exc.IntegrityError:
            existing = self.api_upload(flow.partner, key)
            if existing is None:
                raise
            raise IdempotencyKeyTaken(*existing) from None
        return flow

    def record_api_upload(self, partner: str, key: str, flow_id: str, sha256: str) -> tuple[str, str]:
        """Remember the upload of `key`; when another request recorded it first, the (flow id, SHA-256) it did."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.insert(t.api_uploads).values(
                        partner=partner, idempotency_key=key, flow_id=flow_id, sha256=sha256, created_at=utcnow()
                    )
                )
        except sa.exc.IntegrityError:
            existing = self.api_upload(partner, key)
            if existing is None:
                raise
            return existing
        return flow_id, sha256

    def return_flow_sha256(self, flow_id: str) -> str | None:
        """The archived return flow (CPPStatut) of a flow: its latest return outbox row's object."""
        o = t.outbox.c
        q = (
            sa.select(o.archive_sha256)
            .where(o.flow_id == flow_id, o.kind == str(OutboxKind.RETURN), o.archive_sha256.is_not(None))
            .order_by(o.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()
