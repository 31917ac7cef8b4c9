"""The ``relais`` command line: the same pipeline as the Airflow DAGs, on one machine."""

from __future__ import annotations

import json
import sys
import time
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import NoReturn

import click

from flows.domain.lifecycle import FlowStatus
from flows.domain.outbox import OutboxKind
from relais import log
from relais.cli import common as cli_common
from relais.settings import Settings

_log = log.get("relais.cli")


def _version() -> str:
    try:
        return dist_version("relais")
    except Exception:  # pragma: no cover - not installed
        return "0+unknown"


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"relais {_version()}")
    try:
        from validators import schematron

        home = Settings.from_env()
        for key, version in schematron.discover(home.rules_dir).versions().items():
            click.echo(f"  {key}: {version}")
    except Exception as e:  # noqa: BLE001 - --version must still answer
        click.echo(f"  rule sets: unavailable ({e})")
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and the rule-set versions, then exit.",
)
@click.option(
    "--home",
    type=click.Path(path_type=Path),
    envvar="RELAIS_HOME",
    help="Data folder (store, archive, drop zones). Default ./var/relais.",
)
@click.option(
    "--log-level",
    default="WARNING",
    envvar="RELAIS_LOG_LEVEL",
    show_default=True,
    type=cli_common.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], case_sensitive=False),
)
@click.pass_context
def main(ctx: click.Context, home: Path | None, log_level: str) -> None:
    """Relais: e-invoice flow hub (drop zones, validation, routing, return flows)."""
    log.configure(log_level)
    from_command_line = ctx.get_parameter_source("home") is click.core.ParameterSource.COMMANDLINE
    ctx.obj = {"home": home, "home_given": from_command_line}


def _settings(ctx: click.Context, home: Path | None = None) -> Settings:
    try:
        return Settings.from_env(home or ctx.obj.get("home"))
    except ValueError as e:  # e.g. RELAIS_MAX_INVOICES_PER_FLOW=abc
        _fail(ctx.info_name or "", f"réglage invalide dans l'environnement : {e} (invalid setting in the environment)")


def _fail(command: str, message: str, code: int = 2) -> NoReturn:
    click.echo(f"relais {command}: {message}", err=True)
    sys.exit(code)


def _runtime(ctx: click.Context):  # noqa: ANN202 - imported lazily to keep `relais --help` fast
    from relais.compose import Runtime

    try:
        return Runtime.open(_settings(ctx))
    except FileNotFoundError as e:  # an XSD named by RELAIS_UBL_XSD_DIR / RELAIS_CII_XSD is missing
        _fail(ctx.info_name or "", str(e))


def _store(ctx: click.Context):  # noqa: ANN202
    from flows.store import Store

    settings = _settings(ctx)
    return Store.open(settings.database_url, schema=settings.database_schema)


# ---- run -----------------------------------------------------------------------


@main.command()
@click.option("--watch", is_flag=True, help="Keep scanning the drop zones.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between scans with --watch.")
@click.option("--quiet", "-q", is_flag=True)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="Serve Prometheus metrics (the store's and this process's validation pool) on 127.0.0.1:PORT/metrics.",
)
@click.pass_context
def run(ctx: click.Context, watch: bool, interval: float, quiet: bool, metrics_port: int | None) -> None:
    """Take complete files from the drop zones and process them once (or keep going).

    Each flow's return flow leaves as soon as the flow is closed. Exit 1 when a flow
    became an incident in this pass (it is retried automatically, then parked).
    SIGTERM stops gracefully (relais/shutdown.py): nothing new is taken, the flow in
    progress finishes within RELAIS_STOP_GRACE_SECONDS or is released for the next
    worker (exit 0 when nothing was interrupted, else 143).
    """
    from flows.domain import lease
    from relais.runner import directory_missing, run_pass
    from relais.shutdown import Shutdown, Terminated

    rt = _runtime(ctx)
    if refused := directory_missing(rt):
        rt.close()
        _fail("run", refused)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        from relais import metrics

        start_http_server(metrics_port, addr="127.0.0.1", registry=metrics.registry(rt, pool=True))
    shutdown = Shutdown(rt.settings.stop_grace_seconds).install()
    code = 0
    try:
        try:
            while not shutdown.requested:
                with shutdown.work():
                    report = run_pass(rt, progress=not quiet, only_due=watch, stop=shutdown.stop)
                if not quiet and report.flows:
                    from relais.report import print_flows

                    print_flows([rt.store.get_flow(f.id) or f for f in report.flows])
                if not quiet and (said := _pass_summary(report, watch)):
                    click.echo(said)
                code = 1 if report.incidents else 0
                if report.incidents:
                    click.echo(_incident_line(rt.store, len(report.incidents)), err=True)
                if not watch:
                    break
                time.sleep(interval)
        except Terminated:
            pass  # shutdown.interrupted says whether work was cut short
        except KeyboardInterrupt:  # Ctrl-C ends --watch quietly (exit 130, as for SIGINT)
            _release(rt, lease.worker_id())
            if not quiet:
                click.echo("arrêté (stopped)", err=True)
            code = 130
        if shutdown.requested:
            released = _release(rt, lease.worker_id())
            if not quiet:
                what = f" ; rendus au worker suivant : {', '.join(released)}" if released else ""
                click.echo(f"arrêté (SIGTERM){what} (stopped)", err=True)
            code = 143 if shutdown.interrupted else code
    finally:
        # Reap the validation workers and close their pipes now, in order, rather than leave
        # them to the interpreter's teardown (which finalises pipes, threads and Saxon in any order).
        rt.close()
    sys.exit(code)


