"""The dashboard's daily roll-ups: ``rollup_flows`` and ``rollup_rejects``, kept by triggers, rebuilt here.

The landing page and the rejects page counted a month of flows and findings at each view (0.5-0.7 s at a
million flows on PostgreSQL). They now read two small tables of counts per UTC reception day and partner
(`flows.store.rollups`):

- ``rollup_flows``: per status, the flows, their invoices (``invoice_count``) and rejected invoices
  (``rejected_count``);
- ``rollup_rejects``: per rule of the current fatal findings, the invoices it rejects (distinct), the flows
  it rejects as a whole (a finding on no invoice), the flows it touches and its findings; and bounds of
  their flow ids (``first_flow``, ``last_flow``: the least and greatest id that ever counted there, so
  that a rule's latest findings are read through ``ix_errors_rule_flow`` by a range of flow ids).

Qualification flows are not counted (as the pages never counted them). A row is a signed contribution:
triggers on ``flows`` and ``validation_errors`` (both stores; PostgreSQL: plpgsql functions in the store's
own schema, as migration 0011's) append the change a write makes (-1 for the old status, +1 for the new;
a finding's invoice counted once however many findings it has) in the same transaction as the write, so
the roll-ups are never out of step with the flows, whichever code path writes them. They only INSERT (no
row is updated by writers: no lock taken, no deadlock between workers closing flows of the same day);
``merged`` is false on those rows until a compaction sums them (`RollupsRepo.compact_rollups`).

The upgrade fills the tables from the existing flows and findings (`RollupsRepo.rebuild_rollups` does the
same later: ``relais db rollups rebuild``).

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"

_FLOW_COLUMNS = "day, partner, status, flows, invoices, rejected, merged"
_REJECT_COLUMNS = "day, partner, rule, invoices, whole_flows, flows, findings, first_flow, last_flow, merged"


def _tables() -> None:
    op.create_table(
        "rollup_flows",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("partner", sa.String(128), nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("flows", sa.Integer, nullable=False),
        sa.Column("invoices", sa.Integer, nullable=False),
        sa.Column("rejected", sa.Integer, nullable=False),
        sa.Column("merged", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_rollup_flows_day", "rollup_flows", ["day", "partner", "status"])
    op.create_table(
        "rollup_rejects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("partner", sa.String(128), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("invoices", sa.Integer, nullable=False),
        sa.Column("whole_flows", sa.Integer, nullable=False),
        sa.Column("flows", sa.Integer, nullable=False),
        sa.Column("findings", sa.Integer, nullable=False),
        sa.Column("first_flow", sa.String(32)),
        sa.Column("last_flow", sa.String(32)),
        sa.Column("merged", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_rollup_rejects_day", "rollup_rejects", ["day", "partner", "rule"])
    for table in ("rollup_flows", "rollup_rejects"):
        where = sa.column("merged") == sa.false()
        op.create_index(f"ix_{table}_fresh", table, ["id"], postgresql_where=where, sqlite_where=where)


# ---- PostgreSQL ----------------------------------------------------------------------------------

_PG_DAY = "(({t}.received_at AT TIME ZONE 'UTC')::date)"

#: A finding enters (sign 1) or leaves (-1) the current fatal ones: what it adds to its flow's day, partner
#: and rule. Its invoice (or whole flow) and its flow count once: only when no other current fatal finding
#: of the rule is on them (a BEFORE trigger sees the rows its statement wrote before, not its own).
_PG_FINDING = f"""
CREATE OR REPLACE FUNCTION relais_rollup_finding(p_id integer, p_flow text, p_invoice text, p_rule text, p_sign integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  fl record;
  same_item boolean;
  same_flow boolean;
BEGIN
  SELECT f.received_at, f.partner, f.qualification INTO fl FROM flows f WHERE f.id = p_flow;
  IF NOT FOUND OR fl.qualification THEN
    RETURN;
  END IF;
  same_item := EXISTS (
    SELECT 1 FROM validation_errors e
    WHERE e.flow_id = p_flow AND e.invoice_id IS NOT DISTINCT FROM p_invoice AND e.rule = p_rule
      AND e.flag = 'fatal' AND e.superseded_at IS NULL AND e.id <> p_id);
  same_flow := same_item OR EXISTS (
    SELECT 1 FROM validation_errors e
    WHERE e.flow_id = p_flow AND e.rule = p_rule AND e.flag = 'fatal' AND e.superseded_at IS NULL AND e.id <> p_id);
  INSERT INTO rollup_rejects ({_REJECT_COLUMNS}) VALUES (
    {_PG_DAY.format(t="fl")}, fl.partner, p_rule,
    CASE WHEN same_item OR p_invoice IS NULL THEN 0 ELSE p_sign END,
    CASE WHEN same_item OR p_invoice IS NOT NULL THEN 0 ELSE p_sign END,
    CASE WHEN same_flow THEN 0 ELSE p_sign END,
    p_sign, p_flow, p_flow, false);
END $$"""

_PG_FINDINGS_TRIGGER = """
CREATE OR REPLACE FUNCTION relais_rollup_findings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' AND OLD.flag = 'fatal' AND OLD.superseded_at IS NULL THEN
    PERFORM relais_rollup_finding(OLD.id, OLD.flow_id, OLD.invoice_id, OLD.rule, -1);
  END IF;
  IF TG_OP <> 'DELETE' AND NEW.flag = 'fatal' AND NEW.superseded_at IS NULL THEN
    PERFORM relais_rollup_finding(NEW.id, NEW.flow_id, NEW.invoice_id, NEW.rule, 1);
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END $$"""

#: A flow's contribution per rule (its current fatal findings), times `sign`, under its row `r`.
_PG_FLOW_REJECTS = f"""
    INSERT INTO rollup_rejects ({_REJECT_COLUMNS})
    SELECT {_PG_DAY.format(t="{r}")}, {{r}}.partner, e.rule, {{s}} * count(DISTINCT e.invoice_id),
           {{s}} * count(DISTINCT CASE WHEN e.invoice_id IS NULL THEN 1 END), {{s}}, {{s}} * count(*),
           {{r}}.id, {{r}}.id, false
    FROM validation_errors e
    WHERE e.flow_id = {{r}}.id AND e.flag = 'fatal' AND e.superseded_at IS NULL
    GROUP BY e.rule;"""

_PG_FLOWS_TRIGGER = f"""
CREATE OR REPLACE FUNCTION relais_rollup_flows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' AND NOT OLD.qualification THEN
    INSERT INTO rollup_flows ({_FLOW_COLUMNS}) VALUES (
      {_PG_DAY.format(t="OLD")}, OLD.partner, OLD.status, -1, -OLD.invoice_count, -OLD.rejected_count, false);
  END IF;
  IF TG_OP <> 'DELETE' AND NOT NEW.qualification THEN
    INSERT INTO rollup_flows ({_FLOW_COLUMNS}) VALUES (
      {_PG_DAY.format(t="NEW")}, NEW.partner, NEW.status, 1, NEW.invoice_count, NEW.rejected_count, false);
  END IF;
  IF TG_OP = 'UPDATE' AND (OLD.received_at IS DISTINCT FROM NEW.received_at OR OLD.partner IS DISTINCT FROM
      NEW.partner OR OLD.qualification IS DISTINCT FROM NEW.qualification) THEN
    IF NOT OLD.qualification THEN {_PG_FLOW_REJECTS.format(r="OLD", s="-1")}
    END IF;
    IF NOT NEW.qualification THEN {_PG_FLOW_REJECTS.format(r="NEW", s="1")}
    END IF;
  END IF;
  RETURN NULL;
END $$"""

_FLOW_CHANGED = (
    "OLD.status IS DISTINCT FROM NEW.status OR OLD.invoice_count IS DISTINCT FROM NEW.invoice_count "
    "OR OLD.rejected_count IS DISTINCT FROM NEW.rejected_count OR OLD.partner IS DISTINCT FROM NEW.partner "
    "OR OLD.received_at IS DISTINCT FROM NEW.received_at OR OLD.qualification IS DISTINCT FROM NEW.qualification"
)
_FINDING_CHANGED = (
    "OLD.flag IS DISTINCT FROM NEW.flag OR OLD.superseded_at IS DISTINCT FROM NEW.superseded_at "
    "OR OLD.rule IS DISTINCT FROM NEW.rule OR OLD.invoice_id IS DISTINCT FROM NEW.invoice_id "
    "OR OLD.flow_id IS DISTINCT FROM NEW.flow_id"
)


def _postgresql() -> None:
    op.execute(_PG_FINDING)
    op.execute(_PG_FINDINGS_TRIGGER)
    op.execute(_PG_FLOWS_TRIGGER)
    op.execute(
        "CREATE TRIGGER flows_rollup AFTER INSERT OR DELETE ON flows FOR EACH ROW EXECUTE FUNCTION relais_rollup_flows()"
    )
    op.execute(
        f"CREATE TRIGGER flows_rollup_update AFTER UPDATE ON flows FOR EACH ROW WHEN ({_FLOW_CHANGED}) "
        "EXECUTE FUNCTION relais_rollup_flows()"
    )
    # BEFORE: each row's check sees the rows its statement handled before it (two findings of one invoice
    # inserted by one statement: the first counts the invoice, the second sees it).
    op.execute(
        "CREATE TRIGGER validation_errors_rollup BEFORE INSERT OR DELETE ON validation_errors "
        "FOR EACH ROW EXECUTE FUNCTION relais_rollup_findings()"
    )
    op.execute(
        f"CREATE TRIGGER validation_errors_rollup_update BEFORE UPDATE ON validation_errors FOR EACH ROW "
        f"WHEN ({_FINDING_CHANGED}) EXECUTE FUNCTION relais_rollup_findings()"
    )


# ---- SQLite --------------------------------------------------------------------------------------


def _sqlite_finding(row: str, sign: int) -> str:
    """A finding `row` (NEW or OLD) entering (1) or leaving (-1): SQLite runs AFTER triggers row by row, so
    the other rows are those with another id."""
    same_item = (
        f"EXISTS (SELECT 1 FROM validation_errors e WHERE e.flow_id = {row}.flow_id AND e.invoice_id IS "
        f"{row}.invoice_id AND e.rule = {row}.rule AND e.flag = 'fatal' AND e.superseded_at IS NULL AND e.id <> {row}.id)"
    )
    same_flow = (
        f"EXISTS (SELECT 1 FROM validation_errors e WHERE e.flow_id = {row}.flow_id AND e.rule = {row}.rule "
        f"AND e.flag = 'fatal' AND e.superseded_at IS NULL AND e.id <> {row}.id)"
    )
    return (
        f"INSERT INTO rollup_rejects ({_REJECT_COLUMNS}) "
        f"SELECT date(f.received_at), f.partner, {row}.rule, "
        f"CASE WHEN {row}.invoice_id IS NULL OR {same_item} THEN 0 ELSE {sign} END, "
        f"CASE WHEN {row}.invoice_id IS NOT NULL OR {same_item} THEN 0 ELSE {sign} END, "
        f"CASE WHEN {same_flow} THEN 0 ELSE {sign} END, {sign}, {row}.flow_id, {row}.flow_id, 0 "
        f"FROM flows f WHERE f.id = {row}.flow_id AND NOT f.qualification;"
    )


def _sqlite_flow(row: str, sign: int) -> str:
    return (
        f"INSERT INTO rollup_flows ({_FLOW_COLUMNS}) SELECT date({row}.received_at), {row}.partner, {row}.status, "
        f"{sign}, {sign} * {row}.invoice_count, {sign} * {row}.rejected_count, 0 WHERE NOT {row}.qualification;"
    )


def _sqlite_flow_rejects(row: str, sign: int) -> str:
    return (
        f"INSERT INTO rollup_rejects ({_REJECT_COLUMNS}) "
        f"SELECT date({row}.received_at), {row}.partner, e.rule, {sign} * count(DISTINCT e.invoice_id), "
        f"{sign} * count(DISTINCT CASE WHEN e.invoice_id IS NULL THEN 1 END), {sign}, {sign} * count(*), "
        f"{row}.id, {row}.id, 0 "
        f"FROM validation_errors e WHERE e.flow_id = {row}.id AND e.flag = 'fatal' AND e.superseded_at IS NULL "
        f"AND NOT {row}.qualification GROUP BY e.rule;"
    )


def _sqlite() -> None:
    counted = "{r}.flag = 'fatal' AND {r}.superseded_at IS NULL"
    moved = (
        "OLD.received_at IS NOT NEW.received_at OR OLD.partner IS NOT NEW.partner "
        "OR OLD.qualification IS NOT NEW.qualification"
    )
    changed = _FLOW_CHANGED.replace("IS DISTINCT FROM", "IS NOT")
    statements = [
        f"CREATE TRIGGER flows_rollup_insert AFTER INSERT ON flows BEGIN {_sqlite_flow('NEW', 1)} END",
        f"CREATE TRIGGER flows_rollup_delete AFTER DELETE ON flows BEGIN {_sqlite_flow('OLD', -1)} END",
        f"CREATE TRIGGER flows_rollup_update AFTER UPDATE ON flows WHEN {changed} "
        f"BEGIN {_sqlite_flow('OLD', -1)} {_sqlite_flow('NEW', 1)} END",
        f"CREATE TRIGGER flows_rollup_move AFTER UPDATE ON flows WHEN {moved} "
        f"BEGIN {_sqlite_flow_rejects('OLD', -1)} {_sqlite_flow_rejects('NEW', 1)} END",
        f"CREATE TRIGGER validation_errors_rollup_insert AFTER INSERT ON validation_errors "
        f"WHEN {counted.format(r='NEW')} BEGIN {_sqlite_finding('NEW', 1)} END",
        f"CREATE TRIGGER validation_errors_rollup_delete AFTER DELETE ON validation_errors "
        f"WHEN {counted.format(r='OLD')} BEGIN {_sqlite_finding('OLD', -1)} END",
        f"CREATE TRIGGER validation_errors_rollup_leave AFTER UPDATE ON validation_errors "
        f"WHEN {counted.format(r='OLD')} AND ({_FINDING_CHANGED.replace('IS DISTINCT FROM', 'IS NOT')}) "
        f"BEGIN {_sqlite_finding('OLD', -1)} END",
        f"CREATE TRIGGER validation_errors_rollup_enter AFTER UPDATE ON validation_errors "
        f"WHEN {counted.format(r='NEW')} AND ({_FINDING_CHANGED.replace('IS DISTINCT FROM', 'IS NOT')}) "
        f"BEGIN {_sqlite_finding('NEW', 1)} END",
    ]
    for sql in statements:
        op.execute(sql)


_SQLITE_TRIGGERS = (
    "flows_rollup_insert",
    "flows_rollup_delete",
    "flows_rollup_update",
    "flows_rollup_move",
    "validation_errors_rollup_insert",
    "validation_errors_rollup_delete",
    "validation_errors_rollup_leave",
    "validation_errors_rollup_enter",
)


# ---- the existing flows --------------------------------------------------------------------------


def _rebuild(dialect: str) -> None:
    """The roll-ups of the flows and findings already there (as flows.store.rollups.RollupsRepo.rebuild_rollups)."""
    day = _PG_DAY.format(t="f") if dialect == "postgresql" else "date(f.received_at)"
    true = "true" if dialect == "postgresql" else "1"
    op.execute(
        f"INSERT INTO rollup_flows ({_FLOW_COLUMNS}) "
        f"SELECT {day}, f.partner, f.status, count(*), coalesce(sum(f.invoice_count), 0), "
        f"coalesce(sum(f.rejected_count), 0), {true} FROM flows f WHERE NOT f.qualification "
        f"GROUP BY {day}, f.partner, f.status"
    )
    op.execute(
        f"INSERT INTO rollup_rejects ({_REJECT_COLUMNS}) "
        f"SELECT {day}, f.partner, e.rule, count(DISTINCT e.invoice_id), "
        "count(DISTINCT CASE WHEN e.invoice_id IS NULL THEN e.flow_id END), count(DISTINCT e.flow_id), count(*), "
        "min(e.flow_id), max(e.flow_id), "
        f"{true} FROM validation_errors e JOIN flows f ON f.id = e.flow_id "
        "WHERE e.flag = 'fatal' AND e.superseded_at IS NULL AND NOT f.qualification "
        f"GROUP BY {day}, f.partner, e.rule"
    )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _tables()
    if dialect == "postgresql":
        _postgresql()
    else:
        _sqlite()
    _rebuild(dialect)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS flows_rollup ON flows")
        op.execute("DROP TRIGGER IF EXISTS flows_rollup_update ON flows")
        op.execute("DROP TRIGGER IF EXISTS validation_errors_rollup ON validation_errors")
        op.execute("DROP TRIGGER IF EXISTS validation_errors_rollup_update ON validation_errors")
        op.execute("DROP FUNCTION IF EXISTS relais_rollup_flows()")
        op.execute("DROP FUNCTION IF EXISTS relais_rollup_findings()")
        op.execute("DROP FUNCTION IF EXISTS relais_rollup_finding(integer, text, text, text, integer)")
    else:
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("rollup_rejects")
    op.drop_table("rollup_flows")
