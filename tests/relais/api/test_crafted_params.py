"""Issue 19, section 5: crafted query parameters get a 4xx, never a 5xx, from either server.

Hypothesis throws arbitrary strings (unicode, control characters, huge numbers, empty, ISO-date-like,
``true``, ``1e309``, cursors holding ``true`` or ``10**30``...) at every query parameter of every GET
route of both real servers, plus a few parameters no route knows, and at the path parameters:

- the web application (tests/support/web_site.py: `WebThread`, uvicorn on 127.0.0.1), logged in as an ops
  user and as a partner user;
- the API (relais/api, `ServerThread`), with a recipient token and with a partner token.

The routes come from the applications' route tables, so a new route is covered as soon as it exists.
The API's query parameters come from each route's FastAPI signature; the web application reads its
own (relais/web/params.py), so `WEB_QUERY` says which each route reads: a GET route missing from it
fails the test, asking for its entry. Bounded and repeatable: `EXAMPLES` per route and identity,
derandomized (the same examples on every run).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.domain.lifecycle import FlowStatus
from flows.domain.model import Channel, FlowCode, InvoiceStatus
from flows.store.invoices import INVOICE_SORTS
from flows.store.web import SORTS
from relais import cdarview
from tests.support.web_site import Site, serving_site

EXAMPLES = 40

_FLOW_LIST = ("status", "partner", "channel", "code", "since", "until", "q", "sort", "order", "after_id", "after_value")

#: The query parameters each GET route of the web application reads (every page also reads `lang`).
#: A new GET route gets its entry here (its parameters parsed in relais/web/params.py).
WEB_QUERY: dict[str, tuple[str, ...]] = {
    "/healthz": (),
    "/readyz": (),
    "/metrics": (),
    "/login": ("next",),
    "/login/oidc": ("next",),
    "/login/oidc/callback": ("state", "code", "error", "hop"),
    "/": (),
    "/rejects": (),
    "/rejects/{rule:path}": (),
    "/flows": _FLOW_LIST,
    "/flows/poll": (*_FLOW_LIST, "newest"),
    "/flows/{flow_id}": ("inv_status", "q", "sort", "order", "page", "cadre"),
    "/flows/{flow_id}/file": (),
    "/flows/{flow_id}/invoices/{position}/file": (),
    "/flows/{flow_id}/returns/{row_id}": (),
    "/audit": ("actor", "action", "outcome", "since", "until", "before", "view"),
    "/sessions": (),
    "/account/password": (),
    "/waiting": ("partner",),
    "/billing-files/{file_id}": (),
    "/cdar": ("partner", "direction", "outcome", "before"),
    "/cdar/{message}/download": (),
}
EVERY_PAGE = ("lang",)
UNKNOWN = ("x", "limit", "page", "__proto__")

#: Values that parse somewhere, so that combinations reach deep into a route (a real keyset, a sort).
GOOD: dict[str, Sequence[str]] = {
    "status": [s.value for s in FlowStatus] + [s.name for s in InvoiceStatus],
    "channel": [c.value for c in Channel],
    "code": [c.value for c in FlowCode],
    "sort": [*SORTS, *INVOICE_SORTS],
    "order": ["asc", "desc"],
    "cadre": ["A1", "A10", "a4", "A4_PROJET_DECOMPTE_MENSUEL_FOURNISSEUR"],
    "lang": ["fr", "en"],
    "direction": ["in", "out"],
    "outcome": ["ok", "refused", "error", *cdarview.OUTCOMES],
    "partner": ["op-a", "op-b"],
    "after_id": ["CPP0000000001", "X"],
    "after_value": ["0", "CPP0000000001", "2024-05-01T10:00:00+02:00", "IN_INTEGRE", "op-a"],
    "since": ["2024-05-01", "2000-01-01T00:00:00"],
    "until": ["9999-12-31", "2024-05-01"],
    "limit": ["1", "500", "0"],
    "inv_status": ["rejected", "all", "03", "05"],
    "page": ["1", "2", "100000"],
    "service": ["DSI", "RESTAURATION"],
    "next": ["/flows", "//evil.example", "/\\evil"],
}
SPECIAL = [
    "",
    " ",
    "true",
    "false",
    "null",
    "1e309",
    "-1e309",
    "NaN",
    "inf",
    "-0",
    "10**30",
    str(10**30),
    str(-(10**30)),
    str(2**63),
    str(2**31),
    "-1",
    "0",
    "9999-12-31",
    "0001-01-01",
    "0000-00-00",
    "2024-02-30",
    "2024-05-01T25:00:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "\x00",
    "a\x00b",
    "\r\nSet-Cookie: x=1",
    "%00",
    "'; DROP TABLE flows; --",
    "../../etc/passwd",
    "é" * 300,
    "x" * 5000,
    "\ud7ff\U0010ffff",
]


def _cursor(position: Any, at: Any = "2024-05-01T00:00:00+00:00", flow_id: Any = "CPP0000000001") -> str:
    raw = json.dumps([at, flow_id, position], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


#: The API's opaque cursors, well-formed outside and crafted inside (the known 500s: `true`, 10**30).
CURSORS = st.builds(
    _cursor,
    st.one_of(
        st.sampled_from([True, False, None, 10**30, -(10**30), 2**63]), st.integers(), st.floats(), st.text(max_size=5)
    ),
    st.one_of(st.just("2024-05-01T00:00:00+00:00"), st.text(max_size=30), st.integers()),
    st.one_of(st.just("CPP0000000001"), st.text(max_size=20), st.none()),
)


#: Each parameter alone with each of these, on every route, before the random combinations.
NASTY = ["true", str(10**30), "1e309", "a\x00b", "notadate", "x" * 5000, "", _cursor(True), _cursor(10**30)]
#: Combinations that reach the keyset code (the known 500s of the flow list).
KEYSETS = [
    [("sort", sort), ("after_id", "X"), ("after_value", v)]
    for sort in SORTS
    for v in (
        "abc",
        "notadate",
        str(10**30),
        "-1",
        "",
        "\x00",
        "2024-05-01T00:00:00+14:00",
        "0001-01-01T00:00:00+14:00",
    )
]


def _get(client: httpx.Client, url: str, params: list[tuple[str, str]], who: str) -> str | None:
    """None when the answer is not a 5xx, else what went wrong (a 5xx, or no answer at all)."""
    for attempt in (1, 2):  # a keep-alive connection the server closed after a 500 is retried once
        try:
            r = client.get(url, params=params)
            break
        except httpx.TransportError as e:  # twice: the server drops the connection (an unhandled exception)
            if attempt == 2:
                return f"{who} GET {url} {params!r} -> no answer ({type(e).__name__}: {e})"
    if r.status_code >= 500:
        return f"{who} GET {url} {params!r} -> {r.status_code} {r.text[:200]!r}"
    return None


def values(name: str) -> st.SearchStrategy[str]:
    good = list(GOOD.get(name, ()))
    branches = [st.sampled_from(SPECIAL), st.text(), st.text(st.characters(codec="ascii"), max_size=12)]
    if good:
        branches.insert(0, st.sampled_from(good))
    if name == "cursor":
        branches.insert(0, CURSORS)
    return st.one_of(*branches)


def query(names: Sequence[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Some of `names` (each at most twice), with values, in any order."""
    pairs = [st.tuples(st.just(n), values(n)) for n in names]
    return st.lists(st.one_of(*pairs), max_size=2 * len(names)) if pairs else st.just([])


