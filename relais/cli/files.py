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
    from validators.document import DocumentJudge, JudgeConfig

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
) -> None:
    """Write synthetic, realistic invoices (UBL, CII, Factur-X), alone or as zip/tar.gz batches."""
    from relais import generate as gen

    if invalid_ratio + misrouted_ratio > 1.0:
        raise click.BadParameter(
            "--invalid-ratio + --misrouted-ratio ne doit pas dépasser 1 (must not exceed 1)",
            param_hint="--misrouted-ratio",
        )
    recipients = gen.sample_directory()
    out.mkdir(parents=True, exist_ok=True)
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
    )
    if directory_out:
        directory_out.parent.mkdir(parents=True, exist_ok=True)
        directory_out.write_text(
            json.dumps(gen.directory_document(recipients, gen.directory_version()), indent=1, ensure_ascii=False)
        )
    click.echo(f"{len(paths)} fichier(s) écrit(s) dans {out}")
