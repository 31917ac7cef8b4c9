"""What "Suivi des flux" shows of the reform's CDAR lifecycle messages (docs/reform.md, "Seeing the messages"):
the landing page's link and its red alert on messages never sent (not_sent), the list page ``/cdar`` (counts per
outcome, filters, pages), a flow's "Messages CDAR" section and each invoice's "Cycle de vie (CDAR)", French
first and English, and the download of a message as archived (``/cdar/{id}/download``).

The messages are real CDAR D22B messages (tests/support/cdar_samples.py, checked against the official XSD and
schematron), archived and recorded in the store; served by a real uvicorn (`WebThread`); headless Debian
chromium (Playwright) reads the pages, httpx checks the download, who may see what, and the metrics, on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from relais.compose import Runtime
from relais.settings import Settings
from relais.web.auth.passwords import hash_password
from relais.web.serve import WebThread
from tests.support import cdar_samples as cdar_messages
from tests.support.cdar_samples import Seeded

PASSWORDS = {"alice": "ops-password-1", "bob": "partner-pass-1"}


def _open(home: Path, url: str | None = None, schema: str | None = None) -> Runtime:
    extra = {"database_url": url, "database_schema": schema} if url else {}
    rt = Runtime.open(Settings.from_env(home, stable_seconds=0.0, workers=0, **extra))  # type: ignore[arg-type]
    rt.store.add_web_user("alice", "ops", None, hash_password(PASSWORDS["alice"]))
    rt.store.add_web_user("bob", "partner", "op-a", hash_password(PASSWORDS["bob"]))
    return rt


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[str, Seeded]]:
    rt = _open(tmp_path_factory.mktemp("cdar-web") / "home")
    try:
        seeded = cdar_messages.seed(rt)
        with WebThread(rt) as web:
            yield web.url, seeded
    finally:
        rt.close()


def _client(url: str, name: str) -> httpx.Client:
    c = httpx.Client(base_url=url, follow_redirects=False, timeout=60)
    m = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)
    assert m
    r = c.post("/login", data={"username": name, "password": PASSWORDS[name], "next": "/", "csrf": m[1]})
    assert r.status_code == 303
    return c


@pytest.fixture()
def page(site, browser):
    url, _ = site
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    p.goto(url + "/login?next=/flows")
    p.get_by_label("Identifiant").fill("alice")
    p.get_by_label("Mot de passe").fill(PASSWORDS["alice"])
    p.get_by_role("button", name="Se connecter").click()
    p.wait_for_url("**/flows")
    try:
        yield p
    finally:
        context.close()


def _table(page, selector: str) -> list[list[str]]:
    return [
        [c.strip() for c in row.locator("td").all_inner_texts()] for row in page.locator(f"{selector} tbody tr").all()
    ]


def test_the_landing_page_shows_the_not_sent_incident_in_red_and_leads_to_the_list(site, page) -> None:
    url, s = site
    page.goto(url + "/")
    alert = page.locator("#home-cdar-not-sent")
    assert alert.is_visible()
    assert alert.inner_text().startswith("1 message(s) CDAR non envoyé(s)")
    background = alert.evaluate("e => getComputedStyle(e).backgroundColor")
    assert background == "rgb(179, 38, 30)"  # --bad
    assert page.locator("#home-cdar-link").inner_text() == "3 message(s) CDAR envoyés et reçus"
    alert.get_by_role("link").click()
    page.wait_for_url("**/cdar?outcome=not_sent")
    rows = _table(page, "table.cdar")
    assert len(rows) == 1 and rows[0][4] == "RLS-CDAR-0002" and rows[0][7].startswith("non envoyé (incident)")
    assert page.locator("table.cdar tbody tr.alert").count() == 1
    page.goto(url + "/?lang=en")
    assert page.locator("#home-cdar-not-sent").inner_text().startswith("1 CDAR message(s) not sent")
    page.goto(url + "/?lang=fr")


def test_the_list_page_counts_filters_and_pages(site, page) -> None:
    url, s = site
    page.get_by_role("link", name="Messages CDAR").first.click()  # the menu
    page.wait_for_url("**/cdar")
    assert page.locator("h1").inner_text() == "Messages CDAR (cycle de vie)"
    assert page.locator("#cdar-not-sent").is_visible()
    assert _table(page, "table.cdar-counts") == [
        ["envoyé", "en file d'envoi", "1"],
        ["envoyé", "non envoyé (incident)", "1"],
        ["reçu", "appliqué en partie", "1"],
    ]
    rows = _table(page, "table.cdar")
    assert [(r[0], r[2], r[3], r[4], r[6]) for r in rows] == [
        (str(s.received.id), "reçu", "op-b", "PB-7781", "2"),
        (str(s.not_sent.id), "envoyé", "op-b", "RLS-CDAR-0002", "1"),
        (str(s.sent.id), "envoyé", "op-a", "RLS-CDAR-0001", "2"),
    ]
    assert rows[2][5] == s.flow.id
    page.locator("select#direction").select_option("in")
    page.get_by_role("button", name="Filtrer").click()
    page.wait_for_url("**direction=in**")
    assert [r[4] for r in _table(page, "table.cdar")] == ["PB-7781"]
    page.goto(url + "/cdar?partner=op-a&lang=en")
    assert page.locator("h1").inner_text() == "CDAR messages (lifecycle)"
    assert [(r[2], r[7]) for r in _table(page, "table.cdar")] == [("sent", "queued")]
    assert page.locator("select#outcome option").all_inner_texts()[1:] == [
        "queued",
        "not sent (incident)",
        "applied",
        "partially applied",
        "refused",
    ]
    page.goto(url + "/cdar?lang=fr")


def test_pages_follow_by_id(site) -> None:
    url, s = site
    c = _client(url, "alice")
    import relais.web.views.cdar as view

    saved, view.PAGE = view.PAGE, 2
    try:
        first = c.get("/cdar")
        assert first.status_code == 200
        found = re.search(r'href="(/cdar\?before=\d+)" rel="next"', first.text)
        assert found and found[1] == f"/cdar?before={s.not_sent.id}"
        second = c.get(found[1])
        assert "RLS-CDAR-0001" in second.text and "PB-7781" not in second.text and 'rel="next"' not in second.text
    finally:
        view.PAGE = saved
    assert c.get("/cdar?direction=sideways").status_code == 400
    assert c.get("/cdar?before=abc").status_code == 400
    assert c.get("/cdar?outcome=lost").status_code == 400


def test_the_flow_page_shows_its_messages_and_each_invoice_lifecycle(site, page) -> None:
    url, s = site
    page.goto(f"{url}/flows/{s.flow.id}")
    section = page.locator("section#cdar")
    assert section.locator("h2").inner_text() == "Messages CDAR"
    rows = section.locator("tbody tr")
    assert rows.count() == 3
    newest, incident, sent = rows.nth(0), rows.nth(1), rows.nth(2)
    assert "PB-7781" in newest.inner_text() and "reçu" in newest.inner_text()
    assert "INV-999999 : 202 Reçue · refusée — règle RLS-C02" in newest.inner_text()
    assert newest.locator(".cdar-outcome").inner_text() == "appliqué en partie"
    assert "alert" in (incident.get_attribute("class") or "")
    assert "BR-FR-CDV-14" in incident.inner_text()
    lines = sent.locator("ul.cdar-lines li").all_inner_texts()
    assert lines == ["INV-000001 : 200 Déposée · écrite", "INV-000002 : 213 Rejetée — motif DOUBLON · écrite"]
    # an invoice's detail: its CDAR lifecycle, oldest first
    first = page.locator("tbody.invoice").first
    first.locator("details summary").click()
    lifecycle = first.locator("ol.cdar-lifecycle li").all_inner_texts()
    assert [re.sub(r"^\S+ \S+ ", "", x) for x in lifecycle] == [
        "envoyé (op-a) : 200 Déposée · écrite — RLS-CDAR-0001",
        "envoyé (op-b) : 201 Émise · écrite — RLS-CDAR-0002",
        "reçu (op-b) : 202 Reçue · appliquée — PB-7781",
    ]
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    page.goto(f"{url}/flows/{s.flow.id}?lang=en")
    assert page.locator("section#cdar h2").inner_text() == "CDAR messages"
    assert "INV-000002 : 213 Rejected — reason DOUBLON · written" in page.locator("section#cdar").inner_text()
    # the download link serves the archived message
    with page.expect_download() as got:
        page.locator(f'section#cdar a[href="/cdar/{s.sent.id}/download"]').click()
    download = got.value
    assert download.suggested_filename == "CDAR-out-RLS-CDAR-0001.xml"
    assert Path(download.path()).read_bytes() == s.data[s.sent.id]
    page.goto(f"{url}/flows/{s.flow.id}?lang=fr")


@pytest.fixture()
def any_store_site(store_url, tmp_path: Path) -> Iterator[tuple[str, Seeded, Runtime]]:
    url, schema = store_url
    rt = _open(tmp_path / "home", url, schema)
    try:
        seeded = cdar_messages.seed(rt)
        with WebThread(rt) as web:
            yield web.url, seeded, rt
    finally:
        rt.close()


def test_the_download_is_the_archived_message_for_those_who_may_see_it(any_store_site) -> None:
    url, s, rt = any_store_site
    ops = _client(url, "alice")
    for rec in (s.sent, s.not_sent, s.received):
        r = ops.get(f"/cdar/{rec.id}/download")
        assert r.status_code == 200
        assert r.content == s.data[rec.id] == rt.archive.read(rec.sha256)
        assert hashlib.sha256(r.content).hexdigest() == r.headers["x-content-sha256"] == rec.sha256
        assert r.headers["content-type"].startswith("application/xml")
        assert r.headers["content-disposition"] == f'attachment; filename="CDAR-{rec.direction}-{rec.message_id}.xml"'
    for bad in ("999999", "0", "abc", "99999999999999999999", "%C2%B2"):
        r = ops.get(f"/cdar/{bad}/download")
        assert r.status_code == 404, bad
        assert "text/html" in r.headers["content-type"]
    # a partner user: its own partner's messages only; another's is a 404 as an unknown one
    bob = _client(url, "bob")
    assert bob.get(f"/cdar/{s.sent.id}/download").content == s.data[s.sent.id]
    assert bob.get(f"/cdar/{s.received.id}/download").status_code == 404
    assert bob.get(f"/cdar/{s.not_sent.id}/download").status_code == 404
    listed = bob.get("/cdar?partner=op-b")  # the partner filter is its own, whatever it asks
    assert "RLS-CDAR-0001" in listed.text and "PB-7781" not in listed.text and "cdar-not-sent" not in listed.text
    assert "home-cdar-not-sent" not in bob.get("/").text  # op-a has no incident
    assert "home-cdar-not-sent" in ops.get("/").text
    flow = bob.get(f"/flows/{s.flow.id}").text
    assert "RLS-CDAR-0001" in flow and "PB-7781" not in flow and "RLS-CDAR-0002" not in flow
    # nobody signed in: the login page
    anonymous = httpx.get(f"{url}/cdar/{s.sent.id}/download", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    # the metrics, every pair with its series
    metrics = ops.get("/metrics").text
    assert 'relais_cdar_messages_total{direction="out",outcome="not_sent"} 1.0' in metrics
    assert 'relais_cdar_messages_total{direction="out",outcome="queued"} 1.0' in metrics
    assert 'relais_cdar_messages_total{direction="in",outcome="partially_applied"} 1.0' in metrics
    assert 'relais_cdar_messages_total{direction="in",outcome="refused"} 0.0' in metrics
