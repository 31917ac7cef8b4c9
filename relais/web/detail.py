"""What the flow page shows: the flow, its timeline, its invoices with their errors explained and their
history, its return flows and deliveries with their state, its AS2 messages."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import PurePosixPath
from typing import Any

from flows.model import Flow, ValidationError
from flows.rule import REGISTRY
from relais.compose import Runtime

#: Where a code that is not in Relais's catalogue comes from (the official rule sets).
_FAMILIES = {
    "BR-FR": "Règle française de la réforme (BR-FR, XSLT officielles).",
    "BR-": "Règle métier de la norme EN 16931 (XSLT officielles du CEN).",
    "UBL-": "Règle de syntaxe UBL de la norme EN 16931 (CEN).",
    "CII-": "Règle de syntaxe CII de la norme EN 16931 (CEN).",
    "FX-": "Règle du profil Factur-X.",
    "XSD": "Le document ne respecte pas le schéma XML de sa syntaxe.",
}


def explain(code: str, lang: str = "fr") -> str:
    """A short explanation of a rule, from the rule catalogue (validators/rules.py, docs/rules.md)."""
    rule = REGISTRY.get(code)
    if rule is not None:
        return rule.message_fr if lang == "fr" else rule.message_en
    for prefix, text in _FAMILIES.items():
        if code.startswith(prefix):
            return text
    return ""


@dataclasses.dataclass
class Event:
    at: dt.datetime | None
    what: str
    detail: str = ""


def _errors(errors: list[ValidationError]) -> list[dict[str, Any]]:
    return [
        {"rule": e.rule, "flag": str(e.flag), "location": e.location, "message": e.message, "explain": explain(e.rule)}
        for e in errors
    ]


def flow_detail(rt: Runtime, flow: Flow) -> dict[str, Any]:
    store = rt.store
    outbox = store.outbox_for_flow(flow.id)
    history = store.history_of_flow(flow.id)
    as2 = store.as2_for_flow(flow.id)
    invoices = []
    for inv in store.iter_invoices(flow.id):
        invoices.append(
            {
                "inv": inv,
                "errors": _errors(inv.errors),
                "history": history.get(inv.id, []),
                "delivery": next(
                    (o for o in reversed(outbox) if o.kind == "delivery" and o.invoice_id == inv.id), None
                ),
            }
        )
    returns = [o for o in outbox if o.kind == "return"]
    events = [Event(flow.received_at, "received", f"{flow.channel} · {flow.original_name} · {flow.size} o")]
    events.append(Event(flow.received_at, "archived", f"SHA-256 {flow.sha256[:16]}…"))
    if flow.invoice_count:
        events.append(
            Event(flow.updated_at, "validated", f"{flow.invoice_count} facture(s), {flow.rejected_count} rejetée(s)")
        )
    delivered = [o for o in outbox if o.kind == "delivery"]
    if delivered:
        sent = sum(1 for o in delivered if o.status == "sent")
        events.append(Event(flow.updated_at, "routed", f"{sent}/{len(delivered)} mises à disposition envoyées"))
    for o in returns:
        name = PurePosixPath(o.destination.replace("\\", "/")).name or o.destination  # no server path shown
        events.append(Event(o.created_at, "return", f"{o.channel} → {name} : {o.status}"))
    for m in as2:
        events.append(Event(m.received_at, "as2", f"{m.direction} {m.message_id} MDN {m.mdn_status}"))
    events.sort(key=lambda e: e.at or flow.received_at)
    return {
        "flow": flow,
        "errors": _errors(store.flow_errors(flow.id)),
        # an earlier run's findings (the flow was reprocessed): kept, shown marked superseded
        "superseded": [
            {"invoice": inv_id, "at": at, **_errors([e])[0]} for inv_id, e, at in store.superseded_findings(flow.id)
        ],
        "invoices": invoices,
        "returns": returns,
        "deliveries": delivered,
        "as2": as2,
        "events": events,
    }
