"""The store's flows: recording, finding, listing, claiming and requeueing them; incident counts.

A mixin of ``flows.store.Store`` (which provides ``self.engine``); split out to keep each module small.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence

import sqlalchemy as sa

from flows.domain import lifecycle
from flows.domain.model import Flow, FlowStatus, InvoiceStatus, utcnow
from flows.domain.outbox import OutboxKind
from flows.store import tables as t
from flows.store.records import _flow, _flow_row, current_findings, supersede_findings, supersede_outbox


class FlowsRepo:
    """Flows, their claims, the pending queue and incidents."""

    engine: sa.Engine

    def create_flow(self, flow: Flow) -> Flow:
        """Record a received flow; assigns its id from the sequence when empty."""
        with self.engine.begin() as conn:
            if not flow.id:
                flow.id = self._next_flow_id(conn)
            conn.execute(sa.insert(t.flows).values(**_flow_row(flow)))
        return flow

    def create_flows(self, flows: Sequence[Flow]) -> list[Flow]:
        """Record several received flows (ids given) in one transaction."""
        if flows:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(t.flows), [_flow_row(f) for f in flows])
        return list(flows)

    def next_flow_ids(self, n: int) -> list[str]:
        """`n` flow ids taken from the sequence in one transaction: ``CPP`` + 10 digits, never handed out
        twice by this store (a restored older store hands them out again: `flows.pipeline.intake` skips
        those)."""
        with self.engine.begin() as conn:
            return [self._next_flow_id(conn) for _ in range(n)]

    @staticmethod
    def _next_flow_id(conn: sa.Connection) -> str:
        seq = conn.execute(sa.insert(t.flow_ids).values(created_at=utcnow()).returning(t.flow_ids.c.seq)).scalar_one()
        return f"CPP{seq:010d}"

    def get_flow(self, flow_id: str) -> Flow | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.flows).where(t.flows.c.id == flow_id)).mappings().first()
        return _flow(row) if row else None

    def get_flows(self, flow_ids: Sequence[str]) -> dict[str, Flow]:
        """The flows of `flow_ids` found, in one query (flow id -> flow, in the order of `flow_ids`)."""
        if not flow_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.flows).where(t.flows.c.id.in_(list(flow_ids)))).mappings()
            found = {r["id"]: _flow(r) for r in rows}
        return {fid: found[fid] for fid in flow_ids if fid in found}

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

    def pending_flows(
        self, waiting: Sequence[FlowStatus], *, stale_before: dt.datetime, limit: int = 100_000
    ) -> list[tuple[str, int, str]]:
        """(id, size, SHA-256) of the flows to process, oldest first: those in `waiting`, the
        incidents whose retry is due, and those in progress whose lease expired (or, for claims without a
        lease, whose worker went silent before `stale_before`)."""
        c = t.flows.c
        q = (
            sa.select(c.id, c.size, c.sha256)
            .where(
                sa.or_(
                    c.status.in_([str(s) for s in waiting]),
                    sa.and_(c.status == str(lifecycle.RETRIED_WHEN_DUE), c.retry_at <= utcnow()),
                    sa.and_(
                        c.status == str(lifecycle.IN_PROGRESS),
                        sa.or_(c.updated_at < stale_before, c.lease_until < utcnow()),
                    ),
                )
            )
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

    def requeue_flow(self, flow_id: str, reason: str | None = None, *, only_from: FlowStatus | None = None) -> bool:
        """Put an incident back in the queue for reprocessing (IN_EN_ATTENTE_RETRAITEMENT_CPP), with its
        retry budget renewed. False when the flow is not an incident (or already waiting): the statuses it
        may come from are those `flows.domain.lifecycle` lets move to `lifecycle.REQUEUED` by reprocessing.
        With `only_from`, only from that status (a claim: of concurrent callers, one gets True).
        `reprocess_reason` (`reprocess_reason(reason)`) is kept for the history entries of the rerun."""
        c = t.flows.c
        sources = lifecycle.FLOW.sources(lifecycle.REQUEUED, lifecycle.Move.REPROCESS)
        if only_from is not None:
            if only_from not in sources:
                raise ValueError(f"{only_from} is not requeued by reprocessing")
            sources = (only_from,)
        stmt = (
            sa.update(t.flows)
            .where(c.id == flow_id, c.status.in_([str(s) for s in sources]))
            .values(
                status=str(lifecycle.REQUEUED),
                incidents=0,
                retry_at=None,
                updated_at=utcnow(),
                reprocess_reason=reprocess_reason(reason),
            )
        )
        with self.engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def reopen_flow(self, flow_id: str, reason: str | None = None) -> bool:
        """Reopen a closed flow with rejections (`lifecycle.REOPENABLE`) for reprocessing, in one
        transaction: its rejected invoices (those with a fatal finding) and the flow's own findings are
        forgotten (their findings kept, superseded; their history kept), to be judged again with the
        current directory and rule sets; its accepted invoices stay as they are (delivered once, their
        history kept). The flow waits in `lifecycle.REQUEUED`, `reopened` counted, `reason` kept for the
        history entries of the rerun. False when the flow is not reopenable."""
        c = t.flows.c
        for source in lifecycle.REOPENABLE:
            lifecycle.FLOW.check(source, lifecycle.REQUEUED)
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(t.flows)
                .where(c.id == flow_id, c.status.in_([str(s) for s in lifecycle.REOPENABLE]))
                .values(
                    status=str(lifecycle.REQUEUED),
                    reopened=c.reopened + 1,
                    updated_at=utcnow(),
                    retry_at=None,
                    reprocess_reason=reprocess_reason(reason),
                )
            ).rowcount
            if done != 1:
                return False
            _forget_rejected(conn, flow_id)
            return True

    def forget_rejected(self, flow_id: str) -> None:
        """What `reopen_flow` forgets, again (a reopened flow's worker died mid-way: its rejected invoices
        are judged again, its accepted ones, old and new, are kept)."""
        with self.engine.begin() as conn:
            _forget_rejected(conn, flow_id)

    def kept_positions(self, flow_id: str) -> set[int]:
        """Positions of the invoices a reopened flow keeps (accepted ones): not judged again."""
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(sa.select(t.invoices.c.position).where(t.invoices.c.flow_id == flow_id))}

    def find_original(self, flow: Flow) -> str | None:
        """Id of an earlier, non-duplicate flow of the same partner with the same bytes (for a flow in
        production, a flow processed in qualification does not count)."""
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
        if not flow.qualification:  # a file sent in qualification may be sent again in production
            q = q.where(t.flows.c.qualification.is_(sa.false()))
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def find_originals(self, flows: Sequence[Flow]) -> dict[str, str | None]:
        """`find_original` of each flow (flow id -> the original's id, or None), in one query: the candidates
        of all of them (same partner and bytes, not duplicates), the rule applied to each here.

        Asked for flows claimed together, before any of them is closed: a candidate that one of them makes a
        duplicate is never the one picked, since its own original, older, is a candidate too."""
        if not flows:
            return {}
        c = t.flows.c
        q = sa.select(c.id, c.partner, c.sha256, c.qualification).where(
            c.partner.in_(sorted({f.partner for f in flows})),
            c.sha256.in_(sorted({f.sha256 for f in flows})),
            c.duplicate_of.is_(None),
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        candidates: dict[tuple[str, str], list[tuple[str, bool]]] = {}
        for r in rows:
            candidates.setdefault((r.partner, r.sha256), []).append((r.id, bool(r.qualification)))
        out: dict[str, str | None] = {}
        for f in flows:
            ids = [
                fid
                for fid, qualification in candidates.get((f.partner, f.sha256), [])
                if fid < f.id and (f.qualification or not qualification)
            ]
            out[f.id] = min(ids) if ids else None
        return out

    def find_latest_flows(self, keys: Iterable[tuple[str, str, int, str]]) -> dict[tuple[str, str, int, str], Flow]:
        """`find_flow(..., latest=True)` of each (partner, original name, size, SHA-256) key found, in one query."""
        wanted = set(keys)
        if not wanted:
            return {}
        c = t.flows.c
        q = sa.select(t.flows).where(
            c.partner.in_(sorted({k[0] for k in wanted})), c.sha256.in_(sorted({k[3] for k in wanted}))
        )
        found: dict[tuple[str, str, int, str], Flow] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(q).mappings():
                key = (row["partner"], row["original_name"], row["size"], row["sha256"])
                if key in wanted and (key not in found or row["id"] > found[key].id):
                    found[key] = _flow(row)
        return found

    def find_flow(
        self, partner: str, original_name: str, size: int, sha256: str, *, latest: bool = False
    ) -> Flow | None:
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

    def find_invoice(
        self, supplier_id: str, number: str, year: int, *, exclude_flow_id: str | None = None
    ) -> str | None:
        """Id of the first recorded invoice with this supplier id, number and issue year, whose number
        is still taken (not rejected, not A_RECYCLER, not SUSPENDUE: `InvoiceStatus.frees_number`).

        Invoices of `exclude_flow_id` (the flow being judged) are ignored, and so are those of flows
        processed in qualification (they took no number). Uses the index on (supplier_id, number,
        issue_date): the year is a range of dates.
        """
        c = t.invoices.c
        q = (
            sa.select(c.id)
            .join(t.flows, t.flows.c.id == c.flow_id)
            .where(
                t.flows.c.qualification.is_(sa.false()),
                c.supplier_id == supplier_id,
                c.number == number,
                c.issue_date.between(dt.date(year, 1, 1), dt.date(year, 12, 31)),
                c.status.not_in([str(s) for s in InvoiceStatus if s.frees_number]),
            )
            .order_by(c.id)
            .limit(1)
        )
        if exclude_flow_id is not None:
            q = q.where(c.flow_id != exclude_flow_id)
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def find_invoices(self, keys: Iterable[tuple[str, str, int]]) -> dict[tuple[str, str, int], list[tuple[str, str]]]:
        """`find_invoice` for many keys (supplier id, number, year) in one query: key -> the (invoice id, flow
        id) pairs that hold its number, by id (the caller leaves out the flow being judged)."""
        wanted = set(keys)
        found: dict[tuple[str, str, int], list[tuple[str, str]]] = {k: [] for k in wanted}
        if not wanted:
            return found
        c = t.invoices.c
        q = (
            sa.select(c.id, c.flow_id, c.supplier_id, c.number, c.issue_date)
            .join(t.flows, t.flows.c.id == c.flow_id)
            .where(
                t.flows.c.qualification.is_(sa.false()),
                c.supplier_id.in_(sorted({k[0] for k in wanted})),
                c.number.in_(sorted({k[1] for k in wanted})),
                c.issue_date.between(
                    dt.date(min(k[2] for k in wanted), 1, 1), dt.date(max(k[2] for k in wanted), 12, 31)
                ),
                c.status.not_in([str(s) for s in InvoiceStatus if s.frees_number]),
            )
            .order_by(c.id)
        )
        with self.engine.connect() as conn:
            for inv_id, flow_id, supplier, number, issued in conn.execute(q):
                key = (supplier, number, issued.year) if issued is not None else None
                if key in found:
                    found[key].append((inv_id, flow_id))
        return found

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

    @staticmethod
    def update_flows(flows: Sequence[Flow], conn: sa.Connection) -> None:
        """`update_flow` for several flows, in the caller's transaction (one statement, executemany)."""
        if not flows:
            return
        now = utcnow()
        rows = []
        for flow in flows:
            flow.updated_at = now
            rows.append({f"b_{k}": v for k, v in _flow_row(flow).items()})
        cols = [k for k in _flow_row(flows[0]) if k != "id"]
        stmt = (
            sa.update(t.flows)
            .where(t.flows.c.id == sa.bindparam("b_id"))
            .values({k: sa.bindparam(f"b_{k}") for k in cols})
        )
        conn.execute(stmt, rows)

    def claim_flow(
        self,
        flow_id: str,
        from_status: Iterable[FlowStatus],
        to: FlowStatus,
        stale_after: dt.timedelta | None = None,
        *,
        due_incidents: bool = False,
        worker: str | None = None,
        lease: dt.timedelta | None = None,
    ) -> bool:
        """Move a flow to `to` only if it is in one of `from_status` (a row-level claim).

        With `stale_after`, a flow already in `to` is taken over too when nobody has
        touched it for that long (its worker died). With `due_incidents`, an
        IN_INCIDENTE flow whose retry time has come is taken too. With `lease`, the claim is `worker`'s
        until now + lease (renewed by `renew_claim`), and a flow in `to` whose lease has expired is taken
        over (`flows.domain.lease`). On PostgreSQL the row is locked with ``FOR UPDATE SKIP LOCKED``: a flow
        another worker is claiming at this instant is skipped, not waited for. Each of these moves must be
        allowed by `flows.domain.lifecycle` (else `IllegalTransition`, before anything is written).
        """
        allowed, values = _claim_terms(from_status, to, stale_after, due_incidents, worker, lease)
        c = t.flows.c
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                locked = conn.execute(
                    sa.select(c.id).where(c.id == flow_id, allowed).with_for_update(skip_locked=True)
                ).first()
                if locked is None:
                    return False
            return conn.execute(sa.update(t.flows).where(c.id == flow_id, allowed).values(**values)).rowcount == 1

    def claim_flows(
        self,
        flow_ids: Sequence[str],
        from_status: Iterable[FlowStatus],
        to: FlowStatus,
        stale_after: dt.timedelta | None = None,
        *,
        due_incidents: bool = False,
        worker: str | None = None,
        lease: dt.timedelta | None = None,
    ) -> set[str]:
        """`claim_flow` for several flows in one transaction (a group of small flows): the ids claimed."""
        if not flow_ids:
            return set()
        allowed, values = _claim_terms(from_status, to, stale_after, due_incidents, worker, lease)
        c = t.flows.c
        ids = list(flow_ids)
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                ids = [
                    r[0]
                    for r in conn.execute(
                        sa.select(c.id).where(c.id.in_(ids), allowed).with_for_update(skip_locked=True)
                    )
                ]
                if not ids:
                    return set()
            stmt = sa.update(t.flows).where(c.id.in_(ids), allowed).values(**values).returning(c.id)
            return {r[0] for r in conn.execute(stmt)}

    def renew_claim(self, flow_id: str, worker: str, lease: dt.timedelta) -> bool:
        """Extend `worker`'s lease on a flow it holds; False when it no longer holds it."""
        c = t.flows.c
        now = utcnow()
        stmt = (
            sa.update(t.flows)
            .where(c.id == flow_id, c.claimed_by == worker, c.status == str(lifecycle.IN_PROGRESS))
            .values(lease_until=now + lease)
        )
        with self.engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def release_claims(self, worker: str) -> list[str]:
        """Give up `worker`'s claims on flows in progress (a graceful stop, `relais.run_loop`): their lease
        ends now, so the next claim takes them over at once. Returns their ids."""
        c = t.flows.c
        held = sa.and_(c.status == str(lifecycle.IN_PROGRESS), c.claimed_by == worker)
        with self.engine.begin() as conn:
            ids = [r[0] for r in conn.execute(sa.select(c.id).where(held))]
            if ids:
                conn.execute(
                    sa.update(t.flows)
                    .where(held, c.id.in_(ids))
                    .values(claimed_by=None, lease_until=utcnow() - dt.timedelta(seconds=1))
                )
        return ids

    def expire_dead_claims(self, is_dead: Callable[[str | None], bool | None]) -> list[str]:
        """End at once the leases of flows in progress whose worker's process is gone (`flows.domain.lease.is_dead`),
        so that the next claim takes them over without waiting for the lease. Returns their ids."""
        c = t.flows.c
        with self.engine.connect() as conn:
            held = conn.execute(
                sa.select(c.id, c.claimed_by).where(c.status == str(lifecycle.IN_PROGRESS), c.claimed_by.is_not(None))
            ).all()
        dead = [fid for fid, by in held if is_dead(by)]
        if dead:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.update(t.flows)
                    .where(c.id.in_(dead), c.status == str(lifecycle.IN_PROGRESS))
                    .values(lease_until=utcnow() - dt.timedelta(seconds=1))
                )
        return dead

    def status_counts(self) -> dict[str, int]:
        q = sa.select(t.flows.c.status, sa.func.count()).group_by(t.flows.c.status)
        with self.engine.connect() as conn:
            return {s: n for s, n in conn.execute(q)}