def path_values(name: str, real: str) -> st.SearchStrategy[str]:
    return st.one_of(st.just(real), st.just(real), st.sampled_from(SPECIAL[:20]), st.text(max_size=40))


def _fill(path: str, chosen: dict[str, str]) -> str:
    for name, value in chosen.items():
        path = path.replace("{" + name + ":path}", quote(value, safe="")).replace(
            "{" + name + "}", quote(value, safe="")
        )
    return path


def _get_routes(app: Any) -> Iterator[Any]:
    for route in app.routes:
        if "GET" in (getattr(route, "methods", None) or ()):
            yield route


def _path_params(path: str) -> list[str]:
    import re

    return [m.split(":")[0] for m in re.findall(r"{([^}]+)}", path)]


def _check(client: httpx.Client, path: str, names: Sequence[str], reals: dict[str, str], who: str) -> list[str]:
    """Run the examples of one route; the 5xx found (hypothesis shrinks to the first failing one)."""
    failures: list[str] = []
    path_strategy = st.fixed_dictionaries({n: path_values(n, reals.get(n, "1")) for n in _path_params(path)})

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(chosen=path_strategy, params=query([*names, *UNKNOWN]))
    def examples(chosen: dict[str, str], params: list[tuple[str, str]]) -> None:
        failed = _get(client, _fill(path, chosen), params, who)
        if failed:
            failures.append(failed)
            raise AssertionError(failed)

    url = _fill(path, reals)
    found = [_get(client, url, [(name, value)], who) for name in [*names, UNKNOWN[0]] for value in NASTY]
    if "after_value" in names:
        found += [_get(client, url, params, who) for params in KEYSETS]
    for name in _path_params(path):
        found += [_get(client, _fill(path, {**reals, name: value}), [], who) for value in NASTY]
    try:
        examples()
    except AssertionError:
        pass
    return [f for f in found if f] + failures[-1:]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request, tmp_path_factory) -> Iterator[Site]:
    """Both servers over one home, on each store (PostgreSQL refuses what SQLite takes: NUL, big ints)."""
    with serving_site(tmp_path_factory.mktemp("crafted"), request.param, oidc=True) as s:
        yield s


