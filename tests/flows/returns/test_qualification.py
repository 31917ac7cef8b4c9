"""Qualification before production (raccordement, issue 20 §5) and the return flows' language (§1).

A partner file saying ``mode = "qualification"``: its flows are judged and answered as in production,
the return flow is marked (``_QUALIF``, a first ``QUALIFICATION`` line), nothing is delivered (no file,
no delivery outbox row), no invoice number is taken (the same invoice later in production is no
duplicate), recipients do not see the invoices (the API), and the pages mark the flows. Ops switch the
partner to production with ``relais partners production`` or the landing page's button (audited, stored
append-only); the next flow follows. Return flows' free texts are French by default, English for a
partner whose file says ``language = "en"``; both XSD-valid.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from lxml import etree

from flows.directory import importer as directory
from flows.domain.model import FlowStatus
from flows.domain.outbox import OutboxKind
from flows.domain.rule import REGISTRY
from flows.returns import report as returnflow
from flows.store import Store, tables
from relais import generate as gen
from relais.api import auth
from relais.cli import main
from relais.compose import Runtime
from relais.settings import Settings
from relais.web.auth.passwords import hash_password
from relais.web.serve import WebThread
from tests.support.api_server import client, make_token, serving
from tests.support.helpers import drop, run

SCHEMA = Path(__file__).resolve().parents[3] / "schemas" / "xsd" / "relais-cppstatut.xsd"


@pytest.fixture
def home(tmp_path, request):
    """A home with the sample directory and three partner files: op-q in qualification, op-en answered
    in English, op-p in production (the defaults); its store on SQLite, or on a private schema of
    PostgreSQL when the test is parametrized so (indirect)."""
    db: dict[str, str] = {}
    if getattr(request, "param", "sqlite") == "postgresql":
        from tests.conftest import PG_URL, private_schema

        schema = private_schema("relais_q")
        db = {"database_url": PG_URL, "database_schema": schema.__enter__()}
        request.addfinalizer(lambda: schema.__exit__(None, None, None))
    settings = Settings.from_env(tmp_path / "home", stable_seconds=0.0, workers=0, **db)
    settings.partners_dir.mkdir(parents=True, exist_ok=True)
    (settings.partners_dir / "op-q.toml").write_text('name = "Opérateur Q"\nmode = "qualification"\n')
    (settings.partners_dir / "op-en.toml").write_text('name = "Operator EN"\nlanguage = "en"\n')
    (settings.partners_dir / "op-p.toml").write_text('name = "Opérateur P"\n')
    rt = Runtime.open(settings)
    recipients = gen.sample_directory()
    path = tmp_path / "annuaire.json"
    path.write_text(json.dumps(gen.directory_document(recipients, "test-1")))
    directory.import_file(rt.store, path)
    yield rt, recipients
    rt.close()


def _batch(recipients, name: str = "lot.zip", start: int = 1) -> tuple[str, bytes, list[str]]:
    """A zip of three correct invoices and one sent to an unknown SIRET (RLS-R..), numbered from `start`:
    (name, bytes, the correct invoices' numbers)."""
    good = list(gen.plan(3, 1, recipients, seed=5, start=start))
    bad = next(s for s in gen.plan(50, 1, recipients, misrouted_ratio=1.0, seed=6, start=start + 100) if s.defect)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for spec in [*good, bad]:
            entry, data = gen.document("ubl", spec)
            z.writestr(entry, data)
    return name, buf.getvalue(), [s.number for s in good]


def _return_file(rt: Runtime, flow) -> tuple[str, etree._Element]:
    """The flow's return file in its partner's out folder: its name, and its root, validated against the
    XSD (by Relais's validator and by lxml with the schema file itself)."""
    [path] = [p for p in rt.settings.outbox_dir(flow.partner).iterdir() if p.name.startswith(f"CR_{flow.id}_")]
    data = path.read_bytes()
    returnflow.validate(data)
    etree.XMLSchema(etree.parse(str(SCHEMA))).assertValid(etree.fromstring(data))
    return path.name, etree.fromstring(data)


def _delivered(rt: Runtime) -> list[Path]:
    return sorted(p for p in rt.settings.delivery_dir.rglob("*") if p.is_file())


def _numbers_taken(rt: Runtime, flow_id: str) -> int:
    n = tables.invoice_numbers.c
    with rt.store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).where(n.invoice_id.like(f"{flow_id}-%"))).scalar_one()


def _cli(rt: Runtime, *args: str):
    env = {"RELAIS_DATABASE_URL": rt.settings.database_url, "RELAIS_DATABASE_SCHEMA": rt.settings.database_schema}
    return CliRunner(env=env).invoke(main, ["--home", str(rt.settings.home), *args])


