"""Change tables, MRC, Table 5 and the OOD summary, recomputed from the authors' released CSVs."""

from __future__ import annotations

import dataclasses
import logging
import math

import pandas as pd
import pytest

from amuro_utils import analysis
from amuro_utils.paths import DATA_DIR
from amuro_utils.profiles import PAPER, PAPER_REFERENCE, TINY
from amuro_utils.results import combined, load_paper_results

CKPTS = ["1000", "18000", "342000", "424000", "505000", "592000", "738000", "main"]


@pytest.fixture(scope="module")
def paper():
    return load_paper_results()


def _release_table5(pairs):
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
        step = 750_000 if ckpt == "main" else int(ckpt)
        slope = math.nan if i == 0 else (raw_change - rows[-1][1]) / (step - rows[-1][0]) * 100_000
        rows.append((step, raw_change, sum(c[1] for c in changes) / len(changes) * 100, len(changes), slope))
    return rows


# ---------------------------------------------------------------------------------------------------------------
# pairs


@pytest.mark.parametrize("profile", [PAPER, PAPER_REFERENCE])
def test_paper_pairs_are_protocols(profile):
    assert analysis.class_to_gen_pairs(profile) == [("xsum", "mnli"), ("socialiqa", "mnli"), ("xsum", "paws"),
                                                    ("socialiqa", "paws")]
    assert sorted(analysis.gen_to_class_pairs(profile)) == sorted(
        [("paws", "xsum"), ("mnli_matched", "xsum"), ("mnli_matched", "socialiqa"), ("paws", "socialiqa")])
    assert sorted(analysis.ood_pairs(profile)) == sorted(
        [("rte", "mnli"), ("gpt3nli", "mnli"), ("cnn", "xsum"), ("qqp", "paws"), ("stsb", "paws"),
         ("tweetqa", "socialiqa"), ("sciq", "socialiqa")])
    groups = analysis.ood_groups(profile)
    assert {g: sorted(p) for g, p in groups.items()} == {
        "NLI": [("gpt3nli", "mnli"), ("rte", "mnli")], "Summary Generation": [("cnn", "xsum")],
        "Question Generation": [("sciq", "socialiqa"), ("tweetqa", "socialiqa")],
        "Paraphrase Detection": [("qqp", "paws"), ("stsb", "paws")]}


def test_paper_learned_groups():
    groups = analysis.learned_groups(PAPER)
    assert groups["Learned in PT"] == [("sciq_mc", "tulu"), ("hellaswag", "tulu"), ("arc_challenge", "tulu"),
                                       ("arc_easy", "tulu"), ("openbookqa", "tulu"), ("sciq_mc", "tulu")]
    assert groups["Learned in FT"] == [("mnli_matched", "mnli"), ("paws", "paws"), ("xsum", "xsum"),
                                       ("mnli_mismatched", "mnli"), ("xlsum", "xsum"), ("socialiqa", "socialiqa"),
                                       ("boolq", "tulu")]


def test_tiny_profile_pairs_follow_its_tasks(caplog):
    assert analysis.class_to_gen_pairs(TINY) == [("xsum", "mnli"), ("socialiqa", "mnli"), ("xsum", "qqp"),
                                                 ("socialiqa", "qqp")]
    assert analysis.ood_groups(TINY) == {"NLI": [("rte", "mnli"), ("cb", "mnli")],
                                         "Paraphrase Detection": [("stsb_glue", "qqp"), ("mrpc", "qqp")],
                                         "Question Generation": [("sciq", "socialiqa")]}
    groups = analysis.learned_groups(TINY)  # tiny's own list: qqp stands in for paws
    assert groups["Learned in FT"] == [("mnli_matched", "mnli"), ("qqp_glue", "qqp"), ("xsum", "xsum"),
                                       ("socialiqa", "socialiqa"), ("boolq", "instruct_mix")]
    without_own = dataclasses.replace(TINY, learned_in_ft=None)
    with caplog.at_level(logging.INFO, logger="amuro_utils.analysis"):
        groups = analysis.learned_groups(without_own)
    assert groups["Learned in FT"] == [("mnli_matched", "mnli"), ("xsum", "xsum"), ("socialiqa", "socialiqa"),
                                       ("boolq", "instruct_mix")]
    assert "['paws', 'mnli_mismatched', 'xlsum']" in caplog.text


