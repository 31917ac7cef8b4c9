"""Shared measuring helpers for the benchmarks: peak RSS of this process and its workers."""

from __future__ import annotations

import threading


def rss_tree_mb(exclude: frozenset[int] = frozenset()) -> float:
    """Resident memory of this process plus its children (validation workers), in MB."""
    import psutil

    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        if child.pid in exclude:
            continue
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total / 1e6


class PeakSampler:
    """Samples `rss_tree_mb` every 50 ms while the `with` block runs; `.peak` is the highest seen."""

    def __init__(self, exclude: frozenset[int] = frozenset()) -> None:
        self.exclude = exclude
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_tree_mb(self.exclude))
            self._stop.wait(0.05)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_tree_mb(self.exclude))
