"""RLS-C05: a valid CDAR status that Relais does not apply to an invoice it holds.

Relais applies the buyer's platform's 202..211 and the seller's 209 and 212 (`flows.domain.cdar.RELAIS_STATUS`);
a line with another status the schematron accepts (200 and 201, which Relais sets itself; 213 and 501, a
platform's rejections; 214, 220.., the PPF's and the tax statuses) is valid CDAR that changes nothing here.

>>> from flows.domain.cdar import StatusLine
>>> check(StatusLine("F-1", "214"), 1).rule
'RLS-C05'
>>> print(check(StatusLine("F-1", "205"), 1))
None
"""

from __future__ import annotations

from flows.domain.cdar import RELAIS_STATUS, STATUSES, StatusLine
from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.cdar_rules import location

RULE = Rule(
    "RLS-C05",
    Flag.FATAL,
    "Relais does not apply this CDAR status to an invoice",
    "Relais n'applique pas ce statut CDAR à une facture",
    category=Category.LIFECYCLE,
    stage=Stage.STORE,
)


def check(line: StatusLine, position: int) -> ValidationError | None:
    if line.status in RELAIS_STATUS:
        return None
    label = STATUSES[line.status].label_en if line.status in STATUSES else "status"
    return RULE.error(location(line, position), f"{line.status} ({label})")
