#!/usr/bin/env bash
# Run Relais's DAG under a real Airflow 3 stack on this machine: api-server, scheduler and
# dag-processor (LocalExecutor, or CeleryExecutor with Celery workers), every server bound to
# 127.0.0.1, AIRFLOW_HOME inside the project.
#
#   scripts/airflow.sh env        print the settings as `export` lines:  eval "$(scripts/airflow.sh env)"
#   scripts/airflow.sh start      migrate Airflow's DB and Relais's store, start the stack in the background
#                                 (and RELAIS_CELERY_WORKERS Celery workers, default 0, with the CeleryExecutor)
#   scripts/airflow.sh workers N  start Celery workers 1..N on this machine (those not running yet)
#   scripts/airflow.sh stop       stop the whole stack and this machine's Celery workers (every process they started)
#   scripts/airflow.sh status     say whether it runs; exit 1 when it does not
#
# Anything already set in the environment wins (AIRFLOW_HOME, RELAIS_HOME, RELAIS_DATABASE_URL,
# AIRFLOW__DATABASE__SQL_ALCHEMY_CONN, AIRFLOW__CORE__PARALLELISM, AIRFLOW__API__PORT...).
# PostgreSQL as Airflow's metadata DB: set AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=postgresql+psycopg://...;
# the async URL Airflow also needs is derived from it (psycopg 3 serves both).
# Celery: RELAIS_AIRFLOW_EXECUTOR=CeleryExecutor (needs the PostgreSQL metadata DB), broker
# RELAIS_CELERY_BROKER (redis://127.0.0.1:6379/0, or amqp://guest:guest@127.0.0.1:5672/VHOST), result
# backend db+<the metadata DB URL>, queue AIRFLOW__OPERATORS__DEFAULT_QUEUE, AIRFLOW__CELERY__WORKER_CONCURRENCY
# task processes per worker (2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv_bin="${RELAIS_VENV_BIN:-$root/.venv/bin}"

export AIRFLOW_HOME="${AIRFLOW_HOME:-$root/var/airflow}"
export RELAIS_HOME="${RELAIS_HOME:-$root/var/relais}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$root/dags}"
export AIRFLOW__CORE__PLUGINS_FOLDER="${AIRFLOW__CORE__PLUGINS_FOLDER:-$root/dags/plugins}"  # the UI link to `relais web serve`
export AIRFLOW__CORE__LOAD_EXAMPLES="${AIRFLOW__CORE__LOAD_EXAMPLES:-False}"
export RELAIS_AIRFLOW_EXECUTOR="${RELAIS_AIRFLOW_EXECUTOR:-LocalExecutor}"
export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-$RELAIS_AIRFLOW_EXECUTOR}"
# LocalExecutor: one executor worker (~145 MB each) per `process` task the DAG runs at once (RELAIS_DAG_TASKS,
# default one per CPU): the DAG's runs go one at a time, so more would only wait, and each costs memory.
# CeleryExecutor: 4 (each Celery worker runs AIRFLOW__CELERY__WORKER_CONCURRENCY tasks on its host).
case "$AIRFLOW__CORE__EXECUTOR" in
  *CeleryExecutor*) export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}" ;;
  *) export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-${RELAIS_DAG_TASKS:-$(nproc)}}" ;;
esac
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="${AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION:-False}"
# A finished task frees its worker within ~1 s instead of ~5 s (shared/airflow-notes.md).
export AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL="${AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL:-1}"
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
export AIRFLOW__API__PORT="${AIRFLOW__API__PORT:-8080}"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-http://127.0.0.1:$AIRFLOW__API__PORT/execution/}"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS:-True}"  # local UI without login
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}"
case "$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in
  postgresql+psycopg://*)  # without it Airflow looks for asyncpg, which is not installed
    export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC:-$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN}" ;;
esac
celery=false
case "$AIRFLOW__CORE__EXECUTOR" in *CeleryExecutor*) celery=true ;; esac
if $celery; then
  export RELAIS_CELERY_BROKER="${RELAIS_CELERY_BROKER:-redis://127.0.0.1:6379/0}"
  export AIRFLOW__CELERY__BROKER_URL="${AIRFLOW__CELERY__BROKER_URL:-$RELAIS_CELERY_BROKER}"
  # Task states go back through the metadata DB (Celery's database result backend, SQLAlchemy URL).
  export AIRFLOW__CELERY__RESULT_BACKEND="${AIRFLOW__CELERY__RESULT_BACKEND:-db+$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN}"
  export AIRFLOW__OPERATORS__DEFAULT_QUEUE="${AIRFLOW__OPERATORS__DEFAULT_QUEUE:-default}"
  export AIRFLOW__CELERY__WORKER_CONCURRENCY="${AIRFLOW__CELERY__WORKER_CONCURRENCY:-2}"  # Celery's default is 16
  export RELAIS_CELERY_WORKERS="${RELAIS_CELERY_WORKERS:-0}"
