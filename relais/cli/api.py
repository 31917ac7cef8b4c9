"""``relais api``: the HTTP API (relais/api): its server and its bearer tokens.

Registered on the main group by relais/cli/root.py (``main.add_command(api)``).
"""

from __future__ import annotations

import json
import re
import sys
from typing import TYPE_CHECKING, NoReturn

import click

from relais.cli.common import fail, pass_runtime, runtime, serve_options

if TYPE_CHECKING:
    from relais.compose import Runtime

_SIRET = re.compile(r"\d{14}")
_PARTNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _fail(message: str, code: int = 2) -> NoReturn:
    fail("relais api", message, code)


@click.group("api")
def api() -> None:
    """The HTTP API: recipients read invoices and set statuses, senders upload flows ("mode API")."""


@api.command("serve")
@serve_options(
    port=8091,
    port_help="Port (0: any free port). 8091: beside the web application (8090), clear of Airflow's UI (8080).",
)
@click.option(
    "--process",
    is_flag=True,
    envvar="RELAIS_API_PROCESS",
    help="Process each uploaded flow in this server right after its upload (else it waits, IN_RECU, for "
    "`relais run` or the DAG); safe beside them: whoever claims a flow first processes it.",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, process: bool) -> None:
    """Serve the API (OpenAPI at /openapi.json) until Ctrl-C."""
    import dataclasses

    from relais.api import serve as api_serve
    from relais.api.config import ApiConfig

    config = dataclasses.replace(ApiConfig.from_env(), process=process)
    rt = runtime(ctx)
    from validators.document import build_rules_in_background

    build_rules_in_background(rt.pool.config.judge)  # the native rules built now, not by the first flow

    def ready(server: api_serve.Server) -> None:
        click.echo(f"relais api: listening on http://{host}:{server.port}", err=True)
        sys.stderr.flush()

    try:
        api_serve.serve(rt, host, port, on_ready=ready, config=config)
    finally:
        rt.close()


@api.group("token")
def token() -> None:
    """Bearer tokens: create (shown once), list, revoke."""


@token.command("create")
@click.option(
    "--siret",
    help="A recipient structure's SIRET, or a registered actor's (`relais actors`): the token reads the invoices "
    "whose turn it is and sets their statuses.",
)
@click.option("--service", "service_code", help="With --siret: only the invoices of this service code.")
@click.option("--partner", help='A sender (partner id): the token uploads its flows (the "mode API").')
@click.pass_context
def token_create(ctx: click.Context, siret: str | None, service_code: str | None, partner: str | None) -> None:
    """Create a token and print it once on stdout: only its hash is kept."""
    from relais.api import auth

    if (siret is None) == (partner is None):
        _fail("indiquez soit --siret, soit --partner (give exactly one of --siret and --partner)")
    if service_code is not None and siret is None:
        _fail("--service va avec --siret (--service goes with --siret)")
    if siret is not None and not _SIRET.fullmatch(siret):
        _fail(f"pas un SIRET (14 chiffres) / not a SIRET (14 digits): {siret!r}")
    if partner is not None and not _PARTNER.fullmatch(partner):
        _fail(f"identifiant de partenaire invalide / not a partner id: {partner!r}")
    if service_code is not None and not (0 < len(service_code) <= 100):
        _fail("un code service a de 1 à 100 caractères (a service code has 1 to 100 characters)")
    if siret is not None and not siret_checks(siret):
        _fail(
            f"SIRET refusé : la clé de contrôle de {siret} est fausse ; rien n'est créé (bad SIRET check digit; nothing created)"
        )
    kind = auth.RECIPIENT if siret else auth.PARTNER
    secret, row = auth.new_token(kind, siret=siret, service_code=service_code, partner=partner)
    rt = runtime(ctx)
    try:
        if siret is not None:
            problem = recipient_problem(rt, siret, service_code)
        else:
            assert partner is not None
            problem = partner_problem(rt, partner)
        if problem:
            _fail(f"{problem} ; rien n'est créé (nothing created)")
        rt.store.create_token(row)
    finally:
        rt.close()
    click.echo(
        f"relais api : jeton {row.id} créé pour {row.principal} ; il n'est affiché qu'une fois, gardez-le maintenant",
        err=True,
    )
    click.echo(secret)


