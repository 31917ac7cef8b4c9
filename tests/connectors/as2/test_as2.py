"""AS2 (RFC 4130) over real HTTP on 127.0.0.1: Relais -> Relais round trips for every combination of
sign / encrypt / compress and sync / async MDN, duplicates, negative MDNs, hostile clients, and MDNs
that survive a partner that is down and a restart."""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from archive import ArchivedObject
from connectors.as2 import certs, mdn, message, receiver, sender
from connectors.as2.server import ServerThread
from flows.directory import importer as directory
from flows.domain.model import Channel, FlowStatus
from flows.domain.outbox import Address
from flows.pipeline import dispatch
from flows.pipeline.intake import Arrival
from flows.store import As2Status
from relais import generate as gen
from relais.compose import Runtime
from relais.runner import run_once
from relais.settings import Settings
from tests.connectors.as2.test_as2_compression import ORDERS, build, rfc_mic_input
from tests.connectors.as2.test_as2_crypto import b64_digest
from tests.support.as2_keys import make_test_keypair
from tests.support.waiting import SERVER_START_SECONDS, wait_until

COMBOS = [(s, e, c) for s in (False, True) for e in (False, True) for c in (False, True)]
FAST = receiver.ServerLimits(header_timeout=1.5, body_timeout=2.0, mdn_poll_seconds=0.2, max_bytes=2_000_000)


def combo_name(sign: bool, encrypt: bool, compress: bool, mode: str) -> str:
    return f"s{int(sign)}e{int(encrypt)}c{int(compress)}-{mode}"


@dataclasses.dataclass
class Station:
    """One Relais: its runtime, its AS2 server, its key pair files."""

    rt: Runtime
    server: ServerThread | None
    cert: Path
    key: Path

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url


def _write_partner(folder: Path, pid: str, **fields: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f'id = "{pid}"', "[as2]"]
    for k, v in fields.items():
        if isinstance(v, bool):
            lines.append(f"{k} = {'true' if v else 'false'}")
        elif isinstance(v, int):
            lines.append(f"{k} = {v}")
        else:
            lines.append(f'{k} = "{v}"')
    (folder / f"{pid}.toml").write_text("\n".join(lines) + "\n")


def _runtime(home: Path, directory_file: Path) -> Runtime:
    rt = Runtime.open(Settings.from_env(home, stable_seconds=0.0, workers=0))
    directory.import_file(rt.store, directory_file)
    return rt


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("keys")
    out = {}
    for name, kwargs in (("a", {}), ("b", {}), ("stranger", {}), ("expired", {"days": -1})):
        kp = make_test_keypair(f"relais-{name}", **kwargs)
        cert, key = folder / f"{name}.pem", folder / f"{name}.key"
        certs.write_pem(kp, cert, key)
        out[name] = (cert, key)
    return out


@pytest.fixture(scope="module")
def recipients_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("dir") / "annuaire.json"
    recipients = gen.sample_directory()
    path.write_text(json.dumps(gen.directory_document(recipients, "test-1")))
    return path, recipients


@pytest.fixture(scope="module")
def pair(tmp_path_factory, keys, recipients_file) -> Iterator[tuple[Station, Station]]:
    """Relais A (sends return flows, takes async MDNs) and Relais B (receives): one partner per combination."""
    root = tmp_path_factory.mktemp("pair")
    a_cert, a_key = keys["a"]
    b_cert, b_key = keys["b"]
    port_a, port_b = _free_port(), _free_port()
    url_a, url_b = f"http://127.0.0.1:{port_a}/as2", f"http://127.0.0.1:{port_b}/as2"
    for sign, encrypt, compress in COMBOS:
        for mode in ("sync", "async"):
            name = combo_name(sign, encrypt, compress, mode)
            _write_partner(
                root / "b" / "partners",
                f"a-{name}",
                as2_id=f"A-{name}",
                our_as2_id=f"B-{name}",
                partner_cert=a_cert,
                our_cert=b_cert,
                our_key=b_key,
                require_signature=sign,
                require_encryption=encrypt,
                max_bytes=1_500_000,
            )
            _write_partner(
                root / "a" / "partners",
                f"b-{name}",
                as2_id=f"B-{name}",
                our_as2_id=f"A-{name}",
                partner_cert=b_cert,
                our_cert=a_cert,
                our_key=a_key,
                url=url_b,
                mdn=mode,
                async_mdn_url=url_a,
                sign=sign,
                encrypt="aes256-cbc" if encrypt else "none",
                compress=compress,
            )
    rt_a = _runtime(root / "a", recipients_file[0])
    rt_b = _runtime(root / "b", recipients_file[0])
    server_a = ServerThread(
        receiver.make_app(rt_a.intake, rt_a.partners, rt_a.outbound, limits=FAST), port=port_a
    ).start(SERVER_START_SECONDS)
    server_b = ServerThread(
        receiver.make_app(rt_b.intake, rt_b.partners, rt_b.outbound, limits=FAST), port=port_b
    ).start(SERVER_START_SECONDS)
    try:
        yield Station(rt_a, server_a, a_cert, a_key), Station(rt_b, server_b, b_cert, b_key)
    finally:
        server_a.stop()
        server_b.stop()
        rt_a.close()
        rt_b.close()


