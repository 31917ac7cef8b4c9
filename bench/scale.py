"""Scaling benchmark: 1, 2 and 4 `relais run` processes on PostgreSQL + S3, and the S3 archive's cost.

    python bench/scale.py                                   # 12 zips x 100 invoices; 2,000 x 8 KB; 4 x 64 MB
    python bench/scale.py --batches 4 --per-batch 20 --small 200 --large-mb 8 --large 2

Part 1 (workers): for each store (`--stores`: ``pg-s3``, PostgreSQL + the S3 archive; ``sqlite-folder``,
SQLite + the folder archive, the default home) and worker count, a fresh home; for ``pg-s3`` a private
schema of PostgreSQL (`--pg-url`, dropped afterwards) and a fresh prefix of an S3 bucket on a `weed mini`
this script starts on free 127.0.0.1 ports under a temporary folder (stopped afterwards). The same
N generated batches (relais.generate) are dropped into one partner's drop zone, then N
`relais run -q` processes (RELAIS_WORKERS=1 each: one validation worker) start at once over
that home; the time is from their start to the last one's exit. A last `relais run` checks
that nothing was left, and the store is checked: every flow closed, every delivery sent.
Peak RSS is the sum over the `relais run` processes and their validation workers. Each `relais run`
runs under bench/scale_probe.py, which times its claims, SQL round trips, archive calls, S3 requests and
dispatch: the line under each result says where the time goes (summed over the processes).

Part 2 (archive): put and get throughput (MB/s, objects/s) of `archive.LocalArchive` (a folder
under the temporary folder) and `archive.s3.S3Archive` (the same `weed mini`) for many small
objects and a few large ones; peak RSS of this process for the large ones (the S3 archive
spools to disk, so it should stay flat). The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from relais import s3local  # noqa: E402  # after the path is set

PG_URL = os.environ.get("RELAIS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1/test")
BUCKET = "relais-bench"


# ---- weed mini (relais/s3local.py, as the tests' `seaweedfs` fixture) --------------------------


def start_weed(root: Path) -> s3local.LocalS3:
    try:
        return s3local.start(root, access_key="relais-bench")
    except s3local.S3LocalError as e:
        raise SystemExit(f"bench/scale.py: {e}") from None


# ---- memory of a set of processes ------------------------------------------------------------


class TreeSampler:
    """Peak of the summed RSS of some processes and their children, sampled every 50 ms."""

    def __init__(self) -> None:
        import threading

        self.pids: list[int] = []
        self.peak = 0.0
        self.cpu: dict[int, float] = {}  # pid -> user + system CPU seconds, as last seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> float:
        import psutil

        total = 0
        for pid in list(self.pids):
            try:
                p = psutil.Process(pid)
                procs = [p, *p.children(recursive=True)]
            except psutil.Error:
                continue
            for q in procs:
                try:
                    total += q.memory_info().rss
                    t = q.cpu_times()
                    self.cpu[q.pid] = t.user + t.system
                except psutil.Error:
                    pass
        return total / 1e6

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(0.05)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _own_peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- part 1: N `relais run` processes ------------------------------------------------------


STORES = {"pg-s3": "PostgreSQL store + S3 archive", "sqlite-folder": "SQLite store + folder archive"}


def _breakdown(folder: Path) -> dict[str, dict[str, float]]:
    """The probes' figures (bench/scale_probe.py) summed over the processes of one run."""
    total: dict[str, dict[str, float]] = {}
    for f in folder.glob("*.json"):
        for k, v in json.loads(f.read_text()).items():
            row = total.setdefault(k, {"count": 0, "seconds": 0.0})
            row["count"] += v["count"]
            row["seconds"] = round(row["seconds"] + v["seconds"], 3)
    return total


def _breakdown_line(b: dict[str, dict[str, float]]) -> str:
    wall = b.get("wall", {}).get("seconds") or 0.0
    parts = []
    for k in (
        "claim",
        "sql",
        "archive_put",
        "archive_put_many",
        "archive_open",
        "archive_exists",
        "s3_request",
        "dispatch",
    ):
        if k in b:
            share = f" {100 * b[k]['seconds'] / wall:.0f}%" if wall else ""
            parts.append(f"{k} {int(b[k]['count'])} x {b[k]['seconds']:.2f} s{share}")
    return f"      where the time goes (summed over processes, {wall:.1f} process-s; overlapping): " + ", ".join(parts)


