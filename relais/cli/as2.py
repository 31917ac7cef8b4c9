"""``relais as2``: the AS2 endpoint, the AS2 partners and the messages exchanged.

Registered on the main group by relais/cli/root.py::

    from relais.cli.as2 import as2
    main.add_command(as2)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from relais.cli.common import (
    Choice,
    as2_rows,
    echo_bad,
    fail,
    load_partners,
    load_settings,
    pass_settings,
    print_as2_row,
    runtime,
    serve_options,
    serve_until_stopped,
)
from relais.settings import Settings

if TYPE_CHECKING:
    from connectors.partners import PartnerSet


def _fail(message: str, code: int = 2) -> NoReturn:
    fail("relais", message, code)


# ---- relais as2 ----------------------------------------------------------------------------


@click.group("as2")
def as2() -> None:
    """AS2 (RFC 4130): the endpoint partners send to, and the messages exchanged."""


@as2.command("serve")
@serve_options(port=4080, tls=True)
@click.option(
    "--max-bytes",
    type=click.IntRange(min=1),
    default=200_000_000,
    show_default=True,
    help="Largest message body from anyone (a partner's as2.max_bytes may lower it).",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds a client has to send its request headers (slow clients are cut).",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Longest wait, in seconds, for the next bytes of a request body.",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    certfile: Path | None,
    keyfile: Path | None,
    max_bytes: int,
    header_timeout: float,
    body_timeout: float,
) -> None:
    """Receive AS2 messages from the partners that have an [as2] section, until Ctrl-C.

    Each message is archived as received, checked (AS2 ids, signature, decryption), and its payload
    recorded as a flow of channel as2 for `relais run` or the Airflow DAG; the MDN is given in the
    HTTP response, or POSTed later (async, through the outbox: this server sends them at once and
    retries them). Async MDNs for what Relais sent come back here too. Partner files are read at
    start: restart after changing them.
    """
    import uvicorn

    from connectors.as2 import receiver, server
    from relais import health

    settings = load_settings(ctx)
    partners = _as2_partners(settings)
    rt = runtime(ctx, settings)
    limits = receiver.ServerLimits(max_bytes=max_bytes, header_timeout=header_timeout, body_timeout=body_timeout)
    app = receiver.make_app(
        rt.intake, partners, rt.outbound, limits, lambda path: health.answer(path, lambda: health.readiness(rt))
    )
    if not app.parties:
        _fail("aucun partenaire AS2 utilisable (no AS2 partner is usable) :\n  " + "\n  ".join(app.problems))
    click.echo(f"relais as2: listening on {'https' if certfile else 'http'}://{host}:{port}/as2")
    for row in as2_rows(partners):
        click.echo(
            f"  {row['partner']}: {row['as2_id']} -> {row['our_as2_id']}"
            + (f", flux retour vers {row['url']} (MDN {row['mdn']})" if row["url"] else "")
        )
        print_as2_row(row, "    ")
    echo_bad(partners)
    sys.stdout.flush()

    def stop() -> None:
        app.close()
        rt.close()

    def run() -> None:  # uvicorn handles SIGINT / SIGTERM (graceful stop), then raises the signal again
        uvicorn.Server(server.config(app, host, port, certfile=certfile, keyfile=keyfile)).run()

    serve_until_stopped(run, stop)


def _as2_partners(settings: Settings) -> PartnerSet:
    """The partners, the bad files reported in the log; exit 2 when none has an [as2] section."""
    partners = load_partners(settings)
    if partners.problems:
        from relais import log

        partners.report(
            log.get("relais.as2"),
            server="as2",
            detail="partner file not loaded: this partner's AS2 messages are refused until the "
            "file is fixed and the server restarted; the other partners are served",
        )
    if not any(p.as2 for p in partners.values()):
        echo_bad(partners, err=True)
        _fail(
            f"aucun partenaire n'a de section [as2] dans {settings.partners_dir} (voir connectors/partners.py) "
            "(no partner has an [as2] section)"
        )
    return partners


@as2.command("partners")
@click.option("--json", "as_json", is_flag=True)
@pass_settings
def as2_partners(settings: Settings, as_json: bool) -> None:
    """AS2 partners: ids, endpoint, certificates and their expiry (flagged within 30 days).

    Bad partner files are left out, and named on stderr (see `relais partners`)."""
    found = load_partners(settings)
    if found.problems:
        click.echo(
            f"relais : {len(found.problems)} fichier(s) de partenaire non chargé(s), laissé(s) de côté : "
            f"{', '.join(sorted(found.problems))} (voir `relais partners`)",
            err=True,
        )
    rows = as2_rows(found)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        click.echo("aucun partenaire AS2")
    for row in rows:
        click.echo(
            f"{row['partner']}: id AS2 {row['as2_id']}, le nôtre {row['our_as2_id']}"
            + (
                f", flux retour vers {row['url']} (MDN {row['mdn']}, signature {row['sign']}, "
                f"chiffrement {row['encrypt']}, compression {row['compress']})"
                if row["url"]
                else ""
            )
        )
        print_as2_row(row)


@as2.command("messages")
@click.option("--partner")
@click.option("--direction", type=Choice(["in", "out"]))
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_settings
def as2_messages(settings: Settings, partner: str | None, direction: str | None, limit: int, as_json: bool) -> None:
    """AS2 messages received and sent, newest first, with their MDN status."""
    from flows.store import Store

    store = Store.open(settings.database_url, schema=settings.database_schema)
    rows = store.as2_list(partner=partner, direction=direction, limit=limit)
    if as_json:
        from relais.report import as2_json

        click.echo(json.dumps([as2_json(m) for m in rows], ensure_ascii=False))
        return
    if not rows:
        click.echo("aucun message AS2")
    for m in rows:
        colour = "red" if "error" in m.mdn_status else ("green" if m.mdn_status in ("processed", "mdn-ok") else None)
        click.echo(
            f"{m.received_at:%Y-%m-%d %H:%M:%S} {m.direction:<3} {(m.partner or '?')[:14]:<14} "
            f"{m.flow_id or '-':<14} {click.style(f'{m.mdn_status:<40}', fg=colour)} {m.message_id}"
            + (f"\n{'':<20}{m.detail}" if m.detail and colour == "red" else "")
        )
