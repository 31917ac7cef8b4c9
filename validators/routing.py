"""Run the routing rules (validators/platform) for one invoice against the directory.

Identification rules stop at the first breach (no point checking a service of
an unknown structure); the service and commitment rules all report.
"""

from __future__ import annotations

from flows.model import ValidationError
from flows.store import Directory, Structure
from validators.platform import (
    Addressing,
    buyer_siret_missing,
    ej_missing,
    ej_or_service_missing,
    recipient_inactive,
    service_code_missing,
    service_inactive,
    service_unknown,
    siret_checksum,
    siret_unknown,
)

REQUIREMENT_RULES = (service_code_missing, service_unknown, service_inactive, ej_missing, ej_or_service_missing)


def check(a: Addressing, directory: Directory) -> tuple[list[ValidationError], Structure | None]:
    """Findings for `a`, and the recipient structure when it was found."""
    for rule in (buyer_siret_missing, siret_checksum):
        if (e := rule.check(a, None)) is not None:
            return [e], None
    structure = directory.get(a.buyer_siret)
    if (e := siret_unknown.check(a, structure)) is not None:
        return [e], None
    assert structure is not None
    if (e := recipient_inactive.check(a, structure)) is not None:
        return [e], structure
    errors = [e for rule in REQUIREMENT_RULES if (e := rule.check(a, structure)) is not None]
    return errors, structure
