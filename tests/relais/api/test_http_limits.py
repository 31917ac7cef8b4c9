"""What both real servers allow a client before the application answers (issue 19, §2 and §4):
relais/httpguard.py, through `relais.web.serve` and `relais.api.serve`.

- Slow clients (raw sockets, small deadlines): headers sent in part, or nothing at all, are cut with a
  408 by RELAIS_HTTP_HEADER_TIMEOUT; a body trickled a byte at a time is cut by RELAIS_HTTP_BODY_TIMEOUT
  (web login, API upload: no flow recorded); a large upload at a useful rate goes on past that deadline;
  normal requests on a kept-alive connection still work.
- The web's body cap: a 30 MB POST to /login and to an action, with a Content-Length or chunked, gets
  413 within a second while the server read no more than a few hundred KiB of it (counted by the
  server's protocol, `bytes_read`).
- Forwarded headers: a forged X-Forwarded-For from 127.0.0.1 changes nothing (the audited address and
  the per-address login throttle are 127.0.0.1's), unless 127.0.0.1 is listed in RELAIS_TRUSTED_PROXIES.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from relais import httpguard
from relais.api import auth
from tests.support.api_server import make_token, serving
from tests.support.waiting import SERVER_START_SECONDS, wait_until

HEADER_TIMEOUT, BODY_TIMEOUT = 1.5, 2.0
MB = 1024 * 1024


@pytest.fixture
def deadlines(monkeypatch) -> None:
    monkeypatch.setenv("RELAIS_HTTP_HEADER_TIMEOUT", str(HEADER_TIMEOUT))
    monkeypatch.setenv("RELAIS_HTTP_BODY_TIMEOUT", str(BODY_TIMEOUT))
    monkeypatch.delenv("RELAIS_TRUSTED_PROXIES", raising=False)
    monkeypatch.delenv("RELAIS_WEB_MAX_BODY", raising=False)


@pytest.fixture
def servers(rt, deadlines) -> Iterator[dict[str, int]]:
    """The web application and the API over one home, each a real uvicorn server in a thread."""
    from relais.web.auth.passwords import hash_password
    from relais.web.serve import WebThread

    rt.store.add_web_user("alice", "ops", None, hash_password("alice-password-1"))
    rt.settings.inbox("op-a").mkdir(parents=True, exist_ok=True)  # a known partner (ops may pause it)
    with WebThread(rt) as web, serving(rt) as api:
        yield {"web": web.server.port, "api": api.server.port}


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(15)
    return s


def _until_closed(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except ConnectionResetError:
        pass
    return out


def _healthz(s: socket.socket) -> bytes:
    """One GET /healthz on a kept-alive connection, its whole answer."""
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: relais\r\n\r\n")
    answer = b""
    while not answer.endswith(b'{"status": "ok"}\n'):
        chunk = s.recv(65536)
        assert chunk, answer
        answer += chunk
    return answer


def _cut_after(s: socket.socket) -> tuple[bytes, float]:
    start = time.monotonic()
    answer = _until_closed(s)
    return answer, time.monotonic() - start


# ---- slow clients --------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["web", "api"])
def test_headers_sent_in_part_or_not_at_all_are_cut_by_the_header_deadline(servers, which) -> None:
    port = servers[which]
    partial, silent = _connect(port), _connect(port)
    partial.sendall(b"GET /healthz HTTP/1.1\r\nHost: relais\r\nX-Slow: ")
    answer, took = _cut_after(partial)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    assert HEADER_TIMEOUT - 0.3 < took < HEADER_TIMEOUT + 3, took
    answer, took = _cut_after(silent)
    assert answer.startswith(b"HTTP/1.1 408 ") and took < HEADER_TIMEOUT + 3, (answer[:80], took)
    # the next request's headers have their own deadline, on a kept-alive connection too
    s = _connect(port)
    first = _healthz(s)
    assert first.startswith(b"HTTP/1.1 200 "), first[:80]
    s.sendall(b"GET /healthz HTTP/1.1\r\nHo")
    answer, took = _cut_after(s)
    assert answer.startswith(b"HTTP/1.1 408 ") and took < HEADER_TIMEOUT + 3, (answer[:80], took)


def _trickle(s: socket.socket, head: bytes, seconds: float) -> tuple[bytes, float]:
    """Send `head`, then a byte every 0.2 s until the server answers or closes (or `seconds` pass)."""
    start = time.monotonic()
    s.sendall(head)
    s.settimeout(0.2)
    answer = b""
    while time.monotonic() - start < seconds:
        try:
            s.sendall(b"a")
        except OSError:
            break
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        answer += chunk
    s.settimeout(5)
    try:
        answer += _until_closed(s)
    except (TimeoutError, OSError):
        pass
    return answer, time.monotonic() - start


def test_a_body_trickled_to_the_web_login_is_cut_by_the_body_deadline(servers) -> None:
    head = (
        b"POST /login HTTP/1.1\r\nHost: relais\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 4000\r\n\r\nusername=alice&password="
    )
    answer, took = _trickle(_connect(servers["web"]), head, 15)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    assert BODY_TIMEOUT - 0.3 < took < BODY_TIMEOUT + 3, took


def test_an_upload_trickled_to_the_api_is_cut_and_records_nothing(rt, servers) -> None:
    token, _ = make_token(rt, auth.PARTNER, partner="op-a")
    before = len(rt.store.list_flows(limit=1000))
    head = (
        f"POST /api/v1/flows?name=lot.xml HTTP/1.1\r\nHost: relais\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n<Invoice>"
    ).encode()
    answer, took = _trickle(_connect(servers["api"]), head, 15)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    assert BODY_TIMEOUT - 0.3 < took < BODY_TIMEOUT + 3, took
    assert len(rt.store.list_flows(limit=1000)) == before


def test_a_large_upload_at_a_useful_rate_outlives_the_body_deadline(rt, servers) -> None:
    token, _ = make_token(rt, auth.PARTNER, partner="op-a")
    size = 20 * httpguard.BODY_STEP

    def slow() -> Iterator[bytes]:
        for _ in range(20):  # 64 KiB every 0.2 s: 4 s in all, twice the body deadline
            yield b"x" * httpguard.BODY_STEP
            time.sleep(0.2)

    start = time.monotonic()
    with httpx.Client(base_url=f"http://127.0.0.1:{servers['api']}", timeout=30) as c:
        r = c.post(
            "/api/v1/flows",
            params={"name": "big.bin"},
            content=slow(),
            headers={"Authorization": f"Bearer {token}", "Content-Length": str(size)},
        )
    assert time.monotonic() - start > BODY_TIMEOUT + 1
    assert r.status_code in (200, 201), r.text


# ---- the web's body cap ---------------------------------------------------------------------------


@pytest.fixture
def bytes_read(monkeypatch) -> list[int]:
    """The bytes each closed connection of the servers had read from its client."""
    seen: list[int] = []
    lost = httpguard._Deadlines.connection_lost

    def record(self, exc):
        seen.append(self.bytes_read)
        return lost(self, exc)

    monkeypatch.setattr(httpguard._Deadlines, "connection_lost", record)
    return seen


def _alice(port: int) -> tuple[httpx.Client, str]:
    c = httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=False, timeout=30)
    m = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)
    assert m
    assert (
        c.post("/login", data={"username": "alice", "password": "alice-password-1", "csrf": m.group(1)}).status_code
        == 303
    )
    m = re.search(r'name="csrf" value="([^"]+)"', c.get("/flows").text)
    assert m
    return c, m.group(1)


@pytest.mark.parametrize("path", ["/login", "/partners/op-a/pause"])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_30_mb_post_gets_413_before_the_web_reads_it(servers, bytes_read, path, framing) -> None:
    port = servers["web"]
    c, csrf = _alice(port)
    total = 30 * MB
    boundary = "relais-boundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{csrf}\r\n'.encode()
    head += f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'.encode()

    def body() -> Iterator[bytes]:
        yield head
        for _ in range(30):
            yield b"x" * MB

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    start = time.monotonic()
    if framing == "content-length":
        r = c.post(path, content=head + b"x" * (total - len(head)), headers=headers)
    else:
        r = c.post(path, content=body(), headers=headers)  # a generator: Transfer-Encoding: chunked
    took = time.monotonic() - start
    c.close()
    assert r.status_code == 413, (r.status_code, r.text[:200])
    assert took < 3, took
    wait_until(lambda: bytes_read, 5, "the server to say how much of the body it read")
    assert max(bytes_read) < 1 * MB, bytes_read  # a cap of 64 KiB, and what was in flight: not 30 MB
    # a small form still goes through
    c, _ = _alice(port)
    assert c.get("/flows").status_code == 200


def test_the_body_cap_is_a_setting(rt, deadlines, monkeypatch) -> None:
    from relais.web.serve import WebThread

    monkeypatch.setenv("RELAIS_WEB_MAX_BODY", "2048")
    with WebThread(rt) as w, httpx.Client(base_url=w.url) as c:
        assert c.post("/login", content=b"u=" + b"x" * 3000).status_code == 413
        assert c.post("/login", content=b"u=" + b"x" * 1000).status_code == 403  # read, then no CSRF token


# ---- who the client is ----------------------------------------------------------------------------


def _login_refusals(rt) -> list[str]:
    """Where the audit says the web's refused logins came from (the detail of an audit_log row, or the
    client address of a counted refusal)."""
    from flows.store.audit import AuditQuery

    rows = [a.detail or "" for a in rt.store.audit_rows() if a.action == "web.login" and a.outcome == "refused"]
    return rows + [r.client for r in rt.store.refusal_page(AuditQuery(action="web.login"))[0]]


def test_a_forged_x_forwarded_for_is_not_believed(rt, servers) -> None:
    url = f"http://127.0.0.1:{servers['web']}"
    with httpx.Client(base_url=url, headers={"X-Forwarded-For": "203.0.113.50"}) as c:
        assert c.post("/login", data={"username": "alice", "password": "x"}).status_code == 403  # no form token
    where = _login_refusals(rt)
    assert where and all("127.0.0.1" in w and "203.0.113.50" not in w for w in where), where
    # the per-address throttle counts every try as 127.0.0.1's, whatever address each one claims
    codes = []
    for k in range(30):
        with httpx.Client(base_url=url, headers={"X-Forwarded-For": f"198.51.100.{k}"}) as c:
            m = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)
            assert m
            codes.append(
                c.post("/login", data={"username": f"nobody{k}", "password": "x", "csrf": m.group(1)}).status_code
            )
    assert 429 in codes and set(codes) <= {401, 429}, codes


@contextlib.contextmanager
def _started(server):  # relais.api.serve.ServerThread, built first to add a middleware
    server.start(SERVER_START_SECONDS)
    try:
        yield server
    finally:
        server.stop()


def test_an_api_client_is_the_connection_s_address_whatever_it_forwards(rt, deadlines) -> None:
    from relais.api.serve import ServerThread

    seen: list[str] = []
    server = ServerThread(rt)
    app = server.server.config.app

    @app.middleware("http")
    async def who(request, call_next):  # what the API's handlers read as the client
        seen.append(request.client.host if request.client else "?")
        return await call_next(request)

    with (
        _started(server),
        httpx.Client(base_url=server.url, headers={"X-Forwarded-For": "203.0.113.50"}) as c,
    ):
        r = c.get("/api/v1/invoices", headers={"Authorization": "Bearer rls_forged"})
    assert r.status_code == 401
    assert seen == ["127.0.0.1"], seen


def test_an_api_refusal_is_audited_with_the_connection_s_address(rt, servers) -> None:
    from flows.store.audit import AuditQuery

    url = f"http://127.0.0.1:{servers['api']}"
    with httpx.Client(base_url=url, headers={"X-Forwarded-For": "203.0.113.50"}) as c:
        assert c.get("/api/v1/invoices", headers={"Authorization": "Bearer rls_forged"}).status_code == 401
    counted, _ = rt.store.refusal_page(AuditQuery(actor="anonymous"))
    assert [r.client for r in counted] == ["127.0.0.1"], counted


def test_forwarded_addresses_are_believed_from_a_trusted_proxy(rt, deadlines, monkeypatch) -> None:
    from relais.api.serve import ServerThread
    from relais.web.serve import WebThread

    monkeypatch.setenv("RELAIS_TRUSTED_PROXIES", "127.0.0.1, ::1")
    with WebThread(rt) as w, httpx.Client(base_url=w.url, headers={"X-Forwarded-For": "203.0.113.50"}) as c:
        assert c.post("/login", data={"username": "alice", "password": "x"}).status_code == 403
    where = _login_refusals(rt)
    assert where and all("203.0.113.50" in w for w in where), where
    seen: list[str] = []
    server = ServerThread(rt)

    @server.server.config.app.middleware("http")
    async def who(request, call_next):
        seen.append(request.client.host if request.client else "?")
        return await call_next(request)

    with (
        _started(server),
        httpx.Client(base_url=server.url, headers={"X-Forwarded-For": "203.0.113.50"}) as c,
    ):
        assert c.get("/api/v1/invoices").status_code == 401
    assert seen == ["203.0.113.50"], seen


# ---- the same deadlines over h11 (uvicorn's other HTTP implementation) ----------------------------


def test_the_deadlines_hold_over_h11_too(rt, deadlines) -> None:
    import uvicorn

    from relais.api.app import create_app
    from relais.api.serve import Server

    ready = threading.Event()
    config = uvicorn.Config(
        create_app(rt),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        http=httpguard.h11_protocol(HEADER_TIMEOUT, BODY_TIMEOUT),
    )
    server = Server(config, on_ready=lambda _s: ready.set())
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert ready.wait(SERVER_START_SECONDS) and server.port
        s = _connect(server.port)
        assert _healthz(s).startswith(b"HTTP/1.1 200 ")
        s.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        answer, took = _cut_after(s)
        assert answer.startswith(b"HTTP/1.1 408 ") and took < HEADER_TIMEOUT + 3, (answer[:80], took)
        head = b"POST /api/v1/flows HTTP/1.1\r\nHost: relais\r\nContent-Length: 5000\r\n\r\nx"
        answer, took = _trickle(_connect(server.port), head, 15)
        assert answer.startswith(b"HTTP/1.1 408 ") or answer.startswith(b"HTTP/1.1 401 "), answer[:80]
        assert took < BODY_TIMEOUT + 3, took
    finally:
        server.should_exit = True
        thread.join(10)
