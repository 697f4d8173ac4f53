#!/usr/bin/env bash
# pyward's main job on the shipped example: build the inert incident-1 image (a `docker save`
# tarball whose site-packages holds python3-dateutil and jeIlyfish), scan it, show the verdict.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

cargo build --release --quiet -p pyward -p pyward-testkit --bins
bin_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"

out=examples/incident-1/out
"$bin_dir/make-demo-images" "$out"

echo "\$ pyward scan $out/image.tar"
set +e
"$bin_dir/pyward" scan "$out/image.tar"
code=$?
set -e
echo
echo "pyward exited with $code (1 = STOP: the image must not ship)."
# The demo succeeds when pyward stops the malicious image.
[ "$code" -eq 1 ]
