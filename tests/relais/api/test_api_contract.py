"""The API's contract: the OpenAPI document the real server serves is the committed docs/api/openapi.json."""

from __future__ import annotations

import json

import httpx

from relais.api.app import openapi_document
from tests.conftest import PROJECT_ROOT
from tests.support.api_server import serving

SNAPSHOT = PROJECT_ROOT / "docs" / "api" / "openapi.json"
REGENERATE = "see docs/api/README.md to regenerate docs/api/openapi.json after an intended change"


def test_served_openapi_is_the_committed_snapshot(rt) -> None:
    with serving(rt) as server:
        r = httpx.get(f"{server.url}/openapi.json", timeout=30)
    assert r.status_code == 200
    assert r.json() == json.loads(SNAPSHOT.read_text()), REGENERATE


def test_the_snapshot_is_written_as_documented() -> None:
    assert SNAPSHOT.read_text() == openapi_document(), REGENERATE


def test_every_operation_is_versioned_and_authenticated() -> None:
    doc = json.loads(SNAPSHOT.read_text())
    for path, operations in doc["paths"].items():
        assert path.startswith("/api/v1/"), path
        for op in operations.values():
            assert op.get("security") == [{"HTTPBearer": []}], (path, op.get("operationId"))
            assert "401" in op["responses"], path