fi
run_dir="$AIRFLOW_HOME/run"

# Live processes of the stack's session: the components and every task process (Airflow puts each
# task in a process group of its own, in the same session). Zombies left to a non-reaping init do not count.
alive() { ps -eo sid=,stat=,pid= | awk -v s="$1" '$1 == s && $2 !~ /^Z/ {print $3}'; }

# Celery workers 1..N of this machine, each in a session of its own (run/worker-K.pid is its session id),
# so that it can run without the rest of the stack (on a machine of its own) and is stopped whole.
start_workers() {
  $celery || { echo "Celery workers need RELAIS_AIRFLOW_EXECUTOR=CeleryExecutor" >&2; return 2; }
  mkdir -p "$run_dir"
  local k pid started=()
  for k in $(seq 1 "$1"); do
    if [ -f "$run_dir/worker-$k.pid" ] && [ -n "$(alive "$(cat "$run_dir/worker-$k.pid")")" ]; then continue; fi
    # --skip-serve-logs: the worker log server would listen on every interface; the task logs are in
    # AIRFLOW_HOME/logs, which the api-server reads (shared storage or remote logging across machines).
    # Started by a non-leader, setsid execs the worker itself: its pid is its session id.
    setsid "$venv_bin/airflow" celery worker --celery-hostname "relais-w$k@%h" \
      --queues "$AIRFLOW__OPERATORS__DEFAULT_QUEUE" --concurrency "$AIRFLOW__CELERY__WORKER_CONCURRENCY" \
      --skip-serve-logs --without-mingle --without-gossip \
      </dev/null >"$run_dir/worker-$k.log" 2>&1 &
    pid=$!
    echo "$pid" >"$run_dir/worker-$k.pid"
    started+=("$k")
  done
  for k in "${started[@]}"; do
    for _ in $(seq 1 120); do
      grep -q ' ready\.' "$run_dir/worker-$k.log" 2>/dev/null && break
      kill -0 "$(cat "$run_dir/worker-$k.pid")" 2>/dev/null || break
      sleep 0.5
    done
    if ! grep -q ' ready\.' "$run_dir/worker-$k.log" 2>/dev/null; then
      echo "celery worker $k did not come up; see $run_dir/worker-$k.log" >&2
      tail -20 "$run_dir/worker-$k.log" >&2 || true
      return 1
    fi
  done
  echo "celery workers up: ${#started[@]} started, queue $AIRFLOW__OPERATORS__DEFAULT_QUEUE on $AIRFLOW__CELERY__BROKER_URL"
}

# Every process of every worker session: the worker, its pool processes, their task supervisors and tasks
# (a task stops waiting for files on SIGTERM; Celery's warm shutdown lets the others end).
stop_workers() {
  local f sids=() s
  for f in "$run_dir"/worker-*.pid; do if [ -f "$f" ]; then sids+=("$(cat "$f")"); fi; done
  [ ${#sids[@]} -eq 0 ] && return 0
  workers_alive() { for s in "${sids[@]}"; do alive "$s"; done; }
  # shellcheck disable=SC2046
  kill -TERM $(workers_alive) 2>/dev/null || true
  for _ in $(seq 1 40); do [ -z "$(workers_alive)" ] && break; sleep 0.5; done
  # shellcheck disable=SC2046
  kill -KILL $(workers_alive) 2>/dev/null || true
  for _ in $(seq 1 20); do [ -z "$(workers_alive)" ] && break; sleep 0.5; done
  rm -f "$run_dir"/worker-*.pid
  echo "celery workers stopped (${#sids[@]})"
}

cmd="${1:-}"
case "$cmd" in
  env)
    for v in AIRFLOW_HOME RELAIS_HOME $(compgen -e | grep -E '^(AIRFLOW__|RELAIS_)' | grep -v '^RELAIS_HOME$' | sort); do
      printf 'export %s=%q\n' "$v" "${!v}"
    done
    ;;
  start)
    mkdir -p "$AIRFLOW_HOME" "$RELAIS_HOME" "$run_dir"
    if [ -f "$run_dir/stack.pgid" ] && [ -n "$(alive "$(cat "$run_dir/stack.pgid")")" ]; then
      echo "airflow stack already running (session $(cat "$run_dir/stack.pgid"))"; exit 0
    fi
    if $celery; then
      case "$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in
        sqlite*) echo "the CeleryExecutor needs Airflow's metadata DB on PostgreSQL (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN)" >&2; exit 2 ;;
      esac
    fi
    "$venv_bin/airflow" db migrate >"$run_dir/db-migrate.log" 2>&1 \
      || { tail -40 "$run_dir/db-migrate.log" >&2; exit 1; }
    "$venv_bin/relais" db upgrade
    # One session (and process group) for the three components and every task they start: `stop` signals it whole.
    # --skip-serve-logs: the api-server reads the task logs from AIRFLOW_HOME/logs on this machine, so the
    # worker log server (which would listen on every interface) is not started.
    # The api-server first, the scheduler only once it answers: tasks report to it from their first second, and
    # a task that cannot reach it fails after the SDK's few retries (a loaded machine starts it slowly).
    rm -f "$run_dir/scheduler.pid" "$run_dir/dag-processor.pid"
    setsid bash -c '
      "$0/airflow" api-server --host "$AIRFLOW__API__HOST" --port "$AIRFLOW__API__PORT" >"$1/api-server.log" 2>&1 &
      echo $! >"$1/api-server.pid"
      for _ in $(seq 1 240); do
        "$0/python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
          "http://$AIRFLOW__API__HOST:$AIRFLOW__API__PORT/api/v2/monitor/health" 2>/dev/null && break
        kill -0 "$(cat "$1/api-server.pid")" 2>/dev/null || exit 1
        sleep 0.5
      done
      "$0/airflow" scheduler --skip-serve-logs >"$1/scheduler.log" 2>&1 &
      echo $! >"$1/scheduler.pid"
      "$0/airflow" dag-processor >"$1/dag-processor.log" 2>&1 &
      echo $! >"$1/dag-processor.pid"
      wait' "$venv_bin" "$run_dir" </dev/null >/dev/null 2>&1 &
    echo $! >"$run_dir/stack.pgid"
    for _ in $(seq 1 150); do
      if [ -f "$run_dir/dag-processor.pid" ] && "$venv_bin/python" - <<EOF 2>/dev/null
