"""What the notebooks show their reader comes from the profile and the records, never typed in."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from amuro_utils import show, stats
from amuro_utils.config.profiles import SMOKE, TINY
from amuro_utils.data import tasks


def test_the_recipe_is_read_from_the_profile_and_follows_an_override():
    table = show.recipe(TINY, "sft")
    assert list(table.index) == [t.name for t in TINY.tasks]
    assert table.loc["xsum", "examples"] == TINY.task("xsum").n_train and set(table["epochs"]) == {8}
    longer = dataclasses.replace(TINY, tasks=tuple(dataclasses.replace(t, train=dataclasses.replace(t.train, epochs=3))
                                                   for t in TINY.tasks), seeds=(1, 2))
    assert set(show.recipe(longer, "sft")["epochs"]) == {3} and set(show.recipe(longer, "sft")["seeds"]) == {"1, 2"}
    assert show.recipe(TINY, "instruction").loc[TINY.instruction.name, "epochs"] == TINY.instruction.train.epochs
    assert show.evaluation(TINY).loc["in-context demos (shots)", "value"] == TINY.shots
    assert f"{TINY.shots}-shot" in show.scoring(TINY) and f"{TINY.max_new_tokens} new tokens" in show.scoring(TINY)


def test_a_training_example_and_an_evaluation_prompt_in_every_format():
    text = show.training_example(SMOKE, "mnli")
    assert "### Input_1:" in text and "completion:" in text
    chat = show.training_example(SMOKE, SMOKE.instruction.name)
    assert "<|user|>" in chat and "<|assistant|>" in chat
    prompts = show.eval_prompts(SMOKE, "mnli_matched")
    examples = tasks.load_examples("mnli_matched", limit=SMOKE.eval_limit)
    for fmt in SMOKE.formats:  # each format's query, rendered by the same function evaluation uses
        assert f"the query, {fmt} format" in prompts
        assert tasks.render(tasks.get("mnli_matched"), examples[SMOKE.shots], fmt).strip()[:60] in prompts


def test_predictions_against_gold_and_the_numbers_behind_a_figure():
    rows = []
    for ckpt, step, acc in (("step1000", 1000, 0.5), ("main", 738020, 1.0)):
        rows.append({"fine_tune": "mnli", "eval_set": "mnli_matched", "format": "default", "ckpt": ckpt, "step": step,
                     "metric": "accuracy", "predictions": ["yes", "no"], "references": ["yes", "yes"],
                     "scores": np.array([1.0, 0.0])})
    sample = show.predictions(pd.DataFrame(rows), "mnli", "mnli_matched")
    assert list(sample["gold"]) == ["yes", "yes"] and list(sample["prediction"]) == ["yes", "no"]
    assert "at main" in sample.attrs["caption"]  # the last checkpoint of the ladder by default
    assert show.predictions(pd.DataFrame(rows), "qqp", "qqp_glue").empty

    class Cells:  # a Study's cells as the figures read them
        rows = pd.DataFrame({"fine_tune": ["base", "base", "mnli", "mnli"], "eval_set": ["mnli_matched"] * 4,
                             "format": ["default"] * 4, "ckpt": ["main", "step1000", "main", "step1000"],
                             "step": [738020, 1000, 738020, 1000], "performance": [0.4, 0.3, 0.6, 0.5]})

    study = type("S", (), {"cells": Cells})()
    table = show.numbers(study, [("mnli", "mnli_matched"), ("base", "mnli_matched")])
    assert list(table.columns) == ["step1000", "main"] and table.loc[("mnli", "mnli_matched"), "main"] == 0.6
    assert show.matrix(study, ["base", "mnli"], ["mnli_matched"]).loc["mnli", "mnli_matched"] == 0.6


def test_the_verdict_guide_states_the_rules_numbers():
    guide = show.verdict_guide()
    assert f"{stats.CONFIDENCE:.0%}".replace("%", " %") in guide


def test_a_multiple_choice_prediction_is_shown_with_its_choice_text():
    examples = tasks.load_examples("arc_easy", limit=3)
    row = {"fine_tune": "base", "eval_set": "arc_easy", "format": "default", "ckpt": "main", "step": 1,
           "metric": "acc", "predictions": [1, 0], "references": [examples[0]["gold"], examples[1]["gold"]],
           "scores": np.array([0.0, 1.0])}
    sample = show.predictions(pd.DataFrame([row]), "base", "arc_easy", profile=SMOKE)
    assert sample.loc[0, "prediction"] == f"1: {examples[0]['choices'][1].strip()}"[:120]
    assert sample.loc[1, "gold"].startswith(f"{examples[1]['gold']}: ")


def test_a_profile_that_reads_its_results_shows_no_prompt_and_says_why():
    from amuro_utils.config.profiles import get_profile

    reference = get_profile("paper-reference")
    assert "reads its results (paper)" in show.eval_prompts(reference, "xsum")
    assert "runs no model here" in show.training_example(reference, "mnli")
    assert not show.recipe(reference, "sft").empty  # the recipe is the profile's, shown anyway
