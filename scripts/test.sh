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
set +e
python -m pytest -q -n "$workers" --dist loadgroup --durations=15 --doctest-modules \
  --ignore=flows/store/migrations flows validators relais archive connectors tests "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then echo "no tests were collected" >&2; exit 1; fi
exit "$rc"
