"""What both AS2 sides share: a partner's loaded certificates and keys, AS2 ids and header options.

`Party` is a partner's ``[as2]`` section with its certificates loaded once
(`load_parties`), checked, and the expiring ones reported.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import secrets
import socket

from cryptography import x509

from connectors.as2 import certs
from connectors.partners import As2Config, Partner
from flows.domain import log
from flows.domain.errors import ConfigError

_log = log.get("relais.as2")
EXPIRY_WARNING_DAYS = 30


@dataclasses.dataclass(frozen=True)
class Party:
    """A partner that speaks AS2, its certificate and Relais's key pair for it."""

    partner: Partner
    cfg: As2Config
    cert: x509.Certificate
    own: certs.KeyPair

    @property
    def id(self) -> str:
        return self.partner.id


def load_party(partner: Partner) -> Party:
    """Load the certificates and key of `partner`'s ``[as2]`` section (ConfigError when unusable)."""
    cfg = partner.as2
    if cfg is None:
        raise ConfigError(f"partner {partner.id} has no [as2] section")
    password = None
    if cfg.our_key_password_env:
        value = os.environ.get(cfg.our_key_password_env)
        if value is None:
            raise ConfigError(
                f"partner {partner.id}: as2.our_key_password_env names {cfg.our_key_password_env}, which is not set"
            )
        password = value.encode()
    try:
        own = certs.load_keypair(cfg.our_cert, cfg.our_key, password)
        cert = certs.load_cert(cfg.partner_cert)
    except ConfigError as e:
        raise ConfigError(f"partner {partner.id}: {e}") from e
    return Party(partner, cfg, cert, own)


def load_parties(partners: dict[str, Partner]) -> tuple[dict[str, Party], list[str]]:
    """Every AS2 partner keyed by its AS2 id, and the problems of those that could not be loaded.

    Expired, not yet valid or soon expiring certificates are logged (warning) here, once.
    """
    parties: dict[str, Party] = {}
    problems: list[str] = []
    for partner in partners.values():
        if partner.as2 is None:
            continue
        try:
            party = load_party(partner)
        except ConfigError as e:
            problems.append(str(e))
            _log.error("as2.partner_unusable", partner=partner.id, problem=str(e))
            continue
        parties[party.cfg.as2_id] = party
        for problem in certificate_warnings(party):
            _log.warning("as2.certificate", partner=partner.id, problem=problem)
    return parties, problems


def certificate_warnings(party: Party, now: dt.datetime | None = None) -> list[str]:
    """Problems of the partner's and of Relais's certificates, and those expiring within 30 days."""
    found: list[str] = []
    for whose, cert, purposes in (
        ("partner", party.cert, ("signing", "encryption")),
        ("our", party.own.cert, ("signing", "encryption")),
    ):
        seen: set[str] = set()
        for purpose in purposes:
            for problem in certs.problems(cert, purpose=purpose, now=now):  # type: ignore[arg-type]
                if problem not in seen:
                    seen.add(problem)
                    found.append(f"{whose} certificate ({purpose}): {problem}")
        if not seen and certs.expires_within(cert, EXPIRY_WARNING_DAYS, now):
            found.append(
                f"{whose} certificate expires on {cert.not_valid_after_utc:%Y-%m-%d} "
                f"(within {EXPIRY_WARNING_DAYS} days)"
            )
    return found


# ---- AS2 header values --------------------------------------------------------------------


def quote_id(as2_id: str) -> str:
    """An AS2 id as a header value (RFC 4130 §6.2: quoted when it holds spaces or specials)."""
    if re.fullmatch(r"[!#-'*+\-.0-9A-Z^-~]+", as2_id):
        return as2_id
    return '"' + as2_id.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote_id(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def new_message_id(our_id: str) -> str:
    """A fresh, globally unique Message-ID (angle brackets included)."""
    host = re.sub(r"[^A-Za-z0-9.-]", "", socket.gethostname()) or "relais"
    local = re.sub(r"[^A-Za-z0-9.-]", "", our_id)[:40] or "relais"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    return f"<relais-{stamp}-{secrets.token_hex(8)}-{local}@{host}>"


def wants_signed_receipt(disposition_notification_options: str | None) -> bool:
    """True when ``signed-receipt-protocol`` lists ``pkcs7-signature`` (RFC 4130 §7.3), required or optional.

    The digests asked (``signed-receipt-micalg``) are read by `connectors.as2.message.requested_micalgs`.
    """
    for piece in (disposition_notification_options or "").split(";"):
        name, _, rest = piece.partition("=")
        if name.strip().lower() == "signed-receipt-protocol":
            values = [v.strip().strip('"').lower() for v in rest.split(",")]
            return "pkcs7-signature" in values
    return False


def safe_name(name: str | None, fallback: str) -> str:
    """A file name fit for `flows.original_name`: the last path component, safe characters only."""
    base = re.split(r"[/\\]", name or "")[-1]
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")[:200]
    if not base or set(base) <= {"_", "."}:
        base = re.sub(r"[^A-Za-z0-9._-]", "_", fallback.strip("<>"))[:200] or "as2-message"
    return base
