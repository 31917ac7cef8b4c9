"""What waits in the drop zones, and why (connectors/folder/waiting.py): the scan, `relais waiting`, the
web page /waiting and the landing page's part, over a real drop zone tree:

- op-a (a good partner file): a file ready for the next run, one just written (not stable yet), an old
  ``lot.zip.part`` never completed, a dot-file, a hosted SFTP upload in progress;
- op-p (good, paused by ops): a file waiting for the pause to end;
- op-bad (its partner file has an unknown field): a file held until the file is fixed;
- op-x (a drop zone without a partner file): taken by the next run, answered in its out/ folder.

The browser part runs in headless Debian chromium (Playwright); a screenshot of the page in French at
1,280 px is saved to $RELAIS_SHOTS (default /work/shots)/waiting.png.
"""

from __future__ import annotations

import doctest
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from connectors.folder import waiting
from connectors.folder.waiting import Reason
from connectors.sftp.hosted.handler import UPLOAD_PREFIX
from relais import runner
from relais.cli import main
from relais.compose import Runtime
from relais.settings import Settings
from relais.web.auth.passwords import hash_password
from relais.web.serve import WebThread

PASSWORDS = {"alice": "ops-password-1", "bob": "partner-pass-1"}
STABLE = 600.0  # long: a file written 2 s ago stays "not stable" however slow the machine
SHOTS = Path(os.environ.get("RELAIS_SHOTS", "/work/shots"))

EXPECTED = {  # (partner, name) -> reason
    ("op-a", "ready.xml"): Reason.NEXT_RUN,
    ("op-a", "fresh.xml"): Reason.NOT_STABLE,
    ("op-a", "lot.zip.part"): Reason.INCOMPLETE,
    ("op-a", ".notes"): Reason.IGNORED,
    ("op-a", None): Reason.INCOMPLETE,  # the hosted SFTP server's upload in progress
    ("op-p", "paused.xml"): Reason.PAUSED,
    ("op-bad", "held.xml"): Reason.HELD,
    ("op-x", "orphan.xml"): Reason.UNKNOWN_PARTNER,
}


def _put(inbox: Path, name: str, age: float, data: bytes = b"<Invoice/>") -> None:
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / name).write_bytes(data)
    when = time.time() - age
    os.utime(inbox / name, (when, when))


def _tree(home: Path) -> None:
    partners = home / "partners"
    partners.mkdir(parents=True)
    (partners / "op-a.toml").write_text('id = "op-a"\nname = "Opérateur A"\n')
    (partners / "op-p.toml").write_text('id = "op-p"\nname = "Opérateur P"\n')
    (partners / "op-bad.toml").write_text('id = "op-bad"\ncolour = "blue"\n')
    dz = home / "dropzones"
    _put(dz / "op-a" / "in", "ready.xml", 1200, b"<Invoice>" + b"x" * 3000 + b"</Invoice>")
    _put(dz / "op-a" / "in", "fresh.xml", 2)
    _put(dz / "op-a" / "in", "lot.zip.part", 3 * 3600, b"PK" * 100)
    _put(dz / "op-a" / "in", ".notes", 2400)
    _put(dz / "op-a" / "in", UPLOAD_PREFIX + "0123456789abcdef", 5)
    _put(dz / "op-p" / "in", "paused.xml", 7200)
    _put(dz / "op-bad" / "in", "held.xml", 3000)
    _put(dz / "op-x" / "in", "orphan.xml", 1800)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("waiting") / "home"
    _tree(home)
    yield home


@pytest.fixture(scope="module")
def rt(home) -> Iterator[Runtime]:
    rt = Runtime.open(Settings.from_env(home, stable_seconds=STABLE, workers=0))
    assert rt.store.pause_partner("op-p", "web:alice")
    for name, role, partner in (("alice", "ops", None), ("bob", "partner", "op-a")):
        rt.store.add_web_user(name, role, partner, hash_password(PASSWORDS[name]))
    yield rt
    rt.close()


