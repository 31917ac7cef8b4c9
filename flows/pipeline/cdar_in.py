"""A received CDAR lifecycle message: validated, then applied line by line to the invoices it names.

A flow whose document is a CDAR D22B message (`flows.io.detect.is_cdar`) comes here from
`flows.pipeline.process` instead of being split and judged as invoices (docs/reform.md §2):

1. the bytes are read with `flows.io.safexml` (hostile XML refused, `Rejected`, as any received XML), then
   checked against the official XSD and BR-FR-CDV schematron (`validators.cdar.check`): any finding refuses
   the whole flow (RLS-C01, then the official findings verbatim); such a message is not recorded, so that
   its sender may send it again, corrected, with the same id;
2. a message id its issuer sent already (`cdar_messages`, unique per direction, issuer, id) is not applied
   again: the flow is answered with the first one's outcome and findings, and RLS-C06;
3. each line, in order: RLS-C05 (a status Relais does not apply), RLS-C02 (no such invoice), RLS-C03 (not the
   sender's to set), RLS-C04 (the lifecycle does not allow it from the invoice's status, counting the
   earlier lines); the others are applied through `flows.pipeline.status_changes.cdar_move` (actor
   `PARTNER_PLATFORM` or `SUPPLIER`, source `cdar`, reason code and text as received), and the message is
   recorded with each line's outcome, all in one transaction (`CdarRepo.cdar_apply`). The history entries
   reach the invoice's depositor through its status returns (`flows.pipeline.status_returns`), in its own
   vocabulary.

The flow closes IN_INTEGRE (every line applied), IN_INTEGRE_PARTIEL (some) or IN_REJETE (none), its
findings (one per refused line: rule, location "ligne n, facture X", message) in its integration report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from lxml import etree

from flows.domain import log
from flows.domain.cdar import RELAIS_STATUS, Amount, Message, StatusLine, actor_of
from flows.domain.lifecycle import IllegalTransition, InvoiceStatus
from flows.domain.model import Flow, FlowStatus, ValidationError
from flows.domain.rule import REGISTRY
from flows.io import cdar as cdar_io
from flows.io import safexml
from flows.pipeline import status_changes
from flows.store import Store
from flows.store.cdar import CdarLineRecord, CdarMove, CdarRecord, CdarTarget, Outcome
from validators import cdar as cdar_check
from validators.cdar_rules import (
    Sender,
    invalid_message,
    move_not_allowed,
    not_your_invoice,
    replayed,
    sending_platform,
    status_not_applied,
    unknown_invoice,
)

_log = log.get("relais.cdar_in")

#: A message's outcome -> the flow's verdict.
FLOW_STATUS = {
    Outcome.APPLIED: FlowStatus.IN_INTEGRE,
    Outcome.PARTIAL: FlowStatus.IN_INTEGRE_PARTIEL,
    Outcome.REFUSED: FlowStatus.IN_REJETE,
}

Check = Callable[[etree._ElementTree], list[ValidationError]]


@dataclasses.dataclass
class Received:
    """What became of a received CDAR message: the flow's verdict and findings, the recorded message."""

    status: FlowStatus
    findings: list[ValidationError]
    record: CdarRecord | None = None  # None: invalid, not recorded
    replay: bool = False


def issuer_key(message: Message, partner: str) -> str:
    """Who issued a message, as `cdar_messages.issuer`: the sending platform (``0238:<id>``), else the issuer's
    or the sender's identifier (``<scheme>:<id>``), else the partner that brought it (``partner:<id>``).

    >>> import datetime as dt
    >>> from flows.domain.cdar import Party
    >>> m = Message("M", dt.datetime(2026, 1, 1), Party("SE", "123456789", "0002"), Party("SE", "123456789", "0002"),
    ...             Party("WK", "9998", "0238"), ())
    >>> issuer_key(m, "seller")
    '0002:123456789'
    """
    platform = sending_platform(message)
    if platform:
        return f"0238:{platform}"
    for party in (message.issuer, message.sender):
        if party.global_id:
            return f"{party.scheme or ''}:{party.global_id}"
    return f"partner:{partner}"


