"""The one path a flow takes, from archived bytes to a closed flow with its return flow queued.

`flows.pipeline.intake` archives the bytes and records the flow (IN_RECU); ``process_flow`` detects, splits,
validates, routes and closes it; the CLI and every Airflow task call this same function with a `Pipeline` (what
it needs, given explicitly; ``relais/compose.py`` builds it). Side effects (deliveries, return flows) are outbox
rows, carried out by `flows.pipeline.dispatch`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from archive import Archive
from flows.domain import lease, lifecycle, log, technical
from flows.domain.errors import Incident, Rejected
from flows.domain.frameworks import Framework
from flows.domain.model import (
    Container,
    Flow,
    FlowCode,
    FlowStatus,
    Invoice,
    InvoiceStatus,
    Syntax,
    ValidationError,
    invoice_id,
    utcnow,
)
from flows.domain.outbox import DELIVERY_CHANNEL, Address, OutboxKind, OutboxStatus
from flows.domain.rule import Category, Stage
from flows.io import detect, safearchive, safexml, split
from flows.io.atomic import temp_prefix
from flows.pipeline import cdar_in, circuits, reform_routing
from flows.pipeline import status_changes as statuses
from flows.pipeline.cdar_out import CdarOut
from flows.pipeline.channels import Channels
from flows.pipeline.config import PipelineConfig
from flows.returns import report as returnflow
from flows.store import Directory, Store, Structure
from validators import runner
from validators.context import Addressing, InvoiceContext
from validators.document import Verdict
from validators.platform import duplicate_invoice
from validators.platform.circuits import previous_followed
from validators.pool import Job
from validators.terms import PRECEDING

Progress = Callable[[int, int], None]

#: Flows waiting to be processed (`flows.domain.lifecycle.WAITING`). An IN_INCIDENTE flow is taken again only once
#: its retry time has come (`Flow.retry_at`); a parked one (no retry time left) only after `relais flows reprocess`.
WAITING = lifecycle.WAITING

#: A flow IN_EN_COURS_TRAITEMENT_CPP claimed without a lease (before leases existed) and untouched for this long lost its
#: worker. Claims hold a lease (`flows.domain.lease`): an expired one, or a dead holder here, is taken over at once.
STALE_AFTER = dt.timedelta(minutes=30)

_log = log.get("relais.pipeline")


class Judge(Protocol):
    """What the pipeline asks of the validation pool (`validators.pool.ValidationPool`)."""

    def versions(self) -> dict[str, str]: ...

    def judge_all(
        self, jobs: Iterable[Job], *, expected: int, br_fr: bool = False
    ) -> Iterator[tuple[Job, Verdict]]: ...


@dataclasses.dataclass
class Pipeline:
    """What processing a flow needs, given explicitly (built once per process by ``relais/compose.py``)."""

    config: PipelineConfig
    store: Store
    archive: Archive
    judge: Judge
    channels: Channels  # where each partner's return flows go
    #: Where a routed invoice goes when not to its ``delivery/`` folder: (its structure, service code, invoice
    #: id, container) -> an address, or None for the folder (the default); relais/compose.py gives the EDI rule.
    deliver_to: Callable[[Structure | None, str | None, str, Container | None], Address | None] | None = None
    #: Whether a partner is in qualification (its flows judged and answered, nothing delivered, no number
    #: taken): asked when a flow is claimed; relais/compose.py gives ops' switch, else the partner file's mode.
    qualification: Callable[[str], bool] = lambda partner: False
    #: The language of a partner's return flows' free texts ("fr" or "en"; relais/compose.py: its partner file).
    language: Callable[[str], str] = lambda partner: "fr"
    #: A partner's status vocabulary ("cpp" or "cdar": a CDAR partner's integration report is a CDAR message).
    vocabulary: Callable[[str], str] = lambda partner: "cpp"
    #: The CDAR messages' parties (Relais as a platform, the partners'); relais/compose.py gives the settings'.
    cdar: CdarOut = dataclasses.field(default_factory=CdarOut)
    #: The time a piece enters its circuit at (its deadline runs from it); tests give their own.
    clock: Callable[[], dt.datetime] = utcnow
    #: A partner's registration number as a platform of the reform (its partner file's ``platform_id``), None
    #: when it is none: who may send the buyer's CDAR statuses (relais/compose.py gives the partner files').
    platform_of: Callable[[str], str | None] = lambda partner: None
    #: Relais's registration number as a platform of the reform (settings ``platform_id``), and the partner
    #: whose file names a platform id (`flows.pipeline.reform_routing`); relais/compose.py gives both.
    platform_id: str = "9998"
    platform_partner: Callable[[str], str | None] = lambda platform_id: None

    @functools.cached_property
    def xml_limits(self) -> safexml.XmlLimits:
        return safexml.XmlLimits(max_bytes=self.config.max_xml_bytes)

    @functools.cached_property
    def archive_limits(self) -> safearchive.ArchiveLimits:
        return safearchive.ArchiveLimits()


# ---- process -------------------------------------------------------------------


@dataclasses.dataclass
class _Tally:
    invoices: int = 0
    rejected: int = 0
    flow_code: FlowCode | None = None
    profile: str | None = None


class _Unreadable(Exception):
    """A single-document flow whose document cannot be read: the flow is refused."""

    def __init__(self, error: ValidationError) -> None:
        self.error = error


def process_flow(rt: Pipeline, flow_id: str, progress: Progress | None = None) -> Flow:
    """Take one archived flow through detection, split, validation and routing, and close it.

    Idempotent: a closed flow is returned as it is. Any unexpected failure leaves the flow IN_INCIDENTE with
    nothing half-recorded (fail closed); it is tried again after a backoff, `settings.incident_retries` times,
    then parked and its sender told (an IN_INCIDENTE return flow).
    """
    flow = rt.store.get_flow(flow_id)
    if flow is None:
        raise KeyError(f"no flow {flow_id}")
    if flow.status.is_final:
        return flow
    worker = lease.worker_id()
    with log.bound(flow_id=flow.id, partner=flow.partner):
        if not claim(rt, flow, worker):
            return rt.store.get_flow(flow.id) or flow
        with lease.Lease(
            lambda: rt.store.renew_claim(flow.id, worker, rt.config.lease), every=rt.config.lease.total_seconds() / 3
        ):
            try:
                _process(rt, flow, progress)
            except Exception as e:  # fail closed: an internal error is an incident, never a verdict
                incident(rt, flow, e)
        return flow


def claim(rt: Pipeline, flow: Flow, worker: str) -> bool:
    """Claim a waiting flow for `worker` (IN_EN_COURS_TRAITEMENT_CPP, under a lease the caller renews), forget what
    an earlier run recorded (a reopened flow keeps its accepted invoices). False: another worker's, or not waiting."""
    if not rt.store.claim_flow(
        flow.id,
        WAITING,
        lifecycle.IN_PROGRESS,
        stale_after=STALE_AFTER,
        due_incidents=True,
        worker=worker,
        lease=rt.config.lease,
    ):
        return False
    flow.status = lifecycle.IN_PROGRESS  # the store checked the transition
    flow.retry_at = None
    flow.qualification = rt.qualification(flow.partner)  # the partner's mode now decides (recorded at close)
    if flow.reopened:  # ops reopened this closed flow: its accepted invoices stay
        rt.store.forget_rejected(flow.id)
    else:
        rt.store.reset_flow_results(flow.id)
    return True


