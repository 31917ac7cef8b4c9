"""The running Relais of the billing circuits' end-to-end tests (tests/e2e/test_circuits*.py), once per store.

One hub per backend and per session: SQLite, and PostgreSQL in a private schema. Each backend's tests run on
one xdist worker (`--dist loadgroup`), the two backends side by side; every scenario uses billing files of
its own (its own numbers, sellers and partners), so they share the hub without seeing each other's pieces,
and the last checks (tests/e2e/test_circuits_returns.py) judge everything all of them did.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests.support.circuit_hub import Hub

BACKENDS = [
    pytest.param("sqlite", marks=pytest.mark.xdist_group("e2e_circuits_sqlite")),
    pytest.param("postgresql", marks=[pytest.mark.xdist_group("e2e_circuits_postgresql"), pytest.mark.postgres]),
]


@pytest.fixture(scope="session", params=BACKENDS)
def hub(request, tmp_path_factory) -> Iterator[Hub]:
    with contextlib.ExitStack() as stack:
        extra: dict[str, str] = {}
        if request.param == "postgresql":
            from tests.conftest import PG_URL, private_schema

            extra = {
                "RELAIS_DATABASE_URL": PG_URL,
                "RELAIS_DATABASE_SCHEMA": stack.enter_context(private_schema("relais_e2e")),
            }
        h = Hub(tmp_path_factory.mktemp(f"circuits-{request.param}"), extra)
        stack.callback(h.close)
        yield h.start()
