"""Faults under the pipeline: PostgreSQL connections killed mid-flow, a full disk while writing files.

(a) The Relais engine's PostgreSQL connections (found by their ``application_name``, set in the store URL)
are terminated with ``pg_terminate_backend`` from another thread at chosen moments of a flow: between two
queries (the pool's connections idle), at a query of the validation loop, in the middle of the transaction
that saves a chunk of invoices, in the middle of the one that closes the flow. The flow then ends
IN_INCIDENTE with nothing recorded, or completed with all its invoices — never half-recorded — and a
later pass finishes it with every accepted invoice delivered exactly once.

(b) The disk is full (ENOSPC) while the return flow is written in the staging folder, or while a file
is written into a partner's out/ folder: the flow is an incident (retried) or the send is retried;
nothing is lost, no partial file is visible, and once the disk has room the next pass completes it.

(A worker killed while holding a claim is taken over at once: tests/flows/store/test_concurrency.py.)
"""

from __future__ import annotations

import errno
import os
import threading
import uuid
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.directory import importer as directory
from flows.domain.lifecycle import FlowStatus
from relais import generate as gen
from relais.compose import Runtime
from relais.runner import run_once
from relais.settings import Settings
from tests.conftest import PG_URL
from tests.support.helpers import drop

INVOICES = 24
CHUNK = 5


def _settings(home: Path, **overrides: object) -> Settings:
    return Settings.from_env(
        home,
        stable_seconds=0.0,
        workers=0,  # validation in process: the judge wrapper sees each verdict as it is used
        chunk_size=CHUNK,
        incident_backoff_seconds=0.0,  # an incident is due for its retry at once
        **overrides,
    )


def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RELAIS_"):
            monkeypatch.delenv(name)


def _drop_batch(rt: Runtime, tmp_path: Path, recipients, name: str = "batch.zip", seed: int = 5) -> None:
    [path] = gen.write_batch(
        tmp_path / "gen",
        "ubl",
        INVOICES,
        2,
        batch="zip",
        recipients=recipients,
        invalid_ratio=0.15,
        misrouted_ratio=0.1,
        seed=seed,
        name=name.removesuffix(".zip"),
    )
    drop(rt, "op-a", path.name, path.read_bytes())


def _assert_whole_or_nothing(rt: Runtime, flow_id: str) -> FlowStatus:
    """The flow as recorded: an incident with nothing of it kept, or closed with all of it. (An earlier
    run's unsent outbox rows are kept, superseded: never sent, left out here.)"""
    flow = rt.store.get_flow(flow_id)
    invoices = list(rt.store.iter_invoices(flow_id))
    rows = [r for r in rt.store.outbox_for_flow(flow_id) if r.status != "superseded"]
    if flow.status is FlowStatus.IN_INCIDENTE:
        assert invoices == [] and flow.invoice_count == 0, (len(invoices), flow.invoice_count)
        assert rows == [], rows
        assert flow.retry_at is not None and flow.incidents >= 1
    else:
        assert flow.status.is_final, flow.status
        assert len(invoices) == flow.invoice_count == INVOICES
        assert [r.kind for r in rows].count("return") == 1
    return flow.status


def _assert_completed_once(rt: Runtime, flow_id: str) -> None:
    """Closed, every accepted invoice delivered exactly once, one return flow in out/."""
    flow = rt.store.get_flow(flow_id)
    assert flow.status in (FlowStatus.IN_INTEGRE, FlowStatus.IN_INTEGRE_PARTIEL), flow.status
    invoices = list(rt.store.iter_invoices(flow_id))
    assert len(invoices) == flow.invoice_count == INVOICES
    rows = [r for r in rt.store.outbox_for_flow(flow_id) if r.status != "superseded"]  # earlier runs': never sent
    assert {str(r.status) for r in rows} == {"sent"}, [(r.kind, r.status, r.last_error) for r in rows]
    deliveries = Counter(r.invoice_id for r in rows if r.kind == "delivery")
    accepted = [inv.id for inv in invoices if not inv.status.is_rejected]
    assert accepted and len(accepted) < INVOICES  # the workload has rejected invoices too
    assert deliveries == Counter(accepted), deliveries
    for inv in invoices:
        if not inv.status.is_rejected:
            assert inv.delivered_to and Path(inv.delivered_to).is_file()
    delivered = [p for p in rt.settings.delivery_dir.rglob("*") if p.is_file()]
    assert sorted(p.stem for p in delivered) == sorted(accepted)
    out = rt.settings.outbox_dir(flow.partner)
    assert len(list(out.glob(f"CR_{flow.id}_*.xml"))) == 1
    assert not [p for p in rt.settings.home.rglob(".relais*")], "a temporary file was left"
    assert rt.archive.verify(flow.sha256)


# ---- (a) PostgreSQL connections killed mid-flow -------------------------------------------


