"""Hosted SFTP drop zones (`relais sftp serve`): a real asyncssh server on 127.0.0.1, real clients.

paramiko is the client of most tests (it is what partners' tools are built on);
asyncssh's client is used where paramiko cannot say what we need (exec requests).
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import time
from pathlib import Path

import asyncssh
import paramiko
import pytest

from connectors import partners as partners_config
from connectors.sftp.hosted.server import UPLOAD_PREFIX, Account, ServerThread, accounts_for_dropzones, host_key
from flows.domain.model import FlowStatus
from flows.returns import report as returnflow
from relais import generate as gen
from relais.runner import run_once
from tests.support.sftp_plain import plain
from tests.support.waiting import server_lines, wait_until

# ---- fixtures ----------------------------------------------------------------------------


def _keypair() -> tuple[paramiko.PKey, str, asyncssh.SSHKey]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    pkey = paramiko.Ed25519Key.from_private_key(io.StringIO(key.export_private_key("openssh").decode()))
    return pkey, key.export_public_key("openssh").decode().strip(), key


@pytest.fixture(scope="module")
def keys():
    """Client keys: one per partner and a stranger's."""
    return {name: _keypair() for name in ("op-a", "op-b", "stranger")}


@pytest.fixture
def zones(tmp_path, keys):
    """Two hosted partners' accounts under tmp_path/dropzones."""
    root = tmp_path / "dropzones"
    accounts = {}
    for pid in ("op-a", "op-b"):
        accounts[pid] = Account(pid, root / pid, (keys[pid][1],), max_upload_bytes=1_000_000)
    return accounts


@pytest.fixture
def server(zones, tmp_path):
    with ServerThread(zones, tmp_path / "sftp" / "host_key") as srv:
        yield srv


def _transport(srv: ServerThread) -> paramiko.Transport:
    t = paramiko.Transport(("127.0.0.1", srv.port))
    t.banner_timeout = t.auth_timeout = 5
    t.start_client(timeout=5)
    # the client pins the server's key
    assert f"{t.get_remote_server_key().get_name()} {t.get_remote_server_key().get_base64()}" == srv.host_key_line
    return t


def _sftp(srv: ServerThread, user: str, pkey: paramiko.PKey) -> paramiko.SFTPClient:
    t = _transport(srv)
    t.auth_publickey(user, pkey)
    return paramiko.SFTPClient.from_transport(t)


@pytest.fixture
def a(server, keys):
    client = _sftp(server, "op-a", keys["op-a"][0])
    yield client
    _close(client, server)


def _close(client: paramiko.SFTPClient | paramiko.Transport, srv: ServerThread) -> None:
    """Log out and wait until the server has seen it (its log lines stay within the test)."""
    (client if isinstance(client, paramiko.Transport) else client.get_channel().get_transport()).close()
    if srv.running:
        assert srv.wait_idle()


def _denied(fn, *args):
    """The call fails with a permission or not-found error (nothing is revealed either way)."""
    with pytest.raises((PermissionError, FileNotFoundError, OSError)) as exc:
        fn(*args)
    return exc.value


# ---- the happy path: upload, pipeline, return flow ------------------------------------------


def test_upload_enters_the_pipeline_and_the_return_flow_is_downloaded(rt, directory_file, keys, tmp_path):
    (rt.settings.partners_dir).mkdir(parents=True)
    (rt.settings.partners_dir / "op-a.toml").write_text(
        f'id = "op-a"\n[hosted]\nauthorized_keys = ["{keys["op-a"][1]}"]\n'
    )
    (rt.settings.partners_dir / "op-c.toml").write_text('id = "op-c"\n')  # not hosted: no account
    accounts = accounts_for_dropzones(rt.settings, partners_config.load(rt.settings.partners_dir))
    assert list(accounts) == ["op-a"]
    assert accounts["op-a"].root == rt.settings.dropzones_dir / "op-a"
    assert rt.settings.inbox("op-a").is_dir() and rt.settings.outbox_dir("op-a").is_dir()

    _, recipients = directory_file
    name, data = gen.document("ubl", next(gen.plan(1, 1, recipients, seed=3)))
    with ServerThread(accounts, tmp_path / "hk") as srv:
        sftp = _sftp(srv, "op-a", keys["op-a"][0])
        sftp.putfo(io.BytesIO(data), f"/in/{name}")
        assert (rt.settings.inbox("op-a") / name).read_bytes() == data

        [flow] = run_once(rt)
        assert flow.partner == "op-a" and flow.original_name == name
        assert flow.status is FlowStatus.IN_INTEGRE
        assert sftp.listdir("/in") == []  # taken by the pipeline

        [report] = [n for n in sftp.listdir("/out") if n.startswith("CR_")]
        got = io.BytesIO()
        sftp.getfo(f"/out/{report}", got)
        assert got.getvalue() == (rt.settings.outbox_dir("op-a") / report).read_bytes()
        assert report == returnflow.file_name(flow)
        returnflow.validate(got.getvalue())  # the integration report, valid against Relais's XSD
        sftp.remove(f"/out/{report}")  # the partner acknowledges it
        assert [n for n in sftp.listdir("/out") if not n.startswith("ST")] == []  # status return flows: ST*
        _close(sftp, srv)


