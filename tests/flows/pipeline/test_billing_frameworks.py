"""Billing frameworks at intake, through the real pipeline: circuits, billing files, association, E4/E5.

docs/billing-frameworks.md: an A4 (draft monthly statement) goes to its MOE with a 7-day deadline; the
MOE's A15 associated to it (BT-25) joins its billing file and goes to the MOA (the buyer); a second A15
of the same A4 is refused (RLS-P20); an A9 waits for its validator, its delivery HELD; a plain invoice is
delivered as ever. The end of the contract: A7 -> the MOE -> A18 -> the MOA -> A20, the supplier's turn to
sign (A_ASSOCIER_FOURNISSEUR) -> its signed A8 -> the finance service; the tacit procedure: an A22 replaces
the A7 (at the MOE) or the MOE's A18 (at the MOA), the replaced piece's depositor hears it; A23, A24, A25
follow the A22 to the finance service.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from lxml import etree

from flows.domain.frameworks import Framework
from flows.domain.lifecycle import Actor, FlowStatus, InvoiceStatus
from flows.domain.model import FlowCode, Invoice, invoice_id
from flows.domain.outbox import OutboxKind, OutboxStatus
from flows.pipeline import dispatch
from flows.pipeline import status_changes as statuses
from flows.store import tables as t
from flows.store.circuits import REPLACED_REASON
from relais import generate as gen
from relais.generate.circuits import circuit_set
from tests.support.helpers import drop, run
from tests.support.pieces import piece, spec_for
from validators.platform.circuits import previous_followed

MOE = "35600000000048"
VALIDATOR = "21750001600019"
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def any_rt(store_url, tmp_path, directory_file):
    """A runtime on SQLite and on PostgreSQL, the sample directory imported, its clock at `NOW`."""
    from flows.directory import importer as directory
    from relais.compose import Runtime
    from relais.settings import Settings

    url, schema = store_url
    settings = Settings.from_env(tmp_path / "h", stable_seconds=0.0, database_url=url, database_schema=schema)
    rt = Runtime.open(settings)
    directory.import_file(rt.store, directory_file[0])
    rt.pipeline.clock = lambda: NOW
    try:
        yield rt
    finally:
        rt.close()


def _send(rt, name, xml, partner="op-a"):
    drop(rt, partner, name, xml)
    [flow] = run(rt)
    [inv] = rt.store.iter_invoices(flow.id)
    return flow, inv


def _deliveries(rt, flow_id):
    return [o for o in rt.store.outbox_for_flow(flow_id) if o.kind == OutboxKind.DELIVERY]


def test_an_a4_then_the_moes_a15_make_one_billing_file(any_rt, directory_file):
    rt, recipient = any_rt, directory_file[1][0]
    a4_spec = spec_for(recipient, number="DM-2026-001")
    a4_xml = piece(
        gen.invoice_xml("ubl", a4_spec), framework="A4_PROJET_DECOMPTE_MENSUEL_FOURNISSEUR", actors={"MOE": MOE}
    )
    flow, a4 = _send(rt, "a4.xml", a4_xml)
    assert (flow.status, flow.flow_code) == (FlowStatus.IN_INTEGRE, FlowCode.E4_UBL)
    assert (a4.framework, a4.status, a4.holder) == (Framework.A4, InvoiceStatus.MISE_A_DISPOSITION_MOE, MOE)
    assert a4.due_at == NOW + dt.timedelta(days=7)
    assert (a4.billing_file_id, a4.previous_id, a4.moe_siret) == (a4.id, None, MOE)
    assert _deliveries(rt, flow.id) == []  # the MOE's turn: nothing goes to the recipient

    # The MOE answers with its état d'acompte (same seller and buyer: the titulaire's file), in CII.
    a15_spec = spec_for(recipient, number="EA-2026-001", supplier_siret=a4_spec.supplier_siret)
    a15_xml = piece(gen.invoice_xml("cii", a15_spec), framework="A15", previous="DM-2026-001")
    flow2, a15 = _send(rt, "a15.xml", a15_xml)
    assert (flow2.status, flow2.flow_code) == (FlowStatus.IN_INTEGRE, FlowCode.E4_CII)
    assert (a15.framework, a15.status) == (Framework.A15, InvoiceStatus.MISE_A_DISPOSITION_MOA)
    assert (a15.holder, a15.due_at) == (recipient.siret, None)  # the MOA is the buyer: none is named
    assert (a15.previous_id, a15.billing_file_id) == (a4.id, a4.id)
    assert _deliveries(rt, flow2.id) == []
    after = rt.store.get_invoice(a4.id)
    # The MOE answered: no deadline, nobody's turn any more (the MOE's token no longer lists it)
    assert (after.status, after.due_at, after.holder) == (InvoiceStatus.MISE_A_DISPOSITION_MOE, None, None)
    assert [p.id for p in rt.store.billing_file(a4.id)] == [a4.id, a15.id]

    # Another A15 of the same draft: refused, the first one keeps it.
    again = spec_for(recipient, number="EA-2026-002", supplier_siret=a4_spec.supplier_siret)
    flow3, refused = _send(
        rt, "a15b.xml", piece(gen.invoice_xml("ubl", again), framework="A15", previous="DM-2026-001")
    )
    assert (flow3.status, refused.status) == (FlowStatus.IN_REJETE, InvoiceStatus.REJETEE)
    assert [e.rule for e in refused.errors] == ["RLS-P20"] and a15.id in refused.errors[0].message
    assert (refused.holder, refused.previous_id, refused.billing_file_id) == (recipient.siret, None, None)


def test_association_refusals(any_rt, directory_file):
    rt, recipient = any_rt, directory_file[1][0]
    a4_spec = spec_for(recipient, number="DM-1")
    _send(rt, "a4.xml", piece(gen.invoice_xml("ubl", a4_spec), framework="A4", actors={"MOE": MOE}))

    def follower(n, **kw):
        spec = spec_for(recipient, number=f"X-{n}", supplier_siret=kw.pop("supplier", a4_spec.supplier_siret))
        _, inv = _send(rt, f"x{n}.xml", piece(gen.invoice_xml("ubl", spec), **kw))
        assert inv.status is InvoiceStatus.REJETEE
        return [e.rule for e in inv.errors if e.fatal]

    assert follower(1, framework="A15") == ["RLS-P16"]
    assert follower(2, framework="A15", previous="DM-404") == ["RLS-P17"]
    assert follower(3, framework="A15", previous="DM-1", supplier="35600000000048") == ["RLS-P18"]
    assert follower(4, framework="A19", previous="DM-1") == ["RLS-P19"]  # an A19 follows an A15 / A16
    assert follower(5, framework="A26") == ["RLS-P12"]
    assert follower(6, framework="A9") == ["RLS-P14"]
    assert follower(7, framework="A7", actors={"MOE": "12345678901234"}) == ["RLS-P15"]


def test_odd_bt23_values(rt, directory_file):
    """What a sender may write in BT-23: any number of ASCII digits after the A (A1000 is no framework, not
    a plain invoice; 5,000 digits are quoted cut), other scripts' digits are no A-code (A1), a long name is
    read by its prefix whatever follows it."""
    rt.pipeline.clock = lambda: NOW
    recipient = directory_file[1][0]

    def send(n, framework, **kw):
        xml = piece(gen.invoice_xml("ubl", spec_for(recipient, number=f"ODD-{n}")), framework=framework, **kw)
        return _send(rt, f"odd{n}.xml", xml)[1]

    for n, code in enumerate(("A1000", "A" + "9" * 5000), 1):
        inv = send(n, code)
        assert (inv.status, [e.rule for e in inv.errors]) == (InvoiceStatus.REJETEE, ["RLS-P12"])
        assert len(inv.errors[0].message) < 200
    arabic = send(3, "A\u0664")  # ARABIC-INDIC DIGIT FOUR: not A4 (which would need its MOE: RLS-P15)
    assert (arabic.status, arabic.framework, arabic.errors) == (InvoiceStatus.MISE_A_DISPOSITION, Framework.A1, [])
    long_name = send(4, "a9_facture_sous-traitant_\u00e9", actors={"VALIDEUR": VALIDATOR})
    assert (long_name.status, long_name.framework) == (InvoiceStatus.A_VALIDER_1, Framework.A9)


def test_a_sub_contractors_invoice_waits_for_its_validator_its_delivery_held(rt, directory_file):
    rt.pipeline.clock = lambda: NOW
    spec = spec_for(directory_file[1][0], number="ST-1")
    flow, a9 = _send(rt, "a9.xml", piece(gen.invoice_xml("cii", spec), framework="A9", actors={"VALIDEUR": VALIDATOR}))
    assert flow.flow_code is FlowCode.E1_CII  # not a works piece
    assert (a9.status, a9.holder, a9.due_at) == (InvoiceStatus.A_VALIDER_1, VALIDATOR, NOW + dt.timedelta(days=15))
    [held] = _deliveries(rt, flow.id)
    assert held.status == OutboxStatus.HELD
    dispatch.dispatch(rt.outbound)  # never sent, whatever runs the dispatcher
    assert [o.status for o in _deliveries(rt, flow.id)] == [OutboxStatus.HELD]
    assert rt.store.pending_outbox(kind=OutboxKind.DELIVERY) == []
    assert rt.store.get_invoice(a9.id).delivered_to is None

    # A plain invoice: as ever, delivered, the recipient's turn.
    flow2, a1 = _send(rt, "a1.xml", gen.invoice_xml("ubl", spec_for(directory_file[1][0], number="F-1")))
    assert (a1.framework, a1.status, a1.holder, a1.due_at) == (
        Framework.A1, InvoiceStatus.MISE_A_DISPOSITION, a1.buyer_siret, None
    )  # fmt: skip
    assert [o.status for o in _deliveries(rt, flow2.id)] == [OutboxStatus.SENT]
    assert (a1.billing_file_id, flow2.flow_code) == (a1.id, FlowCode.E1_UBL)


def test_two_followers_judged_at_once_one_wins(any_rt, directory_file):
    """Both were judged while the A4 was free; saved concurrently, the store's link key lets one through."""
    rt, recipient = any_rt, directory_file[1][0]
    a4_spec = spec_for(recipient, number="DM-9")
    _, a4 = _send(rt, "a4.xml", piece(gen.invoice_xml("ubl", a4_spec), framework="A4", actors={"MOE": MOE}))
    followers = []
    for n in (1, 2):  # two received flows, each with one A15 judged following the A4
        drop(rt, "op-a", f"f{n}.xml", f"<x n='{n}'/>".encode())
        from relais.runner import intake

        [flow] = intake(rt)
        followers.append(
            Invoice(
                id=invoice_id(flow.id, 1), flow_id=flow.id, position=1, entry_name=f"f{n}.xml",
                number=f"EA-{n}", issue_date=a4_spec.issue_date, supplier_id=a4.supplier_id,
                buyer_siret=a4.buyer_siret, previous_number="DM-9", framework=Framework.A15,
                previous_id=a4.id, billing_file_id=a4.id, status=InvoiceStatus.MISE_A_DISPOSITION_MOA,
            )
        )  # fmt: skip
    barrier, lost = threading.Barrier(2), {}

    def save(inv):
        barrier.wait()
        lost[inv.id] = rt.store.save_invoices([inv], [], None, lambda i: previous_followed.RULE.error("BT-25", "x"))

    threads = [threading.Thread(target=save, args=(inv,)) for inv in followers]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    statuses = {i: rt.store.get_invoice(i).status for i in lost}
    assert sorted(statuses.values()) == sorted([InvoiceStatus.MISE_A_DISPOSITION_MOA, InvoiceStatus.REJETEE])
    [winner] = [i for i, s in statuses.items() if s is InvoiceStatus.MISE_A_DISPOSITION_MOA]
    [loser] = [i for i, s in statuses.items() if s is InvoiceStatus.REJETEE]
    assert lost[winner] == [] and [i.id for i in lost[loser]] == [loser]
    with rt.store.engine.connect() as conn:
        assert conn.execute(sa.select(t.piece_links.c.previous_id, t.piece_links.c.invoice_id)).all() == [
            (a4.id, winner)
        ]
    [ref] = rt.store.pieces_by_number("DM-9")
    assert ref.followed_by == winner
    assert [e.rule for e in next(iter(rt.store.iter_invoices(followers[0].flow_id))).errors] == (
        ["RLS-P20"] if loser == followers[0].id else []
    )