def _invoice(recipients, seed: int) -> tuple[str, bytes]:
    return gen.document("ubl", next(gen.plan(1, 2, recipients, seed=seed)))


def _queue_return(rt: Runtime, partner: str, name: str, data: bytes) -> str:
    """A flow of `partner` in A whose return flow (here: `data`) waits in the outbox for AS2."""
    obj = rt.archive.put_bytes(data)
    flow = rt.intake.ingest_archived(Arrival(partner, Channel.CLI, name), ArchivedObject(obj.sha256, obj.size)).flow
    address = rt.channels.return_address(partner, name)
    assert address == Address("as2", partner, name)
    rt.store.finish_flow(flow, address, obj.sha256)
    return flow.id


def _sent(rt: Runtime, flow_id: str):
    [row] = rt.store.as2_for_flow(flow_id)
    return row


# ---- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("sign,encrypt,compress", COMBOS)
def test_round_trip(pair, recipients_file, sign, encrypt, compress, mode):
    a, b = pair
    name = combo_name(sign, encrypt, compress, mode)
    seed = 1000 + COMBOS.index((sign, encrypt, compress)) * 2 + (mode == "async")
    inv_name, data = _invoice(recipients_file[1], seed)
    flow_a = _queue_return(a.rt, f"b-{name}", inv_name, data)
    report = dispatch.dispatch(a.rt.outbound, flow_id=flow_a)
    assert report.returned == 1 and report.failed == 0
    assert a.rt.store.pending_outbox(flow_id=flow_a) == []
    out = _sent(a.rt, flow_a)
    if mode == "sync":
        assert out.mdn_status == As2Status.MDN_OK, out.detail
    else:
        out = wait_until(lambda: (r := _sent(a.rt, flow_a)).mdn_status == As2Status.MDN_OK and r, 10, "the MDN")
    # B: the same message, archived as received, recorded as a flow of channel as2 with the same MIC
    inbound = b.rt.store.as2_find(f"a-{name}", out.message_id, "in")
    assert inbound is not None and inbound.mdn_status == "processed"
    assert (inbound.mic, inbound.mic_digest) == (out.mic, "sha-256")
    assert b.rt.archive.read(inbound.raw_sha256) == a.rt.archive.read(out.raw_sha256)
    flow_b = b.rt.store.get_flow(inbound.flow_id)
    assert flow_b.channel is Channel.AS2 and flow_b.original_name == inv_name
    assert b.rt.archive.read(flow_b.sha256) == data
    # the MDN: archived on both sides, signed, with the MIC computed at send time
    headers, body = mdn.http_parts(b.rt.archive.read(inbound.mdn_archive_sha256))
    ctype = dict(headers)["Content-Type"]
    parsed = mdn.parse(ctype, body, partner_certs=[certs.load_cert(b.cert)])
    assert parsed.signed and parsed.processed and parsed.mic == out.mic
    assert parsed.original_message_id == out.message_id
    # B's pipeline takes it like any drop zone's file
    [done] = [f for f in run_once(b.rt) if f.id == flow_b.id]
    assert done.status is FlowStatus.IN_INTEGRE


# ---- direct HTTP: a hand-made sender ------------------------------------------------------


def _party_b(pair, name: str = "s1e1c0-sync"):
    """A's view of B for combination `name`: AS2 ids, B's certificate, A's key pair."""
    a, _ = pair
    party = sender.load_party(a.rt.partners[f"b-{name}"])
    return party


