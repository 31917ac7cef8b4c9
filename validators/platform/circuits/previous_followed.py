"""RLS-P20: BT-25 names a piece already followed (by a piece that was not refused).

A piece is followed at most once: the store's ``piece_links`` key holds it when two followers are judged
at the same moment (`flows.store.circuits.take_links`: the second one is rejected with this finding);
a follower refused or rejected later frees its previous piece.

>>> from flows.domain.frameworks import Framework
>>> from flows.domain.lifecycle import InvoiceStatus as S
>>> from flows.io.extract import Facts
>>> from flows.store.circuits import PieceRef
>>> a4 = PieceRef("CPP1-00001", Framework.A4, "D1", "SUP", "BUY", S.MISE_A_DISPOSITION_MOE, "CPP1-00001", "CPP2-00001", False)
>>> class Store:  # a stand-in for flows.store.Store
...     def pieces_by_number(self, number, *, limit=50):
...         return [a4] if number == "D1" else []
>>> def ctx(bt23, bt25, supplier="SUP"):
...     facts = Facts(framework_text=bt23, previous_number=bt25, supplier_id=supplier, buyer_siret="BUY")
...     return InvoiceContext(facts=facts, pieces=Store())
>>> check(ctx("A15", "D1")).rule
'RLS-P20'
>>> check(ctx("A15", "D1")).message.split(": ", 1)[1]
'D1 is piece CPP1-00001 (A4, supplier SUP, buyer BUY, MISE_A_DISPOSITION_MOE), followed by CPP2-00001'
>>> print(check(ctx("A4", "D1")))
None
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.association import Problem, describe
from validators.context import InvoiceContext
from validators.terms import PRECEDING

if TYPE_CHECKING:
    from flows.store.circuits import PieceRef

RULE = Rule(
    "RLS-P20",
    Flag.FATAL,
    "BT-25 names a piece that another piece already follows",
    "La pièce précédente (BT-25) est déjà suivie par une autre pièce",
    category=Category.PLATFORM,
    stage=Stage.STORE,
)


def check(ctx: InvoiceContext) -> ValidationError | None:
    found = ctx.association
    if found.problem is not Problem.FOLLOWED or ctx.facts is None:
        return None
    return RULE.error(PRECEDING, f"{ctx.facts.previous_number} is " + "; ".join(followed(p) for p in found.candidates))


def followed(p: PieceRef) -> str:
    return f"{describe(p)}, followed by {p.followed_by}"
