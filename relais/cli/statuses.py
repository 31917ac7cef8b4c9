"""`relais statuses`: the lifecycle messages Relais sent and received (docs/reform.md, "Seeing the messages").

- ``relais statuses list``: the CDAR messages, newest first, page by page: what was sent to whom and received
  from whom, when, the outcome, the number of lines; ``--vocabulary cpp --partner P``: the Chorus Pro (CPP)
  status return flows sent to that partner instead.
- ``relais statuses show ID``: one CDAR message with its lines (invoice, CDAR status and its label, reason,
  outcome, the rule of a refused line).
- ``relais statuses download ID [-o FILE]``: its bytes as archived, only while they match their SHA-256.

Unknown id: exit 1 with a message on stderr, as `relais invoices` does.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import TYPE_CHECKING, Any

import click

from relais import cdarview
from relais.cli.common import Choice, fail, pass_runtime, pass_settings
from relais.settings import Settings

if TYPE_CHECKING:
    from flows.store import Store
    from relais.compose import Runtime


def _store(settings: Settings) -> Store:
    from flows.store import Store  # imported lazily: `relais --help` stays fast

    return Store.open(settings.database_url, schema=settings.database_schema)


@click.group(name="statuses")
def statuses() -> None:
    """Lifecycle messages (CDAR) sent and received: list them, show one, download one as archived."""


@statuses.command(name="list")
@click.option("--partner", help="Only the messages sent to (or received from) this partner.")
@click.option(
    "--direction",
    type=Choice(["in", "out"], meanings={"in": "reçus", "out": "envoyés"}),
    help="in: received; out: sent.",
)
@click.option("--flow", "flow_id", help="Only the messages of this flow (received in it, or reporting on it).")
@click.option("--invoice", "invoice_id", help="Only the messages naming this invoice (Relais id).")
@click.option(
    "--outcome",
    type=Choice(list(cdarview.OUTCOMES), meanings={k: v[0] for k, v in cdarview.OUTCOMES.items()}),
    help="Only the messages with this outcome (not_sent: the incidents).",
)
@click.option(
    "--vocabulary",
    type=Choice(["cdar", "cpp"], meanings={"cdar": "messages CDAR de la réforme", "cpp": "flux retour Chorus Pro"}),
    default="cdar",
    show_default=True,
    help="cpp: the CPP status return flows sent to --partner (required).",
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1, max=10_000), help="Per page.")
@click.option("--before", type=click.IntRange(min=1), help="The page after this one: the `next_before` printed.")
@click.option("--json", "as_json", is_flag=True, help='Print {"messages": [...], "next_before": ID or null}.')
@pass_settings
def statuses_list(
    settings: Settings,
    partner: str | None,
    direction: str | None,
    flow_id: str | None,
    invoice_id: str | None,
    outcome: str | None,
    vocabulary: str,
    limit: int,
    before: int | None,
    as_json: bool,
) -> None:
    """List the CDAR messages sent and received, newest first: id, date (UTC), direction, partner, message id,
    outcome, lines. `relais statuses show ID` gives one with its lines."""
    store = _store(settings)
    if vocabulary == "cpp":
        _cpp_returns(store, partner, limit, as_json)
        return
    page = store.cdar_list(
        direction=direction,
        partner=partner,
        flow_id=flow_id,
        invoice_id=invoice_id,
        outcome=outcome,
        before=before,
        limit=limit + 1,
    )
    more = len(page) > limit
    page = page[:limit]
    next_before = page[-1].id if more and page else None
    if as_json:
        data = {"messages": [cdarview.as_json(m, lines=False) for m in page], "next_before": next_before}
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    if not page:
        click.echo("aucun message CDAR (no CDAR message)")
    else:
        click.echo(
            f"{'id':>6}  {'date (UTC)':<19}  {'sens':<6}  {'partenaire':<16}  {'message':<28}  {'lignes':>6}  résultat"
        )
    for m in page:
        when = f"{m.created_at:%Y-%m-%d %H:%M:%S}" if m.created_at else "-"
        line = (
            f"{m.id:>6}  {when:<19}  {cdarview.direction_label(m.direction):<6}  {m.partner or '?':<16}  "
            f"{m.message_id:<28}  {m.line_count:>6}  {cdarview.outcome_label(m.outcome)}"
        )
        click.echo(click.style(line, fg="red") if m.outcome in cdarview.ALERTS else line)
    if next_before:
        click.echo(
            f"suite : relais statuses list --before {next_before}" + (f" --limit {limit}" if limit != 50 else "")
        )
    counts = store.cdar_counts()
    if counts.get("not_sent") and outcome is None:
        click.echo(
            click.style(
                f"incidents : {counts['not_sent']} message(s) CDAR non envoyé(s) (refusés par le XSD ou le schematron "
                "officiels) - `relais statuses list --outcome not_sent`",
                fg="red",
            ),
            err=True,
        )


def _cpp_returns(store: Store, partner: str | None, limit: int, as_json: bool) -> None:
    """The status return flows in the CPP vocabulary (status_returns rows not carried by a CDAR message)."""
    if not partner:
        fail(
            "relais statuses list",
            "--vocabulary cpp va avec --partner PARTENAIRE : les flux retour CPP sont listés par partenaire "
            "(--vocabulary cpp needs --partner)",
        )
    cdar = {m.return_id for m in store.cdar_list(partner=partner, direction="out", limit=1_000_000) if m.return_id}
    rows = [r for r in store.status_returns_of(partner) if r["id"] not in cdar]
    rows = list(reversed(rows))[:limit]  # newest first
    if as_json:
        found: list[dict[str, Any]] = [
            {
                "id": r["id"],
                "partner": r["partner"],
                "vocabulary": "cpp",
                "entries": r["entries"],
                "first_history_id": r["first_history_id"],
                "last_history_id": r["last_history_id"],
                "sha256": r["archive_sha256"],
                "created_at": _iso(r["created_at"]),
            }
            for r in rows
        ]
        click.echo(json.dumps({"status_returns": found}, ensure_ascii=False))
        return
    if not rows:
        click.echo(f"aucun flux retour CPP envoyé à {partner} (no CPP status return flow)")
        return
    click.echo(f"{'flux retour':<32}  {'date (UTC)':<19}  {'statuts':>7}  historique")
    for r in rows:
        when = f"{r['created_at']:%Y-%m-%d %H:%M:%S}" if r["created_at"] else "-"
        click.echo(f"{r['id']:<32}  {when:<19}  {r['entries']:>7}  {r['first_history_id']}..{r['last_history_id']}")


@statuses.command(name="show")
@click.argument("message", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True)
@pass_settings
def statuses_show(settings: Settings, message: int, as_json: bool) -> None:
    """One CDAR message (ID: the number `relais statuses list` gives) with its lines: invoice, CDAR status and
    its label, reason code, outcome, and the rule of a refused line. Exit 1 when there is no such message."""
    rec = _store(settings).cdar_get(message)
    if rec is None:
        fail("relais statuses show", _unknown(message), 1)
    if as_json:
        click.echo(json.dumps(cdarview.as_json(rec), ensure_ascii=False))
        return
    when = f"{rec.created_at:%Y-%m-%d %H:%M:%S} UTC" if rec.created_at else "-"
    head = (
        f"message CDAR {rec.id} : {rec.message_id}  {cdarview.direction_label(rec.direction)} "
        f"({'à' if rec.direction == 'out' else 'de'} {rec.partner or '?'})  le {when}"
    )
    click.echo(head)
    outcome = f"  résultat : {cdarview.outcome_label(rec.outcome)} ({rec.outcome})"
    click.echo(click.style(outcome, fg="red") if rec.outcome in cdarview.ALERTS else outcome)
    click.echo(f"  émetteur : {rec.issuer}   SHA-256 {rec.sha256}")
    if rec.flow_id or rec.return_id:
        click.echo(f"  flux : {rec.flow_id or '-'}   flux retour : {rec.return_id or '-'}")
    if rec.detail:
        click.echo(f"  détail : {rec.detail}")
    click.echo(f"  {rec.line_count} ligne(s) :")
    for line in rec.lines:
        reason = f"  motif {line.reason_code}" if line.reason_code else ""
        rule = f"  règle {line.rule}" if line.rule else ""
        text = (
            f"  {line.position:>4}. facture {line.invoice_number} ({line.invoice_id or 'inconnue'})  "
            f"{cdarview.status_label(line.status)}{reason}  {cdarview.line_outcome_label(line.outcome)}{rule}"
        )
        click.echo(click.style(text, fg="yellow") if line.outcome == "refused" else text)
    click.echo(f"le message tel qu'archivé : relais statuses download {rec.id}")


@statuses.command(name="download")
@click.argument("message", metavar="ID", type=int)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="Write to this file (default: standard output).",
)
@pass_runtime
def statuses_download(rt: Runtime, message: int, output: str | None) -> None:
    """The CDAR message's XML exactly as archived (its SHA-256 verified first). Exit 1 when there is no such
    message or its archived bytes are missing or altered."""
    rec = rt.store.cdar_get(message)
    if rec is None:
        fail("relais statuses download", _unknown(message), 1)
    try:
        data = cdarview.archived_bytes(rt.archive, rec.sha256)
    except cdarview.NotArchived as e:
        fail("relais statuses download", f"message CDAR {message} : {e}", 1)
    if output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    with open(output, "wb") as f:
        f.write(data)
    click.echo(f"{output} : {len(data)} octets, SHA-256 {rec.sha256} vérifié", err=True)


def _iso(value: object) -> str | None:
    return value.isoformat() if isinstance(value, dt.datetime) else None


def _unknown(message: int) -> str:
    return (
        f"aucun message CDAR d'identifiant {message} (no CDAR message {message}) ; "
        "les identifiants sont listés par `relais statuses list`"
    )