def _pass_summary(report, watch: bool) -> str | None:  # noqa: ANN001 - relais.runner.GroupReport
    """What a pass did besides the flows it printed (sent from the outbox, status return flows), in French;
    None when there is nothing to say (a --watch pass that found nothing stays silent)."""
    done = []
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


def _release(rt, worker: str) -> list[str]:  # noqa: ANN001 - relais.compose.Runtime
    """Give up this worker's claims (flows in progress, leased outbox rows): the next worker takes them
    over at once. Best effort: a store that is down leaves them to their leases."""
    try:
        flows = rt.store.release_claims(worker)
        rows = rt.store.release_leases(worker)
    except Exception as e:  # noqa: BLE001 - leases expire on their own
        _log.warning("shutdown.release_failed", error=f"{type(e).__name__}: {e}")
        return []
    if flows or rows:
        _log.warning("shutdown.released", flows=flows, outbox_rows=rows)
    return flows


def _incident_line(store, new: int) -> str:  # noqa: ANN001 - flows.store.Store, imported lazily
    retrying, parked = store.incident_counts()
    return (
        f"relais run : {new} flux devenu(s) incident(s) (RLS-T99) dans ce passage ; {retrying} incident(s) "
        f"réessayé(s) automatiquement, {parked} en attente de l'équipe d'exploitation : "
        "`relais flows --status IN_INCIDENTE`, puis `relais flows reprocess ID` "
        f"({new} flow(s) became incidents in this pass)"
    )


# ---- db ------------------------------------------------------------------------


@main.group(name="db")
def db() -> None:
    """The store's schema (migrations run once per deployment, not by every task)."""


