"""Incidents are retried with backoff, then parked and reported; ops reprocess them; nothing twice.

Also: a flow's return flow leaves as soon as it is closed, in its partner's order; the store's
schema is migrated once (`relais db upgrade`), not by every task.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from click.testing import CliRunner

from flows.domain import technical
from flows.domain.model import FlowStatus
from flows.pipeline import dispatch
from flows.pipeline.process import process_flow
from flows.store import SchemaOutdated, Store
from relais import generate as gen
from relais import runner
from relais.cli import main
from relais.compose import Runtime
from relais.runner import pending_flow_ids, process_flows, run_pass
from tests.support.helpers import drop, return_flow, rf_error_codes


def _explode(*_a, **_k):
    raise RuntimeError("stylesheet store unreachable")


@pytest.fixture
def failing(monkeypatch):
    """Judging fails internally (an incident) until `failing.undo()`."""
    from validators.document import DocumentJudge

    monkeypatch.setattr(DocumentJudge, "judge", _explode)
    return monkeypatch


def _zip(tmp_path, recipients, n=3, seed=7, start=1):
    [path] = gen.write_batch(
        tmp_path / f"gen{seed}", "ubl", n, 2, batch="zip", recipients=recipients, seed=seed, start=start
    )
    return path


def test_incident_is_retried_with_backoff_then_parked_and_its_sender_told(rt, directory_file, tmp_path, failing):
    import dataclasses

    rt.settings = dataclasses.replace(rt.settings, incident_retries=2, incident_backoff_seconds=0.0)
    path = _zip(tmp_path, directory_file[1])
    drop(rt, "op-a", path.name, path.read_bytes())
    report = run_pass(rt)
    [flow] = report.flows
    assert flow.status is FlowStatus.IN_INCIDENTE and flow.incidents == 1 and not flow.parked
    assert report.incidents == [flow.id]
    assert not list(rt.settings.outbox_dir("op-a").glob("*.xml"))  # nothing told yet: it will be retried
    assert pending_flow_ids(rt) == [flow.id]  # due again (backoff 0)

    flow = process_flows(rt, pending_flow_ids(rt)).flows[0]
    assert flow.incidents == 2 and not flow.parked
    flow = process_flows(rt, pending_flow_ids(rt)).flows[0]
    assert flow.incidents == 3 and flow.parked and flow.retry_at is None  # 1 try + 2 retries: parked
    assert pending_flow_ids(rt) == []  # parked: never taken again by itself
    root = return_flow(rt, flow)  # the partner hears of it, with the rule and a readable reason
    assert root.findtext(".//CPPFluxStatut/StatutFlux") == "IN_INCIDENTE"
    assert root.findtext(".//CPPFluxStatut/IdStatut") == "93"
    assert rf_error_codes(root) == ["RLS-T99"]
    told = root.findtext(".//LigneErreurDetail/DescriptionErreur", "")
    assert told == technical.INTERNAL_ERROR.message_fr  # readable, French: retried, then by ops; not to resend
    assert "stylesheet store" not in "".join(root.itertext())  # the failure's specifics are for ops only
    [finding] = rt.store.flow_errors(flow.id)
    assert "stylesheet store unreachable" in finding.message and "parked" in finding.message  # which ops read
    assert rt.store.incident_counts() == (0, 1)


def test_retry_waits_for_its_backoff(rt, directory_file, tmp_path, failing):
    path = _zip(tmp_path, directory_file[1])
    drop(rt, "op-a", path.name, path.read_bytes())
    [flow] = run_pass(rt).flows
    assert flow.retry_at is not None and (flow.retry_at - flow.updated_at).total_seconds() >= 59
    assert pending_flow_ids(rt) == []  # its minute has not come
    assert rt.store.incident_counts() == (1, 0)


def test_reprocess_cli_integrates_a_parked_flow_and_delivers_nothing_twice(tmp_path, directory_file, monkeypatch):
    path, recipients = directory_file
    home = tmp_path / "home"
    cli = CliRunner()

    def relais(*args):
        return cli.invoke(main, ["--home", str(home), *map(str, args)], catch_exceptions=False)

    monkeypatch.setenv("RELAIS_INCIDENT_RETRIES", "0")
    inbox = home / "dropzones" / "op-a" / "in"
    [batch] = gen.write_batch(inbox, "ubl", 4, 2, batch="zip", recipients=recipients, seed=5)
    old = time.time() - 60
    os.utime(batch, (old, old))
    refused = relais("run", "-q")  # no directory imported: nothing is taken (tests/relais/cli/test_cli_ux.py)
    assert refused.exit_code == 2 and "aucun annuaire" in refused.stderr and batch.exists()
    # An incident all the same: the check skipped, every flow fails routing (parked at once: 0 retries).
    monkeypatch.setattr(runner, "directory_missing", lambda _rt: None)
    result = relais("run", "-q")
    assert result.exit_code == 1, result.output
    assert "devenu(s) incident(s)" in result.stderr and "relais flows reprocess" in result.stderr
    listing = json.loads(relais("flows", "--json").stdout)
    [flow] = listing["flows"]
    assert flow["status"] == "IN_INCIDENTE" and flow["parked"] is True
    assert "1 en attente de l'équipe" in relais("flows").stdout

    bad = relais("flows", "reprocess", "CPP0000000099")
    assert bad.exit_code == 2 and "aucun flux CPP0000000099" in bad.stderr
    assert relais("directory", "import", path).exit_code == 0
    monkeypatch.undo()  # the real check again (and RELAIS_INCIDENT_RETRIES unset: no more incidents expected)
    result = relais("flows", "reprocess", "--status", "IN_INCIDENTE")
    assert result.exit_code == 0, result.output
    assert "IN_INTEGRE" in result.stdout
    again = relais("flows", "reprocess", flow["id"])  # a closed flow is not reprocessed
    assert again.exit_code == 2 and "seuls les flux IN_INCIDENTE" in again.stderr
    assert f"relais flows reprocess: {flow['id']} est intégré (IN_INTEGRE) : " in again.stderr, again.stderr
    assert again.stderr.count(flow["id"]) == 1  # the flow named once
    nothing = relais("flows", "reprocess")
    assert nothing.exit_code == 2 and nothing.stderr.startswith("relais flows reprocess: indiquez des flux")
    out = sorted(p.name for p in (home / "dropzones" / "op-a" / "out").iterdir())
    assert out == [f"CR_{flow['id']}_IN_INCIDENTE.xml", f"CR_{flow['id']}_IN_INTEGRE.xml"]
    assert len([p for p in (home / "delivery").rglob("*.xml")]) == 4


def test_reprocessing_never_delivers_an_invoice_twice(rt, directory_file, tmp_path):
    """A flow whose deliveries went out before it was taken again (a worker that died after closing it
    and before recording so): its invoices are recorded as delivered, not delivered again."""
    path = _zip(tmp_path, directory_file[1], n=5)
    drop(rt, "op-a", path.name, path.read_bytes())
    run_pass(rt)
    [flow] = rt.store.list_flows()
    before = {p: p.stat().st_mtime_ns for p in rt.settings.delivery_dir.rglob("*.xml")}
    assert len(before) == 5
    flow.status = FlowStatus.IN_INCIDENTE  # as if it had become an incident after its deliveries left
    rt.store.update_flow(flow)
    assert rt.store.requeue_flow(flow.id)
    again = process_flow(rt.pipeline, flow.id)
    sent = dispatch.dispatch_flow(rt.outbound, flow.id)
    assert again.status is FlowStatus.IN_INTEGRE and sent.delivered == 0
    assert {p: p.stat().st_mtime_ns for p in rt.settings.delivery_dir.rglob("*.xml")} == before
    assert all(inv.delivered_to for inv in rt.store.iter_invoices(flow.id))


def test_each_return_flow_leaves_when_its_flow_closes(rt, directory_file, tmp_path, monkeypatch):
    recipients = directory_file[1]
    for i in range(3):
        path = _zip(tmp_path, recipients, n=2, seed=30 + i, start=100 * i + 1)
        drop(rt, "op-a", path.name, path.read_bytes())
    from relais.runner import intake

    intake(rt)
    seen = []
    real = dispatch.dispatch_flow

    def spy(rt_, flow_id):
        out = rt.settings.outbox_dir("op-a")
        seen.append((flow_id, len(list(out.glob("*.xml"))) if out.exists() else 0))
        return real(rt_, flow_id)

    monkeypatch.setattr(dispatch, "dispatch_flow", spy)
    monkeypatch.setattr(runner, "SEND_EVERY_FLOWS", 1)  # small flows leave a few at a time: here one by one
    report = process_flows(rt, pending_flow_ids(rt))
    assert [n for _, n in seen] == [0, 1, 2]  # each flow's return flow was out before the next one started
    assert report.returned == 3 and report.delivered == 6


def test_a_task_store_is_checked_not_migrated(settings, tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    with pytest.raises(SchemaOutdated, match="relais db upgrade"):
        Store.open(url, migrate=False)
    Store.open(url).close()  # migrates
    Store.open(url, migrate=False).close()  # up to date: fine


def test_db_upgrade_and_status(tmp_path):
    cli = CliRunner()
    home = tmp_path / "h"
    status = cli.invoke(main, ["--home", str(home), "db", "status"])
    assert status.exit_code == 1 and "relais db upgrade" in status.stdout
    up = cli.invoke(main, ["--home", str(home), "db", "upgrade"])
    from flows.store import head_revision

    assert up.exit_code == 0 and f"révision {head_revision()} (dernière : {head_revision()})" in up.stdout
    assert cli.invoke(main, ["--home", str(home), "db", "status"]).exit_code == 0
    assert cli.invoke(main, ["--home", str(home), "db", "upgrade"]).exit_code == 0  # idempotent


def test_flows_json_pages_with_a_cursor(rt, directory_file, tmp_path):
    for i in range(5):
        drop(rt, "op-a", f"n{i}.txt", f"not an invoice {i}\n".encode())
    run_pass(rt)
    cli = CliRunner()
    seen, cursor = [], None
    while True:
        args = ["--home", str(rt.settings.home), "flows", "--json", "--limit", "2"]
        page = json.loads(cli.invoke(main, args + (["--cursor", cursor] if cursor else [])).stdout)
        seen += [f["id"] for f in page["flows"]]
        assert len(page["flows"]) <= 2
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == 5
    text = cli.invoke(main, ["--home", str(rt.settings.home), "flows", "--limit", "2"]).stdout
    assert f"suite : relais flows --cursor {seen[1]} --limit 2" in text


def test_runtime_for_tasks_refuses_an_old_schema(settings):
    with pytest.raises(SchemaOutdated):
        Runtime.open(settings, migrate=False)
