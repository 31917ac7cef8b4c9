"""Partner configuration: one TOML or YAML file per partner in ``$RELAIS_HOME/partners/``.

Example ``partners/op-a.toml``::

    id = "op-a"
    name = "Opérateur A"
    language = "fr"             # its return flows' free texts: "fr" (the default) or "en"
    mode = "qualification"      # raccordement: judged and answered, nothing delivered; default "production"
    status_vocabulary = "cpp"   # its status return flows' codes: "cpp" (01..13, the default) or "cdar"
    platform_id = "0042"        # a platform of the 2026 reform: its registration number (docs/reform.md);
                                # its CDAR messages are accepted for invoices routed to it, invoices the
                                # reform's directory routes to it are sent to it

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

    [as2]                       # the partner sends to `relais as2 serve` (and/or receives by AS2)
    as2_id = "OPA-AS2"                        # the partner's AS2 id (AS2-From of its messages)
    our_as2_id = "RELAIS"                     # Relais's AS2 id for this partner (AS2-To of its messages)
    partner_cert = "as2/op-a.pem"             # checks its signatures, encrypts what Relais sends it
    our_cert = "as2/relais.pem"               # Relais's certificate and key: decrypts its messages,
    our_key = "as2/relais.key"                # signs MDNs and outbound messages
    our_key_password_env = "RELAIS_AS2_KEY_PASSWORD"   # optional: env variable holding the key password
    url = "https://as2.op-a.example/as2"      # optional: return flows go there by AS2
    mdn = "sync"                              # MDN requested for what Relais sends: "sync" or "async"
    async_mdn_url = "https://relais.example/as2"  # with mdn = "async": where the partner posts the MDNs
    sign = true                               # sign what Relais sends
    encrypt = "aes256-cbc"                    # aes128/192/256-cbc, aes128/192/256-gcm, des-ede3-cbc, "none"
    compress = false
    digest = "sha-256"                        # signature / MIC digest: sha-256, sha-384, sha-512, sha1
    require_signature = true                  # refuse unsigned messages from the partner
    require_encryption = true                 # refuse unencrypted messages from the partner
    max_bytes = 200000000                     # largest message accepted from the partner (HTTP body)

Relative certificate and key paths are read from the partners folder.

``language`` chooses the language of the free texts of the partner's return flows (``LibelleErreur``,
``DescriptionErreur``, ``Motif``): French by default, English with ``"en"``; the official EN 16931 /
BR-FR messages stay verbatim, the structure (schemas/xsd/relais-cppstatut.xsd) is the same.

``mode = "qualification"`` is the raccordement phase before production: the partner's flows are
validated and answered with their return flows exactly as in production, but nothing is delivered to
recipients (no delivery), no invoice counts as deposited (no number taken, no lifecycle after the
verdict, not shown to recipients by the API), and their return flows say so (a first flow-level line
``QUALIFICATION``, file name ``CR_<flow>_<status>_QUALIF.xml``). Each flow records the mode it was
processed in (``flows.qualification``). Ops switch the partner to production with ``relais partners
production P`` or the landing page's button: the switch is stored (``partner_modes``, append-only,
audited) and wins over the file's ``mode``; the partner file may be left as it is.

A recipient structure that receives by EDI (``recevoirDonneesViaEDI`` in the directory, see
docs/directory-formats.md) is configured as a partner whose ``id`` is the structure's SIRET, e.g.
``partners/21750001600019.toml``::

    id = "21750001600019"
    name = "Ville de Paris (EDI)"
    [sftp]                      # its invoices are uploaded to return_dir; or [as2] with a url;
    host = "sftp.paris.example"  # or no section at all: they are written to dropzones/<siret>/out/
    user = "relais"
    private_key = "/etc/relais/keys/paris"
    host_key = "ssh-ed25519 AAAAC3Nza..."
    return_dir = "factures"

Its routed invoices then go by the channel its return flows would take (relais/compose.py,
``edi_delivery``), named ``<invoice id>.xml`` (``.pdf`` for a Factur-X), instead of
``delivery/<siret>/<service>/``; without such a file they go to ``delivery/`` (logged).
Every problem is reported at once, naming the file and the field.

A bad file is that partner's problem, not the others': `load` returns the good partners and, apart,
the problems of every file it could not use (a `PartnerSet`), keyed by partner id, or by file name
when the id cannot be read (unreadable TOML/YAML, an invalid ``id``). A partner id defined by two
files, or an AS2 id claimed by two partners, makes every partner concerned bad: which file is right
cannot be told, and AS2 messages could be filed under the wrong partner. Callers leave the bad
partners out (no SFTP poll, no hosted SFTP account, no AS2 party) and do not take the files of their
folder drop zones either (`PartnerSet.held`): those wait, untouched, until the file is fixed, since
where their answers should go (SFTP, AS2, or the local out/ folder) is what the broken file says.
`load_strict` keeps the old all-or-nothing behaviour (ConfigError naming every problem).
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from flows.domain.errors import ConfigError

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


AS2_ENCRYPTIONS = (
    "aes128-cbc",
    "aes192-cbc",
    "aes256-cbc",
    "aes128-gcm",
    "aes192-gcm",
    "aes256-gcm",
    "des-ede3-cbc",
    "none",
)
AS2_DIGESTS = ("sha-256", "sha-384", "sha-512", "sha1")
#: RFC 4130 §6.2: an AS2 id is 1 to 128 printable ASCII characters (quoted when it holds spaces).
AS2_ID = re.compile(r"^[\x21-\x7e]([\x20-\x7e]{0,126}[\x21-\x7e])?$")


@dataclasses.dataclass(frozen=True)
class As2Config:
    """AS2 with this partner (RFC 4130): its ids, certificates and what Relais asks when it sends."""

    as2_id: str
    our_as2_id: str
    partner_cert: Path
    our_cert: Path
    our_key: Path
    our_key_password_env: str | None = None
    url: str | None = None
    mdn: str = "sync"
    async_mdn_url: str | None = None
    sign: bool = True
    encrypt: str = "aes256-cbc"
    compress: bool = False
    digest: str = "sha-256"
    require_signature: bool = True
    require_encryption: bool = True
    max_bytes: int = 200_000_000

    @property
    def encryption(self) -> str | None:
        """The content encryption algorithm for outbound messages, None when they are not encrypted."""
        return None if self.encrypt == "none" else self.encrypt


@dataclasses.dataclass(frozen=True)
class Partner:
    id: str
    name: str
    sftp: SftpPickup | None = None
    hosted: Hosted | None = None
    as2: As2Config | None = None
    #: The vocabulary of its status return flows: "cpp" (Chorus Pro 01..13) or "cdar" (2026 reform, 200..213).
    status_vocabulary: str = "cpp"
    #: The language of its return flows' free texts (LibelleErreur, DescriptionErreur, Motif): "fr" or "en".
    language: str = "fr"
    #: "qualification" (raccordement: judged and answered, nothing delivered) or "production"; ops' switch
    #: (`relais partners production P`, stored) wins over it.
    mode: str = "production"
    #: A platform of the 2026 reform (PA): its registration number (``GlobalID@schemeID=0238`` in CDAR, the
    #: platform of a line of the reform's directory). None: an operator, not a platform (docs/reform.md).
    platform_id: str | None = None


PLATFORM_ID = re.compile(r"[A-Za-z0-9]{1,20}")
STATUS_VOCABULARIES = ("cpp", "cdar")
LANGUAGES = ("fr", "en")
MODES = ("qualification", "production")


class PartnerFileError(ConfigError):
    """One partner file that cannot be used: its partner id (None when it cannot be read) and its problems."""

    def __init__(self, path: Path, partner_id: str | None, problems: list[str]) -> None:
        self.path = path
        self.partner_id = partner_id
        self.problems = list(problems)
        super().__init__("partner file rejected:\n  " + "\n  ".join(self.problems))


@dataclasses.dataclass(frozen=True, eq=False)
class PartnerSet(Mapping[str, Partner]):
    """The partners of a folder: a mapping of the good ones by id (what callers iterate), and apart the
    problems of the files that could not be used.

    `problems` is keyed by partner id, or by file name when the file's id cannot be read; `files` gives
    the file(s) behind each key. `held` are the partner ids whose folder drop zone files must not be
    taken: every bad partner id, and for a file reported under its name, the id it would have by default
    (its name without the suffix) unless a good file defines that partner.
    """

    partners: dict[str, Partner] = dataclasses.field(default_factory=dict)
    problems: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    files: dict[str, tuple[Path, ...]] = dataclasses.field(default_factory=dict)
    held: frozenset[str] = frozenset()

    def __getitem__(self, partner_id: str) -> Partner:
        return self.partners[partner_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self.partners)

    def __len__(self) -> int:
        return len(self.partners)

    def __repr__(self) -> str:
        return f"PartnerSet(partners={sorted(self.partners)}, problems={sorted(self.problems)})"

    def strict(self) -> dict[str, Partner]:
        """The partners, or ConfigError naming every problem of every bad file (the old `load`)."""
        if self.problems:
            raise ConfigError("\n".join(problem for key in sorted(self.problems) for problem in self.problems[key]))
        return dict(self.partners)

    def report(self, logger: Any, event: str = "partners.bad_file", **fields: Any) -> None:
        """Log one error event per bad partner (or unreadable file), naming every problem."""
        for key in sorted(self.problems):
            logger.error(
                event,
                partner=key,
                files=[p.name for p in self.files.get(key, ())],
                problems=self.problems[key],
                **fields,
            )


def _default_id(path: Path) -> str:
    """The partner id of a file without ``id``: its name up to the first dot."""
    return path.stem.split(".")[0]


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
    before = len(problems)
    if isinstance(raw, dict) and set(raw) - {"authorized_keys"}:
        problems.append(f"{where}: unknown field(s) {', '.join(sorted(set(raw) - {'authorized_keys'}))}")
    keys = raw.get("authorized_keys") if isinstance(raw, dict) else None
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and k.strip() for k in keys):
        problems.append(f"{where}.authorized_keys: a non-empty list of public keys (OpenSSH format)")
        return None
    import asyncssh  # checked here, so that one bad key leaves out its partner, not the whole server

    for i, key in enumerate(keys):
        try:
            asyncssh.import_authorized_keys(key.strip() + "\n")
        except (ValueError, asyncssh.KeyImportError) as e:
            problems.append(f"{where}.authorized_keys[{i}]: not an OpenSSH public key ({e}): {key.strip()[:40]!r}")
    if len(problems) > before:
        return None
    return Hosted(tuple(k.strip() for k in keys))


def _as2(raw: Any, where: str, base: Path, problems: list[str]) -> As2Config | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a table")
        return None
    before = len(problems)
    fields = {f.name for f in dataclasses.fields(As2Config)}
    unknown = set(raw) - fields
    if unknown:
        problems.append(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    for key in ("as2_id", "our_as2_id"):
        value = raw.get(key)
        if not isinstance(value, str) or not AS2_ID.match(value):
            problems.append(f"{where}.{key}: required, 1 to 128 printable ASCII characters (got {value!r})")
    values: dict[str, Any] = {k: v for k, v in raw.items() if k in fields}
    for key in ("partner_cert", "our_cert", "our_key"):
        value = raw.get(key)
        if not isinstance(value, str) or not value:
            problems.append(f"{where}.{key}: required (a PEM file path)")
            continue
        path = Path(value).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            problems.append(f"{where}.{key}: no such file {path}")
        values[key] = path
    env = raw.get("our_key_password_env")
    if env is not None and (not isinstance(env, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", env)):
        problems.append(f"{where}.our_key_password_env: the name of an environment variable")
    for key in ("url", "async_mdn_url"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not re.match(r"^https?://[^/\s]+", value)):
            problems.append(f"{where}.{key}: an http:// or https:// URL (got {value!r})")
    mdn = raw.get("mdn", "sync")
    if mdn not in ("sync", "async"):
        problems.append(f'{where}.mdn: "sync" or "async" (got {mdn!r})')
    elif mdn == "async" and raw.get("url") and not raw.get("async_mdn_url"):
        problems.append(
            f'{where}.async_mdn_url: required with mdn = "async" '
            "(the URL of `relais as2 serve` where the partner posts its MDNs)"
        )
    for key in ("sign", "compress", "require_signature", "require_encryption"):
        if key in raw and not isinstance(raw[key], bool):
            problems.append(f"{where}.{key}: true or false")
    encrypt = raw.get("encrypt", "aes256-cbc")
    if isinstance(encrypt, str):
        encrypt = encrypt.lower()
        values["encrypt"] = encrypt
    if encrypt not in AS2_ENCRYPTIONS:
        problems.append(f"{where}.encrypt: one of {', '.join(AS2_ENCRYPTIONS)} (got {encrypt!r})")
    digest = raw.get("digest", "sha-256")
    normal = {"sha256": "sha-256", "sha384": "sha-384", "sha512": "sha-512", "sha-1": "sha1"}
    if isinstance(digest, str):
        digest = normal.get(digest.lower(), digest.lower())
        values["digest"] = digest
    if digest not in AS2_DIGESTS:
        problems.append(f"{where}.digest: one of {', '.join(AS2_DIGESTS)} (got {digest!r})")
    size = raw.get("max_bytes", 200_000_000)
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        problems.append(f"{where}.max_bytes: a positive whole number of bytes")
    if len(problems) > before:
        return None
    return As2Config(**values)


def parse(path: Path) -> Partner:
    """One partner file; PartnerFileError (a ConfigError) names every problem found in it, and the
    partner id when it could be read."""
    problems: list[str] = []
    try:
        raw = _read(path)
    except (OSError, ValueError, tomllib.TOMLDecodeError, yaml.YAMLError) as e:
        raise PartnerFileError(path, None, [f"{path}: unreadable partner file: {e}"]) from e
    pid = raw.get("id", _default_id(path))
    known_id = pid if isinstance(pid, str) and PARTNER_ID.match(pid) else None
    if known_id is None:
        problems.append(f"{path}: id: letters, digits, '.', '_' or '-', 64 at most (got {pid!r})")
    unknown = set(raw) - {"id", "name", "sftp", "hosted", "as2", "status_vocabulary", "language", "mode", "platform_id"}
    if unknown:
        problems.append(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
    sftp = _sftp(raw.get("sftp"), f"{path}: sftp", problems)
    hosted = _hosted(raw.get("hosted"), f"{path}: hosted", problems)
    as2 = _as2(raw.get("as2"), f"{path}: as2", path.parent, problems)
    vocabulary = raw.get("status_vocabulary", "cpp")
    if vocabulary not in STATUS_VOCABULARIES:
        problems.append(f"{path}: status_vocabulary: one of {', '.join(STATUS_VOCABULARIES)} (got {vocabulary!r})")
    language = raw.get("language", "fr")
    if language not in LANGUAGES:
        problems.append(f"{path}: language: one of {', '.join(LANGUAGES)} (got {language!r})")
    mode = raw.get("mode", "production")
    if mode not in MODES:
        problems.append(f"{path}: mode: one of {', '.join(MODES)} (got {mode!r})")
    platform_id = raw.get("platform_id")
    if platform_id is not None and not (isinstance(platform_id, str) and PLATFORM_ID.fullmatch(platform_id)):
        problems.append(f"{path}: platform_id: 1 to 20 letters or digits, as a string (got {platform_id!r})")
    if problems:
        raise PartnerFileError(path, known_id, problems)
    return Partner(
        id=pid,
        name=str(raw.get("name") or pid),
        sftp=sftp,
        hosted=hosted,
        as2=as2,
        status_vocabulary=vocabulary,
        language=language,
        mode=mode,
        platform_id=platform_id,
    )


def load(folder: Path) -> PartnerSet:
    """Every partner file of `folder` (none when it does not exist): the good partners keyed by id, and
    the problems of the others (module doc). Never raises for a bad file."""
    folder = Path(folder)
    if not folder.is_dir():
        return PartnerSet()
    parsed: dict[Path, Partner] = {}
    files: dict[str, list[Path]] = {}  # key (partner id, or file name) -> its files
    problems: dict[str, list[str]] = {}
    unnamed: list[Path] = []  # files whose partner id cannot be read
    for path in sorted(p for p in folder.iterdir() if p.suffix in (".toml", ".yaml", ".yml")):
        try:
            partner = parse(path)
        except PartnerFileError as e:
            key = e.partner_id or path.name
            problems.setdefault(key, []).extend(e.problems)
            files.setdefault(key, []).append(path)
            if e.partner_id is None:
                unnamed.append(path)
            continue
        parsed[path] = partner
        files.setdefault(partner.id, []).append(path)
    for pid, paths in files.items():
        if len(paths) > 1:
            problems.setdefault(pid, []).append(
                f"{folder}: partner {pid} is defined twice or more: {', '.join(p.name for p in paths)}"
            )
    good = {p.id: p for p in parsed.values() if p.id not in problems}
    as2_owners: dict[str, list[str]] = {}
    for p in good.values():
        if p.as2 is not None:
            as2_owners.setdefault(p.as2.as2_id, []).append(p.id)
    for as2_id, owners in as2_owners.items():
        if len(owners) < 2:
            continue
        for pid in owners:
            others = ", ".join(o for o in owners if o != pid)
            problems.setdefault(pid, []).append(
                f"{files[pid][0]}: as2.as2_id {as2_id!r} is also partner {others}'s "
                "(its AS2 messages could not be told apart)"
            )
            del good[pid]
    unnamed_keys = {p.name for p in unnamed}
    held = {key for key in problems if key not in unnamed_keys}  # bad partner ids
    held |= {_default_id(p) for p in unnamed if _default_id(p) not in good}
    return PartnerSet(
        partners=good,
        problems=problems,
        files={key: tuple(paths) for key, paths in files.items() if key in problems},
        held=frozenset(held),
    )


def load_strict(folder: Path) -> dict[str, Partner]:
    """`load`, all or nothing: ConfigError naming every problem of every bad file."""
    return load(folder).strict()
