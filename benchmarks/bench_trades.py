"""Which trade within the tiny profile's 600 s buys the most decisive claim parts (prints figures, not a test).

    python benchmarks/bench_trades.py                       # every trade, then the table
    python benchmarks/bench_trades.py --only items,steps    # some of them
    python benchmarks/bench_trades.py --table               # only the table, from the runs already made

Each trade spends the 10-minute study budget differently: the default spends it on the paper's eight rungs (plus
step550000, Springer et al.'s pair); the others give up rungs and buy items per set, a second fine-tuning seed,
longer pre-training or a larger body with what that frees. The cost model (amuro_utils.study.cost, the rates measured in
data/cpu_throughput.json; a larger body's with its measured cost per kind of work, `body_cost`) prices each trade
from scratch, and each is sized to the default's price.

Every trade runs the whole study with `./run_all.sh --profile-file` under results/trades/ (figures in
results/trades/figures/; nothing in the repository's figures/ changes). A trade that keeps the default's ladder
starts from a copy of results/tiny, so that the records it shares with the default (the same identity) are reused
and only what it changes is computed; the others run from scratch. The table counts, per trade, the claim parts
whose verdict is decisive — supported or contradicted under the calibrated rules — on the paper's metric and on each
continuous reading (claims_readings.csv), with the price and the wall time. Decisive means either direction: the
trade is never chosen by agreement with the paper.

The continuous readings are a trade of their own (they cost the teacher-forced pass over the generation sets'
references, README "Signal at small scale"): the default run's readings rows are that trade.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO / "results" / "trades"
FIGURES = ROOT / "figures"
DEFAULT_RESULTS = REPO / "results" / "tiny"
DEFAULT_FIGURES = REPO / "figures" / "tiny"  # the default trade is the tiny profile's own run (./run_all.sh)
DECISIVE = ("supported", "contradicted")
SIX_RUNGS = ["step1000", "step18000", "step342000", "step424000", "step592000", "main"]
FIVE_RUNGS = ["step1000", "step18000", "step342000", "step424000", "main"]
FOUR_RUNGS = ["step1000", "step342000", "step424000", "main"]

# name -> (what it buys, what pays for it, the profile file's fields beyond `profile = "tiny"`)
TRADES = {
    "default": ("the paper's eight rungs + step550000", "—", {}),
    "items": ("95 items per set (50)", "three rungs fewer (six + step550000)",
              {"ckpts": SIX_RUNGS, "eval_limit": 95}),
    "seeds": ("a second fine-tuning seed (42, 43) on every task", "four rungs fewer, no dynamics",
              {"ckpts": FIVE_RUNGS, "seeds": [42, 43], "dynamics": "none"}),
    "steps": ("800 pre-training steps (300)", "three rungs fewer",
              {"ckpts": SIX_RUNGS, "tiny_ladder": {"total_steps": 800}}),
    "body": ("a 128 × 2 body (1.57M parameters; 64 × 2, 0.66M)", "five rungs fewer",
             {"ckpts": FOUR_RUNGS, "tiny_ladder": {"hidden_size": 128, "num_heads": 4, "intermediate_size": 512}}),
}


def toml_value(value) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def profile_file(name: str, fields: dict) -> Path:
    """The trade's profile file (TOML) under results/trades/."""
    lines = ['profile = "tiny"', f'name = "trade-{name}"']
    tables = {k: v for k, v in fields.items() if isinstance(v, dict)}
    lines += [f"{k} = {toml_value(v)}" for k, v in fields.items() if k not in tables]
    for table, values in tables.items():
        lines += ["", f"[{table}]", *(f"{k} = {toml_value(v)}" for k, v in values.items())]
    path = ROOT / f"trade-{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def price(path: Path) -> float | None:
    """The cost model's estimate of the trade from scratch (None where it has no rates)."""
    from amuro_utils.study import cost, overrides

    frame = cost.cpu_estimate(overrides.load(path))
    return None if frame is None else float(frame["seconds"].sum())


def run(name: str, fields: dict) -> float:
    """Run the trade's study; its wall seconds."""
    path = profile_file(name, fields)
    results = ROOT / f"trade-{name}"
    if not results.exists() and "tiny_ladder" not in fields and DEFAULT_RESULTS.joinpath("jobs").exists():
        shutil.copytree(DEFAULT_RESULTS, results, symlinks=True)  # same identities are reused, the rest computed
        shutil.rmtree(results / "jobs")  # every job runs (its notebook checks its records) and writes its verdicts
    env = {**os.environ, "AMURO_RESULTS_DIR": str(ROOT), "AMURO_FIGURES_DIR": str(FIGURES)}
    start = time.perf_counter()
    subprocess.run([str(REPO / "run_all.sh"), "--profile-file", str(path), "--over-budget"], cwd=REPO, env=env,
                   check=True)
    wall = time.perf_counter() - start
    (results / "trade_wall_s.json").write_text(json.dumps({"wall_s": wall}))
    return wall


def counts(name: str) -> dict[str, str]:
    """Decisive parts of the trade's scorecard: on the paper's metric and on each reading."""
    import pandas as pd

    folder = DEFAULT_FIGURES if name == "default" else FIGURES / f"trade-{name}".replace("-", "_")
    paper = pd.read_csv(folder / "claims.csv")
    out = {"paper metric": _count(paper)}
    readings = pd.read_csv(folder / "claims_readings.csv")
    for reading, rows in readings.groupby("reading", sort=False):
        out[reading] = _count(rows[rows["verdict"] != "not judged on a reading"])
    return out


def _count(rows) -> str:
    decisive = rows[rows["verdict"].isin(DECISIVE)]
    named = ", ".join(f"{r.id}{'+' if r.verdict == 'supported' else '−'}" for r in decisive.itertuples())
    return f"{len(decisive)}/{len(rows)}" + (f" ({named})" if named else "")


def table(names) -> str:
    sys.path.insert(0, str(REPO))
    lines = ["| trade | buys | pays with | priced s | wall s | paper metric | answer text | discrimination |",
             "|---|---|---|---|---|---|---|---|"]
    for name in names:
        buys, pays, fields = TRADES[name]
        path = profile_file(name, fields)
        priced = price(path)
        priced_text = "—" if priced is None else f"{priced:.0f}"
        wall_file = (DEFAULT_RESULTS if name == "default" else ROOT / f"trade-{name}") / "trade_wall_s.json"
        wall = f"{json.loads(wall_file.read_text())['wall_s']:.0f}" if wall_file.exists() else "not run"
        if name == "default" and not wall_file.exists():
            wall = "./run_all.sh"
        try:
            found = counts(name)
        except FileNotFoundError:
            found = {}
        lines.append(f"| {name} | {buys} | {pays} | {priced_text} | {wall} | "
                     + " | ".join(found.get(k, "—") for k in ("paper metric", "answer text", "discrimination")) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated trades (of {', '.join(TRADES)})")
    parser.add_argument("--table", action="store_true", help="print the table of the runs already made")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(TRADES)
    unknown = sorted(set(names) - set(TRADES))
    if unknown:
        parser.error(f"unknown trades {unknown}; trades: {list(TRADES)}")
    ROOT.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO))
    if not args.table:
        for name in [n for n in names if n != "default"]:  # the default is ./run_all.sh's own run
            print(f"== trade {name}: buys {TRADES[name][0]}, pays with {TRADES[name][1]}", flush=True)
            print(f"   wall {run(name, TRADES[name][2]):.0f} s", flush=True)
    print(table(names))


if __name__ == "__main__":
    main()