def test_part_then_rename_is_the_classic_upload(server, a, zones):
    inbox = zones["op-a"].root / "in"
    with a.open("/in/batch.xml.part", "wb") as f:
        f.write(b"<a/>" * 1000)
        assert [p.name for p in inbox.iterdir()] == ["batch.xml.part"]  # written in place (ignored by the scan)
    a.rename("/in/batch.xml.part", "/in/batch.xml")
    assert (inbox / "batch.xml").read_bytes() == b"<a/>" * 1000
    assert a.listdir("/in") == ["batch.xml"]
    a.posix_rename("/in/batch.xml", "/in/batch2.xml")  # replace semantics too
    # a partner may read back and delete its own not-yet-taken upload
    assert a.open("/in/batch2.xml").read(4) == b"<a/>"
    a.remove("/in/batch2.xml")
    assert list(inbox.iterdir()) == []


def test_an_upload_to_a_final_name_appears_only_once_complete(server, a, zones):
    inbox = zones["op-a"].root / "in"
    f = a.open("/in/invoice.xml", "wb")
    f.write(b"x" * 5000)
    f.flush()
    assert list(inbox.iterdir())[0].name.startswith(UPLOAD_PREFIX)  # hidden from the drop-zone scan
    assert a.listdir("/in") == []
    f.close()
    assert [p.name for p in inbox.iterdir()] == ["invoice.xml"]
    assert (inbox / "invoice.xml").stat().st_size == 5000


# ---- isolation ------------------------------------------------------------------------------


def test_a_partner_cannot_reach_another_partners_folders(server, a, zones):
    b_root = zones["op-b"].root
    (b_root / "in" / "secret.xml").write_bytes(b"B's invoice")
    (b_root / "out" / "report.xml").write_bytes(b"B's report")
    assert sorted(a.listdir("/")) == ["in", "out"]
    for path in (
        "../op-b/in",
        "/op-b/in",
        "../../op-b/out",
        "/in/../../op-b/in",
        "..",
        str(b_root / "in"),
        str(b_root),
        "//op-b/in",
    ):
        try:
            listed = a.listdir(path)
        except (FileNotFoundError, PermissionError):
            continue
        assert "secret.xml" not in listed and "report.xml" not in listed, path  # ".." and "/.." are "/"
    for path in (
        "../op-b/in/secret.xml",
        "/op-b/out/report.xml",
        str(b_root / "in" / "secret.xml"),
        "/../op-b/in/secret.xml",
    ):
        _denied(a.open, path)
        _denied(a.stat, path)
        _denied(a.putfo, io.BytesIO(b"evil"), path)
        _denied(a.remove, path)
        _denied(a.rename, "/in/x", path)
    a.putfo(io.BytesIO(b"mine"), "/in/mine.xml")
    for target in ("../op-b/in/mine.xml", "/op-b/in/mine.xml", str(b_root / "in" / "mine.xml")):
        _denied(a.rename, "/in/mine.xml", target)
    assert sorted(p.name for p in (b_root / "in").iterdir()) == ["secret.xml"]
    assert (b_root / "in" / "secret.xml").read_bytes() == b"B's invoice"
    assert a.normalize("../../..") == "/"


