"""Carry out the outbox: deliver routed invoices and write return flows, idempotently.

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
from pathlib import Path

from flows import split
from flows.atomic import write_atomic
from flows.pipeline import Runtime
from flows.model import utcnow
from flows.store import OutboxItem
from relais import log

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


def dispatch(rt: Runtime, flow_id: str | None = None, kinds: tuple[str, ...] | None = None) -> DispatchReport:
    """Carry out the pending outbox rows (only those of `kinds` when given, e.g. ``("as2-mdn",)``)."""
    report = DispatchReport()
    if kinds is not None and len(kinds) == 1:
        items = rt.store.pending_outbox(kind=kinds[0], flow_id=flow_id)
    else:
        items = [i for i in rt.store.pending_outbox(flow_id=flow_id) if kinds is None or i.kind in kinds]
    if flow_id is not None:
        items = _with_queues(rt, items)
    by_flow: dict[str, dict[int, OutboxItem]] = defaultdict(dict)
    for item in items:
        if item.kind == "delivery" and item.invoice_id and item.flow_id:
            by_flow[item.flow_id][int(item.invoice_id.rsplit("-", 1)[1])] = item
    for fid, wanted in by_flow.items():
        _deliver_flow(rt, fid, wanted, report)
    by_channel: dict[str, list[OutboxItem]] = defaultdict(list)
    for item in items:
        if item.kind == "return":
            by_channel[channel_of(item.target)].append(item)
        elif item.kind == "as2-mdn":  # async AS2 MDNs: key "as2-mdn:<partner>:...", target the partner's URL
            by_channel["as2-mdn:" + item.key.split(":")[1]].append(item)
    for channel, queue in by_channel.items():
        _send_returns(rt, channel, queue, report)
    return report


def dispatch_flow(rt: Runtime, flow_id: str) -> DispatchReport:
    """Carry out what one just-closed flow put in the outbox (its deliveries and its return flow), at once."""
    return dispatch(rt, flow_id=flow_id, kinds=("delivery", "return"))


def _with_queues(rt: Runtime, items: list[OutboxItem]) -> list[OutboxItem]:
    """One flow's rows, plus the rows ahead of its return flows in their partner's queue (SFTP, AS2):
    a partner's return flows go out in order, so a flow's own row never overtakes an earlier one."""
    queues = {channel_of(i.target) for i in items if i.kind == "return"} - {"folder"}
    if not queues:
        return items
    ids = {i.id for i in items}
    ahead = [i for i in rt.store.pending_outbox(kind="return")
             if i.id not in ids and channel_of(i.target) in queues]
    return sorted(items + ahead, key=lambda i: i.id)


def channel_of(target: str) -> str:
    """'sftp://<partner>' or 'as2://<partner>' for a return flow bound to a partner's SFTP server or AS2
    endpoint, 'folder' otherwise.

    >>> channel_of("sftp://op-a/inbound/CR_CPP1_IN_INTEGRE.xml"), channel_of("/var/relais/out/CR.xml")
    ('sftp://op-a', 'folder')
    >>> channel_of("as2://op-b/CR_CPP1_IN_INTEGRE.xml")
    'as2://op-b'
    """
    for scheme in ("sftp://", "as2://"):
        if target.startswith(scheme):
            return scheme + target.removeprefix(scheme).split("/", 1)[0]
    return "folder"


def _channel_sender(rt: Runtime, channel: str):  # noqa: ANN202 - a context manager with .send(item, data)
    """The sender of one channel's rows: SFTP upload, AS2 message, or async AS2 MDN POST."""
    if channel.startswith("sftp://"):
        from connectors.sftp import returns

        return returns.Sender(rt.partners.get(channel.removeprefix("sftp://")), rt.settings.keys_dir)
    from connectors.as2 import sender

    if channel.startswith("as2://"):
        return sender.Sender(rt, rt.partners.get(channel.removeprefix("as2://")))
    return sender.MdnSender(rt)


def _send_returns(rt: Runtime, channel: str, queue: list[OutboxItem], report: DispatchReport) -> None:
    """Send one channel's return flows in order; the first failure holds back those behind it."""
    now = utcnow()
    if channel == "folder":
        for item in queue:
            if item.next_attempt_at and item.next_attempt_at > now:
                continue
            _send_one(rt, item, report, lambda it, data: write_atomic(Path(it.target), data))
        return
    first = queue[0]
    if first.next_attempt_at and first.next_attempt_at > now:
        return  # the partner was down: wait for the retry time, keep the order
    partner_id = channel.split("//", 1)[-1].removeprefix("as2-mdn:")
    try:
        sender = _channel_sender(rt, channel)
        with sender:
            for item in queue:
                if not _send_one(rt, item, report, sender.send):
                    return
    except Exception as e:  # cannot connect: every row waits, the first one records the failure
        report.failed += 1
        rt.store.mark_failed(first, f"{type(e).__name__}: {e}", backoff(first.attempts + 1))
        _log.warning("return_flow.partner_unreachable", partner=partner_id, error=str(e),
                     pending=len(queue))


def _send_one(rt: Runtime, item: OutboxItem, report: DispatchReport, send) -> bool:  # noqa: ANN001
    with log.bound(flow_id=item.flow_id):
        try:
            send(item, rt.archive.read(item.archive_sha256 or ""))
        except Exception as e:
            report.failed += 1
            rt.store.mark_failed(item, f"{type(e).__name__}: {e}", backoff(item.attempts + 1))
            _log.warning("return_flow.failed", path=item.target, error=str(e), attempts=item.attempts + 1)
            return False
        rt.store.mark_sent([item])
        report.returned += 1
        _log.info("return_flow.sent", path=item.target)
        return True


def _deliver_flow(rt: Runtime, flow_id: str, wanted: dict[int, OutboxItem], report: DispatchReport) -> None:
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
                staged.append((item, _stage(Path(item.target), doc.data)))
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


def _publish(rt: Runtime, staged: list[tuple[OutboxItem, Path]]) -> int:
    """Make a batch of staged files durable with one sync, rename them into place, mark them sent."""
    if not staged:
        return 0
    os.sync()  # one flush for the whole batch instead of one fsync per file
    for item, tmp in staged:
        os.replace(tmp, item.target)
    for folder in {Path(item.target).parent for item, _ in staged}:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    rt.store.mark_sent([item for item, _ in staged])
    return len(staged)
