"""``relais run``: take complete files from the drop zones and process them (the loop is relais/run_loop.py)."""

from __future__ import annotations

import sys

import click

from relais.cli.common import fail, runtime


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
    SIGTERM stops gracefully (relais/shutdown.py): nothing new is taken, the flow in
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
    sys.exit(run_loop.run(rt, watch=watch, interval=interval, quiet=quiet))
