#!/usr/bin/env bash
# Renders the template with the published cargo-generate binary and with `rspy new`, for
# both transports, and diffs the trees (no output from diff = identical). The test suite makes
# the same comparison with cargo-generate's CLI built from the library rspy embeds
# (cli/examples/cargo-generate.rs), because installing the binary takes minutes; this script
# is the check against the real thing.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=$PWD/target/tools
cargo build --locked -p rspy
if [ ! -x "$tools/bin/cargo-generate" ]; then
  # The published 0.26.0 sources, which the build above put in cargo's registry. Neither a
  # plain `cargo install` nor its `--locked` lock file builds on Rust 1.95 (two dependencies
  # want 1.96 and 1.97), so resolve a lock file for this toolchain and install from there.
  src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cargo-generate-0.26.0 | head -n 1)
  rm -rf "$tools/src" && mkdir -p "$tools" && cp -r "$src" "$tools/src"
  # A workspace of its own, not a stray member of this repository's.
  printf '\n[workspace]\n' >> "$tools/src/Cargo.toml"
  (cd "$tools/src" && rm -f Cargo.lock \
    && CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback cargo generate-lockfile \
    && cargo install --locked --path . --root "$tools")
fi

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
