"""The recipient directory's records: a public structure (SIRET, services, what it requires) and the directory.

Values only: ``flows.store`` records and reads them, ``flows.directory`` imports them from the platform's
exports, and the routing rules (``validators/routing``) judge an invoice against them.

>>> d = Directory("v1", {"1": Structure("1", "Mairie", True, False, False, False, {})})
>>> d.get("1").name, d.get(None)
('Mairie', None)
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class Structure:
    siret: str
    name: str
    active: bool
    service_code_required: bool
    ej_required: bool
    ej_or_service: bool
    services: dict[str, tuple[str, bool]]  # code -> (name, active)
    payment_status_not_reported: bool = False  # statutMiseEnPaiementNestPasRemonte: no MISE_EN_PAIEMENT reported
    receives_by_edi: bool = False  # recevoirDonneesViaEDI: invoices pushed to its own channel (flows.pipeline.dispatch)
    #: The billing frameworks it accepts (codes ``A1``..``A25``, `flows.domain.frameworks`); None: all of them.
    frameworks: frozenset[str] | None = None

    def accepts(self, framework: str) -> bool:
        """Whether it accepts pieces of `framework` (a code such as ``A9``).

        >>> s = Structure("1", "Mairie", True, False, False, False, {}, frameworks=frozenset({"A1"}))
        >>> s.accepts("A1"), s.accepts("A9"), Structure("1", "M", True, False, False, False, {}).accepts("A9")
        (True, False, True)
        """
        return self.frameworks is None or framework in self.frameworks


@dataclasses.dataclass(frozen=True, slots=True)
class Directory:
    version: str
    structures: dict[str, Structure]

    def get(self, siret: str | None) -> Structure | None:
        return self.structures.get(siret or "")


#: The roles of a registered actor (`RegisteredActor`), as ops write them (`relais actors add --role`).
ACTOR_ROLES = ("titulaire", "mandataire", "moe", "moa")


@dataclasses.dataclass(frozen=True, slots=True)
class RegisteredActor:
    """An actor of the billing circuits that is not a directory structure: a titulaire or a group's
    mandataire (a validator), a project manager (moe) or a contracting authority (moa), by SIRET
    (docs/billing-frameworks.md §5). Registered actors are versioned as the directory is."""

    siret: str
    name: str
    role: str  # one of ACTOR_ROLES
