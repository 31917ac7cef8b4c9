#!/usr/bin/env bash
# The whole test suite (run inside the project's venv by scripts/bootstrap.sh test).
set -euo pipefail
cd "$(dirname "$0")/.."
export RELAIS_LOG_LEVEL="${RELAIS_LOG_LEVEL:-WARNING}"
workers="${RELAIS_TEST_WORKERS:-$(python -c 'import os; print(max(2, os.cpu_count() or 2))')}"
# The ecosystem's standard checks first (seconds): lint, format, types, architecture contracts.
python -m ruff check .
python -m ruff format --check .
python -m mypy
lint-imports --no-cache
# Coverage of flows, validators, archive, connectors, relais and dags ([tool.coverage.*] in pyproject.toml),
# subprocesses included (validation workers, `relais` CLI runs); RELAIS_COVERAGE=0 runs without it.
coverage_args=()
if [ "${RELAIS_COVERAGE:-1}" != 0 ]; then
  rm -rf var/coverage && mkdir -p var/coverage
  coverage_args=(--cov --cov-report=term --cov-report=json:var/coverage/coverage.json)
fi
set +e
python -m pytest -q -n "$workers" --dist loadgroup --durations=15 --doctest-modules "${coverage_args[@]}" \
  --ignore=flows/store/migrations flows validators relais archive connectors tests "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then echo "no tests were collected" >&2; exit 1; fi
if [ "$rc" = 0 ] && [ ${#coverage_args[@]} -gt 0 ]; then
  # Totals per folder; every module of flows/ and validators/ at 80 % or more. A run narrowed by
  # arguments (a file, -k, -m) measures only part of the suite: it prints the figures, it does not judge them.
  floor_rc=0
  python scripts/coverage_floor.py var/coverage/coverage.json --floor 80 --hold flows --hold validators || floor_rc=$?
  if [ $# = 0 ]; then rc=$floor_rc; fi
fi
exit "$rc"
