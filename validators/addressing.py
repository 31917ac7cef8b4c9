"""What an invoice says about where it goes: the input of the routing rules.

Its own module (it imports only `flows.domain.model`) so that the context, the routing package
and older callers (``from validators.platform import Addressing``) share it.
"""

from __future__ import annotations

import dataclasses

from flows.domain.model import InvoiceFacts


@dataclasses.dataclass(frozen=True, slots=True)
class Addressing:
    """What an invoice says about where it goes.

    >>> from flows.domain.model import InvoiceFacts
    >>> Addressing.of(InvoiceFacts(buyer_siret="11000201100044", service_code="COMPTA"))
    Addressing(buyer_siret='11000201100044', service_code='COMPTA', commitment_number=None)
    """

    buyer_siret: str | None
    service_code: str | None = None
    commitment_number: str | None = None

    @classmethod
    def of(cls, facts: InvoiceFacts) -> Addressing:
        return cls(facts.buyer_siret, facts.service_code, facts.commitment_number)
