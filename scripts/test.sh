#!/usr/bin/env bash
# Every check of this repository, on a fresh machine: lint, unit and integration tests, and
# the end-to-end test that builds a generated project and runs it under supervisord.
# Installs what it needs itself (Debian: python3-venv when missing; the end-to-end test pip-installs
# the generated project's Python side, supervisor and dev tools into the project's own venv).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  echo "installing python3-venv (the end-to-end test makes a virtual environment)"
  apt-get update -qq && apt-get install -y -qq python3-venv
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked "$@"
