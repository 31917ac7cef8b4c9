"""The "Suivi des flux" web application (relais/web), served by a real `relais web serve` process.

A home gets two partners' batches processed by `relais run` (some invoices misrouted: unknown
recipient), and three users made with `relais users add` (password on stdin). Then:

- with a plain HTTP client (httpx): anonymous requests go to /login; a wrong password is refused and
  throttled; a POST without its CSRF token is refused and audited; a partner user gets 404 for another
  partner's flow and file (as for an unknown id); a viewer cannot act; downloads are the archived
  bytes (SHA-256 checked); /metrics, /healthz, /readyz answer;
- in headless Chromium (Playwright, Debian's `chromium` through `executable_path`): log in and out,
  filter and search, open a flow, see an error with its explanation, download the integration
  report, pause a partner's intake; a screenshot of each page is saved under
  ``var/test-artifacts/web/`` (or $RELAIS_TEST_ARTIFACTS).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from relais import generate as gen
from tests.support.waiting import get_when_up, server_lines, wait_until

ROOT = Path(__file__).resolve().parents[3]
PASSWORDS = {"alice": "ops-password-1", "bob": "partner-pass-1", "carol": "viewer-pass-1"}
ARTIFACTS = Path(os.environ.get("RELAIS_TEST_ARTIFACTS", ROOT / "var" / "test-artifacts")) / "web"


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAIS_")}
    env.update(RELAIS_HOME=str(home), RELAIS_STABLE_SECONDS="0", RELAIS_WORKERS="0", RELAIS_LOG_LEVEL="WARNING")
    return env


def _relais(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "relais.cli", *args],
        env=_env(home),
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[dict]:
    work = tmp_path_factory.mktemp("web")
    home = work / "home"
    recipients = gen.sample_directory()
    # The first directory lacks two recipients of op-c's batch (their invoices: RLS-R03); the browser test
    # imports the full one and reprocesses op-c's flow.
    missing = sorted({s.buyer_siret for s in gen.plan(10, 2, recipients, seed=5)})[:2]
    partial = [r for r in recipients if r.siret not in missing]
    (work / "annuaire.json").write_text(json.dumps(gen.directory_document(partial, "web-1")))
    (work / "annuaire-full.json").write_text(json.dumps(gen.directory_document(recipients, "web-2")))
    assert _relais(home, "directory", "import", str(work / "annuaire.json")).returncode == 0
    old = time.time() - 60
    [path] = gen.write_batch(work / "genc", "ubl", 10, 2, batch="zip", recipients=recipients, seed=5, name="lot-op-c")
    (home / "dropzones" / "op-c" / "in").mkdir(parents=True)
    shutil.move(path, home / "dropzones" / "op-c" / "in" / path.name)
    os.utime(home / "dropzones" / "op-c" / "in" / path.name, (old, old))
    for k, partner in enumerate(("op-a", "op-b")):
        [path] = gen.write_batch(
            work / f"gen{k}",
            "ubl",
            6,
            2,
            batch="zip",
            recipients=recipients,
            misrouted_ratio=0.5,
            seed=21 + k,
            start=1 + 100 * k,
            name=f"lot-{partner}",
        )
        inbox = home / "dropzones" / partner / "in"
        inbox.mkdir(parents=True, exist_ok=True)
        shutil.move(path, inbox / path.name)
        os.utime(inbox / path.name, (old, old))
    ran = _relais(home, "run", "-q")
    assert ran.returncode == 0, ran.stderr[-2000:]
    for name, role, partner in (("alice", "ops", None), ("bob", "partner", "op-b"), ("carol", "viewer", None)):
        args = ["users", "add", name, "--role", role] + (["--partner", partner] if partner else [])
        added = _relais(home, *args, stdin=PASSWORDS[name] + "\n")
        assert added.returncode == 0, added.stderr
    listed = _relais(home, "users", "list").stdout
    assert re.search(r"bob\s+partner\s+op-b\s+actif", listed), listed
    proc = subprocess.Popen(
        [sys.executable, "-m", "relais.cli", "web", "serve", "--port", "0"],
        env=_env(home),
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # after the log's warnings (Secure cookies)
        line = server_lines(proc, until="relais web: listening", stream="stderr")[-1]
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert m, line
        url = f"http://127.0.0.1:{m.group(1)}"
        from flows.store import Store

        store = Store.open(f"sqlite:///{home / 'relais.db'}", migrate=False)
        flows = {f.partner: f for f in store.list_flows(limit=10)}
        store.engine.dispose()
        yield {"url": url, "home": home, "flows": flows, "full_directory": work / "annuaire-full.json"}
    finally:
        proc.terminate()
        proc.wait(20)


def _post_login(c: httpx.Client, **data: str) -> httpx.Response:
    """POST /login as the form does: with the token the login page gave this client."""
    m = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)
    assert m, "the login form has no CSRF token"
    return c.post("/login", data={**data, "csrf": m.group(1)})


def _login(url: str, name: str) -> httpx.Client:
    c = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
    r = _post_login(c, username=name, password=PASSWORDS[name], next="/flows")
    assert r.status_code == 303 and r.headers["location"] == "/flows", r.text[:500]
    return c


def _csrf(c: httpx.Client, path: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', c.get(path).text)
    assert m
    return m.group(1)


# ---- plain HTTP ---------------------------------------------------------------------------------


def test_anonymous_requests_go_to_login(site):
    with httpx.Client(base_url=site["url"], follow_redirects=False) as c:
        for path in ("/", "/flows", f"/flows/{site['flows']['op-a'].id}", f"/flows/{site['flows']['op-a'].id}/file"):
            r = c.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/login"), (path, r.status_code)
        assert c.get("/login").status_code == 200
        cookie = _post_login(c, username="alice", password=PASSWORDS["alice"]).headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    with httpx.Client(base_url=site["url"], follow_redirects=False) as c:
        for evil in ("//evil.example/", "/\\evil.example/", "https://evil.example/"):
            r = _post_login(c, username="alice", password=PASSWORDS["alice"], next=evil)
            assert r.status_code == 303 and r.headers["location"] == "/flows", (evil, r.headers["location"])


def test_a_login_without_the_form_s_token_is_refused(site):
    with httpx.Client(base_url=site["url"], follow_redirects=False) as c:
        r = c.post("/login", data={"username": "alice", "password": PASSWORDS["alice"]})  # another site's form
        assert r.status_code == 403
        assert c.get("/flows").status_code == 303  # not logged in


def test_wrong_passwords_are_refused_then_throttled(site):
    with httpx.Client(base_url=site["url"]) as c:
        codes = [_post_login(c, username="carol", password="nope").status_code for _ in range(6)]
        assert codes[:5] == [401] * 5 and codes[5] == 429, codes
        # even the right password waits for the lockout to end
        assert _post_login(c, username="carol", password=PASSWORDS["carol"]).status_code == 429


def test_a_partner_sees_only_its_own_flows_and_files(site):
    mine, other = site["flows"]["op-b"], site["flows"]["op-a"]
    c = _login(site["url"], "bob")
    page = c.get("/flows").text
    assert mine.id in page and other.id not in page
    assert c.get("/flows", params={"partner": "op-a"}).text.count(other.id) == 0  # the filter cannot widen it
    for path in (f"/flows/{other.id}", f"/flows/{other.id}/file", f"/flows/{other.id}/invoices/1/file"):
        refused, unknown = c.get(path), c.get(path.replace(other.id, "CPP9999999999"))
        assert refused.status_code == unknown.status_code == 404, path
        assert refused.text == unknown.text  # nothing tells an existing id from an unknown one
    r = c.get(f"/flows/{mine.id}/file")
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == mine.sha256
    assert r.headers["x-content-sha256"] == mine.sha256


def test_a_viewer_reads_but_cannot_act(site):
    flow = site["flows"]["op-a"]
    c = _login(site["url"], "alice")
    alice_csrf = _csrf(c, f"/flows/{flow.id}")
    assert "reprocess" in c.get(f"/flows/{flow.id}").text
    v = httpx.Client(base_url=site["url"], follow_redirects=False, timeout=30)
    from flows.store import Store
    from relais.web.auth.passwords import hash_password

    store = Store.open(f"sqlite:///{site['home'] / 'relais.db'}", migrate=False)
    if store.web_user("dave") is None:
        store.add_web_user("dave", "viewer", None, hash_password("viewer-pass-2"))
    store.engine.dispose()
    assert _post_login(v, username="dave", password="viewer-pass-2").status_code == 303
    page = v.get(f"/flows/{flow.id}").text
    assert "/reprocess" not in page  # no action offered
    token = _csrf(v, "/flows")
    r = v.post(f"/partners/{flow.partner}/pause", data={"csrf": token})
    assert r.status_code == 403
    assert alice_csrf != token
    store = Store.open(f"sqlite:///{site['home'] / 'relais.db'}", migrate=False)
    [row] = [a for a in store.audit_rows(target=flow.partner) if a.principal == "web:dave"]
    store.engine.dispose()
    assert row.outcome == "refused" and row.detail == "role viewer may not act", row


def test_an_action_without_its_csrf_token_is_refused_and_audited(site):
    flow = site["flows"]["op-a"]
    c = _login(site["url"], "alice")
    for data in ({}, {"csrf": "forged"}):
        r = c.post(f"/partners/{flow.partner}/pause", data=data)
        assert r.status_code == 403
    from flows.store import Store

    store = Store.open(f"sqlite:///{site['home'] / 'relais.db'}", migrate=False)
    try:
        assert store.paused_partners() == {}
        refused = [
            a
            for a in store.audit_rows(target=flow.partner)
            if a.action == "web.partner.pause" and a.principal == "web:alice"
        ]
        assert len(refused) == 2 and all(a.outcome == "refused" and "CSRF" in (a.detail or "") for a in refused)
    finally:
        store.engine.dispose()


def test_search_filters_and_keyset_pages(site):
    c = _login(site["url"], "alice")
    a, b = site["flows"]["op-a"], site["flows"]["op-b"]
    assert b.id in c.get("/flows", params={"q": b.id}).text and a.id not in c.get("/flows", params={"q": b.id}).text
    from flows.store import Store

    store = Store.open(f"sqlite:///{site['home'] / 'relais.db'}", migrate=False)
    inv = next(i for i in store.iter_invoices(a.id) if i.number)
    store.engine.dispose()
    found = c.get("/flows", params={"q": inv.number}).text
    assert a.id in found and b.id not in found
    by_partner = c.get("/flows", params={"partner": "op-b"}).text
    assert b.id in by_partner and a.id not in by_partner
    assert "No flow" in c.get("/flows", params={"status": "IN_INCIDENTE", "lang": "en"}).text
    ubl = c.get("/flows", params={"code": "IN_DP_E1_UBL_INVOICE"}).text
    assert a.id in ubl and b.id in ubl and str(a.flow_code) == "IN_DP_E1_UBL_INVOICE"
    assert a.id not in c.get("/flows", params={"code": "IN_DP_E1_CII_16B"}).text


def test_dashboard_and_rejects_pages(site):
    c = _login(site["url"], "alice")
    home = c.get("/")
    assert home.status_code == 200 and home.text.count("<svg") >= 3, home.text[:500]
    assert "RLS-R03" in home.text  # among the top rejection rules
    rejects = c.get("/rejects")
    assert rejects.status_code == 200 and "RLS-R03" in rejects.text
    rule = c.get("/rejects/RLS-R03")
    assert rule.status_code == 200 and site["flows"]["op-c"].id in rule.text
    # a partner's dashboard counts only its own flows
    bob = _login(site["url"], "bob")
    assert site["flows"]["op-a"].id not in bob.get("/rejects/RLS-R03").text


def test_metrics_and_health(site):
    c = _login(site["url"], "alice")  # /metrics: for ops only (tests/relais/web/test_web_headers.py)
    m = c.get("/metrics")
    assert m.status_code == 200 and 'relais_flows{status="IN_INTEGRE_PARTIEL"}' in m.text, m.text[:2000]
    assert "relais_rejects{rule=" in m.text
    # stage latencies as histograms: every closed flow counted once, cumulative buckets
    assert 'relais_stage_seconds_count{stage="processing"} 3.0' in m.text, m.text
    assert 'relais_stage_seconds_bucket{le="+Inf",stage="delivery"}' in m.text
    with httpx.Client(base_url=site["url"], follow_redirects=False) as c:
        assert c.get("/metrics").status_code == 303
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/readyz").json() == {"status": "ready"}


# ---- in Chromium --------------------------------------------------------------------------------


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_in_a_browser_log_in_filter_open_download_act_and_log_out(site, browser, tmp_path):
    a = site["flows"]["op-a"]
    page = browser.new_page(accept_downloads=True)
    page.goto(site["url"] + "/flows")
    assert "/login" in page.url
    _shot(page, "login")
    page.get_by_label("Identifiant").fill("alice")
    page.get_by_label("Mot de passe").fill(PASSWORDS["alice"])
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/flows")
    page.goto(site["url"] + "/")
    assert page.locator("svg[role=img]").count() >= 3
    _shot(page, "home")
    page.goto(site["url"] + "/rejects")
    _shot(page, "rejects")
    page.goto(site["url"] + "/flows")
    assert page.get_by_role("link", name=a.id).is_visible()
    _shot(page, "flows")
    page.get_by_label("Partenaire").select_option("op-a")
    page.get_by_role("button", name="Filtrer").click()
    page.wait_for_url("**partner=op-a**")
    assert page.get_by_role("link", name=site["flows"]["op-b"].id).count() == 0
    page.get_by_role("link", name=a.id).click()
    page.wait_for_url(f"**/flows/{a.id}")
    # a misrouted invoice's error, with its explanation from the rule catalogue (its detail opened)
    page.locator("table.invoices details summary").first.click()
    error_row = page.locator("table.errors tr", has_text="RLS-R").first
    assert error_row.is_visible()
    from flows.domain.rule import REGISTRY
    from validators.rules import all_rules

    all_rules()  # registers every rule in this process (the server is another process)

    code = error_row.locator("code").first.inner_text()
    assert REGISTRY[code].message_fr in error_row.inner_text()
    _shot(page, "flow")
    with page.expect_download() as info:
        page.get_by_role("link", name=re.compile("Compte rendu d'intégration")).click()
    saved = tmp_path / "report.xml"
    info.value.save_as(saved)
    assert saved.read_bytes().startswith(b"<?xml") and a.id.encode() in saved.read_bytes()
    # every action asks first: dismissed, nothing happens
    page.once("dialog", lambda d: d.dismiss())
    page.get_by_role("button", name=re.compile("Suspendre la réception")).click()
    page.wait_for_timeout(500)
    assert page.locator(".flash").count() == 0 and page.url.endswith(f"/flows/{a.id}")
    page.on("dialog", lambda d: d.accept())
    page.get_by_role("button", name=re.compile("Suspendre la réception")).click()
    page.wait_for_selector(".flash")
    assert "réception suspendue" in page.locator(".flash").inner_text()
    assert page.get_by_text("Réception suspendue").first.is_visible()
    page.get_by_role("button", name=re.compile("Reprendre la réception")).click()
    page.wait_for_selector(".flash")
    # fix the directory, reprocess op-c's flow (rejected for unknown recipients): it becomes IN_INTEGRE
    c = site["flows"]["op-c"]
    assert str(c.status) == "IN_INTEGRE_PARTIEL"
    assert _relais(site["home"], "directory", "import", str(site["full_directory"])).returncode == 0
    page.goto(site["url"] + f"/flows/{c.id}")
    assert page.locator("code", has_text="RLS-R03").first.is_visible()
    page.get_by_role("button", name="Retraiter le flux").click()
    page.wait_for_selector(".flash")

    def integrated() -> bool:
        if "(IN_INTEGRE)" in page.locator("h1").inner_text():
            return True
        page.reload()
        return False

    wait_until(integrated, 90, "the reprocessed flow to be IN_INTEGRE", every=0.5)
    assert page.locator("h1").inner_text().strip().endswith("Intégré (IN_INTEGRE)"), page.locator("h1").inner_text()
    _shot(page, "reprocessed")
    from flows.store import Store

    store = Store.open(f"sqlite:///{site['home'] / 'relais.db'}", migrate=False)
    rows = [o for o in store.outbox_for_flow(c.id) if o.kind == "delivery"]
    store.engine.dispose()
    assert len(rows) == 10 == len({o.invoice_id for o in rows}), "an invoice delivered twice or not at all"
    page.goto(site["url"] + "/audit")
    assert page.locator("td", has_text="web.partner.pause").first.is_visible()
    assert page.locator("td", has_text="web.flow.reprocess").first.is_visible()
    _shot(page, "audit")
    page.get_by_role("button", name="Déconnexion").click()
    page.wait_for_url("**/login")
    page.goto(site["url"] + "/flows")
    assert "/login" in page.url
    page.close()


# ---- the store's part: keyset pages, paused partners ------------------------------------------


def test_keyset_pages_cover_every_flow_once_in_order(tmp_path):
    from flows.domain.model import Channel, Flow
    from flows.store import Store
    from flows.store.web import FlowQuery

    store = Store.open(f"sqlite:///{tmp_path / 'relais.db'}")
    for k in range(7):
        store.create_flow(
            Flow(id="", partner=f"op-{k % 3}", channel=Channel.FOLDER, original_name=f"f{k}", size=k, sha256="x")
        )
    for sort, descending in (("id", True), ("partner", False), ("invoices", True), ("received", False)):
        seen, after = [], None
        while True:
            page, after = store.query_flows(FlowQuery(sort=sort, descending=descending, after=after, limit=3))
            seen += [f.id for f in page]
            if after is None:
                break
        assert sorted(seen) == sorted(set(seen)) and len(seen) == 7, (sort, seen)
    page, _ = store.query_flows(FlowQuery(partner="op-1", limit=10))
    assert {f.partner for f in page} == {"op-1"} and len(page) == 2


def test_a_paused_partner_s_files_wait_until_it_is_resumed(tmp_path):
    home = tmp_path / "home"
    for partner in ("op-a", "op-b"):
        inbox = home / "dropzones" / partner / "in"
        inbox.mkdir(parents=True)
        (inbox / "notes.txt").write_bytes(b"not an invoice\n")
    from flows.store import Store

    assert _relais(home, "db", "upgrade").returncode == 0
    annuaire = tmp_path / "annuaire.json"  # `relais run` takes nothing without a directory
    annuaire.write_text(json.dumps(gen.directory_document(gen.sample_directory(), "paused")))
    assert _relais(home, "directory", "import", str(annuaire)).returncode == 0
    store = Store.open(f"sqlite:///{home / 'relais.db'}", migrate=False)
    assert store.pause_partner("op-a", "web:alice")
    _relais(home, "run", "-q")
    assert [f.partner for f in store.list_flows()] == ["op-b"]
    assert (home / "dropzones" / "op-a" / "in" / "notes.txt").is_file()
    assert store.resume_partner("op-a")
    _relais(home, "run", "-q")
    assert sorted(f.partner for f in store.list_flows()) == ["op-a", "op-b"]
    store.engine.dispose()


def test_relais_run_watch_serves_its_validation_pool_s_metrics(tmp_path):
    from relais.s3local import free_ports

    home = tmp_path / "home"
    (home / "dropzones" / "op-a" / "in").mkdir(parents=True)
    annuaire = tmp_path / "annuaire.json"  # `relais run` refuses to start without a directory
    annuaire.write_text(json.dumps(gen.directory_document(gen.sample_directory(), "watch")))
    assert _relais(home, "directory", "import", str(annuaire)).returncode == 0
    [port] = free_ports(1)
    env = _env(home)
    env["RELAIS_WORKERS"] = "2"
    proc = subprocess.Popen(
        [sys.executable, "-m", "relais.cli", "run", "--watch", "-q", "--metrics-port", str(port)],
        env=env,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        text = get_when_up(f"http://127.0.0.1:{port}/metrics", proc).text
        assert 'relais_validation_workers{state="configured"} 2.0' in text, text
        assert 'relais_validation_workers{state="dead"} 0.0' in text
        assert "relais_stage_seconds_bucket" in text
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
