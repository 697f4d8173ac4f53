#!/usr/bin/env python3
"""Regenerate pyward's embedded popular-name corpus (crates/pyward-intel/data/popular.txt).

Input: a top-pypi-packages JSON file from hugovk/top-pypi-packages
(top-pypi-packages.min.json or top-pypi-packages.json: {"last_update": ..., "rows":
[{"download_count": N, "project": "name"}, ...]}), downloaded by you; this script never
touches the network.

Usage:
    scripts/refresh-popular.py PATH/top-pypi-packages.json [--source TEXT] [-o OUT]

Output: comment lines (# ...) recording the source and date, then one `name<TAB>downloads`
line per project, most downloaded first (rank = line order). Names are PEP 503-normalised;
duplicates after normalisation keep their best rank. Rebuild pyward afterwards (the file is
compiled in with include_str!).
"""
import argparse
import json
import os
import re
import sys

NAME_RE = re.compile(r"^([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9])$")
DEFAULT_OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "crates", "pyward-intel", "data", "popular.txt"
)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help="top-pypi-packages JSON file")
    ap.add_argument(
        "--source",
        default="hugovk/top-pypi-packages (top-pypi-packages.min.json, ClickHouse data)",
        help="where the input came from, recorded in the header",
    )
    ap.add_argument("-o", "--output", default=DEFAULT_OUT, help="output file (default: %(default)s)")
    args = ap.parse_args()

    try:
        with open(args.input, "rb") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        print(f"{args.input}: cannot read top-pypi-packages JSON: {e}", file=sys.stderr)
        return 2
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows:
        print(f"{args.input}: no `rows` list; expected hugovk/top-pypi-packages JSON", file=sys.stderr)
        return 2

    seen = set()
    lines = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            print(f"{args.input}: rows[{i}] is not an object; skipped", file=sys.stderr)
            continue
        name, count = row.get("project"), row.get("download_count")
        if not isinstance(name, str) or not NAME_RE.match(name) or not isinstance(count, int):
            print(f"{args.input}: rows[{i}] has no valid project/download_count; skipped", file=sys.stderr)
            continue
        norm = normalize(name)
        if norm in seen:
            continue
        seen.add(norm)
        lines.append(f"{norm}\t{count}\n")

    header = [
        "# pyward popular-name corpus: PyPI projects by downloads, most downloaded first.\n",
        f"# source: {args.source}\n",
        f"# last_update: {data.get('last_update', 'unknown')}\n",
        f"# data source: {data.get('source', 'unknown')}\n",
        f"# names: {len(lines)}\n",
        "# format: normalised-name<TAB>download-count; rank = line order.\n",
        "# regenerate: scripts/refresh-popular.py top-pypi-packages.json\n",
    ]
    tmp = args.output + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(header + lines)
    os.replace(tmp, args.output)
    print(f"wrote {len(lines)} names to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
