"""The inputs of the duplicate rule (RLS-P01): the flow's `Seen` and the store's `InvoiceLookup`.

Apart from `validators.platform.duplicate_invoice` so that the context
(`validators.context`) can hold them without importing a rule module; the rule
module re-exports them.
"""

from __future__ import annotations

from typing import Protocol

from flows.domain.model import InvoiceFacts

Key = tuple[str, str, int]


class InvoiceLookup(Protocol):
    """The store's query for an earlier accepted invoice (`flows.store.Store.find_invoice`)."""

    def find_invoice(
        self, supplier_id: str, number: str, year: int, *, exclude_flow_id: str | None = None
    ) -> str | None: ...


def key(facts: InvoiceFacts) -> Key | None:
    """(supplier id, number, issue year), None when one of them is missing.

    >>> import datetime as dt
    >>> key(InvoiceFacts(supplier_id="S", number="F1", issue_date=dt.date(2025, 3, 1))), key(InvoiceFacts())
    (('S', 'F1', 2025), None)
    """
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
