"""Sessions that end, and limits that concurrency does not walk past (issue 19, sections 2 and 3).

The web application is served by uvicorn (relais/web/serve.py WebThread) over a Runtime of this process;
the clients are httpx, several at once (threads released together by a barrier) for the races. The
session table's behaviour is checked on both stores (SQLite and PostgreSQL) where the store decides.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from flows.domain.lifecycle import FlowStatus
from relais.compose import Runtime
from relais.settings import Settings
from relais.web.auth.passwords import hash_password
from relais.web.serve import WebThread
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[3]
PASSWORDS = {"alice": "ops-password-12", "bob": "partner-pass-12", "carol": "viewer-pass-123"}
ROLES = {"alice": ("ops", None), "bob": ("partner", "op-b"), "carol": ("viewer", None)}


@contextmanager
def _served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: tuple[str, str | None] | None = None, **env: str
) -> Iterator[tuple[str, Runtime]]:
    """A home with alice (ops), bob (partner op-b) and carol (viewer), served with these RELAIS_WEB_* settings."""
    for key in ("RELAIS_WEB_SESSION_HOURS", "RELAIS_WEB_IDLE_MINUTES"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    kw = {"database_url": store[0], "database_schema": store[1]} if store else {}
    rt = Runtime.open(Settings.from_env(tmp_path / "home", stable_seconds=0.0, **kw))
    for name, (role, partner) in ROLES.items():
        rt.store.add_web_user(name, role, partner, hash_password(PASSWORDS[name]))
    try:
        with WebThread(rt) as web:
            yield web.url, rt
    finally:
        rt.close()


def _token(c: httpx.Client, path: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', c.get(path).text)
    assert m, f"no CSRF token on {path}"
    return m.group(1)


def _login(url: str, name: str, password: str | None = None) -> httpx.Client:
    c = httpx.Client(base_url=url, follow_redirects=False, timeout=60)
    r = c.post(
        "/login",
        data={"username": name, "password": password or PASSWORDS[name], "next": "/flows", "csrf": _token(c, "/login")},
    )
    assert r.status_code == 303 and r.headers["location"] == "/flows", (r.status_code, r.text[:300])
    return c


def _in(c: httpx.Client) -> bool:
    r = c.get("/flows")
    assert r.status_code in (200, 303), r.status_code
    return r.status_code == 200


def _out_with(c: httpx.Client, message: str) -> None:
    """The client is sent to /login, which says (French first) why."""
    r = c.get("/flows")
    assert r.status_code == 303 and r.headers["location"].startswith("/login"), r.status_code
    page = c.get(r.headers["location"])
    assert message in page.text, page.text[:2000]


def _replay(url: str, c: httpx.Client) -> httpx.Client:
    """Another client holding a copy of `c`'s cookie as it is now."""
    return httpx.Client(base_url=url, follow_redirects=False, timeout=60, cookies=dict(c.cookies))


def _cookie(c: httpx.Client) -> dict:
    """What the signed session cookie holds (itsdangerous: base64 JSON, timestamp, signature)."""
    import base64
    import json

    value = c.cookies["relais_session"].split(".")[0]
    return json.loads(base64.b64decode(value + "=" * (-len(value) % 4)))


