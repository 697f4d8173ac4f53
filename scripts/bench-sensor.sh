#!/usr/bin/env bash
# Benchmark of the live eBPF sensor (`pyward watch`), as root on the real kernel. Not part of
# the test suite. Measures, in one run:
#   1. overhead: wall time of two syscall-heavy workloads bare vs under `pyward watch` with
#      Falco's falco_rules.yaml and pyward's rules loaded (alternating rounds, medians):
#      a C program doing N open/read/close cycles, and `tar -x` of a 50,000-file tarball;
#   2. throughput: the highest generated event rate (open+close of /dev/null at fixed
#      rates, then unthrottled) that `watch --stats` reports with zero drops;
#   3. latency: connect() to an address listed in pyward_malicious_ips (loopback,
#      127.0.0.77) → the alert line visible in the --alerts file (p50/p99), and the same
#      from the alert's own event time (evt.time);
#   4. memory: peak RSS (VmHWM) of `pyward watch` during the runs.
# Goals (issue 6): <= 5 % overhead, >= 500K events/s without drops, p99 < 5 ms, < 64 MB RSS.
#
# Usage: scripts/bench-sensor.sh [--quick]
#   env: OPENS (default 1000000), FILES (50000), ROUNDS (3), CONNECTS (200),
#        RATES (space-separated events/s), GEN_SECS (seconds per rate step, default 5),
#        PYWARD_BIN (use this pyward binary instead of building the release one),
#        EXTRACT_ROOT (where the tarball is unpacked, default /dev/shm)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

OPENS=${OPENS:-1000000}
FILES=${FILES:-50000}
ROUNDS=${ROUNDS:-3}
CONNECTS=${CONNECTS:-200}
GEN_SECS=${GEN_SECS:-5}
RATES=${RATES:-"25000 50000 75000 100000 150000 200000 300000 500000 0"}
# Where the tarball is unpacked: tmpfs by default, so the workload is syscall-bound, not
# disk-bound (a disk adds the same absolute time to both sides and hides the overhead).
EXTRACT_ROOT=${EXTRACT_ROOT:-/dev/shm}
if [ "${1:-}" = "--quick" ]; then
  OPENS=200000 FILES=10000 ROUNDS=1 CONNECTS=50 GEN_SECS=2 RATES="200000 0"
fi
[ "$(id -u)" = 0 ] || { echo "bench-sensor.sh: run as root (eBPF)" >&2; exit 2; }

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/pyward/target}
if [ -n "${PYWARD_BIN:-}" ]; then
  pyward=$PYWARD_BIN          # an already built binary (e.g. while the tree does not build)
else
  cargo build --release --quiet -p pyward
  pyward="$CARGO_TARGET_DIR/release/pyward"
fi
falco_rules="$repo/../shared/falco-rules/falco_rules.yaml"
[ -f "$falco_rules" ] || { echo "bench-sensor.sh: $falco_rules not found" >&2; exit 2; }
pyward_rules="$repo/rules/pyward_rules.yaml"

cache="${PYWARD_BENCH_CACHE:-$HOME/.cache/pyward}/bench-sensor"
work=$(mktemp -d "${TMPDIR:-/var/tmp}/pyward-bench-sensor.XXXXXX")
mkdir -p "$cache"
watch_pid=""
untar_dest=""
cleanup() {
  [ -n "$untar_dest" ] && rm -rf "$untar_dest"
  if [ -n "$watch_pid" ] && kill -0 "$watch_pid" 2>/dev/null; then
    kill -INT "$watch_pid" 2>/dev/null || true
    wait "$watch_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- helpers ---------------------------------------------------------------------------------

now_ns() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# The listed "attacker" address, appended the way a user extends the list.
cat >"$work/intel.yaml" <<'EOF'
- list: pyward_malicious_ips
  items: ["127.0.0.77"]
  override:
    items: append
EOF

peak_rss_kb=0
# start_watch NAME [extra watch args...]: pyward watch in the background, waits until loaded.
start_watch() {
  local name=$1; shift
  "$pyward" watch --no-intel --stats --rules "$falco_rules" --rules "$pyward_rules" \
    --rules "$work/intel.yaml" "$@" 2>"$work/$name.err" &
  watch_pid=$!
  for _ in $(seq 600); do
    grep -q "eBPF sensor loaded" "$work/$name.err" 2>/dev/null && return 0
    kill -0 "$watch_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench-sensor.sh: pyward watch did not start:" >&2
  cat "$work/$name.err" >&2
  exit 1
}
# stop_watch NAME: SIGINT, wait, record its peak RSS; the --stats line stays in $work/NAME.err.
stop_watch() {
  local name=$1 hwm
  hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$watch_pid/status" 2>/dev/null || echo 0)
  # CPU seconds (user + system) pyward watch used so far (stat fields 14 and 15).
  awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz}' \
    "/proc/$watch_pid/stat" >"$work/$name.cpu" 2>/dev/null || echo "?" >"$work/$name.cpu"
  [ "${hwm:-0}" -gt "$peak_rss_kb" ] && peak_rss_kb=$hwm
  kill -INT "$watch_pid"
  wait "$watch_pid" || true
  watch_pid=""
}
stat_of() { # stat_of NAME FIELD → number from the --stats line
  sed -n "s/.*$2 \([0-9]*\).*/\1/p" "$work/$1.err" | tail -1
}

