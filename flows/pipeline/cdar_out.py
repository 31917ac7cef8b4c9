"""CDAR out: what the status returns and the flow outcomes share to send a CDAR message (docs/reform.md §1).

`CdarOut` holds Relais as a platform (its registration number and name: settings ``platform_id``,
``platform_name``) and how to find a partner's (``Partner.platform_id``). It builds the message (sender
Relais ``WK`` under scheme 0238; recipient the partner, ``WK`` + its platform id, else ``SR`` with its id
as URI [choice]), writes and checks it (`validators.cdar.check`: the XSD and the BR-FR-CDV schematron),
and records one that fails as ``not_sent`` with its findings, logged as an error: it never leaves.

`flow_lines` are a closed flow's outcome for a CDAR partner: a flow refused before any invoice was read
is one 501 naming its file; each rejected invoice a 213 with the reason of its first fatal rule; each
accepted invoice a 200.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Sequence

from archive import Archive
from flows.domain import log
from flows.domain.cdar import Message, Party, Role, Scheme, StatusLine
from flows.domain.model import Flow, FlowStatus, Invoice, ValidationError, utcnow
from flows.pipeline.channels import Channels
from flows.returns import cdar as cdarflow
from flows.returns import cdar_map
from flows.returns.cdar_map import Written
from flows.store import Store
from flows.store.cdar import CdarLineRecord, CdarRecord, Outcome
from validators import cdar as cdar_check

_log = log.get("relais.cdar_out")


def _write(message: Message, language: str) -> bytes:
    return cdarflow.write(message, language=language)


@dataclasses.dataclass
class CdarOut:
    platform_id: str = "9998"  # Relais's registration number (settings platform_id)
    platform_name: str = "Relais"
    partner_platform: Callable[[str], str | None] = lambda partner: None  # partner -> its platform id
    write: Callable[[Message, str], bytes] = _write  # tests replace it to force an invalid message

    @property
    def platform(self) -> Party:
        return Party(Role.PLATFORM, self.platform_id, Scheme.PLATFORM, self.platform_name)

    def recipient(self, partner: str) -> Party:
        """The partner: a platform of the reform by its registration number, else by its id as URI."""
        platform_id = self.partner_platform(partner)
        if platform_id:
            return Party(Role.PLATFORM, platform_id, Scheme.PLATFORM)
        return Party("SR", uri=partner)

    def message(
        self, message_id: str, partner: str, lines: Sequence[StatusLine], issuer: Party | None = None
    ) -> Message:
        return Message(
            message_id=message_id,
            issued_at=utcnow(),
            sender=self.platform,
            issuer=issuer or self.platform,
            recipient=self.recipient(partner),
            lines=tuple(lines),
        )

    def record(self, message: Message, written: Sequence[Written], partner: str, **ids: str | None) -> CdarRecord:
        """The ``cdar_messages`` row of an outgoing message (outcome queued until told otherwise)."""
        return CdarRecord(
            direction="out",
            message_id=message.message_id,
            issuer=self.platform_id,
            sha256="",
            outcome=Outcome.QUEUED,
            partner=partner,
            lines=[
                CdarLineRecord(
                    position=i,
                    invoice_number=w.line.invoice_number,
                    status=w.line.status,
                    outcome="written",
                    invoice_id=w.invoice_id,
                    reason_code=w.line.reason_code,
                    rule=w.rule,
                    history_id=w.history_id,
                    amounts=[
                        {"type": a.type_code, "amount": str(a.amount), "vat_rate": str(a.vat_rate)}
                        for a in w.line.amounts
                    ]
                    or None,
                )
                for i, w in enumerate(written, 1)
            ],
            **ids,  # type: ignore[arg-type]
        )

    def checked(self, message: Message, language: str) -> tuple[bytes, list[str]]:
        """The message's bytes and why it may not leave (none: it passes the XSD and the schematron)."""
        try:
            data = self.write(message, language)
        except cdarflow.CdarRefused as e:
            return b"", [f"writer: {e}"]
        return data, [f"{f.rule}: {f.message}" for f in cdar_check.check(data)]

    @staticmethod
    def not_sent(store: Store, record: CdarRecord, data: bytes, problems: list[str], **context: str | None) -> None:
        """Record a message that failed its check (never sent) and log it as an error: an incident."""
        record.outcome = Outcome.REFUSED_OUT
        record.sha256 = hashlib.sha256(data).hexdigest()
        record.detail = "\n".join(problems)[:4000]
        store.cdar_record(record)
        _log.error("cdar.not_sent", message_id=record.message_id, findings=problems[:20], **context)

    def finish_flow(
        self, store: Store, archive: Archive, channels: Channels, flow: Flow, language: str, earlier: int
    ) -> None:
        """A CDAR partner's flow outcome: one CDAR message (200 / 213 / 501, `flow_lines`) queued instead of the
        CPPStatut report, which it cannot read ([choice]: the report is archived all the same, for ops), in the
        transaction that closes the flow. A message that fails its check is not sent: recorded ``not_sent``,
        logged, the flow closed without a report queued (ops fix and reopen it). `earlier`: the reports
        queued for this flow before (a reopened flow's next message is ``<flow>-<n>``)."""
        written = flow_lines(flow, store.flow_errors(flow.id), store.iter_invoices(flow.id))
        if not written:
            store.finish_flow(flow, None, None)
            return
        message_id = flow.id if not earlier else f"{flow.id}-{earlier + 1}"
        message = self.message(message_id, flow.partner, [w.line for w in written])
        record = self.record(message, written, flow.partner, flow_id=flow.id)
        data, problems = self.checked(message, language)
        if problems:
            self.not_sent(store, record, data, problems, flow_id=flow.id, partner=flow.partner)
            store.finish_flow(flow, None, None)
            return
        record.sha256 = archive.put_bytes(data).sha256
        address = channels.return_address(flow.partner, cdarflow.file_name(message_id))
        store.finish_flow(flow, address, record.sha256, cdar=record)
        _log.info("flow.cdar_queued", flow_id=flow.id, message_id=message_id, lines=len(written))


def _first_fatal(errors: Iterable[ValidationError]) -> ValidationError | None:
    return next((e for e in errors if e.fatal), None)


def flow_lines(
    flow: Flow, flow_errors: Sequence[ValidationError], invoices: Iterable[Invoice], *, at: dt.datetime | None = None
) -> list[Written]:
    """A closed flow's outcome as status lines (module doc); empty when there is nothing to say."""
    at = at or utcnow()
    flow_error = _first_fatal(flow_errors)
    found: list[Written] = []
    for invoice in invoices:
        error = _first_fatal(invoice.errors) or (flow_error if invoice.status.is_rejected else None)
        if error is not None:
            found.append(Written(cdar_map.rejected_line(invoice, error, at=at), invoice.id, rule=error.rule))
        elif not invoice.status.is_rejected:
            found.append(Written(cdar_map.accepted_line(invoice, at=at), invoice.id))
    if not found and flow.status is FlowStatus.IN_REJETE and flow_error is not None:
        line = cdar_map.refused_flow_line(flow.original_name or flow.id, flow_error, at=at)
        found.append(Written(line, rule=flow_error.rule))
    return found
