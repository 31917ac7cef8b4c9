"""Import the recipient directory (annuaire des structures publiques).

Relais's import format mirrors the platform's weekly export, as JSON::

    {
      "format": "relais-directory/1",
      "version": "2026-W47",                 # optional: defaults to the file's SHA-256 prefix
      "structures": [
        {
          "siret": "11000201100044",
          "name": "Commune de Saint-Exemple",
          "active": true,
          "service_code_required": false,     # codeServiceDoitEtreRenseigne
          "ej_required": false,               # numeroEJDoitEtreRenseigne
          "ej_or_service": false,             # gestionNumeroEJOuCodeService
          "services": [{"code": "FACT", "name": "Service facturier", "active": true}]
        }
      ]
    }

Two optional booleans (default false) carry the platform's other flags:
``payment_status_not_reported`` (statutMiseEnPaiementNestPasRemonte) and
``receives_by_edi`` (recevoirDonneesViaEDI). An optional ``frameworks`` list names the billing
frameworks the structure accepts (``["A1", "A9"]``; absent: all of them).

The platform's own shapes are imported too (`flows.directory.formats`,
docs/directory-formats.md): its structure look-up JSON (French field names)
and its CSV export. `parse` tells the three apart by their content, never by
the file's name: a JSON object with ``"format"`` is Relais's; a JSON list of
structures (or an object holding one) with the platform's field names is the
look-up; text whose first line names the ``identifiant`` column is the CSV.

Each import is kept as a version; routing uses the latest, and every flow
records the version it was routed with.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from stdnum.fr import siret as siret_number

from flows.directory import formats
from flows.domain.errors import ConfigError
from flows.store import Store, Structure

FORMAT = "relais-directory/1"
PLATFORM_JSON = "platform-json"
PLATFORM_CSV = "platform-csv"
_BOOLS = ("active", "service_code_required", "ej_required", "ej_or_service")
_EXTRA_BOOLS = ("payment_status_not_reported", "receives_by_edi")  # optional, false by default
_HINT = (
    f'a JSON object with "format": "{FORMAT}", the platform\'s JSON structure look-up, '
    f"or its CSV export (header: {';'.join(formats.CSV_HEADER)})"
)


def detect(data: bytes) -> str:
    r"""Which directory format `data` is (`FORMAT`, `PLATFORM_JSON` or `PLATFORM_CSV`), from its content.

    >>> detect(b'{"format": "relais-directory/1", "structures": []}'), detect(b'[{"identifiant": "1"}]')
    ('relais-directory/1', 'platform-json')
    >>> detect("\ufeffidentifiant;libelleStructure\n".encode())
    'platform-csv'
    """
    return _detect(data)[0]


def _detect(data: bytes) -> tuple[str, Any]:
    """(format, the parsed JSON document or the decoded CSV text)."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"PK\x03\x04"):
        raise ConfigError(f"directory file is a ZIP or XLSX file: export it as CSV ({_HINT})")
    if head.startswith(b"<"):
        raise ConfigError(f"directory file is XML, which is not imported: give {_HINT}")
    if head[:1] in (b"{", b"[") or b"\x00" in head[:4]:  # NUL bytes: UTF-16 or UTF-32 JSON
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError) as e:  # not JSON, not UTF-8/16/32, too deep, an integer too long
            raise ConfigError(f"directory file is not JSON: {e}") from e
        if isinstance(doc, dict) and "format" in doc:
            return FORMAT, doc
        if formats.platform_items(doc) is not None:
            return PLATFORM_JSON, doc
        raise ConfigError(f"directory file must be {_HINT}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        if formats.csv_delimiter(data[:4096].decode("utf-8", "replace")) is not None:
            raise ConfigError(
                f"directory file rejected:\n  line {line}: not UTF-8 text (export the CSV as UTF-8)"
            ) from e
        raise ConfigError(f"directory file is not JSON (nor a CSV export): not UTF-8 text at line {line}") from e
    if formats.csv_delimiter(text) is not None:
        return PLATFORM_CSV, text
    raise ConfigError(f"directory file is not JSON, nor a CSV export: it must be {_HINT}")


def parse(data: bytes) -> tuple[str, list[Structure]]:
    """(version, structures) of a directory file in any format (`detect`); ConfigError names every problem."""
    kind, doc = _detect(data)
    if kind == FORMAT:
        return _parse_relais(data, doc)
    problems = formats.Problems()
    if kind == PLATFORM_JSON:
        found = formats.platform_items(doc)
        assert found is not None
        structures = formats.parse_platform_json(*found, problems)
    else:
        delimiter = formats.csv_delimiter(doc)
        assert delimiter is not None
        structures = formats.parse_csv(doc, delimiter, problems)
    if problems:
        raise ConfigError("directory file rejected:\n  " + "\n  ".join(problems[: formats.MAX_PROBLEMS]))
    given = doc.get("version") if isinstance(doc, dict) else None
    version = str(given) if isinstance(given, str | int) and str(given).strip() else _digest_version(data)
    return version, structures


def _digest_version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def _parse_relais(data: bytes, doc: Any) -> tuple[str, list[Structure]]:
    """Relais's own JSON format (the module doc)."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ConfigError(f'directory file must be a JSON object with "format": "{FORMAT}"')
    items = doc.get("structures")
    if not isinstance(items, list):
        raise ConfigError('directory file has no "structures" list')
    problems = formats.Problems()
    structures: dict[str, Structure] = {}
    for n, item in enumerate(items, 1):
        where = f"structures[{n - 1}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: not an object")
            continue
        siret = str(item.get("siret", "")).replace(" ", "")
        if not siret_number.is_valid(siret):
            problems.append(f"{where}: invalid SIRET {item.get('siret')!r}")
        if siret in structures:
            problems.append(f"{where}: SIRET {siret} listed twice")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{where}: missing name")
        flags: dict[str, bool] = {}
        for key in _BOOLS:
            value = item.get(key, key == "active")
            if not isinstance(value, bool):
                problems.append(f"{where}.{key}: must be true or false")
            flags[key] = bool(value)
        for key in _EXTRA_BOOLS:
            value = item.get(key, False)
            if not isinstance(value, bool):
                problems.append(f"{where}.{key}: must be true or false")
            flags[key] = bool(value)
        services: dict[str, tuple[str, bool]] = {}
        raw_services = item.get("services") or []
        if not isinstance(raw_services, list):
            problems.append(f"{where}.services: must be a list")
            raw_services = []
        for m, svc in enumerate(raw_services):
            code = svc.get("code") if isinstance(svc, dict) else None
            if not isinstance(code, str) or not code.strip():
                problems.append(f"{where}.services[{m}]: missing code")
                continue
            services[code.strip()] = (str(svc.get("name") or code), bool(svc.get("active", True)))
        accepted = formats.frameworks(item.get("frameworks"), f"{where}.frameworks", problems)
        structures[siret] = Structure(
            siret=siret, name=str(name or "").strip(), services=services, frameworks=accepted, **flags
        )
        if len(problems) > 50:
            break
    if problems:
        raise ConfigError("directory file rejected:\n  " + "\n  ".join(problems[:50]))
    version = str(doc.get("version") or _digest_version(data))
    return version, list(structures.values())


def import_file(store: Store, path: Path) -> tuple[str, int]:
    """Import a directory file as a new version; returns (version, number of structures)."""
    data = Path(path).read_bytes()
    version, structures = parse(data)
    try:
        store.import_directory(version, hashlib.sha256(data).hexdigest(), structures)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    return version, len(structures)


def document(version: str, structures: list[dict[str, Any]]) -> dict[str, Any]:
    return {"format": FORMAT, "version": version, "structures": structures}
