"""An invoice's history is append-only, reprocessing included (issue 19, section 0).

- A flow rejected for an unknown recipient (RLS-R03), reprocessed after the directory is fixed: `relais
  invoices ID` shows the rejection the sender was told, then the rerun's entries (by ops, with the reason);
  the earlier findings and return flows stay, marked superseded; the status return flows report every
  change once, in order. On SQLite and PostgreSQL, through the CLI.
- No code deletes or updates a history or audit row (a grep of the code), and the store refuses it
  (triggers, both stores).
- `relais api token create` and `relais users add` refuse what does not exist: nothing is created.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import os
import re
import zipfile
from collections import Counter
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import structlog
from click.testing import CliRunner
from lxml import etree

from flows.domain import log
from flows.domain.model import Channel, Flow, FlowStatus, utcnow
from flows.domain.outbox import Address
from flows.store import Store
from flows.store import tables as t
from relais import generate as gen
from relais.cli import main

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("RELAIS_"):
            monkeypatch.delenv(key)
    saved, configured, was = structlog.get_config(), log._configured, structlog.is_configured()
    yield
    if was:
        structlog.configure(**saved)
    else:  # configure() would mark structlog configured with its console defaults: no JSON logs after
        structlog.reset_defaults()
    log._configured = configured


@pytest.fixture
def home(tmp_path, store_url, monkeypatch) -> Path:
    """A Relais home whose store is SQLite or a private PostgreSQL schema."""
    url, schema = store_url
    home = tmp_path / "home"
    monkeypatch.setenv("RELAIS_HOME", str(home))
    monkeypatch.setenv("RELAIS_STABLE_SECONDS", "0")
    monkeypatch.setenv("RELAIS_WORKERS", "0")
    monkeypatch.setenv("RELAIS_LOG_LEVEL", "WARNING")
    if schema:
        monkeypatch.setenv("RELAIS_DATABASE_URL", url)
        monkeypatch.setenv("RELAIS_DATABASE_SCHEMA", schema)
    return home


def _cli(*args: object, stdin: str | None = None):
    return CliRunner().invoke(main, [str(a) for a in args], input=stdin, catch_exceptions=False)


def _store() -> Store:
    url = os.environ.get("RELAIS_DATABASE_URL") or f"sqlite:///{Path(os.environ['RELAIS_HOME']) / 'relais.db'}"
    return Store.open(url, schema=os.environ.get("RELAIS_DATABASE_SCHEMA"), migrate=False)


def _drop(home: Path, partner: str, name: str, data: bytes) -> None:
    inbox = home / "dropzones" / partner / "in"
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / name).write_bytes(data)
    os.utime(inbox / name, (0, 0))


def test_reprocessing_appends_to_the_history_it_never_rewrites_it(home, tmp_path):
    recipients = gen.sample_directory()
    specs = list(gen.plan(4, 2, recipients, seed=7))
    missing = sorted({s.buyer_siret for s in specs})[0]  # one recipient invoiced is not in the first directory
    (tmp_path / "v1.json").write_text(
        json.dumps(gen.directory_document([r for r in recipients if r.siret != missing], "v1"))
    )
    (tmp_path / "v2.json").write_text(json.dumps(gen.directory_document(recipients, "v2")))
    assert _cli("directory", "import", tmp_path / "v1.json").exit_code == 0
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for spec in specs:
            z.writestr(*gen.document("ubl", spec))
    _drop(home, "op-a", "lot.zip", buf.getvalue())
    assert _cli("run", "-q").exit_code == 0

    store = _store()
    try:
        [flow] = store.list_flows()
        assert flow.status in (FlowStatus.IN_REJETE, FlowStatus.IN_INTEGRE_PARTIEL)
        first = {i.id: i for i in store.iter_invoices(flow.id)}
        rejected = sorted(i for i, inv in first.items() if inv.status.is_rejected)
        assert rejected and all(any(e.rule == "RLS-R03" for e in first[i].errors) for i in rejected)
        kept = {i: store.invoice_history(i) for i in first if i not in rejected}
        told = home / "dropzones" / "op-a" / "out" / f"CR_{flow.id}_{flow.status}.xml"
        assert told.exists()  # the sender was told of the rejection
        [entry] = store.invoice_history(rejected[0])
        assert (entry.previous, entry.status.code, str(entry.actor)) == (None, "04", "platform")

        assert store.api_invoice(rejected[0])[2] is False  # type: ignore[index]  # rejected: not shown by the API
        assert _cli("directory", "import", tmp_path / "v2.json").exit_code == 0
        again = _cli("flows", "reprocess", flow.id, "--reason", "annuaire corrigé")
        assert again.exit_code == 0, again.output
        assert store.get_flow(flow.id).status is FlowStatus.IN_INTEGRE  # type: ignore[union-attr]

        shown = _cli("invoices", rejected[0])
        assert shown.exit_code == 0
        lines = [ln.strip() for ln in shown.output.splitlines() if re.match(r"\s+\d{4}-\d\d-\d\d ", ln)]
        assert len(lines) == 3, shown.output
        assert re.search(r"enregistrée 04 REJETEE par platform \(platform\)$", lines[0]), lines
        assert lines[1].endswith(
            "enregistrée 01 DEPOSEE par ops (platform): Retraitement demandé par ops : annuaire corrigé"
        )
        assert re.search(r"01 -> 03 MISE_A_DISPOSITION par platform", lines[2]), lines
        as_json = json.loads(_cli("invoices", rejected[0], "--json").output)
        assert [(h["code"], h["actor"], h["previous"]) for h in as_json["history"]] == [
            ("04", "platform", None),
            ("01", "ops", None),
            ("03", "platform", "01"),
        ]
        assert as_json["errors"] == []  # the current findings: the rerun's (none)
        # the accepted invoices keep their history as it was
        assert {i: store.invoice_history(i) for i in kept} == kept
        # the earlier findings stay, superseded; nobody reads them as current
        with store.engine.connect() as conn:
            e = t.validation_errors.c
            old = conn.execute(
                sa.select(e.invoice_id, e.rule).where(e.flow_id == flow.id, e.superseded_at.is_not(None))
            ).all()
        assert {i for i, rule in old if rule == "RLS-R03"} == set(rejected)
        assert all(not inv.errors for inv in store.iter_invoices(flow.id)) and store.top_errors() == []
        assert store.rule_flows("RLS-R03") == []  # the dashboard's rejects
        # the recipient API shows it now: its latest recording is no rejection (the earlier one stays)
        api = store.api_invoice(rejected[0])
        assert api is not None and api[2] and api[0].errors == []
        # every change reported once, in order; the rerun's recorded entries by the new integration report
        assert _cli("run", "-q").exit_code == 0
        reported: Counter[tuple[str | None, str | None]] = Counter()
        for path in sorted((home / "dropzones" / "op-a" / "out").glob("ST*.xml")):
            for st in etree.parse(str(path)).iter("CPPFactureStatut"):
                reported[(st.findtext("IdFacture"), st.findtext("DonneesStatut/IdStatut"))] += 1
        assert set(reported.values()) == {1}
        assert {i for i, code in reported if code == "03"} == set(first)
        assert {code for _, code in reported} == {"03"}
        ranges = store.status_returns_of("op-a")
        assert all(a["first_history_id"] > b["last_history_id"] for a, b in zip(ranges[1:], ranges, strict=False))
        page = _flow_page(home, flow.id)
        assert "Constats d&#39;un traitement précédent" in page or "Constats d'un traitement précédent" in page
        assert "RLS-R03" in page and rejected[0] in page
    finally:
        store.engine.dispose()


def _flow_page(home: Path, flow_id: str) -> str:
    """The flow's page of the web application (a real server), as an ops user sees it."""
    from relais.compose import Runtime
    from relais.settings import Settings
    from relais.web.auth.passwords import hash_password
    from relais.web.serve import WebThread

    rt = Runtime.open(Settings.from_env(home, stable_seconds=0.0))
    try:
        rt.store.add_web_user("ops1", "ops", None, hash_password("a-long-password"))
        with WebThread(rt) as web, httpx.Client(base_url=web.url, follow_redirects=False, timeout=30) as c:
            m = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)
            assert m
            data = {"username": "ops1", "password": "a-long-password", "next": "/flows", "csrf": m.group(1)}
            assert c.post("/login", data=data).status_code == 303
            r = c.get(f"/flows/{flow_id}")
            assert r.status_code == 200
            return r.text
    finally:
        rt.close()