def _relais(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAIS_")}
    env.update(RELAIS_HOME=str(home), RELAIS_LOG_LEVEL="WARNING")
    return subprocess.run(
        [sys.executable, "-m", "relais.cli", *args],
        env=env,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


# ---- logout, lifetime, idle timeout ------------------------------------------------------------


def test_the_cookie_replayed_after_logout_is_sent_to_login(store_url, tmp_path, monkeypatch):
    with _served(tmp_path, monkeypatch, store_url) as (url, rt):
        c = _login(url, "alice")
        copy = _replay(url, c)
        assert _in(copy)
        assert set(_cookie(c)) == {"sid"} and len(_cookie(c)["sid"]) >= 43  # 256 random bits, nothing else
        assert copy.get("/flows").headers.get("set-cookie") is None  # a request does not re-sign the cookie
        r = c.post("/logout", data={"csrf": _token(c, "/flows")})
        assert r.status_code == 303 and r.headers["location"] == "/login"
        _out_with(copy, "Votre session a pris fin")
        assert not _in(c)
        [s] = rt.store.open_web_sessions(None, _long_ago(), _long_ago()) or [None]  # nothing open
        assert s is None
        assert [a.action for a in rt.store.audit_rows()][-2:] == ["web.login", "web.logout"]


def test_a_logout_without_its_form_token_is_refused_and_the_session_stays_open(tmp_path, monkeypatch):
    """Never a login page over a session still open: a logout with no or a stale CSRF token (a form of an
    older page, another site's post) is a 403 page, audited, and the session is as it was."""
    with _served(tmp_path, monkeypatch) as (url, rt):
        c = _login(url, "alice")
        for sent in ({}, {"csrf": "stale"}):
            r = c.post("/logout", data=sent)
            assert r.status_code == 403 and "rechargez la page" in r.text, (r.status_code, r.text[:300])
            assert _in(c)
        assert [(a.action, a.outcome) for a in rt.store.audit_rows()][-1] == ("web.logout", "refused")
        assert c.post("/logout", data={"csrf": _token(c, "/flows")}).status_code == 303
        assert not _in(c)


def _long_ago():
    import datetime as dt

    return dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def test_an_idle_session_ends_and_an_active_one_does_not(tmp_path, monkeypatch):
    with _served(tmp_path, monkeypatch, RELAIS_WEB_IDLE_MINUTES="0.1") as (url, rt):  # 6 s (last seen: every 3 s)
        c = _login(url, "carol")
        start = time.monotonic()
        while time.monotonic() - start < 9:  # 9 s of activity, past the idle timeout: still in
            time.sleep(1)
            assert _in(c)
        [s] = rt.store.open_web_sessions("carol", _long_ago(), _long_ago())
        assert (s.last_seen_at - s.created_at).total_seconds() >= 5, "last_seen was kept up to date"
        time.sleep(6.5)
        _out_with(c, "inactivité")


def test_a_session_ends_at_its_absolute_lifetime_even_when_active(tmp_path, monkeypatch):
    with _served(tmp_path, monkeypatch, RELAIS_WEB_SESSION_HOURS=str(6 / 3600)) as (url, _rt):  # 6 s
        c = _login(url, "carol")
        start = time.monotonic()
        while time.monotonic() - start < 3:
            assert _in(c)
            time.sleep(0.5)
        time.sleep(max(0.0, 6.5 - (time.monotonic() - start)))
        _out_with(c, "durée maximale")


def test_last_seen_is_written_at_most_once_a_minute(tmp_path, monkeypatch):
    with _served(tmp_path, monkeypatch) as (url, rt):
        c = _login(url, "carol")
        [before] = rt.store.open_web_sessions("carol", _long_ago(), _long_ago())
        for _ in range(5):
            assert _in(c)
        [after] = rt.store.open_web_sessions("carol", _long_ago(), _long_ago())
        assert after.last_seen_at == before.last_seen_at


# ---- credentials and rights changed ------------------------------------------------------------


def test_relais_users_password_ends_the_user_s_sessions(tmp_path, monkeypatch):
    with _served(tmp_path, monkeypatch) as (url, rt):
        home = rt.settings.home
        c1, c2, other = _login(url, "bob"), _login(url, "bob"), _login(url, "carol")
        short = _relais(home, "users", "password", "bob", stdin="short-pass\n")
        assert short.returncode != 0 and "12 characters" in short.stderr
        assert _in(c1)
        done = _relais(home, "users", "password", "bob", stdin="a-brand-new-password\n")
        assert done.returncode == 0, done.stderr
        _out_with(c1, "Votre session a pris fin")
        assert not _in(c2) and _in(other)
        bad = httpx.Client(base_url=url, timeout=60)
        r = bad.post("/login", data={"username": "bob", "password": PASSWORDS["bob"], "csrf": _token(bad, "/login")})
        assert r.status_code == 401
        assert _in(_login(url, "bob", "a-brand-new-password"))
        assert any(a.action == "web.user.password" and a.target == "bob" for a in rt.store.audit_rows())
        assert _relais(home, "users", "password", "nobody", stdin="a-brand-new-password\n").returncode != 0
        assert "password" in _relais(home, "users", "--help").stdout


def test_disabling_a_user_ends_their_sessions_for_good(tmp_path, monkeypatch):
    with _served(tmp_path, monkeypatch) as (url, rt):
        c = _login(url, "carol")
        assert _relais(rt.settings.home, "users", "disable", "carol").returncode == 0
        _out_with(c, "Votre session a pris fin")
        c = _login(url, "alice")
        copy = _replay(url, c)
        rt.store.set_web_user("alice", disabled=True)
        rt.store.set_web_user("alice", disabled=False)
        assert not _in(copy), "enabling again does not reopen the sessions"


def test_a_role_change_ends_the_user_s_sessions(tmp_path, monkeypatch):
    with _served(tmp_path, monkeypatch) as (url, rt):
        c, other = _login(url, "carol"), _login(url, "alice")
        rt.store.set_web_role("carol", "partner", "op-a")  # what an OpenID Connect sign-in does
        _out_with(c, "Votre session a pris fin")
        assert _in(other)
        [s] = [
            s for s in rt.store.open_web_sessions(None, _long_ago(), _long_ago()) if s.user == "alice"
        ]  # carol's is no longer open
        assert s.user == "alice"


# ---- /sessions: log out everywhere -------------------------------------------------------------


def test_ops_log_a_user_out_everywhere_and_themselves(store_url, tmp_path, monkeypatch):
    with _served(tmp_path, monkeypatch, store_url) as (url, rt):
        ops, ops2 = _login(url, "alice"), _login(url, "alice")
        bob1, bob2, carol = _login(url, "bob"), _login(url, "bob"), _login(url, "carol")
        page = ops.get("/sessions").text
        assert page.count("<td>bob") == 2 and page.count("<td>carol") == 1 and "cette session" in page
        token = _token(ops, "/sessions")
        assert ops.post("/sessions/end-user", data={"user": "bob"}).status_code == 403  # no CSRF token
        assert _in(bob1)
        r = ops.post("/sessions/end-user", data={"user": "bob", "csrf": token})
        assert r.status_code == 303 and r.headers["location"] == "/sessions"
        _out_with(bob1, "Votre session a pris fin")
        assert not _in(bob2) and _in(carol) and _in(ops)
        row = [a for a in rt.store.audit_rows() if a.action == "web.sessions.end"][-1]
        assert (row.principal, row.target, row.outcome, row.detail) == ("web:alice", "bob", "ok", "2 session(s) ended")
        # "log out my other sessions" keeps this one
        assert ops.post("/sessions/end-others", data={"csrf": token}).status_code == 303
        assert _in(ops) and not _in(ops2)
        # everywhere, oneself included
        r = ops.post("/sessions/end-user", data={"user": "alice", "csrf": token})
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert not _in(ops)


def test_a_partner_user_sees_and_ends_only_its_own_sessions(tmp_path, monkeypatch):
    with _served(tmp_path, monkeypatch) as (url, rt):
        ops, bob1, bob2, carol = _login(url, "alice"), _login(url, "bob"), _login(url, "bob"), _login(url, "carol")
        page = bob1.get("/sessions")
        assert page.status_code == 200 and page.text.count("<td>bob") == 2
        assert "<td>alice" not in page.text and "<td>carol" not in page.text and "/sessions/end-user" not in page.text
        token = _token(bob1, "/sessions")
        for victim in ("alice", "carol"):
            r = bob1.post("/sessions/end-user", data={"user": victim, "csrf": token})
            assert r.status_code == 403
        assert _in(ops) and _in(carol)
        refused = [a for a in rt.store.audit_rows() if a.action == "web.sessions.end" and a.outcome == "refused"]
        assert [(a.principal, a.target) for a in refused] == [("web:bob", "alice"), ("web:bob", "carol")]
        assert bob1.post("/sessions/end-others", data={"csrf": token}).status_code == 303
        assert _in(bob1) and not _in(bob2) and _in(ops) and _in(carol)
        viewer = carol.get("/sessions").text  # a viewer, too, sees only their own
        assert "<td>carol" in viewer and "<td>alice" not in viewer and "<td>bob" not in viewer


# ---- /account/password -------------------------------------------------------------------------


def test_a_user_changes_their_password_and_their_other_sessions_end(tmp_path, monkeypatch):
    with _served(tmp_path, monkeypatch) as (url, rt):
        c, other = _login(url, "carol"), _login(url, "carol")
        old_cookie = _replay(url, c)
        token = _token(c, "/account/password")
        new = "carol-new-password-1"
        cases = [
            ({"current": "wrong", "new": new, "again": new}, "actuel incorrect"),
            ({"current": PASSWORDS["carol"], "new": new, "again": new + "x"}, "diffèrent"),
            ({"current": PASSWORDS["carol"], "new": "short-1", "again": "short-1"}, "trop court"),
            (
                {"current": PASSWORDS["carol"], "new": PASSWORDS["carol"], "again": PASSWORDS["carol"]},
                "mot de passe est l",
            ),
        ]
        for form, says in cases:
            r = c.post("/account/password", data={**form, "csrf": token})
            assert r.status_code == 400 and says in r.text, (form, r.status_code)
        assert (
            c.post("/account/password", data={"current": PASSWORDS["carol"], "new": new, "again": new}).status_code
            == 403
        )
        assert _in(other)
        r = c.post("/account/password", data={"current": PASSWORDS["carol"], "new": new, "again": new, "csrf": token})
        assert r.status_code == 303
        assert _in(c), "this browser keeps a (new) session"
        assert c.cookies["relais_session"] != old_cookie.cookies["relais_session"]
        assert not _in(other) and not _in(old_cookie)
        assert _in(_login(url, "carol", new))
        actions = [(a.action, a.outcome) for a in rt.store.audit_rows() if a.action == "web.account.password"]
        assert actions == [("web.account.password", "refused")] * 5 + [("web.account.password", "ok")]


# ---- limits under concurrency ------------------------------------------------------------------


def _at_once(calls: list[Callable[[], httpx.Response]]) -> list[int]:
    """Run the calls in threads released together; their status codes, in order."""
    barrier = threading.Barrier(len(calls))
    codes: list[int] = [0] * len(calls)

    def go(k: int) -> None:
        barrier.wait()
        codes[k] = calls[k]().status_code

    threads = [threading.Thread(target=go, args=(k,)) for k in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return codes


def _login_call(url: str, name: str, password: str) -> Callable[[], httpx.Response]:
    c = httpx.Client(base_url=url, follow_redirects=False, timeout=120)
    data = {"username": name, "password": password, "csrf": _token(c, "/login")}
    return lambda: c.post("/login", data=data)


@pytest.mark.parametrize("right", ["first", "last"])
def test_concurrent_logins_check_no_more_passwords_than_the_limit(tmp_path, monkeypatch, right):
    with _served(tmp_path, monkeypatch) as (url, _rt):
        wrong = [_login_call(url, "carol", f"wrong-{k}") for k in range(11)]
        good = _login_call(url, "carol", PASSWORDS["carol"])
        if right == "first":
            codes = _at_once([good, *wrong])
            checked = [c for c in codes if c in (401, 303)]
            assert len(checked) <= 5 and codes.count(429) == 12 - len(checked), codes
            assert codes[0] in (303, 429) and codes.count(303) <= 1, codes
        else:
            codes = _at_once(wrong)
            assert codes.count(401) <= 5 and codes.count(429) == 11 - codes.count(401), codes
            assert good().status_code == 429, "the right password came past the limit"


def test_concurrent_reprocess_clicks_reprocess_the_flow_once(store_url, tmp_path, monkeypatch):
    from relais import runner
    from tests.support.helpers import drop, run

    processed: list[list[str]] = []
    with _served(tmp_path, monkeypatch, store_url) as (url, rt):
        drop(rt, "op-a", "notes.txt", b"not an invoice\n")
        [flow] = run(rt)
        assert flow.status is FlowStatus.IN_REJETE, flow.status
        monkeypatch.setattr(runner, "process_flows", lambda rt, ids: processed.append(list(ids)))  # stays queued
        clicks = []
        for _ in range(8):
            c = _login(url, "alice")
            token = _token(c, f"/flows/{flow.id}")
            clicks.append(lambda c=c, token=token: c.post(f"/flows/{flow.id}/reprocess", data={"csrf": token}))
        codes = _at_once(clicks)
        assert codes == [303] * 8
        rows = [a for a in rt.store.audit_rows() if a.action == "web.flow.reprocess"]
        assert [a.outcome for a in rows].count("ok") == 1, [(a.outcome, a.detail) for a in rows]
        after = rt.store.get_flow(flow.id)
        assert after is not None and after.reopened == 1 and after.status is FlowStatus.IN_EN_ATTENTE_RETRAITEMENT_CPP
        wait_until(lambda: processed, 10, "the reprocessing to be handed to the runner")
        assert processed == [[flow.id]]


# ---- in a browser ------------------------------------------------------------------------------


def test_in_chromium_sessions_page_and_password_change(tmp_path, monkeypatch):
    """Headless Chromium (Debian's chromium): the forms of /sessions and /account/password, as a user
    clicks them; another browser's session ends, this one goes on."""
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("Debian's chromium is not installed (scripts/apt-packages.txt)")
    sync_api = pytest.importorskip("playwright.sync_api")
    artifacts = Path(os.environ.get("RELAIS_TEST_ARTIFACTS", ROOT / "var" / "test-artifacts")) / "web"
    artifacts.mkdir(parents=True, exist_ok=True)
    with _served(tmp_path, monkeypatch) as (url, rt), sync_api.sync_playwright() as p:
        other = _login(url, "carol")  # another device
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(url + "/flows")
            page.get_by_label("Identifiant").fill("carol")
            page.get_by_label("Mot de passe").fill(PASSWORDS["carol"])
            page.get_by_role("button", name="Se connecter").click()
            page.wait_for_url("**/flows")
            page.get_by_role("link", name="Sessions").click()
            page.wait_for_url("**/sessions")
            assert page.locator("tbody tr").count() == 2 and "cette session" in page.content()
            page.screenshot(path=str(artifacts / "sessions.png"), full_page=True)
            page.get_by_role("button", name="Déconnecter mes autres sessions").click()
            page.wait_for_url("**/sessions")
            assert page.locator("tbody tr").count() == 1 and "sessions terminées (1)" in page.content()
            assert not _in(other)
            page.get_by_role("link", name="Mot de passe", exact=True).click()
            page.wait_for_url("**/account/password")
            page.get_by_label("Mot de passe actuel").fill(PASSWORDS["carol"])
            page.get_by_label("Nouveau mot de passe", exact=True).fill("carol-chromium-pass")
            page.get_by_label("Nouveau mot de passe (encore)").fill("carol-chromium-pass")
            page.screenshot(path=str(artifacts / "password.png"), full_page=True)
            page.get_by_role("button", name="Changer de mot de passe").click()
            page.wait_for_url("**/flows")
            assert "Mot de passe changé" in page.content()
            page.get_by_role("button", name="Déconnexion").click()
            page.wait_for_url("**/login")
        finally:
            browser.close()
        assert _in(_login(url, "carol", "carol-chromium-pass"))
