"""The flow page of "Suivi des flux" (`/flows/{id}`, relais/web/views/detail.py, templates/flow.html), issue 20.

One home, processed once per module by `relais run` (in process) and served by a real uvicorn
(`WebThread`): op-a's batch of 500 UBL invoices with rejections (XSD and routing), op-b's CII batch
whose XSD findings point at long paths, op-c's clean batch (IN_INTEGRE), op-d's file that is no invoice
(IN_REJETE), and a flow still IN_RECU. Then:

- in headless Chromium (Debian's chromium): every view of these flow pages fits a 1,280 px window
  (`document.documentElement.scrollWidth`, invoice details and long locations opened); the French page
  has no English words (states, locations, findings, timeline), the official EN 16931 message kept
  beside its French explanation; the invoice table shows the rejected invoices by default, toggles to
  all, sorts, filters and pages (50 a page), each invoice's detail on demand; "Retraiter le flux" and
  "Renvoyer le flux retour" are offered only where they apply; resending sends at once and the timeline
  says who did it and the outcome;
- with httpx: the table's query parameters are checked (a bad one: a 400 page naming it); a refused
  reprocessing says why in French, the id not repeated; a partner user sees no server path.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flows.directory import importer as directory
from flows.domain.lifecycle import FlowStatus
from flows.domain.model import Channel, Flow
from relais import generate as gen
from relais.compose import Runtime
from relais.runner import run_once
from relais.settings import Settings
from relais.web.auth.passwords import hash_password
from relais.web.serve import WebThread
from tests.support.helpers import drop

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("RELAIS_TEST_ARTIFACTS", ROOT / "var" / "test-artifacts")) / "web"
PASSWORDS = {"alice": "ops-password-1", "bob": "partner-pass-1"}
#: English words that must not reach the French page (the official messages aside, kept verbatim).
ENGLISH = re.compile(
    r"\b(sent|pending|superseded|buyer identifier|fatal|warning|line \d|column|delivered to|platform|"
    r"recipient|folder|invoice total|being reprocessed|only these are reprocessed)\b"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[dict]:
    work = tmp_path_factory.mktemp("flowpage")
    rt = Runtime.open(Settings.from_env(work / "home", stable_seconds=0.0, workers=0))
    try:
        recipients = gen.sample_directory()
        (work / "annuaire.json").write_text(json.dumps(gen.directory_document(recipients, "fp-1")))
        directory.import_file(rt.store, work / "annuaire.json")
        batches = {
            "op-a": dict(fmt="ubl", n=500, lines=1, invalid_ratio=0.05, misrouted_ratio=0.15, seed=7),
            "op-b": dict(fmt="cii", n=12, lines=2, invalid_ratio=0.6, seed=3, start=1001),
            "op-c": dict(fmt="ubl", n=3, lines=1, seed=4, start=2001),
        }
        for partner, b in batches.items():
            fmt, n, lines = b.pop("fmt"), b.pop("n"), b.pop("lines")
            [path] = gen.write_batch(
                work / partner, fmt, n, lines, batch="zip", recipients=recipients, name=f"lot-{partner}", **b
            )
            drop(rt, partner, path.name, path.read_bytes())
        drop(rt, "op-d", "notes.txt", b"not an invoice\n")
        flows = {f.partner: f for f in run_once(rt)}
        waiting = rt.store.create_flow(
            Flow(id="", partner="op-c", channel=Channel.FOLDER, original_name="late.xml", size=1, sha256="1" * 64)
        )
        assert flows["op-a"].status is FlowStatus.IN_INTEGRE_PARTIEL and flows["op-a"].invoice_count == 500
        assert flows["op-b"].status is FlowStatus.IN_INTEGRE_PARTIEL, flows["op-b"]
        assert flows["op-c"].status is FlowStatus.IN_INTEGRE and flows["op-d"].status is FlowStatus.IN_REJETE
        rt.store.add_web_user("alice", "ops", None, hash_password(PASSWORDS["alice"]))
        rt.store.add_web_user("bob", "partner", "op-a", hash_password(PASSWORDS["bob"]))
        with WebThread(rt) as web:
            yield {"rt": rt, "url": web.url, "flows": flows, "waiting": waiting, "home": rt.settings.home}
    finally:
        rt.close()


def _login(site: dict, name: str) -> httpx.Client:
    c = httpx.Client(base_url=site["url"], follow_redirects=False, timeout=60)
    m = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)
    assert m
    r = c.post("/login", data={"username": name, "password": PASSWORDS[name], "next": "/flows", "csrf": m[1]})
    assert r.status_code == 303
    return c


@pytest.fixture(scope="module")
def alice(site) -> Iterator[httpx.Client]:
    c = _login(site, "alice")
    try:
        yield c
    finally:
        c.close()


@pytest.fixture()
def page(site, browser):
    """A 1,280 px wide page logged in as alice (ops), confirmations accepted."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    p.goto(site["url"] + "/login?next=/flows")
    p.get_by_label("Identifiant").fill("alice")
    p.get_by_label("Mot de passe").fill(PASSWORDS["alice"])
    p.get_by_role("button", name="Se connecter").click()
    p.wait_for_url("**/flows")
    p.on("dialog", lambda d: d.accept())
    try:
        yield p
    finally:
        context.close()


