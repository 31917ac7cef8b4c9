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
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from archive import Archive
from flows.domain import log
from flows.domain.lifecycle import InvoiceStatus
from flows.domain.model import utcnow
from flows.pipeline.channels import Channels
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
                if not self._emit(partner, entries, report):
                    break  # another emitter took this range: it reports it
                cursor = entries[-1].id
                if len(entries) < self.max_entries:
                    break
        return report

    def _emit(self, partner: str, entries: list, report: EmitReport) -> bool:
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
            return False
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
        return True
