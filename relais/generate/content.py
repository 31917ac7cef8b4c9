"""Invoice content shared by the syntaxes: lines, parties, amounts, totals."""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from relais.generate.constants import VAT_RATE
from relais.generate.directory import _CITIES, _STREETS, _de
from relais.generate.specs import InvoiceSpec

_ITEMS: tuple[tuple[str, int, int], ...] = (  # (name, min price cents, max price cents)
    ("Ramette papier A4 80 g (500 feuilles)", 350, 690),
    ("Cartouche d'encre noire", 1890, 4990),
    ("Maintenance informatique (heure)", 6000, 9500),
    ("Classeur à levier dos 80 mm", 190, 450),
    ("Repas restauration scolaire", 350, 520),
    ("Nettoyage des locaux (forfait mensuel)", 45000, 120000),
    ("Licence logicielle annuelle", 9900, 49900),
    ("Câble réseau RJ45 3 m", 290, 790),
    ("Gel hydroalcoolique 500 ml", 250, 690),
    ("Transport de matériel (forfait)", 8000, 25000),
    ("Ampoule LED E27 9 W", 290, 890),
    ("Fauteuil de bureau ergonomique", 12900, 34900),
)


@dataclass(frozen=True, slots=True)
class _Line:
    name: str
    quantity: int
    price: int  # cents

    @property
    def net(self) -> int:
        return self.quantity * self.price


@dataclass(frozen=True, slots=True)
class _Party:
    siret: str
    name: str
    street: str
    city: str
    postcode: str

    @property
    def siren(self) -> str:
        return self.siret[:9]


def _content_rng(spec: InvoiceSpec) -> random.Random:
    return random.Random(zlib.crc32(f"{spec.supplier_siret}|{spec.number}".encode()))


def _lines(spec: InvoiceSpec) -> list[_Line]:
    rng = _content_rng(spec)
    out = []
    for _ in range(spec.lines):
        name, low, high = _ITEMS[rng.randrange(len(_ITEMS))]
        out.append(_Line(name, rng.randint(1, 40), rng.randint(low, high)))
    return out


@lru_cache(maxsize=4096)
def _party(siret: str, name: str) -> _Party:
    """A stable address for a party, in the city its name mentions if any."""
    h = zlib.crc32(siret.encode())
    city, postcode = next(((c, p) for c, p in _CITIES if c in name), _CITIES[h % len(_CITIES)])
    street = f"{h % 97 + 1} {_STREETS[h // 97 % len(_STREETS)]}"
    return _Party(siret, name, street, city, postcode)


def vat_number(siren: str) -> str:
    """French intra-community VAT number of a SIREN: FR + 2-digit key + SIREN."""
    return f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"


@lru_cache(maxsize=256)
def _iban(siret: str) -> str:
    """A well-formed French IBAN (valid RIB key and IBAN check digits)."""
    h = zlib.crc32(b"iban" + siret.encode())
    bank, branch, account = f"{30000 + h % 9000:05d}", f"{h % 99991:05d}", f"{h % 10**11:011d}"
    rib = 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97
    bban = f"{bank}{branch}{account}{rib:02d}"
    check = 98 - int(bban + "152700") % 97  # "FR00" moved to the end, letters as numbers
    return f"FR{check:02d}{bban}"


def _amount(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _bad_amount(cents: int) -> str:
    """French-style decimal comma: not an xsd:decimal."""
    return f"{cents // 100},{cents % 100:02d}"


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True, slots=True)
class _Totals:
    lines: int
    vat: int

    @property
    def with_vat(self) -> int:
        return self.lines + self.vat


def _totals(lines: Sequence[_Line]) -> _Totals:
    net = sum(line.net for line in lines)
    return _Totals(net, (net * VAT_RATE + 50) // 100)


def _buyer_name(spec: InvoiceSpec) -> str:
    if spec.buyer is not None:
        return spec.buyer.name
    city = _CITIES[zlib.crc32(spec.buyer_siret.encode()) % len(_CITIES)][0]
    return f"Commune {_de(city)}{city}"
