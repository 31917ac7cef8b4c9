"""Web application benchmark: `relais web serve` over a PostgreSQL store of a million flows.

    python bench/web.py                       # 1,000,000 flows, each route 3 warm-ups + 30 measured
    python bench/web.py --flows 20000 --repeat 10 --json /tmp/web.json --keep

Seeding: a fresh private schema of PostgreSQL (`--pg-url`, dropped at the end unless `--keep`),
migrated by `Store.open`, then filled with psycopg COPY (its secondary indexes and foreign keys are
dropped during the load and put back afterwards, exactly as they were): N flows over the last 90
days (ids ``CPP`` + 10 digits growing with `received_at`), from 50 partners of uneven size (op-01 the
largest), each on its usual channel (folder, sftp, as2, api); statuses mostly IN_INTEGRE, some
IN_INTEGRE_PARTIEL, IN_REJETE and IN_INCIDENTE. A tenth of the flows keep their two invoice rows
(numbers ``INV-<n>``, buyer SIRETs from a pool of 2,000), the others only their counts. Rejected
flows and invoices have fatal findings (RLS-R03, BR-CO-10, XSD, ...), a few accepted ones warnings.
Every closed flow has its integration report in the outbox (kind return, sent seconds after the flow
closed; the last minutes' and a few others still pending), every accepted invoice row its delivery.
The flow id sequence is moved past the ids used, the dashboard's roll-ups are rebuilt from the loaded rows
(their triggers are disabled during the load: `Store.rebuild_rollups`, as ``relais db rollups rebuild``),
an ops user ``bench`` is added, and the tables are ANALYZEd.

Measuring: the web application in a thread of this process (`relais.web.serve.WebThread`, uvicorn on
127.0.0.1), a logged-in httpx client, one request at a time: for each route, the server time (its
``Server-Timing: app;dur=`` header) and the client's wall time, p50/p95/max. The flow list is also
searched by a part of file names (a common one, and one only one flow's name has: every flow read);
`/waiting` shows this temporary home's drop zones (empty). `/` and `/rejects` are measured only when
the application has them (a 200 page, not a redirect); they are cached `--charts-seconds` (30, as served;
0: computed at every request, what a cold page costs). Routes whose server p95
exceeds 300 ms are flagged. Nothing is asserted: it is a benchmark. Peak RSS: `getrusage` (the
whole run, seeding included) and the high-water mark of the serving phase alone (Linux).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import re
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_URL = os.environ.get("RELAIS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1/test")
SLOW_MS = 300.0
PASSWORD = "bench-web-password"
DAYS = 90
PARTNERS = [f"op-{k:02d}" for k in range(1, 51)]
CHANNELS = ("folder", "sftp", "as2", "api")
#: (status, share) of the flows; the rest of the shares goes to IN_INTEGRE.
STATUS_SHARES = (("IN_INTEGRE_PARTIEL", 0.04), ("IN_REJETE", 0.035), ("IN_INCIDENTE", 0.015))
CLOSED = ("IN_INTEGRE", "IN_INTEGRE_PARTIEL", "IN_REJETE")
#: (rule, weight) of the fatal findings.
FATAL_RULES = (
    ("RLS-R03", 30),
    ("BR-CO-10", 20),
    ("BR-CO-15", 10),
    ("XSD", 10),
    ("BR-FR-12", 8),
    ("RLS-P01", 8),
    ("BR-16", 5),
    ("RLS-R01", 4),
    ("UBL-CR-001", 3),
    ("BR-CO-25", 2),
)
WARNING_RULES = (("BR-FR-CO-05", 3), ("UBL-CR-646", 2), ("BR-CL-23", 1))
FLOW_CODES = ("IN_DP_E1_UBL_INVOICE", "IN_DP_E1_CII_16B", "IN_DP_E2_CII_FACTURX")

FLOW_COLUMNS = (
    "id partner channel original_name size sha256 status flow_code container received_at updated_at "
    "invoice_count rejected_count profile incidents retry_at reopened"
).split()
INVOICE_COLUMNS = (
    "id flow_id position entry_name syntax profile status number type_code issue_date supplier_id "
    "supplier_id_type buyer_siret service_code currency total_without_vat total_vat total_with_vat amount_due"
).split()
ERROR_COLUMNS = "flow_id invoice_id rule flag location message".split()
OUTBOX_COLUMNS = (
    "key kind flow_id invoice_id position channel partner destination archive_sha256 status attempts created_at sent_at"
).split()
SEEDED = ("flows", "invoices", "validation_errors", "outbox")


# ---- seeding -------------------------------------------------------------------------------


def _slots(items: tuple[tuple[str, int], ...] | list[tuple[str, float]], size: int = 1000) -> list[str]:
    """A list in which each item appears in proportion to its weight (a pick is one `randrange`)."""
    total = sum(w for _, w in items)
    out: list[str] = []
    for name, w in items:
        out += [name] * max(1, round(size * w / total))
    return out


class Seeder:
    """The rows of the four tables, generated together flow by flow and written to four COPYs."""

    def __init__(self, n: int, invoice_ratio: float, seed: int, now: dt.datetime) -> None:
        self.n = n
        self.invoice_ratio = invoice_ratio
        self.rng = random.Random(seed)
        self.now = now
        self.start = (now - dt.timedelta(days=DAYS)).timestamp()
        self.span = DAYS * 86400 - 120  # the newest flow arrived at most ~2 minutes ago
        rng = self.rng
        # Partners of uneven size (op-01 the largest, about 1/k), each on its usual channel.
        self.partner_slots = _slots([(p, 1.0 / (k + 1) ** 0.7) for k, p in enumerate(PARTNERS)], 4000)
        self.channel_of = {p: CHANNELS[rng.choices(range(4), weights=(40, 30, 20, 10))[0]] for p in PARTNERS}
        self.siret_of = {p: f"{rng.randrange(10**13, 10**14)}" for p in PARTNERS}
        self.buyers = [f"{rng.randrange(10**13, 10**14)}" for _ in range(2000)]
        self.fatal_slots = _slots(FATAL_RULES)
        self.warning_slots = _slots(WARNING_RULES)
        self.invoice_number = 0
        self.counts = dict.fromkeys(SEEDED, 0)
        self.samples: dict[str, str] = {}

    def _error(self, flow_id: str, invoice_id: str | None, flag: str) -> tuple[Any, ...]:
        slots = self.fatal_slots if flag == "fatal" else self.warning_slots
        rule = slots[self.rng.randrange(len(slots))]
        self.counts["validation_errors"] += 1
        where = "/Invoice/cac:LegalMonetaryTotal/cbc:PayableAmount" if rule.startswith("BR") else "/Invoice"
        return (flow_id, invoice_id, rule, flag, where, f"{rule}: règle non respectée (bench)")

    def rows(self) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """(table, row) for every row, flows in id order (= reception order)."""
        rng, n = self.rng, self.n
        utc = dt.UTC
        step = self.span / n
        third = max(1, n // 3)
        for seq in range(1, n + 1):
            t = self.start + (seq - 1 + rng.random()) * step  # one slot each: increasing, ending now
            received = dt.datetime.fromtimestamp(t, utc)
            flow_id = f"CPP{seq:010d}"
            partner = self.partner_slots[rng.randrange(len(self.partner_slots))]
            channel = self.channel_of[partner] if rng.random() < 0.95 else CHANNELS[rng.randrange(4)]
            r = rng.random()
            status = "IN_INTEGRE"
            for name, share in STATUS_SHARES:
                if r < share:
                    status = name
                    break
                r -= share
            with_rows = status != "IN_INCIDENTE" and rng.random() < self.invoice_ratio
            count = 0 if status == "IN_INCIDENTE" else (2 if with_rows else rng.choice((1, 1, 1, 2, 3, 5, 12)))
            if status == "IN_INTEGRE_PARTIEL" and count < 2:
                count = 2
            rejected = {"IN_REJETE": count, "IN_INTEGRE_PARTIEL": max(1, count // 2)}.get(status, 0)
            processing = rng.uniform(0.5, 20.0) if status != "IN_INCIDENTE" else rng.uniform(30, 600)
            updated = received + dt.timedelta(seconds=processing)
            sha = rng.randbytes(32).hex()
            zipped = count > 1
            incidents = rng.randint(1, 3) if status == "IN_INCIDENTE" else 0
            retry = updated + dt.timedelta(minutes=5 * incidents) if incidents and incidents < 3 else None
            yield (
                "flows",
                (
                    flow_id,
                    partner,
                    channel,
                    f"{partner}_{seq}.{'zip' if zipped else 'xml'}",
                    rng.randrange(4_000, 2_000_000 if zipped else 200_000),
                    sha,
                    status,
                    FLOW_CODES[seq % 3],
                    "zip" if zipped else "xml",
                    received,
                    updated,
                    count,
                    rejected,
                    "EN16931" if seq % 3 == 2 else None,
                    incidents,
                    retry,
                    0,
                ),
            )
            self.counts["flows"] += 1

            accepted_rows: list[tuple[str, int, str]] = []
            if with_rows:
                for pos in (1, 2):
                    inv_id = f"{flow_id}-{pos:05d}"
                    bad = status == "IN_REJETE" or (status == "IN_INTEGRE_PARTIEL" and pos == 2)
                    self.invoice_number += 1
                    buyer = self.buyers[rng.randrange(len(self.buyers))]
                    net = round(rng.uniform(50, 50_000), 2)
                    vat = round(net * 0.2, 2)
                    yield (
                        "invoices",
                        (
                            inv_id,
                            flow_id,
                            pos,
                            f"facture-{pos}.xml",
                            "ubl-invoice" if seq % 3 == 0 else "cii",
                            "EN16931",
                            "05" if bad else "03",
                            f"INV-{self.invoice_number}",
                            "380",
                            received.date(),
                            self.siret_of[partner],
                            "1",
                            buyer,
                            f"SVC{rng.randrange(100):03d}" if rng.random() < 0.3 else None,
                            "EUR",
                            net,
                            vat,
                            round(net + vat, 2),
                            round(net + vat, 2),
                        ),
                    )
                    self.counts["invoices"] += 1
                    if bad:
                        for _ in range(rng.choice((1, 1, 2))):
                            yield "validation_errors", self._error(flow_id, inv_id, "fatal")
                        self.samples.setdefault("rejected_invoice_flow", flow_id)
                    else:
                        accepted_rows.append((inv_id, pos, buyer))
                        if rng.random() < 0.05:
                            yield "validation_errors", self._error(flow_id, inv_id, "warning")
                    if seq <= third or "invoice_number" not in self.samples:  # an old one: no early hit
                        self.samples["invoice_number"] = f"INV-{self.invoice_number}"
                        self.samples["buyer_siret"] = buyer
            elif status == "IN_REJETE":  # the flow itself, or invoices whose rows are not kept
                yield (
                    "validation_errors",
                    self._error(flow_id, None if rng.random() < 0.4 else f"{flow_id}-00001", "fatal"),
                )
            elif status == "IN_INTEGRE_PARTIEL":
                yield "validation_errors", self._error(flow_id, f"{flow_id}-{count:05d}", "fatal")

            if status in CLOSED:
                pending = t > self.start + self.span - 300 or rng.random() < 0.003
                sent = updated + dt.timedelta(seconds=rng.uniform(0.2, 30.0))
                yield (
                    "outbox",
                    (
                        f"return:{flow_id}:{rng.randbytes(8).hex()}",
                        "return",
                        flow_id,
                        None,
                        None,
                        channel,
                        partner,
                        f"{partner}/out/CR_{flow_id}.xml",
                        rng.randbytes(32).hex(),
                        "pending" if pending else "sent",
                        0 if pending else 1,
                        updated,
                        None if pending else sent,
                    ),
                )
                self.counts["outbox"] += 1
            for inv_id, pos, buyer in accepted_rows:
                yield (
                    "outbox",
                    (
                        f"delivery:{inv_id}",
                        "delivery",
                        flow_id,
                        inv_id,
                        pos,
                        "folder",
                        buyer,
                        f"delivery/{buyer}/{inv_id}.xml",
                        None,
                        "sent",
                        1,
                        updated,
                        updated + dt.timedelta(seconds=rng.uniform(0.1, 5.0)),
                    ),
                )
                self.counts["outbox"] += 1
        self.samples["last_flow"] = f"CPP{n:010d}"
        self.samples["middle_flow"] = f"CPP{max(1, n // 3):010d}"


def _detach(cur: Any, schema: str) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Drop the seeded tables' secondary indexes and foreign keys; what puts them back."""
    cur.execute(
        """
        SELECT pg_get_indexdef(i.indexrelid), ic.relname
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_class tc ON tc.oid = i.indrelid
        JOIN pg_namespace ns ON ns.oid = tc.relnamespace
        WHERE ns.nspname = %s AND tc.relname = ANY(%s)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u'))
        """,
        (schema, list(SEEDED)),
    )
    indexes = cur.fetchall()
    cur.execute(
        """
        SELECT tc.relname, k.conname, pg_get_constraintdef(k.oid)
        FROM pg_constraint k
        JOIN pg_class tc ON tc.oid = k.conrelid
        JOIN pg_namespace ns ON ns.oid = tc.relnamespace
        WHERE ns.nspname = %s AND tc.relname = ANY(%s) AND k.contype = 'f'
        """,
        (schema, list(SEEDED)),
    )
    fks = cur.fetchall()
    for table, name, _ in fks:
        cur.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
    for _, name in indexes:
        cur.execute(f'DROP INDEX "{schema}"."{name}"')
    for table in ("flows", "validation_errors"):  # the roll-ups' triggers: rebuilt once after the load
        cur.execute(f'ALTER TABLE "{table}" DISABLE TRIGGER USER')
    return [d for d, _ in indexes], fks


