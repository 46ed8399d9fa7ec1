"""Planted effects: for every claim part, a synthetic study where the truth is known — the effect present, absent
and reversed, with realistic noise — must give the expected verdict (supported / inconclusive / contradicted).

The world: the paper's profile (its 8 rungs, tasks, OOD sets, formats, instruction benchmarks and LLMBar splits),
every cell a record of N_ITEMS per-item 0/1 scores. Items are paired as in real evaluations: one latent difficulty
per item of an evaluation set (every model meets the same items), plus a little per-cell noise, so a cell's score is
its planted probability up to sampling. Units differ from each other: each pair / set / task carries a fixed
zero-sum offset of its effect (UNIT_SPREAD), so the default interval (units, then items) has a realistic width.
For "flat" claims (a margin, not a sign) the planted cases are: flat (supported), a drift of exactly the margin
(inconclusive) and a drift well beyond it (contradicted).
"""

from __future__ import annotations

import dataclasses
import math
import zlib

import numpy as np
import pandas as pd
import pytest

from amuro_utils import claims, plan
from amuro_utils.profiles import PAPER, ckpt_step

WORLD = dataclasses.replace(PAPER, name="planted")
LADDER = list(WORLD.ckpts)
STEP = {c: float(ckpt_step(c) or 738_020) for c in (*LADDER, "step550000")}
FIRST, LAST = math.log10(STEP["step1000"]), math.log10(STEP["main"])
N_ITEMS, N_BOOT = 800, 500
CELL_NOISE = 0.015  # per item and cell: the items near a cell's threshold flip between cells
UNIT_SPREAD = 0.02  # the units' own effects spread ±UNIT_SPREAD around the planted one (zero-sum)
TASKS = {t.name: t for t in WORLD.tasks}
IT = WORLD.instruction.name
PT_SETS = list(dict.fromkeys(("sciq_mc", "hellaswag", "arc_challenge", "arc_easy", "openbookqa")))
FT_PAIRS = [("mnli_matched", "mnli"), ("paws", "paws"), ("xsum", "xsum"), ("mnli_mismatched", "mnli"),
            ("xlsum", "xsum"), ("socialiqa", "socialiqa"), ("boolq", IT)]
CLASSIFICATION = ("mnli", "paws")
GENERATION = ("xsum", "socialiqa")


def position(ckpt: str) -> float:
    """0 at step 1000 … 1 at main, on the log-step axis the fitted change uses."""
    return (math.log10(STEP[ckpt]) - FIRST) / (LAST - FIRST)


def _stable(*parts) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode())


def offset(unit, units) -> float:
    """A unit's fixed, zero-sum deviation from the planted effect (−1 … +1 × UNIT_SPREAD over the units)."""
    units = list(dict.fromkeys(units))
    if len(units) < 2:
        return 0.0
    return UNIT_SPREAD * (2 * units.index(unit) / (len(units) - 1) - 1)


def cells() -> list[tuple]:
    """(kind, eval_set, fine_tune, ckpt, format) of every record the study has."""
    out = []
    for c in LADDER:
        out += [("base", s, "base", c, f) for s, f in plan.base_plan(WORLD)]
        for task in WORLD.tasks:
            out += [("sft", s, task.name, c, f) for s, f in plan.sft_plan(WORLD, task)]
    for c in plan.instruction_ckpts(WORLD):
        out += [("it", s, IT, c, f) for s, f in plan.instruction_plan(WORLD)]
        if c not in LADDER:  # step550000: its base rows too
            out += [("base", s, "base", c, f) for s, f in plan.instruction_plan(WORLD)]
    return out


def baseline(eval_set: str) -> float:
    return 0.35 + 0.2 * (_stable(eval_set) % 1000) / 1000


