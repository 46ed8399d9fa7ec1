"""Continuous readings as a results frame, and signal-to-noise per evaluation set over the ladder (Heineman et al.
2025's definitions, adapted to a ladder: the noise is each score's own standard error)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from amuro_utils import stats
from amuro_utils.config.profiles import get_profile
from amuro_utils.stats import signal
from amuro_utils.store import results

TINY = get_profile("tiny")
THREE = dataclasses.replace(TINY, ckpts=("step1000", "step342000", "main"))
PROVENANCE = {"revision": "r", "commit": "c", "config_hash": "0123456789abcdef", "versions": {}, "profile": "tiny"}


def _write(store, ckpt, eval_set, metric, scores, *, fine_tune="base", seed=None, references=None, **continuous):
    key = dict(model="allenai/tiny-olmo", ckpt=ckpt, fine_tune=fine_tune, method="none" if seed is None else "full",
               seed=seed, eval_set=eval_set, format="default", shots=4)
    scores = np.asarray(scores, dtype=float)
    metrics = {"metric": metric, "performance": float(scores.mean()), "mean": float(scores.mean()), "std": 0.0,
               "n": len(scores), "n_truncated": 0}
    references = references or [str(i % 4) for i in range(len(scores))]
    store.write(key, metrics, PROVENANCE, scores=scores.tolist(), predictions=["0"] * len(scores),
                references=references, continuous={k: list(v) for k, v in continuous.items()})


# ---------------------------------------------------------------------------------------------------------------
# the definitions, exactly


def test_a_series_signal_noise_and_snr_by_hand():
    row = signal._snr_row("arc_easy", "base", "acc_uncond", np.array([0.2, 0.5, 0.3]), np.array([0.01, 0.04, 0.01]),
                          np.array([math.nan, 0.0025, math.nan]))
    # dispersion 0.5 − 0.2; noise² = mean item variance 0.02 + mean seed variance 0.0025 → 0.15; mean 1/3
    assert row["dispersion"] == pytest.approx(0.3) and row["noise_items"] == pytest.approx(math.sqrt(0.02))
    assert row["noise_seeds"] == pytest.approx(0.05) and row["noise"] == pytest.approx(0.15)
    assert row["signal"] == pytest.approx(0.9) and row["relative_noise"] == pytest.approx(0.45)
    assert row["snr"] == pytest.approx(2.0) and row["snr"] == pytest.approx(row["signal"] / row["relative_noise"])
    assert row["snr_below_1"] is False and row["measures"] == signal.PAPER_METRIC
    flat = signal._snr_row("sciq", "base", "gold_bpb", np.array([2.0, 2.02]), np.array([0.0016, 0.0016]),
                           np.array([math.nan, math.nan]))
    assert flat["snr"] == pytest.approx(0.5) and flat["snr_below_1"] is True and flat["measures"] == "answer text"
    assert math.isnan(flat["noise_seeds"])


def test_the_no_signal_floor_is_the_expected_range_of_normal_draws():
    assert signal.no_signal_snr(2) == pytest.approx(2 / math.sqrt(math.pi), rel=1e-9)
    assert signal.no_signal_snr(8) == pytest.approx(2.847, abs=5e-4)  # d2(8) of the control-chart tables
    draws = np.random.default_rng(0).standard_normal((200_000, 9))
    assert signal.no_signal_snr(9) == pytest.approx(np.ptp(draws, axis=1).mean(), rel=0.01)
    with pytest.raises(ValueError, match="at least 2 checkpoints"):
        signal.no_signal_snr(1)


# ---------------------------------------------------------------------------------------------------------------
# readings as a results frame


def test_metric_view_puts_a_reading_in_place_of_the_scores(tmp_path):
    store = results.Store(tmp_path)
    _write(store, "step1000", "xsum", "rougeL", [0.1, 0.2, 0.0], references=["a b", "", "c"],
           gold_bpb=[2.0, math.nan, 4.0])
    _write(store, "main", "xsum", "rougeL", [0.3, 0.1, 0.2], references=["a b", "", "c"],
           gold_bpb=[1.0, math.nan, 2.0])
    _write(store, "main", "arc_easy", "acc_uncond", [1.0, 0.0], gold_share=[0.6, 0.2])
    frame = store.frame(items=True)
    view = signal.metric_view(frame, "gold_bpb")
    assert sorted(view["ckpt"]) == ["main", "step1000"] and set(view["metric"]) == {"gold_bpb"}
    early = view[view["ckpt"] == "step1000"].iloc[0]
    # the empty reference's item is dropped alike from both records, so they stay paired
    assert early["scores"].tolist() == [2.0, 4.0] and early["references"] == ["a b", "c"]
    assert (early["performance"], early["mean"], early["n"]) == (3.0, 3.0, 2.0)
    assert early["std"] == pytest.approx(np.std([2.0, 4.0], ddof=1) / math.sqrt(2))
    study = stats.Study(view, THREE)
    assert study.cells.vector(("xsum", "base", "main", "default"))[0] == 1.5
    assert study.cells.mode(("xsum", "base", "main", "default")) == "items"
    with pytest.raises(ValueError, match="unknown reading 'perplexity'"):
        signal.metric_view(frame, "perplexity")
    with pytest.raises(ValueError, match=r"frame\(items=True\)"):
        signal.metric_view(store.frame(), "gold_bpb")
    assert signal.metric_view(results.load_paper_results(), "gold_bpb").empty  # the release has no readings
    assert signal.readings_of(frame) == ["gold_bpb", "gold_share"]
    assert signal.figure_reading("acc_uncond", "answer text") == "gold_bpb"
    assert signal.figure_reading("accuracy", "answer text") == "gold_logprob"
    assert signal.figure_reading("rougeL", "discrimination") is None


# ---------------------------------------------------------------------------------------------------------------
# the table


@pytest.fixture
def ladder_frame(tmp_path):
    """ARC-Easy base over three rungs: accuracy flat at 0.5, gold bits per byte falling 3 → 2.5 → 2 with item noise;
    MNLI fine-tuned with two seeds whose accuracies differ by 0.1 at every rung."""
    store, rng = results.Store(tmp_path), np.random.default_rng(0)
    noise = rng.normal(0, 0.4, 40)
    for step, ckpt in enumerate(THREE.ckpts):
        _write(store, ckpt, "arc_easy", "acc_uncond", [1.0, 0.0] * 20, gold_bpb=3.0 - 0.5 * step + noise,
               gold_share=np.full(40, 0.25) + 0.01 * step)
        for seed, shift in ((1, 0.0), (2, 0.1)):
            scores = (np.arange(40) < 12 + 4 * step + 40 * shift).astype(float)
            _write(store, ckpt, "mnli_matched", "accuracy", scores, fine_tune="mnli", seed=seed,
                   references=["entailment"] * 40)
    return store.frame(items=True)


def test_snr_table_over_a_planted_ladder(ladder_frame):
    study = stats.Study(ladder_frame, THREE)
    table = signal.snr_table(study)
    assert list(table.columns) == list(signal.SNR_COLUMNS) and "Heineman" in table.attrs["caption"]
    by = table.set_index(["eval_set", "fine_tune", "metric"])
    accuracy = by.loc[("arc_easy", "base", "acc_uncond")]
    assert accuracy["dispersion"] == 0.0 and accuracy["snr"] == 0.0 and accuracy["snr_below_1"]
    # item SE of a 0/1 score at p = 0.5 over 40 items: √(0.25 / 40) (the bootstrap's, within its resampling error)
    assert accuracy["noise_items"] == pytest.approx(math.sqrt(0.25 / 40), rel=0.06)
    bpb = by.loc[("arc_easy", "base", "gold_bpb")]
    assert bpb["dispersion"] == pytest.approx(1.0) and bpb["measures"] == "answer text"
    assert bpb["noise_items"] == pytest.approx(np.std(ladder_frame["gold_bpb"].iloc[0]) / math.sqrt(40), rel=0.06)
    assert bpb["snr"] == pytest.approx(1.0 / bpb["noise"]) and bpb["snr"] > bpb["no_signal_snr"]
    share = by.loc[("arc_easy", "base", "gold_share")]
    # the same share on every item: no item noise (to rounding), so any move along the ladder is signal
    assert share["dispersion"] == pytest.approx(0.02) and share["noise_items"] < 1e-12 and share["snr"] > 1e9
    tuned = by.loc[("mnli_matched", "mnli", "accuracy")]
    # the seeds' means differ by 0.1 at every rung: SD across two seeds 0.1/√2; the rung means rise 0.3 → 0.5
    assert tuned["noise_seeds"] == pytest.approx(0.1 / math.sqrt(2)) and tuned["dispersion"] == pytest.approx(0.2)
    assert tuned["noise"] == pytest.approx(math.hypot(tuned["noise_items"], tuned["noise_seeds"]))
    assert list(signal.snr_base(study)["fine_tune"].unique()) == ["base"]
    assert list(signal.snr_fine_tuned(study)["fine_tune"].unique()) == ["mnli"]
    with pytest.raises(ValueError, match="'base', 'fine_tuned' or 'all'"):
        signal.snr_table(study, "instruction")


def test_low_snr_names_the_flat_series_among_a_verdicts_cells(ladder_frame):
    study = stats.Study(ladder_frame, THREE)
    keys = [("arc_easy", "base", c, "default") for c in THREE.ckpts] + [("mnli_matched", "mnli", "main", "default")]
    assert signal.low_snr(study, keys) == ["arc_easy (base): SNR 0.00"]
    assert signal.low_snr(study, keys[-1:]) == []
    tuned = signal.snr_table(study).set_index(["eval_set", "metric"]).loc[("mnli_matched", "accuracy"), "snr"]
    assert signal.low_snr(study, keys[-1:], threshold=tuned + 0.01) == [f"mnli_matched (mnli): SNR {tuned:.2f}"]


def test_snr_of_the_release_takes_its_std_as_the_noise():
    paper = results.load_paper_results()
    study = stats.Study(paper, get_profile("paper-reference"))
    table = signal.snr_base(study)
    assert set(table["metric"]) <= {"accuracy", "rougeL", "acc_uncond", "acc_raw", "acc_per_token"}
    row = table.set_index(["eval_set", "fine_tune"]).loc[("mnli_matched", "base")]
    cells = stats.select(paper, study.profile, "full")
    base = cells[(cells["eval_set"] == "mnli_matched") & (cells["fine_tune"] == "base")
                 & (cells["format"] == "default") & cells["ckpt"].isin(study.ladder)]
    assert row["n_ckpts"] == len(base) == 8
    assert row["dispersion"] == pytest.approx(base["performance"].max() - base["performance"].min())
    assert row["noise"] == pytest.approx(math.sqrt((base["std"] ** 2).mean()), rel=0.06)
    assert math.isnan(row["noise_seeds"])  # one fine-tuning seed in the release, none for a base model


def test_the_scorecard_flags_the_series_below_snr_1_among_a_verdicts_cells(ladder_frame):
    """B1a reads ARC-Easy's base scores over the ladder; its accuracy never moves (SNR 0): the cells column says so,
    in the CSV's low_snr column and the markdown table, while the paper's verdict itself is untouched."""
    from amuro_utils.verdicts import claims

    study = stats.Study(ladder_frame, THREE)
    table = claims.evaluate_all(ladder_frame, THREE, ids=["B1"], study=study, n_boot=200)
    row = table.set_index("id").loc["B1a"]
    assert row["n_cells"] == 3 and row["low_snr"] == "arc_easy (base): SNR 0.00"
    assert "SNR < 1: arc_easy (base): SNR 0.00" in claims.scorecard_markdown(table)
    # the scorecard's flag is the SNR table's paper-metric row, computed without the readings
    paper = signal.paper_snr(stats.Study(ladder_frame, THREE))
    full = signal.snr_table(study)
    assert paper.set_index(["eval_set", "fine_tune"])["snr"].to_dict() == \
        full[full["measures"] == signal.PAPER_METRIC].set_index(["eval_set", "fine_tune"])["snr"].to_dict()


def test_claims_on_a_reading_are_judged_with_the_same_statistic_in_the_reading_that_moves(ladder_frame):
    """B1a (the base score's fitted change over the ladder, > 0) on ARC-Easy: flat in accuracy (inconclusive), but
    its gold bits per byte fall 3 → 2.5 → 2, so on the answer-text reading (bits per byte negated: higher = better)
    it rises and is supported; its discrimination share rises 0.01 a rung with no item noise, supported too. A flat
    claim (B1b, ±0.02 in the paper metric's units) is not judged on a reading, with why."""
    from amuro_utils.verdicts import claims

    view = signal.claim_view(ladder_frame, "answer text")
    arc = view[view["eval_set"] == "arc_easy"]
    assert set(arc["metric"]) == {"−gold_bpb"} and (arc["performance"] < 0).all()
    assert set(view.loc[view["eval_set"] == "mnli_matched", "metric"]) <= {"gold_logprob"}
    paper = claims.evaluate_all(ladder_frame, THREE, ids=["B1"], n_boot=200)
    table = claims.evaluate_readings(ladder_frame, THREE, ids=["B1"], paper=paper, n_boot=200)
    by = table.set_index(["id", "reading"])
    assert by.loc[("B1a", "answer text"), "verdict"] == claims.SUPPORTED
    assert by.loc[("B1a", "answer text"), "value"] > 0
    assert by.loc[("B1a", "answer text"), "paper_metric_verdict"] == claims.part_row(paper, "B1a")["verdict"]
    assert by.loc[("B1a", "discrimination"), "verdict"] == claims.SUPPORTED
    assert by.loc[("B1b", "answer text"), "verdict"] == claims.NOT_ON_READING
    assert "paper metric's units" in by.loc[("B1b", "answer text"), "note"]
    text = claims.readings_markdown(table, THREE)
    assert "## answer text" in text and "**B1b** — its boundary" in text
    summary = claims.readings_summary(table)
    assert "B1a (" in summary and "→ supported" in summary


def test_a_reading_is_a_noise_model_for_calibrating_its_claims(ladder_frame):
    """calibration.reading_source: the run's cells on the reading (higher = better), levels the mean base reading,
    each cell's own SE; B1a at its boundary (no change over the ladder) is seldom decided on it."""
    from amuro_utils.verdicts import calibration

    src = calibration.reading_source(ladder_frame, THREE, "answer text")
    cells = src.cells.set_index(["eval_set", "fine_tune", "ckpt"])
    assert src.kind == "normal" and cells.loc[("arc_easy", "base", "main"), "metric"] == "−gold_bpb"
    assert cells.loc[("arc_easy", "base", "main"), "level"] == pytest.approx(-2.5 - np.random.default_rng(0).normal(
        0, 0.4, 40).mean())
    assert cells.loc[("arc_easy", "base", "main"), "std"] == pytest.approx(
        np.random.default_rng(0).normal(0, 0.4, 40).std(ddof=1) / math.sqrt(40))
    rows = {r["truth"]: r for r in calibration.calibrate_part(src, "B1a", reps=60, n_boot=300,
                                                              truths=("boundary", "holds"))}
    assert rows["boundary"]["n"] == 60 and rows["boundary"]["false_support"] <= 0.1
    assert rows["holds"]["supported"] >= 0.9
    with pytest.raises(ValueError, match="carries the 'answer text' reading"):
        calibration.reading_source(ladder_frame.drop(columns=["gold_bpb", "gold_logprob"], errors="ignore")
                                   .iloc[0:0], THREE, "answer text")
