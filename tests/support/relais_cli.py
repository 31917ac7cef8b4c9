"""Real `relais` processes for the tests: one-shot commands, a long-lived `relais run --watch`, killed with
SIGKILL and restarted, and `relais api serve` on a free port of 127.0.0.1.

Each process gets this process's environment without its RELAIS_* settings, then the harness's (`env`:
RELAIS_HOME, no stability wait, two validation workers, errors only in the logs), then `extra` (another
store, another archive: a PostgreSQL schema of its own).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.support.waiting import SERVER_START_SECONDS, wait_until

ROOT = Path(__file__).resolve().parents[2]


def env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a `relais` subprocess on `home` (module doc)."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("RELAIS_")}
    out.update(
        RELAIS_HOME=str(home),
        RELAIS_STABLE_SECONDS="0",
        RELAIS_WORKERS="2",
        RELAIS_LOG_LEVEL="ERROR",
        RELAIS_MAX_INVOICES_PER_FLOW="1000",
    )
    out.update(extra or {})
    return out


def relais(
    home: Path, *args: str, timeout: float = 600, extra: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one `relais` command to its end."""
    return subprocess.run(
        [sys.executable, "-m", "relais.cli", *args],
        env=env(home, extra),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start(home: Path, *args: str, extra: Mapping[str, str] | None = None, log: Path | None = None) -> subprocess.Popen:
    """Start a long-lived `relais` command in a session of its own (it and its workers are one process
    group, killed at once by `kill9`); its stderr goes to `log` (a file: a pipe nobody reads would fill)."""
    err = open(log, "ab") if log is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "relais.cli", *args],
            env=env(home, extra),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    finally:
        if log is not None:
            err.close()


def kill9(proc: subprocess.Popen) -> None:
    """SIGKILL the process and its workers (its process group), at once, and reap it."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def stop(proc: subprocess.Popen, timeout: float = 60) -> None:
    """SIGTERM (a clean stop), then SIGKILL if it does not end within `timeout` s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill9(proc)


def start_api(home: Path, log: Path, extra: Mapping[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """`relais api serve --port 0` on 127.0.0.1; (the process, its base URL) once it listens."""
    log.write_bytes(b"")
    proc = start(home, "api", "serve", "--host", "127.0.0.1", "--port", "0", extra=extra, log=log)

    def listening() -> str | None:
        if proc.poll() is not None:
            raise AssertionError(f"relais api serve exited ({proc.returncode}): {log.read_text()[-2000:]}")
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))
        return found.group(1) if found else None

    return proc, wait_until(listening, SERVER_START_SECONDS, "relais api serve to listen", every=0.1)