def test_reopening_keeps_the_earlier_return_flow_superseded_and_visible(store_url):
    url, schema = store_url
    store = Store.open(url, schema=schema)
    try:
        flow = store.create_flow(
            Flow(
                id="",
                partner="op-a",
                channel=Channel.FOLDER,
                original_name="f.xml",
                size=1,
                sha256="0" * 64,
                status=FlowStatus.IN_EN_COURS_TRAITEMENT_CPP,
                received_at=utcnow(),
                updated_at=utcnow(),
            )
        )
        from flows.domain import technical

        store.add_flow_errors(flow.id, [technical.UNKNOWN_FORMAT.error()])
        flow.status = FlowStatus.IN_REJETE
        store.finish_flow(flow, Address("folder", "op-a", "/out/CR.xml"), "a" * 64)  # not sent yet
        assert store.reopen_flow(flow.id)
        [row] = store.outbox_for_flow(flow.id)
        assert row.status == "superseded" and row.key.startswith(f"return:{flow.id}:")
        assert store.pending_outbox(flow_id=flow.id) == [] and store.flow_errors(flow.id) == []
        # the rerun queues its own return flow under the same key: both rows stay
        store.claim_flow(flow.id, [FlowStatus.IN_EN_ATTENTE_RETRAITEMENT_CPP], FlowStatus.IN_EN_COURS_TRAITEMENT_CPP)
        flow.status = FlowStatus.IN_REJETE
        store.finish_flow(flow, Address("folder", "op-a", "/out/CR.xml"), "a" * 64)
        assert [o.status for o in store.outbox_for_flow(flow.id)] == ["superseded", "pending"]
        with store.engine.connect() as conn:
            e = t.validation_errors.c
            kept = conn.execute(sa.select(e.rule, e.superseded_at.is_not(None))).all()
        assert [(rule, bool(gone)) for rule, gone in kept] == [(technical.UNKNOWN_FORMAT.error().rule, True)]
    finally:
        store.engine.dispose()


