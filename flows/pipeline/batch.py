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

Small flows whose verdicts are all back are recorded and closed together, `GROUP_CLOSE` at a time
(`_Group.conclude_many`): one query for the duplicate lookups of all their invoices (RLS-P01, `_Lookup`: a
duplicate between two flows of the group is found as when each was recorded before the next one was decided),
one transaction for all their invoices, findings, history and deliveries (`Store.save_invoice_groups`), their
return flows written from two reads, one transaction closing them all (`Store.finish_flows`). A reopened or
qualification flow, a CDAR partner's, one with an unreadable document or a piece following another is recorded on
its own (`process.record`), after the others, and so is a flow whose grouped recording fails.

Fail closed, per flow: a flow whose checks, reading or recording fail becomes IN_INCIDENTE alone,
the others go on. When the shared stream fails (a worker lost, a chunk over its time budget, an error
raised by the judge), the flows not yet closed are judged again one by one, so only the flow that
caused it becomes an incident. Flows with more documents, and flows whose partner gets the BR-FR
rules (another rule set), are processed one at a time after the stream, as `process_flow` does.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import PurePosixPath

from flows.domain import lease, lifecycle, log
from flows.domain.model import Flow, FlowStatus, Invoice, ValidationError
from flows.domain.outbox import DELIVERY_CHANNEL, Address
from flows.pipeline import circuits, reform_routing
from flows.pipeline import status_changes as statuses
from flows.pipeline.process import (
    STALE_AFTER,
    WAITING,
    Pipeline,
    Prepared,
    Progress,
    _decide,
    _flow_code,
    _followed_meanwhile,
    _taken_meanwhile,
    _Tally,
    br_fr,
    claim,
    incident,
    jobs_of,
    prepare,
    read_jobs,
    record,
)
from flows.returns import report as returnflow
from flows.store import Directory, Store
from validators.document import Verdict
from validators.platform import duplicate_invoice
from validators.pool import Job
from validators.seen import Key, key

_log = log.get("relais.batch")

