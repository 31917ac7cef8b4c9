"""The 2026 reform's lifecycle messages: UN/CEFACT CDAR D22B as profiled by AFNOR XP Z12-012 (v1.4).

One message (``rsm:CrossDomainAcknowledgementAndResponse``) = one `Message`: its id, issue time,
sender / issuer / recipient `Party` and one `StatusLine` per ``rsm:AcknowledgementDocument`` (one status of
one invoice). The writer (`flows.returns.cdar`) and the reader (`flows.io.cdar`) both speak these values;
`schemas/cdar/` holds the official XSD and BR-FR-CDV schematron every message is checked against
(`validators.cdar`). docs/reform.md is the reference: the status and reason mappings, the choices made.

The code lists below are the schematron's own (BR-FR-CDV-CL-06, -CL-09, -CL-10): a code outside them is
refused by the official artefacts, so it is refused here first.

>>> STATUSES["213"].label_fr, STATUSES["213"].phase
('Rejetée', <Phase.TRANSMISSION: '305'>)
>>> reason_allowed("213", "DOUBLON"), reason_allowed("213", "JUSTIF_ABS"), reason_allowed("205", None)
(True, False, True)
>>> sorted(REASON_REQUIRED)
['206', '207', '208', '210', '213', '501']
>>> rejection_reason("RLS-P01"), rejection_reason("BR-CO-15"), rejection_reason("RLS-R03"), rejection_reason("RLS-T03")
('DOUBLON', 'REJ_COH', 'DEST_INC', 'IRR_SYNTAX')
>>> rejection_reason("RLS-C01"), rejection_reason("RLS-C04")  # a received CDAR message refused: 501 IRR_SYNTAX
('IRR_SYNTAX', 'IRR_SYNTAX')
>>> RELAIS_STATUS["207"].name, actor_of("207"), actor_of("212")
('EN_LITIGE', <Actor.PARTNER_PLATFORM: 'partner_platform'>, <Actor.SUPPLIER: 'supplier'>)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from decimal import Decimal
from typing import NamedTuple

from flows.domain.lifecycle import Actor, InvoiceStatus

RSM = "urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
ROOT = "CrossDomainAcknowledgementAndResponse"
#: ``GuidelineSpecifiedDocumentContextParameter/ID`` (BR-FR-CDV-02).
GUIDELINE = "urn.cpro.gouv.fr:1p0:CDV:invoice"
#: ``BusinessProcessSpecifiedDocumentContextParameter/ID``: the reform's regulated exchanges.
REGULATED = "REGULATED"


class Phase(enum.StrEnum):
    """``AcknowledgementDocument/TypeCode``: where in the invoice's life the status belongs."""

    TRANSMISSION = "305"  # deposit, issue, reception, rejection by a platform
    PROCESSING = "23"  # the buyer's (or seller's) processing: approval, dispute, payment


class Scheme(enum.StrEnum):
    """``GlobalID/@schemeID`` (ISO 6523 ICD) of the identifiers Relais writes and reads."""

    SIREN = "0002"
    SIRET = "0009"
    PLATFORM = "0238"  # a platform's registration number (PPF: 0000; the B2G portal: 9999)


class Role(enum.StrEnum):
    """Party role codes (UNECE 3035, the subset BR-FR-CDV-CL-04/-08 allow that Relais uses)."""

    SELLER = "SE"
    BUYER = "BY"
    PLATFORM = "WK"  # a dematerialisation platform (PA / PDP), as sender or recipient of the message
    STATE = "DFH"  # the tax administration's concentrator (PPF)


class StatusInfo(NamedTuple):
    label_fr: str
    label_en: str
    phase: Phase


