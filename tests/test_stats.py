"""The statistics spine (amuro_utils.stats): each statistic once, as a point plus resamples; the release's numbers
recomputed; units resampled apart from measurement; leave-one-out weights; the Springer cells."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from amuro_utils import stats
from amuro_utils.config.paths import DATA_DIR
from amuro_utils.config.profiles import PAPER, TINY
from amuro_utils.stats import analysis
from amuro_utils.store.results import load_paper_results
from amuro_utils.verdicts import claims

CKPTS = ["1000", "18000", "342000", "424000", "505000", "592000", "738000", "main"]


@pytest.fixture(scope="module")
def paper():
    return load_paper_results()


@pytest.fixture(scope="module")
def study(paper):
    return stats.Study(paper, PAPER)


def _release_table5(pairs, main_step):
    """The release notebook's avg_change_table_by_checkpoint, on the raw CSVs by model_id (an independent oracle)."""
    raw = pd.concat([pd.read_csv(DATA_DIR / "paper_results" / f) for f in
                     ("all_perf_table.csv", "official_eval_table.csv")], ignore_index=True)
    perf = {(m, e): p for m, e, p in zip(raw["model_id"], raw["eval dataset"], raw["Performance"])}
    lrs = {"xsum": "2e-7", "socialiqa": "2e-6", "mnli": "2e-6", "paws": "2e-6"}
    rows = []
    for i, ckpt in enumerate(CKPTS):
        changes = []
        for eval_ds, train in pairs:
            eval_ds = "sciq" if eval_ds == "sciq_mc" else eval_ds  # the release's name for catwalk SciQ
            if train == "tulu":
                base_id = f"checkpoint-{ckpt}" if ckpt != "main" else "olmo1b_original_hf"
                ft_id = f"olmo1b_hf_{'ckpt' + ckpt if ckpt != 'main' else 'main'}_tulu_5epoch_2e-6"
            else:
                base_id = (f"olmo1b_checkpoint-{ckpt}_original_hf_4shots" if ckpt != "main"
                           else "olmo1b_original_hf_4shots")
                ft_id = f"olmo1b_hf_{'ckpt' + ckpt if ckpt != 'main' else 'main'}_{train}_3epoch_{lrs[train]}_4shots"
            if (base_id, eval_ds) in perf and (ft_id, eval_ds) in perf:
                base, ft = perf[(base_id, eval_ds)], perf[(ft_id, eval_ds)]
                changes.append((ft - base, (ft - base) / base))
        raw_change = sum(c[0] for c in changes) / len(changes)
        step = main_step if ckpt == "main" else int(ckpt)
        slope = math.nan if i == 0 else (raw_change - rows[-1][1]) / (step - rows[-1][0]) * 100_000
        rows.append((step, raw_change, sum(c[1] for c in changes) / len(changes) * 100, len(changes), slope))
    return rows


# ---------------------------------------------------------------------------------------------------------------
# the paper's numbers, through the one code


def test_cross_task_mrc_matches_the_paper(study):
    table = stats.mrc_table(study).set_index("direction")
    # the paper: -61.4 % and +0.3 %; PROTOCOL §9: -61.46 % and +0.31 %
    assert round(table.loc["Class→Gen", "mrc_pct"], 2) == -61.46 and round(table.loc["Gen→Class", "mrc_pct"], 2) == 0.31
    assert table["n_rows"].tolist() == [32, 32]  # 4 pairs x 8 checkpoints incl. main, no cell missing
    # the interval is claim B6's, to the last digit
    scorecard = claims.evaluate_all(study.df, PAPER, ids=["B6"], study=study).set_index("id")
    assert table.loc["Class→Gen", ["ci_low", "ci_high"]].tolist() == scorecard.loc["B6a", ["ci_low", "ci_high"]].tolist()
    assert table.loc["Gen→Class", ["meas_low", "meas_high"]].tolist() == \
        scorecard.loc["B6b", ["meas_low", "meas_high"]].tolist()


