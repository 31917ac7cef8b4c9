"""Run the platform rules (RLS-P..) on one invoice: duplicates, attachments, amounts.

The pipeline calls `check_invoice` once per invoice after the XSD and the
EN 16931 rules, in the order of the flow, then records the invoice in `seen`
once its verdict is known and it is accepted::

    seen = duplicate_invoice.Seen()          # one per flow
    ...
    errors = platform_rules.check_invoice(
        facts, detected.syntax, tree, seen, store, limits, flow_id=flow.id,
        xml_size=len(detected.xml), pdf=doc.data if detected.syntax is Syntax.FACTURX else None,
        xml_name=detected.embedded_name, prior=inv.errors)
    ...
    if not inv.rejected:
        seen.add(facts)

All rules report (none stops the others). An internal failure (the store
cannot be queried) raises: the caller treats it as an incident, never as a verdict.
"""

from __future__ import annotations

from collections.abc import Iterable

from lxml import etree

from flows.attachments import attachments, pdf_attachments, total_size
from flows.extract import Facts
from flows.model import Syntax, ValidationError
from validators.platform import (
    amount_due_exceeds_total,
    attachment_extension,
    attachment_name,
    attachment_size,
    attachment_unreadable,
    currency_mismatch,
    currency_missing,
    duplicate_invoice,
    invoice_size,
    negative_invoice,
    totals_mismatch,
)
from validators.platform.duplicate_invoice import InvoiceLookup, Seen
from validators.platform.limits import Limits

ATTACHMENT_RULES = (attachment_name, attachment_extension, attachment_size)
AMOUNT_RULES = (totals_mismatch, amount_due_exceeds_total, negative_invoice, currency_missing, currency_mismatch)
RULES = (duplicate_invoice, attachment_unreadable, *ATTACHMENT_RULES, invoice_size, *AMOUNT_RULES)


def check_invoice(
    facts: Facts,
    syntax: Syntax,
    tree: etree._ElementTree | etree._Element,
    seen: Seen | None,
    store: InvoiceLookup | None,
    limits: Limits,
    *,
    flow_id: str | None,
    xml_size: int | None = None,
    pdf: bytes | None = None,
    xml_name: str | None = None,
    prior: Iterable[ValidationError] = (),
) -> list[ValidationError]:
    """Platform findings for one invoice, in rule order.

    - `facts`: `flows.extract.extract(syntax, tree)`; `tree`: the parsed invoice XML
      (for a Factur-X, the embedded one);
    - `seen`: the flow's `Seen` (None skips the in-flow duplicate check); `store`:
      anything with `find_invoice` (None skips the cross-flow check); `flow_id`: the
      flow being judged, whose own stored invoices the store lookup ignores;
    - `xml_size`: bytes of the invoice XML (without it, the size rule counts the
      attachments only); `pdf`: the whole PDF of a Factur-X and `xml_name` the name of
      its embedded invoice XML (`flows.detect.Detected.embedded_name`): its other
      embedded files are attachments;
    - `prior`: the findings so far (XSD, EN 16931): an amount rule whose EN 16931
      counterpart (its module's ``SAME_AS``) already fired is not reported twice.
    """
    errors: list[ValidationError] = []
    if (e := duplicate_invoice.check(facts, seen, store, flow_id=flow_id)) is not None:
        errors.append(e)

    found = attachments(syntax, tree)
    embedded = pdf_attachments(pdf, xml_name) if pdf is not None else []
    everything = [*found, *embedded]
    for a in everything:
        if (e := attachment_unreadable.check(a)) is not None:
            errors.append(e)
        errors.extend(e for rule in ATTACHMENT_RULES if (e := rule.check(a, limits)) is not None)
    if xml_size is None:
        xml_size = sum(a.encoded for a in found)  # unknown: count the attachments only
    total = total_size(xml_size, everything, len(pdf) if pdf is not None else None)
    if (e := invoice_size.check(total, limits)) is not None:
        errors.append(e)

    already = {e.rule for e in prior if e.fatal}
    for rule in AMOUNT_RULES:
        if getattr(rule, "SAME_AS", None) in already:
            continue
        if (e := rule.check(facts)) is not None:
            errors.append(e)
    return errors
