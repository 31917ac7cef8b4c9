"""Starting the HTTP API for the tests: the real uvicorn server in a thread, on a free port of 127.0.0.1."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx

from relais.api import auth
from relais.api.config import ApiConfig
from relais.api.serve import ServerThread
from relais.compose import Runtime
from tests.support.waiting import SERVER_START_SECONDS


@contextlib.contextmanager
def serving(rt: Runtime, config: ApiConfig | None = None) -> Iterator[ServerThread]:
    server = ServerThread(rt, config=config).start(SERVER_START_SECONDS)
    try:
        yield server
    finally:
        server.stop()


def client(server: ServerThread, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


def make_token(rt: Runtime, kind: str, **scope: str | None) -> tuple[str, str]:
    """(token, id) of a new token stored in `rt` (what `relais api token create` does)."""
    token, row = auth.new_token(kind, **scope)
    rt.store.create_token(row)
    return token, row.id
