"""Statuses and states as the pages show them: a label in the reader's language, with the platform's code
beside it for flow and invoice statuses (never the raw enum alone on one page and a label on the next).
Registered as Jinja globals by relais/web/app.py. The labels are those of `flows.domain.lifecycle`.

>>> flow_status_label("IN_INTEGRE_PARTIEL", "fr"), flow_status_label("IN_REJETE", "en")
('Intégré partiellement (IN_INTEGRE_PARTIEL)', 'Rejected (IN_REJETE)')
>>> invoice_status_label("03", "fr"), invoice_status_label("REJETEE_ROUTAGE", "en")
('Mise à disposition (03)', 'Rejected (routing) (04)')
>>> outbox_state_label("sent", "fr"), outbox_state_label("pending", "en"), flow_status_label("IN_X", "fr")
('envoyé', 'waiting to be sent', 'IN_X')
>>> framework_label("A10"), framework_label("A1", "en"), framework_label("A26")
('A10 — Projet de décompte mensuel de sous-traitant', 'A1 — Invoice', 'A26')
>>> reason_label("MARCHE"), reason_label("NON_AGREE", "en"), reason_label("GONE")
('Référence du marché absente ou erronée', 'Sub-contractor not accepted for direct payment', 'GONE')
"""

from __future__ import annotations

from flows.domain.frameworks import Framework
from flows.domain.lifecycle import FlowStatus, InvoiceStatus
from flows.domain.reasons import REASONS

_STATES = {
    "pending": ("en attente d'envoi", "waiting to be sent"),
    "sent": ("envoyé", "sent"),
    "failed": ("en échec", "failed"),
    "superseded": ("remplacé par le retraitement, jamais envoyé", "superseded by the reprocessing, never sent"),
}


def flow_status_label(code: object, lang: str = "fr") -> str:
    """'Intégré partiellement (IN_INTEGRE_PARTIEL)'; an unknown code as it is."""
    try:
        status = FlowStatus(str(code))
    except ValueError:
        return str(code)
    info = status.info
    return f"{_first_up(info.label_en if lang == 'en' else info.label_fr)} ({status.value})"


def invoice_status_label(code: object, lang: str = "fr") -> str:
    """'Mise à disposition (03)', from the code ('03') or the member's name ('MISE_A_DISPOSITION')."""
    text = str(code)
    status = next((s for s in InvoiceStatus if text in (s.value, s.name)), None)
    if status is None:
        return text
    info = status.info
    return f"{_first_up(info.label_en if lang == 'en' else info.label_fr)} ({status.code})"


def framework_name(code: object, lang: str = "fr") -> str:
    """A billing framework's label alone ('projet de décompte mensuel de sous-traitant'); an unknown code as it is."""
    try:
        framework = Framework(str(code))
    except ValueError:
        return str(code)
    return framework.label_en if lang == "en" else framework.label_fr


def framework_label(code: object, lang: str = "fr") -> str:
    """'A10 — Projet de décompte mensuel de sous-traitant' (flows.domain.frameworks); an unknown code as it is."""
    name = framework_name(code, lang)
    return str(code) if name == str(code) else f"{code} — {_first_up(name)}"


def reason_label(code: object, lang: str = "fr") -> str:
    """The label of a refusal's or suspension's reason code (flows.domain.reasons); a code the list no longer
    has as it is."""
    found = REASONS.get(str(code))
    return str(code) if found is None else found.label(lang)


def outbox_state_label(state: object, lang: str = "fr") -> str:
    """The state of an outbox row (a return flow, a delivery): 'envoyé', 'en attente d'envoi'..."""
    found = _STATES.get(str(state))
    if found is None:
        return str(state)
    return found[1] if lang == "en" else found[0]


def _first_up(text: str) -> str:
    return text[:1].upper() + text[1:]
