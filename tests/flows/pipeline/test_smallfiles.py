"""The small-file regime (flows/pipeline/batch.py): many one-invoice flows judged together through the
validation pool, each one still recorded, closed and answered on its own, and failing on its own."""

from __future__ import annotations

import dataclasses
import json

import pytest

from flows.domain import lease
from flows.domain.model import FlowStatus
from flows.domain.outbox import OutboxKind
from flows.pipeline import dispatch
from relais import generate as gen
from relais import runner, workrate
from relais.compose import Runtime
from relais.runner import pending_flow_ids, pending_groups, process_flows, run_pass
from relais.settings import Settings
from tests.support.helpers import drop, return_flow

FILES = 12  # at least PoolConfig.inline_below documents: the group goes through the pool


@pytest.fixture
def pooled(tmp_path, directory_file):
    """A runtime with two validation workers (whatever the machine), the sample directory imported."""
    from flows.directory import importer as directory

    settings = Settings.from_env(tmp_path / "home", stable_seconds=0.0, workers=2)
    runtime = Runtime.open(settings)
    directory.import_file(runtime.store, directory_file[0])
    yield runtime
    runtime.close()


def _drop_singles(rt: Runtime, tmp_path, recipients, n: int = FILES, *, invalid_ratio: float = 0.0) -> list[str]:
    paths = gen.write_batch(
        tmp_path / "gen", "cii", n, 2, batch="none", recipients=recipients, invalid_ratio=invalid_ratio, seed=3
    )
    for i, path in enumerate(paths):
        drop(rt, "op-a" if i % 2 else "op-b", path.name, path.read_bytes())
    return [p.name for p in paths]


def _returns(rt: Runtime) -> list[str]:
    return sorted(p.name for partner in ("op-a", "op-b") for p in rt.settings.outbox_dir(partner).glob("CR_*"))


def _return_rows(rt: Runtime, flow_id: str) -> int:
    return sum(1 for o in rt.store.outbox_for_flow(flow_id) if o.kind == OutboxKind.RETURN and o.status != "superseded")


def test_a_group_of_small_flows_gives_one_return_flow_per_flow_with_its_outcome(pooled, directory_file, tmp_path):
    _drop_singles(pooled, tmp_path, directory_file[1], invalid_ratio=0.25)
    report = run_pass(pooled)
    assert len(report.flows) == FILES and not report.incidents
    flows = [pooled.store.get_flow(f.id) for f in report.flows]
    assert len(_returns(pooled)) == FILES
    statuses = {f.status for f in flows}
    assert FlowStatus.IN_REJETE in statuses and FlowStatus.IN_INTEGRE in statuses
    for flow in flows:
        assert flow.invoice_count == 1 and _return_rows(pooled, flow.id) == 1
        [inv] = list(pooled.store.iter_invoices(flow.id))
        assert inv.status.is_rejected == (flow.status is FlowStatus.IN_REJETE)
        return_flow(pooled, flow)  # written to the partner's out folder, valid against Relais's XSD


def test_the_documents_of_a_group_are_judged_in_the_worker_processes(pooled, directory_file, tmp_path, monkeypatch):
    from validators.document import DocumentJudge

    def not_here(*_a, **_k):
        raise AssertionError("judged in the parent process")

    monkeypatch.setattr(DocumentJudge, "judge", not_here)  # the workers are other processes: not patched
    _drop_singles(pooled, tmp_path, directory_file[1])
    report = run_pass(pooled)
    assert not report.incidents and report.statuses == {"IN_INTEGRE": FILES}
    assert pooled.pool.state()["running"] == 2


