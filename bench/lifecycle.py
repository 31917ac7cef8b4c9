"""Invoice lifecycle benchmark: status changes per second through the HTTP API, and status return flows.

    python bench/lifecycle.py --changes 5000 --clients 8 [--db postgres]

Over a fresh home (SQLite, or a private schema of PostgreSQL with ``--db postgres``) it generates one batch
of invoices (relais.generate), runs it through the pipeline once (deliveries make them MISE_A_DISPOSITION),
starts ``relais api serve`` on 127.0.0.1 in its own process, and walks the invoices through
MISE_A_DISPOSITION -> SERVICE_FAIT -> MANDATEE -> MISE_A_DISPOSITION_COMPTABLE -> COMPTABILISEE ->
MISE_EN_PAIEMENT with ``--changes`` POST /api/v1/invoices/{id}/status requests from ``--clients`` threads,
each with its own httpx.Client and recipient tokens. It prints the throughput, the p50/p95/max latency and
the server's peak RSS; then, when ``flows.pipeline.status_returns.emit_due`` exists, it times emitting the status
return flows of all those changes. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WALK = ["SERVICE_FAIT", "MANDATEE", "MISE_A_DISPOSITION_COMPTABLE", "COMPTABILISEE", "MISE_EN_PAIEMENT"]
PG_URL = "postgresql+psycopg://127.0.0.1/test"


BATCH = 2000  # invoices per generated batch (flows.io.safearchive limits entries per archive)


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _start_server(home: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "relais.cli", "--home", str(home), "api", "serve", "--host", "127.0.0.1", "--port", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    for line in proc.stderr:
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
            return proc, m.group(1)
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise SystemExit(f"the API server did not start (exit {proc.wait()})")


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _emitter(rt: object):  # a callable, or None when status return flows are not there
    """``flows.pipeline.status_returns.emit_due(rt, now=None)``, imported lazily (another part of Relais); also takes
    the runtime's ``status_returns.emit_due()`` when the module offers a class instead."""
    try:
        from flows.pipeline import status_returns
    except ImportError:
        return None
    fn = getattr(status_returns, "emit_due", None)
    if callable(fn):
        return lambda: fn(rt, now=None)
    part = getattr(rt, "status_returns", None)
    method = getattr(part, "emit_due", None)
    if callable(method):
        return lambda: method(now=None)
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--changes", type=int, default=100_000, help="status changes to make through the API")
    ap.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--pg-url", default=os.environ.get("RELAIS_BENCH_PG_URL", PG_URL))
    ap.add_argument("--lines", type=int, default=2, help="lines per generated invoice")
    ap.add_argument("--workdir", type=Path, help="keep the data here (default: a temporary folder)")
    args = ap.parse_args(argv)
    if args.changes < 1 or args.clients < 1:
        ap.error("--changes and --clients must be positive")

    import httpx
    import sqlalchemy as sa

    from flows.directory import importer as directory
    from flows.domain.lifecycle import InvoiceStatus
    from flows.store import tables as t
    from relais import generate as gen
    from relais import log
    from relais.api import auth
    from relais.compose import Runtime
    from relais.runner import run_once
    from relais.settings import Settings

    log.configure("WARNING")
    tmp = tempfile.TemporaryDirectory(prefix="relais-lifecycle-")
    work = args.workdir or Path(tmp.name)
    home = work / "home"
    n_invoices = math.ceil(args.changes / len(WALK))
    env = dict(os.environ)
    schema = None
    if args.db == "postgres":
        schema = f"relais_bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(args.pg_url)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = args.pg_url
        env.update(RELAIS_DATABASE_URL=url, RELAIS_DATABASE_SCHEMA=schema)
    else:
        url = f"sqlite:///{home / 'relais.db'}"
        env.update(RELAIS_DATABASE_URL=url)
        env.pop("RELAIS_DATABASE_SCHEMA", None)
    settings = Settings.from_env(
        home,
        stable_seconds=0.0,
        database_url=url,
        database_schema=schema,
        max_invoices_per_flow=BATCH,
    )
    print(
        f"relais lifecycle benchmark: {args.changes} changes on {n_invoices} invoices, {args.clients} clients, "
        f"{args.db}, {os.cpu_count()} CPUs",
        flush=True,
    )
    proc = None
    rt = Runtime.open(settings)
    try:
        recipients = gen.sample_directory()
        dir_file = work / "annuaire.json"
        dir_file.write_text(json.dumps(gen.directory_document(recipients, "bench")))
        directory.import_file(rt.store, dir_file)

        t0 = time.perf_counter()
        inbox = settings.inbox("bench")
        inbox.mkdir(parents=True, exist_ok=True)
        old = time.time() - 60
        for k, start in enumerate(range(1, n_invoices + 1, BATCH)):  # batches under the archive's entry limit
            [batch] = gen.write_batch(
                work / "gen",
                "ubl",
                min(BATCH, n_invoices - start + 1),
                args.lines,
                batch="zip",
                recipients=recipients,
                start=start,
                name=f"bench-{k:03d}",
            )
            os.replace(batch, inbox / batch.name)
            os.utime(inbox / batch.name, (old, old))
        flows = run_once(rt)
        setup_s = time.perf_counter() - t0
        ready = [
            (i.id, i.buyer_siret)
            for f in flows
            for i in rt.store.iter_invoices(f.id)
            if i.status is InvoiceStatus.MISE_A_DISPOSITION
        ]
        print(f"setup: {len(ready)} invoices made available in {setup_s:.1f} s ({[str(f.status) for f in flows]})")
        if not ready:
            raise SystemExit("no invoice was made available")
        tokens: dict[str, str] = {}
        for siret in sorted({s for _, s in ready if s}):
            secret, row = auth.new_token(auth.RECIPIENT, siret=siret)
            rt.store.create_token(row)
            tokens[siret] = secret

        # The work: (invoice, siret, number of steps) per client, the changes spread over the invoices.
        plan: list[tuple[str, str, int]] = []
        left = args.changes
        for inv_id, siret in ready:
            if left <= 0:
                break
            steps = min(len(WALK), left)
            plan.append((inv_id, siret, steps))
            left -= steps
        if left > 0:
            print(f"note: only {args.changes - left} changes possible on {len(ready)} invoices")
        shares = [plan[k :: args.clients] for k in range(args.clients)]

        proc, base = _start_server(home, env)
        latencies: list[list[float]] = [[] for _ in shares]
        failures: list[list[str]] = [[] for _ in shares]

        def worker(k: int) -> None:
            mine = shares[k]
            with httpx.Client(base_url=base, timeout=60) as c:
                for step, status in enumerate(WALK):
                    for inv_id, siret, steps in mine:
                        if step >= steps:
                            continue
                        t1 = time.perf_counter()
                        r = c.post(
                            f"/api/v1/invoices/{inv_id}/status",
                            json={"status": status},
                            headers={"Authorization": f"Bearer {tokens[siret]}"},
                        )
                        latencies[k].append(time.perf_counter() - t1)
                        if r.status_code != 200:
                            failures[k].append(f"{inv_id} {status}: {r.status_code} {r.text[:200]}")

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(args.clients)]
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        seconds = time.perf_counter() - t0
        peak_mb = _peak_rss_mb(proc.pid)
        proc.terminate()
        proc.wait(30)
        proc = None

        lat = [x for part in latencies for x in part]
        errors = [x for part in failures for x in part]
        done = len(lat) - len(errors)
        rate = done / seconds if seconds else float("inf")
        p50, p95, worst = (_percentile(lat, q) * 1000 for q in (0.50, 0.95, 1.0))
        print(f"status changes: {done} in {seconds:.2f} s = {rate:.0f} changes/s ({len(errors)} failed)")
        print(f"latency: p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {worst:.1f} ms")
        print(f"server peak RSS: {peak_mb:.0f} MB")
        for e in errors[:5]:
            print(f"  failed: {e}")

        result: dict[str, object] = {
            "db": args.db,
            "clients": args.clients,
            "invoices": len(ready),
            "changes": done,
            "failed": len(errors),
            "changes_per_s": round(rate, 1),
            "p50_ms": round(p50, 2),
            "p95_ms": round(p95, 2),
            "max_ms": round(worst, 2),
            "server_peak_rss_mb": round(peak_mb, 1),
        }

        emit = _emitter(rt)
        if emit is None:
            print("status return flows: skipped (no flows.pipeline.status_returns.emit_due(rt, now=None) available)")
        else:

            def emitted() -> int:
                total = sa.select(sa.func.coalesce(sa.func.sum(t.status_returns.c.entries), 0))
                with rt.store.engine.connect() as conn:
                    return int(conn.execute(total).scalar() or 0)

            before = emitted()
            t0 = time.perf_counter()
            emit()
            emit_s = time.perf_counter() - t0
            entries = emitted() - before
            per_s = entries / emit_s if emit_s else float("inf")
            print(f"status return flows: {entries} entries in {emit_s:.2f} s = {per_s:.0f} entries/s")
            result.update(return_entries=entries, return_seconds=round(emit_s, 3), return_entries_per_s=round(per_s, 1))
        print(json.dumps(result))
        return 1 if errors else 0
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        rt.close()
        if schema is not None:
            admin = sa.create_engine(args.pg_url)
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
