#!/usr/bin/env bash
# Run the whole Amuro & Char study for one profile: every notebook in order, with papermill, resumably.
#
#   ./run_all.sh                      offline CPU demo (profile "tiny"); sets up .venv on first use
#   ./run_all.sh --profile paper      the paper's recipe on OLMo-1B (needs a CUDA GPU and the HF Hub or a filled cache)
#   ./run_all.sh --profile paper-reference   every figure from the authors' released numbers (no model is run)
#   ./run_all.sh --profile paper --dry-run   print the plan: one papermill command per job, with GPU-hour estimates
#   ./run_all.sh --status             every job and record of the plan: done, stale (changed settings) or missing
#   ./run_all.sh --rerun JOB|all      force a job (or every job) to run again; its old records are kept aside
#
# Executed notebooks go to results/<profile>/notebooks/, figures and tables to figures/<profile>/.
# Kill it at any moment and run it again: finished jobs are skipped, the interrupted one resumes from its records.
# A result is reused only if it was made under the profile's current settings; stale ones are recomputed.
set -euo pipefail
cd "$(dirname "$0")"

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; echo; echo "Options: --profile NAME  --dry-run  --status  --rerun JOB|all  --help"; }

ARGS=()
PROFILE="tiny"
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) [ $# -ge 2 ] || { echo "--profile needs a name (tiny, paper, paper-reference)" >&2; exit 2; }; PROFILE="$2"; shift 2 ;;
    --profile=*) PROFILE="${1#*=}"; shift ;;
    --dry-run|--status) ARGS+=("$1"); shift ;;
    --rerun) [ $# -ge 2 ] || { echo "--rerun needs a job id (see --status) or 'all'" >&2; exit 2; }; ARGS+=(--rerun "$2"); shift 2 ;;
    --rerun=*) ARGS+=(--rerun "${1#*=}"); shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done

# Set-up on first use: a local virtual environment with the CPU build of torch (GPU users: see README).
# shellcheck source=scripts/setup_venv.sh
source scripts/setup_venv.sh
export PYTHONUNBUFFERED=1
exec "$PY" -m amuro_utils.runner --profile "$PROFILE" "${ARGS[@]+"${ARGS[@]}"}"
