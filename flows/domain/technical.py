"""Technical rules, checked on a whole flow or on one entry of a batch.

A breach rejects what it applies to (the flow when it concerns the file
itself, the entry when it concerns one document of a batch), except RLS-T99
which is an incident: Relais failed, the sender did nothing wrong.

Each declares its category (TECHNICAL) and its stage: FLOW for what concerns the
received file (size, container, archive, duplicate file, incident), DOCUMENT for
what concerns reading one document (XML, PDF, profile); an empty or unknown entry
of a batch reports a FLOW rule at the entry's location. They are raised where
they are found (`flows.domain.errors.Rejected`), not run by `validators.runner`.
"""

from flows.domain.model import Category, Flag
from flows.domain.rule import Rule, Stage

EMPTY_FILE = Rule(
    "RLS-T01",
    Flag.FATAL,
    "The file is empty",
    "Le fichier est vide",
    category=Category.TECHNICAL,
    stage=Stage.FLOW,
)
UNKNOWN_FORMAT = Rule(
    "RLS-T02",
    Flag.FATAL,
    "The content is not a supported invoice format (UBL 2.1, CII D16B, Factur-X, zip or tar.gz of these)",
    "Le contenu n'est pas un format de facture accepté (UBL 2.1, CII D16B, Factur-X, zip ou tar.gz de ceux-ci)",
    category=Category.TECHNICAL,
    stage=Stage.FLOW,
)
NOT_WELL_FORMED = Rule(
    "RLS-T03",
    Flag.FATAL,
    "The XML is not well-formed",
    "Le XML est mal formé",
    category=Category.TECHNICAL,
    stage=Stage.DOCUMENT,
)
FORBIDDEN_DTD = Rule(
    "RLS-T04",
    Flag.FATAL,
    "DOCTYPE, DTD and entity declarations are refused",
    "Les déclarations DOCTYPE, DTD et entités sont refusées",
    category=Category.TECHNICAL,
    stage=Stage.DOCUMENT,
)
TOO_LARGE = Rule(
    "RLS-T05",
    Flag.FATAL,
    "The file exceeds the size limit",
    "Le fichier dépasse la taille maximale",
    category=Category.TECHNICAL,
    stage=Stage.FLOW,
)
UNSAFE_ENTRY = Rule(
    "RLS-T06",
    Flag.FATAL,
    "The archive holds an unsafe entry (path traversal, absolute path or link)",
    "L'archive contient une entrée dangereuse (remontée de chemin, chemin absolu ou lien)",
    category=Category.TECHNICAL,
    stage=Stage.FLOW,
)
ARCHIVE_BOMB = Rule(
    "RLS-T07",
    Flag.FATAL,
    "The archive exceeds the decompression limits (entries, size or compression ratio)",
    "L'archive dépasse les limites de décompression (entrées, taille ou taux de compression)",
    category=Category.TECHNICAL,
    stage=Stage.FLOW,
)
NESTED_ARCHIVE = Rule(
    "RLS-T08",
    Flag.FATAL,
    "Archives nested inside a batch are not accepted",
    "Les archives imbriquées dans un lot ne sont pas acceptées",
    category=Category.TECHNICAL,
    stage=Stage.DOCUMENT,
)
PDF_WITHOUT_XML = Rule(
    "RLS-T09",
    Flag.FATAL,
    "The PDF carries no readable embedded invoice XML (Factur-X)",
    "Le PDF ne contient pas de XML de facture embarqué lisible (Factur-X)",
    category=Category.TECHNICAL,
    stage=Stage.DOCUMENT,
)
UNSUPPORTED_SYNTAX = Rule(
    "RLS-T10",
    Flag.FATAL,
    "The XML is not a supported invoice syntax",
    "Le XML n'est pas une syntaxe de facture acceptée",
    category=Category.TECHNICAL,
    stage=Stage.DOCUMENT,
)
DUPLICATE_FLOW = Rule(
    "RLS-T11",
    Flag.FATAL,
    "This file was already received from this partner",
    "Ce fichier a déjà été reçu de ce partenaire",
    category=Category.TECHNICAL,
    stage=Stage.FLOW,
)
EMPTY_BATCH = Rule(
    "RLS-T12",
    Flag.FATAL,
    "The batch holds no invoice",
    "Le lot ne contient aucune facture",
    category=Category.TECHNICAL,
    stage=Stage.FLOW,
)
UNREADABLE_ARCHIVE = Rule(
    "RLS-T13",
    Flag.FATAL,
    "The archive is corrupt or truncated",
    "L'archive est corrompue ou tronquée",
    category=Category.TECHNICAL,
    stage=Stage.FLOW,
)
INTERNAL_ERROR = Rule(
    "RLS-T99",
    Flag.FATAL,
    "Technical incident while processing: the flow is retried automatically, then by the operations "
    "team; do not send it again",
    "Incident technique pendant le traitement : le flux est retraité automatiquement, puis par "
    "l'équipe d'exploitation ; ne le renvoyez pas",
    category=Category.TECHNICAL,
    stage=Stage.FLOW,
)
TOO_MANY_INVOICES = Rule(
    "RLS-T14",
    Flag.FATAL,
    "The flow holds more invoices than allowed",
    "Le flux contient plus de factures que le maximum autorisé",
    category=Category.TECHNICAL,
    stage=Stage.FLOW,
)
PROFILE_MISMATCH = Rule(
    "RLS-T15",
    Flag.FATAL,
    "The Factur-X profile declared in the PDF metadata differs from the embedded XML's",
    "Le profil Factur-X déclaré dans les métadonnées du PDF diffère de celui du XML embarqué",
    category=Category.TECHNICAL,
    stage=Stage.DOCUMENT,
)
SEVERAL_INVOICE_XML = Rule(
    "RLS-T16",
    Flag.FATAL,
    "The PDF carries more than one invoice XML",
    "Le PDF contient plus d'un XML de facture",
    category=Category.TECHNICAL,
    stage=Stage.DOCUMENT,
)
LEGACY_GUIDELINE = Rule(
    "RLS-T17",
    Flag.WARNING,
    "Factur-X 1.0 guideline identifier accepted for compatibility; current senders should use the 1.0x identifier",
    "Identifiant de profil Factur-X 1.0 accepté par compatibilité ; utilisez l'identifiant Factur-X 1.0x actuel",
    category=Category.TECHNICAL,
    stage=Stage.DOCUMENT,
)
RULES_NOT_RUN = Rule(
    "RLS-T18",
    Flag.FATAL,
    "The business rules could not run on this document because it does not conform to its XSD",
    "Les règles métier n'ont pas pu s'exécuter car le document n'est pas conforme à son XSD",
    category=Category.TECHNICAL,
    stage=Stage.DOCUMENT,
)
XML_LIMITS = Rule(
    "RLS-T19",
    Flag.FATAL,
    "The XML exceeds the structural limits (depth, attributes, name length, namespace declarations)",
    "Le XML dépasse les limites structurelles (profondeur, attributs, longueur des noms, déclarations "
    "d'espaces de noms)",
    category=Category.TECHNICAL,
    stage=Stage.DOCUMENT,
)
