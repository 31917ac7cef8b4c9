"""Exactly once under crashes: `relais run` killed with SIGKILL at random moments, restarted, checked.

Each run drops the same workload (batches with invalid and misrouted invoices and single-invoice files,
two partners), starts `relais run` in a subprocess, kills it (SIGKILL) after a random delay spread over
the whole run (intake, archiving, validation, routing, return flows, status emission, dispatch),
restarts it, and checks:

- every dropped file is exactly one flow, in a final state;
- every accepted invoice is delivered exactly once (one file, one sent delivery row);
- every flow has exactly one integration report (one file, one sent return row);
- every file's bytes are in the archive under their SHA-256;
- every status change is reported once in the status return flows;
- no temporary file is left, and the restart did not wait for a stale timeout (the dead worker's
  claim is recognised by its process being gone: `flows.domain.lease`).

The fast suite runs two kills on a small workload; the slow one 20 kills on 2,000+ invoices. The same
harness runs on PostgreSQL (a private schema per round) with the S3 archive (SeaweedFS, `seaweedfs` in
tests/conftest.py, a bucket per round): one kill on a small workload, and six on 2,000+ invoices (slow).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from unittest import mock

import pytest
from lxml import etree

from flows.io import atomic
from relais import generate as gen
from tests.support.relais_cli import env as _env
from tests.support.relais_cli import relais as _relais

ROOT = Path(__file__).resolve().parents[3]
PARTNERS = ("op-a", "op-b")


def _workload(home: Path, work: Path, *, batches: int, per_batch: int, singles: int) -> dict[str, set[str]]:
    """Drop the files; {partner: names dropped}."""
    recipients = gen.sample_directory()
    work.mkdir(parents=True, exist_ok=True)
    (work / "annuaire.json").write_text(json.dumps(gen.directory_document(recipients, "crash")))
    dropped: dict[str, set[str]] = {p: set() for p in PARTNERS}
    old = time.time() - 60
    start = 1
    for k in range(batches):
        partner = PARTNERS[k % 2]
        [path] = gen.write_batch(
            work / "gen",
            "ubl" if k % 3 else "cii",
            per_batch,
            2,
            batch="zip" if k % 2 else "tar.gz",
            recipients=recipients,
            invalid_ratio=0.05,
            misrouted_ratio=0.05,
            seed=k + 1,
            start=start,
            name=f"batch-{k:02d}",
        )
        start += per_batch
        inbox = home / "dropzones" / partner / "in"
        inbox.mkdir(parents=True, exist_ok=True)
        os.replace(path, inbox / path.name)
        os.utime(inbox / path.name, (old, old))
        dropped[partner].add(path.name)
    for k, spec in enumerate(gen.plan(singles, 2, recipients, seed=99, start=start)):
        name, data = gen.document("ubl", spec)
        partner = PARTNERS[k % 2]
        inbox = home / "dropzones" / partner / "in"
        inbox.mkdir(parents=True, exist_ok=True)
        (inbox / name).write_bytes(data)
        os.utime(inbox / name, (old, old))
        dropped[partner].add(name)
    return dropped


def _killed_run(home: Path, delay: float, extra: Mapping[str, str] | None = None) -> bool:
    """`relais run`, SIGKILLed after `delay` seconds; True when it was still running then."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "relais.cli", "run", "-q"],
        env=_env(home, extra),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its validation workers, at once
        proc.wait()
        _wait_group_gone(proc.pid)
        return True


