"""The AFNOR flow service's webhook events, through the outbox (docs/reform.md §3).

`queue_events` looks, for each live subscription, for what it has not been told yet: the partner's
deposited flows whose acknowledgement reached the statuses it listens to (Ok and Error by default: a flow
closed), and the CDAR messages Relais queued to it (a new In flow, Ok). Each event is one outbox row
(`OutboxKind.WEBHOOK`, key ``webhook:<uid>:<flow>:<relais status>``, unique: never two rows for one
(webhook, flow, status)); its payload, the contract's `Flow` object, is archived first and the row names it,
so what is posted is what was true when the event was queued. The rows are sent by the outbox like any
other (`flows.pipeline.dispatch`, the ``webhook`` channel of connectors/webhook), retried with its backoff,
never lost: an event not queued yet is found again by the next sweep, from the flows' own statuses.
`relais run` and the DAG's ``statuses`` task sweep after each pass (relais.runner.emit_statuses).
"""

from __future__ import annotations

import json

from archive import Archive
from flows.domain import flow_service as fs
from flows.domain import log
from flows.pipeline.flow_views import in_view, out_view
from flows.store import Store
from flows.store.flow_service import Webhook, webhook_key

_log = log.get("relais.webhooks")


def wants(w: Webhook, view: fs.FlowView) -> bool:
    """Whether subscription `w` is told about `view` (its filters: flow types, direction, ack status)."""
    if w.flow_types is not None and view.flow_type not in w.flow_types:
        return False
    if w.flow_direction is not None and view.direction != w.flow_direction:
        return False
    return view.ack == w.ack_status if w.ack_status else view.ack in ("Ok", "Error")


def payload(view: fs.FlowView) -> bytes:
    return json.dumps(fs.flow_json(view), ensure_ascii=False, separators=(",", ":")).encode()


def queue_events(store: Store, archive: Archive) -> int:
    """Queue the events not queued yet; how many."""
    queued = 0
    for w in store.webhooks():
        acks = (w.ack_status,) if w.ack_status else ("Ok", "Error")
        if w.flow_direction in (None, "Out"):
            statuses = [str(s) for a in acks for s in fs.STATUSES_BY_ACK[a]]
            flows = store.unnotified_flows(w, statuses)
            declared = store.declared([f.id for f in flows])
            for flow in flows:
                view = out_view(store, flow, declared.get(flow.id))
                if wants(w, view):
                    queued += _queue(store, archive, w, webhook_key(w.id, flow.id, str(flow.status)), flow.id, view)
                else:  # filtered out: remembered as such, so the sweep does not read it again
                    store.queue_webhook_event(webhook_key(w.id, flow.id, str(flow.status)), w, flow.id, None)
        if w.flow_direction in (None, "In") and "Ok" in acks:
            for message in store.unnotified_messages(w, "Ok"):
                view = in_view(message)
                key = webhook_key(w.id, message.flow_service_id, "Ok")
                if wants(w, view):
                    queued += _queue(store, archive, w, key, message.flow_id, view)
                else:
                    store.queue_webhook_event(key, w, message.flow_id, None)
    return queued


def _queue(store: Store, archive: Archive, w: Webhook, key: str, flow_id: str | None, view: fs.FlowView) -> int:
    obj = archive.put_bytes(payload(view))
    if store.queue_webhook_event(key, w, flow_id, obj.sha256):
        _log.info("webhook.queued", flow_id=view.flow_id, webhook=w.id, ack=view.ack, partner=w.partner)
        return 1
    return 0
