"""Sizing the Springer et al. sensitivity probe on the tiny ladder: Δloss and its CI per checkpoint, per noise scaling
and magnitude, for several numbers of noise seeds and held-out tokens; and what one probe costs per checkpoint.

Prints figures (not a test). `--cost` times the tiny profile's own probe (its SensitivitySettings) on every
checkpoint, at 2 and at 1 torch threads, side by side, with the machine's load average. Stage 1 (`--measure`) scores every checkpoint of the tiny ladder clean and under every
(scaling, magnitude, seed) on the held-out blocks and saves the per-block losses; stage 2 (default) reads them and
prints, per reading, ckpt × Δloss [95 % CI] for sub-samples of seeds and blocks (the first n of each, as the probe
would use them), and the CI half-width as a function of seeds × tokens.

    .venv/bin/python benchmarks/bench_sensitivity.py --cost
    .venv/bin/python benchmarks/bench_sensitivity.py --measure [--threads 2] [--seeds 8] [--tokens 32768]
    .venv/bin/python benchmarks/bench_sensitivity.py [--seeds-grid 1,2,4,8] [--blocks-grid 16,32,64,128,256]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from amuro_utils import stats
from amuro_utils.config.paths import results_dir
from amuro_utils.config.profiles import SensitivitySettings, get_profile
from amuro_utils.models import ladder, sensitivity

READINGS = {"init": (0.5, 1.0, 2.0), "relative": (0.1,), "isotropic": (0.02,)}
OUT = results_dir("tiny") / "sensitivity_sizing.json"


def measure(args) -> None:
    """Score every tiny checkpoint clean and perturbed on all blocks; save per-block losses and timings."""
    import torch

    torch.set_num_threads(args.threads)
    profile = get_profile("tiny")
    readings = {k: v for k, v in READINGS.items() if k in args.scalings.split(",")}
    settings = SensitivitySettings(scaling=next(iter(readings)), magnitudes=next(iter(readings.values())),
                                   seeds=args.seeds, tokens=args.tokens, block=args.block,
                                   batch_size=args.batch_size, also=dict(list(readings.items())[1:]))
    saved = {"settings": {"readings": readings, "seeds": args.seeds, "tokens": args.tokens, "block": args.block,
                          "batch_size": args.batch_size, "threads": args.threads}, "ckpts": {}}
    blocks = None
    for ckpt in profile.ckpts:
        model, tokenizer, provenance = ladder.load(profile.ladder, ckpt, device="cpu", dtype="float32",
                                                   cache_dir=ladder.tiny_cache_dir())
        if blocks is None:
            blocks = sensitivity.heldout_token_blocks(tokenizer, args.block, args.tokens)
        start = time.perf_counter()
        clean = sensitivity.block_losses(model, blocks, args.batch_size)
        forward_s = time.perf_counter() - start
        start = time.perf_counter()
        frame = sensitivity.probe(model, blocks, settings)
        probe_s = time.perf_counter() - start
        saved["ckpts"][ckpt] = {
            "step": provenance["step"], "clean": clean.tolist(), "forward_s": forward_s, "probe_s": probe_s,
            "rows": [{"scaling": r.scaling, "magnitude": r.magnitude, "seed": r.seed,
                      "block_deltas": r.block_deltas.tolist()} for r in frame.itertuples()]}
        print(f"{ckpt}: clean loss {clean.mean():.4f}; one forward over {blocks.numel():,} tokens {forward_s:.2f} s; "
              f"probe of {len(frame)} perturbed models {probe_s:.1f} s", flush=True)
    OUT.write_text(json.dumps(saved))
    print(f"saved {OUT}")


def cost(args) -> None:
    """Seconds of the tiny profile's probe per checkpoint and in total, at 2 and 1 threads (models loaded first)."""
    import os

    import torch

    profile = get_profile("tiny")
    settings = profile.sensitivity
    models = {c: ladder.load(profile.ladder, c, device="cpu", dtype=settings.dtype,
                             cache_dir=ladder.tiny_cache_dir())[:2] for c in profile.ckpts}
    blocks = sensitivity.heldout_token_blocks(next(iter(models.values()))[1], settings.block, settings.tokens)
    forwards = 1 + settings.seeds * sum(map(len, settings.readings().values()))
    print(f"tiny probe: {settings}; {forwards} forwards × {blocks.numel():,} tokens per checkpoint")
    for threads in (2, 1):
        torch.set_num_threads(threads)
        load = os.getloadavg()[0]
        seconds = {}
        for ckpt, (model, _) in models.items():
            start = time.perf_counter()
            sensitivity.probe(model, blocks, settings)
            seconds[ckpt] = time.perf_counter() - start
        print(f"threads {threads} (load average {load:.1f} → {os.getloadavg()[0]:.1f}): total "
              f"{sum(seconds.values()):.1f} s; per checkpoint "
              + ", ".join(f"{c} {s:.1f}" for c, s in seconds.items()), flush=True)


