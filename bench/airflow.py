"""Drop zone -> return flow under the real Airflow scheduler, next to `relais run --watch` on the same input.

    python bench/airflow.py --runner airflow|cli [--db sqlite|postgres] burst [--singles 2000] [--zips 4 --zip-size 500]
    python bench/airflow.py --runner airflow|cli [--db sqlite|postgres] steady [--rate 10] [--seconds 60]

`burst` drops every file at once (one-invoice CII files and UBL zips) and times the last return
flow: seconds, files/s, invoices/s, incidents. `steady` drops one-invoice files at a steady rate
and reports the drop -> return flow latency (p50, p95, max; the return flow's write time minus the
drop time; `--latencies FILE` writes each one). Both report the runner's peak memory: the summed
RSS and PSS of its session's processes (the stack's components, task processes and validation
workers; or `relais run` and its workers). The runner starts in its own working folders: `airflow`
is the stack of scripts/airflow.sh (api-server, scheduler, dag-processor, LocalExecutor, continuous
DAG), `cli` is `relais run --watch --interval 0.5`. `--db postgres` puts Airflow's metadata DB and
Relais's store on PostgreSQL (127.0.0.1, database `test`). Files are taken once unchanged for 1 s,
as in production. Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_URL = os.environ.get("RELAIS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1/test")
VENV_BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Memory:
    """Peak of the summed RSS (and PSS, which counts a page shared by forked processes once) of the runner's
    processes: the Airflow stack's session (components, executor workers, task supervisors, tasks and
    their validation workers) or the `relais run` process group; sampled every 0.5 s."""

    def __init__(self) -> None:
        import threading

        self.session: int | None = None
        self.peak_rss = self.peak_pss = 0.0
        self.peak_procs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psutil

        if self.session is None:
            return
        rss = pss = 0
        procs = 0
        for p in psutil.process_iter():
            try:
                if os.getsid(p.pid) != self.session:
                    continue
                info = p.memory_full_info()
            except (psutil.Error, OSError):
                continue
            procs += 1
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
        self.peak_rss = max(self.peak_rss, rss / 1e6)
        self.peak_pss = max(self.peak_pss, pss / 1e6)
        self.peak_procs = max(self.peak_procs, procs)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return {
            "peak_rss_mb": round(self.peak_rss),
            "peak_pss_mb": round(self.peak_pss),
            "peak_processes": self.peak_procs,
        }


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW", "RELAIS_"))}
        self.env.update(
            AIRFLOW_HOME=str(work / "airflow"),
            RELAIS_HOME=str(work / "relais"),
            RELAIS_VENV_BIN=str(VENV_BIN),
            AIRFLOW__API__PORT=str(_free_port()),
            PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}",
            RELAIS_LOG_LEVEL="WARNING",
        )
        self.pg_db: str | None = None
        self.pg_schema: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.memory = Memory()

    # ---- set-up -------------------------------------------------------------------------

    def setup_db(self) -> None:
        if self.args.db != "postgres":
            return
        import sqlalchemy as sa

        self.pg_db = f"relais_bench_{uuid.uuid4().hex[:8]}"
        self.pg_schema = f"relais_b_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.pg_db}"'))
            conn.execute(sa.text(f'CREATE SCHEMA "{self.pg_schema}"'))
        admin.dispose()
        self.env.update(
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=PG_URL.rsplit("/", 1)[0] + f"/{self.pg_db}",
            RELAIS_DATABASE_URL=PG_URL,
            RELAIS_DATABASE_SCHEMA=self.pg_schema,
        )

    def drop_db(self) -> None:
        if not self.pg_db:
            return
        import sqlalchemy as sa

        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.pg_db}" WITH (FORCE)'))
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{self.pg_schema}" CASCADE'))
        admin.dispose()

    def relais(self, *args: str) -> None:
        subprocess.run([str(VENV_BIN / "relais"), *args], env=self.env, check=True, stdout=subprocess.DEVNULL)

    def prepare_home(self) -> None:
        from relais import generate as gen

        directory = self.work / "annuaire.json"
        directory.write_text(json.dumps(gen.directory_document(gen.sample_directory(), "bench")))
        self.relais("db", "upgrade")
        self.relais("directory", "import", str(directory))
        if self.args.rules:
            self.relais("rules", "install", str(self.args.rules))

    # ---- runners ------------------------------------------------------------------------

    def start(self) -> None:
        if self.args.runner == "airflow":
            subprocess.run(
                ["bash", str(ROOT / "scripts" / "airflow.sh"), "start"],
                env=self.env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            run_dir = Path(self.env["AIRFLOW_HOME"]) / "run"
            self.memory.session = int((run_dir / "stack.pgid").read_text())
            time.sleep(3)  # the dag-processor parses the DAG and the first run starts
        else:
            self.proc = subprocess.Popen(
                [str(VENV_BIN / "relais"), "run", "--watch", "--interval", "0.5", "-q"],
                env=self.env,
                start_new_session=True,
                stderr=subprocess.DEVNULL,
            )
            self.memory.session = self.proc.pid

    def stop(self) -> None:
        if self.args.runner == "airflow":
            subprocess.run(
                ["bash", str(ROOT / "scripts" / "airflow.sh"), "stop"], env=self.env, stdout=subprocess.DEVNULL
            )
        elif self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc = None

    # ---- input and observation ----------------------------------------------------------

    def inbox(self, partner: str) -> Path:
        path = Path(self.env["RELAIS_HOME"]) / "dropzones" / partner / "in"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def returns(self) -> dict[str, float]:
        """Return flows written so far: flow id -> write time."""
        out: dict[str, float] = {}
        for folder in (Path(self.env["RELAIS_HOME"]) / "dropzones").glob("*/out"):
            with os.scandir(folder) as it:
                for e in it:
                    if e.name.startswith("CR_"):
                        out[e.name.split("_")[1]] = e.stat().st_mtime
        return out

    def store_figures(self) -> dict[str, object]:
        from relais.compose import Runtime
        from relais.settings import Settings

        settings = Settings.from_env(
            self.env["RELAIS_HOME"],
            database_url=self.env.get("RELAIS_DATABASE_URL"),
            database_schema=self.env.get("RELAIS_DATABASE_SCHEMA"),
        )
        rt = Runtime.open(settings, migrate=False)
        try:
            flows = rt.store.list_flows(limit=1_000_000)
            return {
                "flows": len(flows),
                "names": {f.id: f.original_name for f in flows},
                "statuses": rt.store.status_counts(),
                "invoices": sum(f.invoice_count for f in flows),
            }
        finally:
            rt.close()


def _generate_singles(folder: Path, n: int, start: int) -> list[Path]:
    from relais import generate as gen

    return gen.write_batch(
        folder, "cii", n, 10, batch="none", recipients=gen.sample_directory(), seed=start, start=start
    )


def _drop(path: Path, inbox: Path) -> None:
    """Move a written file into an inbox as a partner's upload completes: it is new (mtime now), so the
    drop zone's 1 s stability rule applies as in production."""
    target = inbox / path.name
    path.rename(target)
    os.utime(target)


