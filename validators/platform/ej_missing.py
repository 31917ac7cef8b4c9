"""RLS-R08: the recipient requires a commitment number (EJ) and the invoice gives none."""

from __future__ import annotations

from flows.model import Flag, ValidationError
from flows.store import Structure
from validators.platform import EJ, Addressing
from flows.rule import Rule

RULE = Rule(
    "RLS-R08",
    Flag.FATAL,
    "The recipient requires a commitment number (engagement juridique) and none is given",
    "Le destinataire exige un numéro d'engagement juridique et aucun n'est renseigné",
)


def check(a: Addressing, structure: Structure) -> ValidationError | None:
    if structure.ej_required and not structure.ej_or_service and not a.commitment_number:
        return RULE.error(EJ, structure.siret)
    return None
