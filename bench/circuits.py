"""Billing circuits benchmark: billing files through intake, association and the actors' API calls.

    python bench/circuits.py                 # 10,000 billing files (40,000 pieces): several minutes
    python bench/circuits.py --files 200     # a quick run

Each billing file is 4 pieces: a works file, the titulaire's draft monthly statement (A4), the project
manager's état d'acompte (A15, BT-25 = the A4) and the contracting authority's validated état d'acompte
(A19, BT-25 = the A15); plus one sub-contractor's invoice (A9) naming its titulaire as validator (its own
one-piece file). They come from `relais.generate.circuits`, in zips of at most 2,000 pieces.

Over a fresh home (SQLite) the real pipeline runs as ``relais run`` does (`relais.runner.run_once`:
intake, validation, association, routing, deliveries), in three rounds, each deposit after the actors
answered the previous one, as in life:

1. the A4s and A9s are deposited; then through the HTTP API (``relais api serve`` in its own process,
   httpx clients, one token per actor SIRET) each titulaire lists its ``A_VALIDER_1`` pieces and validates
   them (``VALIDEE_1``), each MOE lists its ``MISE_A_DISPOSITION_MOE`` pieces and takes them
   (``PRISE_EN_COMPTE_MOE``);
2. the A15s are deposited; each MOA (the buyer) lists its ``MISE_A_DISPOSITION_MOA`` pieces, takes them and
   passes them on (``PRISE_EN_COMPTE_MOA``, ``TRANSMISE_MOA``);
3. the A19s are deposited; each buyer reads a sample of billing files (``GET /api/v1/billing-files/{id}``).

It prints the pieces per second through the pipeline, the API latency (p50/p95, per endpoint too), the
peak RSS (this process, the validation workers and the API server), the association lookup time
(``Store.pieces_by_number``, what the association does per piece) at the start, in the middle and at
the end, with SQLite's plan of that lookup (flat: ``ix_invoices_number``, then the flows' and
``piece_links``' primary keys), and how many pieces of each framework ended in each status (the circuits
walked: A4 PRISE_EN_COMPTE_MOE, A15 TRANSMISE_MOA, A19 and A9 MISE_A_DISPOSITION). The last line is JSON.
An actor's list that finds fewer pieces than it should, or a failed API call, is printed, not hidden.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lifecycle import _peak_rss_mb, _percentile, _start_server
from measure import PeakSampler

CHUNK = 2000  # pieces per zip (flows.io.safearchive limits entries per archive)
LOOKUPS = 300  # association lookups timed at each point


class Calls:
    """API latencies per endpoint, and the failures, from several threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self.failures: list[str] = []

    def timed(self, endpoint: str, send: Callable[[], object]) -> object:
        t0 = time.perf_counter()
        response = send()
        elapsed = time.perf_counter() - t0
        with self.lock:
            self.seconds[endpoint].append(elapsed)
        return response

    def failed(self, what: str) -> None:
        with self.lock:
            self.failures.append(what)

    def all(self) -> list[float]:
        return [x for xs in self.seconds.values() for x in xs]


def lookup_ms(rt, numbers: Sequence[str]) -> float:
    """Median time of one association lookup (the recorded pieces with a number), in ms: the median, as the
    machine may be busy with other work."""
    seconds = []
    for number in numbers:
        t0 = time.perf_counter()
        rt.store.pieces_by_number(number)
        seconds.append(time.perf_counter() - t0)
    return _percentile(seconds, 0.5) * 1000


def cpu_s() -> float:
    """CPU seconds (user + system) of this process and its children so far (the validation workers; those
    that ended included), the API server aside (it runs between the rounds)."""
    import psutil

    me = psutil.Process()
    t = me.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in me.children(recursive=True):
        try:
            if "api" not in child.cmdline():
                c = child.cpu_times()
                total += c.user + c.system
        except psutil.Error:
            pass
    return total


def deposit(settings, partner: str, specs: Sequence, work: Path, name: str) -> int:
    """Write `specs` as zips of at most CHUNK pieces into `partner`'s drop zone, already stable."""
    from relais.generate.batch import write_specs

    inbox = settings.inbox(partner)
    inbox.mkdir(parents=True, exist_ok=True)
    settings.outbox_dir(partner).mkdir(parents=True, exist_ok=True)
    old = time.time() - 60
    for k in range(0, len(specs), CHUNK):
        for path in write_specs(work / "gen", "ubl", specs[k : k + CHUNK], "zip", f"{name}-{k // CHUNK:03d}"):
            target = inbox / path.name
            os.replace(path, target)
            os.utime(target, (old, old))
    return len(specs)


