#!/usr/bin/env bash
# Benchmark: whole scan of an image of ≥500 MB with ≥150 Python packages (a copy of the
# benchmark virtualenv's real site-packages in one gzip layer, as `docker save` writes it):
# wall time and peak memory of the whole pyward process. Goal: < 3 s, < 200 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${PYWARD_BENCH_CACHE:-$HOME/.cache/pyward}"
scripts/bench-venv.sh --prepare-only >/dev/null 2>&1 || true
site=$(ls -d "$cache"/bench-venv/lib/python3*/site-packages)
cargo build --release --quiet -p pyward -p pyward-testkit --bins
dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"
img="$cache/bench-image.tar"
[ -s "$img" ] || "$dir/make-bench-image" "$site" "$img"
echo "image: $img ($(du -h "$img" | cut -f1) compressed, $(du -sh "$site" | cut -f1) site-packages)"
for mode in --no-analyze ""; do
  for i in 1 2 3; do
    /usr/bin/time -f "pyward scan ${mode:-(with analysis)} run $i: %e s wall, %M KB max RSS" \
      "$dir/pyward" scan "$img" $mode --format json -o /tmp/pyward-bench-image.json --no-progress || true
  done
done
python3 - <<'PY'
import json
r = json.load(open("/tmp/pyward-bench-image.json"))
print(f"packages: {len(r['packages'])}, files: {r['files_scanned']}, findings: {len(r['findings'])}, final: {r['final_action']}")
PY
