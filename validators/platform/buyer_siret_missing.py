"""RLS-R01: the invoice names no buyer SIRET.

>>> check(Addressing(None), None).rule
'RLS-R01'
>>> check(Addressing("11000201100044"), None) is None
True
"""

from __future__ import annotations

from flows.model import Flag, ValidationError
from validators.platform import BUYER, Addressing
from flows.rule import Rule

RULE = Rule(
    "RLS-R01",
    Flag.FATAL,
    "The invoice does not give the recipient's SIRET",
    "La facture n'indique pas le SIRET du destinataire",
)


def check(a: Addressing, structure: object = None) -> ValidationError | None:
    return RULE.error(BUYER) if not a.buyer_siret else None
