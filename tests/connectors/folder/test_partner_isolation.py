"""A bad partner file is that partner's problem: the other partners are still polled (SFTP), served
(`relais sftp serve`, `relais as2 serve`) and their drop zones taken; the bad one is logged with every
problem, listed BAD by `relais partners`, and none of its files is taken until its file is fixed."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import paramiko
import pytest
from click.testing import CliRunner

from connectors.as2 import certs, mdn, sender
from connectors.partners import As2Config, Partner
from flows.domain.model import Channel, FlowStatus
from relais import generate as gen
from relais.cli import main
from relais.runner import run_once
from tests.connectors.as2.test_as2 import _free_port, _post, _write_partner
from tests.connectors.sftp.test_sftp_pickup import _ubl_zip, _user_key
from tests.connectors.sftp.test_sftp_server import _keypair
from tests.support.as2_keys import make_test_keypair
from tests.support.helpers import drop
from tests.support.sftp_partner import PartnerServer
from tests.support.waiting import server_lines

pytestmark = pytest.mark.usefixtures("json_logs")  # tests here read the JSON log lines

PROJECT = Path(__file__).resolve().parents[3]
#: [sftp] without user nor a pinned host key, and a poll interval of 0: three problems at once.
BAD_SFTP = 'id = "op-bad"\n[sftp]\nhost = "127.0.0.1"\nprivate_key = "/nonexistent"\npoll_seconds = 0\n'


def _events(text: str, name: str) -> list[dict]:
    return [
        e for e in (json.loads(line) for line in text.splitlines() if line.startswith("{")) if e.get("event") == name
    ]


@pytest.fixture
def sftp_partner(tmp_path):
    """The good partner's SFTP server (what Relais polls), and its disk."""
    remote = tmp_path / "partner-server"
    for sub in ("outbound", "inbound"):
        (remote / sub).mkdir(parents=True)
    key = tmp_path / "relais_key"
    public = _user_key(key)
    with PartnerServer(remote, "relais", public, tmp_path / "server_host_key") as server:
        yield server, remote, key


def test_run_takes_the_good_partner_and_reports_the_bad_one(rt, directory_file, sftp_partner, tmp_path, capsys):
    server, remote, key = sftp_partner
    rt.settings.partners_dir.mkdir(parents=True)
    (rt.settings.partners_dir / "op-sftp.toml").write_text(
        f'id = "op-sftp"\n[sftp]\nhost = "127.0.0.1"\nport = {server.port}\nuser = "relais"\n'
        f'private_key = "{key}"\nhost_key = "{server.host_key_line}"\n'
    )
    (rt.settings.partners_dir / "op-bad.toml").write_text(BAD_SFTP)
    batch = _ubl_zip(tmp_path, directory_file[1])
    (remote / "outbound" / batch.name).write_bytes(batch.read_bytes())
    one, two, three = (gen.document("ubl", spec) for spec in gen.plan(3, 1, directory_file[1], seed=5))
    drop(rt, "op-sftp", *one)  # the good partner's folder inbox
    held = drop(rt, "op-bad", *two)  # the bad one's: left alone
    drop(rt, "op-nofile", *three)  # a folder drop zone without a partner file: taken as ever

    done = run_once(rt)

    got = sorted((f.partner, f.channel, f.status) for f in done)
    assert got == [
        ("op-nofile", Channel.FOLDER, FlowStatus.IN_INTEGRE),
        ("op-sftp", Channel.FOLDER, FlowStatus.IN_INTEGRE),
        ("op-sftp", Channel.SFTP, FlowStatus.IN_INTEGRE),
    ]
    assert (remote / "processed" / batch.name).is_file()  # polled: the SFTP pickup went on
    assert held.is_file() and {f.partner for f in rt.store.list_flows(limit=100)} == {"op-sftp", "op-nofile"}
    [event] = _events(capsys.readouterr().err, "partners.bad_file")
    assert event["level"] == "error" and event["partner"] == "op-bad" and event["files"] == ["op-bad.toml"]
    assert event["held_files"] == 1
    problems = "\n".join(event["problems"])
    for needle in ("sftp.user: required", "pin the server's key", "sftp.poll_seconds"):
        assert needle in problems, needle

    run_once(rt)  # reported at each intake
    assert len(_events(capsys.readouterr().err, "partners.bad_file")) == 1

    (rt.settings.partners_dir / "op-bad.toml").write_text('id = "op-bad"\n')  # fixed: a folder partner
    rt.__dict__.pop("partners", None)  # partner files are read once per runtime
    [flow] = run_once(rt)
    assert (flow.partner, flow.status) == ("op-bad", FlowStatus.IN_INTEGRE) and not held.exists()
    assert _events(capsys.readouterr().err, "partners.bad_file") == []


def test_partners_command_lists_the_bad_partner_with_its_problems(tmp_path):
    home = tmp_path / "home"
    (home / "partners").mkdir(parents=True)
    (home / "partners" / "op-good.toml").write_text('id = "op-good"\nname = "Good"\n')
    (home / "partners" / "op-bad.toml").write_text(BAD_SFTP)
    (home / "partners" / "garbled.toml").write_text("id = = x\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAIS_")}
    result = CliRunner(env=env).invoke(main, ["--home", str(home), "partners"])
    assert result.exit_code == 1, result.output  # a bad partner file: exit 1
    out = result.output
    assert "op-good (Good): folder" in out
    assert (
        "BAD op-bad : fichier de partenaire non chargé" in out
        and "BAD garbled.toml : fichier de partenaire non chargé" in out
    )
    for needle in ("sftp.user: required", "pin the server's key", "sftp.poll_seconds", "unreadable partner file"):
        assert needle in out, needle
    result = CliRunner(env=env).invoke(main, ["--home", str(home), "partners", "--json"])
    assert result.exit_code == 1
    rows = {r["partner"]: r for r in json.loads(result.output)}
    assert rows["op-good"]["bad"] is False and rows["op-good"]["problems"] == []
    assert rows["op-bad"]["bad"] is True and len(rows["op-bad"]["problems"]) == 3
    assert rows["op-bad"]["files"] == [str(home / "partners" / "op-bad.toml")]
    assert rows["garbled.toml"]["bad"] is True
    (home / "partners" / "op-bad.toml").unlink()
    (home / "partners" / "garbled.toml").unlink()
    assert CliRunner(env=env).invoke(main, ["--home", str(home), "partners"]).exit_code == 0


