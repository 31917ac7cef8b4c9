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
peak RSS (this process, the validation workers and the API server) and the association lookup time
(``Store.pieces_by_number``, what the association does per piece) at the start, in the middle and at
the end: flat, as the lookups are indexed. The last line is JSON.

Parts of Relais that are not there yet are reported, not faked: a list that finds none of the pieces it
should (the circuit statuses, or actor tokens, not on this Relais), or a 404 on the billing files.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
    """Mean time of one association lookup (the recorded pieces with a number), in ms."""
    t0 = time.perf_counter()
    for number in numbers:
        rt.store.pieces_by_number(number)
    return (time.perf_counter() - t0) / max(1, len(numbers)) * 1000


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
        "association lookup: "
        + ", ".join(f"{k} {v:.3f} ms" for k, v in lookups.items())
        + f" ({lookups['end'] / lookups['start']:.1f}x from start to end)"
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

    from flows.directory import importer as directory
    from relais import generate as gen
    from relais import log
    from relais.compose import Runtime
    from relais.generate.circuits import circuit_set
    from relais.runner import run_once
    from relais.settings import Settings

    log.configure("WARNING")
    tmp = tempfile.TemporaryDirectory(prefix="relais-circuits-")
    work = args.workdir or Path(tmp.name)
    home = work / "home"
    url = f"sqlite:///{home / 'relais.db'}"
    env = {k: v for k, v in os.environ.items() if k != "RELAIS_DATABASE_SCHEMA"} | {"RELAIS_DATABASE_URL": url}
    settings = Settings.from_env(home, stable_seconds=0.0, database_url=url, max_invoices_per_flow=CHUNK)
    n = args.files
    print(f"relais circuits benchmark: {n} billing files x 4 pieces (A4, A15, A19 + A9), {os.cpu_count()} CPUs")
    rt = Runtime.open(settings)
    proc = None
    sampler = PeakSampler().__enter__()
    try:
        recipients = gen.sample_directory()
        dir_file = work / "annuaire.json"
        dir_file.write_text(json.dumps(gen.directory_document(recipients, "bench")))
        directory.import_file(rt.store, dir_file)

        t0 = time.perf_counter()
        works = circuit_set("works", n, args.lines, recipients, seed=1)
        sub = circuit_set("subcontract", n, args.lines, recipients, seed=1)
        a4, a15, a19 = (d.specs for d in works.deposits)
        a9 = sub.deposits[0].specs
        print(f"plan: {4 * n} pieces in {time.perf_counter() - t0:.1f} s")
        sample = random.Random(1).sample(range(n), min(n, LOOKUPS))
        probe = [a4[i].number for i in sample]  # numbers a later piece names in BT-25
        lookups = {"start": lookup_ms(rt, probe)}
        print(f"association lookup at the start: {lookups['start']:.3f} ms")

        pipeline_s = 0.0
        pieces = 0

        def round_(label: str, drops: list[tuple[str, Sequence, str]]) -> None:
            nonlocal pipeline_s, pieces
            count = sum(deposit(settings, partner, specs, work, name) for partner, specs, name in drops)
            t1 = time.perf_counter()
            flows = run_once(rt)
            seconds = time.perf_counter() - t1
            pipeline_s += seconds
            pieces += count
            statuses = sorted({str(f.status) for f in flows})
            print(f"{label}: {count} pieces in {len(flows)} flows, {seconds:.1f} s = {count / seconds:.0f} pieces/s "
                  f"({', '.join(statuses)})", flush=True)  # fmt: skip

        round_("deposit 1 (A4, A9)", [("titulaire", a4, "a4"), ("sous-traitant", a9, "a9")])
        lookups["middle"] = lookup_ms(rt, probe)
        print(f"association lookup after {2 * n} pieces: {lookups['middle']:.3f} ms")

        validators = {s for spec in a9 for role, s in spec.supporting if role == "VALIDEUR"}
        moes = {s for spec in a4 for role, s in spec.supporting if role == "MOE"}
        buyers = {spec.buyer_siret for spec in a4}
        tokens = tokens_for(rt, validators | moes | buyers)
        proc, base = _start_server(home, env)
        calls = Calls()

        def actors(status: str, moves: list[str], who: set[str], expected: int) -> None:
            t1 = time.perf_counter()
            found = list_and_act(base, calls, {s: tokens[s] for s in who}, status, moves, args.clients)
            seconds = time.perf_counter() - t1
            note = "" if found == expected else f" (expected {expected}: not on this Relais yet?)"
            print(f"  actors: {len(who)} list {status}: {found} pieces{note}; {', '.join(moves)} in {seconds:.1f} s")

        actors("A_VALIDER_1", ["VALIDEE_1"], validators, n)
        actors("MISE_A_DISPOSITION_MOE", ["PRISE_EN_COMPTE_MOE"], moes, n)
        round_("deposit 2 (A15)", [("moe", a15, "a15")])
        actors("MISE_A_DISPOSITION_MOA", ["PRISE_EN_COMPTE_MOA", "TRANSMISE_MOA"], buyers, n)
        round_("deposit 3 (A19)", [("moa", a19, "a19")])
        lookups["end"] = lookup_ms(rt, probe)
        print(f"association lookup at the end, after {pieces} pieces: {lookups['end']:.3f} ms")

        reads = []
        for i in sample[: args.reads]:
            found = rt.store.pieces_by_number(a4[i].number)
            if found:
                reads.append((tokens[a4[i].buyer_siret], found[0].id))
        answers = read_files(base, calls, reads)
        print(f"  buyers read {len(reads)} billing files: HTTP {dict(sorted(answers.items()))}")
        server_peak = _peak_rss_mb(proc.pid)
        proc.terminate()
        proc.wait(30)
        proc = None
        sampler.__exit__(None, None, None)

        report(n, pieces, pipeline_s, calls, lookups, sampler.peak, server_peak)
        return 0
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        sampler.__exit__(None, None, None)
        rt.close()
        tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
