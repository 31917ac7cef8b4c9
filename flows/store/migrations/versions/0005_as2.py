"""AS2: one row per message received or sent by AS2 (ids, MIC, MDN status); outbox rows without a flow.

An async MDN answering a refused message has no flow: `outbox.flow_id` becomes nullable.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "as2_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("message_id", sa.String(998), nullable=False),
        sa.Column("partner", sa.String(128)),
        sa.Column("as2_from", sa.String(128), nullable=False),
        sa.Column("as2_to", sa.String(128), nullable=False),
        sa.Column("flow_id", sa.String(32), sa.ForeignKey("flows.id")),
        sa.Column("outbox_id", sa.Integer),
        sa.Column("raw_sha256", sa.String(64)),
        sa.Column("headers", sa.Text),
        sa.Column("mic", sa.String(200)),
        sa.Column("mic_digest", sa.String(20)),
        sa.Column("mdn_mode", sa.String(8)),
        sa.Column("mdn_target", sa.String(1024)),
        sa.Column("mdn_status", sa.String(80), nullable=False),
        sa.Column("mdn_archive_sha256", sa.String(64)),
        sa.Column("detail", sa.Text),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("partner", "message_id", "direction", name="uq_as2_partner_message"),
    )
    op.create_index("ix_as2_flow", "as2_messages", ["flow_id"])
    op.create_index("ix_as2_message_id", "as2_messages", ["message_id", "direction"])
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("flow_id", existing_type=sa.String(32), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE flow_id IS NULL")
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("flow_id", existing_type=sa.String(32), nullable=False)
    op.drop_index("ix_as2_message_id", table_name="as2_messages")
    op.drop_index("ix_as2_flow", table_name="as2_messages")
    op.drop_table("as2_messages")
