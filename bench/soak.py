"""Soak: an hour of steady drops under the real scheduler, window by window: does anything drift or stay behind?

    python bench/soak.py                                   # 60 min, 20 one-invoice files/s + a zip of 500 a minute
    python bench/soak.py --minutes 6 --window 120 --rate 5 --zip-size 100     # a short proof run

The stack of bench/airflow.py (scripts/airflow.sh: api-server, scheduler, dag-processor, LocalExecutor, the
continuous DAG) over a fresh home whose store is a private schema of PostgreSQL (`--db sqlite` for the
embedded one). For `--minutes`, one-invoice CII files are dropped at `--rate` per second (spread over each
second, alternately into op-a's and op-b's drop zone, generated on the fly by relais.generate, every invoice
number new) and a zip of `--zip-size` UBL invoices every `--zip-every` seconds. Then the drops stop and the
run waits (at most `--drain` seconds) for the last return flow.

Per window of `--window` seconds: files dropped and return flows written in it; p50/p95/max drop -> return
flow of the one-invoice files dropped in it (the return flow's write time minus the drop time) and the
slowest zip; new incidents (IN_INCIDENTE flows); the peak RSS of every Relais and Airflow process (each
process whose RELAIS_HOME or AIRFLOW_HOME is this run's, by kind: scheduler, dag-processor, api-server, task,
validation worker...), sampled every 2 s; the store's size (PostgreSQL: the schema's relations; SQLite: the
file) and the archive's, and their growth.

Verdicts: no incident; p95 flat and RSS flat (no window more than 20 % above the first steady one: the
second window when there are three or more, else the first; windows where nothing was dropped, the
drain's, are left out of the p95 one); nothing left behind at the end (every dropped file has its return flow, the drop
zones are empty, no flow is still open). Printed as they come; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FLAT = 1.20  # no window more than 20 % above the first steady one
OPEN = ("IN_RECU", "IN_EN_ATTENTE_TRAITEMENT_CPP", "IN_EN_COURS_TRAITEMENT_CPP", "IN_EN_ATTENTE_RETRAITEMENT_CPP")


def _load_bench_airflow():  # bench/airflow.py, by path: `import airflow` is the package
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_airflow", ROOT / "bench" / "airflow.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- what runs ------------------------------------------------------------------------------------


def kind(cmdline: list[str]) -> str:
    """A process's kind, from its command line (Airflow's processes retitle themselves)."""
    text = " ".join(cmdline)
    for key, name in (
        ("validators.pool.worker", "validation worker"),
        ("LocalExecutor", "executor worker"),
        ("airflow worker --", "task"),
        ("supervisor", "task"),
        ("dag-processor", "dag-processor"),
        ("api_server", "api-server"),
        ("api-server", "api-server"),
        ("scheduler", "scheduler"),
        ("triggerer", "triggerer"),
        ("relais", "relais"),
    ):
        if key in text:
            return name
    return Path(cmdline[0]).name if cmdline else "?"


class Processes:
    """RSS of every process of this run, by kind: those whose RELAIS_HOME or AIRFLOW_HOME is this run's, and
    their descendants (a process that retitles itself, as Airflow's do, no longer shows its environment)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.homes = {("RELAIS_HOME", env["RELAIS_HOME"]), ("AIRFLOW_HOME", env["AIRFLOW_HOME"])}
        self._env: dict[int, bool] = {}

    def _by_env(self, p: Any) -> bool:
        if p.pid not in self._env:
            try:
                penv = p.environ()
                self._env[p.pid] = any(penv.get(a) == b for a, b in self.homes)
            except Exception:
                self._env[p.pid] = False
        return self._env[p.pid]

    def sample(self) -> dict[str, float]:
        import psutil

        procs = {}
        for p in psutil.process_iter(["pid", "ppid"]):
            procs[p.pid] = p
        mine: dict[int, bool] = {}

        def is_mine(pid: int, depth: int = 0) -> bool:
            if pid not in mine:
                p = procs.get(pid)
                if p is None or depth > 50:
                    return False
                mine[pid] = self._by_env(p) or is_mine(p.info["ppid"] or 0, depth + 1)
            return mine[pid]

        by: dict[str, float] = {}
        for pid, p in procs.items():
            try:
                if is_mine(pid):
                    k = kind(p.cmdline())
                    by[k] = by.get(k, 0.0) + p.memory_info().rss / 1e6
            except (psutil.Error, OSError):
                continue
        return by


def du_mb(path: Path) -> float:
    total = 0
    for folder, _, names in os.walk(path):
        for n in names:
            try:
                total += os.lstat(os.path.join(folder, n)).st_size
            except OSError:
                pass
    return total / 1e6


def store_mb(b: Any) -> float:
    if b.pg_schema:
        import sqlalchemy as sa

        eng = sa.create_engine(b.env["RELAIS_DATABASE_URL"])
        try:
            with eng.connect() as conn:
                q = sa.text(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s AND c.relkind IN ('r', 'm')"
                )
                return float(conn.execute(q, {"s": b.pg_schema}).scalar_one()) / 1e6
        finally:
            eng.dispose()
    db = Path(b.env["RELAIS_HOME"]) / "relais.db"
    return sum(p.stat().st_size for p in db.parent.glob("relais.db*") if p.is_file()) / 1e6 if db.exists() else 0.0


# ---- the figures ----------------------------------------------------------------------------------


def quantiles(xs: list[float]) -> tuple[float | None, float | None, float | None]:
    if not xs:
        return None, None, None
    xs = sorted(xs)
    p95 = statistics.quantiles(xs, n=100)[94] if len(xs) >= 2 else xs[0]
    return round(statistics.median(xs), 2), round(p95, 2), round(xs[-1], 2)


def steady_index(n: int) -> int:
    """The first steady window: the second when there are three or more (the first warms up), else the first."""
    return 1 if n >= 3 else 0


def flat(values: list[float | None], limit: float = FLAT) -> tuple[bool, float | None]:
    """Whether no value is more than `limit` times the first steady one; that reference."""
    if not values:
        return False, None
    ref = values[steady_index(len(values))]
    if ref is None:
        return False, None
    return all(v is not None and v <= ref * limit for v in values[steady_index(len(values)) :]), ref


def verdicts(windows: list[dict[str, Any]], end: dict[str, Any]) -> dict[str, bool]:
    p95s = [w["p95_s"] for w in windows if w["files_in"]]  # the drain's windows drop nothing
    rss = [w["rss_mb"] for w in windows]
    return {
        "no_incident": end["incidents"] == 0,
        "p95_flat": flat(p95s)[0],
        "rss_flat": flat(rss)[0],
        "nothing_left_behind": end["missing_returns"] == 0 and end["left_in_dropzones"] == 0 and end["open_flows"] == 0,
    }


# ---- the run --------------------------------------------------------------------------------------


class Feeder:
    """One-invoice files and zips generated just ahead of their drop, every invoice number new."""

    def __init__(self, staged: Path, rate: int, zip_size: int) -> None:
        self.staged, self.rate, self.zip_size = staged, rate, zip_size
        self.singles: deque[Path] = deque()
        self.chunk = 0
        self.zips = 0

    def single(self) -> Path:
        from relais import generate as gen

        if not self.singles:
            self.chunk += 1
            self.singles.extend(
                gen.write_batch(
                    self.staged / f"s{self.chunk}",
                    "cii",
                    max(self.rate, 1),
                    10,
                    batch="none",
                    recipients=gen.sample_directory(),
                    seed=self.chunk,
                    start=1 + (self.chunk - 1) * max(self.rate, 1),
                )
            )
        return self.singles.popleft()

    def zip(self) -> Path:
        from relais import generate as gen

        self.zips += 1
        [path] = gen.write_batch(
            self.staged / f"z{self.zips}",
            "ubl",
            self.zip_size,
            10,
            batch="zip",
            recipients=gen.sample_directory(),
            seed=10_000 + self.zips,
            start=50_000_000 + self.zips * self.zip_size,
            name=f"soak-zip-{self.zips:04d}",
        )
        return path


def soak(b: Any, a: argparse.Namespace) -> dict[str, Any]:
    drop = _load_bench_airflow()._drop
    feeder = Feeder(b.work / "staged", a.rate, a.zip_size)
    procs = Processes(b.env)
    dropped: dict[str, float] = {}  # file name -> drop time
    zips: set[str] = set()
    windows: list[dict[str, Any]] = []
    archive = Path(b.env["RELAIS_HOME"]) / "archive"
    sizes = {"store_mb": store_mb(b), "archive_mb": du_mb(archive)}
    b.start()
    t0 = time.time()
    end = t0 + a.minutes * 60
    next_single, next_zip, next_sample = t0, t0, t0
    window_start = t0
    rss: dict[str, float] = {}
    i = 0
    print(
        f"-- soak started at {time.strftime('%H:%M:%S')}: {a.minutes} min, {a.rate} files/s + a zip of {a.zip_size} "
        f"every {a.zip_every:.0f} s, windows of {a.window:.0f} s",
        flush=True,
    )
    prev_incidents = 0
    while True:
        now = time.time()
        feeding = now < end
        if feeding and a.rate and now >= next_single:
            path = feeder.single()
            drop(path, b.inbox("op-a" if i % 2 else "op-b"))
            dropped[path.name] = time.time()
            i += 1
            next_single += 1 / a.rate
        if feeding and a.zip_size and now >= next_zip:
            path = feeder.zip()
            drop(path, b.inbox("op-a"))
            dropped[path.name] = time.time()
            zips.add(path.name)
            next_zip += a.zip_every
        if now >= next_sample:
            for k, v in procs.sample().items():
                rss[k] = max(rss.get(k, 0.0), v)
            next_sample = now + 2
        returned_all = None
        if not feeding:
            returned_all = len(b.returns()) >= len(dropped) or now >= end + a.drain
        if now >= window_start + a.window or returned_all:
            w = close_window(b, t0, windows, window_start, now, dropped, zips, rss, sizes, prev_incidents)
            prev_incidents += w["incidents"]
            print(json.dumps(w), flush=True)
            window_start, rss = now, {}
            if returned_all:
                break
        wake = min(next_single, now + 0.2) if feeding and a.rate else now + 0.2
        time.sleep(max(0.0, wake - time.time()))
    b.stop()
    figures = b.store_figures()
    statuses = figures["statuses"]
    returned = b.returns()
    names = figures["names"]
    for w in windows:  # again with every return flow: those of a window's last drops came after it closed
        w.update(latencies(w["_start"], w["_end"], dropped, zips, names, returned))
        w["files_out"] = sum(1 for t in returned.values() if w["_start"] <= t < w["_end"])
    returned_names = {names.get(fid) for fid in returned}
    left = sum(1 for z in Path(b.env["RELAIS_HOME"], "dropzones").glob("*/in") for _ in z.iterdir())
    final = {
        "dropped": len(dropped),
        "returned": len(returned),
        "missing_returns": sum(1 for n in dropped if n not in returned_names),
        "left_in_dropzones": left,
        "open_flows": sum(statuses.get(s, 0) for s in OPEN),
        "incidents": statuses.get("IN_INCIDENTE", 0),
        "statuses": statuses,
        "invoices": figures["invoices"],
        "seconds": round(time.time() - t0),
    }
    return {"windows": windows, "end": final, "verdicts": verdicts(windows, final)}


def close_window(
    b: Any,
    t0: float,
    windows: list[dict[str, Any]],
    start: float,
    now: float,
    dropped: dict[str, float],
    zips: set[str],
    rss: dict[str, float],
    sizes: dict[str, float],
    prev_incidents: int,
) -> dict[str, Any]:
    figures = b.store_figures()
    names, returned = figures["names"], b.returns()
    store, arch = store_mb(b), du_mb(Path(b.env["RELAIS_HOME"]) / "archive")
    w = {
        "window": len(windows) + 1,
        "from_s": round(start - t0),
        "seconds": round(now - start),
        "files_in": sum(1 for t in dropped.values() if start <= t < now),
        "files_out": sum(1 for t in returned.values() if start <= t < now),
        **latencies(start, now, dropped, zips, names, returned),  # so far: the end of the run counts them again
        "incidents": figures["statuses"].get("IN_INCIDENTE", 0) - prev_incidents,
        "rss_mb": round(sum(rss.values())),
        "rss_by_kind_mb": {k: round(v) for k, v in sorted(rss.items()) if v >= 1},  # zombies left out
        "store_mb": round(store, 1),
        "store_growth_mb": round(store - sizes["store_mb"], 1),
        "archive_mb": round(arch, 1),
        "archive_growth_mb": round(arch - sizes["archive_mb"], 1),
    }
    sizes.update(store_mb=store, archive_mb=arch)
    windows.append({**w, "_start": start, "_end": now})
    return w


def latencies(
    start: float,
    end: float,
    dropped: dict[str, float],
    zips: set[str],
    names: dict[str, str],
    returned: dict[str, float],
) -> dict[str, Any]:
    """Drop -> return flow of the files dropped in [start, end): one-invoice files' p50/p95/max, the slowest zip."""
    lat, zip_lat = [], []
    for fid, at in returned.items():
        name = names.get(fid)
        if name in dropped and start <= dropped[name] < end:
            (zip_lat if name in zips else lat).append(at - dropped[name])
    p50, p95, top = quantiles(lat)
    return {
        "p50_s": p50,
        "p95_s": p95,
        "max_s": top,
        "zips_returned": len(zip_lat),
        "zip_max_s": round(max(zip_lat), 1) if zip_lat else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--window", type=float, default=300.0, help="seconds per window (default 300)")
    ap.add_argument("--rate", type=int, default=20, help="one-invoice files per second (default 20)")
    ap.add_argument("--zip-size", type=int, default=500, help="invoices per zip (0: no zips)")
    ap.add_argument("--zip-every", type=float, default=60.0, help="seconds between zips (default 60)")
    ap.add_argument("--drain", type=float, default=600.0, help="seconds to wait for the last return flows")
    ap.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument("--rules", type=Path, help="CEN rules folder to install (e.g. ../shared/corpus/schematron)")
    ap.add_argument("--keep", action="store_true", help="keep the working folder")
    a = ap.parse_args(argv)
    Bench = _load_bench_airflow().Bench
    work = Path(tempfile.mkdtemp(prefix="relais-soak-"))
    b = Bench(argparse.Namespace(db=a.db, rules=a.rules, runner="airflow"), work)
    try:
        b.setup_db()
        b.prepare_home()
        result = soak(b, a)
    finally:
        b.stop()
        b.drop_db()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    for w in result["windows"]:
        w.pop("_start", None)
        w.pop("_end", None)
    result.update(
        minutes=a.minutes, rate=a.rate, zip_size=a.zip_size, zip_every=a.zip_every, db=a.db, cpus=os.cpu_count()
    )
    print(f"-- end: {json.dumps(result['end'])}")
    for k, ok in result["verdicts"].items():
        print(f"   {k:<22} {'yes' if ok else 'NO'}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
