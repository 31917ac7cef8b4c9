"""The AFNOR XP Z12-013 Flow Service's vocabulary, and how Relais's flows read in it (docs/reform.md §3).

Pure data: the contract's enumerations, a Relais flow status as a `FlowAckStatus`, a flow's syntax, type,
profile and processing rule, and its findings as `AcknowledgementDetail`s. The API (relais/api/flow_service)
and the webhooks (flows/pipeline/webhooks.py) both write a flow with `flow_json`.

>>> ack_status(FlowStatus.IN_INTEGRE_PARTIEL), ack_status(FlowStatus.IN_REJETE), ack_status(FlowStatus.IN_INCIDENTE)
('Ok', 'Error', 'Pending')
>>> syntax_of("IN_DP_E2_CII_FACTURX", None), syntax_of("IN_DP_E1_UBL_INVOICE", None), syntax_of(None, "CDAR")
('Factur-X', 'UBL', 'CDAR')
>>> profile_of("CII", "IN_DP_E2_CII_MIN_16B", None), profile_of("Factur-X", None, "EXTENDED"), profile_of("CDAR", None, None)
('Basic', 'Extended-CTC-FR', 'Undefined')
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

from flows.domain.statuses import FlowStatus

SYNTAXES = ("CII", "UBL", "Factur-X", "CDAR", "FRR")
#: What Relais takes: e-reporting (FRR) is not handled (createFlow answers 422, docs/reform.md §3).
ACCEPTED_SYNTAXES = ("CII", "UBL", "Factur-X", "CDAR")
PROFILES = ("Basic", "CIUS", "Extended-CTC-FR", "Undefined")
PROCESSING_RULES = (
    "B2B",
    "B2BInt",
    "B2C",
    "B2G",
    "B2GInt",
    "OutOfScope",
    "B2GOutOfScope",
    "ArchiveOnly",
    "NotApplicable",
    "Undefined",
)
FLOW_TYPES = (
    "CustomerInvoice",
    "SupplierInvoice",
    "CustomerInvoiceLC",
    "SupplierInvoiceLC",
    "StateCustomerInvoiceLC",
    "StateSupplierInvoiceLC",
    "AggregatedCustomerTransactionReport",
    "UnitaryCustomerTransactionReport",
    "AggregatedCustomerPaymentReport",
    "UnitaryCustomerPaymentReport",
    "UnitarySupplierTransactionReport",
    "MultiFlowReport",
    "StateCustomerInvoice",
    "StateSupplierInvoice",
    "StateTransactionReport",
    "StateTransactionReportLC",
    "StatePaymentReport",
    "StatePaymentReportLC",
    "Undefined",
)
DIRECTIONS = ("In", "Out")
ACK_STATUSES = ("Pending", "Ok", "Error")

#: A Relais flow status as the contract's acknowledgement: a closed flow is Ok (integrated, even partly: its
#: rejected invoices are the details) or Error (rejected); anything else, an incident included, is Pending.
_ACK = {
    FlowStatus.IN_INTEGRE: "Ok",
    FlowStatus.IN_INTEGRE_PARTIEL: "Ok",
    FlowStatus.IN_REJETE: "Error",
}
#: Relais statuses per acknowledgement (the search's ``ackStatus`` filter).
STATUSES_BY_ACK = {ack: tuple(s for s in FlowStatus if _ACK.get(s, "Pending") == ack) for ack in ACK_STATUSES}

#: A flow deposited by a partner (Out) and a message Relais sends it (In): their FlowType [choice].
OUT_INVOICE_TYPE = "CustomerInvoice"  # the partner deposits its (the seller's) outgoing invoices
OUT_CDAR_TYPE = "SupplierInvoiceLC"  # a lifecycle a buyer's platform reports on invoices it received
IN_CDAR_TYPE = "CustomerInvoiceLC"  # Relais's CDAR to the partner about the invoices it deposited


def ack_status(status: FlowStatus) -> str:
    return _ACK.get(status, "Pending")


def syntax_of(flow_code: str | None, declared: str | None) -> str:
    """The flow's FlowSyntax: what its flowInfo declared, else read from its Relais flow code (before a flow is
    read it has none: CII, the most common, is never guessed: "UBL" only when the code says so)."""
    if declared in SYNTAXES:
        return str(declared)
    code = flow_code or ""
    if "FACTURX" in code:
        return "Factur-X"
    if "UBL" in code:
        return "UBL"
    if "CDAR" in code:
        return "CDAR"
    return "CII"


def profile_of(syntax: str, flow_code: str | None, facturx_profile: str | None, declared: str | None = None) -> str:
    """FlowProfile: declared, else Basic for the minimal flows (E2 *_MIN) and the Factur-X BASIC profiles,
    Extended-CTC-FR for the EXTENDED one, CIUS for a full invoice; Undefined for a CDAR [choice]."""
    if declared in PROFILES:
        return str(declared)
    if syntax == "CDAR":
        return "Undefined"
    prof = (facturx_profile or "").upper()
    if "EXTENDED" in prof:
        return "Extended-CTC-FR"
    if "MIN" in (flow_code or "") or prof.startswith("BASIC") or prof == "MINIMUM":
        return "Basic"
    return "CIUS"


@dataclasses.dataclass(frozen=True, slots=True)
class Detail:
    """One `AcknowledgementDetail`: a finding of the flow (its rule code kept as the reason code)."""

    level: str  # "Error" | "Warning"
    item: str  # the invoice the finding is about, else the flow
    reason_code: str
    reason_message: str

    def as_json(self) -> dict[str, str]:
        return {
            "level": self.level,
            "item": self.item,
            "reasonCode": self.reason_code,
            "reasonMessage": self.reason_message,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class FlowView:
    """A flow as the contract shows it (the `Flow` schema)."""

    flow_id: str
    name: str
    direction: str
    syntax: str
    profile: str
    flow_type: str
    processing_rule: str
    rule_source: str  # "Input" | "Computed"
    submitted_at: dt.datetime
    updated_at: dt.datetime
    ack: str
    tracking_id: str | None = None
    sha256: str | None = None
    details: Sequence[Detail] = ()


def iso(at: dt.datetime) -> str:
    """RFC 3339 with its offset (a naive time read from SQLite is UTC).

    >>> iso(dt.datetime(2026, 1, 2, 3, 4, 5))
    '2026-01-02T03:04:05Z'
    """
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def flow_json(v: FlowView) -> dict[str, Any]:
    """The contract's `Flow` object."""
    out: dict[str, Any] = {
        "flowId": v.flow_id,
        "name": v.name[:255],
        "flowSyntax": v.syntax,
        "flowProfile": v.profile,
        "processingRule": v.processing_rule,
        "processingRuleSource": v.rule_source,
        "flowType": v.flow_type,
        "flowDirection": v.direction,
        "submittedAt": iso(v.submitted_at),
        "updatedAt": iso(v.updated_at),
        "acknowledgement": {"status": v.ack},
    }
    if v.tracking_id:
        out["trackingId"] = v.tracking_id
    if v.sha256:
        out["sha256"] = v.sha256
    if v.details:
        out["acknowledgement"]["details"] = [d.as_json() for d in v.details]
    return out
