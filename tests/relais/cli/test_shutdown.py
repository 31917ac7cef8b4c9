"""Graceful stop of `relais run --watch` on SIGTERM (relais/run_loop.py), with a real process.

- SIGTERM while a flow is processed and the grace period is long enough: the flow finishes, its
  deliveries and return flow leave, no other flow is started, exit 0.
- SIGTERM with no grace left: the work is interrupted, the claim released at once (no lease to wait
  for: a worker elsewhere could take it over now), nothing half-written is visible, exit 143; the next
  run completes everything exactly once (the checks of tests/flows/pipeline/test_crash.py).
- SIGTERM between two scans: exit 0 at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from tests.flows.pipeline.test_crash import ROOT, _check, _env, _relais, _workload
from tests.support.waiting import wait_until


def _flows(home: Path) -> list[tuple[str, str, str | None]]:
    """(id, status, claimed_by) of every flow, read straight from the SQLite store."""
    eng = sa.create_engine(f"sqlite:///{home / 'relais.db'}")
    try:
        with eng.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text("SELECT id, status, claimed_by FROM flows ORDER BY id"))]
    except sa.exc.OperationalError:  # not created yet
        return []
    finally:
        eng.dispose()


# `relais run --watch` whose flows never get past their validation: a stop always finds the flow in progress
_HELD = (
    "import time\n"
    "import flows.pipeline.process as process\n"
    "process.record = lambda *args, **kwargs: time.sleep(3600)  # until the stop interrupts it\n"
    "from relais.cli import main\n"
    "main(['run', '--watch', '--interval', {interval!r}])\n"
)


def _watch(home: Path, grace: float, *, interval: float = 0.2, held: bool = False) -> subprocess.Popen[str]:
    command = ["-c", _HELD.format(interval=str(interval))] if held else ["-m", "relais.cli", "run", "--watch"]
    if not held:
        command += ["--interval", str(interval)]
    return subprocess.Popen(
        [sys.executable, *command],
        env=_env(home, {"RELAIS_STOP_GRACE_SECONDS": str(grace), "RELAIS_LOG_LEVEL": "WARNING"}),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _when_processing(proc: subprocess.Popen[str], home: Path, timeout: float = 120) -> str:
    """Wait until a flow is in progress; its id."""

    def busy() -> list[str]:
        assert proc.poll() is None, proc.communicate()
        return [fid for fid, status, _ in _flows(home) if status == "IN_EN_COURS_TRAITEMENT_CPP"]

    return wait_until(busy, timeout, "a flow in progress")[0]


def _sleeping(pid: int) -> bool:
    """Whether the process's main thread is in a sleep (`time.sleep`: between two scans of --watch)."""
    return Path(f"/proc/{pid}/wchan").read_text().endswith("nanosleep")


def _prepared(tmp_path: Path, **workload: int) -> tuple[Path, dict[str, set[str]]]:
    home = tmp_path / "home"
    dropped = _workload(home, tmp_path, **workload)
    imported = _relais(home, "directory", "import", str(tmp_path / "annuaire.json"))
    assert imported.returncode == 0, imported.stderr[-2000:]
    return home, dropped


def test_sigterm_lets_the_flow_in_progress_finish_and_starts_no_other(tmp_path):
    home, dropped = _prepared(tmp_path, batches=2, per_batch=40, singles=0)
    proc = _watch(home, grace=120)
    busy = _when_processing(proc, home)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert "arrêté (SIGTERM)" in err
    flows = {fid: (status, by) for fid, status, by in _flows(home)}
    assert flows[busy][0] in ("IN_INTEGRE", "IN_INTEGRE_PARTIEL", "IN_REJETE"), flows
    assert len(list((home / "dropzones").rglob(f"CR_{busy}_*.xml"))) == 1, "its return flow did not leave"
    waiting = [fid for fid, (status, _) in flows.items() if fid != busy]
    assert not [f for f in waiting if flows[f][0] == "IN_EN_COURS_TRAITEMENT_CPP"], "a flow was left half done"
    # the rest is done by the next run, exactly once
    again = _relais(home, "run", "-q")
    assert again.returncode == 0, again.stderr[-2000:]
    _check(home, dropped)


def test_sigterm_after_the_grace_period_releases_the_claim_at_once(tmp_path):
    home, dropped = _prepared(tmp_path, batches=1, per_batch=30, singles=2)
    proc = _watch(home, grace=0.3, held=True)  # the flow in progress cannot finish within the grace period
    busy = _when_processing(proc, home)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    flows = {fid: (status, by) for fid, status, by in _flows(home)}
    assert flows[busy][0] == "IN_EN_COURS_TRAITEMENT_CPP", flows  # interrupted, left to the next worker
    assert proc.returncode == 143, err[-3000:]
    assert f"rendus au worker suivant : {busy}" in err, err[-3000:]
    assert flows[busy][1] is None, "the claim was kept: another worker would wait for the lease"
    assert "Traceback" not in err, err[-3000:]
    left = sorted(str(p.relative_to(home)) for p in home.rglob(".relais~*"))
    assert not left, f"a half-written file was left: {left}"
    # A restart does not wait for the lease (600 s here: a kept claim would leave the flow undone):
    # everything is done at once, exactly once.
    again = _relais(home, "run", "-q", extra={"RELAIS_LEASE_SECONDS": "600"})
    assert again.returncode == 0, again.stderr[-2000:]
    _check(home, dropped)


def test_sigterm_between_two_scans_stops_at_once(tmp_path):
    home, _ = _prepared(tmp_path, batches=0, per_batch=1, singles=1)
    proc = _watch(home, grace=60, interval=3600)  # after its first pass, it sleeps for an hour

    def idle() -> bool:
        assert proc.poll() is None, proc.communicate()
        done = [f for f in _flows(home) if f[1] in ("IN_INTEGRE", "IN_REJETE")]
        return bool(done) and _sleeping(proc.pid)

    wait_until(idle, 60, "the first pass to end and the runner to sleep between scans")
    os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)  # neither the hour's sleep nor the grace period is waited for
    assert proc.returncode == 0, err[-3000:]
    assert "shutdown.requested" not in err, err[-3000:]  # no pass was in progress: no grace period began
    assert "Traceback" not in err
