"""Rule-set versions and Factur-X profile on flows, profile on invoices.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("flows") as batch:
        batch.add_column(sa.Column("profile", sa.String(20)))
        batch.add_column(sa.Column("rulesets", sa.Text))
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("profile", sa.String(20)))


def downgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("profile")
    with op.batch_alter_table("flows") as batch:
        batch.drop_column("rulesets")
        batch.drop_column("profile")
