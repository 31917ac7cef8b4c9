"""RLS-R04: the recipient structure is inactive in the directory."""

from __future__ import annotations

from flows.model import Flag, ValidationError
from flows.store import Structure
from validators.platform import BUYER, Addressing
from flows.rule import Rule

RULE = Rule(
    "RLS-R04",
    Flag.FATAL,
    "The recipient structure is inactive",
    "La structure destinataire est inactive",
)


def check(a: Addressing, structure: Structure) -> ValidationError | None:
    return RULE.error(BUYER, f"{structure.siret} {structure.name}") if not structure.active else None
