"""``relais actors``: the registered actors of the billing circuits (titulaires, mandataires, MOE, MOA) that
are not directory structures: add one, import a file, list them (docs/billing-frameworks.md §5).

Each addition or import is a new version (``actor_versions``), audited under ``cli:<user>``. A registered
actor's SIRET may get an API token (`relais api token create --siret`), as a directory structure's may.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from relais.cli.common import Choice, fail, pass_settings
from relais.settings import Settings

if TYPE_CHECKING:
    from flows.store import Store

_ROLES = {
    "titulaire": "titulaire (valideur des pièces de ses sous-traitants)",
    "mandataire": "mandataire d'un groupement (valideur des pièces des cotraitants)",
    "moe": "maîtrise d'œuvre",
    "moa": "maîtrise d'ouvrage",
}


def _fail(message: str, code: int = 2) -> NoReturn:
    fail("relais actors", message, code)


def _store(settings: Settings) -> Store:
    from flows.store import Store  # imported lazily: `relais --help` stays fast

    return Store.open(settings.database_url, schema=settings.database_schema)


def principal() -> str:
    """The audit principal of a command: ``cli:<user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "cli"


@click.group("actors")
def actors() -> None:
    """Registered actors of the billing circuits: titulaires, mandataires, MOE, MOA (by SIRET)."""


@actors.command("add")
@click.option("--siret", required=True, help="Its SIRET (14 digits, check digit verified).")
@click.option("--name", required=True, help="Its name (up to 200 characters).")
@click.option("--role", required=True, type=Choice(list(_ROLES), case_sensitive=False, meanings=_ROLES))
@pass_settings
def actors_add(settings: Settings, siret: str, name: str, role: str) -> None:
    """Register one actor: a new version holding the previous actors and this one (the same SIRET in the
    same role is replaced, e.g. a new name)."""
    from flows.directory import actors as registry

    store = _store(settings)
    try:
        actor, version = registry.add(store, siret, name, role)
    except registry.ActorFileError as e:
        _fail(f"acteur refusé : {e} ; rien n'est enregistré (nothing registered)")
    store.audit(
        principal(), "actors.add", target=actor.siret, outcome="ok", http_status=None, detail=f"{actor.role} {version}"
    )
    click.echo(f"acteur {actor.siret} ({actor.role}, {actor.name}) enregistré : version {version}")


@actors.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_settings
def actors_import(settings: Settings, file: Path) -> None:
    """Import FILE (CSV ``siret;name;role``, UTF-8; roles titulaire, mandataire, moe, moa) as a new version
    holding exactly its actors. A bad line refuses the whole file (its line number is given)."""
    from flows.directory import actors as registry

    store = _store(settings)
    try:
        version, count = registry.import_file(store, file)
    except registry.ActorFileError as e:
        _fail(f"{file.name} refusé : {e} ; rien n'est importé (nothing imported)")
    store.audit(principal(), "actors.import", target=file.name, outcome="ok", http_status=None, detail=version)
    click.echo(f"{count} acteur(s) importé(s) de {file.name} : version {version}")


@actors.command("list")
@click.option("--json", "as_json", is_flag=True, help='Print {"version": ..., "actors": [...]}.')
@pass_settings
def actors_list(settings: Settings, as_json: bool) -> None:
    """The registered actors of the latest version, by SIRET."""
    store = _store(settings)
    found = store.actors()
    versions = store.actor_versions()
    version = versions[0][0] if versions else None
    if as_json:
        rows = [{"siret": a.siret, "name": a.name, "role": a.role} for a in found]
        click.echo(json.dumps({"version": version, "actors": rows}, ensure_ascii=False))
        return
    if not found:
        click.echo("aucun acteur enregistré (`relais actors add` ou `relais actors import FICHIER`)")
        return
    click.echo(f"{len(found)} acteur(s), version {version} :")
    for a in found:
        click.echo(f"  {a.siret}  {a.role:<10}  {a.name}")
