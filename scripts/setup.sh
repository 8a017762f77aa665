#!/usr/bin/env bash
# Create .venv and install lab-ci with every extra and the test tools. Idempotent:
# a second run only checks that everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.lab-ci-installed
want=$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    # torch==2.13.0 is pinned in the train extra: a CPU wheel of that version is local.
    .venv/bin/python -m pip install --quiet -e '.[all,test]'
    echo "$want" > "$stamp"
fi
