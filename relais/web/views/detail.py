"""What the flow page shows: the flow, its timeline (ops actions included: who, when, the outcome), one
page of its invoices (filtered, ordered and paged in SQL) with their findings and history, its return
flows and deliveries with their state, its AS2 messages, and the actions that apply to it.

Words are the reader's (relais/web/i18n.py); findings are rendered by relais/web/views/findings.py and statuses
by relais/web/views/labels.py in the template. A partner user never sees a server path: a return flow is
named as the partner finds it (`seen_by_partner`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import PurePosixPath
from typing import Any

from flows.domain.frameworks import Framework
from flows.domain.lifecycle import REOPENABLE, FlowStatus, InvoiceStatus
from flows.domain.model import Flow, ValidationError
from flows.domain.outbox import OutboxItem, OutboxStatus
from flows.domain.rule import REGISTRY, official_family
from relais.compose import Runtime
from relais.web import i18n
from relais.web.params import InvoiceFilters
from relais.web.views.labels import outbox_state_label

#: A schema finding (XSD): its explanation (the official EN 16931 families: flows.domain.rule.official_family).
_XSD = {
    "fr": "Le document ne respecte pas le schéma XML de sa syntaxe.",
    "en": "The document does not conform to the XML schema of its syntax.",
}

#: The audited web actions on a flow shown in its timeline (relais/web/routes/actions.py, partners.py).
_ACTIONS = {"web.flow.reprocess": "reprocess", "web.flow.resend": "resend"}
_RESENT = re.compile(r"(\d+) sent, (\d+) failed")
#: The reasons the platform gives its own history entries (flows/store/history.py, flows/pipeline/process.py), in French.
_REASONS_FR = (
    (re.compile(r"^delivered to the recipient$"), "mise à disposition du destinataire"),
    (re.compile(r"^completed by invoice (\S+) \(flow (\S+)\)$"), r"complétée par la facture \1 (flux \2)"),
)


def reason(text: str | None, lang: str = "fr") -> str | None:
    """A history entry's reason in `lang`: the platform's own ones translated, a person's words as written.

    >>> reason("completed by invoice F2-00001 (flow F2)")
    'complétée par la facture F2-00001 (flux F2)'
    """
    if text is None or lang == "en":
        return text
    for pattern, french in _REASONS_FR:
        if pattern.match(text):
            return pattern.sub(french, text)
    return text


def explain(code: str, lang: str = "fr") -> str:
    """A short explanation of a rule, from the rule catalogue (validators/rules.py, docs/rules.md)."""
    rule = REGISTRY.get(code)
    if rule is not None:
        return rule.message_fr if lang == "fr" else rule.message_en
    family = official_family(code, lang)
    if family is not None:
        return family + "."
    return _XSD["en" if lang == "en" else "fr"] if code.startswith("XSD") else ""


@dataclasses.dataclass
class Event:
    at: dt.datetime | None
    what: str  # an ``ev-*`` key of relais/web/i18n.py
    detail: str = ""


def _errors(errors: list[ValidationError]) -> list[dict[str, Any]]:
    return [{"rule": e.rule, "flag": str(e.flag), "location": e.location, "message": e.message} for e in errors]


def as2_state(direction: str, status: str, lang: str = "fr") -> str:
    """An AS2 message's direction and MDN state in `lang` ("processed/error: <modifier>" keeps its modifier).

    >>> as2_state("out", "mdn-ok"), as2_state("in", "processed/error: decryption-failed")
    ('envoyé, accusé positif reçu', 'reçu, refusé (MDN : processed/error: decryption-failed)')
    """
    said = i18n.text(lang, f"as2-{direction}")
    key = "as2-mdn-refused" if status.startswith("processed/") else f"as2-{status}"
    state = i18n.text(lang, key)
    if state == key:
        return f"{said}, {status}"
    return f"{said}, {state}" + (f" (MDN : {status})" if key == "as2-mdn-refused" else "")


def seen_by_partner(o: OutboxItem) -> str:
    """A return flow's destination as its partner finds it: ``out/<name>`` in its drop zone (folder,
    hosted SFTP), the path on its own server (SFTP), the file name (AS2); never a path of this server.

    >>> seen_by_partner(OutboxItem(1, "k", "return", "F", None, None, "folder", "op-a", "/srv/dz/op-a/out/CR.xml", None, "sent", 1, None))
    'out/CR.xml'
    """
    name = PurePosixPath(o.destination.replace("\\", "/")).name or o.destination
    if o.channel == "folder":
        return f"out/{name}"
    if o.channel == "sftp" and not o.destination.startswith("/"):
        return o.destination
    return name


def actions(flow: Flow, returns: list[OutboxItem]) -> dict[str, bool]:
    """The actions that apply to `flow`: reprocess (an incident, or a closed flow with rejections), resend
    (a return flow already sent)."""
    return {
        "reprocess": flow.status is FlowStatus.IN_INCIDENTE or flow.status in REOPENABLE,
        "resend": any(o.status == OutboxStatus.SENT for o in returns),
    }


def flow_detail(
    rt: Runtime, flow: Flow, filters: InvoiceFilters, *, lang: str = "fr", partner_view: bool = False
) -> dict[str, Any]:
    store = rt.store

    def t(key: str) -> str:
        return i18n.text(lang, key)

    outbox = store.outbox_for_flow(flow.id)
    as2 = store.as2_for_flow(flow.id)
    page, matching = store.invoice_page(
        flow.id,
        statuses=filters.statuses,
        frameworks=filters.frameworks,
        search=filters.search,
        sort=filters.sort,
        descending=filters.descending,
        offset=filters.offset,
        limit=filters.size,
    )
    history = store.history_of_flow(flow.id) if page else {}
    history = {
        inv.id: [dataclasses.replace(h, reason=reason(h.reason, lang)) for h in history.get(inv.id, [])] for inv in page
    }
    deliveries = {o.invoice_id: o for o in outbox if o.kind == "delivery"}  # the newest row per invoice
    invoices = [
        {
            "inv": inv,
            "errors": _errors(inv.errors),
            "history": history.get(inv.id, []),
            "delivery": deliveries.get(inv.id),
        }
        for inv in page
    ]
    returns = [o for o in outbox if o.kind == "return"]
    shown = {o.id: seen_by_partner(o) if partner_view else o.destination for o in returns}

    events = [
        Event(flow.received_at, "received", f"{t('ch-' + str(flow.channel))} · {flow.original_name} · {flow.size} o")
    ]
    events.append(Event(flow.received_at, "archived", f"SHA-256 {flow.sha256[:16]}…"))
    if flow.invoice_count:
        counts = t("ev-validated-counts").format(n=flow.invoice_count, r=flow.rejected_count)
        events.append(Event(flow.updated_at, "validated", counts))
    if flow.qualification:  # judged and answered, never delivered (flows.qualification)
        events.append(Event(flow.updated_at, "qualification", t("qualification-title")))
    delivered = [o for o in outbox if o.kind == "delivery"]
    if delivered:
        sent = sum(1 for o in delivered if o.status == OutboxStatus.SENT)
        events.append(Event(flow.updated_at, "routed", t("ev-routed-counts").format(sent=sent, n=len(delivered))))
    for o in returns:
        name = seen_by_partner(o) if partner_view else PurePosixPath(o.destination.replace("\\", "/")).name
        state = outbox_state_label(o.status, lang)
        events.append(Event(o.created_at, "return", f"{t('ch-' + o.channel)} → {name} : {state}"))
    for m in as2:
        events.append(Event(m.received_at, "as2", f"{m.message_id} : {as2_state(m.direction, m.mdn_status, lang)}"))
    events += _audited(rt, flow, lang, partner_view)
    events.sort(key=lambda e: e.at or flow.received_at)
    pages = max(1, -(-matching // filters.size))
    return {
        "flow": flow,
        "errors": _errors(store.flow_errors(flow.id)),
        # an earlier run's findings (the flow was reprocessed): kept, shown marked superseded
        "superseded": [
            {"invoice": inv_id, "at": at, **_errors([e])[0]} for inv_id, e, at in store.superseded_findings(flow.id)
        ],
        "invoices": invoices,
        "matching": matching,
        "filters": filters,
        "pages": pages,
        "returns": returns,
        "shown": shown,
        "deliveries": delivered,
        "as2": as2,
        "events": events,
        "can": actions(flow, returns),
        "statuses": [s.value for s in InvoiceStatus if not s.is_reserved],
        "frameworks": list(Framework),
    }


def _audited(rt: Runtime, flow: Flow, lang: str, partner_view: bool) -> list[Event]:
    """The web actions on the flow (audit_log rows with it as target): who, when, the outcome."""
    found = []
    for row in rt.store.audit_rows(target=flow.id):
        what = _ACTIONS.get(row.action)
        if what is None:
            continue
        who = i18n.text(lang, "ev-by-ops") if partner_view else row.principal.removeprefix("web:")
        if row.outcome == "ok" and what == "resend" and (m := _RESENT.search(row.detail or "")):
            outcome = i18n.text(lang, "ev-resend-done").format(sent=m[1], failed=m[2])
        elif row.outcome == "ok":
            outcome = i18n.text(lang, f"ev-{what}-ok")
        else:
            outcome = i18n.text(lang, "ev-refused")
        found.append(Event(row.at, what, f"{i18n.text(lang, 'ev-by')} {who} — {outcome}"))
    return found


def table_url(flow: Flow, f: InvoiceFilters, **change: str | int | None) -> str:
    """The address of the flow's page with its invoice table changed (`change`: inv_status, cadre, q, sort,
    order, page; None drops one), back at the table.

    >>> from relais.web.params import InvoiceFilters
    >>> table_url(Flow(id="F1", partner="p", channel="cli", original_name="x", size=0, sha256=""),
    ...           InvoiceFilters("rejected", None, "position", False, 3), page=None, sort="amount")
    '/flows/F1?inv_status=rejected&sort=amount&order=asc#inv'
    """
    from urllib.parse import urlencode

    now: dict[str, str | int | None] = {
        "inv_status": f.status,
        "cadre": f.framework,
        "q": f.search,
        "sort": f.sort,
        "order": "desc" if f.descending else "asc",
        "page": f.page if f.page > 1 else None,
    }
    now.update(change)
    return f"/flows/{flow.id}?" + urlencode([(k, v) for k, v in now.items() if v not in (None, "")]) + "#inv"
