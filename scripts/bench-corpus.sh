#!/usr/bin/env bash
# Benign-corpus benchmark of pyward's static code analysis against GuardDog (issue 4).
#
# Fetches the wheels of the N most-downloaded PyPI projects (default 200) listed in
# ../shared/data/top-pypi-packages.json (or $PYWARD_TOP_PACKAGES) with
#   pip download --no-deps --only-binary=:all:
# (wheels only: an sdist could run build code) into ~/.cache/pyward/corpus, reused when
# present; then runs on each wheel
#   - pyward:   `pyward scan WHEEL --format json` (flagged = a heuristics finding the default
#               policy decides WARN or STOP, i.e. package score >= 5);
#   - GuardDog: `guarddog pypi scan WHEEL --output-format json` from the venv
#               ~/.cache/pyward/guarddog-venv (installed there when missing; flagged = its risk
#               score >= 5, its own default threshold, as scripts/bench-analyze.sh counts it);
# and prints per package: flagged or not, the rules, seconds; then totals, the false-positive
# rate of each tool and the mean time per package; then the same wheels as one folder scanned
# by a single `pyward scan DIR` (a wheelhouse). Every project here is taken as benign.
#
# A benchmark, not a test: scripts/test.sh does not call it (it needs PyPI and minutes).
# Usage: scripts/bench-corpus.sh [N] [--no-guarddog]
set -euo pipefail
cd "$(dirname "$0")/.."
n=200
guarddog=1
for a in "$@"; do
  case "$a" in
    --no-guarddog) guarddog=0 ;;
    [0-9]*) n="$a" ;;
    *) echo "usage: $0 [N] [--no-guarddog]" >&2; exit 2 ;;
  esac
done
cache="${PYWARD_BENCH_CACHE:-$HOME/.cache/pyward}"
corpus="$cache/corpus"
top="${PYWARD_TOP_PACKAGES:-../shared/data/top-pypi-packages.json}"
[ -f "$top" ] || top=/work/shared/data/top-pypi-packages.json
if [ ! -f "$top" ]; then
  echo "no top-packages list at $top: set PYWARD_TOP_PACKAGES to hugovk's top-pypi-packages.json" >&2
  exit 2
fi
mkdir -p "$corpus"

echo "== fetching the wheels of the top $n projects into $corpus"
python3 - "$top" "$n" > "$corpus/.names" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"][: int(sys.argv[2])]
for r in rows:
    print(r["project"])
EOF
fetched=0; nowheel=0
while read -r name; do
  # A wheel already here for this project (names in file names use `_` for `-`, any case).
  pat="$(echo "$name" | tr 'A-Z-.' 'a-z__')"
  if ls "$corpus" | tr 'A-Z' 'a-z' | grep -q "^${pat}-[0-9].*\.whl$"; then
    continue
  fi
  if [ -f "$corpus/.nowheel-$name" ]; then
    continue
  fi
  if python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
       -d "$corpus" "$name" >/dev/null 2>"$corpus/.pip-$name.log"; then
    fetched=$((fetched + 1))
    rm -f "$corpus/.pip-$name.log"
  else
    nowheel=$((nowheel + 1))
    touch "$corpus/.nowheel-$name"
  fi
done < "$corpus/.names"
echo "fetched now: $fetched; without a wheel for this platform (skipped): $(ls "$corpus"/.nowheel-* 2>/dev/null | wc -l)"

cargo build --release --quiet -p pyward
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
bin="$target/release/pyward"

gd="$cache/guarddog-venv"
if [ "$guarddog" = 1 ] && [ ! -x "$gd/bin/guarddog" ]; then
  python3 -m venv "$gd"
  "$gd/bin/pip" install -q guarddog
fi

python3 - "$corpus" "$bin" "$gd/bin/guarddog" "$guarddog" <<'EOF'
import json, os, re, subprocess, sys, time

corpus, pyward, guarddog, use_gd = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
names = [l.strip() for l in open(os.path.join(corpus, ".names")) if l.strip()]
wheels = {}
for f in os.listdir(corpus):
    if f.endswith(".whl"):
        key = re.sub(r"[-_.]+", "-", f.split("-")[0]).lower()
        wheels.setdefault(key, os.path.join(corpus, f))

def norm(n):
    return re.sub(r"[-_.]+", "-", n).lower()

