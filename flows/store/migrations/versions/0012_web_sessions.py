"""Server-side web sessions, OpenID Connect subject links.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_name", sa.String(100), sa.ForeignKey("web_users.name"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_why", sa.String(200)),
        sa.Column("client", sa.String(100)),
        sa.Column("user_agent", sa.String(300)),
    )
    op.create_index("ix_web_sessions_user", "web_sessions", ["user_name", "revoked_at"])
    with op.batch_alter_table("web_users", recreate="never") as batch:
        batch.add_column(sa.Column("oidc_issuer", sa.String(300)))
        batch.add_column(sa.Column("oidc_sub", sa.String(255)))
    op.create_index("ux_web_users_oidc", "web_users", ["oidc_issuer", "oidc_sub"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_web_users_oidc", "web_users")
    with op.batch_alter_table("web_users") as batch:
        batch.drop_column("oidc_sub")
        batch.drop_column("oidc_issuer")
    op.drop_index("ix_web_sessions_user", "web_sessions")
    op.drop_table("web_sessions")
