"""The landing page's "Circuits de facturation" (relais/web/views/circuits.py, _home_circuits.html) and the
circuits' metrics (relais/metrics.py `CircuitCollector`), served by a real uvicorn (`WebThread`).

Pieces waiting in every kind of step are recorded straight into the store as intake records them
(tests/support/billing_files.py `seed_waiting`), their deadlines around the moment the test starts (the
server's clock is the real one: the pieces are placed hours from the boundaries, or on them, where a few
seconds more do not change which side they are on). Headless Debian chromium (Playwright) reads the
section and follows the oldest piece's link; httpx checks what a partner user sees and the metrics.
"""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Iterator

import httpx
import pytest

from flows.domain.lifecycle import InvoiceStatus
from flows.domain.model import utcnow
from relais import metrics
from relais.compose import Runtime
from relais.settings import Settings
from relais.web.auth.passwords import hash_password
from relais.web.serve import WebThread
from tests.support import billing_files
from tests.support.billing_files import Waiting

I = InvoiceStatus  # noqa: E741
PASSWORDS = {"alice": "ops-password-1", "bob": "partner-pass-1"}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[str, Runtime, Waiting]]:
    work = tmp_path_factory.mktemp("circuits-web")
    rt = Runtime.open(Settings.from_env(work / "home", stable_seconds=0.0, workers=0))
    try:
        seeded = billing_files.seed_waiting(rt.store, utcnow())
        rt.store.add_web_user("alice", "ops", None, hash_password(PASSWORDS["alice"]))
        rt.store.add_web_user("bob", "partner", "op-sub", hash_password(PASSWORDS["bob"]))
        with WebThread(rt) as web:
            yield web.url, rt, seeded
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
    url, _, _ = site
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


def _figures(section) -> dict[str, tuple[int, int, int, str]]:
    """The table's rows: {status name: (waiting, overdue, due soon, oldest piece's link text)}."""
    found = {}
    for row in section.locator("table.circuits tbody tr").all():
        cells = [row.locator(f"td.{c}").inner_text().strip() for c in ("waiting", "overdue", "due-soon", "oldest")]
        found[row.get_attribute("data-status")] = (int(cells[0]), int(cells[1]), int(cells[2]), cells[3])
    return found


def test_ops_see_what_waits_in_the_circuits_and_open_the_oldest_piece(site, page) -> None:
    url, _, s = site
    page.goto(url + "/")
    section = page.locator("section.home-circuits")
    assert section.get_by_role("heading", name="Circuits de facturation").is_visible()
    assert section.locator("#circuits-total").inner_text() == "10 pièce(s) en attente, dont 2 en retard."
    figures = _figures(section)
    assert list(figures) == [
        "A_VALIDER_1",
        "ERREUR_FOURNISSEUR_SUR_VALIDEUR",
        "A_VALIDER_2",
        "MISE_A_DISPOSITION_MOE",
        "PRISE_EN_COMPTE_MOE",
        "MISE_A_DISPOSITION_MOA",
        "PRISE_EN_COMPTE_MOA",
        "A_ASSOCIER_FOURNISSEUR",
    ]
    for status, (waiting, overdue, soon, oldest, _file) in s.expected.items():
        shown = figures[status.name]
        assert shown[:3] == (waiting, overdue, soon), status
        assert shown[3].startswith(oldest + " · reçue le "), status
    assert figures["PRISE_EN_COMPTE_MOA"] == (0, 0, 0, "—")
    header = section.locator("table.circuits thead th").all_inner_texts()
    assert header == ["Statut", "En attente de", "Pièces", "En retard", "Échéance sous 48 h", "La plus ancienne"]
    first = section.locator("tr[data-status=A_VALIDER_1]")
    assert first.locator("th").inner_text() == "À valider (valideur 1) (20)"
    assert first.locator("td.waits-for").inner_text() == "valideur"
    wrong = section.locator("tr[data-status=ERREUR_FOURNISSEUR_SUR_VALIDEUR]")
    assert wrong.locator("td.waits-for").inner_text().startswith("exploitation")
    assert wrong.locator("p.ops-needed").inner_text() == (
        "Le valideur indiqué n'est pas le bon : l'exploitation doit désigner le bon valideur."
        " Commande : relais invoices validator ID --siret S --reason ..."
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280

    # The MOA's piece follows the MOE's: its link opens their billing file, at the piece.
    moa, moe = s.pieces["moa"], s.pieces["moe"]
    section.locator("tr[data-status=MISE_A_DISPOSITION_MOA]").get_by_role("link", name=moa.id).click()
    page.wait_for_url(f"**/billing-files/{moe.id}#piece-{moa.id}")
    assert page.locator("h1").inner_text().strip() == f"Dossier de facturation {moe.id}"
    assert page.locator(f"li.piece#piece-{moa.id}").is_visible()

    page.goto(url + "/?lang=en")
    section = page.locator("section.home-circuits")
    assert section.get_by_role("heading", name="Billing circuits").is_visible()
    assert section.locator("#circuits-total").inner_text() == "10 piece(s) waiting, 2 of them overdue."
    assert (
        "operations must set the right validator"
        in section.locator("tr[data-status=ERREUR_FOURNISSEUR_SUR_VALIDEUR]").inner_text()
    )
    assert section.locator("tr[data-status=MISE_A_DISPOSITION_MOE] th").inner_text().startswith("Made available")


def test_a_partner_sees_its_own_pieces_without_the_ops_command(site) -> None:
    url, _, s = site
    with contextlib.closing(_client(url, "bob")) as bob:  # op-sub
        text = html.unescape(bob.get("/").text)
    assert "6 pièce(s) en attente, dont 1 en retard." in text
    assert "l'exploitation doit désigner le bon valideur" in text and "relais invoices validator" not in text
    assert f'href="/billing-files/{s.pieces["late"].id}#piece-{s.pieces["late"].id}"' in text
    assert s.pieces["moa"].id not in text  # op-moe's


def test_the_metrics_count_the_waiting_and_overdue_pieces(site) -> None:
    url, rt, s = site
    assert "relais_circuit_pieces_overdue" in metrics.render(rt)[0].decode()  # `relais run --metrics-port` too
    with contextlib.closing(_client(url, "alice")) as alice:
        scraped = alice.get("/metrics").text
    values = {
        (name, status): float(v)
        for name, status, v in re.findall(r'^(relais_circuit_pieces_\w+)\{status="(\w+)"\} (\S+)$', scraped, re.M)
    }
    for status, (waiting, overdue, soon, _, _) in s.expected.items():
        assert values["relais_circuit_pieces_waiting", status.name] == waiting
        assert values["relais_circuit_pieces_overdue", status.name] == overdue
        assert values["relais_circuit_pieces_due_soon", status.name] == soon
    assert values["relais_circuit_pieces_waiting", "PRISE_EN_COMPTE_MOA"] == 0
    assert sum(v for (name, _), v in values.items() if name == "relais_circuit_pieces_overdue") == 2
    assert "# TYPE relais_circuit_pieces_waiting gauge" in scraped
