"""Small notebook utilities for run_all.sh and the tests: what a notebook is doing now (for the runner's progress
line), the failing cell's error, the jupytext pairing check."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

PROGRESS_ENV = "AMURO_PROGRESS_FILE"  # set by the runner for each papermill job it starts: its progress log


def progress(what: str, **where) -> None:
    """Say what this notebook's kernel is doing now ("fine-tuning mnli", ckpt=…, task=…): one JSON line, with its
    time, appended to the job's progress log, which the runner reads for its progress line and ETA. A no-op where no
    runner asked (JupyterLab, papermill by hand)."""
    path = os.environ.get(PROGRESS_ENV)
    if not path:
        return
    try:
        with open(path, "a") as log:  # one write per line: a reader sees whole lines, or a last one cut short
            log.write(json.dumps({"what": what, **where, "t": time.time()}) + "\n")
    except OSError:
        pass


def tqdm(*args, disable: bool = False, **kwargs):
    """tqdm.auto's progress bar, off where the runner tracks the job (PROGRESS_ENV set): a papermill kernel saves a
    bar as a widget without its state, which reads "0%" in the executed notebook, and the runner's progress line
    already says what the job is doing. In JupyterLab and by hand the bar shows as before."""
    from tqdm.auto import tqdm as bar

    return bar(*args, disable=disable or bool(os.environ.get(PROGRESS_ENV)), **kwargs)


def read_progress(path: str | Path) -> list[dict]:
    """The events of a job's progress log, in order (a line cut short by a kill, or being written, is left out)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


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


def main(argv: list[str]) -> int:
    """`python -m amuro_utils.nbtools error NOTEBOOK` prints the failing cell's error."""
    if len(argv) == 2 and argv[0] == "error":
        print(cell_error(argv[1]))
        return 0
    print("usage: python -m amuro_utils.nbtools error NOTEBOOK.ipynb", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
