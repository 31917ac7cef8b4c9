"""A property-based run (schemathesis) of every operation of the official XP Z12-013 Directory Service contract
(directory-service-1.3.0.json) against the live server (uvicorn on 127.0.0.1), on SQLite and PostgreSQL, its
store seeded with reform directory lines: generated requests, valid and not, never get a 5xx nor an answer
outside the contract (status code, content type, body schema).

The contract's one known defect is relaxed, as in test_directory_service.py: 1.3.0 declares the line statuses
`maxLength: 7` while listing "Disabled" (8 characters), which Relais answers (docs/reform.md §4)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from flows.directory import reform  # noqa: E402
from relais.api import auth  # noqa: E402
from relais.compose import Runtime  # noqa: E402
from relais.settings import Settings  # noqa: E402
from tests.conftest import CORPUS, PG_URL, private_schema  # noqa: E402
from tests.support.api_server import make_token, serving  # noqa: E402

CONTRACT = CORPUS / "france-rfe" / "xp-z12-013" / "directory-service-1.3.0.json"
if not CONTRACT.is_file():
    pytest.skip(f"{CONTRACT} not found", allow_module_level=True)

CSV = "\n".join(
    [
        "addressingIdentifier;platformId;platformName;platformType;status;effectiveFrom;businessName;entityType;facilityName;facilityType;addressLine1;postalCode;locality;countryCode;routingCodeName;routingCodeStatus",
        "702042755;0042;PA Une;WK;Enabled;;Société Exemple;PrivateVatRegistered;;;;;;;;",
        "702042755_70204275500240;0042;PA Une;WK;Enabled;;Société Exemple;;Siège;P;1 rue de la Paix;75002;Paris;FR;;",
        "702042755_70204275500240_SERV-1;0042;PA Une;WK;Upcoming;2099-01-01;Société Exemple;;Siège;P;;;;;Service un;A",
        "702042755_70204275500240_SERV-2;0042;PA Une;WK;Enabled;;Société Exemple;;Siège;P;;;;;Service deux;A",
        "552100554_FACTURES;9998;Relais;DFH;Disabled;;Autre;Public;;;;;;;;",
        "552100554_55210055400013;9998;Relais;DFH;Enabled;;Autre;Public;Usine;S;2 avenue du Port;13002;Marseille;FR;;",
        "404833048;0777;PA Trois;WK;Enabled;;Troisième;PrivateVatRegistered;;;;;;;;",
    ]
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request, tmp_path_factory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("directory_service_props")
    extra: dict[str, str] = {}
    with private_schema() if request.param == "postgresql" else _nothing() as schema:
        if schema:
            extra = {"database_url": PG_URL, "database_schema": schema}
        rt = Runtime.open(Settings.from_env(tmp / "home", stable_seconds=0.0, workers=0, **extra))
        try:
            path = tmp / "reforme.csv"
            path.write_text(CSV)
            reform.import_file(rt.store, path)
            with serving(rt) as server:
                token = make_token(rt, auth.PARTNER, partner="op-a")[0]
                yield {"url": f"{server.url}/directory-service", "token": token}
        finally:
            rt.close()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _contract() -> dict:
    """The official file, its one defect relaxed (module doc). Loaded at import: schemathesis's lazy loading
    (`from_fixture`) takes no parametrized fixture, and the run goes over both stores."""
    doc = json.loads(CONTRACT.read_text())
    for name in ("directoryLineStatus", "uniqueDirectoryLineStatus"):
        assert doc["components"]["schemas"][name]["maxLength"] == 7
        doc["components"]["schemas"][name]["maxLength"] = 8
    return doc


schema = schemathesis.openapi.from_dict(_contract())


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
