"""Generation benchmark: how fast `relais generate` writes invoices (moved here from the test suite, where a
speed bound inside a functional test was a flaky check rather than a measure).

    python bench/generate.py [--invoices 10000] [--lines 10] [--syntax ubl|cii]

Generates the invoices in memory (`relais.generate.invoice_xml` over `plan`) and prints the figures; last
line, JSON: {"invoices", "lines", "syntax", "seconds", "invoices_per_s", "mb"}. About a second for 10,000
UBL invoices of 10 lines on a laptop.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relais.generate import invoice_xml, plan, sample_directory


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--invoices", type=int, default=10_000)
    ap.add_argument("--lines", type=int, default=10)
    ap.add_argument("--syntax", choices=("ubl", "cii"), default="ubl")
    a = ap.parse_args(argv)
    directory = sample_directory()
    t0 = time.perf_counter()
    total = sum(len(invoice_xml(a.syntax, s)) for s in plan(a.invoices, a.lines, directory, seed=9))
    seconds = time.perf_counter() - t0
    figures = {
        "invoices": a.invoices,
        "lines": a.lines,
        "syntax": a.syntax,
        "seconds": round(seconds, 2),
        "invoices_per_s": round(a.invoices / seconds),
        "mb": round(total / 1e6, 1),
    }
    print(f"{a.invoices} {a.syntax} invoices x {a.lines} lines: {seconds:.2f} s, {figures['mb']} MB", flush=True)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