def run_workers(
    workers: int,
    batches: list[Path],
    invoices: int,
    directory_file: Path,
    work: Path,
    weed: s3local.LocalS3,
    store_kind: str = "pg-s3",
) -> dict:
    import sqlalchemy as sa

    from flows.store import Store
    from flows.store import tables as t

    pg = store_kind == "pg-s3"
    schema = f"relais_bench_{uuid.uuid4().hex[:12]}"
    eng = sa.create_engine(PG_URL)
    if pg:
        with eng.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    home = work / f"home-{store_kind}-{workers}"
    probe = work / f"probe-{store_kind}-{workers}"
    env = {
        **os.environ,
        "RELAIS_HOME": str(home),
        "RELAIS_STABLE_SECONDS": "0",
        "RELAIS_WORKERS": "1",
        "RELAIS_LOG_LEVEL": "WARNING",
    }
    for k in ("RELAIS_DATABASE_URL", "RELAIS_DATABASE_SCHEMA", "RELAIS_ARCHIVE_URL"):
        env.pop(k, None)
    if pg:
        env.update(
            **weed.env(),
            RELAIS_DATABASE_URL=PG_URL,
            RELAIS_DATABASE_SCHEMA=schema,
            RELAIS_ARCHIVE_URL=f"s3://{BUCKET}/scale-{workers}-{uuid.uuid4().hex[:8]}",
            RELAIS_ARCHIVE_RETENTION_YEARS="1",
        )
    relais = [sys.executable, "-m", "relais.cli"]
    try:
        subprocess.run([*relais, "directory", "import", str(directory_file)], env=env, check=True, cwd=ROOT)
        subprocess.run([*relais, "db", "upgrade"], env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        inbox = home / "dropzones" / "bench" / "in"
        inbox.mkdir(parents=True, exist_ok=True)
        old = time.time() - 60
        for b in batches:
            shutil.copyfile(b, inbox / b.name)
            os.utime(inbox / b.name, (old, old))
        probed = [sys.executable, str(ROOT / "bench" / "scale_probe.py")]
        with TreeSampler() as mem:
            t0 = time.perf_counter()
            procs = [
                subprocess.Popen([*probed, "run", "-q"], env={**env, "RELAIS_BENCH_PROBE": str(probe)}, cwd=ROOT)
                for _ in range(workers)
            ]
            mem.pids = [p.pid for p in procs]
            codes = [p.wait(timeout=3600) for p in procs]
            seconds = time.perf_counter() - t0
        cpu = sum(mem.cpu.values())
        subprocess.run([*relais, "run", "-q"], env=env, cwd=ROOT)  # whatever is left (should be nothing)
        url = PG_URL if pg else f"sqlite:///{home / 'relais.db'}"
        store = Store.open(url, schema=schema if pg else None)
        try:
            flows = store.list_flows(limit=len(batches) + 10)
            with store.engine.connect() as conn:
                o = t.outbox.c
                rows = conn.execute(sa.select(o.kind, o.status)).all()
            statuses: dict[str, int] = {}
            for f in flows:
                statuses[str(f.status)] = statuses.get(str(f.status), 0) + 1
            deliveries = sum(1 for r in rows if r.kind == "delivery")
            unsent = sum(1 for r in rows if r.status != "sent")
            left = len(list(inbox.iterdir()))
        finally:
            store.close()
        rate = invoices / seconds
        breakdown = _breakdown(probe)
        print(
            f"{store_kind:<13} {workers} x relais run  {seconds:8.2f} s {rate:8.1f} inv/s {mem.peak:8.0f} MB peak RSS"
            f" {cpu:6.1f} CPU-s ({cpu / seconds:4.2f} cores, load {os.getloadavg()[0]:.1f})   exits {codes},"
            f" flows {statuses}, {deliveries} deliveries, {unsent} unsent, {left} left in drop zone",
            flush=True,
        )
        print(_breakdown_line(breakdown), flush=True)
        return {
            "store": store_kind,
            "workers": workers,
            "seconds": round(seconds, 2),
            "invoices_per_s": round(rate, 1),
            "peak_rss_mb": round(mem.peak, 1),
            "cpu_seconds": round(cpu, 1),
            "load": round(os.getloadavg()[0], 1),
            "flows": len(flows),
            "deliveries": deliveries,
            "unsent": unsent,
            "exit_codes": codes,
            "breakdown": breakdown,
        }
    finally:
        if pg:
            with eng.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        eng.dispose()


# ---- part 2: the archives ------------------------------------------------------------------


def _rate(name: str, what: str, count: int, nbytes: int, seconds: float, peak: float | None) -> dict:
    mb_s = nbytes / 1e6 / seconds
    obj_s = count / seconds
    mem = f" {peak:8.0f} MB peak RSS" if peak is not None else ""
    print(f"{name:<6} {what:<24} {seconds:8.2f} s {mb_s:9.1f} MB/s {obj_s:9.1f} objects/s{mem}", flush=True)
    out = {"seconds": round(seconds, 3), "mb_per_s": round(mb_s, 1), "objects_per_s": round(obj_s, 1)}
    if peak is not None:
        out["peak_rss_mb"] = round(peak, 1)
    return out


def bench_archive(name: str, archive, small: int, small_kb: int, large: int, large_mb: int, work: Path) -> dict:
    result: dict[str, dict] = {}
    blobs = [secrets.token_bytes(small_kb * 1024) for _ in range(small)]
    t0 = time.perf_counter()
    shas = [archive.put_bytes(b).sha256 for b in blobs]
    result["small_put"] = _rate(
        name, f"put {small} x {small_kb} KB", small, small * small_kb * 1024, time.perf_counter() - t0, None
    )
    t0 = time.perf_counter()
    for sha, b in zip(shas, blobs, strict=True):
        assert archive.read(sha) == b
    result["small_get"] = _rate(
        name, f"get {small} x {small_kb} KB", small, small * small_kb * 1024, time.perf_counter() - t0, None
    )
    del blobs
    batch = [secrets.token_bytes(small_kb * 1024) for _ in range(small)]
    t0 = time.perf_counter()
    for i in range(0, small, 64):  # as intake takes a drop zone: 64 files at a time (connectors/folder)
        archive.put_many(batch[i : i + 64])
    result["small_put_many"] = _rate(
        name, f"put_many {small} x {small_kb} KB", small, small * small_kb * 1024, time.perf_counter() - t0, None
    )
    del batch

    src = work / f"large-{name}"
    src.mkdir(exist_ok=True)
    files = []
    chunk = 1 << 20
    for i in range(large):
        f = src / f"{i}.bin"
        with f.open("wb") as out:
            for _ in range(large_mb):
                out.write(secrets.token_bytes(chunk))
        files.append(f)
    total = large * large_mb * chunk
    _reset_peak()
    t0 = time.perf_counter()
    big = [archive.put_file(f).sha256 for f in files]
    result["large_put"] = _rate(
        name, f"put {large} x {large_mb} MB", large, total, time.perf_counter() - t0, _own_peak_mb()
    )
    for f in files:
        f.unlink()
    _reset_peak()
    t0 = time.perf_counter()
    for sha in big:
        with archive.open(sha) as fh:
            while fh.read(chunk):
                pass
    result["large_get"] = _rate(
        name, f"get {large} x {large_mb} MB", large, total, time.perf_counter() - t0, _own_peak_mb()
    )
    return result


# ---- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=12, help="zip batches dropped (default 12)")
    ap.add_argument("--per-batch", type=int, default=100, help="invoices per batch (default 100)")
    ap.add_argument("--lines", type=int, default=10)
    ap.add_argument("--syntax", choices=["ubl", "cii"], default="ubl")
    ap.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated (default 1,2,4)")
    ap.add_argument("--small", type=int, default=2000, help="small archive objects (default 2,000)")
    ap.add_argument("--small-kb", type=int, default=8, help="size of a small object in KB (default 8)")
    ap.add_argument("--large", type=int, default=4, help="large archive objects (default 4)")
    ap.add_argument("--large-mb", type=int, default=64, help="size of a large object in MB (default 64)")
    ap.add_argument(
        "--stores", default="pg-s3,sqlite-folder", help="stores compared in part 1 (default pg-s3,sqlite-folder)"
    )
    ap.add_argument("--skip-workers", action="store_true", help="only the archive part")
    ap.add_argument("--skip-archive", action="store_true", help="only the workers part")
    ap.add_argument("--pg-url", default=PG_URL, help="PostgreSQL (a private schema is created and dropped)")
    args = ap.parse_args(argv)
    globals()["PG_URL"] = args.pg_url

    from relais import log

    log.configure("WARNING")
    from archive import LocalArchive
    from archive.s3 import S3Archive
    from relais import generate as gen

    counts = [int(x) for x in args.workers.split(",") if x.strip()]
    invoices = args.batches * args.per_batch
    print(
        f"relais scale benchmark: {os.cpu_count()} CPUs; {args.batches} x {args.per_batch} {args.syntax} invoices "
        f"x {args.lines} lines; workers {counts}; archive {args.small} x {args.small_kb} KB, {args.large} x "
        f"{args.large_mb} MB",
        flush=True,
    )
    out: dict = {"cpus": os.cpu_count(), "invoices": invoices, "scale": [], "archive": {}}
    with tempfile.TemporaryDirectory(prefix="relais-scale-") as tmp:
        work = Path(tmp)
        weed = start_weed(work / "seaweedfs")
        try:
            if not args.skip_workers:
                recipients = gen.sample_directory()
                directory_file = work / "annuaire.json"
                directory_file.write_text(json.dumps(gen.directory_document(recipients, "bench")))
                batches: list[Path] = []
                for k in range(args.batches):
                    batches += gen.write_batch(
                        work / "batches",
                        args.syntax,
                        args.per_batch,
                        args.lines,
                        batch="zip",
                        recipients=recipients,
                        invalid_ratio=0.02,
                        misrouted_ratio=0.03,
                        seed=k + 1,
                        start=k * args.per_batch + 1,
                        name=f"b{k:03d}",
                    )
                stores = [k for k in args.stores.split(",") if k.strip()]
                for kind in stores:
                    print(f"-- workers: {STORES[kind]}, one shared home", flush=True)
                    rows = [run_workers(n, batches, invoices, directory_file, work, weed, kind) for n in counts]
                    base = rows[0]["invoices_per_s"] if rows else 0
                    for row in rows:
                        row["speedup"] = round(row["invoices_per_s"] / base, 2) if base else None
                    out["scale"] += rows
                by = {(r["store"], r["workers"]): r["invoices_per_s"] for r in out["scale"]}
                for n in counts:
                    if ("pg-s3", n) in by and ("sqlite-folder", n) in by:
                        gap = 1 - by[("pg-s3", n)] / by[("sqlite-folder", n)]
                        print(
                            f"       {n} x relais run: PostgreSQL + S3 is {100 * gap:5.1f} % slower than SQLite + folder"
                        )
                for kind in stores:
                    line = ", ".join(f"{r['workers']}: x{r['speedup']}" for r in out["scale"] if r["store"] == kind)
                    print(f"       {kind}: speed-up by processes {line}", flush=True)
            if not args.skip_archive:
                print("-- archive: LocalArchive vs S3Archive (weed mini on 127.0.0.1), one thread", flush=True)
                local = LocalArchive(work / "local-archive")
                out["archive"]["local"] = bench_archive(
                    "local", local, args.small, args.small_kb, args.large, args.large_mb, work
                )
                s3 = S3Archive(
                    BUCKET,
                    f"archive-{uuid.uuid4().hex[:8]}",
                    client=weed.client(attempts=3),
                    retention_years=1,
                    spool_dir=work / "spool",
                )
                out["archive"]["s3"] = bench_archive(
                    "s3", s3, args.small, args.small_kb, args.large, args.large_mb, work
                )
                for k in out["archive"]["local"]:
                    ratio = out["archive"]["local"][k]["mb_per_s"] / out["archive"]["s3"][k]["mb_per_s"]
                    print(f"       {k:<24} local is {ratio:6.1f} x faster than S3", flush=True)
        finally:
            weed.stop()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
