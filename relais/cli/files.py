"""Commands that work on invoice files without the pipeline: `relais validate` (judge files as the
pipeline would) and `relais generate` (write synthetic invoices and their recipient directory)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from relais.cli.common import Choice, configuration_errors, fail, pass_settings, unusable
from relais.settings import Settings

if TYPE_CHECKING:
    from relais.generate.circuits import CircuitKind
    from relais.generate.constants import Batch, Fmt


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--rules",
    "rules_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of CEN EN 16931 validation artefacts (EN16931-UBL/CII-validation.xslt).",
)
@click.option(
    "--keep-going", is_flag=True, help="Run the business rules even when the XSD fails (every error in one report)."
)
@click.option("--br-fr", is_flag=True, help="Also apply the French BR-FR rules.")
@click.option("--xsd-only", is_flag=True, help="Skip the business rules.")
@click.option(
    "--engine",
    type=Choice(["native", "official"]),
    default=None,
    help="Business-rule engine: native (generated Python, the default) or official (the XSLTs on Saxon).",
)
@pass_settings
def validate(
    settings: Settings,
    files: tuple[Path, ...],
    as_json: bool,
    rules_dir: Path | None,
    keep_going: bool,
    br_fr: bool,
    xsd_only: bool,
    engine: str | None,
) -> None:
    """Validate invoice files (XML or Factur-X PDF) without the pipeline.

    Exit 0 when every document is valid, 1 when one is not, 2 on a usage error,
    an unreadable file, or when validation itself could not run (never "valid").
    """
    from flows.domain.errors import Incident
    from flows.pipeline.validate import validate_bytes
    from validators.document import BUILDING_NOTICE, DocumentJudge, JudgeConfig

    for f in files:  # every file must be readable before anything is printed
        try:
            with f.open("rb"):
                pass
        except OSError as e:
            fail("relais validate", f"impossible de lire {f} : {e.strerror or e} (cannot read {f})")
    try:
        judge = DocumentJudge(
            JudgeConfig(
                ubl_xsd_dir=settings.ubl_xsd_dir,
                cii_xsd=settings.cii_xsd,
                rules_dir=rules_dir or settings.rules_dir,
                max_xml_bytes=settings.max_xml_bytes,
                business_rules=not xsd_only,
                rules_engine=engine or settings.rules_engine,
                native_cache=settings.native_cache_dir,
            )
        )
        rulesets = judge.versions()
        told: list[str] = []

        def cold(key: str) -> None:  # the native engine is about to build a rule set's code: say why it is slow
            if not told:
                click.echo(BUILDING_NOTICE, err=True)
            told.append(key)

        judge.on_cold_rules = cold
    except configuration_errors() as e:  # e.g. an XSD named by RELAIS_UBL_XSD_DIR / RELAIS_CII_XSD is missing
        unusable(e)
    except Incident as e:
        fail("relais validate", str(e))
    reports = []
    for f in files:  # one file in memory at a time
        try:
            data = f.read_bytes()
        except OSError as e:
            fail("relais validate", f"impossible de lire {f} : {e.strerror or e} (cannot read {f})")
        try:
            reports.append(validate_bytes(str(f), data, judge, keep_going=keep_going, br_fr=br_fr))
        except Incident as e:  # fail closed: no verdict when validation itself failed
            fail("relais validate", f"{f} : la validation n'a pas pu s'exécuter : {e} (validation could not run)")
    if as_json:
        engine = None if xsd_only else judge.config.rules_engine
        click.echo(
            json.dumps(
                {"documents": [r.as_json() for r in reports], "rulesets": rulesets, "engine": engine},
                ensure_ascii=False,
            )
        )
    else:
        from relais.report import in_french

        for r in reports:
            verdict = click.style("valide", fg="green") if r.valid else click.style("INVALIDE", fg="red")
            click.echo(f"{r.path}: {r.syntax or 'unknown'}{' ' + r.profile if r.profile else ''} - {verdict}")
            for err in r.errors:
                click.echo(f"  [{err.flag}] {err.rule} en {err.location} : {in_french(err.rule, err.message)}")
    sys.exit(0 if all(r.valid for r in reports) else 1)


# ---- flows ---------------------------------------------------------------------


def _framework(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """BT-23 as given, once it names a framework (A1..A25, or a long name read by its prefix)."""
    from flows.domain.frameworks import NotAFramework, parse

    if value is None:
        return None
    text = value.strip()
    try:
        known = parse(text)
    except NotAFramework:
        known = None
    upper = text.upper()
    if known is None or not (upper == known.value or upper.startswith(f"{known.value}_")):
        raise click.BadParameter(f"{value!r} n'est pas un cadre de facturation A1 à A25 (not a billing framework)")
    return text


def _siret(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from stdnum.fr import siret

    if value is None:
        return None
    if not siret.is_valid(value):
        raise click.BadParameter(f"{value!r} n'est pas un SIRET valide (14 chiffres, clé de Luhn) (not a valid SIRET)")
    return siret.compact(value)


@click.command()
@click.option("--format", "fmt", type=Choice(["ubl", "cii", "facturx"]), default="ubl", show_default=True)
@click.option("-n", "--invoices", default=10, show_default=True, type=click.IntRange(min=0))
@click.option("-l", "--lines", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--batch", type=Choice(["none", "zip", "tar.gz"]), default="zip", show_default=True)
@click.option(
    "--invalid-ratio",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="Share of invoices that break the XSD.",
)
@click.option(
    "--misrouted-ratio",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="Share of invoices that break a routing rule (the two ratios add up to 1 at most).",
)
@click.option("--seed", default=1, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option(
    "--directory",
    "directory_out",
    type=click.Path(path_type=Path),
    help="Also write the matching recipient directory (JSON import file) here.",
)
@click.option(
    "--framework",
    callback=_framework,
    help="Billing framework written to BT-23 (cadre de facturation): A1..A25 or the long API name "
    "(A4_PROJET_DECOMPTE_MENSUEL_FOURNISSEUR).",
)
@click.option("--validator", "validator_1", callback=_siret, help="SIRET of the validator (BG-24 VALIDEUR).")
@click.option("--validator-2", "validator_2", callback=_siret, help="SIRET of the second validator (VALIDEUR_2).")
@click.option("--moe", callback=_siret, help="SIRET of the project manager, maîtrise d'œuvre (BG-24 MOE).")
@click.option("--moa", callback=_siret, help="SIRET of the contracting authority, maîtrise d'ouvrage (BG-24 MOA).")
@click.option("--previous", help="Number of the piece every invoice follows (BT-25, association).")
@click.option(
    "--circuit",
    type=Choice(["works", "final", "tacit", "subcontract", "cocontract"]),
    help="Write -n billing files walking this circuit instead (works: A4, A15, A19; final: A7, A18, A20, A8; "
    "tacit: A7, A22, A23; subcontract: A9; cocontract: A12): one folder per deposit, the actors (acteurs.csv) "
    "and the order (LISEZMOI.txt).",
)
def generate(
    fmt: Fmt,
    invoices: int,
    lines: int,
    batch: Batch,
    invalid_ratio: float,
    misrouted_ratio: float,
    seed: int,
    out: Path,
    directory_out: Path | None,
    framework: str | None,
    validator_1: str | None,
    validator_2: str | None,
    moe: str | None,
    moa: str | None,
    previous: str | None,
    circuit: CircuitKind | None,
) -> None:
    """Write synthetic, realistic invoices (UBL, CII, Factur-X), alone or as zip/tar.gz batches; with
    --framework and the actors, pieces of a billing framework; with --circuit, whole billing files."""
    from relais import generate as gen

    if invalid_ratio + misrouted_ratio > 1.0:
        raise click.BadParameter(
            "--invalid-ratio + --misrouted-ratio ne doit pas dépasser 1 (must not exceed 1)",
            param_hint="--misrouted-ratio",
        )
    framing = gen.Framing(framework, previous, validator_1, validator_2, moe, moa)
    if circuit is not None and (framing != gen.Framing() or invalid_ratio or misrouted_ratio):
        raise click.UsageError(
            "--circuit écrit ses propres cadres, acteurs et pièces précédentes : sans --framework, --validator, "
            "--validator-2, --moe, --moa, --previous ni ratio de défauts "
            "(--circuit writes its own frameworks, actors and previous pieces)"
        )
    recipients = gen.sample_directory()
    out.mkdir(parents=True, exist_ok=True)
    if circuit is not None:
        from relais.generate.circuits import circuit_set, write_circuit

        written = write_circuit(out, fmt, circuit_set(circuit, invoices, lines, recipients, seed=seed), batch)
        count = sum(len(paths) for _, paths in written.deposits)
        summary = written.summary.read_text(encoding="utf-8")
    else:
        paths = gen.write_batch(
            out,
            fmt,
            invoices,
            lines,
            batch=batch,
            recipients=recipients,
            invalid_ratio=invalid_ratio,
            misrouted_ratio=misrouted_ratio,
            seed=seed,
            framing=framing if framing != gen.Framing() else None,
        )
        count, summary = len(paths), ""
    if directory_out:
        directory_out.parent.mkdir(parents=True, exist_ok=True)
        directory_out.write_text(
            json.dumps(gen.directory_document(recipients, gen.directory_version()), indent=1, ensure_ascii=False)
        )
    click.echo(f"{count} fichier(s) écrit(s) dans {out}")
    if summary:
        click.echo(summary, nl=False)
