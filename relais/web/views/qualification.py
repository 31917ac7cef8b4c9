"""Qualification before production on the web: the landing page's "Partenaires en qualification" table
(`qualification_rows`, shown by templates/_home_qualification.html; the ops action that switches a
partner to production is relais/web/routes/partners.py).

A partner is in qualification when ops' latest switch says so, else its partner file's ``mode``
(connectors/partners.py). Its pass rate is the share of its flows processed in qualification that were
integrated whole (IN_INTEGRE) among all its flows processed in qualification.
"""

from __future__ import annotations

from typing import Any

from flows.domain.lifecycle import FlowStatus
from flows.store.web import WebUser
from relais.compose import Runtime
from relais.web import i18n
from relais.web.auth import security

#: The qualification table's and action's words, in both languages (relais/web/i18n.py).
i18n.add(
    fr={
        "qualification": "Qualification",
        "qualification-title": "Flux de qualification : jugé et répondu, rien n'est transmis aux destinataires",
        "in-qualification": "Partenaires en qualification",
        "qualif-received": "Flux reçus",
        "qualif-integrated": "Intégrés",
        "qualif-partial": "Intégrés partiellement",
        "qualif-rejected": "Rejetés",
        "qualif-pass-rate": "Taux de réussite",
        "qualif-since": "Mode décidé par",
        "qualif-file": "fichier du partenaire",
        "to-production": "Passer en production",
        "to-production-confirm": "Passer ce partenaire en production ? Ses prochains flux seront transmis aux destinataires.",
        "flash-production": "passé en production : ses prochains flux seront transmis",
    },
    en={
        "qualification": "Qualification",
        "qualification-title": "Qualification flow: judged and answered, nothing is delivered to recipients",
        "in-qualification": "Partners in qualification",
        "qualif-received": "Flows received",
        "qualif-integrated": "Integrated",
        "qualif-partial": "Partially integrated",
        "qualif-rejected": "Rejected",
        "qualif-pass-rate": "Pass rate",
        "qualif-since": "Mode set by",
        "qualif-file": "partner file",
        "to-production": "Switch to production",
        "to-production-confirm": "Switch this partner to production? Its next flows will be delivered to recipients.",
        "flash-production": "switched to production: its next flows will be delivered",
    },
)


def qualification_rows(rt: Runtime, user: WebUser | None) -> list[dict[str, Any]]:
    """The partners in qualification that `user` sees, with their qualification flows' counts and pass
    rate (one query for the switches, one aggregate over those partners' flows)."""
    if user is None:
        return []
    switches = rt.store.partner_modes()
    found = rt.partners
    ids = [
        pid
        for pid in sorted(found)
        if security.sees_partner(user, pid) and rt.partner_mode(pid, switches) == "qualification"
    ]
    counts = rt.store.qualification_counts(ids)
    rows = []
    for pid in ids:
        by_status = counts.get(pid, {})
        received = sum(by_status.values())
        integrated = by_status.get(str(FlowStatus.IN_INTEGRE), 0)
        switch = switches.get(pid)
        rows.append(
            {
                "partner": pid,
                "name": found[pid].name,
                "received": received,
                "integrated": integrated,
                "partial": by_status.get(str(FlowStatus.IN_INTEGRE_PARTIEL), 0),
                "rejected": by_status.get(str(FlowStatus.IN_REJETE), 0),
                "rate": f"{100 * integrated / received:.0f} %" if received else "—",
                "switch": switch,
            }
        )
    return rows
