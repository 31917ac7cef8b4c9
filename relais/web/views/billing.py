"""What the pages show of billing frameworks (docs/billing-frameworks.md): the billing file page
(``GET /billing-files/{id}``, templates/billing_file.html) — each piece of the file in the order it was
recorded, who deposited it, its framework, the piece it follows, whose turn it is and until when, then
every status it took (when, who, the status, the reason's code and label, the reason) — and the words the
flow page's invoice table uses for them (framework column and filter, billing file link, actors).

A partner user sees a file one of whose pieces came in its own flows; the other depositors are named by
their role only, and their flows are not linked (a flow another partner owns is a 404 for it) **[choice]**.

Words, French first then English, are this module's (`i18n.add`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from flows.domain.frameworks import Depositor
from flows.domain.model import Invoice
from flows.store.web import WebUser
from relais.compose import Runtime
from relais.web import i18n
from relais.web.auth import security
from relais.web.views.detail import reason

i18n.add(
    {
        "inv-framework": "Cadre",
        "inv-framework-all": "Tous les cadres de facturation",
        "inv-framework-filter": "Cadre de facturation",
        "billing-file": "Dossier de facturation",
        "bf-intro": "{n} pièce(s), dans l'ordre de leur dépôt ; chacune avec tous les statuts qu'elle a pris.",
        "bf-piece": "Pièce",
        "bf-depositor": "Déposée par",
        "bf-follows": "Suit la pièce",
        "bf-turn": "Au tour de",
        "bf-until": "jusqu'au",
        "bf-when": "Date",
        "bf-actor": "Acteur",
        "bf-other-partner": "autre partenaire",
        "reason-code": "Code motif",
        "actor-validator": "valideur",
        "actor-moe": "maîtrise d'œuvre",
        "actor-moa": "maîtrise d'ouvrage",
        "dep-supplier": "fournisseur (titulaire)",
        "dep-subcontractor": "sous-traitant",
        "dep-cocontractor": "cotraitant",
        "dep-moe": "maîtrise d'œuvre",
        "dep-moa": "maîtrise d'ouvrage",
    },
    {
        "inv-framework": "Framework",
        "inv-framework-all": "Every billing framework",
        "inv-framework-filter": "Billing framework",
        "billing-file": "Billing file",
        "bf-intro": "{n} piece(s), in the order they were deposited; each with every status it took.",
        "bf-piece": "Piece",
        "bf-depositor": "Deposited by",
        "bf-follows": "Follows piece",
        "bf-turn": "Whose turn",
        "bf-until": "until",
        "bf-when": "Date",
        "bf-actor": "Actor",
        "bf-other-partner": "another partner",
        "reason-code": "Reason code",
        "actor-validator": "validator",
        "actor-moe": "project manager (MOE)",
        "actor-moa": "contracting authority (MOA)",
        "dep-supplier": "supplier (main contractor)",
        "dep-subcontractor": "sub-contractor",
        "dep-cocontractor": "co-contractor",
        "dep-moe": "project manager (MOE)",
        "dep-moa": "contracting authority (MOA)",
    },
)


@dataclasses.dataclass(frozen=True)
class Piece:
    inv: Invoice
    depositor: Depositor
    partner: str | None  # None: another partner's piece, for a partner user
    linked: bool  # the reader may open the flow that carried it
    history: list[Any]  # flows.domain.history.HistoryEntry, reasons in the reader's language

    @property
    def turn(self) -> bool:
        """Someone's turn: a holder, and a status that is not final."""
        return self.inv.holder is not None and not self.inv.status.is_final


def billing_file(rt: Runtime, file_id: str, user: WebUser, lang: str = "fr") -> dict[str, Any] | None:
    """The billing file `file_id` (its id or any of its pieces') as the page shows it; None when there is no
    such file or `user` may not see it (answered alike)."""
    pieces = rt.store.billing_file(file_id)
    if not pieces:
        return None
    partners = _partners(rt, pieces)
    if not any(security.sees_partner(user, p) for p in partners.values()):
        return None
    shown = []
    for inv in pieces:
        partner = partners.get(inv.flow_id)
        mine = partner is not None and security.sees_partner(user, partner)
        history = [dataclasses.replace(h, reason=reason(h.reason, lang)) for h in rt.store.invoice_history(inv.id)]
        shown.append(Piece(inv, inv.framework.info.depositor, partner if mine else None, mine, history))
    return {"id": pieces[0].billing_file_id or pieces[0].id, "pieces": shown}


def _partners(rt: Runtime, pieces: Sequence[Invoice]) -> dict[str, str]:
    found = {}
    for flow_id in dict.fromkeys(i.flow_id for i in pieces):
        flow = rt.store.get_flow(flow_id)
        if flow is not None:
            found[flow_id] = flow.partner
    return found
