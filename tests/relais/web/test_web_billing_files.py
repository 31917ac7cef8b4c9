"""What "Suivi des flux" shows of billing frameworks (docs/billing-frameworks.md; relais/web/views/billing.py):
the framework of each invoice in a flow's invoice table, a filter by framework (A1..A25 with their French
labels), a piece's billing file link, and the billing file page (``/billing-files/{id}``): each piece, who
deposited it, and its status history (when, who, the status, the reason's code and label, the reason).

The pieces are recorded straight into the store (tests/support/billing_files.py) as intake and progression
record them, and served by a real uvicorn (`WebThread`); headless Debian chromium (Playwright) uses the
pages, httpx checks who may see a file and a bad filter.
"""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Iterator

import httpx
import pytest

from relais.compose import Runtime
from relais.settings import Settings
from relais.web.auth.passwords import hash_password
from relais.web.serve import WebThread
from tests.support import billing_files
from tests.support.billing_files import MOE, Seeded

PASSWORDS = {"alice": "ops-password-1", "bob": "partner-pass-1", "dave": "partner-pass-2"}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[str, Seeded]]:
    work = tmp_path_factory.mktemp("billing-web")
    rt = Runtime.open(Settings.from_env(work / "home", stable_seconds=0.0, workers=0))
    try:
        seeded = billing_files.seed(rt.store)
        rt.store.add_web_user("alice", "ops", None, hash_password(PASSWORDS["alice"]))
        rt.store.add_web_user("bob", "partner", "op-sub", hash_password(PASSWORDS["bob"]))
        rt.store.add_web_user("dave", "partner", "op-other", hash_password(PASSWORDS["dave"]))
        with WebThread(rt) as web:
            yield web.url, seeded
    finally:
        rt.close()


def _client(url: str, name: str) -> httpx.Client:
    c = httpx.Client(base_url=url, follow_redirects=False, timeout=60)
    m = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)
    assert m
    r = c.post("/login", data={"username": name, "password": PASSWORDS[name], "next": "/flows", "csrf": m[1]})
    assert r.status_code == 303
    return c


@pytest.fixture()
def page(site, browser):
    """A 1,280 px wide page signed in as alice (ops)."""
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


def _rows(page) -> dict[str, str]:
    """The invoice table's rows: {number: framework cell}."""
    found = {}
    for body in page.locator("table.invoices tbody.invoice").all():
        cells = body.locator("tr").first.locator("td")
        found[cells.nth(1).inner_text().strip()] = cells.nth(2).inner_text().strip()
    return found