@pytest.mark.parametrize("home", ["sqlite", "postgresql"], indirect=True)
def test_a_qualification_flow_is_answered_and_marked_but_delivers_and_reserves_nothing(home):
    rt, recipients = home
    name, data, numbers = _batch(recipients)
    drop(rt, "op-q", name, data)
    [flow] = run(rt)
    assert flow.status is FlowStatus.IN_INTEGRE_PARTIEL and flow.qualification
    assert (flow.invoice_count, flow.rejected_count) == (4, 1)

    # Answered exactly as in production, marked: the file name and a first flow-level line; French texts.
    file_name, root = _return_file(rt, flow)
    assert file_name == f"CR_{flow.id}_IN_INTEGRE_PARTIEL_QUALIF.xml"
    first = root.find("CPPFluxStatuts/CPPFluxStatut/Details/LigneErreurDetail")
    assert first is not None and first.findtext("CodeErreur") == "QUALIFICATION"
    assert first.findtext("Severite") == "warning"
    assert "aucune facture n'est transmise" in first.findtext("DescriptionErreur", "")
    statuses = root.findall("CPPFactureStatuts/CPPFactureStatut")
    assert [s.findtext("DonneesStatut/IdStatut") for s in statuses].count("01") == 3
    [rejected] = [s for s in statuses if s.find("Erreurs") is not None]
    line = rejected.find("Erreurs/LigneErreurDetail")
    rule = REGISTRY[line.findtext("CodeErreur")]
    assert line.findtext("LibelleErreur") == rule.message_fr  # French by default
    assert rejected.findtext("DonneesStatut/Motif", "").startswith(rule.message_fr)

    # Nothing delivered, no delivery outbox row, no number taken, nothing a recipient sees.
    assert _delivered(rt) == []
    kinds = [o.kind for o in rt.store.outbox_for_flow(flow.id)]
    assert OutboxKind.DELIVERY not in kinds and kinds == [OutboxKind.RETURN]
    assert _numbers_taken(rt, flow.id) == 0
    # The landing page's and rejects page's figures count production flows only (their own section counts these).
    assert [n for _, n in rt.store.invoices_per_day(2, "op-q")] == [{"accepted": 0, "rejected": 0}] * 2
    assert [n for _, n in rt.store.flows_per_day(2, "op-q")] == [{}, {}]
    assert rt.store.top_reject_rules(2, "op-q") == []
    accepted = [i for i in rt.store.iter_invoices(flow.id) if not i.rejected]
    buyer = accepted[0].buyer_siret
    with serving(rt) as api:
        token, _ = make_token(rt, auth.RECIPIENT, siret=buyer)
        with client(api, token) as c:
            listed = c.get("/api/v1/invoices").json()["invoices"]
            assert [i["id"] for i in listed if i["flow_id"] == flow.id] == []
            assert c.get(f"/api/v1/invoices/{accepted[0].id}").status_code == 404
        sender, _ = make_token(rt, auth.PARTNER, partner="op-q")  # the sender's API marks it
        with client(api, sender) as c:
            assert c.get(f"/api/v1/flows/{flow.id}").json()["qualification"] is True
            assert [f["qualification"] for f in c.get("/api/v1/flows").json()["flows"]] == [True]

    shown = _cli(rt, "flows", flow.id)
    assert "QUALIFICATION (rien n'est transmis aux destinataires)" in shown.output
    assert json.loads(_cli(rt, "flows", flow.id, "--json").output)["flow"]["qualification"] is True

    # `relais partners`: the mode, who decided it, the channels and the last flow.
    result = _cli(rt, "partners")
    assert result.exit_code == 0, result.output
    assert re.search(
        r"op-q \(Opérateur Q\): folder ; flux retour -> .*\n  mode : QUALIFICATION \(fichier du partenaire\)",
        result.output,
    )
    assert f"dernier flux : {flow.id} du " in result.output and "(IN_INTEGRE_PARTIEL)" in result.output
    rows = {r["partner"]: r for r in json.loads(_cli(rt, "partners", "--json").output)}
    assert rows["op-q"]["mode"] == "qualification" and rows["op-q"]["mode_set_by"] == "file"
    assert rows["op-q"]["channels"] == ["folder"]
    assert rows["op-q"]["last_flow"]["id"] == flow.id
    assert rows["op-q"]["last_flow"]["status"] == "IN_INTEGRE_PARTIEL"
    assert rows["op-p"]["mode"] == "production" and rows["op-p"]["last_flow"] is None

    # Ops switch op-q to production from the terminal: stored, audited, listed.
    result = _cli(rt, "partners", "production", "op-q", "--reason", "recette validée")
    assert result.exit_code == 0, result.output
    assert "op-q : passé en production" in result.output
    [switch] = rt.store.partner_mode_history("op-q")
    assert (switch.mode, switch.reason) == ("production", "recette validée") and switch.by.startswith("cli")
    [audited] = [a for a in rt.store.audit_rows(target="op-q") if a.action == "partner.production"]
    assert audited.outcome == "ok" and audited.principal.startswith("cli")
    assert "qualification -> production" in (audited.detail or "")
    again = _cli(rt, "partners", "production", "op-q")
    assert again.exit_code == 0 and "déjà en production" in again.output
    assert len(rt.store.partner_mode_history("op-q")) == 1
    unknown = _cli(rt, "partners", "production", "op-nobody")
    assert unknown.exit_code == 2 and "partenaire inconnu" in unknown.output
    rows = {r["partner"]: r for r in json.loads(_cli(rt, "partners", "--json").output)}
    assert rows["op-q"]["mode"] == "production" and rows["op-q"]["mode_set_by"]["reason"] == "recette validée"

    # The very same file again, now in production: not a duplicate flow, its numbers are not duplicates,
    # delivered, numbers taken, seen by the recipient; its return flow is not marked.
    drop(rt, "op-q", "lot-prod.zip", data)
    [prod] = run(rt)
    assert not prod.qualification and prod.duplicate_of is None
    assert (prod.status, prod.rejected_count) == (FlowStatus.IN_INTEGRE_PARTIEL, 1)
    file_name, root = _return_file(rt, prod)
    assert file_name == f"CR_{prod.id}_IN_INTEGRE_PARTIEL.xml"
    assert "QUALIFICATION" not in root.xpath("//CodeErreur/text()")
    assert "RLS-P01" not in root.xpath("//CodeErreur/text()")
    assert len(_delivered(rt)) == 3
    assert _numbers_taken(rt, prod.id) == 3
    invoices = {i.invoice.number for i in rt.store.recipient_invoices(buyer)}
    assert invoices and invoices <= set(numbers)


