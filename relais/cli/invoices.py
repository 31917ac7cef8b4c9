"""`relais invoices ID`: one invoice, its status and its whole history; `relais invoices NUMBER`: the
invoices carrying that number (the number a supplier quotes on the phone, not Relais's id);
`relais invoices validator ID --siret S --reason TEXT`: ops set the right validator of a piece of a billing
circuit (audited); `relais billing-files ID`: the billing file of a piece, piece by piece
(docs/billing-frameworks.md)."""

from __future__ import annotations

import json

import click

from relais.cli.common import fail, pass_settings
from relais.settings import Settings


class _InvoicesGroup(click.Group):
    """`relais invoices ID` shows one invoice (the ``show`` command), `relais invoices validator ...` acts."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@click.group(name="invoices", cls=_InvoicesGroup)
def invoices() -> None:
    """Show one invoice (`relais invoices ID_OU_NUMERO`), or correct the validator of a piece
    (`relais invoices validator ID --siret S --reason TEXT`)."""


@invoices.command(name="show")
@click.argument("invoice_id", metavar="ID_OU_NUMERO")
@click.option("--json", "as_json", is_flag=True)
@pass_settings
def show(settings: Settings, invoice_id: str, as_json: bool) -> None:
    """Show one invoice: facts, current status, findings and every status it took (who, when, why).

    ID_OU_NUMERO is an invoice id (CPP0000000001-00001, listed by `relais flows FLOW_ID`) or an invoice
    number (INV-000001): the invoices with that number are listed (id, flow, supplier, status), and shown
    when there is only one. Exit 1 when nothing matches."""
    from flows.store import Store
    from relais import report

    store = Store.open(settings.database_url, schema=settings.database_schema)
    if report.print_invoice(store, invoice_id, as_json=as_json):
        return
    history = store.invoice_history(invoice_id)
    if history:
        # Forgotten by a reprocessing of its flow and not recorded again: its history outlives it.
        if as_json:
            click.echo(json.dumps({"id": invoice_id, "recorded": False, "history": [h.as_json() for h in history]}))
        else:
            click.echo(
                f"{invoice_id}  plus enregistrée : son flux a été retraité (no longer recorded: flow reprocessed)"
            )
            for h in history:
                click.echo("  " + report.history_line(h))
        return
    found = store.invoices_by_number(invoice_id)
    if not found:
        fail(
            "relais invoices",
            f"aucune facture d'identifiant ou de numéro « {invoice_id} » (cherché : l'identifiant Relais, "
            "ex. CPP0000000001-00001, puis le numéro de facture, ex. INV-000001, exactement). Les identifiants "
            "d'un flux sont listés par `relais flows ID_DU_FLUX` ; les flux d'un partenaire par "
            "`relais flows --partner PARTENAIRE`.",
            1,
        )
    if len(found) == 1:
        if not as_json:
            click.echo(f"1 facture porte le numéro {invoice_id} :")
        report.print_invoice(store, found[0].id, as_json=as_json)
        return
    if as_json:
        click.echo(
            json.dumps(
                {
                    "number": invoice_id,
                    "invoices": [
                        {
                            "id": i.id,
                            "flow": i.flow_id,
                            "supplier_id": i.supplier_id,
                            "issue_date": i.issue_date.isoformat() if i.issue_date else None,
                            "status": {"code": i.status.code, "label": i.status.label},
                        }
                        for i in found
                    ],
                },
                ensure_ascii=False,
            )
        )
        return
    click.echo(f"{len(found)} factures portent le numéro {invoice_id} :")
    click.echo(f"  {'facture':<20} {'flux':<14} {'fournisseur':<16} {'date':<10}  statut")
    for i in found:
        issued = f"{i.issue_date:%Y-%m-%d}" if i.issue_date else "-"
        click.echo(
            f"  {i.id:<20} {i.flow_id:<14} {i.supplier_id or '?':<16} {issued:<10}  {i.status.code} {i.status.label}"
        )
    click.echo("détail d'une facture : relais invoices ID")


@invoices.command(name="validator")
@click.argument("invoice_id", metavar="ID")
@click.option("--siret", required=True, help="The right validator's SIRET (14 digits, check digit verified).")
@click.option("--reason", required=True, help="Why (kept in the piece's history and the audit log).")
@pass_settings
def validator(settings: Settings, invoice_id: str, siret: str, reason: str) -> None:
    """Set the right validator of a piece waiting for its validator (A_VALIDER_1 / A_VALIDER_2), or whose
    validator answered that it is not its own (ERREUR_FOURNISSEUR_SUR_VALIDEUR): the piece waits again for
    the new validator, with a new deadline. No new deposit. Audited."""
    from flows.directory import actors as registry
    from flows.pipeline import status_changes as statuses
    from flows.store import Store
    from relais.cli.reference import principal

    prefix = "relais invoices validator"
    try:
        registry.check(siret, "-", "titulaire")
    except registry.ActorFileError as e:
        fail(prefix, f"{e} ; rien n'est changé (nothing changed)")
    if not reason.strip():
        fail(prefix, "--reason est vide : dites pourquoi (a reason is required)")
    store = Store.open(settings.database_url, schema=settings.database_schema)
    before = store.get_invoice(invoice_id)
    try:
        entry = statuses.correct_validator(store, invoice_id, siret, reason=reason, deadlines=settings.deadlines)
    except statuses.UnknownInvoice:
        fail(prefix, f"aucune pièce d'identifiant « {invoice_id} » (no such invoice)", 1)
    except statuses.WrongStep as e:
        fail(
            prefix,
            f"{invoice_id} est {e.status.info.label_fr} ({e.status.name}) : seules les pièces A_VALIDER_1, "
            "A_VALIDER_2 ou ERREUR_FOURNISSEUR_SUR_VALIDEUR changent de valideur ; rien n'est changé "
            "(not waiting for a validator)",
            1,
        )
    was = before.holder if before is not None else None
    store.audit(
        principal(),
        "invoice.validator",
        target=invoice_id,
        outcome="ok",
        http_status=None,
        detail=f"{entry.status.name} valideur {was or '-'} -> {siret} : {reason.strip()}",
    )
    after = store.get_invoice(invoice_id)
    due = f", échéance {after.due_at:%Y-%m-%d %H:%M} UTC" if after is not None and after.due_at else ""
    click.echo(f"{invoice_id} : {entry.status.name}, valideur {siret} (était {was or 'aucun'}){due}")


# ---- `relais billing-files ID`: here beside `relais invoices`, whose pieces a billing file holds -----------


@click.command(name="billing-files")
@click.argument("file_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True)
@pass_settings
def billing_files(settings: Settings, file_id: str, as_json: bool) -> None:
    """Show a billing file (dossier de facturation) as a timeline: each piece in the order it was recorded
    (its depositor, billing framework, the piece it follows, whose turn it is), then every status it took
    (when, who, the status, the reason code and its label, the reason).

    ID is the file's id (the id of its first piece) or the id of any of its pieces (`relais invoices ID`
    names the file of a piece). Exit 1 when there is no such file."""
    from flows.store import Store
    from relais import report

    store = Store.open(settings.database_url, schema=settings.database_schema)
    if not report.print_billing_file(store, file_id, as_json=as_json):
        fail(
            "relais billing-files",
            f"aucun dossier de facturation « {file_id} » (cherché : l'identifiant du dossier ou d'une de ses "
            "pièces, ex. CPP0000000001-00001 ; `relais invoices NUMERO` donne l'identifiant d'une pièce)",
            1,
        )
