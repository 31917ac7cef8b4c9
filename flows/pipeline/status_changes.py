"""Change an invoice's status: the lifecycle's rules, who may, the reason, and the history, in one place.

Every status change after an invoice is recorded goes through here (the recipient API, the actors of the
billing circuits, the platform's own moves, an operator): the move is checked against
`flows.domain.lifecycle.INVOICE` for the actor, a reason (and, from an actor through the API, a reason code
of `flows.domain.reasons`) is required where the lifecycle says so, and the history entry is appended in
the same transaction as the new status (`Store.move_piece`). Refused moves change nothing.

Two entry points:

- `change`: one move by a given actor (the platform, an operator, the recipient API as it is today).
- `cdar_move`: a move a received CDAR line asks for (`flows.pipeline.cdar_in`), by the buyer's platform
  (`Actor.PARTNER_PLATFORM`) or the seller (`Actor.SUPPLIER`): the same lifecycle check, its reason code as
  received (a code `flows.domain.cdar.reason_allowed` accepts with the CDAR status, instead of
  `flows.domain.reasons`), made with the other lines of its message in one transaction
  (`flows.store.cdar.CdarRepo.cdar_apply`).
- `act`: a move by whoever holds a SIRET (an API token): its role is the actor whose turn it is
  (`flows.domain.circuits.actor_of` the current status), and the SIRET must be the piece's *holder* (for
  the recipient: its buyer, and its service when the token has one).

After `act`'s move, in the same transaction (docs/billing-frameworks.md §4), the platform passes the piece
on to its next step when its circuit says so (`flows.domain.circuits.pass_on`: a second history entry,
`Move.PASS_ON`, with the new holder and deadline), and a piece made available to its recipient gets its
held delivery released to the dispatcher. With either, a follower that is refused or rejected frees the
piece it followed (`flows.store.circuits.release_link`). `correct_validator` is ops' correction of a wrong
validator (`relais invoices validator`).

Errors (nothing is changed when one is raised): `UnknownInvoice`, `ReasonRequired`,
`flows.domain.reasons.ReasonCodeRefused` (a missing, unknown or disallowed reason code: its ``allowed``),
`NotYourTurn` (the SIRET has no move to make on the piece now), `flows.domain.lifecycle.IllegalTransition`
(the move is not allowed from the current status to this actor: its message names those that are; an
A2 piece never takes a payment status), `flows.store.StatusChanged` (the piece kept changing meanwhile).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flows.domain import cdar, circuits, log
from flows.domain.circuits import Deadlines, Parties
from flows.domain.errors import RelaisError
from flows.domain.frameworks import Framework
from flows.domain.history import HistoryEntry, Source
from flows.domain.lifecycle import INVOICE, Actor, IllegalTransition, InvoiceStatus
from flows.domain.model import Invoice, utcnow
from flows.domain.reasons import REASONS
from flows.returns.status import completed_reason
from flows.store import StatusChanged, Store
from flows.store.circuits import StatusMove

_log = log.get("relais.status_changes")

_I = InvoiceStatus


class UnknownInvoice(RelaisError, LookupError):
    """No such invoice (or, for the API, none the caller may see)."""


class ReasonRequired(RelaisError, ValueError):
    """REJETEE, SUSPENDUE and the refusals of a circuit need a reason."""

    def __init__(self, status: InvoiceStatus) -> None:
        self.status = status
        super().__init__(f"a reason is required to set {status.label}")


class NotYourTurn(RelaisError, PermissionError):
    """The SIRET has no move to make on the piece now: the piece is at another actor's step (`actor`, None:
    nobody's), or at this step but held by another SIRET. The API answers it as a move the token may not
    make (409, no move allowed), or as an unknown piece when the SIRET has no part in it at all."""

    def __init__(self, invoice_id: str, status: InvoiceStatus, actor: Actor | None) -> None:
        self.invoice_id, self.status, self.actor = invoice_id, status, actor
        whose = f"{actor}'s turn" if actor else "nobody's turn"
        super().__init__(f"invoice {invoice_id} is {status.name} ({whose}): not this SIRET's to move")


class WrongStep(RelaisError, ValueError):
    """Ops' correction of a validator asked for a piece that is not waiting for a validator."""

    def __init__(self, invoice_id: str, status: InvoiceStatus) -> None:
        self.invoice_id, self.status = invoice_id, status
        super().__init__(f"invoice {invoice_id} is {status.name}: not waiting for a validator")


