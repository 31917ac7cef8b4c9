"""Small flows recorded and closed together (flows/pipeline/batch.py `_Group.conclude_many`): the same records and
return flows as flows closed one by one, duplicates found between the flows of one group, and a failure of one
flow (or of the group's transaction) loses and doubles nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest

from flows.domain import lease
from flows.domain.model import FlowStatus
from flows.domain.outbox import OutboxKind
from flows.pipeline import batch
from relais import generate as gen
from relais.compose import Runtime
from relais.runner import pending_flow_ids, process_flows, run_pass
from relais.settings import Settings
from tests.support.helpers import drop

FILES = 12


def _runtime(tmp_path, store_url, directory_file, name: str) -> Runtime:
    from flows.directory import importer as directory

    url, schema = store_url
    if schema is None:  # each runtime its own SQLite file
        url = f"sqlite:///{tmp_path / f'{name}.db'}"
    settings = Settings.from_env(
        tmp_path / name, stable_seconds=0.0, workers=2, database_url=url, database_schema=schema
    )
    runtime = Runtime.open(settings)
    directory.import_file(runtime.store, directory_file[0])
    return runtime


@pytest.fixture
def pooled(tmp_path, store_url, directory_file):
    runtime = _runtime(tmp_path, store_url, directory_file, "home")
    yield runtime
    runtime.close()


def _files(tmp_path, recipients, n: int = FILES, invalid_ratio: float = 0.25) -> list[tuple[str, bytes]]:
    paths = gen.write_batch(
        tmp_path / "gen", "cii", n, 2, batch="none", recipients=recipients, invalid_ratio=invalid_ratio, seed=5
    )
    return [(p.name, p.read_bytes()) for p in paths]


def _drop(rt: Runtime, files: list[tuple[str, bytes]]) -> list[str]:
    from connectors.folder import dropzone

    for i, (name, data) in enumerate(files):
        drop(rt, "op-a" if i % 2 else "op-b", name, data)
    dropzone.scan(rt.intake, rt.settings.dropzones_dir, 0.0)
    return pending_flow_ids(rt)


def _returns(rt: Runtime, flow_id: str) -> list[str]:
    return [
        o.destination
        for o in rt.store.outbox_for_flow(flow_id)
        if o.kind == OutboxKind.RETURN and o.status != "superseded"
    ]


def _batches(monkeypatch) -> list[list[str]]:
    """The flow ids of each call of `conclude_many` (spied on)."""
    seen: list[list[str]] = []
    real = batch._Group.conclude_many

    def spy(self, members):
        seen.append([m.ready.flow.id for m in members])
        return real(self, members)

    monkeypatch.setattr(batch._Group, "conclude_many", spy)
    return seen


_VOLATILE = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def _name(path: str | None) -> str | None:
    return path.replace("\\", "/").rsplit("/", 1)[-1] if path else path


def _state(rt: Runtime, ids: list[str]) -> list[object]:
    """What a run recorded for `ids`: flows, invoices with their findings, history, outbox rows, return flows."""
    out: list[object] = []
    for fid in ids:
        flow = rt.store.get_flow(fid)
        out.append((flow.status, flow.invoice_count, flow.rejected_count, flow.flow_code, flow.profile))
        out.append([(e.rule, e.message) for e in rt.store.flow_errors(fid)])
        for inv in rt.store.iter_invoices(fid):
            out.append(
                (inv.id, inv.status, inv.number, _name(inv.delivered_to), [(e.rule, e.message) for e in inv.errors])
            )
            out.append([(h.status, h.previous, h.actor, h.reason) for h in rt.store.invoice_history(inv.id)])
        for o in rt.store.outbox_for_flow(fid):
            data = rt.archive.read(o.archive_sha256) if o.kind == OutboxKind.RETURN else b""
            out.append(
                (o.key.split(":")[0], o.kind, o.invoice_id, _name(o.destination), o.status, _VOLATILE.sub(b"T", data))
            )
    return out


def test_a_group_records_what_flows_closed_one_by_one_record(tmp_path, store_url, directory_file, monkeypatch):
    files = _files(tmp_path, directory_file[1])
    grouped = _runtime(tmp_path, store_url, directory_file, "grouped")
    try:
        ids = _drop(grouped, files)
        batches = _batches(monkeypatch)
        report = process_flows(grouped, ids)
        assert not report.incidents and len(report.flows) == FILES
        assert sum(len(b) for b in batches) == FILES and len(batches) < FILES  # closed together
        one = _state(grouped, ids)
    finally:
        grouped.close()
    if store_url[1] is not None:  # one PostgreSQL schema: the second run gets a fresh one
        from tests.conftest import private_schema

        with private_schema() as schema:
            alone = _runtime(tmp_path, (store_url[0], schema), directory_file, "alone")
            other = _alone_state(alone, files, monkeypatch)
    else:
        alone = _runtime(tmp_path, store_url, directory_file, "alone")
        other = _alone_state(alone, files, monkeypatch)
    assert one == other
    assert any(s[0] is FlowStatus.IN_REJETE for s in one if isinstance(s, tuple) and len(s) == 5)


def _alone_state(rt: Runtime, files, monkeypatch) -> list[object]:
    try:
        ids = _drop(rt, files)
        monkeypatch.setattr(batch, "_alone", lambda rt, m: True)  # every flow recorded by `process.record`
        report = process_flows(rt, ids)
        assert not report.incidents
        return _state(rt, ids)
    finally:
        rt.close()


def test_a_duplicate_between_two_flows_of_one_group_is_found(pooled, tmp_path, directory_file, monkeypatch):
    files = _files(tmp_path, directory_file[1], invalid_ratio=0.0)
    name, data = files[3]
    files.insert(7, ("copy-" + name, data.replace(b"<?xml", b"<?xml ", 1)))  # other bytes, the same invoice
    ids = _drop(pooled, files)
    batches = _batches(monkeypatch)
    report = process_flows(pooled, ids)
    assert not report.incidents
    by_name = {pooled.store.get_flow(fid).original_name: pooled.store.get_flow(fid) for fid in ids}
    first, copy = by_name[name], by_name["copy-" + name]
    assert any(first.id in b and copy.id in b for b in batches)  # decided in the same group, before either was saved
    statuses = {first.status, copy.status}
    assert statuses == {FlowStatus.IN_INTEGRE, FlowStatus.IN_REJETE}
    kept, dup = (first, copy) if first.status is FlowStatus.IN_INTEGRE else (copy, first)
    [kept_inv] = pooled.store.iter_invoices(kept.id)
    [dup_inv] = pooled.store.iter_invoices(dup.id)
    assert [e.rule for e in dup_inv.errors if e.fatal] == ["RLS-P01"]
    assert kept_inv.id in dup_inv.errors[0].message
    assert report.statuses == {"IN_INTEGRE": len(files) - 1, "IN_REJETE": 1}


def test_one_flow_failing_in_a_group_loses_and_doubles_no_other(pooled, tmp_path, directory_file, monkeypatch):
    ids = _drop(pooled, _files(tmp_path, directory_file[1], invalid_ratio=0.0))
    victim = ids[5]
    real = batch._report

    def report_(rt, flow, errors, invoices):
        if flow.id == victim:
            raise ValueError("this return flow breaks the schema")
        return real(rt, flow, errors, invoices)

    monkeypatch.setattr(batch, "_report", report_)
    report = process_flows(pooled, ids)
    assert report.incidents == [victim]
    for fid in ids:
        flow = pooled.store.get_flow(fid)
        n = 0 if fid == victim else 1
        assert flow.status is (FlowStatus.IN_INCIDENTE if fid == victim else FlowStatus.IN_INTEGRE)
        assert len(list(pooled.store.iter_invoices(fid))) == n and len(_returns(pooled, fid)) == n


def test_a_failed_group_transaction_leaves_each_flow_to_be_recorded_alone(
    pooled, tmp_path, directory_file, monkeypatch
):
    ids = _drop(pooled, _files(tmp_path, directory_file[1], invalid_ratio=0.0))
    calls = []

    def save_invoice_groups(*a, **k):
        calls.append(1)
        raise RuntimeError("deadlock detected")

    monkeypatch.setattr(pooled.store, "save_invoice_groups", save_invoice_groups)
    report = process_flows(pooled, ids)
    assert calls and not report.incidents and report.statuses == {"IN_INTEGRE": FILES}
    for fid in ids:
        assert len(list(pooled.store.iter_invoices(fid))) == 1 and len(_returns(pooled, fid)) == 1


def test_a_crash_between_the_group_transactions_is_finished_once_by_the_rerun(
    pooled, tmp_path, directory_file, monkeypatch
):
    ids = _drop(pooled, _files(tmp_path, directory_file[1], invalid_ratio=0.0))

    class Crash(BaseException):
        pass

    def finish_flows(closing):
        raise Crash  # the process dies with the group's invoices recorded, its flows not closed

    real = pooled.store.finish_flows
    monkeypatch.setattr(pooled.store, "finish_flows", finish_flows)
    with pytest.raises(Crash):
        process_flows(pooled, ids)
    assert any(len(list(pooled.store.iter_invoices(fid))) for fid in ids)  # the first transaction happened
    monkeypatch.setattr(pooled.store, "finish_flows", real)
    pooled.store.release_claims(lease.worker_id())  # as the restart finds them
    run_pass(pooled)
    for fid in ids:
        flow = pooled.store.get_flow(fid)
        assert flow.status is FlowStatus.IN_INTEGRE
        [inv] = pooled.store.iter_invoices(fid)
        assert len(_returns(pooled, fid)) == 1
        assert not [e for e in inv.errors if e.fatal]  # not a duplicate of itself
    assert not pending_flow_ids(pooled)
