"""RLS-P19: BT-25 names a piece whose framework cannot precede this one, or a refused or rejected piece.

The previous piece's framework must be one this framework may follow (`flows.domain.frameworks.may_follow`:
an A15 follows an A4, A10 or A13), and it must not be refused or rejected; a draft general statement of the
tacit procedure (A22), which replaces the piece it follows, may only follow a piece it may replace.

>>> from flows.domain.frameworks import Framework
>>> from flows.domain.lifecycle import InvoiceStatus as S
>>> from flows.io.extract import Facts
>>> from flows.store.circuits import PieceRef
>>> a4 = PieceRef("CPP1-00001", Framework.A4, "D1", "SUP", "BUY", S.REFUSEE_MOE, "CPP1-00001", None, False)
>>> class Store:  # a stand-in for flows.store.Store
...     def pieces_by_number(self, number, *, limit=50):
...         return [a4] if number == "D1" else []
>>> def ctx(bt23, bt25, supplier="SUP"):
...     facts = Facts(framework_text=bt23, previous_number=bt25, supplier_id=supplier, buyer_siret="BUY")
...     return InvoiceContext(facts=facts, pieces=Store())
>>> check(ctx("A15", "D1")).message.split(": ", 1)[1]
'D1 is piece CPP1-00001 (A4, supplier SUP, buyer BUY, REFUSEE_MOE)'
>>> check(ctx("A19", "D1")).rule
'RLS-P19'
>>> print(check(ctx("A15", "D2")))  # RLS-P17's
None
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.association import Problem, describe
from validators.context import InvoiceContext
from validators.terms import PRECEDING

RULE = Rule(
    "RLS-P19",
    Flag.FATAL,
    "BT-25 names a piece this billing framework cannot follow (its framework, or refused or rejected)",
    "La pièce précédente (BT-25) ne peut pas être suivie par ce cadre de facturation (son cadre, ou refusée ou rejetée)",
    category=Category.PLATFORM,
    stage=Stage.STORE,
)


def check(ctx: InvoiceContext) -> ValidationError | None:
    found = ctx.association
    if found.problem is not Problem.CANNOT_PRECEDE or ctx.facts is None:
        return None
    return RULE.error(PRECEDING, f"{ctx.facts.previous_number} is " + "; ".join(describe(p) for p in found.candidates))
