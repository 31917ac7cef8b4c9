"""The HTTP API (relais/api) through the real server (uvicorn on 127.0.0.1) and a plain HTTP client."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import socket
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from flows.directory import importer as directory
from flows.domain.model import Channel, FlowStatus, InvoiceStatus
from relais import generate as gen
from relais.api import auth
from relais.cli import main
from relais.compose import Runtime
from relais.runner import run_once
from relais.settings import Settings
from tests.conftest import PG_URL, private_schema
from tests.support.api_server import client, make_token, serving
from tests.support.helpers import drop
from tests.support.waiting import wait_until

A = "21103837732046"  # service code required: RESTAURATION, DSI
B = "26085540839041"
MAX_FLOW_BYTES = 64 * 1024
WALK = ["SERVICE_FAIT", "MANDATEE", "MISE_A_DISPOSITION_COMPTABLE", "COMPTABILISEE", "MISE_EN_PAIEMENT"]


@dataclasses.dataclass
class World:
    rt: Runtime
    url: str
    server: object
    batch: bytes
    flow_id: str
    a: str  # token of structure A
    b: str  # token of structure B
    partner: str  # token of op-a, the sender
    other_partner: str  # token of op-b
    a_invoices: list[str]
    b_invoices: list[str]

    def client(self, token: str | None) -> httpx.Client:
        return client(self.server, token)  # type: ignore[arg-type]


def _runtime(tmp_path: Path, **db: str) -> Runtime:
    settings = Settings.from_env(tmp_path / "home", stable_seconds=0.0, max_flow_bytes=MAX_FLOW_BYTES, workers=0, **db)
    rt = Runtime.open(settings)
    path = tmp_path / "annuaire.json"
    path.write_text(json.dumps(gen.directory_document(gen.sample_directory(), "test-1")))
    directory.import_file(rt.store, path)
    return rt


@contextlib.contextmanager
def _world(tmp_path: Path, rt: Runtime) -> Iterator[World]:
    recipients = [r for r in gen.sample_directory() if r.siret in (A, B)]
    [path] = gen.write_batch(tmp_path / "gen", "ubl", 8, 2, batch="zip", recipients=recipients, seed=5)
    batch = path.read_bytes()
    drop(rt, "op-a", path.name, batch)
    [flow] = run_once(rt)
    assert flow.status is FlowStatus.IN_INTEGRE, flow
    invoices = list(rt.store.iter_invoices(flow.id))
    assert all(i.status is InvoiceStatus.MISE_A_DISPOSITION for i in invoices)
    a_ids = [i.id for i in invoices if i.buyer_siret == A]
    b_ids = [i.id for i in invoices if i.buyer_siret == B]
    assert len(a_ids) >= 3 and b_ids
    with serving(rt) as server:
        yield World(
            rt=rt,
            url=server.url,
            server=server,
            batch=batch,
            flow_id=flow.id,
            a=make_token(rt, auth.RECIPIENT, siret=A)[0],
            b=make_token(rt, auth.RECIPIENT, siret=B)[0],
            partner=make_token(rt, auth.PARTNER, partner="op-a")[0],
            other_partner=make_token(rt, auth.PARTNER, partner="op-b")[0],
            a_invoices=a_ids,
            b_invoices=b_ids,
        )


@pytest.fixture
def world(tmp_path):
    rt = _runtime(tmp_path)
    try:
        with _world(tmp_path, rt) as w:
            yield w
    finally:
        rt.close()


@pytest.fixture
def pg_world(tmp_path):
    """The same world on a private schema of PostgreSQL."""
    with private_schema("relais_api") as schema:
        rt = _runtime(tmp_path, database_url=PG_URL, database_schema=schema)
        try:
            with _world(tmp_path, rt) as w:
                yield w
        finally:
            rt.close()


def _state(rt: Runtime, invoice_id: str):
    return rt.store.invoice_status(invoice_id), [e.as_json() for e in rt.store.invoice_history(invoice_id)]


def _last_audit(rt: Runtime):
    rows = rt.store.audit_rows()
    assert rows, "no audit row"
    return rows[-1]


def _last_refusal(rt: Runtime):
    """The latest counted refusal of an anonymous client (flows/store/audit.py)."""
    from flows.store.audit import AuditQuery

    counted, _ = rt.store.refusal_page(AuditQuery(actor="anonymous"))
    assert counted, "no counted refusal"
    return max(counted, key=lambda c: c.last_at)


def _refused(w: World, response: httpx.Response, code: int, invoice_id: str | None, before=None, action=None):
    """The response has `code` and a JSON error, an audit row says so, and the invoice did not change."""
    assert response.status_code == code, response.text
    assert "error" in response.json()
    row = _last_audit(w.rt)
    assert row.http_status == code and row.outcome in ("refused", "error"), row
    if action:
        assert row.action == action, row
    if invoice_id is not None and before is not None:
        assert _state(w.rt, invoice_id) == before
    return row


def _archive_objects(rt: Runtime) -> set[Path]:
    return {p for p in (rt.settings.archive_dir / "objects").rglob("*") if p.is_file()}


# ---- tokens ----------------------------------------------------------------------


def test_token_create_list_revoke_through_the_cli(world: World) -> None:
    home = str(world.rt.settings.home)
    runner = CliRunner()
    made = runner.invoke(main, ["--home", home, "api", "token", "create", "--siret", A, "--service", "DSI"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    token_id, secret = auth.parse(token) or ("", "")
    assert token_id and secret
    listed = runner.invoke(main, ["--home", home, "api", "token", "list", "--json"])
    assert listed.exit_code == 0
    assert secret not in listed.output and auth.hash_secret(secret) not in listed.output
    rows = {r["id"]: r for r in json.loads(listed.stdout)["tokens"]}
    assert rows[token_id]["principal"] == f"recipient:{A}/DSI" and rows[token_id]["revoked_at"] is None
    stored = world.rt.store.get_token(token_id)
    assert stored is not None and stored.secret_hash == auth.hash_secret(secret)  # only the hash is kept

    with world.client(token) as c:
        assert c.get("/api/v1/invoices").status_code == 200
        assert runner.invoke(main, ["--home", home, "api", "token", "revoke", token_id]).exit_code == 0
        r = c.get("/api/v1/invoices")
        assert r.status_code == 401 and r.json()["reason"] == "revoked token"
    assert _last_refusal(world.rt).last_status == 401  # anonymous: counted per client and minute
    assert runner.invoke(main, ["--home", home, "api", "token", "revoke", token_id]).exit_code == 1
    world.rt.settings.inbox("op-z").mkdir(parents=True, exist_ok=True)  # a known (folder) partner
    partner = runner.invoke(main, ["--home", home, "api", "token", "create", "--partner", "op-z"])
    assert partner.exit_code == 0 and partner.stdout.startswith("rls_")
    for bad in (["--siret", "123"], ["--siret", A, "--partner", "p"], ["--partner", "p", "--service", "X"], []):
        assert runner.invoke(main, ["--home", home, "api", "token", "create", *bad]).exit_code == 2, bad
    listed = runner.invoke(main, ["--home", home, "api", "token", "list"])
    assert "révoqué" in listed.output and "partner:op-z" in listed.output


@pytest.mark.parametrize(
    "header",
    [None, "Bearer nonsense", "Basic abc", "Bearer rls_0123456789abcdef_" + "A" * 43, "forged", "revoked"],
    ids=["missing", "malformed", "not-bearer", "unknown", "forged", "revoked"],
)
def test_bad_tokens_are_refused_with_401_and_audited(world: World, header: str | None) -> None:
    if header == "forged":  # a real token id with another secret
        token = make_token(world.rt, auth.RECIPIENT, siret=A)[0]
        header = "Bearer " + token[: -len("AAAA")] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    elif header == "revoked":
        token, token_id = make_token(world.rt, auth.RECIPIENT, siret=A)
        assert world.rt.store.revoke_token(token_id)
        header = f"Bearer {token}"
    invoice = world.a_invoices[0]
    before = _state(world.rt, invoice)
    with httpx.Client(base_url=world.url) as c:
        headers = {"Authorization": header} if header else {}
        r = c.post(f"/api/v1/invoices/{invoice}/status", json={"status": "SERVICE_FAIT"}, headers=headers)
    assert r.status_code == 401 and "error" in r.json(), r.text
    assert _state(world.rt, invoice) == before
    assert r.headers["www-authenticate"] == "Bearer"
    # Anonymous refusals are counted per (client, minute, action), not one audit row each (issue 19).
    row = _last_refusal(world.rt)
    assert row.action == "invoice.status"
    assert (row.principal, row.client, row.last_status, row.last_target) == ("anonymous", "127.0.0.1", 401, invoice)


# ---- recipients ------------------------------------------------------------------


def test_recipient_happy_path(world: World) -> None:
    with world.client(world.a) as c:
        seen, cursor, pages = [], None, 0
        while True:
            params: dict[str, str | int] = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = c.get("/api/v1/invoices", params=params).json()
            seen += [i["id"] for i in page["invoices"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == world.a_invoices and pages == (len(world.a_invoices) + 1) // 2  # one flow: in position order
        assert not set(seen) & set(world.b_invoices)

        invoice = world.a_invoices[0]
        detail = c.get(f"/api/v1/invoices/{invoice}").json()
        stored = world.rt.store.api_invoice(invoice)
        assert stored is not None
        inv = stored[0]
        assert detail["buyer_siret"] == A and detail["number"] == inv.number
        assert detail["service_code"] == inv.service_code and detail["currency"] == "EUR"
        assert detail["amounts"]["total_with_vat"] == str(inv.total_with_vat)
        assert detail["status"] == {"code": "03", "label": "MISE_A_DISPOSITION"} and detail["errors"] == []

        r = c.get(f"/api/v1/invoices/{invoice}/file")
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
        with zipfile.ZipFile(io.BytesIO(world.batch)) as zf:
            assert r.content == zf.read(inv.entry_name)

        for status in WALK:
            r = c.post(f"/api/v1/invoices/{invoice}/status", json={"status": status, "reason": f"step {status}"})
            assert r.status_code == 200, r.text
            assert r.json()["status"] == status and r.json()["source"] == "api" and r.json()["actor"] == "recipient"
            row = _last_audit(world.rt)
            assert (row.action, row.outcome, row.http_status, row.target) == ("invoice.status", "ok", 200, invoice)

        history = c.get(f"/api/v1/invoices/{invoice}/history").json()
        assert [h["code"] for h in history] == ["01", "03", "07", "08", "09", "10", "11"]
        assert history == [{**e.as_json(), "reason_label": None} for e in world.rt.store.invoice_history(invoice)]

        # by code, then by label
        r = c.post(f"/api/v1/invoices/{world.a_invoices[1]}/status", json={"status": "07"})
        assert r.json()["status"] == "SERVICE_FAIT"
        paid = c.get("/api/v1/invoices", params={"status": "MISE_EN_PAIEMENT"}).json()["invoices"]
        assert [i["id"] for i in paid] == [invoice]
        done = c.get("/api/v1/invoices", params={"status": "07"}).json()["invoices"]
        assert [i["id"] for i in done] == [world.a_invoices[1]]
        assert c.get("/api/v1/invoices", params={"since": "2999-01-01T00:00:00Z"}).json()["invoices"] == []
        assert len(c.get("/api/v1/invoices", params={"since": "2000-01-01T00:00:00"}).json()["invoices"]) == len(
            world.a_invoices
        )
        assert c.get("/api/v1/invoices", params={"cursor": "garbage!"}).status_code == 422
        assert c.get("/api/v1/invoices", params={"status": "PAYEE"}).status_code == 422


def test_a_service_token_sees_only_its_service(world: World) -> None:
    facts = {i.id: i.service_code for i in world.rt.store.iter_invoices(world.flow_id)}
    service = facts[world.a_invoices[0]]
    assert service
    token = make_token(world.rt, auth.RECIPIENT, siret=A, service_code=service)[0]
    with world.client(token) as c:
        ids = [i["id"] for i in c.get("/api/v1/invoices").json()["invoices"]]
        assert ids == [i for i in world.a_invoices if facts[i] == service]
        others = [i for i in world.a_invoices if facts[i] != service]
        for other in others:
            assert c.get(f"/api/v1/invoices/{other}").status_code == 404


def test_illegal_transition_is_409_naming_the_allowed_moves(world: World) -> None:
    invoice = world.a_invoices[0]
    before = _state(world.rt, invoice)
    with world.client(world.a) as c:
        r = c.post(f"/api/v1/invoices/{invoice}/status", json={"status": "MISE_EN_PAIEMENT"})
    _refused(world, r, 409, invoice, before, action="invoice.status")
    body = r.json()
    assert body["current"] == "MISE_A_DISPOSITION"
    assert body["allowed"] == ["REJETEE", "SUSPENDUE", "SERVICE_FAIT", "A_RECYCLER"]


def test_nothing_moves_after_a_final_status(world: World) -> None:
    invoice = world.a_invoices[0]
    with world.client(world.a) as c:
        for status in WALK:
            assert c.post(f"/api/v1/invoices/{invoice}/status", json={"status": status}).status_code == 200
        before = _state(world.rt, invoice)
        for status in ("SERVICE_FAIT", "REJETEE", "MISE_A_DISPOSITION", "COMPTABILISEE"):
            body = {"status": status, "reason": "why not", "reason_code": "AUTRE"}
            r = c.post(f"/api/v1/invoices/{invoice}/status", json=body)
            _refused(world, r, 409, invoice, before)
            assert r.json()["current"] == "MISE_EN_PAIEMENT" and r.json()["allowed"] == []


@pytest.mark.parametrize("status", ["REJETEE", "SUSPENDUE", "05", "06"])
def test_rejection_and_suspension_need_a_reason(world: World, status: str) -> None:
    invoice = world.a_invoices[0]
    before = _state(world.rt, invoice)
    with world.client(world.a) as c:
        for body in ({"status": status}, {"status": status, "reason": "   ", "reason_code": "AUTRE"}):
            r = c.post(f"/api/v1/invoices/{invoice}/status", json=body)
            _refused(world, r, 422, invoice, before, action="invoice.status")
        # a reason without its code (docs/billing-frameworks.md §6): 422 naming the codes allowed
        r = c.post(f"/api/v1/invoices/{invoice}/status", json={"status": status, "reason": "missing PO"})
        _refused(world, r, 422, invoice, before, action="invoice.status")
        assert "ENGAGEMENT" in r.json()["allowed"] and r.json()["reason_code"] is None
        body = {"status": status, "reason": "missing PO", "reason_code": "ENGAGEMENT"}
        r = c.post(f"/api/v1/invoices/{invoice}/status", json=body)
        assert r.status_code == 200 and r.json()["reason"] == "missing PO", r.text
        assert r.json()["reason_code"] == "ENGAGEMENT" and r.json()["reason_label"]


def test_unknown_status_and_bad_bodies_are_422(world: World) -> None:
    invoice = world.a_invoices[0]
    before = _state(world.rt, invoice)
    with world.client(world.a) as c:
        for body in ({"status": "PAYEE"}, {"status": "99"}, {}, {"status": "SERVICE_FAIT", "extra": 1}):
            r = c.post(f"/api/v1/invoices/{invoice}/status", json=body)
            _refused(world, r, 422, invoice, before, action="invoice.status")
        r = c.post(f"/api/v1/invoices/{invoice}/status", content=b"not json", headers={"content-type": "text/plain"})
        _refused(world, r, 422, invoice, before)


def test_another_structures_invoice_is_404_like_an_unknown_one(world: World) -> None:
    theirs = world.b_invoices[0]
    before = _state(world.rt, theirs)
    with world.client(world.a) as c:
        unknown = c.get("/api/v1/invoices/CPP0000000099-00001")
        _refused(world, unknown, 404, None)
        for method, path, body in [
            ("GET", "", None),
            ("GET", "/file", None),
            ("GET", "/history", None),
            ("POST", "/status", {"status": "SERVICE_FAIT"}),
        ]:
            r = c.request(method, f"/api/v1/invoices/{theirs}{path}", json=body)
            row = _refused(world, r, 404, theirs, before)
            assert row.target == theirs
            assert r.content == unknown.content
            u = c.request(method, f"/api/v1/invoices/CPP0000000099-00001{path}", json=body)
            assert u.status_code == 404 and u.content == unknown.content
    with world.client(world.b) as c:
        assert c.get(f"/api/v1/invoices/{theirs}").status_code == 200


def test_a_partner_token_is_not_a_recipient_token(world: World) -> None:
    invoice = world.a_invoices[0]
    before = _state(world.rt, invoice)
    with world.client(world.partner) as c:
        r = c.post(f"/api/v1/invoices/{invoice}/status", json={"status": "SERVICE_FAIT"})
        _refused(world, r, 403, invoice, before)
        assert c.get("/api/v1/invoices").status_code == 403
        history = c.get(f"/api/v1/invoices/{invoice}/history")  # the sender reads its own invoice's history
        assert history.status_code == 200 and [h["code"] for h in history.json()] == ["01", "03"]
    with world.client(world.other_partner) as c:
        r = c.get(f"/api/v1/invoices/{invoice}/history")
        _refused(world, r, 404, invoice, before)
    with world.client(world.a) as c:
        assert c.post("/api/v1/flows", content=b"<x/>").status_code == 403


def test_a_corrupted_archive_object_is_never_served(world: World) -> None:
    invoice = world.a_invoices[0]
    flow = world.rt.store.get_flow(world.flow_id)
    assert flow is not None
    obj = world.rt.settings.archive_dir / "objects" / flow.sha256[:2] / flow.sha256[2:4] / flow.sha256  # private
    assert obj.is_file()
    os.chmod(obj, stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(obj.read_bytes())
    data[-30] ^= 0xFF  # in the zip's central directory: entries still readable, hash wrong
    obj.write_bytes(bytes(data))
    with world.client(world.a) as c:
        r = c.get(f"/api/v1/invoices/{invoice}/file")
    assert r.status_code == 500
    body = r.json()
    assert "corrupt" in body["error"] and body["sha256"] == flow.sha256
    with zipfile.ZipFile(io.BytesIO(world.batch)) as zf:
        entry = zf.read(zf.namelist()[0])
    assert entry[:200] not in r.content
    row = _last_audit(world.rt)
    assert (row.action, row.outcome, row.http_status, row.target) == ("invoice.file", "error", 500, invoice)


# ---- senders: the "mode API" -------------------------------------------------------


def _batch(tmp_path: Path, n: int = 3, seed: int = 11, name: str = "upload") -> bytes:
    recipients = [r for r in gen.sample_directory() if r.siret in (A, B)]
    [path] = gen.write_batch(
        tmp_path / f"up-{seed}", "ubl", n, 2, batch="zip", recipients=recipients, seed=seed, name=name
    )
    return path.read_bytes()


def test_upload_then_process_then_report(world: World, tmp_path: Path) -> None:
    data = _batch(tmp_path)
    with world.client(world.partner) as c:
        r = c.post(
            "/api/v1/flows",
            content=data,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Disposition": 'attachment; filename="../b 1.zip"',
            },
        )
        assert r.status_code == 201, r.text
        flow_id = r.json()["flow_id"]
        assert r.json()["status"] == "IN_RECU"
        flow = world.rt.store.get_flow(flow_id)
        assert flow is not None and flow.channel is Channel.API and flow.partner == "op-a"
        assert flow.original_name == "b_1.zip" and world.rt.archive.read(flow.sha256) == data
        row = _last_audit(world.rt)
        assert (row.action, row.outcome, row.http_status, row.target, row.principal) == (
            "flow.upload",
            "ok",
            201,
            flow_id,
            "partner:op-a",
        )
        pending = c.get(f"/api/v1/flows/{flow_id}/report")  # not processed yet: 202, not "unknown" (404)
        assert pending.status_code == 202 and pending.json()["status"] == "IN_RECU", pending.text
        info = c.get(f"/api/v1/flows/{flow_id}").json()
        assert info["status"] == "IN_RECU" and info["channel"] == "api"

        processed = run_once(world.rt)
        assert [f.id for f in processed] == [flow_id]
        info = c.get(f"/api/v1/flows/{flow_id}").json()
        assert info["status"] == "IN_INTEGRE" and info["invoice_count"] == 3 and info["received_at"]
        report = c.get(f"/api/v1/flows/{flow_id}/report")
        assert report.status_code == 200 and report.headers["content-type"].startswith("application/xml")
        assert b"<CPPStatut" in report.content and flow_id.encode() in report.content
        sha = world.rt.store.return_flow_sha256(flow_id)
        assert sha and report.content == world.rt.archive.read(sha)

    with world.client(world.other_partner) as c:
        for path in (f"/api/v1/flows/{flow_id}", f"/api/v1/flows/{flow_id}/report"):
            r = c.get(path)
            _refused(world, r, 404, None)
            assert r.content == c.get("/api/v1/flows/CPP0000009999").content


def test_upload_idempotency_key(world: World, tmp_path: Path) -> None:
    data = _batch(tmp_path)
    headers = {"Idempotency-Key": "k-1"}
    with world.client(world.partner) as c:
        first = c.post("/api/v1/flows", params={"name": "a.zip"}, content=data, headers=headers)
        assert first.status_code == 201
        again = c.post("/api/v1/flows", params={"name": "a.zip"}, content=data, headers=headers)
        assert again.status_code == 200 and again.json()["flow_id"] == first.json()["flow_id"]
        other = c.post("/api/v1/flows", params={"name": "a.zip"}, content=_batch(tmp_path, seed=12), headers=headers)
        _refused(world, other, 409, None)
        assert other.json()["flow_id"] == first.json()["flow_id"]
    api_flows = [f for f in world.rt.store.list_flows(limit=100) if f.channel is Channel.API]
    assert [f.id for f in api_flows] == [first.json()["flow_id"]]


def test_upload_over_the_size_limit_is_413_and_records_nothing(world: World) -> None:
    objects, flows = _archive_objects(world.rt), world.rt.store.list_flows(limit=100)
    big = os.urandom(MAX_FLOW_BYTES + 4096)

    def chunks():
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    with world.client(world.partner) as c:
        declared = c.post("/api/v1/flows", content=big)  # Content-Length over the limit: refused before reading
        _refused(world, declared, 413, None, action="flow.upload")
        streamed = c.post("/api/v1/flows", content=chunks())  # chunked: stopped when the cap is reached
        _refused(world, streamed, 413, None, action="flow.upload")
    assert _archive_objects(world.rt) == objects
    assert world.rt.store.list_flows(limit=100) == flows
    assert not [p for p in world.rt.settings.staging_dir.iterdir() if p.name.startswith(".api-")]


def test_a_truncated_upload_records_nothing(world: World) -> None:
    objects, flows = _archive_objects(world.rt), world.rt.store.list_flows(limit=100)
    audits = len(world.rt.store.audit_rows())
    host, port = world.url.removeprefix("http://").split(":")
    body = b"<Invoice>" + b"x" * 5000
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            b"POST /api/v1/flows?name=t.xml HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {world.partner}\r\nContent-Type: application/octet-stream\r\n".encode()
            + f"Content-Length: {len(body) + 10000}\r\n\r\n".encode()
            + body
        )
        s.shutdown(socket.SHUT_WR)
        try:
            while s.recv(65536):
                pass
        except OSError:
            pass
    wait_until(lambda: len(world.rt.store.audit_rows()) != audits, 10, "the refused upload's audit row")
    row = _last_audit(world.rt)
    assert (row.action, row.outcome) == ("flow.upload", "refused"), row
    assert _archive_objects(world.rt) == objects
    assert world.rt.store.list_flows(limit=100) == flows
    assert not [p for p in world.rt.settings.staging_dir.iterdir() if p.name.startswith(".api-")]


def test_unknown_routes_are_json_and_audited(world: World) -> None:
    with world.client(world.a) as c:
        r = c.get("/api/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]
    assert _last_refusal(world.rt).last_status == 404  # no token looked at yet: an anonymous refusal, counted


# ---- the same on PostgreSQL ----------------------------------------------------------


@pytest.mark.postgres
def test_on_postgresql(pg_world: World, tmp_path: Path) -> None:
    test_illegal_transition_is_409_naming_the_allowed_moves(pg_world)  # on a_invoices[0], still 03
    test_another_structures_invoice_is_404_like_an_unknown_one(pg_world)
    test_recipient_happy_path(pg_world)
    test_upload_idempotency_key(pg_world, tmp_path)
