"""Wall time of `./run_all.sh` for a profile on this machine: per notebook and total (prints figures, not a test).

    python benchmarks/bench_run_all.py                 # tiny profile, from scratch (ladder pre-training included)
    python benchmarks/bench_run_all.py --keep-ladder   # reuse results/tiny's pre-trained ladder, time the study only

It runs in a temporary results folder (AMURO_RESULTS_DIR), so the repository's own results are untouched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 600


def main() -> None:
    """Run the study once and print the per-job and total wall times against the 10-minute goal."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--keep-ladder", action="store_true", help="copy the already pre-trained ladder first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "AMURO_RESULTS_DIR": f"{tmp}/results", "AMURO_FIGURES_DIR": f"{tmp}/figures"}
        if args.keep_ladder:
            for name in ("hub_cache", "tiny_ladder.json"):
                src = REPO / "results" / args.profile / name
                dst = Path(tmp) / "results" / args.profile / name
                dst.parent.mkdir(parents=True, exist_ok=True)
                (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
        start = time.perf_counter()
        subprocess.run([str(REPO / "run_all.sh"), "--profile", args.profile], cwd=REPO, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        total = time.perf_counter() - start
        jobs = sorted((Path(tmp) / "results" / args.profile / "jobs").glob("*.done"))
        print(f"run_all.sh --profile {args.profile} on {os.cpu_count()} CPU cores"
              f"{' (ladder reused)' if args.keep_ladder else ' (from scratch, ladder pre-training included)'}")
        for job in jobs:
            print(f"  {job.stem:<28} {json.loads(job.read_text())['seconds']:>5.0f} s")
        print(f"  {'total':<28} {total:>5.0f} s   (goal ≤ {GOAL_S} s: {'met' if total <= GOAL_S else 'NOT met'})")


if __name__ == "__main__":
    main()
