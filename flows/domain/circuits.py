"""Billing circuits: where a piece starts, whose turn it is, where it goes next, and when time runs out.

Pure data and functions over `flows.domain.frameworks` (the steps of each framework) and
`flows.domain.lifecycle` (the statuses); the pipeline (`flows.pipeline.circuits`) applies them.

Each `Step` has an entry status and an actor whose turn it is there:

==========  =========================  ==================  ======================================
step        entry status               actor (`Actor`)     who (`Parties`)
==========  =========================  ==================  ======================================
VALIDATOR   A_VALIDER_1 / A_VALIDER_2  VALIDATOR           ``validator_1`` / ``validator_2``
MOE         MISE_A_DISPOSITION_MOE     MOE                 ``moe``
MOA         MISE_A_DISPOSITION_MOA     MOA                 ``moa`` (the buyer when none is named)
SUPPLIER    A_ASSOCIER_FOURNISSEUR     (none: it waits     ``supplier``
                                       for the A8)
RECIPIENT   MISE_A_DISPOSITION         RECIPIENT           ``buyer`` (a plain invoice: DEPOSEE,
                                                           then delivered)
==========  =========================  ==================  ======================================

>>> p = Parties(buyer="B", supplier="S", validator_1="T")
>>> entry(Framework.A9, p)
Turn(status=<InvoiceStatus.A_VALIDER_1: '20'>, holder='T', step=<Step.VALIDATOR: 'validator'>, level=1)
>>> entry(Framework.A1, p).status.name, entry(Framework.A1, p).holder
('DEPOSEE', 'B')
>>> pass_on(Framework.A9, InvoiceStatus.VALIDEE_1, p).status.name
'MISE_A_DISPOSITION'
>>> pass_on(Framework.A9, InvoiceStatus.VALIDEE_1, Parties(buyer="B", validator_1="T", validator_2="M")).holder
'M'
>>> actor_of(InvoiceStatus.PRISE_EN_COMPTE_MOE), actor_of(InvoiceStatus.SERVICE_FAIT)
(<Actor.MOE: 'moe'>, <Actor.RECIPIENT: 'recipient'>)
>>> Deadlines().due(InvoiceStatus.A_VALIDER_1, dt.datetime(2026, 1, 1, tzinfo=dt.UTC)).date()
datetime.date(2026, 1, 16)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from types import MappingProxyType

from flows.domain.frameworks import Framework, Step
from flows.domain.lifecycle import Actor, InvoiceStatus
from flows.domain.model import InvoiceFacts

_I = InvoiceStatus


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Parties:
    """Who the actors of one piece are (SIRETs as the document gives them; `flows.io.extract`)."""

    buyer: str | None = None  # BT-46/47: the recipient structure (the finance service)
    supplier: str | None = None  # BT-29/30
    validator_1: str | None = None  # the titulaire or the mandataire
    validator_2: str | None = None  # a second validation level, where the document names one
    moe: str | None = None  # the project manager
    moa: str | None = None  # the contracting authority; None: the buyer

    @classmethod
    def named_by(cls, facts: InvoiceFacts) -> Parties:
        """The actors a piece's document names (`flows.io.extract`; docs/billing-frameworks.md §1)."""
        return cls(
            buyer=facts.buyer_siret,
            supplier=facts.supplier_id,
            validator_1=facts.validator_1,
            validator_2=facts.validator_2,
            moe=facts.moe_siret,
            moa=facts.moa_siret,
        )

    def of(self, step: Step, level: int = 1) -> str | None:
        if step is Step.VALIDATOR:
            return self.validator_1 if level == 1 else self.validator_2
        if step is Step.MOE:
            return self.moe
        if step is Step.MOA:
            return self.moa or self.buyer
        if step is Step.SUPPLIER:
            return self.supplier
        return self.buyer


@dataclasses.dataclass(frozen=True, slots=True)
class Turn:
    """Where a piece is: its status, whose turn it is (a SIRET), at which step (and validation level)."""

    status: InvoiceStatus
    holder: str | None
    step: Step
    level: int = 1


_ENTRY: Mapping[Step, InvoiceStatus] = MappingProxyType(
    {
        Step.VALIDATOR: _I.A_VALIDER_1,
        Step.MOE: _I.MISE_A_DISPOSITION_MOE,
        Step.MOA: _I.MISE_A_DISPOSITION_MOA,
        Step.SUPPLIER: _I.A_ASSOCIER_FOURNISSEUR,
        Step.RECIPIENT: _I.DEPOSEE,
    }
)

#: The step each status of a circuit belongs to (its actor's turn), with the validation level.
STEP_OF: Mapping[InvoiceStatus, tuple[Step, int]] = MappingProxyType(
    {
        _I.A_VALIDER_1: (Step.VALIDATOR, 1),
        _I.ERREUR_FOURNISSEUR_SUR_VALIDEUR: (Step.VALIDATOR, 1),
        _I.A_VALIDER_2: (Step.VALIDATOR, 2),
        _I.MISE_A_DISPOSITION_MOE: (Step.MOE, 1),
        _I.PRISE_EN_COMPTE_MOE: (Step.MOE, 1),
        _I.MISE_A_DISPOSITION_MOA: (Step.MOA, 1),
        _I.PRISE_EN_COMPTE_MOA: (Step.MOA, 1),
        _I.A_ASSOCIER_FOURNISSEUR: (Step.SUPPLIER, 1),
    }
)

