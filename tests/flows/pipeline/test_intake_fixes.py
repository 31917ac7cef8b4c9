"""Intake fixes: hosted SFTP uploads recorded as channel sftp, refused names logged, names the
intake never takes refused or reported, and the folder intake's crash window between record and unlink."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest

from connectors import partners as partners_config
from connectors.folder import dropzone
from connectors.sftp.hosted.server import ServerThread, accounts_for_dropzones
from flows.domain.model import Channel, FlowStatus
from relais import generate as gen
from relais.runner import run_once
from tests.connectors.sftp.test_sftp_server import _close, _denied, _keypair, _sftp
from tests.support.helpers import drop
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("json_logs")  # tests here read the JSON log lines


@pytest.fixture(scope="module")
def key():
    return _keypair()


@pytest.fixture
def hosted(rt, key, tmp_path):
    """op-a hosted by `relais sftp serve` (a real server on 127.0.0.1) and a logged-in paramiko client."""
    rt.settings.partners_dir.mkdir(parents=True)
    (rt.settings.partners_dir / "op-a.toml").write_text(f'id = "op-a"\n[hosted]\nauthorized_keys = ["{key[1]}"]\n')
    accounts = accounts_for_dropzones(rt.settings, partners_config.load(rt.settings.partners_dir))
    with ServerThread(accounts, tmp_path / "hk") as srv:
        client = _sftp(srv, "op-a", key[0])
        yield client
        _close(client, srv)


def _events(capsys, name: str) -> list[dict]:
    lines = capsys.readouterr().err.splitlines()
    return [e for e in (json.loads(line) for line in lines if line.startswith("{")) if e.get("event") == name]


def _docs(directory_file, n: int) -> list[bytes]:
    _, recipients = directory_file
    return [gen.document("ubl", spec)[1] for spec in gen.plan(n, 1, recipients, seed=41)]


def _flows(rt):
    return rt.store.list_flows(limit=1000)


# ---- 1. hosted SFTP uploads are channel sftp --------------------------------------------------


def test_hosted_sftp_uploads_are_recorded_with_channel_sftp(rt, hosted, directory_file):
    direct, part, local, replaced = _docs(directory_file, 4)
    hosted.putfo(io.BytesIO(direct), "/in/direct.xml")  # atomic upload to the final name
    with hosted.open("/in/part.xml.part", "wb") as f:  # classic: temporary name, then rename
        f.write(part)
    hosted.rename("/in/part.xml.part", "/in/part.xml")
    drop(rt, "op-a", "local.xml", local)  # put straight into the folder: not through the server
    hosted.putfo(io.BytesIO(b"<x/>"), "/in/replaced.xml")  # uploaded, then replaced locally (a new file)
    inbox = rt.settings.inbox("op-a")
    (inbox / "replaced.tmp").write_bytes(replaced)
    os.replace(inbox / "replaced.tmp", inbox / "replaced.xml")

    flows = run_once(rt)

    assert {f.original_name: f.channel for f in flows} == {
        "direct.xml": Channel.SFTP,
        "part.xml": Channel.SFTP,
        "local.xml": Channel.FOLDER,
        "replaced.xml": Channel.FOLDER,
    }
    assert {f.status for f in flows} == {FlowStatus.IN_INTEGRE}
    assert {f.channel for f in rt.store.list_flows()} == {Channel.SFTP, Channel.FOLDER}  # as stored
    assert list(inbox.iterdir()) == []


def test_the_mark_is_read_from_the_file_itself(tmp_path):
    path = tmp_path / "a.xml"
    path.write_bytes(b"<a/>")
    assert dropzone.channel_of(path) is Channel.FOLDER
    dropzone.mark_sftp(path)
    assert dropzone.channel_of(path) is Channel.SFTP
    os.rename(path, tmp_path / "b.xml")  # kept by a rename
    assert dropzone.channel_of(tmp_path / "b.xml") is Channel.SFTP
    assert dropzone.channel_of(tmp_path / "gone.xml") is Channel.FOLDER


def test_a_file_system_without_the_mark_is_reported_at_start(rt, key, tmp_path, capsys, monkeypatch):
    from connectors.sftp.hosted import handler as sftp_handler
    from connectors.sftp.hosted import server as server_module

    def unsupported(target):
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(server_module, "mark_sftp", unsupported)  # the check at start
    monkeypatch.setattr(sftp_handler, "mark_sftp", unsupported)  # each upload
    rt.settings.partners_dir.mkdir(parents=True)
    (rt.settings.partners_dir / "op-a.toml").write_text(f'id = "op-a"\n[hosted]\nauthorized_keys = ["{key[1]}"]\n')
    accounts = accounts_for_dropzones(rt.settings, partners_config.load(rt.settings.partners_dir))
    with ServerThread(accounts, tmp_path / "hk") as srv:
        [event] = _events(capsys, "sftp.channel_mark_unsupported")
        assert event["partner"] == "op-a"
        client = _sftp(srv, "op-a", key[0])
        client.putfo(io.BytesIO(b"<a/>"), "/in/a.xml")  # the upload still works...
        [failed] = _events(capsys, "sftp.channel_mark_failed")  # ...and says it will count as folder
        assert failed["path"] == "/in/a.xml"
        _close(client, srv)
    assert list(rt.settings.inbox("op-a").iterdir()) == [rt.settings.inbox("op-a") / "a.xml"]  # no probe left


# ---- 2. names over 255 bytes: refused and logged -----------------------------------------------


def test_a_name_over_255_bytes_is_refused_and_logged(rt, hosted, capsys):
    long_name = "é" * 200 + ".xml"  # 404 bytes
    capsys.readouterr()
    _denied(hosted.putfo, io.BytesIO(b"<a/>"), f"/in/{long_name}")
    hosted.putfo(io.BytesIO(b"<a/>"), "/in/ok.xml")
    _denied(hosted.rename, "/in/ok.xml", f"/in/{long_name}")
    events = _events(capsys, "sftp.denied")
    assert [(e["op"], e["path"], e["reason"], e["partner"]) for e in events] == [
        ("open", f"/in/{long_name}", "invalid file name", "op-a"),
        ("rename", f"/in/{long_name}", "invalid file name", "op-a"),
    ]
    assert [p.name for p in rt.settings.inbox("op-a").iterdir()] == ["ok.xml"]
    _denied(hosted.stat, f"/in/{long_name}")  # looking it up is still just an error
    exact = "a" * 251 + ".xml"  # 255 bytes: allowed
    hosted.putfo(io.BytesIO(b"<b/>"), f"/in/{exact}")
    assert (rt.settings.inbox("op-a") / exact).read_bytes() == b"<b/>"


# ---- 3. names the intake never takes --------------------------------------------------------


@pytest.mark.parametrize(
    "name", [".hidden.xml", "a.xml.part", "a.xml.TMP", "a.xml.partial", "a.xml.filepart", "a.xml.crdownload"]
)
def test_a_rename_to_a_name_never_taken_is_refused_and_logged(rt, hosted, capsys, name):
    hosted.putfo(io.BytesIO(b"<a/>"), "/in/a.xml")
    capsys.readouterr()
    with pytest.raises(OSError) as exc:
        hosted.rename("/in/a.xml", f"/in/{name}")
    assert "never taken by the intake" in str(exc.value)
    [event] = _events(capsys, "sftp.denied")
    assert (event["op"], event["path"], event["partner"]) == ("rename", f"/in/a.xml -> /in/{name}", "op-a")
    assert "never taken" in event["reason"]
    with pytest.raises(OSError):
        hosted.posix_rename("/in/a.xml", f"/in/{name}")
    assert [p.name for p in rt.settings.inbox("op-a").iterdir()] == ["a.xml"]


def test_uploads_under_temporary_names_are_still_accepted(rt, hosted):
    for temporary, final in (("x.xml.filepart", "x.xml"), (".in.y.xml.", "y.xml"), ("z.xml.part", "z.xml")):
        hosted.putfo(io.BytesIO(b"<a/>"), f"/in/{temporary}")  # WinSCP, lftp, the classic
        hosted.rename(f"/in/{temporary}", f"/in/{final}")
    assert sorted(p.name for p in rt.settings.inbox("op-a").iterdir()) == ["x.xml", "y.xml", "z.xml"]


def _age(path: Path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_a_file_left_under_a_name_never_taken_is_reported_once(rt, capsys):
    inbox = rt.settings.inbox("op-a")
    inbox.mkdir(parents=True)
    for name in ("left.xml.part", ".hidden.xml", "fresh.xml.part"):
        (inbox / name).write_bytes(b"<a/>")
    _age(inbox / "left.xml.part", 2 * 86400)  # two days idle
    _age(inbox / ".hidden.xml", 2 * 86400)  # two days idle
    capsys.readouterr()

    assert (
        dropzone.scan(rt.intake, rt.settings.dropzones_dir, rt.settings.stable_seconds) == []
        and dropzone.scan(rt.intake, rt.settings.dropzones_dir, rt.settings.stable_seconds) == []
    )

    events = _events(capsys, "dropzone.ignored_file")
    assert sorted(e["name"] for e in events) == [".hidden.xml", "left.xml.part"]  # once each; fresh: not yet
    assert all(e["partner"] == "op-a" and e["level"] == "warning" for e in events)
    assert sorted(p.name for p in inbox.iterdir()) == [".hidden.xml", "fresh.xml.part", "left.xml.part"]  # kept
    assert (inbox / "left.xml.part").stat().st_mtime < time.time() - dropzone.IGNORED_REPORT_AFTER  # untouched

    # another process (a new Airflow task) does not report it again: the mark is on the file
    dropzone._reported_here.clear()
    dropzone.scan(rt.intake, rt.settings.dropzones_dir, rt.settings.stable_seconds)
    assert _events(capsys, "dropzone.ignored_file") == []

    _age(inbox / "fresh.xml.part", 2 * 86400)  # its turn
    dropzone.scan(rt.intake, rt.settings.dropzones_dir, rt.settings.stable_seconds)
    dropzone.scan(rt.intake, rt.settings.dropzones_dir, rt.settings.stable_seconds)
    assert [e["name"] for e in _events(capsys, "dropzone.ignored_file")] == ["fresh.xml.part"]


def test_without_xattrs_an_ignored_file_is_reported_once_per_process(rt, capsys, monkeypatch):
    def unsupported(*a, **k):
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(dropzone.os, "setxattr", unsupported)
    monkeypatch.setattr(dropzone.os, "getxattr", unsupported)
    monkeypatch.setattr(dropzone, "_reported_here", set())
    inbox = rt.settings.inbox("op-a")
    inbox.mkdir(parents=True)
    (inbox / "left.xml.tmp").write_bytes(b"<a/>")
    _age(inbox / "left.xml.tmp", 2 * 86400)  # two days idle
    capsys.readouterr()
    for _ in range(3):
        dropzone.scan(rt.intake, rt.settings.dropzones_dir, rt.settings.stable_seconds)
    assert [e["name"] for e in _events(capsys, "dropzone.ignored_file")] == ["left.xml.tmp"]


# ---- 4. the folder intake's crash window between record and unlink ----------------------------


def test_a_crash_between_record_and_unlink_records_no_second_flow(rt, directory_file, capsys, monkeypatch):
    [data] = _docs(directory_file, 1)
    path = drop(rt, "op-a", "inv.xml", data)
    real_unlink = Path.unlink
    crashes = []

    def crash_once(self, *a, **k):
        if self == path and not crashes:
            crashes.append(self)
            raise RuntimeError("killed between record and unlink")
        return real_unlink(self, *a, **k)

    monkeypatch.setattr(Path, "unlink", crash_once)
    with pytest.raises(RuntimeError):  # the intake step itself dies (relais.runner.intake would log it)
        dropzone.scan(rt.intake, rt.settings.dropzones_dir, rt.settings.stable_seconds)
    monkeypatch.undo()
    assert path.exists() and crashes  # left in the inbox, already recorded
    [recorded] = _flows(rt)
    assert recorded.status is FlowStatus.IN_RECU
    capsys.readouterr()

    [flow] = run_once(rt)  # restart: the file is removed, its flow processed once

    assert not path.exists()
    assert flow.id == recorded.id and flow.status is FlowStatus.IN_INTEGRE and flow.duplicate_of is None
    assert [f.id for f in _flows(rt)] == [flow.id]
    assert "RLS-T11" not in {e.rule for e in rt.store.flow_errors(flow.id)}
    [event] = _events(capsys, "dropzone.already_recorded")
    assert event["flow_id"] == flow.id and event["partner"] == "op-a" and event["path"] == str(path)
    assert len(list(rt.settings.outbox_dir("op-a").glob("CR_*"))) == 1  # one integration report


def test_the_same_bytes_under_another_name_are_still_a_duplicate(rt, directory_file):
    [data] = _docs(directory_file, 1)
    drop(rt, "op-a", "inv.xml", data)
    [first] = run_once(rt)
    drop(rt, "op-a", "inv-again.xml", data)
    [second] = run_once(rt)
    assert second.duplicate_of == first.id
    assert [e.rule for e in rt.store.flow_errors(second.id)] == ["RLS-T11"]


def test_the_same_file_written_again_later_is_a_resend_answered_as_a_duplicate(rt, directory_file):
    import os
    import time

    [data] = _docs(directory_file, 1)
    drop(rt, "op-a", "inv.xml", data)
    [first] = run_once(rt)
    again = rt.settings.inbox("op-a") / "inv.xml"
    again.write_bytes(data)  # the partner sends the very same file again, after its first flow was recorded
    # written a second after the first was recorded
    wait_until(lambda: time.time() >= first.received_at.timestamp() + 1.05, 5, "a second to pass", every=0.1)
    os.utime(again)
    [second] = run_once(rt)
    assert second.id != first.id and second.duplicate_of == first.id
    assert [e.rule for e in rt.store.flow_errors(second.id)] == ["RLS-T11"]