#: The statuses Relais writes or reads (the schematron lists more: 214, 220..228, 250, 251, 300.. 601).
STATUSES: dict[str, StatusInfo] = {
    "200": StatusInfo("Déposée", "Deposited", Phase.TRANSMISSION),
    "201": StatusInfo("Émise", "Issued", Phase.TRANSMISSION),
    "202": StatusInfo("Reçue", "Received", Phase.TRANSMISSION),
    "203": StatusInfo("Mise à disposition", "Made available", Phase.TRANSMISSION),
    "204": StatusInfo("Prise en charge", "Taken over", Phase.PROCESSING),
    "205": StatusInfo("Approuvée", "Approved", Phase.PROCESSING),
    "206": StatusInfo("Approuvée partiellement", "Partially approved", Phase.PROCESSING),
    "207": StatusInfo("En litige", "Disputed", Phase.PROCESSING),
    "208": StatusInfo("Suspendue", "Suspended", Phase.PROCESSING),
    "209": StatusInfo("Complétée", "Completed", Phase.PROCESSING),
    "210": StatusInfo("Refusée", "Refused", Phase.PROCESSING),
    "211": StatusInfo("Paiement transmis", "Payment sent", Phase.PROCESSING),
    "212": StatusInfo("Encaissée", "Collected", Phase.PROCESSING),
    "213": StatusInfo("Rejetée", "Rejected", Phase.TRANSMISSION),
    "221": StatusInfo("Erreur de routage", "Routing error", Phase.TRANSMISSION),
    "501": StatusInfo("Irrecevable", "Inadmissible", Phase.TRANSMISSION),
}
#: Every status code the schematron accepts (BR-FR-CDV-CL-06): a received code outside `STATUSES` but in
#: this set is valid CDAR that Relais does not apply (refused with RLS-C05, not as invalid).
KNOWN_STATUS_CODES = frozenset(
    "200 201 202 203 204 205 206 207 208 209 210 211 212 213 214 220 221 224 225 226 227 228 "
    "250 251 300 301 400 401 500 501 601".split()
)
#: A reason code is required with these statuses (BR-FR-CDV-14).
REASON_REQUIRED = frozenset({"206", "207", "208", "210", "213", "501"})
#: Statuses every platform must exchange (XP Z12-012): Relais always writes them when they happen.
MANDATORY = frozenset({"200", "210", "212", "213"})
#: Statuses the buyer's side sends (applied when received from the platform an invoice was routed to).
BUYER_STATUSES = frozenset({"202", "203", "204", "205", "206", "207", "208", "210", "211"})
#: Statuses the seller's side sends (applied when received from the invoice's depositor or its platform).
SELLER_STATUSES = frozenset({"209", "212"})

#: The Relais status a received CDAR status sets (docs/reform.md §2): the buyer's platform's 202..211, the
#: seller's 209 and 212. A valid code outside this table (200, 201, 213, 214, 220.., 501..) is not applied
#: (RLS-C05): Relais sets those itself, or they say nothing about the invoice's own lifecycle.
RELAIS_STATUS: dict[str, InvoiceStatus] = {
    "202": InvoiceStatus.RECUE,
    "203": InvoiceStatus.MISE_A_DISPOSITION,
    "204": InvoiceStatus.PRISE_EN_CHARGE,
    "205": InvoiceStatus.APPROUVEE,
    "206": InvoiceStatus.APPROUVEE_PARTIELLEMENT,
    "207": InvoiceStatus.EN_LITIGE,
    "208": InvoiceStatus.SUSPENDUE,
    "209": InvoiceStatus.COMPLETEE,
    "210": InvoiceStatus.REJETEE,
    "211": InvoiceStatus.MISE_EN_PAIEMENT,
    "212": InvoiceStatus.ENCAISSEE,
}


def actor_of(status: str) -> Actor:
    """Who sets a received CDAR status in Relais's lifecycle: the seller (`SUPPLIER`) for 209 and 212, the
    buyer's platform (`PARTNER_PLATFORM`) for the others."""
    return Actor.SUPPLIER if status in SELLER_STATUSES else Actor.PARTNER_PLATFORM


