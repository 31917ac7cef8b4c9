"""Memory does not grow with batch size (peak RSS of the real pipeline, in a fresh process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "pipeline.py"


def _peak(n: int, tmp_path: Path) -> tuple[float, float]:
    out = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--invoices",
            str(n),
            "--lines",
            "2",
            "--syntax",
            "ubl",
            "--workdir",
            str(tmp_path / f"w{n}"),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["invoices"] == n
    return result["main_process_peak_rss_mb"], result["peak_rss_mb"]


@pytest.mark.slow
def test_peak_memory_is_flat_in_batch_size(tmp_path):
    (small, small_all), (large, large_all) = _peak(300, tmp_path), _peak(3000, tmp_path)
    # Ten times the invoices may not cost more than a few MB of extra memory in the flow's process...
    assert large < small + 25, (small, large)
    # ...and the validation workers (each judging a bounded window of documents) stay bounded too;
    # their allocator warms up over the first thousands of documents, hence the looser margin.
    assert large_all < small_all * 1.3, (small_all, large_all)