#: A flow with at most this many documents joins its group's stream; a bigger one is judged alone.
SMALL_FLOW_DOCUMENTS = 16
#: A flow whose file is this large, or named as a batch (`BATCH_SUFFIXES`), is claimed only when its turn
#: comes, after the stream: claimed at admission, every zip of a pass would be held by the first process
#: while it judges them one by one, and a second `relais run` (or Airflow task) would find none to take.
DEFER_BYTES = 4 * 1024 * 1024
BATCH_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")
#: Small flows judged are recorded and closed together, this many at most (`_Group.conclude_many`), or those
#: judged within this many seconds of the first waiting one.
GROUP_CLOSE = 64
#: Flows of a group read and claimed together, ahead of their admission (`_Group.claim_ahead`).
CLAIM_AHEAD = 32
GROUP_CLOSE_SECONDS = 1.0

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
    ahead: dict[str, Flow] = dataclasses.field(default_factory=dict)  # claimed together, not admitted yet
    originals: dict[str, str | None] = dataclasses.field(default_factory=dict)  # theirs (`Store.find_originals`)

    # ---- admission: claim, check, read ---------------------------------------------------------

    def claim_ahead(self, flow_ids: Sequence[str]) -> None:
        """Read and claim the next flows of the group together: one query, one claim transaction and one reset of
        what earlier runs recorded for them (`process.claim` for many); `admit` takes them from `ahead`. A flow
        that cannot be claimed here (taken, closed) is left to `admit`."""
        rt = self.rt
        flows = rt.store.get_flows(flow_ids)
        waiting = [f for f in flows.values() if not f.status.is_final]
        got = rt.store.claim_flows(
            [f.id for f in waiting],
            WAITING,
            lifecycle.IN_PROGRESS,
            stale_after=STALE_AFTER,
            due_incidents=True,
            worker=self.worker,
            lease=rt.config.lease,
        )
        fresh = []
        modes: dict[str, bool] = {}  # each partner's mode, asked once for these flows
        for flow in waiting:
            if flow.id not in got:
                continue
            flow.status, flow.retry_at = lifecycle.IN_PROGRESS, None  # the store checked the transition
            if flow.partner not in modes:
                modes[flow.partner] = rt.qualification(flow.partner)
            flow.qualification = modes[flow.partner]
            self.claimed[flow.id] = self.ahead[flow.id] = flow
            if flow.reopened:  # its accepted invoices stay
                rt.store.forget_rejected(flow.id)
            else:
                fresh.append(flow.id)
        rt.store.reset_results_of(fresh)
        self.originals.update(rt.store.find_originals([f for f in waiting if f.id in got]))

    def admit(self, flow_id: str) -> _Member | None:
        """Claim and check a flow; its member when it joins the stream, else None (closed, set aside for
        a judgment of its own, taken by another worker, or an incident)."""
        flow = self.ahead.pop(flow_id, None)  # claimed ahead (`claim_ahead`)
        if flow is None:
            flow = self.rt.store.get_flow(flow_id)
            if flow is None:
                raise KeyError(f"no flow {flow_id}")
            if flow.status.is_final:
                self.close(flow)
                return None
        with log.bound(flow_id=flow.id, partner=flow.partner):
            if flow.id not in self.claimed and not claim(self.rt, flow, self.worker):
                self.close(self.rt.store.get_flow(flow.id) or flow)  # another worker's
                return None
            self.claimed[flow.id] = flow
            try:
                if self.directory is None:
                    self.directory = self.rt.store.load_directory()
                if self.rulesets is None:
                    self.rulesets = self.rt.judge.versions()
                ready = prepare(
                    self.rt, flow, directory=self.directory, rulesets=self.rulesets, originals=self.originals
                )
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

    def conclude_many(self, members: list[_Member]) -> None:
        """Record and close small flows together (`GROUP_CLOSE` at most): their duplicate lookups in one query,
        their invoices in one transaction, their closings in another; a flow that cannot go with the others
        (`_alone`), or whose decision fails, is recorded on its own afterwards (`conclude`). A crash between the
        two transactions leaves the flows claimed, in progress: taken over later and processed again whole."""
        rt = self.rt
        alone = [m for m in members if _alone(rt, m)]
        grouped = [m for m in members if not _alone(rt, m)]
        decided: list[_Decided] = []
        if grouped:
            try:
                keys = {k for m in grouped for _, v in m.verdicts if v.facts is not None and (k := key(v.facts))}
                lookup = _Lookup(rt.store, keys)
            except Exception as e:  # the store: each flow on its own, as before
                _log.warning("group.lookup_failed", error=f"{type(e).__name__}: {e}")
                alone, grouped = grouped + alone, []
        for m in grouped:
            with log.bound(flow_id=m.ready.flow.id, partner=m.ready.flow.partner):
                try:
                    decided.append(_decide_flow(rt, m, lookup))
                except Exception:  # recorded on its own (`conclude`: an incident if it fails again)
                    lookup.forget(m.ready.flow.id)
                    alone.append(m)
        if decided:
            try:
                lost = rt.store.save_invoice_groups(
                    [(d.invoices, d.deliveries, d.held) for d in decided], _taken_meanwhile, _followed_meanwhile
                )
            except Exception as e:  # nothing recorded: each flow on its own
                _log.warning("group.save_failed", error=f"{type(e).__name__}: {e}", flows=len(decided))
                alone, decided = [d.member for d in decided] + alone, []
            else:
                self._close_decided(decided, Counter(inv.flow_id for inv in lost))
        for m in alone:
            self.conclude(m)

    def _close_decided(self, decided: list[_Decided], lost: Counter[str]) -> None:
        rt = self.rt
        for d in decided:
            flow, tally = d.member.ready.flow, d.tally
            tally.rejected += lost[flow.id]
            flow.profile, flow.flow_code = tally.profile, tally.flow_code
            flow.invoice_count, flow.rejected_count = tally.invoices, tally.rejected
            if tally.rejected == 0:
                flow.status = lifecycle.check_transition(lifecycle.IN_PROGRESS, FlowStatus.IN_INTEGRE)
            elif tally.rejected == tally.invoices:
                flow.status = lifecycle.check_transition(lifecycle.IN_PROGRESS, FlowStatus.IN_REJETE)
            else:
                flow.status = lifecycle.check_transition(lifecycle.IN_PROGRESS, FlowStatus.IN_INTEGRE_PARTIEL)
        flows = [d.member.ready.flow for d in decided]
        ids = [f.id for f in flows]
        try:
            errors, earlier, invoices = (
                rt.store.flow_errors_of(ids),
                rt.store.returns_of(ids),
                rt.store.invoices_of(ids),
            )
        except Exception as e:  # fail closed: each an incident (retried later)
            for flow in flows:
                self.fail(flow, e)
            return
        reports: list[tuple[Flow, Address, bytes]] = []
        for flow in flows:
            with log.bound(flow_id=flow.id, partner=flow.partner):
                try:
                    names = [PurePosixPath(o.destination.replace("\\", "/")).name for o in earlier[flow.id]]
                    data = _report(rt, flow, errors[flow.id], invoices[flow.id])
                    name = returnflow.file_name(flow, set(names))
                    reports.append((flow, rt.channels.return_address(flow.partner, name), data))
                except Exception as e:  # fail closed, this flow alone
                    self.fail(flow, e)
        try:  # archived together: one sync for all (`Archive.put_many`)
            shas = [o.sha256 for o in rt.archive.put_many([data for _, _, data in reports])]
        except Exception as e:  # fail closed: each an incident (retried later)
            for flow, _, _ in reports:
                self.fail(flow, e)
            return
        closing = [(flow, to, sha) for (flow, to, _), sha in zip(reports, shas, strict=True)]
        try:
            rt.store.finish_flows(closing)
        except Exception as e:  # each on its own
            _log.warning("group.finish_failed", error=f"{type(e).__name__}: {e}", flows=len(closing))
            done = []
            for flow, to, sha in closing:
                try:
                    rt.store.finish_flow(flow, to, sha)
                    done.append((flow, to, sha))
                except Exception as e2:
                    self.fail(flow, e2)
            closing = done
        completing = [f.id for f, _, _ in closing if f.invoice_count > f.rejected_count]
        try:
            matches = rt.store.suspended_matches_of(completing)
        except Exception as e:  # the flows are closed; logged, ops can redo it
            _log.error("group.completion_failed", error=f"{type(e).__name__}: {e}", flows=len(completing))
            matches, completing = {}, []
        for flow, _, _ in closing:
            with log.bound(flow_id=flow.id, partner=flow.partner):
                _log.info(
                    "flow.closed",
                    status=str(flow.status),
                    invoices=flow.invoice_count,
                    rejected=flow.rejected_count,
                    flow_code=str(flow.flow_code) if flow.flow_code else None,
                )
                if flow.id in completing:
                    statuses.complete_suspended(rt.store, flow.id, matches.get(flow.id, []))
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
        big = self.deferred(flow_ids)
        now = [fid for fid in flow_ids if fid not in big]
        self.stream(now)
        for flow_id in flow_ids:
            if flow_id in self.done or flow_id not in big:
                continue
            if self.stop():
                break
            self.alone = []
            self.stream([flow_id])

    def deferred(self, flow_ids: Sequence[str]) -> set[str]:
        """The flows likely big (`DEFER_BYTES`, `BATCH_SUFFIXES`), read `CLAIM_AHEAD` x 16 at a time: a
        scheduling hint only, their documents are judged the same way either way (an unknown id is not one:
        admission reports it)."""
        big: set[str] = set()
        step = CLAIM_AHEAD * 16
        for i in range(0, len(flow_ids), step):
            for flow in self.rt.store.get_flows(flow_ids[i : i + step]).values():
                if flow.size >= DEFER_BYTES or flow.original_name.lower().endswith(BATCH_SUFFIXES):
                    big.add(flow.id)
        return big

    def stream(self, flow_ids: Sequence[str]) -> None:
        keys = itertools.count()
        index: dict[int, tuple[_Member, Job]] = {}
        members: list[_Member] = []
        admitted = 0

        def feed() -> Iterator[Job]:
            nonlocal admitted
            for i, flow_id in enumerate(flow_ids):
                if self.stop() and flow_id not in self.ahead:  # those claimed ahead are finished
                    return
                try:
                    if i % CLAIM_AHEAD == 0 and not self.stop():
                        self.claim_ahead(flow_ids[i : i + CLAIM_AHEAD])
                    admitted += 1
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

        finished: list[_Member] = []  # judged, to be recorded and closed together
        since = 0.0

        def flush() -> None:
            batch, finished[:] = list(finished), []
            if batch:
                self.conclude_many(batch)

        try:
            for keyed, verdict in self.rt.judge.judge_all(feed(), expected=len(flow_ids)):
                member, job = index.pop(keyed.key)
                member.verdicts.append((job, verdict))
                if len(member.verdicts) == len(member.jobs):
                    if not finished:
                        since = time.monotonic()
                    finished.append(member)
                    if len(finished) >= GROUP_CLOSE or time.monotonic() - since >= GROUP_CLOSE_SECONDS:
                        flush()
            flush()
        except Exception as e:  # the shared stream failed: each open flow is judged alone
            flush()  # those judged whole are closed first
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
                if self.stop() and flow_id not in self.ahead:
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