def test_writes_only_into_in(server, a, zones):
    root = zones["op-a"].root
    (root / "out" / "report.xml").write_bytes(b"report")
    for path in ("/x.xml", "/out/x.xml", "/out/report.xml", "/in/sub/x.xml", "/nope/x.xml"):
        _denied(a.putfo, io.BytesIO(b"x"), path)
    for path in ("/in/sub", "/out/sub", "/x"):
        _denied(a.mkdir, path)
    _denied(a.rmdir, "/in")
    _denied(a.rmdir, "/out")
    _denied(a.remove, "/in")
    _denied(a.rename, "/out/report.xml", "/in/report.xml")  # no re-injection of return flows
    _denied(a.rename, "/in", "/x")
    _denied(a.chmod, "/out/report.xml", 0o777)
    _denied(a.open, "/out/report.xml", "r+")
    a.putfo(io.BytesIO(b"x"), "/in/ok.xml")
    _denied(a.rename, "/in/ok.xml", "/out/ok.xml")
    _denied(a.rename, "/in/ok.xml", "/ok.xml")
    a.chmod("/in/ok.xml", 0o000)  # accepted and ignored: the pipeline can still read it
    a.utime("/in/ok.xml", (0, 0))  # same: the file does not look older than it is
    assert os.access(root / "in" / "ok.xml", os.R_OK)
    assert (root / "in" / "ok.xml").stat().st_mtime > time.time() - 60
    assert sorted(p.name for p in root.iterdir()) == ["in", "out"]
    assert sorted(p.name for p in (root / "out").iterdir()) == ["report.xml"]
    assert (root / "out" / "report.xml").read_bytes() == b"report"


def test_bad_names_are_refused(server, a, zones):
    for name in ("a\nb.xml", "a\x1b.xml", "é" * 200 + ".xml", UPLOAD_PREFIX + "x"):
        _denied(a.putfo, io.BytesIO(b"x"), f"/in/{name}")
    assert list((zones["op-a"].root / "in").iterdir()) == []


def test_upload_size_limit(server, a, zones):
    _denied(a.putfo, io.BytesIO(b"x" * 1_200_000), "/in/big.xml")
    _denied(a.putfo, io.BytesIO(b"x" * 1_200_000), "/in/big.xml.part")
    assert list((zones["op-a"].root / "in").iterdir()) == []  # nothing half-written is left


# ---- symbolic links --------------------------------------------------------------------------


def test_symlinks_cannot_be_created(server, a, zones):
    a.putfo(io.BytesIO(b"x"), "/in/x.xml")
    for target in ("/in/x.xml", "/etc/passwd", "../op-b/in", str(zones["op-b"].root)):
        _denied(a.symlink, target, "/in/link")
    assert not os.path.lexists(zones["op-a"].root / "in" / "link")


def test_planted_symlinks_are_not_followed(server, a, zones):
    root, b_root = zones["op-a"].root, zones["op-b"].root
    (b_root / "in" / "secret.xml").write_bytes(b"B's invoice")
    (root / "out" / "to-b").symlink_to(b_root / "in")
    (root / "out" / "passwd").symlink_to("/etc/passwd")
    (root / "out" / "rel").symlink_to("../../op-b/in/secret.xml")
    (root / "in" / "drop").symlink_to(b_root / "in")  # a write through it would land in B's inbox
    (root / "linked-root").symlink_to(b_root)
    assert a.listdir("/out") == [] and a.listdir("/in") == [] and sorted(a.listdir("/")) == ["in", "out"]
    for path in (
        "/out/to-b",
        "/out/to-b/secret.xml",
        "/out/passwd",
        "/out/rel",
        "/in/drop/secret.xml",
        "/linked-root/in/secret.xml",
    ):
        _denied(a.open, path)
        _denied(a.stat, path)
        _denied(a.lstat, path)
        _denied(a.readlink, path)
        _denied(a.normalize, path)
    for path in ("/out/to-b", "/in/drop", "/linked-root/in"):
        _denied(a.listdir, path)
    _denied(a.putfo, io.BytesIO(b"evil"), "/in/drop/evil.xml")
    _denied(a.putfo, io.BytesIO(b"evil"), "/in/drop")
    _denied(a.rename, "/in/drop", "/in/other")
    _denied(a.remove, "/out/passwd")
    assert sorted(p.name for p in (b_root / "in").iterdir()) == ["secret.xml"]
    assert os.path.islink(root / "out" / "passwd") and os.path.exists("/etc/passwd")


