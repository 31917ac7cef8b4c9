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

Each import is kept as a version; routing uses the latest, and every flow
records the version it was routed with.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from stdnum.fr import siret as siret_number

from flows.errors import ConfigError
from flows.store import Store, Structure

FORMAT = "relais-directory/1"
_BOOLS = ("active", "service_code_required", "ej_required", "ej_or_service")


def parse(data: bytes) -> tuple[str, list[Structure]]:
    """(version, structures) of a directory file; ConfigError names every problem found."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"directory file is not JSON: {e}") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ConfigError(f'directory file must be a JSON object with "format": "{FORMAT}"')
    items = doc.get("structures")
    if not isinstance(items, list):
        raise ConfigError('directory file has no "structures" list')
    problems: list[str] = []
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
        structures[siret] = Structure(siret=siret, name=str(name or "").strip(), services=services, **flags)
        if len(problems) > 50:
            break
    if problems:
        raise ConfigError("directory file rejected:\n  " + "\n  ".join(problems[:50]))
    version = str(doc.get("version") or hashlib.sha256(data).hexdigest()[:12])
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
