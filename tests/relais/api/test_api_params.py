"""Crafted query parameters of the API get a 4xx naming the parameter, never a 500 (issue 19, finding 5):
targeted cases (cursor forms, limits, dates, statuses, unicode, path ids) on SQLite and PostgreSQL, and a
property-based test (hypothesis) over every GET route of the API, through the real server."""

from __future__ import annotations

import base64
import contextlib
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.directory import importer as directory
from relais import generate as gen
from relais.api import auth
from relais.compose import Runtime
from relais.runner import run_once
from relais.settings import Settings
from tests.conftest import PG_URL, private_schema
from tests.support.api_server import make_token, serving
from tests.support.helpers import drop

A, B = "21103837732046", "26085540839041"


@contextlib.contextmanager
def _store(kind: str, tmp: Path) -> Iterator[Runtime]:
    """A runtime with one processed flow for A and B, on SQLite or a private PostgreSQL schema."""
    db: dict[str, str] = {}
    schemas = contextlib.ExitStack()
    if kind == "postgresql":
        db = {"database_url": PG_URL, "database_schema": schemas.enter_context(private_schema("relais_ap"))}
    rt = Runtime.open(Settings.from_env(tmp / "home", stable_seconds=0.0, workers=0, **db))  # type: ignore[arg-type]
    try:
        path = tmp / "annuaire.json"
        path.write_text(json.dumps(gen.directory_document(gen.sample_directory(), "test-1")))
        directory.import_file(rt.store, path)
        recipients = [r for r in gen.sample_directory() if r.siret in (A, B)]
        [batch] = gen.write_batch(tmp / "gen", "ubl", 6, 2, batch="zip", recipients=recipients, seed=5)
        drop(rt, "op-a", batch.name, batch.read_bytes())
        run_once(rt)
        yield rt
    finally:
        rt.close()
        schemas.close()


class Api:
    """A served API over one store, with a token of structure A and one of partner op-a."""

    def __init__(self, rt: Runtime, url: str) -> None:
        self.rt, self.url = rt, url
        self.recipient = make_token(rt, auth.RECIPIENT, siret=A)[0]
        self.partner = make_token(rt, auth.PARTNER, partner="op-a")[0]
        self.flow_id = rt.store.list_flows(limit=1)[0].id

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@contextlib.contextmanager
def _api(kind: str, tmp: Path) -> Iterator[Api]:
    with _store(kind, tmp) as rt, serving(rt) as server:
        yield Api(rt, server.url)


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request, tmp_path) -> Iterator[Api]:
    with _api(request.param, tmp_path) as a:
        yield a


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_api(request, tmp_path_factory) -> Iterator[Api]:
    with _api(request.param, tmp_path_factory.mktemp("params")) as a:
        yield a


def _cursor(value: object) -> str:
    raw = value if isinstance(value, str) else json.dumps(value)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _refused(r: httpx.Response, param: str) -> None:
    """422, JSON, and a problem located at the query parameter `param`."""
    assert r.status_code == 422, (param, r.status_code, r.text)
    body = r.json()
    assert body["error"] == "invalid request", body
    assert ["query", param] in [p["loc"] for p in body["problems"]], body


AT = "2026-01-01T00:00:00+00:00"
BAD_CURSORS = {
    "position true": _cursor([AT, "CPP0000000001", True]),
    "position 10**30": _cursor(f'["{AT}","CPP0000000001",{10**30}]'),
    "position negative": _cursor([AT, "CPP0000000001", -1]),
    "position float": _cursor([AT, "CPP0000000001", 1.5]),
    "position text": _cursor([AT, "CPP0000000001", "1"]),
    "position null": _cursor([AT, "CPP0000000001", None]),
    "flow id with NUL": _cursor([AT, "CPP\x00", 1]),
    "flow id not an id": _cursor([AT, "' OR 1=1 --", 1]),
    "flow id a number": _cursor([AT, 7, 1]),
    "date not a date": _cursor(["notadate", "CPP0000000001", 1]),
    "date with NUL": _cursor(["2026-12-06\x0017:00", "CPP0000000001", 1]),
    "date out of range": _cursor(["0001-01-01T00:00:00+01:00", "CPP0000000001", 1]),
    "date a number": _cursor([10**30, "CPP0000000001", 1]),
    "two items": _cursor([AT, "CPP0000000001"]),
    "an object": _cursor({"at": AT}),
    "deeply nested": _cursor("[" * 5000 + "]" * 5000),
    "huge number": _cursor("[" + "9" * 5000 + "]"),
    "not base64": "garbage!",
    "not utf-8": base64.urlsafe_b64encode(b"\xff\xfe[").decode(),
    "unicode": "é漢字🙂",
    "too long": "A" * 401,
}


