#!/usr/bin/env bash
# Every check of this repository, on a fresh machine: lint, unit and integration tests, and
# the end-to-end test that builds a generated project and runs it under supervisord.
# Installs what it needs itself (Debian: python3-venv and curl when missing; the end-to-end test
# pip-installs the generated project's Python side, supervisor and dev tools into the project's
# own venv). Run it as root, as CI does: cli/tests/image.rs carries out the generated Dockerfile
# in mount namespaces and chroots.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
# The end-to-end tests make virtual environments...
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
# ...and the gateway test is an HTTP/2 client with curl.
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
  echo "installing ${missing[*]}"
  apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked "$@"
