"""lm-evaluation-harness output as a results source: Pythia's real 0.3 files, a synthetic 0.4 folder with per-item
samples, the shipped extract, and the errors (unknown tasks, a missing step, malformed files) that name the file."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from amuro_utils import pipeline, stats
from amuro_utils.config.profiles import PAPER, PYTHIA_1B, get_profile, pythia_evals
from amuro_utils.data import tasks
from amuro_utils.models import lmeval
from amuro_utils.models.lmeval import LmEvalError
from amuro_utils.store import identity
from amuro_utils.study import overrides, plan
from amuro_utils.verdicts import claims

DATA = Path(__file__).parent / "data" / "pythia_evals"
P160 = DATA / "pythia-160m"


def test_every_mapped_task_is_a_registry_set():
    assert set(lmeval.TASKS.values()) <= set(tasks.REGISTRY)
    assert lmeval.TASKS["sciq"] == "sciq_mc"  # lm-eval's SciQ is multiple choice, not the question-generation `sciq`


# ---------------------------------------------------------------------------------------------------------------
# Pythia's real files (lm-eval 0.3)


def test_pythia_files_import_with_the_numbers_they_hold():
    frame = lmeval.import_dir(P160)
    assert len(frame) == 12  # 3 files × the 4 tasks with a registry set
    assert sorted(set(frame["eval_set"])) == ["arc_challenge", "arc_easy", "piqa", "sciq_mc"]
    assert set(frame["model"]) == {"EleutherAI/pythia-v1.1-160m"}  # as the files' model_args name it
    assert sorted(set(frame["step"])) == [1000.0, 73000.0, 143000.0]
    cell = frame.set_index(["ckpt", "eval_set"])
    # read by hand from 160m_step143000.json: "arc_challenge": {"acc": 0.18771331058020477,
    # "acc_stderr": 0.011411001314155123, …}, "sciq": {"acc": 0.741, "acc_stderr": 0.013860415257527911, …}
    assert cell.loc[("step143000", "arc_challenge"), "performance"] == 0.18771331058020477
    assert cell.loc[("step143000", "arc_challenge"), "std"] == 0.011411001314155123
    assert cell.loc[("step143000", "sciq_mc"), "performance"] == 0.741
    assert cell.loc[("step143000", "sciq_mc"), "std"] == 0.013860415257527911
    # 160m_step1000.json: "arc_easy": {"acc": 0.3063973063973064, …}; "piqa": {"acc": 0.5554951033732318, …}
    assert cell.loc[("step1000", "arc_easy"), "performance"] == 0.3063973063973064
    assert cell.loc[("step1000", "piqa"), "performance"] == 0.5554951033732318
    # 160m_step73000.json: "sciq": {"acc": 0.768, "acc_stderr": 0.013354937452281557, …}
    assert cell.loc[("step73000", "sciq_mc"), "std"] == 0.013354937452281557
    # n from the stderr: ARC-Challenge test 1,172 items, SciQ test 1,000, ARC-Easy 2,376, PIQA validation 1,838
    assert cell.xs("step143000")["n"].to_dict() == {"arc_challenge": 1172.0, "arc_easy": 2376.0, "piqa": 1838.0,
                                                     "sciq_mc": 1000.0}
    row = cell.loc[("step143000", "arc_challenge")]
    assert (row["fine_tune"], row["method"], row["format"], row["shots"], row["metric"], row["source"],
            row["revision"], row["origin"]) == ("base", "none", "default", 0, "acc", "lm-eval", "step143000",
                                               "160m_step143000.json:arc_challenge")
    assert frame["scores"].isna().all()  # 0.3 files carry no per-item scores


def test_unknown_tasks_are_listed_and_kept_out(caplog):
    frame = lmeval.import_dir(P160 / "zero-shot" / "160m_step143000.json")
    unknown = frame.attrs["unknown_tasks"]
    assert len(unknown) == 83  # 87 tasks in the file, 4 mapped
    assert unknown["winogrande"] == unknown["lambada_openai"] == unknown["hendrycksTest-virology"] == \
        ["no registry set"]
    assert "83 lm-eval tasks kept out" in caplog.text and "… and 71 more" in caplog.text


def test_derived_n_is_exact_or_nothing():
    assert lmeval.derived_n(0.18771331058020477, 0.011411001314155123) == 1172.0
    assert math.isnan(lmeval.derived_n(0.0, 0.0))  # LAMBADA at step 0: no items to infer
    assert math.isnan(lmeval.derived_n(0.5, 0.0123))  # no whole n behind it


def test_two_models_in_one_folder_are_refused():
    with pytest.raises(LmEvalError, match=r"results of several models \(EleutherAI/pythia-v1.1-160m: 12 rows, "
                                          r"EleutherAI/pythia-v1.1-70m: 4 rows\); point results_source at one"):
        lmeval.import_dir(DATA)


# ---------------------------------------------------------------------------------------------------------------
# the shipped extract


def test_extract_holds_exactly_the_published_numbers():
    extract = lmeval.load_extract(["pythia-160m", "pythia-70m"])
    files = lmeval.import_dir(P160)
    for row in files.itertuples():
        ours = extract[(extract["model"] == "EleutherAI/pythia-160m") & (extract["step"] == row.step)
                       & (extract["eval_set"] == row.eval_set)]
        assert len(ours) == 1
        assert (ours["performance"].iloc[0], ours["std"].iloc[0], ours["n"].iloc[0]) == (row.performance, row.std,
                                                                                          row.n)
    # 70m_step143000.json: "sciq": {"acc": 0.601, "acc_stderr": 0.015493193313162906}
    cell = extract[(extract["model"] == "EleutherAI/pythia-70m") & (extract["ckpt"] == "step143000")
                   & (extract["eval_set"] == "sciq_mc")]
    assert (cell["performance"].iloc[0], cell["std"].iloc[0]) == (0.601, 0.015493193313162906)
    assert len(lmeval.load_extract()) == 16 * 27 * 4  # ladders × published checkpoints × registry sets
    source = (lmeval.EXTRACT.parent / "SOURCE.md").read_text()
    assert "a19eecb807ec2c79a39ebf18108816e6ffffc1d5" in source and "Apache-2.0" in source


def test_extract_refuses_a_ladder_it_lacks(tmp_path):
    with pytest.raises(LmEvalError, match=r"no published evaluations of \['pythia-7b'\]"):
        lmeval.load_extract(["pythia-7b"])
    with pytest.raises(LmEvalError, match="the Pythia extract is missing; rebuild it with scripts/build_pythia"):
        lmeval.load_extract(path=tmp_path / "zero_shot.csv")


# ---------------------------------------------------------------------------------------------------------------
# a synthetic lm-eval 0.4 folder with per-item samples


def _write_04(folder: Path, step: int, items: dict[str, list[int]], *, date="2024-05-01T10-00-00.5",
              revision=True, stderr=True) -> Path:
    """An lm-eval 0.4 results file (and its samples files) as EvaluationTracker writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    for task, scores in items.items():
        p = float(np.mean(scores))
        se = float(np.std(scores, ddof=1) / math.sqrt(len(scores)))
        results[task] = {"alias": task, "acc,none": p, "acc_stderr,none": se if stderr else "N/A",
                         "acc_norm,none": p, "acc_norm_stderr,none": se}
        with (folder / f"samples_{task}_{date}.jsonl").open("w") as fh:
            for doc_id, score in reversed(list(enumerate(scores))):  # any order: read back by doc_id
                fh.write(json.dumps({"doc_id": doc_id, "doc": {}, "target": "0", "filter": "none",
                                     "metrics": ["acc", "acc_norm"], "acc": float(score), "acc_norm": 0.0}) + "\n")
    args = "pretrained=my-org/my-model" + (f",revision=step{step},dtype=bfloat16" if revision else "")
    data = {"results": results, "versions": {t: 1.0 for t in items}, "n-shot": {t: 0 for t in items},
            "n-samples": {t: {"original": len(s), "effective": len(s)} for t, s in items.items()},
            "config": {"model": "hf", "model_args": args, "batch_size": 8}, "lm_eval_version": "0.4.3"}
    path = folder / f"results_{date}.json"
    path.write_text(json.dumps(data))
    return path