def pyward_scan(target):
    """`pyward scan TARGET --format json`: (report or None, error text, seconds)."""
    t = time.perf_counter()
    p = subprocess.run([pyward, "scan", target, "--no-progress", "--format", "json"],
                       capture_output=True, text=True)
    dt = time.perf_counter() - t
    try:
        return json.loads(p.stdout), "", dt
    except Exception:
        return None, f"error exit {p.returncode}: {p.stderr.strip()[:200]}", dt

def heuristic_flags(report):
    """The heuristics findings the default policy decides WARN or STOP."""
    return [f for f in report.get("findings", [])
            if f.get("gate") == "heuristics" and f.get("action") in ("WARN", "STOP")]

def run_pyward(w):
    r, err, dt = pyward_scan(w)
    if r is None:
        return None, [err], dt
    rules = sorted({f["rule_id"] for f in heuristic_flags(r)})
    return bool(rules), rules, dt

def run_guarddog(w):
    t = time.perf_counter()
    p = subprocess.run([guarddog, "pypi", "scan", w, "--output-format", "json"],
                       capture_output=True, text=True)
    dt = time.perf_counter() - t
    try:
        d = json.loads(p.stdout)
    except Exception:
        return None, [f"error exit {p.returncode}: {p.stderr.strip()[-200:]}"], dt
    score = (d.get("risk_score") or {}).get("score", 0) or 0
    rules = sorted(k for k, v in (d.get("results") or {}).items() if v)
    return score >= 5, [f"score {score}"] + rules, dt

rows = []
print(f"{'project':32} {'pyward':8} {'s':>7}  {'guarddog':8} {'s':>7}  rules (pyward | guarddog)")
for name in names:
    w = wheels.get(norm(name))
    if not w:
        print(f"{name:32} (no wheel)")
        continue
    pf, pr, pt = run_pyward(w)
    gf, gr, gt = run_guarddog(w) if use_gd else (None, [], 0.0)
    rows.append((name, os.path.getsize(w), pf, pr, pt, gf, gr, gt))
    mark = lambda f: "error" if f is None else ("FLAG" if f else "-")
    print(f"{name:32} {mark(pf):8} {pt:7.2f}  {mark(gf) if use_gd else 'n/a':8} {gt:7.2f}  "
          f"{' '.join(pr) or '-'} | {' '.join(gr[:6]) if use_gd else ''}", flush=True)

n = len(rows)
if n == 0:
    sys.exit("no wheels scanned")
mb = sum(r[1] for r in rows) / 1e6
pfl = sum(1 for r in rows if r[2]); perr = sum(1 for r in rows if r[2] is None)
pts = sum(r[4] for r in rows)
print()
print(f"wheels scanned: {n} ({mb:.0f} MB of wheels)")
print(f"pyward:   flagged {pfl}/{n} = FP rate {100*pfl/n:.1f} %, errors {perr}, "
      f"mean {pts/n:.3f} s per package (whole `pyward scan` process)")

# The same wheels as one folder (a wheelhouse), scanned by one `pyward scan DIR` process:
# hard links in a scratch folder next to the corpus (a symlink out of a scanned folder is
# not followed, by design).
import shutil, tempfile
corpus_dir = os.path.dirname(wheels[norm(rows[0][0])])
batch = tempfile.mkdtemp(prefix="corpus-batch-", dir=os.path.dirname(corpus_dir))
try:
    for r in rows:
        w = wheels[norm(r[0])]
        os.link(w, os.path.join(batch, os.path.basename(w)))
    d, err, bt = pyward_scan(batch)
    if d is None:
        print(f"pyward folder scan: {err}")
    else:
        flagged = {(f.get("package") or {}).get("name") for f in heuristic_flags(d)}
        npk = sum(1 for x in d.get("packages", []) if (x.get("source") or {}).get("type") == "archive")
        print(f"pyward, one folder of the {n} wheels (`pyward scan DIR`): {bt:.2f} s, "
              f"{bt/n:.3f} s per package, {npk} archive packages, flagged {len(flagged)}")
finally:
    shutil.rmtree(batch, ignore_errors=True)
if use_gd:
    gfl = sum(1 for r in rows if r[5]); gerr = sum(1 for r in rows if r[5] is None)
    gts = sum(r[7] for r in rows)
    print(f"guarddog: flagged {gfl}/{n} = FP rate {100*gfl/n:.1f} %, errors {gerr}, "
          f"mean {gts/n:.3f} s per package")
    print(f"time ratio guarddog/pyward: {gts/max(pts,1e-9):.0f}x")
EOF