MAX_REASON = 2000
_TRIES = 3


def change(
    store: Store,
    invoice_id: str,
    target: InvoiceStatus,
    *,
    actor: Actor,
    source: Source,
    reason: str | None = None,
    reason_code: str | None = None,
    deadlines: Deadlines | None = None,
    now: dt.datetime | None = None,
) -> HistoryEntry:
    """Move `invoice_id` to `target` as `actor`: one move, one history entry (a refused follower frees the
    piece it followed; the platform's pass on is `act`'s). A refusal or a suspension by an actor through the
    API (not the platform) needs a `reason_code`; a code given is always checked. Raises `UnknownInvoice`,
    `ReasonRequired`, `ReasonCodeRefused` or `IllegalTransition` (naming the moves allowed); nothing is
    changed then."""
    reason = _reason(target, reason)

    def allowed(inv: Invoice, current: InvoiceStatus, holder: str | None) -> Actor:
        _check_move(inv.framework, current, target, actor)
        _check_code(target, reason_code, required=source is Source.API and actor is not Actor.PLATFORM)
        return actor

    return _move(store, invoice_id, target, allowed, source, reason, reason_code, deadlines, now, pass_on=False)[0]


class CdarReasonRefused(RelaisError, ValueError):
    """A received CDAR line's reason code its status may not take (the schematron says it first)."""

    def __init__(self, status: str, code: str | None) -> None:
        self.status, self.code = status, code
        super().__init__(f"reason code {code!r} is not allowed with CDAR status {status}")


def cdar_move(
    framework: Framework,
    target: InvoiceStatus,
    *,
    status: str,
    actor: Actor,
    reason: str | None,
    reason_code: str | None,
) -> StatusMove:
    """The move a received CDAR line (`status`, its Relais `target`) makes, checked as every change is, from the
    invoice's status when it is written (an earlier line of the same message may have moved it). A status
    that needs a reason takes the received text, else its reason code. Raises `CdarReasonRefused` now; the
    move's check raises `IllegalTransition` when the lifecycle does not allow it then."""
    if not cdar.reason_allowed(status, reason_code):
        raise CdarReasonRefused(status, reason_code)
    text = _reason(target, reason or reason_code)

    def check(current: InvoiceStatus, holder: str | None) -> None:
        _check_move(framework, current, target, actor)

    return StatusMove(
        target=target, actor=actor, source=Source.CDAR, check=check, reason=text, reason_code=reason_code, turn=None
    )


def act(
    store: Store,
    invoice_id: str,
    target: InvoiceStatus,
    *,
    siret: str,
    service_code: str | None = None,
    source: Source = Source.API,
    reason: str | None = None,
    reason_code: str | None = None,
    deadlines: Deadlines | None = None,
    now: dt.datetime | None = None,
) -> list[HistoryEntry]:
    """Move `invoice_id` to `target` as the actor whose turn it is, for `siret` (a token's): the validator,
    the MOE or the MOA must be the piece's holder; the recipient its buyer (and `service_code`'s service
    when given). Then, in the same transaction, the platform passes the piece on when its circuit says so.
    Returns the history entries (the actor's, then the platform's when it passed the piece on). Raises as
    the module says; nothing is changed then."""
    reason = _reason(target, reason)

    def allowed(inv: Invoice, current: InvoiceStatus, holder: str | None) -> Actor:
        actor = circuits.actor_of(current)
        if actor is None or not _holds(actor, inv, holder, siret, service_code):
            raise NotYourTurn(inv.id, current, actor)
        _check_move(inv.framework, current, target, actor)  # a move not allowed is said first (409) ...
        _check_code(target, reason_code, required=True)  # ... then a reason code it may not take (422)
        return actor

    return _move(store, invoice_id, target, allowed, source, reason, reason_code, deadlines, now)