def _post(
    url: str,
    party,
    payload: bytes,
    *,
    message_id: str | None = None,
    sign=True,
    encrypt=True,
    headers: dict[str, str] | None = None,
    wrapped: message.Wrapped | None = None,
    micalg: str = "sha-256",
) -> tuple[httpx.Response, message.Wrapped, str]:
    w = wrapped or message.wrap(
        payload,
        "inv.xml",
        content_type="application/xml",
        sign=party.own if sign else None,
        encrypt_for=party.cert if encrypt else None,
    )
    mid = message_id or f"<test-{time.time_ns()}@relais-test>"
    h = {
        "AS2-Version": "1.2",
        "AS2-From": party.cfg.our_as2_id,
        "AS2-To": party.cfg.as2_id,
        "Message-ID": mid,
        "Disposition-Notification-To": "test@example",
        "Disposition-Notification-Options": f"signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, {micalg}",
        **dict(w.headers),
    }
    h.update(headers or {})
    h = {k: v for k, v in h.items() if v is not None}
    return httpx.post(url, content=w.body, headers=h, timeout=10), w, mid


def _mdn_of(response: httpx.Response, pair) -> mdn.Mdn:
    _, b = pair
    return mdn.parse(
        response.headers["content-type"],
        response.content,
        partner_certs=[certs.load_cert(b.cert)],
        require_signature=False,
    )


def test_mic_spelling_is_the_senders(pair, recipients_file):
    party = _party_b(pair)
    _, data = _invoice(recipients_file[1], 7)
    for spelling in ("sha256", "sha-256", "sha1"):
        r, w, _ = _post(pair[1].url, party, data, micalg=spelling)
        parsed = _mdn_of(r, pair)
        assert parsed.processed and parsed.signed
        assert parsed.fields["received-content-mic"] == f"{parsed.mic}, {spelling}"
        if spelling != "sha1":
            assert parsed.mic == w.mic


# ---- compression (RFC 5402): the MIC each side computes is the RFC's ---------------------


@pytest.fixture(scope="module")
def openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.fail("the openssl command line is required (RFC 5402 interop tests)")
    return path


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_openssl_compressed_message_mdn_mic(pair, keys, recipients_file, openssl, tmp_path, order):
    """A partner following RFC 5402 (the message built by openssl): B's MDN returns the RFC's MIC."""
    sign, encrypt = "signed" in order, "encrypted" in order
    party = _party_b(pair, combo_name(sign, encrypt, True, "sync"))
    inv_name, data = _invoice(recipients_file[1], 2000 + sorted(ORDERS).index(order))
    entity = (
        b"Content-Type: application/xml\r\n"
        + f'Content-Disposition: attachment; filename="{inv_name}"\r\n\r\n'.encode()
        + data
    )
    ctype, body, mic_input = build(openssl, tmp_path, entity, order, signer=keys["a"], recipient=keys["b"][0])
    r, _, mid = _post(pair[1].url, party, b"", wrapped=message.Wrapped([("Content-Type", ctype)], body, "", ""))
    parsed = _mdn_of(r, pair)
    assert parsed.processed and parsed.signed, parsed.disposition
    assert parsed.fields["received-content-mic"] == f"{b64_digest(mic_input)}, sha-256"
    inbound = pair[1].rt.store.as2_find(f"a-{combo_name(sign, encrypt, True, 'sync')}", mid, "in")
    assert inbound.mic == b64_digest(mic_input)
    assert pair[1].rt.archive.read(pair[1].rt.store.get_flow(inbound.flow_id).sha256) == data


@pytest.mark.parametrize("sign,encrypt", [(False, False), (False, True), (True, False), (True, True)])
def test_compressed_return_flow_expects_the_rfc_mic(pair, keys, recipients_file, openssl, tmp_path, sign, encrypt):
    """What A expects back for a compressed return flow is the RFC's MIC, recomputed from the wire bytes."""
    a, b = pair
    name = combo_name(sign, encrypt, True, "sync")
    inv_name, data = _invoice(recipients_file[1], 2100 + 2 * sign + encrypt)
    flow_a = _queue_return(a.rt, f"b-{name}", inv_name, data)
    dispatch.dispatch(a.rt.outbound, flow_id=flow_a)
    out = _sent(a.rt, flow_a)
    assert out.mdn_status == As2Status.MDN_OK, out.detail
    wire = a.rt.archive.read(out.raw_sha256)
    if not sign and not encrypt:
        assert "smime-type=compressed-data" in out.headers["Content-Type"]
    assert out.mic == b64_digest(rfc_mic_input(openssl, tmp_path, out.headers["Content-Type"], wire, keys["b"]))
    assert b.rt.store.as2_find(f"a-{name}", out.message_id, "in").mic == out.mic


