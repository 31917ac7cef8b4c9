"""Flow and invoice statuses, in one place: what each status is, and which moves between them are allowed.

Everything here is data. Each status has a `StatusInfo` (in `flows.domain.statuses`, re-exported here):
its return-flow code (``IdStatut``), its labels (French and English) and, for flows, its display colour;
the billing circuits' statuses too (`flows.domain.circuits`). Each `Lifecycle` holds its
statuses, the statuses a new record may start in, and its allowed `Transition`s.
`check_transition` raises `IllegalTransition` for any move not in the table. Everything else is
derived from these tables: the final statuses, those waiting to be claimed, the return-flow codes.
The pipeline (`flows.pipeline.process`), the store (`flows.store`), the return flow (`flows.returns.report`) and
the CLI views (`relais.report`) read them from here.

A status marked ``reserved`` is in the platform's vocabulary (and in the return-flow schema) but
Relais does not set it yet. No transition may lead to it, and it cannot be a starting status.
Any other status must be reachable. `Lifecycle` checks all this when the module is imported.

To add a status, add the enum member and its info row in `flows.domain.statuses`, its transitions below; then add it to
``schemas/xsd/relais-cppstatut.xsd`` (``tests/flows/domain/test_lifecycle.py`` compares the two).

>>> check_transition(FlowStatus.IN_RECU, FlowStatus.IN_EN_COURS_TRAITEMENT_CPP)
<FlowStatus.IN_EN_COURS_TRAITEMENT_CPP: 'IN_EN_COURS_TRAITEMENT_CPP'>
>>> check_transition(FlowStatus.IN_INTEGRE, FlowStatus.IN_EN_COURS_TRAITEMENT_CPP)
Traceback (most recent call last):
    ...
flows.domain.lifecycle.IllegalTransition: flow status IN_INTEGRE -> IN_EN_COURS_TRAITEMENT_CPP is not allowed (IN_INTEGRE is final)
>>> FlowStatus.IN_INTEGRE_PARTIEL.code, FlowStatus.IN_INTEGRE_PARTIEL.info.label_en
('96', 'partially integrated')
>>> sorted(s.name for s in FLOW.targets(FlowStatus.IN_INCIDENTE))  # retry, or reprocess
['IN_EN_ATTENTE_RETRAITEMENT_CPP', 'IN_EN_COURS_TRAITEMENT_CPP']
>>> InvoiceStatus.REJETEE_ROUTAGE.code, InvoiceStatus.REJETEE_ROUTAGE.label, InvoiceStatus.REJETEE_ROUTAGE.is_rejected
('04', 'REJETEE', True)
>>> [s.name for s in FlowStatus if s.is_reserved] + [s.name for s in InvoiceStatus if s.is_reserved][:2]
['IN_EN_ATTENTE_TRAITEMENT_CPP', 'A_ASSOCIER_MOE', 'A_VALIDER_MOE']
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Generic, TypeVar

# The statuses and their data live in `flows.domain.statuses`; re-exported here, their one surface.
from flows.domain.statuses import (  # noqa: F401  # re-exported
    DEFAULT_COLOUR,
    FLOW_RETURN_CODES,
    FLOW_STATUSES,
    INVOICE_STATUSES,
    FlowStatus,
    FlowStatusInfo,
    InvoiceStatus,
    InvoiceStatusInfo,
    ReturnCode,
    StatusInfo,
)

# ---- moves -----------------------------------------------------------------------


class Move(enum.StrEnum):
    """Why a status changes. The name of each transition."""

    CLAIM = "claim"  # a worker takes a waiting flow (`Store.claim_flow`)
    RETRY = "retry"  # an incident whose retry time has come is taken again
    TAKEOVER = "takeover"  # a flow in progress whose worker went silent is taken over (`STALE_AFTER`)
    CLOSE = "close"  # processing ends with a verdict
    INCIDENT = "incident"  # processing failed inside Relais (fail closed)
    REPROCESS = "reprocess"  # ops requeue an incident (`relais flows reprocess`, `Store.requeue_flow`)
    REOPEN = "reopen"  # ops send a closed flow with rejections through again (`Store.reopen_flow`)
    DELIVER = "deliver"  # the platform made the invoice available to its recipient (delivery sent)
    PROCESS = "process"  # the recipient moves the invoice on (its own processing, reported to the supplier)
    COMPLETE = "complete"  # the supplier completes a suspended invoice (a new flow, same invoice number)
    PASS_ON = "pass_on"  # the platform passes a piece to the next step of its circuit (flows.domain.circuits)
    DEADLINE = "deadline"  # an actor of a circuit let its deadline pass: tacit validation, or the piece goes on
    CORRECT = "correct"  # ops correct a piece's validator (audited): it waits for the right one
    REPLACE = "replace"  # a piece of the tacit procedure (A22) replaces the one it follows


class Actor(enum.StrEnum):
    """Who sets an invoice status."""

    PLATFORM = "platform"  # Relais itself (delivery, completion detected in a new flow)
    RECIPIENT = "recipient"  # the recipient structure or one of its services (recipient API)
    SUPPLIER = "supplier"  # the sender of the invoice
    OPS = "ops"  # the operations team: a flow processed again at its request records its invoices anew
    VALIDATOR = "validator"  # the titulaire (sub-contractor's piece) or the group's mandataire (co-contractor's)
    MOE = "moe"  # the project manager (maîtrise d'œuvre) of a works contract
    MOA = "moa"  # the contracting authority (maîtrise d'ouvrage) of a works contract
    PARTNER_PLATFORM = "partner_platform"  # another platform of the reform (the buyer's), by a CDAR message


S = TypeVar("S", FlowStatus, InvoiceStatus)
Info = TypeVar("Info", FlowStatusInfo, InvoiceStatusInfo)


@dataclasses.dataclass(frozen=True, slots=True)
class Transition(Generic[S]):
    source: S
    target: S
    move: Move
    actors: frozenset[Actor] = frozenset({Actor.PLATFORM})  # who may make this move


class LifecycleError(ValueError):
    """A lifecycle table contradicts itself (raised when it is built, i.e. at import)."""


class IllegalTransition(ValueError):
    """A status change that the lifecycle does not allow: a bug in Relais, never a verdict on input."""

    def __init__(
        self, kind: str, source: enum.StrEnum, target: enum.StrEnum, allowed: Iterable[enum.StrEnum], final: bool
    ) -> None:
        self.kind, self.source, self.target = kind, source, target
        names = sorted(str(s) for s in allowed)
        why = f"{source} is final" if final else "allowed: " + (", ".join(names) if names else "none")
        super().__init__(f"{kind} status {source} -> {target} is not allowed ({why})")


@dataclasses.dataclass(frozen=True)
class Lifecycle(Generic[S, Info]):
    """The statuses of one kind of record, where a record starts, and the moves between them."""

    kind: str  # "flow" or "invoice": for messages
    statuses: Mapping[S, Info]
    initial: frozenset[S]  # what a new record may be created with
    transitions: tuple[Transition[S], ...]

    def __post_init__(self) -> None:
        members = set(type(next(iter(self.statuses))))
        if set(self.statuses) != members:
            raise LifecycleError(f"{self.kind}: no info for {sorted(members - set(self.statuses))}")
        pairs = [(t.source, t.target) for t in self.transitions]
        if len(pairs) != len(set(pairs)):
            raise LifecycleError(f"{self.kind}: a transition is listed twice")
        targets = {t.target for t in self.transitions}
        for status, info in self.statuses.items():
            if info.final and any(t.move is not Move.REOPEN for t in self.transitions if t.source is status):
                raise LifecycleError(f"{self.kind}: {status} is final but has transitions out")
            if info.reserved and (status in targets or status in self.initial):
                raise LifecycleError(f"{self.kind}: {status} is reserved but Relais sets it")
            if not info.reserved and status not in targets and status not in self.initial:
                raise LifecycleError(f"{self.kind}: {status} is never set: mark it reserved or give it a use")

    def allowed(self, source: S, target: S, actor: Actor | None = None) -> bool:
        return any(
            t.source is source and t.target is target and (actor is None or actor in t.actors) for t in self.transitions
        )

    def check(self, source: S, target: S, actor: Actor | None = None) -> S:
        """`target`, when the move from `source` is allowed (to `actor`, when given); else raise
        `IllegalTransition` naming the moves that are."""
        if not self.allowed(source, target, actor):
            allowed = self.targets(source, actor=actor)
            raise IllegalTransition(self.kind, source, target, allowed, self.statuses[source].final)
        return target

    def targets(self, source: S, move: Move | None = None, actor: Actor | None = None) -> frozenset[S]:
        return frozenset(
            t.target
            for t in self.transitions
            if t.source is source and move in (None, t.move) and (actor is None or actor in t.actors)
        )

    def sources(self, target: S, move: Move | None = None) -> tuple[S, ...]:
        """Statuses that may move to `target` (by `move`, when given), in the enum's order."""
        found = {t.source for t in self.transitions if t.target is target and move in (None, t.move)}
        return tuple(s for s in self.statuses if s in found)

    def where(self, **flags: bool) -> frozenset[S]:
        """Statuses whose info has these values, e.g. ``where(final=True)``."""
        return frozenset(s for s, info in self.statuses.items() if all(getattr(info, k) == v for k, v in flags.items()))