# ---- a group of small flows recorded and closed together -------------------------------------------


class _Lookup:
    """RLS-P01's store half for the small flows closed together: the earlier invoices holding the numbers their
    documents carry, read in one query (`Store.find_invoices`), plus the invoices of the flows decided before this
    one in the same group (accepted, recorded in the same transaction): a duplicate between two flows of one group
    is found as when each flow was recorded before the next one was decided."""

    def __init__(self, store: Store, keys: set[Key]) -> None:
        self.store = store
        self.known = store.find_invoices(keys)
        self.added: dict[Key, list[tuple[str, str]]] = {}

    def add(self, inv: Invoice) -> None:
        if inv.rejected or not inv.supplier_id or not inv.number or inv.issue_date is None:
            return
        self.added.setdefault((inv.supplier_id, inv.number, inv.issue_date.year), []).append((inv.id, inv.flow_id))

    def forget(self, flow_id: str) -> None:
        for held in self.added.values():
            held[:] = [(i, f) for i, f in held if f != flow_id]

    def find_invoice(
        self, supplier_id: str, number: str, year: int, *, exclude_flow_id: str | None = None
    ) -> str | None:
        k = (supplier_id, number, year)
        if k not in self.known:
            return self.store.find_invoice(supplier_id, number, year, exclude_flow_id=exclude_flow_id)
        ids = [i for i, f in itertools.chain(self.known[k], self.added.get(k, ())) if f != exclude_flow_id]
        return min(ids) if ids else None


