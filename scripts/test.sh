#!/usr/bin/env bash
# Set up everything on a fresh machine (Python 3.11 and git) and run the whole test suite.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
set +e
.venv/bin/python -m pytest -n 2 --dist loadgroup "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "scripts/test.sh: pytest collected no tests; failing on purpose" >&2
    exit 1
fi
exit "$rc"
