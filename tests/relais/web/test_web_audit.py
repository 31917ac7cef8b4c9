"""The audit log a page at a time, and anonymous refusals counted rather than appended (issue 19, §2).

- The store (SQLite and PostgreSQL): a thousand refusals of one anonymous client within a minute,
  counted by concurrent threads, add one row whose count is a thousand (`Store.audit_refusal`, an
  atomic upsert); `Store.audit_page` reads the log newest first, a hundred rows a page (keyset on the id),
  filtered by actor, action, outcome and period.
- The /audit page of a real web server over both stores: pages of 100 with a "next page" link that
  preserves the filters, each filter of its form, the counted refusals ("Refus anonymes : 137 depuis ..."),
  a 400 page for a filter that does not parse, and a 404 for partner and viewer users as before.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from flows.store import Store
from flows.store import tables as t
from flows.store.audit import AuditQuery
from tests.support.api_server import serving

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def _sizes(store: Store) -> tuple[int, int]:
    with store.engine.connect() as conn:
        log = conn.execute(sa.select(sa.func.count()).select_from(t.audit_log)).scalar_one()
        counted = conn.execute(sa.select(sa.func.count()).select_from(t.audit_refusals)).scalar_one()
    return log, counted


@pytest.fixture
def store(store_url) -> Iterator[Store]:
    url, schema = store_url
    s = Store.open(url, schema=schema)
    yield s
    s.close()


def _seed(store: Store, n: int = 250) -> list[dict]:
    """`n` audit rows a minute apart from T0: three actors, three actions, three outcomes."""
    rows = [
        {
            "at": T0 + dt.timedelta(minutes=k),
            "principal": ("web:alice", "web:bob", "partner:op-a")[k % 3],
            "action": ("web.login", "web.flow.reprocess", "flow.upload")[k % 3 if k % 5 else 0],
            "target": f"T{k:04d}",
            "outcome": ("ok", "refused", "error")[k % 7 % 3],
            "http_status": 200,
            "detail": f"row {k}",
        }
        for k in range(n)
    ]
    with store.engine.begin() as conn:
        conn.execute(sa.insert(t.audit_log), rows)
    return rows


# ---- the store ------------------------------------------------------------------------------------


def test_a_thousand_anonymous_refusals_within_a_minute_add_one_row(store: Store) -> None:
    before = _sizes(store)
    at = T0 + dt.timedelta(seconds=5)

    def refuse(k: int) -> None:
        for j in range(125):
            store.audit_refusal(
                "203.0.113.9",
                "web.login",
                principal="web:anonymous",
                http_status=403,
                target=f"user{k}",
                detail=f"no login form token #{j}",
                at=at + dt.timedelta(milliseconds=40 * j + k),
            )

    threads = [threading.Thread(target=refuse, args=(k,)) for k in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    after = _sizes(store)
    assert after[0] == before[0], "no audit_log row for a counted refusal"
    assert after[1] - before[1] == 1, after
    [row], _ = store.refusal_page(AuditQuery())
    assert (row.client, row.action, row.principal, row.count) == ("203.0.113.9", "web.login", "web:anonymous", 1000)
    assert row.minute == T0 and row.last_status == 403 and row.first_at <= row.last_at
    # another minute, another client, another action: a row each
    store.audit_refusal(
        "203.0.113.9", "web.login", principal="web:anonymous", http_status=429, at=T0 + dt.timedelta(minutes=1)
    )
    store.audit_refusal("198.51.100.7", "web.login", principal="web:anonymous", http_status=403, at=at)
    store.audit_refusal("203.0.113.9", "invoice.status", principal="anonymous", http_status=401, at=at)
    assert _sizes(store)[1] - before[1] == 4
    rows, _ = store.refusal_page(AuditQuery(actor="203.0.113.9"))
    assert sorted(r.count for r in rows) == [1, 1, 1000]
    assert [r.client for r in store.refusal_page(AuditQuery(action="invoice.*"))[0]] == ["203.0.113.9"]
    assert store.refusal_page(AuditQuery(outcome="ok")) == ([], None)


def test_the_audit_log_is_read_a_page_at_a_time_with_filters(store: Store) -> None:
    rows = _seed(store)

    def every(q: AuditQuery) -> list[int]:
        seen: list[int] = []
        while True:
            page, before = store.audit_page(q)
            assert len(page) <= q.limit
            seen += [r.id for r in page]
            if before is None:
                return seen
            q = AuditQuery(q.actor, q.action, q.outcome, q.since, q.until, before, q.limit)

    ids = every(AuditQuery())
    assert len(ids) == 250 and ids == sorted(ids, reverse=True)  # newest first, each once
    first, before = store.audit_page(AuditQuery())
    assert len(first) == 100 and before == first[-1].id

    def expected(pred) -> int:
        return sum(1 for r in rows if pred(r))

    assert len(every(AuditQuery(actor="web:bob"))) == expected(lambda r: r["principal"] == "web:bob")
    assert len(every(AuditQuery(actor="web:*"))) == expected(lambda r: r["principal"].startswith("web:"))
    assert len(every(AuditQuery(action="web.flow.reprocess"))) == expected(
        lambda r: r["action"] == "web.flow.reprocess"
    )
    assert len(every(AuditQuery(outcome="error"))) == expected(lambda r: r["outcome"] == "error")
    since, until = T0 + dt.timedelta(minutes=30), T0 + dt.timedelta(minutes=40)
    window = every(AuditQuery(since=since, until=until))
    assert len(window) == 10
    both = store.audit_page(AuditQuery(actor="web:alice", outcome="ok", since=since, limit=5))[0]
    assert both and all(r.principal == "web:alice" and r.outcome == "ok" and r.at >= since for r in both)
    assert store.audit_page(AuditQuery(actor="web:%"))[0] == []  # LIKE wildcards are not the user's


# ---- the /audit page of a real server ----------------------------------------------------------


@pytest.fixture
def site(store_url, tmp_path: Path) -> Iterator[dict]:
    from relais.compose import Runtime
    from relais.settings import Settings
    from relais.web.auth.passwords import hash_password
    from relais.web.serve import WebThread

    url, schema = store_url
    if url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'relais.db'}"
    rt = Runtime.open(Settings.from_env(tmp_path / "home", database_url=url, database_schema=schema))
    for name, role, partner in (("alice", "ops", None), ("bob", "partner", "op-a"), ("carol", "viewer", None)):
        rt.store.add_web_user(name, role, partner, hash_password(f"{name}-password-1"))
    rows = _seed(rt.store)
    for _ in range(137):
        rt.store.audit_refusal(
            "203.0.113.9", "web.login", principal="web:anonymous", http_status=403, at=T0 + dt.timedelta(minutes=2)
        )
    try:
        with WebThread(rt) as w:
            yield {"url": w.url, "rt": rt, "rows": rows}
    finally:
        rt.close()


def _login(url: str, name: str) -> httpx.Client:
    c = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
    m = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)
    assert m
    r = c.post("/login", data={"username": name, "password": f"{name}-password-1", "csrf": m.group(1)})
    assert r.status_code == 303, r.text[:300]
    return c


def _targets(html: str) -> list[str]:
    return re.findall(r"<td>(?:[^<:]+ : )?(T\d{4})</td>", html)  # "utilisateur : T0001" for a login


def _next(html: str) -> str | None:
    m = re.search(r'<a href="([^"]+)" rel="next">', html)
    return m.group(1).replace("&amp;", "&") if m else None


def test_the_audit_page_pages_and_filters_in_sql(site) -> None:
    c = _login(site["url"], "alice")
    r = c.get("/audit")
    assert r.status_code == 200
    seen = _targets(r.text)
    assert r.text.count("<tr><td>") == 100 and seen[0] == "T0249"  # newest first (alice's login is newer)
    assert "Refus anonymes : 137 depuis 203.0.113.9 (web.login) le 2026-12-01 à 09:02 UTC" in r.text
    url = _next(r.text)
    while url is not None:
        page = c.get(url)
        assert page.status_code == 200
        seen += _targets(page.text)
        url = _next(page.text)
    assert seen == [f"T{k:04d}" for k in range(249, -1, -1)]

    def every(**params: str) -> list[str]:
        page = c.get("/audit", params=params)
        assert page.status_code == 200, (params, page.status_code)
        found = _targets(page.text)
        url = _next(page.text)
        while url is not None:
            for k in params:  # the next page keeps the filters
                assert f"{k}=" in url, (k, url)
            page = c.get(url)
            found += _targets(page.text)
            url = _next(page.text)
        return found

    rows = site["rows"]

    def expected(pred) -> list[str]:
        return [r["target"] for r in reversed(rows) if pred(r)]

    assert every(actor="web:bob") == expected(lambda r: r["principal"] == "web:bob")
    assert every(actor="partner:*") == expected(lambda r: r["principal"] == "partner:op-a")
    assert every(action="flow.upload") == expected(lambda r: r["action"] == "flow.upload")
    assert every(outcome="refused") == expected(lambda r: r["outcome"] == "refused")
    # a period of UTC days, both included: the rows of 2026-12-01 only (T0 + 250 minutes is that day)
    assert every(since="2026-12-01", until="2026-12-01") == expected(lambda r: True)
    assert every(since="2026-12-02") == []
    assert every(actor="web:alice", outcome="ok") == expected(
        lambda r: r["principal"] == "web:alice" and r["outcome"] == "ok"
    )
    refusals = c.get("/audit", params={"view": "refusals", "actor": "203.0.113.9"})
    assert refusals.status_code == 200 and '<td class="num">137</td>' in refusals.text
    for bad in ({"since": "yesterday"}, {"outcome": "maybe"}, {"before": "-1"}, {"before": "9" * 30}, {"view": "x"}):
        assert c.get("/audit", params=bad).status_code == 400, bad


def test_partner_and_viewer_users_get_404_on_the_audit_page(site) -> None:
    for name in ("bob", "carol"):
        c = _login(site["url"], name)
        assert c.get("/audit").status_code == 404, name
        assert c.get("/audit", params={"view": "refusals"}).status_code == 404, name
    with httpx.Client(base_url=site["url"], follow_redirects=False) as anonymous:
        r = anonymous.get("/audit")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


# ---- a thousand anonymous refusals against real servers -------------------------------------------
# These need the callers to count rather than append (their files belong to other parts of issue 19):
# relais/web/app.py's login() and relais/api/auth.py's audit() call `Store.audit_refusal` for a refusal
# of a client not known yet (see the report of the i19-edge branch). Until then they fail, as expected.


def _hammer(url: str, send, n: int = 1000, threads: int = 4) -> list[int]:
    codes: list[int] = []
    lock = threading.Lock()

    def run(count: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
            for _ in range(count):
                code = send(c).status_code
                with lock:
                    codes.append(code)

    workers = [threading.Thread(target=run, args=(n // threads,)) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return codes


def test_a_thousand_refused_anonymous_logins_add_a_few_rows(site) -> None:
    store = site["rt"].store
    before = _sizes(store)
    codes = _hammer(site["url"], lambda c: c.post("/login", data={"username": "alice", "password": "guess"}))
    assert len(codes) == 1000 and set(codes) == {403}
    log, counted = _sizes(store)
    assert (log - before[0]) + (counted - before[1]) <= 3, (before, (log, counted))


def test_a_thousand_refused_anonymous_api_requests_add_a_few_rows(store_url, tmp_path: Path) -> None:
    from relais.compose import Runtime
    from relais.settings import Settings

    url, schema = store_url
    if url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'relais.db'}"
    rt = Runtime.open(Settings.from_env(tmp_path / "home", database_url=url, database_schema=schema))
    try:
        before = _sizes(rt.store)
        with serving(rt) as server:
            codes = _hammer(server.url, lambda c: c.get("/api/v1/invoices", headers={"Authorization": "Bearer x"}))
        assert len(codes) == 1000 and set(codes) <= {401, 429}
        log, counted = _sizes(rt.store)
        assert (log - before[0]) + (counted - before[1]) <= 3, (before, (log, counted))
    finally:
        rt.close()