def world(effect, seed: int = 0) -> pd.DataFrame:
    """Records whose cell probabilities are baseline(set) + effect(kind, eval_set, fine_tune, ckpt, fmt)."""
    rows, latent = [], {}
    for kind, eval_set, fine_tune, ckpt, fmt in cells():
        if eval_set not in latent:
            latent[eval_set] = np.random.default_rng([seed, _stable(eval_set)]).random(N_ITEMS)
        p = float(np.clip(baseline(eval_set) + effect(kind, eval_set, fine_tune, ckpt, fmt), 0.02, 0.98))
        noise = np.random.default_rng([seed, _stable(eval_set, fine_tune, ckpt, fmt)]).normal(0, CELL_NOISE, N_ITEMS)
        scores = (latent[eval_set] + noise < p).astype(float)
        base = fine_tune == "base"
        rows.append({"model": "planted", "ckpt": ckpt, "step": STEP[ckpt], "fine_tune": fine_tune,
                     "method": "none" if base else "full", "seed": None if base else 42, "eval_set": eval_set,
                     "format": fmt, "shots": 4, "metric": "accuracy", "performance": scores.mean(), "std": math.nan,
                     "n": N_ITEMS, "scores": scores, "source": "run", "variant": "standard"})
    return pd.DataFrame(rows)


def judge(part: str, frame: pd.DataFrame, **frames) -> pd.Series:
    table = claims.evaluate_all(frame, WORLD, ids=[part.split("-")[0][:2]], n_boot=N_BOOT, **frames)
    return table.set_index("id").loc[part]


NONE = pytest.fixture(scope="module")(lambda: world(lambda *a: 0.0))


def none(*_):
    return 0.0


# ---------------------------------------------------------------------------------------------------------------
# planted effects, one scenario function per claim part: effect(size) -> the world's effect function
# size: +1 present, 0 absent, −1 reversed (for flat claims: 0 flat, 1 at the margin, 2 beyond it)


def ft_trend(size):  # A1a: the fine-tuned score of the Learned-in-FT pairs rises along the ladder
    def effect(kind, e, f, c, fmt):
        if (e, f) in FT_PAIRS and kind in ("sft", "it"):
            return (size * 0.15 + offset((e, f), FT_PAIRS)) * position(c)
        return 0.0
    return effect


def base_drift(sets, size, window=None):  # A1b, B1b, B1c: one set's base score drifts (0, the margin, 0.1)
    drift = {0: 0.0, 1: claims.FLAT_MARGIN, 2: 0.1}[size]

    def effect(kind, e, f, c, fmt):
        if e == sets[-1] and f == "base" and c in STEP:
            x = position(c)
            if window is not None:  # the drift happens from `window` (a fraction of the log axis) on
                x = max(0.0, (x - window) / (1 - window))
            return drift * x
        return 0.0
    return effect


def gains(pairs, size, at=None):  # a gain of size × 0.15 on `pairs` (at the checkpoints `at`, default all)
    def effect(kind, e, f, c, fmt):
        if (e, f) in pairs and kind in ("sft", "it") and (at is None or c in at):
            return size * 0.15 + offset((e, f), pairs)
        return 0.0
    return effect


def both(*effects):
    return lambda *a: sum(fn(*a) for fn in effects)


def pt_gain_a2(size):  # A2: Learned-in-FT sets gain more than Learned-in-PT ones
    pt_pairs = [(s, IT) for s in PT_SETS]
    if size > 0:
        return gains(FT_PAIRS, 1)
    return gains(pt_pairs, 1) if size < 0 else both(gains(FT_PAIRS, 0), gains(pt_pairs, 0))


def forgetting_a3(size):  # A3: some unseen group drops (present) / none moves (absent) / every group gains
    groups = claims.forgetting_groups(WORLD).values()
    if size > 0:
        return gains([(s, "mnli") for s in TASKS["mnli"].ood], -1)
    return both(*[gains(pairs, 1 if size < 0 else 0) for pairs in groups])  # offsets zero-sum within each group


def format_gap(size, model="sft", trend=0.0):  # A4, B5: the default format beats the others by size × 0.15
    def effect(kind, e, f, c, fmt):
        primary = any(e == t.primary for t in WORLD.tasks)
        if not primary or fmt != "default":
            return 0.0
        if (kind == "sft" and model == "sft" and e == TASKS[f].primary) or (kind == "base" and model == "base"):
            return size * 0.15 + trend * position(c)
        return 0.0
    return effect


