#!/usr/bin/env bash
# Run the whole Amuro & Char study for one profile: every notebook in order, with papermill, resumably.
#
#   ./run_all.sh                      offline CPU demo (profile "tiny"); sets up .venv on first use
#   ./run_all.sh --profile paper      the paper's recipe on OLMo-1B (needs a CUDA GPU and the HF Hub or a filled cache)
#   ./run_all.sh --profile paper-reference   every figure from the authors' released numbers (no model is run)
#   ./run_all.sh --profile paper --dry-run   print the plan: one papermill command per job, with GPU-hour estimates
#   ./run_all.sh --profile paper --check     preflight: every checkpoint and dataset source of the plan, before any download
#   ./run_all.sh --allow-unpinned     read hub datasets not pinned in data/hub_pins.json at their branch head (on purpose)
#   ./run_all.sh --status             every job and record of the plan: done, stale (changed settings) or missing
#   ./run_all.sh --rerun JOB|all      force a job (or every job) to run again; its old records are kept aside
#   ./run_all.sh --over-budget        run a CPU profile whose estimated wall time exceeds its budget_s anyway
#   ./run_all.sh --set eval_limit=5 --set seeds=1,2   change profile fields for this run (checked against the profile;
#                                     nested: sensitivity.tokens=1024, tasks.mnli.n_train=64; every notebook gets them)
#   ./run_all.sh --profile-file my_study.toml          a whole new study: a named profile plus changed fields (README)
#   ./run_all.sh --profile paper --slurm DIR [--partition P] [--account A] [--sbatch-option OPT]... [--submit]
#                                     write SLURM job arrays (one per stage, chained with afterok) for the unfinished jobs
#
# Executed notebooks go to results/<profile>/notebooks/, figures and tables to figures/<profile>/.
# Kill it at any moment and run it again: finished jobs are skipped, the interrupted one resumes from its records.
# A result is reused only if it was made under the profile's current settings; stale ones are recomputed.
set -euo pipefail
CALLER_DIR=$PWD  # --slurm DIR is relative to where the user stands
cd "$(dirname "$0")"

usage() {
  awk 'NR > 1 && /^#/ {print; next} NR > 1 {exit}' "$0" | sed 's/^# \{0,1\}//'
  echo
  echo "Options: --profile NAME  --profile-file FILE  --set FIELD=VALUE  --check  --dry-run  --status  --rerun JOB|all"
  echo "         --over-budget  --allow-unpinned"
  echo "         --slurm DIR  --partition P  --account A  --sbatch-option OPT  --submit  --help"
}

PROFILE="tiny"
PROFILE_ARGS=()  # --profile-file and --set go to the runner and to the SLURM writer alike
ARGS=()
SLURM_DIR=""
SLURM_ARGS=()  # handed to `python -m amuro_utils.run.slurm` untouched: sbatch judges partition, account and options
needs_value() { [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }; }
from_caller() { case "$1" in /*) echo "$1" ;; *) echo "$CALLER_DIR/$1" ;; esac; }  # a path the user typed
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) [ $# -ge 2 ] || { echo "--profile needs a name (tiny, paper, paper-reference)" >&2; exit 2; }; PROFILE="$2"; shift 2 ;;
    --profile=*) PROFILE="${1#*=}"; shift ;;
    --set) needs_value "$@"; PROFILE_ARGS+=(--set "$2"); shift 2 ;;
    --set=*) PROFILE_ARGS+=(--set "${1#*=}"); shift ;;
    --profile-file) needs_value "$@"; PROFILE_ARGS+=(--profile-file "$(from_caller "$2")"); shift 2 ;;
    --profile-file=*) PROFILE_ARGS+=(--profile-file "$(from_caller "${1#*=}")"); shift ;;
    --dry-run|--status|--over-budget|--check) ARGS+=("$1"); shift ;;
    --allow-unpinned) export AMURO_ALLOW_UNPINNED=1; shift ;;  # read by amuro_utils.data.tasks in every notebook kernel
    --rerun) [ $# -ge 2 ] || { echo "--rerun needs a job id (see --status) or 'all'" >&2; exit 2; }; ARGS+=(--rerun "$2"); shift 2 ;;
    --rerun=*) ARGS+=(--rerun "${1#*=}"); shift ;;
    --slurm) needs_value "$@"; SLURM_DIR="$2"; shift 2 ;;
    --slurm=*) SLURM_DIR="${1#*=}"; shift ;;
    --partition|--account|--sbatch-option) needs_value "$@"; SLURM_ARGS+=("$1=$2"); shift 2 ;;
    --partition=*|--account=*|--sbatch-option=*) SLURM_ARGS+=("$1"); shift ;;
    --submit) SLURM_ARGS+=("--submit"); shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done
if [ -z "$SLURM_DIR" ] && [ ${#SLURM_ARGS[@]} -gt 0 ]; then
  echo "${SLURM_ARGS[0]%%=*} only goes with --slurm DIR" >&2; exit 2
fi
if [ -n "$SLURM_DIR" ]; then
  [ ${#ARGS[@]} -eq 0 ] || { echo "--slurm DIR writes the plan as sbatch scripts; it excludes ${ARGS[0]}" >&2; exit 2; }
  case "$SLURM_DIR" in /*) ;; *) SLURM_DIR="$CALLER_DIR/$SLURM_DIR" ;; esac
fi

# Set-up on first use: a local virtual environment with the CPU build of torch (GPU users: see README).
# shellcheck source=scripts/setup_venv.sh
source scripts/setup_venv.sh
export PYTHONUNBUFFERED=1
if [ -n "$SLURM_DIR" ]; then
  exec "$PY" -m amuro_utils.run.slurm --profile "$PROFILE" ${PROFILE_ARGS[@]+"${PROFILE_ARGS[@]}"} --out "$SLURM_DIR" \
    ${SLURM_ARGS[@]+"${SLURM_ARGS[@]}"}
fi
exec "$PY" -m amuro_utils.run.runner --profile "$PROFILE" ${PROFILE_ARGS[@]+"${PROFILE_ARGS[@]}"} ${ARGS[@]+"${ARGS[@]}"}
