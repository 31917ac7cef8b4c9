"""The AFNOR XP Z12-013 Flow Service (docs/reform.md §3).

- ``flow_service_flows``: what a flow deposited through ``POST /flow-service/v1/flows`` declared in its
  ``flowInfo`` (trackingId, syntax, profile, processing rule, sha256), one row per flow, written in the
  transaction that records the flow; indexed by (partner, tracking id) for the search's ``trackingId``.
- ``webhooks``: a partner's subscriptions (callback URL, filters, signing key); a deleted one keeps its row
  (``deleted_at``) so that the deliveries queued before stay explained.

Revision ID: 0019
Revises: 0017 (relinked after 0018 at the merge)
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"


def upgrade() -> None:
    op.create_table(
        "flow_service_flows",
        sa.Column("flow_id", sa.String(32), sa.ForeignKey("flows.id"), primary_key=True),
        sa.Column("partner", sa.String(128), nullable=False),
        sa.Column("tracking_id", sa.String(64)),
        sa.Column("flow_syntax", sa.String(16), nullable=False),
        sa.Column("flow_profile", sa.String(24)),
        sa.Column("processing_rule", sa.String(24)),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_flow_service_tracking", "flow_service_flows", ["partner", "tracking_id"])
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("partner", sa.String(128), nullable=False),
        sa.Column("callback_url", sa.String(2048), nullable=False),
        sa.Column("flow_types", sa.Text),
        sa.Column("flow_direction", sa.String(8)),
        sa.Column("ack_status", sa.String(16)),
        sa.Column("signing_key", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_webhooks_partner", "webhooks", ["partner", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_webhooks_partner", "webhooks")
    op.drop_table("webhooks")
    op.drop_index("ix_flow_service_tracking", "flow_service_flows")
    op.drop_table("flow_service_flows")
