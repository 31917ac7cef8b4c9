"""Structures that receive by EDI (recevoirDonneesViaEDI): their invoices are pushed to their own channel,
a partner file named by their SIRET (SFTP here, to a real server; or its dropzones/<siret>/out/ folder),
and fall back to the delivery/ folder, logged, when there is no such partner."""

from __future__ import annotations

import datetime as dt
import io
import json

import asyncssh
import pytest
import sqlalchemy as sa

from flows.directory import importer as directory
from flows.domain.model import FlowStatus, InvoiceStatus
from flows.domain.outbox import OutboxKind
from flows.pipeline import dispatch
from flows.store import tables
from relais import generate as gen
from relais import log
from relais.compose import Runtime
from tests.support.helpers import drop, run
from tests.support.sftp_partner import PartnerServer


@pytest.fixture
def recipients():
    return gen.sample_directory()


@pytest.fixture
def plain(recipients):
    """A structure that asks for no service code nor EJ (every generated invoice to it is routed)."""
    return next(r for r in recipients if r.active and not (r.service_code_required or r.ej_required or r.ej_or_service))


def _platform_directory(tmp_path, recipients, edi: set[str]):
    """The sample directory in the platform's JSON shape, `edi` SIRETs receiving by EDI."""
    items = [
        {
            "identifiant": r.siret,
            "libelleStructure": r.name,
            "estActif": r.active,
            "codeServiceDoitEtreRenseigne": r.service_code_required,
            "numeroEJDoitEtreRenseigne": r.ej_required,
            "gestionNumeroEJOuCodeService": r.ej_or_service,
            "recevoirDonneesViaEDI": "oui" if r.siret in edi else "non",
            "services": [{"codeService": c, "libelleService": lbl, "estActif": a} for c, lbl, a in r.services],
        }
        for r in recipients
    ]
    path = tmp_path / "annuaire-plateforme.json"
    path.write_text(json.dumps({"listeStructures": items}))
    return path


@pytest.fixture
def edi_rt(settings, tmp_path, recipients, plain):
    runtime = Runtime.open(settings)
    directory.import_file(runtime.store, _platform_directory(tmp_path, recipients, {plain.siret}))
    yield runtime
    runtime.close()


def _invoices(plain, n=1, seed=7):
    """`n` correct UBL invoices to `plain`: one file, or a zip of `n`."""
    if n == 1:
        return gen.document("ubl", next(gen.plan(1, 1, [plain], seed=seed)))
    buf = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(buf, "w") as z:
        for spec in gen.plan(n, 1, [plain], seed=seed):
            name, data = gen.document("ubl", spec)
            z.writestr(name, data)
    return f"batch-{seed}.zip", buf.getvalue()


def _partner_file(rt, siret, body=""):
    rt.settings.partners_dir.mkdir(parents=True, exist_ok=True)
    (rt.settings.partners_dir / f"{siret}.toml").write_text(f'id = "{siret}"\nname = "Structure EDI"\n{body}')
    rt.__dict__.pop("partners", None)  # read the partner files again


def _sftp_partner(tmp_path, rt, siret):
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = tmp_path / "relais_key"
    key_path.write_bytes(key.export_private_key("openssh"))
    key_path.chmod(0o600)
    public = " ".join(key.export_public_key("openssh").decode().split()[:2])
    remote = tmp_path / "structure-server"
    for sub in ("outbound", "factures"):
        (remote / sub).mkdir(parents=True)
    server = PartnerServer(remote, "relais", public, tmp_path / "server_host_key").start()
    _partner_file(
        rt,
        siret,
        f'[sftp]\nhost = "127.0.0.1"\nport = {server.port}\nuser = "relais"\n'
        f'private_key = "{key_path}"\nhost_key = "{server.host_key_line}"\n'
        'pickup_dir = "outbound"\nreturn_dir = "factures"\n',
    )
    return server, remote


def _delivered_files(rt):
    return sorted(p for p in rt.settings.delivery_dir.rglob("*") if p.is_file())


def _invoices_of(rt, flow):
    return list(rt.store.iter_invoices(flow.id))


def test_an_edi_structure_gets_its_invoice_on_its_sftp_server(edi_rt, tmp_path, plain):
    rt = edi_rt
    server, remote = _sftp_partner(tmp_path, rt, plain.siret)
    try:
        name, data = _invoices(plain)
        drop(rt, "op-a", name, data)
        [flow] = run(rt)
        assert flow.status is FlowStatus.IN_INTEGRE
        [inv] = _invoices_of(rt, flow)
        [uploaded] = list((remote / "factures").iterdir())
        assert uploaded.name == f"{inv.id}.xml" and uploaded.read_bytes() == data
        assert inv.status is InvoiceStatus.MISE_A_DISPOSITION
        assert inv.delivered_to == f"factures/{inv.id}.xml"
        [row] = [o for o in rt.store.outbox_for_flow(flow.id) if o.kind is OutboxKind.DELIVERY]
        assert (row.channel, row.partner, row.status) == ("sftp", plain.siret, "sent")
        assert _delivered_files(rt) == []  # not in delivery/<siret>/...
        assert rt.store.pending_outbox() == []
        # the return flow still goes to the sender, op-a, by its own channel
        assert any(p.name.endswith(".xml") for p in rt.settings.outbox_dir("op-a").iterdir())
    finally:
        server.stop()


