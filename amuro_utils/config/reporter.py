"""The run's one reporter. What the person running the study reads goes through here: the lines of a run (`say`: the
runner's "== job" lines, what a notebook's figures were drawn from, a preflight's table), what a notebook's kernel is
doing now (`progress`: one JSON line per event in its job's progress log, which the runner reads for its progress
line and ETA, with `read_progress`), and the progress bar (`tqdm`, off where the runner reports). Everything else a
library module says (warnings, what was reused or recomputed) goes through `logging`."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

PROGRESS_ENV = "AMURO_PROGRESS_FILE"  # set by the runner for each papermill job it starts: its progress log


def say(line: str, *, error: bool = False) -> None:
    """One line for whoever runs the study, at once (flushed): the console of run_all.sh, or a notebook's output;
    `error`: on standard error (a failure, a refusal, with its fix)."""
    print(line, file=sys.stderr if error else sys.stdout, flush=True)


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


def log_event(path: str | Path, what: str) -> None:
    """The runner's own event in a job's progress log: "job started" begins a fresh log, any other is appended (the
    log of a finished job is a recorded progress sequence, start to end)."""
    with open(path, "w" if what == "job started" else "a") as handle:
        handle.write(json.dumps({"what": what, "t": time.time()}) + "\n")


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
