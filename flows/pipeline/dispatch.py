"""Carry out the outbox: deliver routed invoices and send return flows and receipts, idempotently.

Deliveries to the recipients' folders (channel ``folder``) are written here;
every other row goes through its channel's `Sender` (`flows.pipeline.channels`), looked
up by the row's typed address: the core knows no channel. That includes the
deliveries of a structure that receives by EDI (``recevoirDonneesViaEDI``),
addressed to its own partner channel (SFTP, AS2) by relais/compose.py: they
queue with that partner's other rows of the same kind, in order, retried with
the return flows' backoff.

Each pending row is written atomically (temporary name in the target folder, then
durable and renamed: one sync per batch of deliveries, per queue of the folder
channel's return flows) and marked sent only afterwards; a crash in between re-writes
the same bytes to the same name, which the receiver sees as the same file.
Delivered bytes are re-read from the archived flow, never kept in the store.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

from archive import Archive
from flows.domain import lease, log
from flows.domain.model import Flow, utcnow
from flows.domain.outbox import DELIVERY_CHANNEL, OutboxItem, OutboxKind
from flows.io import atomic, split
from flows.io.atomic import PARTNER_FILE_MODE
from flows.io.safearchive import ArchiveLimits
from flows.pipeline.channels import Channels
from flows.store import Store

_log = log.get("relais.dispatch")
BATCH = 500
RETRY_BASE = dt.timedelta(seconds=30)
RETRY_MAX = dt.timedelta(hours=1)


@dataclasses.dataclass
class DispatchReport:
    delivered: int = 0
    returned: int = 0
    failed: int = 0


def backoff(attempts: int) -> dt.timedelta:
    """Wait before the next try of a row that failed `attempts` times (30 s doubling, 1 h at most)."""
    return min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_MAX)


@dataclasses.dataclass
class Outbound:
    """What carrying out the outbox needs, given explicitly (``relais/compose.py`` builds it)."""

    store: Store
    archive: Archive
    channels: Channels
    archive_limits: ArchiveLimits = dataclasses.field(default_factory=ArchiveLimits)
    lease: dt.timedelta = dt.timedelta(minutes=5)  # how long a dispatcher holds the rows it is sending
    file_mode: int = PARTNER_FILE_MODE  # permissions of delivered files (RELAIS_RETURN_FILE_MODE)


QueueKey = tuple[OutboxKind, str, str | None]  # (kind, channel, partner): one ordered queue


def dispatch(
    rt: Outbound,
    flow_id: str | None = None,
    kinds: tuple[OutboxKind, ...] | None = None,
    *,
    flow_ids: Sequence[str] | None = None,
) -> DispatchReport:
    """Carry out the pending outbox rows (only those of `kinds` when given, e.g. ``(OutboxKind.MDN,)``; only
    those of `flow_id`, or of the flows `flow_ids`, when given). Deliveries to folders are made durable
    together, whatever their flow (one sync per `BATCH` files)."""
    report = DispatchReport()
    if flow_ids is not None and not flow_ids:
        return report
    if kinds is not None and len(kinds) == 1:
        items = rt.store.pending_outbox(kind=kinds[0], flow_id=flow_id, flow_ids=flow_ids)
    else:
        pending = rt.store.pending_outbox(flow_id=flow_id, flow_ids=flow_ids)
        items = [i for i in pending if kinds is None or i.kind in kinds]
    if flow_id is not None or flow_ids is not None:
        items = _with_queues(rt, items)
    items = _leased(rt, items)
    by_flow: dict[str, dict[int, OutboxItem]] = defaultdict(dict)
    for item in items:
        if _to_folder(item) and item.position is not None and item.flow_id:
            by_flow[item.flow_id][item.position] = item
    staged: list[tuple[OutboxItem, Path]] = []
    flows = rt.store.get_flows(list(by_flow))  # one query for all their flows
    for fid, wanted in by_flow.items():
        staged = _deliver_flow(rt, flows.get(fid), wanted, report, staged)
    report.delivered += _publish(rt, staged)
    queues: dict[QueueKey, list[OutboxItem]] = defaultdict(list)
    for item in items:
        if not _to_folder(item):
            queues[(item.kind, item.channel, item.partner)].append(item)
    try:
        with _Payloads(rt) as payloads:
            for key, queue in queues.items():
                _send_queue(rt, key, queue, report, payloads.read)
    finally:  # rows not sent (held back behind a failure) go back at once, for any dispatcher
        rt.store.release_outbox([i.id for i in items], lease.worker_id())
    return report


def dispatch_flows(rt: Outbound, flow_ids: Sequence[str]) -> DispatchReport:
    """Carry out what just-closed flows put in the outbox (their deliveries and return flows), together:
    one query, one lease, one sync for their deliveries (`dispatch_flow` for one flow)."""
    return dispatch(rt, kinds=(OutboxKind.DELIVERY, OutboxKind.RETURN), flow_ids=flow_ids)


def _leased(rt: Outbound, items: list[OutboxItem]) -> list[OutboxItem]:
    """The rows this dispatcher leased (`Store.lease_outbox`): another dispatcher's rows are left to it.
    An ordered queue goes out only whole: a row of it held elsewhere holds back the rows behind it."""
    worker = lease.worker_id()
    granted = rt.store.lease_outbox(items, worker, rt.lease, lease.is_dead)
    blocked: set[tuple[OutboxKind, str, str | None]] = set()
    kept, released = [], []
    for item in items:  # oldest first
        key = (item.kind, item.channel, item.partner)
        ordered = not _to_folder(item) and _ordered(rt, item.channel)
        if item.id not in granted:
            if ordered:
                blocked.add(key)
            continue
        if ordered and key in blocked:
            released.append(item.id)
            continue
        kept.append(item)
    rt.store.release_outbox(released, worker)
    return kept


def _to_folder(item: OutboxItem) -> bool:
    """A delivery written to its recipient's folder here (not one pushed through a partner's channel)."""
    return item.kind is OutboxKind.DELIVERY and item.channel == DELIVERY_CHANNEL


def dispatch_flow(rt: Outbound, flow_id: str) -> DispatchReport:
    """Carry out what one just-closed flow put in the outbox (its deliveries and its return flow), at once."""
    return dispatch(rt, flow_id=flow_id, kinds=(OutboxKind.DELIVERY, OutboxKind.RETURN))


def _ordered(rt: Outbound, channel: str) -> bool:
    return channel in rt.channels and rt.channels[channel].ordered


def _with_queues(rt: Outbound, items: list[OutboxItem]) -> list[OutboxItem]:
    """One flow's rows, plus the rows ahead of its return flows (and channel deliveries) in their partner's
    queue (SFTP, AS2): a partner's rows go out in order, so a flow's own row never overtakes an earlier one."""
    queues = {
        (i.kind, i.channel, i.partner)
        for i in items
        if i.kind in (OutboxKind.RETURN, OutboxKind.DELIVERY) and not _to_folder(i) and _ordered(rt, i.channel)
    }
    if not queues:
        return items
    ids = {i.id for i in items}
    ahead = [
        i
        for kind in sorted({k for k, _, _ in queues})
        for i in rt.store.pending_outbox(kind=kind)
        if i.id not in ids and (i.kind, i.channel, i.partner) in queues
    ]
    return sorted(items + ahead, key=lambda i: i.id)


Payload = Callable[[OutboxItem], bytes]


def _send_queue(rt: Outbound, key: QueueKey, queue: list[OutboxItem], report: DispatchReport, read: Payload) -> None:
    """Send one queue's rows: in order on an ordered channel, where the first failure holds back those
    behind it; each row on its own otherwise. `read` gives each row's bytes."""
    kind, channel_name, partner_id = key
    now = utcnow()
    if channel_name in rt.channels and getattr(rt.channels[channel_name], "durable_on_exit", False):
        _send_together(rt, key, [i for i in queue if not (i.next_attempt_at and i.next_attempt_at > now)], report, read)
        return
    if not _ordered(rt, channel_name):
        for item in queue:
            if item.next_attempt_at and item.next_attempt_at > now:
                continue
            try:
                with rt.channels[channel_name].sender(kind, partner_id) as sender:
                    _send_one(rt, item, report, sender.send, read)
            except Exception as e:  # no such channel, or its sender cannot be built
                report.failed += 1
                rt.store.mark_failed(item, f"{type(e).__name__}: {e}", backoff(item.attempts + 1))
                _log.warning(
                    _event(item, "failed"),
                    channel=channel_name,
                    destination=item.destination,
                    error=str(e),
                    attempts=item.attempts + 1,
                )
        return
    first = queue[0]
    if first.next_attempt_at and first.next_attempt_at > now:
        return  # the partner was down: wait for the retry time, keep the order
    try:
        with rt.channels[channel_name].sender(kind, partner_id) as sender:
            for item in queue:
                if not _send_one(rt, item, report, sender.send, read):
                    return
    except Exception as e:  # cannot connect: every row waits, the first one records the failure
        report.failed += 1
        rt.store.mark_failed(first, f"{type(e).__name__}: {e}", backoff(first.attempts + 1))
        _log.warning(
            _event(first, "partner_unreachable"),
            partner=partner_id,
            channel=channel_name,
            kind=str(kind),
            error=str(e),
            pending=len(queue),
        )