def test_change_table_rows(study):
    table = stats.change_table(study, [("xsum", "mnli")])
    assert table["ckpt"].tolist() == [f"step{c}" for c in CKPTS[:-1]] + ["main"]
    row = table[table["ckpt"] == "step424000"].iloc[0]
    # the base xsum outlier at 424000 (.019) that drives ratio statistics (PROTOCOL §6.3)
    assert round(row["base"], 3) == 0.019
    assert row["raw"] == pytest.approx(row["fine_tuned"] - row["base"])
    assert row["ratio"] == pytest.approx(row["raw"] / row["base"])
    assert row["raw_low"] < row["raw"] < row["raw_high"]  # measurement interval of the one cell difference
    assert table.attrs["missing"] == []


def test_table5_matches_the_release_with_one_step_for_main(paper):
    groups = analysis.learned_groups(PAPER)
    # main sits at its recorded step, 738,020, in every statistic; the release's Table 5 slope used 750,000 and is
    # reproduced exactly by a frame that records that step instead
    for main_step in (738_020, 750_000):
        frame = paper.assign(step=np.where(paper["ckpt"] == "main", float(main_step), paper["step"]))
        table = stats.table5(stats.Study(frame, PAPER))
        for group, pairs in groups.items():
            got = table[table["group"] == group]
            expected = _release_table5(pairs, main_step)
            assert got["step"].tolist() == [e[0] for e in expected]
            assert got["raw_change"].tolist() == pytest.approx([e[1] for e in expected], abs=1e-12)
            assert got["pct_change"].tolist() == pytest.approx([e[2] for e in expected], abs=1e-9)
            assert got["n_pairs"].tolist() == [e[3] for e in expected]
            assert got["slope_per_100k"].tolist() == pytest.approx([e[4] for e in expected], abs=1e-12, nan_ok=True)
            assert (got["ci_low"] <= got["raw_change"]).all() and (got["raw_change"] <= got["ci_high"]).all()
    as_rows = {g: [tuple(round(v, 3) for v in r) for r in
                   table[table["group"] == g][["raw_change", "pct_change", "slope_per_100k"]].fillna(0).values]
               for g in groups}
    assert as_rows["Learned in FT"][-1] == (0.290, 194.405, 0.216)  # the release's printed row (main at 750,000)
    assert set(table["n_pairs"]) == {6, 7}
    assert stats.Study(paper, PAPER).steps["main"] == 738_020.0


def test_ood_table_is_claim_b7s_statistic(study):
    summary = stats.ood_table(study).set_index("group")
    assert summary["n"].to_dict() == {"NLI": 16, "Paraphrase Detection": 16, "Summary Generation": 8,
                                      "Question Generation": 16}
    assert {g: round(v, 4) for g, v in summary["raw_change"].items()} == {
        "NLI": 0.2458, "Paraphrase Detection": -0.1821, "Summary Generation": -0.0031, "Question Generation": 0.0208}
    scorecard = claims.evaluate_all(study.df, PAPER, ids=["B7"], study=study).set_index("id")
    for group, part in (("NLI", "B7a"), ("Paraphrase Detection", "B7b")):
        assert summary.loc[group, ["raw_change", "ci_low", "ci_high"]].tolist() == \
            scorecard.loc[part, ["value", "ci_low", "ci_high"]].tolist()
    # pairs × checkpoints resampled: wider than measurement alone (the paper's std), which stays narrow
    nli = summary.loc["NLI"]
    assert nli["ci_high"] - nli["ci_low"] > 5 * (nli["meas_high"] - nli["meas_low"])
    assert "resampling sets × checkpoints" in summary.attrs["caption"]


