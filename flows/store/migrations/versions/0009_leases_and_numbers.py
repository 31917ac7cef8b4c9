"""Leases on claimed flows and outbox rows; the invoice numbers taken, unique per supplier and year.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"

# Statuses whose number is taken (flows.domain.lifecycle: not rejected, not A_RECYCLER, not SUSPENDUE).
TAKEN = ("01", "02", "03", "07", "08", "09", "10", "11", "12")


def upgrade() -> None:
    with op.batch_alter_table("flows", recreate="never") as batch:  # SQLite >= 3.35 drops columns itself
        batch.add_column(sa.Column("claimed_by", sa.String(200)))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True)))
    with op.batch_alter_table("outbox", recreate="never") as batch:
        batch.add_column(sa.Column("leased_by", sa.String(200)))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True)))
    op.create_table(
        "invoice_numbers",
        sa.Column("supplier_id", sa.String(100), primary_key=True),
        sa.Column("number", sa.String(200), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("invoice_id", sa.String(48), nullable=False),
    )
    op.create_index("ix_invoice_numbers_invoice", "invoice_numbers", ["invoice_id"])
    conn = op.get_bind()
    invoices = sa.table(
        "invoices",
        sa.column("id"),
        sa.column("supplier_id"),
        sa.column("number"),
        sa.column("issue_date"),
        sa.column("status"),
    )
    taken: dict[tuple[str, str, int], str] = {}
    q = (
        sa.select(invoices.c.id, invoices.c.supplier_id, invoices.c.number, invoices.c.issue_date)
        .where(invoices.c.status.in_(TAKEN), invoices.c.supplier_id.is_not(None), invoices.c.number.is_not(None))
        .order_by(invoices.c.id)
    )
    for inv_id, supplier, number, issued in conn.execute(q):
        if issued is not None:
            year = issued.year if hasattr(issued, "year") else int(str(issued)[:4])
            taken.setdefault((supplier, number, year), inv_id)  # the first one keeps it
    if taken:
        numbers = sa.table(
            "invoice_numbers",
            sa.column("supplier_id"),
            sa.column("number"),
            sa.column("year"),
            sa.column("invoice_id"),
        )
        conn.execute(
            sa.insert(numbers),
            [{"supplier_id": s, "number": n, "year": y, "invoice_id": i} for (s, n, y), i in taken.items()],
        )


def downgrade() -> None:
    op.drop_index("ix_invoice_numbers_invoice", "invoice_numbers")
    op.drop_table("invoice_numbers")
    with op.batch_alter_table("outbox", recreate="never") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("leased_by")
    with op.batch_alter_table("flows", recreate="never") as batch:  # SQLite >= 3.35 drops columns itself
        batch.drop_column("lease_until")
        batch.drop_column("claimed_by")
