"""The flow service's webhook events for the CDAR messages Relais queued to a partner (its In flows), on SQLite
and PostgreSQL: one event per (webhook, message), none for a subscription whose filters leave the message out
(recorded, never read again), none twice.

The Out side (the partner's own flows) is driven end to end by tests/relais/api/test_flow_service.py.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from archive.local import LocalArchive
from flows.domain import flow_service as fs
from flows.domain.outbox import OutboxKind
from flows.pipeline import webhooks
from flows.pipeline.flow_views import in_view
from flows.store import Store
from flows.store import tables as t
from flows.store.cdar import CdarRecord, Outcome
from flows.store.flow_service import Webhook, webhook_key

PARTNER = "pa-hooks"
SINCE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def store(store_url):
    url, schema = store_url
    s = Store.open(url, schema=schema)
    try:
        yield s
    finally:
        s.close()


def _hook(uid: str, **filters: object) -> Webhook:
    return Webhook(uid, PARTNER, "https://hooks.example.com/relais", "a2V5", SINCE, **filters)  # type: ignore[arg-type]


def _sent(store: Store, message_id: str, outcome: Outcome = Outcome.QUEUED) -> int:
    rec, inserted = store.cdar_record(
        CdarRecord("out", message_id, "0238:9998", "ab" * 32, outcome, partner=PARTNER, return_id=message_id)
    )
    assert inserted and rec.id is not None
    return rec.id


def _webhook_rows(store: Store) -> dict[str, str | None]:
    o = t.outbox.c
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(o.key, o.archive_sha256).where(o.kind == str(OutboxKind.WEBHOOK))).all()
    return {key: sha for key, sha in rows}


def test_a_queued_cdar_message_is_one_event_per_webhook_that_wants_it(store: Store, tmp_path) -> None:
    archive = LocalArchive(tmp_path / "archive")
    every = _hook("11111111-1111-4111-8111-111111111111")
    out_only = _hook("22222222-2222-4222-8222-222222222222", flow_direction="Out")
    invoices_only = _hook("33333333-3333-4333-8333-333333333333", flow_types=("CustomerInvoice",))
    for w in (every, out_only, invoices_only):
        store.create_webhook(w)
    sent = _sent(store, "ST000000000001")
    _sent(store, "ST000000000002", Outcome.REFUSED_OUT)  # never sent: no event

    assert webhooks.queue_events(store, archive) == 1
    rows = _webhook_rows(store)
    key = webhook_key(every.id, f"CDAR-{sent}", "Ok")
    assert rows[key] is not None  # the payload, archived first
    filtered = webhook_key(invoices_only.id, f"CDAR-{sent}", "Ok")
    assert filtered in rows and rows[filtered] is None  # left out by its flow types: recorded, never sent
    assert not any(k.startswith(f"webhook:{out_only.id}:") for k in rows)  # an Out subscription hears no In flow
    with archive.open(rows[key]) as f:  # type: ignore[arg-type]
        body = f.read()
    assert b'"flowDirection":"In"' in body and b'"flowSyntax":"CDAR"' in body

    assert webhooks.queue_events(store, archive) == 0  # nothing twice, nothing read again
    assert _webhook_rows(store) == rows


def test_the_filters_and_a_second_queueing_of_the_same_event(store: Store, tmp_path) -> None:
    archive = LocalArchive(tmp_path / "archive")
    w = _hook("44444444-4444-4444-8444-444444444444")
    store.create_webhook(w)
    sent = _sent(store, "ST000000000003")
    message = store.unnotified_messages(w, "Ok")[0]
    assert message.id == sent
    view = in_view(message)
    assert view.direction == "In" and view.flow_type == fs.IN_CDAR_TYPE and view.ack == "Ok"
    assert webhooks.wants(w, view)
    assert not webhooks.wants(_hook("x", flow_direction="Out"), view)
    assert not webhooks.wants(_hook("x", flow_types=("CustomerInvoice",)), view)
    assert not webhooks.wants(_hook("x", ack_status="Error"), view)
    key = webhook_key(w.id, view.flow_id, "Ok")
    assert webhooks._queue(store, archive, w, key, None, view) == 1
    assert webhooks._queue(store, archive, w, key, None, view) == 0  # the same event again: not queued twice