def _fits(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280


def test_the_invoice_table_shows_and_filters_by_framework(site, page) -> None:
    url, s = site
    page.goto(f"{url}/flows/{s.flows['op-sub'].id}")
    assert _rows(page) == {"A10-0001": "A10", "A9-0002": "A9", "A1-0003": "A1"}
    assert page.locator("table.invoices thead th").nth(2).inner_text().strip() == "Cadre"
    choice = page.locator("select[name=cadre]")
    assert choice.locator("xpath=..").inner_text().startswith("Cadre de facturation")
    options = choice.locator("option").all_inner_texts()
    assert options[0] == "Tous les cadres de facturation" and len(options) == 26  # every one, A1..A25
    assert "A10 — Projet de décompte mensuel de sous-traitant" in options
    assert "A25 — Décompte général et définitif (procédure tacite, MOA)" in options
    choice.select_option("A9")
    page.get_by_role("button", name="Filtrer").click()
    page.wait_for_url("**cadre=A9**")
    assert _rows(page) == {"A9-0002": "A9"}
    assert page.locator("select[name=cadre]").input_value() == "A9"  # the filter is kept
    # its detail: the framework, its billing file, its history with the reason's code and label
    detail = page.locator("tbody.invoice details")
    detail.locator("summary").click()
    assert "Cadre de facturation : A9 — Facture de sous-traitant" in detail.inner_text()
    assert "NON_AGREE Sous-traitant non accepté ou non agréé au paiement direct" in detail.inner_text()
    assert detail.get_by_role("link", name=f"Dossier de facturation {s.refused.id}").is_visible()
    _fits(page)
    page.locator("select[name=cadre]").select_option("")  # every framework again
    page.get_by_role("button", name="Filtrer").click()
    page.wait_for_url(re.compile(r".*cadre=(&|#|$)"))
    assert len(_rows(page)) == 3


def test_the_billing_file_page_shows_each_piece_and_its_history(site, page) -> None:
    url, s = site
    page.goto(f"{url}/flows/{s.flows['op-sub'].id}?cadre=A10")
    page.locator("tbody.invoice details summary").click()
    page.get_by_role("link", name=f"Dossier de facturation {s.draft.id}").click()
    page.wait_for_url(f"**/billing-files/{s.draft.id}")
    assert page.locator("h1").inner_text().strip() == f"Dossier de facturation {s.draft.id}"
    pieces = page.locator("li.piece")
    assert pieces.count() == 2
    first, second = pieces.nth(0), pieces.nth(1)
    assert first.locator("h2").inner_text().startswith("A10 — Projet de décompte mensuel de sous-traitant")
    assert first.locator("dd.depositor").inner_text() == "sous-traitant (op-sub)"
    assert first.locator("dd.turn").inner_text() == f"{MOE} — jusqu'au 2026-12-27 12:00 UTC"
    history = [
        (r.locator("td.actor").inner_text(), r.locator("td.status").inner_text())
        for r in first.locator("table.history tbody tr").all()
    ]
    assert history == [
        ("plateforme", "À valider (valideur 1) (20)"),
        ("valideur", "Validée (valideur 1) (21)"),
        ("plateforme", "Mise à disposition de la maîtrise d'œuvre (30)"),
        ("maîtrise d'œuvre", "Prise en compte par la maîtrise d'œuvre (31)"),
    ]
    assert second.locator("h2").inner_text().startswith("A15 — État d'acompte (maîtrise d'œuvre)")
    assert second.locator("dd.depositor").inner_text() == "maîtrise d'œuvre (op-moe)"
    assert second.locator("dd.turn").count() == 0  # refused: final, nobody's turn
    last = second.locator("table.history tbody tr").last
    assert last.locator("td.actor").inner_text() == "maîtrise d'ouvrage"
    assert last.locator("td.status").inner_text() == "Refusée par la maîtrise d'ouvrage (43)"
    assert last.locator("td.reason").inner_text() == (
        "MARCHE Référence du marché absente ou erronée — « Le marché cité n'est pas le bon »"
    )
    second.get_by_role("link", name=s.draft.id).click()  # the piece it follows, on the same page
    assert page.url.endswith(f"#piece-{s.draft.id}")
    _fits(page)
    # the piece's flow, from the file
    first.get_by_role("link", name=f"Flux {s.draft.flow_id}").click()
    page.wait_for_url(f"**/flows/{s.draft.flow_id}**")

    page.goto(f"{url}/billing-files/{s.statement.id}?lang=en")  # a piece's id opens its file; English
    assert page.locator("h1").inner_text().strip() == f"Billing file {s.draft.id}"
    last = page.locator("li.piece").nth(1).locator("table.history tbody tr").last
    assert last.locator("td.actor").inner_text() == "contracting authority (MOA)"
    assert last.locator("td.status").inner_text() == "Refused by the contracting authority (MOA) (43)"
    assert last.locator("td.reason").inner_text().startswith("MARCHE Contract reference missing or wrong")


def test_who_may_see_a_billing_file(site) -> None:
    url, s = site
    with contextlib.closing(_client(url, "bob")) as bob:  # op-sub, whose piece starts the file
        page = bob.get(f"/billing-files/{s.draft.id}")
        assert page.status_code == 200
        assert "maîtrise d'œuvre (autre partenaire)" in html.unescape(page.text) and "op-moe" not in page.text
        assert f'href="/flows/{s.draft.flow_id}' in page.text
        assert f'href="/flows/{s.statement.flow_id}' not in page.text  # another partner's flow: not linked
    with contextlib.closing(_client(url, "dave")) as dave:  # a partner with no piece in the file: as for an unknown one
        assert dave.get(f"/billing-files/{s.draft.id}").status_code == 404
        assert dave.get("/billing-files/CPP9999999999-00001").status_code == 404
    with contextlib.closing(_client(url, "alice")) as alice:
        assert alice.get("/billing-files/CPP9999999999-00001").status_code == 404
        bad = alice.get(f"/flows/{s.flows['op-sub'].id}?cadre=A26")
        assert bad.status_code == 400 and "cadre" in bad.text
        assert alice.get(f"/billing-files/{s.plain.id}").status_code == 200  # a plain invoice: a file of one
