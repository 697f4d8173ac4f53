#!/usr/bin/env bash
# Benchmark: inventory of a real virtualenv (≥150 packages from PyPI), whole-process time,
# pyward vs `pip inspect` vs `cyclonedx-py environment`, in one run on the same venv.
# Needs the package registries (PyPI) the first time; the venvs are cached under
# ~/.cache/pyward/. Results go to stdout; copy them into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${PYWARD_BENCH_CACHE:-$HOME/.cache/pyward}"
venv="$cache/bench-venv"
cdx="$cache/cdx-venv"
mkdir -p "$cache"
if [ ! -x "$venv/bin/python" ] || [ "$("$venv/bin/python" -m pip list 2>/dev/null | wc -l)" -lt 150 ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pandas scipy scikit-learn matplotlib jupyterlab django boto3 \
    flask fastapi uvicorn sqlalchemy celery pytest black seaborn statsmodels sympy openpyxl lxml httpx
fi
if [ ! -x "$cdx/bin/cyclonedx-py" ]; then
  python3 -m venv "$cdx"
  "$cdx/bin/pip" install -q cyclonedx-bom
fi
if ! command -v hyperfine >/dev/null; then
  apt-get install -y -qq hyperfine >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq hyperfine; }
fi
[ "${1:-}" = "--prepare-only" ] && exit 0
cargo build --release --quiet -p pyward
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/pyward"

npkg=$("$venv/bin/python" -m pip list --format=freeze 2>/dev/null | wc -l)
echo "venv: $venv ($npkg packages, $(du -sh "$venv" | cut -f1))"
"$bin" scan "$venv" --no-analyze --format json -o /tmp/pyward-bench-venv.json || true
echo "pyward found $(python3 -c 'import json;print(len(json.load(open("/tmp/pyward-bench-venv.json"))["packages"]))') packages"

hyperfine --warmup 2 --runs 10 --export-markdown /tmp/pyward-bench-venv.md \
  -n "pyward scan --no-analyze (inventory + intel + names + policy)" "$bin scan $venv --no-analyze --format json -o /dev/null --no-progress; true" \
  -n "pyward scan (+ static code analysis of every package)" "$bin scan $venv --format json -o /dev/null --no-progress; true" \
  -n "pip inspect" "$venv/bin/python -m pip inspect --local > /dev/null" \
  -n "cyclonedx-py environment" "$cdx/bin/cyclonedx-py environment $venv/bin/python -o /dev/null"
cat /tmp/pyward-bench-venv.md
