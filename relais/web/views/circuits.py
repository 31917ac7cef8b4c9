"""The landing page's "Circuits de facturation" (template _home_circuits.html): for each status where a piece
waits for an actor of its billing circuit (``flows.store.dashboard.WAITING``), how many pieces wait, how many
are past their deadline (the deadline step has not moved them: an incident to look at) or due within 48
hours, and the oldest one, linked to its billing file page (``/billing-files/{id}#piece-{id}``).

A piece in ``ERREUR_FOURNISSEUR_SUR_VALIDEUR`` waits for ops, who set the right validator
(``relais invoices validator ID --siret S --reason ...``): the page says so (the command to ops users only).
A partner user sees the pieces of its own flows. Words, French first then English, are this module's.

>>> href("CPP0000000001-00001", "CPP0000000001-00002")
'/billing-files/CPP0000000001-00001#piece-CPP0000000001-00002'
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol
from urllib.parse import quote

from flows.domain.circuits import STEP_OF
from flows.domain.lifecycle import InvoiceStatus
from flows.store.dashboard import DUE_SOON, CircuitWait
from relais.web import i18n
from relais.web.views import labels

i18n.add(
    fr={
        "circuits-title": "Circuits de facturation",
        "circuits-hint": "Pièces en attente d'un acteur de leur circuit, maintenant. « En retard » : l'échéance"
        " est passée sans que l'étape des délais ne les fasse avancer — un incident à examiner.",
        "circuits-status": "Statut",
        "circuits-waits-for": "En attente de",
        "circuits-pieces": "Pièces",
        "circuits-overdue": "En retard",
        "circuits-due-soon": "Échéance sous {hours} h",
        "circuits-oldest": "La plus ancienne",
        "circuits-received": "reçue le",
        "circuits-none": "Aucune pièce en attente dans les circuits de facturation.",
        "circuits-total": "{n} pièce(s) en attente, dont {late} en retard.",
        "circuits-step-validator": "valideur",
        "circuits-step-moe": "maîtrise d'œuvre",
        "circuits-step-moa": "maîtrise d'ouvrage",
        "circuits-step-supplier": "fournisseur (DGD signé, A8)",
        "circuits-step-ops": "exploitation",
        "circuits-ops-needed": "Le valideur indiqué n'est pas le bon : l'exploitation doit désigner le bon valideur.",
        "circuits-ops-command": "Commande :",
    },
    en={
        "circuits-title": "Billing circuits",
        "circuits-hint": 'Pieces waiting for an actor of their circuit, now. "Overdue": the deadline passed and'
        " the deadline step did not move them on — an incident to look at.",
        "circuits-status": "Status",
        "circuits-waits-for": "Waiting for",
        "circuits-pieces": "Pieces",
        "circuits-overdue": "Overdue",
        "circuits-due-soon": "Due within {hours} h",
        "circuits-oldest": "Oldest",
        "circuits-received": "received on",
        "circuits-none": "No piece waiting in the billing circuits.",
        "circuits-total": "{n} piece(s) waiting, {late} of them overdue.",
        "circuits-step-validator": "validator",
        "circuits-step-moe": "project manager (MOE)",
        "circuits-step-moa": "contracting authority (MOA)",
        "circuits-step-supplier": "supplier (signed DGD, A8)",
        "circuits-step-ops": "operations",
        "circuits-ops-needed": "The named validator is the wrong one: operations must set the right validator.",
        "circuits-ops-command": "Command:",
    },
)

#: The status that waits for ops rather than for an actor of the circuit, and how ops answer it.
OPS_STATUS = InvoiceStatus.ERREUR_FOURNISSEUR_SUR_VALIDEUR
OPS_COMMAND = "relais invoices validator ID --siret S --reason ..."


class CircuitStore(Protocol):
    """What this part needs of the store (``flows.store.Store``)."""

    def circuit_waits(self, partner: str | None = ..., *, now: dt.datetime | None = ...) -> list[CircuitWait]: ...


def home_context(
    store: CircuitStore, user_partner: str | None, *, lang: str = "fr", now: dt.datetime | None = None
) -> dict[str, Any]:
    """The landing page's part (_home_circuits.html documents each variable)."""
    waits = store.circuit_waits(user_partner, now=now)
    return {
        "circuits": [_row(w, lang) for w in waits],
        "circuits_waiting": sum(w.waiting for w in waits),
        "circuits_overdue": sum(w.overdue for w in waits),
        "circuits_soon_hours": int(DUE_SOON.total_seconds() // 3600),
        "circuits_ops_command": OPS_COMMAND,
    }


def href(file_id: str, piece_id: str) -> str:
    """A piece on its billing file's page."""
    return f"/billing-files/{quote(file_id, safe='')}#piece-{quote(piece_id, safe='')}"


def _row(w: CircuitWait, lang: str) -> dict[str, Any]:
    step = "ops" if w.status is OPS_STATUS else STEP_OF[w.status][0].value  # validator, moe, moa, supplier
    oldest = None
    if w.oldest_id is not None:
        file = w.oldest_file or w.oldest_id
        oldest = {"id": w.oldest_id, "href": href(file, w.oldest_id), "received": w.oldest_received}
    return {
        "status": w.status.name,
        "label": labels.invoice_status_label(w.status.value, lang),
        "waits_for": i18n.text(lang, f"circuits-step-{step}"),
        "waiting": w.waiting,
        "overdue": w.overdue,
        "due_soon": w.due_soon,
        "oldest": oldest,
        "ops": w.status is OPS_STATUS,
    }
