"""The 2026 reform's directory (annuaire), by imported version: its lines (addressed by SIREN, SIREN_SIRET,
SIREN_SIRET_routingCode, SIREN_suffix, each with its platform, status and effective dates), its legal units,
facilities and routing codes (what the XP Z12-013 Directory Service returns); and, on each invoice, the line
that routed it (``routed_by``, ``routed_platform``, ``routed_away``). Indexed for a look-up in O(log n).

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"


def upgrade() -> None:
    op.add_column("invoices", sa.Column("routed_by", sa.String(125)))
    op.add_column("invoices", sa.Column("routed_platform", sa.String(20)))
    op.add_column("invoices", sa.Column("routed_away", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "reform_directory_versions",
        sa.Column("version", sa.String(100), primary_key=True),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_sha256", sa.String(64), nullable=False),
        sa.Column("lines", sa.Integer, nullable=False),
    )
    op.create_index("ix_reform_versions_imported", "reform_directory_versions", ["imported_at"])
    op.create_table(
        "reform_lines",
        sa.Column("version", sa.String(100), primary_key=True),
        sa.Column("addressing_identifier", sa.String(125), primary_key=True),
        sa.Column("siren", sa.String(9), nullable=False),
        sa.Column("siret", sa.String(14)),
        sa.Column("routing_identifier", sa.String(100)),
        sa.Column("suffix", sa.String(100)),
        sa.Column("platform_id", sa.String(20), nullable=False),
        sa.Column("platform_name", sa.String(200), nullable=False),
        sa.Column("platform_type", sa.String(3), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),  # Enabled | Disabled | Upcoming
        sa.Column("effective_from", sa.Date),
        sa.Column("effective_to", sa.Date),
    )
    op.create_index("ix_reform_lines_siren", "reform_lines", ["version", "siren"])
    op.create_index("ix_reform_lines_siret", "reform_lines", ["version", "siret"])
    op.create_table(
        "reform_legal_units",
        sa.Column("version", sa.String(100), primary_key=True),
        sa.Column("siren", sa.String(9), primary_key=True),
        sa.Column("business_name", sa.String(150), nullable=False),
        sa.Column("entity_type", sa.String(20), nullable=False),
        sa.Column("status", sa.String(1), nullable=False),
    )
    op.create_table(
        "reform_facilities",
        sa.Column("version", sa.String(100), primary_key=True),
        sa.Column("siret", sa.String(14), primary_key=True),
        sa.Column("siren", sa.String(9), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("facility_type", sa.String(1), nullable=False),
        sa.Column("status", sa.String(1), nullable=False),
        sa.Column("address_line1", sa.String(255)),
        sa.Column("address_line2", sa.String(255)),
        sa.Column("address_line3", sa.String(255)),
        sa.Column("postal_code", sa.String(5)),
        sa.Column("subdivision", sa.String(255)),
        sa.Column("locality", sa.String(100)),
        sa.Column("country", sa.String(2)),
    )
    op.create_index("ix_reform_facilities_siren", "reform_facilities", ["version", "siren"])
    op.create_table(
        "reform_routing_codes",
        sa.Column("version", sa.String(100), primary_key=True),
        sa.Column("siret", sa.String(14), primary_key=True),
        sa.Column("routing_identifier", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("status", sa.String(1), nullable=False),
        sa.Column("identifier_type", sa.String(4), nullable=False),
        sa.Column("manages_legal_commitment", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reform_routing_codes")
    op.drop_index("ix_reform_facilities_siren", "reform_facilities")
    op.drop_table("reform_facilities")
    op.drop_table("reform_legal_units")
    op.drop_index("ix_reform_lines_siren", "reform_lines")
    op.drop_index("ix_reform_lines_siret", "reform_lines")
    op.drop_table("reform_lines")
    op.drop_index("ix_reform_versions_imported", "reform_directory_versions")
    op.drop_table("reform_directory_versions")
    for name in ("routed_away", "routed_platform", "routed_by"):
        op.execute(f"ALTER TABLE invoices DROP COLUMN {name}")
