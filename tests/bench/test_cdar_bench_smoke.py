"""bench/cdar.py runs small (SQLite and PostgreSQL): CDAR out and in complete and print their figures.

Only that it completes and says what it measured: no timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_URL, require_pg

BENCH = Path(__file__).resolve().parents[2] / "bench" / "cdar.py"


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_the_cdar_benchmark_runs_small(tmp_path, db):
    args = ["--changes", "120", "--lines-per-message", "10", "--workdir", str(tmp_path / "work")]
    if db == "postgresql":
        require_pg()
        args += ["--db", PG_URL]
    out = subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=600, cwd=BENCH.parents[1]
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    for said in (
        "messages/s",
        "lines/s",
        "p50 ms",
        "p95 ms",
        "peak RSS MB",
        "out: write",
        "check (native)",
        "in: intake",
    ):
        assert said in text, text
    result = json.loads(text.strip().splitlines()[-1])
    assert result["db"] == db
    # every change reported as CDAR (12 messages of 10 lines, none refused) and every received line applied
    assert (result["out"]["messages"], result["out"]["lines"], result["out"]["not_sent"]) == (12, 120, 0)
    assert (result["in"]["messages"], result["in"]["applied"], result["in"]["flow_statuses"]) == (
        12,
        120,
        {"IN_INTEGRE": 12},
    )
    for part in ("out", "in"):
        assert {"messages_per_s", "lines_per_s", "p50_ms", "p95_ms", "peak_rss_mb"} <= set(result[part])


def test_saxon_checks_cdar_out(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--changes",
            "40",
            "--lines-per-message",
            "20",
            "--engine",
            "saxon",
            "--part",
            "out",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=BENCH.parents[1],
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "check (saxon)" in out.stdout
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert (result["out"]["messages"], result["out"]["not_sent"], "in" in result) == (2, 0, False)