def test_return_texts_are_french_by_default_and_english_for_a_partner_that_asks(home):
    rt, recipients = home
    name, data, _ = _batch(recipients)
    drop(rt, "op-p", name, data)
    name, data, _ = _batch(recipients, start=1000)
    drop(rt, "op-en", name, data)
    flows = {f.partner: f for f in run(rt)}
    lines = {}
    for partner, flow in flows.items():
        assert not flow.qualification
        file_name, root = _return_file(rt, flow)
        assert not file_name.endswith("_QUALIF.xml")
        [line] = root.findall(".//CPPFactureStatut/Erreurs/LigneErreurDetail")
        lines[partner] = line
    rule = REGISTRY[lines["op-p"].findtext("CodeErreur")]
    assert rule.code == lines["op-en"].findtext("CodeErreur")  # same structure, same codes
    assert lines["op-p"].findtext("LibelleErreur") == rule.message_fr
    assert lines["op-en"].findtext("LibelleErreur") == rule.message_en
    assert lines["op-p"].findtext("DescriptionErreur").startswith(rule.message_fr + " : ")
    assert lines["op-en"].findtext("DescriptionErreur").startswith(rule.message_en)


def test_ops_switch_a_partner_to_production_from_the_landing_page(home):
    rt, recipients = home
    name, data, _ = _batch(recipients)
    drop(rt, "op-q", name, data)
    [flow] = run(rt)
    rt.store.add_web_user("alice", "ops", None, hash_password("ops-password-1"))
    rt.store.add_web_user("carol", "viewer", None, hash_password("viewer-pass-1"))
    with WebThread(rt) as web:

        def login(user: str, password: str) -> httpx.Client:
            c = httpx.Client(base_url=web.url, follow_redirects=False, timeout=30)
            token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)
            assert token
            c.post("/login", data={"username": user, "password": password, "csrf": token[1]})
            return c

        c = login("alice", "ops-password-1")
        try:
            page = c.get("/").text
            row = re.search(r'<tr data-partner="op-q">.*?</tr>', page, re.S)
            assert row, page[:2000]
            assert "Partenaires en qualification" in page
            assert '<td class="num qualif-rate">0 %</td>' in row[0]  # 0 of 1 flow integrated whole
            assert "Passer en production" in row[0]
            assert "op-p" not in re.search(r'<section aria-labelledby="h-qualification".*?</section>', page, re.S)[0]
            listing = c.get("/flows").text
            assert re.search(rf'href="/flows/{flow.id}">{flow.id}</a> <span class="badge warn qualif"', listing)
            flow_page = c.get(f"/flows/{flow.id}").text
            assert ">Qualification</span>" in flow_page
            assert '<strong>qualification</strong> <span class="name">Flux de qualification' in flow_page  # timeline
            csrf = re.search(r'name="csrf" value="([^"]+)"', page)[1]

            refused = c.post("/qualification/op-q/production", data={"csrf": "wrong"})
            assert refused.status_code == 403
            assert rt.partner_mode("op-q") == "qualification"
            assert c.post("/qualification/op-nobody/production", data={"csrf": csrf}).status_code == 404

            viewer = login("carol", "viewer-pass-1")
            try:
                viewer_page = viewer.get("/").text
                assert '<tr data-partner="op-q">' in viewer_page and "Passer en production" not in viewer_page
                viewer_csrf = re.search(r'name="csrf" value="([^"]+)"', viewer_page)[1]
                no = viewer.post("/qualification/op-q/production", data={"csrf": viewer_csrf})
                assert no.status_code == 403
            finally:
                viewer.close()
            assert rt.partner_mode("op-q") == "qualification"

            done = c.post("/qualification/op-q/production", data={"csrf": csrf, "reason": "recette OK"})
            assert done.status_code == 303 and done.headers["location"] == "/"
            after = c.get("/").text
            assert "op-q : passé en production" in after and '<tr data-partner="op-q">' not in after
        finally:
            c.close()
        assert rt.partner_mode("op-q") == "production"
        [switch] = rt.store.partner_mode_history("op-q")
        assert (switch.by, switch.reason) == ("web:alice", "recette OK")
        audited = [(a.principal, a.action, a.outcome) for a in rt.store.audit_rows(target="op-q")]
        assert ("web:alice", "partner.production", "ok") in audited
        assert ("web:alice", "web.partner.production", "refused") in audited  # the wrong CSRF token
        assert ("web:carol", "web.partner.production", "refused") in audited  # a viewer may not act

    # The next flow of op-q is a production one: delivered.
    name, data, _ = _batch(recipients, "lot-2.zip", start=1000)
    drop(rt, "op-q", name, data)
    [prod] = run(rt)
    assert not prod.qualification and prod.duplicate_of is None
    assert OutboxKind.DELIVERY in [o.kind for o in rt.store.outbox_for_flow(prod.id)]
    assert len(_delivered(rt)) == 3