def test_every_get_route_of_the_web_app_has_its_query_parameters_listed(site):
    assert "/login/oidc/callback" in {r.path for r in _get_routes(site.web_app)}  # the OpenID routes too
    missing = [
        r.path for r in _get_routes(site.web_app) if r.path not in WEB_QUERY and not r.path.startswith("/static")
    ]
    assert not missing, f"add an entry to WEB_QUERY (tests/relais/api/test_crafted_params.py) for {missing}"


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_the_web_app_answers_crafted_parameters_without_a_5xx(site, who):
    client = site.login(who)
    a = site.flows["op-a" if who == "alice" else "op-b"]
    reals = {"flow_id": a.id, "position": "1", "row_id": str(site.return_row), "rule": "RLS-R03"}
    failures = []
    for route in _get_routes(site.web_app):
        if route.path.startswith("/static"):
            continue
        names = (*WEB_QUERY[route.path], *EVERY_PAGE)
        failures += _check(client, route.path, names, reals, who)
    assert client.get("/flows").status_code == 200  # still logged in: nothing above logged out
    assert not failures, "\n".join(failures)


def _api_query_names(route: Any) -> list[str]:
    dependant = getattr(route, "dependant", None)
    if dependant is None:  # /docs, /openapi.json: plain routes
        return []
    from fastapi.dependencies.utils import get_flat_dependant

    return [p.alias for p in get_flat_dependant(dependant).query_params]


@pytest.mark.parametrize("token", ["recipient", "partner"])
def test_the_api_answers_crafted_parameters_without_a_5xx(site, token):
    bearer = site.recipient_token if token == "recipient" else site.partner_token
    client = httpx.Client(base_url=site.api_url, headers={"Authorization": f"Bearer {bearer}"}, timeout=30)
    reals = {"invoice_id": site.invoice_id, "flow_id": site.flows["op-a"].id}
    failures = []
    for route in _get_routes(site.api_app):
        failures += _check(client, route.path, _api_query_names(route), reals, token)
    assert not failures, "\n".join(failures)