def burst(b: Bench) -> dict[str, object]:
    from relais import generate as gen

    a = b.args
    staged = b.work / "staged"
    singles = _generate_singles(staged / "singles", a.singles, 1) if a.singles else []
    zips = [
        p
        for i in range(a.zips)
        for p in gen.write_batch(
            staged / f"zip{i}",
            "ubl",
            a.zip_size,
            10,
            batch="zip",
            recipients=gen.sample_directory(),
            seed=100 + i,
            start=100_000 + i * a.zip_size,
        )
    ]
    files = singles + zips
    b.start()
    t0 = time.time()
    for i, path in enumerate(files):
        _drop(path, b.inbox("op-a" if i % 2 else "op-b"))
    deadline = t0 + a.timeout
    while len(b.returns()) < len(files) and time.time() < deadline:
        time.sleep(0.2)
    returned = b.returns()
    last = max(returned.values(), default=time.time())
    b.stop()
    figures = b.store_figures()
    seconds = last - t0
    incidents = figures["statuses"].get("IN_INCIDENTE", 0)  # type: ignore[union-attr]
    return {
        "scenario": "burst",
        "files": len(files),
        "singles": len(singles),
        "zips": len(zips),
        "invoices": figures["invoices"],
        "return_flows": len(returned),
        "seconds_to_last_return": round(seconds, 1),
        "files_per_s": round(len(files) / seconds, 1),
        "invoices_per_s": round(int(figures["invoices"]) / seconds, 1),
        "incidents": incidents,
        "statuses": figures["statuses"],
    }


def steady(b: Bench) -> dict[str, object]:
    a = b.args
    n = int(a.rate * a.seconds)
    files = _generate_singles(b.work / "staged", n, 1)
    b.start()
    dropped: dict[str, float] = {}
    t0 = time.time()
    for i, path in enumerate(files):
        due = t0 + i / a.rate
        if (pause := due - time.time()) > 0:
            time.sleep(pause)
        _drop(path, b.inbox("op-a" if i % 2 else "op-b"))
        dropped[path.name] = time.time()
    deadline = time.time() + a.timeout
    while len(b.returns()) < n and time.time() < deadline:
        time.sleep(0.2)
    returned = b.returns()
    b.stop()
    figures = b.store_figures()
    names = figures["names"]
    latencies = sorted(
        returned[fid] - dropped[names[fid]]
        for fid in returned  # type: ignore[index]
        if names.get(fid) in dropped
    )  # type: ignore[union-attr]
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else latencies * 99
    if a.latencies:  # every file's drop -> return flow seconds, one a line (bench/report.py plots them)
        Path(a.latencies).write_text("".join(f"{x:.3f}\n" for x in latencies))
    return {
        "scenario": "steady",
        "rate_per_s": a.rate,
        "files": n,
        "return_flows": len(returned),
        "latency_p50_s": round(statistics.median(latencies), 2) if latencies else None,
        "latency_p95_s": round(q[94], 2) if latencies else None,
        "latency_max_s": round(latencies[-1], 2) if latencies else None,
        "incidents": figures["statuses"].get("IN_INCIDENTE", 0),
    }  # type: ignore[union-attr]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runner", choices=["airflow", "cli"], default="airflow")
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--rules", type=Path, help="CEN rules folder to install (e.g. ../shared/corpus/schematron)")
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--keep", action="store_true", help="keep the working folder")
    sub = ap.add_subparsers(dest="scenario", required=True)
    bp = sub.add_parser("burst")
    bp.add_argument("--singles", type=int, default=2000)
    bp.add_argument("--zips", type=int, default=4)
    bp.add_argument("--zip-size", type=int, default=500)
    sp = sub.add_parser("steady")
    sp.add_argument("--rate", type=float, default=10.0)
    sp.add_argument("--seconds", type=float, default=60.0)
    sp.add_argument("--latencies", type=Path, help="write every file's drop -> return seconds to this file")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="relais-bench-airflow-"))
    b = Bench(args, work)
    try:
        b.setup_db()
        b.prepare_home()
        result = burst(b) if args.scenario == "burst" else steady(b)
    finally:
        b.stop()
        b.drop_db()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result.update(runner=args.runner, db=args.db, **b.memory.stop(), load=round(os.getloadavg()[0], 1))
    for k, v in result.items():
        print(f"{k:>24}: {v}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
