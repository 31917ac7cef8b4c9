"""RLS-P16: a piece that must follow another (A6, A8, A15 to A20, A22 to A25) has no BT-25.

Its framework follows others (`flows.domain.frameworks.Framework.follows`): it must name the piece it
follows, its previous piece in the billing file (docs/billing-frameworks.md, section 3).

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
>>> check(ctx("A15", None)).rule
'RLS-P16'
>>> print(check(ctx("A15", "D1")))
None
>>> print(check(ctx("A4", None)))  # an initial deposit
None
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.association import Problem
from validators.context import InvoiceContext
from validators.terms import PRECEDING

RULE = Rule(
    "RLS-P16",
    Flag.FATAL,
    "A piece of this billing framework must name the piece it follows (BT-25)",
    "Une pièce de ce cadre de facturation doit désigner la pièce qu'elle suit (BT-25)",
    category=Category.PLATFORM,
    stage=Stage.STORE,
)


def check(ctx: InvoiceContext) -> ValidationError | None:
    if ctx.association.problem is not Problem.MISSING:
        return None
    return RULE.error(PRECEDING, f"none given ({ctx.framework})")
