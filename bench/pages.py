"""The "Suivi des flux" pages of a 500-invoice flow, on the embedded default (SQLite, a fresh home).

    python bench/pages.py                                  # 500 invoices, 2,000 waiting files, 20 requests
    python bench/pages.py --invoices 2000 --waiting 10000 --repeat 10 --json /tmp/pages.json --keep

Setting up, in a temporary RELAIS_HOME (kept with `--keep`): the sample directory imported, partner
files for op-a and the waiting partners, one zip batch of N UBL invoices written by Relais's own
generator (relais/generate, as ``relais generate`` does) with about 20 % rejections (5 % invalid
documents, 15 % misrouted: an unknown recipient), dropped into op-a's inbox and run through the
pipeline with the functions ``relais run`` uses (relais/runner.py: intake, process_flows, then the
outbox dispatched and the status return flows due), validation workers as configured (one per CPU by
default). Its processing time gives the invoices/s (intake alone, processing alone, the whole pass);
processing includes starting the validation workers, as a one-shot ``relais run`` does.
Then `--waiting` files are put into ten partners' inboxes, a third of each kind: a writer's temporary
name (``*.zip.part``, some idle for hours: "never completed"), complete and stable (taken by the next
run), and just written (not stable yet: the home's ``stable_seconds`` is 600 s).

Measuring, as bench/web.py does: the web application in a thread of this process
(`relais.web.serve.WebThread`, uvicorn on 127.0.0.1), an ops user logged in with httpx, one request
at a time; for each route, 3 warm-ups then `--repeat` requests: the server time (its
``Server-Timing: app;dur=`` header) and the client's wall time, p50/p95/max. Routes: the landing page,
the flow list, the flow page (rejected invoices by default, all of them, page 10, sorted by amount,
searched by a rejected invoice's number), `/rejects`, `/waiting` and the flow list searched by a part of a file
name. Routes whose server p95 exceeds 300 ms are flagged. Nothing is asserted: it is a benchmark. Peak
RSS: `getrusage` of this process (the whole run; the validation workers are other processes) and the
high-water mark of the serving phase alone (Linux).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from web import SLOW_MS, _reset_peak, _vm_hwm_mb, measure  # noqa: E402  # bench/web.py

PASSWORD = "bench-pages-password"
SENDER = "op-a"
WAITING_PARTNERS = [f"op-w{k:02d}" for k in range(1, 11)]
STABLE_SECONDS = 600.0


def setup(home: Path, work: Path, invoices: int, seed: int) -> Any:
    """The runtime of a fresh home: directory imported, partner files written, op-a's batch dropped."""
    from flows.directory import importer as directory
    from relais import generate as gen
    from relais.compose import Runtime
    from relais.settings import Settings

    settings = Settings.from_env(home, stable_seconds=STABLE_SECONDS)
    settings.partners_dir.mkdir(parents=True, exist_ok=True)
    for partner in (SENDER, *WAITING_PARTNERS):
        (settings.partners_dir / f"{partner}.toml").write_text(f'id = "{partner}"\nname = "Opérateur {partner}"\n')
    rt = Runtime.open(settings)
    recipients = gen.sample_directory()
    (work / "annuaire.json").write_text(json.dumps(gen.directory_document(recipients, "bench-pages-1")))
    directory.import_file(rt.store, work / "annuaire.json")
    [batch] = gen.write_batch(
        work / "gen",
        "ubl",
        invoices,
        1,
        batch="zip",
        recipients=recipients,
        name=f"lot-{SENDER}-{invoices}",
        invalid_ratio=0.05,
        misrouted_ratio=0.15,
        seed=seed,
    )
    inbox = rt.settings.inbox(SENDER)
    inbox.mkdir(parents=True, exist_ok=True)
    dropped = inbox / batch.name
    dropped.write_bytes(batch.read_bytes())
    old = time.time() - 2 * STABLE_SECONDS
    os.utime(dropped, (old, old))
    return rt