SWEEP = {1000: {"arc_easy": [1, 0, 0, 1, 0, 0, 1, 0], "winogrande": [1, 0]},
         8000: {"arc_easy": [1, 1, 0, 1, 0, 1, 1, 0], "winogrande": [1, 1]}}


def _sweep(root: Path) -> Path:
    for step, items in SWEEP.items():
        _write_04(root / "my-org__my-model" / f"ckpt{step}", step, items)
    return root


def test_04_folder_with_samples_gives_per_item_scores_to_the_paired_bootstrap(tmp_path):
    frame = lmeval.import_dir(_sweep(tmp_path))
    assert frame[["ckpt", "eval_set", "performance", "n", "shots"]].values.tolist() == [
        ["step1000", "arc_easy", 0.375, 8.0, 0], ["step8000", "arc_easy", 0.625, 8.0, 0]]
    np.testing.assert_array_equal(frame["scores"].iloc[0], [1, 0, 0, 1, 0, 0, 1, 0])
    assert frame.attrs["unknown_tasks"] == {"winogrande": ["no registry set"]}
    profile = dataclasses.replace(PAPER, ckpts=("step1000", "step8000"), shots=0)
    study = stats.Study(frame, profile)
    assert study.cells.mode(("arc_easy", "base", "step1000", "default")) == "items"
    a = study.cells.vector(("arc_easy", "base", "step1000", "default"))
    b = study.cells.vector(("arc_easy", "base", "step8000", "default"))
    assert (a[0], b[0]) == (0.375, 0.625)
    # paired: every resample draws the same items for both checkpoints, so their difference moves only where the
    # items differ (items 1 and 5), by a multiple of 1/8
    diff = (b - a)[1:]
    assert np.allclose(diff * 8, np.round(diff * 8)) and diff.min() >= 0


