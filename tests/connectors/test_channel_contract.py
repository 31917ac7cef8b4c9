"""The contract every outbound channel keeps, run against folder, SFTP and AS2 with real destinations.

As tests/archive/test_archive.py does for archives: the same behaviours, parametrised over the channels
registered by relais/compose.py, through the dispatcher (`flows.pipeline.dispatch`) and each channel's
`Sender` (`flows.pipeline.channels`):

- a return flow is sent once and only once: dispatching again sends nothing more;
- it arrives under the name and with the bytes it was queued with;
- a channel that says `ordered` delivers a partner's rows in queue order, the first failure holding back
  those behind it; an unordered one tries each row on its own;
- an unreachable destination is a failure, recorded and retried later (backoff), never reported as sent;
  once the destination is back, the row goes out;
- a resend of a row already sent (a crash between sending and marking it sent) leaves one copy, the same.

Destinations: a local folder; a real SSH server (tests/support/sftp_partner.py); a second Relais's AS2
endpoint (uvicorn on 127.0.0.1) receiving signed and encrypted messages and answering signed MDNs.
"""

from __future__ import annotations

import dataclasses
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncssh
import pytest
import sqlalchemy as sa

from archive import ArchivedObject
from connectors.as2 import certs, receiver
from connectors.as2.server import ServerThread
from flows.directory import importer as directory
from flows.domain.model import Channel
from flows.domain.outbox import OutboxStatus
from flows.pipeline import dispatch
from flows.pipeline.intake import Arrival
from flows.store import As2Status, tables
from relais import generate as gen
from relais.compose import Runtime
from relais.settings import Settings
from tests.support.as2_keys import make_test_keypair
from tests.support.sftp_partner import PartnerServer

PARTNER = "op-c"
FAST = receiver.ServerLimits(header_timeout=1.5, body_timeout=2.0, mdn_poll_seconds=0.2, max_bytes=2_000_000)


@dataclasses.dataclass
class Destination:
    """One channel's far end, as the contract sees it."""

    channel: str
    #: The files (or, for AS2, the flows) there under their final name, in order of first arrival.
    received: Callable[[], list[tuple[str, bytes]]]
    down: Callable[[], None]  # the destination becomes unreachable
    up: Callable[[], None]  # ... and comes back


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _folder(rt: Runtime, tmp_path: Path) -> Iterator[Destination]:
    out = rt.settings.outbox_dir(PARTNER)

    def received() -> list[tuple[str, bytes]]:  # an unordered channel: no arrival order to give
        if not out.is_dir():
            return []
        return [(p.name, p.read_bytes()) for p in sorted(out.iterdir())]

    def down() -> None:  # a file where the partner's out/ folder goes: nothing can be written there
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"")

    def up() -> None:
        out.unlink()

    yield Destination("folder", received, down, up)


def _sftp(rt: Runtime, tmp_path: Path) -> Iterator[Destination]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = tmp_path / "relais_key"
    key_path.write_bytes(key.export_private_key("openssh"))
    key_path.chmod(0o600)
    public = " ".join(key.export_public_key("openssh").decode().split()[:2])
    remote = tmp_path / "partner-server"
    (remote / "inbound").mkdir(parents=True)
    server = PartnerServer(remote, "relais", public, tmp_path / "server_host_key").start()
    rt.settings.partners_dir.mkdir(parents=True, exist_ok=True)
    (rt.settings.partners_dir / f"{PARTNER}.toml").write_text(
        f'id = "{PARTNER}"\n[sftp]\nhost = "127.0.0.1"\nport = {server.port}\nuser = "relais"\n'
        f'private_key = "{key_path}"\nhost_key = "{server.host_key_line}"\n'
        'pickup_dir = "outbound"\nreturn_dir = "inbound"\n'
    )
    rt.__dict__.pop("partners", None)

    def received() -> list[tuple[str, bytes]]:
        arrived = dict.fromkeys(p for p in server.renamed if p.startswith("inbound/"))  # first arrival kept
        return [(Path(p).name, (remote / p).read_bytes()) for p in arrived if (remote / p).is_file()]

    try:
        yield Destination("sftp", received, server.stop, server.start)
    finally:
        server.stop()


