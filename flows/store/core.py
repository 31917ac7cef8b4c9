"""The store: records flows, invoices, findings, the directory and the outbox.

SQLAlchemy 2 Core over SQLite (default) or PostgreSQL; the schema is managed
by the Alembic migrations in ``flows/store/migrations`` and brought up to date when
a store is opened. The store only records: it takes and returns the typed
values of ``flows.domain.model``.

This module opens the store and manages its schema; the queries live in one mixin per aggregate
(``flows.store.flows``, ``store_invoices``, ``store_outbox``, ``store_as2``, ``store_directory``,
``store_audit``, ...) and the records and row <-> value converters in ``flows.store.records``, all re-exported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from flows.domain.errors import ConfigError
from flows.store.api import ApiRepo
from flows.store.as2 import As2Repo
from flows.store.audit import ArchiveRefsRepo, AuditRepo
from flows.store.cdar import CdarRepo
from flows.store.circuits import CircuitsRepo
from flows.store.dashboard import DashboardRepo
from flows.store.directory import ActorsRepo, DirectoryRepo
from flows.store.flow_service import FlowServiceRepo
from flows.store.flows import FlowsRepo
from flows.store.history import HistoryRepo
from flows.store.invoices import InvoicesRepo
from flows.store.outbox import OutboxRepo
from flows.store.partners import PartnersRepo
from flows.store.reform_directory import ReformDirectoryRepo
from flows.store.sessions import SessionsRepo
from flows.store.web import WebRepo

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class SchemaOutdated(ConfigError):
    """The store's schema is older (or newer) than this code: `relais db upgrade` was not run."""


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The schema revision this code needs (the newest migration)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head() or ""


def _engine(url: str, schema: str | None) -> sa.Engine:
    kwargs: dict[str, Any] = {"future": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 60}
        engine = sa.create_engine(url, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        return engine
    if schema:
        kwargs["connect_args"] = {"options": f"-csearch_path={schema}"}
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


class Store(
    FlowsRepo,
    CircuitsRepo,
    InvoicesRepo,
    OutboxRepo,
    As2Repo,
    CdarRepo,
    DirectoryRepo,
    ReformDirectoryRepo,
    ActorsRepo,
    HistoryRepo,
    ApiRepo,
    AuditRepo,
    ArchiveRefsRepo,
    WebRepo,
    PartnersRepo,
    SessionsRepo,
    DashboardRepo,
    FlowServiceRepo,
):
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, schema: str | None = None, migrate: bool = True) -> Store:
        """Open the store; bring its schema up to date, or with ``migrate=False`` (Airflow tasks, servers:
        the deployment ran `relais db upgrade`) only check that it is, raising `SchemaOutdated`."""
        store = cls.connect(url, schema=schema)
        if migrate:
            store.migrate()
        else:
            store.check_schema()
        return store

    @classmethod
    def connect(cls, url: str, *, schema: str | None = None) -> Store:
        """The store at `url`, its schema neither changed nor checked (`relais db status`)."""
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return cls(_engine(url, schema))

    def migrate(self, revision: str = "head") -> None:
        cfg = _alembic_config()
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def schema_revision(self) -> str | None:
        """The schema revision the database is at (None: never migrated)."""
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def check_schema(self) -> None:
        current, head = self.schema_revision(), head_revision()
        if current != head:
            raise SchemaOutdated(
                f"the store {self.engine.url.render_as_string(hide_password=True)} is at schema revision "
                f"{current or 'none'}, this Relais needs {head}: run `relais db upgrade` first"
            )

    def close(self) -> None:
        self.engine.dispose()
