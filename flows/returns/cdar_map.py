"""Relais's values as CDAR status lines: a history change, a rejected or accepted invoice, a refused flow.

- a history change → `StatusLine` with the code `flows.domain.lifecycle.cdar_code` gives (a change with
  none is not written), its reason mapped by `cdar_reason`, its text or the reason's label;
- a Relais reason code (``flows/domain/reasons.csv``) → a CDAR reason: a CDAR code is used as it is when the
  status allows it; a Relais code goes through `RELAIS_REASONS` (its CDAR codes in order of preference, the
  first the status allows); failing that, the status's `FALLBACK` ([choice], docs/reform.md §1);
- an invoice rejected by a rule → 213 with `flows.domain.cdar.rejection_reason(rule)` and the rule's message;
- a flow refused before any invoice is read → 501 naming the file;
- 212: the amounts cashed per VAT rate (`amounts_of`).

>>> cdar_reason("213", "DOUBLON"), cdar_reason("210", "TVA"), cdar_reason("208", "MONTANT")
('DOUBLON', 'TX_TVA_ERR', 'JUSTIF_ABS')
>>> cdar_reason("207", "COORD_BANC_ERR"), cdar_reason("205", None), cdar_reason("213", None)
('COORD_BANC_ERR', None, 'REJ_SEMAN')
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation

from flows.domain.cdar import (
    REASON_CODES,
    REASON_REQUIRED,
    REASONS_BY_STATUS,
    Amount,
    Party,
    Role,
    Scheme,
    StatusLine,
    reason_allowed,
    rejection_reason,
)
from flows.domain.history import HistoryEntry
from flows.domain.lifecycle import Actor, InvoiceStatus, cdar_code
from flows.domain.model import Invoice, ValidationError
from flows.returns.status import platform_reason

_MISROUTED = frozenset({InvoiceStatus.REJETEE_ROUTAGE, InvoiceStatus.A_RECYCLER})
#: BT-3 codes the schematron accepts (BR-FR-04); another is written 380 (an invoice) [choice].
INVOICE_TYPE_CODES = frozenset("380 389 393 501 386 500 384 471 472 473 261 262 381 396 502 503".split())
#: A Relais reason code (flows/domain/reasons.csv) → its CDAR reason codes, best first ([choice]).
RELAIS_REASONS: Mapping[str, tuple[str, ...]] = {
    "MONTANT": ("MONTANTTOTAL_ERR", "CALCUL_ERR", "PU_ERR"),
    "DESTINATAIRE": ("DEST_ERR", "DEST_INC", "SIRET_ERR", "CODE_ROUTAGE_ERR"),
    "ENGAGEMENT": ("CMD_ERR", "REF_CT_ABSENT"),
    "MARCHE": ("REF_CT_ABSENT", "REF_ERR", "CMD_ERR"),
    "SERVICE_NON_FAIT": ("LIVR_INCOMP", "NON_CONFORME", "JUSTIF_ABS"),
    "PIECE_JOINTE": ("JUSTIF_ABS", "REJ_REF_PJ", "NON_CONFORME"),
    "DOUBLON": ("DOUBLON", "DOUBLE_FACT"),
    "TVA": ("TX_TVA_ERR", "CALCUL_ERR", "NON_CONFORME", "REJ_SEMAN"),
    "COORDONNEES_BANCAIRES": ("COORD_BANC_ERR", "MODPAI_ERR"),
    "NON_AGREE": ("EMMET_INC", "NON_CONFORME"),
    "HORS_GROUPEMENT": ("EMMET_INC", "NON_CONFORME"),
    "CADRE_ERRONE": ("NON_CONFORME", "REJ_SEMAN", "REF_ERR"),
    "DECOMPTE_INCOMPLET": ("CALCUL_ERR", "NON_CONFORME", "JUSTIF_ABS"),
    "AUTRE": ("AUTRE", "NON_CONFORME", "REJ_SEMAN", "REF_ERR"),
}
#: The reason written when none maps, for a status that requires one or limits them ([choice]: the
#: most general code of each list; 200 takes none: NON_TRANSMISE says something else).
FALLBACK: Mapping[str, str | None] = {
    "213": "REJ_SEMAN",
    "210": "NON_CONFORME",
    "207": "AUTRE",
    "206": "AUTRE",
    "208": "JUSTIF_ABS",
    "221": "ROUTAGE_ERR",
    "501": "IRR_SYNTAX",
    "200": None,
}


def cdar_reason(status: str, code: str | None) -> str | None:
    """The CDAR reason of a line of `status` whose Relais reason code is `code` (module doc)."""
    if code is not None:
        if code in REASON_CODES and reason_allowed(status, code):
            return code
        for candidate in RELAIS_REASONS.get(code, ()):
            if reason_allowed(status, candidate):
                return candidate
    if code is None and status not in REASON_REQUIRED:
        return None
    return FALLBACK.get(status) if status in REASONS_BY_STATUS or status in FALLBACK else None


def siren_of(identifier: str | None) -> str | None:
    """The SIREN of a SIRET or SIREN (None for anything else: a foreign or unreadable identifier).

    >>> siren_of("12345678900011"), siren_of("123 456 789"), siren_of("FR123"), siren_of(None)
    ('123456789', '123456789', None, None)
    """
    digits = (identifier or "").replace(" ", "")
    if digits.isdigit() and len(digits) in (9, 14):
        return digits[:9]
    return None


def buyer_of(invoice: Invoice) -> Party | None:
    """The invoice's buyer (``BY``, by SIREN) when its SIRET is known."""
    siren = siren_of(invoice.buyer_siret)
    return Party(Role.BUYER, siren, Scheme.SIREN) if siren else None


