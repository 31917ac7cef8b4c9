"""Flow and invoice statuses and what each one is: codes, labels, colours, flags (data only).

`flows.domain.lifecycle` holds the moves between them (and re-exports everything here): read it first.
To add a status, add the enum member and its info row here, then its transitions in the lifecycle, and
add it to ``schemas/xsd/relais-cppstatut.xsd`` (``tests/flows/domain/test_lifecycle.py`` compares them).

>>> InvoiceStatus.A_VALIDER_1.code, InvoiceStatus.A_VALIDER_1.label, FlowStatus.IN_REJETE.is_final
('20', 'A_VALIDER_1', True)
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from types import MappingProxyType

# ---- the statuses ----------------------------------------------------------------


class FlowStatus(enum.StrEnum):
    """Flow integration statuses, in the platform's vocabulary (CR de flux). Their data: `FLOW_STATUSES`."""

    IN_RECU = "IN_RECU"
    IN_EN_ATTENTE_TRAITEMENT_CPP = "IN_EN_ATTENTE_TRAITEMENT_CPP"
    IN_EN_COURS_TRAITEMENT_CPP = "IN_EN_COURS_TRAITEMENT_CPP"
    IN_INTEGRE = "IN_INTEGRE"
    IN_INTEGRE_PARTIEL = "IN_INTEGRE_PARTIEL"
    IN_REJETE = "IN_REJETE"
    IN_INCIDENTE = "IN_INCIDENTE"
    IN_EN_ATTENTE_RETRAITEMENT_CPP = "IN_EN_ATTENTE_RETRAITEMENT_CPP"

    @property
    def info(self) -> FlowStatusInfo:
        return FLOW_STATUSES[self]

    @property
    def is_final(self) -> bool:
        return FLOW_STATUSES[self].final

    @property
    def is_reserved(self) -> bool:
        return FLOW_STATUSES[self].reserved

    @property
    def code(self) -> str:
        """``IdStatut`` of the flow in its return flow."""
        return FLOW_STATUSES[self].code


