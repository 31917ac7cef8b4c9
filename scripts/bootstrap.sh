#!/usr/bin/env bash
# Set up everything Relais needs on a fresh machine, then run a command in its venv.
#   scripts/bootstrap.sh demo   -> install Relais alone (no extras, no apt package) + `relais demo`
#   scripts/bootstrap.sh test   -> install everything + the whole test suite
#   scripts/bootstrap.sh        -> install everything only
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv="$root/.venv"
# One stamp per extras set: a demo install (no extras) does not pass for a full one, so
# `bootstrap.sh test` after `bootstrap.sh demo` installs the extras; a full install serves the demo.
stamp_all="$venv/.relais-installed"           # -e ".[dev,airflow,postgres]"
stamp_demo="$venv/.relais-installed-demo"     # -e .

if [ "${1:-}" != demo ]; then
  apt_packages=()
  # Debian packages the test suite and the README's walkthrough use (installed only when missing).
  for pkg in $(grep -v '^#' scripts/apt-packages.txt 2>/dev/null || true); do
    dpkg -s "$pkg" >/dev/null 2>&1 || apt_packages+=("$pkg")
  done
  if [ ${#apt_packages[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_packages[@]}"
  fi
fi

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ "$(cat "$stamp_all" 2>/dev/null)" != "$want" ]; then
  if [ "${1:-}" = demo ]; then
    if [ "$(cat "$stamp_demo" 2>/dev/null)" != "$want" ]; then
      "$venv/bin/pip" install -q --disable-pip-version-check -c constraints.txt -e .
      echo "$want" > "$stamp_demo"
    fi
  else
    "$venv/bin/pip" install -q --disable-pip-version-check -c constraints.txt -e ".[dev,airflow,postgres]"
    echo "$want" > "$stamp_all"
  fi
fi

export PATH="$venv/bin:$PATH"
export RELAIS_HOME="${RELAIS_HOME:-$root/var/relais}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$root/var/airflow}"

case "${1:-}" in
  "") ;;
  demo) shift; exec relais demo "$@" ;;
  test) shift; exec bash scripts/test.sh "$@" ;;
  *) exec "$@" ;;
esac