def reprocess_reason(reason: str | None) -> str:
    """The reason the rerun's history entries give (actor ops): French first, then ops' own words."""
    said = " ".join((reason or "").split())[:1000]
    return "Retraitement demandé par ops" + (f" : {said}" if said else "")


def _forget_rejected(conn: sa.Connection, flow_id: str) -> None:
    """Forget a reopened flow's rejected invoices (a current fatal finding), to be judged again: the flow's
    own findings and theirs are kept, marked superseded, and so are its return flows and their deliveries
    not sent yet (never sent: the next integration report replaces them); their invoice rows (the current
    state) and numbers go. Their history stays: the rerun's entries follow (`flows.store.history`)."""
    i, e, o = t.invoices.c, t.validation_errors.c, t.outbox.c
    rejected = sa.select(e.invoice_id).where(
        e.flow_id == flow_id, e.flag == "fatal", e.invoice_id.is_not(None), current_findings()
    )
    ids = [r[0] for r in conn.execute(rejected.distinct())]
    supersede_findings(conn, flow_id, utcnow(), ids)
    if ids:
        conn.execute(sa.delete(t.invoice_numbers).where(t.invoice_numbers.c.invoice_id.in_(ids)))
        supersede_outbox(conn, o.invoice_id.in_(ids))
        conn.execute(sa.delete(t.invoices).where(i.id.in_(ids)))
    supersede_outbox(conn, sa.and_(o.flow_id == flow_id, o.kind == str(OutboxKind.RETURN)))


