"""``relais web`` (the "Suivi des flux" web application, relais/web) and ``relais users`` (its local
users). Registered on the main group by relais/cli/root.py."""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING, NoReturn

import click

from relais.cli.common import Choice, fail, pass_runtime, runtime, serve_options

if TYPE_CHECKING:
    from relais.api.serve import Server
    from relais.compose import Runtime

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")


def _fail(message: str, code: int = 2) -> NoReturn:
    fail("relais users", message, code)


@click.group("web")
def web() -> None:
    """The "Suivi des flux" web application."""


@web.command("serve")
@serve_options(port=8090, port_help="Port (0: any free port).")
@pass_runtime
def serve(rt: Runtime, host: str, port: int) -> None:
    """Serve the web application (log in at /login) until Ctrl-C or SIGTERM.

    With RELAIS_WEB_METRICS_ADDRESS=host:port, also serve /metrics there for Prometheus (no session)."""
    from relais.web import serve as web_serve

    def ready(server: Server) -> None:
        click.echo(f"relais web: listening on http://{host}:{server.port}", err=True)
        sys.stderr.flush()

    from relais.web import metrics_server

    try:
        scrape = metrics_server.address(os.environ.get("RELAIS_WEB_METRICS_ADDRESS"))
    except ValueError as e:
        rt.close()
        fail("relais web", str(e), 2)
    from validators.document import build_rules_in_background

    build_rules_in_background(rt.pool.config.judge)  # the native rules built now, not by the first flow
    extra = None
    try:
        if scrape is not None:  # /metrics for Prometheus on an address of its own (relais/web/metrics_server.py)
            extra = metrics_server.MetricsThread(rt, *scrape).start()
            click.echo(f"relais web: metrics on {extra.url}/metrics", err=True)
        web_serve.server(rt, host, port, on_ready=ready).run()
    finally:
        if extra is not None:
            extra.stop()
        rt.close()


@click.group("users")
def users() -> None:
    """The web application's local users: add, list, disable, enable, password."""


def _password(prompt: bool) -> str:
    if sys.stdin.isatty() and prompt:
        return click.prompt("password", hide_input=True, confirmation_prompt=True)
    value = sys.stdin.readline().rstrip("\n")
    if not value:
        _fail("aucun mot de passe sur l'entrée standard (no password on stdin)")
    return value


@users.command("add")
@click.argument("name")
@click.option("--role", type=Choice(["ops", "partner", "viewer"]), required=True)
@click.option("--partner", help="With --role partner: the partner whose flows the user sees (and only those).")
@click.pass_context
def users_add(ctx: click.Context, name: str, role: str, partner: str | None) -> None:
    """Add a user; the password is read from the terminal (twice) or from stdin (one line)."""
    from relais.web.auth.passwords import hash_password

    if not _NAME.fullmatch(name):
        _fail(f"nom d'utilisateur invalide {name!r} : lettres, chiffres, . _ @ - (bad user name)")
    rt = runtime(ctx)
    try:
        if rt.store.web_user(name) is not None:
            _fail(f"l'utilisateur {name} existe déjà (user {name} exists)")
        if role == "partner" and partner:
            from relais.cli.api import partner_problem

            problem = partner_problem(rt, partner)
            if problem:
                _fail(f"{problem} ; utilisateur {name} non ajouté (user not added)")
        password = _password(True)
        from relais.web.auth.security import MIN_PASSWORD

        if len(password) < MIN_PASSWORD:
            _fail(
                f"le mot de passe doit avoir au moins {MIN_PASSWORD} caractères (the password must have at least {MIN_PASSWORD} characters)"
            )
        try:
            rt.store.add_web_user(name, role, partner, hash_password(password))
        except ValueError as e:
            _fail(str(e))
        rt.store.audit("cli", "web.user.add", target=name, outcome="ok", http_status=None, detail=f"role {role}")
        click.echo(f"utilisateur {name} ajouté ({role}{', partenaire ' + partner if partner else ''})")
    finally:
        rt.close()


@users.command("list")
@pass_runtime
def users_list(rt: Runtime) -> None:
    for u in rt.store.web_users():
        state = "désactivé" if u.disabled else "actif"
        click.echo(f"{u.name:<24} {u.role:<8} {u.partner or '-':<16} {state}")


def _set(ctx: click.Context, name: str, disabled: bool) -> None:
    rt = runtime(ctx)
    try:
        if not rt.store.set_web_user(name, disabled=disabled):
            _fail(f"aucun utilisateur {name} (no user {name})")
        action = "web.user.disable" if disabled else "web.user.enable"
        rt.store.audit("cli", action, target=name, outcome="ok", http_status=None)
        click.echo(f"utilisateur {name} {'désactivé' if disabled else 'réactivé'}")
    finally:
        rt.close()


@users.command("disable")
@click.argument("name")
@click.pass_context
def users_disable(ctx: click.Context, name: str) -> None:
    """Disable a user: their open sessions end at once."""
    _set(ctx, name, True)


@users.command("enable")
@click.argument("name")
@click.pass_context
def users_enable(ctx: click.Context, name: str) -> None:
    _set(ctx, name, False)


@users.command("password")
@click.argument("name")
@click.pass_context
def users_password(ctx: click.Context, name: str) -> None:
    """Set a user's password, read from the terminal (twice) or from stdin (one line); every open
    session of the user ends (the user logs in again with the new password)."""
    from relais.web.auth.passwords import hash_password
    from relais.web.auth.security import MIN_PASSWORD

    rt = runtime(ctx)
    try:
        if rt.store.web_user(name) is None:
            _fail(f"aucun utilisateur {name} (no user {name})")
        password = _password(True)
        if len(password) < MIN_PASSWORD:
            _fail(
                f"le mot de passe doit avoir au moins {MIN_PASSWORD} caractères (the password must have at least {MIN_PASSWORD} characters)"
            )
        rt.store.set_web_user(name, password_hash=hash_password(password))
        rt.store.audit(
            "cli", "web.user.password", target=name, outcome="ok", http_status=None, detail="every session ended"
        )
        click.echo(f"utilisateur {name} : mot de passe changé, sessions fermées")
    finally:
        rt.close()