def test_each_waiting_file_has_its_reason(rt, home):
    found = runner.waiting_files(rt.settings, rt.store)
    got = {(w.partner, w.name): w for w in found.files}
    assert {k: w.reason for k, w in got.items()} == EXPECTED
    assert found.total == len(EXPECTED) and not found.truncated
    assert found.stuck == 4  # the old .part, the dot-file, the paused and the held ones
    assert found.counts[("op-a", Reason.INCOMPLETE)] == 2
    # oldest first; sizes and ages as written
    assert [w.name for w in found.files][:2] == ["lot.zip.part", "paused.xml"]
    ready = got[("op-a", "ready.xml")]
    assert ready.size == 3000 + len(b"<Invoice></Invoice>") and 1195 < ready.age_seconds < 1500
    # each reason's details
    part = got[("op-a", "lot.zip.part")]
    assert part.never_completed and "jamais terminé" in waiting.explain(part)
    assert got[("op-a", None)].sftp_upload and not got[("op-a", None)].never_completed
    fresh = got[("op-a", "fresh.xml")]
    assert fresh.takes_in is not None and STABLE - 300 < fresh.takes_in <= STABLE - 2
    assert "pris dans" in waiting.explain(fresh)
    paused = got[("op-p", "paused.xml")]
    assert paused.paused_by == "web:alice" and paused.paused_at is not None
    assert "réception suspendue par web:alice depuis le " in waiting.explain(paused)
    held = got[("op-bad", "held.xml")]
    assert held.partner_files == ("op-bad.toml",)
    assert any("unknown field(s) colour" in p for p in held.problems), held.problems
    assert str(home) not in waiting.explain(held) and "op-bad.toml" in waiting.explain(held)
    assert "colour" not in waiting.explain(held, details=False)
    assert got[("op-a", ".notes")].kind == "hidden"


def test_the_count_is_exact_past_the_limit_and_a_partner_narrows_it(rt):
    found = runner.waiting_files(rt.settings, rt.store, limit=3)
    assert found.total == len(EXPECTED) and found.truncated
    assert [w.name for w in found.files] == ["lot.zip.part", "paused.xml", "held.xml"]
    only = runner.waiting_files(rt.settings, rt.store, partner="op-a", limit=0)
    assert only.total == 5 and only.files == [] and set(only.by_partner()) == {"op-a"}


def test_a_file_relais_cannot_read_stays_and_says_so(tmp_path, monkeypatch):
    """The scan leaves a file it cannot read in the inbox (dropzone.unreadable_file); the tests run as
    root, whom file permissions do not stop, so the permission check is what is replaced here."""
    _put(tmp_path / "op-a" / "in", "locked.xml", 1200)
    _put(tmp_path / "op-a" / "in", "open.xml", 1200)
    real = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode, **kw: not str(path).endswith("locked.xml") and real(path, mode, **kw)
    )
    found = waiting.scan(tmp_path, stable_seconds=STABLE, partners={"op-a": object()})
    got = {w.name: w for w in found.files}
    assert {n: w.reason for n, w in got.items()} == {"locked.xml": Reason.UNREADABLE, "open.xml": Reason.NEXT_RUN}
    assert "droits du fichier" in waiting.explain(got["locked.xml"])


def test_the_metrics_count_waiting_files_per_partner_and_reason(rt):
    from relais import metrics

    body = metrics.render(rt)[0].decode()
    assert 'relais_dropzone_waiting_files{partner="op-a",reason="incomplete"} 2.0' in body
    assert 'relais_dropzone_waiting_files{partner="op-bad",reason="held"} 1.0' in body
    assert 'relais_dropzone_waiting_files{partner="op-p",reason="paused"} 1.0' in body
    assert "relais_dropzone_stuck_files 4.0" in body


def test_the_sftp_upload_prefix_is_the_hosted_server_s_and_the_doctests_pass():
    assert waiting.SFTP_UPLOAD_PREFIX == UPLOAD_PREFIX
    assert doctest.testmod(waiting).failed == 0


def test_the_next_run_takes_what_it_says_and_leaves_the_rest(tmp_path):
    """Reasons are not guesses: after an intake, what is left is exactly what was not NEXT_RUN or
    UNKNOWN_PARTNER."""
    home = tmp_path / "home"
    _tree(home)
    rt2 = Runtime.open(Settings.from_env(home, stable_seconds=STABLE, workers=0))
    try:
        rt2.store.pause_partner("op-p", "web:alice")
        before = runner.waiting_files(rt2.settings, rt2.store)
        taken = {(f.partner, f.original_name) for f in runner.intake(rt2)}
        after = runner.waiting_files(rt2.settings, rt2.store)
    finally:
        rt2.close()
    moving = {(w.partner, w.name) for w in before.files if w.reason in (Reason.NEXT_RUN, Reason.UNKNOWN_PARTNER)}
    assert taken == moving == {("op-a", "ready.xml"), ("op-x", "orphan.xml")}
    assert {(w.partner, w.name): w.reason for w in after.files} == {
        k: r for k, r in EXPECTED.items() if k not in moving
    }


