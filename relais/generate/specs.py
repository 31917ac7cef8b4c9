"""Invoice specs: suppliers and the deterministic `plan` of what each invoice says."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from relais.generate.constants import _EPOCH, ROUTING_DEFECTS, XSD_DEFECTS
from relais.generate.directory import Recipient, _make_siret


@dataclass(frozen=True)
class InvoiceSpec:
    """What one generated invoice says, before it is rendered in a syntax.

    `buyer` is the directory entry the sender meant (its name is written) or
    None when the SIRET belongs to no entry (`unknown-siret`); `buyer_siret`
    is what is written as the buyer SIRET (differs from `buyer.siret` for
    `bad-siret-checksum`). `defect` is None for a correct invoice, else one of
    `DEFECTS`.
    """

    number: str
    issue_date: dt.date
    supplier_siret: str
    supplier_name: str
    buyer: Recipient | None
    buyer_siret: str
    service_code: str | None
    ej: str | None
    lines: int
    currency: str = "EUR"
    credit_note: bool = False
    defect: str | None = None
    framework: str | None = None  # BT-23 as written: "A4" or a long API name; None: none written (A1)
    previous: str | None = None  # BT-25: the number of the piece this one follows
    supporting: tuple[tuple[str, str], ...] = ()  # BG-24: (role, SIRET), role VALIDEUR / VALIDEUR_2 / MOE / MOA

    def framed(self, framing: Framing | None) -> InvoiceSpec:
        """This spec with `framing`'s BT-23, BT-25 and BG-24 (unchanged for None)."""
        if framing is None:
            return self
        return dataclasses.replace(
            self, framework=framing.framework, previous=framing.previous, supporting=framing.supporting
        )

    @property
    def correct(self) -> bool:
        return self.defect is None

    @property
    def xsd_valid(self) -> bool:
        return self.defect not in XSD_DEFECTS


#: BG-24 roles (BT-123, document description) naming a circuit's actors (docs/billing-frameworks.md §1).
ROLES: tuple[str, ...] = ("VALIDEUR", "VALIDEUR_2", "MOE", "MOA")


@dataclass(frozen=True)
class Framing:
    """What a piece says of its billing framework and circuit: BT-23, BT-25 and the actors (BG-24).

    >>> Framing("A9", validator_1="12345678200010").supporting
    (('VALIDEUR', '12345678200010'),)
    """

    framework: str | None = None
    previous: str | None = None
    validator_1: str | None = None
    validator_2: str | None = None
    moe: str | None = None
    moa: str | None = None

    @property
    def supporting(self) -> tuple[tuple[str, str], ...]:
        """(role, SIRET) of every actor named, in `ROLES` order."""
        named = (self.validator_1, self.validator_2, self.moe, self.moa)
        return tuple((role, siret) for role, siret in zip(ROLES, named, strict=True) if siret)


_SUPPLIER_NAMES: tuple[str, ...] = (
    "Papeterie Martin SARL",
    "Bureautique Lefèvre SAS",
    "Informatique Services Ouest SAS",
    "Nettoyage Propreté Dubois",
    "Fournitures Scolaires Bernard SA",
    "Transports Girard & Fils",
    "Restauration Collective Roux SAS",
    "Électricité Générale Moreau",
)


@lru_cache(maxsize=64)
def sample_suppliers(n: int = 6, seed: int = 1) -> tuple[tuple[str, str], ...]:
    """`n` private suppliers as `(siret, name)`, valid SIRETs (SIREN prefix 3-9)."""
    rng = random.Random(f"suppliers:{seed}")
    names = rng.sample(_SUPPLIER_NAMES, min(n, len(_SUPPLIER_NAMES)))
    names += [f"Fournisseur {i:03d} SAS" for i in range(len(names) + 1, n + 1)]
    return tuple((_make_siret(rng, rng.choice("3456789")), name) for name in names)


def _ej(rng: random.Random) -> str:
    """A commitment number (numéro d'engagement juridique): 10 digits."""
    return str(rng.randrange(1_300_000_000, 1_400_000_000))


def _satisfying(r: Recipient, rng: random.Random) -> tuple[str | None, str | None]:
    """(service code, EJ) meeting the requirements of active recipient `r`."""
    active = r.active_services
    service = ej = None
    if r.service_code_required:
        service = rng.choice(active)
    if r.ej_required:
        ej = _ej(rng)
    if r.ej_or_service and service is None and ej is None:
        if active and rng.random() < 0.5:
            service = rng.choice(active)
        else:
            ej = _ej(rng)
    if not (r.service_code_required or r.ej_required or r.ej_or_service):
        if active and rng.random() < 0.3:
            service = rng.choice(active)
        if rng.random() < 0.2:
            ej = _ej(rng)
    return service, ej