class InvoiceStatus(enum.StrEnum):
    """Invoice lifecycle statuses (Chorus Pro codes). Their data: `INVOICE_STATUSES`."""

    DEPOSEE = "01"
    EN_COURS_ACHEMINEMENT = "02"
    MISE_A_DISPOSITION = "03"
    REJETEE_ROUTAGE = "04"
    REJETEE = "05"
    SUSPENDUE = "06"
    SERVICE_FAIT = "07"
    MANDATEE = "08"
    MISE_A_DISPOSITION_COMPTABLE = "09"
    COMPTABILISEE = "10"
    MISE_EN_PAIEMENT = "11"
    COMPLETEE = "12"
    A_RECYCLER = "13"  # Relais's number: the platform's texts name this status without one
    # Billing circuits (flows.domain.circuits): the platform's API names; the numbers are Relais's (the
    # platform's texts give none). Validators: the titulaire or the mandataire, one or two levels.
    A_VALIDER_1 = "20"
    VALIDEE_1 = "21"
    REFUSEE_1 = "22"
    ABSENCE_VALIDATION_1_HORS_DELAI = "23"
    A_VALIDER_2 = "24"
    VALIDEE_2 = "25"
    REFUSEE_2 = "26"
    ABSENCE_VALIDATION_2_HORS_DELAI = "27"
    ERREUR_FOURNISSEUR_SUR_VALIDEUR = "28"
    # Works: the project manager (MOE)
    MISE_A_DISPOSITION_MOE = "30"
    PRISE_EN_COMPTE_MOE = "31"
    REFUSEE_MOE = "32"
    ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE = "33"
    A_ASSOCIER_MOE = "34"
    A_VALIDER_MOE = "35"
    ERREUR_FOURNISSEUR_SUR_MOE = "36"
    # Works: the contracting authority (MOA)
    MISE_A_DISPOSITION_MOA = "40"
    PRISE_EN_COMPTE_MOA = "41"
    TRANSMISE_MOA = "42"
    REFUSEE_MOA = "43"
    A_ASSOCIER_MOA = "44"
    ERREUR_MOE_SUR_MOA = "45"
    # Works, end of contract: the supplier signs the general statement (A20 -> A8); the tacit procedure
    A_ASSOCIER_FOURNISSEUR = "50"
    REFUSEE_FOURNISSEUR = "51"
    REMPLACEE_PAR_A22 = "52"
    DUPLIQUE_APRES_REFUS = "53"
    ERREUR_DESTINATAIRE_PD = "54"
    ERREUR_DESTINATAIRE_EA = "55"
    # The 2026 reform's lifecycle (CDAR, docs/reform.md): statuses a partner platform (the buyer's) or the
    # seller sends in CDAR that have no Chorus Pro equivalent. The numbers are Relais's.
    RECUE = "60"  # 202: received by the buyer's platform
    PRISE_EN_CHARGE = "61"  # 204: taken over by the buyer
    APPROUVEE = "62"  # 205: approved by the buyer
    APPROUVEE_PARTIELLEMENT = "63"  # 206
    EN_LITIGE = "64"  # 207: disputed
    ENCAISSEE = "65"  # 212: the seller collected the payment (amounts per VAT rate)

    @property
    def is_final(self) -> bool:
        return INVOICE_STATUSES[self].final

    @property
    def frees_number(self) -> bool:
        """Its number may be sent again by the supplier without the duplicate rule firing: rejected,
        A_RECYCLER (resend it, routed right), SUSPENDUE (the new flow completes it)."""
        return self.is_rejected or self in (InvoiceStatus.A_RECYCLER, InvoiceStatus.SUSPENDUE)

    @property
    def needs_reason(self) -> bool:
        """Setting it requires a reason (REJETEE and SUSPENDUE)."""
        return INVOICE_STATUSES[self].needs_reason

    @property
    def cdar(self) -> str | None:
        """The 2026 reform's CDAR lifecycle code (200..213); None: not a CDAR status change."""
        return INVOICE_STATUSES[self].cdar

    @property
    def info(self) -> InvoiceStatusInfo:
        return INVOICE_STATUSES[self]

    @property
    def label(self) -> str:
        """``LibelleStatut`` in the return flow (04 and 05 both read REJETEE)."""
        return INVOICE_STATUSES[self].label

    @property
    def is_rejected(self) -> bool:
        return INVOICE_STATUSES[self].rejected

    @property
    def is_reserved(self) -> bool:
        return INVOICE_STATUSES[self].reserved

    @property
    def code(self) -> str:
        """``IdStatut`` of the invoice in the return flow."""
        return INVOICE_STATUSES[self].code


# ---- what a status is ------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StatusInfo:
    """What is common to flow and invoice statuses."""

    code: str  # IdStatut in the return flow
    label_fr: str
    label_en: str
    final: bool = False  # nothing moves it on (no transition leaves it, but an ops reopening: Move.REOPEN)
    reserved: bool = False  # in the platform's vocabulary, not set by Relais yet


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FlowStatusInfo(StatusInfo):
    colour: str  # `relais flows list`: a click colour name, or DEFAULT_COLOUR

    @property
    def fg(self) -> str | None:
        """The colour as `click.style`'s ``fg`` (None: the terminal's own)."""
        return None if self.colour == DEFAULT_COLOUR else self.colour


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class InvoiceStatusInfo(StatusInfo):
    label: str  # LibelleStatut in the return flow (schema type LibelleStatutType)
    rejected: bool = False  # not delivered; not an original for the duplicate-invoice rule
    needs_reason: bool = False  # whoever sets it must give a reason
    cdar: str | None = None  # the CDAR lifecycle code (2026 reform), None when it has none


@dataclasses.dataclass(frozen=True, slots=True)
class ReturnCode:
    """One flow ``IdStatut`` of the return-flow schema (``IdStatutFluxType``)."""

    code: str
    label_fr: str
    label_en: str
    reserved: bool = False  # in the schema, not emitted by Relais


