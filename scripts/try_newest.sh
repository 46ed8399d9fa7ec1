#!/usr/bin/env bash
# Try the newest release of every dependency in a throwaway virtual environment, or refresh the lock from them.
#
#   scripts/try_newest.sh                  newest releases; the API-sensitive tests (transformers' cache and
#                                          generation, fine-tuning and LoRA, checkpoint loading, datasets and the hub
#                                          preflight); lists every version that differs from the lock
#   scripts/try_newest.sh --refresh-lock   newest releases; the WHOLE suite; if it passes, writes them to
#                                          scripts/requirements-lock.txt (review with `git diff`, commit)
#
# AMURO_NEWEST_DIR (default /tmp/amuro-newest) is where the throwaway environment goes, pip's output beside it (.log).
# torch stays at the set-up's pin (AMURO_TORCH_SPEC, default torch==2.13.0): a new torch is a choice, not a refresh.
# Exit status: 0 when the tests pass on the newest releases, 1 when they fail (the lock is then kept as it is).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=api
case "${1:-}" in
  --refresh-lock) MODE=lock ;;
  "") ;;
  -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
esac
LOCK=scripts/requirements-lock.txt
DIR="${AMURO_NEWEST_DIR:-/tmp/amuro-newest}"
LOG="$DIR.log"
API_TESTS=(tests/test_prefix.py tests/test_evaluate.py tests/test_train.py tests/test_ladder.py tests/test_tasks.py
           tests/test_hubcheck.py)

start=$SECONDS
rm -rf "$DIR"
python3 -m venv "$DIR"
echo "== installing the newest releases into $DIR (pip's output: $LOG)"
if ! { "$DIR/bin/python" -m pip install --upgrade pip \
       && "$DIR/bin/python" -m pip install "${AMURO_TORCH_SPEC:-torch==2.13.0}" -e ".[test]" \
       && "$DIR/bin/python" -m pip check; } >"$LOG" 2>&1; then
  tail -n 20 "$LOG" >&2
  echo "!! the newest releases do not install together (whole log: $LOG)" >&2
  exit 1
fi
newest() { "$DIR/bin/python" -m pip freeze --exclude-editable | grep -Eiv '^(torch|triton|nvidia-[a-z0-9-]+)=='; }
echo "== installed in $((SECONDS - start)) s; releases newer (or other) than the lock:"
diff <(grep -v '^#' "$LOCK") <(newest) | sed -n 's/^> /   /p' | grep . \
  || echo "   none: the lock holds the newest releases"

if [ "$MODE" = api ]; then
  echo "== the API-sensitive tests on the newest releases: ${API_TESTS[*]}"
  AMURO_VENV="$DIR" ./run_tests.sh -q -p no:cacheprovider -m "not slow" "${API_TESTS[@]}" \
    && echo "== newest releases: API-sensitive tests PASSED in $((SECONDS - start)) s" \
    || { echo "!! newest releases: API-sensitive tests FAILED (the lock still holds what passed)" >&2; exit 1; }
  exit 0
fi

echo "== the whole suite on the newest releases"
if ! AMURO_VENV="$DIR" ./run_tests.sh -q -p no:cacheprovider; then
  echo "!! the suite fails on the newest releases: $LOCK is kept as it is" >&2
  exit 1
fi
{ sed -n '/^#/p' "$LOCK"; newest; } >"$LOCK.new"
mv "$LOCK.new" "$LOCK"
echo "== suite passed: $LOCK now holds the newest releases ($((SECONDS - start)) s). Review \`git diff $LOCK\`, commit;"
echo "   environment.yml reads the same file. .venv follows on its next use (scripts/setup_venv.sh)."
