#!/usr/bin/env bash
# One idempotent setup step: creates .venv and installs sardata with its test extras.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.sardata-installed
hash=$(cat pyproject.toml constraints-local.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$hash" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    # -c adds to any machine-wide constraint (never set PIP_CONSTRAINT: it replaces it)
    .venv/bin/python -m pip install -c constraints-local.txt -e ".[test]"
    .venv/bin/python -m pip check || true
    echo "$hash" > "$stamp"
else
    # the editable install picks up code changes by itself; nothing to do
    :
fi