DEFAULT_COLOUR = "default"


# ---- the flow statuses' data --------------------------------------------------

_F = FlowStatus

#: IdStatut codes of flows in the return-flow schema (IdStatutFluxType).
FLOW_RETURN_CODES: Mapping[str, ReturnCode] = MappingProxyType(
    {
        r.code: r
        for r in (
            ReturnCode("90", "reçu", "received"),
            ReturnCode("91", "en cours de transmission", "being transmitted to recipients"),
            ReturnCode("92", "reçu par le destinataire final", "received by the final recipient", reserved=True),
            ReturnCode("93", "erreur de réception", "reception error"),
            ReturnCode("96", "intégré partiellement", "partially integrated"),
        )
    }
)

FLOW_STATUSES: Mapping[FlowStatus, FlowStatusInfo] = MappingProxyType(
    {
        _F.IN_RECU: FlowStatusInfo(code="90", label_fr="reçu", label_en="received", colour=DEFAULT_COLOUR),
        _F.IN_EN_ATTENTE_TRAITEMENT_CPP: FlowStatusInfo(
            code="90",
            label_fr="en attente de traitement",
            label_en="waiting for processing",
            colour=DEFAULT_COLOUR,
            reserved=True,
        ),
        _F.IN_EN_COURS_TRAITEMENT_CPP: FlowStatusInfo(
            code="90", label_fr="en cours de traitement", label_en="being processed", colour=DEFAULT_COLOUR
        ),
        _F.IN_INTEGRE: FlowStatusInfo(code="91", label_fr="intégré", label_en="integrated", colour="green", final=True),
        _F.IN_INTEGRE_PARTIEL: FlowStatusInfo(
            code="96", label_fr="intégré partiellement", label_en="partially integrated", colour="yellow", final=True
        ),
        _F.IN_REJETE: FlowStatusInfo(code="93", label_fr="rejeté", label_en="rejected", colour="red", final=True),
        _F.IN_INCIDENTE: FlowStatusInfo(
            code="93", label_fr="en incident", label_en="incident (internal failure)", colour="magenta"
        ),
        _F.IN_EN_ATTENTE_RETRAITEMENT_CPP: FlowStatusInfo(
            code="90", label_fr="en attente de retraitement", label_en="waiting for reprocessing", colour=DEFAULT_COLOUR
        ),
    }
)


# ---- invoices --------------------------------------------------------------------

_I = InvoiceStatus


def _i(fr: str, en: str, **flags: object) -> dict[str, object]:
    return {"label_fr": fr, "label_en": en, **flags}


def _refused(fr: str, en: str) -> dict[str, object]:
    """A refusal by an actor of a circuit: final, not delivered, a reason (and its code) required."""
    return _i(fr, en, rejected=True, final=True, needs_reason=True, cdar="210")