def test_an_incident_reprocessed_appends_the_rerun_to_the_history(store_url):
    """`relais flows reprocess` of an incident (`Store.requeue_flow`, then `reset_flow_results` at the claim):
    the invoices the failed run recorded keep their entries, the rerun's follow (by ops, with the reason);
    an automatic retry's by the platform."""
    from flows.domain.model import Flag, Invoice, ValidationError, invoice_id
    from flows.store.history import RERUN_REASON

    url, schema = store_url
    store = Store.open(url, schema=schema)
    try:
        flow = store.create_flow(
            Flow(
                id="",
                partner="op-a",
                channel=Channel.FOLDER,
                original_name="f.zip",
                size=1,
                sha256="1" * 64,
                status=FlowStatus.IN_EN_COURS_TRAITEMENT_CPP,
                received_at=utcnow(),
                updated_at=utcnow(),
            )
        )

        def save() -> str:
            inv = Invoice(id=invoice_id(flow.id, 1), flow_id=flow.id, position=1, entry_name="a.xml")
            inv.errors = [ValidationError("BR-X", Flag.WARNING, "/a", "hmm")]
            store.save_invoices([inv], [])
            return inv.id

        inv_id = save()
        flow.status = FlowStatus.IN_INCIDENTE
        store.update_flow(flow)
        assert store.requeue_flow(flow.id, "disque  plein\nréparé")
        store.reset_flow_results(flow.id)  # what the claim does
        assert list(store.iter_invoices(flow.id)) == []
        assert len(store.invoice_history(inv_id)) == 1  # kept
        save()
        store.reset_flow_results(flow.id)  # e.g. the worker died: taken over, processed again
        save()
        history = store.invoice_history(inv_id)
        assert [(str(h.actor), h.previous, h.reason) for h in history] == [
            ("platform", None, None),
            ("ops", None, "Retraitement demandé par ops : disque plein réparé"),
            ("ops", None, "Retraitement demandé par ops : disque plein réparé"),
        ]
        [inv] = store.iter_invoices(flow.id)
        assert [e.rule for e in inv.errors] == ["BR-X"]  # the current run's only; two kept, superseded

        # Ops' reason holds for the run they asked for (claimed from the queue), not for a later retry.
        def reason() -> str | None:
            with store.engine.connect() as conn:
                return conn.execute(sa.select(t.flows.c.reprocess_reason).where(t.flows.c.id == flow.id)).scalar()

        requeued, working = FlowStatus.IN_EN_ATTENTE_RETRAITEMENT_CPP, FlowStatus.IN_EN_COURS_TRAITEMENT_CPP
        assert store.claim_flow(flow.id, [requeued], working)
        assert reason() == "Retraitement demandé par ops : disque plein réparé"
        with store.engine.begin() as conn:  # the run fails: an incident due for its automatic retry
            conn.execute(
                sa.update(t.flows)
                .where(t.flows.c.id == flow.id)
                .values(status=str(FlowStatus.IN_INCIDENTE), retry_at=utcnow() - dt.timedelta(seconds=1))
            )
        assert store.claim_flow(flow.id, [], working, due_incidents=True)
        assert reason() is None
        assert len(store.superseded_findings(flow.id)) == 2
        other = store.create_flow(dataclasses.replace(flow, id="", sha256="2" * 64))
        first = Invoice(id=invoice_id(other.id, 1), flow_id=other.id, position=1, entry_name="b.xml")
        store.save_invoices([first], [])
        store.reset_flow_results(other.id)  # an automatic retry: nobody asked
        store.save_invoices([dataclasses.replace(first, errors=[])], [])
        assert [(str(h.actor), h.reason) for h in store.invoice_history(first.id)] == [
            ("platform", None),
            ("platform", RERUN_REASON),
        ]
    finally:
        store.engine.dispose()


