"""The mode API's Idempotency-Key is reserved, not checked (issue 19, finding 1): concurrent uploads with one
key make exactly one flow, on SQLite and on PostgreSQL, through the real server and real concurrent clients.

- same bytes: every answer names the one flow; after processing there is one return flow and no RLS-T11
  duplicate rejection, and the invoices are delivered once;
- different bytes: one 201, the others 409 naming the flow that holds the key, and nothing of theirs is
  recorded or delivered.

Each runs as in one server (uploads with one key take turns) and as across several servers (no turns: the
store's claim alone decides).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flows.directory import importer as directory
from flows.domain.model import Channel, FlowStatus
from flows.domain.outbox import OutboxKind
from relais import generate as gen
from relais.api import auth, senders
from relais.compose import Runtime
from relais.runner import run_once
from relais.settings import Settings
from tests.support.api_server import make_token, serving

A, B = "21103837732046", "26085540839041"
CLIENTS = 6


@pytest.fixture
def rt(store_url, tmp_path):
    url, schema = store_url
    settings = Settings.from_env(
        tmp_path / "home", stable_seconds=0.0, workers=0, database_url=url, database_schema=schema
    )
    runtime = Runtime.open(settings)
    path = tmp_path / "annuaire.json"
    path.write_text(json.dumps(gen.directory_document(gen.sample_directory(), "test-1")))
    directory.import_file(runtime.store, path)
    try:
        yield runtime
    finally:
        runtime.close()


def _batch(tmp_path: Path, seed: int) -> bytes:
    recipients = [r for r in gen.sample_directory() if r.siret in (A, B)]
    [path] = gen.write_batch(tmp_path / f"b{seed}", "ubl", 3, 2, batch="zip", recipients=recipients, seed=seed)
    return path.read_bytes()


def _concurrently(url: str, token: str, bodies: list[bytes], key: str) -> list[httpx.Response]:
    """POST each body at once (one thread and one connection each, released together)."""
    start = threading.Barrier(len(bodies))
    out: list[httpx.Response | BaseException | None] = [None] * len(bodies)

    def post(i: int) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
            c.get("/healthz")  # connected before the start
            start.wait()
            try:
                out[i] = c.post(
                    "/api/v1/flows", params={"name": "upload.zip"}, content=bodies[i], headers={"Idempotency-Key": key}
                )
            except BaseException as e:  # reported below
                out[i] = e

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert all(isinstance(r, httpx.Response) for r in out), out
    return out  # type: ignore[return-value]


def _api_flows(rt: Runtime):
    return [f for f in rt.store.list_flows(limit=1000) if f.channel is Channel.API]


def _delivered(rt: Runtime) -> list[Path]:
    root = rt.settings.home / "delivery"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _return_flows(rt: Runtime) -> list[Path]:
    root = rt.settings.home / "dropzones"
    return sorted(p for p in root.rglob("out/CR_*") if p.is_file()) if root.exists() else []


def _processed_once(rt: Runtime, flow_id: str, invoices: int) -> None:
    """Processing makes one integrated flow, one return flow (CR_: its integration report), no duplicate,
    `invoices` deliveries."""
    processed = run_once(rt)
    assert [f.id for f in processed] == [flow_id]
    [flow] = processed
    assert flow.status is FlowStatus.IN_INTEGRE and flow.duplicate_of is None, flow
    assert not [f for f in rt.store.list_flows(limit=1000) if f.duplicate_of is not None]
    items = rt.store.outbox_for_flow(flow_id)
    assert len([i for i in items if i.kind is OutboxKind.RETURN]) == 1
    assert len([i for i in items if i.kind is OutboxKind.DELIVERY]) == invoices
    returns = _return_flows(rt)
    assert len(returns) == 1 and flow_id in returns[0].name and b"RLS-T11" not in returns[0].read_bytes()
    assert len(_delivered(rt)) == invoices


class _NoTurns:
    """As if every upload came to another server process: no per-key turns, only the store's claim."""

    @contextlib.contextmanager
    def held(self, partner: str, key: str) -> Iterator[None]:
        yield


@pytest.fixture(params=["one server", "several servers"])
def servers(request, monkeypatch) -> str:
    if request.param == "several servers":
        monkeypatch.setattr(senders, "_KEYS", _NoTurns())
    return request.param