def incident(rt: Pipeline, flow: Flow, e: Exception) -> None:
    """Record an internal failure: retry later, or park the flow and tell its sender."""
    rt.store.reset_flow_results(flow.id)
    # From the recorded status: in memory it may already be a verdict whose _close failed.
    flow.status = lifecycle.check_transition(lifecycle.IN_PROGRESS, FlowStatus.IN_INCIDENTE)
    flow.invoice_count = flow.rejected_count = 0
    flow.incidents += 1
    delay = rt.config.incident_retry_delay(flow.incidents)
    flow.retry_at = utcnow() + dt.timedelta(seconds=delay) if delay is not None else None
    detail = f"{type(e).__name__}: {e}"
    if delay is None:
        detail += f" (failed {flow.incidents} times: parked, waiting for the operations team)"
    _log.exception(
        "flow.incident",
        error=f"{type(e).__name__}: {e}",
        incidents=flow.incidents,
        retry_at=flow.retry_at.isoformat() if flow.retry_at else None,
        parked=delay is None,
    )
    rt.store.update_flow(flow)
    rt.store.add_flow_errors(flow.id, [technical.INTERNAL_ERROR.error("/", detail)])
    if delay is None:
        try:  # the partner hears that its flow is stuck, and why; ops reprocess it
            _close(rt, flow)
        except Exception as close_error:  # stays parked and visible; logged
            _log.exception("flow.incident_report_failed", error=f"{type(close_error).__name__}: {close_error}")


