"""The platform's own directory shapes: its structure look-up JSON and the CSV export (docs/directory-formats.md).

Both carry the platform's French field names and fill the same `Structure` as
Relais's JSON (`flows.directory.importer`, which detects the format and calls these):

- the JSON structure look-up: a list of structures, or an object holding one
  (``structures``, ``listeStructures``, or its only list), each with
  ``identifiant`` (or ``siret``, ``identifiantStructure``), ``libelleStructure``
  (or ``raisonSociale``), ``estActif`` (or ``statut``: ``ACTIF``/``INACTIF``), the
  flags `FLAGS` (at the top of the structure or in its ``parametres`` object)
  and ``services`` items with ``codeService``, ``libelleService``, ``estActif``;
- the CSV export: one line per (structure, service), the header `CSV_HEADER`,
  ``;`` or ``,`` separated, UTF-8 with or without a BOM; a structure without
  services has one line with an empty ``codeService``.

An optional ``cadresFacturation`` (JSON: a list of codes or one string; CSV: an extra column) lists
the billing frameworks the structure accepts (``A1 A9 A12``, separated by spaces, commas or ``|``);
absent or empty, it accepts them all.

Booleans may be written true/false, "true"/"false", "1"/"0" or "oui"/"non"
(any case); an absent or empty value is the default (``estActif``: true, the
flags: false). Every problem is collected, naming its entry or line.

>>> to_bool("Oui"), to_bool("0"), to_bool(True), to_bool("peut-être")
(True, False, True, None)
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Mapping
from typing import Any

from stdnum.fr import siret as siret_number

from flows.domain.frameworks import Framework
from flows.domain.structures import Structure

MAX_PROBLEMS = 50

#: Platform field -> `Structure` field, for the structure's booleans other than ``estActif``.
FLAGS: dict[str, str] = {
    "codeServiceDoitEtreRenseigne": "service_code_required",
    "numeroEJDoitEtreRenseigne": "ej_required",
    "gestionNumeroEJOuCodeService": "ej_or_service",
    "statutMiseEnPaiementNestPasRemonte": "payment_status_not_reported",
    "recevoirDonneesViaEDI": "receives_by_edi",
}

#: The CSV export's columns, in this order (``;`` separated here; ``,`` works too).
CSV_HEADER: tuple[str, ...] = (
    "identifiant",
    "libelleStructure",
    "estActif",
    *FLAGS,
    "codeService",
    "libelleService",
    "estActifService",
)
#: The optional field (JSON) or column (CSV) of the billing frameworks a structure accepts.
FRAMEWORKS_KEY = "cadresFacturation"

#: Other names accepted for a column (the JSON's alternatives).
CSV_ALIASES = {"siret": "identifiant", "raisonSociale": "libelleStructure", "statut": "estActif"}

_SIRET_KEYS = ("identifiant", "siret", "identifiantStructure")
_NAME_KEYS = ("libelleStructure", "raisonSociale")
_LIST_KEYS = ("structures", "listeStructures")
#: Keys only the platform's JSON has: how a structure list is told from Relais's own format.
PLATFORM_KEYS = frozenset({"identifiant", "identifiantStructure", *_NAME_KEYS, "estActif", *FLAGS})

_TRUE = frozenset({"true", "1", "oui"})
_FALSE = frozenset({"false", "0", "non"})
_NAME_MAX, _CODE_MAX = 300, 100  # flows.store.tables: structures.name, services.code / services.name


class Problems(list[str]):
    """The problems found so far; `full` once there are enough to stop reading."""

    @property
    def full(self) -> bool:
        return len(self) > MAX_PROBLEMS


def to_bool(value: Any) -> bool | None:
    """A platform boolean, None when it is not one (an absent value is the caller's default)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _flag(value: Any, default: bool, where: str, problems: Problems) -> bool:
    if _missing(value):
        return default
    parsed = to_bool(value)
    if parsed is None:
        problems.append(f"{where}: unknown boolean {value!r} (true/false, 1/0, oui/non)")
        return default
    return parsed


def _active(item: Mapping[str, Any], key: str, where: str, problems: Problems) -> bool:
    """``estActif`` (a boolean) or ``statut`` (ACTIF / INACTIF); both given, they must agree."""
    active = _flag(item.get(key), True, f"{where}.{key}", problems)
    status = item.get("statut")
    if _missing(status):
        return active
    word = str(status).strip().upper()
    if word not in ("ACTIF", "INACTIF"):
        problems.append(f"{where}.statut: unknown status {status!r} (ACTIF or INACTIF)")
        return active
    if not _missing(item.get(key)) and active != (word == "ACTIF"):
        problems.append(f"{where}: {key} and statut disagree ({item.get(key)!r}, {status!r})")
    return word == "ACTIF"


def _siret(value: Any, where: str, problems: Problems) -> str:
    siret = str(value if value is not None else "").replace(" ", "").strip()
    if not siret_number.is_valid(siret):
        problems.append(f"{where}: invalid SIRET {value!r}")
    return siret


def frameworks(value: Any, where: str, problems: Problems) -> frozenset[str] | None:
    """The billing frameworks a structure accepts: codes (``A9``, any case) in a list or one string
    separated by spaces, commas or ``|``; None (all of them) when absent or empty.

    >>> p = Problems()
    >>> sorted(frameworks("a1, A9|A12", "x", p)), frameworks("", "x", p), frameworks(["A26"], "x", p), p
    (['A1', 'A12', 'A9'], None, frozenset(), ["x: unknown billing framework 'A26' (A1 to A25)"])
    """
    if _missing(value):
        return None
    items = value if isinstance(value, list) else str(value).replace(",", " ").replace("|", " ").split()
    codes: set[str] = set()
    for item in items:
        code = str(item).strip().upper()
        if code not in Framework.__members__:
            problems.append(f"{where}: unknown billing framework {item!r} (A1 to A25)")
            continue
        codes.add(code)
    return frozenset(codes) if items else None


def _text(value: Any, limit: int, what: str, where: str, problems: Problems) -> str:
    text = str(value).strip() if value is not None else ""
    if not text:
        problems.append(f"{where}: missing {what}")
    elif len(text) > limit:
        problems.append(f"{where}: {what} longer than {limit} characters")
    return text


# ---- the platform's JSON structure look-up -----------------------------------------------------------


def platform_items(doc: Any) -> tuple[str, list[Any]] | None:
    """(where, the structure list) of a platform JSON document, None when `doc` is not one."""
    if isinstance(doc, list):  # Relais's own format is always an object: a list is the platform's
        return "structures", doc
    if isinstance(doc, dict) and "format" not in doc:
        named = [k for k in _LIST_KEYS if isinstance(doc.get(k), list)]
        lists = [k for k, v in doc.items() if isinstance(v, list)]
        key = named[0] if named else (lists[0] if len(lists) == 1 else None)
        if key is None:
            return None
        items, where = doc[key], key
    else:
        return None
    if items and not any(isinstance(i, dict) and PLATFORM_KEYS & set(i) for i in items[:20]):
        return None  # a list of something else (e.g. Relais's own structures without "format")
    return where, items


def parse_platform_json(where: str, items: list[Any], problems: Problems) -> list[Structure]:
    """The structures of the platform's JSON look-up (its list `items`, found at key `where`)."""
    structures: dict[str, Structure] = {}
    first: dict[str, str] = {}
    for n, item in enumerate(items):
        entry = at = f"{where}[{n}]"
        if not isinstance(item, dict):
            problems.append(f"{at}: not an object")
            continue
        given = [item[k] for k in _SIRET_KEYS if not _missing(item.get(k))]
        siret = _siret(given[0] if given else None, at, problems)
        at = f"{entry} (SIRET {siret})" if siret else entry
        if len({str(g).replace(" ", "") for g in given}) > 1:
            problems.append(f"{at}: {' and '.join(k for k in _SIRET_KEYS if k in item)} differ")
        if siret in first:
            problems.append(f"{at}: SIRET listed twice (also {first[siret]})")
        name_given = [item[k] for k in _NAME_KEYS if not _missing(item.get(k))]
        name = _text(name_given[0] if name_given else None, _NAME_MAX, "libelleStructure", at, problems)
        params = item.get("parametres")
        if params is not None and not isinstance(params, dict):
            problems.append(f"{at}.parametres: must be an object")
            params = None
        flags = {
            field: _flag(
                item.get(key, (params or {}).get(key)), False, f"{at}.{key}", problems
            )  # top level first, then "parametres"
            for key, field in FLAGS.items()
        }
        raw_services = item.get("services")
        if raw_services is None:
            raw_services = []
        if not isinstance(raw_services, list):
            problems.append(f"{at}.services: must be a list")
            raw_services = []
        services: dict[str, tuple[str, bool]] = {}
        for m, svc in enumerate(raw_services):
            sat = f"{at}.services[{m}]"
            if not isinstance(svc, dict):
                problems.append(f"{sat}: not an object")
                continue
            code = _text(svc.get("codeService"), _CODE_MAX, "codeService", sat, problems)
            label = str(svc.get("libelleService") or "").strip() or code
            if len(label) > _NAME_MAX:
                problems.append(f"{sat}: libelleService longer than {_NAME_MAX} characters")
            active = _active(svc, "estActif", sat, problems)
            if code in services:
                problems.append(f"{sat}: service {code} listed twice")
            if code:
                services[code] = (label, active)
        first.setdefault(siret, entry)
        structures.setdefault(
            siret,
            Structure(
                siret=siret,
                name=name,
                active=_active(item, "estActif", at, problems),
                services=services,
                frameworks=frameworks(item.get(FRAMEWORKS_KEY), f"{at}.{FRAMEWORKS_KEY}", problems),
                **flags,
            ),
        )
        if problems.full:
            break
    if not items:
        problems.append(f"{where}: no structures")
    return list(structures.values())


# ---- the CSV export ----------------------------------------------------------------------------------


def csv_delimiter(text: str) -> str | None:
    """The separator of a CSV export whose header names the SIRET column, None when `text` is not one."""
    header = text.lstrip("\ufeff").split("\n", 1)[0].strip().lower()
    for delimiter in (";", ","):
        names = {_column(c) for c in header.split(delimiter)}
        if delimiter in header and "identifiant" in names:
            return delimiter
    return None


_BY_LOWER = {c.lower(): c for c in CSV_HEADER} | {a.lower(): c for a, c in CSV_ALIASES.items()}


def _column(name: str) -> str:
    name = name.strip().strip('"').strip()
    return _BY_LOWER.get(name.lower(), name)


@dataclasses.dataclass
class _Seen:
    line: int
    fields: tuple[Any, ...]


def parse_csv(text: str, delimiter: str, problems: Problems) -> list[Structure]:
    """The structures of the CSV export `text` (decoded; its BOM, if any, is dropped here)."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), delimiter=delimiter, strict=True)
    try:
        header = [_column(c) for c in next(reader)]
        rows = _rows(reader)
    except csv.Error as e:
        problems.append(f"line {reader.line_num}: malformed CSV: {e}")
        return []
    missing = [c for c in CSV_HEADER if c not in header]
    twice = sorted({c for c in header if header.count(c) > 1 and c in CSV_HEADER})
    if missing or twice:
        if missing:
            problems.append(f"line 1: missing column(s) {', '.join(missing)} (header: {delimiter.join(CSV_HEADER)})")
        if twice:
            problems.append(f"line 1: column(s) {', '.join(twice)} given twice")
        return []
    index = {c: header.index(c) for c in CSV_HEADER}
    optional = [n for n, c in enumerate(header) if c.lower() == FRAMEWORKS_KEY.lower()]
    extra = optional[0] if optional else None
    structures: dict[str, Structure] = {}
    seen: dict[str, _Seen] = {}
    service_lines: dict[tuple[str, str], int] = {}
    for line, row in rows:
        at = f"line {line}"
        if len(row) != len(header):
            problems.append(f"{at}: {len(row)} fields, the header has {len(header)}")
            continue
        cell = {c: row[i].strip() for c, i in index.items()}
        siret = _siret(cell["identifiant"], f"{at}, identifiant", problems)
        at = f"{at} (SIRET {siret})" if siret else at
        name = _text(cell["libelleStructure"], _NAME_MAX, "libelleStructure", at, problems)
        active = _csv_active(cell["estActif"], at, problems)
        flags = {field: _flag(cell[key], False, f"{at}, {key}", problems) for key, field in FLAGS.items()}
        accepted = frameworks(row[extra].strip(), f"{at}, {FRAMEWORKS_KEY}", problems) if extra is not None else None
        fields = (name, active, *flags.values(), accepted)
        code = cell["codeService"]
        key = (siret, code)
        if key in service_lines:
            what = f"with service {code}" if code else "without a service"
            problems.append(f"{at}: SIRET listed twice {what} (also line {service_lines[key]})")
        service_lines.setdefault(key, line)
        if siret in seen and seen[siret].fields != fields:
            differ = [
                c
                for c, a, b in zip(
                    ("libelleStructure", "estActif", *FLAGS, FRAMEWORKS_KEY), seen[siret].fields, fields, strict=True
                )
                if a != b
            ]
            problems.append(
                f"{at}: SIRET listed again with other structure values than line {seen[siret].line} "
                f"({', '.join(differ)}): a structure's lines must agree"
            )
        seen.setdefault(siret, _Seen(line, fields))
        if siret not in structures:
            structures[siret] = Structure(
                siret=siret, name=name, active=active, services={}, frameworks=accepted, **flags
            )
        if code:
            if len(code) > _CODE_MAX:
                problems.append(f"{at}: codeService longer than {_CODE_MAX} characters")
            label = cell["libelleService"] or code
            if len(label) > _NAME_MAX:
                problems.append(f"{at}: libelleService longer than {_NAME_MAX} characters")
            service_active = _flag(cell["estActifService"], True, f"{at}, estActifService", problems)
            structures[siret].services.setdefault(code, (label, service_active))
        if problems.full:
            break
    if not rows:
        problems.append("line 2: no structures (only a header)")
    return list(structures.values())


def _csv_active(value: str, at: str, problems: Problems) -> bool:
    """The ``estActif`` column: a boolean, or the ``statut`` words ACTIF / INACTIF."""
    if value.upper() in ("ACTIF", "INACTIF"):
        return value.upper() == "ACTIF"
    return _flag(value, True, f"{at}, estActif", problems)


def _rows(reader: Any) -> list[tuple[int, list[str]]]:
    """(first line number, fields) of each non-blank record after the header (a record may span lines)."""
    out: list[tuple[int, list[str]]] = []
    line = reader.line_num
    for row in reader:
        start, line = line + 1, reader.line_num
        if not any(c.strip() for c in row):
            continue  # blank line
        out.append((start, row))
    return out
