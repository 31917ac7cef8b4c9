"""`flows.domain.lease.is_dead`: whose claims and temporary files may be taken over or swept."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from flows.domain import lease


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_live_process_is_alive_and_an_unknown_one_is_judged_by_its_lease():
    assert lease.is_dead(lease.worker_id()) is False
    assert lease.is_dead(f"{lease.HOST}:{os.getpid()}:1") is True  # the same pid, another start: reused
    assert lease.is_dead("elsewhere:1:1") is None
    assert lease.is_dead(None) is None and lease.is_dead("garbage") is None


def test_a_killed_process_not_reaped_yet_is_dead():
    """A zombie runs no code any more; its parent (a killed run's, adopted by an init that does not reap)
    may never wait for it. Its temporary files must still be swept."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        holder = f"{lease.HOST}:{child.pid}:{lease._start_ticks(child.pid)}"
        assert lease.is_dead(holder) is False
        child.kill()  # not waited for: a zombie until the wait below
        deadline = time.monotonic() + 10
        while _state(child.pid) not in ("Z", "X") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _state(child.pid) == "Z"
        assert lease.is_dead(holder) is True
    finally:
        child.kill()
        child.wait()
    assert lease.is_dead(holder) is True
