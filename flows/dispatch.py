"""Carry out the outbox: deliver routed invoices and send return flows and receipts, idempotently.

Deliveries are written here (to the recipients' folders); every other row goes
through its channel's `Sender` (`flows.channels`), looked up by the row's typed
address: the core knows no channel.

Each pending row is written atomically (temporary name in the target folder,
fsync, rename) and marked sent only afterwards; a crash in between re-writes
the same bytes to the same name, which the receiver sees as the same file.
Delivered bytes are re-read from the archived flow, never kept in the store.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from archive import Archive
from flows import log, split
from flows.channels import Channels
from flows.model import utcnow
from flows.outbox import OutboxItem, OutboxKind
from flows.safearchive import ArchiveLimits
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


QueueKey = tuple[OutboxKind, str, str | None]  # (kind, channel, partner): one ordered queue


def dispatch(rt: Outbound, flow_id: str | None = None, kinds: tuple[OutboxKind, ...] | None = None) -> DispatchReport:
    """Carry out the pending outbox rows (only those of `kinds` when given, e.g. ``(OutboxKind.MDN,)``)."""
    report = DispatchReport()
    if kinds is not None and len(kinds) == 1:
        items = rt.store.pending_outbox(kind=kinds[0], flow_id=flow_id)
    else:
        items = [i for i in rt.store.pending_outbox(flow_id=flow_id) if kinds is None or i.kind in kinds]
    if flow_id is not None:
        items = _with_queues(rt, items)
    by_flow: dict[str, dict[int, OutboxItem]] = defaultdict(dict)
    for item in items:
        if item.kind is OutboxKind.DELIVERY and item.position is not None and item.flow_id:
            by_flow[item.flow_id][item.position] = item
    for fid, wanted in by_flow.items():
        _deliver_flow(rt, fid, wanted, report)
    queues: dict[QueueKey, list[OutboxItem]] = defaultdict(list)
    for item in items:
        if item.kind is not OutboxKind.DELIVERY:
            queues[(item.kind, item.channel, item.partner)].append(item)
    for key, queue in queues.items():
        _send_queue(rt, key, queue, report)
    return report


def dispatch_flow(rt: Outbound, flow_id: str) -> DispatchReport:
    """Carry out what one just-closed flow put in the outbox (its deliveries and its return flow), at once."""
    return dispatch(rt, flow_id=flow_id, kinds=(OutboxKind.DELIVERY, OutboxKind.RETURN))


def _ordered(rt: Outbound, channel: str) -> bool:
    return channel in rt.channels and rt.channels[channel].ordered


def _with_queues(rt: Outbound, items: list[OutboxItem]) -> list[OutboxItem]:
    """One flow's rows, plus the rows ahead of its return flows in their partner's queue (SFTP, AS2):
    a partner's return flows go out in order, so a flow's own row never overtakes an earlier one."""
    queues = {(i.channel, i.partner) for i in items if i.kind is OutboxKind.RETURN and _ordered(rt, i.channel)}
    if not queues:
        return items
    ids = {i.id for i in items}
    ahead = [
        i
        for i in rt.store.pending_outbox(kind=OutboxKind.RETURN)
        if i.id not in ids and (i.channel, i.partner) in queues
    ]
    return sorted(items + ahead, key=lambda i: i.id)


def _send_queue(rt: Outbound, key: QueueKey, queue: list[OutboxItem], report: DispatchReport) -> None:
    """Send one queue's rows: in order on an ordered channel, where the first failure holds back those
    behind it; each row on its own otherwise."""
    kind, channel_name, partner_id = key
    now = utcnow()
    if not _ordered(rt, channel_name):
        for item in queue:
            if item.next_attempt_at and item.next_attempt_at > now:
                continue
            try:
                with rt.channels[channel_name].sender(kind, partner_id) as sender:
                    _send_one(rt, item, report, sender.send)
            except Exception as e:  # noqa: BLE001 - no such channel, or its sender cannot be built
                report.failed += 1
                rt.store.mark_failed(item, f"{type(e).__name__}: {e}", backoff(item.attempts + 1))
                _log.warning(
                    "return_flow.failed",
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
                if not _send_one(rt, item, report, sender.send):
                    return
    except Exception as e:  # cannot connect: every row waits, the first one records the failure
        report.failed += 1
        rt.store.mark_failed(first, f"{type(e).__name__}: {e}", backoff(first.attempts + 1))
        _log.warning(
            "return_flow.partner_unreachable",
            partner=partner_id,
            channel=channel_name,
            kind=str(kind),
            error=str(e),
            pending=len(queue),
        )


def _send_one(
    rt: Outbound, item: OutboxItem, report: DispatchReport, send: Callable[[OutboxItem, bytes], None]
) -> bool:
    with log.bound(flow_id=item.flow_id):
        try:
            send(item, rt.archive.read(item.archive_sha256 or ""))
        except Exception as e:
            report.failed += 1
            rt.store.mark_failed(item, f"{type(e).__name__}: {e}", backoff(item.attempts + 1))
            _log.warning(
                "return_flow.failed",
                channel=item.channel,
                destination=item.destination,
                error=str(e),
                attempts=item.attempts + 1,
            )
            return False
        rt.store.mark_sent([item])
        report.returned += 1
        _log.info("return_flow.sent", channel=item.channel, destination=item.destination)
        return True


def _deliver_flow(rt: Outbound, flow_id: str, wanted: dict[int, OutboxItem], report: DispatchReport) -> None:
    flow = rt.store.get_flow(flow_id)
    if flow is None or flow.container is None:
        return
    staged: list[tuple[OutboxItem, Path]] = []
    before = report.delivered
    with log.bound(flow_id=flow_id), rt.archive.open(flow.sha256) as f:
        for doc in split.documents(f, flow.container, flow.original_name, rt.archive_limits):
            item = wanted.get(doc.position)
            if item is None:
                continue
            try:
                staged.append((item, _stage(Path(item.destination), doc.data)))
            except OSError as e:
                report.failed += 1
                rt.store.mark_failed(item, f"{type(e).__name__}: {e}")
                _log.warning("delivery.failed", invoice_id=item.invoice_id, error=str(e))
            if len(staged) >= BATCH:
                report.delivered += _publish(rt, staged)
                staged = []
        report.delivered += _publish(rt, staged)
        _log.info("flow.delivered", invoices=report.delivered - before)


def _stage(target: Path, data: bytes) -> Path:
    """Write `data` beside `target` under a temporary name (not yet durable, not yet visible)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".relais-", suffix=".part")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return Path(tmp)


def _publish(rt: Outbound, staged: list[tuple[OutboxItem, Path]]) -> int:
    """Make a batch of staged files durable with one sync, rename them into place, mark them sent."""
    if not staged:
        return 0
    os.sync()  # one flush for the whole batch instead of one fsync per file
    for item, tmp in staged:
        os.replace(tmp, item.destination)
    for folder in {Path(item.destination).parent for item, _ in staged}:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    rt.store.mark_sent([item for item, _ in staged])
    return len(staged)
