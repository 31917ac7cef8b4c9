"""What the pages show of the reform's CDAR lifecycle messages (docs/reform.md, "Seeing the messages"): the
list page (``GET /cdar``: filters partner, direction, outcome; newest first, paged by id), the "Messages CDAR"
section of a flow's page (the messages received in it or reporting on it, and those naming its invoices,
each invoice's "Cycle de vie (CDAR)" in its detail), and the landing page's alert on messages never sent.

A partner user sees only the messages sent to or received from its own partner id **[choice]** (a message
about one of its invoices sent to the buyer's platform is that platform's); a message from a sender that is no
known partner is for ops. Words, French first then English, are this module's (`i18n.add`); labels of
outcomes and statuses are relais/cdarview.py's (the CLI says the same).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from flows.domain.model import Flow
from flows.store.cdar import CdarLineRecord, CdarRecord
from flows.store.web import WebUser
from relais import cdarview
from relais.compose import Runtime
from relais.web import i18n, params
from relais.web.auth import security

PAGE = 50
#: The messages a flow's page shows at most (the newest; the list page has them all).
ON_FLOW_PAGE = 20

i18n.add(
    {
        "cdar-nav": "Messages CDAR",
        "cdar-title": "Messages CDAR (cycle de vie)",
        "cdar-intro": "Les messages de cycle de vie de la réforme (CDAR) envoyés aux partenaires et reçus d'eux.",
        "cdar-flow-title": "Messages CDAR",
        "cdar-lifecycle": "Cycle de vie (CDAR)",
        "cdar-direction": "Sens",
        "cdar-date": "Date",
        "cdar-message": "Message",
        "cdar-outcome": "Résultat",
        "cdar-lines": "Lignes",
        "cdar-statuses": "Statuts",
        "cdar-download": "Télécharger le message",
        "cdar-none": "Aucun message CDAR.",
        "cdar-all-directions": "Envoyés et reçus",
        "cdar-all-outcomes": "Tous les résultats",
        "cdar-counts": "Messages par résultat",
        "cdar-rule": "règle",
        "cdar-reason": "motif",
        "cdar-not-sent-alert": "{n} message(s) CDAR non envoyé(s) : refusés par le XSD ou le schematron officiels, "
        "les changements qu'ils portaient attendent (incident)",
        "cdar-home-title": "Messages CDAR",
        "cdar-home-link": "{n} message(s) CDAR envoyés et reçus",
    },
    {
        "cdar-nav": "CDAR messages",
        "cdar-title": "CDAR messages (lifecycle)",
        "cdar-intro": "The reform's lifecycle messages (CDAR) sent to the partners and received from them.",
        "cdar-flow-title": "CDAR messages",
        "cdar-lifecycle": "Lifecycle (CDAR)",
        "cdar-direction": "Direction",
        "cdar-date": "Date",
        "cdar-message": "Message",
        "cdar-outcome": "Outcome",
        "cdar-lines": "Lines",
        "cdar-statuses": "Statuses",
        "cdar-download": "Download the message",
        "cdar-none": "No CDAR message.",
        "cdar-all-directions": "Sent and received",
        "cdar-all-outcomes": "Every outcome",
        "cdar-counts": "Messages by outcome",
        "cdar-rule": "rule",
        "cdar-reason": "reason",
        "cdar-not-sent-alert": "{n} CDAR message(s) not sent: refused by the official XSD or schematron, the changes "
        "they carried are waiting (incident)",
        "cdar-home-title": "CDAR messages",
        "cdar-home-link": "{n} CDAR message(s) sent and received",
    },
)


@dataclasses.dataclass(frozen=True, slots=True)
class Filters:
    partner: str | None
    direction: str | None
    outcome: str | None
    before: int | None


def filters(query: Any, own_partner: str | None) -> Filters:
    """The list page's query (a bad value is a 400 naming it: `params.BadParam`)."""
    before = params.text(query, "before", limit=10)
    if before is not None and not (before.isascii() and before.isdigit() and int(before) <= params.MAX_INT):
        raise params.BadParam("before")
    return Filters(
        partner=own_partner or params.text(query, "partner", limit=128),
        direction=params.choice(query, "direction", ("in", "out")),
        outcome=params.choice(query, "outcome", tuple(cdarview.OUTCOMES)),
        before=int(before) if before else None,
    )