def test_concurrent_same_bytes_make_one_flow(rt: Runtime, tmp_path: Path, servers: str) -> None:
    data = _batch(tmp_path, 21)
    token = make_token(rt, auth.PARTNER, partner="op-a")[0]
    with serving(rt) as server:
        answers = _concurrently(server.url, token, [data] * CLIENTS, "same-bytes")
        assert sorted(r.status_code for r in answers) == [200] * (CLIENTS - 1) + [201], [r.text for r in answers]
        named = {r.json()["flow_id"] for r in answers}
        assert len(named) == 1
        [flow] = _api_flows(rt)
        assert named == {flow.id}
        assert rt.store.api_upload("op-a", "same-bytes") == (flow.id, flow.sha256)
        _processed_once(rt, flow.id, 3)
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:  # a retry later
            again = c.post(
                "/api/v1/flows", params={"name": "upload.zip"}, content=data, headers={"Idempotency-Key": "same-bytes"}
            )
        assert again.status_code == 200 and again.json()["flow_id"] == flow.id
    assert [f.id for f in _api_flows(rt)] == [flow.id]


def test_concurrent_different_bytes_one_201_and_409s_that_record_nothing(
    rt: Runtime, tmp_path: Path, servers: str
) -> None:
    bodies = [_batch(tmp_path, 30 + i) for i in range(CLIENTS)]
    assert len(set(bodies)) == CLIENTS
    token = make_token(rt, auth.PARTNER, partner="op-a")[0]
    with serving(rt) as server:
        answers = _concurrently(server.url, token, bodies, "other-bytes")
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] + [409] * (CLIENTS - 1), [r.text for r in answers]
    [won] = [i for i, r in enumerate(answers) if r.status_code == 201]
    flow_id = answers[won].json()["flow_id"]
    assert {r.json()["flow_id"] for r in answers} == {flow_id}  # the 409s name the flow that holds the key
    [flow] = _api_flows(rt)
    assert flow.id == flow_id and rt.archive.read(flow.sha256) == bodies[won]
    _processed_once(rt, flow_id, 3)
    assert len(_delivered(rt)) == 3  # only the accepted upload's invoices were delivered


def test_keys_are_per_partner_and_uploads_without_a_key_are_unchanged(rt: Runtime, tmp_path: Path) -> None:
    data = _batch(tmp_path, 41)
    a = make_token(rt, auth.PARTNER, partner="op-a")[0]
    b = make_token(rt, auth.PARTNER, partner="op-b")[0]
    with serving(rt) as server:
        got = {}
        for who, token in (("op-a", a), ("op-b", b)):
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:
                r = c.post(
                    "/api/v1/flows", params={"name": f"{who}.zip"}, content=data, headers={"Idempotency-Key": "k"}
                )
                assert r.status_code == 201, r.text
                got[who] = r.json()["flow_id"]
        assert got["op-a"] != got["op-b"]
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {a}"}) as c:
            r = c.post("/api/v1/flows", params={"name": "other.zip"}, content=data)
            assert r.status_code == 201 and r.json()["flow_id"] not in got.values()


def test_the_store_claim_alone_makes_one_flow(rt: Runtime, tmp_path: Path) -> None:
    """Without the server's per-key turns (as between two API processes): the key's claim, in the
    transaction that records the flow, lets one upload through; the others record nothing."""
    from flows.domain.model import utcnow
    from flows.pipeline.intake import Arrival
    from flows.store.api import IdempotencyKeyTaken

    bodies = [_batch(tmp_path, 50 + i) for i in range(CLIENTS)]
    start = threading.Barrier(CLIENTS)
    got: list[object] = [None] * CLIENTS

    def ingest(i: int) -> None:
        start.wait()
        try:
            arrival = Arrival("op-a", Channel.API, f"u{i}.zip", written_at=utcnow())
            got[i] = rt.intake.ingest(arrival, bodies[i], idempotency_key="raw").flow.id
        except IdempotencyKeyTaken as e:
            got[i] = e
        except BaseException as e:  # reported below
            got[i] = repr(e)

    threads = [threading.Thread(target=ingest, args=(i,)) for i in range(CLIENTS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    won = [g for g in got if isinstance(g, str)]
    assert len(won) == 1 and won[0].startswith("CPP"), got
    assert all(isinstance(g, IdempotencyKeyTaken) and g.flow_id == won[0] for g in got if g is not won[0]), got
    assert [f.id for f in _api_flows(rt)] == won
