"""The flow model: typed values that travel along the pipeline and into the store.

A *flow* is one received file; an *invoice* is one document split out of it;
a *ValidationError* is one finding of one rule, on a flow or on an invoice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from decimal import Decimal

# The statuses live in `flows.domain.lifecycle` (with their codes, labels, colours and transitions).
from flows.domain.frameworks import Framework
from flows.domain.lifecycle import FlowStatus as FlowStatus
from flows.domain.lifecycle import InvoiceStatus as InvoiceStatus


class FlowCode(enum.StrEnum):
    """What a flow holds (domain.md, "Flows")."""

    E1_UBL = "IN_DP_E1_UBL_INVOICE"
    E1_CII = "IN_DP_E1_CII_16B"
    E2_UBL_MIN = "IN_DP_E2_UBL_INVOICE_MIN"
    E2_CII_MIN = "IN_DP_E2_CII_MIN_16B"
    E2_FACTURX = "IN_DP_E2_CII_FACTURX"
    E3_UBL = "IN_DP_E3_UBL_INVOICE"
    # Works pieces (billing frameworks of a works contract, flows.domain.frameworks) travel apart since
    # February 2024: E4 structured (UBL, CII), E5 mixed (a PDF with its data: Factur-X; UBL with attachments).
    E4_UBL = "IN_DP_E4_UBL_INVOICE"
    E4_CII = "IN_DP_E4_CII_16B"
    E5_FACTURX = "IN_DP_E5_CII_FACTURX"
    E5_UBL = "IN_DP_E5_UBL_INVOICE"
    # A CDAR D22B lifecycle message (2026 reform) received from a partner platform or a seller: a flow of
    # its own syntax, never split into invoices (flows.pipeline.cdar_in, docs/reform.md §2).
    CDAR = "IN_DP_CDAR_D22B"


class Syntax(enum.StrEnum):
    """Syntax of one invoice document (the `syntax` field of `relais validate --json`)."""

    UBL_INVOICE = "ubl-invoice"
    UBL_CREDITNOTE = "ubl-creditnote"
    CII = "cii"
    FACTURX = "facturx"

    @property
    def flow_code(self) -> FlowCode:
        if self is Syntax.FACTURX:
            return FlowCode.E2_FACTURX
        if self is Syntax.CII:
            return FlowCode.E1_CII
        return FlowCode.E1_UBL


class Container(enum.StrEnum):
    """How a received file packs its documents."""

    XML = "xml"
    PDF = "pdf"
    ZIP = "zip"
    TAR_GZ = "tar.gz"
    UNKNOWN = "unknown"


class Channel(enum.StrEnum):
    FOLDER = "folder"
    SFTP = "sftp"
    AS2 = "as2"
    CLI = "cli"
    API = "api"  # the "mode API": uploaded to POST /api/v1/flows (relais/api)


class Flag(enum.StrEnum):
    FATAL = "fatal"
    WARNING = "warning"


class Category(enum.StrEnum):
    """What kind of rule a finding breaks: its consumers decide from this, never from a code's prefix.

    The return flow's ``NatureErreur`` (XSD, TECHNIQUE, METIER) and the invoice status
    (REJETEE_ROUTAGE when only routing rules reject it, else REJETEE) are read from it.
    """

    TECHNICAL = "technical"  # the file or document cannot be taken in (RLS-T..)
    SCHEMA = "schema"  # the document breaks its XML schema (XSD)
    EN16931 = "en16931"  # EN 16931 / Factur-X / BR-FR business rules (schematron: BR-CO-10 ...)
    ROUTING = "routing"  # the recipient cannot be reached through the directory (RLS-R..)
    PLATFORM = "platform"  # the platform's own rules: duplicates, attachments, amounts (RLS-P..)
    LIFECYCLE = "lifecycle"  # a received CDAR lifecycle message and its lines (RLS-C..)


#: Category of every code Relais defines, filled by each `flows.domain.rule.Rule` as it is declared. Only a
#: finding rebuilt without its category (the store keeps none) reads it: see `ValidationError`.
CATEGORIES: dict[str, Category] = {}


@dataclasses.dataclass(frozen=True, slots=True)
class ValidationError:
    """One finding of one rule: an error as a value, never a bare string.

    It carries its rule's `category`, so that consumers (return flows, the
    pipeline's invoice status) need no rule registry. A finding rebuilt from a
    stored row, which has no category, takes the one its code was declared
    with (`CATEGORIES`); a code Relais does not define stays None. The category
    is derived from the rule, so it is not part of a finding's equality.
    """

    rule: str
    flag: Flag
    location: str
    message: str
    category: Category | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.category is None and self.rule in CATEGORIES:
            object.__setattr__(self, "category", CATEGORIES[self.rule])

    @property
    def fatal(self) -> bool:
        return self.flag is Flag.FATAL

    def as_json(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "flag": str(self.flag),
            "location": self.location,
            "message": self.message,
        }


@dataclasses.dataclass(slots=True)
class Flow:
    id: str
    partner: str
    channel: Channel
    original_name: str
    size: int
    sha256: str
    status: FlowStatus = FlowStatus.IN_RECU
    flow_code: FlowCode | None = None
    container: Container | None = None
    received_at: dt.datetime = dataclasses.field(default_factory=lambda: utcnow())
    updated_at: dt.datetime = dataclasses.field(default_factory=lambda: utcnow())
    duplicate_of: str | None = None
    directory_version: str | None = None
    invoice_count: int = 0
    rejected_count: int = 0
    profile: str | None = None  # Factur-X profile of the flow's (first) document
    rulesets: dict[str, str] | None = None  # versions of the rule sets it was judged with
    incidents: int = 0  # internal failures so far (reset when ops ask for a reprocessing)
    retry_at: dt.datetime | None = None  # IN_INCIDENTE: when it is tried again; None once parked
    reopened: int = 0  # times ops sent this closed flow through the pipeline again (its accepted invoices kept)
    #: Processed while its partner was in qualification: judged and answered as in production, but nothing
    #: delivered, no number taken, not shown to recipients (set when the flow is claimed).
    qualification: bool = False

    @property
    def parked(self) -> bool:
        """An incident that used up its automatic retries: it waits for ops (`relais flows reprocess`)."""
        return self.status is FlowStatus.IN_INCIDENTE and self.retry_at is None


@dataclasses.dataclass(slots=True, kw_only=True)
class InvoiceFacts:
    """What an invoice says about itself (read by `flows.io.extract`)."""

    number: str | None = None
    type_code: str | None = None
    issue_date: dt.date | None = None
    supplier_id: str | None = None
    supplier_id_type: str | None = None
    buyer_siret: str | None = None
    service_code: str | None = None
    commitment_number: str | None = None
    currency: str | None = None
    total_without_vat: Decimal | None = None
    total_vat: Decimal | None = None
    total_with_vat: Decimal | None = None
    amount_due: Decimal | None = None
    # Billing circuits (flows.domain.circuits); where the document gives them: docs/billing-frameworks.md
    previous_number: str | None = None  # BT-25, the preceding invoice reference: the piece it follows
    validator_1: str | None = None  # SIRET of the validator (titulaire, mandataire)
    validator_2: str | None = None  # SIRET of a second validator
    moe_siret: str | None = None  # SIRET of the project manager (maîtrise d'œuvre)
    moa_siret: str | None = None  # SIRET of the contracting authority (maîtrise d'ouvrage)


@dataclasses.dataclass(slots=True)
class Invoice(InvoiceFacts):
    """One document of a flow: its trace (flow, entry, position), its facts, its verdict."""

    id: str
    flow_id: str
    position: int
    entry_name: str
    syntax: Syntax | None = None
    profile: str | None = None
    status: InvoiceStatus = InvoiceStatus.DEPOSEE
    delivered_to: str | None = None
    framework: Framework = Framework.A1  # BT-23, the billing framework (flows.domain.frameworks)
    billing_file_id: str | None = None  # the billing file (dossier de facturation) it belongs to
    previous_id: str | None = None  # the piece it follows in its billing file (association), by invoice id
    holder: str | None = None  # SIRET of the actor whose turn it is (flows.domain.circuits.holder_of)
    due_at: dt.datetime | None = None  # when the holder's time runs out (flows.domain.circuits.Deadlines)
    #: The reform's routing (docs/reform.md §4): the directory line that routed it (its addressing identifier),
    #: that line's platform, and whether it went to another platform (delivered: EN_COURS_ACHEMINEMENT).
    routed_by: str | None = None
    routed_platform: str | None = None
    routed_away: bool = False
    errors: list[ValidationError] = dataclasses.field(default_factory=list)

    @property
    def rejected(self) -> bool:
        return any(e.fatal for e in self.errors)

    def set_facts(self, facts: InvoiceFacts) -> None:
        for field in dataclasses.fields(InvoiceFacts):
            setattr(self, field.name, getattr(facts, field.name))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def invoice_id(flow_id: str, position: int) -> str:
    """Stable id of the invoice at `position` (1-based) of a flow.

    >>> invoice_id("CPP20261123000001", 7)
    'CPP20261123000001-00007'
    """
    return f"{flow_id}-{position:05d}"
