"""What waits in the drop zones, on the web: the page ``GET /waiting`` ("En attente dans les zones de
dépôt", relais/web/routes/waiting.py: `rows`) and the landing page's part (`home_context`, template _home_waiting.html):
the waiting files' count and the paused partners, who paused them and when.

Ops and viewers see every partner (``?partner=`` narrows the page to one); a partner user sees only
their own drop zone, whatever the query says, and never a partner file's problems (which name server
paths' files): a held file says that ops must fix the configuration. Names are the partner's view,
relative to its ``in/`` folder (connectors/folder/waiting.py), never a server path. The scan reads the
folders at each request (one ``scandir`` per inbox, one ``stat`` per file; the page lists at most
`PAGE_LIMIT` files, the counts are exact).
"""

from __future__ import annotations

from typing import Any

from connectors.folder import waiting as w
from flows.store.web import WebUser
from relais import runner
from relais.compose import Runtime
from relais.web import i18n

PAGE_LIMIT = 500


#: This page's words, in both languages (relais/web/i18n.py).
i18n.add(
    fr={
        "waiting-nav": "En attente",
        "waiting-title": "En attente dans les zones de dépôt",
        "waiting-hint": "Fichiers déposés mais pas encore pris en charge, les plus anciens d'abord, et pourquoi"
        " ils attendent. Le nom est celui du fichier dans le dossier in/ du partenaire.",
        "waiting-files": "fichier(s) en attente",
        "waiting-files-col": "Fichiers",
        "waiting-stuck": "bloqué(s) jusqu'à une action (reprise, correction, renommage)",
        "waiting-scanned": "relevé le",
        "waiting-per-partner": "Par partenaire",
        "waiting-list": "Fichiers en attente",
        "waiting-why": "Pourquoi il attend",
        "waiting-age": "Depuis",
        "waiting-truncated": "Liste limitée aux plus anciens :",
        "waiting-none": "Aucun fichier en attente dans les zones de dépôt.",
        "waiting-sftp-upload": "envoi SFTP en cours",
        "waiting-paused-partners": "Partenaires dont la réception est suspendue",
        "waiting-paused-by": "Suspendue par",
        "waiting-paused-since": "Depuis le",
        "waiting-no-paused": "Aucune réception suspendue.",
    },
    en={
        "waiting-nav": "Waiting",
        "waiting-title": "Waiting in the drop zones",
        "waiting-hint": "Files dropped but not taken yet, oldest first, and why they wait. The name is the"
        " file's in the partner's in/ folder.",
        "waiting-files": "file(s) waiting",
        "waiting-files-col": "Files",
        "waiting-stuck": "stuck until someone acts (resume, fix, rename)",
        "waiting-scanned": "read on",
        "waiting-per-partner": "Per partner",
        "waiting-list": "Waiting files",
        "waiting-why": "Why it waits",
        "waiting-age": "For",
        "waiting-truncated": "List limited to the oldest:",
        "waiting-none": "No file waiting in the drop zones.",
        "waiting-sftp-upload": "SFTP upload in progress",
        "waiting-paused-partners": "Partners whose intake is paused",
        "waiting-paused-by": "Paused by",
        "waiting-paused-since": "Since",
        "waiting-no-paused": "No intake paused.",
    },
)


def own_partner(user: WebUser) -> str | None:
    """The one partner a partner user sees ("" when none is set: nothing); None for the others."""
    return (user.partner or "") if user.role == "partner" else None


def rows(report: w.Report, lang: str, *, details: bool) -> list[dict[str, Any]]:
    """The page's rows, in `lang` (French first)."""
    out = []
    for f in report.files:
        out.append(
            {
                "partner": f.partner,
                "name": f.name,
                "size": w.size_text(f.size, lang),
                "bytes": f.size,
                "age": w.duration(f.age_seconds, lang),
                "reason": f.reason.value,
                "label": w.label(f.reason, lang),
                "message": w.explain(f, lang, details=details),
                "severity": "bad" if w.stuck(f) else "warn" if f.reason is w.Reason.INCOMPLETE else "ok",
            }
        )
    return out


def home_context(rt: Runtime, user: WebUser) -> dict[str, Any]:
    """The landing page's part (_home_waiting.html): ``waiting_total`` (files waiting in the drop zones
    the user sees), ``waiting_stuck`` (those that will not be taken by the next run as they are), and
    ``waiting_paused``: [(partner, paused by, since)], the user's own only for a partner user."""
    own = own_partner(user)
    report = runner.waiting_files(rt.settings, rt.store, partner=own, limit=0)
    paused = [(p, by, at) for p, (by, at) in sorted(rt.store.paused_partners().items()) if own is None or p == own]
    return {"waiting_total": report.total, "waiting_stuck": report.stuck, "waiting_paused": paused}
