"""calibration: the verdict rules' error rates at their boundaries, measured by simulation with the release's noise
(five parts, a fixed seed: the full table is benchmarks/bench_calibration.py), the every / some rule itself, the
interval rules (valid resamples, thin tails) and the power column."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from amuro_utils import stats
from amuro_utils.config.profiles import get_profile
from amuro_utils.verdicts import calibration, claims

REPS, N_BOOT = 150, 1000


@pytest.fixture(scope="module")
def release():
    return calibration.release_source()


@pytest.mark.parametrize("part", ["B2", "B1b", "A3", "B6a", "A1a"])
def test_boundary_rates_of_five_parts_at_most_five_percent(release, part):
    rows = calibration.calibrate_part(release, part, reps=REPS, n_boot=N_BOOT, seed=1,
                                      truths=("boundary", "boundary_one"))
    assert rows and all(r["n"] == REPS for r in rows)
    for row in rows:
        assert row["false_support"] <= calibration.MAX_WRONG, row
        assert row["false_contradiction"] <= calibration.MAX_WRONG, row
        assert math.isfinite(row["mde"]) and row["mde"] > 0


def test_a_maximum_inside_each_resample_is_what_went_wrong(release):
    """B2 with every checkpoint's true Learned-in-PT gain exactly at the 0.02 margin: the old rule (the interval of
    the maximum over checkpoints taken inside each resample) calls it contradicted most of the time; judging each
    checkpoint on its own interval never does."""
    sim = calibration.Simulation(release, "B2", N_BOOT)
    truth, rng = sim.truth("boundary", 0.0), np.random.default_rng(3)
    old = new = 0
    for _ in range(60):
        template = sim.study.cells
        sim.study.cells = calibration.draw(release, sim.cells, sim.effect, truth, rng, N_BOOT)

        def maximum(g, w):
            units, notes = sim.part.compute(g, w)
            return np.max(np.vstack([vec for _, vec, _ in units]), axis=0), notes

        low, _ = stats.estimate(sim.study.cells, maximum, sim.part.resample).ci()
        old += low > claims.FLAT_MARGIN
        new += claims.decide(sim.study, sim.part)[0] == claims.CONTRADICTED
        sim.study.cells = template
    assert old / 60 > 0.5 and new == 0


def test_the_table_and_its_summary(release, tmp_path, monkeypatch):
    from amuro_utils.config import paths

    monkeypatch.setattr(paths, "FIGURES_ROOT", tmp_path)
    table = calibration.calibrate(release, ["B4c"], reps=40, n_boot=400)
    assert table["truth"].tolist() == ["boundary", "holds", "fails", "mde"]  # boundary_one: every / some parts only
    holds, fails = table.set_index("truth").loc["holds"], table.set_index("truth").loc["fails"]
    assert holds["supported"] == 1.0 and math.isnan(holds["false_support"]) and holds["false_contradiction"] == 0
    assert fails["contradicted"] == 1.0 and math.isnan(fails["false_contradiction"])
    summary = calibration.boundary_summary(table)
    assert summary.loc[0, "id"] == "B4c" and bool(summary.loc[0, "calibrated"])
    md, csv = None, None
    for path in calibration.write_calibration(table, get_profile("paper-reference"), "the command"):
        md, csv = (path, csv) if path.suffix == ".md" else (md, path)
    text = md.read_text()
    assert "1 of 1 parts are." in text and "Made by `the command`." in text
    assert pd.read_csv(csv)["truth"].tolist() == table["truth"].tolist()


def test_tiny_source_draws_constant_predictors_only_where_they_are_degenerate():
    source = calibration.tiny_source(constant_share={"base": 1.0, "fine_tuned": 1.0})
    sim = calibration.Simulation(source, "B6a", 200)  # fine-tuned constants are B6a's effect; bases degenerate
    cells = calibration.draw(source, sim.cells, sim.effect, sim.truth("boundary", 0.0), np.random.default_rng(0),
                             200, sim.part.degenerate.counts)
    rows = cells.rows
    assert rows.loc[rows["fine_tune"] == "base", "constant"].all()
    assert not rows.loc[rows["fine_tune"] != "base", "constant"].any()
    assert len(rows["scores"].iloc[0]) == source.n_items == 50


def test_offsets_sum_to_zero_with_multiplicity():
    spread = calibration.offsets(["a", "b", "a", "c"], 0.02)  # "a" listed twice, as the release's SciQ
    assert sum(spread[u] for u in ["a", "b", "a", "c"]) == pytest.approx(0.0, abs=1e-15)
    assert spread["c"] - spread["a"] == pytest.approx(0.04)


# ---------------------------------------------------------------------------------------------------------------
# the every / some rule


def units(*specs, n=4000, seed=0):
    """A UnitsEstimate of units (label, true value, standard error) with normal resamples."""
    rng = np.random.default_rng(seed)
    per_unit = [stats.UnitEstimate(label, point, point + se * rng.standard_normal(n), point + se * rng.standard_normal(n))
                for label, point, se in specs]
    return stats.UnitsEstimate(per_unit, (), {}, [], [], ["normal"], [])


def test_every_unit_is_judged_on_its_own_interval():
    every = claims.Rule("<", 0.02, quantifier=claims.EVERY)
    # each unit's own 95 % interval below 0.02: supported, deciding the unit nearest the threshold
    j = claims.judge_units(units(("a", -0.05, 0.01), ("b", -0.01, 0.01)), every)
    assert (j.verdict, j.deciding, j.level) == ("supported", "b", 0.95)
    # one unit straddles: inconclusive, that unit named
    j = claims.judge_units(units(("a", -0.05, 0.01), ("b", 0.02, 0.01)), every)
    assert (j.verdict, j.deciding) == ("inconclusive", "b")
    # a unit whose 95 % interval lies above 0.02 but not its Bonferroni-adjusted one (K = 8): not contradicted
    specs = [(f"u{i}", -0.05, 0.01) for i in range(7)] + [("hot", 0.02 + 2.2 * 0.01, 0.01)]
    j = claims.judge_units(units(*specs), every)
    assert j.verdict == "inconclusive" and j.deciding == "hot"
    # well above even at 1 − 0.05 / 8: contradicted, at the family level
    specs[-1] = ("hot", 0.02 + 4 * 0.01, 0.01)
    j = claims.judge_units(units(*specs), every)
    assert (j.verdict, j.deciding) == ("contradicted", "hot") and j.level == pytest.approx(1 - 0.05 / 8)


def test_some_unit_is_the_mirror_image():
    some = claims.Rule("<", 0.0, quantifier=claims.SOME)
    j = claims.judge_units(units(("a", 0.1, 0.01), ("b", -0.1, 0.01)), some)
    assert (j.verdict, j.deciding) == ("supported", "b") and j.level == pytest.approx(0.975)
    j = claims.judge_units(units(("a", 0.1, 0.01), ("b", 0.05, 0.01)), some)
    assert (j.verdict, j.deciding) == ("contradicted", "b")  # every unit above 0: the nearest one named
    j = claims.judge_units(units(("a", 0.1, 0.01), ("b", 0.005, 0.01)), some)
    assert j.verdict == "inconclusive"


def test_flat_every_unit_rule_uses_the_signed_change():
    flat = claims.Rule("≈", margin=0.02, quantifier=claims.EVERY)
    assert claims.judge_units(units(("a", 0.0, 0.004), ("b", -0.005, 0.004)), flat).verdict == "supported"
    j = claims.judge_units(units(("a", 0.0, 0.004), ("b", -0.08, 0.004)), flat)
    assert (j.verdict, j.deciding, round(j.value, 3)) == ("contradicted", "b", -0.08)


# ---------------------------------------------------------------------------------------------------------------
# intervals: valid resamples, thin tails


def test_an_interval_needs_ninety_percent_valid_resamples():
    x = np.r_[np.linspace(0, 1, 850), np.full(150, np.nan)]
    low, high, how = stats.interval(x)
    assert math.isnan(low) and math.isnan(high) and how.startswith("only 850 of 1000 resamples are valid")
    low, high, how = stats.interval(np.r_[np.linspace(0, 1, 950), np.full(50, np.nan)])
    assert how == "" and 0 < low < high < 1


def test_a_thin_tail_takes_the_normal_interval():
    rng = np.random.default_rng(0)
    x = 1.0 + 0.1 * rng.standard_normal(2000)
    low, high, how = stats.interval(x, 0.99, point=1.0)  # 10 resamples per tail < 20
    assert "normal interval" in how
    assert (low, high) == pytest.approx((1 - 2.5758 * np.std(x, ddof=1), 1 + 2.5758 * np.std(x, ddof=1)), abs=1e-3)
    assert stats.interval(x, 0.95)[2] == ""  # 50 per tail: the percentile interval


def test_power_column_is_the_normal_detectable_effect():
    j = claims.Judgement("inconclusive", 0.0, -0.02, 0.02, 0.95, se=0.01)
    assert claims.detectable(j, claims.Rule(">")) == pytest.approx(0.01 * (1.959964 + 0.841621), abs=1e-5)
    every = claims.Judgement("inconclusive", 0.0, -0.02, 0.02, 0.95, se=0.01, n_units=4, unit_ses=(0.01,) * 4)
    d = claims.detectable(every, claims.Rule(">", quantifier=claims.EVERY))
    from statistics import NormalDist
    assert NormalDist().cdf(d / 0.01 - 1.959964) ** 4 == pytest.approx(claims.POWER, abs=1e-6)


def test_wilson_upper_bound():
    assert calibration.wilson_upper(0.0, 500) == pytest.approx(0.00762, abs=1e-4)
    assert calibration.wilson_upper(0.025, 500) == pytest.approx(0.0423, abs=5e-4)