# ---- flows -----------------------------------------------------------------------

_F = FlowStatus

#: A worker holds the flow (`Store.claim_flow`); taken over when untouched for `flows.pipeline.process.STALE_AFTER`.
IN_PROGRESS = _F.IN_EN_COURS_TRAITEMENT_CPP
#: Claimable only once its retry time (`Flow.retry_at`) has come; never when parked (no retry time left).
RETRIED_WHEN_DUE = _F.IN_INCIDENTE
#: Where `relais flows reprocess` puts a flow (`Store.requeue_flow`).
REQUEUED = _F.IN_EN_ATTENTE_RETRAITEMENT_CPP

FLOW: Lifecycle[FlowStatus, FlowStatusInfo] = Lifecycle(
    kind="flow",
    statuses=FLOW_STATUSES,
    initial=frozenset({_F.IN_RECU}),  # `flows.pipeline.process.record`
    transitions=(
        Transition(_F.IN_RECU, IN_PROGRESS, Move.CLAIM),
        Transition(_F.IN_EN_ATTENTE_TRAITEMENT_CPP, IN_PROGRESS, Move.CLAIM),  # reserved: never set yet
        Transition(REQUEUED, IN_PROGRESS, Move.CLAIM),
        Transition(RETRIED_WHEN_DUE, IN_PROGRESS, Move.RETRY),
        Transition(IN_PROGRESS, IN_PROGRESS, Move.TAKEOVER),
        Transition(IN_PROGRESS, _F.IN_INTEGRE, Move.CLOSE),
        Transition(IN_PROGRESS, _F.IN_INTEGRE_PARTIEL, Move.CLOSE),
        Transition(IN_PROGRESS, _F.IN_REJETE, Move.CLOSE),
        Transition(IN_PROGRESS, _F.IN_INCIDENTE, Move.INCIDENT),
        Transition(_F.IN_INCIDENTE, REQUEUED, Move.REPROCESS),
        Transition(REQUEUED, REQUEUED, Move.REPROCESS),  # requeueing a requeued flow changes nothing
        # Ops reopen a closed flow with rejections (e.g. after fixing the directory): its accepted invoices
        # stay as they are (delivered once, their history kept), its rejected ones are judged again.
        Transition(_F.IN_REJETE, REQUEUED, Move.REOPEN),
        Transition(_F.IN_INTEGRE_PARTIEL, REQUEUED, Move.REOPEN),
    ),
)

