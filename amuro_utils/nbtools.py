"""Small notebook utilities for run_all.sh and the tests: what a notebook is doing now (for the runner's progress
line), the failing cell's error, the jupytext pairing check."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

PROGRESS_ENV = "AMURO_PROGRESS_FILE"  # set by the runner for each papermill job it starts


def progress(what: str, **where) -> None:
    """Say what this notebook's kernel is doing now ("fine-tuning mnli", ckpt=…, task=…): one JSON line the runner
    polls for its progress line and ETA, also appended to the job's progress log (`progress_log`). A no-op where no
    runner asked (JupyterLab, papermill by hand)."""
    path = os.environ.get(PROGRESS_ENV)
    if not path:
        return
    line = json.dumps({"what": what, **where, "t": time.time()})
    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".progress.")
        with os.fdopen(fd, "w") as handle:
            handle.write(line)
        os.replace(tmp, path)  # the runner reads the old line or the new one, never half of one
        with open(progress_log(path), "a") as log:  # every event, for the cost model's timeline to be checked on
            log.write(line + "\n")
    except OSError:
        pass


def progress_log(path: str | Path) -> Path:
    """The log beside a job's progress file (<job>.progress.jsonl): every event its notebook said, with its time."""
    return Path(path).with_suffix(".jsonl")


def read_progress_log(path: str | Path) -> list[dict]:
    """The events of a job's progress log, in order (complete lines only)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:  # a line being written when the job was killed
            continue
    return events


def read_progress(path: str | Path) -> dict | None:
    """The last progress line a notebook wrote (None if none or unreadable)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def cell_error(path: str | Path) -> str:
    """The error (name, value and the last traceback lines) of the first failing cell of an executed notebook."""
    import nbformat  # here, not at import: nbformat's schema validator costs every kernel ~1.5 s to import

    nb = nbformat.read(str(path), as_version=4)
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                source = cell.source.strip().splitlines()
                head = source[0] if source else ""
                return (f"cell {index} ({head[:80]!r}): {output['ename']}: {output['evalue']}")
    return f"no cell of {path} holds an error (the kernel may have died or been killed)"


def paired_text(ipynb: str | Path) -> str:
    """The py:percent text jupytext makes from a notebook (what the paired .py must hold)."""
    import jupytext

    return jupytext.writes(jupytext.read(str(ipynb)), fmt="py:percent")


def main(argv: list[str]) -> int:
    """`python -m amuro_utils.nbtools error NOTEBOOK` prints the failing cell's error."""
    if len(argv) == 2 and argv[0] == "error":
        print(cell_error(argv[1]))
        return 0
    print("usage: python -m amuro_utils.nbtools error NOTEBOOK.ipynb", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
