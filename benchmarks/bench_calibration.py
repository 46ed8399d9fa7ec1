"""The calibration table of the verdict rules: every claim part simulated under known truths with a real source's
noise (amuro_utils.verdicts.calibration), the verdicts counted, written to figures/<profile>/calibration.md and .csv.

Prints figures (not a test; tests/test_calibration.py checks five parts at the boundary at a fixed seed).
`paper-reference` simulates the release's cells and standard errors; `tiny` the tiny profile's plan with 50 paired
items per set and the constant-predictor shares of the tiny run in results/tiny (run ./run_all.sh first, or give
--constant-share base,fine_tuned).

    .venv/bin/python benchmarks/bench_calibration.py --profile paper-reference [--reps 500] [--jobs 2]
    .venv/bin/python benchmarks/bench_calibration.py --profile tiny [--parts B2,B3] [--reps 500]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import pandas as pd

from amuro_utils import pipeline, stats
from amuro_utils.config.profiles import get_profile
from amuro_utils.verdicts import calibration, claims


def source(args) -> calibration.Source:
    """The noise model the profile names."""
    if args.profile == "paper-reference":
        return calibration.release_source()
    share = None
    if args.constant_share:
        base, tuned = (float(x) for x in args.constant_share.split(","))
        share = {"base": base, "fine_tuned": tuned}
    profile = get_profile(args.profile)
    frame = pipeline.load_frame(profile, items=True)
    if args.reading:
        return calibration.reading_source(frame, profile, args.reading)
    held_out = {"sensitivity": pipeline.sensitivity_rows(profile), "forgetting": pipeline.forgetting_frame(profile)}
    if not len(frame) and share is None:
        sys.exit(f"no records of profile {profile.name!r} in results/{profile.name}: run ./run_all.sh --profile "
                 f"{profile.name} first (the tiny noise model reads its constant-predictor shares and levels), or "
                 "give --constant-share BASE,FINE_TUNED")
    return calibration.tiny_source(frame if len(frame) else None, profile, share,
                                   {k: v for k, v in held_out.items() if v is not None and len(v)} or None)


def one(job):
    src, part, reps, n_boot, seed = job
    return calibration.calibrate_part(src, part, reps=reps, n_boot=n_boot, seed=seed)


def one_random(job):
    src, part, reps, n_boot, seed = job
    return calibration.calibrate_random_units(src, part, reps=reps, n_boot=n_boot, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="paper-reference", choices=["paper-reference", "tiny"])
    parser.add_argument("--parts", default=",".join(calibration.SIMULATED + calibration.HELD_OUT))
    parser.add_argument("--reps", type=int, default=500)
    parser.add_argument("--n-boot", type=int, default=stats.N_BOOT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (one part each)")
    parser.add_argument("--constant-share", default="", help="tiny: BASE,FINE_TUNED shares of constant predictors")
    parser.add_argument("--random-units", action="store_true",
                        help="also the boundary with each part's units drawn at random (parts whose units are resampled)")
    parser.add_argument("--reading", default="", choices=["", "answer text", "discrimination"],
                        help="tiny: the claims about a direction judged on this continuous reading, under the run's "
                             "noise on it (calibration_readings.md)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if args.reading and args.profile == "paper-reference":
        parser.error("--reading needs a run's records with readings (--profile tiny): the release has none")
    src = source(args)
    parts = [p for p in args.parts.split(",") if p]
    if args.reading:  # only the parts judged on a reading (claims.reading_why_not)
        study = calibration._template(src)
        parts = [p for p in parts if p in calibration.SIMULATED
                 and not claims.reading_why_not(calibration._part(study, p))]
    start = time.perf_counter()
    jobs = [(src, p, args.reps, args.n_boot, args.seed) for p in parts]
    rows = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for part, out in zip(parts, pool.map(one, jobs)):
            rows += out
            shown = pd.DataFrame(out).reindex(columns=["id", "truth", "supported", "contradicted", "inconclusive",
                                                       "uninformative", "false_support", "false_contradiction", "mde",
                                                       "note"])
            print(shown.to_string(index=False, header=part == parts[0]), flush=True)
        sampled = [r for r in pool.map(one_random, jobs) if r is not None] if args.random_units else []
    table = pd.DataFrame(rows)
    table.attrs.update(source=src.name, profile=src.profile.name, origin=src.origin, reading=args.reading)
    random_units = pd.DataFrame(sampled) if sampled else None
    if random_units is not None:
        print("\nunits drawn at random, at the boundary:\n" + random_units.to_string(index=False))
    print(f"\n{len(parts)} parts × {args.reps} replications in {time.perf_counter() - start:.0f} s "
          f"({args.jobs} processes)")
    print(calibration.boundary_summary(table).to_string(index=False))
    if not args.no_write:
        command = " ".join(["python benchmarks/bench_calibration.py", *sys.argv[1:]])
        stem = "calibration_readings" if args.reading else "calibration"
        if args.reading == "discrimination":
            stem += "_discrimination"
        for path in calibration.write_calibration(table, get_profile(args.profile), command, random_units, stem):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
