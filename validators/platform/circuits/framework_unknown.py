"""RLS-P12: BT-23 holds an ``A``-code that is not a billing framework (``A0``, ``A26``).

No BT-23, or a value that is not an ``A``-code (a Peppol profile URN), is a plain invoice (A1) and is
not reported (`flows.domain.frameworks.parse`). Fatal: the piece's circuit is unknown.

>>> from flows.io.extract import Facts
>>> check(InvoiceContext(facts=Facts(framework_text="A26"))).rule
'RLS-P12'
>>> print(check(InvoiceContext(facts=Facts(framework_text="A9_FACTURE_SOUSTRAITANT"))))
None
>>> print(check(InvoiceContext(facts=Facts(framework_text="urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"))))
None
>>> check(InvoiceContext(facts=Facts(framework_text="A" + "9" * 5000))).message.endswith(": 'A" + "9" * 39 + "…'")
True
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext
from validators.terms import FRAMEWORK

RULE = Rule(
    "RLS-P12",
    Flag.FATAL,
    "The billing framework (BT-23) is not one of A1 to A25",
    "Le cadre de facturation (BT-23) n'est pas l'un des cadres A1 à A25",
    category=Category.PLATFORM,
    stage=Stage.DOCUMENT,
)


#: The longest BT-23 value quoted in the finding (a 5,000-digit ``A``-code is cut, with an ellipsis).
QUOTED = 40


def check(ctx: InvoiceContext) -> ValidationError | None:
    if ctx.facts is None or ctx.framework is not None:
        return None
    text = ctx.facts.framework_text or ""
    return RULE.error(FRAMEWORK, repr(text if len(text) <= QUOTED else text[:QUOTED] + "…"))
