#!/usr/bin/env bash
# Benchmark (not a test): wall time of `rspy new` next to cargo-generate rendering the same
# template folder, both release builds of the same cargo-generate library, measured in one
# run by hyperfine. Target: `rspy new` under 200 ms.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
cargo build --release --locked -p rspy --bin rspy --example cargo-generate

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rspy=$PWD/target/release/rspy
generate=$PWD/target/release/examples/cargo-generate
export CARGO_NAME=bench

hyperfine --warmup 3 --runs "${RUNS:-30}" --export-markdown "$work/results.md" \
  --prepare "rm -rf $work/out && mkdir -p $work/out" \
  --command-name 'rspy new (git)' "$rspy new $work/out/svc" \
  --command-name 'rspy new --vcs none' "$rspy new $work/out/svc --vcs none" \
  --command-name 'cargo-generate --path template' \
  "$generate generate --path $PWD/template --name svc --destination $work/out --vcs none --silent"
echo
cat "$work/results.md"
