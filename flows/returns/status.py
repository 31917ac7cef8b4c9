"""Status return flows: a sender's invoice status changes, as one ``CPPStatut`` with ``CPPFactureStatuts``.

The same schema as the integration report (``schemas/xsd/relais-cppstatut.xsd``): the envelope
(production date, the status return flow's own id in ``IdFlx``, sender and receiver; no file name
or SHA-256: no file was received), then one ``CPPFactureStatut`` per status change, in the order
they happened, each naming its invoice (id, the flow that carried it and its position, number,
supplier, recipient), the new status (``IdStatut``, ``LibelleStatut``), when, why (``Motif``) and
who (``Acteur``).

``IdStatut`` is the Chorus Pro code (01..13, and the billing circuits' 20..55). A partner whose
``status_vocabulary`` is ``cdar`` does not get CPPStatut at all: it gets real CDAR lifecycle messages
(`flows.returns.cdar`, docs/reform.md §1); asking this writer for ``cdar`` is refused.

``Motif`` is the reason given by whoever changed the status, as given; the reasons the platform itself
writes are French (the platform's language), in English for a partner whose file says
``language = "en"`` (`platform_reason`). A refusal or a suspension also carries its reason's code
(``CodeMotif``, `flows.domain.reasons`) and that code's label in the partner's language (``LibelleMotif``).

Billing circuits (docs/billing-frameworks.md): the statuses 20 to 55 are written as any other; ``Acteur`` names the validator (``VALIDATEUR``), the
project manager (``MOE``), the contracting authority (``MOA``) or ops (``EXPLOITATION``, correcting a
validator); each piece of a billing circuit names its framework, billing file and previous piece
(`flows.returns.report.invoice_element`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
from collections.abc import Iterable
from typing import BinaryIO

from lxml import etree

from flows.domain.history import HistoryEntry
from flows.domain.lifecycle import Actor
from flows.domain.model import Invoice, utcnow
from flows.domain.reasons import REASONS
from flows.returns.report import (
    FORMAT_VERSION,
    PLATFORM_ID,
    ReturnFlowInvalid,
    _datetime,
    _open,
    _put,
    _sub,
    invoice_element,
    validate,
)

VOCABULARIES = {"cpp": "CPP"}  # "cdar": flows.returns.cdar writes CDAR messages, not CPPStatut
#: ``Acteur``: who changed the status (every `Actor` has its word: the schema's enumeration).
ACTORS = {
    Actor.PLATFORM: "PLATEFORME",
    Actor.RECIPIENT: "DESTINATAIRE",
    Actor.SUPPLIER: "FOURNISSEUR",
    Actor.OPS: "EXPLOITATION",  # ops corrected a piece's validator (a move of its own, audited)
    Actor.VALIDATOR: "VALIDATEUR",  # the titulaire or the group's mandataire
    Actor.MOE: "MOE",
    Actor.MOA: "MOA",
    Actor.PARTNER_PLATFORM: "PLATEFORME_PARTENAIRE",  # the buyer's platform, by a CDAR message (docs/reform.md)
}


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    """One status change to report, with the invoice it is about."""

    entry: HistoryEntry
    invoice: Invoice


_COMPLETED = re.compile(r"^complétée par la facture (?P<new>\S+) \(flux (?P<flow>\S+)\)$")


def completed_reason(new_id: str, flow_id: str) -> str:
    """The reason the platform records when an accepted invoice completes a SUSPENDUE one (French)."""
    return f"complétée par la facture {new_id} (flux {flow_id})"


#: The platform's own reasons in the billing circuits (flows/pipeline/status_changes.py, deadlines.py,
#: flows/store/circuits.py), French as recorded, and their English.
_CIRCUIT_REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(fr), en)
    for fr, en in (
        (r"^Transmise au second valideur$", "Passed on to the second validator"),
        (
            r"^Validée : mise à disposition de la maîtrise d'œuvre$",
            "Validated: made available to the project manager (MOE)",
        ),
        (
            r"^Sans réponse de la maîtrise d'œuvre : mise à disposition de la maîtrise d'ouvrage$",
            "No answer from the project manager (MOE): made available to the contracting authority (MOA)",
        ),
        (r"^Validée : mise à disposition du destinataire$", "Validated: made available to the recipient"),
        (
            r"^Délai de validation de (\d+) jours dépassé : validation tacite$",
            r"Validation time of \1 days passed: tacitly validated",
        ),
        (
            r"^Délai de réponse de la maîtrise d'œuvre de (\d+) jours dépassé : transmise à la maîtrise d'ouvrage$",
            r"The project manager's (MOE) \1 days to answer passed: passed on to the contracting authority (MOA)",
        ),
        (
            r"^Remplacée par le projet de décompte général (\S+) \(A22, procédure tacite\)$",
            r"Replaced by the draft general statement \1 (A22, tacit procedure)",
        ),
    )
)
#: The reason the platform records in English when it delivers an invoice (flows/store/history.py), in French.
_DELIVERED = ("delivered to the recipient", "mise à disposition du destinataire")


def platform_reason(reason: str | None, language: str = "fr") -> str | None:
    """A recorded reason in `language`: the platform's own reasons are translated, any other is as given.

    >>> platform_reason(completed_reason("CPP2-00001", "CPP2"), "en")
    'completed by invoice CPP2-00001 (flow CPP2)'
    >>> platform_reason("Délai de validation de 15 jours dépassé : validation tacite", "en")
    'Validation time of 15 days passed: tacitly validated'
    >>> platform_reason("delivered to the recipient"), platform_reason("delivered to the recipient", "en")
    ('mise à disposition du destinataire', 'delivered to the recipient')
    >>> platform_reason("Montant erroné", "en")
    'Montant erroné'
    """
    if reason is None:
        return None
    if language == "fr":
        return _DELIVERED[1] if reason == _DELIVERED[0] else reason
    found = _COMPLETED.match(reason)
    if found:
        return f"completed by invoice {found['new']} (flow {found['flow']})"
    for pattern, english in _CIRCUIT_REASONS:
        if (circuit := pattern.match(reason)) is not None:
            return circuit.expand(english)
    return reason


def reason_label(code: str, language: str = "fr") -> str | None:
    """The label of a reason code in `language` (`flows.domain.reasons`); None for a code the list no longer
    has (the code alone is written then).

    >>> reason_label("MONTANT"), reason_label("MONTANT", "en"), reason_label("GONE") is None
    ('Erreur de montant', 'Amount error', True)
    """
    reason = REASONS.get(code)
    return None if reason is None else reason.label(language)


def code_of(change: Change, vocabulary: str = "cpp") -> str | None:
    """The ``IdStatut`` of a change (the Chorus Pro code)."""
    return change.entry.status.code


def file_name(return_id: str) -> str:
    """``<id>.xml`` (ids start with ``ST``): beside the integration reports ``CR_<flow>_<status>.xml``."""
    return f"{return_id}.xml"


def write(
    out: BinaryIO,
    return_id: str,
    partner: str,
    changes: Iterable[Change],
    *,
    vocabulary: str = "cpp",
    produced_at: dt.datetime | None = None,
    platform_id: str = PLATFORM_ID,
    language: str = "fr",
) -> int:
    """Stream the status return flow into `out`; the number of changes written (0: write nothing
    useful, the caller must not send it). Does not validate: see `build`."""
    if vocabulary not in VOCABULARIES:
        raise ReturnFlowInvalid(
            f"status vocabulary {vocabulary!r} is not written as CPPStatut"
            + (" (CDAR partners get CDAR messages: flows.returns.cdar)" if vocabulary == "cdar" else "")
        )
    count = 0
    with etree.xmlfile(out, encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element("CPPStatut", Version=FORMAT_VERSION, Vocabulaire=VOCABULARIES[vocabulary]):
            _put(xf, _envelope(return_id, partner, produced_at or utcnow(), platform_id), 1)
            with _open(xf, "CPPFactureStatuts", 1):
                for change in changes:
                    code = code_of(change, vocabulary)
                    if code is None:
                        continue
                    if change.entry.partner != partner:
                        raise ReturnFlowInvalid(
                            f"change {change.entry.id} is for {change.entry.partner}, not {partner}"
                        )
                    _put(xf, _change(change, code, language), 2)
                    count += 1
            xf.write("\n")
    return count


def build(return_id: str, partner: str, changes: Iterable[Change], **kwargs: object) -> tuple[bytes, int]:
    """The status return flow as validated bytes, and how many changes it reports."""
    buffer = io.BytesIO()
    count = write(buffer, return_id, partner, changes, **kwargs)  # type: ignore[arg-type]
    data = buffer.getvalue()
    if count:
        validate(data)
    return data, count


def _envelope(return_id: str, partner: str, produced_at: dt.datetime, platform_id: str) -> etree._Element:
    envelope = etree.Element("Enveloppe")
    unit = etree.SubElement(envelope, "EnveloppeUnitaire")
    parameters = etree.SubElement(unit, "Parametres")
    _sub(parameters, "DtPrd", _datetime(produced_at))
    _sub(parameters, "IdFlx", return_id)
    partners = etree.SubElement(unit, "Partenaires")
    _sub(etree.SubElement(partners, "Emetteur"), "Id", platform_id)
    _sub(etree.SubElement(partners, "Recepteur"), "Id", partner)
    return envelope


def _change(change: Change, code: str, language: str = "fr") -> etree._Element:
    entry, invoice = change.entry, change.invoice
    element = invoice_element(invoice, origin_flow=invoice.flow_id)
    data = etree.SubElement(element, "DonneesStatut")
    _sub(data, "IdStatut", code)
    _sub(data, "LibelleStatut", entry.status.label)
    _sub(data, "DateStatut", _datetime(entry.at))
    _sub(data, "Motif", platform_reason(entry.reason, language))
    if entry.reason_code:
        _sub(data, "CodeMotif", entry.reason_code)
        _sub(data, "LibelleMotif", reason_label(entry.reason_code, language))
    _sub(data, "Acteur", ACTORS[entry.actor])
    return element