def test_mode_switches_are_kept_append_only_and_the_latest_wins(store_url):
    url, schema = store_url
    store = Store.open(url, schema=schema)
    try:
        assert store.partner_modes() == {}
        store.switch_partner_mode("op-q", "production", "cli:ops", "recette")
        store.switch_partner_mode("op-q", "qualification", "web:alice")
        store.switch_partner_mode("op-r", "production", "web:alice")
        modes = store.partner_modes()
        assert (modes["op-q"].mode, modes["op-r"].mode) == ("qualification", "production")
        assert [m.mode for m in store.partner_mode_history("op-q")] == ["production", "qualification"]
        with pytest.raises(ValueError):
            store.switch_partner_mode("op-q", "bogus", "cli:ops")
        for sql in ("UPDATE partner_modes SET mode = 'production'", "DELETE FROM partner_modes"):
            with pytest.raises(sa.exc.DBAPIError) as refused:
                with store.engine.begin() as conn:
                    conn.execute(sa.text(sql))
            assert "append-only" in str(refused.value), sql
        assert len(store.partner_mode_history("op-q")) == 2
        assert store.qualification_counts(["op-q"]) == {}
    finally:
        store.engine.dispose()


def test_the_specifics_of_relais_rules_are_french_too_and_the_examples_hold():
    from flows.domain.model import Category, Flag, ValidationError
    from validators.platform import duplicate_invoice

    found = duplicate_invoice.RULE.error("BT-1", "INV-7 (supplier 73282932000074, 2026) is invoice CPP1-00002")
    fr = returnflow.error_description(found, "fr")
    assert (
        fr
        == f"{duplicate_invoice.RULE.message_fr} : INV-7 (fournisseur 73282932000074, 2026) est déjà la facture CPP1-00002"
    )
    assert returnflow.error_description(found, "en") == found.message
    parser = ValidationError("RLS-T03", Flag.FATAL, "line 1", "Opening and ending tag mismatch", Category.TECHNICAL)
    assert returnflow.error_description(parser, "fr") == parser.message  # not Relais's words: as recorded
    for module in ("flows.returns.report", "flows.returns.status", "flows.domain.rule"):
        import doctest
        import importlib

        result = doctest.testmod(importlib.import_module(module))
        assert result.failed == 0 and result.attempted > 0, module