def pt_rise(size):  # B1a: the Learned-in-PT benchmarks rise along the ladder
    def effect(kind, e, f, c, fmt):
        if e in PT_SETS and kind in ("base", "it"):
            x = position(c) if c in LADDER else position("step550000")
            return (size * 0.2 + offset(e, PT_SETS)) * x
        return 0.0
    return effect


def pt_plateau(kind, e, f, c, fmt):  # B1b: the benchmarks rise 0.2 until 342k, then level off
    if e in PT_SETS and kind in ("base", "it"):
        return 0.2 * min(position(c) if c in LADDER else 1.0, position("step342000"))
    return 0.0


def table5_gain(at_ckpts_gain):  # B3 / B4: the Learned-in-FT gain per checkpoint
    def effect(kind, e, f, c, fmt):
        if (e, f) in FT_PAIRS and kind in ("sft", "it") and c in LADDER:
            return at_ckpts_gain(c) + offset((e, f), FT_PAIRS) * 0.5
        return 0.0
    return effect


EARLY = [c for c in LADDER if STEP[c] < claims.PLATEAU_FRACTION * STEP["main"]]
PEAK = claims.PEAK_FRACTION * STEP["main"]


def b3(size):  # B3: a gain at every checkpoint (present) / none at one (absent) / a loss at one (reversed)
    return table5_gain(lambda c: 0.0 if c == "step18000" and size == 0 else -0.1 if c == "step18000" and size < 0
                       else 0.2)


def b4a(size):  # B4a: the gain rises until 424k
    return table5_gain(lambda c: 0.2 + size * 0.2 * min(position(c), position("step424000")))


def b4b(size):  # B4b: the gain is flat after 424k (0: flat, 1: drifts by the margin, 2: rises 0.15)
    rise = {0: 0.0, 1: claims.FLAT_MARGIN, 2: 0.15}[size]
    after = position("step424000")
    return table5_gain(lambda c: 0.2 + rise * max(0.0, position(c) - after) / (1 - after))


def b4c(size):  # B4c: earlier checkpoints gain more
    return table5_gain(lambda c: 0.2 + (size * 0.15 if c in EARLY else 0.0))


def b2(size):  # B2: the Learned-in-PT gain at any checkpoint (0: none, 1: the margin at one, 2: 0.1 at one)
    extra = {0: 0.0, 1: claims.FLAT_MARGIN, 2: 0.1}[size]
    pt_pairs = [(s, IT) for s in PT_SETS]
    return lambda kind, e, f, c, fmt: extra if (e, f) in pt_pairs and c == "step424000" and kind == "it" else 0.0


def relative(pairs, ratio):  # B6: fine-tuned = base × (1 + ratio + unit offset)
    def effect(kind, e, f, c, fmt):
        if (e, f) in pairs and kind == "sft":
            return baseline(e) * (ratio + offset((e, f), pairs))
        return 0.0
    return effect


def b8b(size):  # B8b: instruction tuning leaves the PT benchmarks unchanged (0), by the margin (1), +0.1 (2)
    return lambda kind, e, f, c, fmt: ({0: 0.0, 1: claims.FLAT_MARGIN, 2: 0.1}[size]
                                       if kind == "it" and e in PT_SETS else 0.0)


def s2(size):  # S2: the later checkpoint ends worse after instruction tuning
    sets = list(plan.SPRINGER_BENCHMARKS)
    return lambda kind, e, f, c, fmt: ((-size * 0.05 + offset(e, sets) * 0.5) if kind == "it" and c == "main"
                                       and e in sets else 0.0)


