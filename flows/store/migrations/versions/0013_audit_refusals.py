"""Repeated anonymous refusals aggregated per source and minute; indexes for the paged audit view.

``audit_refusals`` holds one row per (client address, minute, action) with a count, so that a client
refused again and again before it is known (no session, no valid token) adds at most one row a minute
per action, however many requests it sends; ``audit_log`` stays append-only. The three indexes let the
web's /audit page (keyset on id, newest first) filter by actor, action and period without a full scan.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    op.create_table(
        "audit_refusals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_target", sa.String(200)),
        sa.Column("last_detail", sa.Text),
        sa.UniqueConstraint("client", "minute", "action", name="uq_audit_refusals_key"),
    )
    op.create_index("ix_audit_refusals_minute", "audit_refusals", ["minute"])
    op.create_index("ix_audit_principal_id", "audit_log", ["principal", "id"])
    op.create_index("ix_audit_action_id", "audit_log", ["action", "id"])
    op.create_index("ix_audit_at", "audit_log", ["at"])


def downgrade() -> None:
    op.drop_index("ix_audit_at", "audit_log")
    op.drop_index("ix_audit_action_id", "audit_log")
    op.drop_index("ix_audit_principal_id", "audit_log")
    op.drop_index("ix_audit_refusals_minute", "audit_refusals")
    op.drop_table("audit_refusals")
