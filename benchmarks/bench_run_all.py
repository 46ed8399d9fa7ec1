"""Wall time of `./run_all.sh` for a profile on this machine: per notebook, per stage and total (prints figures, not
a test).

    python benchmarks/bench_run_all.py                 # tiny profile, from scratch (ladder pre-training included)
    python benchmarks/bench_run_all.py --keep-ladder   # reuse results/tiny's pre-trained ladder, time the study only
    python benchmarks/bench_run_all.py --results DIR   # only the breakdown of a finished run in DIR (AMURO_RESULTS_DIR)

It runs in a temporary results folder (AMURO_RESULTS_DIR), so the repository's own results are untouched. The
breakdown splits each job's wall time (its marker) into the stages its own files time: ladder pre-training
(tiny_ladder.json), fine-tuning (fine_tunes/*.json), evaluation by kind (every record's seconds: classification,
generation, rank classification of multiple choice), and the rest (kernel start and imports, model loading and
saving, the sensitivity probe and forgetting losses, figures and verdicts).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 600
STAGES = ("pre-training", "fine-tuning", "classification", "generation", "multiple_choice", "rest")


def breakdown(root: Path, profile_name: str) -> dict[str, dict[str, float]]:
    """job id -> stage -> wall seconds of a finished run under `root` (results/<profile>)."""
    sys.path.insert(0, str(REPO))
    from amuro_utils.config.profiles import get_profile
    from amuro_utils.data import tasks

    instruction = get_profile(profile_name).instruction.name

    jobs = {p.stem: json.loads(p.read_text())["seconds"] for p in sorted((root / "jobs").glob("*.done"))}
    notebook_of = {job: job.split("_", 1)[1] for job in jobs}
    by_notebook: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    ladder_file = root / "tiny_ladder.json"
    if ladder_file.exists():
        by_notebook["pretrain_probe"]["pre-training"] += json.loads(ladder_file.read_text())["wall_s"]
    for path in root.glob("fine_tunes/*/*.json"):
        record = json.loads(path.read_text())
        notebook = "instruction_tuning" if record["fine_tune"] == instruction else "sft"
        by_notebook[notebook]["fine-tuning"] += record.get("seconds") or 0.0
    for path in (root / "records").rglob("*.json"):
        record = json.loads(path.read_text())
        key = record["key"]
        kind = tasks.get(key["eval_set"]).kind
        notebook = ("pretrain_probe" if key["fine_tune"] == "base" else
                    "instruction_tuning" if key["fine_tune"] == instruction else "sft")
        by_notebook[notebook][kind] += record["metrics"].get("seconds") or 0.0
    out = {}
    for job, seconds in jobs.items():
        stages = dict(by_notebook.get(notebook_of[job], {}))
        stages["rest"] = seconds - sum(stages.values())
        out[job] = {s: stages.get(s, 0.0) for s in STAGES}
    return out


def print_breakdown(root: Path, profile_name: str, total: float | None = None) -> None:
    """The per-job, per-stage table of a finished run (and its total wall time when measured)."""
    table = breakdown(root, profile_name)
    print(f"  {'job':<24} {'wall s':>7}  " + " ".join(f"{s:>15}" for s in STAGES))
    sums = defaultdict(float)
    for job, stages in table.items():
        wall = sum(stages.values())
        print(f"  {job:<24} {wall:>7.0f}  " + " ".join(f"{stages[s]:>15.0f}" for s in STAGES))
        for s in STAGES:
            sums[s] += stages[s]
    jobs_total = sum(sums.values())
    print(f"  {'all jobs':<24} {jobs_total:>7.0f}  " + " ".join(f"{sums[s]:>15.0f}" for s in STAGES))
    if total is not None:
        print(f"  {'total (run_all.sh)':<24} {total:>7.0f}  (goal ≤ {GOAL_S} s: "
              f"{'met' if total <= GOAL_S else 'NOT met'}; outside the jobs: {total - jobs_total:.0f} s)")


def main() -> None:
    """Run the study once and print the per-job and per-stage wall times against the 10-minute goal."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--keep-ladder", action="store_true", help="copy the already pre-trained ladder first")
    parser.add_argument("--results", type=Path, default=None,
                        help="a finished run's results folder (AMURO_RESULTS_DIR): print its breakdown, run nothing")
    args = parser.parse_args()
    if args.results is not None:
        print(f"breakdown of {args.results / args.profile} (wall seconds, as measured by that run)")
        print_breakdown(args.results / args.profile, args.profile)
        return
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
        print(f"run_all.sh --profile {args.profile} on {os.cpu_count()} CPU cores"
              f"{' (ladder reused)' if args.keep_ladder else ' (from scratch, ladder pre-training included)'}; "
              f"load average {os.getloadavg()[0]:.1f} at the end")
        print_breakdown(Path(tmp) / "results" / args.profile, args.profile, total)


if __name__ == "__main__":
    main()
