"""``relais flows``: list flows page by page, show one (``relais flows ID``), reprocess incidents and
closed flows with rejections (``relais flows reprocess``)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from flows.domain.lifecycle import FlowStatus
from flows.domain.outbox import OutboxKind
from relais.cli.common import Choice, fail, load_settings, pass_settings, runtime
from relais.settings import Settings

if TYPE_CHECKING:
    from flows.store import Store
import json


def _store(settings: Settings) -> Store:
    from flows.store import Store  # imported lazily: `relais --help` stays fast

    return Store.open(settings.database_url, schema=settings.database_schema)


class _FlowsGroup(click.Group):
    """`relais flows [options]` lists, `relais flows ID` shows one flow, `relais flows reprocess ...` acts."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["show", *args]
        return super().parse_args(ctx, args)


@click.group(name="flows", cls=_FlowsGroup, invoke_without_command=True)
@click.option(
    "--status",
    multiple=True,
    type=Choice(
        [str(s) for s in FlowStatus], case_sensitive=False, meanings={str(s): s.info.label_fr for s in FlowStatus}
    ),
    help="Only flows in this status (repeatable).",
)
@click.option("--partner")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1, max=10_000), help="Flows per page.")
@click.option("--cursor", help="Show the page after this one: the `next_cursor` of the previous page.")
@click.option("--json", "as_json", is_flag=True, help='Print {"flows": [...], "next_cursor": ID or null}.')
@click.pass_context
def flows(
    ctx: click.Context, status: tuple[str, ...], partner: str | None, limit: int, cursor: str | None, as_json: bool
) -> None:
    """List flows newest first, page by page; `relais flows ID` shows one flow with its invoices, errors and
    outbox; `relais flows reprocess` runs incidents, or closed flows with rejections, again."""
    if ctx.invoked_subcommand is not None:
        return
    from relais import report

    store = _store(load_settings(ctx))
    statuses = [FlowStatus(s) for s in status]  # valid: Choice
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


@flows.command(name="show")
@click.argument("flow_id")
@click.option("--json", "as_json", is_flag=True)
@pass_settings
def flows_show(settings: Settings, flow_id: str, as_json: bool) -> None:
    """Show one flow with its invoices, errors, outbox and AS2 messages."""
    from relais import report

    store = _store(settings)
    flow = store.get_flow(flow_id)
    if flow is None:
        fail("relais flows", f"aucun flux {flow_id} (no flow {flow_id})")
    report.print_flow(store, flow, as_json=as_json)


@flows.command(name="reprocess")
@click.argument("flow_ids", nargs=-1)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=Choice(["IN_INCIDENTE", "IN_REJETE", "IN_INTEGRE_PARTIEL"]),
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
    from relais.run_loop import incident_line
    from relais.runner import directory_missing, process_flows, requeue

    if not flow_ids and not statuses:
        fail(
            "relais flows reprocess",
            "indiquez des flux (FLOW_ID ...) ou --status IN_INCIDENTE (name flows (FLOW_ID ...) or --status IN_INCIDENTE)",
        )
    rt = runtime(ctx)
    if (refused := directory_missing(rt)) and not queue:
        fail("relais flows reprocess", refused)
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
            fail("relais flows reprocess", refused)
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
        click.echo(incident_line(rt.store, len(done.incidents)), err=True)
        sys.exit(1)


# ---- `relais outbox` ---------------------------------------------------------------------------


@click.command(name="outbox")
@click.option("--json", "as_json", is_flag=True)
@pass_settings
def outbox(settings: Settings, as_json: bool) -> None:
    """Deliveries and return flows not sent yet (e.g. a partner's server is down), oldest first."""
    from flows.store import Store

    store = Store.open(settings.database_url, schema=settings.database_schema)
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
