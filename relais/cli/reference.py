"""`relais directory` and `relais rules`: the reference data Relais judges with."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from relais.cli.common import fail, pass_settings
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
@pass_settings
def directory_import(settings: Settings, file: Path) -> None:
    """Import a directory file (format relais-directory/1) as a new version."""
    from flows.directory import importer as dirmod
    from flows.domain.errors import ConfigError

    store = _store(settings)
    try:
        version, n = dirmod.import_file(store, file)
    except ConfigError as e:
        _fail("directory import", str(e), 1)
    except OSError as e:
        _fail("directory import", f"impossible de lire {file} : {e.strerror or e} (cannot read {file})")
    click.echo(f"annuaire version {version} importé : {n} structures")


@directory.command(name="versions")
@pass_settings
def directory_versions(settings: Settings) -> None:
    """List imported directory versions, newest first."""
    for v, at, n in _store(settings).directory_versions():
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