# ---- the end of the contract and the tacit procedure ------------------------------------------------------


def _circuit(kind, seed):
    """The generator's pieces of one billing file of `kind` (final: A7, A18, A20, A8; tacit: A7, A22, A23)."""
    return [d.specs[0] for d in circuit_set(kind, 1, 1, gen.sample_directory(), seed=seed).deposits]


def _drop_spec(rt, partner, spec, **changes):
    spec = dataclasses.replace(spec, **changes)
    name, data = gen.document("ubl", spec)
    return _send(rt, name, data, partner)


def _status_entries(rt, partner, inv_id):
    """(IdStatut, LibelleStatut, Acteur, Motif) of `inv_id` in the status return flows sent to `partner`."""
    from flows.returns import report as returnflow

    out = []
    for path in sorted(rt.settings.outbox_dir(partner).glob("ST*.xml")):
        returnflow.validate(path)
        for e in etree.parse(str(path)).iter("CPPFactureStatut"):
            if e.findtext("IdFacture") == inv_id:
                d = e.find("DonneesStatut")
                out.append(tuple(d.findtext(k) for k in ("IdStatut", "LibelleStatut", "Acteur", "Motif")))
    return out


def test_the_end_of_contract_a20_waits_for_the_suppliers_signed_a8(any_rt):
    rt = any_rt
    a7s, a18s, a20s, a8s = _circuit("final", 61)
    moe, buyer, supplier = dict(a7s.supporting)["MOE"], a7s.buyer_siret, a7s.supplier_siret
    _, a7 = _drop_spec(rt, "titulaire", a7s)
    assert (a7.framework, a7.status, a7.holder) == (Framework.A7, InvoiceStatus.MISE_A_DISPOSITION_MOE, moe)
    assert a7.due_at == NOW + dt.timedelta(days=7)
    statuses.act(rt.store, a7.id, InvoiceStatus.PRISE_EN_COMPTE_MOE, siret=moe)
    _, a18 = _drop_spec(rt, "moe", a18s)
    assert (a18.framework, a18.status, a18.holder) == (Framework.A18, InvoiceStatus.MISE_A_DISPOSITION_MOA, buyer)
    assert (a18.previous_id, a18.billing_file_id, rt.store.get_invoice(a7.id).due_at) == (a7.id, a7.id, None)
    statuses.act(rt.store, a18.id, InvoiceStatus.TRANSMISE_MOA, siret=buyer)

    # The signed DGD cannot follow the MOE's general statement: only the MOA's (RLS-P19).
    _, early = _drop_spec(rt, "titulaire", a8s, number=a8s.number + "-EARLY", previous=a18s.number)
    assert (early.status, [e.rule for e in early.errors if e.fatal]) == (InvoiceStatus.REJETEE, ["RLS-P19"])

    flow, a20 = _drop_spec(rt, "moa", a20s)
    assert (a20.framework, a20.status) == (Framework.A20, InvoiceStatus.A_ASSOCIER_FOURNISSEUR)
    assert (a20.holder, a20.due_at, a20.previous_id, a20.billing_file_id) == (supplier, None, a18.id, a7.id)
    assert _deliveries(rt, flow.id) == []  # the supplier's turn: it signs, nothing goes to the recipient
    with pytest.raises(statuses.NotYourTurn):  # the supplier answers by a deposit, not by a status
        statuses.act(rt.store, a20.id, InvoiceStatus.PRISE_EN_COMPTE_MOA, siret=supplier)

    flow, a8 = _drop_spec(rt, "titulaire", a8s)
    assert (a8.framework, a8.status, a8.holder) == (Framework.A8, InvoiceStatus.MISE_A_DISPOSITION, buyer)
    assert (a8.previous_id, a8.billing_file_id) == (a20.id, a7.id)
    assert [o.status for o in _deliveries(rt, flow.id)] == [OutboxStatus.SENT]  # delivered to the finance service
    assert [h.status for h in rt.store.invoice_history(a8.id)] == [
        InvoiceStatus.DEPOSEE,
        InvoiceStatus.MISE_A_DISPOSITION,
    ]
    assert rt.store.get_invoice(a20.id).status is InvoiceStatus.A_ASSOCIER_FOURNISSEUR  # answered by the A8
    assert [p.id for p in rt.store.billing_file(a8.id)] == [a7.id, a18.id, a20.id, a8.id]
    [ref] = rt.store.pieces_by_number(a20s.number)
    assert ref.followed_by == a8.id
    statuses.act(rt.store, a8.id, InvoiceStatus.SERVICE_FAIT, siret=buyer)  # as any invoice from here on


