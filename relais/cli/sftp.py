"""``relais sftp``: the hosted SFTP drop zones (connectors/sftp/hosted/server.py).

Registered on the main group by relais/cli/root.py (``main.add_command(sftp)``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import NoReturn

import click

from relais.cli.common import fail, pass_settings, serve_options, serve_until_stopped
from relais.settings import Settings


def _fail(message: str, code: int = 2) -> NoReturn:
    fail("relais sftp", message, code)


@click.group("sftp")
def sftp() -> None:
    """Hosted SFTP drop zones: partners upload into in/ and download return flows from out/."""


_HOST_KEY_HELP = "Server's private host key, created (ed25519) when missing. Default $RELAIS_HOME/sftp/host_key."


@sftp.command("fingerprint")
@click.option("--host-key", "host_key_path", type=click.Path(dir_okay=False, path_type=Path), help=_HOST_KEY_HELP)
@pass_settings
def fingerprint(settings: Settings, host_key_path: Path | None) -> None:
    """Print the host key's fingerprint as `ssh-keygen -lf` does (the key is created when missing, as by serve).

    Give it to each partner with its login (its partner id): its SFTP client shows this
    SHA256:... fingerprint at the first connection, to be compared before accepting the key.
    """
    from connectors.sftp.hosted.server import fingerprint_line, host_key

    key_path = host_key_path or settings.home / "sftp" / "host_key"
    try:
        key = host_key(key_path)
    except (OSError, ValueError) as e:  # unreadable, or not a private key (asyncssh.KeyImportError)
        _fail(f"clé d'hôte illisible / cannot read the host key {key_path}: {e}")
    click.echo(fingerprint_line(key))


@sftp.command("serve")
@serve_options(port=2222)
@click.option(
    "--host-key",
    "host_key_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help=_HOST_KEY_HELP,
)
@click.option(
    "--health-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Also serve /healthz and /readyz over HTTP on this port (same host).",
)
@pass_settings
def serve(settings: Settings, host: str, port: int, host_key_path: Path | None, health_port: int | None) -> None:
    """Serve the drop zones of the partners that have a [hosted] section, until Ctrl-C.

    Each partner logs in as its partner id with one of its authorized_keys (no passwords)
    and sees only its own drop zone: upload into /in (taken by `relais run` or the DAG
    like any drop zone), download return flows from /out and delete them to acknowledge.
    Partner files are read at start: restart the server after changing them.
    """
    from connectors import partners as partners_config
    from connectors.sftp.hosted.server import ServerThread, accounts_for_dropzones
    from relais import log

    partners = partners_config.load(settings.partners_dir)  # a bad file leaves its partner out, not the others
    if partners.problems:
        partners.report(
            log.get("relais.sftp"),
            server="sftp",
            detail="partner file not loaded: this partner cannot log in until the file is fixed "
            "and the server restarted; the other partners are served",
        )
    accounts = accounts_for_dropzones(settings, partners)
    if not accounts:
        bad = "".join(f"\n  BAD {key}: " + "; ".join(found) for key, found in sorted(partners.problems.items()))
        _fail(
            f"aucun partenaire n'a de section [hosted] dans {settings.partners_dir} (voir connectors/partners.py) "
            f"(no partner has a [hosted] section){bad}"
        )
    key_path = host_key_path or settings.home / "sftp" / "host_key"
    try:
        server = ServerThread(accounts, key_path, host=host, port=port).start()
    except ValueError as e:  # a bad authorized key
        _fail(str(e))
    except OSError as e:  # port in use, address not available, unreadable key...
        _fail(f"impossible de servir sur {host}:{port} : {e} (cannot serve on {host}:{port})")
    click.echo(f"relais sftp: listening on {host}:{server.port}")
    if health_port is not None:
        import os

        from relais.health import HealthServer

        def ready() -> tuple[bool, dict[str, str]]:
            zones = settings.dropzones_dir
            ok = zones.is_dir() and os.access(zones, os.W_OK)
            return ok, {"dropzones": "ok" if ok else f"{zones} is not a writable folder"}

        health = HealthServer(ready, host=host, port=health_port).start()
        click.echo(f"health: http://{host}:{health.port}/healthz, /readyz")
    click.echo(f"host key: {server.host_key_line}")
    click.echo(f"fingerprint: {server.fingerprint}")
    for user, account in sorted(accounts.items()):
        click.echo(f"  {user}: {account.root} ({len(account.authorized_keys)} key(s))")
    for key, problems in sorted(partners.problems.items()):
        click.echo(f"  BAD {key} : fichier de partenaire non chargé, non servi")
        for problem in problems:
            click.echo(f"    ! {problem}")
    sys.stdout.flush()

    def wait() -> None:
        while True:
            time.sleep(3600)

    serve_until_stopped(wait, server.stop)  # live sessions are dropped; unfinished uploads are discarded