INVOICE_STATUSES: Mapping[InvoiceStatus, InvoiceStatusInfo] = MappingProxyType(
    {
        _I.DEPOSEE: InvoiceStatusInfo(code="01", label="DEPOSEE", label_fr="déposée", label_en="deposited", cdar="200"),
        _I.EN_COURS_ACHEMINEMENT: InvoiceStatusInfo(
            code="02",
            label="EN_COURS_ACHEMINEMENT",
            label_fr="émise vers la plateforme du destinataire",
            label_en="issued to the recipient's platform",
            cdar="201",
        ),
        _I.MISE_A_DISPOSITION: InvoiceStatusInfo(
            code="03", label="MISE_A_DISPOSITION", label_fr="mise à disposition", label_en="made available", cdar="203"
        ),
        _I.REJETEE_ROUTAGE: InvoiceStatusInfo(
            code="04",
            label="REJETEE",
            label_fr="rejetée (routage)",
            label_en="rejected (routing)",
            rejected=True,
            final=True,
            cdar="213",
        ),
        _I.REJETEE: InvoiceStatusInfo(
            code="05",
            label="REJETEE",
            label_fr="rejetée",
            label_en="rejected",
            rejected=True,
            final=True,
            needs_reason=True,
            cdar="210",  # refused by the recipient; rejected by the platform on reception: 213 (`cdar_code`)
        ),
        _I.SUSPENDUE: InvoiceStatusInfo(
            code="06", label="SUSPENDUE", label_fr="suspendue", label_en="suspended", needs_reason=True, cdar="208"
        ),
        _I.SERVICE_FAIT: InvoiceStatusInfo(
            code="07", label="SERVICE_FAIT", label_fr="service fait", label_en="service done", cdar="205"
        ),
        _I.MANDATEE: InvoiceStatusInfo(
            code="08", label="MANDATEE", label_fr="mandatée", label_en="payment ordered", cdar="204"
        ),
        _I.MISE_A_DISPOSITION_COMPTABLE: InvoiceStatusInfo(
            code="09",
            label="MISE_A_DISPOSITION_COMPTABLE",
            label_fr="mise à disposition du comptable",
            label_en="made available to the public accountant",
        ),
        _I.COMPTABILISEE: InvoiceStatusInfo(
            code="10", label="COMPTABILISEE", label_fr="comptabilisée", label_en="booked"
        ),
        _I.MISE_EN_PAIEMENT: InvoiceStatusInfo(
            code="11",
            label="MISE_EN_PAIEMENT",
            label_fr="mise en paiement",
            label_en="payment sent",
            cdar="211",
        ),
        _I.COMPLETEE: InvoiceStatusInfo(
            code="12", label="COMPLETEE", label_fr="complétée", label_en="completed", cdar="209"
        ),
        _I.A_RECYCLER: InvoiceStatusInfo(
            code="13",
            label="A_RECYCLER",
            label_fr="à recycler",
            label_en="to be resent (misrouted)",
            final=True,
            cdar="213",
        ),
        **{
            status: InvoiceStatusInfo(code=status.value, label=status.name, **extra)  # type: ignore[arg-type]
            for status, extra in (
                (_I.A_VALIDER_1, _i("à valider (valideur 1)", "to be validated (validator 1)")),
                (_I.VALIDEE_1, _i("validée (valideur 1)", "validated (validator 1)")),
                (_I.REFUSEE_1, _refused("refusée (valideur 1)", "refused (validator 1)")),
                (
                    _I.ABSENCE_VALIDATION_1_HORS_DELAI,
                    _i(
                        "sans validation dans le délai (valideur 1) : validation tacite",
                        "not validated in time (validator 1): tacitly validated",
                    ),
                ),
                (_I.A_VALIDER_2, _i("à valider (valideur 2)", "to be validated (validator 2)")),
                (_I.VALIDEE_2, _i("validée (valideur 2)", "validated (validator 2)")),
                (_I.REFUSEE_2, _refused("refusée (valideur 2)", "refused (validator 2)")),
                (
                    _I.ABSENCE_VALIDATION_2_HORS_DELAI,
                    _i(
                        "sans validation dans le délai (valideur 2) : validation tacite",
                        "not validated in time (validator 2): tacitly validated",
                    ),
                ),
                (
                    _I.ERREUR_FOURNISSEUR_SUR_VALIDEUR,
                    _i("erreur du fournisseur sur le valideur", "supplier's error on the validator"),
                ),
                (
                    _I.MISE_A_DISPOSITION_MOE,
                    _i(
                        "mise à disposition de la maîtrise d'œuvre",
                        "made available to the project manager (MOE)",
                        cdar="203",
                    ),
                ),
                (
                    _I.PRISE_EN_COMPTE_MOE,
                    _i("prise en compte par la maîtrise d'œuvre", "taken in by the project manager (MOE)", cdar="204"),
                ),
                (_I.REFUSEE_MOE, _refused("refusée par la maîtrise d'œuvre", "refused by the project manager (MOE)")),
                (
                    _I.ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE,
                    _i(
                        "sans réponse de la maîtrise d'œuvre dans le délai réglementaire",
                        "no answer from the project manager (MOE) within the regulatory time",
                    ),
                ),
                (_I.A_ASSOCIER_MOE, _i("à associer (maîtrise d'œuvre)", "to be associated (MOE)", reserved=True)),
                (_I.A_VALIDER_MOE, _i("à valider (maîtrise d'œuvre)", "to be validated (MOE)", reserved=True)),
                (
                    _I.ERREUR_FOURNISSEUR_SUR_MOE,
                    _i("erreur du fournisseur sur la maîtrise d'œuvre", "supplier's error on the MOE", reserved=True),
                ),
                (
                    _I.MISE_A_DISPOSITION_MOA,
                    _i(
                        "mise à disposition de la maîtrise d'ouvrage",
                        "made available to the contracting authority (MOA)",
                        cdar="203",
                    ),
                ),
                (
                    _I.PRISE_EN_COMPTE_MOA,
                    _i(
                        "prise en compte par la maîtrise d'ouvrage",
                        "taken in by the contracting authority (MOA)",
                        cdar="204",
                    ),
                ),
                (
                    _I.TRANSMISE_MOA,
                    _i(
                        "validée et transmise par la maîtrise d'ouvrage",
                        "validated and passed on by the contracting authority (MOA)",
                        cdar="205",
                    ),
                ),
                (
                    _I.REFUSEE_MOA,
                    _refused("refusée par la maîtrise d'ouvrage", "refused by the contracting authority (MOA)"),
                ),
                (_I.A_ASSOCIER_MOA, _i("à associer (maîtrise d'ouvrage)", "to be associated (MOA)", reserved=True)),
                (
                    _I.ERREUR_MOE_SUR_MOA,
                    _i(
                        "erreur de la maîtrise d'œuvre sur la maîtrise d'ouvrage",
                        "MOE's error on the MOA",
                        reserved=True,
                    ),
                ),
                (
                    _I.A_ASSOCIER_FOURNISSEUR,
                    _i(
                        "notifiée au fournisseur : décompte général à signer",
                        "notified to the supplier: general statement to sign",
                        cdar="203",
                    ),
                ),
                (_I.REFUSEE_FOURNISSEUR, _i("refusée par le fournisseur", "refused by the supplier", reserved=True)),
                (
                    _I.REMPLACEE_PAR_A22,
                    _i(
                        "remplacée par un projet de décompte général (A22)",
                        "replaced by a draft general statement (A22)",
                        final=True,
                    ),
                ),
                (_I.DUPLIQUE_APRES_REFUS, _i("dupliquée après refus", "duplicated after refusal", reserved=True)),
                (
                    _I.ERREUR_DESTINATAIRE_PD,
                    _i(
                        "erreur de destinataire (projet de décompte)",
                        "wrong recipient (draft statement)",
                        reserved=True,
                    ),
                ),
                (
                    _I.ERREUR_DESTINATAIRE_EA,
                    _i("erreur de destinataire (état d'acompte)", "wrong recipient (interim statement)", reserved=True),
                ),
                # The reform's lifecycle (CDAR), set by a partner platform or the seller (docs/reform.md).
                (
                    _I.RECUE,
                    _i("reçue par la plateforme du destinataire", "received by the recipient's platform", cdar="202"),
                ),
                (_I.PRISE_EN_CHARGE, _i("prise en charge", "taken over", cdar="204")),
                (_I.APPROUVEE, _i("approuvée", "approved", cdar="205")),
                (
                    _I.APPROUVEE_PARTIELLEMENT,
                    _i("approuvée partiellement", "partially approved", needs_reason=True, cdar="206"),
                ),
                (_I.EN_LITIGE, _i("en litige", "disputed", needs_reason=True, cdar="207")),
                (_I.ENCAISSEE, _i("encaissée", "payment collected", final=True, cdar="212")),
            )
        },
    }
)
