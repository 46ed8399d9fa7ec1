#!/usr/bin/env bash
# Run one job of the study: one papermill execution of one notebook, then mark it finished.
#
#   scripts/run_job.sh PROFILE JOB NOTEBOOK [-p name value ...]     (JOB, NOTEBOOK, params: `python -m amuro_utils.plan --jobs`)
#
# Both ./run_all.sh (each job in turn) and the SLURM array tasks written by `python -m amuro_utils.slurm` run jobs
# through this script, so both write the same marker, results/<profile>/jobs/<JOB>.done, only when the notebook
# succeeded; a job already marked is skipped. On failure it prints the failing cell's error and exits 1; the partial
# executed notebook stays in results/<profile>/notebooks/ for inspection. Run it from the repository root with the
# project's environment first on PATH.
set -uo pipefail
[ $# -ge 3 ] || { echo "usage: scripts/run_job.sh PROFILE JOB NOTEBOOK [-p name value ...]" >&2; exit 2; }
profile=$1 job=$2 notebook=$3
shift 3

RESULTS="${AMURO_RESULTS_DIR:-$PWD/results}"
NB_OUT="$RESULTS/$profile/notebooks"
DONE_DIR="$RESULTS/$profile/jobs"
mkdir -p "$NB_OUT" "$DONE_DIR"
if [ -f "$DONE_DIR/$job.done" ]; then
  echo "== $job: done earlier, skipped"
  exit 0
fi
echo "== $job: papermill notebooks/$notebook.ipynb $NB_OUT/$job.ipynb $*"
t0=$(date +%s)
if ! papermill "notebooks/$notebook.ipynb" "$NB_OUT/$job.ipynb" "$@" \
      --log-level WARNING --stderr-file "$NB_OUT/$job.stderr.log" </dev/null; then
  echo "!! notebook '$notebook' failed (job $job). The partial executed notebook is $NB_OUT/$job.ipynb;" >&2
  echo "!! the failing cell's error:" >&2
  "${PY:-python}" -m amuro_utils.nbtools error "$NB_OUT/$job.ipynb" >&2 || true
  exit 1
fi
echo "$(( $(date +%s) - t0 ))" > "$DONE_DIR/$job.done"
echo "== $job: finished in $(( $(date +%s) - t0 )) s"
