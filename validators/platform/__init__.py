"""Routing and platform rules (RLS-R..), one module per rule.

Each module has the same shape: ``RULE`` (its code, flag and messages) and
``check(addressing, structure) -> ValidationError | None``. `validators.routing`
runs them in order. Locations name the EN 16931 business term read.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class Addressing:
    """What an invoice says about where it goes."""

    buyer_siret: str | None
    service_code: str | None = None
    commitment_number: str | None = None


BUYER = "BT-46/BT-47 (buyer identifier, SIRET)"
SERVICE = "BT-10 (buyer reference: service code)"
EJ = "BT-13 (purchase order reference: commitment number)"