def test_profile_can_supply_its_own_split():
    own = dataclasses.replace(TINY, learned_in_ft=("qqp_glue", "boolq"))
    assert analysis.learned_groups(own)["Learned in FT"] == [("qqp_glue", "qqp"), ("boolq", "instruct_mix")]
    bad = dataclasses.replace(TINY, learned_in_pt=("paws",))
    with pytest.raises(ValueError, match="names 'paws'"):
        analysis.learned_groups(bad)


# ---------------------------------------------------------------------------------------------------------------
# the paper's numbers


def test_cross_task_mrc_matches_the_paper(paper):
    class_to_gen = analysis.mean_relative_change(paper, analysis.class_to_gen_pairs(PAPER))
    gen_to_class = analysis.mean_relative_change(paper, analysis.gen_to_class_pairs(PAPER))
    # the paper: -61.4 % and +0.3 %; PROTOCOL §9: -61.46 % and +0.31 %
    assert abs(class_to_gen * 100 - -61.4) < 0.1 and round(class_to_gen * 100, 2) == -61.46
    assert abs(gen_to_class * 100 - 0.3) < 0.1 and round(gen_to_class * 100, 2) == 0.31
    # 4 pairs x 8 checkpoints incl. main, no cell missing
    assert len(analysis.change_table(paper, analysis.class_to_gen_pairs(PAPER))) == 32


def test_change_table_rows(paper):
    table = analysis.change_table(paper, [("xsum", "mnli")])
    assert table["ckpt"].tolist() == [f"step{c}" for c in CKPTS[:-1]] + ["main"]
    row = table[table["ckpt"] == "step424000"].iloc[0]
    # the base xsum outlier at 424000 (.019) that drives ratio statistics (PROTOCOL §6.3)
    assert round(row["base"], 3) == 0.019
    assert row["raw"] == pytest.approx(row["fine_tuned"] - row["base"])
    assert row["ratio"] == pytest.approx(row["raw"] / row["base"])
    assert table.attrs["missing"] == []


def test_table5_matches_the_release_and_regression(paper):
    table = analysis.table5(paper, PAPER, main_step=analysis.PAPER_MAIN_STEP)
    groups = analysis.learned_groups(PAPER)
    for group, pairs in groups.items():
        got = table[table["group"] == group]
        expected = _release_table5(pairs)
        assert got["step"].tolist() == [e[0] for e in expected]
        assert got["raw_change"].tolist() == pytest.approx([e[1] for e in expected], abs=1e-12)
        assert got["pct_change"].tolist() == pytest.approx([e[2] for e in expected], abs=1e-9)
        assert got["n_pairs"].tolist() == [e[3] for e in expected]
        assert got["slope_per_100k"].tolist() == pytest.approx([e[4] for e in expected], abs=1e-12, nan_ok=True)
    as_rows = {g: [tuple(round(v, 3) for v in r) for r in
                   table[table["group"] == g][["raw_change", "pct_change", "slope_per_100k"]].fillna(0).values]
               for g in groups}
    assert as_rows["Learned in PT"] == [
        (0.048, 14.093, 0.0), (0.048, 8.969, 0.0), (0.004, -0.006, -0.014), (0.010, 1.225, 0.007),
        (0.030, 3.613, 0.025), (0.027, 3.183, -0.003), (0.021, 2.592, -0.004), (-0.005, -0.149, -0.217)]
    assert as_rows["Learned in FT"] == [
        (0.062, 291.665, 0.0), (0.149, 94.766, 0.511), (0.286, 230.720, 0.042), (0.297, 261.554, 0.013),
        (0.304, 216.408, 0.008), (0.297, 194.316, -0.007), (0.264, 140.565, -0.022), (0.290, 194.405, 0.216)]
    assert set(table["n_pairs"]) == {6, 7}
    assert math.isnan(table["slope_per_100k"].iloc[0])
    # without the release's convention, main sits at its recorded step 738,020, 20 steps after step738000
    recorded = analysis.table5(paper, dataclasses.replace(PAPER, table5_main_step=None)).set_index(["group", "ckpt"])
    pt = table.set_index(["group", "ckpt"]).loc["Learned in PT"]
    assert recorded.loc[("Learned in PT", "main"), "step"] == 738020.0
    assert recorded.loc[("Learned in PT", "main"), "slope_per_100k"] == pytest.approx(
        (pt.loc["main", "raw_change"] - pt.loc["step738000", "raw_change"]) / 20 * 100_000)


