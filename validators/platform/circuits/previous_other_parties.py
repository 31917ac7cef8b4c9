"""RLS-P18: BT-25 names another supplier's or another structure's piece.

A billing file is one contract's: the previous piece has the same seller (BT-29/30, the titulaire, sub- or
co-contractor whose file it is, even when the MOE or MOA deposits the piece) and the same buyer (BT-46/47).

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
>>> check(ctx("A15", "D1", supplier="OTHER")).rule
'RLS-P18'
>>> check(ctx("A15", "D1", supplier="OTHER")).message.split(": ", 1)[1]
'D1 is piece CPP1-00001 (A4, supplier SUP, buyer BUY, MISE_A_DISPOSITION_MOE)'
>>> print(check(ctx("A15", "D1")))
None
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.association import Problem, describe
from validators.context import InvoiceContext
from validators.terms import PRECEDING

RULE = Rule(
    "RLS-P18",
    Flag.FATAL,
    "BT-25 names a piece of another supplier or another recipient",
    "La pièce précédente (BT-25) est celle d'un autre fournisseur ou d'un autre destinataire",
    category=Category.PLATFORM,
    stage=Stage.STORE,
)


def check(ctx: InvoiceContext) -> ValidationError | None:
    found = ctx.association
    if found.problem is not Problem.OTHER_PARTIES or ctx.facts is None:
        return None
    return RULE.error(PRECEDING, f"{ctx.facts.previous_number} is " + "; ".join(describe(p) for p in found.candidates))
