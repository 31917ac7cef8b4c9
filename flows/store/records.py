"""The store's records: the values it returns besides those of ``flows.domain.model``, and the row <-> value converters.

Part of ``flows.store`` (import these names from there); split out to keep each module small.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from flows.domain.frameworks import Framework
from flows.domain.model import (
    Channel,
    Container,
    Flag,
    Flow,
    FlowCode,
    FlowStatus,
    Invoice,
    InvoiceStatus,
    Syntax,
    ValidationError,
    utcnow,
)
from flows.domain.outbox import OutboxItem, OutboxKind, OutboxStatus  # re-exported
from flows.domain.structures import Directory, Structure  # noqa: F401  # re-exported
from flows.store import tables as t

PAGE = 1000


class As2Status:
    """`As2Message.mdn_status` values (received messages also carry "processed/error: <modifier>")."""

    RECEIVED = "received"  # in: archived, not yet answered (a crash here is resumed on the resend)
    PROCESSED = "processed"  # in: accepted, positive MDN given
    PENDING = "pending"  # out: being sent
    SENT = "sent"  # out: accepted by the partner's server, async MDN awaited (or none requested)
    MDN_OK = "mdn-ok"  # out: signed MDN "processed" with the MIC computed when sending
    MDN_ERROR = "mdn-error"  # out: negative MDN, bad MDN signature or MIC mismatch (see detail)


@dataclasses.dataclass(slots=True)
class As2Message:
    """One AS2 message received ("in") or sent ("out"), its MIC and the state of its MDN."""

    direction: str
    message_id: str
    partner: str | None
    as2_from: str
    as2_to: str
    mdn_status: str
    flow_id: str | None = None
    outbox_id: int | None = None
    raw_sha256: str | None = None
    headers: dict[str, str] | None = None
    mic: str | None = None
    mic_digest: str | None = None
    mdn_mode: str | None = None
    mdn_target: str | None = None
    mdn_archive_sha256: str | None = None
    detail: str | None = None
    id: int | None = None
    received_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


# ---- row <-> value -----------------------------------------------------------


def _as2_row(m: As2Message) -> dict[str, Any]:
    row = {f.name: getattr(m, f.name) for f in dataclasses.fields(As2Message)}
    row["headers"] = json.dumps(m.headers, sort_keys=True) if m.headers is not None else None
    return row


def _as2(r: Any) -> As2Message:
    values = {f.name: r[f.name] for f in dataclasses.fields(As2Message)}
    values["headers"] = json.loads(r["headers"]) if r["headers"] else None
    values["received_at"] = _aware(values["received_at"])
    values["updated_at"] = _aware(values["updated_at"])
    return As2Message(**values)


def _outbox_item(r: Any) -> OutboxItem:
    values = {k: r[k] for k in OutboxItem.__slots__}
    values["kind"] = OutboxKind(values["kind"])
    values["next_attempt_at"] = _aware(values["next_attempt_at"])
    values["created_at"] = _aware(values["created_at"])
    return OutboxItem(**values)


def _aware_required(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _flow_row(f: Flow) -> dict[str, Any]:
    return {
        "id": f.id,
        "partner": f.partner,
        "channel": str(f.channel),
        "original_name": f.original_name,
        "size": f.size,
        "sha256": f.sha256,
        "status": str(f.status),
        "flow_code": str(f.flow_code) if f.flow_code else None,
        "container": str(f.container) if f.container else None,
        "received_at": f.received_at,
        "updated_at": f.updated_at,
        "duplicate_of": f.duplicate_of,
        "directory_version": f.directory_version,
        "invoice_count": f.invoice_count,
        "rejected_count": f.rejected_count,
        "profile": f.profile,
        "rulesets": json.dumps(f.rulesets, sort_keys=True) if f.rulesets is not None else None,
        "incidents": f.incidents,
        "retry_at": f.retry_at,
        "reopened": f.reopened,
        "qualification": f.qualification,
    }


def _flow(r: Any) -> Flow:
    return Flow(
        id=r["id"],
        partner=r["partner"],
        channel=Channel(r["channel"]),
        original_name=r["original_name"],
        size=r["size"],
        sha256=r["sha256"],
        status=FlowStatus(r["status"]),
        flow_code=FlowCode(r["flow_code"]) if r["flow_code"] else None,
        container=Container(r["container"]) if r["container"] else None,
        received_at=_aware_required(r["received_at"]),
        updated_at=_aware_required(r["updated_at"]),
        duplicate_of=r["duplicate_of"],
        directory_version=r["directory_version"],
        invoice_count=r["invoice_count"],
        rejected_count=r["rejected_count"],
        profile=r["profile"],
        rulesets=json.loads(r["rulesets"]) if r["rulesets"] else None,
        incidents=r["incidents"] or 0,
        retry_at=_aware(r["retry_at"]),
        reopened=r["reopened"] or 0,
        qualification=bool(r.get("qualification")),
    )


_INVOICE_FIELDS = [f.name for f in dataclasses.fields(Invoice) if f.name not in ("errors",)]


def _invoice_row(i: Invoice) -> dict[str, Any]:
    row = {name: getattr(i, name) for name in _INVOICE_FIELDS}
    row["syntax"] = str(i.syntax) if i.syntax else None
    row["status"] = str(i.status)
    row["framework"] = str(i.framework)
    return row


def _invoice(r: Any) -> Invoice:
    values = {name: r[name] for name in _INVOICE_FIELDS}
    values["syntax"] = Syntax(r["syntax"]) if r["syntax"] else None
    values["status"] = InvoiceStatus(r["status"])
    values["framework"] = Framework(r["framework"] or "A1")
    values["due_at"] = _aware(r["due_at"])
    return Invoice(**values)


def _error_row(flow_id: str, invoice_id: str | None, e: ValidationError) -> dict[str, Any]:
    return {
        "flow_id": flow_id,
        "invoice_id": invoice_id,
        "rule": e.rule,
        "flag": str(e.flag),
        "location": e.location,
        "message": e.message,
    }


def _error(r: Any) -> ValidationError:
    return ValidationError(r["rule"], Flag(r["flag"]), r["location"], r["message"])


# ---- what a flow processed again leaves of its earlier run -------------------------------


def current_findings() -> sa.ColumnElement[bool]:
    """The findings of a flow's latest run: those of an earlier run (reprocessed, reopened) are kept,
    marked superseded, and left out by every reader but the flow's history (its web page)."""
    return t.validation_errors.c.superseded_at.is_(None)