def run_pipeline(rt: Any) -> dict[str, Any]:
    """`relais run`'s pass (relais.runner.run_pass), step by step and timed."""
    from flows.pipeline import dispatch
    from relais import runner

    t0 = time.perf_counter()
    runner.sweep_temporaries(rt)
    taken = runner.intake(rt)
    t1 = time.perf_counter()
    report = runner.process_flows(rt, runner.pending_flow_ids(rt))
    t2 = time.perf_counter()
    dispatch.dispatch(rt.outbound)
    runner.emit_statuses(rt)
    t3 = time.perf_counter()
    [flow] = [rt.store.get_flow(f.id) or f for f in report.flows] or [None]
    if flow is None:
        raise SystemExit(f"bench/pages.py: no flow processed ({len(taken)} taken)")
    n = flow.invoice_count
    return {
        "flow": flow.id,
        "status": str(flow.status),
        "invoices": n,
        "rejected": flow.rejected_count,
        "intake_s": round(t1 - t0, 2),
        "process_s": round(t2 - t1, 2),
        "dispatch_s": round(t3 - t2, 2),
        "total_s": round(t3 - t0, 2),
        "process_invoices_per_s": round(n / (t2 - t1), 1),
        "total_invoices_per_s": round(n / (t3 - t0), 1),
        "workers": rt.settings.workers,
    }


def put_waiting(rt: Any, n: int) -> dict[str, int]:
    """`n` files in the waiting partners' inboxes: a third temporary names, a third stable, a third fresh."""
    now = time.time()
    kinds = {"part": 0, "stable": 0, "fresh": 0}
    for k in range(n):
        partner = WAITING_PARTNERS[k % len(WAITING_PARTNERS)]
        inbox = rt.settings.inbox(partner)
        inbox.mkdir(parents=True, exist_ok=True)
        kind = ("part", "stable", "fresh")[k % 3]
        name = {"part": f"lot-{k:05d}.zip.part", "stable": f"facture-{k:05d}.xml", "fresh": f"envoi-{k:05d}.xml"}
        path = inbox / name[kind]
        path.write_bytes(b"<Invoice/>\n" * (1 + k % 50))
        # Temporary names up to ~8 h old (the older ones "never completed"), stable ones 20 min to 8 h.
        age = {"part": (k * 37) % 28_800, "stable": STABLE_SECONDS * 2 + (k * 53) % 27_000, "fresh": k % 60}[kind]
        os.utime(path, (now - age, now - age))
        kinds[kind] += 1
    return kinds