#: Reason codes allowed per status (BR-FR-CDV-CL-09, MDT-113); a status absent here takes any listed code.
REASONS_BY_STATUS: dict[str, frozenset[str]] = {
    "200": frozenset({"NON_TRANSMISE"}),
    "213": frozenset(
        "MONTANTTOTAL_ERR CALCUL_ERR DOUBLON DEST_INC ADR_ERR REJ_SEMAN REJ_UNI REJ_COH REJ_ADR REJ_CONT_B2G "
        "REJ_REF_PJ REJ_ASS_PJ".split()
    ),
    "210": frozenset(
        "TX_TVA_ERR MONTANTTOTAL_ERR CALCUL_ERR NON_CONFORME DOUBLON DEST_ERR TRANSAC_INC EMMET_INC "
        "CONTRAT_TERM DOUBLE_FACT CMD_ERR ADR_ERR REF_CT_ABSENT".split()
    ),
    "207": frozenset(
        "AUTRE COORD_BANC_ERR TX_TVA_ERR MONTANTTOTAL_ERR CALCUL_ERR NON_CONFORME DOUBLON DEST_INC DEST_ERR "
        "TRANSAC_INC EMMET_INC CONTRAT_TERM DOUBLE_FACT CMD_ERR ADR_ERR SIRET_ERR CODE_ROUTAGE_ERR "
        "REF_CT_ABSENT REF_ERR PU_ERR REM_ERR QTE_ERR ART_ERR MODPAI_ERR QUALITE_ERR LIVR_INCOMP".split()
    ),
    "206": frozenset(
        "AUTRE CMD_ERR SIRET_ERR CODE_ROUTAGE_ERR REF_CT_ABSENT REF_ERR PU_ERR REM_ERR QTE_ERR ART_ERR "
        "MODPAI_ERR QUALITE_ERR LIVR_INCOMP".split()
    ),
    "208": frozenset("JUSTIF_ABS COORD_BANC_ERR CMD_ERR SIRET_ERR CODE_ROUTAGE_ERR REF_CT_ABSENT REF_ERR".split()),
    "221": frozenset({"ROUTAGE_ERR"}),
    "501": frozenset(
        "IRR_VIDE_F IRR_TYPE_F IRR_SYNTAX IRR_TAILLE_PJ IRR_NOM_PJ IRR_VID_PJ IRR_EXT_DOC IRR_TAILLE_F "
        "IRR_ANTIVIRUS IRR_NOM_F".split()
    ),
}
#: A B2G refusal (210 sent by the public portal, platform 9999) takes this wider list (MDT-113_210B2G).
REASONS_210_B2G = REASONS_BY_STATUS["210"] | frozenset(
    "RETRAIT_MAN_SERV ST_CT_NON_DECLAR SUPPR_COMP_AVOIR TRANSF_PMNT_REGIE CONTACT_ACHTR AUTRE COORD_BANC_ERR "
    "LIVR_INCOMP".split()
)
#: Every reason code of BR-FR-CDV-CL-09.
REASON_CODES = frozenset().union(*REASONS_BY_STATUS.values(), REASONS_210_B2G, {"NON_TRANSMISE"})
#: ``RequestedActionCode`` (BR-FR-CDV-CL-10).
ACTION_CODES = frozenset({"NOA", "PIN", "NIN", "CNF", "CNP", "CNA", "OTH"})


