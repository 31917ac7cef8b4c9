"""`relais demo`'s reform part (docs/reform.md): a partner platform that speaks CDAR, and B2B routing.

1. ``pa-demo``, a platform of the reform (``platform_id``, ``status_vocabulary = "cdar"``), deposits a few
   invoices; its integration report and its status returns are CDAR D22B messages, shown line by line and
   checked against the official XSD and BR-FR-CDV schematron (`validators.cdar`).
2. Three lines of the reform's directory are imported (as ``relais directory import --reform`` does): the
   buyer ``SOCIETE`` is reached through ``pa-demo``. An invoice that ``operateur-ubl`` deposits for it is routed
   to ``pa-demo`` (EN_COURS_ACHEMINEMENT); ``pa-demo``, now the buyer's platform, answers with two CDAR
   messages (202 Reçue and 203 Mise à disposition, then 204 Prise en charge and 205 Approuvée: one phase per
   message), which Relais validates and applies; the depositor hears them in its own vocabulary (CPPStatut).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from flows.directory import reform
from flows.domain.cdar import STATUSES, Message, Party, Role, Scheme, StatusLine
from flows.domain.model import Flow, utcnow
from flows.io import cdar as cdar_io
from flows.returns import cdar as cdarflow
from relais import generate as gen
from relais.compose import Runtime
from relais.generate.batch import write_specs
from relais.generate.directory import Recipient
from relais.runner import run_once
from relais.settings import Settings
from validators import cdar as official

PLATFORM_PARTNER = "pa-demo"
PLATFORM_ID = "0042"
#: The B2B buyer (no public structure): reached through pa-demo by the reform's directory.
BUYER = Recipient("70204275500240", "Société Exemple")
DIRECTORY = "\n".join(
    [
        "addressingIdentifier;platformId;platformName;status;effectiveFrom",
        f"{BUYER.siret[:9]};{PLATFORM_ID};PA Démo;Enabled;",
        f"{BUYER.siret[:9]}_{BUYER.siret};{PLATFORM_ID};PA Démo;Enabled;",
        "552100554;0777;PA Autre;Enabled;",
    ]
)


def run(
    rt: Runtime, settings: Settings, recipients: list[gen.Recipient], lines: int, changes: Callable[[Path], str]
) -> None:
    """The reform part of the demo (module doc); `changes` says what a CPPStatut status return flow reports."""
    click.echo(f"\nréforme 2026 : la plateforme partenaire {PLATFORM_PARTNER} (n° {PLATFORM_ID}) parle CDAR")
    _partner(rt, settings)
    out = settings.outbox_dir(PLATFORM_PARTNER)
    before = set(out.glob("CDAR_*.xml"))
    specs = list(gen.plan(3, lines, recipients, invalid_ratio=0.34, seed=5, start=901))
    write_specs(settings.inbox(PLATFORM_PARTNER), "ubl", specs, "zip", "lot-pa-demo")
    [flow] = _flows(run_once(rt), PLATFORM_PARTNER)
    click.echo(f"  {PLATFORM_PARTNER} dépose lot-pa-demo.zip : flux {flow.id} {flow.status}")
    for path in sorted(set(out.glob("CDAR_*.xml")) - before, key=lambda p: p.stat().st_mtime_ns):
        _show(path)

    path = (settings.home / "annuaire-reforme.csv").resolve()
    path.write_text(DIRECTORY + "\n", encoding="utf-8")
    version, count = reform.import_file(rt.store, path)
    click.echo(f"  annuaire de la réforme : {count} lignes importées (version {version}), comme le ferait :")
    click.echo(f"    relais directory import --reform {path}")

    depositor = "operateur-ubl"
    spec = next(gen.plan(1, lines, [BUYER], seed=6, start=951))
    write_specs(settings.inbox(depositor), "ubl", [spec], "none", "b2b")
    returns = set(settings.dropzones_dir.glob(f"{depositor}/out/ST*.xml"))
    [flow] = _flows(run_once(rt), depositor)
    [invoice] = rt.store.iter_invoices(flow.id)
    click.echo(
        f"  {depositor} dépose la facture {invoice.number} pour {BUYER.name} (SIREN {BUYER.siret[:9]}) : "
        f"routée par la ligne {invoice.routed_by} vers la plateforme {invoice.routed_platform}, "
        f"{invoice.status.label}, remise dans {_rel(settings, out / f'{invoice.id}.xml')}"
    )

    platform = Party(Role.PLATFORM, PLATFORM_ID, Scheme.PLATFORM, "PA Démo")
    relais = Party(Role.PLATFORM, rt.settings.platform_id, Scheme.PLATFORM, rt.settings.platform_name)
    buyer = Party(Role.BUYER, BUYER.siret[:9], Scheme.SIREN)
    for message_id, statuses, issuer in (("PAD-1", ("202", "203"), platform), ("PAD-2", ("204", "205"), buyer)):
        line = [
            StatusLine(
                invoice.number or "",
                status,
                invoice_issue_date=invoice.issue_date,
                seller_siren=(invoice.supplier_id or "")[:9],
                buyer=buyer,
            )
            for status in statuses
        ]
        data = cdarflow.write(Message(message_id, utcnow(), platform, issuer, relais, tuple(line)))
        (settings.inbox(PLATFORM_PARTNER) / f"{message_id}.xml").write_bytes(data)
        [received] = _flows(run_once(rt), PLATFORM_PARTNER)
        said = " puis ".join(f"{s} {STATUSES[s].label_fr}" for s in statuses)
        click.echo(
            f"  {PLATFORM_PARTNER} envoie le message CDAR {message_id} ({said}) : flux {received.id} {received.status}"
        )
    now = rt.store.get_invoice(invoice.id)
    click.echo(f"  la facture {invoice.number} est maintenant {now.status.label if now else '?'}")
    for path in sorted(set(settings.dropzones_dir.glob(f"{depositor}/out/ST*.xml")) - returns, key=lambda p: p.name):
        click.echo(f"  {depositor} l'apprend par {_rel(settings, path)} : {changes(path)}")


def _partner(rt: Runtime, settings: Settings) -> None:
    settings.partners_dir.mkdir(parents=True, exist_ok=True)
    path = settings.partners_dir / f"{PLATFORM_PARTNER}.toml"
    path.write_text(
        f'id = "{PLATFORM_PARTNER}"\nname = "PA Démo"\nstatus_vocabulary = "cdar"\nplatform_id = "{PLATFORM_ID}"\n',
        encoding="utf-8",
    )
    settings.inbox(PLATFORM_PARTNER).mkdir(parents=True, exist_ok=True)
    settings.outbox_dir(PLATFORM_PARTNER).mkdir(parents=True, exist_ok=True)
    rt.__dict__.pop("partners", None)  # read the partner files again
    click.echo(
        f"  fiche partenaire {path.relative_to(settings.home)} : "
        f'status_vocabulary = "cdar", platform_id = "{PLATFORM_ID}"'
    )


def _flows(flows: list[Flow], partner: str) -> list[Flow]:
    return [f for f in flows if f.partner == partner]


def _show(path: Path) -> None:
    """A CDAR message received by pa-demo: its name, its lines, and the official artefacts' verdict."""
    data = path.read_bytes()
    message = cdar_io.read(data)
    findings = official.check(data)
    verdict = (
        "conforme au XSD CDAR D22B et au schématron BR-FR-CDV officiels"
        if not findings
        else f"NON CONFORME : {', '.join(f.rule for f in findings[:5])}"
    )
    click.echo(f"  {PLATFORM_PARTNER} reçoit {path.name} ({verdict}) :")
    for line in message.lines:
        reason = f" motif {line.reason_code}" if line.reason_code else ""
        label = STATUSES[line.status].label_fr if line.status in STATUSES else ""
        click.echo(f"    {line.invoice_number} {line.status} {label}{reason}")


def _rel(settings: Settings, path: Path) -> str:
    try:
        return str(path.relative_to(settings.home))
    except ValueError:
        return str(path)