def receive(
    store: Store,
    flow: Flow,
    data: bytes,
    *,
    platform_id: str | None = None,
    limits: safexml.XmlLimits | None = None,
    check: Check = cdar_check.check,
    dry_run: bool = False,
) -> Received:
    """Validate and apply the CDAR message `data` that `flow` brought (`platform_id`: its partner's registration
    number as a platform, None when it is none). `dry_run` (a partner in qualification): judged, answered as in
    production, nothing applied nor recorded. Raises `flows.domain.errors.Rejected` for hostile or
    malformed XML (the caller refuses the flow with it); anything else unexpected is the caller's incident."""
    tree = safexml.parse(data, limits=limits or safexml.XmlLimits())
    official = check(tree)
    verdict = invalid_message.check(official)
    if verdict is not None:
        _log.info("cdar.invalid", rules=sorted({f.rule for f in official})[:20])
        return Received(FlowStatus.IN_REJETE, [verdict, *official])
    try:
        message = cdar_io.read(tree)
    except cdar_io.CdarUnreadable as e:
        return Received(FlowStatus.IN_REJETE, [invalid_message.RULE.error("/", str(e))])
    if not message.lines or not message.message_id:
        return Received(FlowStatus.IN_REJETE, [invalid_message.RULE.error("/", "no message id or no status line")])
    issuer = issuer_key(message, flow.partner)
    with log.bound(cdar_message=message.message_id, issuer=issuer):
        first = store.cdar_find("in", issuer, message.message_id)
        if first is not None:
            return answered(first, flow)
        sender = Sender(flow.partner, platform_id, sending_platform(message))
        rec, moves, findings = _plan(store, flow, message, issuer, sender)
        refusals: dict[int, ValidationError] = {}

        def refused(position: int, e: Exception) -> str | None:
            line = message.lines[position - 1]
            if isinstance(e, IllegalTransition):
                refusals[position] = move_not_allowed.refusal(line, position, e)
            elif isinstance(e, LookupError):
                refusals[position] = unknown_invoice.RULE.error(_where(line, position), f"{e} (deleted meanwhile)")
            else:
                return None
            return refusals[position].rule

        if dry_run:
            for position, _invoice, _move in moves:
                rec.lines[position - 1].outcome = "applied"
            applied = sum(line.outcome == "applied" for line in rec.lines)
            rec.outcome = (
                Outcome.APPLIED if applied == len(rec.lines) else Outcome.PARTIAL if applied else Outcome.REFUSED
            )
            return Received(FLOW_STATUS[rec.outcome], [findings[p] for p in sorted(findings)], None)
        recorded, inserted = store.cdar_apply(rec, moves, refused)
        if not inserted:  # the same message, applied meanwhile by another worker
            return answered(recorded, flow)
        findings.update(refusals)
        applied = sum(line.outcome == "applied" for line in rec.lines)
        _log.info("cdar.applied", lines=len(rec.lines), applied=applied, outcome=str(rec.outcome))
        return Received(FLOW_STATUS[rec.outcome], [findings[p] for p in sorted(findings)], rec)