#: The CDAR reason codes' labels, French and English ([choice]: the public texts give codes and short French
#: descriptions; this wording is Relais's): the ``Reason`` text of a line when its actor gave no free text.
REASON_LABELS: dict[str, tuple[str, str]] = {
    "NON_TRANSMISE": ("Facture non transmise au destinataire", "Invoice not transmitted to the recipient"),
    "JUSTIF_ABS": ("Justificatif absent ou insuffisant", "Supporting document missing or insufficient"),
    "ROUTAGE_ERR": ("Erreur de routage", "Routing error"),
    "AUTRE": ("Autre motif", "Other reason"),
    "COORD_BANC_ERR": ("Coordonnées bancaires erronées", "Wrong bank details"),
    "TX_TVA_ERR": ("Taux de TVA erroné", "Wrong VAT rate"),
    "MONTANTTOTAL_ERR": ("Montant total erroné", "Wrong total amount"),
    "CALCUL_ERR": ("Erreur de calcul", "Calculation error"),
    "NON_CONFORME": ("Mentions légales non conformes", "Legal mentions not compliant"),
    "DOUBLON": ("Facture en doublon", "Duplicate invoice"),
    "DEST_INC": ("Destinataire inconnu", "Unknown recipient"),
    "DEST_ERR": ("Destinataire erroné", "Wrong recipient"),
    "TRANSAC_INC": ("Transaction inconnue", "Unknown transaction"),
    "EMMET_INC": ("Émetteur inconnu", "Unknown issuer"),
    "CONTRAT_TERM": ("Contrat terminé", "Contract ended"),
    "DOUBLE_FACT": ("Double facturation", "Invoiced twice"),
    "CMD_ERR": ("Référence de commande absente ou erronée", "Order reference missing or wrong"),
    "ADR_ERR": ("Adresse de facturation erronée", "Wrong billing address"),
    "SIRET_ERR": ("SIRET absent ou erroné", "SIRET missing or wrong"),
    "CODE_ROUTAGE_ERR": ("Code de routage absent ou erroné", "Routing code missing or wrong"),
    "REF_CT_ABSENT": ("Référence du contrat absente", "Contract reference missing"),
    "REF_ERR": ("Référence erronée", "Wrong reference"),
    "PU_ERR": ("Prix unitaire erroné", "Wrong unit price"),
    "REM_ERR": ("Remise erronée", "Wrong discount"),
    "QTE_ERR": ("Quantité erronée", "Wrong quantity"),
    "ART_ERR": ("Article facturé erroné", "Wrong item invoiced"),
    "MODPAI_ERR": ("Modalités de paiement erronées", "Wrong payment terms"),
    "QUALITE_ERR": ("Qualité non conforme", "Quality not as ordered"),
    "LIVR_INCOMP": ("Livraison incomplète", "Incomplete delivery"),
    "REJ_SEMAN": ("Rejet pour erreur sémantique", "Rejected: semantic error"),
    "REJ_UNI": ("Rejet sur contrôle d'unicité", "Rejected: uniqueness check"),
    "REJ_COH": ("Rejet pour incohérence des données", "Rejected: inconsistent data"),
    "REJ_ADR": ("Rejet pour erreur d'adressage", "Rejected: addressing error"),
    "REJ_CONT_B2G": ("Rejet sur contrôle métier B2G", "Rejected: B2G business check"),
    "REJ_REF_PJ": ("Rejet : pièce jointe référencée absente", "Rejected: referenced attachment missing"),
    "REJ_ASS_PJ": ("Rejet : erreur d'association de la pièce jointe", "Rejected: attachment association error"),
    "IRR_VIDE_F": ("Fichier vide", "Empty file"),
    "IRR_TYPE_F": ("Type de fichier non accepté", "File type not accepted"),
    "IRR_SYNTAX": ("Erreur de syntaxe du fichier", "File syntax error"),
    "IRR_TAILLE_PJ": ("Pièce jointe trop volumineuse", "Attachment too large"),
    "IRR_NOM_PJ": ("Nom de pièce jointe non conforme", "Attachment name not compliant"),
    "IRR_VID_PJ": ("Pièce jointe vide", "Empty attachment"),
    "IRR_EXT_DOC": ("Extension de document non acceptée", "Document extension not accepted"),
    "IRR_TAILLE_F": ("Fichier trop volumineux", "File too large"),
    "IRR_ANTIVIRUS": ("Fichier refusé par l'antivirus", "File refused by the antivirus"),
    "IRR_NOM_F": ("Nom de fichier non conforme", "File name not compliant"),
    "RETRAIT_MAN_SERV": ("Retrait du mandat de service", "Service mandate withdrawn"),
    "ST_CT_NON_DECLAR": ("Sous-traitant non déclaré", "Sub-contractor not declared"),
    "SUPPR_COMP_AVOIR": ("Suppression, compensation par avoir", "Cancelled, offset by a credit note"),
    "TRANSF_PMNT_REGIE": ("Paiement transféré à la régie", "Payment transferred to the imprest office"),
    "CONTACT_ACHTR": ("Contacter l'acheteur", "Contact the buyer"),
}


def reason_label(code: str, language: str = "fr") -> str:
    """The label of a CDAR reason code in `language` (the code itself for one the table does not have).

    >>> reason_label("DOUBLON"), reason_label("DOUBLON", "en"), reason_label("XYZ")
    ('Facture en doublon', 'Duplicate invoice', 'XYZ')
    """
    labels = REASON_LABELS.get(code)
    if labels is None:
        return code
    return labels[1] if language == "en" else labels[0]


def reason_allowed(status: str, reason: str | None, *, b2g: bool = False) -> bool:
    """Whether `reason` may accompany `status` (a status that requires one refuses None)."""
    if reason is None:
        return status not in REASON_REQUIRED
    allowed = REASONS_210_B2G if b2g and status == "210" else REASONS_BY_STATUS.get(status, REASON_CODES)
    return reason in allowed