def _serve(code: str, home: Path) -> subprocess.Popen:
    env = dict(os.environ, RELAIS_HOME=str(home), RELAIS_LOG_LEVEL="WARNING")
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=PROJECT
    )


def _stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    return proc.returncode, err


def test_hosted_sftp_server_serves_the_good_partner_when_another_file_is_bad(tmp_path):
    keys = {pid: _keypair() for pid in ("op-a", "op-b")}
    home = tmp_path / "home"
    (home / "partners").mkdir(parents=True)
    (home / "partners" / "op-a.toml").write_text(f'id = "op-a"\n[hosted]\nauthorized_keys = ["{keys["op-a"][1]}"]\n')
    (home / "partners" / "op-b.toml").write_text(  # a key cut short: once, it stopped the whole server
        f'id = "op-b"\n[hosted]\nauthorized_keys = ["{keys["op-b"][1][:30]}"]\n'
    )
    proc = _serve("from relais.cli.sftp import sftp; sftp(['serve', '--port', '0'], obj={'home': None})", home)
    try:
        first, *lines = server_lines(proc, 6)  # listening, host key, fingerprint, op-a, BAD op-b, its problem
        assert first.startswith("relais sftp: listening on 127.0.0.1:"), first
        port = int(first.rsplit(":", 1)[1])
        assert lines[2].startswith("  op-a: ")
        assert lines[3].strip() == "BAD op-b : fichier de partenaire non chargé, non servi"
        assert "hosted.authorized_keys[0]: not an OpenSSH public key" in lines[4]

        t = paramiko.Transport(("127.0.0.1", port))
        t.connect(username="op-a", pkey=keys["op-a"][0])
        s = paramiko.SFTPClient.from_transport(t)
        s.putfo(io.BytesIO(b"<x/>"), "/in/x.xml")
        assert (home / "dropzones" / "op-a" / "in" / "x.xml").read_bytes() == b"<x/>"
        t.close()
        t = paramiko.Transport(("127.0.0.1", port))
        with pytest.raises(paramiko.AuthenticationException):
            t.connect(username="op-b", pkey=keys["op-b"][0])  # no account while its file is bad
        t.close()
        code, err = _stop(proc)
        assert code == 130
        [event] = _events(err, "partners.bad_file")
        assert event["partner"] == "op-b" and event["server"] == "sftp"
        assert "hosted.authorized_keys[0]: not an OpenSSH public key" in event["problems"][0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_as2_server_serves_the_good_partner_when_another_file_is_bad(tmp_path, directory_file):
    pems = {}
    for name in ("relais", "op-a"):
        pems[name] = (tmp_path / f"{name}.pem", tmp_path / f"{name}.key")
        certs.write_pem(make_test_keypair(name), *pems[name])
    home = tmp_path / "home"
    partners_dir = home / "partners"
    _write_partner(
        partners_dir,
        "op-a",
        as2_id="OPA",
        our_as2_id="RELAIS",
        partner_cert=pems["op-a"][0],
        our_cert=pems["relais"][0],
        our_key=pems["relais"][1],
    )
    _write_partner(
        partners_dir,
        "op-b",
        as2_id="OPB",
        our_as2_id="RELAIS",
        partner_cert=tmp_path / "missing.pem",
        our_cert=pems["relais"][0],
        our_key=pems["relais"][1],
        mdn="later",
    )
    port = _free_port()
    proc = _serve(f"from relais.cli.as2 import as2; as2(['serve', '--port', '{port}'], obj={{'home': None}})", home)
    try:
        first, *lines = server_lines(proc, 6)  # listening, op-a, its 2 certificates, BAD op-b, its 1st problem
        assert first.strip() == f"relais as2: listening on http://127.0.0.1:{port}/as2", first
        out = "".join(lines)
        assert "op-a: OPA -> RELAIS" in out and "BAD op-b : fichier de partenaire non chargé" in out, out
        # op-a's message, as op-a builds it: to RELAIS, signed with op-a's key, encrypted for RELAIS
        them = sender.load_party(
            Partner(
                "relais",
                "Relais",
                as2=As2Config(
                    as2_id="RELAIS",
                    our_as2_id="OPA",
                    partner_cert=pems["relais"][0],
                    our_cert=pems["op-a"][0],
                    our_key=pems["op-a"][1],
                ),
            )
        )
        _, data = gen.document("ubl", next(gen.plan(1, 1, directory_file[1], seed=9)))
        response, _, _ = _post(f"http://127.0.0.1:{port}/as2", them, data)
        assert response.status_code == 200
        answer = mdn.parse(
            response.headers["content-type"],
            response.content,
            partner_certs=[certs.load_cert(pems["relais"][0])],
            require_signature=False,
        )
        assert answer.processed, answer.disposition
        code, err = _stop(proc)
        assert code in (0, 130)
        [event] = _events(err, "partners.bad_file")
        assert event["partner"] == "op-b" and event["server"] == "as2"
        problems = "\n".join(event["problems"])
        assert "as2.partner_cert: no such file" in problems and "as2.mdn" in problems
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
