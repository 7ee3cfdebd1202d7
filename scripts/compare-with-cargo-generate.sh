#!/usr/bin/env bash
# Renders the template with the published cargo-generate binary and with `rspy new`, for
# both transports, and diffs the trees (no output from diff = identical). The test suite makes
# the same comparison with cargo-generate's CLI built from the library rspy embeds
# (cli/examples/cargo-generate.rs), because installing the binary takes minutes; this script
# is the check against the real thing.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=$PWD/target/tools
if [ ! -x "$tools/bin/cargo-generate" ]; then
  CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback \
    cargo install cargo-generate --version 0.26.0 --root "$tools"
fi
cargo build --locked -p rspy

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CARGO_NAME=compare
for transport in tcp unix; do
  mkdir -p "$work/$transport/generate" "$work/$transport/rspy"
  "$tools/bin/cargo-generate" generate --path "$PWD/template" --name demo --silent --vcs none \
    --define transport=$transport --destination "$work/$transport/generate"
  target/debug/rspy new "$work/$transport/rspy/demo" --vcs none --transport $transport >/dev/null
  diff -r "$work/$transport/generate/demo" "$work/$transport/rspy/demo"
  echo "transport=$transport: identical"
done
