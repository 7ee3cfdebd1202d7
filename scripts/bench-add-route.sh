#!/usr/bin/env bash
# Benchmark (not a test): wall time of rspy's route commands on a generated project, build
# not included, measured by hyperfine in one run. Target: `rspy add-route` under 100 ms.
# Each run starts from the same tree (git restores it before every run).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
cargo build --release --locked -p rspy --bin rspy

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rspy=$PWD/target/release/rspy
"$rspy" new "$work/svc" >/dev/null
git -C "$work/svc" add -A
git -C "$work/svc" -c user.name=bench -c user.email=bench@localhost commit -qm generated
restore="git -C $work/svc checkout -q . && git -C $work/svc clean -qfd"

hyperfine --warmup 3 --runs "${RUNS:-30}" --export-markdown "$work/results.md" --prepare "$restore" \
  --command-name 'add-route --native' "$rspy -C $work/svc add-route GET /users/{id} --native" \
  --command-name 'add-route --proxy' "$rspy -C $work/svc add-route POST /reports --proxy --timeout 60000" \
  --command-name 'add-route --dry-run' "$rspy -C $work/svc add-route GET /users/{id} --native --dry-run" \
  --command-name 'routes' "$rspy -C $work/svc routes" \
  --command-name 'check' "$rspy -C $work/svc check"
echo
cat "$work/results.md"