def seed(store: Any, schema: str, n: int, invoice_ratio: float, seed_value: int) -> tuple[Seeder, dict[str, float]]:
    """Fill the store's (empty, migrated) tables; the seeder (counts, sample values) and timings."""
    now = dt.datetime.now(dt.UTC)
    seeder = Seeder(n, invoice_ratio, seed_value, now)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    raw = [store.engine.raw_connection() for _ in SEEDED]
    try:
        cur = raw[0].cursor()
        cur.execute("SET maintenance_work_mem = '256MB'")
        indexes, fks = _detach(cur, schema)
        raw[0].commit()
        columns = {
            "flows": FLOW_COLUMNS,
            "invoices": INVOICE_COLUMNS,
            "validation_errors": ERROR_COLUMNS,
            "outbox": OUTBOX_COLUMNS,
        }
        with contextlib.ExitStack() as stack:
            copies = {}
            for conn, table in zip(raw, SEEDED, strict=True):
                sql = f"COPY {table} ({', '.join(columns[table])}) FROM STDIN"
                copies[table] = stack.enter_context(conn.cursor().copy(sql))
            for table, row in seeder.rows():
                copies[table].write_row(row)
        for conn in raw:
            conn.commit()
        timings["copy_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        for ddl in indexes:
            cur.execute(ddl)
        for table, name, definition in fks:
            cur.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
        cur.execute("SELECT setval(pg_get_serial_sequence('flow_ids', 'seq'), %s)", (n,))
        for table in ("flows", "validation_errors"):
            cur.execute(f'ALTER TABLE "{table}" ENABLE TRIGGER USER')
        raw[0].commit()
        timings["indexes_s"] = time.perf_counter() - t1
        t3 = time.perf_counter()
        store.rebuild_rollups()  # what `relais db rollups rebuild` does
        timings["rollups_rebuild_s"] = time.perf_counter() - t3
    finally:
        for conn in raw:
            conn.close()
    from relais.web.auth.passwords import hash_password

    store.add_web_user("bench", "ops", None, hash_password(PASSWORD))
    t2 = time.perf_counter()
    raw0 = store.engine.raw_connection()
    try:
        raw0.driver_connection.autocommit = True
        c = raw0.cursor()
        for table in (*SEEDED, "flow_ids", "web_users", "rollup_flows", "rollup_rejects"):
            c.execute(f"VACUUM ANALYZE {table}")  # ANALYZE, and the visibility map for index-only scans
    finally:
        raw0.driver_connection.autocommit = False
        raw0.close()
    timings["analyze_s"] = time.perf_counter() - t2
    timings["total_s"] = time.perf_counter() - t0
    return seeder, timings


# ---- measuring -----------------------------------------------------------------------------

_TIMING = re.compile(r"app;dur=([0-9.]+)")


def _pct(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def measure(client: Any, name: str, path: str, repeat: int, warmup: int = 3) -> dict[str, Any]:
    server: list[float] = []
    wall: list[float] = []
    status = None
    size = 0
    for k in range(warmup + repeat):
        t0 = time.perf_counter()
        r = client.get(path)
        elapsed = (time.perf_counter() - t0) * 1000
        status, size = r.status_code, len(r.content)
        m = _TIMING.search(r.headers.get("server-timing", ""))
        if k >= warmup:
            wall.append(elapsed)
            server.append(float(m.group(1)) if m else float("nan"))
    row = {
        "route": name,
        "path": path,
        "status": status,
        "bytes": size,
        "server_p50_ms": round(_pct(server, 0.50), 1),
        "server_p95_ms": round(_pct(server, 0.95), 1),
        "server_max_ms": round(max(server), 1),
        "wall_p50_ms": round(_pct(wall, 0.50), 1),
        "wall_p95_ms": round(_pct(wall, 0.95), 1),
        "wall_max_ms": round(max(wall), 1),
    }
    row["slow"] = row["server_p95_ms"] > SLOW_MS
    return row


def _vm_hwm_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def routes(client: Any, store: Any, seeder: Seeder) -> list[tuple[str, str]]:
    """(name, path) of the routes measured, with values that exist in the seeded store."""
    import sqlalchemy as sa

    from flows.store import tables as t

    c = t.flows.c
    with store.engine.connect() as conn:
        deep = conn.execute(sa.select(c.id).order_by(c.id.desc()).offset(100 * 50 - 1).limit(1)).scalar()
        detail = conn.execute(
            sa.select(t.invoices.c.flow_id)
            .join(t.flows, c.id == t.invoices.c.flow_id)
            .where(c.status == "IN_INTEGRE_PARTIEL")
            .order_by(t.invoices.c.flow_id)
            .limit(1)
        ).scalar() or seeder.samples.get("rejected_invoice_flow", seeder.samples["last_flow"])
    since = (dt.date.today() - dt.timedelta(days=30)).isoformat()
    out = [
        ("/flows", "/flows"),
        ("/flows deep page (~100)", f"/flows?after_value={deep}&after_id={deep}" if deep else "/flows"),
        ("/flows?partner", "/flows?partner=op-07"),
        ("/flows?status", "/flows?status=IN_REJETE"),
        ("/flows?partner&status&since", f"/flows?partner=op-07&status=IN_REJETE&since={since}"),
        ("/flows?sort=partner asc", "/flows?sort=partner&order=asc"),
        ("/flows?q=flow id", f"/flows?q={seeder.samples['middle_flow']}"),
        ("/flows?q=invoice number", f"/flows?q={seeder.samples.get('invoice_number', 'INV-1')}"),
        ("/flows?q=buyer SIRET", f"/flows?q={seeder.samples.get('buyer_siret', '0')}"),
        # A part of file names (``op-07_1234.zip``): a common one (op-07's flows, found on the first pages
        # read), then one only the middle flow's name has (every flow read, no index serves it).
        ("/flows?q=file name, common", "/flows?q=op-07_"),
        ("/flows?q=file name, one flow", f"/flows?q=_{int(seeder.samples['middle_flow'][3:])}."),
        ("/flows/{id} detail", f"/flows/{detail}"),
        ("/metrics", "/metrics"),
        ("/waiting", "/waiting"),  # the drop zones of this temporary home: empty
    ]
    home = client.get("/", follow_redirects=False)
    if home.status_code == 200 and "text/html" in home.headers.get("content-type", ""):
        out.append(("/ landing", "/"))
    else:
        print(f"   (/ answers {home.status_code} {home.headers.get('location', '')}: not measured)", flush=True)
    rejects = client.get("/rejects", follow_redirects=False)
    if rejects.status_code == 200:
        out.append(("/rejects", "/rejects"))
    else:
        print(f"   (/rejects answers {rejects.status_code}: not measured)", flush=True)
    return out


def serve_and_measure(schema: str, store: Any, seeder: Seeder, repeat: int) -> tuple[list[dict[str, Any]], float]:
    import httpx

    from relais.compose import Runtime
    from relais.settings import Settings
    from relais.web.serve import WebThread

    os.environ["RELAIS_DATABASE_URL"] = PG_URL
    os.environ["RELAIS_DATABASE_SCHEMA"] = schema
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="relais-web-bench-") as home:
        rt = Runtime.open(Settings.from_env(home))
        _reset_peak()
        try:
            with WebThread(rt) as web, httpx.Client(base_url=web.url, timeout=120) as client:
                form = client.get("/login").text  # the login form's own CSRF token (no login CSRF)
                found = re.search(r'name="csrf" value="([^"]+)"', form)
                csrf = found.group(1) if found else ""
                r = client.post(
                    "/login",
                    data={"username": "bench", "password": PASSWORD, "csrf": csrf},
                    follow_redirects=True,
                )
                if r.status_code != 200 or "relais_session" not in client.cookies:
                    raise SystemExit(f"bench/web.py: login failed ({r.status_code})")
                for name, path in routes(client, store, seeder):
                    row = measure(client, name, path, repeat)
                    results.append(row)
                    flag = "  SLOW" if row["slow"] else ""
                    print(
                        f"   {name:<30} {row['status']:>3} {row['server_p50_ms']:8.1f} {row['server_p95_ms']:8.1f}"
                        f" {row['server_max_ms']:8.1f}   {row['wall_p50_ms']:8.1f} {row['wall_p95_ms']:8.1f}"
                        f" {row['bytes'] / 1024:8.1f}{flag}",
                        flush=True,
                    )
        finally:
            rt.close()
    return results, _vm_hwm_mb() or 0.0


# ---- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flows", type=int, default=1_000_000, help="flows seeded (default 1,000,000)")
    ap.add_argument("--repeat", type=int, default=30, help="measured requests per route, after 3 warm-ups")
    ap.add_argument("--invoice-ratio", type=float, default=0.10, help="flows that keep 2 invoice rows (0.10)")
    ap.add_argument("--seed", type=int, default=1, help="random seed of the data")
    ap.add_argument("--keep", action="store_true", help="keep the schema (default: drop it at the end)")
    ap.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    ap.add_argument("--pg-url", default=PG_URL, help="PostgreSQL (a private schema is created)")
    ap.add_argument(
        "--charts-seconds",
        type=float,
        default=30.0,
        help="the landing and rejects pages' cache (RELAIS_WEB_CHARTS_SECONDS; 0: computed at every request)",
    )
    args = ap.parse_args(argv)
    globals()["PG_URL"] = args.pg_url
    os.environ["RELAIS_WEB_CHARTS_SECONDS"] = str(args.charts_seconds)

    import sqlalchemy as sa

    from flows.store import Store
    from relais import log

    log.configure("WARNING")
    schema = f"relais_webbench_{uuid.uuid4().hex[:10]}"
    print(
        f"relais web benchmark: {os.cpu_count()} CPUs; {args.flows:,} flows, {args.repeat} requests per route "
        f"after 3 warm-ups; schema {schema}",
        flush=True,
    )
    eng = sa.create_engine(PG_URL)
    with eng.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    out: dict[str, Any] = {"cpus": os.cpu_count(), "flows": args.flows, "schema": schema}
    store = None
    try:
        store = Store.open(PG_URL, schema=schema)
        seeder, timings = seed(store, schema, args.flows, args.invoice_ratio, args.seed)
        counts = seeder.counts
        print(
            f"-- seeded in {timings['total_s']:.1f} s (COPY {timings['copy_s']:.1f} s, indexes and keys "
            f"{timings['indexes_s']:.1f} s, roll-ups rebuilt {timings['rollups_rebuild_s']:.1f} s, "
            f"VACUUM ANALYZE {timings['analyze_s']:.1f} s): " + ", ".join(f"{v:,} {k}" for k, v in counts.items()),
            flush=True,
        )
        out["seed"] = {**{k: round(v, 2) for k, v in timings.items()}, "rows": counts}
        print(
            f"   {'route':<30} {'st':>3} {'srv p50':>8} {'srv p95':>8} {'srv max':>8}   {'wall p50':>8} "
            f"{'wall p95':>8} {'KB':>8}   (ms)",
            flush=True,
        )
        results, serving_peak = serve_and_measure(schema, store, seeder, args.repeat)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        slow = [r["route"] for r in results if r["slow"]]
        print(f"-- peak RSS {peak:.0f} MB (whole run, getrusage); {serving_peak:.0f} MB while serving", flush=True)
        if slow:
            for r in results:
                if r["slow"]:
                    print(
                        f"   SLOW: {r['route']} ({r['path']}): server p95 {r['server_p95_ms']:.0f} ms > {SLOW_MS:.0f}"
                    )
        else:
            print(f"   every route's server p95 is under {SLOW_MS:.0f} ms", flush=True)
        out.update(routes=results, peak_rss_mb=round(peak, 1), serving_peak_rss_mb=round(serving_peak, 1), slow=slow)
        if args.json:
            args.json.write_text(json.dumps(out, indent=2) + "\n")
            print(f"-- results written to {args.json}", flush=True)
    finally:
        if store is not None:
            store.engine.dispose()
        if args.keep:
            print(f"-- schema {schema} kept (RELAIS_DATABASE_SCHEMA={schema})", flush=True)
        else:
            with eng.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        eng.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
