"""Billing frameworks at intake, through the real pipeline: circuits, billing files, association, E4/E5.

docs/billing-frameworks.md: an A4 (draft monthly statement) goes to its MOE with a 7-day deadline; the
MOE's A15 associated to it (BT-25) joins its billing file and goes to the MOA (the buyer); a second A15
of the same A4 is refused (RLS-P20); an A9 waits for its validator, its delivery HELD; a plain invoice is
delivered as ever.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa

from flows.domain.frameworks import Framework
from flows.domain.lifecycle import FlowStatus, InvoiceStatus
from flows.domain.model import FlowCode, Invoice, invoice_id
from flows.domain.outbox import OutboxKind, OutboxStatus
from flows.pipeline import dispatch
from flows.store import tables as t
from relais import generate as gen
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


def _send(rt, name, xml):
    drop(rt, "op-a", name, xml)
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
    assert (after.status, after.due_at) == (InvoiceStatus.MISE_A_DISPOSITION_MOE, None)  # the MOE answered
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
