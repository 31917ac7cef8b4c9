"""The API's request and response bodies (pydantic), as the OpenAPI document shows them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TypedDict

from pydantic import BaseModel, ConfigDict, Field

from flows.domain.frameworks import Framework
from flows.domain.history import HistoryEntry
from flows.domain.lifecycle import InvoiceStatus
from flows.domain.model import Flow, Invoice, ValidationError
from flows.domain.reasons import REASONS


class Error(BaseModel):
    """Every refusal: `error` says what went wrong; some carry more fields (e.g. `current`, `allowed`)."""

    model_config = ConfigDict(extra="allow")
    error: str


class Conflict(Error):
    """A status change the lifecycle does not allow from the invoice's current status (or not this token's
    to make: it is another actor's turn; `allowed` is then empty)."""

    current: str
    allowed: list[str]


class ReasonCodeError(Error):
    """A reason code missing, unknown, or one the status may not take (``MONTANT`` with REFUSEE_MOE)."""

    status: str
    reason_code: str | None
    allowed: list[str] = Field(description="the reason codes this status may take (GET /api/v1/reasons)")


class Status(BaseModel):
    code: str
    label: str

    @classmethod
    def of(cls, status: InvoiceStatus) -> Status:
        return cls(code=status.code, label=status.label)


class Finding(BaseModel):
    rule: str
    flag: str
    location: str
    message: str

    @classmethod
    def of(cls, e: ValidationError) -> Finding:
        return cls(**e.as_json())


class Amounts(BaseModel):
    total_without_vat: Decimal | None
    total_vat: Decimal | None
    total_with_vat: Decimal | None
    amount_due: Decimal | None


class InvoiceSummary(BaseModel):
    id: str
    flow_id: str
    received_at: dt.datetime
    number: str | None
    issue_date: dt.date | None
    supplier_id: str | None
    service_code: str | None
    currency: str | None
    total_with_vat: Decimal | None
    status: Status
    framework: str = Field(description="the billing framework (BT-23): A1 to A25", examples=["A9"])
    framework_label: str = Field(description="its French name", examples=["facture de sous-traitant"])
    billing_file_id: str | None = Field(description="its billing file (GET /api/v1/billing-files/{file_id})")
    previous_id: str | None = Field(description="the piece it follows in its billing file (BT-25)")
    holder: str | None = Field(description="SIRET whose turn it is (validator, MOE, MOA, then the buyer)")
    due_at: dt.datetime | None = Field(description="when the holder's time runs out (validator, MOE)")

    @classmethod
    def of(cls, inv: Invoice, received_at: dt.datetime) -> InvoiceSummary:
        return cls(
            id=inv.id,
            flow_id=inv.flow_id,
            received_at=received_at,
            number=inv.number,
            issue_date=inv.issue_date,
            supplier_id=inv.supplier_id,
            service_code=inv.service_code,
            currency=inv.currency,
            total_with_vat=inv.total_with_vat,
            status=Status.of(inv.status),
            **circuit_fields(inv),
        )


class _Circuit(TypedDict):
    framework: str
    framework_label: str
    billing_file_id: str | None
    previous_id: str | None
    holder: str | None
    due_at: dt.datetime | None


def circuit_fields(inv: Invoice) -> _Circuit:
    """A piece's place in its billing circuit, as `InvoiceSummary` and `InvoiceDetail` show it."""
    framework = Framework(inv.framework)
    return _Circuit(
        framework=framework.value,
        framework_label=framework.label_fr,
        billing_file_id=inv.billing_file_id,
        previous_id=inv.previous_id,
        holder=inv.holder,
        due_at=inv.due_at,
    )


class InvoicePage(BaseModel):
    invoices: list[InvoiceSummary]
    next_cursor: str | None = Field(description="pass it as `cursor` for the next page; null: last page")


class InvoiceDetail(BaseModel):
    id: str
    flow_id: str
    position: int
    received_at: dt.datetime
    number: str | None
    type_code: str | None
    issue_date: dt.date | None
    supplier_id: str | None
    supplier_id_type: str | None
    buyer_siret: str | None
    service_code: str | None
    commitment_number: str | None
    currency: str | None
    amounts: Amounts
    syntax: str | None
    profile: str | None
    status: Status
    framework: str = Field(description="the billing framework (BT-23): A1 to A25", examples=["A9"])
    framework_label: str = Field(description="its French name", examples=["facture de sous-traitant"])
    billing_file_id: str | None = Field(description="its billing file (GET /api/v1/billing-files/{file_id})")
    previous_id: str | None = Field(description="the piece it follows in its billing file (BT-25)")
    holder: str | None = Field(description="SIRET whose turn it is (validator, MOE, MOA, then the buyer)")
    due_at: dt.datetime | None = Field(description="when the holder's time runs out (validator, MOE)")
    errors: list[Finding]
    warnings: list[Finding]

    @classmethod
    def of(cls, inv: Invoice, flow: Flow) -> InvoiceDetail:
        return cls(
            id=inv.id,
            flow_id=inv.flow_id,
            position=inv.position,
            received_at=flow.received_at,
            number=inv.number,
            type_code=inv.type_code,
            issue_date=inv.issue_date,
            supplier_id=inv.supplier_id,
            supplier_id_type=inv.supplier_id_type,
            buyer_siret=inv.buyer_siret,
            service_code=inv.service_code,
            commitment_number=inv.commitment_number,
            currency=inv.currency,
            amounts=Amounts(
                total_without_vat=inv.total_without_vat,
                total_vat=inv.total_vat,
                total_with_vat=inv.total_with_vat,
                amount_due=inv.amount_due,
            ),
            syntax=str(inv.syntax) if inv.syntax else None,
            profile=inv.profile,
            status=Status.of(inv.status),
            **circuit_fields(inv),
            errors=[Finding.of(e) for e in inv.errors if e.fatal],
            warnings=[Finding.of(e) for e in inv.errors if not e.fatal],
        )