def seller_id(invoice: Invoice) -> str | None:
    """The seller's identifier for ``IssuerTradeParty/GlobalID``: its SIREN, else (a seller without one, e.g.
    abroad) its identifier as the invoice gives it ([choice]: written without the SIREN scheme)."""
    return siren_of(invoice.supplier_id) or (invoice.supplier_id or "").strip() or None


def _line(invoice: Invoice, status: str, **values: object) -> StatusLine:
    """A line about `invoice`. [choice] An invoice whose issue date could not be read is dated by the status's
    date (BR-FR-CDV-11 requires one, except in a 501)."""
    issued_at = values.get("issued_at")
    fallback_date = issued_at.date() if isinstance(issued_at, dt.datetime) else None
    return StatusLine(
        invoice_number=invoice.number or invoice.entry_name or invoice.id,
        status=status,
        invoice_type_code=invoice.type_code if invoice.type_code in INVOICE_TYPE_CODES else "380",
        invoice_issue_date=invoice.issue_date or fallback_date,
        seller_siren=seller_id(invoice),
        buyer=buyer_of(invoice),
        **values,  # type: ignore[arg-type]
    )


def amounts_from_json(rows: Sequence[Mapping[str, str]] | None) -> tuple[Amount, ...]:
    """``cdar_lines.amounts`` (``[{"type": "MEN", "amount": "120.00", "vat_rate": "20.00"}]``) as values.

    >>> amounts_from_json([{"type": "MEN", "amount": "120", "vat_rate": "20"}])[0].amount
    Decimal('120')
    """
    found = []
    for row in rows or ():
        try:
            rate = row.get("vat_rate")
            found.append(
                Amount(
                    str(row.get("type") or row.get("type_code") or "MEN"),
                    Decimal(str(row["amount"])),
                    Decimal(str(rate)) if rate not in (None, "") else None,
                    str(row.get("currency") or "EUR"),
                )
            )
        except (KeyError, InvalidOperation):
            continue
    return tuple(found)


def amounts_of(invoice: Invoice, received: Sequence[Mapping[str, str]] | None = None) -> tuple[Amount, ...]:
    """The 212 amounts: those the CDAR message that set ENCAISSEE gave, else the invoice's total with its
    VAT rate ([choice]: Relais keeps no per-rate breakdown; the rate is total VAT / total without VAT, exact
    for an invoice of one rate, 0 when the totals are missing).

    >>> inv = Invoice(id="F-1", flow_id="F", position=1, entry_name="f.xml", total_without_vat=Decimal("100"),
    ...               total_vat=Decimal("20"), total_with_vat=Decimal("120"))
    >>> amounts_of(inv)
    (Amount(type_code='MEN', amount=Decimal('120'), vat_rate=Decimal('20.00'), currency='EUR'),)
    """
    given = tuple(a for a in amounts_from_json(received) if a.vat_rate is not None)
    if given:
        return given
    total = invoice.total_with_vat if invoice.total_with_vat is not None else invoice.amount_due
    rate = Decimal("0.00")
    if invoice.total_vat is not None and invoice.total_without_vat:
        rate = (invoice.total_vat * 100 / invoice.total_without_vat).quantize(Decimal("0.01"))
    return (Amount("MEN", total if total is not None else Decimal("0"), rate, invoice.currency or "EUR"),)