# --- workloads ---------------------------------------------------------------------------------

cat >"$work/openloop.c" <<'EOF'
/* N cycles of open/read/close of one small file. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc != 3) return 2;
  long n = atol(argv[1]);
  char buf[256];
  for (long i = 0; i < n; i++) {
    int fd = open(argv[2], O_RDONLY);
    if (fd < 0) { perror("open"); return 1; }
    if (read(fd, buf, sizeof buf) < 0) { perror("read"); return 1; }
    close(fd);
  }
  return 0;
}
EOF
cat >"$work/gen.c" <<'EOF'
/* Event generator: open+close of /dev/null at RATE per second (0 = as fast as possible) for
 * SECS seconds, paced per millisecond; prints the events made and the rate achieved. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
  if (argc != 3) return 2;
  double rate = atof(argv[1]), secs = atof(argv[2]);
  double start = now(), end = start + secs;
  long n = 0;
  for (;;) {
    double t = now();
    if (t >= end) break;
    long due = rate > 0 ? (long)((t - start + 0.001) * rate) : n + 1000;
    while (n < due) {
      int fd = open("/dev/null", O_RDONLY);
      if (fd < 0) { perror("open"); return 1; }
      close(fd);
      n++;
    }
    if (rate > 0) { struct timespec s = {0, 200000}; nanosleep(&s, NULL); }
  }
  double took = now() - start;
  printf("%ld %.0f\n", n, n / took);
  return 0;
}
EOF
gcc -O2 -o "$work/openloop" "$work/openloop.c"
gcc -O2 -o "$work/gen" "$work/gen.c"
echo "pyward-bench-sensor small file" >"$work/small.txt"

tarball="$cache/files-$FILES.tar"
if [ ! -s "$tarball" ]; then
  echo "building $tarball ($FILES files)..." >&2
  python3 - "$work/tree" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"d{i // 100:04d}")
    if i % 100 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:06d}.py"), "w") as f:
        f.write(f"# file {i}\nVALUE = {i}\n")
PY
  tar -C "$work/tree" -cf "$tarball" .
  rm -rf "$work/tree"
fi

run_openloop() { local t0 t1; t0=$(now_ns); "$work/openloop" "$OPENS" "$work/small.txt"; t1=$(now_ns); echo $(( (t1 - t0) / 1000000 )); }
run_untar() {
  local t0 t1
  untar_dest=$(mktemp -d "$EXTRACT_ROOT/pyward-bench-untar.XXXXXX")
  t0=$(now_ns); tar -C "$untar_dest" -xf "$tarball"; t1=$(now_ns)
  rm -rf "$untar_dest"; untar_dest=""
  echo $(( (t1 - t0) / 1000000 ))
}

echo "== machine: $(nproc) CPUs, kernel $(uname -r), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== pyward: $pyward ($(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "== rules: falco_rules.yaml + pyward_rules.yaml (+ 127.0.0.77 listed)"

# --- 1. overhead ---------------------------------------------------------------------------------

# Warm-up (page cache, tarball read once).
run_openloop >/dev/null; run_untar >/dev/null
: >"$work/open.bare"; : >"$work/open.watch"; : >"$work/tar.bare"; : >"$work/tar.watch"
for r in $(seq "$ROUNDS"); do
  run_openloop >>"$work/open.bare"
  run_untar >>"$work/tar.bare"
  start_watch "overhead$r" --alerts "$work/overhead-alerts.jsonl"
  run_openloop >>"$work/open.watch"
  run_untar >>"$work/tar.watch"
  stop_watch "overhead$r"
done
ob=$(median <"$work/open.bare"); ow=$(median <"$work/open.watch")
tb=$(median <"$work/tar.bare"); tw=$(median <"$work/tar.watch")
echo
echo "## 1. Overhead (median of $ROUNDS alternating rounds)"
echo "| workload | bare (ms) | under watch (ms) | overhead |"
echo "|---|---|---|---|"
awk -v b="$ob" -v w="$ow" -v n="$OPENS" 'BEGIN {printf "| %d open/read/close cycles | %d | %d | %+.1f %% |\n", n, b, w, (w-b)*100/b}'
awk -v b="$tb" -v w="$tw" -v n="$FILES" 'BEGIN {printf "| tar -x of %d files | %d | %d | %+.1f %% |\n", n, b, w, (w-b)*100/b}'
echo "rounds: openloop bare [$(tr '\n' ' ' <"$work/open.bare")] watch [$(tr '\n' ' ' <"$work/open.watch")]; tar bare [$(tr '\n' ' ' <"$work/tar.bare")] watch [$(tr '\n' ' ' <"$work/tar.watch")]"
echo "watch --stats (last round): $(grep 'kernel events' "$work/overhead$ROUNDS.err" | sed 's/^pyward: //')"
dl=$(stat_of "overhead$ROUNDS" "delivered"); cpu=$(cat "$work/overhead$ROUNDS.cpu")
awk -v c="$cpu" -v d="${dl:-0}" 'BEGIN {if (d > 0) printf "pyward watch CPU in the last round: %.2f s for %d delivered events = %.2f us/event\n", c, d, c * 1e6 / d}'

# --- 2. throughput -------------------------------------------------------------------------------

echo
echo "## 2. Throughput (open+close of /dev/null at a target rate for ${GEN_SECS}s; 0 = unthrottled)"
echo "(each open+close makes two kernel events: openat and close)"
echo "| target opens/s | achieved opens/s | kernel events/s | kernel events | ring drops | queue drops | delivered | drops | watch CPU s |"
echo "|---|---|---|---|---|---|---|---|---|"
best=0
for rate in $RATES; do
  start_watch "rate$rate"
  read -r made achieved < <("$work/gen" "$rate" "$GEN_SECS")
  stop_watch "rate$rate"
  ke=$(stat_of "rate$rate" "kernel events"); rd=$(stat_of "rate$rate" "ring-buffer drops")
  qd=$(stat_of "rate$rate" "queue drops"); dl=$(stat_of "rate$rate" "delivered")
  lost=$(( ${rd:-0} + ${qd:-0} ))
  kps=$(( ${ke:-0} / GEN_SECS ))
  echo "| $rate | $achieved | $kps | ${ke:-?} | ${rd:-?} | ${qd:-?} | ${dl:-?} | $lost | $(cat "$work/rate$rate.cpu") |"
  if [ "$lost" = 0 ] && [ "$kps" -gt "$best" ]; then best=$kps; fi
done
echo "highest kernel event rate with zero drops: $best events/s (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"

# --- 3. latency ----------------------------------------------------------------------------------

echo
echo "## 3. Latency connect() → alert written ($CONNECTS connects to 127.0.0.77, listed)"
start_watch latency --alerts "$work/latency-alerts.jsonl"
python3 - "$work/latency-alerts.jsonl" "$CONNECTS" <<'PY'
import json, os, socket, sys, time
path, n = sys.argv[1], int(sys.argv[2])
srv = socket.socket(); srv.bind(("127.0.0.77", 0)); srv.listen(1024)
port = srv.getsockname()[1]
f = open(path, "rb"); f.seek(0, os.SEEK_END); buf = b""
e2e, from_evt = [], []
for i in range(n):
    c = socket.socket()
    c.bind(("127.0.0.1", 0))
    cport = c.getsockname()[1]
    needle = f":{cport}->127.0.0.77:{port}".encode()
    t0 = time.time_ns()
    c.connect(("127.0.0.77", port))
    deadline = time.monotonic() + 5
    found = None
    while found is None and time.monotonic() < deadline:
        chunk = f.read()
        if chunk:
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for l in lines:
                if needle in l:
                    found = (time.time_ns(), json.loads(l))
        else:
            time.sleep(0.0001)
    c.close()
    a, _ = srv.accept(); a.close()
    if found is None:
        print(f"connect {i}: no alert within 5 s", file=sys.stderr); continue
    t1, alert = found
    e2e.append((t1 - t0) / 1e6)
    from_evt.append((t1 - alert["output_fields"]["evt.time"]) / 1e6)
    time.sleep(0.01)
def pct(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
print(f"alerts seen: {len(e2e)}/{n}")
print("| measured from | p50 (ms) | p99 (ms) | max (ms) |")
print("|---|---|---|---|")
for name, v in (("client before connect() → alert line readable", e2e), ("alert's evt.time (kernel) → alert line readable", from_evt)):
    if v: print(f"| {name} | {pct(v,50):.3f} | {pct(v,99):.3f} | {max(v):.3f} |")
PY
stop_watch latency

# --- 4. memory -----------------------------------------------------------------------------------

echo
echo "## 4. Memory"
echo "peak RSS (VmHWM) of pyward watch over all runs above: $((peak_rss_kb / 1024)) MB ($peak_rss_kb kB)"