def test_an_a22_replaces_the_draft_final_statement_at_the_moe(any_rt):
    rt = any_rt
    a7s, a22s, a23s = _circuit("tacit", 62)
    moe, buyer = dict(a7s.supporting)["MOE"], a7s.buyer_siret
    _, a7 = _drop_spec(rt, "titulaire", a7s)
    assert a7.status is InvoiceStatus.MISE_A_DISPOSITION_MOE
    _, a22 = _drop_spec(rt, "titulaire", a22s)
    assert (a22.framework, a22.status, a22.holder) == (Framework.A22, InvoiceStatus.MISE_A_DISPOSITION_MOA, buyer)
    assert (a22.previous_id, a22.billing_file_id, a22.due_at) == (a7.id, a7.id, None)
    replaced = rt.store.get_invoice(a7.id)
    assert (replaced.status, replaced.holder, replaced.due_at) == (InvoiceStatus.REMPLACEE_PAR_A22, None, None)
    last = rt.store.invoice_history(a7.id)[-1]
    assert (last.previous, last.status, last.actor, last.partner) == (
        InvoiceStatus.MISE_A_DISPOSITION_MOE, InvoiceStatus.REMPLACEE_PAR_A22, Actor.PLATFORM, "titulaire"
    )  # fmt: skip
    assert last.reason == REPLACED_REASON.format(id=a22.id)
    with pytest.raises(statuses.NotYourTurn):  # the MOE's turn is over
        statuses.act(rt.store, a7.id, InvoiceStatus.PRISE_EN_COMPTE_MOE, siret=moe)
    # the depositor of the A7 hears it in its status return flow (the A22's intake is its own flow's report)
    assert _status_entries(rt, "titulaire", a7.id) == [
        (InvoiceStatus.REMPLACEE_PAR_A22.code, "REMPLACEE_PAR_A22", "PLATEFORME", last.reason)
    ]
    # a second A22 of the same draft: it is replaced already (RLS-P19)
    _, again = _drop_spec(rt, "titulaire", a22s, number=a22s.number + "-BIS")
    assert [e.rule for e in again.errors if e.fatal] == ["RLS-P19"]

    flow, a23 = _drop_spec(rt, "titulaire", a23s)
    assert (a23.framework, a23.status, a23.holder) == (Framework.A23, InvoiceStatus.MISE_A_DISPOSITION, buyer)
    assert (a23.previous_id, a23.billing_file_id) == (a22.id, a7.id)
    assert [o.status for o in _deliveries(rt, flow.id)] == [OutboxStatus.SENT]
    assert rt.store.get_invoice(a22.id).status is InvoiceStatus.MISE_A_DISPOSITION_MOA  # answered by the A23
    assert [p.id for p in rt.store.billing_file(a23.id)] == [a7.id, a22.id, a23.id]


