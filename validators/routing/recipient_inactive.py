"""RLS-R04: the recipient structure is inactive in the directory.

`FINAL`: a breach ends the routing checks (its services do not matter any more).

>>> from validators.addressing import Addressing
>>> from flows.domain.structures import Directory, Structure
>>> closed = Structure("20005372600010", "Syndicat dissous", False, False, False, False, {})
>>> check(InvoiceContext(addressing=Addressing(closed.siret), directory=Directory("v1", {closed.siret: closed}))).message
'The recipient structure is inactive: 20005372600010 Syndicat dissous'
>>> open_ = Structure("11000201100044", "Commune", True, False, False, False, {})
>>> print(check(InvoiceContext(addressing=Addressing(open_.siret), directory=Directory("v1", {open_.siret: open_}))))
None
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext
from validators.terms import BUYER

RULE = Rule(
    "RLS-R04",
    Flag.FATAL,
    "The recipient structure is inactive",
    "La structure destinataire est inactive",
    category=Category.ROUTING,
    stage=Stage.DIRECTORY,
)
FINAL = True


def check(ctx: InvoiceContext) -> ValidationError | None:
    s = ctx.recipient
    return RULE.error(BUYER, f"{s.siret} {s.name}") if s is not None and not s.active else None
