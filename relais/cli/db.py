"""``relais db``: the store's schema (migrations run once per deployment, not by every task)."""

from __future__ import annotations

import sys

import click

from relais.cli.common import pass_settings
from relais.settings import Settings


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
