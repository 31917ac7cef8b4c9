"""Processing uploaded flows inside the API server (`relais api serve --process`, RELAIS_API_PROCESS=1).

Off by default: an upload is then recorded IN_RECU and waits for `relais run` or the DAG, like a dropped
file. On, one background thread of the server takes each flow right after its upload, with the function
`relais run` uses (`relais.runner.process_flows`: validation, routing, deliveries and return flow sent as
the flow closes). It is safe beside `relais run` workers and the DAG: a flow is processed by whoever
claims it first (the store's conditional claim and its lease, flows/domain/lease.py); the others skip it. What
this thread does not take (the server stopped first, a failure) stays in the queue of the store, where
`relais run` or the DAG finds it. Status return flows and outbox retries stay theirs.
"""

from __future__ import annotations

import queue
import threading

from relais import log
from relais.compose import Runtime

_log = log.get("relais.api.worker")


class Processor:
    """One thread processing the flows `submit`ted to it, a few at a time, until `stop`."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._queue: queue.Queue[str] = queue.Queue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="relais-api-processor", daemon=True)
        self._started = False
        self._lock = threading.Lock()

    def submit(self, flow_id: str) -> None:
        with self._lock:
            if not self._started:
                self._thread.start()
                self._started = True
        self._queue.put(flow_id)

    def stop(self, timeout: float = 30.0) -> None:
        """No new flow starts; the one in progress finishes (or is left to its lease)."""
        self._stopping.set()
        if self._started:
            self._thread.join(timeout)

    def _loop(self) -> None:
        from relais.runner import process_flows

        while not self._stopping.is_set():
            try:
                ids = [self._queue.get(timeout=0.5)]
            except queue.Empty:
                continue
            while len(ids) < 16:
                try:
                    ids.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                report = process_flows(self.rt, ids, stop=self._stopping.is_set)
                _log.info("api.processed", flows=ids, **report.summary())
            except Exception as e:  # the flows stay pending for `relais run` or the DAG
                _log.error(
                    "api.process_failed",
                    flows=ids,
                    error=f"{type(e).__name__}: {e}",
                    detail="left in the queue: `relais run` or the DAG takes them",
                )
