"""The store: records flows, invoices, findings, the directory and the outbox.

SQLAlchemy 2 Core over SQLite (default) or PostgreSQL; the schema is managed
by the Alembic migrations in ``flows/migrations`` and brought up to date when
a store is opened. The store only records: it takes and returns the typed
values of ``flows.model``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from flows import lifecycle
from flows import tables as t
from flows.errors import ConfigError
from flows.model import (
    Channel,
    Container,
    Flag,
    Flow,
    FlowCode,
    FlowStatus,
    Invoice,
    InvoiceStatus,
    Syntax,
    ValidationError,
    utcnow,
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
PAGE = 1000


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


class OutboxStatus:
    PENDING = "pending"
    SENT = "sent"


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    key: str
    kind: str  # "delivery" | "return" | "as2-mdn"
    flow_id: str | None  # None: an async AS2 MDN for a message that made no flow
    invoice_id: str | None
    target: str
    archive_sha256: str | None
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: dt.datetime | None = None
    created_at: dt.datetime | None = None


class As2Status:
    """`As2Message.mdn_status` values (received messages also carry "processed/error: <modifier>")."""

    RECEIVED = "received"  # in: archived, not yet answered (a crash here is resumed on the resend)
    PROCESSED = "processed"  # in: accepted, positive MDN given
    PENDING = "pending"  # out: being sent
    SENT = "sent"  # out: accepted by the partner's server, async MDN awaited (or none requested)
    MDN_OK = "mdn-ok"  # out: signed MDN "processed" with the MIC computed when sending
    MDN_ERROR = "mdn-error"  # out: negative MDN, bad MDN signature or MIC mismatch (see detail)


@dataclasses.dataclass(slots=True)
class As2Message:
    """One AS2 message received ("in") or sent ("out"), its MIC and the state of its MDN."""

    direction: str
    message_id: str
    partner: str | None
    as2_from: str
    as2_to: str
    mdn_status: str
    flow_id: str | None = None
    outbox_id: int | None = None
    raw_sha256: str | None = None
    headers: dict[str, str] | None = None
    mic: str | None = None
    mic_digest: str | None = None
    mdn_mode: str | None = None
    mdn_target: str | None = None
    mdn_archive_sha256: str | None = None
    detail: str | None = None
    id: int | None = None
    received_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Structure:
    siret: str
    name: str
    active: bool
    service_code_required: bool
    ej_required: bool
    ej_or_service: bool
    services: dict[str, tuple[str, bool]]  # code -> (name, active)


@dataclasses.dataclass(frozen=True, slots=True)
class Directory:
    version: str
    structures: dict[str, Structure]

    def get(self, siret: str | None) -> Structure | None:
        return self.structures.get(siret or "")


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


class Store:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, schema: str | None = None, migrate: bool = True) -> "Store":
        """Open the store; bring its schema up to date, or with ``migrate=False`` (Airflow tasks, servers:
        the deployment ran `relais db upgrade`) only check that it is, raising `SchemaOutdated`."""
        store = cls.connect(url, schema=schema)
        if migrate:
            store.migrate()
        else:
            store.check_schema()
        return store

    @classmethod
    def connect(cls, url: str, *, schema: str | None = None) -> "Store":
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
                f"{current or 'none'}, this Relais needs {head}: run `relais db upgrade` first")

    def close(self) -> None:
        self.engine.dispose()

    # ---- flows -------------------------------------------------------------

    def create_flow(self, flow: Flow) -> Flow:
        """Record a received flow; assigns its id (``CPP`` + 10 digits) when empty."""
        with self.engine.begin() as conn:
            if not flow.id:
                seq = conn.execute(
                    sa.insert(t.flow_ids).values(created_at=utcnow()).returning(t.flow_ids.c.seq)
                ).scalar_one()
                flow.id = f"CPP{seq:010d}"
            conn.execute(sa.insert(t.flows).values(**_flow_row(flow)))
        return flow

    def get_flow(self, flow_id: str) -> Flow | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.flows).where(t.flows.c.id == flow_id)).mappings().first()
        return _flow(row) if row else None

    def list_flows(
        self,
        *,
        status: Sequence[FlowStatus] | None = None,
        partner: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Flow]:
        """Flows newest first (by id: ids grow with reception), at most `limit`, those older than the
        flow id `before` when given (keyset pagination: pass the last id of the previous page)."""
        q = sa.select(t.flows).order_by(t.flows.c.id.desc()).limit(limit)
        if status:
            q = q.where(t.flows.c.status.in_([str(s) for s in status]))
        if partner:
            q = q.where(t.flows.c.partner == partner)
        if before:
            q = q.where(t.flows.c.id < before)
        with self.engine.connect() as conn:
            return [_flow(r) for r in conn.execute(q).mappings()]

    def pending_flows(self, waiting: Sequence[FlowStatus], *, stale_before: dt.datetime,
                      limit: int = 100_000) -> list[tuple[str, int, str]]:
        """(id, size, SHA-256) of the flows to process, oldest first: those in `waiting`, the
        incidents whose retry is due, and those in progress whose worker went silent before `stale_before`."""
        c = t.flows.c
        q = (
            sa.select(c.id, c.size, c.sha256)
            .where(sa.or_(
                c.status.in_([str(s) for s in waiting]),
                sa.and_(c.status == str(lifecycle.RETRIED_WHEN_DUE), c.retry_at <= utcnow()),
                sa.and_(c.status == str(lifecycle.IN_PROGRESS), c.updated_at < stale_before),
            ))
            .order_by(c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [(r.id, r.size, r.sha256) for r in conn.execute(q)]

    def incident_counts(self) -> tuple[int, int]:
        """(incidents waiting for an automatic retry, parked incidents waiting for ops)."""
        c = t.flows.c
        q = (
            sa.select(c.retry_at.is_(None), sa.func.count())
            .where(c.status == str(FlowStatus.IN_INCIDENTE))
            .group_by(c.retry_at.is_(None))
        )
        with self.engine.connect() as conn:
            counts = {bool(parked): n for parked, n in conn.execute(q)}
        return counts.get(False, 0), counts.get(True, 0)

    def requeue_flow(self, flow_id: str) -> bool:
        """Put an incident back in the queue for reprocessing (IN_EN_ATTENTE_RETRAITEMENT_CPP), with its
        retry budget renewed. False when the flow is not an incident (or already waiting): the statuses it
        may come from are those `flows.lifecycle` lets move to `lifecycle.REQUEUED` by reprocessing."""
        c = t.flows.c
        sources = lifecycle.FLOW.sources(lifecycle.REQUEUED, lifecycle.Move.REPROCESS)
        stmt = (
            sa.update(t.flows)
            .where(c.id == flow_id, c.status.in_([str(s) for s in sources]))
            .values(status=str(lifecycle.REQUEUED), incidents=0, retry_at=None,
                    updated_at=utcnow())
        )
        with self.engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def find_original(self, flow: Flow) -> str | None:
        """Id of an earlier, non-duplicate flow of the same partner with the same bytes."""
        q = (
            sa.select(t.flows.c.id)
            .where(
                t.flows.c.partner == flow.partner,
                t.flows.c.sha256 == flow.sha256,
                t.flows.c.id < flow.id,
                t.flows.c.duplicate_of.is_(None),
            )
            .order_by(t.flows.c.id)
            .limit(1)
        )
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def find_flow(self, partner: str, original_name: str, size: int, sha256: str, *,
                  latest: bool = False) -> Flow | None:
        """The first (or `latest`) flow of `partner` recorded for this very file (name, size and SHA-256):
        the idempotence key of pickups, so a file fetched again after a failed cleanup is not recorded twice."""
        c = t.flows.c
        q = (
            sa.select(t.flows)
            .where(c.partner == partner, c.sha256 == sha256, c.original_name == original_name, c.size == size)
            .order_by(c.id.desc() if latest else c.id)
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return _flow(row) if row else None

    def find_invoice(self, supplier_id: str, number: str, year: int, *,
                     exclude_flow_id: str | None = None) -> str | None:
        """Id of the first recorded invoice, not rejected, with this supplier id, number and issue year.

        Invoices of `exclude_flow_id` (the flow being judged) are ignored. Uses the
        index on (supplier_id, number, issue_date): the year is a range of dates.
        """
        c = t.invoices.c
        q = (
            sa.select(c.id)
            .where(
                c.supplier_id == supplier_id,
                c.number == number,
                c.issue_date.between(dt.date(year, 1, 1), dt.date(year, 12, 31)),
                c.status.not_in([str(s) for s in InvoiceStatus if s.is_rejected]),
            )
            .order_by(c.id)
            .limit(1)
        )
        if exclude_flow_id is not None:
            q = q.where(c.flow_id != exclude_flow_id)
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def update_flow(self, flow: Flow, conn: sa.Connection | None = None) -> None:
        flow.updated_at = utcnow()
        row = _flow_row(flow)
        del row["id"]
        stmt = sa.update(t.flows).where(t.flows.c.id == flow.id).values(**row)
        if conn is not None:
            conn.execute(stmt)
            return
        with self.engine.begin() as c:
            c.execute(stmt)

    def claim_flow(self, flow_id: str, from_status: Iterable[FlowStatus], to: FlowStatus,
                   stale_after: dt.timedelta | None = None, *, due_incidents: bool = False) -> bool:
        """Move a flow to `to` only if it is in one of `from_status` (a row-level claim).

        With `stale_after`, a flow already in `to` is taken over too when nobody has
        touched it for that long (its worker died). With `due_incidents`, an
        IN_INCIDENTE flow whose retry time has come is taken too. Each of these moves must be allowed by
        `flows.lifecycle` (else `IllegalTransition`, before anything is written).
        """
        from_status = list(from_status)
        for source in from_status:
            lifecycle.check_transition(source, to)
        if stale_after is not None:
            lifecycle.check_transition(to, to)
        if due_incidents:
            lifecycle.check_transition(lifecycle.RETRIED_WHEN_DUE, to)
        c = t.flows.c
        now = utcnow()
        allowed = c.status.in_([str(s) for s in from_status])
        if stale_after is not None:
            allowed = sa.or_(allowed, sa.and_(c.status == str(to), c.updated_at < now - stale_after))
        if due_incidents:
            allowed = sa.or_(allowed, sa.and_(c.status == str(lifecycle.RETRIED_WHEN_DUE), c.retry_at <= now))
        stmt = sa.update(t.flows).where(c.id == flow_id, allowed).values(status=str(to), updated_at=now)
        with self.engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def status_counts(self) -> dict[str, int]:
        q = sa.select(t.flows.c.status, sa.func.count()).group_by(t.flows.c.status)
        with self.engine.connect() as conn:
            return {s: n for s, n in conn.execute(q)}

    # ---- invoices and findings -----------------------------------------------

    def reset_flow_results(self, flow_id: str) -> None:
        """Forget invoices, findings and undelivered outbox rows of a flow (before reprocessing)."""
        with self.engine.begin() as conn:
            conn.execute(sa.delete(t.validation_errors).where(t.validation_errors.c.flow_id == flow_id))
            conn.execute(sa.delete(t.invoices).where(t.invoices.c.flow_id == flow_id))
            conn.execute(
                sa.delete(t.outbox).where(
                    t.outbox.c.flow_id == flow_id, t.outbox.c.status == OutboxStatus.PENDING
                )
            )

    def add_flow_errors(self, flow_id: str, errors: Iterable[ValidationError]) -> None:
        rows = [_error_row(flow_id, None, e) for e in errors]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(t.validation_errors), rows)

    def save_invoices(self, invoices: Sequence[Invoice], deliveries: Sequence[tuple[Invoice, str]]) -> None:
        """Record a chunk of invoices, their findings and their delivery outbox rows, atomically."""
        if not invoices:
            return
        now = utcnow()
        with self.engine.begin() as conn:
            # Also a heartbeat: a flow whose worker saves chunks is not stale.
            conn.execute(sa.update(t.flows).where(t.flows.c.id == invoices[0].flow_id).values(updated_at=now))
            conn.execute(sa.insert(t.invoices), [_invoice_row(i) for i in invoices])
            errors = [_error_row(i.flow_id, i.id, e) for i in invoices for e in i.errors]
            if errors:
                conn.execute(sa.insert(t.validation_errors), errors)
            if deliveries:
                # An invoice delivered by an earlier run of this flow (reprocessing) is not delivered again.
                keys = [f"delivery:{inv.id}" for inv, _ in deliveries]
                done = dict(conn.execute(
                    sa.select(t.outbox.c.key, t.outbox.c.target)
                    .where(t.outbox.c.key.in_(keys), t.outbox.c.status == OutboxStatus.SENT)).all())
                if done:
                    conn.execute(
                        sa.update(t.invoices).where(t.invoices.c.id == sa.bindparam("b_id"))
                        .values(delivered_to=sa.bindparam("b_target")),
                        [{"b_id": inv.id, "b_target": done[f"delivery:{inv.id}"]}
                         for inv, _ in deliveries if f"delivery:{inv.id}" in done])
                    deliveries = [(inv, target) for inv, target in deliveries if f"delivery:{inv.id}" not in done]
            if deliveries:
                conn.execute(
                    sa.insert(t.outbox),
                    [
                        {
                            "key": f"delivery:{inv.id}",
                            "kind": "delivery",
                            "flow_id": inv.flow_id,
                            "invoice_id": inv.id,
                            "target": target,
                            "archive_sha256": None,
                            "status": OutboxStatus.PENDING,
                            "attempts": 0,
                            "created_at": now,
                        }
                        for inv, target in deliveries
                    ],
                )

    def flow_errors(self, flow_id: str) -> list[ValidationError]:
        q = (
            sa.select(t.validation_errors)
            .where(t.validation_errors.c.flow_id == flow_id, t.validation_errors.c.invoice_id.is_(None))
            .order_by(t.validation_errors.c.id)
        )
        with self.engine.connect() as conn:
            return [_error(r) for r in conn.execute(q).mappings()]

    def iter_invoices(self, flow_id: str) -> Iterator[Invoice]:
        """Invoices of a flow in position order with their findings, page by page."""
        last = 0
        while True:
            with self.engine.connect() as conn:
                rows = list(
                    conn.execute(
                        sa.select(t.invoices)
                        .where(t.invoices.c.flow_id == flow_id, t.invoices.c.position > last)
                        .order_by(t.invoices.c.position)
                        .limit(PAGE)
                    ).mappings()
                )
                if not rows:
                    return
                ids = [r["id"] for r in rows]
                errs: dict[str, list[ValidationError]] = {}
                for r in conn.execute(
                    sa.select(t.validation_errors)
                    .where(
                        t.validation_errors.c.flow_id == flow_id,
                        t.validation_errors.c.invoice_id.in_(ids),
                    )
                    .order_by(t.validation_errors.c.id)
                ).mappings():
                    errs.setdefault(r["invoice_id"], []).append(_error(r))
            for r in rows:
                inv = _invoice(r)
                inv.errors = errs.get(inv.id, [])
                yield inv
            last = rows[-1]["position"]

    def top_errors(self, limit: int = 10, flow_ids: Sequence[str] | None = None) -> list[tuple[str, str, int]]:
        """(rule, an example message, count) of the most frequent fatal findings."""
        c = t.validation_errors.c
        q = (
            sa.select(c.rule, sa.func.min(c.message), sa.func.count())
            .where(c.flag == str(Flag.FATAL))
            .group_by(c.rule)
            .order_by(sa.func.count().desc())
            .limit(limit)
        )
        if flow_ids is not None:
            q = q.where(c.flow_id.in_(list(flow_ids)))
        with self.engine.connect() as conn:
            return [(r, m, n) for r, m, n in conn.execute(q)]

    # ---- outbox --------------------------------------------------------------

    def finish_flow(self, flow: Flow, return_target: str | None, return_sha256: str | None) -> None:
        """Close a flow and queue its return flow, in one transaction."""
        with self.engine.begin() as conn:
            self.update_flow(flow, conn)
            if return_target and return_sha256:
                key = f"return:{flow.id}:{return_sha256[:16]}"
                exists = conn.execute(sa.select(t.outbox.c.id).where(t.outbox.c.key == key)).first()
                if not exists:
                    conn.execute(
                        sa.insert(t.outbox).values(
                            key=key,
                            kind="return",
                            flow_id=flow.id,
                            invoice_id=None,
                            target=return_target,
                            archive_sha256=return_sha256,
                            status=OutboxStatus.PENDING,
                            attempts=0,
                            created_at=utcnow(),
                        )
                    )

    def pending_outbox(self, *, kind: str | None = None, flow_id: str | None = None) -> list[OutboxItem]:
        """Rows not sent yet, oldest first (due or not: see `OutboxItem.next_attempt_at`).

        Deliveries of a flow still being processed are left out: an invoice goes to its recipient
        only once its flow is closed (a flow that ends as an incident delivers nothing).
        """
        o, f = t.outbox.c, t.flows.c
        open_flow = sa.select(f.id).where(
            f.id == o.flow_id, f.status.not_in([str(s) for s in lifecycle.FINAL_FLOW_STATUSES]))
        q = (
            sa.select(t.outbox)
            .where(o.status == OutboxStatus.PENDING, sa.not_(sa.and_(o.kind == "delivery", open_flow.exists())))
            .order_by(o.id)
        )
        if kind:
            q = q.where(o.kind == kind)
        if flow_id:
            q = q.where(o.flow_id == flow_id)
        with self.engine.connect() as conn:
            return [_outbox_item(r) for r in conn.execute(q).mappings()]

    def outbox_for_flow(self, flow_id: str) -> list[OutboxItem]:
        q = sa.select(t.outbox).where(t.outbox.c.flow_id == flow_id).order_by(t.outbox.c.id)
        with self.engine.connect() as conn:
            return [_outbox_item(r) for r in conn.execute(q).mappings()]

    def mark_sent(self, items: Sequence[OutboxItem]) -> None:
        if not items:
            return
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t.outbox)
                .where(t.outbox.c.id.in_([i.id for i in items]))
                .values(status=OutboxStatus.SENT, sent_at=now, attempts=t.outbox.c.attempts + 1)
            )
            deliveries = [{"b_id": i.invoice_id, "b_target": i.target} for i in items if i.kind == "delivery"]
            if deliveries:
                conn.execute(
                    sa.update(t.invoices)
                    .where(t.invoices.c.id == sa.bindparam("b_id"))
                    .values(delivered_to=sa.bindparam("b_target")),
                    deliveries,
                )

    def mark_failed(self, item: OutboxItem, error: str, retry_after: dt.timedelta | None = None) -> None:
        """Record a failed attempt; the row stays pending, due again after `retry_after`."""
        due = utcnow() + retry_after if retry_after is not None else None
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t.outbox)
                .where(t.outbox.c.id == item.id)
                .values(attempts=t.outbox.c.attempts + 1, last_error=error[:2000], next_attempt_at=due)
            )

    # ---- AS2 messages --------------------------------------------------------

    def as2_record(self, msg: As2Message) -> tuple[As2Message, bool]:
        """Insert `msg` unless (partner, message id, direction) exists: (the row, True when inserted)."""
        now = utcnow()
        msg.received_at = msg.received_at or now
        msg.updated_at = now
        row = _as2_row(msg)
        del row["id"]
        try:
            with self.engine.begin() as conn:
                msg.id = conn.execute(sa.insert(t.as2_messages).values(**row).returning(t.as2_messages.c.id)).scalar_one()
            return msg, True
        except sa.exc.IntegrityError:
            if msg.partner is None:
                raise
            existing = self.as2_find(msg.partner, msg.message_id, msg.direction)
            if existing is None:  # pragma: no cover - the constraint that failed is another one
                raise
            return existing, False

    def as2_find(self, partner: str, message_id: str, direction: str) -> As2Message | None:
        c = t.as2_messages.c
        q = sa.select(t.as2_messages).where(c.partner == partner, c.message_id == message_id, c.direction == direction)
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return _as2(row) if row else None

    def as2_get(self, msg_id: int) -> As2Message | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.as2_messages).where(t.as2_messages.c.id == msg_id)).mappings().first()
        return _as2(row) if row else None

    def as2_for_outbox(self, outbox_id: int) -> As2Message | None:
        """The message sent for a return flow's outbox row (kept across retries: same Message-ID)."""
        c = t.as2_messages.c
        q = sa.select(t.as2_messages).where(c.outbox_id == outbox_id, c.direction == "out").order_by(c.id.desc())
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return _as2(row) if row else None

    def as2_for_flow(self, flow_id: str) -> list[As2Message]:
        c = t.as2_messages.c
        with self.engine.connect() as conn:
            return [_as2(r) for r in conn.execute(sa.select(t.as2_messages).where(c.flow_id == flow_id)
                                                  .order_by(c.id)).mappings()]

    def as2_list(self, *, partner: str | None = None, direction: str | None = None,
                 limit: int = 100) -> list[As2Message]:
        c = t.as2_messages.c
        q = sa.select(t.as2_messages).order_by(c.id.desc()).limit(limit)
        if partner:
            q = q.where(c.partner == partner)
        if direction:
            q = q.where(c.direction == direction)
        with self.engine.connect() as conn:
            return [_as2(r) for r in conn.execute(q).mappings()]

    def as2_update(self, msg: As2Message, *, mdn_outbox: dict[str, Any] | None = None,
                   only_if_status: Sequence[str] | None = None) -> bool:
        """Save `msg` (only while its stored status is one of `only_if_status`, when given: False if not).

        With `mdn_outbox` (key, target, archive_sha256), its async MDN is queued in the same
        transaction (an outbox row of kind "as2-mdn" without a flow).
        """
        msg.updated_at = utcnow()
        row = _as2_row(msg)
        del row["id"]
        stmt = sa.update(t.as2_messages).where(t.as2_messages.c.id == msg.id)
        if only_if_status is not None:
            stmt = stmt.where(t.as2_messages.c.mdn_status.in_(list(only_if_status)))
        with self.engine.begin() as conn:
            if conn.execute(stmt.values(**row)).rowcount != 1:
                return False
            if mdn_outbox is not None:
                exists = conn.execute(sa.select(t.outbox.c.id).where(t.outbox.c.key == mdn_outbox["key"])).first()
                if not exists:
                    conn.execute(sa.insert(t.outbox).values(
                        kind="as2-mdn", flow_id=None, invoice_id=None, status=OutboxStatus.PENDING,
                        attempts=0, created_at=msg.updated_at, **mdn_outbox))
        return True

    # ---- directory -----------------------------------------------------------

    def import_directory(self, version: str, source_sha256: str, structures: Sequence[Structure]) -> None:
        with self.engine.begin() as conn:
            if conn.execute(
                sa.select(t.directory_versions.c.version).where(t.directory_versions.c.version == version)
            ).first():
                raise ValueError(f"directory version {version!r} is already imported")
            conn.execute(
                sa.insert(t.directory_versions).values(
                    version=version, imported_at=dt.datetime.now(dt.UTC), source_sha256=source_sha256, structures=len(structures)
                )
            )
            for i in range(0, len(structures), PAGE):
                chunk = structures[i : i + PAGE]
                conn.execute(
                    sa.insert(t.structures),
                    [
                        {
                            "version": version,
                            "siret": s.siret,
                            "name": s.name,
                            "active": s.active,
                            "service_code_required": s.service_code_required,
                            "ej_required": s.ej_required,
                            "ej_or_service": s.ej_or_service,
                        }
                        for s in chunk
                    ],
                )
                services = [
                    {"version": version, "siret": s.siret, "code": code, "name": name, "active": active}
                    for s in chunk
                    for code, (name, active) in s.services.items()
                ]
                if services:
                    conn.execute(sa.insert(t.services), services)

    def directory_versions(self) -> list[tuple[str, dt.datetime, int]]:
        q = sa.select(t.directory_versions).order_by(t.directory_versions.c.imported_at.desc())
        with self.engine.connect() as conn:
            return [(r["version"], r["imported_at"], r["structures"]) for r in conn.execute(q).mappings()]

    def load_directory(self, version: str | None = None) -> Directory | None:
        """The directory at `version` (the latest import when None), or None when none was imported."""
        with self.engine.connect() as conn:
            if version is None:
                version = conn.execute(
                    sa.select(t.directory_versions.c.version)
                    .order_by(t.directory_versions.c.imported_at.desc(), t.directory_versions.c.version.desc())
                    .limit(1)
                ).scalar()
                if version is None:
                    return None
            services: dict[str, dict[str, tuple[str, bool]]] = {}
            for r in conn.execute(sa.select(t.services).where(t.services.c.version == version)).mappings():
                services.setdefault(r["siret"], {})[r["code"]] = (r["name"], bool(r["active"]))
            structures = {
                r["siret"]: Structure(
                    siret=r["siret"],
                    name=r["name"],
                    active=bool(r["active"]),
                    service_code_required=bool(r["service_code_required"]),
                    ej_required=bool(r["ej_required"]),
                    ej_or_service=bool(r["ej_or_service"]),
                    services=services.get(r["siret"], {}),
                )
                for r in conn.execute(sa.select(t.structures).where(t.structures.c.version == version)).mappings()
            }
        return Directory(version, structures)


