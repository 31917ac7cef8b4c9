"""The invoice lifecycle: status history, status return flows, API tokens and uploads, directory facts.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    with op.batch_alter_table("structures", recreate="never") as batch:
        batch.add_column(
            sa.Column("payment_status_not_reported", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("receives_by_edi", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "invoice_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("invoice_id", sa.String(48), sa.ForeignKey("invoices.id"), nullable=False),
        sa.Column("partner", sa.String(128), nullable=False),
        sa.Column("status", sa.String(2), nullable=False),
        sa.Column("previous", sa.String(2)),
        sa.Column("actor", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_history_invoice", "invoice_history", ["invoice_id", "id"])
    op.create_index("ix_history_partner", "invoice_history", ["partner", "id"])
    op.create_table(
        "status_returns",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("partner", sa.String(128), nullable=False),
        sa.Column("first_history_id", sa.Integer, nullable=False),
        sa.Column("last_history_id", sa.Integer, nullable=False),
        sa.Column("entries", sa.Integer, nullable=False),
        sa.Column("archive_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("partner", "first_history_id", name="uq_status_returns_partner_first"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("siret", sa.String(14)),
        sa.Column("service_code", sa.String(100)),
        sa.Column("partner", sa.String(128)),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "api_uploads",
        sa.Column("partner", sa.String(128), primary_key=True),
        sa.Column("idempotency_key", sa.String(200), primary_key=True),
        sa.Column("flow_id", sa.String(32), sa.ForeignKey("flows.id"), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(200)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_audit_target", "audit_log", ["target"])
    # Invoices recorded before: their recorded status becomes their first history entry.
    op.execute(
        "INSERT INTO invoice_history (invoice_id, partner, status, previous, actor, source, reason, at)"
        " SELECT i.id, f.partner, i.status, NULL, 'platform', 'platform', NULL, f.updated_at"
        " FROM invoices i JOIN flows f ON f.id = i.flow_id ORDER BY f.id, i.position"
    )


def downgrade() -> None:
    op.drop_index("ix_audit_target", "audit_log")
    op.drop_table("audit_log")
    op.drop_table("api_uploads")
    op.drop_table("api_tokens")
    op.drop_table("status_returns")
    op.drop_index("ix_history_partner", "invoice_history")
    op.drop_index("ix_history_invoice", "invoice_history")
    op.drop_table("invoice_history")
    with op.batch_alter_table("structures", recreate="never") as batch:
        batch.drop_column("receives_by_edi")
        batch.drop_column("payment_status_not_reported")
