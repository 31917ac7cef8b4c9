"""What an invoice says about where it goes: the input of the routing rules.

Its own module (it imports only `flows.domain`) so that the context, the routing package
and older callers (``from validators.platform import Addressing``) share it.

For the reform's directory (docs/reform.md §4) it also gives the buyer as the reform addresses it
(`Addressing.buyer`): its SIREN (BT-47 when it is one, else the SIRET's first nine digits, else BT-49's),
its SIRET (BT-46/BT-47, else BT-49's), its routing code (BT-49's third part, else BT-10) and its suffix
(BT-49 ``SIREN_suffix``).
"""

from __future__ import annotations

import dataclasses

from flows.domain.model import InvoiceFacts
from flows.domain.reform_directory import Buyer, parse_identifier


@dataclasses.dataclass(frozen=True, slots=True)
class Addressing:
    """What an invoice says about where it goes.

    >>> from flows.domain.model import InvoiceFacts
    >>> Addressing.of(InvoiceFacts(buyer_siret="11000201100044", service_code="COMPTA"))
    Addressing(buyer_siret='11000201100044', service_code='COMPTA', commitment_number=None, buyer_siren=None, endpoint=None)
    >>> Addressing("70204275500240", "SERV-1").buyer
    Buyer(siren='702042755', siret='70204275500240', routing_identifier='SERV-1', suffix=None)
    >>> Addressing("702042755", endpoint="702042755_FACT").buyer
    Buyer(siren='702042755', siret=None, routing_identifier=None, suffix='FACT')
    """

    buyer_siret: str | None
    service_code: str | None = None
    commitment_number: str | None = None
    buyer_siren: str | None = None  # BT-47 when it is a SIREN (the buyer's legal registration)
    endpoint: str | None = None  # BT-49, the buyer's electronic address (scheme 0225: an addressing identifier)

    @classmethod
    def of(cls, facts: InvoiceFacts) -> Addressing:
        return cls(
            facts.buyer_siret,
            facts.service_code,
            facts.commitment_number,
            getattr(facts, "buyer_siren", None),
            getattr(facts, "buyer_endpoint", None),
        )

    @property
    def buyer(self) -> Buyer:
        """The buyer as the reform's directory addresses it."""
        ident = self.buyer_siret or ""
        siret = ident if len(ident) == 14 and ident.isdigit() else None
        siren = self.buyer_siren or (ident if len(ident) == 9 and ident.isdigit() else None)
        code, suffix = self.service_code, None
        if self.endpoint:
            try:
                a = parse_identifier(self.endpoint)
            except ValueError:
                a = None
            if a is not None and (siren is None or a.siren == siren):
                siren, suffix = a.siren, a.suffix
                siret = siret or a.siret
                if a.routing_identifier and a.siret == siret:
                    code = a.routing_identifier
        if siren is None and siret is not None:
            siren = siret[:9]
        return Buyer(siren, siret, code, suffix)
