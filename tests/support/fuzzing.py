"""Bounded property and fuzz runs: hypothesis settings, seeds' mutations, and time and memory bounds.

The suite runs each property a fixed, small number of times (`bounded`), so the whole of them takes
about a minute on a loaded 2-core machine. ``HYPOTHESIS_PROFILE=fuzz`` (tests/conftest.py) runs
them at the profile's ``max_examples`` instead, for a long search:

    HYPOTHESIS_PROFILE=fuzz python -m pytest -p no:cacheprovider tests -k "fuzz or property or machine"
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"

#: One example may take this long (seconds, hypothesis's deadline) on a loaded machine; a hang is
#: interrupted at `HANG`.
PER_INPUT = 5.0
HANG = 30.0


def bounded(examples: int, **kwargs: Any) -> settings:
    """Settings for a property run `examples` times in the suite (the profile's own number under the fuzz
    profile). No deadline: a property asserts behaviour, not time (use `fuzzed` for a parser's bound)."""
    kwargs.setdefault("suppress_health_check", [HealthCheck.too_slow, HealthCheck.data_too_large])
    kwargs.setdefault("deadline", None)
    return settings(max_examples=settings().max_examples if LONG else examples, **kwargs)


def fuzzed(examples: int, **kwargs: Any) -> settings:
    """`bounded`, and each input must be handled within `PER_INPUT` seconds (hypothesis's deadline)."""
    return bounded(examples, deadline=dt.timedelta(seconds=PER_INPUT), **kwargs)


class Hang(Exception):
    """An input kept a parser busy for longer than `HANG` seconds."""


@contextlib.contextmanager
def no_hang(seconds: float = HANG) -> Iterator[None]:
    """Interrupt the block (`Hang`) after `seconds`: a parser stuck in a loop fails its example instead of
    the run. (The per-input bound itself is hypothesis's ``deadline``, `PER_INPUT`.) SIGALRM, so only
    in the main thread, where pytest runs tests; it lands when the interpreter next runs Python code."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def stop(_signum: int, _frame: object) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def peak_memory(call: Callable[[], object]) -> int:
    """Peak of Python allocations (bytes, tracemalloc) while `call` runs; its exception is swallowed
    when it is a `flows.domain.errors.RelaisError` (a refusal), raised otherwise."""
    from flows.domain.errors import RelaisError

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with contextlib.suppress(RelaisError):
            call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def mutations(seed: bytes, max_edits: int = 8) -> st.SearchStrategy[bytes]:
    """`seed` with a few random edits: bytes flipped, replaced, inserted, deleted, spans duplicated or cut."""

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(seed)
        for _ in range(draw(st.integers(1, max_edits))):
            size = len(data)
            kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "dup", "truncate", "interesting"]))
            at = draw(st.integers(0, max(size - 1, 0)))
            if kind == "flip" and size:
                data[at] ^= 1 << draw(st.integers(0, 7))
            elif kind == "set" and size:
                data[at] = draw(st.integers(0, 255))
            elif kind == "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=16))
            elif kind == "delete" and size:
                del data[at : at + draw(st.integers(1, 64))]
            elif kind == "dup" and size:
                span = data[at : at + draw(st.integers(1, 256))]
                data[at:at] = span * draw(st.integers(1, 4))
            elif kind == "truncate":
                del data[at:]
            elif kind == "interesting" and size:
                value = draw(st.sampled_from([b"\x00", b"\xff", b"\x7f", b"\x80", b"\xff\xff\xff\xff", b"\x00\x00"]))
                data[at : at + len(value)] = value
        return bytes(data)

    return mutate()


def hostile_bytes(*seeds: bytes, max_size: int = 4096) -> st.SearchStrategy[bytes]:
    """Random bytes, or mutations of one of `seeds`."""
    return st.one_of(st.binary(max_size=max_size), *(mutations(s) for s in seeds))