import urllib.request
urllib.request.urlopen("http://$AIRFLOW__API__HOST:$AIRFLOW__API__PORT/api/v2/monitor/health", timeout=2)
EOF
      then
        echo "airflow stack up ($AIRFLOW__CORE__EXECUTOR): UI http://$AIRFLOW__API__HOST:$AIRFLOW__API__PORT, logs in $run_dir"
        if $celery && [ "$RELAIS_CELERY_WORKERS" -gt 0 ]; then start_workers "$RELAIS_CELERY_WORKERS" || exit 1; fi
        exit 0
      fi
      kill -0 "$(cat "$run_dir/stack.pgid")" 2>/dev/null || break
      sleep 1
    done
    echo "airflow stack did not come up; see $run_dir/*.log" >&2
    tail -20 "$run_dir"/api-server.log >&2 || true
    exit 1
    ;;
  stop)
    if [ -f "$run_dir/stack.pgid" ]; then
      sid=$(cat "$run_dir/stack.pgid")
      # The scheduler and dag-processor first: running tasks finish and report to the api-server,
      # which stops last.
      api=$(cat "$run_dir/api-server.pid" 2>/dev/null || echo none)
      # Everything but the wrapper shell and the api-server (with its children): scheduler, dag-processor,
      # executor workers and the task processes (a task stops waiting for files on SIGTERM).
      rest() { ps -eo sid=,stat=,pid=,ppid= | awk -v s="$sid" -v a="$api" \
                 '$1 == s && $2 !~ /^Z/ && $3 != s && $3 != a && $4 != a {print $3}'; }
      # shellcheck disable=SC2046
      kill -TERM $(rest) 2>/dev/null || true
      for _ in $(seq 1 40); do [ -z "$(rest)" ] && break; sleep 0.5; done
      stop_workers  # before the api-server: their running tasks report to it
      pkill -TERM -s "$sid" 2>/dev/null || true
      for _ in $(seq 1 20); do [ -z "$(alive "$sid")" ] && break; sleep 0.5; done
      pkill -KILL -s "$sid" 2>/dev/null || true
      for _ in $(seq 1 20); do [ -z "$(alive "$sid")" ] && break; sleep 0.5; done
      rm -f "$run_dir/stack.pgid"
      echo "airflow stack stopped"
    else
      stop_workers
      echo "airflow stack not running"
    fi
    ;;
  workers)
    [[ "${2:-}" =~ ^[0-9]+$ ]] || { echo "usage: scripts/airflow.sh workers N" >&2; exit 2; }
    start_workers "$2"
    ;;
  status)
    for f in "$run_dir"/worker-*.pid; do
      if [ -f "$f" ] && [ -n "$(alive "$(cat "$f")")" ]; then
        echo "celery $(basename "$f" .pid) running (session $(cat "$f"))"
      fi
    done
    if [ -f "$run_dir/stack.pgid" ] && [ -n "$(alive "$(cat "$run_dir/stack.pgid")")" ]; then
      echo "airflow stack running (session $(cat "$run_dir/stack.pgid"))"
    else
      echo "airflow stack not running"; exit 1
    fi
    ;;
  *)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
