"""`relais demo`: a self-contained tour of the pipeline on the embedded defaults."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import click

from flows.directory import actors as actors_mod
from flows.directory import importer as dirmod
from flows.domain.errors import RelaisError
from flows.domain.frameworks import Framework
from flows.domain.lifecycle import InvoiceStatus
from flows.io import safexml
from flows.pipeline import status_changes
from relais import demo_reform
from relais import generate as gen
from relais.compose import Runtime
from relais.generate.batch import write_specs
from relais.generate.constants import Batch, Fmt
from relais.report import in_french, print_flows
from relais.runner import run_once
from relais.settings import Settings

MARKER = ".relais-demo"
WEB_PORT = 8090  # relais web serve's default
API_PORT = 8091  # given explicitly: the API's port, apart from Airflow's UI (8080)


def _fresh(home: Path) -> None:
    """Make `home` an empty demo folder: wipe it if an earlier demo made it, refuse anything else."""
    if home.is_symlink() or (home.exists() and not home.is_dir()):
        raise click.ClickException(
            f"{home} existe et n'est pas un dossier ; indiquez un autre --home "
            "(exists and is not a folder; pass another --home)"
        )
    if home.exists():
        if not (home / MARKER).is_file() and any(home.iterdir()):
            raise click.ClickException(
                f"{home} existe et n'est pas un dossier de la démo ; indiquez un autre --home "
                "(exists and is not a demo folder; pass another --home)"
            )
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
    click.echo(f"annuaire {version} : {n} structures publiques importées depuis {dir_file}")

    drops: dict[str, tuple[Fmt, Batch, int]] = {
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
            recipients=recipients,
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

    click.echo(f"zones de dépôt remplies sous {settings.dropzones_dir} ; traitement des flux...")
    t0 = time.perf_counter()
    flows = run_once(rt, progress=True)
    elapsed = time.perf_counter() - t0
    click.echo()
    print_flows(sorted(flows, key=lambda f: f.id))
    total = sum(f.invoice_count for f in flows)
    rejected = sum(f.rejected_count for f in flows)
    click.echo(
        f"\n{len(flows)} flux, {total} factures ({total - rejected} acceptées, {rejected} rejetées)"
        f" en {elapsed:.1f} s".replace(".", ",")  # a French decimal comma: no other dot in this line
    )
    by_status = Counter(str(f.status) for f in flows)
    click.echo("statuts des flux : " + ", ".join(f"{s} {n}" for s, n in sorted(by_status.items())))
    click.echo("erreurs les plus fréquentes :")
    for rule, message, count in rt.store.top_errors(8, [f.id for f in flows]):
        click.echo(f"  {count:>4} x {rule:<9} {in_french(rule, message)[:110]}")
    delivered = sum(1 for _ in settings.delivery_dir.rglob("*") if _.is_file())
    reports = list(settings.dropzones_dir.glob("*/out/CR_*.xml"))
    click.echo(f"\n{delivered} factures remises aux destinataires sous {settings.delivery_dir}")
    click.echo(
        f"flux retour (CPPStatut) sous {settings.dropzones_dir}/<partenaire>/out/ : {len(reports)} comptes rendus"
        f" d'intégration (CR_*), {len(_status_returns(settings))} flux de statuts (ST*)"
    )
    _circuits(rt, settings, recipients, lines)
    demo_reform.run(rt, settings, recipients, lines, _changes)
    _next_steps(settings.home, _a_recipient(settings.delivery_dir))


# ---- billing frameworks: a works billing file and a sub-contractor's invoice walk their circuits ----------

#: What the actors do once a piece of this framework is theirs: (who, the status they set), in order.
_ACTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "A4": (("moe", "PRISE_EN_COMPTE_MOE"),),
    "A9": (("validator", "VALIDEE_1"),),
    "A15": (("moa", "PRISE_EN_COMPTE_MOA"), ("moa", "TRANSMISE_MOA")),
    "A19": (("buyer", "SERVICE_FAIT"),),
}
_WHO = {
    "moe": "la maîtrise d'œuvre",
    "moa": "la maîtrise d'ouvrage",
    "validator": "le titulaire",
    "buyer": "le service financier du destinataire",
}


def _circuits(rt: Runtime, settings: Settings, recipients: list[gen.Recipient], lines: int) -> None:
    """Register the circuits' actors, deposit a works billing file (A4, then the MOE's A15, then the MOA's
    A19) and a sub-contractor's invoice (A9, its titulaire as validator), one deposit after the other; after
    each deposit, each actor makes its move (`flows.pipeline.status_changes.act`); a last pass sends the
    status return flows of the last moves. Then where the pieces are, and their return flows."""
    from relais.generate.circuits import actors_csv, circuit_set

    works = circuit_set("works", 1, lines, recipients, seed=7)
    sub = circuit_set("subcontract", 1, lines, recipients, seed=7)
    click.echo("\ncadres de facturation : un dossier de travaux (A4, A15, A19) et une facture de sous-traitant (A9)")
    _register(rt, settings.home, actors_csv(works.actors + sub.actors))
    before = set(_status_returns(settings))
    rounds = [works.deposits[0:1] + sub.deposits, works.deposits[1:2], works.deposits[2:3]]
    for number, deposits in enumerate(rounds, 1):
        for d in deposits:
            inbox = settings.inbox(d.partner)
            inbox.mkdir(parents=True, exist_ok=True)
            settings.outbox_dir(d.partner).mkdir(parents=True, exist_ok=True)
            write_specs(inbox, "ubl", d.specs, "zip", f"{d.framework.lower()}-{d.partner}")
        run_once(rt)  # intake, and the status return flows of the moves made after the previous deposit
        said = ", ".join(f"{s.number} ({d.depositor})" for d in deposits for s in d.specs)
        click.echo(f"  dépôt {number} : {said}")
        for d in deposits:
            for spec in d.specs:
                _walk(rt, spec)
    run_once(rt)  # the status return flows of the last moves
    _where(rt, settings, [s for d in works.deposits + sub.deposits for s in d.specs], before)


def _where(rt: Runtime, settings: Settings, specs: list[gen.InvoiceSpec], before: set[Path]) -> None:
    """Where the pieces of `specs` are now (their billing files), and the status return flows written since
    `before`: to which depositor, saying which changes."""
    click.echo("  où en sont les pièces :")
    files: dict[str, list[str]] = {}
    for spec in specs:
        for piece in rt.store.pieces_by_number(spec.number)[:1]:
            files.setdefault(piece.billing_file_id or piece.id, []).append(f"{spec.number} {piece.status.label}")
    for file_id, said in files.items():
        click.echo(f"    dossier de facturation {file_id} : {', '.join(said)}")
    written = sorted((p for p in _status_returns(settings) if p not in before), key=lambda p: p.name)
    click.echo(f"  {len(written)} flux retour de statuts (CPPStatut) envoyés aux déposants :")
    for path in written:
        click.echo(f"    {_shown(path)} : {_changes(path)}")


def _changes(path: Path) -> str:
    """The changes a status return flow reports: ``number STATUS (actor)``, comma-separated."""
    root = safexml.parse(path.read_bytes()).getroot()
    return ", ".join(
        f"{e.findtext('NumeroFacture')} {e.findtext('DonneesStatut/LibelleStatut')} "
        f"({e.findtext('DonneesStatut/Acteur')})"
        for e in root.iterfind("CPPFactureStatuts/CPPFactureStatut")
    )


def _register(rt: Runtime, home: Path, csv: str) -> None:
    """Write the actors that are no directory structure to acteurs.csv and import them, as `relais actors
    import` does."""
    path = (home / "acteurs.csv").resolve()
    path.write_text(csv, encoding="utf-8")
    version, count = actors_mod.import_file(rt.store, path)
    roles = ", ".join(sorted({a.role for a in rt.store.actors()}))
    click.echo(f"  {count} acteurs enregistrés ({roles} ; version {version}) depuis {path}, comme le ferait :")
    click.echo(f"    relais --home {_shown(home)} actors import {_shown(path)}")


def _status_returns(settings: Settings) -> list[Path]:
    """The status return flows written to the partners' out/ folders (``ST*.xml``)."""
    return sorted(settings.dropzones_dir.glob("*/out/ST*.xml"))


