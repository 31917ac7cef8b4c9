"""Many small flows judged together: their documents go through the validation pool as one stream,
and each flow is then recorded and closed on its own.

A flow of a few documents judged alone stays on one core (the pool judges flows of fewer than
`PoolConfig.inline_below` documents in process), and one-invoice files are the most common shape in
the field. `process_group` takes a group of flows (what `relais run` and one Airflow task process):

1. each flow is claimed, checked (`flows.pipeline.process.prepare`) and, when small (at most
   `SMALL_FLOW_DOCUMENTS` documents), read; this happens lazily, as the pool asks for more documents,
   so reading the next flows overlaps with judging the previous ones;
2. the documents of all the small flows are judged as one stream of jobs through the pool (several
   cores), each under a key of its own;
3. as soon as the last verdict of a flow is back, that flow is recorded, decided and closed
   (`flows.pipeline.process.record`: its own invoices, its own return flow) and handed to `on_closed` (the
   runner dispatches it at once).

Fail closed, per flow: a flow whose checks, reading or recording fail becomes IN_INCIDENTE alone,
the others go on. When the shared stream fails (a worker lost, a chunk over its time budget, an error
raised by the judge), the flows not yet closed are judged again one by one, so only the flow that
caused it becomes an incident. Flows with more documents, and flows whose partner gets the BR-FR
rules (another rule set), are processed one at a time after the stream, as `process_flow` does.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator, Sequence

from flows.domain import lease, log
from flows.domain.model import Flow
from flows.pipeline.process import (
    Pipeline,
    Prepared,
    Progress,
    br_fr,
    claim,
    incident,
    jobs_of,
    prepare,
    read_jobs,
    record,
)
from flows.store import Directory
from validators.document import Verdict
from validators.pool import Job

_log = log.get("relais.batch")

#: A flow with at most this many documents joins its group's stream; a bigger one is judged alone.
SMALL_FLOW_DOCUMENTS = 16
#: A flow whose file is this large, or named as a batch (`BATCH_SUFFIXES`), is claimed only when its turn
#: comes, after the stream: claimed at admission, every zip of a pass would be held by the first process
#: while it judges them one by one, and a second `relais run` (or Airflow task) would find none to take.
DEFER_BYTES = 4 * 1024 * 1024
BATCH_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")

Closed = Callable[[Flow], None]


@dataclasses.dataclass
class _Member:
    """A small flow of the stream: its documents (read), and the verdicts back so far."""

    ready: Prepared
    jobs: list[Job]
    verdicts: list[tuple[Job, Verdict]] = dataclasses.field(default_factory=list)


class _Admission(Exception):
    """Taking a flow into the stream failed outside any flow's processing (raised again once the flows
    already claimed are finished)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@dataclasses.dataclass