@dataclasses.dataclass
class Prepared:
    """A claimed flow that passed the checks before judging: what judging it needs."""

    flow: Flow
    directory: Directory
    total: int  # documents in the flow
    kept: set[int]  # positions a reopened flow keeps (accepted before): not judged again

    @property
    def batch(self) -> bool:
        return split.is_batch(self.flow.container or Container.UNKNOWN)


def _process(rt: Pipeline, flow: Flow, progress: Progress | None) -> None:
    ready = prepare(rt, flow)
    if ready is None:
        return
    with rt.archive.open(flow.sha256) as f:
        expected = ready.total - len(ready.kept)
        verdicts = rt.judge.judge_all(jobs_of(rt, ready, f), expected=expected, br_fr=br_fr(rt, flow))
        record(rt, ready, verdicts, progress)


def br_fr(rt: Pipeline, flow: Flow) -> bool:
    """Whether this flow's partner gets the French BR-FR rules too."""
    return flow.partner in rt.config.br_fr_partners


def prepare(
    rt: Pipeline,
    flow: Flow,
    *,
    directory: Directory | None = None,
    rulesets: dict[str, str] | None = None,
    originals: dict[str, str | None] | None = None,
) -> Prepared | None:
    """The checks a claimed flow passes before its documents are judged; None when they closed it (rejected).
    `directory`, `rulesets` and `originals` (`Store.find_originals`), when given, are the ones read once for a
    group of flows. A CDAR lifecycle message is a flow of its own syntax, taken (and closed) here by
    `flows.pipeline.cdar_in` (before the duplicate-content check: a message sent again is a replay, RLS-C06)."""
    if _cdar(rt, flow):
        return None
    original = originals[flow.id] if originals is not None and flow.id in originals else rt.store.find_original(flow)
    if original:
        flow.duplicate_of = original
        _reject_flow(rt, flow, technical.DUPLICATE_FLOW.error("/", f"same content as flow {original}"))
        return None
    if flow.size == 0:
        _reject_flow(rt, flow, technical.EMPTY_FILE.error())
        return None
    if flow.size > rt.config.max_flow_bytes:
        _reject_flow(rt, flow, technical.TOO_LARGE.error("/", f"{flow.size} bytes > {rt.config.max_flow_bytes}"))
        return None
    with rt.archive.open(flow.sha256) as f:
        flow.container = split.container_of(f)
    if flow.container is Container.UNKNOWN:
        _reject_flow(rt, flow, technical.UNKNOWN_FORMAT.error())
        return None
    if directory is None:
        directory = rt.store.load_directory()
    if directory is None:
        raise Incident("no recipient directory imported: run `relais directory import FILE`")
    flow.directory_version = directory.version
    try:
        if split.is_batch(flow.container):
            with rt.archive.open(flow.sha256) as f:
                total = safearchive.check(f, flow.container, rt.archive_limits)
            if total == 0:
                _reject_flow(rt, flow, technical.EMPTY_BATCH.error())
                return None
            if total > rt.config.max_invoices_per_flow:
                _reject_flow(
                    rt, flow, technical.TOO_MANY_INVOICES.error("/", f"{total} > {rt.config.max_invoices_per_flow}")
                )
                return None
        else:
            total = 1
    except Rejected as r:
        _forget(rt, flow)
        _reject_flow(rt, flow, r.to_error())
        return None
    flow.rulesets = dict(rulesets) if rulesets is not None else rt.judge.versions()
    # A reopened flow keeps its accepted invoices as they are: only the others are judged again.
    kept = rt.store.kept_positions(flow.id) if flow.reopened else set()
    return Prepared(flow, directory, total, kept)


#: The start of a flow read to recognise a CDAR message (its root element comes first).
CDAR_PEEK = 64 * 1024


def _cdar(rt: Pipeline, flow: Flow) -> bool:
    """Take a flow whose document is a CDAR lifecycle message through `flows.pipeline.cdar_in` and close it;
    False (nothing done) when it is no CDAR message."""
    if not 0 < flow.size <= rt.config.max_flow_bytes:
        return False
    with rt.archive.open(flow.sha256) as f:
        if not detect.is_cdar(f.read(CDAR_PEEK)):
            return False
    with rt.archive.open(flow.sha256) as f:
        data = f.read()
    flow.container, flow.flow_code = Container.XML, FlowCode.CDAR
    try:
        platform_id = rt.platform_of(flow.partner)
        received = cdar_in.receive(
            rt.store, flow, data, platform_id=platform_id, limits=rt.xml_limits, dry_run=flow.qualification
        )
    except Rejected as r:  # hostile or malformed XML: refused as any received XML
        _reject_flow(rt, flow, r.to_error())
        return True
    _log.info("flow.cdar", verdict=str(received.status), replay=received.replay, findings=len(received.findings))
    flow.status = lifecycle.check_transition(lifecycle.IN_PROGRESS, received.status)
    flow.invoice_count = flow.rejected_count = 0  # no invoice: its lines are in cdar_lines and the findings
    if received.findings:
        rt.store.add_flow_errors(flow.id, received.findings)
    _close(rt, flow)
    return True


