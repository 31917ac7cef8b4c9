"""Memory does not grow with batch size (peak RSS of the real pipeline, in a fresh process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "pipeline.py"


def _peak(n: int, tmp_path: Path) -> float:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--invoices", str(n), "--lines", "2", "--syntax", "ubl",
         "--workdir", str(tmp_path / f"w{n}")],
        check=True, capture_output=True, text=True, timeout=600,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["invoices"] == n
    return result["peak_rss_mb"]


@pytest.mark.slow
def test_peak_memory_is_flat_in_batch_size(tmp_path):
    small, large = _peak(300, tmp_path), _peak(3000, tmp_path)
    # Ten times the invoices may not cost more than a few MB of extra resident memory.
    assert large < small + 25, (small, large)
