"""The API server's share of issue 19, through the real server: failed tokens throttled per address and
counted before they are checked (finding 2), headers on every answer, /docs off unless its assets are
installed, /readyz that tells anonymous callers only ready / not ready (finding 6)."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import types
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from flows.store.audit import AuditQuery
from tests.relais.api.test_api_params import Api, _api

pytestmark = pytest.mark.usefixtures("json_logs")  # tests here read the JSON log lines

UNKNOWN = "rls_0123456789abcdef_" + "A" * 43  # well formed: looked up, refused


@pytest.fixture
def api(tmp_path):
    with _api("sqlite", tmp_path) as a:
        yield a


def _together(n: int, request) -> list[httpx.Response]:  # a callable of a client
    start = threading.Barrier(n)
    out: list[object] = [None] * n

    def one(i: int) -> None:
        try:
            out[i] = request(i, start)
        except BaseException as e:  # reported below
            out[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert all(isinstance(r, httpx.Response) for r in out), out
    return out  # type: ignore[return-value]


def _get(url: str, token: str | None, path: str = "/api/v1/invoices", local: str | None = None):
    def request(_i: int, start: threading.Barrier) -> httpx.Response:
        transport = httpx.HTTPTransport(local_address=local) if local else None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with httpx.Client(base_url=url, headers=headers, timeout=30, transport=transport) as c:
            c.get("/healthz")  # connected before the start
            start.wait()
            return c.get(path)

    return request


# ---- finding 2: failed bearer tokens, counted before they are checked -------------------------------------


def test_concurrent_wrong_tokens_never_check_more_than_the_limit(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RELAIS_API_AUTH_FAILURES", "5")
    monkeypatch.setenv("RELAIS_API_AUTH_WINDOW_SECONDS", "6")
    with _api("sqlite", tmp_path) as api:
        answers = _together(12, _get(api.url, UNKNOWN))
        codes = sorted(r.status_code for r in answers)
        assert codes == [401] * 5 + [429] * 7, codes
        refused = [r for r in answers if r.status_code == 429]
        assert all(int(r.headers["retry-after"]) >= 1 and r.json()["error"] for r in refused)
        with api.client(api.recipient) as c:  # the address is throttled, valid token or not
            assert c.get("/api/v1/invoices").status_code == 429
            for _ in range(20):
                last = c.get("/api/v1/invoices", headers={"Authorization": f"Bearer {UNKNOWN}"})
                assert last.status_code == 429
        # The 5 refused tokens and the first 429 only (bounded), counted per client and minute, not one
        # audit row each (flows/store/audit.py).
        counted, _ = api.rt.store.refusal_page(AuditQuery(actor="anonymous"))
        assert sum(c.count for c in counted) == 6 and {c.client for c in counted} == {"127.0.0.1"}, counted
        assert not [r for r in api.rt.store.audit_rows() if r.principal == "anonymous"]
        other = httpx.HTTPTransport(local_address="127.0.0.2")  # another address is not concerned
        headers = {"Authorization": f"Bearer {api.recipient}"}
        with httpx.Client(base_url=api.url, headers=headers, transport=other) as c:
            assert c.get("/api/v1/invoices").status_code == 200
        time.sleep(int(last.headers["retry-after"]) + 0.5)  # the window passes
        with api.client(api.recipient) as c:
            assert c.get("/api/v1/invoices").status_code == 200


def test_valid_tokens_in_flight_wait_rather_than_being_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RELAIS_API_AUTH_FAILURES", "3")
    with _api("sqlite", tmp_path) as api:
        answers = _together(16, _get(api.url, api.recipient))
        assert [r.status_code for r in answers] == [200] * 16
        missing = _together(8, _get(api.url, None))  # no token is no guess: not counted
        assert [r.status_code for r in missing] == [401] * 8
        with api.client(api.recipient) as c:
            assert c.get("/api/v1/invoices").status_code == 200


def test_the_limit_can_be_turned_off(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RELAIS_API_AUTH_FAILURES", "0")
    with _api("sqlite", tmp_path) as api:
        assert [r.status_code for r in _together(8, _get(api.url, UNKNOWN))] == [401] * 8


# ---- finding 6: headers --------------------------------------------------------------------------------


def test_every_answer_has_nosniff_and_authenticated_ones_no_store(api: Api) -> None:
    invoice = next(i for i in api.rt.store.iter_invoices(api.flow_id) if i.buyer_siret == "21103837732046")
    answers: dict[str, httpx.Response] = {}
    with api.client(api.recipient) as c:
        answers["list"] = c.get("/api/v1/invoices")
        answers["invoice"] = c.get(f"/api/v1/invoices/{invoice.id}")
        answers["download"] = c.get(f"/api/v1/invoices/{invoice.id}/file")
        answers["422"] = c.get("/api/v1/invoices", params={"limit": "0"})
        answers["404"] = c.get("/api/v1/invoices/CPP0000000099-00001")
    with api.client(api.partner) as c:
        answers["report"] = c.get(f"/api/v1/flows/{api.flow_id}/report")
        answers["flow"] = c.get(f"/api/v1/flows/{api.flow_id}")
    with api.client(None) as c:
        answers["401"] = c.get("/api/v1/invoices")
        answers["healthz"] = c.get("/healthz")
        answers["readyz"] = c.get("/readyz")
        answers["unknown route"] = c.get("/nothing")
        openapi = c.get("/openapi.json")
    assert answers["download"].status_code == 200 and answers["report"].status_code == 200
    for what, r in answers.items():
        assert r.headers.get("x-content-type-options") == "nosniff", what
        assert r.headers.get("cache-control") == "no-store", what
        assert r.headers.get("x-frame-options") == "DENY", what
        assert "frame-ancestors 'none'" in r.headers.get("content-security-policy", ""), what
    assert openapi.status_code == 200 and openapi.headers["x-content-type-options"] == "nosniff"
    assert "no-store" not in openapi.headers.get("cache-control", "")  # public: a cache may keep it


def test_a_failure_answered_500_has_the_headers_too(api: Api, monkeypatch) -> None:
    def broken(*_a, **_k):
        raise RuntimeError("boom")

    monkeypatch.setattr(api.rt.store, "recipient_invoices", broken)
    with api.client(api.recipient) as c:
        r = c.get("/api/v1/invoices")
    assert r.status_code == 500 and r.json() == {"error": "internal error"}
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"


# ---- finding 6: /docs ----------------------------------------------------------------------------------


def test_docs_are_off_by_default(api: Api) -> None:
    with api.client(None) as c:
        for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            r = c.get(path)
            assert r.status_code == 404 and "cdn" not in r.text.lower(), path
        assert c.get("/openapi.json").status_code == 200


def test_docs_asked_without_installed_assets_stay_off_and_the_log_says_why(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("RELAIS_API_DOCS", "1")
    monkeypatch.setitem(sys.modules, "swagger_ui_bundle", None)  # not installed (as in this venv)
    with _api("sqlite", tmp_path) as api, api.client(None) as c:
        assert c.get("/docs").status_code == 404
    assert "api.docs_unavailable" in capsys.readouterr().err


def test_docs_asked_with_installed_assets_are_served_from_this_server(tmp_path: Path, monkeypatch) -> None:
    assets = tmp_path / "vendor"
    assets.mkdir()
    (assets / "swagger-ui-bundle.js").write_text("window.SwaggerUIBundle = function () {};\n")
    (assets / "swagger-ui.css").write_text("body {}\n")
    monkeypatch.setitem(sys.modules, "swagger_ui_bundle", types.SimpleNamespace(swagger_ui_path=str(assets)))
    monkeypatch.setenv("RELAIS_API_DOCS", "1")
    with _api("sqlite", tmp_path) as api, api.client(None) as c:
        page = c.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        sources = re.findall(r"""(?:src|href)="([^"]+)\"""", page.text)
        assert sources and all(s.startswith("/") for s in sources), sources  # nothing from another host
        assert re.findall(r"<script>", page.text) == []  # no inline script
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
        for source in sources:
            assert c.get(source).status_code == 200, source
        assert c.get("/docs/assets/swagger-ui.css").text == "body {}\n"


# ---- finding 6: /readyz --------------------------------------------------------------------------------


def test_readyz_tells_anonymous_callers_only_ready_or_not(api: Api, capsys) -> None:
    with api.client(None) as c:
        assert c.get("/readyz").json() == {"status": "ready"}
        good = api.rt.store.engine
        api.rt.store.engine = sa.create_engine("postgresql+psycopg://secretuser@127.0.0.1:1/hidden")
        try:
            r = c.get("/readyz")
        finally:
            api.rt.store.engine.dispose()
            api.rt.store.engine = good
    assert r.status_code == 503 and r.json() == {"status": "not ready"}
    assert "127.0.0.1" not in r.text and "Error" not in r.text
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "health.not_ready" in line]
    assert logged and "port 1 failed" in logged[-1]["store"] and logged[-1]["archive"] == "ok"
