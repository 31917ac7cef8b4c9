"""Initial store: flows, invoices, validation errors, directory, outbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

TS = sa.DateTime(timezone=True)
AMOUNT = sa.Numeric(19, 4)


def upgrade() -> None:
    op.create_table(
        "flow_ids",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "flows",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("partner", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("original_name", sa.String(1024), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("flow_code", sa.String(40)),
        sa.Column("container", sa.String(16)),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("duplicate_of", sa.String(32)),
        sa.Column("directory_version", sa.String(64)),
        sa.Column("invoice_count", sa.Integer, nullable=False),
        sa.Column("rejected_count", sa.Integer, nullable=False),
    )
    op.create_index("ix_flows_partner_sha", "flows", ["partner", "sha256"])
    op.create_index("ix_flows_status", "flows", ["status"])
    op.create_table(
        "invoices",
        sa.Column("id", sa.String(48), primary_key=True),
        sa.Column("flow_id", sa.String(32), sa.ForeignKey("flows.id"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("entry_name", sa.String(1024), nullable=False),
        sa.Column("syntax", sa.String(20)),
        sa.Column("status", sa.String(2), nullable=False),
        sa.Column("number", sa.String(200)),
        sa.Column("type_code", sa.String(10)),
        sa.Column("issue_date", sa.Date),
        sa.Column("supplier_id", sa.String(100)),
        sa.Column("supplier_id_type", sa.String(2)),
        sa.Column("buyer_siret", sa.String(100)),
        sa.Column("service_code", sa.String(100)),
        sa.Column("commitment_number", sa.String(100)),
        sa.Column("currency", sa.String(3)),
        sa.Column("total_without_vat", AMOUNT),
        sa.Column("total_vat", AMOUNT),
        sa.Column("total_with_vat", AMOUNT),
        sa.Column("amount_due", AMOUNT),
        sa.Column("delivered_to", sa.String(1024)),
    )
    op.create_index("ix_invoices_flow_position", "invoices", ["flow_id", "position"], unique=True)
    op.create_table(
        "validation_errors",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("flow_id", sa.String(32), sa.ForeignKey("flows.id"), nullable=False),
        sa.Column("invoice_id", sa.String(48)),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("flag", sa.String(8), nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_errors_flow_invoice", "validation_errors", ["flow_id", "invoice_id"])
    op.create_table(
        "directory_versions",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("imported_at", TS, nullable=False),
        sa.Column("source_sha256", sa.String(64), nullable=False),
        sa.Column("structures", sa.Integer, nullable=False),
    )
    op.create_table(
        "structures",
        sa.Column("version", sa.String(64), sa.ForeignKey("directory_versions.version"), primary_key=True),
        sa.Column("siret", sa.String(14), primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("service_code_required", sa.Boolean, nullable=False),
        sa.Column("ej_required", sa.Boolean, nullable=False),
        sa.Column("ej_or_service", sa.Boolean, nullable=False),
    )
    op.create_table(
        "services",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("siret", sa.String(14), primary_key=True),
        sa.Column("code", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(128), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("flow_id", sa.String(32), sa.ForeignKey("flows.id"), nullable=False),
        sa.Column("invoice_id", sa.String(48)),
        sa.Column("target", sa.String(1024), nullable=False),
        sa.Column("archive_sha256", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS),
    )
    op.create_index("ix_outbox_status_flow", "outbox", ["status", "flow_id"])


def downgrade() -> None:
    for table in (
        "outbox",
        "services",
        "structures",
        "directory_versions",
        "validation_errors",
        "invoices",
        "flows",
        "flow_ids",
    ):
        op.drop_table(table)
