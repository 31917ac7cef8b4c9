"""What the web application's actions set going: flows ops asked to reprocess, taken through the pipeline in
a background thread of the server; return flows ops asked to resend, sent at once."""

from __future__ import annotations

import queue
import threading

from flows.domain.outbox import OutboxKind
from flows.pipeline import dispatch
from relais import log, runner
from relais.compose import Runtime

_log = log.get("relais.web")


class Reprocessing:
    """Flows ops asked to reprocess, taken through the pipeline one at a time in a background thread of
    the server (as `relais flows reprocess` does in the terminal); a flow the thread does not get to
    (the server stops) waits in IN_EN_ATTENTE_RETRAITEMENT_CPP for `relais run` or the DAG."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._queue: queue.Queue[str] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self, flow_id: str) -> None:
        self._queue.put(flow_id)
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="relais-web-reprocess", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                flow_id = self._queue.get(timeout=5)
            except queue.Empty:
                return
            try:
                runner.process_flows(self.rt, [flow_id])
            except Exception as e:  # the flow stays queued or becomes an incident; logged
                _log.error("web.reprocess_failed", flow_id=flow_id, error=f"{type(e).__name__}: {e}")


def resend(rt: Runtime, flow_id: str) -> tuple[int, int, int]:
    """Send a flow's return flows already sent again, now (not at the next `relais run`), under the same
    names: (how many were queued again, sent, failed: retried later by the outbox's usual backoff)."""
    count = rt.store.resend_returns(flow_id)
    if not count:
        return 0, 0, 0
    report = dispatch.dispatch(rt.outbound, flow_id, (OutboxKind.RETURN,))
    return count, report.returned, report.failed
