"""Import the 2026 reform's directory (annuaire): its lines, each addressed by ``SIREN``, ``SIREN_SIRET``,
``SIREN_SIRET_routingCode`` or ``SIREN_suffix`` with its receiving platform, status and effective dates, and
what the Directory Service returns of them (legal units, facilities, routing codes). docs/directory-formats.md.

Two formats, told apart by their content:

- a CSV, ``;`` separated, UTF-8 (with or without a BOM), one directory line per record, its header `CSV_HEADER`
  (any order, any case; the optional columns may be left out);
- JSON Lines: one object per line shaped like the contract's ``directoryLinePayload`` (``addressingIdentifier``,
  ``directoryLineStatus``, ``platformType``, ``legalUnit``, ``facility``, ``routingCode``) plus Relais's
  ``platform`` (``{"id", "name"}``), ``effectiveFrom`` and ``effectiveTo`` [choice]; a first line
  ``{"format": "relais-reform-directory/1", "version": "..."}`` may name the version.

A file with any problem imports nothing; every problem names its line, in French (English after it).

>>> rows = parse(b"addressingIdentifier;platformId;platformName;status\\n702042755;0042;PA Une;Enabled\\n")
>>> rows.lines[0].identifier, rows.lines[0].platform.id, rows.units[0].business_name
('702042755', '0042', '702042755')
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from flows.domain import reform_directory as rd
from flows.domain.errors import ConfigError
from flows.store import Store

FORMAT = "relais-reform-directory/1"
MAX_PROBLEMS = 50
CSV_HEADER: tuple[str, ...] = (
    "addressingIdentifier",
    "platformId",
    "platformName",
    "platformType",
    "status",
    "effectiveFrom",
    "effectiveTo",
    "businessName",
    "entityType",
    "facilityName",
    "facilityType",
    "addressLine1",
    "addressLine2",
    "addressLine3",
    "postalCode",
    "locality",
    "countryCode",
    "routingCodeName",
    "routingCodeStatus",
    "managesLegalCommitment",
)
REQUIRED = ("addressingIdentifier", "platformId", "status")
_BY_LOWER = {c.lower(): c for c in CSV_HEADER}


@dataclasses.dataclass
class Parsed:
    version: str | None
    lines: list[rd.DirectoryLine]
    units: list[rd.LegalUnit]
    facilities: list[rd.Facility]
    codes: list[rd.RoutingCode]


class _Collector:
    """Builds the lines and the legal units, facilities and routing codes they name; collects problems."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.lines: dict[str, tuple[int, rd.DirectoryLine]] = {}
        self.units: dict[str, rd.LegalUnit] = {}
        self.facilities: dict[str, rd.Facility] = {}
        self.codes: dict[tuple[str, str], rd.RoutingCode] = {}

    def problem(self, line: int, fr: str, en: str) -> None:
        self.problems.append(f"ligne {line} : {fr} (line {line}: {en})")

    def add(self, n: int, f: dict[str, Any]) -> None:
        ident = _text(f.get("addressingIdentifier"))
        try:
            address = rd.parse_identifier(ident)
        except ValueError as e:
            self.problem(n, f"identifiant d'adressage invalide {ident!r}", str(e))
            return
        platform_id = _text(f.get("platformId"))
        if not platform_id or len(platform_id) > 20 or not platform_id.isalnum():
            self.problem(n, f"immatriculation de plateforme invalide {platform_id!r}", "invalid platform id")
        ptype = _text(f.get("platformType")) or "WK"
        if ptype not in rd.PLATFORM_TYPES:
            self.problem(n, f"type de plateforme inconnu {ptype!r} (WK, DFH)", "unknown platform type")
        status = _text(f.get("status"))
        if status not in rd.LINE_STATUSES:
            self.problem(n, f"statut inconnu {status!r} (Enabled, Disabled, Upcoming)", "unknown status")
        start, end = self._date(n, f, "effectiveFrom"), self._date(n, f, "effectiveTo")
        if status == rd.UPCOMING and start is None:
            self.problem(
                n, "une ligne Upcoming doit avoir une date effectiveFrom", "an Upcoming line needs effectiveFrom"
            )
        if start and end and end < start:
            self.problem(n, "effectiveTo précède effectiveFrom", "effectiveTo before effectiveFrom")
        if ident in self.lines:
            first = self.lines[ident][0]
            self.problem(n, f"identifiant {ident} déjà donné ligne {first}", f"identifier listed twice (line {first})")
            return
        name = _text(f.get("platformName"))[:200]
        line = rd.DirectoryLine(address, rd.Platform(platform_id, name, ptype), status, start, end)
        self.lines[ident] = (n, line)
        self._unit(n, address, f)
        if address.siret:
            self._facility(n, address.siret, f)
        if address.siret and address.routing_identifier:
            self._code(n, address.siret, address.routing_identifier, f)

    def _date(self, n: int, f: dict[str, Any], key: str) -> dt.date | None:
        text = _text(f.get(key))
        if not text:
            return None
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            self.problem(n, f"{key} : date invalide {text!r} (AAAA-MM-JJ)", f"{key}: invalid date (YYYY-MM-DD)")
            return None

    def _unit(self, n: int, a: rd.Address, f: dict[str, Any]) -> None:
        name = _text(f.get("businessName"))[:150]
        kind = _text(f.get("entityType")) or "PrivateVatRegistered"
        if kind not in ("Public", "PrivateVatRegistered"):
            self.problem(n, f"entityType inconnu {kind!r} (Public, PrivateVatRegistered)", "unknown entityType")
        known = self.units.get(a.siren)
        if known is None or (name and known.business_name == a.siren):
            self.units[a.siren] = rd.LegalUnit(a.siren, name or a.siren, kind)

    def _facility(self, n: int, siret: str, f: dict[str, Any]) -> None:
        name = _text(f.get("facilityName"))[:100]
        kind = _text(f.get("facilityType")) or "S"
        if kind not in ("P", "S"):
            self.problem(n, f"facilityType inconnu {kind!r} (P, S)", "unknown facilityType")
        postal = _text(f.get("postalCode"))
        if postal and not (postal.isdigit() and len(postal) <= 5):
            self.problem(n, f"code postal invalide {postal!r}", "invalid postal code")
        country = _text(f.get("countryCode"))
        if country and len(country) != 2:
            self.problem(n, f"code pays invalide {country!r} (ISO 3166, 2 lettres)", "invalid country code")
        address = rd.PostalAddress(
            line1=_text(f.get("addressLine1"))[:255] or None,
            line2=_text(f.get("addressLine2"))[:255] or None,
            line3=_text(f.get("addressLine3"))[:255] or None,
            postal_code=postal or None,
            locality=_text(f.get("locality"))[:100] or None,
            country=country.upper() or None,
        )
        known = self.facilities.get(siret)
        if known is None or (name and known.name == siret):
            self.facilities[siret] = rd.Facility(siret, name or siret, kind, "A", address)

    def _code(self, n: int, siret: str, code: str, f: dict[str, Any]) -> None:
        name = _text(f.get("routingCodeName"))[:100] or code
        status = _text(f.get("routingCodeStatus")) or "A"
        if status not in ("A", "C"):
            self.problem(n, f"routingCodeStatus inconnu {status!r} (A actif, C clos)", "unknown routingCodeStatus")
        manages = _text(f.get("managesLegalCommitment")).lower() in ("true", "1", "oui")
        self.codes[(siret, code)] = rd.RoutingCode(siret, code, name, status, manages_legal_commitment=manages)

    def result(self, version: str | None) -> Parsed:
        if not self.lines and not self.problems:
            self.problems.append("aucune ligne d'annuaire (no directory line)")
        if self.problems:
            shown = self.problems[:MAX_PROBLEMS]
            raise ConfigError("fichier d'annuaire refusé (directory file rejected):\n  " + "\n  ".join(shown))
        return Parsed(
            version,
            [ln for _, ln in self.lines.values()],
            list(self.units.values()),
            list(self.facilities.values()),
            list(self.codes.values()),
        )


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def parse(data: bytes) -> Parsed:
    """The lines of a reform directory file (CSV or JSON Lines); ConfigError names every problem."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError(f"fichier d'annuaire refusé : ligne {line} : pas du texte UTF-8 (not UTF-8 text)") from e
    if text.lstrip().startswith("{"):
        return _parse_jsonl(text)
    return _parse_csv(text)


def _parse_csv(text: str) -> Parsed:
    out = _Collector()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";", strict=True)
    try:
        header = [_BY_LOWER.get(c.strip().lower(), c.strip()) for c in next(reader, [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise ConfigError(
                f"fichier d'annuaire refusé : ligne 1 : colonne(s) manquante(s) {', '.join(missing)} "
                f"(missing column(s); header: {';'.join(CSV_HEADER)})"
            )
        for row in reader:
            n = reader.line_num
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                out.problem(n, f"{len(row)} champs, l'en-tête en a {len(header)}", "field count differs from header")
            else:
                out.add(n, dict(zip(header, row, strict=True)))
            if len(out.problems) > MAX_PROBLEMS:
                break
    except csv.Error as e:
        out.problem(reader.line_num, f"CSV mal formé : {e}", "malformed CSV")
    return out.result(None)


def _member(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _flatten(obj: dict[str, Any]) -> dict[str, Any]:
    """A JSON line (the contract's payload shape) as the CSV's columns."""
    unit, fac, code, platform = (_member(obj, k) for k in ("legalUnit", "facility", "routingCode", "platform"))
    addr = _member(fac, "address")
    ident = obj.get("addressingIdentifier")
    if not ident and obj.get("siren"):  # built from its parts when not given
        parts = (
            [obj.get("siren"), obj.get("siret"), obj.get("routingIdentifier")]
            if obj.get("siret")
            else [
                obj.get("siren"),
                obj.get("addressingSuffix"),
            ]
        )
        ident = "_".join(str(p) for p in parts if p)
    manages = code.get("managesLegalCommitment")
    return {
        "addressingIdentifier": ident,
        "platformId": platform.get("id"),
        "platformName": platform.get("name"),
        "platformType": obj.get("platformType"),
        "status": obj.get("directoryLineStatus"),
        "effectiveFrom": obj.get("effectiveFrom"),
        "effectiveTo": obj.get("effectiveTo"),
        "businessName": unit.get("businessName"),
        "entityType": unit.get("entityType"),
        "facilityName": fac.get("name"),
        "facilityType": fac.get("facilityType"),
        "addressLine1": addr.get("addressLine1"),
        "addressLine2": addr.get("addressLine2"),
        "addressLine3": addr.get("addressLine3"),
        "postalCode": addr.get("postalCode"),
        "locality": addr.get("locality"),
        "countryCode": addr.get("countryCode"),
        "routingCodeName": code.get("routingCodeName"),
        "routingCodeStatus": code.get("administrativeStatus"),
        "managesLegalCommitment": "true" if manages is True else "",
    }


def _parse_jsonl(text: str) -> Parsed:
    out = _Collector()
    version: str | None = None
    first = True
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError) as e:
            out.problem(n, f"JSON invalide : {e}", "invalid JSON")
            continue
        if not isinstance(obj, dict):
            out.problem(n, "pas un objet JSON", "not a JSON object")
            first = False
            continue
        if "format" in obj:
            if obj.get("format") != FORMAT or not first:
                out.problem(
                    n, f'en-tête inattendu : seule la première ligne peut dire "format": "{FORMAT}"', "bad header"
                )
            elif isinstance(obj.get("version"), str) and obj["version"].strip():
                version = obj["version"].strip()[:100]
            first = False
            continue
        first = False
        out.add(n, _flatten(obj))
        if len(out.problems) > MAX_PROBLEMS:
            break
    return out.result(version)


def import_file(store: Store, path: Path) -> tuple[str, int]:
    """Import a reform directory file as a new version; (version, number of lines)."""
    data = Path(path).read_bytes()
    parsed = parse(data)
    digest = hashlib.sha256(data).hexdigest()
    version = parsed.version or digest[:12]
    try:
        store.import_reform_directory(version, digest, parsed.lines, parsed.units, parsed.facilities, parsed.codes)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    return version, len(parsed.lines)
