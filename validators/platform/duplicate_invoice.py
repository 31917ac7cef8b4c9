"""RLS-P01: the supplier already sent an invoice with this number in the same year.

The key is (supplier id, invoice number BT-1, year of the issue date BT-2); the
supplier id is the one Relais records (BT-29 with scheme 0009, else BT-30).
It is compared across flows (the store) and within the flow being judged
(`Seen`). Decisions:

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

>>> from flows.extract import Facts
>>> import datetime as dt
>>> class Store:  # a stand-in for flows.store.Store
...     def find_invoice(self, supplier_id, number, year, *, exclude_flow_id=None):
...         return "CPP0000000001-00001" if (supplier_id, number, year) == ("S", "F1", 2025) else None
>>> f1 = Facts(supplier_id="S", number="F1", issue_date=dt.date(2025, 3, 1))
>>> print(check(f1, Seen(), Store(), flow_id="CPP0000000002").message.split(": ", 1)[1])
F1 (supplier S, 2025) is invoice CPP0000000001-00001
>>> check(Facts(supplier_id="S", number="F1", issue_date=dt.date(2026, 1, 5)), Seen(), Store(), flow_id="X") is None
True
>>> seen = Seen()
>>> f2 = Facts(supplier_id="S", number="F2", issue_date=dt.date(2025, 3, 1))
>>> check(f2, seen, Store(), flow_id="X") is None
True
>>> seen.add(f2)  # once the invoice is accepted
>>> check(f2, seen, Store(), flow_id="X").location
'BT-1 (invoice number)'
"""

from __future__ import annotations

from typing import Protocol

from flows.model import Flag, InvoiceFacts, ValidationError
from validators.platform import INVOICE_NUMBER
from flows.rule import Rule

RULE = Rule(
    "RLS-P01",
    Flag.FATAL,
    "The supplier already sent an invoice with this number in the same year",
    "Le fournisseur a déjà émis une facture portant ce numéro la même année",
)

Key = tuple[str, str, int]


class InvoiceLookup(Protocol):
    def find_invoice(self, supplier_id: str, number: str, year: int, *,
                     exclude_flow_id: str | None = None) -> str | None: ...


def key(facts: InvoiceFacts) -> Key | None:
    """(supplier id, number, issue year), None when one of them is missing."""
    if not facts.supplier_id or not facts.number or facts.issue_date is None:
        return None
    return facts.supplier_id, facts.number, facts.issue_date.year


class Seen:
    """Keys of the invoices of one flow accepted so far.

    A set of (supplier, number, year) tuples: about 200 bytes per invoice, so
    20 MB for a flow of 100,000 invoices (the default flow limit is 500).
    """

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: set[Key] = set()

    def add(self, facts: InvoiceFacts) -> None:
        """Record an accepted invoice (call it only once the invoice's verdict is known)."""
        if (k := key(facts)) is not None:
            self._keys.add(k)

    def __contains__(self, k: object) -> bool:
        return k in self._keys

    def __len__(self) -> int:
        return len(self._keys)


def check(facts: InvoiceFacts, seen: Seen | None, store: InvoiceLookup | None, *,
          flow_id: str | None) -> ValidationError | None:
    """The duplicate finding for `facts`: first within the flow (`seen`), then across flows (`store`).

    Either may be None to skip that half. `flow_id` is the flow being judged: its own
    invoices already in the store are left to `seen`.
    """
    k = key(facts)
    if k is None:
        return None
    supplier, number, year = k
    if seen is not None and k in seen:
        return RULE.error(INVOICE_NUMBER, f"{number} (supplier {supplier}, {year}) appears earlier in this flow")
    if store is not None:
        earlier = store.find_invoice(supplier, number, year, exclude_flow_id=flow_id)
        if earlier is not None:
            return RULE.error(INVOICE_NUMBER, f"{number} (supplier {supplier}, {year}) is invoice {earlier}")
    return None