def test_format_gap_table_reads_one_order_of_aggregation(study):
    table = stats.format_gap_table(study).set_index(["eval_set", "model"])
    a4 = claims.evaluate_all(study.df, PAPER, ids=["A4"], study=study).set_index("id").loc["A4a"]
    tuned, base = table.loc[("all tasks", "fine_tuned")], table.loc[("all tasks", "base")]
    # with every cell present, the mean of (fine-tuned gap − base gap) is the difference of the mean gaps
    assert tuned["default_minus_others"] - base["default_minus_others"] == pytest.approx(a4["value"], abs=1e-12)
    assert table.loc[("mnli_matched", "fine_tuned"), "ci_low"] < table.loc[("mnli_matched", "fine_tuned"),
                                                                            "default_minus_others"]


def test_missing_cells_are_reported_not_fatal(paper):
    pairs = [("llmbar_Natural", "tulu"), ("llmbar_Adversarial_Neighbor", "tulu"), ("mnli_matched", "paws")]
    table = stats.change_table(stats.Study(paper, PAPER), pairs)
    assert table.attrs["missing"] == [
        {"eval_set": "llmbar_Natural", "fine_tune": "tulu", "ckpt": "step342000", "missing": "fine_tuned"},
        {"eval_set": "llmbar_Adversarial_Neighbor", "fine_tune": "tulu", "ckpt": "step342000", "missing": "fine_tuned"},
        {"eval_set": "mnli_matched", "fine_tune": "paws", "ckpt": "step342000", "missing": "fine_tuned"},
        {"eval_set": "mnli_matched", "fine_tune": "paws", "ckpt": "step738000", "missing": "fine_tuned"}]
    assert len(table) == 3 * 8 - 4
    assert [stats.count_rows(stats.Study(paper, PAPER), pairs, [f"step{c}" if c != "main" else c])
            for c in CKPTS] == [3, 3, 0, 3, 3, 3, 2, 3]


def test_a_statistic_without_its_cells_is_unmeasurable(study):
    with pytest.raises(stats.Unmeasurable, match="no \\(pair, checkpoint\\) with both rows") as err:
        study.estimate(lambda g, w: (stats.mean_gain(g, w, [("xsum", "no_such_task")], study.ladder), []))
    assert ("xsum", "no_such_task", "step1000", "default") in err.value.missing
    table = stats.mrc_table(stats.Study(study.df[study.df["fine_tune"] == "base"], PAPER))
    assert table["mrc_pct"].isna().all() and table["n_rows"].tolist() == [0, 0]


def test_duplicated_cells_need_one_source(paper):
    with pytest.raises(ValueError, match="df.source == 'run'"):
        stats.Study(pd.concat([paper, paper.assign(source="run")], ignore_index=True), PAPER)


def test_zero_base_gives_nan_ratio_and_is_left_out_of_the_mean_relative_change():
    df = pd.DataFrame({"eval_set": ["x"] * 4, "fine_tune": ["base", "t", "base", "t"],
                       "ckpt": ["step1", "step1", "main", "main"], "step": [1.0, 1.0, math.nan, math.nan],
                       "format": "default", "shots": 4, "performance": [0.0, 0.5, 0.25, 0.5], "source": "run"})
    small = dataclasses.replace(TINY, ckpts=("step1", "main"), rungs=None)
    study = stats.Study(df, small)
    table = stats.change_table(study, [("x", "t")])
    assert table["raw"].tolist() == [0.5, 0.25] and math.isnan(table["ratio"].iloc[0]) and table["ratio"].iloc[1] == 1.0
    est = study.estimate(lambda g, w: (stats.mean_gain(g, w, [("x", "t")], study.ladder, relative=True), []))
    assert est.point == 100.0 and est.modes == ["fixed"] and math.isnan(est.ci("measurement")[0])


# ---------------------------------------------------------------------------------------------------------------
# the machinery: unit weights, weighted aggregates, the two intervals