def _walk(rt: Runtime, spec: gen.InvoiceSpec) -> None:
    """Say where a piece is, and make its actors' moves."""
    found = rt.store.pieces_by_number(spec.number)
    framework = Framework(spec.framework or "A1")
    if not found:
        click.echo(f"    {spec.number} {framework.label_fr} : introuvable")
        return
    piece = found[0]
    click.echo(f"    {spec.number} {framework.label_fr} ({piece.id}) : {piece.status.label}")
    named = dict(spec.supporting)
    for who, status in _ACTIONS.get(framework.value, ()):
        siret = {"moe": named.get("MOE"), "moa": named.get("MOA"), "validator": named.get("VALIDEUR")}.get(who)
        siret = siret or spec.buyer_siret  # the MOA is the buyer when none is named
        click.echo(f"      {_WHO[who]} ({siret}) : {_act(rt, piece.id, status, siret)}")


def _act(rt: Runtime, invoice_id: str, status: str, siret: str) -> str:
    """Act as the circuit actor `siret` (as its API token would): move `invoice_id` to `status`. What came of
    it, in French: the statuses the piece took (the platform's pass on too), or why the move was refused."""
    try:
        entries = status_changes.act(
            rt.store, invoice_id, InvoiceStatus[status], siret=siret, deadlines=rt.settings.deadlines
        )
    except RelaisError as e:
        return f"{status} refusé : {e}"
    return " puis ".join(e.status.label for e in entries)