def test_relais_temporary_files_in_out_are_neither_listed_nor_readable(server, a, zones):
    out = zones["op-a"].root / "out"
    (out / ".relais-abc.part").write_bytes(b"half a report")
    (out / "done.xml").write_bytes(b"report")
    assert a.listdir("/out") == ["done.xml"]
    _denied(a.open, "/out/.relais-abc.part")


# ---- authentication -----------------------------------------------------------------------


def test_wrong_key_unknown_user_and_passwords_are_refused(server, keys):
    cases = [
        ("op-a", keys["op-b"][0]),
        ("op-a", keys["stranger"][0]),
        ("nobody", keys["op-a"][0]),
        ("root", keys["stranger"][0]),
    ]
    for user, pkey in cases:
        t = _transport(server)
        with pytest.raises(paramiko.AuthenticationException):
            t.auth_publickey(user, pkey)
        _close(t, server)
    for user in ("op-a", "nobody"):
        t = _transport(server)
        with pytest.raises(paramiko.BadAuthenticationType) as exc:
            t.auth_password(user, "secret")
        assert exc.value.allowed_types == ["publickey"]
        _close(t, server)
        t = _transport(server)
        with pytest.raises(paramiko.BadAuthenticationType):
            t.auth_interactive(user, lambda *a: ["secret"])
        _close(t, server)


def test_only_sftp_no_shell_exec_or_forwarding(server, keys):
    client_key = keys["op-a"][2]

    async def attempt():
        async with asyncssh.connect(
            "127.0.0.1", server.port, username="op-a", client_keys=[client_key], known_hosts=None
        ) as conn:
            with pytest.raises((asyncssh.ChannelOpenError, asyncssh.ProcessError, asyncssh.Error, OSError)):
                result = await conn.run("cat /etc/passwd", check=True, timeout=5)
                assert "root:" not in (result.stdout or "")
                raise OSError("exec ran")  # unreachable when refused
            with pytest.raises((asyncssh.ChannelOpenError, OSError)):
                await conn.open_connection("127.0.0.1", server.port)
            async with conn.start_sftp_client() as sftp:
                assert sorted(await sftp.listdir("/")) == [".", "..", "in", "out"]

    asyncio.run(attempt())


def test_host_key_is_created_once_and_private(tmp_path):
    path = tmp_path / "sftp" / "host_key"
    key = host_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert host_key(path).get_fingerprint() == key.get_fingerprint()
    assert Path(f"{path}.pub").read_text().startswith("ssh-ed25519 ")