def test_unit_weights_are_seeded_bootstrap_counts_and_leave_one_out_zeroes_one():
    w = stats.Weights(1001, resample=("pair",), seed=3)
    counts = np.vstack([w("pair", p, ["a", "b", "c"]) for p in "abc"])
    assert (counts[:, 0] == 1).all() and (counts[:, 1:].sum(axis=0) == 3).all()  # column 0: the point estimate
    again = stats.Weights(1001, resample=("pair",), seed=3)
    assert (again("pair", "b", ["a", "b", "c"]) == counts[1]).all()  # the same units for the same stratum
    assert w("ckpt", "step1", ["step1", "step2"]) == 1.0  # a dimension not resampled weighs 1
    assert w("pair", "a", ["a"]) == 1.0  # a stratum of one unit has nothing to resample
    out = stats.Weights(11, resample=("pair",), leave=("pair", "b"))
    assert out("pair", "b", ["a", "b"]) == 0.0 and out.seen == {"pair": {"b": None}}


def test_weighted_aggregates_reduce_to_plain_ones():
    v = [np.array([1.0, 2.0]), np.array([3.0, 6.0]), np.array([5.0, np.nan])]
    np.testing.assert_array_equal(stats.wmean([(x, 1.0) for x in v[:2]], "x"), [2.0, 4.0])
    np.testing.assert_array_equal(stats.wmean([(v[0], 1.0), (v[1], 0.0)], "x"), v[0])
    np.testing.assert_array_equal(stats.wmean([(v[0], np.array([1.0, 0.0])), (v[1], np.array([1.0, 0.0]))], "x"),
                                  [2.0, np.nan])  # a column where every unit weighs 0 has no value
    np.testing.assert_array_equal(stats.wmean([(x, 1.0) for x in v], "x", nan_ok=True), [3.0, 4.0])
    with pytest.raises(stats.Unmeasurable, match="no thing"):
        stats.wmean([(None, 1.0)], "thing")


def test_fitted_change_with_a_checkpoint_left_out_is_the_fit_without_it():
    steps, y = [10, 100, 1000], [np.array([0.0, 1.0]), np.array([1.0, 1.0]), np.array([2.0, 5.0])]
    np.testing.assert_allclose(stats.fitted_change(steps, y), [2.0, 4.0])  # 1 per decade over 2 decades
    np.testing.assert_allclose(stats.fitted_change(steps, y, [1.0, 0.0, 1.0]), stats.fitted_change(steps[::2], y[::2]))
    weighted = stats.fitted_change(steps, y, [np.ones(2), np.ones(2), np.ones(2)])
    np.testing.assert_allclose(weighted, [2.0, 4.0])  # per-column weights of 1: the same fit
    assert stats.fitted_change(steps, y, [1.0, 0.0, 0.0]) is None  # one point left


def test_units_interval_widens_where_units_disagree_and_measurement_does_not():
    # two pairs measured precisely (400 items) that disagree: +0.30 and −0.10
    rng = np.random.default_rng(0)
    rows = []
    for e, f, gain in (("a", "ta", 0.3), ("b", "tb", -0.1)):
        base = rng.binomial(1, 0.4, 400).astype(float)
        tuned = np.where(rng.random(400) < abs(gain) / 0.6, 1.0 if gain > 0 else 0.0, base)
        for kind, scores in (("base", base), (f, tuned)):
            rows.append({"eval_set": e, "fine_tune": kind, "ckpt": "main", "step": 10.0, "format": "default",
                         "shots": 4, "performance": scores.mean(), "scores": scores, "source": "run"})
    small = dataclasses.replace(TINY, ckpts=("main",), rungs=None)
    study = stats.Study(pd.DataFrame(rows), small)
    est = study.estimate(lambda g, w: (stats.mean_gain(g, w, [("a", "ta"), ("b", "tb")], ["main"]), []), ("pair",))
    mlow, mhigh = est.ci("measurement")
    low, high = est.ci("units")
    assert mlow > 0  # measurement alone: the mean gain of these two pairs is positive
    assert low < 0 < high  # a new pair of this kind could gain or lose: the units interval says so
    assert est.describe() == "task pairs, then items (paired bootstrap per eval set)"
    assert est.describe("measurement") == "items (paired bootstrap per eval set)"
    assert est.units == {"pair": ["a←ta", "b←tb"], "ckpt": ["main"]}


