#!/usr/bin/env bash
# Benchmark (not a test): the generated api as a gateway in front of Python, next to nginx
# doing the same job. Two projects fresh from the release `rspy new` (TCP and Unix-socket
# transport), their api built in release, one uvicorn worker per transport, nginx as a
# reverse proxy with upstream keepalive; wrk sends `GET /hello/python` to Python directly,
# through each api and through nginx, at 1 and 64 connections, and `GET /hello/rust` (served
# by the api itself) at 64. Prints throughput, p50/p99 latency, CPU time per proxied request
# (utime+stime from /proc) and whether each target is met:
#   via-api throughput >= nginx's; added p50 at 1 connection (via minus direct) <= nginx's;
#   CPU per proxied request <= nginx's; native route >= 10x the proxied one.
# Installs nginx, wrk, curl and python3-venv from Debian when missing (apt-get update once),
# Python packages into a venv of its own. All load goes through loopback; nginx and Python
# bind 127.0.0.1 (the apis bind 0.0.0.0, as they always do). The machine's other work moves
# single runs by more than the targets' margins, so every target is measured in ROUNDS rounds,
# taking turns, and the report gives medians over the rounds, and the rounds' own figures.
#   ROUNDS=5     rounds of every run          DURATION=4  seconds measured per run
#   WARMUP=1     seconds of warm-up before each run
#   BASE_PORT=18080  first of the six ports used (api tcp, api unix, nginx, python, and the
#                    two apis' metrics endpoints)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-common.sh

rounds=${ROUNDS:-5}
duration=${DURATION:-4}
warmup=${WARMUP:-1}
base_port=${BASE_PORT:-18080}
whole_numbers "ROUNDS=$rounds" "DURATION=$duration" "WARMUP=$warmup" "BASE_PORT=$base_port"
((duration > 0)) || { echo "error: DURATION must be at least 1" >&2; exit 2; }
((rounds > 0)) || { echo "error: ROUNDS must be at least 1" >&2; exit 2; }
api_tcp_port=$base_port
api_unix_port=$((base_port + 1))
nginx_port=$((base_port + 2))
python_port=$((base_port + 3))
metrics_tcp_port=$((base_port + 4))
metrics_unix_port=$((base_port + 5))

work=$(mktemp -d)
pids=() # every process started here; the trap stops them, last started first
declare -A pid # the same, by name
clean_up_on_exit

# --- Tools -------------------------------------------------------------------------------------
install_missing nginx wrk curl

# --- Build and generate ------------------------------------------------------------------------
cargo build --release --locked -p rspy --bin rspy
rspy=$PWD/target/release/rspy
# Different names, so both api binaries live side by side in the one shared target folder.
"$rspy" new "$work/gw-tcp" --python-port "$python_port" --vcs none >/dev/null
"$rspy" new "$work/gw-unix" --transport unix --vcs none >/dev/null
export CARGO_TARGET_DIR=$PWD/target/bench
for project in gw-tcp gw-unix; do
  cargo build --release --manifest-path "$work/$project/Cargo.toml" -p "$project-api"
done
api_tcp_bin=$CARGO_TARGET_DIR/release/gw-tcp-api
api_unix_bin=$CARGO_TARGET_DIR/release/gw-unix-api

# Both projects' Python sides are the same code: one venv with one of them installed.
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "$work/gw-tcp/python"
python=$work/venv/bin/python

# --- Start everything --------------------------------------------------------------------------
ports_free "$api_tcp_port" "$api_unix_port" "$nginx_port" "$python_port" "$metrics_tcp_port" \
  "$metrics_unix_port"
socket=$work/python.sock

# start NAME COMMAND...: runs it in the background, output to $work/NAME.log.
start() {
  local name=$1
  shift
  "$@" >"$work/$name.log" 2>&1 &
  pids+=("$!")
  pid[$name]=$!
}