@dataclasses.dataclass
class _Decided:
    """A small flow's invoices decided, to be recorded with the group's (`process._judge_all` without its saves)."""

    member: _Member
    tally: _Tally
    invoices: list[Invoice]
    deliveries: list[tuple[Invoice, Address]]
    held: set[str]


def _alone(rt: Pipeline, m: _Member) -> bool:
    """Whether a flow is closed on its own (`process.record`) rather than with its group: a reopened or qualification
    flow, a CDAR partner's, one with an unreadable single document or a piece following another (its previous piece
    may be in the same group: it must be recorded first)."""
    f = m.ready.flow
    if m.ready.kept or f.reopened or f.qualification or rt.vocabulary(f.partner) != "cpp":
        return True
    batch = m.ready.batch
    return any((v.unreadable and not batch) or (v.facts is not None and v.facts.previous_number) for _, v in m.verdicts)


def _decide_flow(rt: Pipeline, m: _Member, lookup: _Lookup) -> _Decided:
    flow, directory = m.ready.flow, m.ready.directory
    d = _Decided(m, _Tally(), [], [], set())
    seen = duplicate_invoice.Seen()
    for job, verdict in m.verdicts:
        inv, target, delivery = _decide(rt, flow, job, verdict, directory, seen, lookup)
        d.tally.invoices += 1
        d.tally.rejected += inv.status.is_rejected
        if verdict.syntax is not None and d.tally.flow_code is None:
            attached = bool(verdict.facts and verdict.facts.has_attachments)
            d.tally.flow_code = _flow_code(verdict.syntax, attached, inv.framework)
            d.tally.profile = verdict.profile
        d.invoices.append(inv)
        if target:
            to = reform_routing.address(rt, inv, verdict.container) or (
                rt.deliver_to
                and rt.deliver_to(directory.get(inv.buyer_siret), inv.service_code, inv.id, verdict.container)
            )
            d.deliveries.append((inv, to or Address(DELIVERY_CHANNEL, inv.buyer_siret, target)))
            if delivery is circuits.Delivery.HELD:
                d.held.add(inv.id)
    if d.tally.invoices == 0:
        raise ValueError(f"flow {flow.id}: no verdict")
    for inv in d.invoices:
        lookup.add(inv)
    return d


def _report(rt: Pipeline, flow: Flow, errors: list[ValidationError], invoices: list[Invoice]) -> bytes:
    """A closed small flow's return flow (as `process._close` writes it), validated against Relais's XSD."""
    out = io.BytesIO()
    returnflow.write(out, flow, errors, invoices, reopened=flow.reopened, language=rt.language(flow.partner))
    data = out.getvalue()
    returnflow.validate(data)
    return data
