"""One pass of the whole path on one machine: drop zones -> pipeline -> outbox."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from connectors import partners as partners_config
from connectors.folder import dropzone, waiting
from flows.domain import lease
from flows.domain.model import Flow, FlowStatus, utcnow
from flows.domain.outbox import OutboxKind
from flows.io import atomic, split
from flows.pipeline import batch, dispatch, webhooks
from flows.pipeline.process import STALE_AFTER, WAITING, Progress
from flows.store import Store
from relais import log, workrate
from relais.compose import Runtime
from relais.grouping import Group, Work, group_flows
from relais.settings import Settings

_log = log.get("relais.runner")
PROGRESS_FROM = 200  # show a bar for flows with at least this many documents
DISPATCH_EVERY = 5.0  # seconds between two outbox passes while intake waits for files
BAD_PARTNER_REPORT_EVERY = 300.0  # seconds between two reports of a bad partner file in a watch loop
SEND_EVERY_FLOWS = 16  # closed flows whose deliveries and return flows are sent together...
SEND_EVERY_SECONDS = 0.5  # ... or after this long, whichever comes first
_bad_reported: dict[str, float] = {}  # partner id (or file name) -> when intake last reported its bad file


NO_DIRECTORY = (
    "aucun annuaire des destinataires importé : aucun flux n'est traité (sans annuaire, chaque facture "
    "deviendrait un incident). Importez-le d'abord : `relais directory import FICHIER` (format : "
    "docs/directory-formats.md) ; les fichiers attendent dans les zones de dépôt."
)


def directory_missing(rt: Runtime) -> str | None:
    """Why nothing may be processed yet (`NO_DIRECTORY`: no recipient directory was ever imported, so every
    flow would become an incident), else None. `relais run`, `relais flows reprocess` and the DAG's intake
    refuse to start then; the files wait in their drop zones. One read of the small versions table."""
    return None if rt.store.directory_versions() else NO_DIRECTORY


def pending_flow_ids(rt: Runtime) -> list[str]:
    """Flows waiting for processing, oldest first: received, waiting for reprocessing, incidents whose
    retry time has come, or left in progress by a worker that died (its lease expired, or its process on
    this machine is gone: taken over at once)."""
    rt.store.expire_dead_claims(lease.is_dead)
    return [fid for fid, _, _ in rt.store.pending_flows(WAITING, stale_before=utcnow() - STALE_AFTER)]


def pending_groups(rt: Runtime) -> list[Group]:
    """The pending flows in groups sized by their work (relais.grouping): what the DAG maps over. Each
    group carries about settings.group_target_seconds of work at the measured rate (relais/workrate.py);
    caps: settings.max_flows_per_group, max_documents_per_group, max_bytes_per_group; at least one
    group per task the DAG runs at once (settings.dag_tasks; else per validation worker) when there is
    little work, so that the tasks share the cores."""
    s = rt.settings
    work = []
    rt.store.expire_dead_claims(lease.is_dead)
    for fid, size, sha256 in rt.store.pending_flows(WAITING, stale_before=utcnow() - STALE_AFTER):
        work.append(Work(fid, size, split.estimate_archived(rt.archive, sha256) if size else 1))
    return group_flows(
        work,
        max_flows=max(1, s.max_flows_per_group),
        max_documents=max(1, s.max_documents_per_group),
        max_bytes=max(1, s.max_bytes_per_group),
        min_groups=max(1, s.dag_tasks or rt.pool.workers),
        target_seconds=s.group_target_seconds,
        seconds_per_document=workrate.current(rt).seconds_per_document,
    )


@dataclasses.dataclass
class GroupReport:
    """What processing a group of flows came to (counts only: this is what a task logs and returns)."""

    statuses: Counter[str] = dataclasses.field(default_factory=Counter)
    invoices: int = 0
    delivered: int = 0
    returned: int = 0
    failed_sends: int = 0
    incidents: list[str] = dataclasses.field(default_factory=list)  # ids of flows that became incidents
    status_returns: int = 0  # status return flows queued
    deadlines: int = 0  # pieces of billing circuits moved on because their actor's deadline passed
    flows: list[Flow] = dataclasses.field(default_factory=list)

    def summary(self) -> dict[str, object]:
        return {
            "flows": sum(self.statuses.values()),
            "statuses": dict(self.statuses),
            "invoices": self.invoices,
            "delivered": self.delivered,
            "returned": self.returned,
            "failed_sends": self.failed_sends,
            "incidents": len(self.incidents),
            "status_returns": self.status_returns,
            "deadlines": self.deadlines,
        }


def process_flows(
    rt: Runtime, flow_ids: Sequence[str], *, progress: bool = False, stop: Callable[[], bool] = lambda: False
) -> GroupReport:
    """Process a group of flows (flows/pipeline/batch.py: the documents of the small ones judged together through
    the validation pool, each flow then closed on its own); each one's deliveries and return flow leave as
    soon as it is closed, not when the whole group is done. Once `stop()` says so (a shutdown), no
    further flow starts. The measured work is kept for sizing the next groups (relais/workrate.py)."""
    report = GroupReport()
    outgoing = _Outgoing(rt, report)

    t0 = time.monotonic()
    try:
        flows = batch.process_group(
            rt.pipeline, flow_ids, on_closed=outgoing.closed, stop=stop, progress=_bar if progress else None
        )
    finally:
        outgoing.flush()
    for flow in flows:
        report.statuses[str(flow.status)] += 1
        report.invoices += flow.invoice_count
        if flow.status is FlowStatus.IN_INCIDENTE:
            report.incidents.append(flow.id)
        report.flows.append(flow)
    workrate.note(rt, flows, time.monotonic() - t0)
    return report


LINGER_FLOWS = 64  # flows a lingering task takes per look
LINGER_IDLE_SECONDS = 2.0  # a lingering task stops once nothing came for this long


def process_and_linger(
    rt: Runtime,
    flow_ids: Sequence[str],
    *,
    linger_seconds: float,
    share: tuple[int, int] = (0, 1),
    poll_seconds: float = 0.5,
    stop: Callable[[], bool] = lambda: False,
) -> GroupReport:
    """Process a group of flows (`process_flows`), then, for up to `linger_seconds` from the start, keep
    taking what the drop zones receive and the flows left pending, `LINGER_FLOWS` at a time, until nothing
    came for `LINGER_IDLE_SECONDS`: the DAG's `process` task, so that a file dropped while a run is busy is
    processed within a second or two instead of waiting for the next run. Several tasks linger at once:
    each starts its look at its `share` (index, count) of the pending list and claims decide (a flow
    another task took is left to it)."""
    deadline = time.monotonic() + max(0.0, linger_seconds)
    report = process_flows(rt, flow_ids, stop=stop)
    idle_since = time.monotonic()
    index, count = share
    while time.monotonic() < deadline and not stop():
        intake(rt, only_due=True, stop=stop)
        pending = pending_flow_ids(rt)
        if not pending:
            if time.monotonic() - idle_since >= LINGER_IDLE_SECONDS:
                break
            time.sleep(poll_seconds)
            continue
        start = (index * len(pending)) // max(1, count)
        taken = (pending[start:] + pending[:start])[:LINGER_FLOWS]
        more = process_flows(rt, taken, stop=stop)
        if _merge(report, more):
            idle_since = time.monotonic()
    return report


def _merge(report: GroupReport, more: GroupReport) -> int:
    """Add to `report` what `more` processed (not the flows other tasks had taken); how many flows."""
    ours = [f for f in more.flows if f.status.is_final or f.status is FlowStatus.IN_INCIDENTE]
    for flow in ours:
        report.statuses[str(flow.status)] += 1
        report.invoices += flow.invoice_count
        report.flows.append(flow)
    report.incidents += more.incidents
    report.delivered += more.delivered
    report.returned += more.returned
    report.failed_sends += more.failed_sends
    return len(ours)


@dataclasses.dataclass
class _Outgoing:
    """Sends what closed flows put in the outbox (deliveries, return flows) as they close, a few flows at a
    time: once `SEND_EVERY_FLOWS` flows are waiting or `SEND_EVERY_SECONDS` after the first of them closed
    (and at the end of the group), so that their files are made durable and marked sent together
    (flows.pipeline.dispatch.dispatch_flows); a flow closed alone (a big one) leaves at once."""

    rt: Runtime
    report: GroupReport
    waiting: list[str] = dataclasses.field(default_factory=list)
    since: float = 0.0

    def closed(self, flow: Flow) -> None:
        if not (flow.status.is_final or flow.parked):
            return
        if not self.waiting:
            self.since = time.monotonic()
        self.waiting.append(flow.id)
        if (
            flow.invoice_count >= SEND_EVERY_FLOWS
            or len(self.waiting) >= SEND_EVERY_FLOWS
            or time.monotonic() - self.since >= SEND_EVERY_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        ids, self.waiting = self.waiting, []
        if not ids:
            return
        if len(ids) == 1:
            sent = dispatch.dispatch_flow(self.rt.outbound, ids[0])
        else:
            sent = dispatch.dispatch_flows(self.rt.outbound, ids)
        self.report.delivered += sent.delivered
        self.report.returned += sent.returned
        self.report.failed_sends += sent.failed


def requeue(rt: Runtime, flow_id: str, reason: str | None = None) -> str | None:
    """Put a flow back for reprocessing with the current directory and rule sets (`relais flows
    reprocess`, the web application's action): an incident with its retry budget renewed, or a closed
    flow with rejections reopened (its accepted invoices kept: never delivered twice; its new
    integration report says which one it replaces). The earlier run's findings and unsent return flows
    are kept, superseded; the invoices recorded again get history entries by ops with `reason`
    ("Retraitement demandé par ops : <reason>"). None when done, else why not."""
    from flows.domain.lifecycle import REOPENABLE

    flow = rt.store.get_flow(flow_id)
    if flow is None:
        return f"aucun flux {flow_id} (no flow {flow_id})"
    # Each is a claim (a conditional UPDATE from the status just read): of concurrent clicks on one
    # flow, one requeues it; a flow already waiting is not queued again.
    if flow.status in REOPENABLE:
        done = rt.store.reopen_flow(flow_id, reason)
    elif flow.status is FlowStatus.IN_INCIDENTE:
        done = rt.store.requeue_flow(flow_id, reason, only_from=FlowStatus.IN_INCIDENTE)
    else:
        done = False
    if done:
        _log.warning("flow.requeued", flow_id=flow_id, was=str(flow.status), reason=reason)
        return None
    now = rt.store.get_flow(flow_id) or flow
    if now.status is FlowStatus.IN_EN_ATTENTE_RETRAITEMENT_CPP:
        return (
            f"{flow_id} attend déjà son retraitement (IN_EN_ATTENTE_RETRAITEMENT_CPP) "
            "(already waiting for reprocessing)"
        )
    flow = now
    allowed = ", ".join(["IN_INCIDENTE", *(str(s) for s in REOPENABLE)])
    return (
        f"{flow_id} est {flow.status.info.label_fr} ({flow.status}) : seuls les flux {allowed} sont retraités "
        f"(only these are reprocessed: {allowed})"
    )


def intake(rt: Runtime, *, only_due: bool = False, stop: Callable[[], bool] = lambda: False) -> list[Flow]:
    """Take what every drop zone holds: the partners' SFTP servers, then the local folders.

    Hosted SFTP uploads land in the local folders, so they are taken here too.
    A partner whose server is unreachable is reported in the logs; the others go on.
    With `only_due`, a partner is polled only once its `poll_seconds` have passed.
    A partner whose file is bad (connectors/partners.py) is reported at each intake
    (``partners.bad_file``, every problem named; in a watch loop, `only_due`, at most every
    `BAD_PARTNER_REPORT_EVERY` seconds) and none of its files is taken, its folder inbox's
    included (`PartnerSet.held`: they wait there until the file is fixed); the others go on.
    """
    flows: list[Flow] = []
    known = rt.partners
    held: frozenset[str] = getattr(known, "held", frozenset())  # a plain dict (tests) has no bad partners
    paused = rt.store.paused_partners()  # paused by ops (the web application): their files wait
    if paused:
        held = held | frozenset(paused)
    for channel in rt.channels.polling:  # relais/compose.py: SFTP polls, then the folder scan
        if stop():
            break
        try:
            flows.extend(channel.poll(only_due=only_due, held=held))
        except Exception as e:  # e.g. the archive is unreachable: files wait, others go on
            _log.error(
                "intake.channel_failed",
                channel=channel.name,
                error=f"{type(e).__name__}: {e}",
                detail="nothing recorded for the file being taken; it stays where it is and is taken later",
            )
    waiting: Counter[str] = Counter()  # complete files left in the inboxes of bad partners
    if held:
        for c in dropzone.candidates(rt.settings.dropzones_dir, rt.settings.stable_seconds):
            waiting[c.partner] += c.partner in held
    for partner in sorted(paused):
        if (
            not only_due
            or time.monotonic() - _bad_reported.get(f"paused:{partner}", -BAD_PARTNER_REPORT_EVERY)
            >= BAD_PARTNER_REPORT_EVERY
        ):
            _bad_reported[f"paused:{partner}"] = time.monotonic()
            _log.warning(
                "intake.partner_paused",
                partner=partner,
                by=paused[partner][0],
                detail="its files wait in its drop zone",
            )
    problems: dict[str, list[str]] = getattr(known, "problems", {})
    now = time.monotonic()
    for key in sorted(problems):
        if only_due and now - _bad_reported.get(key, -BAD_PARTNER_REPORT_EVERY) < BAD_PARTNER_REPORT_EVERY:
            continue
        _bad_reported[key] = now
        _log.error(
            "partners.bad_file",
            partner=key,
            files=[p.name for p in known.files.get(key, ())],
            problems=problems[key],
            held_files=waiting[key if key in held else key.split(".")[0]],
            detail="partner file not loaded: this partner is not polled, served or taken from "
            "until the file is fixed; the other partners go on (`relais partners`)",
        )
    return flows


def waiting_files(
    settings: Settings, store: Store, *, partner: str | None = None, limit: int = waiting.LIMIT
) -> waiting.Report:
    """What waits in the drop zones and why (connectors/folder/waiting.py): ``relais waiting``, the web
    page ``/waiting`` and the landing page. The partner files are read again (they change while a
    server runs), the pauses from the store."""
    s = settings
    return waiting.scan(
        s.dropzones_dir,
        stable_seconds=s.stable_seconds,
        partners=partners_config.load(s.partners_dir),
        paused=store.paused_partners(),
        partners_dir=s.partners_dir,
        only=partner,
        limit=limit,
    )


def intake_until_work(
    rt: Runtime, *, wait_seconds: float, poll_seconds: float = 0.5, stop: Callable[[], bool] = lambda: False
) -> list[Group]:
    """Take what the drop zones hold and return the pending work in groups; when there is none, keep
    looking every `poll_seconds` for up to `wait_seconds` (the DAG's event-like intake), or until
    `stop()` says so (a shutdown). Outbox rows that are due (retries, async MDNs) are sent on the way,
    every few seconds."""
    sweep_temporaries(rt)
    deadline = time.monotonic() + max(0.0, wait_seconds)
    next_dispatch = 0.0
    first = True
    while True:
        intake(rt, only_due=not first)
        if time.monotonic() >= next_dispatch:
            dispatch.dispatch(rt.outbound)
            next_dispatch = time.monotonic() + DISPATCH_EVERY
        groups = pending_groups(rt)
        if groups or time.monotonic() >= deadline or stop():
            return groups
        first = False
        time.sleep(poll_seconds)


def sweep_temporaries(rt: Runtime) -> list[Path]:
    """Remove what writers killed mid-write left (`flows.io.atomic.sweep`): temporary files in the delivery
    folders, the partners' out/ folders, the staging folder and the native rule engine's cache (written by
    the validation workers). Once per process: a restart after a crash is when they appear, and the
    delivery tree may be large."""
    global _swept
    if _swept:
        return []
    _swept = True
    removed = []
    for folder in (rt.settings.staging_dir, rt.settings.delivery_dir, rt.settings.native_cache_dir):
        removed += atomic.sweep(folder)
    for partner in dropzone.partners(rt.settings.dropzones_dir):
        removed += atomic.sweep(rt.settings.outbox_dir(partner), recursive=False)
    if removed:
        _log.warning(
            "sweep.removed",
            files=len(removed),
            first=str(removed[0]),
            detail="temporary files of writers that were killed; their work is redone",
        )
    return removed


_swept = False


def run_pass(
    rt: Runtime, progress: bool = False, *, only_due: bool = False, stop: Callable[[], bool] = lambda: False
) -> GroupReport:
    """Intake, then every pending flow (each dispatched once closed), then what the outbox still holds
    (retries, async MDNs). The report's flows are the ones processed, as they ended. Once `stop()` says
    so (a shutdown: relais/run_loop.py), nothing new is started."""
    sweep_temporaries(rt)
    intake(rt, only_due=only_due, stop=stop)
    report = process_flows(rt, pending_flow_ids(rt), progress=progress, stop=stop)
    if stop():
        return report
    # Before sending: the pieces it releases leave now. The pipeline's clock: the one the pieces' deadlines
    # were set with (a test's injected clock too).
    report.deadlines += apply_deadlines(rt, rt.pipeline.clock()).deadlines
    rest = dispatch.dispatch(rt.outbound)
    report.delivered += rest.delivered
    report.returned += rest.returned
    report.failed_sends += rest.failed
    sent = emit_statuses(rt)
    report.status_returns += sent.status_returns
    report.returned += sent.returned
    report.failed_sends += sent.failed_sends
    return report


def apply_deadlines(rt: Runtime, now: dt.datetime | None = None) -> GroupReport:
    """The billing circuits' scheduled step (flows/pipeline/deadlines.py): pieces whose validator or MOE let
    its deadline pass (at `now`, the clock by default) move on; `relais run` once per pass, the DAG's
    ``apply_deadlines`` task. A failure is logged and left to the next pass (nothing is half done: each
    piece moves in its own transaction)."""
    report = GroupReport()
    try:
        report.deadlines = rt.apply_deadlines(now)
    except Exception as e:  # the store is down: the next pass applies them
        _log.error("deadlines.failed", error=f"{type(e).__name__}: {e}", detail="applied at the next pass")
    return report


def emit_statuses(rt: Runtime) -> GroupReport:
    """Queue the status return flows that are due (flows/pipeline/status_returns.py) and send them at once;
    `relais run` and the DAG's ``statuses`` task call it after each pass."""
    report = GroupReport()
    emitted = rt.status_returns.emit_due()
    report.status_returns = emitted.returns
    if emitted.returns:
        sent = dispatch.dispatch(rt.outbound, kinds=(OutboxKind.RETURN,))
        report.returned, report.failed_sends = sent.returned, sent.failed
    send_webhooks(rt)
    return report


def send_webhooks(rt: Runtime) -> int:
    """Queue the flow service's webhook events not queued yet (flows/pipeline/webhooks.py) and post the due
    ones; how many were posted. A failure is logged and left to the next pass (the events are found again)."""
    try:
        webhooks.queue_events(rt.store, rt.archive)
        return dispatch.dispatch(rt.outbound, kinds=(OutboxKind.WEBHOOK,)).returned
    except Exception as e:  # the store is down: the next pass queues and sends them
        _log.error("webhooks.failed", error=f"{type(e).__name__}: {e}", detail="queued and sent at the next pass")
        return 0


def run_once(rt: Runtime, progress: bool = False, *, only_due: bool = False) -> list[Flow]:
    """`run_pass`, returning the flows it processed as the store now has them."""
    return [rt.store.get_flow(f.id) or f for f in run_pass(rt, progress, only_due=only_due).flows]


def _bar(flow_id: str) -> Progress:
    from tqdm import tqdm

    state: dict[str, tqdm] = {}

    def update(done: int, total: int) -> None:
        if total < PROGRESS_FROM or not sys.stderr.isatty():
            return
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc=flow_id, unit="inv", file=sys.stderr, leave=False)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update