class Killer:
    """Terminates every PostgreSQL backend whose application_name is `app`, from its own thread and its
    own connection; `arm(n)` does it just before the n-th statement the main thread sends next (that
    statement then meets a dead connection)."""

    def __init__(self, app: str) -> None:
        self.app = app
        self.admin = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
        self.main = threading.get_ident()
        self.countdown: int | None = None
        self.killed: list[tuple[int, str | None]] = []  # (pid, state) of the backends terminated
        self.hit: list[str] = []  # the statements that met a dead connection

    def terminate_now(self) -> None:
        def run() -> None:
            with self.admin.connect() as conn:
                rows = conn.execute(
                    sa.text(
                        "SELECT pid, state, pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                        " WHERE application_name = :app AND pid <> pg_backend_pid()"
                    ),
                    {"app": self.app},
                ).all()
            self.killed += [(r.pid, r.state) for r in rows]

        thread = threading.Thread(target=run, name="pg-killer")
        thread.start()
        thread.join(30)

    def arm(self, statements: int) -> None:
        self.countdown = statements

    def before_cursor_execute(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self.countdown is None or threading.get_ident() != self.main:
            return
        self.countdown -= 1
        if self.countdown <= 0:
            self.countdown = None
            self.terminate_now()
            self.hit.append(statement.split("\n")[0][:80])

    def close(self) -> None:
        self.admin.dispose()


@pytest.fixture
def pg_runtime(tmp_path, monkeypatch, pg_schema, directory_file):
    _clean_env(monkeypatch)
    app = f"relais-test-{uuid.uuid4().hex[:12]}"
    rt = Runtime.open(
        _settings(tmp_path / "home", database_url=f"{PG_URL}?application_name={app}", database_schema=pg_schema)
    )
    directory.import_file(rt.store, directory_file[0])
    killer = Killer(app)
    sa.event.listen(rt.store.engine, "before_cursor_execute", killer.before_cursor_execute)
    try:
        yield rt, killer
    finally:
        killer.close()
        rt.close()


def test_the_store_url_names_the_engines_connections(pg_runtime):
    rt, killer = pg_runtime
    with rt.store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT current_setting('application_name')")).scalar() == killer.app
        assert conn.execute(sa.text("SHOW search_path")).scalar() == rt.settings.database_schema


def _after_documents(rt: Runtime, monkeypatch: pytest.MonkeyPatch, n: int, then) -> None:
    """Call `then()` once the judge has handed over `n` verdicts."""
    real = rt.pipeline.judge.judge_all

    def judge_all(jobs, **kw):
        for k, item in enumerate(real(jobs, **kw), 1):
            if k == n:
                then()
            yield item

    monkeypatch.setattr(rt.pipeline.judge, "judge_all", judge_all)


def _arm_in(rt: Runtime, monkeypatch: pytest.MonkeyPatch, killer: Killer, method: str, statement: int) -> None:
    """Kill the connections at the `statement`-th statement of the first call of `rt.store.<method>`."""
    real = getattr(rt.store, method)
    calls = []

    def wrapped(*a, **kw):
        calls.append(1)
        if len(calls) == 1:
            killer.arm(statement)
        return real(*a, **kw)

    monkeypatch.setattr(rt.store, method, wrapped)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "moment",
    ["idle-between-queries", "validation-query", "mid-save-transaction", "mid-close-transaction"],
)
def test_postgresql_connections_killed_mid_flow(pg_runtime, tmp_path, monkeypatch, directory_file, moment):
    rt, killer = pg_runtime
    _drop_batch(rt, tmp_path, directory_file[1])
    if moment == "idle-between-queries":  # the pool's connections are killed while checked in
        _after_documents(rt, monkeypatch, 7, killer.terminate_now)
    elif moment == "validation-query":  # the next query after the 7th verdict meets a dead connection
        _after_documents(rt, monkeypatch, 7, lambda: killer.arm(1))
    elif moment == "mid-save-transaction":  # the 2nd chunk's transaction: its first statement went through
        _after_documents(rt, monkeypatch, CHUNK + 1, lambda: _arm_in(rt, monkeypatch, killer, "save_invoices", 2))
    else:  # closing: the flow's row updated, then the return flow's outbox row meets a dead connection
        _arm_in(rt, monkeypatch, killer, "finish_flow", 2)

    [flow] = run_once(rt)
    assert killer.killed, "no connection of the engine was found to kill"
    status = _assert_whole_or_nothing(rt, flow.id)
    if moment == "idle-between-queries":
        assert not killer.hit
        assert status is not FlowStatus.IN_INCIDENTE  # pool_pre_ping replaces the dead connections
    else:
        assert killer.hit, "the kill did not meet a statement"
        assert status is FlowStatus.IN_INCIDENTE  # the failed statement is an internal error: retried
        errors = rt.store.flow_errors(flow.id)
        assert any("OperationalError" in e.message for e in errors), [e.message for e in errors]
    monkeypatch.undo()  # the judge and the store as they are
    [again] = run_once(rt) or [rt.store.get_flow(flow.id)]
    assert again.id == flow.id
    _assert_completed_once(rt, flow.id)
    run_once(rt)  # nothing more is sent
    _assert_completed_once(rt, flow.id)