def test_a_flow_that_cannot_be_read_becomes_an_incident_alone(pooled, directory_file, tmp_path, monkeypatch):
    names = _drop_singles(pooled, tmp_path, directory_file[1])
    from connectors.folder import dropzone

    dropzone.scan(pooled.intake, pooled.settings.dropzones_dir, 0.0)
    ids = pending_flow_ids(pooled)
    victim = pooled.store.get_flow(ids[4])
    real_open = pooled.archive.open

    def open_(sha256):
        if sha256 == victim.sha256:
            raise OSError("archive unreachable for this object")
        return real_open(sha256)

    monkeypatch.setattr(pooled.archive, "open", open_)
    report = process_flows(pooled, ids)
    assert report.incidents == [victim.id]
    assert report.statuses == {"IN_INTEGRE": FILES - 1, "IN_INCIDENTE": 1}
    assert len(_returns(pooled)) == FILES - 1  # the incident is retried later: its sender is not told yet
    assert len(names) == FILES


def test_a_flow_whose_judging_fails_becomes_an_incident_alone(pooled, directory_file, tmp_path, monkeypatch):
    _drop_singles(pooled, tmp_path, directory_file[1])
    from connectors.folder import dropzone

    dropzone.scan(pooled.intake, pooled.settings.dropzones_dir, 0.0)
    ids = pending_flow_ids(pooled)
    victim = pooled.store.get_flow(ids[7])
    marked = pooled.archive.read(victim.sha256)
    real = pooled.pool.judge_all
    calls = []

    def judge_all(jobs, *, expected, **kw):
        calls.append(expected)
        for job, verdict in real(jobs, expected=expected, **kw):
            if job.data == marked:
                raise RuntimeError("Saxon failed on this document")
            yield job, verdict

    monkeypatch.setattr(pooled.pipeline.judge, "judge_all", judge_all)
    report = process_flows(pooled, ids)
    assert report.incidents == [victim.id]
    assert report.statuses == {"IN_INTEGRE": FILES - 1, "IN_INCIDENTE": 1}
    assert calls[0] == FILES and len(calls) > 1  # one stream, then the open flows one by one
    for flow_id in ids:
        assert _return_rows(pooled, flow_id) == (0 if flow_id == victim.id else 1)
        assert len(list(pooled.store.iter_invoices(flow_id))) == (0 if flow_id == victim.id else 1)


def test_a_crash_mid_group_records_nothing_twice(pooled, directory_file, tmp_path, monkeypatch):
    _drop_singles(pooled, tmp_path, directory_file[1])
    from connectors.folder import dropzone

    dropzone.scan(pooled.intake, pooled.settings.dropzones_dir, 0.0)
    ids = pending_flow_ids(pooled)
    real = dispatch.dispatch_flows
    sent: list[str] = []

    class Crash(BaseException):
        pass

    def dispatch_flows(outbound, flow_ids):
        if sent:
            raise Crash  # the process dies here (not an Exception: nothing catches it)
        sent.extend(flow_ids)
        return real(outbound, flow_ids)

    monkeypatch.setattr(dispatch, "dispatch_flows", dispatch_flows)
    monkeypatch.setattr(runner, "SEND_EVERY_FLOWS", 4)  # closed flows leave four at a time
    monkeypatch.setattr(runner, "SEND_EVERY_SECONDS", 600.0)
    with pytest.raises(Crash):
        process_flows(pooled, ids)
    monkeypatch.setattr(dispatch, "dispatch_flows", real)
    assert len(sent) == 4
    pooled.store.release_claims(lease.worker_id())  # as the restart finds them: its claims are gone
    run_pass(pooled)  # the restart
    for flow_id in ids:
        flow = pooled.store.get_flow(flow_id)
        assert flow.status is FlowStatus.IN_INTEGRE
        assert _return_rows(pooled, flow_id) == 1
        assert len(list(pooled.store.iter_invoices(flow_id))) == 1
    assert len(_returns(pooled)) == FILES
    assert not pending_flow_ids(pooled)


