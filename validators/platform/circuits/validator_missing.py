"""RLS-P14: a sub-contractor's or co-contractor's piece (A9 to A14) names no validator, or not a SIRET.

The validator (the titulaire, the mandataire) is a supporting document (BG-24) whose description is
``VALIDEUR`` (or ``VALIDEUR_1``) and whose reference is its SIRET; a second level (``VALIDEUR_2``) is
optional, but when named it must be a SIRET too (docs/billing-frameworks.md, section 1).

>>> from flows.io.extract import Facts
>>> check(InvoiceContext(facts=Facts(framework_text="A9"))).rule
'RLS-P14'
>>> print(check(InvoiceContext(facts=Facts(framework_text="A9", validator_1="12345678901234"))).message.split(": ", 1)[1])
VALIDEUR: not a valid SIRET: '12345678901234'
>>> print(check(InvoiceContext(facts=Facts(framework_text="A9", validator_1="35600000000048"))))
None
>>> print(check(InvoiceContext(facts=Facts(framework_text="A1"))))
None
"""

from __future__ import annotations

from stdnum.fr import siret

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext
from validators.terms import VALIDATOR

RULE = Rule(
    "RLS-P14",
    Flag.FATAL,
    "A sub-contractor's or co-contractor's piece must name its validator (BG-24 VALIDEUR, a SIRET)",
    "Une pièce de sous-traitant ou de cotraitant doit désigner son valideur (BG-24 VALIDEUR, un SIRET)",
    category=Category.PLATFORM,
    stage=Stage.DOCUMENT,
)


def check(ctx: InvoiceContext) -> ValidationError | None:
    facts, framework = ctx.facts, ctx.framework
    if facts is None or framework is None or not framework.needs_validator:
        return None
    if not facts.validator_1:
        return RULE.error(VALIDATOR, f"none named ({framework})")
    wrong = [
        f"{role}: not a valid SIRET: {value!r}"
        for role, value in (("VALIDEUR", facts.validator_1), ("VALIDEUR_2", facts.validator_2))
        if value and not siret.is_valid(value)
    ]
    return RULE.error(VALIDATOR, "; ".join(wrong)) if wrong else None
