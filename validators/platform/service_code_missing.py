"""RLS-R05: the recipient requires a service code and the invoice gives none."""

from __future__ import annotations

from flows.model import Flag, ValidationError
from flows.store import Structure
from validators.platform import SERVICE, Addressing
from flows.rule import Rule

RULE = Rule(
    "RLS-R05",
    Flag.FATAL,
    "The recipient requires a service code and none is given",
    "Le destinataire exige un code service et aucun n'est renseigné",
)


def check(a: Addressing, structure: Structure) -> ValidationError | None:
    if structure.service_code_required and not a.service_code:
        return RULE.error(SERVICE, structure.siret)
    return None
