"""End to end: drop zone -> archive -> flow -> split -> validate -> route -> deliveries + return flow."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from flows.domain.model import FlowCode, FlowStatus, InvoiceStatus
from flows.pipeline import dispatch
from flows.pipeline.process import process_flow
from relais import generate as gen
from tests.support.helpers import drop, return_flow, rf_error_codes, run

DEFECT_RULES = {
    "xsd-amount": "XSD",
    "xsd-missing-id": "XSD",
    "unknown-siret": "RLS-R03",
    "bad-siret-checksum": "RLS-R02",
    "missing-service": "RLS-R05",
    "missing-ej": "RLS-R08",
    "inactive-recipient": "RLS-R04",
    "unknown-service": "RLS-R06",
    "inactive-service": "RLS-R07",
}


def _batch(tmp_path, fmt, n, batch, recipients, **kw):
    out = tmp_path / f"gen-{fmt}-{batch}"
    [path] = gen.write_batch(out, fmt, n, 3, batch=batch, recipients=recipients, **kw)
    return path


@pytest.mark.parametrize("fmt,batch", [("ubl", "zip"), ("cii", "tar.gz")])
def test_batch_with_invalid_and_misrouted_invoices(rt, directory_file, tmp_path, fmt, batch):
    _, recipients = directory_file
    path = _batch(tmp_path, fmt, 40, batch, recipients, invalid_ratio=0.15, misrouted_ratio=0.2, seed=5)
    specs = list(gen.plan(40, 3, recipients, 0.15, 0.2, seed=5))
    defects = {i + 1: s.defect for i, s in enumerate(specs) if s.defect}
    assert defects, "the plan must contain defects for this test to mean anything"
    inbox_file = drop(rt, "op-a", path.name, path.read_bytes())

    [flow] = run(rt)

    assert not inbox_file.exists()
    assert rt.archive.read(flow.sha256) == path.read_bytes()  # archived, byte for byte
    assert flow.status is FlowStatus.IN_INTEGRE_PARTIEL
    assert flow.flow_code is (FlowCode.E1_UBL if fmt == "ubl" else FlowCode.E1_CII)
    assert (flow.invoice_count, flow.rejected_count) == (40, len(defects))
    invoices = list(rt.store.iter_invoices(flow.id))
    for inv in invoices:
        if inv.position in defects:
            expected = DEFECT_RULES[defects[inv.position]]
            assert inv.status.is_rejected
            assert expected in {e.rule for e in inv.errors}, (inv.position, defects[inv.position], inv.errors)
            assert inv.delivered_to is None
        else:
            assert inv.status is InvoiceStatus.MISE_A_DISPOSITION, inv.errors  # accepted, then delivered
            assert inv.delivered_to and os.path.isfile(inv.delivered_to)
            parts = inv.delivered_to.split(os.sep)
            assert parts[-3] == inv.buyer_siret and parts[-2] == (inv.service_code or "_")
    xsd_rejected = [i for i in invoices if any(e.rule == "XSD" for e in i.errors)]
    assert all(e.location.startswith("line ") for i in xsd_rejected for e in i.errors if e.rule == "XSD")
    assert all(i.status is InvoiceStatus.REJETEE for i in xsd_rejected)

    root = return_flow(rt, flow)
    assert root.findtext(".//CPPFluxStatut/StatutFlux") == "IN_INTEGRE_PARTIEL"
    entries = root.findall(".//CPPFactureStatut")
    assert len(entries) == 40
    rejected_entries = [e for e in entries if e.findtext("DonneesStatut/LibelleStatut") == "REJETEE"]
    assert len(rejected_entries) == len(defects)
    assert set(rf_error_codes(root)) == {DEFECT_RULES[d] for d in defects.values()}


def test_facturx_pdfs_are_routed_as_pdf(rt, directory_file, tmp_path):
    _, recipients = directory_file
    path = _batch(tmp_path, "facturx", 3, "zip", recipients, seed=3)
    drop(rt, "op-fx", path.name, path.read_bytes())
    [flow] = run(rt)
    assert flow.status is FlowStatus.IN_INTEGRE, list(rt.store.iter_invoices(flow.id))
    assert flow.flow_code is FlowCode.E2_FACTURX
    for inv in rt.store.iter_invoices(flow.id):
        assert inv.delivered_to.endswith(".pdf")
        with open(inv.delivered_to, "rb") as f:
            assert f.read(5) == b"%PDF-"


def test_single_invoice_failing_xsd_rejects_the_flow(rt, directory_file, tmp_path):
    _, recipients = directory_file
    spec = next(s for s in gen.plan(50, 2, recipients, invalid_ratio=1.0, seed=2) if s.defect == "xsd-amount")
    name, data = gen.document("ubl", spec)
    drop(rt, "op-a", name, data)
    [flow] = run(rt)
    assert flow.status is FlowStatus.IN_REJETE
    [inv] = rt.store.iter_invoices(flow.id)
    [err] = [e for e in inv.errors if e.rule == "XSD"][:1]
    assert err.location.startswith("line ") and "PriceAmount" in err.message and "not a valid value" in err.message
    assert "XSD" in rf_error_codes(return_flow(rt, flow))


def test_reprocessing_and_redispatch_never_duplicate(rt, directory_file, tmp_path):
    _, recipients = directory_file
    path = _batch(tmp_path, "ubl", 10, "zip", recipients, seed=4)
    drop(rt, "op-a", path.name, path.read_bytes())
    [flow] = run(rt)
    delivered = sorted(p for p in rt.settings.delivery_dir.rglob("*") if p.is_file())
    assert len(delivered) == 10
    again = process_flow(rt.pipeline, flow.id)  # closed: returned as is
    assert again.status is flow.status
    report = dispatch.dispatch(rt.outbound)
    assert (report.delivered, report.returned) == (0, 0)
    assert sorted(p for p in rt.settings.delivery_dir.rglob("*") if p.is_file()) == delivered
    assert len(list(rt.settings.outbox_dir("op-a").glob("CR_*"))) == 1  # one integration report


def test_archive_first_file_stays_in_inbox_when_recording_fails(rt, monkeypatch):
    from connectors.folder import dropzone

    data = b"<x/>"
    path = drop(rt, "op-a", "a.xml", data)

    def broken(*a, **k):
        raise RuntimeError("database down")

    monkeypatch.setattr(rt.store, "create_flow", broken)
    with pytest.raises(RuntimeError):
        dropzone.scan(rt.intake, rt.settings.dropzones_dir, rt.settings.stable_seconds)
    assert path.exists()  # not removed: nothing was recorded
    assert rt.archive.exists(hashlib.sha256(data).hexdigest())  # but its bytes are archived


def test_incomplete_files_are_not_taken(rt, tmp_path):
    from connectors.folder import dropzone

    inbox = rt.settings.inbox("op-a")
    inbox.mkdir(parents=True)
    (inbox / "lot.zip.part").write_bytes(b"PK")
    (inbox / ".hidden.xml").write_bytes(b"<a/>")
    fresh = inbox / "fresh.xml"
    fresh.write_bytes(b"<a/>")
    found = list(dropzone.candidates(rt.settings.dropzones_dir, stable_seconds=30))
    assert found == []
    old = time.time() - 60
    os.utime(fresh, (old, old))
    assert [c.path.name for c in dropzone.candidates(rt.settings.dropzones_dir, stable_seconds=30)] == ["fresh.xml"]


def test_internal_failure_is_an_incident_not_a_verdict(rt, directory_file, tmp_path, monkeypatch):
    _, recipients = directory_file
    path = _batch(tmp_path, "ubl", 3, "zip", recipients, seed=7)
    drop(rt, "op-a", path.name, path.read_bytes())

    def explode(*a, **k):
        raise MemoryError("worker out of memory")

    from validators.document import DocumentJudge

    monkeypatch.setattr(DocumentJudge, "judge", explode)
    [flow] = run(rt)
    assert flow.status is FlowStatus.IN_INCIDENTE
    assert [e.rule for e in rt.store.flow_errors(flow.id)] == ["RLS-T99"]
    assert list(rt.store.iter_invoices(flow.id)) == []
    assert list(rt.settings.delivery_dir.rglob("*.xml")) == []
    assert not rt.settings.outbox_dir("op-a").exists() or not list(rt.settings.outbox_dir("op-a").glob("CR_*"))
    monkeypatch.undo()
    assert flow.retry_at is not None and not flow.parked
    assert process_flow(rt.pipeline, flow.id).status is FlowStatus.IN_INCIDENTE  # not before its retry time
    assert rt.store.requeue_flow(flow.id)  # what `relais flows reprocess` does
    flow = process_flow(rt.pipeline, flow.id)  # reprocessing after the incident
    assert flow.status is FlowStatus.IN_INTEGRE


def test_no_directory_is_an_incident(settings, tmp_path):
    from relais.compose import Runtime

    rt = Runtime.open(settings)
    recipients = gen.sample_directory()
    name, data = gen.document("ubl", next(gen.plan(1, 1, recipients)))
    drop(rt, "op-a", name, data)
    [flow] = run(rt)
    assert flow.status is FlowStatus.IN_INCIDENTE
    assert "directory" in rt.store.flow_errors(flow.id)[0].message


def test_a_flow_left_in_progress_by_a_dead_worker_is_picked_up_again(rt, directory_file, tmp_path):
    import datetime as dt

    import sqlalchemy as sa

    from flows.store import tables
    from relais.runner import pending_flow_ids

    _, recipients = directory_file
    name, data = gen.document("ubl", next(gen.plan(1, 1, recipients, seed=21)))
    drop(rt, "op-a", name, data)
    from connectors.folder import dropzone

    [flow] = dropzone.scan(rt.intake, rt.settings.dropzones_dir, rt.settings.stable_seconds)
    assert rt.store.claim_flow(flow.id, [FlowStatus.IN_RECU], FlowStatus.IN_EN_COURS_TRAITEMENT_CPP)
    assert pending_flow_ids(rt) == []  # a live worker has it
    with rt.store.engine.begin() as conn:  # ...until it has not been heard of for long
        conn.execute(sa.update(tables.flows).values(updated_at=flow.updated_at - dt.timedelta(hours=1)))
    assert pending_flow_ids(rt) == [flow.id]
    assert process_flow(rt.pipeline, flow.id).status is FlowStatus.IN_INTEGRE


def test_whole_path_on_each_store(store_url, tmp_path, directory_file):
    """The same run on SQLite and on PostgreSQL gives the same outcome."""
    from flows.directory import importer as directory
    from relais.compose import Runtime
    from relais.settings import Settings

    url, schema = store_url
    settings = Settings.from_env(tmp_path / "h", stable_seconds=0.0, database_url=url, database_schema=schema)
    rt = Runtime.open(settings)
    try:
        path_, recipients = directory_file
        directory.import_file(rt.store, path_)
        path = _batch(tmp_path, "cii", 20, "zip", recipients, invalid_ratio=0.1, misrouted_ratio=0.1, seed=8)
        drop(rt, "op-a", path.name, path.read_bytes())
        [flow] = run(rt)
        defects = sum(1 for s in gen.plan(20, 3, recipients, 0.1, 0.1, seed=8) if s.defect)
        assert (flow.status, flow.invoice_count, flow.rejected_count) == (FlowStatus.IN_INTEGRE_PARTIEL, 20, defects)
        assert flow.directory_version == "test-1"
        assert len(list(rt.store.iter_invoices(flow.id))) == 20
        assert rt.store.pending_outbox() == []
    finally:
        rt.close()
