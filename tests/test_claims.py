"""claims: every claim as a computed verdict (synthetic frames with known effects, the release's own numbers),
the chance / majority / constant-predictor helpers, and how figures show them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from amuro_utils import stats
from amuro_utils.config import paths
from amuro_utils.config.profiles import PAPER, ckpt_step, get_profile  # noqa: E402
from amuro_utils.data import tasks  # noqa: E402
from amuro_utils.figures import plots
from amuro_utils.stats import analysis
from amuro_utils.store.results import Store, load_paper_results  # noqa: E402
from amuro_utils.study import stages
from amuro_utils.verdicts import claims

TINY = get_profile("tiny")
# Two tasks (one classification, one generation), three checkpoints, one benchmark and one LLMBar split.
SMALL = dataclasses.replace(
    TINY, name="claims-test", ckpts=("step10", "step40", "main"), tasks=(TINY.task("mnli"), TINY.task("xsum")),
    instruction=dataclasses.replace(TINY.instruction, benchmarks=("hellaswag",), llmbar=("llmbar_Natural",)),
    overtraining_pair=("step40", "main"),
    learned_in_ft=("mnli_matched", "xsum"), learned_in_pt=("hellaswag",), rungs=None)
STEPS = {"step10": 10.0, "step40": 40.0, "main": 160.0}


def row(eval_set, fine_tune, ckpt, perf, std=0.005, fmt="default", **extra):
    return {"model": "tiny", "ckpt": ckpt, "step": STEPS.get(ckpt, ckpt_step(ckpt)), "fine_tune": fine_tune, "eval_set": eval_set,
            "format": fmt, "shots": 4, "metric": "rougeL" if eval_set == "xsum" else "accuracy", "performance": perf,
            "std": std, "source": "run", "variant": "standard", **extra}


def transfer_frame(tuned=0.1, base=0.2, std=0.005, drop=()):
    """xsum base `base` and xsum←mnli `tuned` at every checkpoint (Class→Gen ratio = tuned/base − 1)."""
    rows = []
    for c in SMALL.ckpts:
        rows.append(row("xsum", "base", c, base, std))
        if ("xsum", "mnli", c) not in drop:
            rows.append(row("xsum", "mnli", c, tuned, std))
    return pd.DataFrame(rows)


def one(table, part_id):
    return claims.part_row(table, part_id)


# ---------------------------------------------------------------------------------------------------------------
# the verdict rule


def test_verdict_rule():
    assert claims.verdict(0.3, 0.1, 0.5, ">") == "supported"
    assert claims.verdict(-0.3, -0.5, -0.1, ">") == "contradicted"
    assert claims.verdict(0.1, -0.1, 0.3, ">") == "inconclusive"
    assert claims.verdict(0.01, 0.005, 0.015, "<", threshold=0.02) == "supported"
    assert claims.verdict(0.05, 0.03, 0.07, "<", threshold=0.02) == "contradicted"
    assert claims.verdict(0.0, -0.01, 0.015, "≈", margin=0.02) == "supported"
    assert claims.verdict(0.0, -0.01, 0.025, "≈", margin=0.02) == "inconclusive"
    assert claims.verdict(0.1, 0.03, 0.2, "≈", margin=0.02) == "contradicted"
    assert claims.verdict(float("nan"), np.nan, np.nan, ">") == "not measurable"
    assert claims.verdict(0.2, np.nan, np.nan, ">") == "inconclusive"  # no CI, no verdict either way
    with pytest.raises(ValueError, match="margin"):
        claims.verdict(0.0, -1, 1, "≈")


def test_fitted_change_is_the_rise_of_the_log_step_fit():
    change = stats.fitted_change([10, 100, 1000], [np.array([0.0, 1.0]), np.array([1.0, 1.0]), np.array([2.0, 1.0])])
    np.testing.assert_allclose(change, [2.0, 0.0])  # 1 per decade over 2 decades; equal scores give exactly 0
    assert stats.fitted_change([10, float("nan"), 100], [np.zeros(2), np.ones(2), None]) is None  # < 2 points


# ---------------------------------------------------------------------------------------------------------------
# known effects → supported / contradicted / inconclusive; missing cells → not measurable, named


def test_known_effects_give_each_verdict():
    supported = one(claims.evaluate_all(transfer_frame(tuned=0.1), SMALL, ids=["B6"]), "B6a")
    assert supported["value"] == pytest.approx(-50.0) and supported["verdict"] == "supported"
    assert supported["ci_low"] < -50 < supported["ci_high"] < -40
    assert supported["n_cells"] == 6 and supported["resampled"] == "checkpoints, then cells ~ N(performance, std²)"
    assert supported["resampled_measurement"] == "cells ~ N(performance, std²)"
    assert supported["verdict_measurement"] == "supported"
    assert one(claims.evaluate_all(transfer_frame(tuned=0.3), SMALL, ids=["B6"]), "B6a")["verdict"] == "contradicted"
    noisy = one(claims.evaluate_all(transfer_frame(tuned=0.19, std=0.05), SMALL, ids=["B6"]), "B6a")
    assert noisy["verdict"] == "inconclusive" and noisy["ci_low"] < 0 < noisy["ci_high"]


def test_flat_claim_is_judged_against_its_margin():
    def gen_to_class(factor):
        rows = [row("mnli_matched", ft, c, 0.4 * (factor if ft == "xsum" else 1.0), 0.002)
                for c in SMALL.ckpts for ft in ("base", "xsum")]
        return one(claims.evaluate_all(pd.DataFrame(rows), SMALL, ids=["B6"]), "B6b")

    assert gen_to_class(1.01)["verdict"] == "supported"  # +1 %, CI inside ±5 %
    assert gen_to_class(1.20)["verdict"] == "contradicted"  # +20 %, CI wholly outside ±5 %
    assert gen_to_class(1.05)["verdict"] == "inconclusive"  # +5 %: the CI straddles the margin
    assert one(claims.evaluate_all(transfer_frame(), SMALL, ids=["B6"]), "B6b")["direction"] == "within ±5 %"


def test_missing_cells_are_named():
    none = one(claims.evaluate_all(transfer_frame(drop={("xsum", "mnli", c) for c in SMALL.ckpts}), SMALL,
                                   ids=["B6"]), "B6a")
    assert none["verdict"] == "not measurable" and np.isnan(none["value"])
    assert none["missing"] == "xsum←mnli: no fine-tuned row at any checkpoint"
    partial = one(claims.evaluate_all(transfer_frame(drop={("xsum", "mnli", "step40")}), SMALL, ids=["B6"]), "B6a")
    assert partial["verdict"] == "supported" and partial["missing"] == "xsum←mnli at step40: no fine-tuned row"
    assert partial["n_cells"] == 5


def test_a_source_lacking_every_cell_gets_not_measurable_not_a_crash():
    base_only = pd.DataFrame([row("mrpc", "base", c, 0.2) for c in SMALL.ckpts])  # a set no claim of SMALL reads
    for frame in (base_only, base_only.iloc[0:0]):
        table = claims.evaluate_all(frame, SMALL)
        assert list(table.columns) == list(claims.SCORECARD_COLUMNS)
        assert set(table["id"].str[:2]) == set(claims.CLAIMS)
        assert set(table["verdict"]) == {"not measurable"}
        assert (table["missing"].str.len() + table["note"].str.len() > 0).all()
    with pytest.raises(ValueError, match=r"lacks columns \['performance'\]"):
        claims.evaluate_all(base_only.drop(columns="performance"), SMALL)
    with pytest.raises(ValueError, match="unknown claim ids"):
        claims.evaluate_all(base_only, SMALL, ids=["Z9"])


def test_mixed_sources_are_refused_with_the_fix():
    frame = transfer_frame()
    with pytest.raises(ValueError, match="pass one source and one model"):
        claims.evaluate_all(pd.concat([frame, frame.assign(source="paper")]), SMALL, ids=["B6"])


# ---------------------------------------------------------------------------------------------------------------
# items: the paired bootstrap, seeds, methods


def item_frame(base_scores, tuned_scores, **extra):
    rows = []
    for c in SMALL.ckpts:
        rows.append(row("mnli_matched", "base", c, base_scores.mean(), scores=base_scores, **extra))
        rows.append(row("mnli_matched", "mnli", c, tuned_scores.mean(), scores=tuned_scores, **extra))
    return pd.DataFrame(rows)


def test_paired_bootstrap_detects_what_an_unpaired_one_cannot():
    rng = np.random.default_rng(7)
    base = (rng.random(40) < 0.5).astype(float)
    tuned = base.copy()
    tuned[np.flatnonzero(base == 0)[:6]] = 1.0  # six items fixed by fine-tuning: +0.15, nothing else moves
    paired = one(claims.evaluate_all(item_frame(base, tuned), SMALL, ids=["B3"]), "B3")
    assert paired["value"] == pytest.approx(0.15) and paired["verdict"] == "supported"
    assert paired["resampled"] == "items (paired bootstrap per eval set)"
    # the same scores with the items' order broken: means unchanged, pairing lost → the CI spans 0
    unpaired = one(claims.evaluate_all(item_frame(base, rng.permutation(tuned)), SMALL, ids=["B3"]), "B3")
    assert unpaired["value"] == pytest.approx(0.15) and unpaired["verdict"] == "inconclusive"
    assert unpaired["ci_low"] < 0 < paired["ci_low"]
    # identical items for base and fine-tuned: every resample picks the same items for both, so the gain is 0
    same = one(claims.evaluate_all(item_frame(base, base), SMALL, ids=["B3"]), "B3")
    assert (same["value"], same["ci_low"], same["ci_high"]) == (0.0, 0.0, 0.0)


def test_records_of_one_set_with_different_n_are_not_paired():
    base, tuned = np.ones(20), np.r_[np.ones(10), np.zeros(5)]
    result = one(claims.evaluate_all(item_frame(base, tuned), SMALL, ids=["B3"]), "B3")
    assert "unpaired (records of one set with different n): mnli_matched n=[15, 20]" in result["note"]


def test_training_seeds_are_an_extra_resampling_level():
    base = np.r_[np.ones(30), np.zeros(30)]  # one checkpoint (main), so B3's min over checkpoints is its gain
    rows = [row("mnli_matched", "base", "main", 0.5, scores=base, seed=None)]
    one_seed = rows + [row("mnli_matched", "mnli", "main", 0.7, scores=np.r_[np.ones(42), np.zeros(18)], seed=42)]
    tuned_by_seed = {1: 30, 2: 42, 3: 54}  # items right out of 60: gains 0.0, 0.2, 0.4 over the base
    seeds = rows + [row("mnli_matched", "mnli", "main", k / 60, scores=np.r_[np.ones(k), np.zeros(60 - k)], seed=s)
                    for s, k in tuned_by_seed.items()]
    single = one(claims.evaluate_all(pd.DataFrame(one_seed), SMALL, ids=["B3"]), "B3")
    several = one(claims.evaluate_all(pd.DataFrame(seeds), SMALL, ids=["B3"]), "B3")
    assert single["value"] == pytest.approx(0.2) and several["value"] == pytest.approx(0.2)
    assert np.isnan(single["seed_spread"]) and several["seed_spread"] == pytest.approx(0.2)
    assert several["resampled"] == "items (paired bootstrap per eval set); training seeds, then items"
    assert several["ci_high"] - several["ci_low"] > 1.5 * (single["ci_high"] - single["ci_low"])
    assert "1 cells with several seeds (mean seed sd 0.2)" in several["note"]


def test_method_column_selects_the_fine_tuning_method():
    frame = transfer_frame(tuned=0.1).assign(method=lambda f: np.where(f["fine_tune"] == "base", "none", "full"))
    lora = transfer_frame(tuned=0.3).query("fine_tune != 'base'").assign(method="lora")
    both = pd.concat([frame, lora], ignore_index=True)
    assert one(claims.evaluate_all(both, SMALL, ids=["B6"]), "B6a")["value"] == pytest.approx(-50)
    assert one(claims.evaluate_all(both, SMALL, ids=["B6"], method="lora"), "B6a")["value"] == pytest.approx(50)
    assert one(claims.evaluate_all(transfer_frame(), SMALL, ids=["B6"], method="lora"), "B6a")["value"] \
        == pytest.approx(-50)  # no method column: every row counts


# ---------------------------------------------------------------------------------------------------------------
# constant predictors: helpers, records, counts


def test_chance_majority_and_constant_helpers():
    assert analysis.chance_level(tasks.get("mnli_matched")) == pytest.approx(1 / 3)
    assert analysis.chance_level(tasks.get("rte")) == pytest.approx(1 / 3)  # binary gold, three predictable words
    assert analysis.chance_level(tasks.get("qqp_glue")) == 0.5
    assert analysis.chance_level(tasks.get("llmbar_Natural")) == 0.5
    assert analysis.chance_level(tasks.get("xsum")) is None
    arc = tasks.get("arc_easy")
    assert analysis.chance_level(arc) is None  # multiple choice needs the items' choices
    assert analysis.chance_level(arc, [{"choices": list("abcd")}, {"choices": list("abc")}]) == pytest.approx(7 / 24)
    assert analysis.constant_predictor(["no", " no", "no"], "classification") is True
    assert analysis.constant_predictor(["yes", "no"], "classification") is False
    assert analysis.constant_predictor(["3", "3"], "multiple_choice") is True
    assert analysis.constant_predictor(["a summary", " a summary"], "generation") is True  # one string for all
    assert analysis.constant_predictor(["", " "], "generation") is True  # empty for every item
    assert analysis.constant_predictor(["a summary", "another"], "generation") is False
    assert analysis.constant_predictor(["yes", "no"], "free_text") is None  # an unknown kind
    assert analysis.constant_predictor(["no"], "classification") is None  # one item says nothing
    nli = tasks.get("mnli_matched").strip_order
    assert analysis.constant_predictor([" contradiction", "contradiction"], "classification", nli) is True
    assert analysis.majority_share(["no", "no", "yes", " no"], "classification") == 0.75
    assert analysis.majority_share(["3"] * 5, "multiple_choice") == 1.0
    assert analysis.majority_share(["x"], "generation") is None
    assert analysis.metric_kind("acc_uncond") == "multiple_choice" and analysis.metric_kind("rougeL") == "generation"


KEY = dict(model="amuro-local/tiny-olmo", fine_tune="base", method="none", seed=None, eval_set="mnli_matched",
           format="default", shots=4)
PROV = {"revision": "step10", "commit": "c0ffee", "seed": None, "profile": "claims-test"}


def _write(store, ckpt, fine_tune, predictions, gold, *, flag=True):
    scores = np.array([float(p.strip() == g) for p, g in zip(predictions, gold)])
    metrics = {"metric": "accuracy", "performance": scores.mean(), "mean": scores.mean(), "std": 0.05,
               "n": len(gold), "n_truncated": 0}
    if flag:
        metrics["constant_prediction"] = analysis.constant_predictor(predictions, "classification")
    tuned = {} if fine_tune == "base" else {"method": "full", "seed": 42}
    store.write({**KEY, "ckpt": ckpt, "fine_tune": fine_tune, **tuned}, metrics, PROV, scores=scores.tolist(),
                predictions=predictions, references=gold)


def test_store_records_references_and_the_constant_flag(tmp_path):
    store, gold = Store(tmp_path), ["entailment", "neutral", "contradiction", "entailment"]
    _write(store, "step10", "base", ["neutral", "neutral", " neutral", "neutral"], gold)
    _write(store, "step40", "base", ["entailment", "neutral", "neutral", "neutral"], gold)
    _write(store, "main", "base", ["entailment"] * 4, gold, flag=False)  # a record from before the flag existed
    frame = store.frame().set_index("ckpt")
    assert frame.loc["step10", "constant"] is True and frame.loc["step40", "constant"] is False
    assert np.isnan(frame.loc["main", "constant"])
    items = store.frame(items=True).set_index("ckpt")
    assert items.loc["main", "constant"] is True  # derived from the stored predictions
    assert items.loc["step10", "references"] == gold and items.loc["step10", "predictions"][2] == " neutral"
    assert isinstance(items.loc["step10", "scores"], np.ndarray) and items.loc["step10", "scores"].tolist() \
        == [0.0, 1.0, 0.0, 0.0]
    assert store.read(**{**KEY, "ckpt": "main"})["references"] == gold
    assert "references" not in store.frame().columns
    assert load_paper_results()["constant"].isna().all()  # the release has no predictions


def test_constant_predictors_are_counted_per_claim(tmp_path):
    store, gold = Store(tmp_path), ["entailment", "neutral", "contradiction", "entailment"] * 5
    for c in SMALL.ckpts:
        _write(store, c, "base", ["neutral", "entailment", "contradiction", "neutral"] * 5, gold)
        _write(store, c, "mnli", ["entailment"] * 20, gold)
    result = one(claims.evaluate_all(store.frame(items=True), SMALL, ids=["B3"]), "B3")
    assert (result["n_cells"], result["constant_cells"]) == (6, 3)
    assert "constant predictors" not in result["note"]
    # every fine-tuned cell is a constant predictor: without them nothing is left to judge
    assert result["verdict"] == "uninformative" and result["without_degenerate"] == "not measurable"
    assert result["degenerate_cells"] == 3
    assert result["uninformative_why"].startswith("without its 3 constant-predictor cells (a fine-tuned model")
    assert result["uninformative_why"].endswith(") the verdict is not measurable")
    assert "xsum←xsum: no fine-tuned row at any checkpoint" in result["missing"]
    for c in SMALL.ckpts:
        _write(store, c, "base", ["contradiction"] * 20, gold)
    mostly = one(claims.evaluate_all(store.frame(items=True), SMALL, ids=["B3"]), "B3")
    assert mostly["constant_cells"] == 6
    assert mostly["degenerate_cells"] == 3  # B3: a constant base is the "cannot do it yet" state, not degenerate
    assert "6 of 6 cells are constant predictors" in mostly["note"]
    table = claims.evaluate_all(store.frame(items=True), SMALL)
    assert (table.attrs["constant_rows"], table.attrs["constant_known"]) == (6, 6)


def test_evaluate_plan_records_references_and_the_constant_flag(tmp_path, monkeypatch):
    from conftest import tiny_olmo

    from amuro_utils import pipeline
    from amuro_utils.data.offline import olmo_tokenizer
    from amuro_utils.store import identity
    from amuro_utils.study import jobs, plan as study

    monkeypatch.setattr(paths, "RESULTS_ROOT", tmp_path)
    profile = dataclasses.replace(PAPER, name="claims-plan-test", data_source="offline", eval_limit=6,
                                  eval_batch_size=6, max_length=512, device="cpu", eval_dtype="float32")
    job = study.Job("pretrain_probe", "step1000", "base", (("mnli_matched", "default"), ("arc_easy", "default")),
                    (), profile)
    requests = study.record_requests(job, identity.model_identity("allenai/OLMo-1B-hf", "c0ffee"))
    done = jobs.evaluate_requests(profile, tiny_olmo(hidden=16, layers=1), olmo_tokenizer(), requests, PROV,
                                  progress=False)
    assert done == 2
    st = pipeline.store(profile)
    for eval_set, kind in (("mnli_matched", "classification"), ("arc_easy", "multiple_choice")):
        record = st.read(model="allenai/OLMo-1B-hf", ckpt="step1000", fine_tune="base", method="none", seed=None,
                         eval_set=eval_set, format="default", shots=4)
        examples = tasks.load_examples(eval_set, source="offline", limit=6)
        gold = [ex["target"] for ex in examples] if kind == "classification" else [str(ex["gold"]) for ex in examples]
        assert record["references"] == gold
        assert record["metrics"]["constant_prediction"] == analysis.constant_predictor(record["predictions"], kind)
        assert isinstance(record["metrics"]["constant_prediction"], bool)


# ---------------------------------------------------------------------------------------------------------------
# the release judged by its own claims


@pytest.fixture(scope="module")
def release():
    return claims.evaluate_all(load_paper_results(), get_profile("paper-reference"))


def test_release_reproduces_the_papers_numbers(release):
    assert round(one(release, "B6a")["value"], 2) == -61.46
    assert round(one(release, "B6b")["value"], 2) == 0.31
    # measurement alone (the paper's bootstrap) supports B6a; resampling pairs × checkpoints does not, because one
    # row (xsum←paws at 424k, base .019: +491 %) carries the mean — leaving out that pair or checkpoint supports it
    b6a = one(release, "B6a")
    assert b6a["verdict_measurement"] == "supported" and b6a["judged"] == "inconclusive"
    assert b6a["verdict"] == "decided by a known defect"  # without the XSum outlier it is supported
    assert b6a["leave_one_out"] == "without pair xsum←paws: supported; without checkpoint step424000: supported"
    assert b6a["readings"] == "ratio of means: supported (-69.15)"
    assert one(release, "B6b")["verdict"] == "supported"
    assert one(release, "B7a")["value"] == pytest.approx(0.2458, abs=5e-5)
    assert one(release, "B7b")["value"] == pytest.approx(-0.1821, abs=5e-5)
    assert one(release, "B6a")["resampled"] == "task pairs × checkpoints, then cells ~ N(performance, std²)"
    # the paper's landmarks land on its checkpoints: up to 424k (inclusive), and from 424k on
    assert one(release, "B4a")["note"].startswith("checkpoints step1000, step18000, step342000, step424000;")
    assert one(release, "B4b")["note"].startswith("checkpoints step424000, step505000, step592000, step738000, main;")
    assert "cells ~ N(p, p(1−p)/n)" in one(release, "B1a")["resampled"]  # official_eval_table has no std
    assert np.isnan(one(release, "B6a")["constant_cells"])  # no predictions released


def test_release_flags_the_verdicts_a_known_defect_decides(release):
    assert one(release, "B7b")["defect"] == "paraphrase OOD gold all 'no'"
    assert "without the 32 'paraphrase OOD gold all 'no'' cells: not measurable" in one(release, "B7b")["note"]
    assert one(release, "B8a")["defect"] == "LLMBar gold leak; LLMBar exact match"
    assert one(release, "B7a")["defect"] == ""
    # the outlier base XSum score at 424k is what keeps B6a's units interval from supporting it
    assert one(release, "B6a")["defect"] == "XSum step424000 base outlier"
    assert "without the 1 'XSum step424000 base outlier' cells: supported" in one(release, "B6a")["note"]


def test_release_cannot_measure_springer_claims(release):
    s1, s2, s3 = (one(release, i) for i in ("S1", "S2", "S3"))
    assert {s1["verdict"], s2["verdict"], s3["verdict"]} == {"not measurable"}
    assert s2["missing"] == ("arc_easy←tulu at step550000: no fine-tuned row; arc_challenge←tulu at step550000: no "
                             "fine-tuned row; hellaswag←tulu at step550000: no fine-tuned row")
    assert "not evaluated by this source: piqa" in s2["note"]
    assert s1["missing"].startswith("no sensitivity frame")


def test_committed_release_scorecard_is_current(release):
    committed = pd.read_csv(paths.FIGURES_ROOT / "paper_reference" / "claims.csv", keep_default_na=False)
    assert list(committed.columns) == list(claims.SCORECARD_COLUMNS)
    assert committed["id"].tolist() == release["id"].tolist()
    assert committed["verdict"].tolist() == release["verdict"].tolist()
    assert committed["defect"].tolist() == release["defect"].tolist()
    for col in ("value", "ci_low", "ci_high"):
        np.testing.assert_allclose(pd.to_numeric(committed[col]), release[col], rtol=1e-9)


# ---------------------------------------------------------------------------------------------------------------
# Springer et al.: sensitivity, overtraining, forgetting


def blocks(mean, n=16, seed=0):
    return mean + np.random.default_rng(seed).normal(0, 0.01, n)


def test_s1_progressive_sensitivity_from_the_sensitivity_frame():
    growth = {"isotropic": {"step10": 0.1, "step40": 0.2, "main": 0.4},
              "relative": {"step10": 0.4, "step40": 0.3, "main": 0.2}}
    rows = [{"ckpt": c, "step": STEPS[c], "scaling": s, "magnitude": m, "seed": seed, "base_loss": 6.0,
             "loss": 6.0 + g * m / 0.01, "delta_loss": g * m / 0.01, "block_deltas": blocks(g * m / 0.01, seed=seed)}
            for s, by_ckpt in growth.items() for c, g in by_ckpt.items() for m in (0.0, 0.01, 0.02)
            for seed in (0, 1)]
    table = claims.evaluate_all(transfer_frame(), SMALL, ids=["S1"], sensitivity=pd.DataFrame(rows))
    assert table["id"].tolist() == ["S1-isotropic", "S1-relative"]
    iso, rel = one(table, "S1-isotropic"), one(table, "S1-relative")
    assert iso["verdict"] == "supported" and rel["verdict"] == "contradicted"
    assert iso["resampled"] == "noise/training seeds, then held-out blocks"
    assert iso["value"] == pytest.approx(0.45, abs=0.02)  # mean over σ of 0.3·(σ/0.01) ≈ 0.45
    legacy = pd.DataFrame([{"ckpt": c, "sigma": m, "loss": 6.0, "delta_loss": g * m}
                           for c, g in growth["isotropic"].items() for m in (0.0, 0.01)])
    old = one(claims.evaluate_all(transfer_frame(), SMALL, ids=["S1"], sensitivity=legacy), "S1")
    assert old["verdict"] == "inconclusive" and "no measurement CI" in old["note"]
    with pytest.raises(ValueError, match="sensitivity frame lacks columns"):
        claims.evaluate_all(transfer_frame(), SMALL, ids=["S1"], sensitivity=legacy.drop(columns="sigma"))


def test_s3_forgetting_grows_with_pre_training():
    rows = [{"ckpt": c, "step": STEPS[c], "fine_tune": t, "method": method, "seed": 42, "base_loss": 6.0,
             "loss": 6.0 + sign * d, "delta_loss": sign * d, "block_deltas": blocks(sign * d, seed=i)}
            for c, d in {"step10": 0.05, "step40": 0.1, "main": 0.3}.items() for i, t in enumerate(("mnli", "xsum"))
            for method, sign in (("full", 1), ("lora", -1))]
    frame = pd.DataFrame(rows)
    s3 = one(claims.evaluate_all(transfer_frame(), SMALL, ids=["S3"], forgetting=frame), "S3")
    assert s3["verdict"] == "supported" and s3["n_cells"] == 6 and s3["direction"] == "> 0 nats"
    lora = one(claims.evaluate_all(transfer_frame(), SMALL, ids=["S3"], forgetting=frame, method="lora"), "S3")
    assert lora["verdict"] == "contradicted"
    gap = one(claims.evaluate_all(transfer_frame(), SMALL, ids=["S3"], forgetting=frame.iloc[2:]), "S3")
    assert "mnli at step10: no forgetting row" in gap["missing"]


def test_s2_compares_the_overtraining_pair():
    it = SMALL.instruction.name
    frame = pd.DataFrame([row("hellaswag", it, "step40", 0.50), row("hellaswag", it, "main", 0.40)])
    s2 = one(claims.evaluate_all(frame, SMALL, ids=["S2"]), "S2")
    assert s2["value"] == pytest.approx(-0.10) and s2["verdict"] == "supported"
    assert "below −0.02 (Springer's 'over 2 % worse'): yes" in s2["note"]
    assert "not evaluated by this source: arc_easy, arc_challenge, piqa" in s2["note"]
    none = one(claims.evaluate_all(frame, dataclasses.replace(SMALL, overtraining_pair=None), ids=["S2"]), "S2")
    assert none["verdict"] == "not measurable" and none["missing"] == "profile 'claims-test' defines no overtraining_pair"


# ---------------------------------------------------------------------------------------------------------------
# notebooks and the scorecard files


def test_notebook_verdicts_cover_every_claim():
    assert set().union(*(s.claims for s in stages.STAGES)) == set(claims.CLAIMS)
    text = claims.notebook_verdicts("transfer", transfer_frame(), SMALL, n_boot=200)
    assert text.startswith("### Claims of this notebook (transfer) — profile `claims-test`")
    assert "| B6a |" in text and "| A3 |" in text and "| B1a |" not in text
    with pytest.raises(ValueError, match="unknown notebook 'nope'"):
        claims.notebook_verdicts("nope", transfer_frame(), SMALL)


def test_write_scorecard(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "figures_dir", lambda name: tmp_path / name.replace("-", "_"))
    table = claims.evaluate_all(transfer_frame(), SMALL, n_boot=200)
    csv, md = claims.write_scorecard(table, SMALL)
    assert csv == tmp_path / "claims-test".replace("-", "_") / "claims.csv"
    assert list(pd.read_csv(csv).columns) == list(claims.SCORECARD_COLUMNS)
    text = md.read_text()
    assert text.startswith("# Claims scorecard — profile `claims-test`\n\nSource: this project's records")
    assert "| B6a | classification→generation transfer hurts (−61.4 %) | mean relative change Class→Gen (%) |" in text
    assert "## Definitions" in text and "- **B6** — B6 (§6.2, Fig. 6)" in text


# ---------------------------------------------------------------------------------------------------------------
# figures: chance, majority share, constant predictors


def _hlines(ax, linestyle):
    """y of the reference lines (path patches, apart from the data curves) in one line style."""
    return sorted(round(float(p.get_path().vertices[0, 1]), 4) for p in ax.patches if p.get_linestyle() == linestyle)


def test_figures_show_chance_majority_and_constant_predictors():
    gold = ["entailment"] * 10 + ["neutral"] * 6 + ["contradiction"] * 4
    rows = []
    for c in TINY.ckpts:
        rows += [row("mnli_matched", "base", c, 0.5, references=gold, constant=True),
                 row("mnli_matched", "mnli", c, 0.6, references=gold, constant=False),
                 row("xsum", "base", c, 0.1, references=None, constant=np.nan),
                 row("xsum", "xsum", c, 0.2, references=None, constant=np.nan)]
    frame = pd.DataFrame(rows)
    profile = dataclasses.replace(TINY, tasks=(TINY.task("mnli"), TINY.task("xsum")))
    fig = plots.fig3_sft(frame, profile)
    mnli, xsum = fig.axes[:2]
    assert _hlines(mnli, ":") == [0.3333] and _hlines(mnli, "-.") == [0.5]  # chance 1/3; majority 10/20
    assert _hlines(xsum, ":") == [] and _hlines(xsum, "-.") == []  # generation: neither
    rings = [c for c in mnli.collections if c.get_offsets().shape[0] == len(TINY.ckpts)]
    assert len(rings) == 1  # the base curve's points are all rings (constant predictor); fine-tuned has none
    assert sorted(t.get_text() for t in mnli.texts) == ["chance", "majority class"] and len(xsum.texts) == 0
    assert "constant predictor\n(one label or text for every item)" in [t.get_text() for t in fig.legends[0].get_texts()]
    plt.close(fig)
    # a frame without item columns or the constant flag: chance only, no crash
    fig = plots.fig5_format(frame.drop(columns=["references", "constant"]), profile)
    assert _hlines(fig.axes[0], ":") == [0.3333] and _hlines(fig.axes[0], "-.") == []
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------------------
# degenerate evidence, robustness, the LLMBar exact-match defect, one computation for figures and verdicts


def gain_frame(gains: dict, n: int = 200, seed: int = 0, constant=None):
    """Per-item scores of mnli_matched (base 0.4) and its fine-tuned model at each SMALL checkpoint, the fine-tuned
    model right on `gains[ckpt]` more items; `constant` = the checkpoints whose fine-tuned cell is flagged."""
    rng = np.random.default_rng(seed)
    base = (rng.random(n) < 0.4).astype(float)
    rows = []
    for c in SMALL.ckpts:
        tuned = base.copy()
        tuned[np.flatnonzero(base == 0)[: int(round(gains[c] * n))]] = 1.0
        rows.append(row("mnli_matched", "base", c, base.mean(), scores=base, constant=False))
        rows.append(row("mnli_matched", "mnli", c, tuned.mean(), scores=tuned, constant=c in (constant or ())))
    return pd.DataFrame(rows)


def test_a_verdict_decided_by_constant_predictors_is_uninformative():
    gains = {"step10": 0.0, "step40": 0.0, "main": 0.3}
    clean = one(claims.evaluate_all(gain_frame(gains), SMALL, ids=["B4"]), "B4c")
    assert clean["verdict"] == "contradicted" and clean["without_degenerate"] == "contradicted"
    # the same numbers, but the gain at main comes from a model that answers one label for every item
    flagged = claims.evaluate_all(gain_frame(gains, constant=("main",)), SMALL, ids=["B4"])
    b4c = one(flagged, "B4c")
    assert b4c["judged"] == "contradicted" and b4c["verdict"] == "uninformative"
    assert b4c["without_degenerate"] == "not measurable" and b4c["constant_cells"] == 1
    assert b4c["uninformative_why"].startswith("without its 1 constant-predictor cells (a fine-tuned model that "
                                               "answers one label for every item")
    assert b4c["uninformative_why"].endswith("the verdict is not measurable")
    assert "uninformative" in claims.headline(flagged) and claims.headline(flagged).startswith("Verdicts: ")
    counts = claims.headline(flagged)
    assert "1 uninformative" in counts  # counted apart from supported and contradicted


def test_leave_one_out_names_the_unit_a_verdict_rests_on():
    # two NLI OOD sets: one gains +0.3 at every checkpoint, the other nothing
    rng = np.random.default_rng(1)
    rows = []
    for e, gain in (("rte", 0.3), ("cb", 0.0)):
        base = (rng.random(300) < 0.3).astype(float)
        tuned = base.copy()
        tuned[np.flatnonzero(base == 0)[: int(gain * 300)]] = 1.0
        for c in SMALL.ckpts:
            rows += [row(e, "base", c, base.mean(), scores=base), row(e, "mnli", c, tuned.mean(), scores=tuned)]
    b7a = one(claims.evaluate_all(pd.DataFrame(rows), SMALL, ids=["B7"]), "B7a")
    assert b7a["verdict_measurement"] == "supported"  # these two sets, measured: a clear mean gain
    assert b7a["verdict"] == "inconclusive"  # sets of this kind: one gains, one does not
    assert b7a["holds_leave_one_out"] is False and b7a["leave_one_out"] == "without pair cb←mnli: supported"
    # the paper's "boosts every out-of-domain NLI set": cb does not gain
    assert b7a["readings"] == "every OOD NLI set gains (per set): inconclusive (cb←mnli +0)"


def test_llmbar_exact_match_is_a_named_switch_flagged_where_it_decides():
    from amuro_utils.models import evaluate

    assert evaluate.accuracy([" 1", "2", " 2"], ["1", "2", "1"], ()).tolist() == [0.0, 1.0, 0.0]
    assert evaluate.accuracy([" 1", "2", " 2"], ["1", "2", "1"], (), exact_match=False).tolist() == [1.0, 1.0, 0.0]
    it = SMALL.instruction.name
    frame = pd.DataFrame([row("llmbar_Natural", f, c, p, std=0.01) for c in SMALL.ckpts
                          for f, p in (("base", 0.5), (it, 0.0))])  # the tuned model answers " 1" / " 2": 0.00
    faithful = one(claims.evaluate_all(frame, SMALL, ids=["B8"]), "B8a")
    assert faithful["judged"] == "contradicted" and faithful["defect"] == "LLMBar exact match"
    assert faithful["verdict"] == "decided by a known defect"  # counted apart, never robust
    deviation = one(claims.evaluate_all(frame, dataclasses.replace(SMALL, llmbar_exact_match=False), ids=["B8"]),
                    "B8a")
    assert deviation["defect"] == ""  # scored without the space quirk, nothing to flag
    from amuro_utils.store import identity

    scoring = [identity.eval_identity(p, "llmbar_Natural", "default")["scoring"]
               for p in (SMALL, dataclasses.replace(SMALL, llmbar_exact_match=False))]
    assert scoring[0]["exact_match"] is True and scoring[1]["exact_match"] is False  # records never mix


def test_figures_draw_the_scorecards_intervals():
    """Fig. 7's group bars and Fig. 3b's gain bars are the statistics B7a and Table 5 judge, intervals included."""
    rng = np.random.default_rng(2)
    rows = []
    for e, f, gain in (("rte", "mnli", 0.2), ("cb", "mnli", 0.1), ("mnli_matched", "mnli", 0.25)):
        base = (rng.random(120) < 0.35).astype(float)
        for i, c in enumerate(SMALL.ckpts):
            tuned = base.copy()
            tuned[np.flatnonzero(base == 0)[: int((gain + 0.05 * i) * 120)]] = 1.0
            rows += [row(e, "base", c, base.mean(), scores=base), row(e, f, c, tuned.mean(), scores=tuned)]
    frame = pd.DataFrame(rows)
    b7a = one(claims.evaluate_all(frame, SMALL, ids=["B7"]), "B7a")
    fig = plots.fig7_ood(frame, SMALL)
    groups = fig.axes[1]
    nli = [b for b in groups.patches if b.get_height() != 0][0]
    assert nli.get_height() == pytest.approx(b7a["value"], abs=1e-12)
    segments = [seg for coll in groups.collections for seg in coll.get_segments()]
    assert any(np.allclose(sorted(seg[:, 1]), [b7a["ci_low"], b7a["ci_high"]]) for seg in segments)
    plt.close(fig)
    table5 = stats.table5(stats.Study(frame, SMALL)).set_index(["group", "ckpt"])
    fig = plots.fig3b_gain_bars(frame, SMALL)
    heights = [b.get_height() for b in fig.axes[0].patches if np.isfinite(b.get_height())]
    expected = [table5.loc[("Learned in FT", c), "raw_change"] for c in SMALL.ckpts]
    assert sorted(np.round(heights, 12)) == sorted(np.round(expected, 12))
    plt.close(fig)


def test_the_scorecard_files_are_written_once_each_and_atomically(tmp_path, monkeypatch):
    """claims.md ends with the readings' summary and the questions beyond the paper: composed first, then written in
    one atomic write (it used to be written, then read back and appended to twice)."""
    from amuro_utils import pipeline
    from amuro_utils.store import artifacts

    monkeypatch.setattr(paths, "RESULTS_ROOT", tmp_path / "results")
    monkeypatch.setattr(paths, "FIGURES_ROOT", tmp_path / "figures")
    writes = []
    real = artifacts.atomic_write
    monkeypatch.setattr(artifacts, "atomic_write", lambda path, text: (writes.append(Path(path)), real(path, text)))
    monkeypatch.setattr(Path, "write_text", lambda *a, **k: pytest.fail(f"{a[0]} written outside atomic_write"))
    written = pipeline.scorecard(get_profile("paper-reference"))
    figures = [p for p in writes if p.parent == tmp_path / "figures" / "paper_reference"]
    assert sorted(figures) == sorted(written) and len(figures) == len(set(figures))  # each file once
    text = (tmp_path / "figures" / "paper_reference" / "claims.md").read_text()
    assert text.index("| A1a") < text.index("## Beyond the paper")
