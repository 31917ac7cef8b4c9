"""Billing frameworks and circuits: each piece's framework, billing file and turn; reason codes; actors.

- ``invoices``: ``framework`` (BT-23, A1 for every earlier invoice), the circuit's parties as the document
  names them (``previous_number``, ``validator_1``, ``validator_2``, ``moe_siret``, ``moa_siret``), the
  ``billing_file_id`` and the ``previous_id`` of the piece it follows (association), the ``holder`` whose
  turn it is and the ``due_at`` of that turn (indexed: association lookups and deadlines stay O(log n)).
- ``invoice_history.reason_code``: the code of a refusal or suspension reason (flows/domain/reasons.csv).
- ``piece_links``: who follows each piece (one follower not refused; the key holds it under concurrency).
- ``actor_versions`` / ``actors``: registered actors (titulaire, mandataire, MOE, MOA), versioned.
- ``structures.frameworks``: the billing frameworks a directory structure accepts (space separated; NULL: all).

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"

_COLUMNS = (
    ("previous_number", sa.String(200)),
    ("validator_1", sa.String(100)),
    ("validator_2", sa.String(100)),
    ("moe_siret", sa.String(100)),
    ("moa_siret", sa.String(100)),
    ("billing_file_id", sa.String(48)),
    ("previous_id", sa.String(48)),
    ("holder", sa.String(100)),
)
_INDEXES = (
    ("ix_invoices_billing_file", ["billing_file_id"]),
    ("ix_invoices_previous", ["previous_id"]),
    ("ix_invoices_holder_status", ["holder", "status"]),
    ("ix_invoices_due", ["due_at"]),
)


def upgrade() -> None:
    # Not a batch: SQLite adds a column in place; recreating `invoices` is not needed.
    op.add_column("invoices", sa.Column("framework", sa.String(3), nullable=False, server_default="A1"))
    for name, kind in _COLUMNS:
        op.add_column("invoices", sa.Column(name, kind))
    op.add_column("invoices", sa.Column("due_at", sa.DateTime(timezone=True)))
    # Earlier invoices: whose turn it is, as for a plain invoice (the recipient's).
    op.execute("UPDATE invoices SET holder = buyer_siret")
    for name, columns in _INDEXES:
        op.create_index(name, "invoices", columns)
    op.add_column("invoice_history", sa.Column("reason_code", sa.String(40)))
    op.add_column("structures", sa.Column("frameworks", sa.String(200)))
    op.create_table(
        "piece_links",
        sa.Column("previous_id", sa.String(48), primary_key=True),
        sa.Column("invoice_id", sa.String(48), nullable=False),
    )
    op.create_index("ix_piece_links_invoice", "piece_links", ["invoice_id"])
    op.create_table(
        "actor_versions",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_sha256", sa.String(64), nullable=False),
        sa.Column("actors", sa.Integer, nullable=False),
    )
    op.create_table(
        "actors",
        sa.Column("version", sa.String(64), sa.ForeignKey("actor_versions.version"), primary_key=True),
        sa.Column("siret", sa.String(14), primary_key=True),
        sa.Column("role", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("actors")
    op.drop_table("actor_versions")
    op.drop_table("piece_links")
    op.execute("ALTER TABLE structures DROP COLUMN frameworks")
    op.execute("ALTER TABLE invoice_history DROP COLUMN reason_code")
    for name, _ in _INDEXES:
        op.drop_index(name, "invoices")
    for name in ("due_at", "framework", *(n for n, _ in _COLUMNS)):
        op.execute(f"ALTER TABLE invoices DROP COLUMN {name}")
