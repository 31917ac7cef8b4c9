"""Sample directory of French public structures: recipients, SIRETs, import document."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from stdnum import luhn

from relais.generate.constants import DIRECTORY_FORMAT


@dataclass(frozen=True)
class Recipient:
    """One public structure of the directory (annuaire des structures publiques).

    `services` holds `(code, name, active)` triples.
    """

    siret: str
    name: str
    active: bool = True
    service_code_required: bool = False
    ej_required: bool = False
    ej_or_service: bool = False
    services: tuple[tuple[str, str, bool], ...] = ()

    @property
    def active_services(self) -> tuple[str, ...]:
        return tuple(code for code, _, active in self.services if active)

    @property
    def inactive_services(self) -> tuple[str, ...]:
        return tuple(code for code, _, active in self.services if not active)


_CITIES: tuple[tuple[str, str], ...] = (
    ("Angers", "49000"),
    ("Arras", "62000"),
    ("Auxerre", "89000"),
    ("Besançon", "25000"),
    ("Brest", "29200"),
    ("Colmar", "68000"),
    ("Évreux", "27000"),
    ("Limoges", "87000"),
    ("Lyon", "69003"),
    ("Mâcon", "71000"),
    ("Nancy", "54000"),
    ("Niort", "79000"),
    ("Orléans", "45000"),
    ("Pessac", "33600"),
    ("Poitiers", "86000"),
    ("Quimper", "29000"),
    ("Rodez", "12000"),
    ("Tarbes", "65000"),
    ("Valence", "26000"),
    ("Vannes", "56000"),
)
_STREETS: tuple[str, ...] = (
    "Place de la Mairie",
    "Rue de la République",
    "Avenue Jean Jaurès",
    "Boulevard Gambetta",
    "Rue Pasteur",
    "Allée des Tilleuls",
    "Rue Victor Hugo",
    "Quai des Chartrons",
)
_PEOPLE: tuple[str, ...] = (
    "Victor Hugo",
    "Jean Moulin",
    "Marie Curie",
    "Jules Ferry",
    "Louise Michel",
    "Simone Veil",
    "Albert Camus",
    "George Sand",
    "Condorcet",
    "Paul Éluard",
)
# (name template, SIREN prefix): SIRENs of public bodies start with 1 or 2.
_STRUCTURE_KINDS: tuple[tuple[str, str], ...] = (
    ("Commune {de}{city}", "21"),
    ("Lycée {person} {de}{city}", "19"),
    ("Centre hospitalier {de}{city}", "26"),
    ("Collège {person} {de}{city}", "19"),
    ("Communauté de communes {de}{city}", "20"),
    ("Centre communal d'action sociale {de}{city}", "26"),
    ("Syndicat intercommunal des eaux {de}{city}", "25"),
)
_SERVICE_POOL: tuple[tuple[str, str], ...] = (
    ("FACTURATION", "Service facturation"),
    ("DAF", "Direction des affaires financières"),
    ("ST", "Services techniques"),
    ("RESTAURATION", "Restauration scolaire"),
    ("DSI", "Direction des systèmes d'information"),
    ("ACHATS", "Service des achats"),
    ("PHARMACIE", "Pharmacie centrale"),
)
_CLOSED_SERVICES: tuple[tuple[str, str], ...] = (
    ("ANC-COMPTA", "Ancien service comptabilité (fermé)"),
    ("ANC-REGIE", "Ancienne régie de recettes (fermée)"),
)
# Roles of the first structures, then the cycle used for the rest.
_FIRST_ROLES = ("service", "ej", "ej_or_service", "inactive", "plain", "service_ej")
_MORE_ROLES = ("plain", "service", "ej", "plain", "service_ej")


def _de(city: str) -> str:
    """French elision: "de Lyon" but "d'Angers"."""
    return "d'" if city[0] in "AEIOUYÉÈÂÎ" else "de "


def _luhn_complete(digits: str) -> str:
    return digits + luhn.calc_check_digit(digits)


def _make_siret(rng: random.Random, prefix: str) -> str:
    """A valid SIRET: Luhn-valid SIREN, then Luhn over the 14 digits."""
    while True:
        siren = _luhn_complete(prefix + "".join(rng.choice("0123456789") for _ in range(8 - len(prefix))))
        if siren != "356000000":  # La Poste follows another checksum rule
            break
    return _luhn_complete(siren + f"{rng.randrange(1, 1000):03d}" + rng.choice("0123456789"))


def sample_directory(n: int = 12, seed: int = 1) -> list[Recipient]:
    """`n` realistic public structures with valid SIRETs.

    The first six cover every routing case: a structure requiring a service
    code (two or three services, the last one inactive), one requiring an EJ,
    one accepting either (`ej_or_service`), one inactive structure, one with no
    requirement, one requiring both; the rest cycle through plain, service,
    EJ and both. Only one structure is inactive and only one is `ej_or_service`.
    """
    rng = random.Random(f"directory:{seed}")
    names: set[str] = set()
    sirets: set[str] = set()
    out: list[Recipient] = []
    for i in range(n):
        role = _FIRST_ROLES[i] if i < len(_FIRST_ROLES) else _MORE_ROLES[(i - len(_FIRST_ROLES)) % len(_MORE_ROLES)]
        attempt = 0
        while True:
            template, prefix = _STRUCTURE_KINDS[(i + attempt) % len(_STRUCTURE_KINDS)]
            attempt += 1
            city, _ = rng.choice(_CITIES)
            name = template.format(de=_de(city), city=city, person=rng.choice(_PEOPLE))
            if name not in names:
                break
        siret = _make_siret(rng, prefix)
        while siret in sirets:
            siret = _make_siret(rng, prefix)
        names.add(name)
        sirets.add(siret)
        services: tuple[tuple[str, str, bool], ...] = ()
        if role in ("service", "service_ej"):
            active = rng.sample(_SERVICE_POOL, rng.choice((1, 2)))
            closed = rng.choice(_CLOSED_SERVICES)
            services = tuple((c, lbl, True) for c, lbl in active) + ((closed[0], closed[1], False),)
        elif role == "ej_or_service":
            services = tuple((c, lbl, True) for c, lbl in rng.sample(_SERVICE_POOL, 2))
        out.append(
            Recipient(
                siret=siret,
                name=name,
                active=role != "inactive",
                service_code_required=role in ("service", "service_ej"),
                ej_required=role in ("ej", "service_ej"),
                ej_or_service=role == "ej_or_service",
                services=services,
            )
        )
    return out


def directory_version(now: dt.datetime | None = None) -> str:
    """A new version name for a generated directory, distinct at each call (`relais generate --directory`
    twice, then `relais directory import` of each: two versions; one fixed name made the second refused).

    >>> directory_version(dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC))
    'generated-20260102T030405.678901Z'
    """
    return f"generated-{(now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC):%Y%m%dT%H%M%S.%fZ}"


def directory_document(recipients: list[Recipient], version: str) -> dict:
    """The Relais directory import document (JSON-serialisable)."""
    return {
        "format": DIRECTORY_FORMAT,
        "version": version,
        "structures": [
            {
                "siret": r.siret,
                "name": r.name,
                "active": r.active,
                "service_code_required": r.service_code_required,
                "ej_required": r.ej_required,
                "ej_or_service": r.ej_or_service,
                "services": [{"code": c, "name": lbl, "active": a} for c, lbl, a in r.services],
            }
            for r in recipients
        ],
    }