def _as2_partner(folder: Path, pid: str, **fields: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f'id = "{pid}"', "[as2]"]
    for k, v in fields.items():
        lines.append(f"{k} = {str(v).lower()}" if isinstance(v, bool) else f'{k} = "{v}"')
    (folder / f"{pid}.toml").write_text("\n".join(lines) + "\n")


def _as2(rt: Runtime, tmp_path: Path, directory_file: Path) -> Iterator[Destination]:
    """Relais (A, `rt`) sends signed and encrypted messages to a second Relais (B), which answers signed
    synchronous MDNs; what B took as flows of partner ``op-a`` is what arrived."""
    pem: dict[str, tuple[Path, Path]] = {}
    for name in ("a", "b"):
        pem[name] = (tmp_path / f"{name}.pem", tmp_path / f"{name}.key")
        certs.write_pem(make_test_keypair(f"relais-{name}"), *pem[name])
    port = _free_port()
    _as2_partner(
        rt.settings.partners_dir,
        PARTNER,
        as2_id="B",
        our_as2_id="A",
        partner_cert=pem["b"][0],
        our_cert=pem["a"][0],
        our_key=pem["a"][1],
        url=f"http://127.0.0.1:{port}/as2",
        mdn="sync",
        sign=True,
        encrypt="aes256-cbc",
    )
    rt.__dict__.pop("partners", None)
    _as2_partner(
        tmp_path / "b" / "partners",
        "op-a",
        as2_id="A",
        our_as2_id="B",
        partner_cert=pem["a"][0],
        our_cert=pem["b"][0],
        our_key=pem["b"][1],
        require_signature=True,
        require_encryption=True,
    )
    b = Runtime.open(Settings.from_env(tmp_path / "b", stable_seconds=0.0, workers=0))
    directory.import_file(b.store, directory_file)
    servers: list[ServerThread] = []

    def up() -> None:
        servers.append(ServerThread(receiver.make_app(b.intake, b.partners, b.outbound, limits=FAST), port=port))
        servers[-1].start()

    def down() -> None:
        servers.pop().stop()

    def received() -> list[tuple[str, bytes]]:
        flows = sorted(b.store.list_flows(partner="op-a", limit=10_000), key=lambda f: f.id)
        return [(f.original_name, b.archive.read(f.sha256)) for f in flows]

    up()
    try:
        yield Destination("as2", received, down, up)
    finally:
        while servers:
            down()
        b.close()


@pytest.fixture(params=["folder", "sftp", "as2"])
def destination(request, rt, tmp_path, directory_file) -> Iterator[Destination]:
    if request.param == "folder":
        yield from _folder(rt, tmp_path)
    elif request.param == "sftp":
        yield from _sftp(rt, tmp_path)
    else:
        yield from _as2(rt, tmp_path, directory_file[0])


def _queue(rt: Runtime, name: str, data: bytes) -> str:
    """A closed flow of the partner whose return flow (`data`, named `name`) waits in the outbox."""
    obj = rt.archive.put_bytes(data)
    flow = rt.intake.ingest_archived(
        Arrival(PARTNER, Channel.CLI, f"in-{name}"), ArchivedObject(obj.sha256, obj.size)
    ).flow
    address = rt.channels.return_address(PARTNER, name)
    rt.store.finish_flow(flow, address, obj.sha256)
    return flow.id


def _returns(directory_file, n: int, seed: int) -> list[tuple[str, bytes]]:
    recipients = directory_file[1]
    docs = [gen.document("ubl", next(gen.plan(1, 2, recipients, seed=seed + i)))[1] for i in range(n)]
    return [(f"CR_contract_{seed}_{i}.xml", data) for i, data in enumerate(docs)]


