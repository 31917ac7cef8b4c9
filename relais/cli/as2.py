"""``relais as2`` (the AS2 endpoint, AS2 messages), and the partner listing helpers of ``relais partners``
(relais/cli/partners.py).

Registered on the main group by relais/cli/root.py::

    from relais.cli.as2 import as2
    main.add_command(as2)
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import sys
from pathlib import Path
from typing import NoReturn

import click

from relais.cli import common as cli_common
from relais.settings import Settings


def _settings(ctx: click.Context) -> Settings:
    return cli_common.settings(ctx, "relais")


def _fail(message: str, code: int = 2) -> NoReturn:
    cli_common.fail("relais", message, code)


def _load_partners(settings: Settings):  # noqa: ANN202
    """The partners (connectors.partners.PartnerSet): the good ones, and apart the bad files' problems
    (a bad file does not stop the others; each command says how it shows them)."""
    from connectors import partners as partners_config

    return partners_config.load(settings.partners_dir)


def _echo_bad(found, indent: str = "  ", err: bool = False) -> None:  # noqa: ANN001
    """Each bad partner (or unreadable file) with every problem, marked BAD."""
    for key in sorted(found.problems):
        line = (
            f"{indent}BAD {key} : fichier de partenaire non chargé : ni relevé, ni servi, ni lu jusqu'à sa correction"
        )
        click.echo(click.style(line, fg="red"), err=err)
        for problem in found.problems[key]:
            click.echo(click.style(f"{indent}  ! {problem}", fg="yellow"), err=err)


def _cert_line(cert, now: dt.datetime) -> tuple[str, bool]:  # noqa: ANN001
    """'until 2027-01-31 (432 days)' and whether it needs attention (expired or within 30 days)."""
    from connectors.as2.station import EXPIRY_WARNING_DAYS

    end = cert.not_valid_after_utc
    days = (end - now).days
    if end <= now:
        return f"EXPIRED on {end:%Y-%m-%d}", True
    if cert.not_valid_before_utc > now:
        return f"not valid before {cert.not_valid_before_utc:%Y-%m-%d}", True
    return f"until {end:%Y-%m-%d} ({days} days)", days < EXPIRY_WARNING_DAYS


def _as2_rows(partners: dict) -> list[dict]:  # noqa: ANN001
    """One row per AS2 partner: ids, endpoint, certificates with their expiry and problems."""
    from connectors.as2 import certs
    from connectors.as2.station import certificate_warnings, load_party
    from flows.domain.errors import ConfigError

    now = dt.datetime.now(dt.UTC)
    rows = []
    for p in sorted(partners.values(), key=lambda p: p.id):
        if p.as2 is None:
            continue
        cfg = p.as2
        row: dict = {
            "partner": p.id,
            "as2_id": cfg.as2_id,
            "our_as2_id": cfg.our_as2_id,
            "url": cfg.url,
            "mdn": cfg.mdn,
            "sign": cfg.sign,
            "encrypt": cfg.encrypt,
            "compress": cfg.compress,
            "certificates": {},
            "problems": [],
        }
        for whose, path in (("partner", cfg.partner_cert), ("ours", cfg.our_cert)):
            try:
                cert = certs.load_cert(path)
            except ConfigError as e:
                row["problems"].append(str(e))
                continue
            text, attention = _cert_line(cert, now)
            row["certificates"][whose] = {
                "path": str(path),
                "subject": cert.subject.rfc4514_string(),
                "not_after": cert.not_valid_after_utc.isoformat(),
                "validity": text,
                "attention": attention,
            }
        try:
            row["problems"].extend(certificate_warnings(load_party(p)))
        except ConfigError as e:
            row["problems"].append(str(e))
        rows.append(row)
    return rows


def _print_as2_row(row: dict, indent: str = "  ") -> None:
    for whose, c in row["certificates"].items():
        line = f"{indent}certificat {whose} {c['subject']} : {c['validity']}"
        click.echo(click.style(line, fg="red") if c["attention"] else line)
    for problem in row["problems"]:
        click.echo(click.style(f"{indent}! {problem}", fg="yellow"))


# ---- relais as2 ----------------------------------------------------------------------------


@click.group("as2")
def as2() -> None:
    """AS2 (RFC 4130): the endpoint partners send to, and the messages exchanged."""


@as2.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: all).")
@click.option(
    "--port",
    default=4080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--certfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TLS certificate chain (PEM): serve HTTPS.",
)
@click.option(
    "--keyfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TLS private key (PEM), with --certfile.",
)
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

    if keyfile and not certfile:
        raise click.BadParameter("--keyfile va avec --certfile (--keyfile needs --certfile)", param_hint="--keyfile")
    settings = _settings(ctx)
    partners = _load_partners(settings)
    if partners.problems:
        from relais import log

        partners.report(
            log.get("relais.as2"),
            server="as2",
            detail="partner file not loaded: this partner's AS2 messages are refused until the "
            "file is fixed and the server restarted; the other partners are served",
        )
    if not any(p.as2 for p in partners.values()):
        _echo_bad(partners, err=True)
        _fail(
            f"aucun partenaire n'a de section [as2] dans {settings.partners_dir} (voir connectors/partners.py) "
            "(no partner has an [as2] section)"
        )
    from relais.compose import Runtime

    try:
        rt = Runtime.open(settings)
    except FileNotFoundError as e:
        _fail(str(e))
    limits = receiver.ServerLimits(max_bytes=max_bytes, header_timeout=header_timeout, body_timeout=body_timeout)
    from relais import health

    app = receiver.make_app(
        rt.intake, partners, rt.outbound, limits, lambda path: health.answer(path, lambda: health.readiness(rt))
    )
    if not app.parties:
        _fail("aucun partenaire AS2 utilisable (no AS2 partner is usable) :\n  " + "\n  ".join(app.problems))
    scheme = "https" if certfile else "http"
    click.echo(f"relais as2: listening on {scheme}://{host}:{port}/as2")
    for row in _as2_rows(partners):
        click.echo(
            f"  {row['partner']}: {row['as2_id']} -> {row['our_as2_id']}"
            + (f", flux retour vers {row['url']} (MDN {row['mdn']})" if row["url"] else "")
        )
        _print_as2_row(row, "    ")
    _echo_bad(partners)
    sys.stdout.flush()

    def terminate(_signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, terminate)  # systemd / docker stop: same clean stop as Ctrl-C
    code = 0
    try:  # uvicorn handles SIGINT / SIGTERM (graceful stop), then raises the signal again
        uvicorn.Server(server.config(app, host, port, certfile=certfile, keyfile=keyfile)).run()
    except KeyboardInterrupt:
        code = 130
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0
    finally:
        app.close()
        rt.close()
        click.echo("arrêté (stopped)", err=True)
    sys.exit(code)


@as2.command("partners")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def as2_partners(ctx: click.Context, as_json: bool) -> None:
    """AS2 partners: ids, endpoint, certificates and their expiry (flagged within 30 days).

    Bad partner files are left out, and named on stderr (see `relais partners`)."""
    found = _load_partners(_settings(ctx))
    if found.problems:
        click.echo(
            f"relais : {len(found.problems)} fichier(s) de partenaire non chargé(s), laissé(s) de côté : "
            f"{', '.join(sorted(found.problems))} (voir `relais partners`)",
            err=True,
        )
    rows = _as2_rows(found)
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
        _print_as2_row(row)


@as2.command("messages")
@click.option("--partner")
@click.option("--direction", type=cli_common.Choice(["in", "out"]))
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def as2_messages(ctx: click.Context, partner: str | None, direction: str | None, limit: int, as_json: bool) -> None:
    """AS2 messages received and sent, newest first, with their MDN status."""
    from flows.store import Store

    settings = _settings(ctx)
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


# ---- relais partners -----------------------------------------------------------------------


def _return_target(settings: Settings, partner) -> str:  # noqa: ANN001
    """Where this partner's return flows go: asked of the registered channels (relais/compose.py)."""
    from relais.compose import channels

    address = channels(settings, lambda: {partner.id: partner}).return_address(partner.id, "_")
    folder = address.destination.rpartition("/")[0]
    if address.channel == "as2":
        return f"AS2 {partner.as2.url}"
    if address.channel == "sftp":
        return f"SFTP {folder or '.'}"
    return folder
