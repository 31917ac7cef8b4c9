"""`relais invoices ID`: one invoice, its status and its whole history."""

from __future__ import annotations

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
    if not report.print_invoice(store, invoice_id, as_json=as_json):
        cli_common.fail("relais invoices", f"no invoice {invoice_id}", 2)
