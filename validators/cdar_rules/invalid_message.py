"""RLS-C01: the received CDAR message is not valid against the official CDAR D22B XSD and BR-FR-CDV schematron.

The findings themselves are the official ones (`validators.cdar.check`: ``XSD``, ``BR-FR-CDV-..`` with their
messages verbatim), recorded after this one; RLS-C01 is the flow's verdict, which makes the whole flow
refused (IN_REJETE) and is answered, to a "cdar" partner, as a 501 ``IRR_SYNTAX``
(`flows.domain.cdar.rejection_reason`). A document that is no readable CDAR message at all (no
``ExchangedDocument``, no line) is refused by this rule too, with what is missing.

>>> from flows.domain.rule import XSD
>>> check([XSD.error("line 3", "Element 'x': not expected")]).rule
'RLS-C01'
>>> print(check([]))
None
"""

from __future__ import annotations

from collections.abc import Sequence

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage

RULE = Rule(
    "RLS-C01",
    Flag.FATAL,
    "The CDAR lifecycle message is not valid against the official CDAR D22B schema and BR-FR-CDV rules",
    "Le message de cycle de vie CDAR n'est pas conforme au schéma CDAR D22B et aux règles BR-FR-CDV officiels",
    category=Category.LIFECYCLE,
    stage=Stage.FLOW,
)


def check(findings: Sequence[ValidationError], detail: str | None = None) -> ValidationError | None:
    """The flow's verdict from the official findings (none: valid); `detail` says what is wrong."""
    fatal = [f for f in findings if f.flag is Flag.FATAL]
    if not fatal:
        return None
    return RULE.error("/", detail or f"{len(fatal)} finding(s), first {fatal[0].rule}")