def test_04_stderr_na_and_samples_that_disagree(tmp_path):
    path = _write_04(tmp_path / "a", 1000, {"piqa": [1, 0, 1, 1]}, stderr=False)
    frame = lmeval.import_dir(path)
    assert math.isnan(frame["std"].iloc[0]) and frame["n"].iloc[0] == 4.0
    samples = tmp_path / "a" / "samples_piqa_2024-05-01T10-00-00.5.jsonl"
    samples.write_text(samples.read_text().replace('"acc": 1.0', '"acc": 0.0', 1))
    with pytest.raises(LmEvalError, match=r"samples_piqa_2024-05-01T10-00-00.5.jsonl: the items' mean acc is "
                                          r"0.500000, the results file says 0.750000"):
        lmeval.import_dir(path)


# ---------------------------------------------------------------------------------------------------------------
# errors that name the file


def test_a_file_without_a_step_is_refused_naming_it(tmp_path):
    path = _write_04(tmp_path / "my-model", 1000, {"arc_easy": [1, 0]}, revision=False)
    with pytest.raises(LmEvalError, match=r"results_2024-05-01T10-00-00.5.json: no training step — neither "
                                          r"revision=stepN in config.model_args \('no revision'\) nor stepN"):
        lmeval.import_dir(tmp_path)
    # the step in the folder name is enough, and must agree with a revision
    lmeval.import_dir(_write_04(tmp_path / "step2000", 2000, {"arc_easy": [1, 0]}, revision=False))
    bad = _write_04(tmp_path / "step3000", 4000, {"arc_easy": [1, 0]})
    with pytest.raises(LmEvalError, match=r"revision=step4000 but its path says step3000"):
        lmeval.import_dir(bad)


def test_malformed_files_are_refused_naming_them(tmp_path):
    (tmp_path / "70m_step1000.json").write_text("{not json")
    with pytest.raises(LmEvalError, match=r"70m_step1000.json: not a readable JSON file"):
        lmeval.import_dir(tmp_path)
    (tmp_path / "70m_step1000.json").write_text(json.dumps({"versions": {}}))
    with pytest.raises(LmEvalError, match=r"70m_step1000.json: no 'results' mapping of tasks"):
        lmeval.import_dir(tmp_path)
    (tmp_path / "70m_step1000.json").write_text(json.dumps(
        {"results": {"sciq": {"acc": "high"}}, "config": {"model_args": "pretrained=x/y", "num_fewshot": 0}}))
    with pytest.raises(LmEvalError, match=r"70m_step1000.json: sciq acc is 'high', expected a number"):
        lmeval.import_dir(tmp_path)
    (tmp_path / "70m_step1000.json").write_text(json.dumps(
        {"results": {"sciq": {"acc": 0.5}}, "config": {"model_args": "revision=step1000", "num_fewshot": 0}}))
    with pytest.raises(LmEvalError, match=r"70m_step1000.json: names no model"):
        lmeval.import_dir(tmp_path)


