"""Deterministic synthetic invoices for tests, demos and load runs.

Everything here is a pure function of its arguments (and `seed`): the same call
gives the same recipients, the same plan and the same XML bytes. The one
exception is the Factur-X PDF, whose bytes carry the generation timestamp that
the factur-x library writes into the PDF metadata (its embedded XML does not).

Pieces:

* `sample_directory` / `directory_document`: a small directory of French
  public structures (valid SIRETs) in the Relais directory import format;
* `plan`: a lazy stream of `InvoiceSpec`, each addressed to a recipient with
  the service code / commitment number (EJ) it requires, a share of them
  carrying a defect (`XSD_DEFECTS` break the schema, `ROUTING_DEFECTS` keep
  it valid but must be refused by the platform rules);
* `invoice_xml` / `facturx_pdf` / `document`: one invoice as UBL 2.1, CII D16B
  (Factur-X EN 16931 profile) or a Factur-X PDF/A-3;
* `write_batch`: many invoices as loose files or one zip / tar.gz, written
  entry by entry to a hidden temporary name then renamed into place; a
  `Framing` writes a billing framework (BT-23), a previous piece (BT-25) and
  the circuit's actors (BG-24) into each;
* `circuits.circuit_set` / `circuits.write_circuit`: whole billing files walking
  a circuit (works, subcontract, cocontract), their deposits in order and
  their actors (docs/billing-frameworks.md).

Amounts are integer cents throughout: lines are quantity x unit price, VAT is
20 % (category S) of the sum of the lines rounded half up, so every correct
invoice satisfies the EN 16931 totals rules (BR-CO-10/13/14/15/16, BR-S-08/09).
"""

from __future__ import annotations

from relais.generate.batch import write_batch
from relais.generate.constants import (
    CUSTOMIZATION_ID,
    DEFECTS,
    DIRECTORY_FORMAT,
    PAYMENT_DAYS,
    ROUTING_DEFECTS,
    VAT_RATE,
    XSD_DEFECTS,
    Batch,
    Fmt,
)
from relais.generate.content import _iban as _iban  # re-exported for the tests
from relais.generate.content import vat_number
from relais.generate.directory import Recipient, directory_document, directory_version, sample_directory
from relais.generate.documents import document, facturx_pdf, invoice_xml
from relais.generate.specs import ROLES, Framing, InvoiceSpec, plan, sample_suppliers

__all__ = [
    "CUSTOMIZATION_ID",
    "DEFECTS",
    "DIRECTORY_FORMAT",
    "PAYMENT_DAYS",
    "ROLES",
    "ROUTING_DEFECTS",
    "VAT_RATE",
    "XSD_DEFECTS",
    "Batch",
    "Fmt",
    "Framing",
    "InvoiceSpec",
    "Recipient",
    "directory_document",
    "directory_version",
    "document",
    "facturx_pdf",
    "invoice_xml",
    "plan",
    "sample_directory",
    "sample_suppliers",
    "vat_number",
    "write_batch",
]
