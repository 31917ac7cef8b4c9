"""The web application's users, the partners whose intake is paused, and closed flows reopened by ops.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    with op.batch_alter_table("flows", recreate="never") as batch:
        batch.add_column(sa.Column("reopened", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "web_users",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("partner", sa.String(100)),
        sa.Column("password_hash", sa.Text),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "partner_pauses",
        sa.Column("partner", sa.String(100), primary_key=True),
        sa.Column("paused_by", sa.String(200), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text),
    )
    op.create_index("ix_flows_partner_id", "flows", ["partner", "id"])
    op.create_index("ix_flows_status_id", "flows", ["status", "id"])
    op.create_index("ix_invoices_number", "invoices", ["number"])
    op.create_index("ix_invoices_buyer_siret", "invoices", ["buyer_siret"])
    op.create_index(
        "ix_flows_received",
        "flows",
        ["received_at"],
        postgresql_include=["status", "partner", "invoice_count", "rejected_count"],
    )
    op.create_index("ix_errors_rule_flow", "validation_errors", ["rule", "flow_id"])
    op.create_index("ix_outbox_flow", "outbox", ["flow_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_flow", "outbox")
    op.drop_index("ix_errors_rule_flow", "validation_errors")
    op.drop_index("ix_flows_received", "flows")
    op.drop_index("ix_invoices_buyer_siret", "invoices")
    op.drop_index("ix_invoices_number", "invoices")
    op.drop_index("ix_flows_status_id", "flows")
    op.drop_index("ix_flows_partner_id", "flows")
    op.drop_table("partner_pauses")
    op.drop_table("web_users")
    with op.batch_alter_table("flows", recreate="never") as batch:
        batch.drop_column("reopened")
