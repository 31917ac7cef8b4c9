"""The loop of `relais run`: passes over the drop zones (relais/runner.py) until done, Ctrl-C or SIGTERM,
with what each pass says and the command's exit code.

Exit codes: 0 when the last pass made no incident, 1 when it did (the incident is retried
automatically, then parked); on SIGTERM (`Shutdown`, below) nothing new is taken, the flow in progress
finishes within RELAIS_STOP_GRACE_SECONDS or is released for the next worker: 143 when work was cut
short, else as before the signal; Ctrl-C: 130.

Graceful stop of a long-running `relais run` on SIGTERM (systemd, `docker stop`, Kubernetes).

The first SIGTERM asks for a stop: no new file is taken and no new flow started. A flow being
processed may finish within the grace period (`RELAIS_STOP_GRACE_SECONDS`); when it does not, or on a
second SIGTERM, the work is interrupted (`Terminated`, raised in the main thread), and the command
releases this worker's claims (`Store.release_worker`) so that another worker — or the next start —
takes the flow over at once instead of waiting for the lease. An interruption is a crash the process
survives: what it wrote is atomic (`flows.io.atomic`: a file being written is removed, never left
visible), what it recorded is in transactions, and the flow resumes where the store says it is.

When nothing is being processed (between two scans), SIGTERM stops at once.

>>> s = Shutdown(grace=5.0)
>>> s.requested
False
>>> with s.work():
...     s.busy
True
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

import click

from flows.domain import lease
from flows.store import Store
from relais import log
from relais.compose import Runtime
from relais.report import print_flows
from relais.runner import GroupReport, run_pass

_log = log.get("relais.cli")
_stop_log = log.get("relais.shutdown")

INCIDENTS = 1
INTERRUPTED = 130  # Ctrl-C, as for SIGINT
TERMINATED = 143  # SIGTERM cut the work in progress short


class Terminated(BaseException):
    """The current work is interrupted by a stop request (not an `Exception`: no handler turns it into
    an incident or a failed flow)."""


class Shutdown:
    """SIGTERM handling for one command. `install()` in the main thread; `work()` around a pass."""

    def __init__(self, grace: float) -> None:
        self.grace = max(0.0, grace)
        self.requested = False
        self.busy = False
        self.interrupted = False
        self._signals = 0

    def install(self) -> Shutdown:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_term)
            signal.signal(signal.SIGALRM, self._on_alarm)
        return self

    def stop(self) -> bool:
        """Whether to stop taking work (the callable the runner checks between files and flows)."""
        return self.requested

    @contextlib.contextmanager
    def work(self) -> Iterator[None]:
        """Mark a pass: a SIGTERM inside waits for the grace period; outside, it stops at once."""
        self.busy = True
        try:
            yield
        finally:
            self.busy = False
            signal.setitimer(signal.ITIMER_REAL, 0)

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        self.requested = True
        if not self.busy:
            if self._signals == 1:  # between two passes: stop now
                raise Terminated
            return  # already stopping (releasing, closing): nothing more to interrupt
        if self._signals > 1 or self.grace == 0:
            self._interrupt("second SIGTERM" if self._signals > 1 else "no grace period")
        _stop_log.warning(
            "shutdown.requested",
            grace_seconds=self.grace,
            detail="no new file or flow is taken; the flow in progress may finish within the grace period",
        )
        signal.setitimer(signal.ITIMER_REAL, self.grace)

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        if self.busy:
            self._interrupt("grace period over")

    def _interrupt(self, why: str) -> None:
        self.interrupted = True
        _stop_log.warning("shutdown.interrupting", reason=why, detail="this worker's claims are released")
        raise Terminated


# ---- the loop -------------------------------------------------------------------------------------


def serve_metrics(rt: Runtime, port: int) -> None:
    """Prometheus metrics (the store's and this process's validation pool) on 127.0.0.1:`port`/metrics."""
    from prometheus_client import start_http_server

    from relais import metrics

    start_http_server(port, addr="127.0.0.1", registry=metrics.registry(rt, pool=True))


def run(rt: Runtime, *, watch: bool, interval: float, quiet: bool) -> int:
    """Process what the drop zones hold once (or keep going with `watch`, a pass every `interval`
    seconds); the exit code. Closes `rt`."""
    shutdown = Shutdown(rt.settings.stop_grace_seconds).install()
    code = 0
    try:
        try:
            while not shutdown.requested:
                code = _one_pass(rt, shutdown, watch=watch, quiet=quiet)
                if not watch:
                    break
                time.sleep(interval)
        except Terminated:
            pass  # shutdown.interrupted says whether work was cut short
        except KeyboardInterrupt:  # Ctrl-C ends --watch quietly
            release(rt, lease.worker_id())
            if not quiet:
                click.echo("arrêté (stopped)", err=True)
            code = INTERRUPTED
        if shutdown.requested:
            released = release(rt, lease.worker_id())
            if not quiet:
                what = f" ; rendus au worker suivant : {', '.join(released)}" if released else ""
                click.echo(f"arrêté (SIGTERM){what} (stopped)", err=True)
            code = TERMINATED if shutdown.interrupted else code
    finally:
        # Reap the validation workers and close their pipes now, in order, rather than leave
        # them to the interpreter's teardown (which finalises pipes, threads and Saxon in any order).
        rt.close()
    return code


def _one_pass(rt: Runtime, shutdown: Shutdown, *, watch: bool, quiet: bool) -> int:
    with shutdown.work():
        report = run_pass(rt, progress=not quiet, only_due=watch, stop=shutdown.stop)
    if not quiet and report.flows:
        print_flows([rt.store.get_flow(f.id) or f for f in report.flows])
    if not quiet and (said := pass_summary(report, watch)):
        click.echo(said)
    if report.incidents:
        click.echo(incident_line(rt.store, len(report.incidents)), err=True)
        return INCIDENTS
    return 0


def pass_summary(report: GroupReport, watch: bool) -> str | None:
    """What a pass did besides the flows it printed (deadlines applied, sent from the outbox, status return
    flows), in French; None when there is nothing to say (a --watch pass that found nothing stays silent)."""
    done = []
    if report.deadlines:
        done.append(
            f"{report.deadlines} pièce(s) avancée(s) à l'échéance de leur délai "
            "(validation tacite, ou transmise à la maîtrise d'ouvrage)"
        )
    if report.status_returns:
        done.append(f"{report.status_returns} flux retour de statut émis (changements de statut des factures)")
    if not report.flows and (report.delivered or report.returned):
        done.append(
            f"{report.delivered} facture(s) livrée(s) et {report.returned} flux retour envoyé(s) depuis la file"
        )
    if report.failed_sends:
        done.append(f"{report.failed_sends} envoi(s) en échec, réessayé(s) plus tard (`relais outbox`)")
    if not done:
        return (
            None
            if report.flows or watch
            else "relais run : rien à traiter (aucun fichier complet déposé, aucun envoi dû)"
        )
    return "relais run : " + ("aucun nouveau flux ; " if not report.flows else "") + " ; ".join(done)


def release(rt: Runtime, worker: str) -> list[str]:
    """Give up this worker's claims (flows in progress, leased outbox rows): the next worker takes them
    over at once. Best effort: a store that is down leaves them to their leases."""
    try:
        flows = rt.store.release_claims(worker)
        rows = rt.store.release_leases(worker)
    except Exception as e:  # leases expire on their own
        _log.warning("shutdown.release_failed", error=f"{type(e).__name__}: {e}")
        return []
    if flows or rows:
        _log.warning("shutdown.released", flows=flows, outbox_rows=rows)
    return flows


def incident_line(store: Store, new: int) -> str:
    """What `relais run` and `relais flows reprocess` say on stderr when flows became incidents."""
    retrying, parked = store.incident_counts()
    return (
        f"relais run : {new} flux devenu(s) incident(s) (RLS-T99) dans ce passage ; {retrying} incident(s) "
        f"réessayé(s) automatiquement, {parked} en attente de l'équipe d'exploitation : "
        "`relais flows --status IN_INCIDENTE`, puis `relais flows reprocess ID` "
        f"({new} flow(s) became incidents in this pass)"
    )
