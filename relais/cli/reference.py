"""`relais directory`, `relais rules` and `relais actors`: the reference data Relais judges and routes with.

``relais actors``: the registered actors of the billing circuits (titulaires, mandataires, MOE, MOA) that
are not directory structures: add one, import a file, list them (docs/billing-frameworks.md §5). Each
addition or import is a new version (``actor_versions``), audited under ``cli:<user>``. A registered
actor's SIRET may get an API token (`relais api token create --siret`), as a directory structure's may.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from relais.cli.common import Choice, fail, pass_settings
from relais.settings import Settings

if TYPE_CHECKING:
    from flows.store import Store


def _fail(command: str, message: str, code: int = 2) -> NoReturn:
    fail(f"relais {command}", message, code)


def _store(settings: Settings) -> Store:
    from flows.store import Store  # imported lazily: `relais --help` stays fast

    return Store.open(settings.database_url, schema=settings.database_schema)


# ---- directory -----------------------------------------------------------------


@click.group()
def directory() -> None:
    """Recipient directory (annuaire des structures publiques)."""


@directory.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--reform",
    is_flag=True,
    help="The 2026 reform's directory (lines SIREN, SIREN_SIRET, SIREN_SIRET_routingCode, SIREN_suffix with their "
    "platform): CSV or JSON Lines, docs/directory-formats.md.",
)
@pass_settings
def directory_import(settings: Settings, file: Path, reform: bool) -> None:
    """Import a directory file (format relais-directory/1; with --reform, the reform's directory) as a new version."""
    from flows.directory import importer as dirmod
    from flows.directory import reform as reformmod
    from flows.domain.errors import ConfigError

    store = _store(settings)
    try:
        version, n = (reformmod if reform else dirmod).import_file(store, file)
    except ConfigError as e:
        _fail("directory import", str(e), 1)
    except OSError as e:
        _fail("directory import", f"impossible de lire {file} : {e.strerror or e} (cannot read {file})")
    if reform:
        click.echo(f"annuaire de la réforme version {version} importé : {n} lignes")
    else:
        click.echo(f"annuaire version {version} importé : {n} structures")


@directory.command(name="versions")
@click.option("--reform", is_flag=True, help="The reform's directory versions.")
@pass_settings
def directory_versions(settings: Settings, reform: bool) -> None:
    """List imported directory versions, newest first."""
    store = _store(settings)
    if reform:
        for v, at, n in store.reform_versions():
            click.echo(f"{v}\t{at:%Y-%m-%d %H:%M}\t{n} lignes")
        return
    for v, at, n in store.directory_versions():
        click.echo(f"{v}\t{at:%Y-%m-%d %H:%M}\t{n} structures")


# ---- rules ---------------------------------------------------------------------


@click.group(invoke_without_command=True)
@click.pass_context
def rules(ctx: click.Context) -> None:
    """Rule codes (`relais rules`), business rule sets (`rules install`, `rules sets`)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(rules_list)


@rules.command(name="list")
def rules_list() -> None:
    """List the rule codes Relais defines (technical, XSD, routing, platform)."""
    from validators.rules import all_rules

    for r in all_rules():
        click.echo(f"{r.code}\t{r.flag}\t{r.message_en}\n\t\t{r.message_fr}")


@rules.command(name="install")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@pass_settings
def rules_install(settings: Settings, path: Path) -> None:
    """Install the CEN EN 16931 validation artefacts found under PATH for this Relais home."""
    from flows.domain.errors import Incident
    from validators import schematron

    try:
        schematron.install(path, settings.installed_rules_dir)
        sets = schematron.discover(settings.installed_rules_dir)
    except (Incident, FileNotFoundError, ValueError) as e:
        _fail("rules install", str(e), code=1)
    click.echo(f"installé dans {settings.installed_rules_dir}")
    _print_rulesets(sets.versions())
    if settings.rules_engine == "native":  # the native code is built now, not by the first flow
        try:
            _print_engine(sets, settings.native_cache_dir, only=("en16931-ubl", "en16931-cii"))
        except Incident as e:
            _fail("rules install", str(e), code=1)
        from validators.document import JudgeConfig, build_rules

        # the other rule sets (Factur-X profiles, BR-FR) too; one that cannot be built fails its first flow closed
        build_rules(JudgeConfig(rules_dir=settings.installed_rules_dir, native_cache=settings.native_cache_dir))


@rules.command(name="sets")
@click.option("--rules", "rules_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (versions and the native engine's state).")
@pass_settings
def rules_sets(settings: Settings, rules_dir: Path | None, as_json: bool) -> None:
    """Show the business rule sets in use, their versions, and how the native engine runs each one:
    its asserts compiled to Python, and those it could not compile, which run on Saxon (with why)."""
    import json

    from flows.domain.errors import Incident
    from validators import schematron

    try:
        sets = schematron.discover(rules_dir or settings.rules_dir)
        if as_json:
            report = {
                "versions": sets.versions(),
                "engine": settings.rules_engine,
                "native": _native_state(sets, settings.native_cache_dir),
            }
            click.echo(json.dumps(report, ensure_ascii=False))
            return
        _print_rulesets(sets.versions())
        click.echo(f"{'engine':<24} {settings.rules_engine}")
        _print_engine(sets, settings.native_cache_dir)
    except Incident as e:
        _fail("rules sets", str(e), code=1)


def _print_rulesets(versions: dict[str, str]) -> None:
    for key, value in versions.items():
        click.echo(f"{key:<24} {value}")


def _native_state(sets: Any, cache_dir: Path, only: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Per rule set: asserts compiled natively, and those on Saxon with the compiler's reason."""
    from validators.native import NativeRunner

    runner = NativeRunner(cache_dir=cache_dir)
    state: dict[str, Any] = {}
    for rs in sets.all():
        if only and rs.key not in only:
            continue
        loaded = runner.compile(rs)
        saxon = [a for a in loaded.asserts if not a.native]
        state[rs.key] = {
            "asserts": len(loaded.asserts),
            "native": len(loaded.asserts) - len(saxon),
            "saxon": [{"assert": a.uid, "reason": a.reason} for a in saxon],
            "stylesheet_refused": loaded.compile_error,
        }
    return state


def _print_engine(sets: Any, cache_dir: Path, only: tuple[str, ...] | None = None) -> None:
    for key, st in _native_state(sets, cache_dir, only).items():
        line = f"{st['native']}/{st['asserts']} asserts native"
        if st["saxon"]:
            line += f", {len(st['saxon'])} on Saxon"
        click.echo(f"{'native ' + key:<24} {line}")
        if st["stylesheet_refused"]:
            click.echo(f"{'':<24}   whole stylesheet on Saxon: {st['stylesheet_refused']}")
        for a in st["saxon"]:
            click.echo(f"{'':<24}   on Saxon: {a['assert']}: {a['reason']}")


# ---- `relais actors` ----------------------------------------------------------------------


_ROLES = {
    "titulaire": "titulaire (valideur des pièces de ses sous-traitants)",
    "mandataire": "mandataire d'un groupement (valideur des pièces des cotraitants)",
    "moe": "maîtrise d'œuvre",
    "moa": "maîtrise d'ouvrage",
}


def _fail_actors(message: str, code: int = 2) -> NoReturn:
    fail("relais actors", message, code)


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
        _fail_actors(f"acteur refusé : {e} ; rien n'est enregistré (nothing registered)")
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
    before = {(a.siret, a.role): a for a in store.actors()}
    try:
        version, count = registry.import_file(store, file)
    except registry.ActorFileError as e:
        _fail_actors(f"{file.name} refusé : {e} ; rien n'est importé (nothing imported)")
    store.audit(principal(), "actors.import", target=file.name, outcome="ok", http_status=None, detail=version)
    click.echo(f"{count} acteur(s) importé(s) de {file.name} : version {version}")
    # The file replaces the list: say who is no longer registered (`relais actors add` adds one instead).
    dropped = sorted(set(before) - {(a.siret, a.role) for a in store.actors()})
    if dropped:
        click.echo(f"{len(dropped)} acteur(s) de la version précédente ne sont plus enregistré(s) :")
        for siret, role in dropped:
            click.echo(f"  {siret}  {role}  {before[(siret, role)].name}")
        click.echo("(pour ajouter un acteur sans remplacer la liste : relais actors add --siret S --name N --role R)")


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
