"""The pieces waiting in a billing circuit, indexed: ``ix_invoices_waiting``, a partial index of ``invoices``
on (``status``, ``due_at``, ``id``) over the statuses where a piece waits for an actor (the statuses of
``flows.domain.circuits.STEP_OF`` that Relais sets: ``flows.store.tables.WAITING_STATUSES``).

The landing page's "Circuits de facturation" and the metrics count them per status, with their overdue and
soon due pieces and the oldest piece (``flows.store.dashboard.DashboardRepo.circuit_waits``). Neither
``ix_invoices_holder_status`` (holder first) nor ``ix_invoices_due`` (only pieces with a deadline) serves a
count by status: PostgreSQL 15 read the whole table (or the whole holder index) for it, 0.4-0.6 s at two
million invoices; through this index it reads the waiting pieces only, a few thousand rows at most, and never
the table. The index is as small as the set of waiting pieces.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"

# As flows.store.tables.WAITING_STATUSES at this revision (a migration does not follow later code).
_WAITING = ("20", "28", "24", "30", "31", "40", "41", "50")


def upgrade() -> None:
    where = sa.column("status").in_(_WAITING)
    op.create_index(
        "ix_invoices_waiting",
        "invoices",
        ["status", "due_at", "id"],
        postgresql_where=where,
        sqlite_where=where,
    )


def downgrade() -> None:
    op.drop_index("ix_invoices_waiting", "invoices")
