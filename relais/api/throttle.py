"""A throttle of failed bearer tokens per client address (issue 19, finding 2).

After ``limit`` failed tokens from one address within ``window`` seconds (sliding), every token that
address presents is answered 429 without being checked, until the oldest failure leaves the window.

The attempt is counted *before* the token is checked: `Throttle.attempt` reserves a place among the
``limit`` (failures in the window plus checks in flight), so N concurrent tries never check more than
``limit`` tokens. A check that succeeds gives its place back; one that fails keeps it as a failure. When the
places are all taken by checks still in flight, a new one waits for them (briefly) rather than being
refused: a busy client with valid tokens is slowed, never turned away, by its own concurrency.

A success does not clear the address's failures (a valid token must not buy more guesses). The table is
bounded (`max_addresses`): entries with nothing in flight and no failure in the window are forgotten.

>>> t = Throttle(limit=2, window=60.0, clock=lambda: 0.0)
>>> [t.attempt("a") for _ in range(3)]  # two places, both taken while their checks are in flight
[True, True, False]
>>> t.done("a", failed=True); t.done("a", failed=False); t.attempt("a"), t.retry_after("a")
(True, 0)
>>> t.done("a", failed=True); t.attempt("a"), t.attempt("a"), t.retry_after("a"), t.refused("a")
(False, False, 60, 2)
"""

from __future__ import annotations

import collections
import dataclasses
import math
import threading
import time
from collections.abc import Callable

#: How long a check waits for the checks in flight of its address before it is refused.
WAIT_SECONDS = 5.0
MAX_ADDRESSES = 100_000


@dataclasses.dataclass
class _Entry:
    failures: collections.deque[float] = dataclasses.field(default_factory=collections.deque)
    in_flight: int = 0
    refused: int = 0  # tries refused since the address reached the limit


class Throttle:
    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        wait: float = 0.0,
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        self.limit, self.window, self.clock, self.wait, self.max_addresses = limit, window, clock, wait, max_addresses
        self._cond = threading.Condition()
        self._entries: dict[str, _Entry] = {}

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def _entry(self, address: str) -> _Entry:
        entry = self._entries.get(address)
        if entry is None:
            if len(self._entries) >= self.max_addresses:
                self._forget()
            entry = self._entries[address] = _Entry()
        horizon = self.clock() - self.window
        while entry.failures and entry.failures[0] <= horizon:
            entry.failures.popleft()
        if len(entry.failures) < self.limit:
            entry.refused = 0
        return entry

    def _forget(self) -> None:
        """Drop the entries with nothing in flight and no failure left in the window (else the oldest ones)."""
        horizon = self.clock() - self.window
        idle = [
            a for a, e in self._entries.items() if not e.in_flight and (not e.failures or e.failures[-1] <= horizon)
        ]
        if len(idle) < len(self._entries) // 10:  # under attack from many addresses: drop the oldest failures
            idle += sorted(
                (a for a, e in self._entries.items() if not e.in_flight and e.failures),
                key=lambda a: self._entries[a].failures[-1],
            )[: len(self._entries) // 10]
        for address in idle:
            self._entries.pop(address, None)

    def attempt(self, address: str) -> bool:
        """Reserve a check for `address` (then call `done`); False: refused, nothing reserved."""
        if not self.enabled:
            return True
        deadline = self.clock() + self.wait
        with self._cond:
            while True:
                entry = self._entry(address)
                if len(entry.failures) >= self.limit:
                    entry.refused += 1
                    return False
                if len(entry.failures) + entry.in_flight < self.limit:
                    entry.in_flight += 1
                    return True
                remaining = deadline - self.clock()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)

    def done(self, address: str, *, failed: bool) -> None:
        """The reserved check of `address` is over: a failure is kept for the window."""
        if not self.enabled:
            return
        with self._cond:
            entry = self._entry(address)
            entry.in_flight = max(0, entry.in_flight - 1)
            if failed:
                entry.failures.append(self.clock())
            elif not entry.in_flight and not entry.failures:
                self._entries.pop(address, None)
            self._cond.notify_all()

    def refused(self, address: str) -> int:
        """How many tries of `address` were refused since it reached the limit (0: it has not)."""
        with self._cond:
            return self._entry(address).refused

    def retry_after(self, address: str) -> int:
        """Seconds until `address` may try again (0: it may now)."""
        with self._cond:
            entry = self._entry(address)
            if len(entry.failures) < self.limit:
                return 0
            return max(1, math.ceil(entry.failures[0] + self.window - self.clock()))