#: Closed flows ops may reopen (`Store.reopen_flow`).
REOPENABLE: tuple[FlowStatus, ...] = FLOW.sources(REQUEUED, Move.REOPEN)

#: Closed flows: their return flow is sent, their deliveries may leave; never processed again.
FINAL_FLOW_STATUSES: frozenset[FlowStatus] = FLOW.where(final=True)
#: Flows a worker may claim as they are (in this order); see also RETRIED_WHEN_DUE and IN_PROGRESS.
WAITING: tuple[FlowStatus, ...] = FLOW.sources(IN_PROGRESS, Move.CLAIM)
#: Flow status -> IdStatut of its return flow.
FLOW_STATUS_CODES: Mapping[FlowStatus, str] = MappingProxyType({s: i.code for s, i in FLOW_STATUSES.items()})

_I = InvoiceStatus

_PLATFORM = frozenset({Actor.PLATFORM})
_RECIPIENT = frozenset({Actor.RECIPIENT})
_SUPPLIER = frozenset({Actor.SUPPLIER})


def _recipient(*pairs: tuple[InvoiceStatus, InvoiceStatus]) -> tuple[Transition[InvoiceStatus], ...]:
    return tuple(Transition(a, b, Move.PROCESS, _RECIPIENT) for a, b in pairs)


