"""What waits in the billing circuits (`Store.circuit_waits`, the landing page's "Circuits de facturation" and
the metrics), on SQLite and PostgreSQL: per waiting status, the pieces in it, those past their deadline or due
within 48 hours (the clock injected), and the oldest one with its billing file; for a partner, its own pieces.
The count reads the partial index ``ix_invoices_waiting`` (migration 0016), never the whole table."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.domain.circuits import STEP_OF
from flows.domain.lifecycle import InvoiceStatus
from flows.store import Store
from flows.store import tables as t
from flows.store.dashboard import WAITING, CircuitWait
from tests.support import billing_files

NOW = dt.datetime(2026, 12, 10, 9, 30, tzinfo=dt.UTC)
I = InvoiceStatus  # noqa: E741
MIGRATIONS = Path(__file__).resolve().parents[3] / "flows" / "store" / "migrations" / "versions"


@pytest.fixture
def store(store_url):
    url, schema = store_url
    s = Store.open(url, schema=schema)
    try:
        yield s
    finally:
        s.close()


def _figures(waits: list[CircuitWait]) -> dict[InvoiceStatus, tuple[int, int, int, str | None, str | None]]:
    return {w.status: (w.waiting, w.overdue, w.due_soon, w.oldest_id, w.oldest_file) for w in waits if w.waiting}


def test_the_waiting_statuses_are_the_circuits_turns_and_the_index_s() -> None:
    assert WAITING == tuple(s for s in STEP_OF if not s.is_reserved)
    assert [s.name for s in WAITING] == [
        "A_VALIDER_1",
        "ERREUR_FOURNISSEUR_SUR_VALIDEUR",
        "A_VALIDER_2",
        "MISE_A_DISPOSITION_MOE",
        "PRISE_EN_COMPTE_MOE",
        "MISE_A_DISPOSITION_MOA",
        "PRISE_EN_COMPTE_MOA",
        "A_ASSOCIER_FOURNISSEUR",
    ]
    assert t.WAITING_STATUSES == tuple(s.value for s in WAITING)
    spec = importlib.util.spec_from_file_location("m0016", MIGRATIONS / "0016_circuit_waiting_index.py")
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert migration._WAITING == t.WAITING_STATUSES  # the index covers exactly what the query counts


def test_every_figure_of_the_circuits(store) -> None:
    seeded = billing_files.seed_waiting(store, NOW)
    waits = store.circuit_waits(now=NOW)
    assert [w.status for w in waits] == list(WAITING)  # every status, zeros included
    assert _figures(waits) == seeded.expected
    empty = next(w for w in waits if w.status is I.PRISE_EN_COMPTE_MOA)
    assert empty == CircuitWait(I.PRISE_EN_COMPTE_MOA, 0, 0, 0)
    first = waits[0]
    received = store.get_flow(seeded.flows["sub-1"].id).received_at
    assert first.oldest_received == received.astimezone(dt.UTC) and first.oldest_received.tzinfo is not None

    # Two days later: the piece due in 24 h is late too, the one due in 49 h soon, the one due in 47 h late.
    later = _figures(store.circuit_waits(now=NOW + dt.timedelta(days=2)))
    assert later[I.A_VALIDER_1][:3] == (4, 2, 1)  # the one due in 49 h is now due within 48 h
    assert later[I.A_VALIDER_2][:3] == (1, 1, 0)


def test_a_partner_sees_its_own_pieces(store) -> None:
    seeded = billing_files.seed_waiting(store, NOW)
    sub = _figures(store.circuit_waits("op-sub", now=NOW))
    assert sub == {
        s: f
        for s, f in seeded.expected.items()
        if s in (I.A_VALIDER_1, I.ERREUR_FOURNISSEUR_SUR_VALIDEUR, I.A_VALIDER_2)
    }
    moe = _figures(store.circuit_waits("op-moe", now=NOW))
    assert set(moe) == {
        I.MISE_A_DISPOSITION_MOE,
        I.PRISE_EN_COMPTE_MOE,
        I.MISE_A_DISPOSITION_MOA,
        I.A_ASSOCIER_FOURNISSEUR,
    }
    assert _figures(store.circuit_waits("nobody", now=NOW)) == {}


def test_pieces_leaving_their_step_are_no_longer_counted(store) -> None:
    seeded = billing_files.seed_waiting(store, NOW)
    late = seeded.pieces["late"]
    billing_files.move(store, late, I.ABSENCE_VALIDATION_1_HORS_DELAI, billing_files.Actor.PLATFORM, turn=(None, None))
    figures = _figures(store.circuit_waits(now=NOW))
    assert figures[I.A_VALIDER_1] == (3, 0, 1, seeded.pieces["soon"].id, seeded.pieces["soon"].id)


def test_the_count_reads_the_waiting_index(store) -> None:
    billing_files.seed_waiting(store, NOW)
    i = t.invoices.c
    from flows.store.dashboard import _waiting

    q = sa.select(i.status, sa.func.count(), sa.func.min(i.id)).where(_waiting(i.status)).group_by(i.status)
    with store.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SET LOCAL enable_seqscan = off"))  # a tiny table: make the plan's choice visible
            sql = q.compile(conn, compile_kwargs={"literal_binds": True})
            plan = "\n".join(r[0] for r in conn.execute(sa.text(f"EXPLAIN {sql}")))
        else:
            sql = q.compile(conn, compile_kwargs={"literal_binds": True})
            plan = "\n".join(str(r[-1]) for r in conn.execute(sa.text(f"EXPLAIN QUERY PLAN {sql}")))
    assert "ix_invoices_waiting" in plan, plan


def test_a_piece_answered_by_its_follower_waits_for_nobody(store) -> None:
    """An A4 the MOE answered with its A15 keeps its status, but nobody holds it any more: not counted."""
    seeded = billing_files.seed_waiting(store, NOW)
    before = _figures(store.circuit_waits(now=NOW))[I.MISE_A_DISPOSITION_MOE]
    answered = seeded.pieces["moe"]
    with store.engine.begin() as conn:  # what flows.store.circuits.followed does for the A4 of an accepted A15
        from flows.store import tables as t

        conn.execute(t.invoices.update().where(t.invoices.c.id == answered.id).values(holder=None, due_at=None))
    after = _figures(store.circuit_waits(now=NOW)).get(I.MISE_A_DISPOSITION_MOE, (0, 0, 0, None, None))
    assert before[0] >= 1 and after[0] == before[0] - 1 and after[3] != answered.id
