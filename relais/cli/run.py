"""``relais run``: take complete files from the drop zones and process them (the loop is relais/run_loop.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from relais.cli.common import configuration_errors, fail, load_settings, runtime, unusable


@click.command()
@click.option("--watch", is_flag=True, help="Keep scanning the drop zones.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between scans with --watch.")
@click.option("--quiet", "-q", is_flag=True)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="Serve Prometheus metrics (the store's and this process's validation pool) on 127.0.0.1:PORT/metrics.",
)
@click.pass_context
def run(ctx: click.Context, watch: bool, interval: float, quiet: bool, metrics_port: int | None) -> None:
    """Take complete files from the drop zones and process them once (or keep going).

    Each flow's return flow leaves as soon as the flow is closed. Exit 1 when a flow
    became an incident in this pass (it is retried automatically, then parked).
    SIGTERM stops gracefully (relais/run_loop.py): nothing new is taken, the flow in
    progress finishes within RELAIS_STOP_GRACE_SECONDS or is released for the next
    worker (exit 0 when nothing was interrupted, else 143).
    """
    from relais import run_loop
    from relais.runner import directory_missing

    rt = runtime(ctx)
    if refused := directory_missing(rt):
        rt.close()
        fail("relais run", refused)
    if metrics_port is not None:
        run_loop.serve_metrics(rt, metrics_port)
    if watch:  # a long-running runner: the native rules built now, in the background, not by the first flow
        from validators.document import build_rules_in_background

        build_rules_in_background(rt.pool.config.judge)
    sys.exit(run_loop.run(rt, watch=watch, interval=interval, quiet=quiet))


# ---- `relais demo` -----------------------------------------------------------------------------


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