@pytest.mark.parametrize(("framework", "partner"), [("A23", "titulaire"), ("A24", "moe"), ("A25", "moa")])
def test_an_a22_replaces_the_moes_a18_at_the_moa_then_a_tacit_dgd_goes_to_the_finance_service(
    any_rt, framework, partner
):
    rt = any_rt
    a7s, a18s, _, _ = _circuit("final", 63)
    _, a22s, a23s = _circuit("tacit", 63)
    buyer = a7s.buyer_siret
    _, a7 = _drop_spec(rt, "titulaire", a7s)
    _, a18 = _drop_spec(rt, "moe", a18s)
    statuses.act(rt.store, a18.id, InvoiceStatus.PRISE_EN_COMPTE_MOA, siret=buyer)
    # the supplier's draft general statement (A22), of the same file: it follows the MOE's A18
    same = {"supplier_siret": a7s.supplier_siret, "supplier_name": a7s.supplier_name, "buyer": a7s.buyer}
    same |= {"buyer_siret": buyer, "service_code": a7s.service_code, "ej": a7s.ej, "supporting": a7s.supporting}
    _, a22 = _drop_spec(rt, "titulaire", a22s, previous=a18s.number, **same)
    assert (a22.status, a22.previous_id, a22.billing_file_id) == (InvoiceStatus.MISE_A_DISPOSITION_MOA, a18.id, a7.id)
    moved = rt.store.get_invoice(a18.id)
    assert (moved.status, moved.holder) == (InvoiceStatus.REMPLACEE_PAR_A22, None)
    assert rt.store.get_invoice(a7.id).status is InvoiceStatus.MISE_A_DISPOSITION_MOE  # the A7 is left alone
    with pytest.raises(statuses.NotYourTurn):  # the MOA's turn on the A18 is over
        statuses.act(rt.store, a18.id, InvoiceStatus.TRANSMISE_MOA, siret=buyer)
    # the MOE deposited the A18: the MOE hears it was replaced, the titulaire does not
    reported = _status_entries(rt, "moe", a18.id)
    assert [r[:3] for r in reported] == [
        (InvoiceStatus.PRISE_EN_COMPTE_MOA.code, "PRISE_EN_COMPTE_MOA", "MOA"),
        (InvoiceStatus.REMPLACEE_PAR_A22.code, "REMPLACEE_PAR_A22", "PLATEFORME"),
    ]
    assert _status_entries(rt, "titulaire", a18.id) == []

    flow, dgd = _drop_spec(
        rt, partner, a23s, number=f"{framework}-{a23s.number}", framework=framework, previous=a22.number, **same
    )
    assert (dgd.framework, dgd.status, dgd.holder) == (Framework(framework), InvoiceStatus.MISE_A_DISPOSITION, buyer)
    assert (dgd.previous_id, dgd.billing_file_id) == (a22.id, a7.id)
    assert [o.status for o in _deliveries(rt, flow.id)] == [OutboxStatus.SENT]
    assert [p.id for p in rt.store.billing_file(a7.id)] == [a7.id, a18.id, a22.id, dgd.id]