#: Where the recipient's processing may start: made available, or completed by the supplier.
_TAKEN = (_I.MISE_A_DISPOSITION, _I.COMPLETEE)

_VALIDATOR = frozenset({Actor.VALIDATOR})
_MOE = frozenset({Actor.MOE})
_MOA = frozenset({Actor.MOA})
_OPS = frozenset({Actor.OPS})


def _by(
    actors: frozenset[Actor], move: Move, *pairs: tuple[InvoiceStatus, InvoiceStatus]
) -> tuple[Transition[InvoiceStatus], ...]:
    return tuple(Transition(a, b, move, actors) for a, b in pairs)


def _validator_level(
    ask: InvoiceStatus, ok: InvoiceStatus, no: InvoiceStatus, late: InvoiceStatus
) -> tuple[Transition[InvoiceStatus], ...]:
    """One validation level: the validator validates, refuses or says it is not the validator; the
    platform validates tacitly at the deadline; ops correct the validator (the piece waits again)."""
    return (
        *_by(_VALIDATOR, Move.PROCESS, (ask, ok), (ask, no), (ask, _I.ERREUR_FOURNISSEUR_SUR_VALIDEUR)),
        Transition(ask, late, Move.DEADLINE),
        Transition(ask, ask, Move.CORRECT, _OPS),
        Transition(_I.ERREUR_FOURNISSEUR_SUR_VALIDEUR, ask, Move.CORRECT, _OPS),
    )


#: After a validation level (done or tacit), the platform passes the piece on to its next step.
_VALIDATED = (_I.VALIDEE_1, _I.ABSENCE_VALIDATION_1_HORS_DELAI, _I.VALIDEE_2, _I.ABSENCE_VALIDATION_2_HORS_DELAI)
_AT_MOA = (_I.MISE_A_DISPOSITION_MOA, _I.PRISE_EN_COMPTE_MOA, _I.TRANSMISE_MOA)

#: The statuses of the circuits (flows.domain.circuits): validators, MOE, MOA, supplier's signature.
_CIRCUITS: tuple[Transition[InvoiceStatus], ...] = (
    *_validator_level(_I.A_VALIDER_1, _I.VALIDEE_1, _I.REFUSEE_1, _I.ABSENCE_VALIDATION_1_HORS_DELAI),
    *_validator_level(_I.A_VALIDER_2, _I.VALIDEE_2, _I.REFUSEE_2, _I.ABSENCE_VALIDATION_2_HORS_DELAI),
    *_by(_PLATFORM, Move.PASS_ON, *((s, _I.A_VALIDER_2) for s in _VALIDATED[:2])),
    *_by(_PLATFORM, Move.PASS_ON, *((s, _I.MISE_A_DISPOSITION_MOE) for s in _VALIDATED)),
    *_by(_PLATFORM, Move.PASS_ON, *((s, _I.MISE_A_DISPOSITION) for s in _VALIDATED)),
    *_by(
        _MOE,
        Move.PROCESS,
        (_I.MISE_A_DISPOSITION_MOE, _I.PRISE_EN_COMPTE_MOE),
        (_I.MISE_A_DISPOSITION_MOE, _I.REFUSEE_MOE),
        (_I.PRISE_EN_COMPTE_MOE, _I.REFUSEE_MOE),
    ),
    *_by(
        _PLATFORM,
        Move.DEADLINE,
        (_I.MISE_A_DISPOSITION_MOE, _I.ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE),
        (_I.PRISE_EN_COMPTE_MOE, _I.ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE),
    ),
    # MOE silent: the supplier's draft goes on to the MOA (CCAG Travaux).
    Transition(_I.ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE, _I.MISE_A_DISPOSITION_MOA, Move.PASS_ON),
    *_by(
        _MOA,
        Move.PROCESS,
        (_I.MISE_A_DISPOSITION_MOA, _I.PRISE_EN_COMPTE_MOA),
        (_I.MISE_A_DISPOSITION_MOA, _I.TRANSMISE_MOA),
        (_I.MISE_A_DISPOSITION_MOA, _I.REFUSEE_MOA),
        (_I.PRISE_EN_COMPTE_MOA, _I.TRANSMISE_MOA),
        (_I.PRISE_EN_COMPTE_MOA, _I.REFUSEE_MOA),
    ),
    # The tacit procedure: a draft general statement A22 replaces the piece it follows.
    *_by(
        _PLATFORM,
        Move.REPLACE,
        *((s, _I.REMPLACEE_PAR_A22) for s in (_I.MISE_A_DISPOSITION_MOE, _I.PRISE_EN_COMPTE_MOE, *_AT_MOA)),
        (_I.ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE, _I.REMPLACEE_PAR_A22),
    ),
)

