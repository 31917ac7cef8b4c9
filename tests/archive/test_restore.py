"""Restoring an older backup of the store (SQLite), as docs/operations.md describes it.

A backup is taken with Python's sqlite3 backup API (what `sqlite3 relais.db ".backup ..."` does), more
flows are processed, the backup is restored and `relais run` runs again:

- flows present in the backup are not processed again, and their deliveries already sent are not
  written again (the delivery files on disk are those the store and the lost flows account for);
- outbox rows still pending in the backup (sent after it) are sent again, under the same names and
  with the same bytes: the receiver sees the same file twice;
- flows received after the backup are unknown to the restored store; their files are in the archive
  only (found as archived objects no store row refers to);
- the flow id sequence restarts where the backup left it, but the ids it hands out again are skipped
  (the archive marks every id given: flows/pipeline/intake.py), so no lost flow's id is given twice.
"""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import sqlalchemy as sa

from archive import LocalArchive
from flows.domain.lifecycle import FlowStatus
from flows.store import Store
from flows.store import tables as t
from relais import generate as gen

ROOT = Path(__file__).resolve().parents[2]
RELAIS = [sys.executable, "-m", "relais.cli"]


def _zip(recipients, *, n=3, seed=1, start=1) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for spec in gen.plan(n, 2, recipients, seed=seed, start=start):
            entry, data = gen.document("ubl", spec)
            z.writestr(entry, data)
    return buf.getvalue()


class Home:
    def __init__(self, tmp_path: Path, directory_file) -> None:
        self.home = tmp_path / "home"
        self.db = self.home / "relais.db"
        self.recipients = directory_file[1]
        self.env = {
            **os.environ,
            "RELAIS_HOME": str(self.home),
            "RELAIS_STABLE_SECONDS": "0",
            "RELAIS_WORKERS": "0",
            "RELAIS_LOG_LEVEL": "WARNING",
        }
        for name in ("RELAIS_DATABASE_URL", "RELAIS_DATABASE_SCHEMA", "RELAIS_ARCHIVE_URL"):
            self.env.pop(name, None)  # SQLite in the home, the folder archive
        self.relais("directory", "import", str(directory_file[0]))

    def relais(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*RELAIS, *args], env=self.env, cwd=ROOT, check=True, capture_output=True, text=True)

    def drop(self, name: str, *, seed: int, start: int) -> bytes:
        inbox = self.home / "dropzones" / "op-a" / "in"
        inbox.mkdir(parents=True, exist_ok=True)
        data = _zip(self.recipients, seed=seed, start=start)
        (inbox / name).write_bytes(data)
        old = time.time() - 60
        os.utime(inbox / name, (old, old))
        return data

    def files(self) -> dict[str, tuple[int, bytes]]:
        """Every delivered invoice and return flow: relative path -> (mtime_ns, bytes)."""
        out = {}
        for folder in (self.home / "delivery", self.home / "dropzones" / "op-a" / "out"):
            for p in folder.rglob("*"):
                if p.is_file():
                    out[str(p.relative_to(self.home))] = (p.stat().st_mtime_ns, p.read_bytes())
        return out

    def backup(self, dest: Path) -> None:
        """An online backup with the sqlite3 backup API (`sqlite3 relais.db ".backup dest"`)."""
        src, dst = sqlite3.connect(self.db), sqlite3.connect(dest)
        with dst:
            src.backup(dst)
        src.close()
        dst.close()

    def restore(self, backup: Path) -> None:
        """Relais stopped: the backup copied back over the store (through the same API)."""
        src, dst = sqlite3.connect(backup), sqlite3.connect(self.db)
        with dst:
            src.backup(dst)
        src.close()
        dst.close()

    def store(self) -> contextlib.closing[Store]:
        return contextlib.closing(Store.open(f"sqlite:///{self.db}"))


def _delivered_in_store(store: Store) -> tuple[list, list]:
    with store.engine.connect() as conn:
        o = t.outbox.c
        rows = conn.execute(sa.select(o.kind, o.key, o.status, o.flow_id)).all()
        history = conn.execute(sa.select(sa.func.count()).select_from(t.invoice_history)).scalar_one()
    return rows, history