@db.command(name="upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Bring the store's schema to this version of Relais (idempotent)."""
    from flows.store import Store, head_revision

    settings = _settings(ctx)
    store = Store.open(settings.database_url, schema=settings.database_schema, migrate=True)
    try:
        click.echo(f"schéma de la base à la révision {store.schema_revision()} (dernière : {head_revision()})")
    finally:
        store.close()


@db.command(name="status")
@click.pass_context
def db_status(ctx: click.Context) -> None:
    """Say whether the store's schema is up to date (exit 1 when `relais db upgrade` is needed)."""
    from flows.store import Store, head_revision

    settings = _settings(ctx)
    store = Store.connect(settings.database_url, schema=settings.database_schema)
    try:
        current, head = store.schema_revision(), head_revision()
    finally:
        store.close()
    click.echo(
        f"schéma de la base à la révision {current or 'aucune'}, dernière : {head}"
        + ("" if current == head else " : lancez `relais db upgrade` (run `relais db upgrade`)")
    )
    sys.exit(0 if current == head else 1)


# ---- demo ----------------------------------------------------------------------


@main.command()
@click.option(
    "--home",
    "demo_home",
    type=click.Path(path_type=Path),
    help="Demo folder, wiped and recreated (default: the main --home if given, else ./var/demo; "
    "RELAIS_HOME is not used). A non-empty folder not made by the demo is refused.",
)
@click.option(
    "--invoices", default=40, show_default=True, type=click.IntRange(min=1), help="Invoices per generated batch."
)
@click.option("--lines", default=5, show_default=True, type=click.IntRange(min=1))
@click.pass_context
def demo(ctx: click.Context, demo_home: Path | None, invoices: int, lines: int) -> None:
    """Generate a directory and sample batches, run the pipeline, print a summary.

    Self-contained: the demo folder holds its own SQLite store (RELAIS_DATABASE_URL is not used).
    """
    from relais.demo import run_demo

    home = demo_home or (ctx.obj.get("home") if ctx.obj.get("home_given") else None) or Path("var") / "demo"
    settings = _settings(ctx, home)
    try:
        run_demo(settings, invoices=invoices, lines=lines)
    except FileNotFoundError as e:  # an XSD named by RELAIS_UBL_XSD_DIR / RELAIS_CII_XSD is missing
        _fail("demo", str(e))


# ---- validate ------------------------------------------------------------------


class _FlowsGroup(click.Group):
    """`relais flows [options]` lists, `relais flows ID` shows one flow, `relais flows reprocess ...` acts."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["show", *args]
        return super().parse_args(ctx, args)


@main.group(name="flows", cls=_FlowsGroup, invoke_without_command=True)
@click.option(
    "--status",
    multiple=True,
    type=cli_common.Choice(
        [str(s) for s in FlowStatus], case_sensitive=False, meanings={str(s): s.info.label_fr for s in FlowStatus}
    ),
    help="Only flows in this status (repeatable).",
)
@click.option("--partner")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1, max=10_000), help="Flows per page.")
@click.option("--cursor", help="Show the page after this one: the `next_cursor` of the previous page.")
@click.option("--json", "as_json", is_flag=True, help='Print {"flows": [...], "next_cursor": ID or null}.')
@click.pass_context
def flows_cmd(
    ctx: click.Context, status: tuple[str, ...], partner: str | None, limit: int, cursor: str | None, as_json: bool
) -> None:
    """List flows newest first, page by page; `relais flows ID` shows one flow with its invoices, errors and
    outbox; `relais flows reprocess` runs incidents, or closed flows with rejections, again."""
    if ctx.invoked_subcommand is not None:
        return
    from relais import report

    store = _store(ctx)
    statuses = [FlowStatus(s) for s in status]  # valid: cli_common.Choice
    page = store.list_flows(status=statuses, partner=partner, limit=limit + 1, before=cursor)
    next_cursor = page[limit - 1].id if len(page) > limit else None
    report.print_flows(page[:limit], as_json=as_json, next_cursor=next_cursor)
    if as_json:
        return
    if next_cursor:
        click.echo(f"suite : relais flows --cursor {next_cursor}" + (f" --limit {limit}" if limit != 50 else ""))
    pending = [
        i for i in store.pending_outbox() if not partner or (i.kind is not OutboxKind.DELIVERY and i.partner == partner)
    ]
    if pending:
        returns = sum(i.kind is OutboxKind.RETURN for i in pending)
        click.echo(
            f"en attente d'envoi : {returns} flux retour, {len(pending) - returns} livraison(s) "
            "(partenaire indisponible ?) - voir `relais outbox`"
        )
    retrying, parked = store.incident_counts()
    if retrying or parked:
        click.echo(
            f"incidents : {retrying} en attente d'un nouvel essai automatique, {parked} en attente de l'équipe "
            "d'exploitation - `relais flows --status IN_INCIDENTE`, `relais flows reprocess ID`"
        )


@flows_cmd.command(name="show")
@click.argument("flow_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def flows_show(ctx: click.Context, flow_id: str, as_json: bool) -> None:
    """Show one flow with its invoices, errors, outbox and AS2 messages."""
    from relais import report

    store = _store(ctx)
    flow = store.get_flow(flow_id)
    if flow is None:
        _fail("flows", f"aucun flux {flow_id} (no flow {flow_id})")
    report.print_flow(store, flow, as_json=as_json)


@flows_cmd.command(name="reprocess")
@click.argument("flow_ids", nargs=-1)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=cli_common.Choice(["IN_INCIDENTE", "IN_REJETE", "IN_INTEGRE_PARTIEL"]),
    help="Every flow in this status (incidents: parked or waiting for a retry; closed flows with rejections).",
)
@click.option(
    "--queue", is_flag=True, help="Only put the flows back in the queue; `relais run` or the DAG processes them."
)
@click.option(
    "--reason",
    help="Why (e.g. 'annuaire corrigé'): the history of the invoices recorded again says "
    "'Retraitement demandé par ops : REASON'.",
)
@click.pass_context
def flows_reprocess(
    ctx: click.Context, flow_ids: tuple[str, ...], statuses: tuple[str, ...], queue: bool, reason: str | None
) -> None:
    """Run flows through the pipeline again, with the current directory and rule sets.

    Incidents (IN_INCIDENTE) go back to IN_EN_ATTENTE_RETRAITEMENT_CPP with their retry budget renewed.
    Closed flows with rejections (IN_REJETE, IN_INTEGRE_PARTIEL: e.g. after fixing the directory) are
    reopened: their accepted invoices stay as they are (never delivered again), the rejected ones are
    judged again, and the new integration report says which one it replaces. Each flow is then
    processed and its return flow sent.
    Exit 1 when a flow is an incident again, 2 when a flow cannot be reprocessed.
    """
    from relais.runner import directory_missing, process_flows, requeue

    if not flow_ids and not statuses:
        _fail(
            "flows reprocess",
            "indiquez des flux (FLOW_ID ...) ou --status IN_INCIDENTE (name flows (FLOW_ID ...) or --status IN_INCIDENTE)",
        )
    rt = _runtime(ctx)
    if (refused := directory_missing(rt)) and not queue:
        _fail("flows reprocess", refused)
    ids = list(dict.fromkeys(flow_ids))
    if statuses:
        ids += [
            f.id
            for f in reversed(rt.store.list_flows(status=[FlowStatus(s) for s in statuses], limit=1_000_000))
            if f.id not in ids
        ]
    for flow_id in ids:
        refused = requeue(rt, flow_id, reason)
        if refused:
            _fail("flows reprocess", refused)
    if not ids:
        click.echo("aucun flux à retraiter (no flow to reprocess)")
        return
    if queue:
        click.echo(f"{len(ids)} flux en attente de retraitement (IN_EN_ATTENTE_RETRAITEMENT_CPP)")
        return
    done = process_flows(rt, ids)
    from relais.report import print_flows

    print_flows([rt.store.get_flow(f.id) or f for f in done.flows])
    if done.incidents:
        click.echo(_incident_line(rt.store, len(done.incidents)), err=True)
        sys.exit(1)


@main.command(name="outbox")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def outbox_cmd(ctx: click.Context, as_json: bool) -> None:
    """Deliveries and return flows not sent yet (e.g. a partner's server is down), oldest first."""
    store = _store(ctx)
    items = store.pending_outbox()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "flow": i.flow_id,
                        "kind": i.kind,
                        "channel": i.channel,
                        "partner": i.partner,
                        "destination": i.destination,
                        "attempts": i.attempts,
                        "last_error": i.last_error,
                        "next_attempt_at": i.next_attempt_at.isoformat() if i.next_attempt_at else None,
                    }
                    for i in items
                ],
                ensure_ascii=False,
            )
        )
        return
    if not items:
        click.echo("file d'envoi vide : tout a été envoyé (outbox empty: everything was sent)")
        return
    for i in items:
        retry = f"nouvel essai à {i.next_attempt_at:%H:%M:%S}" if i.next_attempt_at else "dû maintenant"
        click.echo(
            f"{i.flow_id or '-':<14} {i.kind:<8} essais {i.attempts:<3} {retry:<21} {i.channel} {i.partner or '-'} {i.destination}"
            + (f"\n{'':<15}dernière erreur : {i.last_error}" if i.last_error else "")
        )


