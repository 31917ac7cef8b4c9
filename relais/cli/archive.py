"""`relais archive verify [--since DATE]`: re-hash every archived object the store refers to; `relais db`: the
store's schema (migrations run once per deployment, not by every task).

The objects are those of flows (their bytes as received), outbox rows (return flows, MDNs), AS2 messages
(as received or sent, and their MDNs) and status return flows (`flows.store.archive_refs`), in whichever
archive the settings choose (the folder, or S3 with ``RELAIS_ARCHIVE_URL=s3://...``). Each object is read
back whole and hashed; one whose bytes no longer match its SHA-256 is a MISMATCH, one that is gone is
MISSING, and either makes the command exit 1. An archive that cannot be reached exits 2.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import TYPE_CHECKING

import click

from relais.cli.common import fail, pass_runtime, pass_settings
from relais.settings import Settings

if TYPE_CHECKING:
    from relais.compose import Runtime


@click.group(name="archive")
def archive() -> None:
    """The archive of every received and emitted byte."""


@archive.command(name="verify")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    default=None,
    help="Only the objects recorded since this date (UTC), e.g. 2026-01-01.",
)
@pass_runtime
def verify(rt: Runtime, since: dt.datetime | None) -> None:
    """Re-hash the archived objects referenced by the store; report mismatches and missing ones (exit 1)."""
    try:
        when = since.replace(tzinfo=dt.UTC) if since is not None and since.tzinfo is None else since
        refs = rt.store.archive_refs(when)
        by_digest: dict[str, list[str]] = {}
        for ref in refs:
            by_digest.setdefault(ref.sha256, []).append(f"{ref.source}:{ref.ref}")
        mismatched = missing = 0
        for sha256, where in by_digest.items():
            try:
                if not rt.archive.exists(sha256):
                    missing += 1
                    click.echo(f"MISSING   {sha256}  {' '.join(where)}")
                elif not rt.archive.verify(sha256):
                    mismatched += 1
                    click.echo(f"MISMATCH  {sha256}  {' '.join(where)}")
            except ValueError:  # a reference that is not a SHA-256 digest
                mismatched += 1
                click.echo(f"INVALID   {sha256!r}  {' '.join(where)}")
    except Exception as e:  # the archive (or the store) cannot be reached
        fail("relais archive verify", f"{type(e).__name__}: {e}")
    finally:
        rt.close()
    ok = len(by_digest) - mismatched - missing
    click.echo(
        f"{len(by_digest)} objet(s) ({len(refs)} référence(s)) vérifié(s) dans {rt.archive!r} : "
        f"{ok} OK, {mismatched} altéré(s), {missing} manquant(s)"
    )
    if mismatched or missing:
        raise SystemExit(1)


# ---- `relais db`: the store's schema ------------------------------------------------------------


@click.group(name="db")
def db() -> None:
    """The store's schema (migrations run once per deployment, not by every task)."""


@db.command(name="upgrade")
@pass_settings
def db_upgrade(settings: Settings) -> None:
    """Bring the store's schema to this version of Relais (idempotent)."""
    from flows.store import Store, head_revision

    store = Store.open(settings.database_url, schema=settings.database_schema, migrate=True)
    try:
        click.echo(f"schéma de la base à la révision {store.schema_revision()} (dernière : {head_revision()})")
    finally:
        store.close()


@db.command(name="status")
@pass_settings
def db_status(settings: Settings) -> None:
    """Say whether the store's schema is up to date (exit 1 when `relais db upgrade` is needed)."""
    from flows.store import Store, head_revision

    store = Store.connect(settings.database_url, schema=settings.database_schema)
    try:
        current, head = store.schema_revision(), head_revision()
    finally:
        store.close()
    click.echo(
        f"schéma de la base à la révision {current or 'aucune'}, dernière : {head}"
        + ("" if current == head else " : lancez `relais db upgrade` (run `relais db upgrade`)")
    )
    sys.exit(0 if current == head else 1)


@db.group(name="rollups")
def db_rollups() -> None:
    """The dashboard's daily roll-ups (landing and rejects pages; migration 0021)."""


@db_rollups.command(name="rebuild")
@pass_settings
def db_rollups_rebuild(settings: Settings) -> None:
    """Count the roll-ups again from the flows and their findings (one transaction; after a restore, or a doubt)."""
    from flows.store import Store

    store = Store.open(settings.database_url, schema=settings.database_schema, migrate=False)
    try:
        flows, rejects = store.rebuild_rollups()
    finally:
        store.close()
    click.echo(f"roll-ups recomptés : {flows} ligne(s) de flux, {rejects} ligne(s) de rejets (roll-ups rebuilt)")


@db_rollups.command(name="compact")
@pass_settings
def db_rollups_compact(settings: Settings) -> None:
    """Sum the rows the triggers appended since the last compaction (the pages also do it when 2,000 wait)."""
    from flows.store import Store

    store = Store.open(settings.database_url, schema=settings.database_schema, migrate=False)
    try:
        done = store.compact_rollups()
    finally:
        store.close()
    click.echo(f"roll-ups compactés : {done} ligne(s) additionnée(s) (roll-ups compacted)")
