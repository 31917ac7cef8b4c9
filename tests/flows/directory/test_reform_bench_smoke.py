"""bench/directory_lookups.py runs small (2,000 lines): it imports, looks up and serves without error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench" / "directory_lookups.py"


def test_the_benchmark_runs_small(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--lines",
            "2000",
            "--lookups",
            "100",
            "--http-lookups",
            "30",
            "--home",
            str(tmp_path / "home"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=BENCH.parents[1],
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "routing look-up:" in out.stdout and "API GET directory-line:" in out.stdout and "peak RSS:" in out.stdout