def _usable(r: Recipient) -> bool:
    """Can receive a correct invoice."""
    return r.active and (not r.service_code_required or bool(r.active_services))


def _usable_if_active(r: Recipient) -> bool:
    """Could receive a correct invoice, were it active."""
    return not r.service_code_required or bool(r.active_services)


def _routing_candidates(recipients: Sequence[Recipient]) -> dict[str, list[Recipient]]:
    """For each routing defect, the recipients it can be played on (empty = any)."""
    usable = [r for r in recipients if _usable(r)]
    return {
        "unknown-siret": [],
        "bad-siret-checksum": list(recipients),
        "missing-service": [r for r in usable if r.service_code_required],
        "missing-ej": [r for r in usable if r.ej_required],
        "inactive-recipient": [r for r in recipients if not r.active and _usable_if_active(r)],
        "unknown-service": [r for r in usable if r.services],
        "inactive-service": [r for r in usable if r.service_code_required and r.inactive_services],
    }


def _unknown_siret(rng: random.Random, known: set[str]) -> str:
    while True:
        siret = _make_siret(rng, "21")
        if siret not in known:
            return siret


def _break_checksum(siret: str) -> str:
    """Change the last digit: any single-digit change breaks the Luhn sum."""
    return siret[:-1] + str((int(siret[-1]) + 1) % 10)


def plan(
    n: int,
    lines: int,
    recipients: list[Recipient],
    invalid_ratio: float = 0.0,
    misrouted_ratio: float = 0.0,
    seed: int = 1,
    start: int = 1,
    *,
    credit_note_ratio: float = 0.0,
) -> Iterator[InvoiceSpec]:
    """Stream `n` invoice specs numbered INV-{start:06d}..., deterministic in `seed`.

    Each invoice independently gets an XSD defect with probability
    `invalid_ratio`, else a routing defect with probability `misrouted_ratio`
    (chosen among those the directory makes possible), else is correct: an
    active recipient with the service code / EJ it requires. Issue dates run
    from 2026-01-05, a few invoices per day.
    """
    if not 0 <= invalid_ratio + misrouted_ratio <= 1:
        raise ValueError("invalid_ratio + misrouted_ratio must lie in [0, 1]")
    if lines < 1:
        raise ValueError("an invoice needs at least one line")
    rng = random.Random(f"plan:{seed}")
    usable = [r for r in recipients if _usable(r)]
    if n and not usable and invalid_ratio + misrouted_ratio < 1:
        raise ValueError("no active recipient can receive a correct invoice")
    candidates = _routing_candidates(recipients)
    routing = [d for d in ROUTING_DEFECTS if d == "unknown-siret" or candidates[d]]
    known = {r.siret for r in recipients}
    suppliers = sample_suppliers(6, seed)
    for i in range(n):
        number = f"INV-{start + i:06d}"
        issue_date = _EPOCH + dt.timedelta(days=(start + i - 1) // 50 % 330)
        supplier_siret, supplier_name = rng.choice(suppliers)
        credit_note = rng.random() < credit_note_ratio
        draw = rng.random()
        defect: str | None = None
        if draw < invalid_ratio:
            defect = rng.choice(XSD_DEFECTS)
        elif draw < invalid_ratio + misrouted_ratio:
            defect = rng.choice(routing)
        buyer: Recipient | None
        if defect is None or defect in XSD_DEFECTS:
            buyer = rng.choice(usable) if usable else rng.choice(recipients)
            service, ej = _satisfying(buyer, rng)
            buyer_siret = buyer.siret
        elif defect == "unknown-siret":
            buyer, buyer_siret, service, ej = None, _unknown_siret(rng, known), None, None
        else:
            buyer = rng.choice(candidates[defect])
            service, ej = _satisfying(buyer, rng)
            buyer_siret = buyer.siret
            if defect == "bad-siret-checksum":
                buyer_siret = _break_checksum(buyer.siret)
            elif defect == "missing-service":
                service = None
            elif defect == "missing-ej":
                ej = None
            elif defect == "unknown-service":
                codes = {c for c, _, _ in buyer.services}
                service = "SRV-INCONNU"
                while service in codes:
                    service += "-X"
            elif defect == "inactive-service":
                service = rng.choice(buyer.inactive_services)
        yield InvoiceSpec(
            number=number,
            issue_date=issue_date,
            supplier_siret=supplier_siret,
            supplier_name=supplier_name,
            buyer=buyer,
            buyer_siret=buyer_siret,
            service_code=service,
            ej=ej,
            lines=lines,
            credit_note=credit_note,
            defect=defect,
        )
