"""RLS-R09: the recipient requires a commitment number or a service code, and the invoice gives neither."""

from __future__ import annotations

from flows.model import Flag, ValidationError
from flows.store import Structure
from validators.platform import EJ, SERVICE, Addressing
from flows.rule import Rule

RULE = Rule(
    "RLS-R09",
    Flag.FATAL,
    "The recipient requires a commitment number or a service code, and neither is given",
    "Le destinataire exige un numéro d'engagement juridique ou un code service, et aucun n'est renseigné",
)


def check(a: Addressing, structure: Structure) -> ValidationError | None:
    if structure.ej_or_service and not a.commitment_number and not a.service_code:
        return RULE.error(f"{EJ} | {SERVICE}", structure.siret)
    return None
