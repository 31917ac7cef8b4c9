"""Issue 19, sections 5 and 6 for the web application, against the real server (uvicorn on 127.0.0.1):

- every page and download carries the security headers (CSP self only, no framing, nosniff,
  same-origin referrer, no-store), logged in or not; in Chromium the pages render and work under that
  CSP with no violation in the console (the poll script runs, the confirmations work, the charts show);
- crafted query parameters get a 400 page naming the parameter (the two known 500s included);
- /readyz tells anonymous callers ready / not ready only; /metrics is for ops (or on its own address);
- pausing a partner Relais does not know is a 404;
- Secure cookies by default but on loopback (relais/web/auth/headers.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from relais.s3local import free_ports
from tests.support.waiting import server_lines
from tests.support.web_site import Site, serving_site

ROOT = Path(__file__).resolve().parents[3]
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    with serving_site(tmp_path_factory.mktemp("webheaders")) as s:
        yield s


def _pages(site: Site) -> list[str]:
    a = site.flows["op-a"]
    return [
        "/",
        "/flows",
        "/flows?status=IN_INTEGRE_PARTIEL&lang=en",
        f"/flows/{a.id}",
        "/rejects",
        "/rejects/RLS-R03",
        "/audit",
        "/metrics",
        f"/flows/{a.id}/file",
        f"/flows/{a.id}/invoices/1/file",
        f"/flows/{a.id}/returns/{site.return_row}",
        "/flows/CPP9999999999",  # a 404 page
        "/flows?sort=invoices&after_id=X&after_value=abc",  # a 400 page
        "/flows/poll?newest=",
    ]


def _assert_headers(r: httpx.Response, *, no_store: bool = True) -> None:
    where = f"{r.request.method} {r.request.url} -> {r.status_code}"
    assert r.headers.get("content-security-policy") == CSP, where
    assert r.headers.get("x-frame-options") == "DENY", where
    assert r.headers.get("x-content-type-options") == "nosniff", where
    assert r.headers.get("referrer-policy") == "same-origin", where
    if no_store:
        assert r.headers.get("cache-control") == "no-store", where


def test_every_page_and_download_has_the_security_headers(site):
    ops = site.login("alice")
    for path in _pages(site):
        r = ops.get(path)
        assert r.status_code < 500, (path, r.status_code)
        _assert_headers(r)
    downloads = [ops.get(p) for p in _pages(site) if "/file" in p or "/returns/" in p]
    assert [r.status_code for r in downloads] == [200, 200, 200]
    with httpx.Client(base_url=site.url, follow_redirects=False) as anon:
        for path in [*_pages(site), "/login", "/healthz", "/readyz", "/nowhere"]:
            _assert_headers(anon.get(path))
        css = anon.get("/static/app.css")
        assert css.status_code == 200
        _assert_headers(css, no_store=False)


def test_crafted_query_parameters_get_a_400_page_naming_them(site):
    ops = site.login("alice")
    cases = {
        "/flows?sort=invoices&after_id=X&after_value=abc": "after_value",  # was a 500 (int('abc'))
        "/flows?sort=received&after_id=X&after_value=notadate": "after_value",  # was a 500 (fromisoformat)
        "/flows?sort=received&after_value=notadate": "after_id",
        f"/flows?sort=invoices&after_id=X&after_value={10**30}": "after_value",  # past the column
        "/flows?until=9999-99-99": "until",
        "/flows?status=NOPE": "status",
        "/flows?sort=nope": "sort",
        "/flows?order=sideways": "order",
        "/flows?code=XX": "code",
        "/flows?channel=pigeon": "channel",
        "/flows?q=a%00b": "q",  # PostgreSQL refuses NUL in a text
        "/flows?lang=xx": "lang",
        "/?lang=de": "lang",
        f"/flows/{site.flows['op-a'].id}/invoices/abc/file": "position",
    }
    for path, name in cases.items():
        r = ops.get(path)
        assert r.status_code == 400, (path, r.status_code, r.text[-500:])
        assert "Requête invalide" in r.text and f"<code>{name}</code>" in r.text, (path, r.text[-800:])
    r = ops.get("/flows/poll?sort=invoices&after_id=X&after_value=abc")
    assert r.status_code == 400 and r.json() == {"error": "invalid parameter", "parameter": "after_value"}
    # a real next-page link still works, and a year-9999 end date is a day like any other
    assert ops.get("/flows?sort=invoices&order=asc&after_id=CPP0&after_value=0").status_code == 200
    assert ops.get("/flows?since=2000-01-01&until=9999-12-31").status_code == 200
    assert ops.get("/flows?sort=received&after_id=CPP9&after_value=2024-05-01T10:00:00%2B02:00").status_code == 200
    assert "Invalid request" in ops.get("/flows?status=NOPE&lang=en").text


def test_readyz_says_ready_or_not_and_nothing_more(site):
    with httpx.Client(base_url=site.url) as anon:
        r = anon.get("/readyz")
        assert r.status_code == 200 and r.json() == {"status": "ready"}
        assert anon.get("/healthz").json() == {"status": "ok"}


def test_readyz_keeps_the_failure_in_the_log(tmp_path):
    from relais.compose import Runtime
    from relais.settings import Settings
    from relais.web.serve import WebThread

    rt = Runtime.open(Settings.from_env(tmp_path / "home", stable_seconds=0.0, workers=0))
    try:
        with WebThread(rt) as web:
            rt.store.engine.dispose()
            (tmp_path / "home" / "relais.db").unlink()
            (tmp_path / "home" / "relais.db").mkdir()  # the store cannot be opened any more
            r = httpx.get(web.url + "/readyz")
            assert r.status_code == 503 and r.json() == {"status": "not ready"}, r.text
            assert "Error" not in r.text and "relais.db" not in r.text
    finally:
        rt.close()


def test_metrics_are_for_ops_only_on_the_web_port(site):
    with httpx.Client(base_url=site.url, follow_redirects=False) as anon:
        r = anon.get("/metrics")
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), r.status_code
        assert "relais_flows" not in r.text
    for name in ("bob", "carol"):
        r = site.login(name).get("/metrics")
        assert r.status_code == 404 and "relais_flows" not in r.text, (name, r.status_code)
    r = site.login("alice").get("/metrics")
    assert r.status_code == 200 and "relais_flows{" in r.text


def test_metrics_on_their_own_address_for_prometheus(tmp_path):
    """`relais web serve` with RELAIS_WEB_METRICS_ADDRESS also serves /metrics there, to anyone."""
    import os

    home = tmp_path / "home"
    [port] = free_ports(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAIS_")}
    env.update(RELAIS_HOME=str(home), RELAIS_LOG_LEVEL="WARNING", RELAIS_WEB_METRICS_ADDRESS=f"127.0.0.1:{port}")
    assert subprocess.run([sys.executable, "-m", "relais.cli", "db", "upgrade"], env=env, cwd=ROOT).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "relais.cli", "web", "serve", "--port", "0"],
        env=env,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = server_lines(proc, until="relais web: listening on", stream="stderr")
        web = re.search(r"listening on (http://127\.0\.0\.1:\d+)", "".join(lines))
        assert web and f"metrics on http://127.0.0.1:{port}/metrics" in "".join(lines), lines
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert scraped.status_code == 200 and "relais_flows" in scraped.text
        assert httpx.get(f"http://127.0.0.1:{port}/flows").status_code == 404  # nothing else there
        assert httpx.get(web[1] + "/metrics", follow_redirects=False).status_code == 303
    finally:
        proc.terminate()
        proc.wait(20)


def test_pausing_a_partner_relais_does_not_know_is_a_404(site):
    ops = site.login("alice")
    token = re.search(r'name="csrf" value="([^"]+)"', ops.get("/flows").text)
    assert token
    r = ops.post("/partners/op-phantom/pause", data={"csrf": token[1], "back": "/flows"})
    assert r.status_code == 404
    assert "op-phantom" not in site.rt.store.paused_partners()
    r = ops.post("/partners/op-a/pause", data={"csrf": token[1], "back": "/flows"})
    assert r.status_code == 303 and "op-a" in site.rt.store.paused_partners()
    assert ops.post("/partners/op-a/resume", data={"csrf": token[1]}).status_code == 303


def test_an_address_the_application_does_not_have_is_the_404_page(site):
    for client in (httpx.Client(base_url=site.url), site.login("bob")):
        r = client.get("/nowhere/../etc")
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), r.text[:200]
        assert '<html lang="fr">' in r.text and "detail" not in r.text


def test_a_partner_user_sees_no_server_path(site):
    """The flow page names a return flow by its file, not by where it lies on the server (ops see both)."""
    home = str(site.rt.settings.home)
    flow = next(f for f in site.rt.store.list_flows() if f.partner == "op-b")
    page = site.login("bob").get(f"/flows/{flow.id}")
    assert page.status_code == 200 and f"CR_{flow.id}_" in page.text
    assert home not in page.text and "dropzones" not in page.text
    assert home in site.login("alice").get(f"/flows/{flow.id}").text


def test_secure_cookies_by_default_but_on_loopback(tmp_path, monkeypatch):
    """A server on all addresses sets a Secure session cookie; on loopback (the tests' site) it does not."""
    from relais.compose import Runtime
    from relais.settings import Settings
    from relais.web.auth.headers import secure_cookies
    from relais.web.serve import WebThread

    monkeypatch.delenv("RELAIS_WEB_SECURE_COOKIES", raising=False)
    rt = Runtime.open(Settings.from_env(tmp_path / "home", stable_seconds=0.0, workers=0))
    try:
        with WebThread(rt, host="0.0.0.0") as web:
            r = httpx.get(f"http://127.0.0.1:{web.server.port}/login")
            assert "secure" in r.headers["set-cookie"].lower().split("; "), r.headers["set-cookie"]
        with WebThread(rt) as web:
            r = httpx.get(web.url + "/login")
            assert "secure" not in r.headers["set-cookie"].lower().split("; "), r.headers["set-cookie"]
    finally:
        rt.close()

    assert secure_cookies("0.0.0.0", {}) and secure_cookies("192.0.2.10", {}) and secure_cookies("::", {})
    assert not secure_cookies("127.0.0.1", {}) and not secure_cookies("::1", {})
    assert secure_cookies("127.0.0.1", {"RELAIS_WEB_SECURE_COOKIES": "1"})
    assert not secure_cookies("0.0.0.0", {"RELAIS_WEB_SECURE_COOKIES": "0"})


# ---- in Chromium --------------------------------------------------------------------------------


def test_in_a_browser_the_pages_work_under_the_csp(site, browser):
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/flows/poll" in r.url else None)
    page.clock.install()
    page.goto(site.url + "/flows")  # to /login?next=/flows
    page.get_by_label("Identifiant").fill("alice")
    page.get_by_label("Mot de passe").fill("ops-password-1")
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/flows")
    # the poll script runs (static/app.js): a new flow is announced
    from tests.support.helpers import drop

    page.clock.run_for(11_000)
    page.wait_for_timeout(300)
    assert polls, "the page's script did not poll"
    drop(site.rt, "op-b", "more.xml", b"<not-an-invoice/>")
    from relais.runner import run_once

    run_once(site.rt)
    page.clock.run_for(11_000)
    page.wait_for_selector("#new-flows:not([hidden])")
    # the charts show
    page.goto(site.url + "/")
    assert page.locator("svg[role=img]").count() >= 3
    assert page.locator("svg[role=img]").first.bounding_box()["height"] > 50
    page.goto(site.url + "/rejects")
    assert page.locator("svg[role=img]").count() >= 1
    # the confirmations work: dismissed, nothing happens; accepted, the partner is paused
    a = site.flows["op-a"]
    page.goto(site.url + f"/flows/{a.id}")
    page.once("dialog", lambda d: d.dismiss())
    page.get_by_role("button", name=re.compile("Suspendre la réception")).click()
    page.wait_for_timeout(300)
    assert page.locator(".flash").count() == 0
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name=re.compile("Suspendre la réception")).click()
    page.wait_for_selector(".flash")
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name=re.compile("Reprendre la réception")).click()
    page.wait_for_selector(".flash")
    # the 400 page and the stylesheet render (app.css applies: the header is laid out)
    page.goto(site.url + "/flows?sort=received&after_id=X&after_value=notadate")
    assert "after_value" in page.locator("main").inner_text()
    assert page.evaluate("getComputedStyle(document.querySelector('header.top')).display") == "flex"
    page.close()
    violations = [p for p in problems if "Content Security Policy" in p or "Refused to" in p]
    assert not violations, violations


def test_with_an_openid_provider_forms_may_post_to_it(tmp_path, monkeypatch):
    from relais.compose import Runtime
    from relais.settings import Settings
    from relais.web.serve import WebThread

    monkeypatch.setenv("RELAIS_OIDC_ISSUER", "https://idp.example:8443/realms/relais")
    monkeypatch.setenv("RELAIS_OIDC_CLIENT_ID", "relais")
    monkeypatch.setenv("RELAIS_OIDC_CLIENT_SECRET", "s3cret")
    rt = Runtime.open(Settings.from_env(tmp_path / "home", stable_seconds=0.0, workers=0))
    try:
        with WebThread(rt) as web:
            r = httpx.get(web.url + "/login")
            assert "form-action 'self' https://idp.example:8443;" in r.headers["content-security-policy"]
            assert r.headers["x-frame-options"] == "DENY"
    finally:
        rt.close()
