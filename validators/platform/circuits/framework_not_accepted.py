"""RLS-P13: the recipient structure does not accept this billing framework (its directory entry).

The directory lists, for a structure, the frameworks it accepts (``cadresFacturation``,
docs/directory-formats.md); a structure that lists none accepts them all. Runs once the recipient is
known (stage DIRECTORY).

>>> from flows.domain.structures import Directory, Structure
>>> from flows.io.extract import Facts
>>> from validators.addressing import Addressing
>>> s = Structure("11000201100044", "Mairie", True, False, False, False, {}, frameworks=frozenset({"A1", "A9"}))
>>> d = Directory("v1", {s.siret: s})
>>> def ctx(bt23):
...     facts = Facts(buyer_siret=s.siret, framework_text=bt23)
...     return InvoiceContext(facts=facts, directory=d, addressing=Addressing.of(facts))
>>> check(ctx("A4")).rule
'RLS-P13'
>>> print(check(ctx("A9")))
None
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext
from validators.terms import FRAMEWORK

RULE = Rule(
    "RLS-P13",
    Flag.FATAL,
    "The recipient does not accept pieces of this billing framework",
    "Le destinataire n'accepte pas les pièces de ce cadre de facturation",
    category=Category.PLATFORM,
    stage=Stage.DIRECTORY,
)


def check(ctx: InvoiceContext) -> ValidationError | None:
    structure, framework = ctx.recipient, ctx.framework
    if structure is None or framework is None or structure.accepts(framework.value):
        return None
    accepted = ", ".join(sorted(structure.frameworks or (), key=lambda c: int(c[1:])))
    return RULE.error(FRAMEWORK, f"{framework} for {structure.siret} (it accepts {accepted or 'none'})")