def correct_validator(
    store: Store,
    invoice_id: str,
    siret: str,
    *,
    reason: str,
    deadlines: Deadlines | None = None,
    now: dt.datetime | None = None,
) -> HistoryEntry:
    """Ops set the right validator of a piece waiting for one (``A_VALIDER_n``), or that its validator
    answered is not its own (``ERREUR_FOURNISSEUR_SUR_VALIDEUR``): the piece is ``A_VALIDER_n`` again
    (`Actor.OPS`, `Move.CORRECT`) for `siret`, with a new deadline, and the piece's validator n is
    `siret` from now on. Raises `UnknownInvoice`, `ReasonRequired`, `WrongStep`; nothing is changed then."""
    reason = (reason or "").strip()[:MAX_REASON]
    if not reason:
        raise ReasonRequired(_I.A_VALIDER_1)
    deadlines = deadlines or Deadlines()
    for attempt in range(_TRIES):
        inv = store.get_invoice(invoice_id)
        if inv is None:
            raise UnknownInvoice(invoice_id)
        level = _validation_level(store, inv)
        if level is None:
            raise WrongStep(invoice_id, inv.status)
        target = _I.A_VALIDER_2 if level == 2 else _I.A_VALIDER_1
        read = inv.status

        def check(current: InvoiceStatus, holder: str | None, read: InvoiceStatus = read) -> None:
            if current is not read:
                raise StatusChanged(f"invoice {invoice_id} changed status meanwhile")

        at = now or utcnow()
        move = StatusMove(
            target=target,
            actor=Actor.OPS,
            source=Source.CLI,
            check=check,
            reason=reason,
            turn=(siret, deadlines.due(target, at)),
        )
        try:
            entries = store.move_piece(invoice_id, [move], validator=(level, siret))
        except StatusChanged:
            if attempt == _TRIES - 1:
                raise
            continue
        if entries is None:
            raise UnknownInvoice(invoice_id)
        return entries[0]
    raise AssertionError("unreachable")


# ---- how -------------------------------------------------------------------------------------------


def _reason(target: InvoiceStatus, reason: str | None) -> str | None:
    reason = (reason or "").strip()[:MAX_REASON] or None
    if target.needs_reason and not reason:
        raise ReasonRequired(target)
    return reason


def _check_code(target: InvoiceStatus, code: str | None, *, required: bool) -> None:
    """`ReasonCodeRefused` for a code `target` may not take, or none where one is `required`."""
    if code is None and not required:
        return
    REASONS.check(code, target)


def _holds(actor: Actor, inv: Invoice, holder: str | None, siret: str, service_code: str | None) -> bool:
    """Whether `siret` (with `service_code`) is the one acting at `actor`'s step of `inv`."""
    if actor is Actor.RECIPIENT:  # as the recipient API always did: the buyer, and its service if given
        return inv.buyer_siret == siret and (service_code is None or inv.service_code == service_code)
    return holder is not None and holder == siret


def _check_move(framework: Framework, current: InvoiceStatus, target: InvoiceStatus, actor: Actor) -> None:
    """`IllegalTransition` unless `actor` may move a piece of `framework` from `current` to `target`."""
    if framework is Framework.A2 and target in circuits.PAYMENT_STATUSES:  # already paid: no payment statuses
        allowed = INVOICE.targets(current, actor=actor) - circuits.PAYMENT_STATUSES
        raise IllegalTransition("invoice", current, target, allowed, current.is_final)
    INVOICE.check(current, target, actor)


def _move(
    store: Store,
    invoice_id: str,
    target: InvoiceStatus,
    allowed: Callable[[Invoice, InvoiceStatus, str | None], Actor],
    source: Source,
    reason: str | None,
    reason_code: str | None,
    deadlines: Deadlines | None,
    now: dt.datetime | None,
    *,
    pass_on: bool = True,
) -> list[HistoryEntry]:
    """The move `allowed` says whose it is, then (with `pass_on`) the platform's pass on, in one transaction;
    tried again when the piece changed between reading and writing it."""
    deadlines = deadlines or Deadlines()
    for attempt in range(_TRIES):
        inv = store.get_invoice(invoice_id)
        if inv is None:
            raise UnknownInvoice(invoice_id)
        actor = allowed(inv, inv.status, inv.holder)  # raises now, before any transaction, when refused
        read = inv.status

        def check(current: InvoiceStatus, holder: str | None, inv: Invoice = inv, read: InvoiceStatus = read) -> None:
            if current is not read:
                raise StatusChanged(f"invoice {invoice_id} changed status meanwhile")
            allowed(inv, current, holder)  # the holder may have changed meanwhile (ops' correction)

        first = StatusMove(
            target=target,
            actor=actor,
            source=source,
            check=check,
            reason=reason,
            reason_code=reason_code,
            turn=_turn_after(actor, target, inv),
        )
        moves, deliver = _then([first], inv, target, deadlines, now or utcnow()) if pass_on else ([first], False)
        try:
            entries = store.move_piece(invoice_id, moves, release=target.is_rejected, deliver=deliver)
        except StatusChanged:
            if attempt == _TRIES - 1:
                raise
            continue
        if entries is None:
            raise UnknownInvoice(invoice_id)
        return entries
    raise AssertionError("unreachable")