def jobs_of(rt: Pipeline, ready: Prepared, f: BinaryIO) -> Iterator[Job]:
    """The documents of a prepared flow to judge, one at a time, read from its archived file `f`."""
    container = ready.flow.container or Container.UNKNOWN
    batch = split.is_batch(container)
    for doc in split.documents(f, container, ready.flow.original_name, rt.archive_limits):
        if doc.position not in ready.kept:
            yield Job(doc.position, doc.data, None if batch else container, doc.entry_name)


def read_jobs(rt: Pipeline, ready: Prepared) -> list[Job] | None:
    """All the documents of a small prepared flow, read now (to be judged with other flows' documents);
    None when reading them rejected the flow (closed)."""
    try:
        with rt.archive.open(ready.flow.sha256) as f:
            return list(jobs_of(rt, ready, f))
    except Rejected as r:
        _forget(rt, ready.flow)
        _reject_flow(rt, ready.flow, r.to_error())
        return None


def record(
    rt: Pipeline, ready: Prepared, verdicts: Iterable[tuple[Job, Verdict]], progress: Progress | None = None
) -> None:
    """Record a prepared flow's invoices from the verdicts of its documents (in order, as they come) and
    close it with its verdict (return flow queued)."""
    flow = ready.flow
    try:
        tally = _judge_all(rt, ready, verdicts, progress)
    except Rejected as r:
        _forget(rt, flow)
        return _reject_flow(rt, flow, r.to_error())
    except _Unreadable as u:
        _forget(rt, flow)
        return _reject_flow(rt, flow, u.error)
    flow.profile = tally.profile
    flow.flow_code = tally.flow_code
    flow.invoice_count, flow.rejected_count = tally.invoices, tally.rejected
    if tally.invoices == 0:
        return _reject_flow(rt, flow, technical.EMPTY_BATCH.error())
    if tally.rejected == 0:
        flow.status = lifecycle.check_transition(lifecycle.IN_PROGRESS, FlowStatus.IN_INTEGRE)
    elif tally.rejected == tally.invoices:
        flow.status = lifecycle.check_transition(lifecycle.IN_PROGRESS, FlowStatus.IN_REJETE)
    else:
        flow.status = lifecycle.check_transition(lifecycle.IN_PROGRESS, FlowStatus.IN_INTEGRE_PARTIEL)
    _close(rt, flow)


def _forget(rt: Pipeline, flow: Flow) -> None:
    """Forget this run's results; a reopened flow keeps its accepted invoices (already delivered)."""
    if flow.reopened:
        rt.store.forget_rejected(flow.id)
    else:
        rt.store.reset_flow_results(flow.id)


def _judge_all(
    rt: Pipeline, ready: Prepared, verdicts: Iterable[tuple[Job, Verdict]], progress: Progress | None
) -> _Tally:
    flow, directory, total, kept = ready.flow, ready.directory, ready.total, ready.kept
    tally = _Tally(
        invoices=len(kept), flow_code=flow.flow_code if kept else None, profile=flow.profile if kept else None
    )
    batch = ready.batch
    chunk: list[Invoice] = []
    deliveries: list[tuple[Invoice, Address]] = []
    held: set[str] = set()
    seen = duplicate_invoice.Seen()
    # Qualification takes no invoice number and no association link.
    numbers = None if flow.qualification else _taken_meanwhile
    links = None if flow.qualification else _followed_meanwhile
    for job, verdict in verdicts:
        if verdict.unreadable and not batch:
            raise _Unreadable(verdict.errors[0])
        inv, target, delivery = _decide(rt, flow, job, verdict, directory, seen)
        tally.invoices += 1
        tally.rejected += inv.status.is_rejected
        if verdict.syntax is not None and tally.flow_code is None:
            attached = bool(verdict.facts and verdict.facts.has_attachments)
            tally.flow_code = _flow_code(verdict.syntax, attached, inv.framework)
            tally.profile = verdict.profile
        chunk.append(inv)
        if target and not flow.qualification:  # qualification: judged as in production, delivered to no one
            to = reform_routing.address(rt, inv, verdict.container) or (
                rt.deliver_to
                and rt.deliver_to(directory.get(inv.buyer_siret), inv.service_code, inv.id, verdict.container)
            )
            deliveries.append((inv, to or Address(DELIVERY_CHANNEL, inv.buyer_siret, target)))
            if delivery is circuits.Delivery.HELD:
                held.add(inv.id)
        if len(chunk) >= rt.config.chunk_size:
            tally.rejected += len(rt.store.save_invoices(chunk, deliveries, numbers, links, held))
            chunk, deliveries, held = [], [], set()
        if progress:
            progress(tally.invoices, total)
    tally.rejected += len(rt.store.save_invoices(chunk, deliveries, numbers, links, held))
    return tally