def siret_checks(siret: str) -> bool:
    """Whether a SIRET's check digit is right (python-stdnum, La Poste's establishments included)."""
    from stdnum.fr import siret as stdnum_siret

    return bool(stdnum_siret.is_valid(siret))


def recipient_problem(rt: Runtime, siret: str, service_code: str | None) -> str | None:
    """Why a recipient token cannot be made for this structure (and service), French first; None: it can.
    The structure must be in the current directory (its latest import), the service one of its own; or the
    SIRET a registered actor's of the billing circuits (`relais actors`: titulaire, mandataire, MOE, MOA),
    without a service."""
    structure = rt.store.structure_flags(siret)
    if structure is None:
        if rt.store.find_actor(siret):
            if service_code is not None:
                return (
                    f"service refusé : {siret} est un acteur enregistré (`relais actors`), sans services "
                    "(a registered actor has no services)"
                )
            return None
        return (
            f"SIRET refusé : {siret} n'est ni dans l'annuaire actuel ni un acteur enregistré (`relais actors`) "
            "(not in the current directory, not a registered actor)"
        )
    if service_code is not None and service_code not in structure.services:
        known = ", ".join(sorted(structure.services)) or "aucun / none"
        return (
            f"service refusé : {service_code!r} n'est pas un service de {siret} dans l'annuaire actuel "
            f"(unknown service of this structure; its services: {known})"
        )
    return None


def partner_problem(rt: Runtime, partner: str) -> str | None:
    """Why `partner` is not a partner Relais knows, French first; None when it is one: a usable partner
    file (`connectors/partners.py`, ``$RELAIS_HOME/partners/``), or a folder drop zone an operator made
    (``dropzones/<partner>/in``, the partners of the folder channel, e.g. the demo's). A token or a web
    user for anything else would make flows whose return flows nobody reads."""
    known = rt.partners
    if partner in known:
        return None
    problems = getattr(known, "problems", {}).get(partner)
    if problems:
        return (
            f"partenaire refusé : le fichier du partenaire {partner} est inutilisable "
            f"(partner file rejected: {'; '.join(problems)})"
        )
    if rt.settings.inbox(partner).is_dir():
        return None
    return (
        f"partenaire inconnu : {partner} n'a pas de fichier partenaire dans {rt.settings.partners_dir} "
        f"ni de dépôt {rt.settings.inbox(partner)} (unknown partner: no partner file, no drop zone)"
    )


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_runtime
def token_list(rt: Runtime, as_json: bool) -> None:
    """List tokens (never their secrets)."""
    tokens = rt.store.list_tokens()
    rows = [
        {
            "id": t.id,
            "kind": t.kind,
            "principal": t.principal,
            "siret": t.siret,
            "service": t.service_code,
            "partner": t.partner,
            "created_at": t.created_at.isoformat(),
            "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
        }
        for t in tokens
    ]
    if as_json:
        click.echo(json.dumps({"tokens": rows}, indent=1))
        return
    if not rows:
        click.echo("aucun jeton")
        return
    for r in rows:
        state = f"révoqué {r['revoked_at']}" if r["revoked_at"] else "actif"
        click.echo(f"{r['id']}  {r['kind']:<9}  {r['principal']:<40}  créé {r['created_at']}  {state}")


@token.command("revoke")
@click.argument("token_id")
@pass_runtime
def token_revoke(rt: Runtime, token_id: str) -> None:
    """Revoke a token: it is refused (401) from now on. Exit 1 when there is no such active token."""
    if not rt.store.revoke_token(token_id):
        _fail(f"aucun jeton actif {token_id} (no active token {token_id})", 1)
    click.echo(f"jeton {token_id} révoqué")
