"""RLS-P17: BT-25 names no recorded piece.

The previous piece is looked up by its number among the recorded pieces, accepted or not (those recorded
in qualification aside): none has this number (docs/billing-frameworks.md, section 3).

>>> from flows.domain.frameworks import Framework
>>> from flows.domain.lifecycle import InvoiceStatus as S
>>> from flows.io.extract import Facts
>>> from flows.store.circuits import PieceRef
>>> a4 = PieceRef("CPP1-00001", Framework.A4, "D1", "SUP", "BUY", S.MISE_A_DISPOSITION_MOE, "CPP1-00001", None, False)
>>> class Store:  # a stand-in for flows.store.Store
...     def pieces_by_number(self, number, *, limit=50):
...         return [a4] if number == "D1" else []
>>> def ctx(bt23, bt25, supplier="SUP"):
...     facts = Facts(framework_text=bt23, previous_number=bt25, supplier_id=supplier, buyer_siret="BUY")
...     return InvoiceContext(facts=facts, pieces=Store())
>>> check(ctx("A15", "D2")).message
'BT-25 names no recorded piece: D2'
>>> print(check(ctx("A15", "D1")))
None
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.association import Problem
from validators.context import InvoiceContext
from validators.terms import PRECEDING

RULE = Rule(
    "RLS-P17",
    Flag.FATAL,
    "BT-25 names no recorded piece",
    "La pièce précédente (BT-25) n'est pas connue de la plateforme",
    category=Category.PLATFORM,
    stage=Stage.STORE,
)


def check(ctx: InvoiceContext) -> ValidationError | None:
    if ctx.association.problem is not Problem.UNKNOWN or ctx.facts is None:
        return None
    return RULE.error(PRECEDING, str(ctx.facts.previous_number))