def routes(rt: Any, flow_id: str) -> list[tuple[str, str]]:
    """(name, path) of the routes measured, with values that exist in the flow."""
    import sqlalchemy as sa

    from flows.domain.lifecycle import InvoiceStatus
    from flows.store import tables as t

    i = t.invoices.c
    rejected = [s.value for s in InvoiceStatus if s.is_rejected]
    mine = sa.and_(i.flow_id == flow_id, i.status.in_(rejected))  # the default view: the rejected invoices
    with rt.store.engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).where(mine)).scalar() or 0
        number = conn.execute(sa.select(i.number).where(mine).order_by(i.position).offset(count // 2).limit(1)).scalar()
        name = conn.execute(sa.select(t.flows.c.original_name).where(t.flows.c.id == flow_id)).scalar() or ""
    part = name.split(".")[0][:-2] or name  # "lot-op-a-5": a part of "lot-op-a-500.zip"
    page = f"/flows/{flow_id}"
    return [
        ("/ landing", "/"),
        ("/flows", "/flows"),
        ("/flows/{id} rejected (default)", page),
        ("/flows/{id}?inv_status=all", f"{page}?inv_status=all"),
        ("/flows/{id} all, page 10", f"{page}?inv_status=all&page=10"),
        ("/flows/{id} all, amount desc", f"{page}?inv_status=all&sort=amount&order=desc"),
        ("/flows/{id}?q=invoice number", f"{page}?q={number}"),
        ("/rejects", "/rejects"),
        ("/waiting", "/waiting"),
        ("/flows?q=file name part", f"/flows?q={part}"),
    ]


def serve_and_measure(rt: Any, flow_id: str, repeat: int) -> tuple[list[dict[str, Any]], float]:
    import httpx

    from relais.web.auth.passwords import hash_password
    from relais.web.serve import WebThread

    rt.store.add_web_user("bench", "ops", None, hash_password(PASSWORD))
    results: list[dict[str, Any]] = []
    _reset_peak()
    with WebThread(rt) as web, httpx.Client(base_url=web.url, timeout=120) as client:
        form = client.get("/login").text  # the login form's own CSRF token
        found = re.search(r'name="csrf" value="([^"]+)"', form)
        r = client.post(
            "/login",
            data={"username": "bench", "password": PASSWORD, "csrf": found.group(1) if found else ""},
            follow_redirects=True,
        )
        if r.status_code != 200 or "relais_session" not in client.cookies:
            raise SystemExit(f"bench/pages.py: login failed ({r.status_code})")
        for name, path in routes(rt, flow_id):
            row = measure(client, name, path, repeat)
            results.append(row)
            flag = "  SLOW" if row["slow"] else ""
            print(
                f"   {name:<32} {row['status']:>3} {row['server_p50_ms']:8.1f} {row['server_p95_ms']:8.1f}"
                f" {row['server_max_ms']:8.1f}   {row['wall_p50_ms']:8.1f} {row['wall_p95_ms']:8.1f}"
                f" {row['wall_max_ms']:8.1f} {row['bytes'] / 1024:8.1f}{flag}",
                flush=True,
            )
    return results, _vm_hwm_mb() or 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--invoices", type=int, default=500, help="invoices of the batch (default 500)")
    ap.add_argument("--waiting", type=int, default=2000, help="files waiting in the drop zones (default 2,000)")
    ap.add_argument("--repeat", type=int, default=20, help="measured requests per route, after 3 warm-ups")
    ap.add_argument("--seed", type=int, default=7, help="random seed of the generator")
    ap.add_argument("--keep", action="store_true", help="keep the temporary home (default: removed)")
    ap.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = ap.parse_args(argv)

    from relais import log

    log.configure("WARNING")
    for var in ("RELAIS_DATABASE_URL", "RELAIS_DATABASE_SCHEMA"):  # the embedded default: SQLite in the home
        os.environ.pop(var, None)
    tmp = Path(tempfile.mkdtemp(prefix="relais-pages-bench-"))
    home, work = tmp / "home", tmp / "work"
    work.mkdir(parents=True)
    print(
        f"relais pages benchmark: {os.cpu_count()} CPUs; SQLite in {home}; {args.invoices:,} invoices, "
        f"{args.waiting:,} waiting files, {args.repeat} requests per route after 3 warm-ups",
        flush=True,
    )
    out: dict[str, Any] = {"cpus": os.cpu_count(), "database": "sqlite", "invoices": args.invoices}
    rt = setup(home, work, args.invoices, args.seed)
    try:
        pipe = run_pipeline(rt)
        print(
            f"-- pipeline: {pipe['flow']} {pipe['status']}, {pipe['invoices']:,} invoices ({pipe['rejected']} "
            f"rejected): intake {pipe['intake_s']:.2f} s, processing {pipe['process_s']:.2f} s "
            f"({pipe['process_invoices_per_s']:,.0f} invoices/s), dispatch and returns {pipe['dispatch_s']:.2f} s; "
            f"the whole pass {pipe['total_s']:.2f} s ({pipe['total_invoices_per_s']:,.0f} invoices/s)",
            flush=True,
        )
        kinds = put_waiting(rt, args.waiting)
        from relais.runner import waiting_files

        t0 = time.perf_counter()
        report = waiting_files(rt.settings, rt.store)
        scan_ms = (time.perf_counter() - t0) * 1000
        reasons = ", ".join(f"{n} {r.value}" for r, n in report.by_reason().items())
        print(
            f"-- waiting: {report.total:,} files in {len(WAITING_PARTNERS)} inboxes ({reasons}); "
            f"one scan {scan_ms:.0f} ms",
            flush=True,
        )
        print(
            f"   {'route':<32} {'st':>3} {'srv p50':>8} {'srv p95':>8} {'srv max':>8}   {'wall p50':>8} "
            f"{'wall p95':>8} {'wall max':>8} {'KB':>8}   (ms)",
            flush=True,
        )
        results, serving_peak = serve_and_measure(rt, pipe["flow"], args.repeat)
    finally:
        rt.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    slow = [r["route"] for r in results if r["slow"]]
    print(f"-- peak RSS {peak:.0f} MB (whole run, getrusage); {serving_peak:.0f} MB while serving", flush=True)
    for r in results:
        if r["slow"]:
            print(f"   SLOW: {r['route']} ({r['path']}): server p95 {r['server_p95_ms']:.0f} ms > {SLOW_MS:.0f}")
    if not slow:
        print(f"   every route's server p95 is under {SLOW_MS:.0f} ms", flush=True)
    out.update(
        pipeline=pipe,
        waiting={"files": report.total, "written": kinds, "scan_ms": round(scan_ms, 1)},
        routes=results,
        peak_rss_mb=round(peak, 1),
        serving_peak_rss_mb=round(serving_peak, 1),
        slow=slow,
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"-- results written to {args.json}", flush=True)
    if args.keep:
        print(f"-- home kept: RELAIS_HOME={home}", flush=True)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
