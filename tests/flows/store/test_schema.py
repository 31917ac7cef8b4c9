"""The schema is written twice, in flows/store/tables.py and in the Alembic migrations: they must agree.

A fresh database is upgraded to head by the migrations (as `Store.open` does), then Alembic's
autogenerate compares it to `flows.store.tables.metadata`: tables, columns, types, nullability, server
defaults, indexes, unique and foreign-key constraints. Any difference is what `alembic revision
--autogenerate` would write, and must be empty. Runs on SQLite and on PostgreSQL (`store_url`
gives a private schema of the `test` database, dropped afterwards; skipped when PostgreSQL is not
reachable, see `require_pg` in conftest).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from flows.store import Store, head_revision
from flows.store.tables import metadata


def _diff(conn: sa.Connection, target: sa.MetaData) -> list:
    mc = MigrationContext.configure(
        conn,
        opts={
            "compare_type": True,  # VARCHAR lengths, NUMERIC precision, TIMESTAMP time zone (PostgreSQL)
            "compare_server_default": True,
            "target_metadata": target,
        },
    )
    return compare_metadata(mc, target)


def _migrated(store_url) -> Store:
    url, schema = store_url
    store = Store.open(url, schema=schema, migrate=True)
    assert store.schema_revision() == head_revision()
    return store


def _copy(source: sa.MetaData) -> sa.MetaData:
    copy = sa.MetaData()
    for table in source.sorted_tables:
        table.to_metadata(copy)
    return copy


def test_the_migrations_build_the_schema_of_tables_py(store_url):
    store = _migrated(store_url)
    try:
        with store.engine.connect() as conn:
            assert _diff(conn, metadata) == []
    finally:
        store.close()


def test_the_comparison_sees_the_migrated_tables(store_url):
    # guards against comparing with an empty (wrong) schema: against no metadata at all, every
    # table of the store shows up as one to remove
    store = _migrated(store_url)
    try:
        with store.engine.connect() as conn:
            removed = {op[1].name for op in _diff(conn, sa.MetaData()) if op[0] == "remove_table"}
        assert removed == set(metadata.tables)
    finally:
        store.close()


def test_a_drift_in_tables_py_is_detected(store_url):
    # a copy of the metadata with one extra column, one longer VARCHAR and one extra index
    drifted = _copy(metadata)
    flows = drifted.tables["flows"]
    flows.append_column(sa.Column("drift_extra", sa.Integer))
    longer = next(c for c in flows.columns if isinstance(c.type, sa.String) and c.type.length and not c.primary_key)
    longer.type = sa.String(longer.type.length + 1)
    indexed = {c.name for index in flows.indexes for c in index.columns}
    plain = next(c for c in flows.columns if c.name not in indexed and not c.primary_key)
    sa.Index("ix_drift_extra", plain)
    store = _migrated(store_url)
    try:
        with store.engine.connect() as conn:
            diff = _diff(conn, drifted)
    finally:
        store.close()
    flat = [op for entry in diff for op in (entry if isinstance(entry, list) else [entry])]
    assert any(op[0] == "add_column" and op[2] == "flows" and op[3].name == "drift_extra" for op in flat)
    assert any(op[0] == "modify_type" and op[2:4] == ("flows", longer.name) for op in flat)
    assert any(op[0] == "add_index" and op[1].name == "ix_drift_extra" for op in flat)
    assert len(flat) == 3, flat


def test_a_drift_in_the_database_is_detected(store_url):
    # the other side: the migrated database lacks an index of tables.py
    store = _migrated(store_url)
    try:
        with store.engine.begin() as conn:
            conn.execute(sa.text("DROP INDEX ix_flows_status"))
        with store.engine.connect() as conn:
            diff = _diff(conn, metadata)
    finally:
        store.close()
    assert [(op[0], op[1].name) for op in diff] == [("add_index", "ix_flows_status")]