# ---- generate ------------------------------------------------------------------


from relais.cli.files import generate, validate  # noqa: E402  (`relais validate`, `relais generate`: files alone)

main.add_command(validate)
main.add_command(generate)

from relais.cli.sftp import sftp  # noqa: E402  (the `relais sftp` group lives in its own module)

main.add_command(sftp)

from relais.cli.as2 import as2  # noqa: E402  (the `relais as2` group)
from relais.cli.partners import partners  # noqa: E402  (`relais partners`: modes, channels, last flows)

main.add_command(as2)
main.add_command(partners)

from relais.cli.reference import directory, rules  # noqa: E402  (reference data: directory, rule sets)

main.add_command(directory)
main.add_command(rules)

from relais.cli.api import api  # noqa: E402  (the `relais api` group: the HTTP API and its tokens)

main.add_command(api)

from relais.cli.invoices import invoices  # noqa: E402  (one invoice and its status history)

main.add_command(invoices)


from relais.cli.archive import archive  # noqa: E402  (the `relais archive` group: verify the archived objects)

main.add_command(archive)

from relais.cli.web import users, web  # noqa: E402  (the `relais web` and `relais users` groups)

main.add_command(web)
main.add_command(users)

from relais.cli.waiting import waiting  # noqa: E402  (`relais waiting`: files waiting in the drop zones, and why)

main.add_command(waiting)


if __name__ == "__main__":  # pragma: no cover
    main()