def _send_together(rt: Outbound, key: QueueKey, queue: list[OutboxItem], report: DispatchReport, read: Payload) -> None:
    """Send a queue's due rows through one sender that makes them durable together when it exits (a channel
    with ``durable_on_exit``: the folder channel, one sync per queue instead of one per file), each row on its
    own (a failed row does not hold back the others); those sent are marked sent in one transaction, once
    the sender exited cleanly. A crash before that mark sends them again: the same bytes to the same name."""
    kind, channel_name, partner_id = key
    if not queue:
        return
    sent: list[OutboxItem] = []
    try:
        with rt.channels[channel_name].sender(kind, partner_id) as sender:
            for item in queue:
                _send_one(rt, item, report, sender.send, read, sent=sent)
    except Exception as e:  # the sender could not be built, or could not make the rows durable
        for item in sent or queue:  # those made durable in vain, or all when none was sent
            report.failed += 1
            rt.store.mark_failed(item, f"{type(e).__name__}: {e}", backoff(item.attempts + 1))
            with log.bound(flow_id=item.flow_id):
                _log.warning(_event(item, "failed"), channel=channel_name, destination=item.destination, error=str(e))
        return
    rt.store.mark_sent(sent)
    for item in sent:
        if item.kind is OutboxKind.DELIVERY:
            report.delivered += 1
        else:
            report.returned += 1
        with log.bound(flow_id=item.flow_id):
            _log.info(
                _event(item, "sent"), channel=item.channel, destination=item.destination, invoice_id=item.invoice_id
            )