_ACTOR_OF_STEP: Mapping[Step, Actor] = MappingProxyType(
    {Step.VALIDATOR: Actor.VALIDATOR, Step.MOE: Actor.MOE, Step.MOA: Actor.MOA, Step.RECIPIENT: Actor.RECIPIENT}
)

#: Statuses where nobody acts any more on the piece itself (its circuit is over or went on in a follower).
_NO_TURN = frozenset(
    {
        _I.VALIDEE_1,
        _I.VALIDEE_2,
        _I.ABSENCE_VALIDATION_1_HORS_DELAI,
        _I.ABSENCE_VALIDATION_2_HORS_DELAI,
        _I.ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE,
        _I.TRANSMISE_MOA,
        _I.REMPLACEE_PAR_A22,
    }
)

#: Statuses a piece of a framework without payment (A2, already paid) never takes.
PAYMENT_STATUSES = frozenset({_I.MANDATEE, _I.MISE_A_DISPOSITION_COMPTABLE, _I.COMPTABILISEE, _I.MISE_EN_PAIEMENT})


def entry(framework: Framework, parties: Parties) -> Turn:
    """Where a newly accepted piece of `framework` starts: the entry status of its first step."""
    return _enter(framework.steps[0], parties, 1)


def _enter(step: Step, parties: Parties, level: int) -> Turn:
    status = _I.A_VALIDER_2 if step is Step.VALIDATOR and level == 2 else _ENTRY[step]
    return Turn(status, parties.of(step, level), step, level)


def pass_on(framework: Framework, status: InvoiceStatus, parties: Parties) -> Turn | None:
    """Where the platform sends a piece next once it is in `status` (a validation done or tacit, the MOE
    silent); None when the piece stays where it is."""
    if status in (_I.VALIDEE_1, _I.ABSENCE_VALIDATION_1_HORS_DELAI) and parties.validator_2:
        return _enter(Step.VALIDATOR, parties, 2)
    if status in (_I.VALIDEE_1, _I.ABSENCE_VALIDATION_1_HORS_DELAI, _I.VALIDEE_2, _I.ABSENCE_VALIDATION_2_HORS_DELAI):
        steps = framework.steps
        after = steps[steps.index(Step.VALIDATOR) + 1] if Step.VALIDATOR in steps else Step.RECIPIENT
        turn = _enter(after, parties, 1)
        # A plain piece reaching its recipient after validation is made available at once (and delivered).
        return Turn(_I.MISE_A_DISPOSITION, turn.holder, after) if after is Step.RECIPIENT else turn
    if status is _I.ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE:
        return _enter(Step.MOA, parties, 1)
    return None


def actor_of(status: InvoiceStatus) -> Actor | None:
    """The actor whose turn it is when a piece is in `status` (None: nobody's, e.g. a final status)."""
    if status in STEP_OF:
        return _ACTOR_OF_STEP.get(STEP_OF[status][0])
    if status.is_final or status in _NO_TURN:
        return None
    return Actor.RECIPIENT


def holder_of(status: InvoiceStatus, parties: Parties) -> str | None:
    """The SIRET whose turn it is when a piece is in `status`."""
    if status in STEP_OF:
        step, level = STEP_OF[status]
        return parties.of(step, level)
    if actor_of(status) is Actor.RECIPIENT:
        return parties.buyer
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class Deadlines:
    """How long each actor has (settings ``deadlines.validator_days`` and ``deadlines.moe_days``).

    Defaults from the public texts: 15 days for the validator of a sub-contractor's or co-contractor's
    piece, 7 days for the MOE's answer to a draft statement (CCAG Travaux).
    """

    validator_days: int = 15
    moe_days: int = 7

    def days(self, status: InvoiceStatus) -> int | None:
        if status in (_I.A_VALIDER_1, _I.A_VALIDER_2):
            return self.validator_days
        if status is _I.MISE_A_DISPOSITION_MOE:
            return self.moe_days
        return None

    def due(self, status: InvoiceStatus, since: dt.datetime) -> dt.datetime | None:
        """When a piece that entered `status` at `since` runs out of time there (None: no deadline)."""
        days = self.days(status)
        return None if days is None else since + dt.timedelta(days=days)


#: The status the deadline moves a piece to, from the statuses a deadline runs in.
EXPIRED: Mapping[InvoiceStatus, InvoiceStatus] = MappingProxyType(
    {
        _I.A_VALIDER_1: _I.ABSENCE_VALIDATION_1_HORS_DELAI,
        _I.A_VALIDER_2: _I.ABSENCE_VALIDATION_2_HORS_DELAI,
        _I.MISE_A_DISPOSITION_MOE: _I.ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE,
        _I.PRISE_EN_COMPTE_MOE: _I.ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE,
    }
)