def test_duplicate_gets_the_original_mdn(pair, recipients_file):
    _, b = pair
    party = _party_b(pair)
    _, data = _invoice(recipients_file[1], 8)
    first, _, mid = _post(b.url, party, data)
    flows_before = len(b.rt.store.list_flows(limit=10_000))
    again, _, _ = _post(b.url, party, data, message_id=mid)  # re-encrypted, same Message-ID
    assert again.status_code == 200 and again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert len(b.rt.store.list_flows(limit=10_000)) == flows_before  # not processed twice


@pytest.mark.parametrize(
    "case,modifier",
    [
        ("tampered", "integrity-check-failed|authentication-failed|decryption-failed"),
        ("tampered-signed", "integrity-check-failed|authentication-failed"),
        ("unknown-signer", "authentication-failed"),
        ("expired-signer", "authentication-failed"),
        ("other-recipient", "decryption-failed"),
        ("wrong-as2-to", "authentication-failed"),
        ("unknown-as2-from", "authentication-failed"),
        ("empty", "unexpected-processing-error"),
        ("unsigned-when-required", "insufficient-message-security"),
    ],
)
def test_negative_mdns(pair, keys, recipients_file, case, modifier):
    _, b = pair
    party = _party_b(pair)
    _, data = _invoice(recipients_file[1], 9)
    kwargs: dict = {}
    if case == "tampered":
        w = message.wrap(data, "inv.xml", sign=party.own, encrypt_for=party.cert)
        body = bytearray(w.body)
        body[len(body) // 2] ^= 0x55
        kwargs["wrapped"] = dataclasses.replace(w, body=bytes(body))
    elif case == "tampered-signed":
        w = message.wrap(data, "inv.xml", sign=party.own)
        kwargs["wrapped"] = dataclasses.replace(w, body=w.body.replace(b"<cbc:ID>", b"<cbc:ID>X", 1))
    elif case in ("unknown-signer", "expired-signer"):
        cert, key = keys["stranger" if case == "unknown-signer" else "expired"]
        if case == "expired-signer":  # the partner's configured certificate has expired
            party = dataclasses.replace(party, own=certs.load_keypair(cert, key))
            b_side = b.rt.partners["a-s1e1c0-sync"]
            expired = receiver.make_app(
                b.rt.intake,
                {"x": dataclasses.replace(b_side, id="x", as2=dataclasses.replace(b_side.as2, partner_cert=cert))},
                b.rt.outbound,
                limits=FAST,
            )
            srv = ServerThread(expired).start(SERVER_START_SECONDS)
            try:
                r, _, _ = _post(srv.url, party, data)
            finally:
                srv.stop()
            assert modifier in _mdn_of(r, pair).disposition
            return
        party = dataclasses.replace(party, own=certs.load_keypair(cert, key))
    elif case == "other-recipient":
        kwargs["wrapped"] = message.wrap(
            data, "inv.xml", sign=party.own, encrypt_for=certs.load_cert(keys["stranger"][0])
        )
    elif case == "wrong-as2-to":
        kwargs["headers"] = {"AS2-To": "SOMEONE-ELSE"}
    elif case == "unknown-as2-from":
        kwargs["headers"] = {"AS2-From": "NOBODY"}
    elif case == "empty":
        kwargs["wrapped"] = message.Wrapped([("Content-Type", "application/pkcs7-mime")], b"", "", "sha-256")
    elif case == "unsigned-when-required":
        kwargs["sign"] = False
    flows_before = len(b.rt.store.list_flows(limit=10_000))
    r, _, mid = _post(b.url, party, data, **kwargs)
    assert r.status_code == 200
    parsed = _mdn_of(r, pair)
    assert parsed.original_message_id == mid
    assert parsed.disposition.startswith("processed/error: ")
    assert parsed.disposition.split(": ", 1)[1] in modifier.split("|"), parsed.disposition
    assert parsed.signed is (case != "unknown-as2-from")  # nobody to sign for when the sender is unknown
    assert len(b.rt.store.list_flows(limit=10_000)) == flows_before  # nothing routed
    partner = None if case == "unknown-as2-from" else "a-s1e1c0-sync"
    if partner:  # but the bytes are archived
        row = b.rt.store.as2_find(partner, mid, "in")
        assert row.flow_id is None and row.mdn_status == parsed.disposition
        assert b.rt.archive.exists(row.raw_sha256)
    # and the server still serves
    ok, _, _ = _post(b.url, _party_b(pair), data)
    assert _mdn_of(ok, pair).processed


def test_http_errors(pair, recipients_file):
    _, b = pair
    party = _party_b(pair)
    r = httpx.post(b.url, content=b"x", headers={"AS2-From": party.cfg.our_as2_id, "Content-Type": "text/plain"})
    assert r.status_code == 400 and "AS2-To" in r.text and "Message-ID" in r.text
    big = b"<x>" + b"a" * 1_600_000 + b"</x>"  # over the partner's max_bytes (1.5 MB)
    r, _, mid = _post(b.url, party, big, sign=False, encrypt=False)
    assert r.status_code == 413
    assert b.rt.store.as2_find(party.partner.id.replace("b-", "a-"), mid, "in") is None
    r = httpx.get(b.url)
    assert r.status_code == 200
    _, data = _invoice(recipients_file[1], 10)
    assert _mdn_of(_post(b.url, party, data)[0], pair).processed


def test_slowloris_does_not_block_others(pair, recipients_file):
    """Clients sending their headers a byte at a time are dropped after the header timeout, and
    other clients are served meanwhile."""
    _, b = pair
    party = _party_b(pair)
    _, data = _invoice(recipients_file[1], 11)
    stop = threading.Event()
    connected: list[int] = []
    closed: list[int] = []  # bytes sent before the server cut the connection
    headers = b"POST /as2 HTTP/1.1\r\nHost: x\r\nAS2-From: " + b"x" * 1000  # 52 s at a byte every 0.05 s

    def slow() -> None:
        s = socket.create_connection(("127.0.0.1", b.server.port))
        connected.append(1)
        sent = 0
        try:
            for ch in headers:
                if stop.is_set():
                    return
                s.send(bytes([ch]))
                sent += 1
                time.sleep(0.05)  # the slow client's pace, not a synchronisation
        except OSError:
            closed.append(sent)
        finally:
            s.close()

    threads = [threading.Thread(target=slow) for _ in range(20)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(connected) == len(threads), SERVER_START_SECONDS, "the slow clients to connect")
        r, _, _ = _post(b.url, party, data)  # served while they trickle (a blocked server: httpx's timeout)
        assert _mdn_of(r, pair).processed
        # every slow client is cut by the header timeout, long before its headers are complete
        wait_until(lambda: len(closed) == len(threads), 30, "the server to cut every slow client")
    finally:
        stop.set()
        for t in threads:
            t.join()


def test_slow_body_is_cut(pair):
    _, b = pair
    s = socket.create_connection(("127.0.0.1", b.server.port))
    party = _party_b(pair)
    s.sendall(
        f"POST /as2 HTTP/1.1\r\nHost: x\r\nAS2-From: {party.cfg.our_as2_id}\r\nAS2-To: {party.cfg.as2_id}\r\n"
        f"Message-ID: <slow@x>\r\nContent-Type: application/xml\r\nContent-Length: 100\r\n\r\nabc".encode()
    )
    s.settimeout(10)
    answer = s.recv(1000)
    s.close()
    assert answer.startswith(b"HTTP/1.1 408")


# ---- async MDNs: partner down, restart ----------------------------------------------------


def test_async_mdn_target_down_then_up_and_restart(tmp_path, keys, recipients_file):
    """B receives with an async MDN requested while A's endpoint is down: the MDN waits in the outbox.
    B restarts (new runtime, new server) before A comes back: the MDN is delivered afterwards."""
    a_cert, a_key = keys["a"]
    b_cert, b_key = keys["b"]
    port_a = _free_port()
    url_a = f"http://127.0.0.1:{port_a}/as2"
    _write_partner(
        tmp_path / "b" / "partners",
        "op-a",
        as2_id="A",
        our_as2_id="B",
        partner_cert=a_cert,
        our_cert=b_cert,
        our_key=b_key,
    )
    rt_b = _runtime(tmp_path / "b", recipients_file[0])
    server_b = ServerThread(receiver.make_app(rt_b.intake, rt_b.partners, rt_b.outbound, limits=FAST)).start(
        SERVER_START_SECONDS
    )
    _write_partner(
        tmp_path / "a" / "partners",
        "op-b",
        as2_id="B",
        our_as2_id="A",
        partner_cert=b_cert,
        our_cert=a_cert,
        our_key=a_key,
        url=server_b.url,
        mdn="async",
        async_mdn_url=url_a,
    )
    rt_a = _runtime(tmp_path / "a", recipients_file[0])
    name, data = _invoice(recipients_file[1], 12)
    flow_a = _queue_return(rt_a, "op-b", name, data)
    try:
        assert dispatch.dispatch(rt_a.outbound).returned == 1
        assert _sent(rt_a, flow_a).mdn_status == As2Status.SENT
        [mdn_row] = wait_until(
            lambda: [i for i in rt_b.store.pending_outbox(kind="as2-mdn") if i.attempts >= 1],
            10,
            "a first attempt to send the asynchronous MDN",
        )
        assert mdn_row.destination == url_a and mdn_row.flow_id is None and "ConnectError" in (mdn_row.last_error or "")
    finally:
        server_b.stop()
        rt_b.close()
    # restart of B: a new runtime on the same home; A comes up
    rt_b = _runtime_again(tmp_path / "b")
    server_a = ServerThread(
        receiver.make_app(rt_a.intake, rt_a.partners, rt_a.outbound, limits=FAST), port=port_a
    ).start(SERVER_START_SECONDS)
    server_b = ServerThread(receiver.make_app(rt_b.intake, rt_b.partners, rt_b.outbound, limits=FAST)).start(
        SERVER_START_SECONDS
    )
    try:
        with rt_b.store.engine.begin() as conn:  # skip the 30 s backoff
            import sqlalchemy as sa

            from flows.store import tables

            conn.execute(sa.update(tables.outbox).values(next_attempt_at=None))
        server_b.app._mdn_wakeup.set()
        row = wait_until(lambda: (r := _sent(rt_a, flow_a)).mdn_status == As2Status.MDN_OK and r, 10, "the MDN")
        assert row.mdn_archive_sha256
        wait_until(lambda: rt_b.store.pending_outbox(kind="as2-mdn") == [], 10, "the MDN marked sent once A answered")
    finally:
        server_a.stop()
        server_b.stop()
        rt_a.close()
        rt_b.close()


def _runtime_again(home: Path) -> Runtime:
    return Runtime.open(Settings.from_env(home, stable_seconds=0.0, workers=0))


def test_sender_retries_when_partner_is_down(tmp_path, keys, recipients_file):
    """A transport failure leaves the return flow pending with backoff; a later dispatch sends it with the
    same Message-ID."""
    a_cert, a_key = keys["a"]
    b_cert, b_key = keys["b"]
    port_b = _free_port()
    _write_partner(
        tmp_path / "a" / "partners",
        "op-b",
        as2_id="B",
        our_as2_id="A",
        partner_cert=b_cert,
        our_cert=a_cert,
        our_key=a_key,
        url=f"http://127.0.0.1:{port_b}/as2",
    )
    _write_partner(
        tmp_path / "b" / "partners",
        "op-a",
        as2_id="A",
        our_as2_id="B",
        partner_cert=a_cert,
        our_cert=b_cert,
        our_key=b_key,
    )
    rt_a = _runtime(tmp_path / "a", recipients_file[0])
    rt_b = _runtime(tmp_path / "b", recipients_file[0])
    name, data = _invoice(recipients_file[1], 13)
    flow_a = _queue_return(rt_a, "op-b", name, data)
    try:
        report = dispatch.dispatch(rt_a.outbound)
        assert report.failed == 1
        [item] = rt_a.store.pending_outbox()
        assert item.next_attempt_at is not None and item.attempts == 1
        first = _sent(rt_a, flow_a)
        assert first.mdn_status == As2Status.PENDING
        server_b = ServerThread(
            receiver.make_app(rt_b.intake, rt_b.partners, rt_b.outbound, limits=FAST), port=port_b
        ).start(SERVER_START_SECONDS)
        try:
            assert dispatch.dispatch(rt_a.outbound).returned == 0  # still waiting for its retry time
            with rt_a.store.engine.begin() as conn:
                import sqlalchemy as sa

                from flows.store import tables

                conn.execute(sa.update(tables.outbox).values(next_attempt_at=None))
            assert dispatch.dispatch(rt_a.outbound).returned == 1
        finally:
            server_b.stop()
        again = _sent(rt_a, flow_a)
        assert again.message_id == first.message_id and again.mdn_status == As2Status.MDN_OK
    finally:
        rt_a.close()
        rt_b.close()


def test_negative_mdn_is_final_and_shown(tmp_path, keys, recipients_file, capsys):
    """A negative MDN is an answer, not a transport failure: mdn-error, not retried; `relais flows ID`
    shows the AS2 message and its MDN status on both sides."""
    from relais import report

    a_cert, a_key = keys["a"]
    b_cert, b_key = keys["b"]
    _write_partner(
        tmp_path / "b" / "partners",
        "op-a",
        as2_id="A",
        our_as2_id="B",
        partner_cert=a_cert,
        our_cert=b_cert,
        our_key=b_key,
        require_signature=True,
    )
    rt_b = _runtime(tmp_path / "b", recipients_file[0])
    server_b = ServerThread(receiver.make_app(rt_b.intake, rt_b.partners, rt_b.outbound, limits=FAST)).start(
        SERVER_START_SECONDS
    )
    _write_partner(
        tmp_path / "a" / "partners",
        "op-b",
        as2_id="B",
        our_as2_id="A",
        partner_cert=b_cert,
        our_cert=a_cert,
        our_key=a_key,
        url=server_b.url,
        sign=False,
    )
    rt_a = _runtime(tmp_path / "a", recipients_file[0])
    try:
        name, data = _invoice(recipients_file[1], 14)
        flow_a = _queue_return(rt_a, "op-b", name, data)
        assert dispatch.dispatch(rt_a.outbound).returned == 1
        assert rt_a.store.pending_outbox() == []
        row = _sent(rt_a, flow_a)
        assert row.mdn_status == As2Status.MDN_ERROR
        assert "insufficient-message-security" in row.detail
        report.print_flow(rt_a.store, rt_a.store.get_flow(flow_a))
        out = capsys.readouterr().out
        assert "AS2 envoyé à B" in out and "mdn-error" in out and row.message_id in out
        report.print_flow(rt_a.store, rt_a.store.get_flow(flow_a), as_json=True)
        shown = json.loads(capsys.readouterr().out)
        assert shown["as2"][0]["mdn_status"] == "mdn-error" and shown["as2"][0]["mic"] == row.mic
        # a well-signed message goes through; B's flow shows where it came from
        good, _, mid = _post(server_b.url, sender.load_party(rt_a.partners["op-b"]), data)
        assert _mdn_of(good, (None, Station(rt_b, None, b_cert, b_key))).processed
        inbound = rt_b.store.as2_find("op-a", mid, "in")
        report.print_flow(rt_b.store, rt_b.store.get_flow(inbound.flow_id))
        assert f"AS2 reçu de A: {mid}" in capsys.readouterr().out
    finally:
        server_b.stop()
        rt_a.close()
        rt_b.close()


def test_resumes_a_message_received_but_never_answered(pair, recipients_file):
    """A crash after the archive and the as2_messages row, before the MDN: the partner's resend (same
    Message-ID) is processed and answered, once."""
    from flows.store import As2Message

    _, b = pair
    party = _party_b(pair)
    _, data = _invoice(recipients_file[1], 15)
    mid = f"<crashed-{time.time_ns()}@relais-test>"
    b.rt.store.as2_record(
        As2Message(
            direction="in",
            message_id=mid,
            partner="a-s1e1c0-sync",
            as2_from=party.cfg.our_as2_id,
            as2_to=party.cfg.as2_id,
            mdn_status=As2Status.RECEIVED,
        )
    )
    r, w, _ = _post(b.url, party, data, message_id=mid)
    parsed = _mdn_of(r, pair)
    assert parsed.processed and parsed.mic == w.mic
    row = b.rt.store.as2_find("a-s1e1c0-sync", mid, "in")
    assert row.flow_id and row.mdn_status == "processed"
    again, _, _ = _post(b.url, party, data, message_id=mid)
    assert again.content == r.content


def test_async_mdn_for_unknown_message_is_refused(pair):
    a, _ = pair
    party = _party_b(pair)  # A's view: B's ids; post to A's endpoint as if B were answering
    built = mdn.build(
        our_id=party.cfg.as2_id,
        partner_id=party.cfg.our_as2_id,
        original_message_id="<never-sent@x>",
        mic="x",
        mic_label="sha-256",
    )
    headers, body = mdn.http_parts(built.data)
    r = httpx.post(a.url, content=body, headers=headers)
    assert r.status_code == 404


def test_partners_command_flags_expiring_certificates(tmp_path, keys):
    from click.testing import CliRunner

    from relais.cli.as2 import as2
    from relais.cli.partners import partners

    soon = make_test_keypair("soon", days=10)
    certs.write_pem(soon, tmp_path / "soon.pem", tmp_path / "soon.key")
    a_cert, a_key = keys["a"]
    _write_partner(
        tmp_path / "partners",
        "op-s",
        as2_id="S",
        our_as2_id="R",
        partner_cert=tmp_path / "soon.pem",
        our_cert=a_cert,
        our_key=a_key,
        url="https://as2.example/as2",
    )
    (tmp_path / "partners" / "op-f.toml").write_text('name = "Folder only"\n')
    result = CliRunner().invoke(partners, [], obj={"home": tmp_path})
    assert result.exit_code == 0, result.output
    assert "op-s" in result.output and "as2 S" in result.output and "within 30 days" in result.output
    assert "op-f (Folder only): folder" in result.output
    result = CliRunner().invoke(as2, ["partners", "--json"], obj={"home": tmp_path})
    [row] = json.loads(result.output)
    assert row["certificates"]["partner"]["attention"] is True
    assert row["certificates"]["ours"]["attention"] is False


def test_store_as2_messages(store_url):
    """as2_messages on SQLite and PostgreSQL: one row per (partner, Message-ID, direction), MDN outbox rows
    without a flow, conditional status updates."""
    from flows.store import As2Message, Store

    url, schema = store_url
    store = Store.open(url, schema=schema)
    try:
        msg = As2Message(
            direction="in",
            message_id="<m1@x>",
            partner="op-a",
            as2_from="A",
            as2_to="R",
            mdn_status=As2Status.RECEIVED,
            headers={"as2-from": "A"},
        )
        first, created = store.as2_record(msg)
        assert created and first.id
        again, created = store.as2_record(dataclasses.replace(msg, id=None, raw_sha256="0" * 64))
        assert not created and again.id == first.id and again.headers == {"as2-from": "A"}
        out, created = store.as2_record(dataclasses.replace(msg, id=None, direction="out"))
        assert created and out.id != first.id
        # unknown senders: no partner, never "duplicates" of each other
        for _ in range(2):
            assert store.as2_record(dataclasses.replace(msg, id=None, partner=None))[1]
        first.mdn_status, first.mdn_archive_sha256 = "processed", "a" * 64
        assert store.as2_update(
            first,
            mdn_outbox={
                "key": "as2-mdn:op-a:1:x",
                "address": Address("as2", "op-a", "http://h/as2"),
                "archive_sha256": "a" * 64,
            },
        )
        [item] = store.pending_outbox(kind="as2-mdn")
        assert item.flow_id is None and item.address == Address("as2", "op-a", "http://h/as2")
        assert not store.as2_update(first, only_if_status=[As2Status.PENDING])
        assert store.as2_find("op-a", "<m1@x>", "in").mdn_status == "processed"
        assert [m.direction for m in store.as2_list(partner="op-a")] == ["out", "in"]
    finally:
        store.close()


def test_unsigned_receipt_and_no_receipt(pair, recipients_file):
    """No signed receipt asked: an unsigned MDN, still with the MIC; no MDN asked: a plain HTTP 200."""
    _, b = pair
    party = _party_b(pair)
    _, data = _invoice(recipients_file[1], 16)
    r, w, mid = _post(b.url, party, data, headers={"Disposition-Notification-Options": None})
    assert r.headers["content-type"].startswith("multipart/report")
    parsed = _mdn_of(r, pair)
    assert parsed.processed and not parsed.signed and parsed.mic == w.mic
    r, _, mid = _post(
        b.url, party, data, headers={"Disposition-Notification-To": None, "Disposition-Notification-Options": None}
    )
    assert r.status_code == 200 and r.text.strip() == "processed"
    row = b.rt.store.as2_find("a-s1e1c0-sync", mid, "in")
    assert row.mdn_mode is None and row.flow_id