# uvicorn as deploy/supervisord.conf runs it (one worker, no access log), the app's own
# request log at WARNING: the api logs at warn too, so neither side's logging is measured.
start python_tcp env -C "$work/gw-tcp/python" PYTHON_LOG_LEVEL=WARNING PYTHONUNBUFFERED=1 \
  "$python" -m uvicorn app.main:app --host 127.0.0.1 --port "$python_port" --no-access-log
start python_unix env -C "$work/gw-tcp/python" PYTHON_LOG_LEVEL=WARNING PYTHONUNBUFFERED=1 \
  "$python" -m uvicorn app.main:app --uds "$socket" --no-access-log
# The apis as they run in production, metrics endpoint included (each on a port of its own).
start api_tcp env PORT="$api_tcp_port" UPSTREAM_URL="http://127.0.0.1:$python_port" \
  METRICS_ADDR="127.0.0.1:$metrics_tcp_port" RUST_LOG=warn "$api_tcp_bin"
start api_unix env PORT="$api_unix_port" UPSTREAM_URL="unix:$socket" \
  METRICS_ADDR="127.0.0.1:$metrics_unix_port" RUST_LOG=warn "$api_unix_bin"

# nginx as the api's peer (see scripts/bench-common.sh). worker_processes auto (one per
# core, 2 here): the api also runs one worker thread per core (WORKERS unset), so each
# proxy may use the whole machine.
write_nginx_conf "$work/nginx" "$nginx_port" "$python_port" 'worker_processes auto;'
nginx_args=(-p "$work/nginx/" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf")
nginx "${nginx_args[@]}" -t -q
start nginx nginx "${nginx_args[@]}" -g 'daemon off;'

# wait_ok NAME CURL-ARGS...: until NAME answers 2xx (30 s at most; fails early if it exited).
wait_ok() {
  local name=$1 i
  shift
  for ((i = 0; i < 300; i++)); do
    curl -fsS -o /dev/null --max-time 1 "$@" 2>/dev/null && return 0
    kill -0 "${pid[$name]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "error: $name did not become ready; the end of its log:" >&2
  tail -n 20 "$work/$name.log" >&2
  exit 1
}
wait_ok python_tcp "http://127.0.0.1:$python_port/healthz"
wait_ok python_unix --unix-socket "$socket" http://localhost/healthz
wait_ok api_tcp "http://127.0.0.1:$api_tcp_port/readyz"
wait_ok api_unix "http://127.0.0.1:$api_unix_port/readyz"
wait_ok nginx "http://127.0.0.1:$nginx_port/hello/python"

# nginx's workers: the children of its master process.
nginx_pids=("${pid[nginx]}")
for stat in /proc/[0-9]*/stat; do
  { line=$(<"$stat"); } 2>/dev/null || continue
  read -ra fields <<<"${line##*) }"
  [[ ${fields[1]} == "${pid[nginx]}" ]] && nginx_pids+=("$(basename "$(dirname "$stat")")")
done

# --- Measure -----------------------------------------------------------------------------------
clk_tck=$(getconf CLK_TCK)

# cpu_ticks PID...: utime+stime summed over the processes (all their threads), in clock ticks.
cpu_ticks() {
  local total=0 pid line fields
  for pid in "$@"; do
    line=$(<"/proc/$pid/stat")
    read -ra fields <<<"${line##*) }" # fields[0] is field 3 (state); utime is 14, stime 15
    total=$((total + fields[11] + fields[12]))
  done
  echo "$total"
}

# to_ms VALUE: one of wrk's latencies (123.45us, 1.20ms, 2.00s, 1.00m) in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n *= 60000
    else if (v ~ /s$/) n *= 1000
    printf "%.3f", n }'
}

# per_request TICKS REQUESTS: CPU microseconds per request.
per_request() {
  awk -v t="$1" -v hz="$clk_tck" -v n="$2" 'BEGIN {printf "%.1f", n ? t / hz * 1e6 / n : 0}'
}