def test_the_history_of_an_invoice_forgotten_by_a_reprocessing_is_still_shown(home):
    from flows.domain.model import Invoice, invoice_id

    home.mkdir(parents=True)
    url = os.environ.get("RELAIS_DATABASE_URL") or f"sqlite:///{home / 'relais.db'}"
    store = Store.open(url, schema=os.environ.get("RELAIS_DATABASE_SCHEMA"))
    try:
        flow = store.create_flow(
            Flow(
                id="",
                partner="op-a",
                channel=Channel.FOLDER,
                original_name="f.zip",
                size=1,
                sha256="3" * 64,
                status=FlowStatus.IN_EN_COURS_TRAITEMENT_CPP,
                received_at=utcnow(),
                updated_at=utcnow(),
            )
        )
        inv = Invoice(id=invoice_id(flow.id, 1), flow_id=flow.id, position=1, entry_name="a.xml")
        store.save_invoices([inv], [])
        store.reset_flow_results(flow.id)  # processed again, and this time not recorded (e.g. a flow rejection)
    finally:
        store.engine.dispose()
    shown = _cli("invoices", inv.id)
    assert shown.exit_code == 0 and "plus enregistrée" in shown.output and "enregistrée 01 DEPOSEE" in shown.output
    as_json = json.loads(_cli("invoices", inv.id, "--json").output)
    assert as_json["recorded"] is False and [h["code"] for h in as_json["history"]] == ["01"]
    assert _cli("invoices", "CPP9999999999-00001").exit_code == 1


# ---- enforcement -------------------------------------------------------------------------------

APPEND_ONLY = ("invoice_history", "audit_log")
_CODE = ("flows", "relais", "connectors", "dags", "archive")
_WRITES = [
    # sa.delete(t.invoice_history), sa.update(tables.audit_log), update(audit_log)
    re.compile(r"\b(?:delete|update)\s*\(\s*(?:\w+\.)*(?P<table>invoice_history|audit_log)\b"),
    # t.invoice_history.delete(), audit_log.update()
    re.compile(r"\b(?P<table>invoice_history|audit_log)\s*\.\s*(?:delete|update)\s*\("),
    # raw SQL
    re.compile(
        r"\b(?:DELETE\s+FROM|UPDATE|TRUNCATE(?:\s+TABLE)?)\s+[\"'`]?(?P<table>invoice_history|audit_log)\b", re.I
    ),
]


def _writes(text: str) -> list[str]:
    return [m.group(0) for rx in _WRITES for m in rx.finditer(text)]


def test_the_grep_finds_what_it_looks_for():
    assert _writes("conn.execute(sa.delete(t.invoice_history).where(x))")
    assert _writes("sa.update(tables.audit_log).values(a=1)")
    assert _writes("t.invoice_history.delete().where(x)")
    assert _writes('conn.exec_driver_sql("DELETE FROM invoice_history WHERE id = 1")')
    assert _writes("'update audit_log set detail = null'")
    assert not _writes("sa.insert(t.invoice_history)")
    assert not _writes("CREATE TRIGGER x BEFORE UPDATE OR DELETE ON invoice_history")


def test_no_code_deletes_or_updates_history_or_audit_rows():
    found = []
    for top in _CODE:
        for path in sorted((ROOT / top).rglob("*.py")):
            for hit in _writes(path.read_text(encoding="utf-8")):
                found.append(f"{path.relative_to(ROOT)}: {hit}")
    assert found == []


