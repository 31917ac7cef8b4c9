"""The 2026 reform's directory (annuaire) as values: its lines, addressed by ``SIREN``, ``SIREN_SIRET``,
``SIREN_SIRET_routingCode`` or ``SIREN_suffix``, each naming the platform that receives the invoices of
that address; and what the XP Z12-013 Directory Service tells of them (legal units, facilities,
routing codes). ``flows.directory.reform`` imports them, ``flows.store`` keeps them by version,
``validators.routing`` routes a B2B invoice by the most specific line (docs/reform.md §4).

>>> parse_identifier("702042755_70204275500240_SERV-1")
Address(siren='702042755', siret='70204275500240', routing_identifier='SERV-1', suffix=None)
>>> parse_identifier("702042755_FACTURES").suffix, parse_identifier("702042755").siret
('FACTURES', None)
>>> candidates(Buyer("702042755", "70204275500240", "SERV-1", "FACTURES"))
['702042755_70204275500240_SERV-1', '702042755_70204275500240', '702042755_FACTURES', '702042755']
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

ENABLED, DISABLED, UPCOMING = "Enabled", "Disabled", "Upcoming"
LINE_STATUSES = (ENABLED, DISABLED, UPCOMING)
PLATFORM_TYPES = ("WK", "DFH")  # the contract's recipientPlatformType
SIREN_RE = re.compile(r"[0-9]{9}")
SIRET_RE = re.compile(r"[0-9]{14}")
ROUTING_RE = re.compile(r"[-_/a-zA-Z0-9]{1,100}")  # the contract's routingIdentifier
SUFFIX_RE = re.compile(r"[-_/.a-zA-Z0-9]{1,100}")  # [choice]: the routing identifier's characters and "."
IDENTIFIER_MAX = 125


@dataclasses.dataclass(frozen=True, slots=True)
class Address:
    """The parts of an addressing identifier."""

    siren: str
    siret: str | None = None
    routing_identifier: str | None = None
    suffix: str | None = None

    @property
    def identifier(self) -> str:
        """The addressing identifier these parts make.

        >>> Address("702042755", "70204275500240").identifier, Address("702042755", suffix="X").identifier
        ('702042755_70204275500240', '702042755_X')
        """
        parts = [self.siren, self.siret, self.routing_identifier] if self.siret else [self.siren, self.suffix]
        return "_".join(p for p in parts if p)

    @property
    def specificity(self) -> int:
        """3 SIREN_SIRET_routingCode, 2 SIREN_SIRET, 1 SIREN_suffix, 0 SIREN (the matching order)."""
        if self.siret:
            return 3 if self.routing_identifier else 2
        return 1 if self.suffix else 0


def parse_identifier(text: str) -> Address:
    """The parts of an addressing identifier; ValueError when it is none. After the SIREN, 14 digits that
    start with that SIREN are a SIRET (then an optional ``_routingCode``); anything else is a suffix [choice].

    >>> parse_identifier("70204275500240")
    Traceback (most recent call last):
    ValueError: not an addressing identifier (SIREN, SIREN_SIRET, SIREN_SIRET_routingCode, SIREN_suffix)
    """
    siren, _, rest = text.partition("_")
    if not SIREN_RE.fullmatch(siren) or len(text) > IDENTIFIER_MAX or (_ and not rest):
        raise ValueError("not an addressing identifier (SIREN, SIREN_SIRET, SIREN_SIRET_routingCode, SIREN_suffix)")
    if not rest:
        return Address(siren)
    head, sep, code = rest[:14], rest[14:15], rest[15:]
    if SIRET_RE.fullmatch(head) and head.startswith(siren) and sep in ("", "_"):
        if sep and not ROUTING_RE.fullmatch(code):
            raise ValueError(f"invalid routing code {code!r} (1 to 100 letters, digits, - _ /)")
        return Address(siren, head, code or None)
    if not SUFFIX_RE.fullmatch(rest):
        raise ValueError(f"invalid suffix {rest!r} (1 to 100 letters, digits, - _ / .)")
    return Address(siren, suffix=rest)


@dataclasses.dataclass(frozen=True, slots=True)
class Platform:
    """The platform a line names: its registration number, its name, its type (WK: a platform; DFH)."""

    id: str
    name: str = ""
    type: str = "WK"


@dataclasses.dataclass(frozen=True, slots=True)
class PostalAddress:
    line1: str | None = None
    line2: str | None = None
    line3: str | None = None
    postal_code: str | None = None
    subdivision: str | None = None
    locality: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2


@dataclasses.dataclass(frozen=True, slots=True)
class LegalUnit:
    siren: str
    business_name: str
    entity_type: str = "PrivateVatRegistered"  # Public | PrivateVatRegistered
    status: str = "A"  # A active, C ceased


@dataclasses.dataclass(frozen=True, slots=True)
class Facility:
    siret: str
    name: str
    facility_type: str = "S"  # P head office, S secondary
    status: str = "A"
    address: PostalAddress = PostalAddress()


@dataclasses.dataclass(frozen=True, slots=True)
class RoutingCode:
    siret: str
    routing_identifier: str
    name: str
    status: str = "A"
    identifier_type: str = "0224"  # [choice]: the routing code scheme the reform uses
    manages_legal_commitment: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class DirectoryLine:
    """One line of the reform's directory: an address, its platform, its status and effective dates."""

    address: Address
    platform: Platform
    status: str = ENABLED
    effective_from: dt.date | None = None
    effective_to: dt.date | None = None

    @property
    def identifier(self) -> str:
        return self.address.identifier

    def effective(self, on: dt.date) -> bool:
        """Whether invoices go by this line on `on`: Enabled (from its start), or Upcoming once its date has
        come; never Disabled nor after its end.

        >>> a, p = Address("702042755"), Platform("0042")
        >>> d = dt.date(2026, 9, 1)
        >>> DirectoryLine(a, p, UPCOMING, d).effective(d), DirectoryLine(a, p, UPCOMING, d).effective(d - dt.timedelta(1))
        (True, False)
        >>> DirectoryLine(a, p, DISABLED).effective(d), DirectoryLine(a, p, ENABLED, None, d).effective(d + dt.timedelta(1))
        (False, False)
        """
        if self.status == DISABLED or (self.effective_to is not None and on > self.effective_to):
            return False
        if self.status == UPCOMING:
            return self.effective_from is not None and on >= self.effective_from
        return self.effective_from is None or on >= self.effective_from

    def contract_status(self, on: dt.date) -> str:
        """Enabled / Disabled as the contract's single-line answer says it (Upcoming not yet come: Disabled)."""
        return ENABLED if self.effective(on) else DISABLED


