"""RLS-R06: the service code given is not a service of the recipient."""

from __future__ import annotations

from flows.model import Flag, ValidationError
from flows.store import Structure
from validators.platform import SERVICE, Addressing
from flows.rule import Rule

RULE = Rule(
    "RLS-R06",
    Flag.FATAL,
    "The service code is not a service of the recipient",
    "Le code service n'est pas un service du destinataire",
)


def check(a: Addressing, structure: Structure) -> ValidationError | None:
    if a.service_code and a.service_code not in structure.services:
        return RULE.error(SERVICE, f"{a.service_code!r} for {structure.siret}")
    return None