def _event(item: OutboxItem, what: str) -> str:
    """The log event of a row sent through a channel: ``delivery.<what>`` or ``return_flow.<what>``."""
    return f"delivery.{what}" if item.kind is OutboxKind.DELIVERY else f"return_flow.{what}"


def _send_one(
    rt: Outbound,
    item: OutboxItem,
    report: DispatchReport,
    send: Callable[[OutboxItem, bytes], None],
    read: Payload,
    *,
    sent: list[OutboxItem] | None = None,
) -> bool:
    """Send one row; False when it failed (recorded, retried later). With `sent`, the row is added to it
    instead of being marked sent now (`_send_together`)."""
    with log.bound(flow_id=item.flow_id):
        try:
            send(item, read(item))
        except Exception as e:
            report.failed += 1
            rt.store.mark_failed(item, f"{type(e).__name__}: {e}", backoff(item.attempts + 1))
            _log.warning(
                _event(item, "failed"),
                channel=item.channel,
                destination=item.destination,
                invoice_id=item.invoice_id,
                error=str(e),
                attempts=item.attempts + 1,
            )
            return False
        if sent is not None:
            sent.append(item)
            return True
        rt.store.mark_sent([item])
        if item.kind is OutboxKind.DELIVERY:
            report.delivered += 1
        else:
            report.returned += 1
        _log.info(_event(item, "sent"), channel=item.channel, destination=item.destination, invoice_id=item.invoice_id)
        return True


