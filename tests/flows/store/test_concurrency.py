"""Many workers on one store: leases on claims, outbox leases, unique invoice numbers, prompt takeover."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.domain import lease
from flows.domain.lifecycle import FlowStatus, InvoiceStatus
from flows.domain.model import utcnow
from flows.pipeline import dispatch
from flows.pipeline.process import process_flow
from flows.store import tables as t
from relais import generate as gen
from relais.runner import pending_flow_ids, run_once
from tests.conftest import PG_URL
from tests.support.helpers import drop

ROOT = Path(__file__).resolve().parents[3]


def _zip(recipients, *, n=2, seed=1, start=1, salt=b""):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for spec in gen.plan(n, 2, recipients, seed=seed, start=start):
            entry, data = gen.document("ubl", spec)
            z.writestr(entry, data + salt)
    return buf.getvalue()


def _received(rt, name, data, partner="op-a"):
    drop(rt, partner, name, data)
    from relais.runner import intake

    [flow] = intake(rt)
    return flow


def _claim_as(rt, flow_id, worker, until):
    with rt.store.engine.begin() as conn:
        conn.execute(
            sa.update(t.flows)
            .where(t.flows.c.id == flow_id)
            .values(status=str(FlowStatus.IN_EN_COURS_TRAITEMENT_CPP), claimed_by=worker, lease_until=until)
        )


def test_a_dead_local_workers_claim_is_taken_over_at_once(rt, directory_file):
    flow = _received(rt, "a.zip", _zip(directory_file[1]))
    host, _, _ = lease.WORKER.split(":")
    _claim_as(rt, flow.id, f"{host}:999999:1", utcnow() + dt.timedelta(hours=1))  # killed, lease far ahead
    assert pending_flow_ids(rt) == [flow.id]  # no 30-minute wait: its process is gone
    assert process_flow(rt.pipeline, flow.id).status is FlowStatus.IN_INTEGRE


def test_a_live_lease_elsewhere_is_respected_and_an_expired_one_taken_over(rt, directory_file):
    flow = _received(rt, "a.zip", _zip(directory_file[1]))
    _claim_as(rt, flow.id, "other-host:42:1", utcnow() + dt.timedelta(minutes=5))
    assert pending_flow_ids(rt) == []
    assert process_flow(rt.pipeline, flow.id).status is FlowStatus.IN_EN_COURS_TRAITEMENT_CPP  # not ours
    _claim_as(rt, flow.id, "other-host:42:1", utcnow() - dt.timedelta(seconds=1))  # it stopped renewing
    assert pending_flow_ids(rt) == [flow.id]
    assert process_flow(rt.pipeline, flow.id).status is FlowStatus.IN_INTEGRE


def test_a_claim_is_renewed_while_the_flow_is_processed(rt, directory_file, monkeypatch):
    rt.pipeline.config = __import__("dataclasses").replace(rt.pipeline.config, lease=dt.timedelta(seconds=0.3))
    flow = _received(rt, "a.zip", _zip(directory_file[1]))
    renewals = []
    real = rt.store.renew_claim

    def renew(flow_id, worker, span):
        renewals.append(worker)
        return real(flow_id, worker, span)

    monkeypatch.setattr(rt.store, "renew_claim", renew)
    slow = rt.pipeline.judge.judge_all

    def judge_all(jobs, **kw):
        import time

        time.sleep(0.5)  # longer than the lease: only the renewals keep the claim
        yield from slow(jobs, **kw)

    monkeypatch.setattr(rt.pipeline.judge, "judge_all", judge_all)
    assert process_flow(rt.pipeline, flow.id).status is FlowStatus.IN_INTEGRE
    assert renewals and set(renewals) == {lease.worker_id()}


def test_two_flows_judged_at_once_cannot_both_accept_one_invoice_number(rt, directory_file, monkeypatch):
    recipients = directory_file[1]
    first = _received(rt, "a.zip", _zip(recipients, n=1))
    second = _received(rt, "b.zip", _zip(recipients, n=1, salt=b"<!-- other file -->"))
    # Both flows passed the duplicate rule before either was saved (as two workers at the same moment).
    monkeypatch.setattr(rt.store, "find_invoice", lambda *a, **k: None)
    assert process_flow(rt.pipeline, first.id).status is FlowStatus.IN_INTEGRE
    lost = process_flow(rt.pipeline, second.id)
    assert lost.status is FlowStatus.IN_REJETE and lost.rejected_count == 1
    [inv] = rt.store.iter_invoices(second.id)
    assert inv.status is InvoiceStatus.REJETEE and [e.rule for e in inv.errors] == ["RLS-P01"]
    assert first.id in inv.errors[0].message
    dispatch.dispatch(rt.outbound)
    assert not [o for o in rt.store.outbox_for_flow(second.id) if o.kind == "delivery"]  # never delivered


def test_an_outbox_row_leased_by_another_dispatcher_is_left_to_it(rt, directory_file, monkeypatch):
    flow = _received(rt, "a.zip", _zip(directory_file[1]))
    monkeypatch.setattr(dispatch, "dispatch_flow", lambda *a, **k: dispatch.DispatchReport())
    from relais.runner import process_flows

    process_flows(rt, [flow.id])  # closed, nothing sent yet
    rows = rt.store.pending_outbox(flow_id=flow.id)
    assert rt.store.lease_outbox(rows, "other-host:7:7", dt.timedelta(minutes=5)) == {r.id for r in rows}
    assert dispatch.dispatch(rt.outbound).delivered == 0  # held elsewhere: not sent twice at once
    rt.store.release_outbox([r.id for r in rows], "other-host:7:7")
    report = dispatch.dispatch(rt.outbound)
    assert report.delivered == 2 and report.returned == 1
    assert rt.store.pending_outbox(flow_id=flow.id) == []


@pytest.mark.postgres
def test_two_relais_run_processes_on_one_postgresql_store_do_everything_once(tmp_path, directory_file, pg_schema):
    """Two `relais run` processes at the same time over one PostgreSQL store and one home."""
    schema = pg_schema
    home = tmp_path / "home"
    env = {
        **os.environ,
        "RELAIS_HOME": str(home),
        "RELAIS_DATABASE_URL": PG_URL,
        "RELAIS_DATABASE_SCHEMA": schema,
        "RELAIS_STABLE_SECONDS": "0",
        "RELAIS_WORKERS": "0",
        "RELAIS_LOG_LEVEL": "WARNING",
    }
    relais = [sys.executable, "-m", "relais.cli"]
    subprocess.run([*relais, "directory", "import", str(directory_file[0])], env=env, check=True, cwd=ROOT)
    inbox = home / "dropzones" / "op-a" / "in"
    inbox.mkdir(parents=True)
    for k in range(8):
        (inbox / f"b{k}.zip").write_bytes(_zip(directory_file[1], n=3, seed=k + 1, start=100 * k + 1))
        old = utcnow().timestamp() - 60
        os.utime(inbox / f"b{k}.zip", (old, old))
    procs = [subprocess.Popen([*relais, "run", "-q"], env=env, cwd=ROOT) for _ in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    subprocess.run([*relais, "run", "-q"], env=env, check=True, cwd=ROOT)  # whatever is left
    from flows.store import Store

    store = Store.open(PG_URL, schema=schema)
    flows = store.list_flows(limit=100)
    assert len(flows) == 8 and all(f.status is FlowStatus.IN_INTEGRE for f in flows)
    with store.engine.connect() as conn:
        o = t.outbox.c
        rows = conn.execute(sa.select(o.kind, o.key, o.status)).all()
        history = conn.execute(sa.select(t.invoice_history.c.invoice_id, t.invoice_history.c.status)).all()
    deliveries = [r for r in rows if r.kind == "delivery"]
    assert len(deliveries) == 24 and {r.status for r in rows} == {"sent"}
    assert len({r.key for r in deliveries}) == 24
    assert len(history) == len(set(history)) == 48  # each invoice: 01 once, 03 once
    delivered = [p for p in (home / "delivery").rglob("*.xml")]
    assert len(delivered) == 24
    assert len(list((home / "dropzones" / "op-a" / "out").glob("CR_*.xml"))) == 8
    store.close()


def test_pending_flows_ignore_live_leases(rt, directory_file):
    flow = _received(rt, "a.zip", _zip(directory_file[1]))
    _claim_as(rt, flow.id, lease.worker_id(), utcnow() + dt.timedelta(minutes=1))  # ourselves, alive
    assert pending_flow_ids(rt) == []
    run_once(rt)
    assert rt.store.get_flow(flow.id).status is FlowStatus.IN_EN_COURS_TRAITEMENT_CPP


def test_outbox_rows_leased_by_a_killed_dispatcher_are_sent_at_once(rt, directory_file, monkeypatch):
    flow = _received(rt, "a.zip", _zip(directory_file[1]))
    monkeypatch.setattr(dispatch, "dispatch_flow", lambda *a, **k: dispatch.DispatchReport())
    from relais.runner import process_flows

    process_flows(rt, [flow.id])
    rows = rt.store.pending_outbox(flow_id=flow.id)
    host = lease.HOST
    assert rt.store.lease_outbox(rows, f"{host}:999999:1", dt.timedelta(minutes=5))  # then it was killed
    report = dispatch.dispatch(rt.outbound)  # no five-minute wait: its process is gone
    assert report.delivered == 2 and report.returned == 1
