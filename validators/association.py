"""Association (billing files): which recorded piece a piece's BT-25 names, or why none may be followed.

The input of the association rules (RLS-P16 to RLS-P20, stage STORE) and of the pipeline, which links the
piece to the one found (`flows.pipeline.process`). Apart from the rule modules so that the context
(`validators.context`) can hold the lookup and compute the outcome once for all of them.

docs/billing-frameworks.md, section 3: a piece whose framework may follow others must name its previous
piece in BT-25 (`previous_number`); the candidates are the recorded pieces with that number
(`PieceLookup.pieces_by_number`), those recorded in qualification aside; they are narrowed step by step,
and the first step that leaves none is the problem:

=====================  ==========================================================================  ========
step                   keeps the candidates ...                                                    else
=====================  ==========================================================================  ========
numbered               with the number BT-25 gives                                                 RLS-P17
same parties           of the same seller (``supplier_id``) and the same buyer (``buyer_siret``)   RLS-P18
may precede            whose framework may precede this one (``Framework.follows``), not refused   RLS-P19
                       or rejected, and (A22) in a status it may replace
free                   not followed yet by a piece that was not refused                            RLS-P20
=====================  ==========================================================================  ========

The newest remaining candidate is the previous piece.

>>> from flows.domain.lifecycle import InvoiceStatus as S
>>> from flows.store.circuits import PieceRef
>>> a4 = PieceRef("CPP1-00001", Framework.A4, "D1", "SUP", "BUY", S.MISE_A_DISPOSITION_MOE, "CPP1-00001", None, False)
>>> class Store:
...     def pieces_by_number(self, number, *, limit=50):
...         return [a4] if number == "D1" else []
>>> from flows.domain.model import InvoiceFacts
>>> facts = InvoiceFacts(supplier_id="SUP", buyer_siret="BUY", previous_number="D1")
>>> associate(Framework.A15, facts, Store()).previous.id
'CPP1-00001'
>>> associate(Framework.A19, facts, Store()).problem
<Problem.CANNOT_PRECEDE: 'RLS-P19'>
>>> associate(Framework.A1, facts, Store()).previous is None  # an initial deposit: its BT-25 is no association
True
"""

from __future__ import annotations

import dataclasses
import enum
from typing import TYPE_CHECKING, Protocol

from flows.domain.frameworks import Framework, NotAFramework, may_follow, parse
from flows.domain.lifecycle import INVOICE, Actor, InvoiceStatus
from flows.domain.model import InvoiceFacts

if TYPE_CHECKING:  # not at run time: a validation worker needs no store
    from flows.store.circuits import PieceRef

__all__ = ["NONE", "Association", "PieceLookup", "Problem", "associate", "describe", "framework_of"]


class PieceLookup(Protocol):
    """The store's query for the pieces an association may name (`flows.store.Store.pieces_by_number`)."""

    def pieces_by_number(self, number: str, *, limit: int = 50) -> list[PieceRef]: ...


class Problem(enum.StrEnum):
    """Why no recorded piece may be followed: the code of the rule that says so."""

    MISSING = "RLS-P16"  # no BT-25
    UNKNOWN = "RLS-P17"  # no recorded piece with that number
    OTHER_PARTIES = "RLS-P18"  # another seller's or another buyer's pieces
    CANNOT_PRECEDE = "RLS-P19"  # a framework that cannot precede this one, or a refused / rejected piece
    FOLLOWED = "RLS-P20"  # already followed


@dataclasses.dataclass(frozen=True, slots=True)
class Association:
    """The outcome: the previous piece, or the problem and the candidates the failing step was given."""

    previous: PieceRef | None = None
    problem: Problem | None = None
    candidates: tuple[PieceRef, ...] = ()


NONE = Association()


def framework_of(facts: InvoiceFacts | None) -> Framework | None:
    """The framework BT-23 names (A1 without one); None when it names no framework (RLS-P12 says so)."""
    try:
        return parse(getattr(facts, "framework_text", None))
    except NotAFramework:
        return None


def associate(framework: Framework | None, facts: InvoiceFacts, lookup: PieceLookup) -> Association:
    """The piece a piece of `framework` with these facts follows, or why none may be followed; `NONE` for
    an initial deposit (or no framework)."""
    if framework is None or framework.initial:
        return NONE
    number = facts.previous_number
    if not number:
        return Association(problem=Problem.MISSING)
    found = tuple(p for p in lookup.pieces_by_number(number) if not p.qualification)
    if not found:
        return Association(problem=Problem.UNKNOWN)
    ours = tuple(p for p in found if p.supplier_id == facts.supplier_id and p.buyer_siret == facts.buyer_siret)
    if not ours:
        return Association(problem=Problem.OTHER_PARTIES, candidates=found)
    fit = tuple(p for p in ours if _may_precede(framework, p))
    if not fit:
        return Association(problem=Problem.CANNOT_PRECEDE, candidates=ours)
    free = [p for p in fit if p.followed_by is None]
    if not free:
        return Association(problem=Problem.FOLLOWED, candidates=fit)
    return Association(previous=free[0])


def _may_precede(framework: Framework, piece: PieceRef) -> bool:
    if not may_follow(framework, piece.framework) or piece.status.is_rejected:
        return False
    # A22 replaces the piece it follows: only where the platform may replace it.
    return not framework.info.replaces or INVOICE.allowed(piece.status, InvoiceStatus.REMPLACEE_PAR_A22, Actor.PLATFORM)


def describe(p: PieceRef) -> str:
    """A recorded piece, for a message: its id, framework, parties and status.

    >>> from flows.domain.lifecycle import InvoiceStatus as S
    >>> from flows.store.circuits import PieceRef
    >>> describe(PieceRef("CPP1-00001", Framework.A4, "D1", "SUP", "BUY", S.REFUSEE_MOE, "CPP1-00001", None, False))
    'piece CPP1-00001 (A4, supplier SUP, buyer BUY, REFUSEE_MOE)'
    """
    return f"piece {p.id} ({p.framework}, supplier {p.supplier_id}, buyer {p.buyer_siret}, {p.status.name})"