# ---------------------------------------------------------------------------------------------------------------
# the Springer cells: seeds, then held-out blocks


def _sensitivity_frame(n_blocks, seed_sd=0.01):
    rng = np.random.default_rng(0)
    block_effect = rng.normal(0.0, 0.03, n_blocks)
    rows = []
    for ckpt, true in (("step10", 0.01), ("main", 0.05)):
        for s in range(4):
            deltas = true + rng.normal(0.0, seed_sd) + block_effect + rng.normal(0.0, 0.02, n_blocks)
            rows.append({"ckpt": ckpt, "step": 10 if ckpt == "step10" else 160, "scaling": "init", "magnitude": 1.0,
                         "seed": s, "base_loss": 7.0, "loss": 7.0 + deltas.mean(), "delta_loss": deltas.mean(),
                         "block_deltas": deltas, "n_tokens": n_blocks * 127})
    return pd.DataFrame(rows)


def test_sensitivity_table_ci_contains_the_mean_and_narrows_with_more_blocks():
    small, large = (stats.sensitivity_table(_sensitivity_frame(n), TINY) for n in (16, 256))
    assert list(small.columns) == ["scaling", "magnitude", "ckpt", "step", "delta_loss", "ci_low", "ci_high",
                                   "n_seeds", "n_blocks", "base_loss", "n_tokens"]
    assert list(small["ckpt"]) == ["step10", "main"] and (small["n_seeds"] == 4).all()
    assert list(large["n_blocks"]) == [256, 256] and list(large["n_tokens"]) == [256 * 127] * 2
    for table in (small, large):
        assert (table["ci_low"] < table["delta_loss"]).all() and (table["delta_loss"] < table["ci_high"]).all()
    width = lambda t: (t["ci_high"] - t["ci_low"]).to_numpy()  # noqa: E731
    assert (width(large) < 0.6 * width(small)).all()
    frame = _sensitivity_frame(64)
    np.testing.assert_allclose(stats.sensitivity_table(frame, TINY)["delta_loss"],
                               frame.groupby("ckpt", sort=False)["delta_loss"].mean())
    pd.testing.assert_frame_equal(stats.sensitivity_table(frame, TINY), stats.sensitivity_table(frame, TINY))  # seeded
    with pytest.raises(ValueError, match=r"lacks columns \['magnitude'\]"):
        stats.sensitivity_table(frame.drop(columns="magnitude"), TINY)


def test_sensitivity_cells_resample_seeds_as_well_as_blocks():
    quiet, noisy = (stats.sensitivity_table(_sensitivity_frame(200, seed_sd=sd), TINY) for sd in (0.0, 0.05))
    width = lambda t: (t["ci_high"] - t["ci_low"]).to_numpy()  # noqa: E731
    assert (width(noisy) > 2 * width(quiet)).all()


def test_weighted_midranks_equal_the_pairwise_definition_with_ties_and_zero_weights():
    """The sorted computation of Spearman's weighted mid-ranks equals the definition (weight below + (weight of the
    ties + 1) / 2), column by column, on data with many ties, zero weights and one unit."""
    rng = np.random.default_rng(0)
    for units, cols in [(1, 3), (2, 1), (9, 40), (32, 200)]:
        for a in (rng.integers(0, 4, size=(units, cols)).astype(float), rng.normal(size=(units, cols))):
            w = rng.integers(0, 3, size=(units, cols)).astype(float)
            less = ((a[None, :, :] < a[:, None, :]) * w[None, :, :]).sum(axis=1)
            same = ((a[None, :, :] == a[:, None, :]) * w[None, :, :]).sum(axis=1)
            np.testing.assert_array_equal(stats.weighted_midranks(a, w), less + (same + 1) / 2)