class HistoryItem(BaseModel):
    """One status an invoice took (`flows.domain.history.HistoryEntry.as_json`)."""

    status: str
    code: str
    previous: str | None
    actor: str
    source: str
    reason: str | None
    reason_code: str | None = Field(description="a refusal's or suspension's code (GET /api/v1/reasons)")
    reason_label: str | None = Field(description="its French label")
    at: str = Field(description="ISO 8601, UTC")

    @classmethod
    def of(cls, entry: HistoryEntry) -> HistoryItem:
        reason = REASONS.get(entry.reason_code) if entry.reason_code else None
        return cls.model_validate({**entry.as_json(), "reason_label": reason.label_fr if reason else None})


#: Free text a store can hold: no control characters but tabs and line breaks (PostgreSQL refuses a NUL).
FREE_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


class StatusSet(HistoryItem):
    """The status the request set, and the moves the platform made at once in the same transaction
    (a validated piece made available to its next actor: VALIDEE_1 then MISE_A_DISPOSITION)."""

    then: list[HistoryItem] = Field(default_factory=list)


class StatusChange(BaseModel):
    """The status to set, by label (``SERVICE_FAIT``, ``VALIDEE_1``) or code (``07``). A refusal or a
    suspension (REJETEE, SUSPENDUE, REFUSEE_1, REFUSEE_2, REFUSEE_MOE, REFUSEE_MOA) needs a reason and a
    reason code (GET /api/v1/reasons)."""

    model_config = ConfigDict(extra="forbid")
    status: str = Field(max_length=64, examples=["SERVICE_FAIT"])
    reason: str | None = Field(default=None, max_length=2000, pattern=FREE_TEXT)
    reason_code: str | None = Field(default=None, max_length=40, pattern=FREE_TEXT, examples=["NON_AGREE"])


class ReasonInfo(BaseModel):
    code: str
    label_fr: str
    label_en: str
    statuses: list[str] = Field(description="the statuses it may accompany")


class ReasonList(BaseModel):
    """The refusal and suspension reason codes (flows/domain/reasons.csv) and the version of the list."""

    version: str
    reasons: list[ReasonInfo]


class TimelinePiece(BaseModel):
    """One piece of a billing file, with every status it took (oldest first)."""

    id: str
    number: str | None
    framework: str
    framework_label: str
    depositor: str = Field(description="who deposits this framework: supplier, subcontractor, cocontractor, moe, moa")
    status: Status
    holder: str | None
    previous_id: str | None
    history: list[HistoryItem]


class BillingFile(BaseModel):
    """A billing file (dossier de facturation): its pieces in the order they were recorded."""

    id: str
    pieces: list[TimelinePiece]


class FlowCreated(BaseModel):
    flow_id: str
    status: str


class FlowInfo(BaseModel):
    flow_id: str
    status: str
    code: str
    channel: str
    name: str
    size: int
    received_at: dt.datetime
    updated_at: dt.datetime
    invoice_count: int
    rejected_count: int
    duplicate_of: str | None
    qualification: bool = Field(
        False, description="A flow of the partner's qualification phase: judged and answered, never delivered"
    )

    @classmethod
    def of(cls, flow: Flow) -> FlowInfo:
        return cls(
            flow_id=flow.id,
            status=str(flow.status),
            code=flow.status.code,
            channel=str(flow.channel),
            name=flow.original_name,
            size=flow.size,
            received_at=flow.received_at,
            updated_at=flow.updated_at,
            invoice_count=flow.invoice_count,
            rejected_count=flow.rejected_count,
            duplicate_of=flow.duplicate_of,
            qualification=flow.qualification,
        )


class FlowPage(BaseModel):
    flows: list[FlowInfo]
    next_cursor: str | None = Field(description="pass it as `cursor` for the next page (a flow id); null: last page")


class ReportPending(BaseModel):
    """The flow exists and is this partner's, but its integration report is not written yet (202)."""

    flow_id: str
    status: str
    code: str
    detail: str = Field(description="why there is no report yet, and when to ask again")
    retry_at: dt.datetime | None = Field(default=None, description="an incident's next automatic retry")
