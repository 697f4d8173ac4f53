#!/usr/bin/env bash
# Set up the Python environment for pyward's real-Jupyter tests (crates/pyward/tests/audit_jupyter.rs):
# a venv with jupyter_server from PyPI. Idempotent: reuses the venv when jupyter_server imports.
# Location: $PYWARD_JUPYTER_VENV, default ~/.cache/pyward/jupyter-venv. Prints the venv path.
set -euo pipefail
VENV="${PYWARD_JUPYTER_VENV:-$HOME/.cache/pyward/jupyter-venv}"
PYTHON="${PYTHON:-python3}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import jupyter_server' >/dev/null 2>&1; then
    echo "$VENV"
    exit 0
fi
mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV" >&2
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check jupyter_server >&2
"$VENV/bin/python" -c 'import jupyter_server; print("jupyter_server", jupyter_server.__version__)' >&2
echo "$VENV"
