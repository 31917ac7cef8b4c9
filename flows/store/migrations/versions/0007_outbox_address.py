"""Outbox rows carry a typed address (channel, partner, destination) and a delivery's position,
instead of one URL-like ``target`` string (``as2://p/name``, ``sftp://p/dir/name`` or a path).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def _address(kind: str, key: str, target: str) -> tuple[str, str | None, str]:
    """(channel, partner, destination) of an old row."""
    for scheme in ("as2://", "sftp://"):
        if target.startswith(scheme):
            partner, _, rest = target.removeprefix(scheme).partition("/")
            return scheme[:-3], partner, rest
    if kind == "as2-mdn":  # key "as2-mdn:<partner>:<row>:<suffix>", target the partner's URL
        parts = key.split(":")
        return "as2", (parts[1] if len(parts) > 1 and parts[1] != "None" else None), target
    return "folder", None, target


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("position", sa.Integer))
        batch.add_column(sa.Column("channel", sa.String(16)))
        batch.add_column(sa.Column("partner", sa.String(128)))
        batch.add_column(sa.Column("destination", sa.String(1024)))
    conn = op.get_bind()
    outbox = sa.table(
        "outbox",
        sa.column("id"),
        sa.column("key"),
        sa.column("kind"),
        sa.column("flow_id"),
        sa.column("invoice_id"),
        sa.column("target"),
        sa.column("position"),
        sa.column("channel"),
        sa.column("partner"),
        sa.column("destination"),
    )
    flows = sa.table("flows", sa.column("id"), sa.column("partner"))
    partner_of = dict(conn.execute(sa.select(flows.c.id, flows.c.partner)).all())
    rows = conn.execute(
        sa.select(outbox.c.id, outbox.c.key, outbox.c.kind, outbox.c.flow_id, outbox.c.invoice_id, outbox.c.target)
    ).all()
    for row_id, key, kind, flow_id, invoice_id, target in rows:
        channel, partner, destination = _address(kind, key, target)
        position = None
        if kind == "delivery" and invoice_id and "-" in invoice_id:
            position = int(invoice_id.rsplit("-", 1)[1])
        elif kind == "return" and partner is None:
            partner = partner_of.get(flow_id)
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.id == row_id)
            .values(channel=channel, partner=partner, destination=destination, position=position)
        )
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("channel", existing_type=sa.String(16), nullable=False)
        batch.alter_column("destination", existing_type=sa.String(1024), nullable=False)
        batch.drop_column("target")


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("target", sa.String(1024)))
    conn = op.get_bind()
    outbox = sa.table(
        "outbox",
        sa.column("id"),
        sa.column("target"),
        sa.column("channel"),
        sa.column("partner"),
        sa.column("destination"),
    )
    for row_id, channel, partner, destination in conn.execute(
        sa.select(outbox.c.id, outbox.c.channel, outbox.c.partner, outbox.c.destination)
    ).all():
        target = (
            destination
            if channel == "folder" or destination.startswith("http")
            else f"{channel}://{partner}/{destination}"
        )
        conn.execute(sa.update(outbox).where(outbox.c.id == row_id).values(target=target))
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("target", existing_type=sa.String(1024), nullable=False)
        batch.drop_column("destination")
        batch.drop_column("partner")
        batch.drop_column("channel")
        batch.drop_column("position")