class _Payloads:
    """The bytes of the rows sent through channels: a return flow's or MDN's archived object, or a delivered
    invoice's document re-read from its archived flow by position, as `_deliver_flow` does. A queue's
    deliveries come in outbox order (a flow's by position), so one pass over each flow serves them all."""

    def __init__(self, rt: Outbound) -> None:
        self.rt = rt
        self._stack = ExitStack()
        self._flow_id: str | None = None
        self._docs: Iterator[split.Document] | None = None
        self._last = 0

    def __enter__(self) -> _Payloads:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._reset()

    def _reset(self) -> None:
        self._stack.close()
        self._stack = ExitStack()
        self._flow_id, self._docs, self._last = None, None, 0

    def read(self, item: OutboxItem) -> bytes:
        if item.kind is not OutboxKind.DELIVERY:
            return self.rt.archive.read(item.archive_sha256 or "")
        if item.flow_id is None or item.position is None:
            raise LookupError(f"delivery row {item.id} has no flow position")
        if self._docs is None or item.flow_id != self._flow_id or item.position <= self._last:
            self._open(item.flow_id)
        assert self._docs is not None
        for doc in self._docs:
            self._last = doc.position
            if doc.position == item.position:
                return doc.data
            if doc.position > item.position:
                break
        self._reset()
        raise LookupError(f"flow {item.flow_id} has no document at position {item.position}")

    def _open(self, flow_id: str) -> None:
        self._reset()
        flow = self.rt.store.get_flow(flow_id)
        if flow is None or flow.container is None:
            raise LookupError(f"flow {flow_id} is not recorded or was never read")
        f = self._stack.enter_context(self.rt.archive.open(flow.sha256))
        docs = split.documents(f, flow.container, flow.original_name, self.rt.archive_limits)
        self._stack.callback(getattr(docs, "close", lambda: None))
        self._flow_id, self._docs = flow_id, docs


def _deliver_flow(
    rt: Outbound,
    flow: Flow | None,
    wanted: dict[int, OutboxItem],
    report: DispatchReport,
    staged: list[tuple[OutboxItem, Path]],
) -> list[tuple[OutboxItem, Path]]:
    """Stage a flow's deliveries after what earlier flows staged, publishing every `BATCH` files; returns
    what is staged and not yet published (the caller publishes it). No flow (not recorded), or one never
    read: nothing to deliver from."""
    if flow is None or flow.container is None:
        return staged
    count = 0
    with log.bound(flow_id=flow.id), rt.archive.open(flow.sha256) as f:
        for doc in split.documents(f, flow.container, flow.original_name, rt.archive_limits):
            item = wanted.get(doc.position)
            if item is None:
                continue
            try:
                staged.append((item, atomic.stage(Path(item.destination), doc.data, rt.file_mode)))
                count += 1
            except OSError as e:
                report.failed += 1
                rt.store.mark_failed(item, f"{type(e).__name__}: {e}")
                _log.warning("delivery.failed", invoice_id=item.invoice_id, error=str(e))
            if len(staged) >= BATCH:
                report.delivered += _publish(rt, staged)
                staged = []
        _log.info("flow.delivered", invoices=count)
    return staged


def _publish(rt: Outbound, staged: list[tuple[OutboxItem, Path]]) -> int:
    """Make a batch of staged files durable with one sync, rename them into place, mark them sent."""
    if not staged:
        return 0
    atomic.publish([(tmp, Path(item.destination)) for item, tmp in staged])
    rt.store.mark_sent([item for item, _ in staged])
    return len(staged)
