#!/usr/bin/env bash
# The whole test suite, from a fresh machine: system set-up, then every test of every crate.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The official SARIF / CycloneDX JSON schemas and a validator, for the report schema tests.
scripts/setup-schema-validation.sh
export PYWARD_SCHEMA_TESTS=1
# A real jupyter_server from PyPI for the Jupyter audit's live-server tests.
scripts/setup-jupyter-tests.sh >/dev/null
export PYWARD_JUPYTER_TESTS=1
# The eBPF sensor is loaded into the real kernel (root, tracepoints): those tests fail, not skip.
export PYWARD_BPF_TESTS=1
cargo test --workspace --no-fail-fast "$@"