def _taken_meanwhile(inv: Invoice, owner: str) -> ValidationError:
    """RLS-P01 for an invoice whose number a flow judged at the same moment took first (the store's
    unique invoice numbers decide; the duplicate rule ran before that flow was saved)."""
    _log.info("invoice.rejected", invoice_id=inv.id, rules=[duplicate_invoice.RULE.code], taken_by=owner)
    return duplicate_invoice.RULE.error(
        duplicate_invoice.INVOICE_NUMBER, f"{inv.number} (supplier {inv.supplier_id}) is invoice {owner}"
    )


def _followed_meanwhile(inv: Invoice) -> ValidationError:
    """RLS-P20 for a follower whose previous piece another follower, judged at the same moment, took first
    (the store's ``piece_links`` key decides; the association rules ran before that one was saved)."""
    _log.info("invoice.rejected", invoice_id=inv.id, rules=[previous_followed.RULE.code], previous=inv.previous_id)
    return previous_followed.RULE.error(
        PRECEDING, f"{inv.previous_number} is piece {inv.previous_id}, followed meanwhile"
    )


def _decide(
    rt: Pipeline,
    flow: Flow,
    job: Job,
    verdict: Verdict,
    directory: Directory,
    seen: duplicate_invoice.Seen,
    lookup: duplicate_invoice.InvoiceLookup | None = None,
) -> tuple[Invoice, str | None, circuits.Delivery]:
    """Turn a document's verdict into an invoice, adding the rules that need the store (the earlier invoices:
    `lookup`, else the store) and the directory, and place it in its billing file and circuit."""
    flow_id = flow.id
    inv = Invoice(
        id=invoice_id(flow_id, job.key),
        flow_id=flow_id,
        position=job.key,
        entry_name=job.entry_name[:1024],
        syntax=verdict.syntax,
        profile=verdict.profile,
    )
    inv.errors.extend(verdict.errors)
    target: str | None = None
    framework: Framework | None = None
    previous = None
    with log.bound(invoice_id=inv.id):
        facts = verdict.facts
        if facts is not None:
            inv.set_facts(facts)
            ctx = InvoiceContext(
                facts=facts,
                syntax=verdict.syntax,
                seen=seen,
                store=lookup or rt.store,
                pieces=rt.store,
                flow_id=flow_id,
                directory=directory,
                addressing=Addressing.of(facts),
                reform=rt.store,
                today=rt.clock().date(),
            )
            if verdict.xsd_valid:  # duplicates (stage STORE): only of a document read as its schema says
                inv.errors.extend(runner.run(ctx, [Stage.STORE]))
            if not inv.rejected:  # routing (stage DIRECTORY): only an invoice nothing else rejects
                inv.errors.extend(runner.run(ctx, [Stage.DIRECTORY]))
                structure = ctx.recipient
                if not inv.rejected and structure is not None:
                    target = str(
                        delivery_path(rt.config, structure.siret, facts.service_code, inv.id, verdict.container)
                    )
                elif not inv.rejected and (line := reform_routing.line_of(ctx)) is not None:
                    target = reform_routing.place(rt, inv, line, verdict.container)
            framework = ctx.framework
            previous = None if inv.rejected else ctx.association.previous
        if facts is not None and not inv.rejected:
            seen.add(facts)
        if inv.rejected:
            routing_only = all(e.category is Category.ROUTING for e in inv.errors if e.fatal)
            inv.status = InvoiceStatus.REJETEE_ROUTAGE if routing_only else InvoiceStatus.REJETEE
            _log.info("invoice.rejected", rules=sorted({e.rule for e in inv.errors if e.fatal}))
        delivery = circuits.place(
            inv, framework, previous, rt.config.deadlines, rt.clock(), circuits=not flow.qualification
        )
    return inv, target if delivery is not circuits.Delivery.NONE else None, delivery