@pytest.mark.parametrize("case", list(BAD_CURSORS))
def test_crafted_cursors_are_422_naming_cursor(shared_api: Api, case: str) -> None:
    with shared_api.client(shared_api.recipient) as c:
        _refused(c.get("/api/v1/invoices", params={"cursor": BAD_CURSORS[case]}), "cursor")


def test_a_real_cursor_and_a_naive_one_still_page(shared_api: Api) -> None:
    with shared_api.client(shared_api.recipient) as c:
        first = c.get("/api/v1/invoices", params={"limit": 1}).json()
        assert first["next_cursor"]
        second = c.get("/api/v1/invoices", params={"limit": 1, "cursor": first["next_cursor"]})
        assert second.status_code == 200 and second.json()["invoices"][0]["id"] != first["invoices"][0]["id"]
        naive = _cursor(["2999-01-01T00:00:00", shared_api.flow_id, 0])  # naive: taken as UTC
        r = c.get("/api/v1/invoices", params={"cursor": naive})
        assert r.status_code == 200 and r.json()["invoices"]


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("limit", "0"),
        ("limit", "501"),
        ("limit", "abc"),
        ("limit", "1e3"),
        ("limit", str(10**30)),
        ("since", "notadate"),
        ("since", "0001-01-01T00:00:00+01:00"),
        ("since", "9999-12-31T23:59:59-01:00"),
        ("since", "2026-13-45"),
        ("status", "PAYEE"),
        ("status", "\x00"),
        ("status", "é"),
        ("status", "x" * 10000),
        ("service", "DSI\x00"),
        ("service", "\n"),
        ("service", "x" * 101),
        ("framework", "A26"),
        ("framework", "A9\x00"),
        ("framework", "A" + "9" * 5000),
        ("framework", "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"),
        ("framework", "x" * 10000),
    ],
)
def test_crafted_values_are_422_naming_the_parameter(shared_api: Api, param: str, value: str) -> None:
    with shared_api.client(shared_api.recipient) as c:
        _refused(c.get("/api/v1/invoices", params={param: value}), param)


@pytest.mark.parametrize(
    "query",
    [
        {"status": "07"},
        {"status": "service_fait"},
        {"status": "A_VALIDER_1"},
        {"status": "30"},
        {"framework": "a9"},
        {"framework": "A4_PROJET_DECOMPTE_MENSUEL_FOURNISSEUR", "status": "MISE_A_DISPOSITION_MOE"},
        {"since": "2026-01-01"},
        {"since": "2000-01-01T00:00:00"},
        {"since": "2000-01-01T00:00:00+14:00"},
        {"service": "é漢字🙂"},
        {"limit": "500"},
        {"unknown": "\x00"},
        {"cursor": ""},  # no cursor: the first page
    ],
)
def test_valid_values_are_answered(shared_api: Api, query: dict[str, str]) -> None:
    with shared_api.client(shared_api.recipient) as c:
        r = c.get("/api/v1/invoices", params=query)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "since",
    [
        "1e20",
        "-1e20",
        "9" * 30,
        "0",
        "-62135596800",
        "253402300799",
        "253402300800",
        "2026-01-01T00:00:00+23:59",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
        "0001-01-01T00:00:00-23:59",
        "2026-W01",
        "NaN",
        "inf",
    ],
)
def test_extreme_dates_are_answered_or_422_never_500(shared_api: Api, since: str) -> None:
    with shared_api.client(shared_api.recipient) as c:
        r = c.get("/api/v1/invoices", params={"since": since})
    assert r.status_code in (200, 422), (since, r.status_code, r.text)
    if r.status_code == 422:
        _refused(r, "since")


