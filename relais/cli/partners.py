"""``relais partners``: every partner with its mode, channels, return address, last flow and AS2
certificates; ``relais partners production P`` (and ``qualification P``): ops switch a partner's mode.

A partner in qualification (``mode = "qualification"`` in its partner file, connectors/partners.py) has
its flows judged and answered as in production, but nothing delivered. Ops' switch is stored
(``partner_modes``, append-only) and audited (``audit_log``, principal ``cli:<user>``); it wins over the
file. Registered on the main group by relais/cli/root.py.
"""

from __future__ import annotations

import getpass
import json
import sys
from typing import TYPE_CHECKING, Any

import click

from relais.cli.common import (
    as2_rows,
    echo_bad,
    fail,
    load_partners,
    load_settings,
    print_as2_row,
    return_target,
    runtime,
)
from relais.settings import Settings

if TYPE_CHECKING:
    from connectors.partners import Partner, PartnerSet
    from flows.domain.model import Flow
    from flows.store.partners import PartnerMode


def _principal() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "cli"


@click.group("partners", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON row per partner.")
@click.pass_context
def partners(ctx: click.Context, as_json: bool) -> None:
    """Every partner: its mode (production or qualification, and who decided: its file or ops), its
    channels (folder, SFTP, hosted SFTP, AS2), where its return flows go, its last flow (id, date,
    status) and its AS2 certificates' expiry.

    A partner whose file is bad is listed too, marked BAD with every problem (with --json: a row with
    "bad": true and its "problems"); it is left out of intake and of the servers until the file is
    fixed. Exit 1 when there is a bad partner file, 0 otherwise.
    """
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings(ctx)
    found = load_partners(settings)
    as2 = {r["partner"]: r for r in as2_rows(found)}
    rt = runtime(ctx, settings)
    try:
        switches = rt.store.partner_modes()
        last = rt.store.last_flows(sorted(found))
    finally:
        rt.close()
    rows = [
        _partner_row(settings, p, switches.get(p.id), last.get(p.id), as2.get(p.id))
        for p in sorted(found.values(), key=lambda p: p.id)
    ]
    rows += [_bad_row(found, key) for key in sorted(found.problems)]
    code = 1 if found.problems else 0
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        sys.exit(code)
    if not rows:
        click.echo(f"aucun fichier de partenaire dans {settings.partners_dir}")
    for row in rows:
        if not row["bad"]:
            _print_partner(row)
    echo_bad(found, indent="")
    sys.exit(code)


def _partner_row(
    settings: Settings, p: Partner, switch: PartnerMode | None, flow: Flow | None, as2: dict[str, Any] | None
) -> dict[str, Any]:
    """A good partner's row (`relais partners --json`)."""
    channels = ["folder"]
    if p.sftp:
        channels.append(f"sftp {p.sftp.user}@{p.sftp.host}:{p.sftp.port}" if p.sftp.host else "sftp")
    if p.hosted:
        channels.append(f"hosted sftp ({len(p.hosted.authorized_keys)} key(s))")
    if p.as2:
        channels.append(f"as2 {p.as2.as2_id}")
    return {
        "partner": p.id,
        "name": p.name,
        "mode": switch.mode if switch is not None else p.mode,
        "mode_set_by": (
            {"by": switch.by, "at": switch.at.isoformat(), "reason": switch.reason} if switch is not None else "file"
        ),
        "language": p.language,
        "channels": channels,
        "return_target": return_target(settings, p),
        "last_flow": (
            {"id": flow.id, "received_at": flow.received_at.isoformat(), "status": str(flow.status)}
            if flow is not None
            else None
        ),
        "as2": as2,
        "bad": False,
        "problems": [],
    }


def _bad_row(found: PartnerSet, key: str) -> dict[str, Any]:
    """The row of a partner file that could not be loaded."""
    return {
        "partner": key,
        "name": None,
        "mode": None,
        "channels": [],
        "return_target": None,
        "last_flow": None,
        "as2": None,
        "bad": True,
        "problems": found.problems[key],
        "files": [str(f) for f in found.files.get(key, ())],
    }


def _print_partner(row: dict[str, Any]) -> None:
    click.echo(
        f"{row['partner']} ({row['name']}): {', '.join(row['channels'])} ; flux retour -> {row['return_target']}"
    )
    by = row["mode_set_by"]
    decided = "fichier du partenaire" if by == "file" else f"{by['by']}, {by['at'][:16].replace('T', ' ')}"
    mode = click.style("QUALIFICATION", fg="yellow") if row["mode"] == "qualification" else "production"
    flow = row["last_flow"]
    seen = f"{flow['id']} du {flow['received_at'][:16].replace('T', ' ')} ({flow['status']})" if flow else "aucun"
    click.echo(f"  mode : {mode} ({decided}) · dernier flux : {seen}")
    if row["as2"]:
        print_as2_row(row["as2"])


def _switch(ctx: click.Context, partner: str, mode: str, reason: str | None) -> None:
    rt = runtime(ctx)
    try:
        refused = rt.switch_partner_mode(partner, mode, _principal(), reason)
    finally:
        rt.close()
    if refused is not None:
        fail("relais", refused, code=0 if "déjà" in refused else 2)
    click.echo(f"{partner} : passé en {mode} (audité) ; le prochain flux reçu suit ce mode")


@partners.command("production")
@click.argument("partner")
@click.option("--reason", help="Pourquoi (recette validée, ticket…) : gardé dans l'historique et l'audit.")
@click.pass_context
def production(ctx: click.Context, partner: str, reason: str | None) -> None:
    """Put PARTNER in production after its qualification: its next flows are delivered to their
    recipients and their invoices deposited. Stored (over the partner file's ``mode``) and audited."""
    _switch(ctx, partner, "production", reason)


@partners.command("qualification")
@click.argument("partner")
@click.option("--reason", help="Pourquoi : gardé dans l'historique et l'audit.")
@click.pass_context
def qualification(ctx: click.Context, partner: str, reason: str | None) -> None:
    """Put PARTNER (back) in qualification: its next flows are judged and answered, nothing delivered."""
    _switch(ctx, partner, "qualification", reason)
