"""How Relais shows its CDAR lifecycle messages (docs/reform.md, "Seeing the messages"): the words of a
message's direction and outcome and of a line's status (French first, English beside), a message as JSON, and
its archived bytes read back only while they match their SHA-256. `relais statuses` (relais/cli/statuses.py),
the web pages (relais/web/views/cdar.py) and the metrics (relais/metrics.py) say the same things with them.

>>> outcome_label("not_sent"), outcome_label("partially_applied", "en")
('non envoyé (incident)', 'partially applied')
>>> status_label("213"), status_label("205", "en"), status_label("999")
('213 Rejetée', '205 Approved', '999')
>>> direction_label("in"), direction_label("out", "en")
('reçu', 'sent')
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from flows.domain.cdar import STATUSES

if TYPE_CHECKING:
    from archive import Archive
    from flows.store.cdar import CdarRecord

#: outcome -> (French, English); `flows.store.cdar.Outcome`'s values.
OUTCOMES: dict[str, tuple[str, str]] = {
    "queued": ("en file d'envoi", "queued"),
    "not_sent": ("non envoyé (incident)", "not sent (incident)"),
    "applied": ("appliqué", "applied"),
    "partially_applied": ("appliqué en partie", "partially applied"),
    "refused": ("refusé", "refused"),
}
#: The outcomes that need someone: a message never sent (an incident), a received one refused.
ALERTS = frozenset({"not_sent"})
DIRECTIONS: dict[str, tuple[str, str]] = {"in": ("reçu", "received"), "out": ("envoyé", "sent")}
#: A line's outcome -> (French, English).
LINE_OUTCOMES: dict[str, tuple[str, str]] = {
    "written": ("écrite", "written"),
    "applied": ("appliquée", "applied"),
    "refused": ("refusée", "refused"),
}


def _said(table: dict[str, tuple[str, str]], key: str, lang: str) -> str:
    found = table.get(key)
    return key if found is None else found[1 if lang == "en" else 0]


def outcome_label(outcome: str, lang: str = "fr") -> str:
    return _said(OUTCOMES, str(outcome), lang)


def direction_label(direction: str, lang: str = "fr") -> str:
    return _said(DIRECTIONS, direction, lang)


def line_outcome_label(outcome: str, lang: str = "fr") -> str:
    return _said(LINE_OUTCOMES, outcome, lang)


def status_text(code: str, lang: str = "fr") -> str:
    """A CDAR status's label alone (``flows.domain.cdar.STATUSES``); '' for a code Relais does not name."""
    info = STATUSES.get(code)
    if info is None:
        return ""
    return info.label_en if lang == "en" else info.label_fr


def status_label(code: str, lang: str = "fr") -> str:
    """'213 Rejetée': the code and its label."""
    text = status_text(code, lang)
    return f"{code} {text}" if text else code


def as_json(rec: CdarRecord, *, lines: bool = True) -> dict[str, Any]:
    """A message (and its lines) as `relais statuses ... --json` prints it."""
    out: dict[str, Any] = {
        "id": rec.id,
        "direction": rec.direction,
        "message_id": rec.message_id,
        "issuer": rec.issuer,
        "partner": rec.partner,
        "flow": rec.flow_id,
        "return": rec.return_id,
        "vocabulary": "cdar",
        "outcome": str(rec.outcome),
        "outcome_label": outcome_label(rec.outcome),
        "lines": rec.line_count,
        "sha256": rec.sha256,
        "detail": rec.detail,
        "created_at": rec.created_at.isoformat() if rec.created_at else None,
    }
    if lines:
        out["statuses"] = [
            {
                "position": line.position,
                "invoice_number": line.invoice_number,
                "invoice_id": line.invoice_id,
                "status": line.status,
                "status_label": status_text(line.status),
                "status_label_en": status_text(line.status, "en"),
                "reason_code": line.reason_code,
                "outcome": line.outcome,
                "rule": line.rule,
                "amounts": line.amounts,
            }
            for line in rec.lines
        ]
    return out


class NotArchived(Exception):
    """The message's bytes are missing from the archive, or no longer match their SHA-256."""


def archived_bytes(archive: Archive, sha256: str) -> bytes:
    """The message's bytes as archived, only while they hash to `sha256` (else `NotArchived`)."""
    try:
        if not archive.exists(sha256):
            raise NotArchived(f"{sha256} absent de l'archive (missing from the archive)")
        data = archive.read(sha256)
    except (OSError, ValueError) as e:
        raise NotArchived(f"{sha256} illisible : {e} (unreadable)") from e
    if hashlib.sha256(data).hexdigest() != sha256:
        raise NotArchived(f"{sha256} altéré : ses octets ne correspondent plus à leur SHA-256 (altered)")
    return data


def file_name(rec: CdarRecord) -> str:
    """The download's name: ``CDAR-<direction>-<message id>.xml`` with only safe characters.

    >>> from flows.store.cdar import CdarRecord, Outcome
    >>> file_name(CdarRecord("out", "M 1/2", "0238:9998", "0" * 64, Outcome.QUEUED))
    'CDAR-out-M_1_2.xml'
    """
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in rec.message_id)[:150]
    return f"CDAR-{rec.direction}-{safe}.xml"