# The 2026 reform's lifecycle (docs/reform.md): an invoice routed by the reform's directory to another platform
# is issued to it (201, EN_COURS_ACHEMINEMENT, by Relais's delivery); that platform then sends the buyer's
# statuses in CDAR (202..211), the seller sends 209 and 212. Statuses Relais shares with Chorus Pro keep
# their own moves above; these are the reform's, in its order, a status never going back.
_PARTNER = frozenset({Actor.PARTNER_PLATFORM})
_BUYER_SIDE = (
    _I.RECUE,
    _I.MISE_A_DISPOSITION,
    _I.PRISE_EN_CHARGE,
    _I.APPROUVEE,
    _I.APPROUVEE_PARTIELLEMENT,
    _I.EN_LITIGE,
)
# What the buyer's platform may say once the buyer has the invoice. 202 (Reçue) and 203 (Mise à disposition)
# are optional (the reform's mandatory statuses are 200, 210, 212, 213): a platform may go on from 201 or 202.
_PROCESSING = (
    _I.PRISE_EN_CHARGE,
    _I.APPROUVEE,
    _I.APPROUVEE_PARTIELLEMENT,
    _I.EN_LITIGE,
    _I.SUSPENDUE,
    _I.REJETEE,
    _I.MISE_EN_PAIEMENT,
)
_BUYER_NEXT: dict[InvoiceStatus, tuple[InvoiceStatus, ...]] = {
    _I.EN_COURS_ACHEMINEMENT: (_I.RECUE, _I.MISE_A_DISPOSITION, _I.REJETEE_ROUTAGE, *_PROCESSING),
    _I.RECUE: (_I.MISE_A_DISPOSITION, *_PROCESSING),
    _I.MISE_A_DISPOSITION: _PROCESSING,
    _I.PRISE_EN_CHARGE: _PROCESSING[1:],
    _I.APPROUVEE: (_I.EN_LITIGE, _I.MISE_EN_PAIEMENT),
    _I.APPROUVEE_PARTIELLEMENT: (_I.EN_LITIGE, _I.MISE_EN_PAIEMENT),
    _I.EN_LITIGE: (_I.APPROUVEE, _I.APPROUVEE_PARTIELLEMENT, _I.SUSPENDUE, _I.REJETEE),
    _I.SUSPENDUE: (_I.REJETEE,),
    _I.COMPLETEE: (_I.MISE_A_DISPOSITION, _I.PRISE_EN_CHARGE, _I.APPROUVEE, _I.APPROUVEE_PARTIELLEMENT, _I.EN_LITIGE),
}


def _merged(*transitions: Transition[InvoiceStatus]) -> tuple[Transition[InvoiceStatus], ...]:
    """The transitions, one per (source, target): the reform's moves add their actor to the same move of
    Chorus Pro's lifecycle (a recipient, or the buyer's platform, suspends a made-available invoice)."""
    merged: dict[tuple[InvoiceStatus, InvoiceStatus], Transition[InvoiceStatus]] = {}
    for t in transitions:
        same = merged.get((t.source, t.target))
        if same is not None and same.move is not t.move:
            raise LifecycleError(f"invoice: {t.source} -> {t.target} is listed with two moves")
        actors = t.actors | (same.actors if same else frozenset())
        merged[(t.source, t.target)] = dataclasses.replace(t, actors=actors)
    return tuple(merged.values())


