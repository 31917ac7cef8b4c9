"""Carry out the outbox: deliver routed invoices and write return flows, idempotently.

Each pending row is written atomically (temporary name in the target folder,
fsync, rename) and marked sent only afterwards; a crash in between re-writes
the same bytes to the same name, which the receiver sees as the same file.
Delivered bytes are re-read from the archived flow, never kept in the store.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections import defaultdict
from pathlib import Path

from flows import split
from flows.atomic import write_atomic
from flows.pipeline import Runtime
from flows.store import OutboxItem
from relais import log

_log = log.get("relais.dispatch")
BATCH = 500


@dataclasses.dataclass
class DispatchReport:
    delivered: int = 0
    returned: int = 0
    failed: int = 0


def dispatch(rt: Runtime, flow_id: str | None = None) -> DispatchReport:
    report = DispatchReport()
    items = rt.store.pending_outbox(flow_id=flow_id)
    by_flow: dict[str, dict[int, OutboxItem]] = defaultdict(dict)
    for item in items:
        if item.kind == "delivery" and item.invoice_id:
            by_flow[item.flow_id][int(item.invoice_id.rsplit("-", 1)[1])] = item
    for fid, wanted in by_flow.items():
        _deliver_flow(rt, fid, wanted, report)
    for item in items:
        if item.kind == "return":
            with log.bound(flow_id=item.flow_id):
                try:
                    write_atomic(Path(item.target), rt.archive.read(item.archive_sha256 or ""))
                except Exception as e:
                    report.failed += 1
                    rt.store.mark_failed(item, f"{type(e).__name__}: {e}")
                    _log.warning("return_flow.failed", path=item.target, error=str(e))
                    continue
                rt.store.mark_sent([item])
                report.returned += 1
                _log.info("return_flow.sent", path=item.target)
    return report


def _deliver_flow(rt: Runtime, flow_id: str, wanted: dict[int, OutboxItem], report: DispatchReport) -> None:
    flow = rt.store.get_flow(flow_id)
    if flow is None or flow.container is None:
        return
    staged: list[tuple[OutboxItem, Path]] = []
    with log.bound(flow_id=flow_id):
        path = rt.archive.path(flow.sha256)
        for doc in split.documents(path, flow.container, flow.original_name, rt.archive_limits):
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
        _log.info("flow.delivered", invoices=report.delivered)


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
