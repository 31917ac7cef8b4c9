"""The outbox indexed by invoice: ``ix_outbox_invoice``.

A received CDAR line names an invoice; who may set its buyer's statuses is the partner its delivery went to
(`flows.store.cdar.CdarRepo.cdar_targets`: the outbox's delivery rows of that invoice). Without this index
that look-up read the whole outbox, once per line: the CDAR-in rate fell as the outbox grew (bench/cdar.py:
637 lines/s at 4,000 changes, 235 at 100,000).

Revision ID: 0020
Revises: 0019
"""

from alembic import op

revision = "0020"
down_revision = "0019"


def upgrade() -> None:
    op.create_index("ix_outbox_invoice", "outbox", ["invoice_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_invoice", "outbox")
