"""How the partner commands show partners (``relais partners``, ``relais as2 partners``, ``relais as2 serve``):
the partner files with their bad ones apart, AS2 rows with their certificates' expiry, where return flows go."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click

from relais.settings import Settings

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

    from connectors.partners import Partner, PartnerSet


def load_partners(settings: Settings) -> PartnerSet:
    """The partners (connectors.partners.PartnerSet): the good ones, and apart the bad files' problems
    (a bad file does not stop the others; each command says how it shows them)."""
    from connectors import partners as partners_config

    return partners_config.load(settings.partners_dir)


def echo_bad(found: PartnerSet, indent: str = "  ", err: bool = False) -> None:
    """Each bad partner (or unreadable file) with every problem, marked BAD."""
    for key in sorted(found.problems):
        line = (
            f"{indent}BAD {key} : fichier de partenaire non chargé : ni relevé, ni servi, ni lu jusqu'à sa correction"
        )
        click.echo(click.style(line, fg="red"), err=err)
        for problem in found.problems[key]:
            click.echo(click.style(f"{indent}  ! {problem}", fg="yellow"), err=err)


def cert_line(cert: Certificate, now: dt.datetime) -> tuple[str, bool]:
    """'until 2027-01-31 (432 days)' and whether it needs attention (expired or within 30 days)."""
    from connectors.as2.station import EXPIRY_WARNING_DAYS

    end = cert.not_valid_after_utc
    days = (end - now).days
    if end <= now:
        return f"EXPIRED on {end:%Y-%m-%d}", True
    if cert.not_valid_before_utc > now:
        return f"not valid before {cert.not_valid_before_utc:%Y-%m-%d}", True
    return f"until {end:%Y-%m-%d} ({days} days)", days < EXPIRY_WARNING_DAYS


def as2_rows(partners: PartnerSet) -> list[dict[str, Any]]:
    """One row per AS2 partner: ids, endpoint, certificates with their expiry and problems."""
    from connectors.as2 import certs
    from connectors.as2.station import certificate_warnings, load_party
    from flows.domain.errors import ConfigError

    now = dt.datetime.now(dt.UTC)
    rows = []
    for p in sorted(partners.values(), key=lambda p: p.id):
        if p.as2 is None:
            continue
        cfg = p.as2
        row: dict[str, Any] = {
            "partner": p.id,
            "as2_id": cfg.as2_id,
            "our_as2_id": cfg.our_as2_id,
            "url": cfg.url,
            "mdn": cfg.mdn,
            "sign": cfg.sign,
            "encrypt": cfg.encrypt,
            "compress": cfg.compress,
            "certificates": {},
            "problems": [],
        }
        for whose, path in (("partner", cfg.partner_cert), ("ours", cfg.our_cert)):
            try:
                cert = certs.load_cert(path)
            except ConfigError as e:
                row["problems"].append(str(e))
                continue
            text, attention = cert_line(cert, now)
            row["certificates"][whose] = {
                "path": str(path),
                "subject": cert.subject.rfc4514_string(),
                "not_after": cert.not_valid_after_utc.isoformat(),
                "validity": text,
                "attention": attention,
            }
        try:
            row["problems"].extend(certificate_warnings(load_party(p)))
        except ConfigError as e:
            row["problems"].append(str(e))
        rows.append(row)
    return rows


def print_as2_row(row: dict[str, Any], indent: str = "  ") -> None:
    for whose, c in row["certificates"].items():
        line = f"{indent}certificat {whose} {c['subject']} : {c['validity']}"
        click.echo(click.style(line, fg="red") if c["attention"] else line)
    for problem in row["problems"]:
        click.echo(click.style(f"{indent}! {problem}", fg="yellow"))


def return_target(settings: Settings, partner: Partner) -> str:
    """Where this partner's return flows go: asked of the registered channels (relais/compose.py)."""
    from relais.compose import channels

    address = channels(settings, lambda: {partner.id: partner}).return_address(partner.id, "_")
    folder = address.destination.rpartition("/")[0]
    if address.channel == "as2" and partner.as2 is not None:
        return f"AS2 {partner.as2.url}"
    if address.channel == "sftp":
        return f"SFTP {folder or '.'}"
    return folder
