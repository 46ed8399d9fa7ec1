# Sourced by run_all.sh and run_tests.sh: make (first use only) the project's virtual environment and put it first
# on PATH. CPU machines get the local CPU build of torch (torch==2.13.0); set AMURO_TORCH_SPEC (e.g. "torch") or
# AMURO_VENV (an existing environment with a CUDA torch, e.g. $CONDA_PREFIX) on GPU machines.
VENV="${AMURO_VENV:-.venv}"
PY="$VENV/bin/python"
if ! { [ -x "$PY" ] && "$PY" -c "import amuro_utils, papermill, torch, pytest, jupyterlab, ipywidgets, playwright, peft" \
         2>/dev/null; }; then
  echo "== setting up $VENV (first run only)"
  [ -x "$PY" ] || python3 -m venv "$VENV"
  "$PY" -m pip install -q --upgrade pip
  "$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install -q "${AMURO_TORCH_SPEC:-torch==2.13.0}"
  "$PY" -m pip install -q -e ".[test]"
fi
case "$VENV" in /*) export PATH="$VENV/bin:$PATH" ;; *) export PATH="$PWD/$VENV/bin:$PATH" ;; esac
