"""Waiting in tests: one `wait_until` for every "until this is true" loop, and one bound for server starts.

A server start (uvicorn in a thread, `relais sftp serve` in a subprocess, ...) waits for readiness under
`SERVER_START_SECONDS`: generous, because a loaded 2-core machine once took more than 20 s to start
`relais sftp serve`; a server that is ready sooner costs nothing more. `RELAIS_TEST_START_SECONDS`
overrides it.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

SERVER_START_SECONDS = float(os.environ.get("RELAIS_TEST_START_SECONDS", "120"))


def wait_until(condition: Callable[[], T], timeout: float, what: str, *, every: float = 0.05) -> T:
    """Call `condition` until it returns something true, and return that; fail naming `what` after `timeout` s.

    The condition is tried once more at the deadline, so a slow last poll is not taken for a timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}, in vain (last value: {value!r})")
        time.sleep(every)


def server_lines(
    proc: subprocess.Popen,
    n: int = 1,
    *,
    until: str | None = None,
    stream: str = "stdout",
    timeout: float = SERVER_START_SECONDS,
) -> list[str]:
    """What a server subprocess prints once it listens: its next `n` lines on `stream`, or (`until`) its
    lines up to the first that contains `until`. Fails within `timeout` s (instead of hanging) when they do
    not come, with the end of its output, and kills it."""
    pipe = getattr(proc, stream)
    got: list[str] = []

    def done() -> bool:
        return any(until in line for line in got) if until is not None else len(got) >= n

    def read() -> None:
        while not done():
            line = pipe.readline()
            if not line:
                return
            got.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive() or not done():
        proc.kill()
        other = proc.stderr if stream == "stdout" else proc.stdout
        more = other.read()[-2000:] if other is not None else ""
        want = f"a line with {until!r}" if until is not None else f"{n} lines"
        raise AssertionError(f"expected {want} from the server within {timeout:g} s, got {got!r}; then: {more}")
    return got


def get_when_up(url: str, proc: subprocess.Popen | None = None, timeout: float = SERVER_START_SECONDS):
    """GET `url` once the server answers (an `httpx.Response`, whatever its status); fails at once, with its
    stderr, if the server process `proc` exits first."""
    import httpx

    def attempt() -> tuple[httpx.Response] | None:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read()[-2000:] if proc.stderr else ""
            raise AssertionError(f"the server exited ({proc.returncode}) before answering {url}; stderr: {err}")
        try:
            return (httpx.get(url, timeout=5),)
        except httpx.TransportError:
            return None

    return wait_until(attempt, timeout, f"{url} to answer", every=0.2)[0]
