#!/usr/bin/env bash
# Set up (first use) and run the whole test suite: ./run_tests.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=scripts/setup_venv.sh
source scripts/setup_venv.sh
"$PY" -m amuro_utils.data.offline
exec "$PY" -m pytest "$@"