# ---- row <-> value -----------------------------------------------------------


def _as2_row(m: As2Message) -> dict[str, Any]:
    row = {f.name: getattr(m, f.name) for f in dataclasses.fields(As2Message)}
    row["headers"] = json.dumps(m.headers, sort_keys=True) if m.headers is not None else None
    return row


def _as2(r: Any) -> As2Message:
    values = {f.name: r[f.name] for f in dataclasses.fields(As2Message)}
    values["headers"] = json.loads(r["headers"]) if r["headers"] else None
    values["received_at"] = _aware(values["received_at"])
    values["updated_at"] = _aware(values["updated_at"])
    return As2Message(**values)


def _outbox_item(r: Any) -> OutboxItem:
    values = {k: r[k] for k in OutboxItem.__slots__}
    values["next_attempt_at"] = _aware(values["next_attempt_at"])
    values["created_at"] = _aware(values["created_at"])
    return OutboxItem(**values)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _flow_row(f: Flow) -> dict[str, Any]:
    return {
        "id": f.id,
        "partner": f.partner,
        "channel": str(f.channel),
        "original_name": f.original_name,
        "size": f.size,
        "sha256": f.sha256,
        "status": str(f.status),
        "flow_code": str(f.flow_code) if f.flow_code else None,
        "container": str(f.container) if f.container else None,
        "received_at": f.received_at,
        "updated_at": f.updated_at,
        "duplicate_of": f.duplicate_of,
        "directory_version": f.directory_version,
        "invoice_count": f.invoice_count,
        "rejected_count": f.rejected_count,
        "profile": f.profile,
        "rulesets": json.dumps(f.rulesets, sort_keys=True) if f.rulesets is not None else None,
        "incidents": f.incidents,
        "retry_at": f.retry_at,
    }