@pytest.mark.parametrize("bad", ["%00", "CPP%00", "x" * 300, "%C3%A9", "..%2F..%2Fetc", "%F0%9F%99%82"])
def test_crafted_path_ids_are_404(api: Api, bad: str) -> None:
    with api.client(api.recipient) as c:
        for path in ("", "/file", "/history"):
            r = c.get(f"/api/v1/invoices/{bad}{path}")
            assert r.status_code == 404, (path, r.text)
    with api.client(api.partner) as c:
        for path in ("", "/report"):
            r = c.get(f"/api/v1/flows/{bad}{path}")
            assert r.status_code == 404, (path, r.text)


def test_cursor_positions_that_crashed_on_both_stores(api: Api) -> None:
    """The issue's two cursors, on each store (one of them was a 500 on SQLite, the other on PostgreSQL)."""
    with api.client(api.recipient) as c:
        for case in ("position true", "position 10**30"):
            _refused(c.get("/api/v1/invoices", params={"cursor": BAD_CURSORS[case]}), "cursor")


# ---- property-based: arbitrary strings at every query parameter of every GET route -------------------------

_TEXT = st.text(max_size=60) | st.sampled_from(["", "0", "-1", "true", "null", "1e309", "NaN", str(10**30), "\x00"])
_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=8,
)
_CURSORS = _TEXT | _JSONISH.map(_cursor) | st.tuples(_TEXT, _TEXT, _JSONISH).map(lambda t: _cursor(list(t)))
_IDS = _TEXT | st.sampled_from(["CPP0000000001", "CPP0000000001-00001"])
ROUTES = [
    (
        "recipient",
        "/api/v1/invoices",
        {"status": _TEXT, "framework": _TEXT, "since": _TEXT, "service": _TEXT, "cursor": _CURSORS, "limit": _TEXT},
    ),
    ("recipient", "/api/v1/invoices/{id}", {}),
    ("recipient", "/api/v1/billing-files/{id}", {}),
    ("partner", "/api/v1/billing-files/{id}", {}),
    ("recipient", "/api/v1/reasons", {}),
    ("recipient", "/api/v1/invoices/{id}/file", {}),
    ("recipient", "/api/v1/invoices/{id}/history", {}),
    (
        "partner",
        "/api/v1/flows",
        {"status": _TEXT, "since": _TEXT, "until": _TEXT, "name": _TEXT, "cursor": _IDS, "limit": _TEXT},
    ),
    ("partner", "/api/v1/flows/{id}", {}),
    ("partner", "/api/v1/flows/{id}/report", {}),
    ("none", "/healthz", {}),
    ("none", "/readyz", {}),
    ("none", "/openapi.json", {}),
]


@st.composite
def _requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str]]:
    who, path, known = draw(st.sampled_from(ROUTES))
    if "{id}" in path:
        path = path.replace("{id}", urllib.parse.quote(draw(_IDS), safe="") or "x")
    query = {name: draw(strategy) for name, strategy in known.items() if draw(st.booleans())}
    query.update(draw(st.dictionaries(st.text(min_size=1, max_size=10), _TEXT, max_size=2)))
    return who, path, query


def test_no_5xx_for_any_query_of_any_get_route(shared_api: Api) -> None:
    """Every GET route of the API (the OpenAPI document's, and the health paths) is in ROUTES."""
    with shared_api.client(shared_api.recipient) as c:
        documented = {p for p, ops in c.get("/openapi.json").json()["paths"].items() if "get" in ops}
    names = {"invoices": "{invoice_id}", "flows": "{flow_id}", "billing-files": "{file_id}"}
    assert documented <= {
        path.replace("{id}", names[path.split("/")[3]]) for _, path, _ in ROUTES if "{id}" in path
    } | {path for _, path, _ in ROUTES if "{id}" not in path}
    tokens = {"recipient": shared_api.recipient, "partner": shared_api.partner, "none": None}
    clients = {who: shared_api.client(token) for who, token in tokens.items()}

    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(_requests())
    def check(request: tuple[str, str, dict[str, str]]) -> None:
        who, path, query = request
        r = clients[who].get(path, params=query)
        assert r.status_code < 500, (path, query, r.status_code, r.text)
        if r.status_code == 422:
            locs = [p["loc"] for p in r.json()["problems"]]
            assert locs and all(loc[0] == "query" and loc[1] in query for loc in locs), (query, locs)

    try:
        check()
    finally:
        for c in clients.values():
            c.close()
