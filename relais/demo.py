"""`relais demo`: a self-contained tour of the pipeline on the embedded defaults."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections import Counter
from pathlib import Path

import click

from flows import directory as dirmod
from relais import generate as gen
from relais.compose import Runtime
from relais.report import print_flows
from relais.runner import run_once
from relais.settings import Settings

MARKER = ".relais-demo"


def _fresh(home: Path) -> None:
    """Make `home` an empty demo folder: wipe it if an earlier demo made it, refuse anything else."""
    if home.is_symlink() or (home.exists() and not home.is_dir()):
        raise click.ClickException(f"{home} exists and is not a folder; pass another --home")
    if home.exists():
        if not (home / MARKER).is_file() and any(home.iterdir()):
            raise click.ClickException(f"{home} exists and is not a demo folder; pass another --home")
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (home / MARKER).write_text("created by relais demo\n")


def run_demo(settings: Settings, invoices: int = 40, lines: int = 5) -> None:
    # Self-contained: the store lives in the demo folder, so wiping the folder wipes the
    # demo's flows too (a shared RELAIS_DATABASE_URL would keep flows whose archive is gone,
    # and refuse the second import of directory version "demo-1").
    settings = dataclasses.replace(
        settings, stable_seconds=0.0, database_schema=None, database_url=f"sqlite:///{settings.home / 'relais.db'}"
    )
    _fresh(settings.home)
    rt = Runtime.open(settings)
    recipients = gen.sample_directory()
    dir_file = settings.home / "annuaire.json"
    dir_file.write_text(json.dumps(gen.directory_document(recipients, "demo-1"), ensure_ascii=False, indent=1))
    version, n = dirmod.import_file(rt.store, dir_file)
    click.echo(f"directory {version}: {n} public structures imported from {dir_file}")

    drops = {
        "operateur-ubl": ("ubl", "zip", 1),
        "operateur-cii": ("cii", "tar.gz", 2),
        "operateur-fx": ("facturx", "zip", 3),
    }
    for partner, (fmt, batch, seed) in drops.items():
        inbox = settings.inbox(partner)
        inbox.mkdir(parents=True, exist_ok=True)
        settings.outbox_dir(partner).mkdir(parents=True, exist_ok=True)
        count = max(3, invoices // 4) if fmt == "facturx" else invoices
        gen.write_batch(
            inbox,
            fmt,
            count,
            lines,
            batch=batch,
            recipients=recipients,  # type: ignore[arg-type]
            invalid_ratio=0.1,
            misrouted_ratio=0.1,
            seed=seed,
            name=f"lot-{fmt}",
        )
    # A few single files: one invoice alone, a resent batch (duplicate), a file that is no invoice.
    ubl_inbox = settings.inbox("operateur-ubl")
    gen.write_batch(ubl_inbox, "ubl", 1, lines, batch="none", recipients=recipients, seed=9)
    first = sorted(ubl_inbox.glob("lot-ubl*"))[0]
    shutil.copyfile(first, ubl_inbox / f"renvoi-{first.name}")
    (ubl_inbox / "notes.txt").write_text("ceci n'est pas une facture\n")

    click.echo(f"drop zones filled under {settings.dropzones_dir}; running the pipeline...")
    t0 = time.perf_counter()
    flows = run_once(rt, progress=True)
    elapsed = time.perf_counter() - t0
    click.echo()
    print_flows(sorted(flows, key=lambda f: f.id))
    total = sum(f.invoice_count for f in flows)
    rejected = sum(f.rejected_count for f in flows)
    click.echo(
        f"\n{len(flows)} flows, {total} invoices ({total - rejected} accepted, {rejected} rejected) in {elapsed:.1f} s"
    )
    by_status = Counter(str(f.status) for f in flows)
    click.echo("flow statuses: " + ", ".join(f"{s} {n}" for s, n in sorted(by_status.items())))
    click.echo("top errors:")
    for rule, message, count in rt.store.top_errors(8, [f.id for f in flows]):
        click.echo(f"  {count:>4} x {rule:<9} {message[:110]}")
    delivered = sum(1 for _ in settings.delivery_dir.rglob("*") if _.is_file())
    returns = sorted(settings.dropzones_dir.glob("*/out/*.xml"))
    click.echo(f"\n{delivered} invoices delivered under {settings.delivery_dir}")
    click.echo(f"{len(returns)} return flows (CPPStatut) under {settings.dropzones_dir}/<partner>/out/")
    click.echo(f"details: relais --home {settings.home} flows <FLOW_ID>")
