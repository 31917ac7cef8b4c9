"""Graceful stop of `relais run --watch` on SIGTERM (relais/shutdown.py), with a real process.

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
import time
from pathlib import Path

import sqlalchemy as sa

from tests.flows.pipeline.test_crash import ROOT, _check, _env, _relais, _workload


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


def _watch(home: Path, grace: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "relais.cli", "run", "--watch", "--interval", "0.2"],
        env=_env(home, {"RELAIS_STOP_GRACE_SECONDS": str(grace), "RELAIS_LOG_LEVEL": "WARNING"}),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _when_processing(proc: subprocess.Popen[str], home: Path, timeout: float = 120) -> str:
    """Wait until a flow is in progress; its id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        busy = [fid for fid, status, _ in _flows(home) if status == "IN_EN_COURS_TRAITEMENT_CPP"]
        if busy:
            return busy[0]
        time.sleep(0.05)
    raise AssertionError("no flow was ever in progress")


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
    home, dropped = _prepared(tmp_path, batches=1, per_batch=300, singles=2)
    proc = _watch(home, grace=0.3)
    busy = _when_processing(proc, home)
    time.sleep(0.5)  # well inside validation of the 300 invoices
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    stopped_in = time.monotonic() - t0
    print(f"stop: exit {proc.returncode} after {stopped_in:.2f} s")
    flows = {fid: (status, by) for fid, status, by in _flows(home)}
    if flows[busy][0] == "IN_EN_COURS_TRAITEMENT_CPP":  # interrupted (the usual case on a 300-invoice flow)
        assert proc.returncode == 143, err[-3000:]
        assert f"rendus au worker suivant : {busy}" in err, err[-3000:]
        assert flows[busy][1] is None, "the claim was kept: another worker would wait for the lease"
    else:  # the machine was fast enough to finish within the grace period
        assert proc.returncode == 0, err[-3000:]
    assert stopped_in < 30, f"the stop took {stopped_in:.1f} s"
    assert "Traceback" not in err, err[-3000:]
    assert not [p for p in home.rglob(".relais~*")], "a half-written file was left"
    # A restart does not wait for a lease (60 s by default): everything is done at once, exactly once.
    t0 = time.monotonic()
    again = _relais(home, "run", "-q", extra={"RELAIS_LEASE_SECONDS": "600"})
    assert again.returncode == 0, again.stderr[-2000:]
    assert time.monotonic() - t0 < 120
    _check(home, dropped)


def test_sigterm_between_two_scans_stops_at_once(tmp_path):
    home, _ = _prepared(tmp_path, batches=0, per_batch=1, singles=1)
    proc = _watch(home, grace=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not [f for f in _flows(home) if f[1] in ("IN_INTEGRE", "IN_REJETE")]:
        time.sleep(0.1)
    time.sleep(0.5)  # now idle, sleeping between scans
    t0 = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-3000:]
    assert time.monotonic() - t0 < 5
    assert "Traceback" not in err
