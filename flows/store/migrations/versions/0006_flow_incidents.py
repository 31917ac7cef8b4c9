"""Incident retries: how many times a flow failed internally and when it is tried again.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    with op.batch_alter_table("flows") as batch:
        batch.add_column(sa.Column("incidents", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("retry_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("flows") as batch:
        batch.drop_column("retry_at")
        batch.drop_column("incidents")