def test_only_unknown_tasks_or_no_files_are_refused_naming_the_folder(tmp_path):
    _write_04(tmp_path / "m", 1000, {"winogrande": [1, 0], "hendrycksTest-virology": [0, 1]})
    with pytest.raises(LmEvalError, match=r"none of its tasks has a registry set \(hendrycksTest-virology, "
                                          r"winogrande\); known lm-eval tasks: arc_challenge, arc_easy, boolq"):
        lmeval.import_dir(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(LmEvalError, match=r"empty: no lm-eval results files \(\*.json\)"):
        lmeval.import_dir(tmp_path / "empty")
    with pytest.raises(LmEvalError, match=r"no such folder of lm-eval results"):
        lmeval.import_dir(tmp_path / "absent")


def test_one_cell_twice_is_refused_naming_both_files(tmp_path):
    _write_04(tmp_path / "a", 1000, {"arc_easy": [1, 0]}, date="d1")
    _write_04(tmp_path / "b", 1000, {"arc_easy": [1, 1]}, date="d2")
    with pytest.raises(LmEvalError, match=r"arc_easy at step1000 \(0-shot\) twice: results_d1.json:arc_easy, "
                                          r"results_d2.json:arc_easy"):
        lmeval.import_dir(tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# as a profile's results source


def test_results_source_binds_the_profile_to_what_the_folder_holds(tmp_path):
    profile = overrides.load("paper", f"results_source=lm-eval:{_sweep(tmp_path)}")
    assert (profile.ckpts, profile.shots, profile.results_source) == (("step1000", "step8000"), 0,
                                                                       f"lm-eval:{tmp_path}")
    assert plan.jobs(profile) == [] and [j.notebook for j in plan.notebook_jobs(profile)] == ["pretrain_probe",
                                                                                              "beyond"]
    frame = pipeline.load_frame(profile, items=True)
    assert frame["performance"].tolist() == [0.375, 0.625] and "scores" in frame
    assert "scores" not in pipeline.load_frame(profile)
    with pytest.raises(overrides.OverrideError, match=r"results_source: unknown results source 'lm_eval'; one of: "
                                                      r"run \(this project's records"):
        overrides.load("paper", "results_source=lm_eval")
    with pytest.raises(overrides.OverrideError, match="names no folder: write lm-eval:<dir>"):
        overrides.load("paper", "results_source=lm-eval:")


def test_source_digest_follows_the_files(tmp_path):
    source = f"lm-eval:{_sweep(tmp_path)}"
    before = identity.source_digest(source)
    assert identity.source_digest(source) == before
    path = next(tmp_path.rglob("results_*.json"))
    path.write_text(path.read_text().replace('"batch_size": 8', '"batch_size": 16'))
    assert identity.source_digest(source) != before
    assert identity.source_digest("paper") == identity.released_tables_digest()


def test_pythia_profiles_read_the_extract_and_the_run_profiles_gain_it():
    family = get_profile("pythia-70m")
    assert family == pythia_evals("pythia-70m") and family.results_source == "pythia-evals"
    assert family.ckpts[0] == "step256" and family.ckpts[-1] == "step143000" and len(family.ckpts) == 18
    assert get_profile("pythia-1b").results_source == "run"  # the paper's recipe on a GPU, as before
    gained = overrides.load("pythia-1b", "results_source=pythia-evals")
    own = pythia_evals("pythia-1b")
    assert (gained.ckpts, gained.shots, gained.tasks, gained.instruction, gained.learned_in_pt) == \
        (own.ckpts, own.shots, own.tasks, own.instruction, own.learned_in_pt)
    assert PYTHIA_1B.ckpts[1] == "step4000" and "step4000" not in gained.ckpts  # bound to the published steps
    frame = pipeline.load_frame(family)
    assert len(frame) == 27 * 4 and set(frame["source"]) == {"pythia-evals"}
    assert pipeline.source_words(family) == ("EleutherAI's published zero-shot evaluations of pythia-70m "
                                             "(data/pythia_evals/)")
    table = claims.evaluate_all(pipeline.load_frame(family, items=True), family, ids=["B1"], n_boot=50)
    assert ("Source: lm-evaluation-harness output (pythia-evals): base models only, cells ~ N(acc, stderr²), no "
            "per-item scores; 108 standard 0-shot rows") in claims._header(table, family)


@pytest.mark.slow
def test_run_all_on_an_lm_eval_folder_draws_fig2_and_judges_b1(tmp_path):
    """./run_all.sh with results_source=lm-eval:<dir>: the two notebooks that read base records, no model."""
    import os
    import subprocess

    sweep = _sweep(tmp_path / "sweep")
    env = {**os.environ, "AMURO_RESULTS_DIR": str(tmp_path / "results"), "AMURO_FIGURES_DIR": str(tmp_path / "figs")}
    proc = subprocess.run(["./run_all.sh", "--profile", "paper", "--set", f"results_source=lm-eval:{sweep}"],
                          cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "== 01_pretrain_probe: finished" in proc.stdout and "== 07_beyond: finished" in proc.stdout
    assert "03_sft" not in proc.stdout
    figures = tmp_path / "figs" / "paper"
    assert (figures / "fig2_pretrain_probe.png").is_file()
    card = pd.read_csv(figures / "claims.csv").set_index("id")
    assert card.loc["B1a", "value"] == pytest.approx(0.625 - 0.375, abs=1e-12)  # one set, two checkpoints
    assert card.loc["A1b", "verdict"] == "not measurable" and "B1c" in card.loc["A1b", "also_decides"]
    assert "items (paired bootstrap per eval set)" in card.loc["B1a", "resampled_measurement"]
    assert "Source: lm-evaluation-harness output (lm-eval:" in (figures / "claims.md").read_text()