def _turn_after(actor: Actor, target: InvoiceStatus, inv: Invoice) -> tuple[str | None, dt.datetime | None] | None:
    """The (holder, due) of a piece an actor moved to `target`: kept while the actor's deadline still runs
    there (the MOE took it in) or the recipient goes on; no deadline once the actor's step is done, and
    nobody's turn once a validator, the MOE or the MOA ended its step (a refusal, TRANSMISE_MOA: its token
    no longer lists it; the platform's pass on, when there is one, gives the next holder)."""
    if actor is Actor.RECIPIENT or target in circuits.EXPIRED:
        return None
    if circuits.actor_of(target) is None:
        return (None, None)
    return (inv.holder, None)


def _then(
    moves: list[StatusMove], inv: Invoice, status: InvoiceStatus, deadlines: Deadlines, now: dt.datetime
) -> tuple[list[StatusMove], bool]:
    """`moves` and the platform's pass on after them, when the piece's circuit sends it on from `status`;
    whether the piece is then made available to its recipient (its delivery released)."""
    turn = circuits.pass_on(inv.framework, status, Parties.named_by(inv))
    if turn is None:
        return moves, False

    def check(current: InvoiceStatus, holder: str | None) -> None:
        INVOICE.check(current, turn.status, Actor.PLATFORM)

    passed = StatusMove(
        target=turn.status,
        actor=Actor.PLATFORM,
        source=Source.PLATFORM,
        check=check,
        reason=passed_reason(turn),
        turn=(turn.holder, deadlines.due(turn.status, now)),
    )
    return [*moves, passed], turn.status is _I.MISE_A_DISPOSITION


def pass_on_moves(
    inv: Invoice, status: InvoiceStatus, deadlines: Deadlines, now: dt.datetime
) -> tuple[list[StatusMove], bool]:
    """The platform's pass on of `inv` once in `status` (`flows.pipeline.deadlines`): its moves (none when
    the piece stays), and whether its delivery is released."""
    return _then([], inv, status, deadlines, now)


def passed_reason(turn: circuits.Turn) -> str:
    """The history reason of the platform's pass on (French: it reaches the depositor's return flow)."""
    if turn.status is _I.A_VALIDER_2:
        return "Transmise au second valideur"
    if turn.status is _I.MISE_A_DISPOSITION_MOE:
        return "Validée : mise à disposition de la maîtrise d'œuvre"
    if turn.status is _I.MISE_A_DISPOSITION_MOA:
        return "Sans réponse de la maîtrise d'œuvre : mise à disposition de la maîtrise d'ouvrage"
    return "Validée : mise à disposition du destinataire"


def _validation_level(store: Store, inv: Invoice) -> int | None:
    """The validation level a piece waits at (1 or 2), or whose validator said it is not its own; None: it
    waits for no validator."""
    if inv.status is _I.A_VALIDER_1:
        return 1
    if inv.status is _I.A_VALIDER_2:
        return 2
    if inv.status is _I.ERREUR_FOURNISSEUR_SUR_VALIDEUR:
        said = [h for h in store.invoice_history(inv.id) if h.status is _I.ERREUR_FOURNISSEUR_SUR_VALIDEUR]
        return 2 if said and said[-1].previous is _I.A_VALIDER_2 else 1
    return None


def complete_suspended(store: Store, flow_id: str, matches: list[tuple[str, str]] | None = None) -> None:
    """An accepted invoice of `flow_id` with the number of a SUSPENDUE invoice of the same supplier and year
    completes it: the suspended one becomes COMPLETEE (the supplier's move), the new one goes on as any invoice.
    Called once the flow is closed: a completion that fails is logged, ops can redo it. `matches`: the pairs
    already read (`Store.suspended_matches_of`, a group of flows), else read here."""
    for new_id, old_id in store.suspended_matches(flow_id) if matches is None else matches:
        try:
            change(
                store,
                old_id,
                InvoiceStatus.COMPLETEE,
                actor=Actor.SUPPLIER,
                source=Source.PLATFORM,
                reason=completed_reason(new_id, flow_id),
            )
            _log.info("invoice.completed", invoice_id=old_id, by=new_id)
        except Exception as e:  # the flow is closed; the completion is logged, ops can redo it
            _log.error("invoice.completion_failed", invoice_id=old_id, by=new_id, error=f"{type(e).__name__}: {e}")
