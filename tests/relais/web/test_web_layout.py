"""Issue 20 for the "Suivi des flux" pages: one language, pages that fit a 1,280 px window, counts that
say what they count, legible charts, why a flow was rejected and a search by file name.

One home, served in-process (uvicorn on 127.0.0.1, tests/support/web_site.py's way), holds what made the pages
wide or mixed: a flow of 500 invoices (some invalid: EN 16931 / XSD findings, some misrouted: RLS-R..),
a duplicate of a flow (RLS-T11, 0 invoices: a flow rejected as a whole), a file of an unknown format, and
an XSD finding with a long location. Chromium (Debian's, through Playwright) measures each page's
document width at 1,280 px; httpx reads the French pages' text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import html as htmllib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flows.directory import importer as directory
from flows.domain.model import Category, Flag, Flow, ValidationError
from flows.domain.rule import REGISTRY
from relais import generate as gen
from relais.compose import Runtime
from relais.runner import run_once
from relais.settings import Settings
from relais.web.auth.passwords import hash_password
from relais.web.serve import WebThread
from tests.support.helpers import drop

PASSWORD = "ops-password-1"
WIDTH = 1280
#: An XSD finding's location as the schema validator writes them: long, no space to break it.
LONG_LOCATION = (
    "/*[local-name()='Invoice' and namespace-uri()='urn:oasis:names:specification:ubl:schema:xsd:Invoice-2']"
    "/*[local-name()='AccountingCustomerParty' and namespace-uri()='urn:oasis:names:specification:ubl:schema"
    ":xsd:CommonAggregateComponents-2']/*[local-name()='Party']/*[local-name()='PartyLegalEntity']"
    "/*[local-name()='CompanyID'][1]"
)
XSD_MESSAGE = (
    "Element '{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}CompanyIdentifier': "
    "This element is not expected. Expected is ( {urn:oasis:names:specification:ubl:schema:xsd:"
    "CommonBasicComponents-2}CompanyID )."
)


@dataclasses.dataclass
class Home:
    rt: Runtime
    url: str
    big: Flow  # 500 invoices, rejects of several rules
    duplicate: Flow  # RLS-T11, no invoice
    misrouted: Flow  # its file name says "MISROUTED"

    def client(self, lang: str = "fr") -> httpx.Client:
        c = httpx.Client(base_url=self.url, follow_redirects=False, timeout=60)
        m = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)
        assert m
        r = c.post("/login", data={"username": "alice", "password": PASSWORD, "next": "/", "csrf": m[1]})
        assert r.status_code == 303, r.text[:300]
        if lang != "fr":
            c.get("/?lang=" + lang)
        return c


@contextlib.contextmanager
def layout_home(tmp: Path, store: dict[str, str] | None = None) -> Iterator[Home]:
    """The home described above, its web app served."""
    settings = Settings.from_env(tmp / "home", stable_seconds=0.0, workers=0, **(store or {}))
    rt = Runtime.open(settings)
    try:
        recipients = gen.sample_directory()
        path = tmp / "annuaire.json"
        path.write_text(json.dumps(gen.directory_document(recipients, "layout-1")))
        directory.import_file(rt.store, path)
        [big] = gen.write_batch(
            tmp / "big", "ubl", 500, 1, recipients=recipients, invalid_ratio=0.1, misrouted_ratio=0.2, seed=20
        )
        [small] = gen.write_batch(
            tmp / "small", "ubl", 4, 1, recipients=recipients, misrouted_ratio=0.5, seed=21, start=900,
            name="Lot-MISROUTED-op-b",
        )  # fmt: skip
        drop(rt, "op-a", "lot-500-op-a.zip", big.read_bytes())
        drop(rt, "op-b", small.name, small.read_bytes())
        first = {f.partner: f for f in run_once(rt)}
        drop(rt, "op-b", "renvoi-" + small.name, small.read_bytes())  # the same bytes again: RLS-T11
        drop(rt, "op-c", "notes.txt", b"not an invoice at all\n")  # unknown format: RLS-T02
        second = {f.partner: f for f in run_once(rt)}
        # An XSD finding with a long location, as the schema validator writes them.
        for flow in (second["op-c"], first["op-a"]):
            long = ValidationError("XSD", Flag.FATAL, LONG_LOCATION, XSD_MESSAGE, Category.SCHEMA)
            rt.store.add_flow_errors(flow.id, [long])
        rt.store.add_web_user("alice", "ops", None, hash_password(PASSWORD))
        with WebThread(rt) as web:
            yield Home(rt=rt, url=web.url, big=first["op-a"], duplicate=second["op-b"], misrouted=first["op-b"])
    finally:
        rt.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Iterator[Home]:
    with layout_home(tmp_path_factory.mktemp("layout")) as h:
        assert h.big.invoice_count == 500 and h.big.rejected_count > 0, h.big
        assert h.duplicate.invoice_count == 0 and h.duplicate.status == "IN_REJETE", h.duplicate
        yield h


@pytest.fixture(scope="module")
def page(home, browser):
    """A French page of Chromium at 1,280 px, logged in as an ops user."""
    context = browser.new_context(viewport={"width": WIDTH, "height": 900}, locale="fr-FR")
    p = context.new_page()
    p.goto(home.url + "/login")
    p.get_by_label("Identifiant").fill("alice")
    p.get_by_label("Mot de passe").fill(PASSWORD)
    p.get_by_role("button", name="Se connecter").click()
    p.wait_for_load_state()
    yield p
    context.close()


def _text(html: str) -> str:
    """What a reader sees of a page, roughly: no tags (attributes, hrefs, option values), no title/script."""
    html = re.sub(r"(?s)<(script|title|desc)\b.*?</\1>", " ", html)
    return re.sub(r"\s+", " ", htmllib.unescape(re.sub(r"<[^>]+>", " ", html)))


# ---- width ----------------------------------------------------------------------------------------

PAGES = ["/", "/flows", "/rejects", "/rejects/XSD", "/rejects/RLS-T11", "/audit", "/sessions", "/account/password"]


@pytest.mark.parametrize(
    "path",
    [
        *PAGES,
        "/no-such-page",
        "FLOW",  # the 500-invoice flow's page (branch i20-flowpage, merged)
    ],
)
def test_no_page_is_wider_than_a_1280_px_window(home, page, path):
    target = f"/flows/{home.big.id}" if path == "FLOW" else path
    page.goto(home.url + target)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"{target} is {width} px wide"


def test_the_login_page_fits_too(home, browser):
    context = browser.new_context(viewport={"width": WIDTH, "height": 900})
    p = context.new_page()
    p.goto(home.url + "/login")
    assert p.evaluate("document.documentElement.scrollWidth") <= WIDTH
    context.close()


def test_a_long_location_is_elided_and_shown_whole_on_demand(home, page):
    page.goto(home.url + "/rejects")
    summary = page.locator("details.loc summary").filter(has_text="AccountingCustomerParty").first
    assert summary.is_visible()
    box = summary.bounding_box()
    assert box is not None and box["width"] < 500 and box["height"] < 40, box  # one line, elided
    full = page.locator("details.loc code.full").filter(has_text="AccountingCustomerParty").first
    assert not full.is_visible()
    summary.click()
    assert full.is_visible() and LONG_LOCATION in full.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH


# ---- one language ----------------------------------------------------------------------------------

#: Words of English states, locations and banners that the French pages used to show.
ENGLISH = [
    "buyer identifier",
    "buyer reference",
    "same content as flow",
    "This file was already received",
    "is not in the directory",
    " sent ",
    "pending",
    "Refused",
    "Not found",
]


@pytest.mark.parametrize("path", ["/", "/flows", "/rejects", "/rejects/RLS-T11", "/rejects/RLS-R03", "/no-such-page"])
def test_french_pages_speak_french(home, path):
    with contextlib.closing(home.client()) as c:
        r = c.get(path)
    assert r.status_code in (200, 404), r.status_code
    text = _text(r.text)
    for word in ENGLISH:
        assert word not in text, (path, word, text[max(0, text.find(word) - 200) : text.find(word) + 200])
    english = [
        rule.message_en
        for rule in REGISTRY.values()
        if rule.category not in (Category.EN16931, Category.SCHEMA) and rule.message_en in text
    ]
    assert not english, (path, english)
    assert not re.search(r"\bline \d+, column", text), path  # an XSD location: "ligne 3, colonne 12"
    # a flow status: its label and its code, never the code alone
    for m in re.finditer(r"\bIN_(RECU|EN_[A-Z_]+|INTEGRE[A-Z_]*|REJETE|INCIDENTE)\b", text):
        assert text[m.start() - 1] == "(" and text[m.start() - 3].isalpha(), (path, text[m.start() - 60 : m.end()])


def test_rejects_in_french_and_in_english(home):
    with contextlib.closing(home.client()) as c:
        fr = _text(c.get("/rejects").text)
        assert "Ce fichier a déjà été reçu de ce partenaire" in fr
        assert "(identifiant de l'acheteur, SIRET)" in fr or "RLS-R" not in fr
        assert "Message officiel : " in fr and "This element is not expected" in fr  # XSD: verbatim, beside
        en = _text(c.get("/rejects?lang=en").text)
    assert "This file was already received from this partner" in en and "Ce fichier a déjà" not in en


# ---- the landing page -------------------------------------------------------------------------------


def _row(html: str, rule: str) -> list[str]:
    m = re.search(rf'<tr><th scope="row"><a href="/rejects/{re.escape(rule)}">.*?</tr>', html, re.S)
    assert m, rule
    return re.findall(r'<td class="num">(\d+)</td>', m[0])


def test_the_landing_page_counts_invoices_and_whole_flows_apart(home):
    with contextlib.closing(home.client()) as c:
        html = c.get("/").text
    assert "Flux rejetés en entier" in html and "Factures rejetées" in html
    invoices, whole, flows = (int(v) for v in _row(html, "RLS-T11"))
    assert (invoices, whole, flows) == (0, 1, 1)
    invoices, whole, flows = (int(v) for v in _row(html, "RLS-T02"))
    assert (invoices, whole) == (0, 1)
    rejected = home.big.rejected_count + home.misrouted.rejected_count
    assert re.search(
        rf"Factures</dt>\s*<dd>{home.big.invoice_count + home.misrouted.invoice_count} · rejetées {rejected}", html
    )


def test_chart_labels_are_dark_on_a_white_box(home, page):
    page.goto(home.url + "/")
    found = page.evaluate(
        """() => [...document.querySelectorAll('svg.chart text.seg-label')].map(t => {
            const box = t.previousElementSibling, a = t.getBBox(), b = box.getBBox();
            let bar = box.previousElementSibling;
            while (bar && bar.tagName !== 'rect') bar = bar.previousElementSibling;
            return {text: t.textContent, bar: bar ? bar.getAttribute('fill') : '', cls: box.getAttribute('class'), fill: box.getAttribute('fill'),
                    colour: t.getAttribute('fill'),
                    inside: b.x <= a.x && b.y <= a.y && a.x + a.width <= b.x + b.width && a.y + a.height <= b.y + b.height + 1};
        })"""
    )
    rejected = [f for f in found if f["bar"].endswith("cross)")]
    assert rejected, found  # the red cross-hatched bars have their labels
    for f in found:
        assert f["cls"] == "label-bg" and f["fill"] == "#fff" and f["inside"], f
        assert _contrast(f["colour"], "#ffffff") >= 7, f


def test_sparklines_are_readable(home, page):
    page.goto(home.url + "/rejects")
    sizes = page.evaluate(
        """() => [...document.querySelectorAll('svg.spark')].map(s => {
            const r = s.getBoundingClientRect();
            return {h: r.height, w: r.width, max: [...s.querySelectorAll('text')].map(t => t.textContent)};
        })"""
    )
    assert sizes
    for s in sizes:
        assert s["h"] >= 24 and s["w"] >= 120, s
        assert any(t.startswith("max ") for t in s["max"]), s


# ---- the flow list ---------------------------------------------------------------------------------


def test_the_flow_list_says_why_and_finds_file_names(home):
    with contextlib.closing(home.client()) as c:
        html = c.get("/flows").text
        found = c.get("/flows", params={"q": "misrouted"}).text
        en = c.get("/flows", params={"q": "MisRouted", "lang": "en"}).text
    row = re.search(rf'<a href="/flows/{home.duplicate.id}">.*?</tr>', html, re.S)
    assert row and "RLS-T11" in row[0] and "Ce fichier a déjà été reçu de ce partenaire" in row[0], row
    assert "Rejeté (IN_REJETE)" in row[0]
    ids = set(re.findall(r'<a href="/flows/(CPP\w+)">', found))
    assert ids == {home.misrouted.id, home.duplicate.id}, ids
    assert set(re.findall(r'<a href="/flows/(CPP\w+)">', en)) == ids
    assert "This file was already received from this partner" in en


def test_the_filter_bar_keeps_each_label_with_its_field(home, page):
    page.set_viewport_size({"width": 900, "height": 900})
    try:
        page.goto(home.url + "/flows")
        pairs = page.evaluate(
            """() => [...document.querySelectorAll('form.filters label')].map(l => {
                const f = document.getElementById(l.htmlFor), a = l.getBoundingClientRect(), b = f.getBoundingClientRect();
                return {label: l.textContent, same_line: Math.abs((a.top + a.bottom) / 2 - (b.top + b.bottom) / 2) < 8};
            })"""
        )
        assert pairs and all(p["same_line"] for p in pairs), pairs
        q = page.locator("#q")
        hint = q.get_attribute("placeholder") or ""
        assert "nom de fichier" in hint
        fits = page.evaluate(
            """() => { const q = document.getElementById('q'), c = document.createElement('canvas').getContext('2d');
                c.font = getComputedStyle(q).font; const pad = parseFloat(getComputedStyle(q).paddingLeft) * 2;
                return c.measureText(q.placeholder).width + pad <= q.clientWidth + 1; }"""
        )
        assert fits, "the search placeholder is cut off"
    finally:
        page.set_viewport_size({"width": WIDTH, "height": 900})


# ---- small fixes -----------------------------------------------------------------------------------


def test_the_404_page_says_page_not_found(home):
    with contextlib.closing(home.client()) as c:
        r = c.get("/no-such-page")
        en = c.get("/no-such-page?lang=en")
    assert r.status_code == 404
    assert "<title>Page introuvable · Relais</title>" in r.text and "<h1>Page introuvable</h1>" in r.text
    assert "Refusé" not in r.text
    assert "<h1>Page not found</h1>" in en.text


def test_audit_shows_the_object_of_each_row(home):
    with contextlib.closing(home.client()) as c:
        token = re.search(r'name="csrf" value="([^"]+)"', c.get("/flows").text)
        assert token
        r = c.post("/partners/op-b/pause", data={"csrf": token[1], "back": "/flows"})
        assert r.status_code == 303
        c.post("/partners/op-b/resume", data={"csrf": token[1], "back": "/flows"})
        r = c.post(f"/flows/{home.big.id}/resend", data={"csrf": token[1]})
        assert r.status_code == 303
        html = c.get("/audit").text
    assert '<th scope="col">Objet</th>' in html
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.S)
    login = next(r for r in rows if "<td>web.login</td>" in r)
    assert "utilisateur : alice" in login and "/flows/" not in login
    pause = next(r for r in rows if "<td>web.partner.pause</td>" in r)
    assert "partenaire : op-b" in pause
    resend = next(r for r in rows if "<td>web.flow.resend</td>" in r)
    assert f'Flux <a href="/flows/{home.big.id}">{home.big.id}</a>' in resend


def _contrast(a: str, b: str) -> float:
    def luminance(colour: str) -> float:
        colour = colour.lstrip("#")
        if len(colour) == 3:
            colour = "".join(c * 2 for c in colour)
        rgb = [int(colour[k : k + 2], 16) / 255 for k in (0, 2, 4)]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


# ---- the store's part, on SQLite and PostgreSQL ------------------------------------------------------


def test_the_flow_search_finds_file_names_and_first_findings(store_url):
    from flows.domain.model import Channel
    from flows.store import Store
    from flows.store.web import FlowQuery

    url, schema = store_url
    store = Store.open(url, schema=schema)
    try:
        names = ["Lot-MISROUTED-a.zip", "lot_misrouted_b.xml", "factures-mai.zip", "100%_ok.zip", "x_misrouted"]
        names.append("renvoi-CPP0000000003.zip")
        for k, name in enumerate(names, 1):
            store.create_flow(Flow(f"CPP{k:010d}", "op-a", Channel.FOLDER, name, 10, f"{k:064x}"))

        def found(term: str) -> list[str]:
            rows, _ = store.query_flows(FlowQuery(search=term))
            return sorted(f.original_name for f in rows)

        assert found("misrouted") == ["Lot-MISROUTED-a.zip", "lot_misrouted_b.xml", "x_misrouted"]
        assert found("MisRouted-A") == ["Lot-MISROUTED-a.zip"]
        assert found("100%") == ["100%_ok.zip"]  # % and _ are the name's characters, not patterns
        assert found("d_b") == ["lot_misrouted_b.xml"]
        assert found("CPP0000000003") == ["factures-mai.zip"]  # a key first: the flow, not names quoting it
        assert found("renvoi-cpp") == ["renvoi-CPP0000000003.zip"]
        assert found("nothing-like-it") == []
        store.add_flow_errors(
            "CPP0000000002",
            [
                ValidationError("RLS-T02", Flag.FATAL, "/", "first", Category.TECHNICAL),
                ValidationError("RLS-T03", Flag.FATAL, "/", "second", Category.TECHNICAL),
            ],
        )
        store.add_flow_errors("CPP0000000004", [ValidationError("BR-05", Flag.WARNING, "/", "w", Category.EN16931)])
        assert store.first_findings(["CPP0000000002", "CPP0000000004", "CPP0000000001"]) == {
            "CPP0000000002": ("RLS-T02", "first")
        }
        assert store.first_findings([]) == {}
    finally:
        store.close()