def list_and_act(
    base: str, calls: Calls, tokens: dict[str, str], status: str, moves: Sequence[str], clients: int
) -> int:
    """Each actor lists its pieces in `status` (every page) and makes `moves` on each; the pieces found."""
    import httpx

    work: list[tuple[str, str]] = []  # (token, invoice id)
    with httpx.Client(base_url=base, timeout=120) as c:
        for siret, token in tokens.items():
            cursor: str | None = None
            while True:
                params = {"status": status, "limit": "500"} | ({"cursor": cursor} if cursor else {})
                r = calls.timed(
                    "GET /invoices?status",
                    lambda p=params, t=token: c.get(  # type: ignore[misc]
                        "/api/v1/invoices", params=p, headers={"Authorization": f"Bearer {t}"}
                    ),
                )
                assert isinstance(r, httpx.Response)
                if r.status_code != 200:
                    calls.failed(f"GET ?status={status} as {siret}: {r.status_code} {r.text[:200]}")
                    break
                page = r.json()
                work += [(token, inv["id"]) for inv in page["invoices"]]
                cursor = page.get("next_cursor")
                if not cursor:
                    break

    def worker(share: list[tuple[str, str]]) -> None:
        with httpx.Client(base_url=base, timeout=120) as c:
            for move in moves:
                for token, invoice_id in share:
                    r = calls.timed(
                        "POST /invoices/{id}/status",
                        lambda m=move, t=token, i=invoice_id: c.post(  # type: ignore[misc]
                            f"/api/v1/invoices/{i}/status",
                            json={"status": m},
                            headers={"Authorization": f"Bearer {t}"},
                        ),
                    )
                    assert isinstance(r, httpx.Response)
                    if r.status_code != 200:
                        calls.failed(f"POST {move} on {invoice_id}: {r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=worker, args=(work[k::clients],)) for k in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return len(work)


def read_files(base: str, calls: Calls, files: list[tuple[str, str]]) -> dict[int, int]:
    """GET /api/v1/billing-files/{id} for each (token, id): how many answers of each HTTP status."""
    import httpx

    seen: dict[int, int] = defaultdict(int)
    with httpx.Client(base_url=base, timeout=120) as c:
        for token, file_id in files:
            r = calls.timed(
                "GET /billing-files/{id}",
                lambda t=token, f=file_id: c.get(  # type: ignore[misc]
                    f"/api/v1/billing-files/{f}", headers={"Authorization": f"Bearer {t}"}
                ),
            )
            assert isinstance(r, httpx.Response)
            seen[r.status_code] += 1
    return dict(seen)


def tokens_for(rt, sirets: set[str]) -> dict[str, str]:
    from relais.api import auth

    out = {}
    for siret in sorted(sirets):
        secret, row = auth.new_token(auth.RECIPIENT, siret=siret)
        rt.store.create_token(row)
        out[siret] = secret
    return out


def report(
    n: int,
    pieces: int,
    pipeline_s: float,
    calls: Calls,
    lookups: dict[str, float],
    peak: float,
    server_peak: float,
) -> None:
    """The summary lines, then the JSON line."""
    lat = calls.all()
    p50, p95 = (_percentile(lat, q) * 1000 for q in (0.50, 0.95))
    print(f"pipeline: {pieces} pieces in {pipeline_s:.1f} s = {pieces / pipeline_s:.0f} pieces/s")
    print(f"API: {len(lat)} calls, p50 {p50:.1f} ms, p95 {p95:.1f} ms, {len(calls.failures)} failed")
    for endpoint, xs in sorted(calls.seconds.items()):
        print(f"  {endpoint:<28} {len(xs):7d} calls  p50 {_percentile(xs, 0.5) * 1000:7.1f} ms  "
              f"p95 {_percentile(xs, 0.95) * 1000:7.1f} ms")  # fmt: skip
    for failure in calls.failures[:5]:
        print(f"  failed: {failure}")
    own = _peak_rss_mb(os.getpid())
    print(f"peak RSS: {peak:.0f} MB (this process, its workers and the API server); "
          f"this process {own:.0f} MB, the API server {server_peak:.0f} MB")  # fmt: skip
    print(
        f"association lookup (median of {LOOKUPS}): start {lookups['start']:.3f} ms (nothing recorded yet), "
        f"middle {lookups['middle']:.3f} ms, end {lookups['end']:.3f} ms ({lookups['end'] / lookups['middle']:.1f}x "
        f"from middle to end); a number never recorded: start {lookups['start']:.3f} ms, end "
        f"{lookups['end_unknown']:.3f} ms ({lookups['end_unknown'] / lookups['start']:.1f}x)"
    )
    print(
        json.dumps(
            {
                "files": n,
                "pieces": pieces,
                "pieces_per_s": round(pieces / pipeline_s, 1),
                "api_calls": len(lat),
                "api_failed": len(calls.failures),
                "api_p50_ms": round(p50, 2),
                "api_p95_ms": round(p95, 2),
                "peak_rss_mb": round(peak, 1),
                "server_peak_rss_mb": round(server_peak, 1),
                "lookup_ms": {k: round(v, 4) for k, v in lookups.items()},
            }
        )
    )


def lookup_plan(rt, number: str) -> list[str]:
    """SQLite's plan of one association lookup (`Store.pieces_by_number`): its statement is caught as it runs,
    then explained (``EXPLAIN QUERY PLAN``); a SEARCH by ``ix_invoices_number`` keeps the lookup flat."""
    import sqlalchemy as sa

    caught: list[tuple[str, object]] = []

    def catch(conn, cursor, statement, parameters, context, executemany) -> None:
        caught.append((statement, parameters))

    engine = rt.store.engine
    if engine.dialect.name != "sqlite":
        return [f"(not explained on {engine.dialect.name})"]
    sa.event.listen(engine, "before_cursor_execute", catch)
    try:
        rt.store.pieces_by_number(number)
    finally:
        sa.event.remove(engine, "before_cursor_execute", catch)
    statement, parameters = caught[-1]
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()  # type: ignore[arg-type]
    return [str(r[-1]) for r in rows]


def final_statuses(rt) -> dict[str, dict[str, int]]:
    """How many pieces of each framework ended in each status."""
    import sqlalchemy as sa

    from flows.domain.lifecycle import InvoiceStatus
    from flows.store import tables as t

    i = t.invoices.c
    q = sa.select(i.framework, i.status, sa.func.count()).group_by(i.framework, i.status)
    out: dict[str, dict[str, int]] = defaultdict(dict)
    with rt.store.engine.connect() as conn:
        for framework, status, count in conn.execute(q).all():
            out[framework][InvoiceStatus(status).name] = count
    return dict(sorted(out.items()))


class Bench:
    """One run over a fresh home: its pipeline rounds, its actors' API calls, and what they measured."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        from relais.compose import Runtime
        from relais.settings import Settings

        self.args, self.work, self.home = args, work, work / "home"
        url = f"sqlite:///{self.home / 'relais.db'}"
        self.env = {k: v for k, v in os.environ.items() if k != "RELAIS_DATABASE_SCHEMA"} | {"RELAIS_DATABASE_URL": url}
        self.settings = Settings.from_env(self.home, stable_seconds=0.0, database_url=url, max_invoices_per_flow=CHUNK)
        self.rt = Runtime.open(self.settings)
        self.pipeline_s = 0.0
        self.pieces = 0
        self.calls = Calls()
        self.lookups: dict[str, float] = {}
        self.tokens: dict[str, str] = {}
        self.base = ""
        self.server: subprocess.Popen[str] | None = None  # `relais api serve`, once started

    def round_(self, label: str, drops: list[tuple[str, Sequence, str]]) -> None:
        """Deposit `drops` (partner, specs, name) and run one pipeline pass (`relais run`'s) over them, timed:
        the pass also sends the deliveries the actors released and the status return flows of their moves."""
        from relais.runner import run_pass

        count = sum(deposit(self.settings, partner, specs, self.work, name) for partner, specs, name in drops)
        t1, cpu = time.perf_counter(), cpu_s()
        done = run_pass(self.rt)
        seconds, cpu = time.perf_counter() - t1, cpu_s() - cpu
        self.pipeline_s += seconds
        self.pieces += count
        print(f"{label}: {count} pieces in {len(done.flows)} flows ({', '.join(sorted(done.statuses))}), "
              f"{seconds:.1f} s = {count / seconds:.0f} pieces/s, CPU {cpu:.0f} s; with {done.delivered} deliveries "
              f"and {done.status_returns} status return flows sent", flush=True)  # fmt: skip

    def actors(self, status: str, moves: list[str], who: set[str], expected: int) -> None:
        """The actors `who` list their pieces in `status` and make `moves` on each, through the API."""
        t1 = time.perf_counter()
        found = list_and_act(self.base, self.calls, {s: self.tokens[s] for s in who}, status, moves, self.args.clients)
        seconds = time.perf_counter() - t1
        note = "" if found == expected else f" (expected {expected})"
        print(f"  actors: {len(who)} list {status}: {found} pieces{note}; {', '.join(moves)} in {seconds:.1f} s")

    def lookup(self, point: str, probe: Sequence[str], said: str) -> None:
        self.lookups[point] = lookup_ms(self.rt, probe)
        print(f"association lookup {said}: {self.lookups[point]:.3f} ms", flush=True)


def walk(b: Bench, n: int) -> None:
    """The three deposits and the actors' answers between them, then the buyers' reads (module doc); the API
    server is left running (`b.server`)."""
    from flows.directory import importer as directory
    from relais import generate as gen
    from relais.generate.circuits import circuit_set

    recipients = gen.sample_directory()
    dir_file = b.work / "annuaire.json"
    dir_file.write_text(json.dumps(gen.directory_document(recipients, "bench")))
    directory.import_file(b.rt.store, dir_file)
    t0 = time.perf_counter()
    works = circuit_set("works", n, b.args.lines, recipients, seed=1)
    sub = circuit_set("subcontract", n, b.args.lines, recipients, seed=1)
    a4, a15, a19 = (d.specs for d in works.deposits)
    a9 = sub.deposits[0].specs
    print(f"plan: {4 * n} pieces in {time.perf_counter() - t0:.1f} s")
    sample = random.Random(1).sample(range(n), min(n, LOOKUPS))
    probe = [a4[i].number for i in sample]  # numbers a later piece names in BT-25
    b.lookup("start", probe, "at the start (no piece yet)")

    b.round_("deposit 1 (A4, A9)", [("titulaire", a4, "a4"), ("sous-traitant", a9, "a9")])
    b.lookup("middle", probe, f"after {b.pieces} pieces")
    validators = {s for spec in a9 for role, s in spec.supporting if role == "VALIDEUR"}
    moes = {s for spec in a4 for role, s in spec.supporting if role == "MOE"}
    buyers = {spec.buyer_siret for spec in a4}
    b.tokens = tokens_for(b.rt, validators | moes | buyers)
    b.server, b.base = _start_server(b.home, b.env)
    b.actors("A_VALIDER_1", ["VALIDEE_1"], validators, n)
    b.actors("MISE_A_DISPOSITION_MOE", ["PRISE_EN_COMPTE_MOE"], moes, n)
    b.round_("deposit 2 (A15)", [("moe", a15, "a15")])
    b.actors("MISE_A_DISPOSITION_MOA", ["PRISE_EN_COMPTE_MOA", "TRANSMISE_MOA"], buyers, n)
    b.round_("deposit 3 (A19)", [("moa", a19, "a19")])
    b.lookup("end", probe, f"at the end, after {b.pieces} pieces")
    b.lookup("end_unknown", [f"X{k:08d}" for k in range(LOOKUPS)], "of numbers never recorded, at the end")
    print("  its plan (SQLite): " + "; ".join(lookup_plan(b.rt, probe[0])))

    reads = []
    for i in random.Random(2).sample(range(n), min(n, b.args.reads)):
        found = b.rt.store.pieces_by_number(a4[i].number)
        if found:
            reads.append((b.tokens[a4[i].buyer_siret], found[0].id))
    answers = read_files(b.base, b.calls, reads)
    print(f"  buyers read {len(reads)} billing files: HTTP {dict(sorted(answers.items()))}")
    print("statuses at the end: " + "; ".join(
        f"{fw} " + ", ".join(f"{s} {c}" for s, c in sorted(st.items())) for fw, st in final_statuses(b.rt).items()
    ))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=10_000, help="works billing files (each with one A9 beside)")
    ap.add_argument("--lines", type=int, default=2, help="lines per piece")
    ap.add_argument("--clients", type=int, default=4, help="concurrent API client threads for the moves")
    ap.add_argument("--reads", type=int, default=500, help="billing files read through the API at the end")
    ap.add_argument("--workdir", type=Path, help="keep the data here (default: a temporary folder)")
    args = ap.parse_args(argv)
    if args.files < 1 or args.clients < 1:
        ap.error("--files and --clients must be positive")

    from relais import log

    log.configure("WARNING")
    tmp = tempfile.TemporaryDirectory(prefix="relais-circuits-")
    print(
        f"relais circuits benchmark: {args.files} billing files x 4 pieces (A4, A15, A19 + A9), {os.cpu_count()} CPUs"
    )
    b = Bench(args, args.workdir or Path(tmp.name))
    sampler = PeakSampler().__enter__()
    try:
        walk(b, args.files)
        assert b.server is not None
        server_peak = _peak_rss_mb(b.server.pid)
        b.server.terminate()
        b.server.wait(30)
        b.server = None
        sampler.__exit__(None, None, None)
        report(args.files, b.pieces, b.pipeline_s, b.calls, b.lookups, sampler.peak, server_peak)
        return 0
    finally:
        if b.server is not None:
            b.server.kill()
            b.server.wait()
        sampler.__exit__(None, None, None)
        b.rt.close()
        tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
