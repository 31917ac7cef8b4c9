"""The landing page's and the rejects page's figures (flows.store.dashboard), charts (relais.web.views.charts)
and templates (home.html, rejects.html, rejects_rule.html through relais.web.views.dashboard).

One small, known history of flows is written straight into the store's tables: seven flows of two
partners over a week (one just before it), their invoices, findings and outbox rows. Each aggregate is
asserted to the exact number, on SQLite and on PostgreSQL (a private schema).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import jinja2
import pytest
import sqlalchemy as sa
from lxml import etree
from lxml import html as lxml_html

from flows.domain.lifecycle import FlowStatus
from flows.domain.model import invoice_id
from flows.store import Store
from flows.store import tables as t
from flows.store.dashboard import Latency, RejectExample, RuleCount
from flows.store.web import WebUser
from relais.web import i18n
from relais.web.views import charts, dashboard, labels

TEMPLATES = Path(__file__).resolve().parents[3] / "relais" / "web" / "templates"
TODAY = dt.date(2024, 5, 20)
DAYS = 7  # 2024-05-14 .. 2024-05-20
WEEK = [TODAY - dt.timedelta(days=DAYS - 1 - k) for k in range(DAYS)]


def at(day: int, hh: int, mm: int = 0, ss: int = 0) -> dt.datetime:
    return dt.datetime(2024, 5, day, hh, mm, ss, tzinfo=dt.UTC)


def fid(n: int) -> str:
    return f"CPP{n:010d}"


# (flow no., partner, received, status, seconds to its last update, invoice statuses)
FLOWS = [
    (1, "op-a", at(13, 23, 59, 59), "IN_REJETE", 15, ["04"]),  # the day before the period
    (2, "op-a", at(18, 9), "IN_INTEGRE", 30, ["03", "05"]),  # its 2nd invoice rejected later by the buyer
    (3, "op-a", at(18, 23, 59, 59), "IN_INTEGRE_PARTIEL", 90, ["03", "04", "04"]),
    (4, "op-b", at(19, 10), "IN_REJETE", 10, []),  # a container that could not be read: no invoice
    (5, "op-b", at(20, 8), "IN_REJETE", 20, ["04"]),
    (6, "op-a", at(20, 12), "IN_EN_COURS_TRAITEMENT_CPP", 5, ["01"]),
    (7, "op-a", at(20, 13), "IN_INCIDENTE", 8, []),
]
# (flow no., invoice position or None for the whole flow, rule, flag, location, message)
ERRORS = [
    (1, 1, "BR-FR-12", "fatal", "/Invoice/cbc:ID", "Numéro de facture en double"),
    (3, 1, "BR-FR-30", "warning", "/Invoice/cbc:Note", "Note trop longue"),
    (3, 2, "BR-FR-12", "fatal", "/Invoice/cbc:ID", "Numéro de facture en double"),
    (3, 2, "BR-FR-12", "fatal", "/Invoice/cac:BillingReference", "Référence en double"),
    (3, 3, "BR-FR-12", "fatal", "/Invoice/cbc:ID", "Numéro <déjà> reçu & accepté"),
    (3, 3, "BR-05", "fatal", "/Invoice/cac:TaxTotal", "Montant de TVA absent"),
    (4, None, "RLS-F01", "fatal", "lot.zip", "Archive illisible"),
    (5, 1, "BR-FR-12", "fatal", "/Invoice/cbc:ID", "Numéro de facture en double"),
]
# (flow no. or None, invoice position, kind, partner, status, seconds after the flow's reception it was sent)
OUTBOX = [
    (1, None, "return", "op-a", "sent", 1000),
    (2, 1, "delivery", "11000201100044", "sent", 60),
    (2, 2, "delivery", "11000201100044", "sent", 120),
    (2, None, "return", "op-a", "sent", 40),
    (3, 1, "delivery", "11000201100044", "sent", 300),
    (3, None, "return", "op-a", "sent", 100),
    (4, None, "return", "op-b", "pending", None),
    (5, None, "return", "op-b", "sent", 50),
    (6, 1, "delivery", "11000201100044", "pending", None),
    (None, None, "return", "op-a", "pending", None),  # status return flows (no flow)
    (None, None, "return", "op-a", "pending", None),
    (None, None, "as2-mdn", "op-b", "pending", None),  # an async MDN for a refused AS2 message
]


def _fill(store: Store) -> None:
    received = {n: when for n, _, when, *_ in FLOWS}
    with store.engine.begin() as conn:
        for n, partner, when, status, took, statuses in FLOWS:
            conn.execute(
                sa.insert(t.flows).values(
                    id=fid(n),
                    partner=partner,
                    channel="folder",
                    original_name=f"lot-{n}.zip",
                    size=1234 * n,
                    sha256=f"{n:064x}",
                    status=status,
                    container="zip",
                    received_at=when,
                    updated_at=when + dt.timedelta(seconds=took),
                    invoice_count=len(statuses),
                    rejected_count=sum(s in ("04", "05") for s in statuses),
                )
            )
            for pos, code in enumerate(statuses, 1):
                conn.execute(
                    sa.insert(t.invoices).values(
                        id=invoice_id(fid(n), pos),
                        flow_id=fid(n),
                        position=pos,
                        entry_name=f"facture-{n}-{pos}.xml",
                        syntax="UBL",
                        status=code,
                        number=f"F2024-{n:03d}-{pos}",
                    )
                )
        for n, pos, rule, flag, location, message in ERRORS:
            conn.execute(
                sa.insert(t.validation_errors).values(
                    flow_id=fid(n),
                    invoice_id=invoice_id(fid(n), pos) if pos else None,
                    rule=rule,
                    flag=flag,
                    location=location,
                    message=message,
                )
            )
        for k, (n, pos, kind, partner, status, after) in enumerate(OUTBOX):
            created = received[n] + dt.timedelta(seconds=5) if n else at(20, 14)
            conn.execute(
                sa.insert(t.outbox).values(
                    key=f"{kind}:{k}",
                    kind=kind,
                    flow_id=fid(n) if n else None,
                    invoice_id=invoice_id(fid(n), pos) if n and pos else None,
                    position=pos,
                    channel="folder",
                    partner=partner,
                    destination=f"out/{k}.xml",
                    archive_sha256=f"{k:064x}",
                    status=status,
                    attempts=1 if status == "sent" else 0,
                    created_at=created,
                    sent_at=received[n] + dt.timedelta(seconds=after) if after is not None and n else None,
                )
            )


def _check(store: Store) -> None:
    """Every figure of the known history, exactly."""
    per_day = store.flows_per_day(DAYS, today=TODAY)
    assert [d for d, _ in per_day] == WEEK
    assert per_day == [
        *[(d, {}) for d in WEEK[:4]],
        (WEEK[4], {"IN_INTEGRE": 1, "IN_INTEGRE_PARTIEL": 1}),  # 23:59:59 is still the 18th (UTC)
        (WEEK[5], {"IN_REJETE": 1}),
        (WEEK[6], {"IN_REJETE": 1, "IN_EN_COURS_TRAITEMENT_CPP": 1, "IN_INCIDENTE": 1}),
    ]
    assert store.flows_per_day(DAYS, "op-a", today=TODAY)[4:] == [
        (WEEK[4], {"IN_INTEGRE": 1, "IN_INTEGRE_PARTIEL": 1}),
        (WEEK[5], {}),
        (WEEK[6], {"IN_EN_COURS_TRAITEMENT_CPP": 1, "IN_INCIDENTE": 1}),
    ]
    assert store.flows_per_day(1, today=dt.date(2024, 5, 13)) == [(dt.date(2024, 5, 13), {"IN_REJETE": 1})]

    invoices = store.invoices_per_day(DAYS, today=TODAY)
    zero = {"accepted": 0, "rejected": 0}
    assert invoices == [
        *[(d, zero) for d in WEEK[:4]],
        (WEEK[4], {"accepted": 2, "rejected": 3}),
        (WEEK[5], zero),
        (WEEK[6], {"accepted": 1, "rejected": 1}),
    ]
    assert store.invoices_per_day(DAYS, "op-b", today=TODAY)[4:] == [
        (WEEK[4], zero),
        (WEEK[5], zero),
        (WEEK[6], {"accepted": 0, "rejected": 1}),
    ]
    assert store.rejection_rate(DAYS, today=TODAY) == [
        *[(d, None) for d in WEEK[:4]],
        (WEEK[4], 0.6),
        (WEEK[5], None),
        (WEEK[6], 0.5),
    ]
    assert store.rejection_rate(DAYS, "op-a", today=TODAY)[4:] == [(WEEK[4], 0.6), (WEEK[5], None), (WEEK[6], 0.0)]

    assert store.top_reject_rules(DAYS, today=TODAY) == [
        RuleCount("BR-FR-12", 3, 2, at(20, 8)),  # 3 invoices (one broke it twice), not the 13th's
        RuleCount("BR-05", 1, 1, at(18, 23, 59, 59)),
        RuleCount("RLS-F01", 0, 1, at(19, 10), 1),  # a reject of the whole flow: no invoice, a whole flow
    ]
    assert store.top_reject_rules(DAYS, "op-b", limit=1, today=TODAY) == [RuleCount("BR-FR-12", 1, 1, at(20, 8))]
    assert store.top_reject_rules(DAYS, "nobody", today=TODAY) == []

    by_rule = store.rejects_by_rule(DAYS, today=TODAY)
    assert [(r.rule, r.invoices, r.flows, r.findings, r.last_seen, r.trend) for r in by_rule] == [
        ("BR-FR-12", 3, 2, 4, at(20, 8), [0, 0, 0, 0, 2, 0, 1]),
        ("BR-05", 1, 1, 1, at(18, 23, 59, 59), [0, 0, 0, 0, 1, 0, 0]),
        ("RLS-F01", 0, 1, 1, at(19, 10), [0, 0, 0, 0, 0, 1, 0]),
    ]
    assert by_rule[0].examples == [  # the latest three of its four findings
        RejectExample(fid(5), invoice_id(fid(5), 1), "/Invoice/cbc:ID", "Numéro de facture en double"),
        RejectExample(fid(3), invoice_id(fid(3), 3), "/Invoice/cbc:ID", "Numéro <déjà> reçu & accepté"),
        RejectExample(fid(3), invoice_id(fid(3), 2), "/Invoice/cac:BillingReference", "Référence en double"),
    ]
    assert by_rule[2].examples == [RejectExample(fid(4), None, "lot.zip", "Archive illisible")]
    assert [r.rule for r in store.rejects_by_rule(DAYS, "op-a", today=TODAY)] == ["BR-FR-12", "BR-05"]
    assert store.rejects_by_rule(DAYS, "nobody", today=TODAY) == []

    assert store.flows_with_rule("BR-FR-12") == [fid(5), fid(3), fid(1)]  # newest first, any date
    assert store.flows_with_rule("BR-FR-12", "op-a") == [fid(3), fid(1)]
    assert store.flows_with_rule("BR-FR-12", limit=1) == [fid(5)]
    assert store.flows_with_rule("BR-FR-30") == []  # a warning rejects nothing
    assert [(r.flow_id, r.received_at, r.partner, r.status, r.invoices) for r in store.rule_flows("BR-FR-12")] == [
        (fid(5), at(20, 8), "op-b", "IN_REJETE", 1),
        (fid(3), at(18, 23, 59, 59), "op-a", "IN_INTEGRE_PARTIEL", 2),
        (fid(1), at(13, 23, 59, 59), "op-a", "IN_REJETE", 1),
    ]

    assert store.stage_latencies(DAYS, today=TODAY) == {
        "processing": Latency(25.0, 81.0, 4),  # 10, 20, 30, 90 s: closed flows only
        "integration report": Latency(50.0, 95.0, 3),  # 40, 50, 100 s: sent ones only, not the 13th's
        "delivery": Latency(120.0, 282.0, 3),  # 60, 120, 300 s
    }
    assert store.stage_latencies(DAYS, "op-b", today=TODAY) == {
        "processing": Latency(15.0, 19.5, 2),
        "integration report": Latency(50.0, 50.0, 1),
        "delivery": Latency(None, None, 0),
    }

    assert list(store.returns_pending_per_partner().items()) == [("op-a", 2), ("op-b", 1)]
    assert store.returns_pending_per_partner("op-b") == {"op-b": 1}
    assert store.outbox_backlog() == {"delivery": 1, "return": 3, "as2-mdn": 1}
    assert store.outbox_backlog("op-a") == {"delivery": 1, "return": 2}  # its flow's delivery goes to a SIRET
    assert store.outbox_backlog("op-b") == {"return": 1, "as2-mdn": 1}


@pytest.fixture
def store(tmp_path):
    s = Store.open(f"sqlite:///{tmp_path / 'relais.db'}")
    _fill(s)
    yield s
    s.close()


def test_every_figure_on_sqlite(store):
    _check(store)


def test_the_period_ends_today_by_default(tmp_path):
    s = Store.open(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        days = s.flows_per_day()
        assert len(days) == 30 and days[-1][0] == dt.datetime.now(dt.UTC).date() and all(not c for _, c in days)
        assert s.stage_latencies() == {
            stage: Latency(None, None, 0) for stage in ("processing", "integration report", "delivery")
        }
        assert s.rejects_by_rule() == [] and s.outbox_backlog() == {} and s.returns_pending_per_partner() == {}
    finally:
        s.close()


@pytest.mark.postgres
def test_every_figure_on_postgresql(pg_schema):
    from tests.conftest import PG_URL

    schema = pg_schema
    Store.open(PG_URL, schema=schema).close()  # migrated
    # Days are UTC days whatever the session's time zone: here UTC+12, where 23:59:59 UTC is tomorrow.
    options = f"-csearch_path={schema} -ctimezone=Pacific/Auckland"
    s = Store(sa.create_engine(PG_URL, connect_args={"options": options}))
    try:
        assert s.engine.dialect.name == "postgresql"
        _fill(s)
        _check(s)
    finally:
        s.close()


# ---- charts -------------------------------------------------------------------------------------


def _svg(markup: str) -> etree._Element:
    root = etree.fromstring(markup.encode())
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("role") == "img"
    ns = {"s": "http://www.w3.org/2000/svg"}
    title, desc = root.find("s:title", ns), root.find("s:desc", ns)
    assert root[0] is title and root[1] is desc
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    return root


def _texts(root: etree._Element) -> list[str]:
    return [e.text for e in root.iter("{http://www.w3.org/2000/svg}text")]


def test_stacked_bars_say_every_number_and_differ_by_pattern():
    days = [
        (d, charts.group_statuses(c))
        for d, c in [(WEEK[0], {"IN_INTEGRE": 12, "IN_INTEGRE_PARTIEL": 3}), (WEEK[1], {"IN_REJETE": 2, "IN_RECU": 1})]
    ]
    root = _svg(charts.stacked_bars(days, charts.STATUS_GROUPS, title="Flux <reçus> & traités", ident="t1"))
    assert root[0].text == "Flux <reçus> & traités"
    assert root[1].text == (
        "2024-05-14 : intégré 12, intégré partiellement 3, rejeté 0, autre (en cours, incident) 0 ; total 15 ; "
        "2024-05-15 : intégré 0, intégré partiellement 0, rejeté 2, autre (en cours, incident) 1 ; total 3"
    )
    texts = _texts(root)
    assert {"15", "3", "✔ 12", "14/05", "15/05"} <= set(texts)  # totals, a segment's count, the days
    assert "✔ intégré : 12" in texts and "✖ rejeté : 2" in texts and "◐ intégré partiellement : 3" in texts
    fills = {r.get("fill") for r in root.iter("{http://www.w3.org/2000/svg}rect")}
    assert {"#18753c", "url(#t1-hatch)", "url(#t1-cross)", "url(#t1-dots)"} <= fills
    assert {p.get("id") for p in root.iter("{http://www.w3.org/2000/svg}pattern")} == {
        "t1-hatch",
        "t1-cross",
        "t1-dots",
    }


def test_line_chart_breaks_where_there_is_no_rate():
    root = _svg(
        charts.line_chart([(WEEK[0], 0.6), (WEEK[1], None), (WEEK[2], 0.5), (WEEK[3], 0.125)], title="Taux", ident="r")
    )
    assert root[1].text == "2024-05-14 : 60 % ; 2024-05-15 : — ; 2024-05-16 : 50 % ; 2024-05-17 : 12,5 %"
    assert len(list(root.iter("{http://www.w3.org/2000/svg}polyline"))) == 2
    assert len(list(root.iter("{http://www.w3.org/2000/svg}circle"))) == 3
    assert {"60 %", "12,5 %"} <= set(_texts(root))  # the highest and the latest, on the chart
    assert "12.5 %" in charts.line_chart([(WEEK[0], 0.125)], title="Rate", decimal=".")


def test_hbars_and_sparkline():
    root = _svg(
        charts.hbars([charts.Bar("BR-FR-12", 3, "(2 flux)", "/rejects/BR-FR-12"), charts.Bar("<x>", 1)], title="Règles")
    )
    assert root[1].text == "BR-FR-12 : 3 (2 flux) ; <x> : 1"
    assert {"BR-FR-12", "3 (2 flux)", "<x>", "1"} <= set(_texts(root))
    links = list(root.iter("{http://www.w3.org/2000/svg}a"))
    assert [a.get("href") for a in links] == ["/rejects/BR-FR-12"]
    root = _svg(charts.sparkline([0, 0, 0, 0, 2, 0, 1], title="BR-FR-12", ident="s"))
    assert root[1].text == "0, 0, 0, 0, 2, 0, 1" and _texts(root) == ["max 2", "0"]  # its axis, from 0 to max
    assert root.get("width") == "180" and root.get("height") == "40" and "spark" in root.get("class", "")
    _svg(charts.sparkline([], title="vide"))
    _svg(charts.hbars([], title="vide"))
    _svg(charts.stacked_bars([], charts.STATUS_GROUPS, title="vide"))
    _svg(charts.line_chart([], title="vide"))


# ---- pages --------------------------------------------------------------------------------------


def _render(template: str, lang: str, **ctx: object) -> lxml_html.HtmlElement:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    env.globals.update(statuses=[s.value for s in FlowStatus], channels=["folder"], delta_day=dt.timedelta(days=1))
    env.globals.update(  # as relais/web/app.py registers them
        flow_status_label=labels.flow_status_label,
        invoice_status_label=labels.invoice_status_label,
        outbox_state_label=labels.outbox_state_label,
    )
    user = WebUser("alice", "ops", None, None, False, dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    page = env.get_template(template).render(
        t=lambda key: i18n.text(lang, key), lang=lang, user=user, csrf="tok", flash=None, may_act=True, **ctx
    )
    assert "<script>" not in page.split("<main", 1)[1].split("</main>", 1)[0]
    doc = lxml_html.fromstring(page)
    for svg in doc.iter("svg"):
        etree.fromstring(lxml_html.tostring(svg))  # each chart is well-formed on its own
    return doc


def test_home_page_renders_the_figures(store):
    ctx = dashboard.home_context(store, None, lang="fr", days=DAYS, today=TODAY)
    assert ctx["totals"] == {
        "flows": 6,
        "flows_by_group": {"ok": 1, "partial": 1, "rejected": 2, "other": 2},
        "invoices": 7,
        "rejected": 4,
        "rate": "57,1 %",
    }
    assert ctx["period"] == (WEEK[0], TODAY) and [r["rule"] for r in ctx["top_rules"]] == [
        "BR-FR-12",
        "BR-05",
        "RLS-F01",
    ]
    assert ctx["latencies"][0] == {
        "stage": "processing",
        "label": "Traitement (réception → verdict)",
        "p50": "25 s",
        "p95": "1 min 21 s",
        "samples": 4,
    }
    assert ctx["backlog"] == [("as2-mdn", 1), ("delivery", 1), ("return", 3)]
    doc = _render("home.html", "fr", **ctx)
    assert len(doc.findall(".//svg")) == 4
    text = doc.text_content()
    assert "Taux de rejet des factures" in text and "57,1 %" in text and "Accusés AS2 (MDN) 1" in text
    assert "2024-05-18 : intégré 1, intégré partiellement 1, rejeté 0, autre (en cours, incident) 0 ; total 2" in text
    assert [a.get("href") for a in doc.iter("a") if a.get("href", "").startswith("/rejects/")][:3] == [
        "/rejects/BR-FR-12",
        "/rejects/BR-05",
        "/rejects/RLS-F01",
    ] * 1
    en = _render("home.html", "en", **dashboard.home_context(store, "op-b", lang="en", days=DAYS, today=TODAY))
    assert "Invoice rejection rate" in en.text_content() and "100 %" in en.text_content()
    assert "Processing (reception → verdict)" in en.text_content()


def test_home_page_without_any_flow(tmp_path):
    s = Store.open(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        ctx = dashboard.home_context(s, None)
        assert ctx["charts"]["rules"] is None and ctx["totals"]["rate"] == "—"
        assert ctx["circuits_waiting"] == 0 and [c["waiting"] for c in ctx["circuits"]] == [0] * 8
        doc = _render("home.html", "fr", **ctx)
        assert "Aucun rejet sur la période." in doc.text_content() and len(doc.findall(".//svg")) == 3
        assert "Aucune pièce en attente dans les circuits de facturation." in doc.text_content()
        assert not doc.findall(".//table[@class='circuits']")
    finally:
        s.close()


def test_rejects_pages_render(store):
    ctx = dashboard.rejects_context(store, None, lang="fr", days=DAYS, today=TODAY)
    assert [(r["rule"], r["count"], r["flows"], r["trend"]) for r in ctx["rules"]][0] == (
        "BR-FR-12",
        3,
        2,
        [0, 0, 0, 0, 2, 0, 1],
    )
    assert ctx["total"] == 4 and ctx["total_whole_flows"] == 1 and ctx["period"] == (WEEK[0], TODAY)
    doc = _render("rejects.html", "fr", **ctx)
    rows = doc.findall(".//table[@class='rejects']/tbody/tr")
    assert len(rows) == 3 and len(doc.findall(".//svg")) == 3
    first = rows[0]
    assert first.find(".//th/a").get("href") == "/rejects/BR-FR-12"
    assert [a.get("href") for a in first.findall(".//ul/li/a")] == [
        f"/flows/{fid(5)}",
        f"/flows/{fid(3)}",
        f"/flows/{fid(3)}",
    ]
    assert "Numéro <déjà> reçu & accepté" in first.text_content()  # escaped, shown as text
    assert "0, 0, 0, 0, 2, 0, 1" in first.text_content()

    rule = dashboard.rule_context(store, "BR-FR-12", "op-a", lang="en")
    doc = _render("rejects_rule.html", "en", **rule)
    links = [a.get("href") for a in doc.iter("a") if a.get("href", "").startswith("/flows/")]
    assert links == [f"/flows/{fid(3)}", f"/flows/{fid(1)}"]
    assert "Flows rejected by the rule BR-FR-12" in doc.text_content()
    none = _render("rejects_rule.html", "fr", **dashboard.rule_context(store, "NOPE", None))
    assert "Aucun flux rejeté par cette règle." in none.text_content()
