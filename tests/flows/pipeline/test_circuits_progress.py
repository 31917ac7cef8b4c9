"""The progression of billing circuits (docs/billing-frameworks.md §4): actors moving their pieces by SIRET,
the platform passing pieces on, refusals, reason codes, deadlines with an injected clock, ops' correction
of a validator; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
import threading

import pytest
import sqlalchemy as sa

from flows.domain.circuits import Deadlines
from flows.domain.frameworks import Framework
from flows.domain.history import Source
from flows.domain.lifecycle import Actor, IllegalTransition
from flows.domain.lifecycle import InvoiceStatus as I
from flows.domain.model import Channel, Flow, Invoice, Syntax, invoice_id
from flows.domain.outbox import Address, OutboxStatus
from flows.domain.reasons import ReasonCodeRefused
from flows.pipeline import deadlines
from flows.pipeline import status_changes as statuses
from flows.store import Store
from flows.store import tables as t
from flows.store.circuits import take_links

BUYER, SUPPLIER, VAL1, VAL2, MOE, MOA, OTHER = (
    "11000201100044",
    "73282932000074",
    "35600000000048",
    "44306184100047",
    "55210055400013",
    "13000000000001",
    "99999999999999",
)
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
_numbers = itertools.count(1)


def _piece(
    store: Store,
    framework: Framework,
    status: I,
    holder: str | None,
    *,
    due_at: dt.datetime | None = None,
    held: bool = False,
    **facts: object,
) -> Invoice:
    """One recorded piece (as intake records it), with a delivery outbox row: held when `held`."""
    flow = store.create_flow(
        Flow(id="", partner="op-a", channel=Channel.FOLDER, original_name="lot.zip", size=10, sha256="ab" * 32)
    )
    values: dict[str, object] = {"supplier_id": SUPPLIER, "buyer_siret": BUYER, "validator_1": VAL1}
    values.update(facts)
    inv = Invoice(
        id=invoice_id(flow.id, 1),
        flow_id=flow.id,
        position=1,
        entry_name="e1.xml",
        syntax=Syntax.CII,
        number=f"F{next(_numbers)}",
        framework=framework,
        status=status,
        holder=holder,
        due_at=due_at,
        **values,  # type: ignore[arg-type]
    )
    store.save_invoices([inv], [(inv, Address("folder", BUYER, f"/d/{inv.id}.xml"))])
    if held:
        with store.engine.begin() as conn:
            conn.execute(sa.update(t.outbox).where(t.outbox.c.invoice_id == inv.id).values(status=OutboxStatus.HELD))
    return inv


def _moves(store: Store, inv: Invoice) -> list[tuple[I | None, I, Actor]]:
    return [(h.previous, h.status, h.actor) for h in store.invoice_history(inv.id)][1:]


# ---- actors by SIRET -------------------------------------------------------------------------------


def test_a_validation_makes_the_piece_available_to_its_recipient_in_one_go(store):
    inv = _piece(store, Framework.A9, I.A_VALIDER_1, VAL1, due_at=T0, held=True)
    assert store.delivery_status(inv.id) == OutboxStatus.HELD
    entries = statuses.act(store, inv.id, I.VALIDEE_1, siret=VAL1, now=T0)
    assert [(e.previous, e.status, e.actor, e.source) for e in entries] == [
        (I.A_VALIDER_1, I.VALIDEE_1, Actor.VALIDATOR, Source.API),
        (I.VALIDEE_1, I.MISE_A_DISPOSITION, Actor.PLATFORM, Source.PLATFORM),
    ]
    assert entries[1].reason == "Validée : mise à disposition du destinataire"
    now = store.get_invoice(inv.id)
    assert (now.status, now.holder, now.due_at) == (I.MISE_A_DISPOSITION, BUYER, None)
    assert store.delivery_status(inv.id) == OutboxStatus.PENDING  # the dispatcher delivers it now
    # the recipient goes on as with any invoice
    [done] = statuses.act(store, inv.id, I.SERVICE_FAIT, siret=BUYER)
    assert (done.actor, done.status) == (Actor.RECIPIENT, I.SERVICE_FAIT)


def test_a_second_validator_and_the_moe_get_the_piece_with_their_deadline(store):
    two = _piece(store, Framework.A12, I.A_VALIDER_1, VAL1, validator_2=VAL2, held=True)
    statuses.act(store, two.id, I.VALIDEE_1, siret=VAL1, now=T0, deadlines=Deadlines(validator_days=10))
    now = store.get_invoice(two.id)
    assert (now.status, now.holder, now.due_at) == (I.A_VALIDER_2, VAL2, T0 + dt.timedelta(days=10))
    assert store.delivery_status(two.id) == OutboxStatus.HELD  # not yet
    with pytest.raises(statuses.NotYourTurn):  # the first validator's turn is over
        statuses.act(store, two.id, I.VALIDEE_2, siret=VAL1)
    statuses.act(store, two.id, I.VALIDEE_2, siret=VAL2, now=T0)
    assert store.get_invoice(two.id).status is I.MISE_A_DISPOSITION
    assert store.delivery_status(two.id) == OutboxStatus.PENDING

    works = _piece(store, Framework.A10, I.A_VALIDER_1, VAL1, moe_siret=MOE)
    entries = statuses.act(store, works.id, I.VALIDEE_1, siret=VAL1, now=T0)
    assert entries[-1].status is I.MISE_A_DISPOSITION_MOE
    now = store.get_invoice(works.id)
    assert (now.holder, now.due_at) == (MOE, T0 + dt.timedelta(days=7))
    # the MOE takes it in: its deadline keeps running (tacit after 7 days from availability)
    [taken] = statuses.act(store, works.id, I.PRISE_EN_COMPTE_MOE, siret=MOE)
    assert taken.actor is Actor.MOE
    assert store.get_invoice(works.id).due_at == T0 + dt.timedelta(days=7)


def test_only_the_holder_moves_a_piece_and_only_as_the_lifecycle_allows(store):
    inv = _piece(store, Framework.A9, I.A_VALIDER_1, VAL1)
    for siret in (OTHER, BUYER, SUPPLIER):  # the buyer's turn comes after the validator's
        with pytest.raises(statuses.NotYourTurn) as e:
            statuses.act(store, inv.id, I.VALIDEE_1, siret=siret)
        assert e.value.actor is Actor.VALIDATOR and e.value.status is I.A_VALIDER_1
    with pytest.raises(IllegalTransition) as illegal:
        statuses.act(store, inv.id, I.SERVICE_FAIT, siret=VAL1)
    assert "VALIDEE_1" in str(illegal.value) or "21" in str(illegal.value)
    with pytest.raises(statuses.UnknownInvoice):
        statuses.act(store, "CPP-nope", I.VALIDEE_1, siret=VAL1)
    assert _moves(store, inv) == [] and store.get_invoice(inv.id).status is I.A_VALIDER_1


def test_the_recipient_keeps_its_rule_buyer_and_service(store):
    inv = _piece(store, Framework.A1, I.MISE_A_DISPOSITION, BUYER, service_code="DSI")
    with pytest.raises(statuses.NotYourTurn):
        statuses.act(store, inv.id, I.SERVICE_FAIT, siret=BUYER, service_code="COMPTA")
    with pytest.raises(statuses.NotYourTurn):
        statuses.act(store, inv.id, I.SERVICE_FAIT, siret=OTHER)
    [e] = statuses.act(store, inv.id, I.SERVICE_FAIT, siret=BUYER, service_code="DSI")
    assert e.actor is Actor.RECIPIENT
    [e] = statuses.act(store, inv.id, I.MANDATEE, siret=BUYER)  # no service: the whole structure
    assert e.status is I.MANDATEE


def test_an_already_paid_piece_never_takes_payment_statuses(store):
    paid = _piece(store, Framework.A2, I.SERVICE_FAIT, BUYER)
    with pytest.raises(IllegalTransition) as e:
        statuses.act(store, paid.id, I.MANDATEE, siret=BUYER)
    assert "MANDATEE" not in str(e.value).split("allowed:")[-1]
    with pytest.raises(IllegalTransition):  # the platform's entry point says the same
        statuses.change(store, paid.id, I.MANDATEE, actor=Actor.RECIPIENT, source=Source.CLI)
    assert store.get_invoice(paid.id).status is I.SERVICE_FAIT
    plain = _piece(store, Framework.A1, I.SERVICE_FAIT, BUYER)
    assert statuses.act(store, plain.id, I.MANDATEE, siret=BUYER)[0].status is I.MANDATEE


def test_refusals_need_a_reason_and_an_allowed_code(store):
    inv = _piece(store, Framework.A4, I.MISE_A_DISPOSITION_MOE, MOE, moe_siret=MOE)
    with pytest.raises(statuses.ReasonRequired):
        statuses.act(store, inv.id, I.REFUSEE_MOE, siret=MOE, reason_code="AUTRE")
    with pytest.raises(ReasonCodeRefused) as missing:
        statuses.act(store, inv.id, I.REFUSEE_MOE, siret=MOE, reason="incomplet")
    assert "DECOMPTE_INCOMPLET" in missing.value.allowed and "MONTANT" not in missing.value.allowed
    with pytest.raises(ReasonCodeRefused):  # the MOE corrects amounts, it does not refuse for them
        statuses.act(store, inv.id, I.REFUSEE_MOE, siret=MOE, reason="montant faux", reason_code="MONTANT")
    with pytest.raises(ReasonCodeRefused):
        statuses.act(store, inv.id, I.REFUSEE_MOE, siret=MOE, reason="x", reason_code="NOPE")
    with pytest.raises(ReasonCodeRefused):  # a code where none may go
        statuses.act(store, inv.id, I.PRISE_EN_COMPTE_MOE, siret=MOE, reason_code="AUTRE")
    assert _moves(store, inv) == []
    [e] = statuses.act(
        store, inv.id, I.REFUSEE_MOE, siret=MOE, reason="décompte incomplet", reason_code="DECOMPTE_INCOMPLET"
    )
    assert (e.status, e.actor, e.reason_code) == (I.REFUSEE_MOE, Actor.MOE, "DECOMPTE_INCOMPLET")
    assert store.invoice_history(inv.id)[-1].reason_code == "DECOMPTE_INCOMPLET"  # stored, read back
    now = store.get_invoice(inv.id)
    assert (now.due_at, now.holder) == (None, None)  # no deadline runs on a refused piece, nobody's turn
    with pytest.raises(statuses.NotYourTurn):  # the MOE's turn is over
        statuses.act(store, inv.id, I.PRISE_EN_COMPTE_MOE, siret=MOE)


def test_reason_codes_through_change_the_api_needs_one_the_platform_none(store):
    inv = _piece(store, Framework.A1, I.MISE_A_DISPOSITION, BUYER)
    with pytest.raises(ReasonCodeRefused):
        statuses.change(store, inv.id, I.SUSPENDUE, actor=Actor.RECIPIENT, source=Source.API, reason="pièce")
    e = statuses.change(
        store, inv.id, I.SUSPENDUE, actor=Actor.RECIPIENT, source=Source.API, reason="pièce", reason_code="PIECE_JOINTE"
    )
    assert e.reason_code == "PIECE_JOINTE"
    other = _piece(store, Framework.A1, I.MISE_A_DISPOSITION, BUYER)  # a status file needs no code
    e = statuses.change(store, other.id, I.REJETEE, actor=Actor.RECIPIENT, source=Source.RETURN_FLOW, reason="non")
    assert e.reason_code is None


def test_a_refused_follower_frees_the_piece_it_followed(store):
    first = _piece(store, Framework.A4, I.MISE_A_DISPOSITION_MOE, MOE, moe_siret=MOE)
    follower = _piece(store, Framework.A15, I.MISE_A_DISPOSITION_MOA, BUYER)
    with store.engine.begin() as conn:
        assert take_links(conn, [(first.id, follower.id)]) == set()
    assert store.pieces_by_number(first.number)[0].followed_by == follower.id
    statuses.act(store, follower.id, I.PRISE_EN_COMPTE_MOA, siret=BUYER)  # not a refusal: the link stays
    assert store.pieces_by_number(first.number)[0].followed_by == follower.id
    [e] = statuses.act(store, follower.id, I.REFUSEE_MOA, siret=BUYER, reason="non", reason_code="MARCHE")
    assert e.actor is Actor.MOA and store.get_invoice(follower.id).holder is None
    assert store.pieces_by_number(first.number)[0].followed_by is None


def test_the_moa_is_the_buyer_when_none_is_named(store):
    inv = _piece(store, Framework.A4, I.MISE_A_DISPOSITION_MOE, MOE, moe_siret=MOE, moa_siret=MOA, due_at=T0)
    assert deadlines.apply(store, T0, Deadlines()) == 1
    assert store.get_invoice(inv.id).holder == MOA
    with pytest.raises(statuses.NotYourTurn):
        statuses.act(store, inv.id, I.PRISE_EN_COMPTE_MOA, siret=BUYER)
    statuses.act(store, inv.id, I.TRANSMISE_MOA, siret=MOA)
    after = store.get_invoice(inv.id)
    assert (after.status, after.holder) == (I.TRANSMISE_MOA, None)  # the MOA's step is over: nobody's turn
    with pytest.raises(statuses.NotYourTurn):  # and it may not refuse what it passed on
        statuses.act(store, inv.id, I.REFUSEE_MOA, siret=MOA, reason="non", reason_code="AUTRE")


# ---- deadlines -------------------------------------------------------------------------------------


def test_a_silent_validator_validates_tacitly_at_the_deadline_not_before(store):
    due = T0 + dt.timedelta(days=15)
    inv = _piece(store, Framework.A9, I.A_VALIDER_1, VAL1, due_at=due, held=True)
    assert deadlines.apply(store, due - dt.timedelta(seconds=1), Deadlines()) == 0
    assert store.get_invoice(inv.id).status is I.A_VALIDER_1
    assert deadlines.apply(store, due, Deadlines()) == 1
    history = store.invoice_history(inv.id)[1:]
    assert [(h.previous, h.status, h.actor) for h in history] == [
        (I.A_VALIDER_1, I.ABSENCE_VALIDATION_1_HORS_DELAI, Actor.PLATFORM),
        (I.ABSENCE_VALIDATION_1_HORS_DELAI, I.MISE_A_DISPOSITION, Actor.PLATFORM),
    ]
    assert history[0].reason == "Délai de validation de 15 jours dépassé : validation tacite"
    assert store.delivery_status(inv.id) == OutboxStatus.PENDING
    assert store.get_invoice(inv.id).holder == BUYER
    assert deadlines.apply(store, due + dt.timedelta(days=30), Deadlines()) == 0  # idempotent
    assert len(store.invoice_history(inv.id)) == 3


def test_a_silent_moe_lets_the_piece_go_to_the_moa(store):
    due = T0 + dt.timedelta(days=7)
    waiting = _piece(store, Framework.A4, I.MISE_A_DISPOSITION_MOE, MOE, moe_siret=MOE, due_at=due)
    taken = _piece(store, Framework.A7, I.PRISE_EN_COMPTE_MOE, MOE, moe_siret=MOE, due_at=due)
    later = _piece(
        store, Framework.A4, I.MISE_A_DISPOSITION_MOE, MOE, moe_siret=MOE, due_at=due + dt.timedelta(hours=1)
    )
    assert deadlines.apply(store, due, Deadlines(moe_days=7)) == 2
    for inv in (waiting, taken):
        now = store.get_invoice(inv.id)
        assert (now.status, now.holder, now.due_at) == (I.MISE_A_DISPOSITION_MOA, BUYER, None)
        [late, passed] = store.invoice_history(inv.id)[1:]
        assert (late.status, late.actor) == (I.ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE, Actor.PLATFORM)
        assert "7 jours" in late.reason and "maîtrise d'ouvrage" in passed.reason
    assert store.get_invoice(later.id).status is I.MISE_A_DISPOSITION_MOE
    assert store.delivery_status(waiting.id) == OutboxStatus.PENDING  # untouched: it was never held


def test_a_piece_moved_meanwhile_is_left_alone(store):
    inv = _piece(store, Framework.A9, I.A_VALIDER_1, VAL1, due_at=T0)
    [read] = store.due_pieces(T0, [I.A_VALIDER_1])
    statuses.act(store, inv.id, I.VALIDEE_1, siret=VAL1)  # the validator answers just in time
    assert deadlines.expire(store, read, T0, Deadlines()) is False
    assert [h.status for h in store.invoice_history(inv.id)][1:] == [I.VALIDEE_1, I.MISE_A_DISPOSITION]

    corrected = _piece(store, Framework.A9, I.A_VALIDER_1, VAL1, due_at=T0)
    [read] = [p for p in store.due_pieces(T0, [I.A_VALIDER_1]) if p.id == corrected.id]
    statuses.correct_validator(store, corrected.id, VAL2, reason="mauvais valideur", now=T0)  # a new deadline
    assert deadlines.expire(store, read, T0, Deadlines()) is False
    assert store.get_invoice(corrected.id).status is I.A_VALIDER_1


def test_two_runners_apply_deadlines_at_once_each_piece_moves_once(store):
    pieces = [_piece(store, Framework.A9, I.A_VALIDER_1, VAL1, due_at=T0, held=True) for _ in range(6)]
    barrier = threading.Barrier(2)
    moved: list[int] = []
    errors: list[BaseException] = []

    def runner() -> None:
        try:
            barrier.wait()
            moved.append(deadlines.apply(store, T0, Deadlines()))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert sum(moved) == len(pieces)
    for inv in pieces:
        statuses_taken = [h.status for h in store.invoice_history(inv.id)]
        assert statuses_taken == [I.A_VALIDER_1, I.ABSENCE_VALIDATION_1_HORS_DELAI, I.MISE_A_DISPOSITION]


# ---- ops correct a validator -----------------------------------------------------------------------


def test_ops_correct_a_wrong_validator_the_piece_waits_again(store):
    inv = _piece(store, Framework.A9, I.A_VALIDER_1, VAL1, due_at=T0)
    [said] = statuses.act(store, inv.id, I.ERREUR_FOURNISSEUR_SUR_VALIDEUR, siret=VAL1)
    assert said.actor is Actor.VALIDATOR
    e = statuses.correct_validator(store, inv.id, OTHER, reason="le titulaire est l'autre société", now=T0)
    assert (e.previous, e.status, e.actor, e.source) == (
        I.ERREUR_FOURNISSEUR_SUR_VALIDEUR,
        I.A_VALIDER_1,
        Actor.OPS,
        Source.CLI,
    )
    now = store.get_invoice(inv.id)
    assert (now.holder, now.validator_1, now.due_at) == (OTHER, OTHER, T0 + dt.timedelta(days=15))
    with pytest.raises(statuses.NotYourTurn):
        statuses.act(store, inv.id, I.VALIDEE_1, siret=VAL1)
    statuses.act(store, inv.id, I.VALIDEE_1, siret=OTHER)

    second = _piece(store, Framework.A9, I.A_VALIDER_2, VAL2, validator_2=VAL2)
    statuses.act(store, second.id, I.ERREUR_FOURNISSEUR_SUR_VALIDEUR, siret=VAL2)
    e = statuses.correct_validator(store, second.id, OTHER, reason="second valideur erroné")
    assert e.status is I.A_VALIDER_2
    now = store.get_invoice(second.id)
    assert (now.validator_1, now.validator_2, now.holder) == (VAL1, OTHER, OTHER)

    with pytest.raises(statuses.WrongStep):
        statuses.correct_validator(store, inv.id, VAL1, reason="trop tard")  # now with its recipient
    with pytest.raises(statuses.ReasonRequired):
        statuses.correct_validator(store, second.id, VAL1, reason="  ")
    with pytest.raises(statuses.UnknownInvoice):
        statuses.correct_validator(store, "CPP-nope", VAL1, reason="x")
