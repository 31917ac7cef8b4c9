"""Billing circuits through the API (docs/billing-frameworks.md §5, §6), on SQLite and PostgreSQL, through the
real server (uvicorn on 127.0.0.1) and plain HTTP clients: an actor's token sees the pieces whose turn it holds,
the framework filter and fields, reason codes (422 naming the allowed ones), billing files as timelines, the
reasons list, and conflicting status changes at once (one 200, one 409).

The pieces are recorded directly (`Store.save_invoices`, with their framework, parties, holder and billing file
set as the intake records them) into a flow the platform processed; every test makes its own, with SIRETs of
its own, so that the tests sharing one server never see each other's pieces.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flows.directory import importer as directory
from flows.domain.frameworks import Framework
from flows.domain.lifecycle import InvoiceStatus
from flows.domain.model import Invoice, invoice_id
from relais import generate as gen
from relais.api import auth
from relais.compose import Runtime
from relais.runner import run_once
from relais.settings import Settings
from tests.conftest import PG_URL, private_schema
from tests.support.api_server import make_token, serving
from tests.support.helpers import drop

A = "21103837732046"  # a structure of the sample directory: the generated flow's invoices are its
_positions = itertools.count(1000)
_sirets = itertools.count(1)
DUE = dt.datetime(2030, 1, 16, tzinfo=dt.UTC)


class Api:
    def __init__(self, rt: Runtime, url: str) -> None:
        self.rt, self.url = rt, url
        self.flow_id = rt.store.list_flows(limit=1)[0].id

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def token(self, siret: str, service_code: str | None = None) -> str:
        return make_token(self.rt, auth.RECIPIENT, siret=siret, service_code=service_code)[0]

    def partner(self, partner: str) -> str:
        return make_token(self.rt, auth.PARTNER, partner=partner)[0]

    def piece(self, framework: Framework, status: InvoiceStatus, holder: str | None, **facts: object) -> Invoice:
        """Record one accepted piece in the processed flow (sent by op-a), as the intake records it."""
        position = next(_positions)
        inv = Invoice(
            id=invoice_id(self.flow_id, position),
            flow_id=self.flow_id,
            position=position,
            entry_name=f"piece-{position}.xml",
            number=f"P-{position}",
            currency="EUR",
            framework=framework,
            status=status,
            holder=holder,
            **facts,  # type: ignore[arg-type]
        )
        if inv.billing_file_id is None:
            inv.billing_file_id = inv.id
        self.rt.store.save_invoices([inv], [])
        return inv

    def status(self, piece: Invoice) -> tuple[InvoiceStatus, str | None, int]:
        """(status, holder, number of history entries) of a piece, as stored."""
        stored = self.rt.store.get_invoice(piece.id)
        assert stored is not None
        return stored.status, stored.holder, len(self.rt.store.invoice_history(piece.id))


def siret() -> str:
    return f"9{next(_sirets):013d}"


@contextlib.contextmanager
def _api(kind: str, tmp: Path) -> Iterator[Api]:
    db: dict[str, str] = {}
    schemas = contextlib.ExitStack()
    if kind == "postgresql":
        db = {"database_url": PG_URL, "database_schema": schemas.enter_context(private_schema("relais_circ"))}
    rt = Runtime.open(Settings.from_env(tmp / "home", stable_seconds=0.0, workers=0, **db))  # type: ignore[arg-type]
    try:
        path = tmp / "annuaire.json"
        path.write_text(json.dumps(gen.directory_document(gen.sample_directory(), "test-1")))
        directory.import_file(rt.store, path)
        recipients = [r for r in gen.sample_directory() if r.siret == A]
        [batch] = gen.write_batch(tmp / "gen", "ubl", 3, 1, batch="zip", recipients=recipients, seed=7)
        drop(rt, "op-a", batch.name, batch.read_bytes())
        run_once(rt)
        with serving(rt) as server:
            yield Api(rt, server.url)
    finally:
        rt.close()
        schemas.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request, tmp_path_factory) -> Iterator[Api]:
    with _api(request.param, tmp_path_factory.mktemp("circuits")) as a:
        yield a


def _ids(c: httpx.Client, **params: str) -> list[str]:
    r = c.get("/api/v1/invoices", params=params)
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["invoices"]]


# ---- who sees what ----------------------------------------------------------------------------------------


def test_an_actor_sees_only_the_pieces_whose_turn_it_holds(api: Api) -> None:
    buyer, v, moe, stranger = siret(), siret(), siret(), siret()
    a9 = api.piece(
        Framework.A9, InvoiceStatus.A_VALIDER_1, v, buyer_siret=buyer, service_code="DSI", validator_1=v, due_at=DUE
    )
    a10 = api.piece(Framework.A10, InvoiceStatus.A_VALIDER_1, v, buyer_siret=buyer, validator_1=v, moe_siret=moe)
    a4 = api.piece(Framework.A4, InvoiceStatus.MISE_A_DISPOSITION_MOE, moe, buyer_siret=buyer, moe_siret=moe)
    a15 = api.piece(
        Framework.A15, InvoiceStatus.MISE_A_DISPOSITION_MOA, buyer, buyer_siret=buyer, service_code="DSI",
        moe_siret=moe, previous_id=a4.id, billing_file_id=a4.id,
    )  # fmt: skip
    refused = api.piece(Framework.A9, InvoiceStatus.REFUSEE_1, None, buyer_siret=buyer, validator_1=v)
    newest_first = [a9.id, a10.id, a4.id, a15.id]  # one flow: in position order
    with api.client(api.token(v)) as c:
        assert _ids(c) == [a9.id, a10.id]
        detail = c.get(f"/api/v1/invoices/{a9.id}")
        assert detail.status_code == 200, detail.text
    with api.client(api.token(moe)) as c:
        assert _ids(c) == [a4.id]
    with api.client(api.token(buyer)) as c:
        assert _ids(c) == [a15.id]  # the MOA is the buyer when none is named; nothing else is its turn yet
        unknown = c.get(f"/api/v1/invoices/{invoice_id(api.flow_id, 99999)}")
        for other in (a9.id, a10.id, a4.id, refused.id):
            r = c.get(f"/api/v1/invoices/{other}")
            assert r.status_code == 404 and r.content == unknown.content
            assert c.get(f"/api/v1/invoices/{other}/history").status_code == 404
    # today's service restriction holds where the holder is the buyer, and only there
    with api.client(api.token(buyer, "DSI")) as c:
        assert _ids(c) == [a15.id]
    with api.client(api.token(buyer, "RESTAURATION")) as c:
        assert _ids(c) == [] and c.get(f"/api/v1/invoices/{a15.id}").status_code == 404
    with api.client(api.token(v, "RESTAURATION")) as c:
        assert _ids(c) == [a9.id, a10.id]
    with api.client(api.token(stranger)) as c:
        assert _ids(c) == []
    with api.client(api.token(A)) as c:  # the processed flow's invoices: the buyer's, as before
        plain = _ids(c)
        assert plain and not set(plain) & set(newest_first)


def test_framework_filter_and_circuit_fields(api: Api) -> None:
    buyer, v, moe = siret(), siret(), siret()
    a9 = api.piece(
        Framework.A9, InvoiceStatus.A_VALIDER_1, v, buyer_siret=buyer, service_code="DSI", validator_1=v, due_at=DUE
    )
    a10 = api.piece(Framework.A10, InvoiceStatus.A_VALIDER_1, v, buyer_siret=buyer, validator_1=v, moe_siret=moe)
    with api.client(api.token(v)) as c:
        assert _ids(c, framework="A9") == [a9.id]
        assert _ids(c, framework=" a10 ") == [a10.id]
        assert _ids(c, framework="A10_PROJET_DECOMPTE_MENSUEL_SOUSTRAITANT") == [a10.id]
        assert _ids(c, framework="A1") == []
        assert _ids(c, status="A_VALIDER_1") == [a9.id, a10.id] == _ids(c, status="20")
        assert _ids(c, status="A_VALIDER_1", framework="A10") == [a10.id]
        assert _ids(c, status="MISE_A_DISPOSITION_MOE") == []
        for bad in ("A26", "A0", "B4", "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0", "", "A9\x00"):
            r = c.get("/api/v1/invoices", params={"framework": bad})
            assert r.status_code == 422, (bad, r.text)
            [problem] = r.json()["problems"]
            assert problem["loc"] == ["query", "framework"] and "A1, A2" in problem["msg"] and "A25" in problem["msg"]
        [listed] = c.get("/api/v1/invoices", params={"framework": "A9"}).json()["invoices"]
        detail = c.get(f"/api/v1/invoices/{a9.id}").json()
    for body in (listed, detail):
        assert body["framework"] == "A9" and body["framework_label"] == "facture de sous-traitant"
        assert body["billing_file_id"] == a9.id and body["previous_id"] is None
        assert body["holder"] == v and dt.datetime.fromisoformat(body["due_at"]) == DUE
        assert body["status"] == {"code": "20", "label": "A_VALIDER_1"}
    with api.client(api.token(A)) as c:
        [first, *_] = c.get("/api/v1/invoices").json()["invoices"]
        assert first["framework"] == "A1" and first["framework_label"] == "facture"


# ---- acting -----------------------------------------------------------------------------------------------


def test_a_validator_validates_and_the_piece_goes_on_to_the_buyer(api: Api) -> None:
    buyer, v = siret(), siret()
    a9 = api.piece(Framework.A9, InvoiceStatus.A_VALIDER_1, v, buyer_siret=buyer, validator_1=v, due_at=DUE)
    with api.client(api.token(siret())) as c:  # not an actor of the piece: as if there were none
        r = c.post(f"/api/v1/invoices/{a9.id}/status", json={"status": "VALIDEE_1"})
        assert r.status_code == 404 and r.json() == {"error": "invoice not found"}
    with api.client(api.token(buyer)) as c:  # its buyer, but not its turn yet: no move is its
        r = c.post(f"/api/v1/invoices/{a9.id}/status", json={"status": "SERVICE_FAIT"})
        assert r.status_code == 409 and r.json()["current"] == "A_VALIDER_1" and r.json()["allowed"] == [], r.text
        assert c.get(f"/api/v1/invoices/{a9.id}").status_code == 404
    with api.client(api.token(v)) as c:
        r = c.post(f"/api/v1/invoices/{a9.id}/status", json={"status": "VALIDEE_1"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["status"], body["actor"], body["source"]) == ("VALIDEE_1", "validator", "api")
        assert [(e["status"], e["actor"]) for e in body["then"]] == [("MISE_A_DISPOSITION", "platform")]
        assert c.get(f"/api/v1/invoices/{a9.id}").status_code == 404  # its turn is over
        assert _ids(c) == []
    assert api.status(a9)[:2] == (InvoiceStatus.MISE_A_DISPOSITION, buyer)
    with api.client(api.token(buyer)) as c:
        assert _ids(c) == [a9.id]
        history = c.get(f"/api/v1/invoices/{a9.id}/history").json()
        assert [h["status"] for h in history] == ["A_VALIDER_1", "VALIDEE_1", "MISE_A_DISPOSITION"]
        r = c.post(f"/api/v1/invoices/{a9.id}/status", json={"status": "SERVICE_FAIT"})
        assert r.status_code == 200 and r.json()["actor"] == "recipient", r.text


def test_reason_codes_missing_unknown_or_disallowed_are_422_naming_the_allowed_ones(api: Api) -> None:
    buyer, v, moe = siret(), siret(), siret()
    a10 = api.piece(Framework.A10, InvoiceStatus.A_VALIDER_1, v, buyer_siret=buyer, validator_1=v, moe_siret=moe)
    a4 = api.piece(Framework.A4, InvoiceStatus.MISE_A_DISPOSITION_MOE, moe, buyer_siret=buyer, moe_siret=moe)
    before = api.status(a10), api.status(a4)
    with api.client(api.token(v)) as c:
        url = f"/api/v1/invoices/{a10.id}/status"
        r = c.post(url, json={"status": "REFUSEE_1", "reason_code": "NON_AGREE"})  # no text
        assert r.status_code == 422 and "reason is required" in r.json()["error"], r.text
        r = c.post(url, json={"status": "REFUSEE_1", "reason": "non agréé"})  # no code
        assert r.status_code == 422 and r.json()["reason_code"] is None, r.text
        assert "NON_AGREE" in r.json()["allowed"]
        r = c.post(url, json={"status": "REFUSEE_1", "reason": "non agréé", "reason_code": "NOPE"})
        assert r.status_code == 422 and r.json()["reason_code"] == "NOPE" and "NON_AGREE" in r.json()["allowed"]
        assert "unknown reason code" in r.json()["error"]
    with api.client(api.token(moe)) as c:
        url = f"/api/v1/invoices/{a4.id}/status"
        r = c.post(url, json={"status": "REFUSEE_MOE", "reason": "montants faux", "reason_code": "MONTANT"})
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["status"] == "REFUSEE_MOE" and body["reason_code"] == "MONTANT"
        assert "MONTANT" not in body["allowed"] and "AUTRE" in body["allowed"]
        assert (api.status(a10), api.status(a4)) == before  # nothing changed
        r = c.post(url, json={"status": "REFUSEE_MOE", "reason": "hors marché", "reason_code": "AUTRE"})
        assert r.status_code == 200, r.text
        assert r.json()["reason_code"] == "AUTRE" and r.json()["reason_label"].startswith("Autre motif")
    assert api.status(a4)[0] is InvoiceStatus.REFUSEE_MOE


def test_a_move_that_is_not_the_token_s_is_409_naming_its_moves(api: Api) -> None:
    buyer, moe = siret(), siret()
    a4 = api.piece(Framework.A4, InvoiceStatus.MISE_A_DISPOSITION_MOE, moe, buyer_siret=buyer, moe_siret=moe)
    before = api.status(a4)
    with api.client(api.token(moe)) as c:
        for status in ("TRANSMISE_MOA", "SERVICE_FAIT", "VALIDEE_1"):
            r = c.post(f"/api/v1/invoices/{a4.id}/status", json={"status": status})
            assert r.status_code == 409, r.text
            assert r.json()["current"] == "MISE_A_DISPOSITION_MOE"
            assert r.json()["allowed"] == ["PRISE_EN_COMPTE_MOE", "REFUSEE_MOE"]
    assert api.status(a4) == before


CRAFTED = [
    {"status": "REFUSEE_MOE", "reason": "x", "reason_code": "AUTRE\x00"},
    {"status": "REFUSEE_MOE", "reason": "x", "reason_code": "A" * 41},
    {"status": "REFUSEE_MOE", "reason": "x", "reason_code": 7},
    {"status": "REFUSEE_MOE", "reason": "x", "reason_code": ["AUTRE"]},
    {"status": "REFUSEE_MOE", "reason": "x", "reason_code": {"code": "AUTRE"}},
    {"status": "REFUSEE_MOE", "reason": "x", "reason_code": "é漢字🙂"},
    {"status": "REFUSEE_MOE", "reason": "x", "reason_code": ""},
    {"status": "REFUSEE_MOE", "reason": "\x00", "reason_code": "AUTRE"},
    {"status": "REFUSEE_MOE", "reason": "x" * 2001, "reason_code": "AUTRE"},
    {"status": ["REFUSEE_MOE"], "reason_code": "AUTRE"},
    {"status": "REFUSEE_MOE\x00", "reason": "x", "reason_code": "AUTRE"},
    {"status": "PRISE_EN_COMPTE_MOE", "reason_code": None, "extra": True},
]


def test_crafted_bodies_are_4xx_never_500(api: Api) -> None:
    buyer, moe = siret(), siret()
    a4 = api.piece(Framework.A4, InvoiceStatus.MISE_A_DISPOSITION_MOE, moe, buyer_siret=buyer, moe_siret=moe)
    before = api.status(a4)
    with api.client(api.token(moe)) as c:
        for body in CRAFTED:
            r = c.post(f"/api/v1/invoices/{a4.id}/status", json=body)
            assert r.status_code == 422, (body, r.status_code, r.text)
        r = c.post(f"/api/v1/invoices/{a4.id}/status", content=b'{"status": "REFUSEE_MOE", "reason_code": ')
        assert r.status_code == 422
    assert api.status(a4) == before


# ---- billing files ----------------------------------------------------------------------------------------


def test_a_billing_file_is_a_timeline_for_its_parties_only(api: Api) -> None:
    buyer, sub, v, moe, stranger = siret(), siret(), siret(), siret(), siret()
    a10 = api.piece(
        Framework.A10, InvoiceStatus.A_VALIDER_1, v, buyer_siret=buyer, supplier_id=sub, validator_1=v, moe_siret=moe
    )
    with api.client(api.token(v)) as c:
        assert c.post(f"/api/v1/invoices/{a10.id}/status", json={"status": "VALIDEE_1"}).status_code == 200
    with api.client(api.token(moe)) as c:
        r = c.post(f"/api/v1/invoices/{a10.id}/status", json={"status": "PRISE_EN_COMPTE_MOE"})
        assert r.status_code == 200, r.text
    a15 = api.piece(
        Framework.A15, InvoiceStatus.MISE_A_DISPOSITION_MOA, buyer, buyer_siret=buyer, supplier_id=sub,
        moe_siret=moe, previous_id=a10.id, billing_file_id=a10.id,
    )  # fmt: skip
    lone = api.piece(Framework.A1, InvoiceStatus.MISE_A_DISPOSITION, buyer, buyer_siret=siret())
    for who in (buyer, v, moe):
        with api.client(api.token(who)) as c:
            for path_id in (a10.id, a15.id):  # the file's id, or one of its pieces'
                r = c.get(f"/api/v1/billing-files/{path_id}")
                assert r.status_code == 200, (who, r.text)
                assert r.json()["id"] == a10.id
    body = r.json()
    assert [p["id"] for p in body["pieces"]] == [a10.id, a15.id]
    first, second = body["pieces"]
    assert (first["framework"], first["depositor"], first["status"]["label"]) == (
        "A10",
        "subcontractor",
        "PRISE_EN_COMPTE_MOE",
    )
    assert first["framework_label"] == "projet de décompte mensuel de sous-traitant" and first["holder"] == moe
    assert [h["status"] for h in first["history"]] == [
        "A_VALIDER_1",
        "VALIDEE_1",
        "MISE_A_DISPOSITION_MOE",
        "PRISE_EN_COMPTE_MOE",
    ]
    assert [h["actor"] for h in first["history"]] == ["platform", "validator", "platform", "moe"]
    assert (second["framework"], second["depositor"], second["previous_id"]) == ("A15", "moe", a10.id)
    assert [h["status"] for h in second["history"]] == ["MISE_A_DISPOSITION_MOA"]
    assert {"reason_code", "reason_label", "reason", "actor", "at"} <= set(second["history"][0])

    with api.client(api.token(stranger)) as c:
        unknown = c.get("/api/v1/billing-files/CPP0000000999-00001")
        assert unknown.status_code == 404
        for path_id in (a10.id, a15.id, lone.id, "x" * 65, "%00", "CPP%00"):
            r = c.get(f"/api/v1/billing-files/{path_id}")
            assert r.status_code == 404 and r.content == unknown.content, (path_id, r.text)
        assert c.get("/api/v1/billing-files/..%2F..").status_code == 404
    with api.client(api.token(buyer, "RESTAURATION")) as c:  # the buyer's other service: not its pieces
        r = c.get(f"/api/v1/billing-files/{a10.id}")
        assert r.status_code == 404 and r.content == unknown.content
    with api.client(api.partner("op-a")) as c:  # the sender of its pieces
        assert [p["id"] for p in c.get(f"/api/v1/billing-files/{a15.id}").json()["pieces"]] == [a10.id, a15.id]
    with api.client(api.partner("op-b")) as c:
        r = c.get(f"/api/v1/billing-files/{a10.id}")
        assert r.status_code == 404 and r.content == unknown.content
    with api.client(None) as c:
        assert c.get(f"/api/v1/billing-files/{a10.id}").status_code == 401


def test_reasons_list_with_its_version(api: Api) -> None:
    for token in (api.token(siret()), api.partner("op-b")):
        with api.client(token) as c:
            r = c.get("/api/v1/reasons")
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["version"] == "2026-12"
            by_code = {x["code"]: x for x in body["reasons"]}
            assert by_code["MONTANT"]["label_fr"] == "Erreur de montant"
            assert by_code["MONTANT"]["label_en"] == "Amount error"
            assert "REFUSEE_MOE" not in by_code["MONTANT"]["statuses"] and "REJETEE" in by_code["MONTANT"]["statuses"]
            assert "REFUSEE_MOE" in by_code["AUTRE"]["statuses"]
    with api.client(None) as c:
        assert c.get("/api/v1/reasons").status_code == 401


# ---- conflicting changes at once --------------------------------------------------------------------------


def _at_once(api: Api, token: str, piece: Invoice, bodies: list[dict[str, str]]) -> list[httpx.Response]:
    start = threading.Barrier(len(bodies))
    answers: list[httpx.Response | None] = [None] * len(bodies)
    clients = [api.client(token) for _ in bodies]

    def post(i: int) -> None:
        start.wait()
        answers[i] = clients[i].post(f"/api/v1/invoices/{piece.id}/status", json=bodies[i])

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for c in clients:
        c.close()
    assert all(a is not None for a in answers)
    return answers  # type: ignore[return-value]


def test_conflicting_changes_at_once_one_200_one_409(api: Api) -> None:
    for _round in range(3):
        buyer, v = siret(), siret()
        a10 = api.piece(Framework.A10, InvoiceStatus.A_VALIDER_1, v, buyer_siret=buyer, validator_1=v)
        plain = api.piece(Framework.A1, InvoiceStatus.MISE_A_DISPOSITION, buyer, buyer_siret=buyer)
        refuse = {"status": "REFUSEE_1", "reason": "non agréé", "reason_code": "NON_AGREE"}
        answers = _at_once(api, api.token(v), a10, [{"status": "VALIDEE_1"}, refuse])
        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
        [won] = [a for a in answers if a.status_code == 200]
        actions = [h for h in api.rt.store.invoice_history(a10.id) if h.actor.value == "validator"]
        assert [h.status.name for h in actions] == [won.json()["status"]]  # one validator's change recorded

        reject = {"status": "REJETEE", "reason": "doublon", "reason_code": "DOUBLON"}
        answers = _at_once(api, api.token(buyer), plain, [{"status": "A_RECYCLER"}, reject])
        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
        [won] = [a for a in answers if a.status_code == 200]
        assert api.status(plain)[0].label == won.json()["status"] and api.status(plain)[2] == 2
