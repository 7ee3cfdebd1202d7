#!/usr/bin/env bash
# Benchmark (not a test): user-space instructions per proxied request, counted by valgrind's
# callgrind, which a busy machine does not change the way it changes time. Counts, for
# `GET /hello/python` at 1 connection in front of the same uvicorn:
#   nginx          as one process (master_process off), otherwise as in bench-gateway.sh;
#   hyper floor    bench/hyper-floor: hyper's server and client and nothing else;
#   + header timeout   the same with hyper's header read timeout, as the api sets it;
#   api            the generated api (TCP), release build, RUST_LOG=warn, metrics off.
# Each runs under callgrind with instrumentation off until it answers, switched on
# for DURATION seconds of wrk and off again before it stops, so start-up and shutdown are
# not counted. The total divided by the requests wrk completed (any error fails the run).
# Installs valgrind, nginx, wrk, curl and python3-venv from Debian when missing.
#   DURATION=15  seconds of load per target     BASE_PORT=18090  first of the three ports used
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-common.sh
export PATH=$PATH:/usr/sbin # nginx, for a user whose PATH lacks it

duration=${DURATION:-15}
base_port=${BASE_PORT:-18090}
whole_numbers "DURATION=$duration" "BASE_PORT=$base_port"
((duration > 0)) || { echo "error: DURATION must be at least 1" >&2; exit 2; }
proxy_port=$base_port
python_port=$((base_port + 1))
spare_port=$((base_port + 2)) # the api's metrics endpoint is off; only checked to be free

work=$(mktemp -d)
pids=() # every process started here; the trap stops them, last started first
clean_up_on_exit

install_missing valgrind nginx wrk curl
ports_free "$proxy_port" "$python_port" "$spare_port"

# --- Build -------------------------------------------------------------------------------------
cargo build --release --locked -p rspy --bin rspy
./target/release/rspy new "$work/gw-tcp" --python-port "$python_port" --vcs none >/dev/null
export CARGO_TARGET_DIR=$PWD/target/bench # shared with bench-gateway.sh
cargo build --release --manifest-path "$work/gw-tcp/Cargo.toml" -p gw-tcp-api
cargo build --release --locked --manifest-path bench/hyper-floor/Cargo.toml
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "$work/gw-tcp/python"

# --- Python ------------------------------------------------------------------------------------
env -C "$work/gw-tcp/python" PYTHON_LOG_LEVEL=WARNING PYTHONUNBUFFERED=1 "$work/venv/bin/python" \
  -m uvicorn app.main:app --host 127.0.0.1 --port "$python_port" --no-access-log \
  >"$work/python.log" 2>&1 &
pids+=("$!")
for ((i = 0; i < 300; i++)); do
  curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$python_port/healthz" 2>/dev/null && break
  sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$python_port/healthz" ||
  { echo "error: uvicorn did not start; its log:" >&2; cat "$work/python.log" >&2; exit 1; }

# nginx as in bench-gateway.sh (scripts/bench-common.sh), but one process, so callgrind
# sees all of its work.
write_nginx_conf "$work/nginx" "$proxy_port" "$python_port" \
  "worker_processes 1;"$'\n'"master_process off;"$'\n'"daemon off;"

# count NAME [VAR=VALUE...] PROGRAM [ARG...]: runs PROGRAM with those variables under callgrind
# on the proxy port, loads it, prints a row. (The variables go before valgrind: it would not
# follow `env` into the program.)
count() {
  local name=$1 out=$work/callgrind.out i requests total
  shift
  local vars=()
  while [[ $1 == *=* ]]; do
    vars+=("$1")
    shift
  done
  rm -f "$out"
  env "${vars[@]}" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
    "$@" >"$work/proxy.log" 2>&1 &
  local proxy=$!
  pids+=("$proxy")
  for ((i = 0; i < 600; i++)); do
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$proxy_port/hello/python" 2>/dev/null &&
      break
    kill -0 "$proxy" 2>/dev/null || break
    sleep 0.1
  done
  curl -fsS -o /dev/null "http://127.0.0.1:$proxy_port/hello/python" ||
    { echo "error: $name did not answer; its log:" >&2; tail -n 20 "$work/proxy.log" >&2; exit 1; }
  callgrind_control --instr=on "$proxy" >/dev/null 2>&1
  local load
  load=$(wrk -t1 -c1 -d"${duration}s" "http://127.0.0.1:$proxy_port/hello/python")
  callgrind_control --instr=off "$proxy" >/dev/null 2>&1
  kill -TERM "$proxy"
  wait "$proxy" 2>/dev/null || true
  if grep -Eq 'Non-2xx|Socket errors' <<<"$load"; then
    echo "error: $name answered with errors:" >&2
    echo "$load" >&2
    exit 1
  fi
  requests=$(awk '/ requests in / {print $1}' <<<"$load")
  # With instrumentation switched, `summary:` may read 0 and `totals:` hold the count.
  total=$(awk '/^(summary|totals):/ && $2 > t {t = $2} END {print t + 0}' "$out" 2>/dev/null ||
    true)
  [[ $total -gt 0 && $requests -gt 0 ]] || { echo "error: no count for $name" >&2; exit 1; }
  printf '| %s | %d | %d | %d |\n' "$name" "$requests" "$total" $((total / requests))
}

upstream=127.0.0.1:$python_port
echo
echo "| Proxy | Requests | Instructions | Per request |"
echo "|:---|---:|---:|---:|"
count "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///')" \
  nginx -p "$work/nginx/" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf"
count "hyper floor" FLOOR_LISTEN="127.0.0.1:$proxy_port" FLOOR_UPSTREAM="$upstream" \
  "$CARGO_TARGET_DIR/release/hyper-floor"
count "hyper floor + header read timeout" FLOOR_LISTEN="127.0.0.1:$proxy_port" \
  FLOOR_UPSTREAM="$upstream" FLOOR_HEADER_TIMEOUT=1 "$CARGO_TARGET_DIR/release/hyper-floor"
count "api (TCP), commit $(git rev-parse --short HEAD)" PORT="$proxy_port" WORKERS=2 \
  UPSTREAM_URL="http://$upstream" METRICS_ADDR=off RUST_LOG=warn \
  "$CARGO_TARGET_DIR/release/gw-tcp-api"