def test_restoring_an_older_backup_processes_nothing_twice(tmp_path, directory_file):
    h = Home(tmp_path, directory_file)
    h.drop("a0.zip", seed=1, start=1)
    h.drop("a1.zip", seed=2, start=101)
    h.relais("run", "-q")
    backup = tmp_path / "relais-backup.db"
    h.backup(backup)
    with h.store() as store:
        before_flows = {f.id: f.status for f in store.list_flows(limit=100)}
        before_rows, before_history = _delivered_in_store(store)
    assert len(before_flows) == 2 and {r.status for r in before_rows} == {"sent"}

    lost = h.drop("b0.zip", seed=3, start=201)  # processed after the backup
    h.relais("run", "-q")
    with h.store() as store:
        lost_flow = next(f for f in store.list_flows(limit=100) if f.id not in before_flows)
        lost_deliveries = [o for o in store.outbox_for_flow(lost_flow.id) if o.kind == "delivery"]
    on_disk = h.files()
    assert not list((h.home / "dropzones" / "op-a" / "in").iterdir())  # b0.zip left the drop zone

    h.restore(backup)
    h.relais("db", "upgrade")
    h.relais("run", "-q")

    with h.store() as store:
        after_flows = {f.id: f.status for f in store.list_flows(limit=100)}
        after_rows, after_history = _delivered_in_store(store)
        refs = {r.sha256 for r in store.archive_refs()}
    assert after_flows == before_flows  # the lost flow is unknown; the others were not processed again
    assert sorted(after_rows) == sorted(before_rows) and after_history == before_history
    assert h.files() == on_disk  # not one file written again (same names, bytes and mtimes)

    # Delivery files on disk = those the restored store sent + those of the flow the backup does not know.
    delivery_files = [p for p in (h.home / "delivery").rglob("*") if p.is_file()]
    sent = [r for r in after_rows if r.kind == "delivery" and r.status == "sent"]
    assert len(delivery_files) == len(sent) + len(lost_deliveries)
    assert len({p.name for p in delivery_files}) == len(delivery_files)  # nothing under two names

    # The lost flow's file is still in the archive, and only there: an object no store row refers to.
    import hashlib

    sha = hashlib.sha256(lost).hexdigest()
    archive = LocalArchive(h.home / "archive")
    assert archive.exists(sha) and sha not in refs
    orphans = {p.name for p in (h.home / "archive" / "objects").rglob("*") if p.is_file()} - refs
    assert sha in orphans
    verified = h.relais("archive", "verify").stdout
    assert "0 manquant(s)" in verified and "LocalArchive('" in verified  # verify checks what the store knows: all there


def test_a_backup_with_pending_outbox_rows_resends_them_under_the_same_names(tmp_path, directory_file, monkeypatch):
    h = Home(tmp_path, directory_file)
    h.drop("a0.zip", seed=1, start=1)
    from flows.pipeline import dispatch
    from relais.compose import Runtime
    from relais.runner import intake, process_flows
    from relais.settings import Settings

    rt = Runtime.open(Settings.from_env(h.home, stable_seconds=0.0))
    try:
        [flow] = intake(rt)
        with monkeypatch.context() as m:  # closed, its deliveries and return flow not sent yet
            m.setattr(dispatch, "dispatch_flow", lambda *a, **k: dispatch.DispatchReport())
            process_flows(rt, [flow.id])
        pending = rt.store.pending_outbox(flow_id=flow.id)
    finally:
        rt.close()
    assert pending
    backup = tmp_path / "relais-backup.db"
    h.backup(backup)  # the backup holds the rows as pending
    h.relais("run", "-q")  # ...and they are sent after it
    sent = h.files()
    statuses = [k for k in sent if Path(k).name.startswith("ST")]  # the "made available" status return flow
    assert len(sent) == len(pending) + len(statuses) and len(statuses) == 1

    h.restore(backup)
    h.relais("run", "-q")  # the restored store sends them again
    again = h.files()
    assert again.keys() == sent.keys()  # the same names: no new file, nothing under another name
    assert all(again[k][1] == sent[k][1] for k in sent if k not in statuses)  # deliveries, CR: the same bytes
    [st] = statuses  # the status return flow: same name, new dates (the invoices were delivered again)
    assert again[st][1] != sent[st][1] and b"CPP0000000001-00001" in again[st][1]
    assert all(again[k][0] > sent[k][0] for k in sent)  # but written again: the receiver sees them twice
    with h.store() as store:
        assert store.pending_outbox(flow_id=flow.id) == []
        assert store.get_flow(flow.id).status in (FlowStatus.IN_INTEGRE, FlowStatus.IN_INTEGRE_PARTIEL)


def test_flow_ids_are_not_given_again_after_restoring_an_older_backup(tmp_path, directory_file):
    h = Home(tmp_path, directory_file)
    h.drop("a0.zip", seed=1, start=1)
    h.relais("run", "-q")
    backup = tmp_path / "relais-backup.db"
    h.backup(backup)
    for k in range(2):
        h.drop(f"b{k}.zip", seed=2 + k, start=101 + 100 * k)
        h.relais("run", "-q")
    with h.store() as store:
        lost = sorted(f.id for f in store.list_flows(limit=100))[1:]
    reports = {p.name for p in (h.home / "dropzones" / "op-a" / "out").glob("CR_*.xml")}

    h.restore(backup)
    with h.store() as store:
        with store.engine.begin() as conn:  # the restored sequence would hand out the lost flows' ids
            seq = conn.execute(sa.select(sa.func.max(t.flow_ids.c.seq))).scalar_one()
    assert f"CPP{seq + 1:010d}" == lost[0]
    h.drop("c0.zip", seed=9, start=901)
    h.relais("run", "-q")  # no manual step: the archive's id markers say which ids were given
    with h.store() as store:
        ids = sorted(f.id for f in store.list_flows(limit=100))
    assert len(ids) == 2 and ids[-1] > lost[-1], (ids, lost)
    after = {p.name for p in (h.home / "dropzones" / "op-a" / "out").glob("CR_*.xml")}
    assert reports < after and not [n for n in after - reports if any(i in n for i in lost)]
    # the lost flows' integration reports were not overwritten
    assert all(len(list((h.home / "dropzones" / "op-a" / "out").glob(f"CR_{i}_*.xml"))) == 1 for i in lost)