def test_relais_waiting_in_the_terminal(rt, home):
    cli = CliRunner()
    done = cli.invoke(main, ["--home", str(home), "waiting"], env={"RELAIS_STABLE_SECONDS": str(STABLE)})
    assert done.exit_code == 0, done.output
    out = done.output
    assert out.startswith("8 fichier(s) en attente dans les zones de dépôt, dont 4 bloqué(s) jusqu'à une action :"), out
    assert re.search(r"op-p  paused\.xml  \d+ o  depuis 2 h 0\d min\n    réception suspendue par web:alice", out)
    assert "envoi jamais terminé" in out and "op-bad.toml est invalide" in out and "(envoi SFTP en cours)" in out
    assert "prêt : pris au prochain passage" in out and "aucun fichier partenaire" in out
    assert str(home / "dropzones") not in out
    done = cli.invoke(
        main,
        ["--home", str(home), "waiting", "--partner", "op-a", "--json", "--limit", "1"],
        env={"RELAIS_STABLE_SECONDS": str(STABLE)},
    )
    assert done.exit_code == 0, done.output
    data = json.loads(done.output)
    assert data["total"] == 5 and len(data["files"]) == 1
    assert data["files"][0]["name"] == "lot.zip.part" and data["files"][0]["never_completed"] is True
    assert {(c["reason"], c["files"]) for c in data["counts"]} == {
        ("incomplete", 2),
        ("ignored", 1),
        ("not_stable", 1),
        ("next_run", 1),
    }


# ---- the web pages -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def web(rt) -> Iterator[str]:
    with WebThread(rt) as w:
        yield w.url


def _login(url: str, name: str) -> httpx.Client:
    c = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
    m = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)
    assert m
    r = c.post("/login", data={"username": name, "password": PASSWORDS[name], "next": "/", "csrf": m[1]})
    assert r.status_code == 303, r.text[:300]
    return c


def test_a_partner_user_sees_only_their_own_files_and_no_server_path(web, home):
    bob = _login(web, "bob")
    try:
        for query in ("", "?partner=op-p", "?partner=op-bad&lang=en"):
            page = bob.get("/waiting" + query)
            assert page.status_code == 200
            assert "ready.xml" in page.text and "lot.zip.part" in page.text
            for other in ("paused.xml", "held.xml", "orphan.xml", "op-p", "op-bad", "op-x"):
                assert other not in page.text, (query, other)
            assert str(home) not in page.text and "/dropzones/" not in page.text
            assert UPLOAD_PREFIX not in page.text
        landing = bob.get("/?lang=fr").text
        assert re.search(r'id="home-waiting-link">5 fichier\(s\) en attente', landing), landing
        assert "web:alice" not in landing  # op-p's pause is not op-a's business
        assert bob.get("/waiting?partner=%00").status_code == 400
    finally:
        bob.close()


def test_the_waiting_page_and_the_landing_page_in_chromium(web, browser, home):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(web + "/waiting")
    page.get_by_label("Identifiant").fill("alice")
    page.get_by_label("Mot de passe").fill(PASSWORDS["alice"])
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_load_state()
    page.goto(web + "/waiting")
    assert page.get_by_role("heading", level=1).inner_text() == "En attente dans les zones de dépôt"
    assert "8 fichier(s) en attente" in page.locator("#waiting-total").inner_text()
    expected_text = {
        "ready.xml": "prêt : pris au prochain passage",
        "fresh.xml": "pas encore stable",
        "lot.zip.part": "envoi jamais terminé",
        ".notes": "jamais pris : fichier caché",
        "paused.xml": "réception suspendue par web:alice depuis le",
        "held.xml": "retenu : op-bad.toml est invalide",
        "orphan.xml": "aucun fichier partenaire",
        "envoi SFTP en cours": "envoi SFTP en cours : le fichier prendra son nom",
    }
    rows = page.locator("table.waiting tbody tr")
    assert rows.count() == len(EXPECTED)
    for name, why in expected_text.items():
        row = rows.filter(has_text=name)
        assert row.count() == 1, name
        assert why in row.inner_text(), (name, row.inner_text())
    assert "colour" in rows.filter(has_text="held.xml").inner_text()  # ops see the problem itself
    assert str(home) not in page.content()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280, width
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "waiting.png"), full_page=True)
    page.get_by_role("link", name="op-p").first.click()
    page.wait_for_load_state()
    assert page.locator("table.waiting tbody tr").count() == 1
    # the landing page: the count (a link to /waiting) and the paused partner, who and when
    page.goto(web + "/")
    link = page.locator("#home-waiting-link")
    assert link.inner_text() == "8 fichier(s) en attente"
    assert "4 bloqué(s) jusqu'à une action" in page.locator("section.home-waiting").inner_text()
    paused = page.locator("table.paused tbody tr")
    assert paused.count() == 1
    cells = paused.first.inner_text()
    assert "op-p" in cells and "web:alice" in cells and re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", cells)
    page.locator("section.home-waiting").screenshot(path=str(SHOTS / "home-waiting.png"))
    link.click()
    page.wait_for_url(web + "/waiting")
    page.goto(web + "/waiting?lang=en")
    assert page.get_by_role("heading", level=1).inner_text() == "Waiting in the drop zones"
    assert "intake paused by web:alice" in page.locator("table.waiting").inner_text()
    page.goto(web + "/waiting?lang=fr")
    page.close()
