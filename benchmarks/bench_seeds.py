"""How far apart two fine-tuning seeds land, against how far the ladder moves the same score (prints figures, not a
test).

    python benchmarks/bench_seeds.py                                  # socialiqa, seeds 42 and 43, three rungs
    python benchmarks/bench_seeds.py --task mnli --seeds 42,43 --rungs step1000,step424000,main

It needs a finished `./run_all.sh` (the tiny ladder and the default seed's records). It copies results/tiny into a
temporary folder, so the study's own store is untouched, and fine-tunes the task there at the chosen rungs with
every seed the default run did not train (the profile's `seeds`, as `--set seeds=…` sets it); every model is scored
on the task's whole evaluation plan, as in the study. It then prints, per set of the plan (format default) and per
metric (the paper's, and each continuous reading the records carry):
- each seed's score at each rung, and the seed spread (SD across seeds; mean over the rungs);
- the ladder effect: how far the seeds' mean moves across these rungs (max − min), and, for the default seed alone,
  across the study's whole ladder (from its records);
- their ratio: a spread comparable to the ladder effect means one seed cannot tell the rungs apart.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SOURCE = Path(os.environ.get("AMURO_RESULTS_DIR", Path(__file__).resolve().parents[1] / "results")) / "tiny"
os.environ["AMURO_RESULTS_DIR"] = tempfile.mkdtemp(prefix="bench_seeds_")


def main() -> None:
    """Fine-tune the extra seeds, then print the spread against the ladder effect."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="socialiqa")
    parser.add_argument("--seeds", default="42,43", help="comma-separated training seeds (42: the default run's)")
    parser.add_argument("--rungs", default="step1000,step424000,main")
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    from amuro_utils import pipeline
    from amuro_utils.config import paths
    from amuro_utils.config.profiles import get_profile
    from amuro_utils.stats import signal

    if not (SOURCE / "tiny_ladder.json").is_file():
        raise SystemExit(f"no finished tiny run at {SOURCE}: run ./run_all.sh first")
    shutil.copytree(SOURCE, paths.results_dir("tiny"), ignore=shutil.ignore_patterns("notebooks"))
    seeds, rungs = tuple(int(s) for s in args.seeds.split(",")), tuple(args.rungs.split(","))
    tiny = get_profile("tiny")
    profile = replace(tiny, seeds=seeds)
    start = time.perf_counter()
    for rung in rungs:
        pipeline.run_sft(profile, rung, args.task, progress=False)
    print(f"fine-tuned and scored {args.task} at {', '.join(rungs)} with seeds {seeds} in "
          f"{time.perf_counter() - start:.0f} s (seeds the default run made were read back)")

    frame = pipeline.load_frame(profile, items=True)
    tuned = frame[(frame["fine_tune"] == args.task) & (frame["format"] == "default") & frame["method"].eq("full")]
    ladder = pipeline.load_frame(tiny, items=True)  # the default seed over the whole ladder
    ladder = ladder[(ladder["fine_tune"] == args.task) & (ladder["format"] == "default")]
    rows = []
    for metric in [None, *signal.readings_of(tuned)]:
        mine = tuned if metric is None else signal.metric_view(tuned, metric)
        whole = ladder if metric is None else signal.metric_view(ladder, metric)
        for eval_set, cells in mine.groupby("eval_set"):
            grid = cells.pivot_table(index="ckpt", columns="seed", values="mean").reindex(list(rungs))
            if grid.isna().any().any() or grid.shape[1] != len(seeds):
                continue
            spread = float(grid.std(axis=1, ddof=1).mean())
            means = grid.mean(axis=1)
            default = whole[whole["eval_set"] == eval_set]["mean"]
            rows.append({"eval_set": eval_set, "metric": metric or str(cells["metric"].iloc[0]),
                         **{f"{r} s{s}": float(grid.loc[r, s]) for r in rungs for s in seeds},
                         "seed_sd": spread, "rungs_range": float(means.max() - means.min()),
                         "ladder_range_default_seed": float(default.max() - default.min()),
                         "sd_over_rungs_range": spread / float(means.max() - means.min())
                         if means.max() > means.min() else np.inf})
    table = pd.DataFrame(rows).sort_values(["metric", "eval_set"])
    with pd.option_context("display.max_columns", None, "display.width", 250, "display.float_format", "{:.4f}".format):
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