@pytest.mark.parametrize("table", APPEND_ONLY)
def test_the_store_refuses_to_update_or_delete_history_and_audit_rows(store_url, table):
    url, schema = store_url
    store = Store.open(url, schema=schema)
    try:
        row = (
            {
                "invoice_id": "CPP0000000001-00001",
                "partner": "op-a",
                "status": "01",
                "previous": None,
                "actor": "platform",
                "source": "platform",
                "reason": None,
                "at": utcnow(),
            }
            if table == "invoice_history"
            else {"at": utcnow(), "principal": "anonymous", "action": "auth", "outcome": "refused"}
        )
        with store.engine.begin() as conn:
            conn.execute(sa.insert(t.metadata.tables[table]).values(**row))
        column = "reason" if table == "invoice_history" else "detail"
        for sql in (f"UPDATE {table} SET {column} = 'rewritten'", f"DELETE FROM {table}"):
            with pytest.raises(sa.exc.DBAPIError) as refused:
                with store.engine.begin() as conn:
                    conn.execute(sa.text(sql))
            assert "append-only" in str(refused.value), sql
        with store.engine.connect() as conn:
            [kept] = conn.execute(sa.select(t.metadata.tables[table])).mappings().all()
        assert kept[column] is None
        if store.engine.dialect.name == "postgresql":
            with pytest.raises(sa.exc.DBAPIError):
                with store.engine.begin() as conn:
                    conn.execute(sa.text(f"TRUNCATE {table}"))
    finally:
        store.engine.dispose()


# ---- refusals of the CLI -----------------------------------------------------------------------


@pytest.fixture
def directory_home(home, directory_file):
    assert _cli("directory", "import", directory_file[0]).exit_code == 0
    return home, directory_file[1]


def _tokens() -> int:
    listed = _cli("api", "token", "list", "--json")
    return len(json.loads(listed.output)["tokens"])


def test_a_token_for_a_siret_with_a_bad_check_digit_is_refused(directory_home):
    home, recipients = directory_home
    good = recipients[0].siret
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    made = _cli("api", "token", "create", "--siret", bad)
    assert made.exit_code == 2 and "clé de contrôle" in made.output and bad in made.output
    assert _tokens() == 0


def test_a_token_for_a_siret_absent_from_the_directory_is_refused(directory_home):
    absent = "73282932000074"  # a valid SIRET, not in the sample directory
    made = _cli("api", "token", "create", "--siret", absent)
    assert made.exit_code == 2 and "annuaire" in made.output and absent in made.output
    assert _tokens() == 0


def test_a_token_for_a_service_the_structure_does_not_have_is_refused(directory_home):
    home, recipients = directory_home
    structure = next(r for r in recipients if r.services)
    made = _cli("api", "token", "create", "--siret", structure.siret, "--service", "NO-SUCH-SERVICE")
    assert made.exit_code == 2 and "NO-SUCH-SERVICE" in made.output and "service" in made.output
    assert _tokens() == 0
    code = structure.services[0][0]
    ok = _cli("api", "token", "create", "--siret", structure.siret, "--service", code)
    assert ok.exit_code == 0 and _tokens() == 1


def test_a_token_for_a_partner_without_partner_file_is_refused(directory_home):
    home, _ = directory_home
    made = _cli("api", "token", "create", "--partner", "phantom")
    assert made.exit_code == 2 and "partenaire inconnu" in made.output and "phantom" in made.output
    assert _tokens() == 0 and not (home / "dropzones" / "phantom").exists()
    (home / "partners").mkdir(parents=True, exist_ok=True)
    (home / "partners" / "op-f.toml").write_text('id = "op-f"\n')
    assert _cli("api", "token", "create", "--partner", "op-f").exit_code == 0 and _tokens() == 1


def test_a_partner_user_for_an_unknown_partner_is_refused(directory_home):
    home, _ = directory_home
    added = _cli("users", "add", "mallory", "--role", "partner", "--partner", "phantom", stdin="a-long-password\n")
    assert added.exit_code == 2 and "partenaire inconnu" in added.output and "phantom" in added.output
    assert "mallory" not in _cli("users", "list").output
    (home / "dropzones" / "op-b" / "in").mkdir(parents=True)  # a folder partner
    added = _cli("users", "add", "bob", "--role", "partner", "--partner", "op-b", stdin="a-long-password\n")
    assert added.exit_code == 0 and "bob" in _cli("users", "list").output


def test_a_user_with_a_password_shorter_than_the_policy_is_not_added(directory_home):
    """`relais users add` asks what `users password` and /account/password ask: 12 characters at least."""
    added = _cli("users", "add", "dave", "--role", "ops", stdin="eleven-char\n")
    assert added.exit_code == 2 and "au moins 12 caractères" in added.output
    assert "dave" not in _cli("users", "list").output
    assert _cli("users", "add", "dave", "--role", "ops", stdin="twelve-chars\n").exit_code == 0