def _plan(
    store: Store, flow: Flow, message: Message, issuer: str, sender: Sender
) -> tuple[CdarRecord, list[CdarMove], dict[int, ValidationError]]:
    """The message's record (its lines refused by a rule already marked), the moves of the others, the findings
    so far (by line position)."""
    rec = CdarRecord(
        direction="in",
        message_id=message.message_id,
        issuer=issuer,
        sha256=flow.sha256,
        outcome=Outcome.REFUSED,
        partner=flow.partner,
        flow_id=flow.id,
    )
    moves: list[CdarMove] = []
    findings: dict[int, ValidationError] = {}
    targets: dict[str, list[CdarTarget]] = {}
    now: dict[str, InvoiceStatus] = {}  # each invoice's status after the lines planned so far
    for position, line in enumerate(message.lines, start=1):
        record = CdarLineRecord(
            position=position,
            invoice_number=line.invoice_number[:200],
            status=line.status,
            outcome="refused",
            reason_code=line.reason_code,
            amounts=[_amount(a) for a in line.amounts] or None,
        )
        rec.lines.append(record)
        error, target = _judge(store, line, position, sender, targets, now)
        if target is not None:
            record.invoice_id = target.id
        if error is None and target is not None:
            try:
                move = status_changes.cdar_move(
                    target.framework,
                    RELAIS_STATUS[line.status],
                    status=line.status,
                    actor=actor_of(line.status),
                    reason=line.reason,
                    reason_code=line.reason_code,
                )
            except (status_changes.CdarReasonRefused, status_changes.ReasonRequired) as e:
                error = move_not_allowed.RULE.error(_where(line, position), str(e))
            else:
                moves.append((position, target.id, move))
                now[target.id] = RELAIS_STATUS[line.status]
                continue
        assert error is not None
        record.rule = error.rule
        findings[position] = error
    return rec, moves, findings


def _judge(
    store: Store,
    line: StatusLine,
    position: int,
    sender: Sender,
    targets: dict[str, list[CdarTarget]],
    now: dict[str, InvoiceStatus],
) -> tuple[ValidationError | None, CdarTarget | None]:
    """A line's first refusal (None: it may be applied) and the invoice it names (None: none)."""
    error = status_not_applied.check(line, position)
    if error is not None:
        return error, None
    if line.invoice_number not in targets:
        targets[line.invoice_number] = store.cdar_targets(line.invoice_number)
    candidates = targets[line.invoice_number]
    error = unknown_invoice.check(line, position, candidates)
    if error is not None:
        return error, None
    target = unknown_invoice.match(line, candidates)[0]
    error = not_your_invoice.check(line, position, target, sender)
    if error is None:
        error = move_not_allowed.check(line, position, now.get(target.id, target.status))
    return error, target


def answered(first: CdarRecord, flow: Flow) -> Received:
    """The answer to a message recorded already: the first one's outcome and its lines' findings, with RLS-C06
    when it is a replay (another flow brought it first; the same flow: a run resumed after an interruption)."""
    findings = [
        _rebuilt(line)
        for line in first.lines
        if line.outcome == "refused" and line.rule  # the first one's refusals, as recorded
    ]
    replay = first.flow_id != flow.id
    if replay:
        _log.info("cdar.replayed", first_flow=first.flow_id)
        note = replayed.check(first.message_id, first.issuer, first.flow_id or "?")
        assert note is not None
        findings.insert(0, note)
    status = FLOW_STATUS.get(first.outcome, FlowStatus.IN_REJETE)
    return Received(status, findings, first, replay=replay)


def _rebuilt(line: CdarLineRecord) -> ValidationError:
    rule = REGISTRY.get(line.rule or "")
    where = f"ligne {line.position}, facture {line.invoice_number}"
    if rule is None:  # pragma: no cover - every recorded rule is registered
        return ValidationError(line.rule or "?", invalid_message.RULE.flag, where, line.rule or "?")
    return rule.error(where, f"status {line.status}")


def _where(line: StatusLine, position: int) -> str:
    return f"ligne {position}, facture {line.invoice_number}"


def _amount(a: Amount) -> dict[str, str]:
    out = {"type_code": a.type_code, "amount": str(a.amount), "currency": a.currency}
    if a.vat_rate is not None:
        out["vat_rate"] = str(a.vat_rate)
    return out


__all__: Sequence[str] = ("FLOW_STATUS", "Received", "answered", "issuer_key", "receive")