def _claim_terms(
    from_status: Iterable[FlowStatus],
    to: FlowStatus,
    stale_after: dt.timedelta | None,
    due_incidents: bool,
    worker: str | None,
    lease: dt.timedelta | None,
) -> tuple[sa.ColumnElement[bool], dict[str, object]]:
    """The condition a flow must meet to be claimed, and what claiming it writes (`FlowsRepo.claim_flow`)."""
    from_status = list(from_status)
    for source in from_status:
        lifecycle.check_transition(source, to)
    if stale_after is not None or lease is not None:
        lifecycle.check_transition(to, to)
    if due_incidents:
        lifecycle.check_transition(lifecycle.RETRIED_WHEN_DUE, to)
    c = t.flows.c
    now = utcnow()
    allowed: sa.ColumnElement[bool] = c.status.in_([str(s) for s in from_status])
    if stale_after is not None:
        allowed = sa.or_(allowed, sa.and_(c.status == str(to), c.updated_at < now - stale_after))
    if lease is not None:
        allowed = sa.or_(allowed, sa.and_(c.status == str(to), sa.or_(c.lease_until.is_(None), c.lease_until < now)))
    if due_incidents:
        allowed = sa.or_(allowed, sa.and_(c.status == str(lifecycle.RETRIED_WHEN_DUE), c.retry_at <= now))
    values: dict[str, object] = {"status": str(to), "updated_at": now}
    # Ops' reason for a rerun holds for the run they asked for (claimed from the queue they put it in);
    # a later retry or takeover is the platform's own (`flows.store.history.RERUN_REASON`).
    values["reprocess_reason"] = sa.case((c.status == str(lifecycle.REQUEUED), c.reprocess_reason), else_=sa.null())
    if lease is not None:
        values.update(claimed_by=worker, lease_until=now + lease)
    return allowed, values
