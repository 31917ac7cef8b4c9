"""Grouped durability at intake: many drop-zone files archived with grouped syncs (`Archive.put_many`)
and recorded in one transaction per batch (`Intake.ingest_many`), archive first and exactly once."""

from __future__ import annotations

import hashlib
import os

import pytest

from archive import local
from archive.local import LocalArchive
from connectors.folder import dropzone
from relais.runner import intake
from tests.support.helpers import drop

N = dropzone.SCAN_BATCH + 6  # two batches


def _drop_many(rt, n: int = N) -> list[bytes]:
    blobs = [f"<not-an-invoice n='{i}'/>".encode() for i in range(n)]
    for i, data in enumerate(blobs):
        drop(rt, "op-a", f"f{i:03d}.xml", data)
    return blobs


def test_put_many_stores_each_object_once_and_durably(tmp_path):
    a = LocalArchive(tmp_path / "archive")
    src = tmp_path / "src.bin"
    src.write_bytes(b"from a file")
    objs = a.put_many([b"one", src, b"one", b"two"])
    assert [o.sha256 for o in objs] == [hashlib.sha256(d).hexdigest() for d in (b"one", b"from a file", b"one", b"two")]
    assert a.read(objs[1].sha256) == b"from a file" and a.read(objs[3].sha256) == b"two"
    assert a.put_many([b"two", b"three"])[0] == objs[3]  # write-once: the same bytes again change nothing
    assert not list((tmp_path / "archive" / "tmp").iterdir())  # no temporary file left
    path = tmp_path / "archive" / "objects" / objs[0].sha256[:2] / objs[0].sha256[2:4] / objs[0].sha256
    assert oct(path.stat().st_mode & 0o777) == "0o444"


def test_put_many_syncs_the_bytes_before_any_object_is_visible(tmp_path, monkeypatch):
    a = LocalArchive(tmp_path / "archive")
    events: list[str] = []
    real_link, real_sync = os.link, local._sync_fs
    monkeypatch.setattr(local, "_sync_fs", lambda path: (events.append("sync"), real_sync(path))[1])
    monkeypatch.setattr(local.os, "link", lambda s, d: (events.append("link"), real_link(s, d))[1])
    a.put_many([b"a", b"b", b"c"])
    assert events == ["sync", "link", "link", "link", "sync"]  # two syncs in all, bytes first


def test_a_drop_zone_full_of_files_is_recorded_in_grouped_writes_after_its_bytes_are_durable(rt, monkeypatch):
    blobs = _drop_many(rt)
    events: list[str] = []
    real_sync, real_create = local._sync_fs, rt.store.create_flows
    monkeypatch.setattr(local, "_sync_fs", lambda path: (events.append("sync"), real_sync(path))[1])

    def create_flows(flows):
        assert all(rt.archive.exists(f.sha256) for f in flows)
        events.append(f"rows:{len(flows)}")
        return real_create(flows)

    monkeypatch.setattr(rt.store, "create_flows", create_flows)
    monkeypatch.setattr(rt.store, "create_flow", lambda f: pytest.fail("recorded one at a time"))
    flows = intake(rt)
    assert len(flows) == N and {f.sha256 for f in flows} == {hashlib.sha256(b).hexdigest() for b in blobs}
    assert [e for e in events if e.startswith("rows")] == [
        f"rows:{dropzone.SCAN_BATCH}",
        f"rows:{N - dropzone.SCAN_BATCH}",
    ]
    first_rows = events.index(f"rows:{dropzone.SCAN_BATCH}")
    assert events[:first_rows].count("sync") == 4  # the files' bytes and names, then the id markers'
    assert not list(rt.settings.inbox("op-a").iterdir())
    ids = [f.id for f in flows]
    assert len(set(ids)) == N and ids == sorted(ids)


def test_a_crash_before_the_rows_are_written_records_each_file_once(rt, monkeypatch):
    _drop_many(rt)
    real = rt.store.create_flows
    calls = []

    def crash_once(flows):
        calls.append(len(flows))
        if len(calls) == 1:
            raise OSError("the store went away")
        return real(flows)

    monkeypatch.setattr(rt.store, "create_flows", crash_once)
    first = intake(rt)  # the channel's failure is logged; the files stay in the inbox
    assert first == []
    assert len(list(rt.settings.inbox("op-a").iterdir())) == N
    again = intake(rt)
    assert len(again) == N and len(rt.store.list_flows(limit=1000)) == N


def test_a_crash_after_the_rows_are_written_records_nothing_twice(rt, monkeypatch):
    _drop_many(rt)
    real = dropzone._settle
    calls = []

    def crash_once(c, obj, got):
        calls.append(c)
        if len(calls) == 1:
            raise KeyboardInterrupt  # the process dies after recording, before removing the files
        return real(c, obj, got)

    monkeypatch.setattr(dropzone, "_settle", crash_once)
    with pytest.raises(KeyboardInterrupt):
        intake(rt)
    recorded = rt.store.list_flows(limit=1000)
    assert len(recorded) == dropzone.SCAN_BATCH  # the first batch was recorded, none of its files removed
    again = intake(rt)  # the restart: the first batch's files are known (removed), the rest recorded
    assert len(again) == N - dropzone.SCAN_BATCH
    assert len(rt.store.list_flows(limit=1000)) == N
    assert not list(rt.settings.inbox("op-a").iterdir())


def test_big_files_are_taken_in_smaller_batches(rt, monkeypatch):
    """A batch is cut at about SCAN_BATCH_BYTES too: a scanner holds the files of the batch it takes, so a
    second scanner of the same drop zones (another `relais run`, an Airflow task) takes the next ones."""
    monkeypatch.setattr(dropzone, "SCAN_BATCH_BYTES", 2500)
    blobs = [f"<not-an-invoice n='{i}'>{'x' * 1000}</not-an-invoice>".encode() for i in range(7)]
    for i, data in enumerate(blobs):
        drop(rt, "op-a", f"big{i}.xml", data)
    sizes: list[int] = []
    real = rt.store.create_flows
    monkeypatch.setattr(rt.store, "create_flows", lambda flows: (sizes.append(len(flows)), real(flows))[1])
    flows = intake(rt)
    assert len(flows) == 7 and sizes == [3, 3]  # cut once past 2,500 bytes; the last file is taken alone
    assert not list(rt.settings.inbox("op-a").iterdir())