def test_closed_flows_are_dispatched_together_as_they_close(pooled, directory_file, tmp_path, monkeypatch):
    _drop_singles(pooled, tmp_path, directory_file[1])
    from connectors.folder import dropzone

    dropzone.scan(pooled.intake, pooled.settings.dropzones_dir, 0.0)
    real = dispatch.dispatch_flows
    seen: list[tuple[int, int]] = []

    def spy(outbound, flow_ids):
        seen.append((len(flow_ids), len(_returns(pooled))))
        return real(outbound, flow_ids)

    monkeypatch.setattr(dispatch, "dispatch_flows", spy)
    monkeypatch.setattr(runner, "SEND_EVERY_FLOWS", 5)
    monkeypatch.setattr(runner, "SEND_EVERY_SECONDS", 600.0)
    report = process_flows(pooled, pending_flow_ids(pooled))
    assert seen == [(5, 0), (5, 5), (2, 10)]  # sent five at a time while the group goes on, the rest at its end
    assert report.returned == FILES and report.delivered == FILES


def test_groups_are_sized_by_the_measured_work(pooled, directory_file, tmp_path):
    _drop_singles(pooled, tmp_path, directory_file[1])
    from connectors.folder import dropzone

    dropzone.scan(pooled.intake, pooled.settings.dropzones_dir, 0.0)
    pooled.settings = dataclasses.replace(pooled.settings, group_target_seconds=1.0)
    (pooled.settings.home / workrate.FILE).write_text(json.dumps({"seconds_per_document": 0.25, "measured": 100}))
    assert [len(g.flow_ids) for g in pending_groups(pooled)] == [4, 4, 4]  # 1 s of work at 0.25 s each
    (pooled.settings.home / workrate.FILE).write_text(json.dumps({"seconds_per_document": 0.01, "measured": 100}))
    assert [len(g.flow_ids) for g in pending_groups(pooled)] == [6, 6]  # the work is small: one per worker
    report = process_flows(pooled, pending_flow_ids(pooled))
    assert len(report.flows) == FILES
    rate = workrate.current(pooled)
    assert rate.measured == 100 + FILES and rate.seconds_per_document != 0.01  # this group was measured


def test_a_batch_is_claimed_only_when_its_turn_comes(pooled, directory_file, tmp_path):
    """Claimed at admission, every zip of a pass was held by the first process while it judged them one by
    one: a second process found none to take. Each is claimed now right before it is judged, after the
    group's small flows (judged as one stream), and a batch another worker took meanwhile is left to it."""
    from connectors.folder import dropzone
    from flows.pipeline import batch
    from flows.pipeline.process import WAITING

    singles = _drop_singles(pooled, tmp_path, directory_file[1], n=3)
    zips = [
        p
        for k in range(3)
        for p in gen.write_batch(
            tmp_path / f"zips{k}",
            "ubl",
            20,
            2,
            batch="zip",
            recipients=directory_file[1],
            seed=k + 7,
            name=f"z{k}",
            start=1000 + 100 * k,
        )
    ]
    for path in zips:
        drop(pooled, "op-a", path.name, path.read_bytes())
    dropzone.scan(pooled.intake, pooled.settings.dropzones_dir, 0.0)
    ids = pending_flow_ids(pooled)
    names = {fid: pooled.store.get_flow(fid).original_name for fid in ids}
    batches = [names[f] for f in ids if names[f].endswith(".zip")]  # in the group's order
    assert sorted(batches) == sorted(z.name for z in zips)
    other = next(f for f in ids if names[f] == batches[2])
    seen: list[tuple[str, dict[str, str]]] = []

    def closed(flow) -> None:
        seen.append((names[flow.id], {names[f]: str(pooled.store.get_flow(f).status) for f in ids}))
        if names[flow.id] == batches[0]:  # another worker takes the last zip meanwhile
            assert pooled.store.claim_flow(
                other, WAITING, FlowStatus.IN_EN_COURS_TRAITEMENT_CPP, worker="other:1", lease=pooled.config.lease
            )

    flows = batch.process_group(pooled.pipeline, ids, on_closed=closed)
    order = [name for name, _ in seen]
    assert sorted(order[:3]) == sorted(singles)  # the small flows first, as one stream
    assert order[3:] == batches  # then each batch, in the group's order
    for _, statuses in seen[:3]:  # while the small flows closed, no batch was claimed yet
        assert all(statuses[b] == "IN_RECU" for b in batches), statuses
    assert seen[3][1][batches[1]] == "IN_RECU"  # nor the next batch while the first one was judged
    assert seen[5][1][batches[2]] == "IN_EN_COURS_TRAITEMENT_CPP"  # left to the worker that took it
    done = {names[f.id]: f for f in flows}
    assert done[batches[0]].invoice_count == 20 and done[batches[1]].invoice_count == 20
    assert done[batches[2]].invoice_count == 0 and not done[batches[2]].status.is_final


