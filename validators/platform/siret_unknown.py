"""RLS-R03: the buyer SIRET is not a structure of the directory."""

from __future__ import annotations

from flows.model import Flag, ValidationError
from flows.store import Structure
from validators.platform import BUYER, Addressing
from flows.rule import Rule

RULE = Rule(
    "RLS-R03",
    Flag.FATAL,
    "The recipient's SIRET is not in the directory of public structures",
    "Le SIRET du destinataire est absent de l'annuaire des structures publiques",
)


def check(a: Addressing, structure: Structure | None) -> ValidationError | None:
    return RULE.error(BUYER, a.buyer_siret) if structure is None else None
