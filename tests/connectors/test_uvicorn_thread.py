"""connectors/uvicorn_thread.py: a real uvicorn server on 127.0.0.1 in a thread, started, reached over HTTP,
refused on a taken port, stopped cleanly (a request in progress finishes, then the port is closed)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from connectors.uvicorn_thread import Server, ServerDidNotStart, ServerThread


def _config(app: Starlette, port: int = 0, **kw) -> uvicorn.Config:
    return uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", access_log=False, **kw)


def _hello_app() -> Starlette:
    async def hello(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("bonjour")

    return Starlette(routes=[Route("/", hello)])


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_start_serves_on_a_free_port_then_stop_closes_it() -> None:
    ready: list[int | None] = []
    server = Server(_config(_hello_app(), lifespan="off"), on_ready=lambda s: ready.append(s.port))
    with ServerThread(server, name="hello") as thread:
        assert thread.port > 0 and ready == [thread.port]
        assert thread.url == f"http://127.0.0.1:{thread.port}"
        assert httpx.get(thread.url + "/", timeout=10).text == "bonjour"
        port = thread.port
    assert not thread._thread.is_alive()
    assert _refused(port)
    thread.stop()  # a second stop does nothing


def test_a_config_is_enough() -> None:
    with ServerThread(_config(_hello_app(), lifespan="off")) as thread:
        assert httpx.get(thread.url + "/", timeout=10).status_code == 200


def test_a_taken_port_is_an_error_at_start() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        thread = ServerThread(_config(_hello_app(), port=taken.getsockname()[1], lifespan="off"), name="taken")
        with pytest.raises(ServerDidNotStart, match="taken"):
            thread.start()
    assert not thread._thread.is_alive()
    with pytest.raises(ServerDidNotStart):
        _ = thread.port


def test_a_failed_application_startup_is_an_error_at_start() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("no database")
        yield  # pragma: no cover

    thread = ServerThread(_config(Starlette(lifespan=lifespan), lifespan="on"))
    with pytest.raises(ServerDidNotStart):
        thread.start()
    assert not thread._thread.is_alive()


def test_stop_lets_the_request_in_progress_finish() -> None:
    entered = threading.Event()
    holder: dict[str, ServerThread] = {}

    async def slow(_request: Request) -> PlainTextResponse:
        entered.set()
        while not holder["thread"].server.should_exit:  # answers only once the stop was asked
            await asyncio.sleep(0.01)
        return PlainTextResponse("fini")

    thread = ServerThread(_config(Starlette(routes=[Route("/", slow)]), lifespan="off", timeout_graceful_shutdown=10))
    holder["thread"] = thread
    thread.start()
    answers: list[httpx.Response] = []
    client = threading.Thread(target=lambda: answers.append(httpx.get(thread.url + "/", timeout=30)))
    client.start()
    assert entered.wait(10)
    port = thread.port
    thread.stop()
    client.join(30)
    assert [(a.status_code, a.text) for a in answers] == [(200, "fini")]
    assert _refused(port)
