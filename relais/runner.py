"""One pass of the whole path on one machine: drop zones -> pipeline -> outbox."""

from __future__ import annotations

import dataclasses
import sys

from connectors.folder import dropzone
from flows import dispatch
from flows.model import Flow, FlowStatus, utcnow
from flows.pipeline import CLAIMABLE, STALE_AFTER, Progress, Runtime, process_flow
from relais import log

_log = log.get("relais.runner")
PROGRESS_FROM = 200  # show a bar for flows with at least this many documents


def pending_flow_ids(rt: Runtime) -> list[str]:
    """Flows waiting for processing, oldest first: received, waiting for reprocessing, or
    left in progress by a worker that died (untouched for STALE_AFTER)."""
    waiting = [s for s in CLAIMABLE if s is not FlowStatus.IN_INCIDENTE]
    ids = {f.id for f in rt.store.list_flows(status=waiting, limit=100_000)}
    stale_before = utcnow() - STALE_AFTER
    ids.update(f.id for f in rt.store.list_flows(status=[FlowStatus.IN_EN_COURS_TRAITEMENT_CPP], limit=100_000)
               if f.updated_at < stale_before)
    return sorted(ids)


def intake(rt: Runtime, *, only_due: bool = False) -> list[Flow]:
    """Take what every drop zone holds: the partners' SFTP servers, then the local folders.

    Hosted SFTP uploads land in the local folders, so they are taken here too.
    A partner whose server is unreachable is reported in the logs; the others go on.
    With `only_due`, a partner is polled only once its `poll_seconds` have passed.
    """
    flows: list[Flow] = []
    sftp_partners = [p for p in rt.partners.values() if p.sftp is not None]
    if sftp_partners:
        from connectors.sftp import airflow_conn, pickup

        resolved = [dataclasses.replace(p, sftp=airflow_conn.resolve(p.sftp, rt.settings.keys_dir))
                    for p in sftp_partners if p.sftp is not None]
        for report in pickup.poll_all(rt, resolved, only_due=only_due).values():
            flows.extend(report.flows)
            for problem in report.errors:
                _log.warning("sftp.poll_problem", partner=report.partner, problem=problem, fatal=report.fatal)
    flows.extend(dropzone.scan(rt))
    return flows


def run_once(rt: Runtime, progress: bool = False, *, only_due: bool = False) -> list[Flow]:
    intake(rt, only_due=only_due)
    done = []
    for flow_id in pending_flow_ids(rt):
        done.append(process_flow(rt, flow_id, progress=_bar(flow_id) if progress else None))
    dispatch.dispatch(rt)
    return [rt.store.get_flow(f.id) or f for f in done]


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
