"""scripts/coverage_floor.py on made-up coverage.py JSON reports: folder totals, the 80 % floor of the held
folders (flows/, validators/), and its exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "coverage_floor.py"


def _report(files: dict[str, tuple[int, int]]) -> dict:
    """A coverage.py JSON report: path -> (statements, covered lines)."""
    return {
        "meta": {"format": 3},
        "files": {
            path: {"summary": {"num_statements": n, "covered_lines": c, "percent_covered": 100.0 * c / n if n else 100}}
            for path, (n, c) in files.items()
        },
        "totals": {},
    }


def _run(tmp_path: Path, report: dict | str, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "coverage.json"
    path.write_text(report if isinstance(report, str) else json.dumps(report))
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(path), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_passes_when_every_held_module_reaches_the_floor(tmp_path):
    report = _report(
        {
            "flows/io/safexml.py": (100, 80),
            "flows/domain/model.py": (50, 50),
            "validators/runner.py": (10, 9),
            "relais/web/app.py": (200, 20),  # not held: low, but allowed
            "flows/__init__.py": (0, 0),  # no statement: not a module to judge
        }
    )
    done = _run(tmp_path, report)
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines() if line.strip()}
    assert lines["flows"] == ["150", "86.7", "%"]  # 130 of 150 statements, subfolders included
    assert lines["flows/io"] == ["100", "80.0", "%"]
    assert lines["relais/web"] == ["200", "10.0", "%"]
    assert lines["TOTAL"] == ["360", "44.2", "%"]  # 159 of 360


def test_fails_and_names_every_held_module_under_the_floor(tmp_path):
    report = _report(
        {
            "flows/io/safexml.py": (100, 79),
            "validators/pool/worker.py": (91, 13),
            "validators/runner.py": (10, 10),
            "archive/s3.py": (100, 0),
        }
    )
    done = _run(tmp_path, report)
    assert done.returncode == 1
    assert "2 module(s) of flows, validators under 80 %" in done.stderr
    assert "flows/io/safexml.py" in done.stderr and "79.0 % (79/100)" in done.stderr
    assert "validators/pool/worker.py" in done.stderr and "14.3 %" in done.stderr
    assert "archive/s3.py" not in done.stderr and "validators/runner.py" not in done.stderr


def test_floor_and_held_folders_are_arguments(tmp_path):
    report = _report({"flows/io/safexml.py": (100, 79), "archive/s3.py": (100, 50)})
    assert _run(tmp_path, report, "--floor", "75").returncode == 0
    held = _run(tmp_path, report, "--floor", "75", "--hold", "archive")
    assert held.returncode == 1 and "archive/s3.py" in held.stderr and "safexml" not in held.stderr


@pytest.mark.parametrize("content", ["not json", json.dumps({"totals": {}}), json.dumps({"files": {"a.py": {}}})])
def test_an_unreadable_report_is_an_error_not_a_pass(tmp_path, content):
    done = _run(tmp_path, content)
    assert done.returncode == 2 and "unreadable report" in done.stderr
