"""The ``relais`` command line: the same pipeline as the Airflow DAGs, on one machine.

This module holds the main group (``--version``, ``--home``, ``--log-level``) and registers the command
groups, one module each in relais/cli/ (``run`` with ``demo``, ``flows`` with ``outbox``, ``invoices`` with
``billing-files``, ``db``, ``as2``, ``sftp``, ``statuses``, ...).
"""

from __future__ import annotations

from importlib.metadata import version as dist_version
from pathlib import Path

import click

from relais import log
from relais.cli.api import api
from relais.cli.archive import archive, db
from relais.cli.as2 import as2
from relais.cli.common import Choice
from relais.cli.files import generate, validate
from relais.cli.flows import flows, outbox
from relais.cli.invoices import billing_files, invoices
from relais.cli.partners import partners
from relais.cli.reference import actors, directory, rules
from relais.cli.run import demo, run
from relais.cli.sftp import sftp
from relais.cli.statuses import statuses
from relais.cli.waiting import waiting
from relais.cli.web import users, web
from relais.settings import Settings


def _version() -> str:
    try:
        return dist_version("relais")
    except Exception:  # pragma: no cover - not installed
        return "0+unknown"


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"relais {_version()}")
    try:
        from validators import schematron

        home = Settings.from_env()
        for key, version in schematron.discover(home.rules_dir).versions().items():
            click.echo(f"  {key}: {version}")
    except Exception as e:  # --version must still answer
        click.echo(f"  rule sets: unavailable ({e})")
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and the rule-set versions, then exit.",
)
@click.option(
    "--home",
    type=click.Path(path_type=Path),
    envvar="RELAIS_HOME",
    help="Data folder (store, archive, drop zones). Default ./var/relais.",
)
@click.option(
    "--log-level",
    default="WARNING",
    envvar="RELAIS_LOG_LEVEL",
    show_default=True,
    type=Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], case_sensitive=False),
)
@click.pass_context
def main(ctx: click.Context, home: Path | None, log_level: str) -> None:
    """Relais: e-invoice flow hub (drop zones, validation, routing, return flows)."""
    log.configure(log_level)
    from_command_line = ctx.get_parameter_source("home") is click.core.ParameterSource.COMMANDLINE
    ctx.obj = {"home": home, "home_given": from_command_line}


# ---- the command groups, one module each ---------------------------------------------------------

main.add_command(run)
main.add_command(db)
main.add_command(demo)
main.add_command(flows)
main.add_command(outbox)
main.add_command(validate)
main.add_command(generate)
main.add_command(sftp)
main.add_command(as2)
main.add_command(partners)
main.add_command(directory)
main.add_command(rules)
main.add_command(api)
main.add_command(actors)
main.add_command(invoices)
main.add_command(billing_files)
main.add_command(archive)
main.add_command(web)
main.add_command(users)
main.add_command(waiting)
main.add_command(statuses)


if __name__ == "__main__":  # pragma: no cover
    main()
