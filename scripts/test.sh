#!/usr/bin/env bash
# The whole test suite, from a fresh machine: system set-up, then every test of every crate.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ -x scripts/setup-schema-validation.sh ]; then
  scripts/setup-schema-validation.sh
  export PYWARD_SCHEMA_TESTS=1
fi
cargo test --workspace --no-fail-fast "$@"
