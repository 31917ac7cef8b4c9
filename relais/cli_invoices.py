"""`relais invoices ID`: one invoice, its status and its whole history."""

from __future__ import annotations

import json

import click

from relais import cli_common


@click.command(name="invoices")
@click.argument("invoice_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def invoices(ctx: click.Context, invoice_id: str, as_json: bool) -> None:
    """Show one invoice: facts, current status, findings and every status it took (who, when, why)."""
    from flows.store import Store
    from relais import report

    settings = cli_common.settings(ctx, "relais invoices")
    store = Store.open(settings.database_url, schema=settings.database_schema)
    if report.print_invoice(store, invoice_id, as_json=as_json):
        return
    history = store.invoice_history(invoice_id)
    if not history:
        cli_common.fail("relais invoices", f"no invoice {invoice_id}", 2)
    # Forgotten by a reprocessing of its flow and not recorded again: its history outlives it.
    if as_json:
        click.echo(json.dumps({"id": invoice_id, "recorded": False, "history": [h.as_json() for h in history]}))
    else:
        click.echo(f"{invoice_id}  plus enregistrée : son flux a été retraité (no longer recorded: flow reprocessed)")
        for h in history:
            click.echo("  " + report.history_line(h))