def visible(user: WebUser, rec: CdarRecord) -> bool:
    """Whether `user` may see `rec` (module doc)."""
    if user.role != "partner":
        return True
    return rec.partner is not None and security.sees_partner(user, rec.partner)


def counts(rt: Runtime, user: WebUser) -> list[dict[str, Any]]:
    """The messages per (direction, outcome) the user sees, in a fixed order, zeros left out."""
    found = rt.store.cdar_outcome_counts(user.partner if user.role == "partner" else None)
    order = list(cdarview.OUTCOMES)
    rows = sorted(found.items(), key=lambda kv: (kv[0][0] != "out", order.index(kv[0][1]) if kv[0][1] in order else 99))
    return [
        {"direction": d, "outcome": o, "n": n, "alert": o in cdarview.ALERTS}
        for (d, o), n in rows
        if n  # a group-by only gives groups that exist
    ]


def list_context(rt: Runtime, user: WebUser, f: Filters, base: Sequence[tuple[str, str]]) -> dict[str, Any]:
    page = rt.store.cdar_list(
        direction=f.direction, partner=f.partner, outcome=f.outcome, before=f.before, limit=PAGE + 1
    )
    more = len(page) > PAGE
    page = page[:PAGE]
    keep = [(k, v) for k, v in base if k not in ("before", "lang")]
    by = counts(rt, user)
    return {
        "messages": page,
        "f": f,
        "counts": by,
        "not_sent": sum(c["n"] for c in by if c["alert"]),
        "next_url": "/cdar?" + urlencode([*keep, ("before", str(page[-1].id))]) if more and page else None,
        "first_url": "/cdar?" + urlencode(keep) if f.before else None,
        "partners": rt.store.partners_seen() if user.role != "partner" else [user.partner],
    }


def home_context(rt: Runtime, user: WebUser) -> dict[str, Any]:
    """The landing page's part: how many messages, and the incidents (never sent), current (not cached)."""
    by = counts(rt, user)
    return {"cdar_total": sum(c["n"] for c in by), "cdar_not_sent": sum(c["n"] for c in by if c["alert"])}


def of_flow(rt: Runtime, user: WebUser, flow: Flow, invoice_ids: Sequence[str]) -> dict[str, Any]:
    """The flow page's part: the messages received in the flow or reporting on it and those naming the invoices
    on the page, newest first, each with every line (a refused line's rule too); and each invoice's lines,
    {invoice id: [(message, line)]} oldest first."""
    store = rt.store
    ids = {r.id for r in store.cdar_list(flow_id=flow.id, limit=ON_FLOW_PAGE) if r.id is not None}
    if invoice_ids:
        ids |= {r.id for r in store.cdar_list(invoice_ids=invoice_ids, limit=ON_FLOW_PAGE) if r.id is not None}
    shown = []
    for pk in sorted(ids, reverse=True)[:ON_FLOW_PAGE]:
        rec = store.cdar_get(pk)
        if rec is not None and visible(user, rec):
            shown.append(rec)
    per_invoice: dict[str, list[tuple[CdarRecord, CdarLineRecord]]] = {}
    wanted = set(invoice_ids)
    for rec in reversed(shown):
        for line in rec.lines:
            if line.invoice_id is not None and line.invoice_id in wanted:
                per_invoice.setdefault(line.invoice_id, []).append((rec, line))
    return {"cdar": shown, "cdar_by_invoice": per_invoice}