def test_edi_deliveries_wait_for_a_server_that_is_down_and_go_in_order(edi_rt, tmp_path, plain):
    rt = edi_rt
    server, remote = _sftp_partner(tmp_path, rt, plain.siret)
    try:
        server.stop()  # the structure's server is down when the flows close
        flows = []
        for seed in (11, 12):
            name, data = _invoices(plain, n=3, seed=seed)
            drop(rt, "op-a", name, data)
            flows += run(rt)
        assert len(flows) == 2 and all(f.status is FlowStatus.IN_INTEGRE for f in flows)
        pending = rt.store.pending_outbox(kind=OutboxKind.DELIVERY)
        assert len(pending) == 6 and {p.channel for p in pending} == {"sftp"}
        assert pending[0].attempts >= 1 and pending[0].next_attempt_at is not None  # backed off
        assert all(p.attempts == 0 for p in pending[1:] if p.flow_id == flows[1].id)  # held back behind it
        assert dispatch.dispatch(rt.outbound).failed == 0  # not due yet: the server is not hammered
        for f in flows:
            assert {i.status for i in _invoices_of(rt, f)} == {InvoiceStatus.DEPOSEE}
        server.restart()
        with rt.store.engine.begin() as conn:  # time passes
            conn.execute(
                sa.update(tables.outbox).values(next_attempt_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
            )
        report = dispatch.dispatch(rt.outbound)
        assert report.delivered == 6 and report.failed == 0
        assert rt.store.pending_outbox(kind=OutboxKind.DELIVERY) == []
        arrived = sorted((remote / "factures").iterdir(), key=lambda p: p.stat().st_mtime_ns)
        expected = [f"{i.id}.xml" for f in sorted(flows, key=lambda f: f.id) for i in _invoices_of(rt, f)]
        assert [p.name for p in arrived] == expected
        assert not [p for p in (remote / "factures").iterdir() if p.name.startswith(".")]  # no temporary left
        for f in flows:
            assert {i.status for i in _invoices_of(rt, f)} == {InvoiceStatus.MISE_A_DISPOSITION}
    finally:
        server.stop()


def test_without_a_partner_file_an_edi_structure_is_delivered_to_the_folder_and_it_is_logged(edi_rt, plain):
    rt = edi_rt
    name, data = _invoices(plain)
    drop(rt, "op-a", name, data)
    buf = io.StringIO()
    log.configure("INFO", stream=buf)
    try:
        [flow] = run(rt)
    finally:
        log.configure("WARNING")
    [inv] = _invoices_of(rt, flow)
    target = rt.settings.delivery_dir / plain.siret / "_" / f"{inv.id}.xml"
    assert _delivered_files(rt) == [target] and target.read_bytes() == data
    assert inv.status is InvoiceStatus.MISE_A_DISPOSITION and inv.delivered_to == str(target)
    events = [json.loads(line) for line in buf.getvalue().splitlines()]
    [missing] = [e for e in events if e["event"] == "delivery.edi_partner_missing"]
    assert missing["siret"] == plain.siret and missing["invoice_id"] == inv.id
    assert missing["level"] == "warning" and missing["delivered_to"] == "delivery folder"


def test_an_edi_structure_with_the_folder_channel_gets_its_files_in_its_out_folder(edi_rt, plain):
    rt = edi_rt
    _partner_file(rt, plain.siret)  # no [sftp], no [as2]: its folder
    name, data = _invoices(plain, n=2, seed=21)
    drop(rt, "op-a", name, data)
    [flow] = run(rt)
    invoices = _invoices_of(rt, flow)
    out = rt.settings.outbox_dir(plain.siret)
    assert sorted(p.name for p in out.iterdir()) == [f"{i.id}.xml" for i in invoices]
    assert _delivered_files(rt) == []
    for inv in invoices:
        assert inv.status is InvoiceStatus.MISE_A_DISPOSITION and inv.delivered_to == str(out / f"{inv.id}.xml")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_a_partner_file_alone_does_not_make_a_structure_receive_by_edi(settings, tmp_path, recipients, plain):
    rt = Runtime.open(settings)
    try:
        directory.import_file(rt.store, _platform_directory(tmp_path, recipients, edi=set()))
        _partner_file(rt, plain.siret)
        name, data = _invoices(plain)
        drop(rt, "op-a", name, data)
        [flow] = run(rt)
        [inv] = _invoices_of(rt, flow)
        assert _delivered_files(rt) == [rt.settings.delivery_dir / plain.siret / "_" / f"{inv.id}.xml"]
        assert not rt.settings.outbox_dir(plain.siret).exists() or not list(
            rt.settings.outbox_dir(plain.siret).iterdir()
        )
    finally:
        rt.close()


def test_the_edi_rule_alone():
    from connectors.partners import Partner
    from flows.domain.model import Container
    from flows.pipeline.channels import Channels
    from flows.store import Structure
    from relais.compose import edi_delivery

    class Out:
        name, ordered = "folder", False

        def return_address(self, partner_id, file_name):
            from flows.domain.outbox import Address

            return Address("folder", partner_id, f"/out/{partner_id}/{file_name}")

        def sender(self, kind, partner_id):
            raise NotImplementedError

    siret = "11000201100044"
    rule = edi_delivery(lambda: {siret: Partner(siret, "EDI")}, Channels([Out()]))
    edi = Structure(siret, "Commune", True, False, False, False, {}, receives_by_edi=True)
    plain = Structure(siret, "Commune", True, False, False, False, {})
    assert rule(edi, None, "F-00001", Container.PDF).destination == f"/out/{siret}/F-00001.pdf"
    assert rule(edi, "SVC", "F-00002", Container.XML).destination == f"/out/{siret}/F-00002.xml"
    assert rule(plain, None, "F-00003", Container.XML) is None
    assert rule(None, None, "F-00004", Container.XML) is None
    assert edi_delivery(lambda: {}, Channels([Out()]))(edi, None, "F-00005", None) is None
