"""What the views of billing frameworks read from the store, on SQLite and PostgreSQL: a flow's invoice page
filtered by framework (the web's ``cadre`` filter), and a billing file by its id or any of its pieces'."""

from __future__ import annotations

import pytest

from flows.store import Store
from tests.support import billing_files


@pytest.fixture
def seeded(store_url):
    url, schema = store_url
    store = Store.open(url, schema=schema)
    try:
        yield store, billing_files.seed(store)
    finally:
        store.close()


def test_the_invoice_page_filters_by_framework(seeded) -> None:
    store, s = seeded
    flow = s.flows["op-sub"].id
    page, total = store.invoice_page(flow, frameworks=["A9"])
    assert [i.id for i in page] == [s.refused.id] and total == 1
    page, total = store.invoice_page(flow, frameworks=["A9", "A1"], statuses=["01"])
    assert [i.id for i in page] == [s.plain.id] and total == 1
    assert store.invoice_page(flow, frameworks=["A25"]) == ([], 0)
    assert store.invoice_page(flow)[1] == 3


def test_a_billing_file_is_read_by_its_id_or_a_pieces(seeded) -> None:
    store, s = seeded
    by_file = store.billing_file(s.draft.id)
    assert [(i.id, str(i.framework), i.previous_id) for i in by_file] == [
        (s.draft.id, "A10", None),
        (s.statement.id, "A15", s.draft.id),
    ]
    assert [i.id for i in store.billing_file(s.statement.id)] == [s.draft.id, s.statement.id]
    assert [i.id for i in store.billing_file(s.plain.id)] == [s.plain.id]  # a plain invoice: a file of one
    assert store.billing_file("CPP9999999999-00001") == []