def _wait_group_gone(pgid: int, timeout: float = 30.0) -> None:
    """Until no process of the group runs any more (zombies do not), as a supervisor restarts a unit only
    once its processes are gone: a worker in the middle of an fsync dies a moment after the SIGKILL."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                running.append(stat.parent.name)
        if not running:
            return
        time.sleep(0.02)
    raise AssertionError(f"processes of the killed run still running after {timeout} s")


def _check(home: Path, dropped: dict[str, set[str]], extra: Mapping[str, str] | None = None) -> None:
    """The checks of the module docstring, on the store and archive the runs used (`extra`: their env)."""
    from flows.domain.lifecycle import FINAL_FLOW_STATUSES
    from relais.compose import Runtime
    from relais.settings import Settings

    with mock.patch.dict(os.environ, dict(extra or {})):  # the same store and archive as the runs
        rt = Runtime.open(Settings.from_env(home))
    try:
        flows = rt.store.list_flows(limit=10_000)
        per_partner = Counter((f.partner, f.original_name) for f in flows)
        assert {k for k, n in per_partner.items() if n > 1} == set(), "a file became two flows"
        assert {(p, n) for p, names in dropped.items() for n in names} == set(per_partner), "a file has no flow"
        assert all(f.status in FINAL_FLOW_STATUSES for f in flows), [(f.id, str(f.status)) for f in flows]
        delivered_files = [p for p in (home / "delivery").rglob("*") if p.is_file()]
        accepted = []
        for f in flows:
            assert rt.archive.verify(f.sha256), f"flow {f.id}: archived bytes missing or altered"
            rows = [r for r in rt.store.outbox_for_flow(f.id) if r.status != "superseded"]  # never sent
            returns = [r for r in rows if r.kind == "return"]
            assert len(returns) == 1 and returns[0].status == "sent", (f.id, returns)
            reports = list((home / "dropzones" / f.partner / "out").glob(f"CR_{f.id}_*.xml"))
            assert len(reports) == 1, (f.id, reports)
            deliveries = Counter(r.invoice_id for r in rows if r.kind == "delivery")
            for inv in rt.store.iter_invoices(f.id):
                if inv.status.is_rejected:
                    assert deliveries[inv.id] == 0
                    continue
                accepted.append(inv.id)
                assert deliveries[inv.id] == 1, (inv.id, deliveries[inv.id])
                assert inv.delivered_to and Path(inv.delivered_to).is_file()
        assert len(delivered_files) == len(accepted) == len(set(accepted)), "an invoice delivered twice or not"
        assert {p.stem for p in delivered_files} == set(accepted)
        left = sorted(str(p.relative_to(home)) for p in home.rglob(".relais*"))
        assert not left, f"a temporary file was left visible: {left}"
        # every status change once in the status return flows
        reported = Counter()
        for partner in PARTNERS:
            for st in (home / "dropzones" / partner / "out").glob("ST*.xml"):
                for e in etree.parse(str(st)).iter("CPPFactureStatut"):
                    reported[(e.findtext("IdFacture"), e.findtext("DonneesStatut/IdStatut"))] += 1
        changes = Counter((h.invoice_id, h.status.code) for h in rt.store.iter_history() if h.previous is not None)
        assert reported == changes
    finally:
        rt.close()


RoundEnv = Callable[[str], Mapping[str, str]]


def _crash_runs(
    tmp_path: Path, runs: int, seed: int, *, round_env: RoundEnv | None = None, **workload: int
) -> list[float]:
    """`runs` kill-and-restart rounds, each on a fresh home; the delays used. `round_env(name)` gives
    each round (and the reference run) extra environment variables: its own store, its own archive."""
    rng = random.Random(seed)
    # A reference run without a kill measures how long the whole path takes.
    ref = tmp_path / "ref"
    extra = round_env("ref") if round_env else None
    dropped = _workload(ref / "home", ref, **workload)
    imported = _relais(ref / "home", "directory", "import", str(ref / "annuaire.json"), extra=extra)
    assert imported.returncode == 0, imported.stderr[-2000:]
    t0 = time.monotonic()
    done = _relais(ref / "home", "run", "-q", extra=extra)
    total = time.monotonic() - t0
    assert done.returncode == 0, done.stderr
    _check(ref / "home", dropped, extra)
    delays = []
    for k in range(runs):
        base = tmp_path / f"run{k}"
        extra = round_env(f"run{k}") if round_env else None
        dropped = _workload(base / "home", base, **workload)
        imported = _relais(base / "home", "directory", "import", str(base / "annuaire.json"), extra=extra)
        assert imported.returncode == 0, imported.stderr[-2000:]
        delay = rng.uniform(0.3, max(0.5, total * 0.95))
        delays.append(round(delay, 2))
        _killed_run(base / "home", delay, extra)
        t0 = time.monotonic()
        again = _relais(base / "home", "run", "-q", timeout=max(120.0, total * 4), extra=extra)
        assert again.returncode == 0, (delay, again.stderr[-2000:])
        assert time.monotonic() - t0 < max(60.0, total * 3), "the restart waited for a stale claim"
        _check(base / "home", dropped, extra)
    return delays


def test_the_temporary_files_of_a_killed_writer_are_swept_wherever_relais_writes(rt, monkeypatch):
    """Return flows and deliveries, but also the native rule engine's cache, which validation workers write
    (a kill while one wrote its cache file once left it visible)."""
    from relais import runner

    monkeypatch.setattr(runner, "_swept", False)  # once per process: as in a restart
    dead = ".relais~999999999~1~x.part"  # a writer that is gone
    rt.settings.inbox("op-a").mkdir(parents=True, exist_ok=True)
    folders = [
        rt.settings.staging_dir,
        rt.settings.delivery_dir / "12345678900011",
        rt.settings.outbox_dir("op-a"),
        rt.settings.native_cache_dir,
    ]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / dead).write_bytes(b"half")
    mine = rt.settings.native_cache_dir / (atomic.temp_prefix() + "y.part")  # a live writer's: kept
    mine.write_bytes(b"being written")
    assert sorted(runner.sweep_temporaries(rt)) == sorted(folder / dead for folder in folders)
    assert mine.exists()
    mine.unlink()


def test_killed_runs_lose_and_duplicate_nothing(tmp_path):
    _crash_runs(tmp_path, runs=2, seed=1, batches=3, per_batch=30, singles=6)


@pytest.mark.slow
@pytest.mark.xdist_group("airflow")  # heavy real-process suites run one after the other
def test_twenty_kills_over_two_thousand_invoices(tmp_path, capsys):
    delays = _crash_runs(tmp_path, runs=20, seed=7, batches=10, per_batch=200, singles=20)
    with capsys.disabled():
        print(f"\ncrash runs: {len(delays)} kills at {delays} s, all checks passed")


# ---- the same on PostgreSQL and the S3 archive ------------------------------------------


@pytest.fixture
def pg_s3_rounds(seaweedfs) -> Iterator[RoundEnv]:
    """`round_env` for `_crash_runs`: each round gets a private PostgreSQL schema and its own S3 bucket
    on the session's SeaweedFS; the schemas are dropped afterwards (object-locked buckets cannot be)."""
    import contextlib
    import uuid

    from tests.conftest import PG_URL, private_schema, require_pg

    require_pg()
    pytest.importorskip("boto3")
    schemas = contextlib.ExitStack()

    def round_env(name: str) -> dict[str, str]:
        tag = uuid.uuid4().hex[:10]
        schema = schemas.enter_context(private_schema("relais_crash"))
        return {
            **seaweedfs.env(),
            "RELAIS_DATABASE_URL": PG_URL,
            "RELAIS_DATABASE_SCHEMA": schema,
            "RELAIS_ARCHIVE_URL": f"s3://relais-crash-{name}-{tag}/relais",
        }

    with schemas:
        yield round_env


@pytest.mark.postgres
def test_a_killed_run_on_postgresql_and_s3_loses_and_duplicates_nothing(tmp_path, pg_s3_rounds):
    _crash_runs(tmp_path, runs=1, seed=3, round_env=pg_s3_rounds, batches=2, per_batch=20, singles=4)


@pytest.mark.slow
@pytest.mark.xdist_group("airflow")  # heavy real-process suites run one after the other
@pytest.mark.postgres
def test_six_kills_on_postgresql_and_s3_over_two_thousand_invoices(tmp_path, capsys, pg_s3_rounds):
    delays = _crash_runs(tmp_path, runs=6, seed=11, round_env=pg_s3_rounds, batches=10, per_batch=200, singles=20)
    with capsys.disabled():
        print(f"\ncrash runs on PostgreSQL + S3: {len(delays)} kills at {delays} s, all checks passed")
