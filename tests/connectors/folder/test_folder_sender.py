"""The folder channel's sender makes a queue's files durable together: each row written under a temporary name
when sent, all synced once and renamed into place when the sender exits; the dispatcher marks the rows sent only
after that exit (`flows.pipeline.dispatch._send_together`). Nothing half-written is ever visible, and a failed
publication leaves every row of it pending, sent again later, once."""

from __future__ import annotations

import datetime as dt
import stat

from connectors.folder.channel import FolderSender
from flows.domain.outbox import OutboxItem, OutboxKind, OutboxStatus
from flows.io import atomic
from flows.pipeline import dispatch
from relais import generate as gen
from tests.support.helpers import drop, run


def _item(n: int, destination) -> OutboxItem:
    return OutboxItem(
        id=n,
        key=f"k{n}",
        kind=OutboxKind.RETURN,
        flow_id=f"CPP{n:010d}",
        invoice_id=None,
        position=None,
        channel="folder",
        partner="op-a",
        destination=str(destination),
        archive_sha256=None,
        status=OutboxStatus.PENDING,
        attempts=0,
        last_error=None,
    )


def test_files_appear_only_when_the_sender_exits_all_of_them_with_the_partners_mode(tmp_path):
    out = tmp_path / "out"
    with FolderSender(0o644) as sender:
        for n in range(3):
            sender.send(_item(n, out / f"CR_{n}.xml"), b"<cr n='%d'/>" % n)
        assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".relais")) == []
        assert len(list(out.glob(".relais*"))) == 3  # written, not yet visible
    assert sorted(p.name for p in out.iterdir()) == ["CR_0.xml", "CR_1.xml", "CR_2.xml"]
    assert (out / "CR_1.xml").read_bytes() == b"<cr n='1'/>"
    assert stat.S_IMODE((out / "CR_2.xml").stat().st_mode) == 0o644


def test_an_error_while_sending_leaves_nothing_behind(tmp_path):
    out = tmp_path / "out"
    try:
        with FolderSender() as sender:
            sender.send(_item(1, out / "CR_1.xml"), b"<cr/>")
            raise RuntimeError("the dispatcher stopped")
    except RuntimeError:
        pass
    assert list(out.iterdir()) == []


def _returns(rt):
    return sorted(p.name for p in rt.settings.outbox_dir("op-a").glob("CR_*.xml"))


def test_return_flows_of_a_dispatch_go_out_together_and_a_failed_publication_is_retried(
    rt, directory_file, monkeypatch
):
    _, recipients = directory_file
    for spec in gen.plan(5, 1, recipients, seed=8):
        drop(rt, "op-a", *gen.document("ubl", spec))
    real = atomic.publish
    published: list[list[str]] = []

    def broken(staged):  # the partner's out/ folder is full; the recipients' folders are fine
        names = [t.name for _, t in staged]
        published.append(names)
        if not any(n.startswith("CR_") for n in names):
            return real(staged)
        for tmp, _ in staged:  # as `publish` does on a failure
            tmp.unlink()
        raise OSError("No space left on device")

    monkeypatch.setattr(atomic, "publish", broken)
    flows = run(rt)
    assert len(flows) == 5
    assert _returns(rt) == []  # none visible: none durable
    assert not list(rt.settings.outbox_dir("op-a").glob(".relais*"))
    pending = [o for o in rt.store.pending_outbox() if o.kind is OutboxKind.RETURN]
    assert len(pending) == 5 and all(o.attempts == 1 and "No space left" in (o.last_error or "") for o in pending)
    assert max(sum(n.startswith("CR_") for n in names) for names in published) > 1  # a queue's files together

    monkeypatch.setattr(atomic, "publish", real)
    for o in rt.store.pending_outbox():  # their retry time has come
        rt.store.mark_failed(o, "test", dt.timedelta(seconds=-1))
    report = dispatch.dispatch(rt.outbound)
    assert report.returned == 5 and report.failed == 0
    assert len(_returns(rt)) == 5 and all(any(f.id in n for n in _returns(rt)) for f in flows)
    assert not [o for o in rt.store.pending_outbox() if o.kind is OutboxKind.RETURN]
    assert dispatch.dispatch(rt.outbound).returned == 0  # sent once
