"""Consistent sets of billing-framework pieces walking a circuit, with their actors.

`circuit_set` plans `n` billing files of one kind (docs/billing-frameworks.md §2):

* ``works``: the titulaire's draft monthly statement (A4), the project manager's état d'acompte (A15,
  BT-25 = the A4's number) and the contracting authority's validated état d'acompte (A19, BT-25 = the
  A15's number); same seller (the titulaire) and buyer in all three, each naming the MOE (BG-24), a private
  firm; the MOA is the buyer structure itself, the default when no MOA is named. (Naming it too would be
  a second CII BG-24 with TypeCode 916, which the EN 16931 CII rules warn about: CII-SR-475.)
* ``final``: the end of the contract: the titulaire's draft final statement (A7), the project manager's
  general statement (A18, following the A7), the contracting authority's general statement (A20, following
  the A18) and the titulaire's signed DGD (A8, following the A20); same parties and MOE throughout;
* ``tacit``: the tacit procedure: the titulaire's draft final statement (A7), then, the general statement
  not notified, its own draft general statement (A22, following and replacing the A7), then its tacit DGD
  (A23, following the A22);
* ``subcontract``: a sub-contractor's invoice (A9) naming the titulaire as its validator;
* ``cocontract``: a co-contractor's invoice (A12) naming the group's mandataire as its validator.

Each set is a sequence of `Deposit`s, to be dropped in order (each one after the previous one is
processed), and the `Actor`s that are no directory structure, for ``relais actors import`` (CSV
``siret;name;role``). `write_circuit` writes one folder per deposit, ``acteurs.csv`` and ``LISEZMOI.txt``.

>>> from relais.generate.directory import sample_directory
>>> cs = circuit_set("works", 2, 1, sample_directory())
>>> [(d.framework, [s.number for s in d.specs]) for d in cs.deposits]
[('A4', ['A4-000001', 'A4-000002']), ('A15', ['A15-000001', 'A15-000002']), ('A19', ['A19-000001', 'A19-000002'])]
>>> [s.previous for s in cs.deposits[2].specs], sorted({a.role for a in cs.actors})
(['A15-000001', 'A15-000002'], ['moe', 'titulaire'])
>>> [(d.folder, d.specs[0].previous) for d in circuit_set("final", 1, 1, sample_directory()).deposits]
[('1-A7-titulaire', None), ('2-A18-moe', 'A7-000001'), ('3-A20-moa', 'A18-000001'), ('4-A8-titulaire', 'A20-000001')]
>>> [(d.folder, d.specs[0].previous) for d in circuit_set("tacit", 1, 1, sample_directory()).deposits]
[('1-A7-titulaire', None), ('2-A22-titulaire', 'A7-000001'), ('3-A23-titulaire', 'A22-000001')]
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from relais.generate.batch import write_specs
from relais.generate.constants import _EPOCH, Batch, Fmt
from relais.generate.directory import Recipient, _make_siret
from relais.generate.specs import Framing, InvoiceSpec, _satisfying, _usable

CircuitKind = Literal["works", "final", "tacit", "subcontract", "cocontract"]
CIRCUITS: tuple[CircuitKind, ...] = ("works", "final", "tacit", "subcontract", "cocontract")
ACTORS_FILE = "acteurs.csv"
SUMMARY_FILE = "LISEZMOI.txt"

_BUILDERS = (
    "Bâtiment Durand SAS",
    "Maçonnerie Leroy et Fils",
    "Charpentes Petit SARL",
    "Travaux Publics Garnier SA",
    "Construction Faure SAS",
    "Génie Civil Mercier",
)
_TRADES = (
    "Plomberie Chauffage Blanc",
    "Électricité Bâtiment Chevalier",
    "Peinture Rousseau SARL",
    "Menuiseries Vincent SAS",
    "Carrelage Muller",
    "Étanchéité Lemoine",
)
_MOES = (
    "Atelier d'architecture Lambert",
    "Cabinet d'ingénierie Fontaine",
    "Architectes associés Bonnet",
    "Bureau d'études Girard Structures",
)
_KIND_FR = {
    "works": "travaux",
    "final": "fin de marché (décompte général et définitif)",
    "tacit": "procédure tacite (décompte général tacite)",
    "subcontract": "sous-traitance",
    "cocontract": "cotraitance",
}


@dataclass(frozen=True)
class Actor:
    """A circuit actor that is no directory structure: ``relais actors add --siret --name --role``."""

    siret: str
    name: str
    role: str  # titulaire | mandataire | moe | moa


@dataclass(frozen=True)
class Deposit:
    """One step of a circuit set: the pieces one kind of depositor drops, in this order among the steps."""

    order: int
    framework: str  # the code written to BT-23
    depositor: str  # French: who drops these pieces
    partner: str  # a drop zone name for that depositor
    specs: tuple[InvoiceSpec, ...]
    then: str  # French: what the circuit's actors do once these pieces are processed

    @property
    def folder(self) -> str:
        return f"{self.order}-{self.framework}-{self.partner}"


@dataclass(frozen=True)
class CircuitSet:
    kind: CircuitKind
    deposits: tuple[Deposit, ...]
    actors: tuple[Actor, ...]


def _pool(rng: random.Random, names: tuple[str, ...], n: int) -> list[tuple[str, str]]:
    """Up to `n` private companies `(siret, name)` with distinct valid SIRETs."""
    out: dict[str, str] = {}
    for name in names[: max(1, min(n, len(names)))]:
        siret = _make_siret(rng, rng.choice("3456789"))
        while siret in out:
            siret = _make_siret(rng, rng.choice("3456789"))
        out[siret] = name
    return list(out.items())


@dataclass(frozen=True)
class _File:
    """The parties of one billing file."""

    number: int
    issue_date: dt.date
    seller: tuple[str, str]
    buyer: Recipient
    service: str | None
    ej: str | None


def _files(
    rng: random.Random, n: int, recipients: list[Recipient], sellers: list[tuple[str, str]], start: int
) -> Iterator[_File]:
    usable = [r for r in recipients if _usable(r)]
    if not usable:
        raise ValueError("no active recipient can receive a billing file")
    for i in range(n):
        buyer = rng.choice(usable)
        service, ej = _satisfying(buyer, rng)
        day = _EPOCH + dt.timedelta(days=(start + i - 1) // 50 % 300)
        yield _File(start + i, day, rng.choice(sellers), buyer, service, ej)


def _spec(f: _File, framework: str, lines: int, days: int = 0, **framing: str | None) -> InvoiceSpec:
    spec = InvoiceSpec(
        number=f"{framework}-{f.number:06d}",
        issue_date=f.issue_date + dt.timedelta(days=days),
        supplier_siret=f.seller[0],
        supplier_name=f.seller[1],
        buyer=f.buyer,
        buyer_siret=f.buyer.siret,
        service_code=f.service,
        ej=f.ej,
        lines=lines,
    )
    return spec.framed(Framing(framework, **framing))


_TITULAIRE, _MOE_DEP, _MOA_DEP = (
    ("le titulaire", "titulaire"),
    ("la maîtrise d'œuvre", "moe"),
    ("la maîtrise d'ouvrage", "moa"),
)
_MOE_TAKES = "la maîtrise d'œuvre le prend en compte (PRISE_EN_COMPTE_MOE)"
_MOA_TAKES = (
    "la maîtrise d'ouvrage (la structure destinataire) le prend en compte puis le transmet "
    "(PRISE_EN_COMPTE_MOA, TRANSMISE_MOA)"
)
_RECIPIENT_TAKES = "le service financier du destinataire le traite comme une facture (SERVICE_FAIT...)"

#: The steps of the works circuits: (framework, days after the first piece, depositor, what follows).
_WORKS_STEPS: dict[str, tuple[tuple[str, int, tuple[str, str], str], ...]] = {
    "works": (
        ("A4", 0, _TITULAIRE, _MOE_TAKES),
        ("A15", 3, _MOE_DEP, _MOA_TAKES),
        ("A19", 7, _MOA_DEP, _RECIPIENT_TAKES),
    ),
    "final": (
        ("A7", 0, _TITULAIRE, _MOE_TAKES),
        ("A18", 10, _MOE_DEP, _MOA_TAKES),
        (
            "A20",
            30,
            _MOA_DEP,
            "le titulaire doit le signer (A_ASSOCIER_FOURNISSEUR) : il dépose son décompte général et définitif",
        ),
        ("A8", 40, _TITULAIRE, _RECIPIENT_TAKES),
    ),
    "tacit": (
        (
            "A7",
            0,
            _TITULAIRE,
            "la maîtrise d'œuvre le reçoit (MISE_A_DISPOSITION_MOE) ; le décompte général n'est pas notifié dans "
            "les délais : le titulaire engage la procédure tacite",
        ),
        (
            "A22",
            45,
            _TITULAIRE,
            "le projet de décompte final est remplacé (REMPLACEE_PAR_A22) ; la maîtrise d'ouvrage (la structure "
            "destinataire) reçoit le projet de décompte général (MISE_A_DISPOSITION_MOA) et ne répond pas",
        ),
        ("A23", 80, _TITULAIRE, _RECIPIENT_TAKES),
    ),
}


def _works(
    kind: CircuitKind, rng: random.Random, n: int, lines: int, recipients: list[Recipient], start: int
) -> CircuitSet:
    """A works circuit (`_WORKS_STEPS`): each piece follows the file's previous one; all name the MOE; the MOA
    is the buyer structure itself, the default (no BG-24 needed)."""
    titulaires = _pool(rng, _BUILDERS, n)
    moes = _pool(rng, _MOES, n)
    moe_of = {s: moes[k % len(moes)] for k, (s, _) in enumerate(titulaires)}
    files = list(_files(rng, n, recipients, titulaires, start))
    deposits: list[Deposit] = []
    before: tuple[InvoiceSpec, ...] | None = None
    for order, (framework, days, (depositor, partner), then) in enumerate(_WORKS_STEPS[kind], 1):
        specs = tuple(
            _spec(f, framework, lines, days, previous=before[k].number if before else None, moe=moe_of[f.seller[0]][0])
            for k, f in enumerate(files)
        )
        deposits.append(Deposit(order, framework, depositor, partner, specs, then))
        before = specs
    used = {f.seller[0] for f in files}
    actors = tuple(Actor(s, name, "titulaire") for s, name in titulaires if s in used)
    actors += tuple(Actor(s, name, "moe") for s, name in moes if any(moe_of[t][0] == s for t in used))
    return CircuitSet(kind, tuple(deposits), actors)


def circuit_set(
    kind: CircuitKind, n: int, lines: int, recipients: list[Recipient], *, seed: int = 1, start: int = 1
) -> CircuitSet:
    """`n` billing files of `kind`, numbered from `start` (``A4-000001``...), deterministic in `seed`."""
    if kind not in CIRCUITS:
        raise ValueError(f"unknown circuit: {kind!r} (one of {', '.join(CIRCUITS)})")
    rng = random.Random(f"circuit:{kind}:{seed}")
    if kind in _WORKS_STEPS:
        return _works(kind, rng, n, lines, recipients, start)
    validators = _pool(rng, _BUILDERS, n)
    sellers = _pool(rng, _TRADES, n)
    validator_of = {s: validators[k % len(validators)] for k, (s, _) in enumerate(sellers)}
    files = list(_files(rng, n, recipients, sellers, start))
    framework, depositor, partner, role = (
        ("A9", "le sous-traitant", "sous-traitant", "titulaire")
        if kind == "subcontract"
        else ("A12", "le cotraitant", "cotraitant", "mandataire")
    )
    specs = tuple(_spec(f, framework, lines, validator_1=validator_of[f.seller[0]][0]) for f in files)
    then = f"le {role} valide (VALIDEE_1) ou refuse (REFUSEE_1) ; validée, la facture va au destinataire"
    used = {validator_of[f.seller[0]][0] for f in files}
    actors = tuple(Actor(s, name, role) for s, name in validators if s in used)
    return CircuitSet(kind, (Deposit(1, framework, depositor, partner, specs, then),), actors)


def actors_csv(actors: tuple[Actor, ...] | list[Actor]) -> str:
    """The ``relais actors import`` file: a header line, then ``siret;name;role`` per actor.

    >>> print(actors_csv([Actor("73282932000074", "Atelier Lambert", "moe")]), end="")
    siret;name;role
    73282932000074;Atelier Lambert;moe
    """
    return "siret;name;role\n" + "".join(f"{a.siret};{a.name.replace(';', ',')};{a.role}\n" for a in actors)


def summary(cs: CircuitSet, batch: Batch) -> list[str]:
    """What to deposit in which order (French), one line per step, the actors first."""
    n = len(cs.deposits[0].specs)
    lines = [f"Circuit {_KIND_FR[cs.kind]} : {n} dossier(s) de facturation, {len(cs.deposits)} dépôt(s) dans l'ordre."]
    roles = ", ".join(sorted({a.role for a in cs.actors}))
    lines.append(f"0. relais actors import {ACTORS_FILE} ({len(cs.actors)} acteur(s) : {roles})")
    what = "fichiers" if batch == "none" else "lot"
    for d in cs.deposits:
        after = " après le traitement du dépôt précédent" if d.order > 1 else ""
        lines.append(
            f"{d.order}. {d.folder}/ : {what} de {len(d.specs)} pièce(s) {d.framework} déposé(s) par {d.depositor}"
            f"{after} ; ensuite {d.then}"
        )
    return lines


@dataclass(frozen=True)
class CircuitFiles:
    deposits: tuple[tuple[Deposit, list[Path]], ...]
    actors: Path
    summary: Path


def write_circuit(out_dir: Path, fmt: Fmt, cs: CircuitSet, batch: Batch = "zip") -> CircuitFiles:
    """One folder per deposit (its pieces as loose files or one archive), ``acteurs.csv``, ``LISEZMOI.txt``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for d in cs.deposits:
        paths = write_specs(out_dir / d.folder, fmt, d.specs, batch, f"{cs.kind}-{d.framework}")
        written.append((d, paths))
    actors = out_dir / ACTORS_FILE
    actors.write_text(actors_csv(cs.actors), encoding="utf-8")
    text = out_dir / SUMMARY_FILE
    text.write_text("\n".join(summary(cs, batch)) + "\n", encoding="utf-8")
    return CircuitFiles(tuple(written), actors, text)


__all__ = [
    "ACTORS_FILE",
    "CIRCUITS",
    "SUMMARY_FILE",
    "Actor",
    "CircuitFiles",
    "CircuitKind",
    "CircuitSet",
    "Deposit",
    "actors_csv",
    "circuit_set",
    "summary",
    "write_circuit",
]
