"""Index for the duplicate-invoice rule (RLS-P01): invoices by supplier, number and issue date.

`Store.find_invoice` looks an invoice up by (supplier_id, number) and a range of
issue dates (one year): no derived year column is needed, the date range uses
the index on both SQLite and PostgreSQL.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_index("ix_invoices_supplier_number", "invoices", ["supplier_id", "number", "issue_date"])


def downgrade() -> None:
    op.drop_index("ix_invoices_supplier_number", table_name="invoices")
