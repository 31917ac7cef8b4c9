"""RLS-R07: the service code given is an inactive service of the recipient."""

from __future__ import annotations

from flows.model import Flag, ValidationError
from flows.store import Structure
from validators.platform import SERVICE, Addressing
from flows.rule import Rule

RULE = Rule(
    "RLS-R07",
    Flag.FATAL,
    "The recipient's service is inactive",
    "Le service du destinataire est inactif",
)


def check(a: Addressing, structure: Structure) -> ValidationError | None:
    service = structure.services.get(a.service_code or "")
    if service is not None and not service[1]:
        return RULE.error(SERVICE, f"{a.service_code!r} ({service[0]})")
    return None