def _width(p) -> int:
    return int(p.evaluate("document.documentElement.scrollWidth"))


def _open_all(p) -> None:
    p.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")


def _french_text(p) -> str:
    """The page's visible text but the official messages (EN 16931 / XSD, verbatim)."""
    return str(
        p.evaluate(
            "(() => { const c = document.body.cloneNode(true); c.querySelectorAll('q').forEach(q => q.remove()); return c.innerText; })()"
        )
    )


# ---- in Chromium --------------------------------------------------------------------------------------


def test_the_flow_pages_fit_1280_px_and_speak_french(site, page):
    a, b = site["flows"]["op-a"], site["flows"]["op-b"]
    for url in (f"/flows/{a.id}", f"/flows/{a.id}?inv_status=all&page=3", f"/flows/{b.id}", f"/flows/{b.id}?lang=en"):
        page.goto(site["url"] + url)
        assert _width(page) <= 1280, url
        _open_all(page)  # every invoice's findings and history, every long location in full
        assert _width(page) <= 1280, (url, "details open")
    page.goto(site["url"] + f"/flows/{b.id}?lang=fr")
    # a long XSD location is elided, the whole of it on demand
    long_one = page.locator("table.errors details.loc").first
    long_one.scroll_into_view_if_needed()
    assert long_one.count() == 1
    _open_all(page)
    text = _french_text(page)
    assert "Intégré partiellement (IN_INTEGRE_PARTIEL)" in page.locator("h1").inner_text()
    assert "ligne " in text and "Le document n'est pas conforme à son schéma XML" in text
    assert page.locator(".official q").count() >= 1  # the official message verbatim, beside
    assert not ENGLISH.search(text), ENGLISH.search(text)
    page.goto(site["url"] + f"/flows/{a.id}?inv_status=all")
    _open_all(page)
    text = _french_text(page)
    assert "Mise à disposition (03)" in text and "zone de dépôt" in text and ": envoyé" in text
    assert "identifiant de l'acheteur, SIRET" in text or "Rejetée" in text
    found = ENGLISH.search(text)
    assert found is None, text[max(0, found.start() - 200) : found.end() + 100]
    page.goto(site["url"] + f"/flows/{a.id}?lang=en")
    assert "Partially integrated (IN_INTEGRE_PARTIEL)" in page.locator("h1").inner_text()
    page.goto(site["url"] + f"/flows/{a.id}?lang=fr")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "flowpage-500.png"), full_page=True)


def test_the_invoice_table_shows_rejections_first_filters_sorts_and_pages(site, page):
    a = site["flows"]["op-a"]
    rejected = a.rejected_count
    assert 50 < rejected < 500
    page.goto(site["url"] + f"/flows/{a.id}")
    rows = page.locator("table.invoices tbody.invoice")
    assert rows.count() == 50  # rejected only, by default, a page of 50
    assert all("✖" in s for s in rows.locator(":scope > tr:first-child > td:nth-child(7)").all_inner_texts())
    page.get_by_role("link", name=f"Toutes les factures ({a.invoice_count})").click()
    page.wait_for_url("**inv_status=all**")
    assert rows.count() == 50 and "Page 1 sur 10" in page.locator(".pages").inner_text()
    assert rows.first.locator("td").first.inner_text() == "1"
    page.get_by_role("link", name="Suivantes →").click()
    page.wait_for_url("**page=2**")
    assert [int(x) for x in rows.locator(":scope > tr:first-child > td:nth-child(1)").all_inner_texts()] == list(
        range(51, 101)
    )
    # sorted by amount, largest first (two clicks on the header)
    page.get_by_role("link", name="Montants HT / TVA / TTC").click()
    page.wait_for_url("**sort=amount**")
    page.get_by_role("link", name="Montants HT / TVA / TTC").click()
    page.wait_for_url("**order=desc**")
    totals = [
        float(t.replace("\u202f", "").replace(" ", "").replace(",", "."))
        for t in rows.locator(":scope > tr:first-child > td:nth-child(6) strong").all_inner_texts()
    ]
    assert len(totals) == 50 and totals == sorted(totals, reverse=True), totals[:5]
    # filtered by a number: one invoice; its detail opens on demand
    number = rows.nth(3).locator(":scope > tr:first-child > td:nth-child(2)").inner_text()
    page.get_by_placeholder("Numéro, fournisseur, SIRET ou service").fill(number)
    page.get_by_role("button", name="Filtrer").click()
    page.wait_for_url("**q=**")
    assert rows.count() == 1 and rows.first.locator(":scope > tr:first-child > td:nth-child(2)").inner_text() == number
    detail = rows.first.locator("details")
    assert not detail.locator("h4").is_visible()
    detail.locator("summary").click()
    assert detail.locator("h4", has_text="Historique").is_visible()


