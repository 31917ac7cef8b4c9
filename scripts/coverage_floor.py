"""Coverage per folder, and the floor every module of the held packages must reach.

Reads coverage.py's JSON report (``coverage json``; scripts/test.sh writes var/coverage/coverage.json),
prints the statements and coverage of each folder, then every module of the held packages (flows/ and
validators/ by default) under the floor. Exits 1 when there is one, 2 when the report is unreadable.

    python scripts/coverage_floor.py var/coverage/coverage.json --floor 80 --hold flows --hold validators
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath


@dataclass(frozen=True)
class Module:
    path: str  # as in the report, relative to the project root, with forward slashes
    statements: int
    covered: int

    @property
    def percent(self) -> float:
        return 100.0 * self.covered / self.statements if self.statements else 100.0


def modules(report: dict) -> list[Module]:
    """The report's measured files (those with at least one statement)."""
    found = []
    for path, data in report["files"].items():
        summary = data["summary"]
        if summary["num_statements"]:
            posix = PurePosixPath(path.replace("\\", "/")).as_posix()
            found.append(Module(posix, summary["num_statements"], summary["covered_lines"]))
    return sorted(found, key=lambda m: m.path)


def folders(found: Iterable[Module]) -> dict[str, tuple[int, int]]:
    """(statements, covered) of each folder, its subfolders' modules included."""
    totals: dict[str, tuple[int, int]] = {}
    for module in found:
        for parent in PurePosixPath(module.path).parents:
            if str(parent) == ".":
                break
            statements, covered = totals.get(str(parent), (0, 0))
            totals[str(parent)] = (statements + module.statements, covered + module.covered)
    return dict(sorted(totals.items()))


def under_floor(found: Iterable[Module], hold: Sequence[str], floor: float) -> list[Module]:
    """Modules of the held folders whose coverage is below `floor` percent."""
    prefixes = tuple(h.rstrip("/") + "/" for h in hold)
    return [m for m in found if m.path.startswith(prefixes) and m.percent < floor]


def _percent(statements: int, covered: int) -> str:
    return f"{100.0 * covered / statements:5.1f} %" if statements else "    - "


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", help="coverage.py JSON report")
    parser.add_argument("--floor", type=float, default=80.0, help="lowest coverage of a held module, in percent")
    parser.add_argument("--hold", action="append", help="folder whose every module must reach the floor")
    args = parser.parse_args(argv)
    hold = args.hold or ["flows", "validators"]
    try:
        with open(args.report, encoding="utf-8") as f:
            report = json.load(f)
        found = modules(report)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"coverage_floor: unreadable report {args.report}: {e}", file=sys.stderr)
        return 2
    print(f"{'folder':<40} {'statements':>10} {'covered':>8}")
    for folder, (statements, covered) in folders(found).items():
        print(f"{folder:<40} {statements:>10} {_percent(statements, covered):>8}")
    statements, covered = sum(m.statements for m in found), sum(m.covered for m in found)
    print(f"{'TOTAL':<40} {statements:>10} {_percent(statements, covered):>8}")
    low = under_floor(found, hold, args.floor)
    if not low:
        print(f"every module of {', '.join(hold)} is at {args.floor:g} % or more")
        return 0
    print(f"{len(low)} module(s) of {', '.join(hold)} under {args.floor:g} %:", file=sys.stderr)
    for m in low:
        print(f"  {m.path:<50} {m.percent:5.1f} % ({m.covered}/{m.statements})", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
