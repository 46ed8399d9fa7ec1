"""Planted effects at realistic noise: every performance claim part simulated with a real source's noise
(amuro_utils.verdicts.calibration) — the release's own standard errors, and the tiny profile's 50-item paired cells with
label-biased (constant) predictors — at a truth where the claim clearly holds, at its boundary, and where it clearly
fails (both sides for a flat claim), one replication each at a fixed seed; and Springer et al.'s held-out-loss claims
on frames of seeds × blocks.

"Clearly" is measured, not assumed: HOLDS_FACTOR × the design's mde (the power column, estimated at the boundary),
capped where a score would leave [0, 1]. The rates behind these single draws are benchmarks/bench_calibration.py's
table (figures/<profile>/calibration.md); tests/test_calibration.py checks five parts' boundary rates."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd
import pytest

from amuro_utils.config.profiles import PAPER, ckpt_step
from amuro_utils.verdicts import calibration, claims

N_BOOT, PILOT = 1000, 12
TINY_CONSTANT = {"base": 0.25, "fine_tuned": 0.25}


@pytest.fixture(scope="module")
def release():
    return calibration.release_source()


@pytest.fixture(scope="module")
def tiny():
    return calibration.tiny_source(constant_share=TINY_CONSTANT)


def planted_verdicts(source, part: str) -> tuple[dict, calibration.Simulation, float]:
    """One replication per truth (holds, boundary, fails, and for a flat claim fails below −margin)."""
    sim = calibration.Simulation(source, part, N_BOOT)
    rng = np.random.default_rng([7, zlib.crc32(f"{source.name}/{part}".encode())])
    mde = sim.mde(rng, PILOT)
    truths = {t: sim.truth(t, mde) for t in ("holds", "boundary", "fails")}
    if sim.rule.direction == "≈":
        below = -(sim.rule.margin + min(calibration.HOLDS_FACTOR * mde, sim.cap))
        truths["fails below"] = (lambda u: below) if not sim.part.quantifier else \
            (lambda u, first=sim.units[0], on=truths["holds"]: below if u == first else on(u))
    return {t: sim.run(v, rng)[0] for t, v in truths.items()}, sim, mde


def expected(sim: calibration.Simulation, mde: float, truth: str) -> str:
    """The verdict a truth should get where the design resolves it (2 × mde within the cap)."""
    if truth == "boundary":
        return claims.INCONCLUSIVE
    if truth == "holds":
        confirmable = not (sim.rule.direction == "≈" and mde >= sim.rule.margin)
        return claims.SUPPORTED if confirmable else claims.INCONCLUSIVE
    return claims.CONTRADICTED


@pytest.mark.parametrize("part", [p for p in calibration.SIMULATED if p != "S2"])  # the release has no
def test_release_noise_recovers_planted_truths(release, part):  # step550000 rows (test_claims: S2 not measurable)
    got, sim, mde = planted_verdicts(release, part)
    resolved = calibration.HOLDS_FACTOR * mde <= sim.cap
    for truth, verdict in got.items():
        want = expected(sim, mde, truth)
        if resolved:
            assert verdict == want, f"{part} {truth}: {verdict} (mde {mde:.3g}); {got}"
        else:  # a capped truth need not be decided, but never the wrong way
            assert verdict in (want, claims.INCONCLUSIVE), f"{part} {truth}: {verdict}; {got}"


def test_tiny_noise_never_decides_the_wrong_way(tiny):
    """50 paired items per set, a quarter of the records constant predictors: a verdict may be uninformative or
    inconclusive where the cells cannot tell, never the wrong decisive one; and most clear truths are decided."""
    decided = total = 0
    for part in calibration.SIMULATED:
        got, sim, mde = planted_verdicts(tiny, part)
        for truth, verdict in got.items():
            want = expected(sim, mde, truth)
            wrong = {claims.SUPPORTED, claims.CONTRADICTED} - {want}
            assert verdict not in wrong, f"{part} {truth}: {verdict}; {got}"
            if want != claims.INCONCLUSIVE:
                total += 1
                decided += verdict == want
    assert decided >= 0.6 * total, f"only {decided} of {total} clear truths decided"


def test_flat_claims_are_contradicted_on_both_sides(release):
    # B6b (gen→class relative change within ±5 %) and B8b (benchmarks unchanged within ±0.02): the opposite sign
    for part in ("B6b", "B8b", "B4b"):
        got, sim, mde = planted_verdicts(release, part)
        assert got["fails"] == got["fails below"] == claims.CONTRADICTED, f"{part}: {got}"


# ---------------------------------------------------------------------------------------------------------------
# Springer et al.: the held-out-loss frames (seeds × blocks; block and seed noise as the tiny probe measures)

WORLD = PAPER
LADDER = list(WORLD.ckpts)
STEP = {c: float(ckpt_step(c) or 738_020) for c in LADDER}
FIRST, LAST = math.log10(STEP["step1000"]), math.log10(STEP["main"])
SIGNED = ((1, "supported"), (0, "inconclusive"), (-1, "contradicted"))
TASKS = [t.name for t in WORLD.tasks]


def position(ckpt: str) -> float:
    """0 at step 1000 … 1 at main, on the log-step axis the fitted change uses."""
    return (math.log10(STEP[ckpt]) - FIRST) / (LAST - FIRST)


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


def judge(part: str, **frames) -> pd.Series:
    empty = pd.DataFrame({"ckpt": LADDER, "step": [STEP[c] for c in LADDER], "fine_tune": "base", "eval_set": "rte",
                          "format": "default", "shots": WORLD.shots, "performance": 0.5, "source": "run"})
    return claims.part_row(claims.evaluate_all(empty, WORLD, ids=[part[:2]], n_boot=500, **frames), part)


@pytest.mark.parametrize("size, expected_verdict", SIGNED)
def test_s1_recovers_planted_sensitivity_growth(size, expected_verdict):
    frame = block_frame(lambda c, cell: 0.1 + size * 0.1 * position(c),
                        {"names": ("scaling", "magnitude"), "cells": [("init", 1.0), ("init", 2.0)]})
    assert judge("S1", sensitivity=frame)["judged"] == expected_verdict


@pytest.mark.parametrize("size, expected_verdict", SIGNED)
def test_s3_recovers_planted_forgetting_growth(size, expected_verdict):
    units = calibration.offsets(TASKS)
    frame = block_frame(lambda c, cell: 0.3 + (size * 0.2 + units[cell[0]] * 0.5) * position(c),
                        {"names": ("fine_tune",), "cells": [(t,) for t in TASKS]})
    assert judge("S3", forgetting=frame)["judged"] == expected_verdict