def test_ood_summary(paper):
    summary = analysis.ood_summary(paper, PAPER).set_index("group")
    assert summary["n"].to_dict() == {"NLI": 16, "Paraphrase Detection": 16, "Summary Generation": 8, "Question Generation": 16}
    rounded = {g: tuple(round(summary.loc[g, c], 3) for c in ("raw_change", "ci_low", "ci_high"))
               for g in summary.index}
    assert rounded == {"NLI": (0.246, 0.184, 0.300), "Paraphrase Detection": (-0.182, -0.260, -0.108),
                       "Summary Generation": (-0.003, -0.009, 0.004), "Question Generation": (0.021, -0.010, 0.050)}
    assert summary.attrs["missing"] == []
    again = analysis.ood_summary(paper, PAPER).set_index("group")
    assert again["ci_low"].tolist() == summary["ci_low"].tolist()


def test_mean_ci():
    assert analysis.mean_ci([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    mean, low, high = analysis.mean_ci([1.0])
    assert mean == 1.0 and math.isnan(low) and math.isnan(high)
    mean, low, high = analysis.mean_ci([0.0, 1.0, 2.0, 3.0, 4.0], confidence=0.9)
    assert mean == 2.0 and 0.0 < low < 2.0 < high < 4.0


# ---------------------------------------------------------------------------------------------------------------
# missing cells and bad input


def test_missing_cells_are_reported_not_fatal(paper, caplog):
    pairs = [("llmbar_Natural", "tulu"), ("llmbar_Adversarial_Neighbor", "tulu"), ("mnli_matched", "paws")]
    with caplog.at_level(logging.WARNING, logger="amuro_utils.analysis"):
        table = analysis.change_table(paper, pairs)
    assert table.attrs["missing"] == [
        {"eval_set": "llmbar_Natural", "fine_tune": "tulu", "ckpt": "step342000", "missing": "fine_tuned"},
        {"eval_set": "llmbar_Adversarial_Neighbor", "fine_tune": "tulu", "ckpt": "step342000", "missing": "fine_tuned"},
        {"eval_set": "mnli_matched", "fine_tune": "paws", "ckpt": "step342000", "missing": "fine_tuned"},
        {"eval_set": "mnli_matched", "fine_tune": "paws", "ckpt": "step738000", "missing": "fine_tuned"}]
    assert len(table) == 3 * 8 - 4
    assert "mnli_matched←paws at step738000 (no fine_tuned)" in caplog.text
    per_ckpt = analysis.learning_table(paper, pairs)
    # at 342000 every cell is missing, so the checkpoint has no row
    assert per_ckpt["ckpt"].tolist() == [f"step{c}" for c in CKPTS if c not in ("342000", "main")] + ["main"]
    assert per_ckpt["n_pairs"].tolist() == [3, 3, 3, 3, 3, 2, 3]


def test_missing_everything_raises_clearly(paper):
    with pytest.raises(ValueError, match="no \\(pair, checkpoint\\) has both"):
        analysis.mean_relative_change(paper, [("xsum", "no_such_task")])


def test_duplicated_cells_need_one_source(paper):
    both = combined(paper, paper.assign(source="run"))
    with pytest.raises(ValueError, match="df.source == 'run'"):
        analysis.change_table(both, [("xsum", "mnli")])


def test_zero_base_gives_nan_ratio_and_small_frames():
    df = pd.DataFrame({"eval_set": ["x"] * 4, "fine_tune": ["base", "t", "base", "t"],
                       "ckpt": ["step1", "step1", "main", "main"], "step": [1.0, 1.0, math.nan, math.nan],
                       "format": "default", "shots": 4, "performance": [0.0, 0.5, 0.25, 0.5], "source": "run"})
    table = analysis.change_table(df, [("x", "t")])
    assert table["ckpt"].tolist() == ["step1", "main"]
    assert table["raw"].tolist() == [0.5, 0.25] and math.isnan(table["ratio"].iloc[0]) and table["ratio"].iloc[1] == 1.0
    assert analysis.mean_relative_change(df, [("x", "t")]) == 1.0
    with pytest.raises(ValueError, match="no column 'accuracy'"):
        analysis.change_table(df, [("x", "t")], value="accuracy")
    with pytest.raises(ValueError, match="pairs must be"):
        analysis.change_table(df, ["x"])