def history_line(
    entry: HistoryEntry,
    invoice: Invoice,
    *,
    received_amounts: Sequence[Mapping[str, str]] | None = None,
    language: str = "fr",
) -> StatusLine | None:
    """The status line of one history change (None: the change has no CDAR code, it is not written)."""
    status = cdar_code(entry.status, entry.actor)
    if status is None:
        return None
    code = entry.reason_code
    if code is None and entry.status in _MISROUTED:
        code = "DEST_INC"  # rejected or sent back for its routing: the recipient is unknown here
    reason_code = cdar_reason(status, code)
    return _line(
        invoice,
        status,
        reason_code=reason_code,
        reason=platform_reason(entry.reason, language),
        amounts=amounts_of(invoice, received_amounts) if status == "212" else (),
        issued_at=entry.at,
    )


def rejected_line(invoice: Invoice, error: ValidationError, *, at: dt.datetime | None = None) -> StatusLine:
    """213 for an invoice refused by `error`'s rule (its first fatal finding), the rule's message as text.
    [choice] A document whose seller cannot be read at all cannot be rejected in the seller's name
    (BR-FR-CDV-13): it is answered 501 (irrecevable, ``IRR_SYNTAX``), naming its entry in the file."""
    if seller_id(invoice) is None:
        return refused_flow_line(invoice.number or invoice.entry_name or invoice.id, error, at=at)
    reason = rejection_reason(error.rule)
    if not reason_allowed("213", reason):  # a technical rule's IRR_* reason belongs to 501
        reason = "REJ_SEMAN"
    return _line(invoice, "213", reason_code=reason, reason=f"{error.rule} : {error.message}"[:500], issued_at=at)


def accepted_line(invoice: Invoice, *, at: dt.datetime | None = None) -> StatusLine:
    """200 (Déposée) for an invoice the flow accepted."""
    return _line(invoice, "200", issued_at=at)


def refused_flow_line(name: str, error: ValidationError, *, at: dt.datetime | None = None) -> StatusLine:
    """501 (Irrecevable) for a flow refused before any invoice was read: the file is what is named."""
    reason = rejection_reason(error.rule)
    if not reason_allowed("501", reason):
        reason = "IRR_SYNTAX"
    return StatusLine(
        invoice_number=name,
        status="501",
        reason_code=reason,
        reason=f"{error.rule} : {error.message}"[:500],
        issued_at=at,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Written:
    """A status line with what it came from (recorded in ``cdar_lines``)."""

    line: StatusLine
    invoice_id: str | None = None
    history_id: int | None = None
    rule: str | None = None


def history_lines(
    changes: Iterable[tuple[HistoryEntry, Invoice]],
    received: Mapping[int, Sequence[Mapping[str, str]]] | None = None,
    *,
    language: str = "fr",
) -> list[Written]:
    """The lines of a status return's changes, in order (changes with no CDAR code left out)."""
    found = []
    for entry, invoice in changes:
        line = history_line(entry, invoice, received_amounts=(received or {}).get(entry.id), language=language)
        if line is not None:
            found.append(Written(line, invoice.id, entry.id))
    return found


def issuer_key(entry: HistoryEntry, line: StatusLine) -> tuple[str, str | None]:
    """Which message a line can go in: its phase and, in the processing phase (23), who issued it
    (BR-FR-CDV-CL-03: the issuer is ``WK`` for 305 and the acting party for 23)."""
    if str(line.phase) == "305":
        return ("305", None)
    if entry.actor is Actor.SUPPLIER:
        return ("23", f"SE:{line.seller_siren or ''}")
    return ("23", f"BY:{line.buyer.global_id if line.buyer else ''}")


def issuer_party(key: tuple[str, str | None], platform: Party) -> Party:
    """The ``ExchangedDocument/IssuerTradeParty`` of a message of lines with this `issuer_key`: the platform
    (``WK``) in the transmission phase; in the processing phase the buyer (``BY``) or the seller (``SE``) by
    SIREN, or when that is unknown the platform as their representative (``AB`` / ``SR``, [choice])."""
    phase, who = key
    if phase == "305" or who is None:
        return platform
    role, _, siren = who.partition(":")
    if siren:
        return Party(role, siren, Scheme.SIREN)
    return dataclasses.replace(platform, role="AB" if role == "BY" else "SR")