_REFORM: tuple[Transition[InvoiceStatus], ...] = (
    Transition(_I.DEPOSEE, _I.EN_COURS_ACHEMINEMENT, Move.DELIVER, _PLATFORM),
    *(Transition(a, b, Move.PROCESS, _PARTNER) for a, targets in _BUYER_NEXT.items() for b in targets),
    # The seller: completes a suspended invoice (209, as in Chorus Pro: SUSPENDUE -> COMPLETEE above), and
    # says it collected the payment (212) once the buyer has the invoice, paid or not.
    *(
        Transition(a, _I.ENCAISSEE, Move.PROCESS, _SUPPLIER)
        for a in (*_BUYER_SIDE, _I.SERVICE_FAIT, _I.MANDATEE, _I.MISE_A_DISPOSITION_COMPTABLE, _I.COMPTABILISEE)
        + (_I.MISE_EN_PAIEMENT,)
    ),
)

INVOICE: Lifecycle[InvoiceStatus, InvoiceStatusInfo] = Lifecycle(
    kind="invoice",
    statuses=INVOICE_STATUSES,
    # The verdict an invoice is recorded with (`flows.pipeline.process._decide`); reprocessing a flow deletes its
    # invoices and records them again. A piece of a billing circuit starts at its first step
    # (`flows.domain.circuits.entry`).
    initial=frozenset(
        {
            _I.DEPOSEE,
            _I.REJETEE_ROUTAGE,
            _I.REJETEE,
            _I.A_VALIDER_1,
            _I.MISE_A_DISPOSITION_MOE,
            _I.MISE_A_DISPOSITION_MOA,
            _I.A_ASSOCIER_FOURNISSEUR,
        }
    ),
    transitions=_merged(
        # Delivered by the platform; or confirmed by the recipient, who fetched it through the API first.
        Transition(_I.DEPOSEE, _I.MISE_A_DISPOSITION, Move.DELIVER, _PLATFORM | _RECIPIENT),
        *_recipient(*((s, t) for s in _TAKEN for t in (_I.REJETEE, _I.SUSPENDUE, _I.A_RECYCLER, _I.SERVICE_FAIT))),
        Transition(_I.SUSPENDUE, _I.COMPLETEE, Move.COMPLETE, _SUPPLIER | _PLATFORM),
        *_recipient(
            (_I.SUSPENDUE, _I.REJETEE),
            (_I.COMPLETEE, _I.MISE_A_DISPOSITION),
            (_I.SERVICE_FAIT, _I.MANDATEE),
            (_I.SERVICE_FAIT, _I.SUSPENDUE),
            (_I.SERVICE_FAIT, _I.REJETEE),
            (_I.MANDATEE, _I.MISE_A_DISPOSITION_COMPTABLE),
            (_I.MISE_A_DISPOSITION_COMPTABLE, _I.COMPTABILISEE),
            (_I.COMPTABILISEE, _I.MISE_EN_PAIEMENT),
        ),
        *_CIRCUITS,
        *_REFORM,
    ),
)


def cdar_code(status: InvoiceStatus, actor: Actor) -> str | None:
    """The CDAR code of a change to `status` made by `actor`: a rejection by the platform on
    reception is 213 (Rejetée), by the recipient 210 (Refusée).

    >>> cdar_code(InvoiceStatus.REJETEE, Actor.PLATFORM), cdar_code(InvoiceStatus.REJETEE, Actor.RECIPIENT)
    ('213', '210')
    >>> cdar_code(InvoiceStatus.COMPTABILISEE, Actor.RECIPIENT) is None  # no CDAR equivalent: not sent
    True
    """
    if status is _I.REJETEE and actor is Actor.PLATFORM:
        return "213"
    return status.cdar


#: Rejected invoices: not delivered, and not an original for the duplicate-invoice rule.
REJECTED_INVOICE_STATUSES: frozenset[InvoiceStatus] = INVOICE.where(rejected=True)

# ---- checking --------------------------------------------------------------------

_LIFECYCLES: Mapping[type, Lifecycle] = MappingProxyType({FlowStatus: FLOW, InvoiceStatus: INVOICE})


def lifecycle_of(status: FlowStatus | InvoiceStatus) -> Lifecycle:
    return _LIFECYCLES[type(status)]


def check_transition(source: S, target: S) -> S:
    """`target`, when moving from `source` is allowed; else raise `IllegalTransition`.

    Both statuses are flow statuses or both are invoice statuses (else `TypeError`).
    """
    if type(source) is not type(target):
        raise TypeError(f"cannot move from a {type(source).__name__} to a {type(target).__name__}")
    return lifecycle_of(source).check(source, target)
