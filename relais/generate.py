"""Deterministic synthetic invoices for tests, demos and load runs.

Everything here is a pure function of its arguments (and `seed`): the same call
gives the same recipients, the same plan and the same XML bytes. The one
exception is the Factur-X PDF, whose bytes carry the generation timestamp that
the factur-x library writes into the PDF metadata (its embedded XML does not).

Pieces:

* `sample_directory` / `directory_document`: a small directory of French
  public structures (valid SIRETs) in the Relais directory import format;
* `plan`: a lazy stream of `InvoiceSpec`, each addressed to a recipient with
  the service code / commitment number (EJ) it requires, a share of them
  carrying a defect (`XSD_DEFECTS` break the schema, `ROUTING_DEFECTS` keep
  it valid but must be refused by the platform rules);
* `invoice_xml` / `facturx_pdf` / `document`: one invoice as UBL 2.1, CII D16B
  (Factur-X EN 16931 profile) or a Factur-X PDF/A-3;
* `write_batch`: many invoices as loose files or one zip / tar.gz, written
  entry by entry to a hidden temporary name then renamed into place.

Amounts are integer cents throughout: lines are quantity x unit price, VAT is
20 % (category S) of the sum of the lines rounded half up, so every correct
invoice satisfies the EN 16931 totals rules (BR-CO-10/13/14/15/16, BR-S-08/09).
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import os
import random
import tarfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from stdnum import luhn

Fmt = Literal["ubl", "cii", "facturx"]
Batch = Literal["none", "zip", "tar.gz"]

#: Defects that make the document fail its XSD (the flow is rejected whole).
XSD_DEFECTS: tuple[str, ...] = ("xsd-amount", "xsd-missing-id")
#: Defects that keep the document XSD-valid but break a platform routing rule.
ROUTING_DEFECTS: tuple[str, ...] = (
    "unknown-siret",
    "bad-siret-checksum",
    "missing-service",
    "missing-ej",
    "inactive-recipient",
    "unknown-service",
    "inactive-service",
)
DEFECTS: tuple[str, ...] = XSD_DEFECTS + ROUTING_DEFECTS

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017"
DIRECTORY_FORMAT = "relais-directory/1"
VAT_RATE = 20  # percent, category S
PAYMENT_DAYS = 30

_EPOCH = dt.date(2026, 1, 5)  # first issue date of a plan
_ZIP_TIME = (2026, 1, 1, 0, 0, 0)
_TAR_MTIME = 1767225600  # 2026-01-01T00:00:00Z


# --------------------------------------------------------------------------- directory


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


# --------------------------------------------------------------------------- plan


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

    @property
    def correct(self) -> bool:
        return self.defect is None

    @property
    def xsd_valid(self) -> bool:
        return self.defect not in XSD_DEFECTS


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


# --------------------------------------------------------------------------- content


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


# --------------------------------------------------------------------------- UBL

_UBL_NS = (
    'xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2" '
    'xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"'
)
_UBL_VAT_CATEGORY = (
    f"<cbc:ID>S</cbc:ID><cbc:Percent>{VAT_RATE}</cbc:Percent>"
    "<cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme>"
)


def _ubl_party(p: _Party, legal_scheme: str, vat: bool) -> str:
    tax = (
        f"<cac:PartyTaxScheme><cbc:CompanyID>{vat_number(p.siren)}</cbc:CompanyID>"
        "<cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>\n"
        if vat
        else ""
    )
    name = _esc(p.name)
    return (
        "<cac:Party>\n"
        f'<cbc:EndpointID schemeID="0009">{p.siret}</cbc:EndpointID>\n'
        f'<cac:PartyIdentification><cbc:ID schemeID="0009">{p.siret}</cbc:ID></cac:PartyIdentification>\n'
        f"<cac:PartyName><cbc:Name>{name}</cbc:Name></cac:PartyName>\n"
        f"<cac:PostalAddress><cbc:StreetName>{_esc(p.street)}</cbc:StreetName>"
        f"<cbc:CityName>{_esc(p.city)}</cbc:CityName><cbc:PostalZone>{p.postcode}</cbc:PostalZone>"
        "<cac:Country><cbc:IdentificationCode>FR</cbc:IdentificationCode></cac:Country></cac:PostalAddress>\n"
        f"{tax}"
        f"<cac:PartyLegalEntity><cbc:RegistrationName>{name}</cbc:RegistrationName>"
        f'<cbc:CompanyID schemeID="{legal_scheme}">{p.siret}</cbc:CompanyID></cac:PartyLegalEntity>\n'
        "</cac:Party>"
    )


def _ubl(spec: InvoiceSpec) -> str:
    lines = _lines(spec)
    totals = _totals(lines)
    cur = f'currencyID="{spec.currency}"'
    root, line_tag, qty_tag = (
        ("CreditNote", "CreditNoteLine", "CreditedQuantity")
        if spec.credit_note
        else ("Invoice", "InvoiceLine", "InvoicedQuantity")
    )
    due = spec.issue_date + dt.timedelta(days=PAYMENT_DAYS)
    seller = _party(spec.supplier_siret, spec.supplier_name)
    buyer = _party(spec.buyer_siret, _buyer_name(spec))
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<{root} xmlns="urn:oasis:names:specification:ubl:schema:xsd:{root}-2" {_UBL_NS}>\n',
        f"<cbc:CustomizationID>{CUSTOMIZATION_ID}</cbc:CustomizationID>\n",
    ]
    if spec.defect != "xsd-missing-id":
        out.append(f"<cbc:ID>{_esc(spec.number)}</cbc:ID>\n")
    out.append(f"<cbc:IssueDate>{spec.issue_date.isoformat()}</cbc:IssueDate>\n")
    if spec.credit_note:
        out.append("<cbc:CreditNoteTypeCode>381</cbc:CreditNoteTypeCode>\n")
    else:
        out.append(f"<cbc:DueDate>{due.isoformat()}</cbc:DueDate>\n")
        out.append("<cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>\n")
    out.append(f"<cbc:DocumentCurrencyCode>{spec.currency}</cbc:DocumentCurrencyCode>\n")
    if spec.service_code is not None:
        out.append(f"<cbc:BuyerReference>{_esc(spec.service_code)}</cbc:BuyerReference>\n")
    if spec.ej is not None:
        out.append(f"<cac:OrderReference><cbc:ID>{_esc(spec.ej)}</cbc:ID></cac:OrderReference>\n")
    out += [
        f"<cac:AccountingSupplierParty>{_ubl_party(seller, '0002', True)}</cac:AccountingSupplierParty>\n",
        f"<cac:AccountingCustomerParty>{_ubl_party(buyer, '0009', False)}</cac:AccountingCustomerParty>\n",
        f"<cac:Delivery><cbc:ActualDeliveryDate>{spec.issue_date.isoformat()}</cbc:ActualDeliveryDate></cac:Delivery>\n",
        "<cac:PaymentMeans><cbc:PaymentMeansCode>30</cbc:PaymentMeansCode>"
        f"<cac:PayeeFinancialAccount><cbc:ID>{_iban(spec.supplier_siret)}</cbc:ID></cac:PayeeFinancialAccount>"
        "</cac:PaymentMeans>\n",
        f"<cac:PaymentTerms><cbc:Note>Paiement à {PAYMENT_DAYS} jours par virement</cbc:Note></cac:PaymentTerms>\n",
        f"<cac:TaxTotal><cbc:TaxAmount {cur}>{_amount(totals.vat)}</cbc:TaxAmount>"
        f"<cac:TaxSubtotal><cbc:TaxableAmount {cur}>{_amount(totals.lines)}</cbc:TaxableAmount>"
        f"<cbc:TaxAmount {cur}>{_amount(totals.vat)}</cbc:TaxAmount>"
        f"<cac:TaxCategory>{_UBL_VAT_CATEGORY}</cac:TaxCategory></cac:TaxSubtotal></cac:TaxTotal>\n",
        "<cac:LegalMonetaryTotal>"
        f"<cbc:LineExtensionAmount {cur}>{_amount(totals.lines)}</cbc:LineExtensionAmount>"
        f"<cbc:TaxExclusiveAmount {cur}>{_amount(totals.lines)}</cbc:TaxExclusiveAmount>"
        f"<cbc:TaxInclusiveAmount {cur}>{_amount(totals.with_vat)}</cbc:TaxInclusiveAmount>"
        f"<cbc:PayableAmount {cur}>{_amount(totals.with_vat)}</cbc:PayableAmount>"
        "</cac:LegalMonetaryTotal>\n",
    ]
    for i, line in enumerate(lines, 1):
        price = _bad_amount(line.price) if i == 1 and spec.defect == "xsd-amount" else _amount(line.price)
        out.append(
            f"<cac:{line_tag}><cbc:ID>{i}</cbc:ID>"
            f'<cbc:{qty_tag} unitCode="C62">{line.quantity}</cbc:{qty_tag}>'
            f"<cbc:LineExtensionAmount {cur}>{_amount(line.net)}</cbc:LineExtensionAmount>"
            f"<cac:Item><cbc:Name>{_esc(line.name)}</cbc:Name>"
            f"<cac:ClassifiedTaxCategory>{_UBL_VAT_CATEGORY}</cac:ClassifiedTaxCategory></cac:Item>"
            f"<cac:Price><cbc:PriceAmount {cur}>{price}</cbc:PriceAmount></cac:Price></cac:{line_tag}>\n"
        )
    out.append(f"</{root}>\n")
    return "".join(out)


# --------------------------------------------------------------------------- CII

_CII_OPEN = (
    '<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100" '
    'xmlns:qdt="urn:un:unece:uncefact:data:standard:QualifiedDataType:100" '
    'xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100" '
    'xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">\n'
)


def _cii_date(d: dt.date) -> str:
    return f'<udt:DateTimeString format="102">{d.strftime("%Y%m%d")}</udt:DateTimeString>'


def _cii_party(tag: str, p: _Party, legal_scheme: str, vat: bool) -> str:
    tax = (
        f'<ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">{vat_number(p.siren)}</ram:ID></ram:SpecifiedTaxRegistration>'
        if vat
        else ""
    )
    return (
        f"<ram:{tag}>"
        f'<ram:GlobalID schemeID="0009">{p.siret}</ram:GlobalID>'
        f"<ram:Name>{_esc(p.name)}</ram:Name>"
        f'<ram:SpecifiedLegalOrganization><ram:ID schemeID="{legal_scheme}">{p.siret}</ram:ID></ram:SpecifiedLegalOrganization>'
        f"<ram:PostalTradeAddress><ram:PostcodeCode>{p.postcode}</ram:PostcodeCode>"
        f"<ram:LineOne>{_esc(p.street)}</ram:LineOne><ram:CityName>{_esc(p.city)}</ram:CityName>"
        "<ram:CountryID>FR</ram:CountryID></ram:PostalTradeAddress>"
        f'<ram:URIUniversalCommunication><ram:URIID schemeID="0009">{p.siret}</ram:URIID></ram:URIUniversalCommunication>'
        f"{tax}</ram:{tag}>\n"
    )


def _cii(spec: InvoiceSpec) -> str:
    lines = _lines(spec)
    totals = _totals(lines)
    seller = _party(spec.supplier_siret, spec.supplier_name)
    buyer = _party(spec.buyer_siret, _buyer_name(spec))
    due = spec.issue_date + dt.timedelta(days=PAYMENT_DAYS)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        _CII_OPEN,
        "<rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter>"
        f"<ram:ID>{CUSTOMIZATION_ID}</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>"
        "</rsm:ExchangedDocumentContext>\n",
        "<rsm:ExchangedDocument>",
    ]
    if spec.defect != "xsd-missing-id":
        out.append(f"<ram:ID>{_esc(spec.number)}</ram:ID>")
    out += [
        f"<ram:TypeCode>{381 if spec.credit_note else 380}</ram:TypeCode>",
        f"<ram:IssueDateTime>{_cii_date(spec.issue_date)}</ram:IssueDateTime></rsm:ExchangedDocument>\n",
        "<rsm:SupplyChainTradeTransaction>\n",
    ]
    for i, line in enumerate(lines, 1):
        price = _bad_amount(line.price) if i == 1 and spec.defect == "xsd-amount" else _amount(line.price)
        out.append(
            "<ram:IncludedSupplyChainTradeLineItem>"
            f"<ram:AssociatedDocumentLineDocument><ram:LineID>{i}</ram:LineID></ram:AssociatedDocumentLineDocument>"
            f"<ram:SpecifiedTradeProduct><ram:Name>{_esc(line.name)}</ram:Name></ram:SpecifiedTradeProduct>"
            "<ram:SpecifiedLineTradeAgreement><ram:NetPriceProductTradePrice>"
            f"<ram:ChargeAmount>{price}</ram:ChargeAmount></ram:NetPriceProductTradePrice></ram:SpecifiedLineTradeAgreement>"
            "<ram:SpecifiedLineTradeDelivery>"
            f'<ram:BilledQuantity unitCode="C62">{line.quantity}</ram:BilledQuantity></ram:SpecifiedLineTradeDelivery>'
            "<ram:SpecifiedLineTradeSettlement><ram:ApplicableTradeTax><ram:TypeCode>VAT</ram:TypeCode>"
            f"<ram:CategoryCode>S</ram:CategoryCode><ram:RateApplicablePercent>{VAT_RATE}</ram:RateApplicablePercent>"
            "</ram:ApplicableTradeTax><ram:SpecifiedTradeSettlementLineMonetarySummation>"
            f"<ram:LineTotalAmount>{_amount(line.net)}</ram:LineTotalAmount>"
            "</ram:SpecifiedTradeSettlementLineMonetarySummation></ram:SpecifiedLineTradeSettlement>"
            "</ram:IncludedSupplyChainTradeLineItem>\n"
        )
    out.append("<ram:ApplicableHeaderTradeAgreement>\n")
    if spec.service_code is not None:
        out.append(f"<ram:BuyerReference>{_esc(spec.service_code)}</ram:BuyerReference>\n")
    out.append(_cii_party("SellerTradeParty", seller, "0002", True))
    out.append(_cii_party("BuyerTradeParty", buyer, "0009", False))
    if spec.ej is not None:
        out.append(
            "<ram:BuyerOrderReferencedDocument>"
            f"<ram:IssuerAssignedID>{_esc(spec.ej)}</ram:IssuerAssignedID></ram:BuyerOrderReferencedDocument>\n"
        )
    out += [
        "</ram:ApplicableHeaderTradeAgreement>\n",
        "<ram:ApplicableHeaderTradeDelivery><ram:ActualDeliverySupplyChainEvent><ram:OccurrenceDateTime>"
        f"{_cii_date(spec.issue_date)}</ram:OccurrenceDateTime></ram:ActualDeliverySupplyChainEvent>"
        "</ram:ApplicableHeaderTradeDelivery>\n",
        "<ram:ApplicableHeaderTradeSettlement>\n",
        f"<ram:InvoiceCurrencyCode>{spec.currency}</ram:InvoiceCurrencyCode>\n",
        "<ram:SpecifiedTradeSettlementPaymentMeans><ram:TypeCode>30</ram:TypeCode>"
        f"<ram:PayeePartyCreditorFinancialAccount><ram:IBANID>{_iban(spec.supplier_siret)}</ram:IBANID>"
        "</ram:PayeePartyCreditorFinancialAccount></ram:SpecifiedTradeSettlementPaymentMeans>\n",
        f"<ram:ApplicableTradeTax><ram:CalculatedAmount>{_amount(totals.vat)}</ram:CalculatedAmount>"
        f"<ram:TypeCode>VAT</ram:TypeCode><ram:BasisAmount>{_amount(totals.lines)}</ram:BasisAmount>"
        f"<ram:CategoryCode>S</ram:CategoryCode><ram:RateApplicablePercent>{VAT_RATE}</ram:RateApplicablePercent>"
        "</ram:ApplicableTradeTax>\n",
        f"<ram:SpecifiedTradePaymentTerms><ram:Description>Paiement à {PAYMENT_DAYS} jours par virement</ram:Description>"
        f"<ram:DueDateDateTime>{_cii_date(due)}</ram:DueDateDateTime></ram:SpecifiedTradePaymentTerms>\n",
        "<ram:SpecifiedTradeSettlementHeaderMonetarySummation>"
        f"<ram:LineTotalAmount>{_amount(totals.lines)}</ram:LineTotalAmount>"
        f"<ram:TaxBasisTotalAmount>{_amount(totals.lines)}</ram:TaxBasisTotalAmount>"
        f'<ram:TaxTotalAmount currencyID="{spec.currency}">{_amount(totals.vat)}</ram:TaxTotalAmount>'
        f"<ram:GrandTotalAmount>{_amount(totals.with_vat)}</ram:GrandTotalAmount>"
        f"<ram:DuePayableAmount>{_amount(totals.with_vat)}</ram:DuePayableAmount>"
        "</ram:SpecifiedTradeSettlementHeaderMonetarySummation>\n",
        "</ram:ApplicableHeaderTradeSettlement>\n",
        "</rsm:SupplyChainTradeTransaction>\n",
        "</rsm:CrossIndustryInvoice>\n",
    ]
    return "".join(out)


def invoice_xml(fmt: Literal["ubl", "cii"], spec: InvoiceSpec) -> bytes:
    """The invoice as UBL 2.1 (Invoice / CreditNote) or CII D16B, UTF-8 bytes."""
    if fmt == "ubl":
        return _ubl(spec).encode()
    if fmt == "cii":
        return _cii(spec).encode()
    raise ValueError(f"not an XML format: {fmt!r}")


# --------------------------------------------------------------------------- Factur-X


@lru_cache(maxsize=1)
def _blank_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)  # A4 portrait, in points
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def facturx_pdf(spec: InvoiceSpec) -> bytes:
    """A Factur-X (EN 16931 profile) PDF/A-3: a blank A4 page + factur-x.xml.

    The page carries no text: an unembedded font would break PDF/A, and the
    invoice number is in the PDF title metadata anyway.
    """
    from facturx import generate_from_binary

    kind = "Avoir" if spec.credit_note else "Facture"
    metadata = {
        "author": spec.supplier_name,
        "keywords": f"{kind}, Factur-X",
        "title": f"{spec.supplier_name}: {kind} {spec.number}",
        "subject": f"{kind} {spec.number} du {spec.issue_date.isoformat()} émise par {spec.supplier_name}",
    }
    return generate_from_binary(
        _blank_pdf(),
        invoice_xml("cii", spec),
        flavor="factur-x",
        level="en16931",
        check_xsd=False,
        pdf_metadata=metadata,
        lang="fr-FR",
    )


def document(fmt: Fmt, spec: InvoiceSpec) -> tuple[str, bytes]:
    """(file name, bytes) of one invoice: "INV-000001.xml" or "INV-000001.pdf"."""
    if fmt == "facturx":
        return f"{spec.number}.pdf", facturx_pdf(spec)
    return f"{spec.number}.xml", invoice_xml(fmt, spec)


# --------------------------------------------------------------------------- batches


def _temp_path(final: Path) -> Path:
    """Hidden sibling name a watcher must ignore (leading dot, ".part" suffix)."""
    return final.with_name(f".{final.name}.part")


def _publish(tmp: Path, final: Path) -> None:
    os.replace(tmp, final)


def write_batch(
    out_dir: Path,
    fmt: Fmt,
    n: int,
    lines: int,
    *,
    batch: Batch = "zip",
    recipients: list[Recipient] | None = None,
    invalid_ratio: float = 0.0,
    misrouted_ratio: float = 0.0,
    seed: int = 1,
    name: str | None = None,
    start: int = 1,
    credit_note_ratio: float = 0.0,
) -> list[Path]:
    """Write `n` invoices into `out_dir`; return the paths written.

    `batch="none"`: one file per invoice. `"zip"` / `"tar.gz"`: one archive
    named `name` (default "{fmt}-{n}x{lines}-s{seed}") plus the extension,
    written entry by entry so only one invoice is in memory at a time.
    Every file is written under a hidden ".<name>.part" name then renamed, so
    a folder watcher never sees a partial file. Archives are byte-reproducible
    (fixed entry times, gzip mtime 0) for UBL and CII.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if recipients is None:
        recipients = sample_directory(seed=seed)
    specs = plan(
        n,
        lines,
        recipients,
        invalid_ratio,
        misrouted_ratio,
        seed=seed,
        start=start,
        credit_note_ratio=credit_note_ratio,
    )
    if batch == "none":
        written = []
        for spec in specs:
            file_name, data = document(fmt, spec)
            final = out_dir / file_name
            tmp = _temp_path(final)
            tmp.write_bytes(data)
            _publish(tmp, final)
            written.append(final)
        return written
    base = name or f"{fmt}-{n}x{lines}-s{seed}"
    if batch == "zip":
        final = out_dir / f"{base}.zip"
        tmp = _temp_path(final)
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for spec in specs:
                file_name, data = document(fmt, spec)
                info = zipfile.ZipInfo(file_name, date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, data)
    elif batch == "tar.gz":
        final = out_dir / f"{base}.tar.gz"
        tmp = _temp_path(final)
        with (
            open(tmp, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for spec in specs:
                file_name, data = document(fmt, spec)
                info = tarfile.TarInfo(file_name)
                info.size = len(data)
                info.mtime = _TAR_MTIME
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
    else:
        raise ValueError(f"unknown batch kind: {batch!r}")
    _publish(tmp, final)
    return [final]