def _flow(r: Any) -> Flow:
    return Flow(
        id=r["id"],
        partner=r["partner"],
        channel=Channel(r["channel"]),
        original_name=r["original_name"],
        size=r["size"],
        sha256=r["sha256"],
        status=FlowStatus(r["status"]),
        flow_code=FlowCode(r["flow_code"]) if r["flow_code"] else None,
        container=Container(r["container"]) if r["container"] else None,
        received_at=_aware(r["received_at"]),
        updated_at=_aware(r["updated_at"]),
        duplicate_of=r["duplicate_of"],
        directory_version=r["directory_version"],
        invoice_count=r["invoice_count"],
        rejected_count=r["rejected_count"],
        profile=r["profile"],
        rulesets=json.loads(r["rulesets"]) if r["rulesets"] else None,
        incidents=r["incidents"] or 0,
        retry_at=_aware(r["retry_at"]),
    )


_INVOICE_FIELDS = [
    f.name for f in dataclasses.fields(Invoice) if f.name not in ("errors",)
]


def _invoice_row(i: Invoice) -> dict[str, Any]:
    row = {name: getattr(i, name) for name in _INVOICE_FIELDS}
    row["syntax"] = str(i.syntax) if i.syntax else None
    row["status"] = str(i.status)
    return row


def _invoice(r: Any) -> Invoice:
    values = {name: r[name] for name in _INVOICE_FIELDS}
    values["syntax"] = Syntax(r["syntax"]) if r["syntax"] else None
    values["status"] = InvoiceStatus(r["status"])
    return Invoice(**values)


def _error_row(flow_id: str, invoice_id: str | None, e: ValidationError) -> dict[str, Any]:
    return {
        "flow_id": flow_id,
        "invoice_id": invoice_id,
        "rule": e.rule,
        "flag": str(e.flag),
        "location": e.location,
        "message": e.message,
    }


def _error(r: Any) -> ValidationError:
    return ValidationError(r["rule"], Flag(r["flag"]), r["location"], r["message"])
