"""The small-file regime: N one-invoice files dropped at once, to their last return flow.

    python bench/smallfiles.py [--files 10000] [--runner cli|airflow|both] [--invalid-ratio 0.02]

`cli` runs `relais run` once (the CLI path, embedded SQLite store, files taken at once:
RELAIS_STABLE_SECONDS=0) on N CII files dropped before it starts; `airflow` drops the same
files into the drop zones of a running stack (scripts/airflow.sh: api-server, scheduler,
dag-processor, LocalExecutor, continuous DAG; files stable for 1 s as in production). For
each: files/s, seconds from the drop (cli: from the command's start) to the last return flow
written (cli: also the CPU seconds of `relais run` and its workers, which other load on the
machine does not change, and of `relais run` alone per file), and the peak RSS of every process of the run (the runner, its validation workers,
Airflow's processes and task workers: every process whose RELAIS_HOME is this run's).
With `--zip-size 500`, the cli run takes the same invoices in zips of 500 (the batch regime the
small files are compared with). With `--profile FILE`, the cli run is profiled (cProfile, in a child process). Last line: one
JSON object with the figures of each runner.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _load_bench_airflow():  # bench/airflow.py, by path: `import airflow` is the package
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_airflow", ROOT / "bench" / "airflow.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


Bench = _load_bench_airflow().Bench

VENV_BIN = Path(sys.executable).parent


class RunSampler:
    """Peak total RSS, sampled every 100 ms, of every process whose RELAIS_HOME is `home`."""

    def __init__(self, home: str) -> None:
        self.home = home
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._mine: dict[int, bool] = {}
        self.main_cpu_s = 0.0  # CPU of this process's own child (`relais run`), its workers left out

    def _total(self) -> float:
        import psutil

        total = 0
        for p in psutil.process_iter(["pid"]):
            try:
                mine = self._mine.get(p.pid)
                if mine is None:
                    mine = self._mine[p.pid] = p.environ().get("RELAIS_HOME") == self.home
                if mine:
                    total += p.memory_info().rss
                    if p.ppid() == os.getpid():
                        cpu = p.cpu_times()
                        self.main_cpu_s = max(self.main_cpu_s, cpu.user + cpu.system)
            except (psutil.Error, OSError):
                continue
        return total / 1e6

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self._total())
            self._stop.wait(0.1)

    def __enter__(self) -> RunSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _generate(folder: Path, n: int, invalid_ratio: float, zip_size: int = 0) -> list[Path]:
    from relais import generate as gen

    if zip_size:  # the same invoices (same plan), in zips of `zip_size`: the batch regime to compare with
        from relais.generate.batch import write_specs

        specs = list(gen.plan(n, 10, gen.sample_directory(), invalid_ratio, seed=7, start=1))
        return [
            p
            for k in range(0, n, zip_size)
            for p in write_specs(folder, "cii", specs[k : k + zip_size], "zip", f"cii-zip{k // zip_size:04d}")
        ]
    return gen.write_batch(
        folder,
        "cii",
        n,
        10,
        batch="none",
        recipients=gen.sample_directory(),
        invalid_ratio=invalid_ratio,
        seed=7,
        start=1,
    )


def _drop_all(b: Bench, files: list[Path], *, age: float) -> None:
    now = time.time() - age
    for i, path in enumerate(files):
        target = b.inbox("op-a" if i % 2 else "op-b") / path.name
        path.rename(target)
        os.utime(target, (now, now))


def _figures(b: Bench, n: int, t0: float, returned: dict[str, float], peak: float) -> dict[str, object]:
    last = max(returned.values(), default=time.time())
    seconds = max(last - t0, 1e-9)
    figures = b.store_figures()
    return {
        "files": n,
        "return_flows": len(returned),
        "seconds_to_last_return": round(seconds, 1),
        "files_per_s": round(n / seconds, 1),
        "peak_rss_mb": round(peak),
        "statuses": figures["statuses"],
        "invoices": figures["invoices"],
    }


def run_cli(args: argparse.Namespace, work: Path) -> dict[str, object]:
    b = Bench(argparse.Namespace(db="sqlite", rules=args.rules, runner="cli"), work)
    b.env["RELAIS_STABLE_SECONDS"] = "0"
    b.prepare_home()
    files = _generate(work / "staged", args.files, args.invalid_ratio, args.zip_size)
    _drop_all(b, files, age=5)
    argv = [str(VENV_BIN / "relais"), "run", "-q"]
    if args.profile:
        argv = [sys.executable, "-m", "cProfile", "-o", str(args.profile), str(VENV_BIN / "relais"), "run", "-q"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with RunSampler(b.env["RELAIS_HOME"]) as sampler:
        t0 = time.time()
        done = subprocess.run(argv, env=b.env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        wall = time.time() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = _figures(b, args.files, t0, b.returns(), sampler.peak_mb)
    result.update(
        runner="cli",
        command_seconds=round(wall, 1),
        cpu_seconds=round(cpu, 1),  # relais run and its validation workers: what the machine's load leaves out
        cpu_ms_per_file=round(1000 * cpu / args.files, 1),
        main_cpu_ms_per_file=round(1000 * sampler.main_cpu_s / args.files, 2),  # sampled: up to 100 ms short
        zip_size=args.zip_size,
        exit_code=done.returncode,
    )
    return result


def run_airflow(args: argparse.Namespace, work: Path) -> dict[str, object]:
    b = Bench(argparse.Namespace(db="sqlite", rules=args.rules, runner="airflow"), work)
    b.prepare_home()
    files = _generate(work / "staged", args.files, args.invalid_ratio)
    with RunSampler(b.env["RELAIS_HOME"]) as sampler:
        b.start()
        try:
            t0 = time.time()
            _drop_all(b, files, age=0)
            deadline = t0 + args.timeout
            while len(b.returns()) < len(files) and time.time() < deadline:
                time.sleep(0.5)
            returned = b.returns()
        finally:
            b.stop()
    result = _figures(b, args.files, t0, returned, sampler.peak_mb)
    result.update(runner="airflow")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--runner", choices=["cli", "airflow", "both"], default="both")
    ap.add_argument("--invalid-ratio", type=float, default=0.02)
    ap.add_argument("--zip-size", type=int, default=0, help="the same invoices in zips of this size (cli runner)")
    ap.add_argument("--rules", type=Path, help="CEN rules folder to install (e.g. ../shared/corpus/schematron)")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--profile", type=Path, help="cProfile output of the cli run")
    ap.add_argument("--keep", action="store_true", help="keep the working folders")
    args = ap.parse_args(argv)

    results = []
    for runner in ("cli", "airflow") if args.runner == "both" else (args.runner,):
        work = Path(tempfile.mkdtemp(prefix=f"relais-bench-small-{runner}-"))
        try:
            result = (run_cli if runner == "cli" else run_airflow)(args, work)
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        for k, v in result.items():
            print(f"{k:>24}: {v}", flush=True)
        results.append(result)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