def _flow_code(syntax: Syntax, has_attachments: bool, framework: Framework = Framework.A1) -> FlowCode:
    """The flow code of a flow whose first piece has this syntax: works pieces (A4, A7 ...) travel in
    E4 (structured) or E5 (Factur-X; UBL with attachments), the others in E1, E2 or E3.

    >>> _flow_code(Syntax.CII, False, Framework.A4), _flow_code(Syntax.UBL_INVOICE, True, Framework.A15)
    (<FlowCode.E4_CII: 'IN_DP_E4_CII_16B'>, <FlowCode.E5_UBL: 'IN_DP_E5_UBL_INVOICE'>)
    >>> _flow_code(Syntax.FACTURX, False, Framework.A9)
    <FlowCode.E2_FACTURX: 'IN_DP_E2_CII_FACTURX'>
    """
    ubl = syntax in (Syntax.UBL_INVOICE, Syntax.UBL_CREDITNOTE)
    if framework.flow_family == "works":
        if syntax is Syntax.FACTURX:
            return FlowCode.E5_FACTURX
        if ubl:
            return FlowCode.E5_UBL if has_attachments else FlowCode.E4_UBL
        return FlowCode.E4_CII
    if ubl and has_attachments:
        return FlowCode.E3_UBL
    return syntax.flow_code


def delivery_path(
    config: PipelineConfig, siret: str, service_code: str | None, inv_id: str, container: Container | None
) -> Path:
    service = _safe_component(service_code) if service_code else "_"
    ext = ".pdf" if container is Container.PDF else ".xml"
    return config.delivery_dir / siret / service / f"{inv_id}{ext}"


def _safe_component(value: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in value)[:100]
    return cleaned.strip(".") or "_"


# ---- close ---------------------------------------------------------------------


def _reject_flow(rt: Pipeline, flow: Flow, error: ValidationError) -> None:
    _log.info("flow.rejected", rule=error.rule, detail=error.message)
    flow.status = lifecycle.check_transition(lifecycle.IN_PROGRESS, FlowStatus.IN_REJETE)
    flow.invoice_count = flow.rejected_count = 0
    rt.store.add_flow_errors(flow.id, [error])
    _close(rt, flow)


def _close(rt: Pipeline, flow: Flow) -> None:
    """Write the return flow (validated against Relais's XSD), archive it, close the flow."""
    earlier = [o for o in rt.store.outbox_for_flow(flow.id) if o.kind == OutboxKind.RETURN]
    names = [PurePosixPath(o.destination.replace("\\", "/")).name for o in earlier]
    replaces = None
    if flow.reopened:  # the new report says which one it replaces (the last one sent for this flow)
        sent = [n for o, n in zip(earlier, names, strict=True) if o.status != OutboxStatus.SUPERSEDED]  # never sent
        replaces = sent[-1] if sent else None
    fd, tmp = tempfile.mkstemp(dir=rt.config.staging_dir, prefix=temp_prefix(f"cr-{flow.id}-"))
    try:
        with os.fdopen(fd, "wb") as out:
            returnflow.write(
                out,
                flow,
                rt.store.flow_errors(flow.id),
                rt.store.iter_invoices(flow.id),
                reopened=flow.reopened,
                replaces=replaces,
                language=rt.language(flow.partner),
            )
        returnflow.validate(Path(tmp))
        obj = rt.archive.put_file(Path(tmp))
    finally:
        Path(tmp).unlink(missing_ok=True)
    name = returnflow.file_name(flow, set(names))  # never the name of an earlier report: none is overwritten
    if rt.vocabulary(flow.partner) == "cdar":
        rt.cdar.finish_flow(rt.store, rt.archive, rt.channels, flow, rt.language(flow.partner), len(earlier))
    else:
        rt.store.finish_flow(flow, rt.channels.return_address(flow.partner, name), obj.sha256)
    _log.info(
        "flow.closed",
        status=str(flow.status),
        invoices=flow.invoice_count,
        rejected=flow.rejected_count,
        flow_code=str(flow.flow_code) if flow.flow_code else None,
    )
    if flow.invoice_count > flow.rejected_count and not flow.qualification:  # qualification: no lifecycle
        statuses.complete_suspended(rt.store, flow.id)
