"""Qualification before production: flows processed in qualification, and ops' mode switches.

- ``flows.qualification``: the flow was processed while its partner was in qualification (judged and
  answered as in production; nothing delivered, no invoice number taken, not shown to recipients).
- ``partner_modes``: ops' switches of a partner between qualification and production, append-only
  (triggers refuse UPDATE and DELETE, as for ``invoice_history`` and ``audit_log`` in 0011).

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"

FUNCTION = "relais_refuse_change"  # created by 0011 on PostgreSQL


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("flows", recreate="never") as batch:
        batch.add_column(sa.Column("qualification", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "partner_modes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("partner", sa.String(128), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text),
    )
    op.create_index("ix_partner_modes_partner", "partner_modes", ["partner", "id"])
    if bind.dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER partner_modes_append_only BEFORE UPDATE OR DELETE ON partner_modes "
            f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()"
        )
        op.execute(
            "CREATE TRIGGER partner_modes_no_truncate BEFORE TRUNCATE ON partner_modes "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
        )
    else:
        for what in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER partner_modes_no_{what.lower()} BEFORE {what} ON partner_modes "
                f"BEGIN SELECT RAISE(ABORT, 'table partner_modes is append-only: {what} refused'); END"
            )


def downgrade() -> None:
    op.drop_index("ix_partner_modes_partner", "partner_modes")
    op.drop_table("partner_modes")  # its triggers go with it
    # Not a batch: SQLite (3.35+) drops a column in place; recreating `flows` would break its references.
    op.execute("ALTER TABLE flows DROP COLUMN qualification")
