# Sourced by run_all.sh and run_tests.sh: make the project's virtual environment from the lock and put it first on
# PATH. .venv gets exactly scripts/requirements-lock.txt (the versions the test suite passed with), the CPU build of
# torch (AMURO_TORCH_SPEC, default torch==2.13.0) and this package (--no-deps); it is brought back to the lock
# whenever the lock, the torch spec or pyproject's dependencies change. AMURO_VENV=DIR uses an environment of your own as it
# is (e.g. $CONDA_PREFIX from environment.yml with a CUDA torch); only one that lacks the package is installed into.
# pip's output goes to $VENV/setup.log; one line says what was done.
VENV="${AMURO_VENV:-.venv}"
PY="$VENV/bin/python"
AMURO_LOCK="scripts/requirements-lock.txt"

_amuro_setup() {
  local torch_spec="${AMURO_TORCH_SPEC:-torch==2.13.0}" stamp="$VENV/.amuro-lock" log="$VENV/setup.log"
  local start=$SECONDS wanted torch_args=()
  local imports="import amuro_utils, papermill, torch, pytest, jupyterlab, ipywidgets, playwright, peft"
  # what the environment is made from: the lock, the torch spec and pyproject's dependency lists (not its tool config)
  wanted="$(cat "$AMURO_LOCK"; sed -n '/^dependencies = \[/,/^\]/p; /^\[project.optional-dependencies\]/,/^\[tool/p' \
    pyproject.toml; echo "$torch_spec")"
  if [ -n "${AMURO_VENV:-}" ]; then
    "$PY" -c "$imports" 2>/dev/null && return 0  # yours, complete: used as it is
    "$PY" -c "import torch" 2>/dev/null || torch_args=("$torch_spec")  # keep a CUDA torch already there
  else
    # ours: in step with the lock (the stamp is what it was made from, written
    # after a complete install, so importing the package is check enough; the full import list costs ~10 s)
    if [ -x "$PY" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ] && "$PY" -c "import amuro_utils" 2>/dev/null; then
      return 0
    fi
    torch_args=("$torch_spec")
  fi
  echo "== setting up $VENV from $AMURO_LOCK (pip's output: $log)"
  [ -x "$PY" ] || python3 -m venv "$VENV" || return 1
  if ! { "$PY" -m pip install --upgrade pip \
         && "$PY" -m pip install ${torch_args[@]+"${torch_args[@]}"} -r "$AMURO_LOCK" \
         && "$PY" -m pip install --no-deps -e . \
         && "$PY" -m pip check; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "!! set-up of $VENV failed (whole log: $log). A requirement the lock lacks (\`pip check\` above): add it to" \
         "pyproject.toml and refresh the lock with scripts/try_newest.sh --refresh-lock." >&2
    return 1
  fi
  [ -n "${AMURO_VENV:-}" ] || printf '%s' "$wanted" >"$stamp"
  echo "== $VENV ready in $((SECONDS - start)) s: $(grep -c '==' "$AMURO_LOCK") locked packages, $("$PY" -c \
    'import torch, transformers; print(f"torch {torch.__version__}, transformers {transformers.__version__}")')"
}
_amuro_setup || exit 1
case "$VENV" in /*) export PATH="$VENV/bin:$PATH" ;; *) export PATH="$PWD/$VENV/bin:$PATH" ;; esac