def supersede_findings(conn: sa.Connection, flow_id: str, at: dt.datetime, invoice_ids: Sequence[str] | None) -> None:
    """Mark superseded the current findings of a flow: all of them (`invoice_ids` None), or the flow's own
    and those of `invoice_ids`."""
    e = t.validation_errors.c
    which: sa.ColumnElement[bool] = sa.true()
    if invoice_ids is not None:
        which = sa.or_(e.invoice_id.is_(None), e.invoice_id.in_(list(invoice_ids)))
    conn.execute(
        sa.update(t.validation_errors).where(e.flow_id == flow_id, current_findings(), which).values(superseded_at=at)
    )


def supersede_outbox(conn: sa.Connection, which: sa.ColumnElement[bool]) -> None:
    """Outbox rows not sent yet (`which` of them) become superseded: never sent, kept and shown; their key
    is freed (suffixed with ``~<id>``) for the rows the rerun queues."""
    o = t.outbox.c
    conn.execute(
        sa.update(t.outbox)
        .where(which, o.status.in_([OutboxStatus.PENDING, OutboxStatus.HELD]))
        .values(
            status=OutboxStatus.SUPERSEDED,
            key=o.key + "~" + sa.cast(o.id, sa.String),
            leased_by=None,
            lease_until=None,
            next_attempt_at=None,
        )
    )


# ---- CDAR messages (flows/store/cdar.py; docs/reform.md) ----


class Outcome(enum.StrEnum):
    """What became of a CDAR message."""

    QUEUED = "queued"  # out: written, checked, archived, queued in the outbox to its partner
    REFUSED_OUT = "not_sent"  # out: failed the official XSD or schematron: an incident, never sent
    APPLIED = "applied"  # in: every line applied
    PARTIAL = "partially_applied"  # in: some lines applied, some refused
    REFUSED = "refused"  # in: invalid, or no line applied


