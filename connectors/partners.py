"""Partner configuration: one TOML or YAML file per partner in ``$RELAIS_HOME/partners/``.

Example ``partners/op-a.toml``::

    id = "op-a"
    name = "Opérateur A"

    [sftp]                      # Relais polls the partner's SFTP server
    host = "sftp.op-a.example"
    port = 22
    user = "relais"
    private_key = "/etc/relais/keys/op-a"     # or: airflow_conn_id = "sftp_op_a"
    host_key = "ssh-ed25519 AAAAC3Nza..."     # pinned; or known_hosts = "/etc/relais/known_hosts"
    pickup_dir = "outbound"                   # where the partner leaves its files
    return_dir = "inbound"                    # where Relais puts the return flows
    processed_dir = "processed"               # picked-up files are moved here ("" = deleted)
    poll_seconds = 60
    patterns = ["*.xml", "*.zip", "*.tar.gz", "*.pdf"]
    done_marker = ".done"                     # optional: FILE is complete once FILE.done exists

    [hosted]                    # the partner logs in to `relais sftp serve`
    authorized_keys = ["ssh-ed25519 AAAAC3Nza... op-a@host"]

Every problem is reported at once, naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from flows.errors import ConfigError

PARTNER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DEFAULT_PATTERNS = ("*",)


@dataclasses.dataclass(frozen=True)
class SftpPickup:
    """A partner's SFTP server that Relais polls (and writes return flows to)."""

    host: str = ""  # may come from the Airflow connection (airflow_conn_id)
    user: str = ""
    port: int = 22
    private_key: Path | None = None
    host_key: str | None = None
    known_hosts: Path | None = None
    airflow_conn_id: str | None = None
    pickup_dir: str = "outbound"
    return_dir: str = "inbound"
    processed_dir: str = "processed"  # "" deletes picked-up files instead
    poll_seconds: float = 60.0
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    done_marker: str | None = None


@dataclasses.dataclass(frozen=True)
class Hosted:
    """The partner logs in to Relais's own SFTP service with one of these keys."""

    authorized_keys: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Partner:
    id: str
    name: str
    sftp: SftpPickup | None = None
    hosted: Hosted | None = None


def _read(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        return tomllib.loads(text)
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError("the file must hold a mapping")
    return data


def _sftp(raw: Any, where: str, problems: list[str]) -> SftpPickup | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a table")
        return None
    fields = {f.name for f in dataclasses.fields(SftpPickup)}
    unknown = set(raw) - fields
    if unknown:
        problems.append(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    for required in ("host", "user"):
        if raw.get("airflow_conn_id") and required not in raw:
            continue  # taken from the Airflow connection
        if not isinstance(raw.get(required), str) or not raw.get(required):
            problems.append(f"{where}.{required}: required (text)")
    if not (raw.get("private_key") or raw.get("airflow_conn_id")):
        problems.append(f"{where}: give private_key (a key file) or airflow_conn_id")
    if not (raw.get("host_key") or raw.get("known_hosts") or raw.get("airflow_conn_id")):
        problems.append(f"{where}: pin the server's key with host_key or known_hosts")
    port = raw.get("port", 22)
    if not isinstance(port, int) or not 0 < port < 65536:
        problems.append(f"{where}.port: must be a port number")
    poll = raw.get("poll_seconds", 60)
    if not isinstance(poll, (int, float)) or poll <= 0:
        problems.append(f"{where}.poll_seconds: must be a positive number")
    patterns = raw.get("patterns", list(DEFAULT_PATTERNS))
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
        problems.append(f"{where}.patterns: must be a list of file name patterns")
        patterns = list(DEFAULT_PATTERNS)
    for key in ("pickup_dir", "return_dir", "processed_dir"):
        value = raw.get(key, "")
        if not isinstance(value, str) or ".." in value.split("/"):
            problems.append(f"{where}.{key}: must be a folder path without '..'")
    if unknown or any(p.startswith(where) for p in problems):
        return None
    values = {k: v for k, v in raw.items() if k in fields}
    values["patterns"] = tuple(patterns)
    for key in ("private_key", "known_hosts"):
        if values.get(key):
            values[key] = Path(values[key]).expanduser()
    return SftpPickup(**values)


def _hosted(raw: Any, where: str, problems: list[str]) -> Hosted | None:
    if raw is None:
        return None
    keys = raw.get("authorized_keys") if isinstance(raw, dict) else None
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and k.strip() for k in keys):
        problems.append(f"{where}.authorized_keys: a non-empty list of public keys (OpenSSH format)")
        return None
    return Hosted(tuple(k.strip() for k in keys))


def parse(path: Path) -> Partner:
    """One partner file; ConfigError names every problem found in it."""
    problems: list[str] = []
    try:
        raw = _read(path)
    except (OSError, ValueError, tomllib.TOMLDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: unreadable partner file: {e}") from e
    pid = raw.get("id", path.stem.split(".")[0])
    if not isinstance(pid, str) or not PARTNER_ID.match(pid):
        problems.append(f"{path}: id: letters, digits, '.', '_' or '-', 64 at most (got {pid!r})")
    unknown = set(raw) - {"id", "name", "sftp", "hosted"}
    if unknown:
        problems.append(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
    sftp = _sftp(raw.get("sftp"), f"{path}: sftp", problems)
    hosted = _hosted(raw.get("hosted"), f"{path}: hosted", problems)
    if problems:
        raise ConfigError("partner file rejected:\n  " + "\n  ".join(problems))
    return Partner(id=pid, name=str(raw.get("name") or pid), sftp=sftp, hosted=hosted)


def load(folder: Path) -> dict[str, Partner]:
    """Every partner file of `folder` (none when it does not exist), keyed by partner id."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    partners: dict[str, Partner] = {}
    problems: list[str] = []
    for path in sorted(p for p in folder.iterdir() if p.suffix in (".toml", ".yaml", ".yml")):
        try:
            partner = parse(path)
        except ConfigError as e:
            problems.append(str(e))
            continue
        if partner.id in partners:
            problems.append(f"{path}: partner {partner.id} is defined twice")
        partners[partner.id] = partner
    if problems:
        raise ConfigError("\n".join(problems))
    return partners
