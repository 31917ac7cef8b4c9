"""The AFNOR XP Z12-013 Flow Service (docs/reform.md §3) through the real server (uvicorn on 127.0.0.1, httpx
and curl clients), on SQLite and PostgreSQL: every request and answer of these tests is validated by
openapi-core against the official contract file (the corpus's flow-service-1.3.0.json)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import http.server
import json
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flows.directory import importer as directory
from relais import generate as gen
from relais.api import auth
from relais.compose import Runtime
from relais.runner import run_once, send_webhooks
from relais.settings import Settings
from tests.conftest import PG_URL, private_schema
from tests.support.api_server import make_token, serving

A = "21103837732046"
CONTRACT = ""
HOST = "https://api.flow.company.com"  # the contract's default server, to which openapi-core matches paths


@pytest.fixture(scope="module")
def contract(corpus: Path):
    from openapi_core import OpenAPI

    global CONTRACT
    CONTRACT = str(corpus / "france-rfe" / "xp-z12-013" / "flow-service-1.3.0.json")
    return OpenAPI.from_file_path(CONTRACT)


@dataclasses.dataclass
class World:
    rt: Runtime
    url: str
    token: str
    other: str  # op-b's token
    recipient: str  # a recipient token (403 here)
    invoice: bytes  # a valid UBL invoice
    bad_invoice: bytes
    contract: object

    def client(self, token: str | None = None) -> httpx.Client:
        hdrs = {"Authorization": f"Bearer {token or self.token}"} if token != "" else {}
        return httpx.Client(base_url=self.url, headers=hdrs, timeout=30)


def check(w: World, r: httpx.Response, *, request: bool = True) -> httpx.Response:
    """Validate the request (unless told) and the answer against the official contract."""
    from openapi_core.testing import MockRequest, MockResponse

    req = r.request
    path = req.url.path
    ctype = req.headers.get("content-type", "application/json").split(";")[0]
    mock = MockRequest(
        HOST,
        req.method.lower(),
        path,
        args=dict(urllib.parse.parse_qsl(req.url.query.decode())),
        headers=dict(req.headers),
        data=(req.read() or None) if request else None,
        content_type=ctype,
    )
    if request:
        w.contract.validate_request(mock)  # type: ignore[attr-defined]
    rtype = r.headers.get("content-type", "").split(";")[0] or None
    answer = MockResponse(r.content, status_code=r.status_code, headers=dict(r.headers), content_type=rtype)
    w.contract.validate_response(mock, answer)  # type: ignore[attr-defined]
    return r


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory, contract) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("flow_service")
    extra: dict[str, str] = {}
    with private_schema() if request.param == "postgresql" else _nothing() as schema:
        if schema:
            extra = {"database_url": PG_URL, "database_schema": schema}
        rt = Runtime.open(Settings.from_env(tmp / "home", stable_seconds=0.0, workers=0, **extra))
        try:
            path = tmp / "annuaire.json"
            path.write_text(json.dumps(gen.directory_document(gen.sample_directory(), "test-1")))
            directory.import_file(rt.store, path)
            recipients = [r for r in gen.sample_directory() if r.siret == A]
            [good] = gen.write_batch(tmp / "g", "ubl", 1, 1, batch="none", recipients=recipients, seed=3)
            [bad] = gen.write_batch(
                tmp / "b", "ubl", 1, 1, batch="none", recipients=recipients, invalid_ratio=1.0, seed=4
            )
            with serving(rt) as server:
                yield World(
                    rt,
                    server.url,
                    make_token(rt, auth.PARTNER, partner="op-a")[0],
                    make_token(rt, auth.PARTNER, partner="op-b")[0],
                    make_token(rt, auth.RECIPIENT, siret=A)[0],
                    good.read_bytes(),
                    bad.read_bytes(),
                    contract,
                )
        finally:
            rt.close()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def flow_schema(w: World):
    from openapi_schema_validator import OAS30Validator

    spec = json.loads(Path(CONTRACT).read_text())
    return OAS30Validator({"$ref": "#/components/schemas/Flow", "components": spec["components"]})


def deposit(w: World, data: bytes, info: dict, token: str | None = None) -> httpx.Response:
    with w.client(token) as c:
        files = {
            "flowInfo": (None, json.dumps(info), "application/json"),
            "file": (info.get("name", "f.xml"), data, "application/xml"),
        }
        return c.post("/flow-service/v1/flows", files=files)


def test_deposit_process_get_and_fetch(world: World):
    sha = hashlib.sha256(world.invoice).hexdigest()
    r = check(
        world,
        deposit(world, world.invoice, {"name": "f1.xml", "flowSyntax": "UBL", "trackingId": "t-1", "sha256": sha}),
        request=False,
    )
    assert r.status_code == 202, r.text
    flow_id = r.json()["flowId"]
    assert r.json()["trackingId"] == "t-1" and r.json()["sha256"] == sha
    again = check(
        world,
        deposit(world, world.invoice, {"name": "f1.xml", "flowSyntax": "UBL", "trackingId": "t-1"}),
        request=False,
    )
    assert again.status_code == 202 and again.json()["flowId"] == flow_id  # the trackingId: one flow
    other = check(
        world,
        deposit(world, world.bad_invoice, {"name": "f1.xml", "flowSyntax": "UBL", "trackingId": "t-1"}),
        request=False,
    )
    assert other.status_code == 422 and other.json()["errorCode"] == "ALREADY_EXISTING_FLOW"
    with world.client() as c:
        pending = check(world, c.get(f"/flow-service/v1/flows/{flow_id}"))
        assert pending.json()["acknowledgement"]["status"] == "Pending"
        run_once(world.rt)
        got = check(world, c.get(f"/flow-service/v1/flows/{flow_id}"))
        assert got.json()["acknowledgement"]["status"] == "Ok", got.json()
        assert got.json()["flowDirection"] == "Out" and got.json()["trackingId"] == "t-1"
        original = check(world, c.get(f"/flow-service/v1/flows/{flow_id}", params={"docType": "Original"}))
        assert original.content == world.invoice
        assert (
            check(world, c.get(f"/flow-service/v1/flows/{flow_id}", params={"docType": "Converted"})).status_code == 404
        )
        found = check(world, c.post("/flow-service/v1/flows/search", json={"where": {"trackingId": "t-1"}}))
        assert [f["flowId"] for f in found.json()["results"]] == [flow_id]
    with world.client(world.other) as c:  # another partner sees nothing of it
        assert check(world, c.get(f"/flow-service/v1/flows/{flow_id}")).status_code == 404
        none = check(world, c.post("/flow-service/v1/flows/search", json={"where": {"trackingId": "t-1"}}))
        assert none.json()["results"] == []


def test_rejected_flow_has_its_findings(world: World):
    r = check(world, deposit(world, world.bad_invoice, {"name": "bad.xml", "flowSyntax": "UBL"}), request=False)
    run_once(world.rt)
    with world.client() as c:
        got = check(world, c.get(f"/flow-service/v1/flows/{r.json()['flowId']}")).json()
    assert got["acknowledgement"]["status"] in ("Error", "Ok")
    assert got["acknowledgement"]["details"], got  # the rule codes and messages of the findings
    assert all(d["reasonCode"] and d["reasonMessage"] for d in got["acknowledgement"]["details"])


@pytest.mark.parametrize(
    ("info", "data", "status", "code"),
    [
        ({"name": "x.xml", "flowSyntax": "FRR"}, b"<x/>", 422, "UNSUPPORTED_FLOW_SYNTAX"),
        ({"name": "x.xml", "flowSyntax": "CII"}, None, 422, "FLOW_TYPE_ERROR"),
        ({"name": "x.xml", "flowSyntax": "UBL", "sha256": "0" * 64}, None, 422, "CHECKSUM_MISMATCH"),
        ({"name": "x.xml"}, None, 400, "MISSING_REQUIRED_FIELD"),
        ({"name": "x.xml", "flowSyntax": "UBL"}, b"", 400, "EMPTY_FLOW"),
        ({"name": "x.xml", "flowSyntax": "XYZ"}, None, 400, "INVALID_REQUEST"),
    ],
)
def test_deposit_refusals(world: World, info, data, status, code):
    r = check(world, deposit(world, world.invoice if data is None else data, info), request=False)
    assert (r.status_code, r.json()["errorCode"]) == (status, code)


def test_size_limit_is_413(world: World, monkeypatch):
    monkeypatch.setattr(world.rt, "settings", dataclasses.replace(world.rt.settings, max_flow_bytes=100))
    r = check(world, deposit(world, world.invoice, {"name": "big.xml", "flowSyntax": "UBL"}), request=False)
    assert (r.status_code, r.json()["errorCode"]) == (413, "FILE_SIZE_EXCEEDED")


def test_auth_and_crafted_requests_answer_the_contracts_error(world: World):
    with world.client("") as c:
        assert (
            check(
                world, c.post("/flow-service/v1/flows/search", json={"where": {"ackStatus": "Ok"}}), request=False
            ).status_code
            == 401
        )
    with world.client("rls_0123456789abcdef_" + "A" * 43) as c:
        assert check(world, c.get("/flow-service/v1/webhooks"), request=False).status_code == 401
    with world.client(world.recipient) as c:
        assert check(world, c.get("/flow-service/v1/webhooks")).status_code == 403
    with world.client() as c:
        for body in (
            b"{",
            b"[]",
            b'{"where": {}}',
            b'{"where": {"ackStatus": "Ok"}, "limit": 0}',
            b'{"where": {"updatedAfter": "yesterday"}}',
            b'{"where": {"ackStatus": "Ok"}, "cursor": "%%%"}',
        ):
            r = c.post("/flow-service/v1/flows/search", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 400, (body, r.text)
            check(world, r, request=False)
        assert (
            check(world, c.get("/flow-service/v1/flows/x", params={"docType": "Nope"}), request=False).status_code
            == 400
        )
        assert check(world, c.delete("/flow-service/v1/webhooks/not-a-uuid"), request=False).status_code == 400
        assert check(world, c.get("/flow-service/v1/healthcheck")).status_code == 200


def test_search_pages_with_the_cursor(world: World):
    for i in range(3):
        deposit(world, world.invoice + b" " * (i + 1), {"name": f"p{i}.xml", "flowSyntax": "UBL"})
    seen: list[str] = []
    body: dict = {"where": {"flowDirection": ["Out"]}, "limit": 2}
    with world.client() as c:
        for _ in range(20):
            page = check(world, c.post("/flow-service/v1/flows/search", json=body)).json()
            seen += [f["flowId"] for f in page["results"]]
            if "nextCursor" not in page:
                break
            body["cursor"] = page["nextCursor"]
    assert len(seen) == len(set(seen)) >= 3


def test_curl_deposit_poll_fetch(world: World, tmp_path):
    f = tmp_path / "c.xml"
    f.write_bytes(world.invoice + b"\n\n")
    auth_h = f"Authorization: Bearer {world.token}"
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "-H",
            auth_h,
            "-F",
            'flowInfo={"name":"c.xml","flowSyntax":"UBL"};type=application/json',
            "-F",
            f"file=@{f};type=application/xml",
            f"{world.url}/flow-service/v1/flows",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    flow_id = json.loads(out.stdout)["flowId"]
    run_once(world.rt)
    meta = subprocess.run(
        ["curl", "-sS", "-H", auth_h, f"{world.url}/flow-service/v1/flows/{flow_id}"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert json.loads(meta.stdout)["acknowledgement"]["status"] in ("Ok", "Error")
    raw = subprocess.run(
        ["curl", "-sS", "-H", auth_h, f"{world.url}/flow-service/v1/flows/{flow_id}?docType=Original"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert raw.stdout == f.read_bytes()


class _Receiver(http.server.BaseHTTPRequestHandler):
    fail_once: set[str] = set()
    got: list[tuple[dict, bytes]] = []

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).got.append((dict(self.headers), data))
        failing = json.loads(data).get("flowId") in type(self).fail_once
        type(self).fail_once.discard(json.loads(data).get("flowId"))
        code = 500 if failing else 200
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_webhook_delivered_once_retried_after_500(world: World, monkeypatch):
    monkeypatch.setenv("RELAIS_WEBHOOK_ALLOW_LOOPBACK_HTTP", "1")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    _Receiver.got, _Receiver.fail_once = [], set()
    run_once(world.rt)  # the other tests' flows are closed before the subscription: not told
    try:
        with world.client() as c:
            bad = check(world, c.post("/flow-service/v1/webhooks", json={"callbackUrl": "http://10.0.0.1/h"}))
            assert bad.status_code == 400
            r = check(
                world,
                c.post(
                    "/flow-service/v1/webhooks",
                    json={"callbackUrl": f"http://127.0.0.1:{srv.server_port}/hook", "flowDirection": "Out"},
                ),
            )
            assert r.status_code == 201
            hook = r.json()
            listed = check(world, c.get("/flow-service/v1/webhooks")).json()
            assert hook["webhookId"] in listed["webhookIds"]
        flow_id = deposit(world, world.invoice + b"\n ", {"name": "wh.xml", "flowSyntax": "UBL"}).json()["flowId"]
        _Receiver.fail_once.add(flow_id)
        run_once(world.rt)
        send_webhooks(world.rt)  # the receiver answers 500: kept, retried later
        mine = lambda: [(h, p) for h, p in _Receiver.got if json.loads(p)["flowId"] == flow_id]  # noqa: E731
        assert len(mine()) == 1
        rows = [o for o in world.rt.store.outbox_for_flow(flow_id) if o.kind == "webhook"]
        assert len(rows) == 1 and rows[0].status == "pending" and rows[0].attempts == 1
        import sqlalchemy as sa

        from flows.store import tables as t

        with world.rt.store.engine.begin() as conn:  # its retry time has come
            conn.execute(sa.update(t.outbox).where(t.outbox.c.id == rows[0].id).values(next_attempt_at=None))
        # A new runtime on the same store (a restart): the event is not lost, sent once.
        again = Runtime.open(world.rt.settings)
        try:
            send_webhooks(again)
            send_webhooks(again)
        finally:
            again.close()
        assert len(mine()) == 2  # the failed post, then its retry: once delivered, never again
        headers, payload = mine()[-1]
        event = json.loads(payload)
        assert event["flowId"] == flow_id and event["acknowledgement"]["status"] in ("Ok", "Error")
        from connectors.webhook.channel import sign

        ts = int(headers["Afnor-Signature-Timestamp"])
        assert headers["Afnor-Signature"] == sign(payload, ts, base64.b64decode(hook["signingKey"]))
        flow_schema(world).validate(event)  # the payload is the contract's Flow object (its callback's body)
        with world.client() as c:
            assert check(world, c.delete(f"/flow-service/v1/webhooks/{hook['webhookId']}")).status_code == 204
            assert check(world, c.delete(f"/flow-service/v1/webhooks/{hook['webhookId']}")).status_code == 404
    finally:
        srv.shutdown()
