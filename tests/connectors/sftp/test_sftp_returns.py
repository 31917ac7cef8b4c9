"""SFTP end to end through `relais run`: pickup from the partner's server, return flows back to it,
atomically, in order, and later when the partner was down (outbox with backoff)."""

from __future__ import annotations

import datetime as dt
import time

import asyncssh
import sqlalchemy as sa

from flows.domain.model import FlowStatus
from flows.pipeline import dispatch
from flows.returns import report as returnflow
from flows.store import tables
from relais import generate as gen
from relais.runner import run_once
from tests.support.sftp_partner import PartnerServer


def _setup(tmp_path, rt):
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = tmp_path / "relais_key"
    key_path.write_bytes(key.export_private_key("openssh"))
    key_path.chmod(0o600)
    public = " ".join(key.export_public_key("openssh").decode().split()[:2])
    remote = tmp_path / "partner-server"
    for sub in ("outbound", "inbound"):
        (remote / sub).mkdir(parents=True)
    server = PartnerServer(remote, "relais", public, tmp_path / "server_host_key").start()
    rt.settings.partners_dir.mkdir(parents=True, exist_ok=True)
    (rt.settings.partners_dir / "op-s.toml").write_text(
        f'id = "op-s"\n[sftp]\nhost = "127.0.0.1"\nport = {server.port}\nuser = "relais"\n'
        f'private_key = "{key_path}"\nhost_key = "{server.host_key_line}"\n'
        'pickup_dir = "outbound"\nreturn_dir = "inbound"\n'
    )
    rt.__dict__.pop("partners", None)
    return server, remote


def _drop_remote(remote, name, data):
    path = remote / "outbound" / name
    path.write_bytes(data)
    old = time.time() - 60
    import os

    os.utime(path, (old, old))


def _invoice(recipients, seed):
    return gen.document("ubl", next(gen.plan(1, 2, recipients, seed=seed)))


def test_pickup_and_return_over_sftp(rt, directory_file, tmp_path):
    _, recipients = directory_file
    server, remote = _setup(tmp_path, rt)
    try:
        name, data = _invoice(recipients, 81)
        _drop_remote(remote, name, data)
        flows = run_once(rt)
        [flow] = flows
        assert flow.channel.value == "sftp" and flow.status is FlowStatus.IN_INTEGRE
        assert rt.archive.read(flow.sha256) == data
        assert not (remote / "outbound" / name).exists() and (remote / "processed" / name).exists()
        [cr] = list((remote / "inbound").glob("CR_*"))
        assert cr.name == returnflow.file_name(flow)
        returnflow.validate(cr.read_bytes())
        assert rt.store.pending_outbox() == []
    finally:
        server.stop()


def test_partner_down_gets_its_return_flows_later_in_order(rt, directory_file, tmp_path):
    _, recipients = directory_file
    rt.status_returns.interval_seconds = 1e9  # integration reports only here (status returns: test_invoice_lifecycle)
    server, remote = _setup(tmp_path, rt)
    try:
        for i, seed in enumerate((82, 83, 84)):
            name, data = _invoice(recipients, seed)
            _drop_remote(remote, f"{i}-{name}", data)
        from connectors.sftp import pickup

        pickup.poll(rt.intake, rt.partners["op-s"], settle_seconds=0.05)
        server.stop()  # the partner goes down before the return flows leave
        flows = run_once(rt)
        assert len(flows) == 3 and all(f.status is FlowStatus.IN_INTEGRE for f in flows)
        pending = rt.store.pending_outbox(kind="return")
        assert len(pending) == 3
        assert pending[0].attempts == 1 and pending[0].next_attempt_at is not None
        assert "Unreachable" in pending[0].last_error or "refused" in pending[0].last_error.lower()
        # Not due yet: a second dispatch does not hammer the partner.
        assert dispatch.dispatch(rt.outbound).failed == 0
        server.restart()
        with rt.store.engine.begin() as conn:  # time passes
            conn.execute(
                sa.update(tables.outbox).values(next_attempt_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
            )
        report = dispatch.dispatch(rt.outbound)
        assert report.returned >= 3 and rt.store.pending_outbox() == []  # 3 reports, and the status returns
        arrived = sorted((remote / "inbound").glob("CR_*"), key=lambda p: p.stat().st_mtime_ns)
        assert [p.name for p in arrived] == [returnflow.file_name(f) for f in sorted(flows, key=lambda f: f.id)]
        assert not [p for p in (remote / "inbound").iterdir() if p.name.startswith(".")]  # no temporary left
    finally:
        server.stop()


def test_outbox_command_shows_pending_returns(rt, directory_file, tmp_path):
    from click.testing import CliRunner

    from relais.cli import main

    _, recipients = directory_file
    server, remote = _setup(tmp_path, rt)
    name, data = _invoice(recipients, 85)
    _drop_remote(remote, name, data)
    from connectors.sftp import pickup

    pickup.poll(rt.intake, rt.partners["op-s"], settle_seconds=0.05)
    server.stop()
    run_once(rt)
    result = CliRunner().invoke(
        main, ["--home", str(rt.settings.home), "outbox"], env={"RELAIS_DATABASE_URL": rt.settings.database_url}
    )
    assert result.exit_code == 0, result.output
    assert "return" in result.output and "sftp op-s inbound/" in result.output and "dernière erreur" in result.output
    listing = CliRunner().invoke(
        main, ["--home", str(rt.settings.home), "flows"], env={"RELAIS_DATABASE_URL": rt.settings.database_url}
    )
    assert "en attente d'envoi : 2 flux retour" in listing.output  # the integration report and the status return flow