@dataclasses.dataclass(slots=True)
class CdarLineRecord:
    position: int
    invoice_number: str
    status: str
    outcome: str  # "written" | "applied" | "refused"
    invoice_id: str | None = None
    reason_code: str | None = None
    rule: str | None = None
    history_id: int | None = None
    amounts: list[dict[str, str]] | None = None


@dataclasses.dataclass(slots=True)
class CdarRecord:
    direction: str  # "in" | "out"
    message_id: str
    issuer: str
    sha256: str
    outcome: Outcome
    partner: str | None = None
    flow_id: str | None = None
    return_id: str | None = None
    detail: str | None = None
    lines: list[CdarLineRecord] = dataclasses.field(default_factory=list)
    id: int | None = None
    created_at: dt.datetime | None = None
    line_count: int = 0  # its lines as recorded (``lines`` may hold only some of them, or none: `cdar_list`)


def _cdar(row: Any, lines: Sequence[Any] = ()) -> CdarRecord:
    return CdarRecord(
        id=row["id"],
        direction=row["direction"],
        message_id=row["message_id"],
        issuer=row["issuer"],
        sha256=row["sha256"],
        outcome=Outcome(row["outcome"]),
        partner=row["partner"],
        flow_id=row["flow_id"],
        return_id=row["return_id"],
        detail=row["detail"],
        created_at=row["created_at"],
        line_count=row["lines"],
        lines=[
            CdarLineRecord(
                position=r["position"],
                invoice_number=r["invoice_number"],
                status=r["status"],
                outcome=r["outcome"],
                invoice_id=r["invoice_id"],
                reason_code=r["reason_code"],
                rule=r["rule"],
                history_id=r["history_id"],
                amounts=json.loads(r["amounts"]) if r["amounts"] else None,
            )
            for r in lines
        ],
    )


def insert_cdar(conn: sa.Connection, rec: CdarRecord) -> bool:
    """Insert `rec` and its lines on `conn` (the caller's transaction): False, nothing written, when a message
    with the same (direction, issuer, message id) is recorded already. Sets ``rec.id``."""
    rec.created_at = rec.created_at or utcnow()
    values = {f: getattr(rec, f) for f in ("direction", "message_id", "issuer", "partner", "flow_id", "return_id")}
    stmt = sa.insert(t.cdar_messages).values(
        **values,
        sha256=rec.sha256,
        lines=len(rec.lines),
        outcome=str(rec.outcome),
        detail=rec.detail,
        created_at=rec.created_at,
    )
    try:
        with conn.begin_nested():
            rec.id = conn.execute(stmt.returning(t.cdar_messages.c.id)).scalar_one()
    except sa.exc.IntegrityError:
        return False
    if rec.lines:
        conn.execute(
            sa.insert(t.cdar_lines),
            [
                {
                    "message": rec.id,
                    "position": line.position,
                    "invoice_id": line.invoice_id,
                    "invoice_number": line.invoice_number,
                    "status": line.status,
                    "reason_code": line.reason_code,
                    "outcome": line.outcome,
                    "rule": line.rule,
                    "history_id": line.history_id,
                    "amounts": json.dumps(line.amounts) if line.amounts else None,
                }
                for line in rec.lines
            ],
        )
    return True


def supersede_not_sent(conn: sa.Connection, issuer: str, message_id: str) -> None:
    """An outgoing message recorded ``not_sent`` and now written again (after a fix) keeps its row, its id
    suffixed with ``~<row id>`` (as a superseded outbox row's key), so that the new attempt is recorded."""
    c = t.cdar_messages.c
    conn.execute(
        sa.update(t.cdar_messages)
        .where(
            c.direction == "out",
            c.issuer == issuer,
            c.message_id == message_id,
            c.outcome == str(Outcome.REFUSED_OUT),
        )
        .values(message_id=c.message_id + "~" + sa.cast(c.id, sa.String))
    )
