"""Graceful stop of a long-running `relais run` on SIGTERM (systemd, `docker stop`, Kubernetes).

The first SIGTERM asks for a stop: no new file is taken and no new flow started. A flow being
processed may finish within the grace period (`RELAIS_STOP_GRACE_SECONDS`); when it does not, or on a
second SIGTERM, the work is interrupted (`Terminated`, raised in the main thread), and the command
releases this worker's claims (`Store.release_worker`) so that another worker — or the next start —
takes the flow over at once instead of waiting for the lease. An interruption is a crash the process
survives: what it wrote is atomic (`flows.io.atomic`: a file being written is removed, never left
visible), what it recorded is in transactions, and the flow resumes where the store says it is.

When nothing is being processed (between two scans), SIGTERM stops at once.

>>> s = Shutdown(grace=5.0)
>>> s.requested
False
>>> with s.work():
...     s.busy
True
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from flows.domain import log

_log = log.get("relais.shutdown")


class Terminated(BaseException):
    """The current work is interrupted by a stop request (not an `Exception`: no handler turns it into
    an incident or a failed flow)."""


class Shutdown:
    """SIGTERM handling for one command. `install()` in the main thread; `work()` around a pass."""

    def __init__(self, grace: float) -> None:
        self.grace = max(0.0, grace)
        self.requested = False
        self.busy = False
        self.interrupted = False
        self._signals = 0

    def install(self) -> Shutdown:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_term)
            signal.signal(signal.SIGALRM, self._on_alarm)
        return self

    def stop(self) -> bool:
        """Whether to stop taking work (the callable the runner checks between files and flows)."""
        return self.requested

    @contextlib.contextmanager
    def work(self) -> Iterator[None]:
        """Mark a pass: a SIGTERM inside waits for the grace period; outside, it stops at once."""
        self.busy = True
        try:
            yield
        finally:
            self.busy = False
            signal.setitimer(signal.ITIMER_REAL, 0)

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        self.requested = True
        if not self.busy:
            if self._signals == 1:  # between two passes: stop now
                raise Terminated
            return  # already stopping (releasing, closing): nothing more to interrupt
        if self._signals > 1 or self.grace == 0:
            self._interrupt("second SIGTERM" if self._signals > 1 else "no grace period")
        _log.warning(
            "shutdown.requested",
            grace_seconds=self.grace,
            detail="no new file or flow is taken; the flow in progress may finish within the grace period",
        )
        signal.setitimer(signal.ITIMER_REAL, self.grace)

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        if self.busy:
            self._interrupt("grace period over")

    def _interrupt(self, why: str) -> None:
        self.interrupted = True
        _log.warning("shutdown.interrupting", reason=why, detail="this worker's claims are released")
        raise Terminated