def test_cli_fingerprint_is_the_one_ssh_keygen_and_clients_see(tmp_path, keys, zones):
    """`relais sftp fingerprint` prints the host key as `ssh-keygen -lf` does (creating it when missing, once),
    and it is the key a partner's client is shown by the server."""
    import base64
    import hashlib
    import subprocess

    from click.testing import CliRunner

    from relais.cli import main

    home = tmp_path / "home"
    key_path = home / "sftp" / "host_key"

    def fingerprint(*args: str) -> str:
        result = CliRunner().invoke(main, ["--home", str(home), "sftp", "fingerprint", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    def keygen(path: Path) -> str:
        return subprocess.run(["ssh-keygen", "-lf", str(path)], capture_output=True, text=True, check=True).stdout

    printed = fingerprint()
    assert key_path.stat().st_mode & 0o777 == 0o600
    assert printed == keygen(key_path) == keygen(Path(f"{key_path}.pub"))
    assert printed.startswith("256 SHA256:") and printed.endswith(" relais-sftp (ED25519)\n")
    assert fingerprint() == printed  # the same key, not a new one

    with ServerThread(zones, key_path) as srv:
        t = paramiko.Transport(("127.0.0.1", srv.port))
        try:
            t.connect(username="op-a", pkey=keys["op-a"][0])
            seen = t.get_remote_server_key().asbytes()
        finally:
            t.close()
    digest = base64.b64encode(hashlib.sha256(seen).digest()).decode().rstrip("=")
    assert printed.split()[1] == f"SHA256:{digest}"

    rsa = tmp_path / "rsa_key"  # an operator's own host key (--host-key)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "ops@relais", "-f", str(rsa)], check=True
    )
    assert fingerprint("--host-key", str(rsa)) == keygen(rsa)
    assert keygen(rsa).startswith("2048 SHA256:") and keygen(rsa).endswith(" ops@relais (RSA)\n")

    result = CliRunner().invoke(main, ["--home", str(home), "sftp", "fingerprint", "--host-key", f"{rsa}.pub"])
    assert result.exit_code == 2 and "cannot read the host key" in result.stderr, result.output


# ---- going down and coming back ---------------------------------------------------------------


def test_stop_drops_live_connections_and_restart_serves_on_the_same_port(server, a, zones, keys):
    inbox = zones["op-a"].root / "in"
    f = a.open("/in/cut.xml", "wb")
    f.write(b"x" * 10_000)
    f.flush()
    g = a.open("/in/cut2.xml.part", "wb")
    g.write(b"y" * 10_000)
    g.flush()
    port = server.port
    server.stop()
    with pytest.raises((OSError, EOFError, paramiko.SSHException)):
        a.listdir("/in")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    # the cut upload to a final name left nothing; the .part upload stays (the scan ignores it)
    assert sorted(p.name for p in inbox.iterdir()) == ["cut2.xml.part"]

    server.restart()
    assert server.port == port
    b = _sftp(server, "op-a", keys["op-a"][0])
    assert b.listdir("/in") == ["cut2.xml.part"]
    _close(b, server)


def test_a_client_that_disconnects_mid_upload_leaves_nothing(server, a, zones):
    f = a.open("/in/half.xml", "wb")
    f.write(b"x" * 10_000)
    f.flush()
    a.get_channel().get_transport().close()  # gone without closing the file
    inbox = zones["op-a"].root / "in"
    wait_until(lambda: not list(inbox.iterdir()), 5, "the cut upload to be removed")


def test_stale_upload_files_are_removed_at_start(zones, tmp_path):
    inbox = zones["op-a"].root / "in"
    inbox.mkdir(parents=True)
    (inbox / f"{UPLOAD_PREFIX}0123").write_bytes(b"left by a crash")
    (inbox / "kept.xml.part").write_bytes(b"partner's")
    with ServerThread(zones, tmp_path / "hk"):
        assert sorted(p.name for p in inbox.iterdir()) == ["kept.xml.part"]


def test_closing_the_sftp_session_with_a_file_open_discards_the_upload(server, keys, zones):
    async def attempt():
        async with asyncssh.connect(
            "127.0.0.1", server.port, username="op-a", client_keys=[keys["op-a"][2]], known_hosts=None
        ) as conn:
            async with conn.start_sftp_client() as sftp:
                f = await sftp.open("/in/never-closed.xml", "wb")
                await f.write(b"abc" * 1000)
            await asyncio.sleep(0.1)  # the SSH connection is still up; only the SFTP channel is gone
            return list((zones["op-a"].root / "in").iterdir())

    assert asyncio.run(attempt()) == []


# ---- relais sftp serve ----------------------------------------------------------------------


def test_cli_serve(tmp_path, keys):
    import signal
    import subprocess
    import sys

    home = tmp_path / "home"
    (home / "partners").mkdir(parents=True)
    (home / "partners" / "op-a.toml").write_text(f'id = "op-a"\n[hosted]\nauthorized_keys = ["{keys["op-a"][1]}"]\n')
    code = "from relais.cli.sftp import sftp; sftp(['serve', '--port', '0'], obj={'home': None})"
    env = dict(os.environ, RELAIS_HOME=str(home), RELAIS_LOG_LEVEL="WARNING")
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        first, host_line, fingerprint, account = server_lines(proc, 4)
        assert first.startswith("relais sftp: listening on 127.0.0.1:"), (first, proc.stderr.read())
        port = int(first.rsplit(":", 1)[1])
        assert host_line.startswith("host key: ssh-ed25519 ")
        assert fingerprint.startswith("fingerprint: SHA256:")
        assert "op-a" in account
        assert (home / "sftp" / "host_key").stat().st_mode & 0o777 == 0o600

        t = paramiko.Transport(("127.0.0.1", port))
        t.connect(username="op-a", pkey=keys["op-a"][0])
        s = paramiko.SFTPClient.from_transport(t)
        s.putfo(io.BytesIO(b"<x/>"), "/in/x.xml")
        assert (home / "dropzones" / "op-a" / "in" / "x.xml").read_bytes() == b"<x/>"
        t.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_serve_without_hosted_partners_fails_clearly(tmp_path):
    from click.testing import CliRunner

    from relais.cli.sftp import sftp

    result = CliRunner().invoke(sftp, ["serve", "--port", "0"], obj={"home": tmp_path / "home"})
    assert result.exit_code == 2
    assert "aucun partenaire n'a de section [hosted]" in result.output


def test_connections_per_partner_are_capped(server, keys, monkeypatch):
    from connectors.sftp.hosted import server as server_module

    monkeypatch.setattr(server_module, "MAX_CONNECTIONS_PER_USER", 2)
    clients = [_sftp(server, "op-a", keys["op-a"][0]) for _ in range(2)]
    with pytest.raises((paramiko.SSHException, EOFError, OSError)):
        extra = _sftp(server, "op-a", keys["op-a"][0])
        extra.listdir("/")
    other = _sftp(server, "op-b", keys["op-b"][0])  # other partners are not affected
    assert other.listdir("/in") == []
    for c in [*clients, other]:
        assert c.listdir("/") is not None
        c.get_channel().get_transport().close()
    assert server.wait_idle()


def test_handlers_name_known_accounts_only(tmp_path, zones):
    """The test hook of the server (tests/support/sftp_plain.py) cannot add a login of its own."""
    with pytest.raises(ValueError, match="unknown accounts: ghost"):
        ServerThread(zones, tmp_path / "hk", handlers=plain("ghost")).start()


def test_a_plain_account_stands_in_for_a_partners_server(tmp_path, keys, zones):
    """tests/support/sftp_plain.py: the whole root is writable, uploads in place, links listed but not followed."""
    root = tmp_path / "partner-server"
    accounts = {"relais": Account("relais", root, (keys["op-a"][1],)), "op-b": zones["op-b"]}
    (root / "outbound").mkdir(parents=True)
    (root / "outbound" / "a.xml").write_bytes(b"<a/>")
    (root / "outbound" / "link.xml").symlink_to(zones["op-b"].root / "in")
    with ServerThread(accounts, tmp_path / "hk", handlers=plain("relais")) as srv:
        s = _sftp(srv, "relais", keys["op-a"][0])
        assert sorted(s.listdir("/")) == ["outbound"]  # no in/ out/ made
        s.mkdir("/processed")
        s.mkdir("/inbound")
        s.rename("/outbound/a.xml", "/outbound/a.xml.claimed")
        s.rename("/outbound/a.xml.claimed", "/processed/a.xml")
        assert (root / "processed" / "a.xml").read_bytes() == b"<a/>"
        import stat as st

        assert st.S_ISLNK(s.lstat("/outbound/link.xml").st_mode)  # listed as a link...
        assert "link.xml" in s.listdir("/outbound")
        _denied(s.open, "/outbound/link.xml")  # ...never followed
        _denied(s.stat, "/outbound/link.xml")
        _denied(s.listdir, "/outbound/link.xml")
        _denied(s.putfo, io.BytesIO(b"x"), "/outbound/link.xml/evil")
        s.remove("/outbound/link.xml")  # the link itself, not its target
        assert (zones["op-b"].root / "in").is_dir()
        f = s.open("/inbound/r.xml.tmp", "wb")
        f.write(b"half")
        f.flush()
        assert (root / "inbound" / "r.xml.tmp").read_bytes() == b"half"  # in place
        f.close()
        s.posix_rename("/inbound/r.xml.tmp", "/inbound/r.xml")
        _denied(s.open, "/../partner-server/../dropzones/op-b/in/x", "wb")
        _denied(s.symlink, "/inbound/r.xml", "/inbound/l")
        _denied(s.rmdir, "/")
        s.rmdir("/outbound")
        _close(s, srv)