# part -> (scenario(size), the sizes and expected verdicts)
SIGNED = ((1, "supported"), (0, "inconclusive"), (-1, "contradicted"))
FLAT = ((0, "supported"), (1, "inconclusive"), (2, "contradicted"))
SCENARIOS = {
    "A1a": (ft_trend, SIGNED),
    "A1b": (lambda size: base_drift([e for e, _ in FT_PAIRS], size), FLAT),
    "A2": (pt_gain_a2, SIGNED),
    "A3": (forgetting_a3, SIGNED),
    "A4a": (lambda size: format_gap(size) if size >= 0 else format_gap(1, model="base"), SIGNED),
    "A4b": (lambda size: format_gap(0.0, trend=-size * 0.15) if size else format_gap(1), SIGNED),
    "B1a": (pt_rise, SIGNED),
    "B1b": (lambda size: both(pt_plateau, base_drift(PT_SETS, size, window=position("step342000"))), FLAT),
    "B1c": (lambda size: base_drift([e for e, _ in FT_PAIRS], size), FLAT),
    "B2": (b2, FLAT),
    "B3": (b3, SIGNED),
    "B4a": (b4a, SIGNED),
    "B4b": (b4b, FLAT),
    "B4c": (b4c, SIGNED),
    "B5a": (lambda size: format_gap(size), SIGNED),
    "B5b": (lambda size: format_gap(0.0, trend=-size * 0.2) if size else format_gap(1), SIGNED),
    "B6a": (lambda size: relative(plan_pairs("Class→Gen"), -0.5 * size), SIGNED),
    "B6b": (lambda size: relative(plan_pairs("Gen→Class"), {0: 0.0, 1: 0.05, 2: 0.3}[size]), FLAT),
    "B7a": (lambda size: gains([(s, "mnli") for s in TASKS["mnli"].ood], size), SIGNED),
    "B7b": (lambda size: gains([(s, "paws") for s in TASKS["paws"].ood], -size), SIGNED),
    "B8a": (lambda size: gains([(s, IT) for s in WORLD.instruction.llmbar], size), SIGNED),
    "B8b": (b8b, FLAT),
    "S2": (s2, SIGNED),
}


def plan_pairs(direction: str):
    from amuro_utils import stats

    return stats.cross_task_groups(WORLD)[direction]


@pytest.mark.parametrize("part", list(SCENARIOS))
def test_every_claim_recovers_its_planted_effect(part):
    scenario, cases = SCENARIOS[part]
    got = {size: judge(part, world(scenario(size)))["judged"] for size, _ in cases}
    assert got == {size: expected for size, expected in cases}, f"{part}: {got}"


# ---------------------------------------------------------------------------------------------------------------
# Springer et al.: the held-out-loss frames


def block_frame(delta_at, columns: dict, n_seeds: int = 3, n_blocks: int = 64, seed: int = 0) -> pd.DataFrame:
    """One row per (cell, seed): block deltas around delta_at(ckpt, cell) with block and seed noise."""
    rng = np.random.default_rng(seed)
    block_effect = rng.normal(0, 0.02, n_blocks)
    rows = []
    for cell in columns["cells"]:
        for c in LADDER:
            for s in range(n_seeds):
                deltas = delta_at(c, cell) + block_effect + rng.normal(0, 0.005) + rng.normal(0, 0.01, n_blocks)
                rows.append({**dict(zip(columns["names"], cell)), "ckpt": c, "step": STEP[c], "seed": s,
                             "method": "full", "base_loss": 6.0, "loss": 6.0 + deltas.mean(),
                             "delta_loss": deltas.mean(), "block_deltas": deltas, "n_tokens": n_blocks * 127})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("size, expected", SIGNED)
def test_s1_recovers_planted_sensitivity_growth(size, expected):
    frame = block_frame(lambda c, cell: 0.1 + size * 0.1 * position(c),
                        {"names": ("scaling", "magnitude"), "cells": [("init", 1.0), ("init", 2.0)]})
    assert judge("S1", world(none), sensitivity=frame)["judged"] == expected


@pytest.mark.parametrize("size, expected", SIGNED)
def test_s3_recovers_planted_forgetting_growth(size, expected):
    tasks = [(t,) for t in TASKS]
    frame = block_frame(lambda c, cell: 0.3 + (size * 0.2 + offset(cell, tasks) * 0.5) * position(c),
                        {"names": ("fine_tune",), "cells": tasks})
    assert judge("S3", world(none), forgetting=frame)["judged"] == expected