def _due_now(rt: Runtime) -> None:
    """Time passes: every waiting row is due for its retry."""
    with rt.store.engine.begin() as conn:
        conn.execute(sa.update(tables.outbox).values(next_attempt_at=None))


def test_the_return_flow_goes_by_the_channel_under_test(rt, destination, directory_file):
    [(name, data)] = _returns(directory_file, 1, 500)
    _queue(rt, name, data)
    [item] = rt.store.pending_outbox()
    assert item.channel == destination.channel and item.partner == PARTNER
    assert rt.channels[destination.channel].name == destination.channel


def test_sent_once_and_only_once_with_its_name_and_bytes(rt, destination, directory_file):
    [(name, data)] = _returns(directory_file, 1, 510)
    flow_id = _queue(rt, name, data)
    report = dispatch.dispatch(rt.outbound)
    assert (report.returned, report.failed) == (1, 0)
    assert destination.received() == [(name, data)]
    assert rt.store.pending_outbox() == []
    _due_now(rt)
    again = dispatch.dispatch(rt.outbound)
    assert (again.returned, again.failed) == (0, 0)
    assert dispatch.dispatch(rt.outbound, flow_id=flow_id).returned == 0
    assert destination.received() == [(name, data)]
    if destination.channel == "as2":  # the receipt came back: signed, positive
        [message] = rt.store.as2_for_flow(flow_id)
        assert message.mdn_status == As2Status.MDN_OK, message.detail


def test_unreachable_destination_is_a_retried_failure_never_a_success(rt, destination, directory_file):
    [(name, data)] = _returns(directory_file, 1, 520)
    _queue(rt, name, data)
    destination.down()
    report = dispatch.dispatch(rt.outbound)
    assert (report.returned, report.failed) == (0, 1)
    [item] = rt.store.pending_outbox()
    assert item.status == OutboxStatus.PENDING and item.attempts == 1 and item.last_error
    assert item.next_attempt_at is not None  # backoff: not tried again at once
    assert dispatch.dispatch(rt.outbound).failed == 0  # not due yet: the destination is not hammered
    destination.up()
    assert destination.received() == []
    assert dispatch.dispatch(rt.outbound).returned == 0  # still waiting for its retry time
    _due_now(rt)
    assert dispatch.dispatch(rt.outbound).returned == 1
    assert destination.received() == [(name, data)]
    assert rt.store.pending_outbox() == []


def test_ordered_channel_keeps_the_queue_order(rt, destination, directory_file):
    """Three return flows queued while the destination is down: an ordered channel tries the first only
    (the others wait behind it) and later sends all three in queue order; an unordered one tries each."""
    rows = _returns(directory_file, 3, 530)
    for name, data in rows:
        _queue(rt, name, data)
    ordered = rt.channels[destination.channel].ordered
    destination.down()
    report = dispatch.dispatch(rt.outbound)
    assert report.returned == 0 and report.failed == (1 if ordered else 3)
    attempts = [i.attempts for i in rt.store.pending_outbox()]
    assert attempts == ([1, 0, 0] if ordered else [1, 1, 1])
    destination.up()
    _due_now(rt)
    assert dispatch.dispatch(rt.outbound).returned == 3
    arrived = destination.received()
    if ordered:
        assert arrived == rows
    else:
        assert sorted(arrived) == sorted(rows)


def test_a_resend_after_a_crash_leaves_one_copy(rt, destination, directory_file):
    """Sent, but the dispatcher died before marking the row sent: the row goes again, and the destination
    still holds one copy (same name, same bytes), never a second file or flow."""
    [(name, data)] = _returns(directory_file, 1, 540)
    _queue(rt, name, data)
    assert dispatch.dispatch(rt.outbound).returned == 1
    with rt.store.engine.begin() as conn:  # the crash: the send happened, its record did not
        conn.execute(sa.update(tables.outbox).values(status=OutboxStatus.PENDING, sent_at=None))
    assert dispatch.dispatch(rt.outbound).returned == 1
    assert destination.received() == [(name, data)]
    assert rt.store.pending_outbox() == []