def report(args) -> None:
    """ckpt × Δloss [95 % CI] per reading for sub-samples of seeds and blocks, and the CI width table."""
    import pandas as pd

    saved = json.loads(OUT.read_text())
    block = saved["settings"]["block"]
    rows = []
    for ckpt, entry in saved["ckpts"].items():
        for r in entry["rows"]:
            rows.append({"ckpt": ckpt, "step": entry["step"], "scaling": r["scaling"], "magnitude": r["magnitude"],
                         "seed": r["seed"], "base_loss": float(np.mean(entry["clean"])),
                         "block_deltas": np.asarray(r["block_deltas"]), "n_tokens": 0})
    full = pd.DataFrame(rows)
    ckpts = list(saved["ckpts"])
    print(f"per-checkpoint cost (threads {saved['settings']['threads']}): one clean forward over "
          f"{len(rows[0]['block_deltas']) * block:,} tokens: "
          + ", ".join(f"{c} {e['forward_s']:.2f} s" for c, e in saved["ckpts"].items()))
    print("clean held-out loss: " + ", ".join(f"{c} {np.mean(e['clean']):.3f}" for c, e in saved["ckpts"].items()))
    seeds_grid = [int(s) for s in args.seeds_grid.split(",")]
    blocks_grid = [int(b) for b in args.blocks_grid.split(",")]
    for (scaling, magnitude), frame in full.groupby(["scaling", "magnitude"], sort=False):
        print(f"\n== {scaling} {magnitude:g}")
        for n_seeds in seeds_grid:
            for n_blocks in blocks_grid:
                sub = frame[frame["seed"] < n_seeds].copy()
                if n_seeds > frame["seed"].nunique() or n_blocks > len(sub["block_deltas"].iloc[0]):
                    continue
                sub["block_deltas"] = [d[:n_blocks] for d in sub["block_deltas"]]
                sub["n_tokens"] = n_blocks * (block - 1)
                table = stats.sensitivity_table(sub, get_profile("tiny")).set_index("ckpt").reindex(ckpts)
                cells = "  ".join(f"{d:+.4f}[{lo:+.4f},{hi:+.4f}]"
                                  for d, lo, hi in zip(table["delta_loss"], table["ci_low"], table["ci_high"]))
                rising = np.all(np.diff(table["delta_loss"].to_numpy()) > 0)
                half = float(((table["ci_high"] - table["ci_low"]) / 2).mean())
                print(f"seeds {n_seeds:2d} tokens {n_blocks * block:6,d}: ±{half:.4f}  "
                      f"{'monotone' if rising else 'not monotone'}  {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--measure", action="store_true")
    parser.add_argument("--cost", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=32768)
    parser.add_argument("--block", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--scalings", default="init,relative,isotropic")
    parser.add_argument("--seeds-grid", default="1,2,4,8")
    parser.add_argument("--blocks-grid", default="16,32,64,128,256")
    args = parser.parse_args()
    cost(args) if args.cost else measure(args) if args.measure else report(args)


if __name__ == "__main__":
    main()