# ---- (b) a full disk -------------------------------------------------------------------------


class FullDisk:
    """`os.fdopen` whose files, for paths `matches(path)` picks, take `room` bytes then raise ENOSPC."""

    def __init__(self, matches, room: int = 200) -> None:
        self.matches, self.room = matches, room
        self.real = os.fdopen
        self.full = True
        self.failures: list[str] = []

    def __call__(self, fd, *args, **kwargs):
        f = self.real(fd, *args, **kwargs)
        try:
            path = Path(os.readlink(f"/proc/self/fd/{f.fileno()}"))
        except OSError:
            return f
        if not self.full or not self.matches(path):
            return f
        return _NoRoom(f, self, path)


class _NoRoom:
    def __init__(self, f, disk: FullDisk, path: Path) -> None:
        self._f, self._disk, self._path, self._written = f, disk, path, 0

    def write(self, data) -> int:
        room = self._disk.room - self._written
        if len(data) > room:
            self._f.write(bytes(data[: max(0, room)]))  # what fitted is on disk: a partial file
            self._f.flush()
            self._written = self._disk.room
            self._disk.failures.append(str(self._path))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self._path))
        self._written += len(data)
        return self._f.write(data)

    def __getattr__(self, name: str):
        return getattr(self._f, name)

    def __enter__(self) -> _NoRoom:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


@pytest.fixture
def sqlite_runtime(tmp_path, monkeypatch, directory_file):
    _clean_env(monkeypatch)
    rt = Runtime.open(_settings(tmp_path / "home"))
    directory.import_file(rt.store, directory_file[0])
    yield rt
    rt.close()


def test_a_full_staging_disk_while_writing_the_return_flow(sqlite_runtime, tmp_path, monkeypatch, directory_file):
    rt = sqlite_runtime
    staging = rt.settings.staging_dir
    disk = FullDisk(lambda p: p.parent == staging and "cr-" in p.name)
    monkeypatch.setattr(os, "fdopen", disk)
    _drop_batch(rt, tmp_path, directory_file[1])
    [flow] = run_once(rt)
    assert disk.failures, "the return flow was not written through os.fdopen"
    assert flow.status is FlowStatus.IN_INCIDENTE, flow.status
    _assert_whole_or_nothing(rt, flow.id)
    errors = [e.message for e in rt.store.flow_errors(flow.id)]
    assert any("No space left on device" in m for m in errors), errors
    assert rt.archive.verify(flow.sha256)  # the file is kept: nothing lost
    assert not list(rt.settings.inbox("op-a").iterdir())
    assert not [p for p in rt.settings.home.rglob(".relais*")], "the partial return flow was left"
    out = rt.settings.outbox_dir("op-a")
    assert not out.is_dir() or not list(out.iterdir()), "a file is visible in out/"
    assert not [p for p in rt.settings.delivery_dir.rglob("*") if p.is_file()]
    # still full: the retry fails the same way, the flow stays a retried incident
    [still] = run_once(rt)
    assert still.status is FlowStatus.IN_INCIDENTE and still.incidents == 2
    _assert_whole_or_nothing(rt, flow.id)
    disk.full = False  # room again
    [done] = run_once(rt)
    assert done.id == flow.id
    _assert_completed_once(rt, flow.id)


def test_a_full_disk_in_the_partners_out_folder_is_retried(sqlite_runtime, tmp_path, monkeypatch, directory_file):
    from flows.pipeline import dispatch
    from flows.store import tables as t

    rt = sqlite_runtime
    out = rt.settings.outbox_dir("op-a")
    disk = FullDisk(lambda p: p.parent == out and p.name.startswith(".relais"))
    monkeypatch.setattr(os, "fdopen", disk)
    _drop_batch(rt, tmp_path, directory_file[1])
    [flow] = run_once(rt)
    assert disk.failures, "the return flow was not written through os.fdopen"
    assert flow.status in (FlowStatus.IN_INTEGRE, FlowStatus.IN_INTEGRE_PARTIEL)
    [row] = [r for r in rt.store.outbox_for_flow(flow.id) if r.kind == "return"]
    assert str(row.status) == "pending" and row.attempts >= 1 and "No space left" in (row.last_error or "")
    assert not list(out.iterdir()), "a partial file is visible in out/"
    disk.full = False
    with rt.store.engine.begin() as conn:  # its retry time has come
        conn.execute(sa.update(t.outbox).where(t.outbox.c.id == row.id).values(next_attempt_at=None))
    assert dispatch.dispatch(rt.outbound).failed == 0
    _assert_completed_once(rt, flow.id)