class _Group:
    rt: Pipeline
    on_closed: Closed
    stop: Callable[[], bool]
    progress: Callable[[str], Progress] | None = None  # a progress bar for a flow judged alone
    worker: str = dataclasses.field(default_factory=lease.worker_id)
    claimed: dict[str, Flow] = dataclasses.field(default_factory=dict)  # claimed and not yet closed
    done: dict[str, Flow] = dataclasses.field(default_factory=dict)
    alone: list[Prepared] = dataclasses.field(default_factory=list)  # judged one at a time, after the stream
    directory: Directory | None = None
    rulesets: dict[str, str] | None = None

    # ---- admission: claim, check, read ---------------------------------------------------------

    def admit(self, flow_id: str) -> _Member | None:
        """Claim and check a flow; its member when it joins the stream, else None (closed, set aside for
        a judgment of its own, taken by another worker, or an incident)."""
        flow = self.rt.store.get_flow(flow_id)
        if flow is None:
            raise KeyError(f"no flow {flow_id}")
        if flow.status.is_final:
            self.close(flow)
            return None
        with log.bound(flow_id=flow.id, partner=flow.partner):
            if not claim(self.rt, flow, self.worker):
                self.close(self.rt.store.get_flow(flow.id) or flow)  # another worker's
                return None
            self.claimed[flow.id] = flow
            try:
                if self.directory is None:
                    self.directory = self.rt.store.load_directory()
                if self.rulesets is None:
                    self.rulesets = self.rt.judge.versions()
                ready = prepare(self.rt, flow, directory=self.directory, rulesets=self.rulesets)
                if ready is None:
                    self.close(flow)
                    return None
                if ready.total > SMALL_FLOW_DOCUMENTS or br_fr(self.rt, flow):
                    self.alone.append(ready)
                    return None
                jobs = read_jobs(self.rt, ready)
                if jobs is None:
                    self.close(flow)
                    return None
            except Exception as e:  # fail closed, this flow alone
                self.fail(flow, e)
                return None
        member = _Member(ready, jobs)
        if not jobs:  # a reopened flow whose documents are all kept
            self.conclude(member)
            return None
        return member

    # ---- conclusion: record and close, one flow at a time --------------------------------------

    def conclude(self, member: _Member) -> None:
        flow = member.ready.flow
        with log.bound(flow_id=flow.id, partner=flow.partner):
            try:
                record(self.rt, member.ready, member.verdicts)
            except Exception as e:  # fail closed, this flow alone
                self.fail(flow, e)
                return
        self.close(flow)

    def judge_alone(self, ready: Prepared, jobs: list[Job] | None = None) -> None:
        """A flow judged on its own (`process_flow`'s way): a big one, a BR-FR one, or after the stream failed."""
        rt, flow = self.rt, ready.flow
        with log.bound(flow_id=flow.id, partner=flow.partner):
            try:
                progress = self.progress(flow.id) if self.progress else None
                if jobs is None:
                    with rt.archive.open(flow.sha256) as f:
                        expected = ready.total - len(ready.kept)
                        verdicts = rt.judge.judge_all(jobs_of(rt, ready, f), expected=expected, br_fr=br_fr(rt, flow))
                        record(rt, ready, verdicts, progress)
                else:
                    record(rt, ready, rt.judge.judge_all(jobs, expected=len(jobs), br_fr=br_fr(rt, flow)), progress)
            except Exception as e:  # fail closed, this flow alone
                self.fail(flow, e)
                return
        self.close(flow)

    def fail(self, flow: Flow, e: Exception) -> None:
        incident(self.rt, flow, e)
        self.close(flow)

    def close(self, flow: Flow) -> None:
        """Done with this flow (closed, an incident, or not ours to process): hand it to `on_closed`."""
        self.claimed.pop(flow.id, None)
        self.done[flow.id] = flow
        try:
            self.on_closed(flow)
        except Exception as e:  # e.g. its dispatch failed: its outbox rows wait for the next pass
            _log.error("flow.after_close_failed", flow_id=flow.id, error=f"{type(e).__name__}: {e}")

    def renew(self) -> bool:
        """Renew the lease of every flow of the group still open (the lease thread, every third of it)."""
        for flow_id in list(self.claimed):
            self.rt.store.renew_claim(flow_id, self.worker, self.rt.config.lease)
        return True

    # ---- the stream ----------------------------------------------------------------------------

    def run(self, flow_ids: Sequence[str]) -> None:
        """The small flows as one stream, then each likely big one (`deferred`), claimed when its turn comes."""
        now = [fid for fid in flow_ids if not self.deferred(fid)]
        self.stream(now)
        for flow_id in flow_ids:
            if flow_id in self.done or flow_id in now:
                continue
            if self.stop():
                break
            self.alone = []
            self.stream([flow_id])

    def deferred(self, flow_id: str) -> bool:
        """Whether a flow is likely big (`DEFER_BYTES`, `BATCH_SUFFIXES`): a scheduling hint only, its
        documents are judged the same way either way."""
        flow = self.rt.store.get_flow(flow_id)
        if flow is None:
            return False  # admission reports it
        return flow.size >= DEFER_BYTES or flow.original_name.lower().endswith(BATCH_SUFFIXES)

    def stream(self, flow_ids: Sequence[str]) -> None:
        keys = itertools.count()
        index: dict[int, tuple[_Member, Job]] = {}
        members: list[_Member] = []
        admitted = 0

        def feed() -> Iterator[Job]:
            nonlocal admitted
            for flow_id in flow_ids:
                if self.stop():
                    return
                admitted += 1
                try:
                    member = self.admit(flow_id)
                except Exception as e:  # not this flow's fault (the store is down, no such flow): stop here
                    raise _Admission(e) from e
                if member is None:
                    continue
                members.append(member)
                for job in member.jobs:
                    key = next(keys)
                    index[key] = (member, job)
                    yield dataclasses.replace(job, key=key)

        try:
            for keyed, verdict in self.rt.judge.judge_all(feed(), expected=len(flow_ids)):
                member, job = index.pop(keyed.key)
                member.verdicts.append((job, verdict))
                if len(member.verdicts) == len(member.jobs):
                    self.conclude(member)
        except Exception as e:  # the shared stream failed: each open flow is judged alone
            open_members = [m for m in members if m.ready.flow.id in self.claimed]
            _log.warning(
                "group.stream_failed",
                error=f"{type(e).__name__}: {e}",
                flows=len(open_members),
                detail="the flows of the group not yet closed are judged one by one",
            )
            for m in open_members:
                self.judge_alone(m.ready, m.jobs)
            if isinstance(e, _Admission):
                for ready in self.alone:
                    self.judge_alone(ready)
                raise e.error from None
            for flow_id in flow_ids[admitted:]:
                if self.stop():
                    break
                m2 = self.admit(flow_id)
                if m2 is not None:
                    self.judge_alone(m2.ready, m2.jobs)
        for ready in self.alone:
            self.judge_alone(ready)


def process_group(
    rt: Pipeline,
    flow_ids: Sequence[str],
    *,
    on_closed: Closed = lambda flow: None,
    stop: Callable[[], bool] = lambda: False,
    progress: Callable[[str], Progress] | None = None,
) -> list[Flow]:
    """Process a group of flows, small ones judged together (the module doc); `on_closed` is called with
    each flow as soon as it is closed (or became an incident). Once `stop()` says so, no further flow is
    taken; those already claimed are finished. Returns the flows taken, in the group's order."""
    group = _Group(rt, on_closed, stop, progress)
    with lease.Lease(group.renew, every=rt.config.lease.total_seconds() / 3):
        group.run(flow_ids)
    return [group.done[fid] for fid in flow_ids if fid in group.done]
