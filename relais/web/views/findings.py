"""A finding (rule, location, message) as the reader's language has it, on the pages that list findings.

Findings are stored as the rule made them: a Relais rule's English message (`flows.domain.rule.Rule.message_en`),
then ``: <detail>``; an EN 16931 / BR-FR / Factur-X rule's official message (the CEN XSLTs), an XSD
finding the schema validator's. A Relais rule is shown with its French message (`Rule.message_fr`) and
its detail with the usual words in French; an official message is kept verbatim (`official`), beside a
French explanation of where the rule comes from (`relais.web.views.detail.explain`).

>>> m = message("RLS-T11", "This file was already received from this partner: same content as flow CPP1", "fr")
>>> m.text, m.official
('Ce fichier a déjà été reçu de ce partenaire : même contenu que le flux CPP1', '')
>>> location("BT-46/BT-47 (buyer identifier, SIRET)", "fr")
"BT-46/BT-47 (identifiant de l'acheteur, SIRET)"
>>> location("line 3, column 12 (/Invoice/cbc:ID)", "fr")
'ligne 3, colonne 12 (/Invoice/cbc:ID)'
>>> message("BR-05", "[BR-05]-An Invoice shall have ...", "fr").official
'[BR-05]-An Invoice shall have ...'
"""

from __future__ import annotations

import dataclasses
import re

from flows.domain.rule import REGISTRY, Category
from flows.returns.report import detail_fr
from relais.web.views.detail import explain

#: The business terms named in locations (validators/terms.py), in French.
_TERMS = {
    "buyer identifier, SIRET": "identifiant de l'acheteur, SIRET",
    "buyer reference: service code": "référence de l'acheteur : code service",
    "purchase order reference: commitment number": "référence de la commande : numéro d'engagement",
    "invoice number": "numéro de facture",
    "invoice currency code": "code de la devise de la facture",
    "invoice type code": "code du type de facture",
    "invoice total amount without VAT": "montant total de la facture hors TVA",
    "invoice total VAT amount": "montant total de la TVA de la facture",
    "invoice total amount with VAT": "montant total de la facture TTC",
    "amount due for payment": "montant à payer",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Said:
    """What a page shows for a finding's message: `text` in the reader's language, and for a rule of
    the official rule sets (or an XSD finding) its `official` message, verbatim (`text` explains it)."""

    text: str
    official: str = ""


def message(rule: str, stored: str, lang: str = "fr") -> Said:
    """The stored message of a finding of `rule`, in `lang`."""
    found = REGISTRY.get(rule)
    if found is None or found.category in (Category.EN16931, Category.SCHEMA):
        official = stored  # an XSD finding: the rule's own words, then the schema validator's verbatim
        if found is not None and stored.startswith(found.message_en + ": "):
            official = stored[len(found.message_en) + 2 :]
        return Said(explain(rule, lang) or "", official)
    if lang == "en":
        return Said(stored)
    if stored.startswith(found.message_en):
        detail = stored[len(found.message_en) :].removeprefix(": ").removeprefix(":")
        return Said(found.message_fr + (f" : {detail_fr(detail)}" if detail.strip() else ""))
    return Said(found.message_fr, stored)  # an older wording: the French message, the stored one beside


#: Where an XML parser or the XSD validator points (flows/io/safexml.py, validators/xsd.py): "line 3, column 12".
_LINE = re.compile(r"^line (\d+)(?:, column (\d+))?")


def location(text: str, lang: str = "fr") -> str:
    """A location with the business terms it names in `lang` (an XPath or a file name as it is)."""
    if lang == "en":
        return text
    text = _LINE.sub(lambda m: f"ligne {m[1]}" + (f", colonne {m[2]}" if m[2] else ""), text)
    if "(" not in text:
        return text
    for en, fr in _TERMS.items():
        text = text.replace(f"({en})", f"({fr})")
    return text