def _a_recipient(delivery: Path) -> str | None:
    """The SIRET of a structure that received invoices (delivery/<siret>/<service>/), if any."""
    sirets = sorted(d.name for d in delivery.iterdir() if d.is_dir()) if delivery.is_dir() else []
    return sirets[0] if sirets else None


def _shown(home: Path) -> str:
    """`home` as the user would type it: relative to the current folder when under it, shell-quoted."""
    try:
        rel = os.path.relpath(home)
    except ValueError:  # another drive
        rel = str(home)
    return shlex.quote(str(home) if rel.startswith("..") else rel)


def _next_steps(home: Path, siret: str | None) -> None:
    """The commands to go on with: a flow's details, the web application, the recipients' API."""
    relais = f"relais --home {_shown(home)}"
    click.echo("\nEt ensuite :")
    if sys.prefix != sys.base_prefix and not os.environ.get("VIRTUAL_ENV"):  # e.g. run by scripts/bootstrap.sh
        click.echo("  dans votre terminal, le venv de Relais d'abord :")
        click.echo(f"    . {_shown(Path(sys.prefix) / 'bin' / 'activate')}")
    click.echo("  le détail d'un flux :")
    click.echo(f"    {relais} flows CPP0000000001")
    click.echo(f"  l'application web « Suivi des flux » (un utilisateur ops, puis http://127.0.0.1:{WEB_PORT}/) :")
    click.echo(f"    echo 'un-mot-de-passe-assez-long' | {relais} users add moi --role ops")
    click.echo(f"    {relais} web serve --port {WEB_PORT}")
    if siret is None:
        return
    click.echo(f"  l'API des destinataires (un jeton pour la structure {siret}, affiché une seule fois) :")
    click.echo(f"    {relais} api token create --siret {siret}")
    click.echo(f"    {relais} api serve --port {API_PORT}")
    click.echo(f'    curl -H "Authorization: Bearer <jeton>" http://127.0.0.1:{API_PORT}/api/v1/invoices')
