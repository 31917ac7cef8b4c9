"""The store on SQLite and on PostgreSQL: migrations, flows, invoices, findings, outbox, directory."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from flows.domain.model import (
    Channel,
    Flag,
    Flow,
    FlowStatus,
    Invoice,
    InvoiceStatus,
    Syntax,
    ValidationError,
    invoice_id,
)
from flows.domain.outbox import Address
from flows.store import Structure


def _flow(**kw) -> Flow:
    values = dict(id="", partner="op-a", channel=Channel.FOLDER, original_name="lot.zip", size=10, sha256="ab" * 32)
    values.update(kw)
    return Flow(**values)


def test_migrations_are_idempotent(store):
    store.migrate()  # a second upgrade is a no-op
    assert store.status_counts() == {}


def test_flow_ids_are_cpp_numbers_and_unique(store):
    a = store.create_flow(_flow())
    b = store.create_flow(_flow())
    assert a.id.startswith("CPP") and a.id[3:].isdigit()
    assert a.id < b.id
    got = store.get_flow(a.id)
    assert got == a
    assert got.status is FlowStatus.IN_RECU and got.received_at.tzinfo is not None


def test_duplicates_are_found_per_partner(store):
    first = store.create_flow(_flow())
    other_partner = store.create_flow(_flow(partner="op-b"))
    second = store.create_flow(_flow())
    assert store.find_original(first) is None
    assert store.find_original(other_partner) is None
    assert store.find_original(second) == first.id


def test_claim_moves_a_flow_only_from_the_given_statuses(store):
    f = store.create_flow(_flow())
    assert store.claim_flow(f.id, [FlowStatus.IN_RECU], FlowStatus.IN_EN_COURS_TRAITEMENT_CPP)
    assert not store.claim_flow(f.id, [FlowStatus.IN_RECU], FlowStatus.IN_EN_COURS_TRAITEMENT_CPP)
    assert store.get_flow(f.id).status is FlowStatus.IN_EN_COURS_TRAITEMENT_CPP


def test_invoices_errors_and_outbox_round_trip(store):
    f = store.create_flow(_flow())
    invs = []
    for pos in range(1, 1203):  # more than one page
        inv = Invoice(
            id=invoice_id(f.id, pos),
            flow_id=f.id,
            position=pos,
            entry_name=f"e{pos}.xml",
            syntax=Syntax.CII,
            number=f"F{pos}",
            total_with_vat=Decimal("120.50"),
        )
        if pos % 100 == 0:
            inv.status = InvoiceStatus.REJETEE
            inv.errors = [
                ValidationError("XSD", Flag.FATAL, "line 3, column 5", "bad"),
                ValidationError("BR-X", Flag.WARNING, "/a", "hmm"),
            ]
        invs.append(inv)
    store.save_invoices(
        invs[:600], [(i, Address("folder", i.buyer_siret, f"/d/{i.id}.xml")) for i in invs[:600] if not i.rejected]
    )
    store.save_invoices(invs[600:], [])
    store.add_flow_errors(f.id, [ValidationError("RLS-T99", Flag.FATAL, "/", "x")])
    back = list(store.iter_invoices(f.id))
    assert [i.position for i in back] == list(range(1, 1203))
    assert back[99].errors == invs[99].errors and back[99].status is InvoiceStatus.REJETEE
    assert back[0].total_with_vat == Decimal("120.50") and back[0].syntax is Syntax.CII
    assert [e.rule for e in store.flow_errors(f.id)] == ["RLS-T99"]
    assert store.pending_outbox(flow_id=f.id) == []  # deliveries wait until their flow is closed
    f.status = FlowStatus.IN_INTEGRE_PARTIEL
    store.update_flow(f)
    pending = store.pending_outbox(flow_id=f.id)
    assert len(pending) == 594 and all(p.kind == "delivery" for p in pending)
    store.mark_sent(pending[:10])
    assert len(store.pending_outbox(flow_id=f.id)) == 584
    assert store.top_errors(5)[0][0] == "XSD"
    store.reset_flow_results(f.id)
    assert list(store.iter_invoices(f.id)) == []
    rows = Counter(o.status for o in store.outbox_for_flow(f.id))
    # what was sent stays recorded; what was not is kept, superseded (never sent)
    assert rows == {"sent": 10, "superseded": 584} and store.pending_outbox(flow_id=f.id) == []
    assert store.flow_errors(f.id) == [] and store.top_errors(5) == []  # findings superseded


def test_directory_versions(store):
    s1 = Structure("11000201100044", "Commune A", True, True, False, False, {"S1": ("Compta", True)})
    store.import_directory("v1", "00" * 32, [s1])
    store.import_directory(
        "v2", "11" * 32, [s1, Structure("35600000000048", "La Poste", False, False, True, False, {})]
    )
    with pytest.raises(ValueError):
        store.import_directory("v1", "00" * 32, [s1])
    latest = store.load_directory()
    assert latest.version == "v2" and len(latest.structures) == 2
    assert store.load_directory("v1").get("11000201100044").services == {"S1": ("Compta", True)}
    assert [v for v, _, _ in store.directory_versions()][0] == "v2"


def test_a_flow_in_progress_is_taken_over_only_when_stale(store):
    import datetime as dt

    f = store.create_flow(_flow())
    busy = FlowStatus.IN_EN_COURS_TRAITEMENT_CPP
    assert store.claim_flow(f.id, [FlowStatus.IN_RECU], busy)
    assert not store.claim_flow(f.id, [FlowStatus.IN_RECU], busy, stale_after=dt.timedelta(minutes=30))
    assert store.claim_flow(f.id, [FlowStatus.IN_RECU], busy, stale_after=dt.timedelta(seconds=-1))
