"""Relais's flows as the AFNOR flow service shows them (`flows.domain.flow_service.FlowView`), read from the
store: a deposited flow (Out) with what its deposit declared and its findings, a CDAR message Relais sent
the partner (In). The API (relais/api/flow_service) and the webhook events (flows/pipeline/webhooks.py) share it.
"""

from __future__ import annotations

from flows.domain import flow_service as fs
from flows.domain.model import Flag, Flow
from flows.store import Store
from flows.store.flow_service import DeclaredInfo, SentMessage

#: The details listed per flow (a flow of thousands of rejected invoices lists the first ones).
MAX_DETAILS = 200


def out_view(store: Store, flow: Flow, declared: DeclaredInfo | None = None, *, details: bool = True) -> fs.FlowView:
    """A flow the partner deposited (direction Out)."""
    syntax = fs.syntax_of(str(flow.flow_code) if flow.flow_code else None, declared.flow_syntax if declared else None)
    ack = fs.ack_status(flow.status)
    declared_rule = declared.processing_rule if declared else None
    if declared_rule:
        rule, source = declared_rule, "Input"
    elif ack == "Pending":
        rule, source = "Undefined", "Computed"
    else:  # Relais routes to the public sector's structures (B2G); a lifecycle message is not an invoice
        rule, source = ("NotApplicable" if syntax == "CDAR" else "B2G"), "Computed"
    items: list[fs.Detail] = []
    if details and ack != "Pending":
        for invoice_id, e in store.flow_findings(flow.id, MAX_DETAILS):
            level = "Error" if e.flag is Flag.FATAL else "Warning"
            items.append(fs.Detail(level, invoice_id or flow.id, e.rule, e.message))
        if ack == "Error" and not any(d.level == "Error" for d in items):
            items.append(fs.Detail("Error", flow.id, "OtherTechnicalError", f"flow {flow.id}: {flow.status}"))
    return fs.FlowView(
        flow_id=flow.id,
        name=flow.original_name,
        direction="Out",
        syntax=syntax,
        profile=fs.profile_of(
            syntax,
            str(flow.flow_code) if flow.flow_code else None,
            flow.profile,
            declared.flow_profile if declared else None,
        ),
        flow_type=fs.OUT_CDAR_TYPE if syntax == "CDAR" else fs.OUT_INVOICE_TYPE,
        processing_rule=rule,
        rule_source=source,
        submitted_at=flow.received_at,
        updated_at=flow.updated_at,
        ack=ack,
        tracking_id=declared.tracking_id if declared else None,
        sha256=flow.sha256,
        details=items,
    )


def in_view(message: SentMessage) -> fs.FlowView:
    """A CDAR message Relais queued to the partner (direction In): available, so Ok."""
    return fs.FlowView(
        flow_id=message.flow_service_id,
        name=f"{message.flow_service_id}.xml",
        direction="In",
        syntax="CDAR",
        profile="Undefined",
        flow_type=fs.IN_CDAR_TYPE,
        processing_rule="NotApplicable",
        rule_source="Computed",
        submitted_at=message.created_at,
        updated_at=message.created_at,
        ack="Ok",
        sha256=message.sha256,
    )


def views(store: Store, flows: list[Flow], *, details: bool = True) -> list[fs.FlowView]:
    declared = store.declared([f.id for f in flows])
    return [out_view(store, f, declared.get(f.id), details=details) for f in flows]