#: The reason of a 213 (or, for a technical rule, a 501) from the rule that refused the invoice or the flow.
#: Looked up by exact code first, then by prefix; EN 16931 rules: BR-CO-* (coherence) → REJ_COH, other
#: BR-* / Factur-X / BR-FR → REJ_SEMAN; the XSD → REJ_UNI (docs/reform.md, [choice]).
_RULE_REASONS: dict[str, str] = {
    "RLS-P01": "DOUBLON",
    "RLS-P06": "MONTANTTOTAL_ERR",
    "RLS-P07": "MONTANTTOTAL_ERR",
    "RLS-P02": "REJ_REF_PJ",
    "RLS-P03": "REJ_REF_PJ",
    "RLS-P04": "REJ_REF_PJ",
    "RLS-P11": "REJ_ASS_PJ",
    "RLS-R01": "DEST_INC",
    "RLS-R02": "DEST_INC",
    "RLS-R03": "DEST_INC",
    "RLS-R04": "DEST_INC",
    "RLS-R05": "REJ_ADR",
    "RLS-R06": "REJ_ADR",
    "RLS-R07": "REJ_ADR",
    "RLS-R08": "REJ_CONT_B2G",
    "RLS-R09": "REJ_CONT_B2G",
    "RLS-R10": "DEST_INC",  # no line of the reform's directory: an unknown recipient (CODE_ROUTAGE_ERR is 207/208)
    "RLS-R11": "DEST_INC",  # its line is disabled: no recipient reachable
    "RLS-T01": "IRR_VIDE_F",
    "RLS-T12": "IRR_VIDE_F",
    "RLS-T02": "IRR_TYPE_F",
    "RLS-T09": "IRR_TYPE_F",
    "RLS-T10": "IRR_TYPE_F",
    "RLS-T16": "IRR_TYPE_F",
    "RLS-T05": "IRR_TAILLE_F",
    "RLS-T07": "IRR_TAILLE_F",
    "RLS-T14": "IRR_TAILLE_F",
    "RLS-T03": "IRR_SYNTAX",
    "RLS-T04": "IRR_SYNTAX",
    "RLS-T06": "IRR_SYNTAX",
    "RLS-T08": "IRR_SYNTAX",
    "RLS-T13": "IRR_SYNTAX",
    "RLS-T19": "IRR_SYNTAX",
    "XSD": "REJ_UNI",
}


def rejection_reason(rule: str) -> str:
    """The CDAR reason code for an invoice or a flow refused by `rule` (a Relais or an official rule code)."""
    if rule in _RULE_REASONS:
        return _RULE_REASONS[rule]
    if rule.startswith(("RLS-T", "RLS-C")):  # RLS-C: a received CDAR message (its answer is a 501)
        return "IRR_SYNTAX"
    if rule.startswith("RLS-R"):
        return "DEST_INC"
    if rule.startswith("BR-CO-"):
        return "REJ_COH"
    return "REJ_SEMAN"


@dataclasses.dataclass(frozen=True, slots=True)
class Party:
    """A party of the message or of the invoice: role, identifier with its scheme, name, e-mail/URI."""

    role: Role | str
    global_id: str | None = None
    scheme: Scheme | str | None = None
    name: str | None = None
    uri: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Amount:
    """One ``SpecifiedDocumentCharacteristic``: what (``MEN`` cashed, per VAT rate for 212), how much."""

    type_code: str
    amount: Decimal
    vat_rate: Decimal | None = None
    currency: str = "EUR"


@dataclasses.dataclass(frozen=True, slots=True)
class StatusLine:
    """One ``AcknowledgementDocument``: one status of one invoice (BT-1, type code, issue date, seller)."""

    invoice_number: str
    status: str  # ProcessConditionCode, a key of STATUSES
    invoice_type_code: str = "380"
    invoice_issue_date: dt.date | None = None
    seller_siren: str | None = None
    buyer: Party | None = None  # the invoice's buyer (RecipientTradeParty), when known
    reason_code: str | None = None
    reason: str | None = None  # free text (the actor's, or the rule's message)
    action_code: str | None = None
    amounts: tuple[Amount, ...] = ()
    issued_at: dt.datetime | None = None  # when the status happened (the history entry's time)
    sequence: int = 1  # SpecifiedDocumentStatus/SequenceNumeric

    @property
    def phase(self) -> Phase:
        return STATUSES[self.status].phase if self.status in STATUSES else Phase.PROCESSING


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """One CDAR message: id (``ExchangedDocument/ID``, unique per issuer), parties, status lines."""

    message_id: str
    issued_at: dt.datetime
    sender: Party
    issuer: Party
    recipient: Party
    lines: tuple[StatusLine, ...]
    business_process: str = REGULATED