def test_a_lingering_task_takes_the_files_dropped_after_its_group(pooled, directory_file, tmp_path, monkeypatch):
    """The DAG's `process` task (runner.process_and_linger): its group, then what the drop zones receive
    meanwhile, until nothing comes; with no time to linger, what is dropped waits for the next run."""
    from connectors.folder import dropzone

    monkeypatch.setattr(runner, "LINGER_IDLE_SECONDS", 0.2)
    _drop_singles(pooled, tmp_path, directory_file[1], n=2)
    dropzone.scan(pooled.intake, pooled.settings.dropzones_dir, 0.0)
    first = pending_flow_ids(pooled)
    later = gen.write_batch(
        tmp_path / "later", "cii", 3, 2, batch="none", recipients=directory_file[1], seed=5, start=500
    )
    real = runner.process_flows
    calls: list[list[str]] = []

    def spy(rt, flow_ids, **kwargs):
        calls.append(list(flow_ids))
        if len(calls) == 1:  # dropped while the group is processed
            for path in later:
                drop(rt, "op-a", path.name, path.read_bytes())
        return real(rt, flow_ids, **kwargs)

    monkeypatch.setattr(runner, "process_flows", spy)
    report = runner.process_and_linger(pooled, first, linger_seconds=0.0)
    assert [f.id for f in report.flows] == first and len(calls) == 1  # no lingering: the rest waits
    assert len(_returns(pooled)) == 2
    report = runner.process_and_linger(pooled, [], linger_seconds=600.0, share=(1, 2))
    assert sorted(f.original_name for f in report.flows) == sorted(p.name for p in later)
    assert report.returned == 3 and not report.incidents
    assert len(_returns(pooled)) == 5 and not pending_flow_ids(pooled)


def test_a_task_that_lingers_leaves_the_flows_another_took(pooled, directory_file, tmp_path, monkeypatch):
    """Two tasks linger at once: a flow the other one claimed is neither processed nor counted twice."""
    from connectors.folder import dropzone
    from flows.pipeline.process import WAITING

    monkeypatch.setattr(runner, "LINGER_IDLE_SECONDS", 0.2)
    _drop_singles(pooled, tmp_path, directory_file[1], n=4)
    dropzone.scan(pooled.intake, pooled.settings.dropzones_dir, 0.0)
    ids = pending_flow_ids(pooled)
    taken = ids[1]
    real = runner.pending_flow_ids
    looks: list[list[str]] = []

    def racing(rt):  # the other task claims a flow just after this one listed it
        pending = real(rt)
        looks.append(pending)
        if len(looks) == 1:
            assert pooled.store.claim_flow(
                taken, WAITING, FlowStatus.IN_EN_COURS_TRAITEMENT_CPP, worker="other:1", lease=pooled.config.lease
            )
        return pending

    monkeypatch.setattr(runner, "pending_flow_ids", racing)
    report = runner.process_and_linger(pooled, [], linger_seconds=600.0)
    assert taken in looks[0]
    assert sorted(f.id for f in report.flows) == sorted(set(ids) - {taken})
    assert sum(report.statuses.values()) == 3 and report.returned == 3
    assert pooled.store.get_flow(taken).status is FlowStatus.IN_EN_COURS_TRAITEMENT_CPP