def test_actions_are_offered_where_they_apply_and_resending_sends_at_once(site, page):
    flows = site["flows"]
    page.goto(site["url"] + f"/flows/{flows['op-c'].id}")  # IN_INTEGRE: nothing to reprocess
    assert page.get_by_role("button", name="Retraiter le flux").count() == 0
    assert page.get_by_role("button", name="Renvoyer le flux retour").count() == 1
    page.goto(site["url"] + f"/flows/{site['waiting'].id}")  # IN_RECU: no return flow yet
    assert page.get_by_role("button", name="Retraiter le flux").count() == 0
    assert page.get_by_role("button", name="Renvoyer le flux retour").count() == 0
    assert page.get_by_text("Aucune action ne s'applique").is_visible()
    # op-d's rejected flow: its return flow, removed from the partner's folder, is back at once
    d = flows["op-d"]
    out = site["rt"].settings.outbox_dir("op-d")
    [report] = list(out.glob(f"CR_{d.id}_*.xml"))
    report.unlink()
    page.goto(site["url"] + f"/flows/{d.id}")
    page.get_by_role("button", name="Renvoyer le flux retour").click()
    page.wait_for_selector(".flash")
    assert "Flux retour renvoyé : 1 envoyé(s), 0 en échec." in page.locator(".flash").inner_text()
    assert report.is_file()  # sent by the click, not by the next `relais run`
    resent = page.locator(".timeline li", has_text="flux retour renvoyé")
    assert "par alice — 1 envoyé(s), 0 en échec" in resent.inner_text()
    page.get_by_role("button", name="Retraiter le flux").click()
    page.wait_for_selector(".flash")
    assert page.locator(".flash").inner_text().startswith("Flux remis en attente de retraitement")
    assert d.id not in page.locator(".flash").inner_text()
    assert (
        "par alice — accepté, retraitement lancé"
        in page.locator(".timeline li", has_text="retraitement demandé").inner_text()
    )
    rows = [r for r in site["rt"].store.audit_rows(target=d.id)]
    assert [(r.action, r.outcome) for r in rows] == [("web.flow.resend", "ok"), ("web.flow.reprocess", "ok")], rows


# ---- with httpx -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("page=0", "page"),
        ("page=abc", "page"),
        ("page=10000000", "page"),
        ("inv_status=XX", "inv_status"),
        ("sort=received", "sort"),
        ("order=up", "order"),
        ("q=a%00b", "q"),
    ],
)
def test_a_bad_table_parameter_is_a_400_naming_it(site, alice, query, name):
    r = alice.get(f"/flows/{site['flows']['op-a'].id}?{query}")
    assert r.status_code == 400 and f"<code>{name}</code>" in r.text, r.text[-800:]


def test_a_page_past_the_last_is_empty_not_an_error(site, alice):
    r = alice.get(f"/flows/{site['flows']['op-a'].id}?inv_status=all&page=11")
    assert r.status_code == 200 and "Aucune facture ne correspond." in r.text


def test_a_refused_reprocessing_says_why_in_french_once(site, alice):
    c = alice
    flow = site["flows"]["op-c"]  # IN_INTEGRE: a crafted POST (the page offers no button)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get(f"/flows/{flow.id}").text)
    assert token
    r = c.post(f"/flows/{flow.id}/reprocess", data={"csrf": token[1]})
    assert r.status_code == 303
    flash = re.search(r'class="flash"[^>]*>([^<]*)<', c.get(f"/flows/{flow.id}").text)
    assert flash and flash[1].startswith("Ce flux ne peut pas être retraité : il est Intégré (IN_INTEGRE)"), flash
    assert flow.id not in flash[1] and "only these" not in flash[1]


def test_a_partner_user_sees_no_server_path(site, alice):
    a = site["flows"]["op-a"]
    home = str(site["home"])
    page = _login(site, "bob").get(f"/flows/{a.id}")
    assert page.status_code == 200 and f"out/CR_{a.id}_" in page.text
    assert home not in page.text and "dropzones" not in page.text and "/tmp" not in page.text
    assert home in alice.get(f"/flows/{a.id}").text  # ops see where it lies


def test_the_table_reads_one_page_in_sql(site):
    """The store pages, filters and counts in SQL (a page of a 500-invoice flow is 50 rows)."""
    store = site["rt"].store
    a = site["flows"]["op-a"]
    page, total = store.invoice_page(a.id, statuses=["04", "05"], sort="amount", descending=True, offset=50, limit=50)
    assert total == a.rejected_count and len(page) == 50 and all(i.errors for i in page)
    number = next(i.number for i in page if i.number)
    page, total = store.invoice_page(a.id, search=number.lower())
    assert total == len(page) == 1 and page[0].number == number
