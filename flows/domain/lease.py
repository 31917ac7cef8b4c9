"""Who holds a claim, and whether it is still alive: leases instead of fixed stale timeouts.

A worker claims a flow (or an outbox row) with its `WORKER` id and a lease (`lease_until`), renewed
while it works (`Lease`). Another worker takes the claim over once the lease has expired, or at
once when the holder ran on this machine and its process is gone (`is_dead`: the pid no longer
exists, or belongs to a process started later — pids are reused). A worker on another machine is
judged by its lease only.

>>> host, pid, started = WORKER.split(":")
>>> is_dead(WORKER), is_dead(f"{host}:{pid}:{int(started) + 1}"), is_dead("other-host:1:1")
(False, True, None)
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from flows.domain import log

_log = log.get("relais.lease")
LEASE = dt.timedelta(seconds=60)  # how long a claim holds without renewal (renewed every third of it)


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22); None if gone.

    A zombie (state Z or X: killed or ended, not reaped yet) is gone too: it runs no code any more, and
    its parent may never reap it (a killed run's workers, adopted by a container's init that does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


HOST = socket.gethostname().replace(":", "_")
WORKER = f"{HOST}:{os.getpid()}:{_start_ticks(os.getpid()) or 0}"


def worker_id() -> str:
    """This process's id (recomputed after a fork: the child is another worker)."""
    global WORKER
    if WORKER.split(":")[1] != str(os.getpid()):
        WORKER = f"{HOST}:{os.getpid()}:{_start_ticks(os.getpid()) or 0}"
    return WORKER


def is_dead(claimed_by: str | None) -> bool | None:
    """True when the holder ran here and its process is gone; False when it is alive; None: another
    machine's (or an unknown) holder, judged by its lease."""
    if not claimed_by or claimed_by.count(":") != 2:
        return None
    host, pid, started = claimed_by.split(":")
    if host != HOST or not pid.isdigit():
        return None
    ticks = _start_ticks(int(pid))
    return ticks is None or str(ticks) != started


class Lease:
    """Renews a claim every third of `LEASE` in a daemon thread while the `with` block runs.
    `renew()` returns False when the claim was lost (another worker took it over)."""

    def __init__(self, renew: Callable[[], bool], every: float = LEASE.total_seconds() / 3) -> None:
        self._renew, self._every = renew, every
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._run, name="relais-lease", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                if not self._renew():
                    self.lost = True
                    _log.error("lease.lost", detail="another worker took this claim over")
                    return
            except Exception as e:  # the store may be down a moment: try again next tick
                _log.warning("lease.renew_failed", error=f"{type(e).__name__}: {e}")

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
