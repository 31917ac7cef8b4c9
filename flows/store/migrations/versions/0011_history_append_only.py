"""Append-only invoice history and audit (refused UPDATE/DELETE), superseded findings of a reopened flow.

- ``invoice_history`` and ``audit_log`` refuse UPDATE and DELETE: triggers on both stores (PostgreSQL: a
  plpgsql function in the store's own schema, the first of its search path; SQLite: ``RAISE(ABORT)``).
- ``invoice_history.invoice_id`` no longer references ``invoices``: an invoice row is the current state
  (reprocessing replaces it), its history outlives it.
- ``validation_errors.superseded_at``: the findings of an earlier run of a reprocessed flow, kept.
- ``flows.reprocess_reason``: why ops last asked for a flow to be processed again (its history says so).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"

APPEND_ONLY = ("invoice_history", "audit_log")
FUNCTION = "relais_refuse_change"


def _history_columns(with_fk: bool) -> list[sa.Column]:
    invoice_id = (
        sa.Column("invoice_id", sa.String(48), sa.ForeignKey("invoices.id"), nullable=False)
        if with_fk
        else sa.Column("invoice_id", sa.String(48), nullable=False)
    )
    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        invoice_id,
        sa.Column("partner", sa.String(128), nullable=False),
        sa.Column("status", sa.String(2), nullable=False),
        sa.Column("previous", sa.String(2)),
        sa.Column("actor", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    ]


def _rebuild_history_sqlite(with_fk: bool) -> None:
    """SQLite cannot drop or add a foreign key: the table is copied (before any trigger exists)."""
    op.create_table("_invoice_history_new", *_history_columns(with_fk))
    op.execute("INSERT INTO _invoice_history_new SELECT * FROM invoice_history")
    op.drop_index("ix_history_invoice", "invoice_history")
    op.drop_index("ix_history_partner", "invoice_history")
    op.drop_table("invoice_history")
    op.execute("ALTER TABLE _invoice_history_new RENAME TO invoice_history")
    op.create_index("ix_history_invoice", "invoice_history", ["invoice_id", "id"])
    op.create_index("ix_history_partner", "invoice_history", ["partner", "id"])


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("validation_errors", recreate="never") as batch:
        batch.add_column(sa.Column("superseded_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("flows", recreate="never") as batch:
        batch.add_column(sa.Column("reprocess_reason", sa.Text))
    if bind.dialect.name == "postgresql":
        for fk in sa.inspect(bind).get_foreign_keys("invoice_history"):
            name = fk.get("name")
            if fk["referred_table"] == "invoices" and name:
                op.drop_constraint(name, "invoice_history", type_="foreignkey")
        op.execute(
            f"CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP "
            "USING ERRCODE = 'insufficient_privilege'; END $$"
        )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
            )
    else:
        _rebuild_history_sqlite(with_fk=False)
        for table in APPEND_ONLY:
            for what in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{what.lower()} BEFORE {what} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'table {table} is append-only: {what} refused'); END"
                )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
        op.create_foreign_key("invoice_history_invoice_id_fkey", "invoice_history", "invoices", ["invoice_id"], ["id"])
    else:
        for table in APPEND_ONLY:
            for what in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{what}")
        _rebuild_history_sqlite(with_fk=True)
    # Not a batch: SQLite (3.35+) drops a column in place; recreating `flows` would break its references.
    op.execute("ALTER TABLE flows DROP COLUMN reprocess_reason")
    op.execute("ALTER TABLE validation_errors DROP COLUMN superseded_at")
