"""RLS-P01: the supplier already sent an invoice with this number in the same year.

The key is (supplier id, invoice number BT-1, year of the issue date BT-2); the
supplier id is the one Relais records (BT-29 with scheme 0009, else BT-30).
It is compared across flows (the store) and within the flow being judged
(`Seen`). It needs the store, so it runs in the pipeline (stage STORE), once
per invoice, never in a validation worker. Decisions:

- The document type is not part of the key: the platform treats an invoice
  number per supplier per year, whatever the document (invoice 380, credit note
  381, corrective invoice 384 ...). A credit note that reuses the number of an
  invoice of the same supplier and year is a duplicate: French invoicing rules
  require one unique chronological numbering, and two documents under one
  number are ambiguous in the buyer's accounts.
- Rejected invoices (statuses 04 and 05) do not count: the sender corrects and
  resends with the same number (A_RECYCLER). Neither do invoices of the same
  flow already saved (a flow being reprocessed); `Seen` covers the flow.
- An invoice without supplier id, number or issue date has no key and is not
  checked (the EN 16931 rules report what is missing).
- Numbers and ids are compared as read (whitespace collapsed), case-sensitively.

>>> from flows.io.extract import Facts
>>> import datetime as dt
>>> class Store:  # a stand-in for flows.store.Store
...     def find_invoice(self, supplier_id, number, year, *, exclude_flow_id=None):
...         return "CPP0000000001-00001" if (supplier_id, number, year) == ("S", "F1", 2025) else None
>>> f1 = Facts(supplier_id="S", number="F1", issue_date=dt.date(2025, 3, 1))
>>> ctx = InvoiceContext(facts=f1, seen=Seen(), store=Store(), flow_id="CPP0000000002")
>>> check(ctx).rule, check(ctx).message.split(": ", 1)[1]
('RLS-P01', 'F1 (supplier S, 2025) is invoice CPP0000000001-00001')
>>> later = Facts(supplier_id="S", number="F1", issue_date=dt.date(2026, 1, 5))
>>> print(check(InvoiceContext(facts=later, seen=Seen(), store=Store(), flow_id="X")))
None
>>> seen = Seen()
>>> f2 = Facts(supplier_id="S", number="F2", issue_date=dt.date(2025, 3, 1))
>>> print(check(InvoiceContext(facts=f2, seen=seen, store=Store(), flow_id="X")))
None
>>> seen.add(f2)  # once the invoice is accepted
>>> check(InvoiceContext(facts=f2, seen=seen, store=Store(), flow_id="X")).location
'BT-1 (invoice number)'
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext
from validators.seen import InvoiceLookup, Key, Seen, key
from validators.terms import INVOICE_NUMBER

__all__ = ["RULE", "InvoiceLookup", "Key", "Seen", "check", "key"]

RULE = Rule(
    "RLS-P01",
    Flag.FATAL,
    "The supplier already sent an invoice with this number in the same year",
    "Le fournisseur a déjà émis une facture portant ce numéro la même année",
    category=Category.PLATFORM,
    stage=Stage.STORE,
)


def check(ctx: InvoiceContext) -> ValidationError | None:
    """The duplicate finding: first within the flow (`ctx.seen`), then across flows (`ctx.store`).

    Either may be None to skip that half. `ctx.flow_id` is the flow being judged: its own
    invoices already in the store are left to `seen`.
    """
    k = key(ctx.facts) if ctx.facts is not None else None
    if k is None:
        return None
    supplier, number, year = k
    if ctx.seen is not None and k in ctx.seen:
        return RULE.error(INVOICE_NUMBER, f"{number} (supplier {supplier}, {year}) appears earlier in this flow")
    if ctx.store is not None:
        earlier = ctx.store.find_invoice(supplier, number, year, exclude_flow_id=ctx.flow_id)
        if earlier is not None:
            return RULE.error(INVOICE_NUMBER, f"{number} (supplier {supplier}, {year}) is invoice {earlier}")
    return None