@dataclasses.dataclass(frozen=True, slots=True)
class Buyer:
    """What an invoice tells of its buyer for the reform's routing: SIREN, SIRET, routing code, suffix."""

    siren: str | None
    siret: str | None = None
    routing_identifier: str | None = None
    suffix: str | None = None


def candidates(buyer: Buyer) -> list[str]:
    """The addressing identifiers that may route `buyer`, most specific first."""
    if not buyer.siren:
        return []
    out = []
    if buyer.siret:
        if buyer.routing_identifier:
            out.append(f"{buyer.siren}_{buyer.siret}_{buyer.routing_identifier}")
        out.append(f"{buyer.siren}_{buyer.siret}")
    if buyer.suffix:
        out.append(f"{buyer.siren}_{buyer.suffix}")
    out.append(buyer.siren)
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class Match:
    """The outcome of looking a buyer up: the line that routes it (the most specific effective one), the
    most specific line matching it whatever its status, and whether its SIREN has any line at all."""

    line: DirectoryLine | None
    best: DirectoryLine | None
    siren_known: bool


def choose(buyer: Buyer, found: list[DirectoryLine], on: dt.date, siren_known: bool) -> Match:
    """The `Match` of `buyer` among the lines `found` for its `candidates`.

    >>> p = Platform("0042")
    >>> lines = [DirectoryLine(Address("702042755"), p), DirectoryLine(Address("702042755", "70204275500240"), p, DISABLED)]
    >>> m = choose(Buyer("702042755", "70204275500240"), lines, dt.date(2026, 9, 1), True)
    >>> m.line.identifier, m.best.identifier
    ('702042755', '702042755_70204275500240')
    """
    order = {c: n for n, c in enumerate(candidates(buyer))}
    ranked = sorted((ln for ln in found if ln.identifier in order), key=lambda ln: order[ln.identifier])
    line = next((ln for ln in ranked if ln.effective(on)), None)
    return Match(line, ranked[0] if ranked else None, siren_known or bool(ranked))
