"""RLS-P15: a piece going to the project manager (A4, A7, A10, A11, A13, A14) names no MOE, or not a SIRET.

The MOE (maîtrise d'œuvre) is a supporting document (BG-24) whose description is ``MOE`` and whose
reference is its SIRET (docs/billing-frameworks.md, section 1): without it the draft has nobody to go to.

>>> from flows.io.extract import Facts
>>> check(InvoiceContext(facts=Facts(framework_text="A4"))).rule
'RLS-P15'
>>> print(check(InvoiceContext(facts=Facts(framework_text="A4", moe_siret="1234"))).location)
BG-24 (supporting document MOE: the project manager's SIRET)
>>> print(check(InvoiceContext(facts=Facts(framework_text="A4", moe_siret="35600000000048"))))
None
>>> print(check(InvoiceContext(facts=Facts(framework_text="A9"))))
None
"""

from __future__ import annotations

from stdnum.fr import siret

from flows.domain.frameworks import Step
from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext
from validators.terms import MOE

RULE = Rule(
    "RLS-P15",
    Flag.FATAL,
    "A piece going to the project manager must name it (BG-24 MOE, a SIRET)",
    "Une pièce transmise à la maîtrise d'œuvre doit la désigner (BG-24 MOE, un SIRET)",
    category=Category.PLATFORM,
    stage=Stage.DOCUMENT,
)


def check(ctx: InvoiceContext) -> ValidationError | None:
    facts, framework = ctx.facts, ctx.framework
    if facts is None or framework is None or Step.MOE not in framework.steps:
        return None
    if not facts.moe_siret:
        return RULE.error(MOE, f"none named ({framework})")
    if not siret.is_valid(facts.moe_siret):
        return RULE.error(MOE, f"not a valid SIRET: {facts.moe_siret!r}")
    return None
