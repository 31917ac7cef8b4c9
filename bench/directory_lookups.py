"""The reform's directory at scale: import N generated lines (bulk, one transaction), then the routing
look-up (`Store.reform_lines` over a buyer's candidates, what the pipeline does per B2B invoice) and the
Directory Service's GET directory-line over real HTTP (uvicorn on 127.0.0.1): look-ups per second and
p50/p95/p99 latency, peak RSS. Figures are printed, never asserted (target: store p95 under 5 ms).

    python bench/directory_lookups.py                      # 1,000,000 lines, SQLite in a temporary home
    python bench/directory_lookups.py --lines 2000 --lookups 200
    RELAIS_DATABASE_URL=postgresql+psycopg://... python bench/directory_lookups.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.measure import PeakSampler
from flows.domain import reform_directory as rd
from flows.domain.reform_directory import Buyer, candidates, choose


def generate(n: int) -> list[rd.DirectoryLine]:
    """`n` lines: per SIREN, its SIREN line, two SIRET lines and one routing code line (a quarter of each)."""
    platforms = [rd.Platform(f"{p:04d}", f"PA {p}") for p in range(1, 40)]
    lines: list[rd.DirectoryLine] = []
    siren_n = 100000000
    while len(lines) < n:
        siren = f"{siren_n:09d}"
        siren_n += 1
        p = platforms[siren_n % len(platforms)]
        for a in (
            rd.Address(siren),
            rd.Address(siren, f"{siren}00011"),
            rd.Address(siren, f"{siren}00029"),
            rd.Address(siren, f"{siren}00011", "SERV-1"),
        ):
            lines.append(rd.DirectoryLine(a, p))
    return lines[:n]


def percentiles(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100)
    return f"p50 {q[49] * 1000:.3f} ms, p95 {q[94] * 1000:.3f} ms, p99 {q[98] * 1000:.3f} ms"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--lookups", type=int, default=5000)
    ap.add_argument("--http-lookups", type=int, default=1000)
    ap.add_argument("--home", type=Path, default=None)
    args = ap.parse_args(argv)

    import httpx

    from relais.compose import Runtime
    from relais.settings import Settings
    from tests.support.api_server import make_token, serving

    home = args.home or Path(tempfile.mkdtemp(prefix="relais-bench-dir-"))
    rt = Runtime.open(Settings.from_env(home))
    with PeakSampler() as rss:
        t0 = time.perf_counter()
        lines = generate(args.lines)
        t1 = time.perf_counter()
        rt.store.import_reform_directory(f"bench-{time.time_ns()}", "0" * 64, lines)
        t2 = time.perf_counter()
        print(
            f"import: {len(lines)} lines generated in {t1 - t0:.1f} s, stored in {t2 - t1:.1f} s "
            f"({len(lines) / (t2 - t1):,.0f} lines/s) on {rt.store.engine.dialect.name}"
        )
        rng = random.Random(7)
        today = dt.date.today()
        samples: list[float] = []
        for _ in range(args.lookups):
            ln = lines[rng.randrange(len(lines))]
            buyer = Buyer(ln.address.siren, ln.address.siret or f"{ln.address.siren}00037", "SERV-1")
            s = time.perf_counter()
            found = rt.store.reform_lines(candidates(buyer))
            choose(buyer, found, today, bool(found))
            samples.append(time.perf_counter() - s)
        print(f"routing look-up: {len(samples) / sum(samples):,.0f} look-ups/s, {percentiles(samples)}")
        token, _ = make_token(rt, "partner", partner="bench")
        http: list[float] = []
        with (
            serving(rt) as server,
            httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c,
        ):
            for _ in range(args.http_lookups):
                ident = lines[rng.randrange(len(lines))].identifier
                s = time.perf_counter()
                r = c.get(f"/directory-service/v1/directory-line/code:{ident}")
                http.append(time.perf_counter() - s)
                if r.status_code != 200:
                    print(f"unexpected answer {r.status_code}: {r.text[:200]}", file=sys.stderr)
                    return 1
        print(f"API GET directory-line: {len(http) / sum(http):,.0f} requests/s, {percentiles(http)}")
    print(f"peak RSS: {rss.peak:.0f} MB")
    rt.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
