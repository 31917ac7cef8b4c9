"""The sender's side of the API (issue 20, section 4), through the real server: a partner lists its own
flows (filters, cursor), "no report yet" (202) is told apart from "unknown flow" (404), repeating an
invoice's current status changes nothing (200), and the API's default port is not Airflow's."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from flows.directory import importer as directory
from flows.store import tables as t
from relais import generate as gen
from relais.api import auth
from relais.api.config import ApiConfig
from relais.api.serve import server as api_server
from relais.cli import main
from relais.compose import Runtime
from relais.runner import run_once
from relais.settings import Settings
from tests.support.api_server import client, make_token, serving
from tests.support.helpers import drop
from tests.support.waiting import wait_until

A = "21103837732046"


@dataclasses.dataclass
class World:
    rt: Runtime
    server: object
    flows: dict[str, list[str]]  # partner -> its flow ids, oldest first
    op_a: str  # token of op-a
    op_b: str  # token of op-b
    recipient: str  # token of structure A
    pending: str  # op-a's flow uploaded through the API, not processed yet

    def client(self, token: str) -> httpx.Client:
        return client(self.server, token)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("api_flows")
    rt = Runtime.open(Settings.from_env(tmp / "home", stable_seconds=0.0, workers=0))
    try:
        path = tmp / "annuaire.json"
        path.write_text(json.dumps(gen.directory_document(gen.sample_directory(), "test-1")))
        directory.import_file(rt.store, path)
        recipients = [r for r in gen.sample_directory() if r.siret == A]
        batches = [
            ("op-a", "Factures-Mars.zip", 0.0, 1),
            ("op-b", "autre.zip", 0.0, 2),
            ("op-a", "rejets.zip", 1.0, 3),
            ("op-a", "factures-avril.zip", 0.0, 4),
        ]
        for partner, name, invalid, seed in batches:
            [p] = gen.write_batch(
                tmp / f"g{seed}", "ubl", 2, 1, batch="zip", recipients=recipients, invalid_ratio=invalid, seed=seed
            )
            drop(rt, partner, name, p.read_bytes())
            run_once(rt)  # one at a time: ids in the order above
        flows: dict[str, list[str]] = {}
        for f in reversed(rt.store.list_flows(limit=100)):
            flows.setdefault(f.partner, []).append(f.id)
        with rt.store.engine.begin() as conn:  # op-a's flows received a month apart (the store keeps seconds)
            for month, flow_id in enumerate(flows["op-a"], 1):
                when = dt.datetime(2026, month, 1, tzinfo=dt.UTC)
                conn.execute(sa.update(t.flows).where(t.flows.c.id == flow_id).values(received_at=when))
        with serving(rt) as server:
            op_a = make_token(rt, auth.PARTNER, partner="op-a")[0]
            with client(server, op_a) as c:
                r = c.post("/api/v1/flows", params={"name": "en-cours.xml"}, content=p.read_bytes())
                assert r.status_code == 201, r.text
            yield World(
                rt=rt,
                server=server,
                flows=flows,
                op_a=op_a,
                op_b=make_token(rt, auth.PARTNER, partner="op-b")[0],
                recipient=make_token(rt, auth.RECIPIENT, siret=A)[0],
                pending=r.json()["flow_id"],
            )
    finally:
        rt.close()


def _ids(page: httpx.Response) -> list[str]:
    assert page.status_code == 200, page.text
    return [f["flow_id"] for f in page.json()["flows"]]


def test_a_partner_lists_its_own_flows_only(world: World) -> None:
    mine = [*world.flows["op-a"], world.pending][::-1]  # newest first
    with world.client(world.op_a) as c:
        page = c.get("/api/v1/flows")
        assert _ids(page) == mine and page.json()["next_cursor"] is None
        first = page.json()["flows"][0]
        assert first["status"] == "IN_RECU" and first["channel"] == "api" and first["name"] == "en-cours.xml"
    with world.client(world.op_b) as c:
        assert _ids(c.get("/api/v1/flows")) == world.flows["op-b"]
        assert _ids(c.get("/api/v1/flows", params={"name": "factures"})) == []  # op-a's names: not found
    with world.client(world.recipient) as c:
        assert c.get("/api/v1/flows").status_code == 403


def test_filters(world: World) -> None:
    a = world.flows["op-a"]
    with world.client(world.op_a) as c:
        assert _ids(c.get("/api/v1/flows", params={"status": "IN_REJETE"})) == [a[1]]
        both = c.get("/api/v1/flows", params=[("status", "in_rejete"), ("status", "IN_RECU")])
        assert _ids(both) == [world.pending, a[1]]
        assert _ids(c.get("/api/v1/flows", params={"name": "FACTURES"})) == [a[2], a[0]]  # any case, a part
        assert _ids(c.get("/api/v1/flows", params={"name": "%"})) == []  # no wildcard
        march = "2026-03-01T00:00:00Z"
        assert _ids(c.get("/api/v1/flows", params={"since": march, "status": "IN_INTEGRE"})) == [a[2]]
        assert _ids(c.get("/api/v1/flows", params={"until": march})) == [a[1], a[0]]
        assert _ids(c.get("/api/v1/flows", params={"since": "2026-02-01T00:00:00", "until": march})) == [a[1]]
        future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
        assert _ids(c.get("/api/v1/flows", params={"since": future})) == []
        bad = c.get("/api/v1/flows", params={"status": "INTEGRE"})
        assert bad.status_code == 422 and bad.json()["problems"][0]["loc"] == ["query", "status", "0"]
        assert "IN_INTEGRE_PARTIEL" in bad.json()["problems"][0]["msg"]  # the valid values are named


def test_cursor_pages_through_every_flow_once(world: World) -> None:
    seen, cursor = [], None
    with world.client(world.op_a) as c:
        while True:
            page = c.get("/api/v1/flows", params={"limit": 1, **({"cursor": cursor} if cursor else {})})
            seen += _ids(page)
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
            assert cursor == seen[-1]  # a flow id, as `relais flows --cursor`
        assert seen == [*world.flows["op-a"], world.pending][::-1]
        assert c.get("/api/v1/flows", params={"cursor": "garbage"}).status_code == 422
        # another partner's id as a cursor pages through this partner's older flows, nothing else
        assert set(_ids(c.get("/api/v1/flows", params={"cursor": world.flows["op-b"][0]}))) <= set(seen)


def test_no_report_yet_is_202_and_unknown_is_404(world: World) -> None:
    with world.client(world.op_a) as c:
        r = c.get(f"/api/v1/flows/{world.pending}/report")
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["flow_id"] == world.pending and body["status"] == "IN_RECU" and body["code"]
        assert "processed" in body["detail"]
        done = c.get(f"/api/v1/flows/{world.flows['op-a'][0]}/report")
        assert done.status_code == 200 and b"<CPPStatut" in done.content
        unknown = c.get("/api/v1/flows/CPP0000009999/report")
        assert unknown.status_code == 404
    with world.client(world.op_b) as c:
        other = c.get(f"/api/v1/flows/{world.pending}/report")  # op-a's flow, not processed: still 404
        assert other.status_code == 404 and other.content == unknown.content


def test_repeating_the_current_status_is_idempotent(world: World) -> None:
    [flow] = world.flows["op-b"]
    invoice = next(i.id for i in world.rt.store.iter_invoices(flow))
    with world.client(world.recipient) as c:
        url = f"/api/v1/invoices/{invoice}/status"
        first = c.post(
            url, json={"status": "SUSPENDUE", "reason": "bon de commande manquant", "reason_code": "ENGAGEMENT"}
        )
        assert first.status_code == 200, first.text
        history = world.rt.store.invoice_history(invoice)
        again = c.post(url, json={"status": "06", "reason": "relance"})
        assert again.status_code == 200, again.text
        assert again.json() == first.json()  # the entry that gave it its status
        assert world.rt.store.invoice_history(invoice) == history  # nothing recorded
        row = world.rt.store.audit_rows()[-1]
        assert (row.action, row.outcome, row.http_status) == ("invoice.status", "ok", 200)
        assert "unchanged" in (row.detail or "")
        illegal = c.post(url, json={"status": "MISE_EN_PAIEMENT"})
        assert illegal.status_code == 409 and illegal.json()["current"] == "SUSPENDUE"


def test_the_api_does_not_take_airflow_s_port() -> None:
    assert "[default: 8091;" in CliRunner().invoke(main, ["api", "serve", "--help"]).output
    assert api_server(None).config.port == 8091  # type: ignore[arg-type]


def test_the_server_processes_uploads_itself_when_asked(tmp_path) -> None:
    """`relais api serve --process`: an uploaded flow is processed by the server, no `relais run` needed;
    without it (every other test here) the upload waits IN_RECU."""
    rt = Runtime.open(Settings.from_env(tmp_path / "home", stable_seconds=0.0, workers=0))
    try:
        path = tmp_path / "annuaire.json"
        path.write_text(json.dumps(gen.directory_document(gen.sample_directory(), "test-1")))
        directory.import_file(rt.store, path)
        recipients = [r for r in gen.sample_directory() if r.siret == A]
        [batch] = gen.write_batch(tmp_path / "g", "ubl", 2, 1, batch="zip", recipients=recipients, seed=9)
        token = make_token(rt, auth.PARTNER, partner="op-a")[0]
        with serving(rt, ApiConfig(process=True)) as server, client(server, token) as c:
            r = c.post("/api/v1/flows", params={"name": "direct.zip"}, content=batch.read_bytes())
            assert r.status_code == 201, r.text
            flow_id = r.json()["flow_id"]
            wait_until(
                lambda: c.get(f"/api/v1/flows/{flow_id}").json()["status"] == "IN_INTEGRE",
                60,
                "the uploaded flow to be IN_INTEGRE",
                every=0.2,
            )
            report = c.get(f"/api/v1/flows/{flow_id}/report")
            assert report.status_code == 200 and b"<CPPStatut" in report.content
        # the server's stop stopped its processor (it was looked up under the ASGI wrappers)
        assert not [t for t in threading.enumerate() if t.name == "relais-api-processor"]
        assert (rt.settings.outbox_dir("op-a") / f"CR_{flow_id}_IN_INTEGRE.xml").is_file()  # sent as run does
        assert len(list(rt.settings.delivery_dir.rglob("*.xml"))) == 2
    finally:
        rt.close()
