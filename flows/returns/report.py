"""Status return flows: the integration report ("CR") Relais sends back to a sender.

The document follows Relais's own schema, ``schemas/xsd/relais-cppstatut.xsd``,
shaped after Chorus Pro's CPPStatutPivot: an envelope (production date, flow
id, flow code, file name, SHA-256, sender/receiver), the flow-level status
with its flow errors, then one status per invoice of the flow (absent when
no invoice was read, e.g. a flow rejected whole).

The ``IdStatut`` of a flow status and the code and label of an invoice status come from
``flows.domain.lifecycle`` (``FLOW_STATUS_CODES`` here is its mapping; the XSD documents it too): 90 for
the statuses that are not final yet, 91 IN_INTEGRE, 96 IN_INTEGRE_PARTIEL, 93 IN_REJETE and
IN_INCIDENTE. 92 (received by the final recipient) is left to a later acknowledgement.

Writing streams: ``write`` emits the document with ``lxml.etree.xmlfile`` and
builds one small element per invoice, so ``invoices`` may be a generator over
100,000 stored invoices and memory does not grow with the flow. ``build``
returns bytes and validates them; ``validate`` also streams (``iterparse``
with the schema). Dates are written in UTC with a ``Z`` suffix; naive
datetimes are taken as UTC. Characters XML 1.0 cannot carry (control
characters, lone surrogates) are replaced by U+FFFD.

Language: the free texts (``LibelleErreur``, ``DescriptionErreur``, ``Motif``) are in French by
default, the platform's language, or in English for a partner whose file says ``language = "en"``
(connectors/partners.py). A rule Relais defines gives its own message in that language (`flows.domain.rule`:
``message_fr``/``message_en``), followed by the finding's specifics as recorded. An official rule
(EN 16931, BR-FR: the CEN's XSLTs) keeps its message verbatim; in French, ``DescriptionErreur`` adds
what the rule is beside it (`flows.domain.rule.official_family`). Codes, statuses and the structure are the
same in both languages.

Qualification: a flow processed while its partner was in qualification (``Flow.qualification``) is
answered exactly as in production, plus a first flow-level line ``CodeErreur`` ``QUALIFICATION``
(``Severite`` warning, ``NatureErreur`` TECHNIQUE) saying that nothing was delivered, and its file name
ends in ``_QUALIF`` (`file_name`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import io
import itertools
import os
import re
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from lxml import etree

from flows.domain import (
    lifecycle,
    technical,  # also declares the technical codes' category, for findings read from the store
)
from flows.domain.errors import Incident
from flows.domain.frameworks import Framework
from flows.domain.model import Category, Flag, Flow, Invoice, ValidationError, utcnow
from flows.domain.rule import LANGUAGES, REGISTRY, official_family

FORMAT_VERSION = "1.0"
PLATFORM_ID = "RELAIS"
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "xsd" / "relais-cppstatut.xsd"

FLOW_STATUS_CODES = lifecycle.FLOW_STATUS_CODES  # flow status -> IdStatut

_Writer = Any  # lxml.etree._IncrementalFileWriter, which lxml does not export
_INDENT = "  "
_LABEL_MAX = 120
# Anything outside the XML 1.0 Char production (this also catches lone surrogates).
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class ReturnFlowInvalid(Incident, ValueError):
    """A return flow Relais produced breaks its schema, or its inputs disagree.

    Relais's own failure (an ``Incident``), never a verdict on the sender's data.
    """


def build(
    flow: Flow,
    flow_errors: Iterable[ValidationError],
    invoices: Iterable[Invoice],
    *,
    produced_at: dt.datetime | None = None,
    platform_id: str = PLATFORM_ID,
    language: str = "fr",
) -> bytes:
    """The return flow of `flow` as UTF-8 bytes, validated against the schema."""
    buffer = io.BytesIO()
    write(buffer, flow, flow_errors, invoices, produced_at=produced_at, platform_id=platform_id, language=language)
    data = buffer.getvalue()
    validate(data)
    return data


def write(
    out: BinaryIO,
    flow: Flow,
    flow_errors: Iterable[ValidationError],
    invoices: Iterable[Invoice],
    *,
    produced_at: dt.datetime | None = None,
    platform_id: str = PLATFORM_ID,
    reopened: int = 0,
    replaces: str | None = None,
    language: str = "fr",
) -> int:
    """Stream the return flow of `flow` into `out`; return the number of invoices written.

    A flow reopened by ops (`reopened` > 0) says so (``Retraitement``), with the name of the report
    this one `replaces`. Free texts are in `language` ("fr" or "en", module doc).

    `invoices` are the flow's invoices in position order (a generator is fine).
    Raises `ReturnFlowInvalid` when they do not belong to `flow`, are out of
    order, or do not add up to ``flow.invoice_count``; what was written to
    `out` must then be discarded. Does not validate: see `validate`.
    """
    if language not in LANGUAGES:
        raise ReturnFlowInvalid(f"unknown return flow language {language!r}")
    status_date = _datetime(flow.updated_at)
    flow_error_iter: Iterator[ValidationError] = iter(flow_errors)
    if flow.qualification:
        flow_error_iter = itertools.chain([qualification_note(language)], flow_error_iter)
    first_flow_error = next(flow_error_iter, None)
    invoice_iter = iter(invoices)
    first_invoice = next(invoice_iter, None)
    count = 0
    with etree.xmlfile(out, encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element("CPPStatut", Version=FORMAT_VERSION):
            _put(xf, _envelope(flow, produced_at or utcnow(), platform_id), 1)
            with _open(xf, "CPPFluxStatuts", 1), _open(xf, "CPPFluxStatut", 2):
                for tag, text in (
                    ("IdFlx", flow.id),
                    ("StatutFlux", flow.status.value),
                    ("IdStatut", flow.status.code),
                    ("DateStatut", status_date),
                    ("NbFactures", str(flow.invoice_count)),
                    ("NbFacturesRejetees", str(flow.rejected_count)),
                    ("FluxDoublon", flow.duplicate_of),
                ):
                    if text:
                        _put(xf, _leaf(tag, text), 3)
                if reopened:
                    again = etree.Element("Retraitement")
                    etree.SubElement(again, "NumeroRetraitement").text = str(reopened)
                    if replaces:
                        etree.SubElement(again, "CompteRenduRemplace").text = replaces
                    _put(xf, again, 3)
                if first_flow_error is not None:
                    with _open(xf, "Details", 3):
                        for error in itertools.chain([first_flow_error], flow_error_iter):
                            _put(xf, _error_line(error, language), 4)
            if first_invoice is not None:
                with _open(xf, "CPPFactureStatuts", 1):
                    last_position = 0
                    for invoice in itertools.chain([first_invoice], invoice_iter):
                        if invoice.flow_id != flow.id:
                            raise ReturnFlowInvalid(
                                f"invoice {invoice.id} belongs to flow {invoice.flow_id}, not {flow.id}"
                            )
                        if invoice.position <= last_position:
                            raise ReturnFlowInvalid(
                                f"invoice {invoice.id} at position {invoice.position} "
                                f"comes after position {last_position}"
                            )
                        last_position = invoice.position
                        _put(xf, _invoice_status(invoice, status_date, language), 2)
                        count += 1
                if count != flow.invoice_count:
                    raise ReturnFlowInvalid(f"flow {flow.id} counts {flow.invoice_count} invoices, {count} were listed")
            xf.write("\n")
    return count


@functools.cache
def schema() -> etree.XMLSchema:
    """The return flow schema (loaded once)."""
    if not SCHEMA_PATH.is_file():
        raise Incident(f"return flow schema not found at {SCHEMA_PATH}")
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH), parser))


def validate(source: bytes | str | os.PathLike[str] | BinaryIO) -> None:
    """Check a return flow (bytes, a path or a binary file) against the schema, streaming.

    Raises `ReturnFlowInvalid` carrying the schema's error message.
    """
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    elif isinstance(source, os.PathLike):
        source = os.fspath(source)
    events = etree.iterparse(
        source,
        events=("end",),
        schema=schema(),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
    )
    try:
        for _, element in events:
            element.clear(keep_tail=True)
            while element.getprevious() is not None:
                del element.getparent()[0]
    except etree.XMLSyntaxError as exc:
        message = exc.msg or str(exc)  # the schema's message, without lxml's "line 0" suffix
        raise ReturnFlowInvalid(f"return flow does not conform to {SCHEMA_PATH.name}: {message}") from exc


def file_name(flow: Flow, taken: Collection[str] = ()) -> str:
    """Name of the return flow file of `flow`, e.g. ``CR_CPP20261123000001_IN_INTEGRE.xml``; when an
    earlier report of the flow (reprocessed, reopened) already has that name, the next free
    ``_R<n>`` one: a report the partner has not collected yet is never overwritten.

    >>> from flows.domain.model import FlowStatus
    >>> f = Flow("CPP1", "p", "folder", "a.zip", 1, "0", FlowStatus.IN_REJETE)
    >>> file_name(f), file_name(f, {"CR_CPP1_IN_REJETE.xml", "CR_CPP1_IN_REJETE_R1.xml"})
    ('CR_CPP1_IN_REJETE.xml', 'CR_CPP1_IN_REJETE_R2.xml')

    A flow processed in qualification: ``_QUALIF`` before the extension.

    >>> f.qualification = True
    >>> file_name(f)
    'CR_CPP1_IN_REJETE_QUALIF.xml'
    """
    stem = f"CR_{flow.id}_{flow.status.value}" + (QUALIFICATION_SUFFIX if flow.qualification else "")
    name, again = f"{stem}.xml", 0
    while name in taken:
        again += 1
        name = f"{stem}_R{again}.xml"
    return name


#: ``NatureErreur`` of a finding's category; every other category, or none, is METIER.
NATURES: dict[Category | None, str] = {Category.SCHEMA: "XSD", Category.TECHNICAL: "TECHNIQUE"}


def error_nature(error: ValidationError) -> str:
    """``NatureErreur`` of a finding, from its category: XSD, TECHNIQUE or METIER (business rules).

    >>> from flows.domain.model import Flag
    >>> error_nature(ValidationError("RLS-T04", Flag.FATAL, "/", "x", Category.TECHNICAL))
    'TECHNIQUE'
    """
    return NATURES.get(error.category, "METIER")


def error_label(error: ValidationError, language: str = "en") -> str:
    """Short label of a finding: its rule's message in `language`, without the specifics; an official
    rule's message (not Relais's) as it is.

    >>> from flows.domain.rule import XSD
    >>> error_label(XSD.error("/", "line 3: bad")), error_label(XSD.error("/", "line 3: bad"), "fr")
    ('The document does not conform to its XML schema', "Le document n'est pas conforme à son schéma XML")
    """
    rule = REGISTRY.get(error.rule)
    if rule is not None and error.message.startswith(rule.message_en):
        return rule.message_fr if language == "fr" else rule.message_en
    head = error.message.split(": ", 1)[0].rstrip()
    return head if len(head) <= _LABEL_MAX else head[: _LABEL_MAX - 1] + "…"


def error_description(error: ValidationError, language: str = "en") -> str:
    """The full message of a finding in `language`: a Relais rule's message in that language followed by
    the recorded specifics; an official rule's message verbatim, with what the rule is beside it in French.

    >>> from flows.domain.rule import XSD
    >>> error_description(XSD.error("/", "line 3: bad"), "fr")
    "Le document n'est pas conforme à son schéma XML : line 3: bad"
    >>> br = ValidationError("BR-CO-15", Flag.FATAL, "/Invoice", "[BR-CO-15]-Invoice total amount with VAT ...")
    >>> error_description(br, "en")
    '[BR-CO-15]-Invoice total amount with VAT ...'
    >>> error_description(br, "fr")
    '[BR-CO-15]-Invoice total amount with VAT ... (Règle métier de la norme EN 16931 (XSLT officielles du CEN) : message officiel)'
    >>> error_description(technical.INTERNAL_ERROR.error("/", "OSError: /srv/relais/archive/objects/ab/cd"), "en")
    'Technical incident while processing: the flow is retried automatically, then by the operations team; do not send it again'
    """
    internal = technical.INTERNAL_ERROR
    if error.rule == internal.code:  # the platform's own failure: its specifics (an exception, a server path)
        return internal.message_fr if language == "fr" else internal.message_en  # are for ops, not the sender
    if language != "fr":
        return error.message
    rule = REGISTRY.get(error.rule)
    if rule is not None and error.message.startswith(rule.message_en):
        detail = detail_fr(error.message[len(rule.message_en) :].removeprefix(":").strip())
        return f"{rule.message_fr} : {detail}" if detail else rule.message_fr
    family = official_family(error.rule, "fr")
    return f"{error.message} ({family} : message officiel)" if family else error.message


#: The specifics Relais's own rules add to their message in English (the pipeline, validators/platform,
#: validators/routing, the readers), in French; a detail no pattern matches whole (a parser's or the
#: schema's message, an id) is kept as recorded.
_DETAILS_FR: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), french)
    for pattern, french in (
        (
            r"(?P<n>.+) \(supplier (?P<s>.+), (?P<y>\d{4})\) appears earlier in this flow",
            "{n} (fournisseur {s}, {y}) figure déjà plus haut dans ce flux",
        ),
        (
            r"(?P<n>.+) \(supplier (?P<s>.+), (?P<y>\d{4})\) is invoice (?P<i>\S+)",
            "{n} (fournisseur {s}, {y}) est déjà la facture {i}",
        ),
        (
            r"(?P<n>.+) \(supplier (?P<s>[^,()]+)\) is invoice (?P<i>\S+)",
            "{n} (fournisseur {s}) est déjà la facture {i}",
        ),
        (r"same content as flow (?P<f>\S+)", "même contenu que le flux {f}"),
        (r"(?P<a>\d+) bytes > (?P<b>\d+)", "{a} octets > {b}"),
        (r"(?P<a>\d+) bytes, at most (?P<b>\d+)", "{a} octets, au plus {b}"),
        (r"(?P<a>\d+) characters, at most (?P<b>\d+)", "{a} caractères, au plus {b}"),
        (r"more than (?P<a>\d+) bytes, it must be under (?P<b>\d+)", "plus de {a} octets, la limite est {b}"),
        (r"(?P<a>\d+) bytes, it must be under (?P<b>\d+)", "{a} octets, la limite est {b}"),
        (r"(?P<c>.+) in an invoice in (?P<d>\S+)", "{c} dans une facture en {d}"),
        (r"(?P<a>\S+) > (?P<b>\S+) \+ rounding (?P<r>\S+)", "{a} > {b} + arrondi {r}"),
        (r"(?P<s>'.*') for (?P<t>\d+)", "{s} pour {t}"),
        (r"root element <(?P<r>.+)>", "élément racine <{r}>"),
        (r"no root element", "aucun élément racine"),
        (r"embedded files: none", "fichiers joints : aucun"),
        (r"embedded files: (?P<f>.+)", "fichiers joints : {f}"),
        (r"encrypted entry (?P<e>.+)", "entrée chiffrée {e}"),
        (r"schema validation failed", "la validation par le schéma a échoué"),
        (r"the attachment has no file name", "la pièce jointe n'a pas de nom de fichier"),
        (r"the file name has no extension", "le nom du fichier n'a pas d'extension"),
    )
)


def detail_fr(detail: str) -> str:
    """The specifics of a finding of Relais's own rules in French (`_DETAILS_FR`), else as recorded.

    >>> detail_fr("INV-1 (supplier 123, 2026) is invoice CPP1-00001"), detail_fr("line 3: bad")
    ('INV-1 (fournisseur 123, 2026) est déjà la facture CPP1-00001', 'line 3: bad')
    """
    for pattern, french in _DETAILS_FR:
        found = pattern.fullmatch(detail)
        if found:
            return french.format(**found.groupdict())
    return detail


#: The code of the flow-level line that marks a flow processed in qualification (module doc).
QUALIFICATION_CODE = "QUALIFICATION"
QUALIFICATION_SUFFIX = "_QUALIF"
_QUALIFICATION_TEXT = {
    "fr": "Flux de qualification : jugé comme en production, aucune facture n'est transmise aux destinataires",
    "en": "Qualification flow: judged as in production, no invoice is delivered to its recipients",
}


def qualification_note(language: str = "fr") -> ValidationError:
    """The flow-level line of a flow processed in qualification (a warning, never stored as a finding)."""
    text = _QUALIFICATION_TEXT["fr" if language == "fr" else "en"]
    return ValidationError(QUALIFICATION_CODE, Flag.WARNING, "/", text, Category.TECHNICAL)


# --------------------------------------------------------------------- helpers


def _envelope(flow: Flow, produced_at: dt.datetime, platform_id: str) -> etree._Element:
    envelope = etree.Element("Enveloppe")
    unit = etree.SubElement(envelope, "EnveloppeUnitaire")
    parameters = etree.SubElement(unit, "Parametres")
    _sub(parameters, "DtPrd", _datetime(produced_at))
    _sub(parameters, "IdFlx", flow.id)
    _sub(parameters, "CodeFlx", flow.flow_code.value if flow.flow_code else None)
    _sub(parameters, "NomFichier", flow.original_name, required=True)
    _sub(parameters, "Empreinte", flow.sha256.lower())
    partners = etree.SubElement(unit, "Partenaires")
    _sub(etree.SubElement(partners, "Emetteur"), "Id", platform_id)
    _sub(etree.SubElement(partners, "Recepteur"), "Id", flow.partner)
    return envelope


def _invoice_status(invoice: Invoice, status_date: str, language: str) -> etree._Element:
    element = invoice_element(invoice)
    data = etree.SubElement(element, "DonneesStatut")
    _sub(data, "IdStatut", invoice.status.code)
    _sub(data, "LibelleStatut", invoice.status.label)
    _sub(data, "DateStatut", status_date)
    _sub(data, "Motif", next((error_description(e, language) for e in invoice.errors if e.fatal), None))
    if invoice.errors:
        errors = etree.SubElement(element, "Erreurs")
        for error in invoice.errors:
            errors.append(_error_line(error, language))
    return element


def invoice_element(invoice: Invoice, origin_flow: str | None = None) -> etree._Element:
    """A ``CPPFactureStatut`` naming `invoice` (its status data follow): id, the flow that carried it
    (status return flows only), position, entry, supplier, recipient, number and type; then, for a piece
    of a billing circuit (`in_billing_circuit`), its framework (``CadreFacturation``), its billing file
    (``IdDossierFacturation``) and the piece it follows (``IdFacturePrecedente``), where set."""
    element = etree.Element("CPPFactureStatut")
    _sub(element, "IdFacture", invoice.id)
    _sub(element, "IdFlxOrigine", origin_flow)
    _sub(element, "Position", str(invoice.position))
    _sub(element, "NomEntree", invoice.entry_name, required=True)
    _sub(element, "IdFournisseur", invoice.supplier_id)
    _sub(element, "TypeIdFournisseur", _supplier_id_type(invoice.supplier_id_type))
    _sub(element, "IdDestinataire", invoice.buyer_siret)
    _sub(element, "CodeServiceDestinataire", invoice.service_code)
    _sub(element, "NumeroFacture", invoice.number)
    _sub(element, "TypeFacture", invoice.type_code)
    if in_billing_circuit(invoice):  # a plain A1 invoice: nothing more, its report is as it always was
        _sub(element, "CadreFacturation", str(invoice.framework))
        _sub(element, "IdDossierFacturation", invoice.billing_file_id)
        _sub(element, "IdFacturePrecedente", invoice.previous_id)
    return element


def in_billing_circuit(invoice: Invoice) -> bool:
    """Whether the invoice element names its billing framework, file and previous piece: a piece of any
    framework but A1, or one that somehow belongs to another piece's file. A plain A1 invoice (no BT-23,
    or A1) is alone in its own file: nothing to say, and the elements are left out.

    >>> inv = Invoice(id="F1-00001", flow_id="F1", position=1, entry_name="a.xml", billing_file_id="F1-00001")
    >>> in_billing_circuit(inv)
    False
    >>> inv.framework = Framework.A9
    >>> in_billing_circuit(inv)
    True
    """
    return (
        invoice.framework is not Framework.A1
        or invoice.previous_id is not None
        or invoice.billing_file_id not in (None, invoice.id)
    )


def _error_line(error: ValidationError, language: str = "fr") -> etree._Element:
    line = etree.Element("LigneErreurDetail")
    _sub(line, "NatureErreur", error_nature(error))
    _sub(line, "CodeErreur", error.rule)
    _sub(line, "Severite", error.flag.value)
    _sub(line, "Localisation", error.location, required=True)
    _sub(line, "LibelleErreur", error_label(error, language), required=True)
    _sub(line, "DescriptionErreur", error_description(error, language), required=True)
    return line


def _supplier_id_type(value: str | None) -> str | None:
    """Chorus Pro supplier id type 1..7; ISO 6523 scheme 0009 (SIRET) maps to 1; else omitted."""
    if value in {"1", "2", "3", "4", "5", "6", "7"}:
        return value
    return "1" if value == "0009" else None


def _sub(parent: etree._Element, tag: str, text: str | None, *, required: bool = False) -> None:
    """Append `tag` with `text`; an optional element is left out when `text` is None or empty."""
    if text or required:
        etree.SubElement(parent, tag).text = _NOT_XML_CHAR.sub("\ufffd", text or "")


def _leaf(tag: str, text: str) -> etree._Element:
    element = etree.Element(tag)
    element.text = _NOT_XML_CHAR.sub("\ufffd", text)
    return element


def _put(xf: _Writer, element: etree._Element, depth: int) -> None:
    """Write a finished element at `depth`, indented."""
    xf.write("\n" + _INDENT * depth)
    etree.indent(element, space=_INDENT, level=depth)
    xf.write(element)


@contextlib.contextmanager
def _open(xf: _Writer, tag: str, depth: int) -> Iterator[None]:
    """Stream a container element at `depth`; its children are written inside the block."""
    xf.write("\n" + _INDENT * depth)
    with xf.element(tag):
        yield
        xf.write("\n" + _INDENT * depth)


def _datetime(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
