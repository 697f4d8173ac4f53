#!/usr/bin/env bash
# Benchmark of pyward's static code analysis (issue 4), on real code:
#   1. throughput: MB/s of Python source per core (one thread, every .py of a real venv's
#      site-packages, prefilter + parse + rules);
#   2. false positives: files and packages of that venv scoring >= 5 (pyward scan with the
#      default policy: packages with a WARN/STOP heuristics finding);
#   3. recall on the inert malicious corpus (crates/pyward-analyze/tests/corpus/malicious);
#   4. with --guarddog [N]: GuardDog (PyPI package `guarddog`, in its own venv under the cache)
#      on the same corpus and on N package folders of the venv, seconds and flagged per package.
# The venv is the one scripts/bench-venv.sh builds (~/.cache/pyward/bench-venv). Results go to
# stdout; copy them into docs/benchmarks.md ("Static code analysis"). Export CARGO_TARGET_DIR to
# build into a shared target folder.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${PYWARD_BENCH_CACHE:-$HOME/.cache/pyward}"
venv="$cache/bench-venv"
site="$(ls -d "$venv"/lib/python3*/site-packages 2>/dev/null | head -1 || true)"
if [ -z "$site" ] || [ ! -d "$site" ]; then
  echo "no virtualenv at $venv: run scripts/bench-venv.sh --prepare-only first" >&2
  exit 2
fi
guarddog=0
ngd=40
if [ "${1:-}" = "--guarddog" ]; then
  guarddog=1
  ngd="${2:-40}"
fi

cargo build --release --quiet -p pyward-analyze --example analyze-dir
cargo build --release --quiet -p pyward
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
adir="$target/release/examples/analyze-dir"
bin="$target/release/pyward"
corpus=crates/pyward-analyze/tests/corpus

echo "== 1. throughput, one core: $site"
pin=""
command -v taskset >/dev/null && pin="taskset -c 0"
$pin "$adir" "$site" | tail -n 2
echo "without the YARA-X rules:"
$pin "$adir" "$site" --no-yara | tail -n 1
echo
echo "== 2. false positives: files scoring >= 5 (above), packages with a WARN/STOP heuristics finding"
start=$(date +%s.%N)
"$bin" scan "$venv" --no-progress --format json -o /tmp/pyward-bench-analyze.json || true
end=$(date +%s.%N)
python3 - "$start" "$end" <<'EOF'
import json, sys
r = json.load(open("/tmp/pyward-bench-analyze.json"))
pk = {}
for f in r.get("findings", []):
    if f.get("gate") == "heuristics" and f.get("action") in ("WARN", "STOP"):
        name = (f.get("package") or {}).get("name", "?")
        pk.setdefault(name, set()).add(f["rule_id"])
print(f"packages: {len(r.get('packages', []))}, flagged by heuristics: {len(pk)}")
for n, rules in sorted(pk.items()):
    print(f"  {n}: {sorted(rules)}")
print(f"whole pyward scan (inventory + intel + names + analysis, all cores): {float(sys.argv[2]) - float(sys.argv[1]):.2f} s")
EOF
echo
echo "== 3. recall on the inert malicious corpus ($corpus/malicious)"
hit=0; total=0; t0=$(date +%s.%N)
for d in "$corpus"/malicious/*/; do
  total=$((total + 1))
  out="$("$adir" "$d")"
  if echo "$out" | grep -q "flagged_files=[1-9]"; then hit=$((hit + 1)); else echo "  missed: $(basename "$d")"; fi
done
t1=$(date +%s.%N)
python3 -c "print(f'pyward: {$hit}/{$total} flagged, {($t1-$t0)/$total*1000:.1f} ms per sample (process start included)')"
for d in "$corpus"/benign/*/; do
  "$adir" "$d" | grep -q "flagged_files=0" || echo "  benign sample flagged: $(basename "$d")"
done

[ "$guarddog" = 1 ] || exit 0
echo
echo "== 4. GuardDog on the same folders"
gd="$cache/guarddog-venv"
if [ ! -x "$gd/bin/guarddog" ]; then
  python3 -m venv "$gd"
  "$gd/bin/pip" install -q guarddog
fi
echo "guarddog $("$gd/bin/pip" show guarddog 2>/dev/null | sed -n 's/^Version: //p')"
gdscan() { # folder -> "score seconds"
  local s e
  s=$(date +%s.%N)
  "$gd/bin/guarddog" pypi scan "$1" --output-format json 2>/dev/null > /tmp/gd-one.json || true
  e=$(date +%s.%N)
  python3 -c "
import json
try: d = json.load(open('/tmp/gd-one.json')); s = (d.get('risk_score') or {}).get('score', 0) or 0
except Exception: s = -1
print(s, round($e - $s, 3))"
}
hit=0; total=0; tsum=0
for d in "$corpus"/malicious/*/; do
  read -r s secs < <(gdscan "$d")
  total=$((total + 1)); tsum=$(python3 -c "print($tsum + $secs)")
  if python3 -c "import sys; sys.exit(0 if $s >= 5 else 1)"; then hit=$((hit + 1)); else echo "  guarddog missed: $(basename "$d") (score $s)"; fi
done
python3 -c "print(f'guarddog corpus: {$hit}/{$total} flagged (score >= 5), {$tsum/$total:.2f} s per sample')"
echo "benign: $ngd package folders of the venv"
fp_gd=0; fp_pw=0; n=0; gd_t=0; pw_t=0
for d in $(ls -d "$site"/*/ | grep -v -E '(dist-info|egg-info|__pycache__)/$' | head -n "$ngd"); do
  [ -n "$(find "$d" -name '*.py' -print -quit)" ] || continue
  n=$((n + 1))
  read -r s secs < <(gdscan "$d")
  gd_t=$(python3 -c "print($gd_t + $secs)")
  python3 -c "import sys; sys.exit(0 if $s >= 5 else 1)" && { fp_gd=$((fp_gd + 1)); echo "  guarddog flags $(basename "$d") (score $s)"; }
  s0=$(date +%s.%N); out="$("$adir" "$d")"; s1=$(date +%s.%N)
  pw_t=$(python3 -c "print($pw_t + $s1 - $s0)")
  echo "$out" | grep -q "flagged_files=0" || { fp_pw=$((fp_pw + 1)); echo "  pyward flags $(basename "$d")"; }
done
python3 -c "print(f'benign packages: {$n}; flagged: guarddog {$fp_gd}, pyward {$fp_pw}; mean seconds per package: guarddog {$gd_t/max($n,1):.3f}, pyward {$pw_t/max($n,1):.4f} (x{$gd_t/max($pw_t,1e-9):.0f})')"
