"""RLS-R02: the buyer SIRET is not a valid SIRET (14 digits, Luhn key, La Poste's exception).

>>> check(Addressing("11000201100045")).rule
'RLS-R02'
>>> check(Addressing("11000201100044")) is None
True
>>> check(Addressing("35600000000048")) is None  # La Poste: not Luhn, still valid
True
"""

from __future__ import annotations

from stdnum.fr import siret

from flows.model import Flag, ValidationError
from validators.platform import BUYER, Addressing
from flows.rule import Rule

RULE = Rule(
    "RLS-R02",
    Flag.FATAL,
    "The recipient's SIRET is not valid (14 digits with a correct check key)",
    "Le SIRET du destinataire n'est pas valide (14 chiffres avec une clé correcte)",
)


def check(a: Addressing, structure: object = None) -> ValidationError | None:
    if a.buyer_siret and not siret.is_valid(a.buyer_siret):
        return RULE.error(BUYER, repr(a.buyer_siret))
    return None