declare -A label conn rps p50 p99 requests errors cpu_proxy cpu_python
# run KEY ROUND LABEL URL CONNECTIONS [PROXY_PIDS...]: warm-up, then one measured wrk run; CPU
# time of the given proxy processes and of the uvicorn behind URL is read before and after it.
# The figures are kept under KEY#ROUND.
run() {
  local key=$1 round=$2 name=$3 target=$4 connections=$5
  shift 5
  local threads=$((connections < 2 ? 1 : 2)) python_pid out at=$key#$round
  python_pid=$([[ $key == *unix* ]] && echo "${pid[python_unix]}" || echo "${pid[python_tcp]}")
  out=$work/wrk-$key-$round.txt
  echo "round $round/$rounds: $name, $connections connection(s): ${warmup} s warm-up, ${duration} s measured" >&2
  if ((warmup > 0)); then
    wrk -t"$threads" -c"$connections" -d"${warmup}s" --timeout 5s "$target" >/dev/null
  fi
  local proxy_before=0 python_before
  (($#)) && proxy_before=$(cpu_ticks "$@")
  python_before=$(cpu_ticks "$python_pid")
  wrk -t"$threads" -c"$connections" -d"${duration}s" --timeout 5s --latency "$target" >"$out"
  local proxy_ticks=0 python_ticks
  (($#)) && proxy_ticks=$(($(cpu_ticks "$@") - proxy_before))
  python_ticks=$(($(cpu_ticks "$python_pid") - python_before))

  label[$key]=$name
  conn[$key]=$connections
  requests[$at]=$(awk '/ requests in / {print $1}' "$out")
  rps[$at]=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  p50[$at]=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
  p99[$at]=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
  errors[$at]=$(awk '/Socket errors:/ {gsub(",", ""); n += $4 + $6 + $8 + $10}
    /Non-2xx or 3xx responses:/ {n += $5} END {print n + 0}' "$out")
  cpu_proxy[$at]=$(per_request "$proxy_ticks" "${requests[$at]}")
  cpu_python[$at]=$(per_request "$python_ticks" "${requests[$at]}")
  if ((errors[$at] > 0)); then
    echo "warning: $name had ${errors[$at]} errors (socket errors or non-2xx answers)" >&2
  fi
}

# The four ways to Python, measured one after another at each number of connections, in the
# same cyclic order; each round starts one further along, so each goes first in turn.
ways=(direct api_tcp api_unix nginx)
declare -A url=(
  [direct]="http://127.0.0.1:$python_port/hello/python"
  [api_tcp]="http://127.0.0.1:$api_tcp_port/hello/python"
  [api_unix]="http://127.0.0.1:$api_unix_port/hello/python"
  [nginx]="http://127.0.0.1:$nginx_port/hello/python"
)
declare -A way_label=(
  [direct]='direct to Python (TCP)'
  [api_tcp]='via api (TCP)'
  [api_unix]='via api (Unix socket)'
  [nginx]='via nginx (TCP)'
)
declare -A way_pids=([direct]='' [api_tcp]="${pid[api_tcp]}" [api_unix]="${pid[api_unix]}"
  [nginx]="${nginx_pids[*]}")

# Other work on the machine shows in every figure: the load average is printed with them.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((round = 1; round <= rounds; round++)); do
  for c in 1 64; do
    for ((i = 0; i < ${#ways[@]}; i++)); do
      way=${ways[(i + round - 1) % ${#ways[@]}]}
      # Word splitting is wanted: nginx has several pids, direct none.
      # shellcheck disable=SC2086
      run "$way$c" "$round" "${way_label[$way]}" "${url[$way]}" "$c" ${way_pids[$way]}
    done
  done
  run native64 "$round" 'api native /hello/rust' "http://127.0.0.1:$api_tcp_port/hello/rust" 64 \
    "${pid[api_tcp]}"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- Report ------------------------------------------------------------------------------------
# calc EXPRESSION: awk arithmetic on the figures above, printed with up to 3 decimals.
calc() { awk "BEGIN {printf \"%.3f\", $1}" | sed -E 's/\.?0+$//'; }
# met EXPRESSION: yes or no.
met() { awk "BEGIN {print ($1) ? \"yes\" : \"no\"}"; }
# median DECIMALS VALUE...: the middle value (the mean of the two middle ones for an even
# count), with DECIMALS decimals at most.
median() {
  local decimals=$1
  shift
  printf '%s\n' "$@" | sort -g | awk -v d="$decimals" '{v[NR] = $1} END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.*f", d, m }' | sed -E '/\./s/\.?0+$//'
}
# over_rounds ARRAY KEY DECIMALS: the median of ARRAY[KEY#1..rounds].
over_rounds() {
  local -n figures=$1
  local values=() r
  for ((r = 1; r <= rounds; r++)); do values+=("${figures[$2#$r]}"); done
  median "$3" "${values[@]}"
}
# sum_rounds ARRAY KEY: the sum of ARRAY[KEY#1..rounds].
sum_rounds() {
  local -n figures=$1
  local total=0 r
  for ((r = 1; r <= rounds; r++)); do total=$((total + ${figures[$2#$r]})); done
  echo "$total"
}

keys=(direct1 api_tcp1 api_unix1 nginx1 direct64 api_tcp64 api_unix64 nginx64 native64)
for key in "${keys[@]}"; do
  requests[$key]=$(sum_rounds requests "$key")
  errors[$key]=$(sum_rounds errors "$key")
  rps[$key]=$(over_rounds rps "$key" 0)
  p50[$key]=$(over_rounds p50 "$key" 3)
  p99[$key]=$(over_rounds p99 "$key" 3)
  cpu_proxy[$key]=$(over_rounds cpu_proxy "$key" 1)
  cpu_python[$key]=$(over_rounds cpu_python "$key" 1)
done
# The p50 a proxy adds at 1 connection, in each round: its p50 minus direct's in that round.
declare -A added
for way in api_tcp api_unix nginx; do
  for ((r = 1; r <= rounds; r++)); do
    added[$way#$r]=$(calc "${p50[${way}1#$r]} - ${p50[direct1#$r]}")
  done
  added[$way]=$(over_rounds added "$way" 3)
done

# Read-only git plumbing: which source the projects were generated from.
if revision=$(git rev-parse --short HEAD 2>/dev/null); then
  revision="commit $revision"
  git diff-index --quiet HEAD -- template cli || revision+=" with uncommitted changes under template/ or cli/"
else
  revision="no git revision"
fi
machine_cpu=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
memory=$(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
os=$(awk -F= '$1 == "PRETTY_NAME" {gsub("\"", "", $2); print $2}' /etc/os-release)
wrk_version=$(wrk -v 2>&1 || true)
nginx_version=$(nginx -v 2>&1)
versions=$("$python" -c 'import importlib.metadata as m, sys
print("Python %s, uvicorn %s, FastAPI %s" % (sys.version.split()[0], m.version("uvicorn"), m.version("fastapi")))')

echo
echo "## Gateway benchmark"
echo
echo "Machine: $(nproc) cores ($machine_cpu), $memory, $os, kernel $(uname -r)."
echo "Tools: ${wrk_version%% Copyright*}, ${nginx_version#nginx version: }, $versions, $(rustc -V | cut -d' ' -f1-2)."
echo "Generated by: $("$rspy" --version), $revision."
echo "$rounds rounds; in each, every target once: ${warmup} s warm-up, then ${duration} s measured by"
echo "wrk (--latency; 1 thread at 1 connection, 2 at 64). The four ways to Python take turns at"
echo "going first. nginx: worker_processes auto ($(("${#nginx_pids[@]}" - 1)) workers)."
echo "Load average (1, 5, 15 min) before the runs: $load_before; after: $load_after."
echo
echo "Each figure is the median over the rounds; requests and errors are the totals."
echo
echo "| Target | Conn. | Requests | Throughput [req/s] | p50 [ms] | p99 [ms] | Errors | Proxy CPU [µs/req] | Python CPU [µs/req] |"
echo "|:---|---:|---:|---:|---:|---:|---:|---:|---:|"
for key in "${keys[@]}"; do
  proxy_cpu=${cpu_proxy[$key]}
  python_cpu=${cpu_python[$key]}
  ((conn[$key] == 1)) && proxy_cpu=- && python_cpu=-
  [[ $key == direct* ]] && proxy_cpu=-
  [[ $key == native* ]] && python_cpu=- # Python serves only the api's readiness probe then
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${label[$key]}" "${conn[$key]}" \
    "${requests[$key]}" "${rps[$key]}" "${p50[$key]}" "${p99[$key]}" "${errors[$key]}" \
    "$proxy_cpu" "$python_cpu"
done
echo
echo "Proxy CPU: utime+stime of the api process (all threads) or of nginx's master and workers,"
echo "during the measured run, divided by the requests wrk completed; Python CPU likewise for the"
echo "uvicorn process behind it. CPU is only measured at 64 connections."
echo
echo "The target figures round by round (api TCP / api Unix socket / nginx):"
echo
echo "| Round | Added p50 at 1 conn. [ms] | CPU per proxied request at 64 conn. [µs] | Throughput at 64 conn. [req/s] |"
echo "|---:|:---|:---|:---|"
for ((r = 1; r <= rounds; r++)); do
  echo "| $r | ${added[api_tcp#$r]} / ${added[api_unix#$r]} / ${added[nginx#$r]} |" \
    "${cpu_proxy[api_tcp64#$r]} / ${cpu_proxy[api_unix64#$r]} / ${cpu_proxy[nginx64#$r]} |" \
    "${rps[api_tcp64#$r]} / ${rps[api_unix64#$r]} / ${rps[nginx64#$r]} |"
done
echo
echo "The targets, on the medians:"
echo
echo "| Target | api (TCP) | api (Unix socket) | nginx | Met (TCP / Unix) |"
echo "|:---|---:|---:|---:|:---|"
for c in 1 64; do
  echo "| throughput at $c connection(s) >= nginx [req/s] | ${rps[api_tcp$c]} | ${rps[api_unix$c]} | ${rps[nginx$c]} |" \
    "$(met "${rps[api_tcp$c]} >= ${rps[nginx$c]}") / $(met "${rps[api_unix$c]} >= ${rps[nginx$c]}") |"
done
echo "| added p50 at 1 connection (via - direct) <= nginx's [ms] | ${added[api_tcp]} | ${added[api_unix]} | ${added[nginx]} |" \
  "$(met "${added[api_tcp]} <= ${added[nginx]}") / $(met "${added[api_unix]} <= ${added[nginx]}") |"
echo "| CPU per proxied request at 64 connections <= nginx's [µs] | ${cpu_proxy[api_tcp64]} | ${cpu_proxy[api_unix64]} | ${cpu_proxy[nginx64]} |" \
  "$(met "${cpu_proxy[api_tcp64]} <= ${cpu_proxy[nginx64]}") / $(met "${cpu_proxy[api_unix64]} <= ${cpu_proxy[nginx64]}") |"
ratio=$(calc "${rps[native64]} / ${rps[api_tcp64]}")
echo "| native /hello/rust >= 10x /hello/python via api (64 conn.) | ${ratio}x | | | $(met "$ratio >= 10") |"
echo
echo "Added p50 is the median over the rounds of each round's p50 via the proxy minus its p50"
echo "direct to Python. For the Unix-socket api, direct is over TCP (wrk cannot reach the"
echo "socket), so it also holds the difference between the two transports."
