"""``relais demo``: a self-contained demonstration (relais/demo.py) in a folder of its own."""

from __future__ import annotations

from pathlib import Path

import click

from relais.cli.common import configuration_errors, load_settings, unusable


@click.command()
@click.option(
    "--home",
    "demo_home",
    type=click.Path(path_type=Path),
    help="Demo folder, wiped and recreated (default: the main --home if given, else ./var/demo; "
    "RELAIS_HOME is not used). A non-empty folder not made by the demo is refused.",
)
@click.option(
    "--invoices", default=40, show_default=True, type=click.IntRange(min=1), help="Invoices per generated batch."
)
@click.option("--lines", default=5, show_default=True, type=click.IntRange(min=1))
@click.pass_context
def demo(ctx: click.Context, demo_home: Path | None, invoices: int, lines: int) -> None:
    """Generate a directory and sample batches, run the pipeline, print a summary.

    Self-contained: the demo folder holds its own SQLite store (RELAIS_DATABASE_URL is not used).
    """
    from relais.demo import run_demo

    home = demo_home or (ctx.obj.get("home") if ctx.obj.get("home_given") else None) or Path("var") / "demo"
    settings = load_settings(ctx, home)
    try:
        run_demo(settings, invoices=invoices, lines=lines)
    except configuration_errors() as e:  # e.g. an XSD named by RELAIS_UBL_XSD_DIR / RELAIS_CII_XSD is missing
        unusable(e)
