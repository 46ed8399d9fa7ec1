"""The run's one reporter: what a notebook's kernel is doing now, one JSON line per event in its job's progress log
(`progress`), which the runner reads for its progress line and ETA; the progress bar (`tqdm`), off where the runner
reports; the log read back (`read_progress`). Everything else a library module says goes through `logging`."""

from __future__ import annotations

import json
import os
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
