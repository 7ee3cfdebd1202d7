#!/usr/bin/env bash
# Brings examples/bookshop/migrated up to date with what `rspy init` makes today: re-adopts
# examples/bookshop/legacy in a scratch folder and copies every file it makes over the
# example's, except the files the migration itself wrote (the list below; the same list is in
# cli/tests/example.rs, whose test fails while the example is stale).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
cargo build --quiet -p rspy
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cp -a examples/bookshop/legacy "$scratch/bookshop"
(cd "$scratch/bookshop" && "$repo/target/debug/rspy" init > /dev/null)
cd "$scratch/bookshop"
find . -type f | sort | while read -r file; do
  file="${file#./}"
  case "$file" in
    rspy.toml | Cargo.toml | Cargo.lock | MIGRATION.md | crates/core/* | crates/shared/* | \
      crates/api/src/routes* | crates/api/Cargo.toml | crates/api/tests/native.rs)
      continue ;;
  esac
  target="$repo/examples/bookshop/migrated/$file"
  if ! cmp -s "$file" "$target"; then
    mkdir -p "$(dirname "$target")"
    cp "$file" "$target"
    echo "updated examples/bookshop/migrated/$file"
  fi
done
