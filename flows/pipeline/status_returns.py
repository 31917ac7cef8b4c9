"""Emit status return flows: each sender hears every status change of its invoices, once, in order.

`StatusReturns.emit_due` looks for senders with changes not reported yet (history entries after
the last one reported to them). A sender's changes are due once the oldest has waited
``interval_seconds`` (``RELAIS_STATUS_INTERVAL_SECONDS``; 0: at the next run); then all of them,
up to `max_entries` per file, go into one status return flow (`flows.returns.status`), validated,
archived, and queued in the outbox to the sender's return address (`flows.pipeline.channels`) in the same
transaction that records which history ids it covers. The outbox sends it over the sender's
channel, in order with its integration reports, retried while the partner is down; the recorded
range makes a second emitter's attempt fail, so nothing is reported twice.

Left out of the file, but counted as reported: the recorded-with statuses (the integration report
gave them), MISE_EN_PAIEMENT of a structure whose payment status is not reported
(``statutMiseEnPaiementNestPasRemonte``), and changes with no code in the sender's vocabulary.

A partner whose vocabulary is ``cdar`` gets each return as ONE CDAR lifecycle message (docs/reform.md §1,
`flows.returns.cdar`): message id = the return id, sender Relais (``WK``, ``platform_id`` under scheme 0238),
recipient the partner (``WK`` + its platform id, else ``SR`` with its id as URI), one line per change with a
CDAR code. A message holds one phase and one issuer (BR-FR-CDV-CL-03: the issuer is Relais for 305, the
buyer or the seller for 23), so a return ends where the next change would need another: the rest go in
the next return, in order. The message is checked (`validators.cdar.check`, XSD + BR-FR-CDV) before it
leaves and recorded in ``cdar_messages`` in the transaction that queues it; one that fails is never sent:
recorded ``not_sent`` with the findings, logged as an error, its changes left unreported (the partner's
returns stop there until a fix), counted by ``relais_cdar_messages_total{outcome="not_sent"}``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from archive import Archive
from flows.domain import log
from flows.domain.history import HistoryEntry
from flows.domain.lifecycle import InvoiceStatus
from flows.domain.model import utcnow
from flows.pipeline.cdar_out import CdarOut
from flows.pipeline.channels import Channels
from flows.returns import cdar as cdarflow
from flows.returns import cdar_map
from flows.returns import status as statusflow
from flows.store import Store

_log = log.get("relais.status_returns")


@dataclasses.dataclass
class EmitReport:
    returns: int = 0  # status return flows queued
    entries: int = 0  # status changes they report
    skipped: int = 0  # changes marked reported without being written (see the module doc)


@dataclasses.dataclass
class StatusReturns:
    store: Store
    archive: Archive
    channels: Channels
    interval_seconds: float = 0.0
    vocabulary: Callable[[str], str] = lambda partner: "cpp"  # partner -> "cpp" | "cdar"
    language: Callable[[str], str] = lambda partner: "fr"  # partner -> "fr" | "en" (the platform's reasons)
    payment_not_reported: Callable[[str | None], bool] = lambda siret: False  # buyer SIRET -> flag
    max_entries: int = 5000
    #: Relais as a platform and the partners' platform ids: the CDAR messages' parties (relais/compose.py).
    cdar: CdarOut = dataclasses.field(default_factory=CdarOut)

    def emit_due(self, now: dt.datetime | None = None) -> EmitReport:
        """Queue the status return flows that are due (module doc)."""
        now = now or utcnow()
        report = EmitReport()
        for partner, (cursor, oldest, _count) in sorted(self.store.pending_status_partners().items()):
            if (now - oldest).total_seconds() < self.interval_seconds:
                continue
            while True:
                entries = self.store.history_after(partner, cursor, limit=self.max_entries)
                if not entries:
                    break
                done = self._emit(partner, entries, report)
                if done is None:
                    break  # another emitter took this range (it reports it), or a CDAR message failed its check
                cursor = done
                if done == entries[-1].id and len(entries) < self.max_entries:
                    break
        return report

    def _emit(self, partner: str, entries: list[HistoryEntry], report: EmitReport) -> int | None:
        """Queue the return of `entries` (or of their first part, for CDAR): the last history id it covers,
        None when nothing was queued."""
        invoices = self.store.invoices_by_id([e.invoice_id for e in entries])
        changes = []
        not_reported: dict[str | None, bool] = {}  # buyer SIRET -> its directory flag, asked once per file
        for e in entries:
            invoice = invoices.get(e.invoice_id)
            if invoice is None:  # forgotten by a reprocessing, not recorded again: its change stays in history
                report.skipped += 1
                continue
            if e.status is InvoiceStatus.MISE_EN_PAIEMENT and not_reported.setdefault(
                invoice.buyer_siret, self.payment_not_reported(invoice.buyer_siret)
            ):
                report.skipped += 1
                continue
            changes.append(statusflow.Change(e, invoice))
        return_id = f"ST{entries[0].id:012d}"
        vocabulary = self.vocabulary(partner)
        if vocabulary == "cdar":
            return self._emit_cdar(partner, return_id, entries, changes, report)
        data, count = statusflow.build(
            return_id, partner, changes, vocabulary=vocabulary, language=self.language(partner)
        )
        report.skipped += len(changes) - count
        if count:
            sha256 = self.archive.put_bytes(data).sha256
            address = self.channels.return_address(partner, statusflow.file_name(return_id))
        else:
            sha256, address = "", None
        if not self.store.queue_status_return(
            return_id, partner, entries[0].id, entries[-1].id, count, sha256, address
        ):
            return None
        if count:
            report.returns += 1
            report.entries += count
            _log.info(
                "status_return.queued",
                partner=partner,
                return_id=return_id,
                entries=count,
                first=entries[0].id,
                last=entries[-1].id,
                vocabulary=vocabulary,
            )
        return entries[-1].id

    # ---- CDAR (docs/reform.md §1)

    def _emit_cdar(
        self,
        partner: str,
        return_id: str,
        entries: list[HistoryEntry],
        changes: list[statusflow.Change],
        report: EmitReport,
    ) -> int | None:
        language = self.language(partner)
        paid = [c.entry.id for c in changes if c.entry.status is InvoiceStatus.ENCAISSEE]
        received = self.store.cdar_amounts(paid) if paid else {}
        by_entry = {c.entry.id: c for c in changes}
        written: list[cdar_map.Written] = []
        key: tuple[str, str | None] | None = None
        last = entries[-1].id
        for e in entries:
            change = by_entry.get(e.id)
            if change is None:
                continue
            line = cdar_map.history_line(e, change.invoice, received_amounts=received.get(e.id), language=language)
            if line is None:
                continue
            k = cdar_map.issuer_key(e, line)
            if key is not None and k != key:  # another phase or issuer: the next return starts here
                last = max(x.id for x in entries if x.id < e.id)
                break
            key = k
            written.append(cdar_map.Written(line, change.invoice.id, e.id))
        report.skipped += sum(1 for e in entries if e.id <= last and e.id in by_entry) - len(written)
        report.skipped -= sum(1 for e in entries if e.id > last and e.id not in by_entry)  # counted again next time
        if not written or key is None:
            queued = self.store.queue_status_return(return_id, partner, entries[0].id, last, 0, "", None)
            return last if queued else None
        issuer = cdar_map.issuer_party(key, self.cdar.platform)
        message = self.cdar.message(return_id, partner, [w.line for w in written], issuer)
        record = self.cdar.record(message, written, partner, return_id=return_id)
        data, problems = self.cdar.checked(message, language)
        if problems:
            self.cdar.not_sent(self.store, record, data, problems, return_id=return_id, partner=partner)
            return None
        record.sha256 = self.archive.put_bytes(data).sha256
        address = self.channels.return_address(partner, cdarflow.file_name(return_id))
        if not self.store.queue_status_return(
            return_id, partner, entries[0].id, last, len(written), record.sha256, address, cdar=record
        ):
            return None
        report.returns += 1
        report.entries += len(written)
        _log.info(
            "status_return.queued",
            partner=partner,
            return_id=return_id,
            entries=len(written),
            first=entries[0].id,
            last=last,
            vocabulary="cdar",
        )
        return last
