"""A property-based run (schemathesis) of every operation of the official XP Z12-013 Flow Service contract
against the live server (uvicorn on 127.0.0.1, SQLite): generated requests, valid and not, never get a
5xx nor an answer outside the contract (status code, content type, body schema)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from flows.directory import importer as directory  # noqa: E402
from relais import generate as gen  # noqa: E402
from relais.api import auth  # noqa: E402
from relais.compose import Runtime  # noqa: E402
from relais.settings import Settings  # noqa: E402
from tests.support.api_server import make_token, serving  # noqa: E402

_live: dict[str, str] = {}


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("flow_service_props")
    rt = Runtime.open(Settings.from_env(tmp / "home", stable_seconds=0.0, workers=0))
    path = tmp / "annuaire.json"
    path.write_text(json.dumps(gen.directory_document(gen.sample_directory(), "test-1")))
    directory.import_file(rt.store, path)
    try:
        with serving(rt) as server:
            _live.update(url=f"{server.url}/flow-service", token=make_token(rt, auth.PARTNER, partner="op-a")[0])
            yield _live
    finally:
        rt.close()


@pytest.fixture(scope="module")
def contract_schema(corpus: Path, live):
    return schemathesis.openapi.from_path(str(corpus / "france-rfe" / "xp-z12-013" / "flow-service-1.3.0.json"))


schema = schemathesis.pytest.from_fixture("contract_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_5xx_and_nothing_outside_the_contract(case, live):
    if not case.headers or "Authorization" not in case.headers:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {live['token']}"}
    response = case.call(base_url=live["url"])
    case.validate_response(
        response,
        checks=(not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance),
    )
