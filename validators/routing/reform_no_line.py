"""RLS-R10: the buyer's SIREN is in the reform's directory, but no line of it matches the buyer.

The lines tried, most specific first: ``SIREN_SIRET_routingCode``, ``SIREN_SIRET``, ``SIREN_suffix``,
``SIREN`` (docs/reform.md §4). `FINAL`: nothing else to check without a line. A buyer in neither directory
is RLS-R03's (unchanged).

>>> from validators.addressing import Addressing
>>> from flows.domain.reform_directory import Address, DirectoryLine, Platform
>>> class Lines:
...     lines = [DirectoryLine(Address("702042755", "70204275500240"), Platform("0042"))]
...     def reform_lines(self, ids): return [ln for ln in self.lines if ln.identifier in ids]
...     def reform_siren_known(self, siren): return siren == "702042755"
>>> check(InvoiceContext(addressing=Addressing("70204275500117"), reform=Lines())).message
"No line of the reform's directory matches the buyer: SIREN 702042755, SIRET 70204275500117"
>>> print(check(InvoiceContext(addressing=Addressing("70204275500240"), reform=Lines())))
None
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext
from validators.terms import BUYER

RULE = Rule(
    "RLS-R10",
    Flag.FATAL,
    "No line of the reform's directory matches the buyer",
    "Aucune ligne de l'annuaire de la réforme ne correspond à l'acheteur",
    category=Category.ROUTING,
    stage=Stage.DIRECTORY,
)
FINAL = True


def check(ctx: InvoiceContext) -> ValidationError | None:
    m = ctx.reform_match
    if m is None or not m.siren_known or m.best is not None or ctx.addressing is None:
        return None
    b = ctx.addressing.buyer
    said = [f"SIREN {b.siren}"]
    said += [f"SIRET {b.siret}"] if b.siret else []
    said += [f"routing code {b.routing_identifier}"] if b.routing_identifier and b.siret else []
    said += [f"suffix {b.suffix}"] if b.suffix else []
    return RULE.error(BUYER, ", ".join(said))
