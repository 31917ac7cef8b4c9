"""The reform's lifecycle messages (CDAR D22B) Relais sent and received, and the invoice statuses they carried.

- ``cdar_messages``: one row per CDAR message, ``direction`` "out" (written by Relais, queued to a partner) or
  "in" (received from a partner platform or a seller); unique per (direction, issuer, message id): a message
  received twice is applied once (the replay is answered the same, docs/reform.md). ``sha256`` names the
  archived bytes; ``outcome`` what became of it.
- ``cdar_lines``: its status lines (``AcknowledgementDocument``), each with the invoice it names when Relais
  knows it, the status and reason codes, and, for a received line, whether it was applied (its history
  entry) or refused (the rule). Indexed by invoice: an invoice's page lists the messages about it.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"


def upgrade() -> None:
    op.create_table(
        "cdar_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("issuer", sa.String(200), nullable=False),
        sa.Column("partner", sa.String(128)),
        sa.Column("flow_id", sa.String(32)),
        sa.Column("return_id", sa.String(48)),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("lines", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("direction", "issuer", "message_id", name="uq_cdar_message"),
    )
    op.create_index("ix_cdar_messages_partner", "cdar_messages", ["partner", "id"])
    op.create_index("ix_cdar_messages_flow", "cdar_messages", ["flow_id"])
    op.create_table(
        "cdar_lines",
        sa.Column("message", sa.Integer, sa.ForeignKey("cdar_messages.id"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("invoice_id", sa.String(48)),
        sa.Column("invoice_number", sa.String(200), nullable=False),
        sa.Column("status", sa.String(3), nullable=False),
        sa.Column("reason_code", sa.String(40)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("rule", sa.String(40)),
        sa.Column("history_id", sa.Integer),
        sa.Column("amounts", sa.Text),
    )
    op.create_index("ix_cdar_lines_invoice", "cdar_lines", ["invoice_id"])


def downgrade() -> None:
    op.drop_index("ix_cdar_lines_invoice", "cdar_lines")
    op.drop_table("cdar_lines")
    op.drop_index("ix_cdar_messages_flow", "cdar_messages")
    op.drop_index("ix_cdar_messages_partner", "cdar_messages")
    op.drop_table("cdar_messages")
