"""Flow and invoice statuses (flows/domain/lifecycle.py): against the return-flow XSD, and their transitions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import click
import pytest
from lxml import etree

from flows.domain import lifecycle as lc
from flows.domain import model
from flows.domain.lifecycle import (
    FlowStatus,
    IllegalTransition,
    InvoiceStatus,
    Lifecycle,
    LifecycleError,
    Move,
    Transition,
)
from flows.domain.model import Channel, Flow
from flows.pipeline import process as pipeline
from flows.returns import report as returnflow
from flows.store import Store

XS = {"xs": "http://www.w3.org/2001/XMLSchema"}
F, I = FlowStatus, InvoiceStatus  # noqa: E741


@pytest.fixture(scope="module")
def xsd() -> etree._ElementTree:
    return etree.parse(str(returnflow.SCHEMA_PATH))


def _enumeration(xsd: etree._ElementTree, simple_type: str) -> set[str]:
    found = xsd.xpath(f"//xs:simpleType[@name='{simple_type}']/xs:restriction/xs:enumeration/@value", namespaces=XS)
    assert found, simple_type
    return set(found)


# ---- the XSD and the lifecycle agree ---------------------------------------------


def test_flow_statuses_are_the_xsd_enumeration(xsd) -> None:
    assert _enumeration(xsd, "StatutFluxType") == {s.value for s in FlowStatus} == {s.value for s in lc.FLOW_STATUSES}


def test_flow_return_codes_are_the_xsd_enumeration(xsd) -> None:
    assert _enumeration(xsd, "IdStatutFluxType") == set(lc.FLOW_RETURN_CODES)
    emitted = {info.code for info in lc.FLOW_STATUSES.values()}
    assert emitted == {c for c, r in lc.FLOW_RETURN_CODES.items() if not r.reserved}
    assert {c for c, r in lc.FLOW_RETURN_CODES.items() if r.reserved} == {"92"}  # a later acknowledgement


def test_invoice_status_codes_and_labels_follow_the_xsd(xsd) -> None:
    [pattern] = xsd.xpath(
        "//xs:complexType[@name='DonneesStatutType']//xs:element[@name='IdStatut']//xs:pattern/@value", namespaces=XS
    )
    codes = {s.code for s in InvoiceStatus}
    assert len(codes) == len(InvoiceStatus)  # one code per status
    assert {c for c in codes if re.fullmatch(pattern, c)} == codes
    assert codes == {s.value for s in InvoiceStatus}  # the enum's value is the platform code
    assert {s.label for s in InvoiceStatus} <= _enumeration(xsd, "LibelleStatutType")


# ---- every status is described -----------------------------------------------------


@pytest.mark.parametrize("status", list(FlowStatus))
def test_every_flow_status_has_a_code_labels_and_a_colour(status: FlowStatus) -> None:
    info = lc.FLOW_STATUSES[status]
    assert info is status.info
    assert status.code == info.code and info.code in lc.FLOW_RETURN_CODES
    assert not lc.FLOW_RETURN_CODES[info.code].reserved
    assert info.label_fr and info.label_en
    assert info.colour
    click.style("x", fg=info.fg)  # a colour click knows (raises otherwise)


@pytest.mark.parametrize("status", list(InvoiceStatus))
def test_every_invoice_status_has_a_code_and_labels(status: InvoiceStatus) -> None:
    info = lc.INVOICE_STATUSES[status]
    assert info is status.info and status.code == info.code
    assert info.label and info.label_fr and info.label_en


def test_what_the_code_relied_on_is_unchanged() -> None:
    """The values the pipeline, store, return flow and CLI used before the statuses had one home."""
    assert model.FlowStatus is FlowStatus and model.InvoiceStatus is InvoiceStatus
    assert lc.FINAL_FLOW_STATUSES == {F.IN_INTEGRE, F.IN_INTEGRE_PARTIEL, F.IN_REJETE}
    assert {s for s in FlowStatus if s.is_final} == lc.FINAL_FLOW_STATUSES
    assert pipeline.WAITING == (F.IN_RECU, F.IN_EN_ATTENTE_TRAITEMENT_CPP, F.IN_EN_ATTENTE_RETRAITEMENT_CPP)
    assert all(FlowStatus(s).info.final is False for s in pipeline.WAITING)
    assert dict(returnflow.FLOW_STATUS_CODES) == {
        F.IN_RECU: "90",
        F.IN_EN_ATTENTE_TRAITEMENT_CPP: "90",
        F.IN_EN_COURS_TRAITEMENT_CPP: "90",
        F.IN_EN_ATTENTE_RETRAITEMENT_CPP: "90",
        F.IN_INTEGRE: "91",
        F.IN_INTEGRE_PARTIEL: "96",
        F.IN_REJETE: "93",
        F.IN_INCIDENTE: "93",
    }
    assert {s: s.info.fg for s in FlowStatus} == {
        F.IN_INTEGRE: "green",
        F.IN_INTEGRE_PARTIEL: "yellow",
        F.IN_REJETE: "red",
        F.IN_INCIDENTE: "magenta",
        F.IN_RECU: None,
        F.IN_EN_ATTENTE_TRAITEMENT_CPP: None,
        F.IN_EN_COURS_TRAITEMENT_CPP: None,
        F.IN_EN_ATTENTE_RETRAITEMENT_CPP: None,
    }
    assert {s: s.label for s in InvoiceStatus} == {
        I.DEPOSEE: "DEPOSEE",
        I.EN_COURS_ACHEMINEMENT: "EN_COURS_ACHEMINEMENT",
        I.MISE_A_DISPOSITION: "MISE_A_DISPOSITION",
        I.REJETEE_ROUTAGE: "REJETEE",
        I.REJETEE: "REJETEE",
        I.SUSPENDUE: "SUSPENDUE",
        I.SERVICE_FAIT: "SERVICE_FAIT",
        I.MANDATEE: "MANDATEE",
        I.MISE_A_DISPOSITION_COMPTABLE: "MISE_A_DISPOSITION_COMPTABLE",
        I.COMPTABILISEE: "COMPTABILISEE",
        I.MISE_EN_PAIEMENT: "MISE_EN_PAIEMENT",
        I.COMPLETEE: "COMPLETEE",
        I.A_RECYCLER: "A_RECYCLER",
        # the circuits of billing frameworks: the platform's names, Relais's numbers 20..55
        **{s: s.name for s in InvoiceStatus if int(s.value) >= 20},
    }
    assert [s.value for s in InvoiceStatus if int(s.value) >= 20] == [
        *("20", "21", "22", "23", "24", "25", "26", "27", "28"),  # validators
        *("30", "31", "32", "33", "34", "35", "36"),  # MOE
        *("40", "41", "42", "43", "44", "45"),  # MOA
        *("50", "51", "52", "53", "54", "55"),  # end of contract
        *("60", "61", "62", "63", "64", "65"),  # the reform's CDAR statuses without a Chorus Pro one
    ]
    assert (
        {s for s in InvoiceStatus if s.is_rejected}
        == lc.REJECTED_INVOICE_STATUSES
        == {
            *(I.REJETEE, I.REJETEE_ROUTAGE),
            *(I.REFUSEE_1, I.REFUSEE_2, I.REFUSEE_MOE, I.REFUSEE_MOA),  # refused in a circuit: not delivered
        }
    )


def test_reserved_statuses_are_never_set() -> None:
    assert {s for s in FlowStatus if s.is_reserved} == {F.IN_EN_ATTENTE_TRAITEMENT_CPP}
    assert {s for s in InvoiceStatus if s.is_reserved} == {
        # docs/billing-frameworks.md §4: in the vocabulary and the schema, not set by Relais yet
        I.A_ASSOCIER_MOE,
        I.A_VALIDER_MOE,
        I.ERREUR_FOURNISSEUR_SUR_MOE,
        I.A_ASSOCIER_MOA,
        I.ERREUR_MOE_SUR_MOA,
        I.REFUSEE_FOURNISSEUR,
        I.DUPLIQUE_APRES_REFUS,
        I.ERREUR_DESTINATAIRE_PD,
        I.ERREUR_DESTINATAIRE_EA,
    }
    for cycle in (lc.FLOW, lc.INVOICE):
        reserved = cycle.where(reserved=True)
        assert not reserved & cycle.initial
        assert not reserved & {t.target for t in cycle.transitions}


# ---- transitions -------------------------------------------------------------------

ALLOWED = [
    (F.IN_RECU, F.IN_EN_COURS_TRAITEMENT_CPP),
    (F.IN_EN_ATTENTE_TRAITEMENT_CPP, F.IN_EN_COURS_TRAITEMENT_CPP),
    (F.IN_EN_ATTENTE_RETRAITEMENT_CPP, F.IN_EN_COURS_TRAITEMENT_CPP),
    (F.IN_EN_COURS_TRAITEMENT_CPP, F.IN_EN_COURS_TRAITEMENT_CPP),  # stale takeover
    (F.IN_EN_COURS_TRAITEMENT_CPP, F.IN_INTEGRE),
    (F.IN_EN_COURS_TRAITEMENT_CPP, F.IN_INTEGRE_PARTIEL),
    (F.IN_EN_COURS_TRAITEMENT_CPP, F.IN_REJETE),
    (F.IN_EN_COURS_TRAITEMENT_CPP, F.IN_INCIDENTE),
    (F.IN_INCIDENTE, F.IN_EN_COURS_TRAITEMENT_CPP),  # retry, once due
    (F.IN_INCIDENTE, F.IN_EN_ATTENTE_RETRAITEMENT_CPP),  # relais flows reprocess
    (F.IN_EN_ATTENTE_RETRAITEMENT_CPP, F.IN_EN_ATTENTE_RETRAITEMENT_CPP),  # requeueing again
    (F.IN_REJETE, F.IN_EN_ATTENTE_RETRAITEMENT_CPP),  # ops reopen a closed flow with rejections
    (F.IN_INTEGRE_PARTIEL, F.IN_EN_ATTENTE_RETRAITEMENT_CPP),
]


def test_the_table_is_exactly_what_the_code_does() -> None:
    assert {(t.source, t.target) for t in lc.FLOW.transitions} == set(ALLOWED)
    got = {(t.source, t.target, actor) for t in lc.INVOICE.transitions for actor in t.actors}
    assert got == set(INVOICE_ALLOWED)


P, R, S = lc.Actor.PLATFORM, lc.Actor.RECIPIENT, lc.Actor.SUPPLIER
V, MOE, MOA, OPS = lc.Actor.VALIDATOR, lc.Actor.MOE, lc.Actor.MOA, lc.Actor.OPS
BP = lc.Actor.PARTNER_PLATFORM  # the buyer's platform, by a CDAR message
#: The statuses after which a validated piece (done, or tacitly at the deadline) is passed on.
VALIDATED = (I.VALIDEE_1, I.ABSENCE_VALIDATION_1_HORS_DELAI, I.VALIDEE_2, I.ABSENCE_VALIDATION_2_HORS_DELAI)
AT_MOE = (I.MISE_A_DISPOSITION_MOE, I.PRISE_EN_COMPTE_MOE)
#: The invoice lifecycle as implemented: (from, to, who may make the move).
INVOICE_ALLOWED = [
    (I.DEPOSEE, I.MISE_A_DISPOSITION, P),  # delivered
    (I.DEPOSEE, I.MISE_A_DISPOSITION, R),  # fetched through the API and confirmed
    *[
        (a, b, R)
        for a in (I.MISE_A_DISPOSITION, I.COMPLETEE)
        for b in (I.REJETEE, I.SUSPENDUE, I.A_RECYCLER, I.SERVICE_FAIT)
    ],
    (I.SUSPENDUE, I.COMPLETEE, S),
    (I.SUSPENDUE, I.COMPLETEE, P),  # the completing flow arrives from the supplier
    (I.SUSPENDUE, I.REJETEE, R),
    (I.COMPLETEE, I.MISE_A_DISPOSITION, R),
    (I.SERVICE_FAIT, I.MANDATEE, R),
    (I.SERVICE_FAIT, I.SUSPENDUE, R),
    (I.SERVICE_FAIT, I.REJETEE, R),
    (I.MANDATEE, I.MISE_A_DISPOSITION_COMPTABLE, R),
    (I.MISE_A_DISPOSITION_COMPTABLE, I.COMPTABILISEE, R),
    (I.COMPTABILISEE, I.MISE_EN_PAIEMENT, R),
    # ---- the circuits of billing frameworks (docs/billing-frameworks.md §4) ----
    # each validation level: the validator validates, refuses or says it is not the validator; the platform
    # validates tacitly at the deadline; ops correct the validator (the piece waits for the right one)
    *[
        move
        for ask, ok, no, late in (
            (I.A_VALIDER_1, I.VALIDEE_1, I.REFUSEE_1, I.ABSENCE_VALIDATION_1_HORS_DELAI),
            (I.A_VALIDER_2, I.VALIDEE_2, I.REFUSEE_2, I.ABSENCE_VALIDATION_2_HORS_DELAI),
        )
        for move in (
            (ask, ok, V),
            (ask, no, V),
            (ask, I.ERREUR_FOURNISSEUR_SUR_VALIDEUR, V),
            (ask, late, P),
            (ask, ask, OPS),
            (I.ERREUR_FOURNISSEUR_SUR_VALIDEUR, ask, OPS),
        )
    ],
    # passed on by the platform: to the second validator (after the first), the MOE or the recipient
    *[(s, I.A_VALIDER_2, P) for s in VALIDATED[:2]],
    *[(s, t, P) for s in VALIDATED for t in (I.MISE_A_DISPOSITION_MOE, I.MISE_A_DISPOSITION)],
    # the MOE takes the draft in or refuses it; silent past its deadline, the draft goes on to the MOA
    (I.MISE_A_DISPOSITION_MOE, I.PRISE_EN_COMPTE_MOE, MOE),
    (I.MISE_A_DISPOSITION_MOE, I.REFUSEE_MOE, MOE),
    (I.PRISE_EN_COMPTE_MOE, I.REFUSEE_MOE, MOE),
    *[(s, I.ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE, P) for s in AT_MOE],
    (I.ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE, I.MISE_A_DISPOSITION_MOA, P),
    # the MOA takes in, validates and passes on, or refuses
    (I.MISE_A_DISPOSITION_MOA, I.PRISE_EN_COMPTE_MOA, MOA),
    (I.MISE_A_DISPOSITION_MOA, I.TRANSMISE_MOA, MOA),
    (I.MISE_A_DISPOSITION_MOA, I.REFUSEE_MOA, MOA),
    (I.PRISE_EN_COMPTE_MOA, I.TRANSMISE_MOA, MOA),
    (I.PRISE_EN_COMPTE_MOA, I.REFUSEE_MOA, MOA),
    # the tacit procedure: an A22 replaces the piece it follows, wherever that piece stands
    *[
        (s, I.REMPLACEE_PAR_A22, P)
        for s in (*AT_MOE, I.ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE, I.MISE_A_DISPOSITION_MOA)
        + (I.PRISE_EN_COMPTE_MOA, I.TRANSMISE_MOA)
    ],
    # ---- the 2026 reform (docs/reform.md): issued to the buyer's platform, which sends its statuses in CDAR ----
    (I.DEPOSEE, I.EN_COURS_ACHEMINEMENT, P),
    *[(I.EN_COURS_ACHEMINEMENT, t, BP) for t in (I.RECUE, I.MISE_A_DISPOSITION, I.REJETEE_ROUTAGE)],
    (I.RECUE, I.MISE_A_DISPOSITION, BP),
    # 202 and 203 are optional (mandatory: 200, 210, 212, 213): the buyer's statuses may follow 201 or 202
    *[
        (s, t, BP)
        for s in (I.EN_COURS_ACHEMINEMENT, I.RECUE, I.MISE_A_DISPOSITION, I.PRISE_EN_CHARGE)
        for t in (I.APPROUVEE, I.APPROUVEE_PARTIELLEMENT, I.EN_LITIGE, I.SUSPENDUE, I.REJETEE, I.MISE_EN_PAIEMENT)
    ],
    *[(s, I.PRISE_EN_CHARGE, BP) for s in (I.EN_COURS_ACHEMINEMENT, I.RECUE, I.MISE_A_DISPOSITION)],
    *[(s, t, BP) for s in (I.APPROUVEE, I.APPROUVEE_PARTIELLEMENT) for t in (I.EN_LITIGE, I.MISE_EN_PAIEMENT)],
    *[(I.EN_LITIGE, t, BP) for t in (I.APPROUVEE, I.APPROUVEE_PARTIELLEMENT, I.SUSPENDUE, I.REJETEE)],
    (I.SUSPENDUE, I.REJETEE, BP),
    *[
        (I.COMPLETEE, t, BP)
        for t in (I.MISE_A_DISPOSITION, I.PRISE_EN_CHARGE, I.APPROUVEE, I.APPROUVEE_PARTIELLEMENT, I.EN_LITIGE)
    ],
    # the seller says it collected the payment (212), once the buyer has the invoice
    *[
        (s, I.ENCAISSEE, S)
        for s in (I.RECUE, I.MISE_A_DISPOSITION, I.PRISE_EN_CHARGE, I.APPROUVEE, I.APPROUVEE_PARTIELLEMENT)
        + (I.EN_LITIGE, I.SERVICE_FAIT, I.MANDATEE, I.MISE_A_DISPOSITION_COMPTABLE, I.COMPTABILISEE)
        + (I.MISE_EN_PAIEMENT,)
    ],
]


def test_final_invoice_statuses_and_reasons() -> None:
    refusals = {I.REFUSEE_1, I.REFUSEE_2, I.REFUSEE_MOE, I.REFUSEE_MOA}  # by an actor of a circuit
    assert {s for s in InvoiceStatus if s.is_final} == {
        *(I.REJETEE_ROUTAGE, I.REJETEE, I.ENCAISSEE, I.A_RECYCLER),  # paid (11) may still be collected (212)
        *refusals,
        I.REMPLACEE_PAR_A22,
    }
    assert {s for s in InvoiceStatus if s.needs_reason} == {
        *(I.REJETEE, I.SUSPENDUE, I.APPROUVEE_PARTIELLEMENT, I.EN_LITIGE),
        *refusals,
    }
    for status in InvoiceStatus:
        if status.is_final:
            assert lc.INVOICE.targets(status) == frozenset()


def test_a_recipient_cannot_skip_service_fait_nor_do_a_suppliers_move() -> None:
    with pytest.raises(IllegalTransition) as raised:
        lc.INVOICE.check(I.MISE_A_DISPOSITION, I.MISE_EN_PAIEMENT, R)
    assert "allowed: 05, 06, 07, 13" in str(raised.value)  # the moves the recipient may make are named
    with pytest.raises(IllegalTransition):
        lc.INVOICE.check(I.SUSPENDUE, I.COMPLETEE, R)  # only the supplier completes
    assert lc.INVOICE.check(I.SUSPENDUE, I.COMPLETEE, S) is I.COMPLETEE


@pytest.mark.parametrize(("source", "target"), ALLOWED)
def test_allowed_transitions_succeed(source: FlowStatus, target: FlowStatus) -> None:
    assert lc.check_transition(source, target) is target
    assert lc.FLOW.allowed(source, target)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (F.IN_RECU, F.IN_INTEGRE),  # never without being processed
        (F.IN_RECU, F.IN_RECU),
        (F.IN_EN_COURS_TRAITEMENT_CPP, F.IN_RECU),
        (F.IN_EN_COURS_TRAITEMENT_CPP, F.IN_EN_ATTENTE_RETRAITEMENT_CPP),  # only an incident is requeued
        (F.IN_INCIDENTE, F.IN_INTEGRE),
        (F.IN_INTEGRE, F.IN_EN_COURS_TRAITEMENT_CPP),  # a closed flow is never processed again
        (F.IN_INTEGRE, F.IN_EN_ATTENTE_RETRAITEMENT_CPP),  # nothing to reprocess in an integrated flow
        (F.IN_REJETE, F.IN_EN_COURS_TRAITEMENT_CPP),  # reopened flows wait first (REOPEN), then are claimed
        (F.IN_INTEGRE_PARTIEL, F.IN_INCIDENTE),
        (F.IN_RECU, F.IN_EN_ATTENTE_TRAITEMENT_CPP),  # reserved: not set by Relais yet
        (I.DEPOSEE, I.REJETEE),  # a recipient works on invoices made available to it
        (I.MISE_A_DISPOSITION, I.MANDATEE),  # not before SERVICE_FAIT
        (I.ENCAISSEE, I.SUSPENDUE),  # final
        (I.MISE_EN_PAIEMENT, I.SUSPENDUE),  # paid: only collected (212) may follow
        (I.REJETEE, I.MISE_A_DISPOSITION),  # final
    ],
)
def test_illegal_transitions_raise(source, target) -> None:
    with pytest.raises(IllegalTransition) as raised:
        lc.check_transition(source, target)
    assert raised.value.source is source and raised.value.target is target
    assert f"{source} -> {target}" in str(raised.value)


def test_statuses_of_two_kinds_do_not_mix() -> None:
    with pytest.raises(TypeError):
        lc.check_transition(F.IN_RECU, I.DEPOSEE)


@pytest.mark.parametrize("status", sorted(lc.FINAL_FLOW_STATUSES))
def test_final_statuses_have_no_way_out(status: FlowStatus) -> None:
    # The pipeline never moves a closed flow; only ops may reopen one with rejections (Store.reopen_flow).
    assert {t.target for t in lc.FLOW.transitions if t.source is status and t.move is not Move.REOPEN} == set()
    if status in lc.REOPENABLE:
        assert lc.FLOW.targets(status) == lc.FLOW.targets(status, Move.REOPEN) == {lc.REQUEUED}
    else:
        assert "is final" in str(pytest.raises(IllegalTransition, lc.check_transition, status, lc.REQUEUED).value)
    assert "is final" in str(pytest.raises(IllegalTransition, lc.check_transition, status, lc.IN_PROGRESS).value)


def test_named_statuses_match_their_moves() -> None:
    assert lc.FLOW.sources(lc.IN_PROGRESS, Move.RETRY) == (lc.RETRIED_WHEN_DUE,) == (F.IN_INCIDENTE,)
    assert lc.FLOW.sources(lc.IN_PROGRESS, Move.TAKEOVER) == (lc.IN_PROGRESS,)
    assert lc.FLOW.sources(lc.REQUEUED, Move.REPROCESS) == (F.IN_INCIDENTE, F.IN_EN_ATTENTE_RETRAITEMENT_CPP)
    assert lc.FLOW.initial == {F.IN_RECU} and Flow.__dataclass_fields__["status"].default is F.IN_RECU
    # a piece of a billing circuit starts at its first step (flows.domain.circuits.entry)
    assert lc.INVOICE.initial == {
        *(I.DEPOSEE, I.REJETEE_ROUTAGE, I.REJETEE),
        *(I.A_VALIDER_1, I.MISE_A_DISPOSITION_MOE, I.MISE_A_DISPOSITION_MOA, I.A_ASSOCIER_FOURNISSEUR),
    }


# ---- the tables check themselves -------------------------------------------------


def _flow_lifecycle(**changes) -> Lifecycle:
    values = {
        "kind": "flow",
        "statuses": lc.FLOW_STATUSES,
        "initial": lc.FLOW.initial,
        "transitions": lc.FLOW.transitions,
    }
    values.update(changes)
    return Lifecycle(**values)


def test_a_contradictory_table_is_refused() -> None:
    _flow_lifecycle()  # the real one is consistent
    with pytest.raises(LifecycleError, match="final"):
        _flow_lifecycle(transitions=(*lc.FLOW.transitions, Transition(F.IN_INTEGRE, lc.REQUEUED, Move.REPROCESS)))
    with pytest.raises(LifecycleError, match="reserved"):
        _flow_lifecycle(
            transitions=(*lc.FLOW.transitions, Transition(F.IN_RECU, F.IN_EN_ATTENTE_TRAITEMENT_CPP, Move.CLAIM))
        )
    with pytest.raises(LifecycleError, match="never set"):
        _flow_lifecycle(transitions=tuple(t for t in lc.FLOW.transitions if t.target is not F.IN_INCIDENTE))
    with pytest.raises(LifecycleError, match="twice"):
        _flow_lifecycle(transitions=(*lc.FLOW.transitions, lc.FLOW.transitions[0]))
    with pytest.raises(LifecycleError, match="no info"):
        _flow_lifecycle(statuses={s: i for s, i in lc.FLOW_STATUSES.items() if s is not F.IN_RECU})
    unreserved = dict(lc.FLOW_STATUSES)
    unreserved[F.IN_EN_ATTENTE_TRAITEMENT_CPP] = dataclasses.replace(
        unreserved[F.IN_EN_ATTENTE_TRAITEMENT_CPP], reserved=False
    )
    with pytest.raises(LifecycleError, match="never set"):
        _flow_lifecycle(statuses=unreserved)


# ---- the store checks what it is asked to do ---------------------------------------


@pytest.fixture
def store(tmp_path):
    s = Store.open(f"sqlite:///{tmp_path / 'relais.db'}")
    yield s
    s.close()


def _flow(store: Store) -> Flow:
    return store.create_flow(
        Flow(id="", partner="op-a", channel=Channel.FOLDER, original_name="lot.zip", size=10, sha256="ab" * 32)
    )


def test_an_illegal_claim_raises_before_anything_is_written(store) -> None:
    flow = _flow(store)
    with pytest.raises(IllegalTransition):
        store.claim_flow(flow.id, [F.IN_RECU], F.IN_INTEGRE)
    with pytest.raises(IllegalTransition):  # a takeover is only for flows in progress
        store.claim_flow(flow.id, [F.IN_RECU], F.IN_INCIDENTE, stale_after=dt.timedelta(seconds=-1))
    assert store.get_flow(flow.id).status is F.IN_RECU
    assert store.claim_flow(flow.id, iter(pipeline.WAITING), lc.IN_PROGRESS, due_incidents=True)
    assert store.get_flow(flow.id).status is lc.IN_PROGRESS


def test_requeue_takes_only_what_the_lifecycle_allows(store) -> None:
    flow = _flow(store)
    assert not store.requeue_flow(flow.id)  # IN_RECU
    flow.status = F.IN_INTEGRE
    store.update_flow(flow)
    assert not store.requeue_flow(flow.id)  # final
    flow.status = F.IN_INCIDENTE
    store.update_flow(flow)
    assert store.requeue_flow(flow.id) and store.requeue_flow(flow.id)  # and again: unchanged
    assert store.get_flow(flow.id).status is lc.REQUEUED
