"""More ladders: the Pythia and OLMo-2 profiles, offline through a filled HF cache, exactly as OLMo-1B is tested.

The cache (conftest `family_hub_cache`) holds tiny random GPT-NeoX models under EleutherAI/pythia-160m and -1b and
tiny random OLMo-2 models under allenai/OLMo-2-0425-1B, as the hub's branches are named and stored. Their tokenizers
are stand-ins (conftest `pythia_tokenizer`, `dolma2_tokenizer`): the real GPT-NeoX-20B and dolma2 tokenizers cannot
be downloaded here, so each is built from the OLMo tokenizer file with the real family's special-token ids.
"""

from __future__ import annotations

import dataclasses
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from conftest import OLMO2_REPO, dolma2_tokenizer, pythia_tokenizer, tiny_olmo2, tiny_pythia

from amuro_utils import pipeline, stats
from amuro_utils.config import paths
from amuro_utils.config.profiles import (
    OLMO2_1B,
    OLMO2_FINAL_STAGE1_STEP,
    OLMO2_STAGE1_STEPS,
    PAPER,
    PAPER_FRACTIONS,
    PYTHIA_1B,
    PYTHIA_160M,
    PYTHIA_FINAL_STEP,
    PYTHIA_STEPS,
    SPRINGER_FRACTION,
    ckpt_step,
    get_profile,
    steps_at_fractions,
)
from amuro_utils.figures import plots
from amuro_utils.models import ladder
from amuro_utils.models.ladder import CheckpointMismatchError, LadderError, load, resolve, write_hub_revision
from amuro_utils.stats import analysis
from amuro_utils.study import cost, plan

NEW_PROFILES = (PYTHIA_1B, PYTHIA_160M, OLMO2_1B)


# ---------------------------------------------------------------------------------------------------------------
# profiles: the paper's fractions of pre-training on each family's branches


def test_profiles_are_registered_on_their_ladders():
    assert {get_profile(p.name).ladder for p in NEW_PROFILES} == {"pythia-1b", "pythia-160m", "olmo-2-0425-1b"}
    assert ladder.get_ladder("pythia-160m").repo == "EleutherAI/pythia-160m"
    for profile in NEW_PROFILES:  # the paper's recipe: only the ladder (and its labels) differ
        same = {f.name for f in dataclasses.fields(PAPER)} - {"name", "description", "ladder", "ckpts",
                                                              "main_step", "overtraining_pair", "figure_note"}
        assert all(getattr(profile, f) == getattr(PAPER, f) for f in same)


def test_pythia_ladder_sits_at_the_papers_fractions():
    assert [round(f * 100, 2) for f in PAPER_FRACTIONS] == [0.14, 2.44, 46.34, 57.45, 68.43, 80.21, 100.0]
    steps = steps_at_fractions(PYTHIA_STEPS, PYTHIA_FINAL_STEP)
    assert steps == (256, 4000, 66000, 82000, 98000, 115000, 143000)
    assert PYTHIA_1B.ckpts == PYTHIA_160M.ckpts == tuple(f"step{s}" for s in steps)
    assert len(PYTHIA_STEPS) == 154 and {0, 1, 512, 1000, 143000} <= set(PYTHIA_STEPS)  # PROTOCOL B §1.3
    # each rung within 0.5 percentage points of the paper's fraction
    for fraction, label in zip(PAPER_FRACTIONS, PYTHIA_1B.ckpts):
        assert abs(ckpt_step(label) / PYTHIA_FINAL_STEP - fraction) < 0.005, label
    assert steps_at_fractions(PYTHIA_STEPS, PYTHIA_FINAL_STEP, (SPRINGER_FRACTION,)) == (107000,)
    assert PYTHIA_1B.overtraining_pair == ("step107000", "step143000")
    assert plan.instruction_ckpts(PYTHIA_1B) == ("step256", "step4000", "step66000", "step82000", "step98000",
                                                 "step107000", "step115000", "step143000")


def test_olmo2_ladder_sits_at_the_papers_fractions_of_stage1():
    steps = steps_at_fractions(OLMO2_STAGE1_STEPS, OLMO2_FINAL_STAGE1_STEP)
    assert steps == (10000, 50000, 880000, 1100000, 1310000, 1530000, 1907359)
    assert OLMO2_1B.ckpts == (*(f"step{s}" for s in steps), "main")
    for fraction, label in zip(PAPER_FRACTIONS[1:], OLMO2_1B.ckpts[1:-1]):
        assert abs(ckpt_step(label) / OLMO2_FINAL_STAGE1_STEP - fraction) < 0.005, label
    # the earliest rung: the grid's first trained step (0.52 %), nearer in ratio than step 0 (untrained)
    assert steps_at_fractions((0, 10000, 20000), 1_907_359, (PAPER_FRACTIONS[0],)) == (10000,)
    assert OLMO2_1B.overtraining_pair == ("step1420000", "step1907359")
    assert OLMO2_1B.main_step == 1_907_359 + 23_852  # main = stage 2 after the whole of stage 1


def test_steps_at_fractions_matches_in_ratio_and_refuses_an_empty_ladder():
    assert steps_at_fractions((0, 100, 1000, 10_000), 10_000, (0.03, 0.5, 1.0)) == (100, 10_000, 10_000)
    with pytest.raises(ValueError, match="at least one positive step"):
        steps_at_fractions((0,), 100)


def test_figures_label_every_family_by_its_own_steps():
    assert [plots.ckpt_label(c) for c in PYTHIA_1B.ckpts] == ["256", "4k", "66k", "82k", "98k", "115k", "143k"]
    assert [plots.ckpt_label(c) for c in OLMO2_1B.ckpts] == ["10k", "50k", "880k", "1100k", "1310k", "1530k",
                                                             "1907359", "main"]


# ---------------------------------------------------------------------------------------------------------------
# branch resolution


@pytest.mark.parametrize("repo_ladder", ["pythia-160m", "pythia-1b"])
@pytest.mark.parametrize("name, branch", [("step4000", "step4000"), ("4000", "step4000"), (256, "step256"),
                                          ("step143000", "step143000"), ("main", "main")])
def test_pythia_branches_resolve(offline_family_hub, repo_ladder, name, branch):
    assert resolve(repo_ladder, name) == branch


def test_pythia_missing_rung_names_the_nearest_and_main_has_no_step_of_its_own(offline_family_hub):
    with pytest.raises(LadderError) as err:
        resolve("pythia-1b", "step3000")
    assert "Nearest available: step4000, step256, step0, step66000, step143000." in str(err.value)
    assert "6 branches from HF cache" in str(err.value)
    commits = offline_family_hub.commits["EleutherAI/pythia-1b"]
    final = ladder.checkpoint("pythia-1b", "step143000")
    assert (final.branch, final.commit, final.step) == ("step143000", commits["step143000"], 143000)
    # main holds step143000's weights under another commit: no step branch shares it, so its step is unknown; the
    # profiles therefore end on the label step143000
    assert commits["main"] != commits["step143000"] and ladder.checkpoint("pythia-1b", "main").step is None


@pytest.mark.parametrize("name, branch, step", [
    ("step10000", "stage1-step10000-tokens21B", 10000),
    ("10000", "stage1-step10000-tokens21B", 10000),
    ("step50000", "step50000-tokens105B", 50000),  # a stage-1 branch without its "stage1-" prefix
    ("stage1-step1907359-tokens4001B", "stage1-step1907359-tokens4001B", 1907359),
    ("step1907359", "stage1-step1907359-tokens4001B", 1907359),
    ("stage2-ingredient3-step23852-tokens51B", "stage2-ingredient3-step23852-tokens51B", None),
    ("main", "main", None),  # the stage-2 model: no stage-1 branch shares its commit
])
def test_olmo2_branches_resolve(offline_family_hub, name, branch, step):
    point = ladder.checkpoint("olmo-2-0425-1b", name)
    assert (point.branch, point.step) == (branch, step)
    assert point.commit == offline_family_hub.commits[OLMO2_REPO][branch]


def test_olmo2_stage2_steps_are_not_stage1_labels_and_a_doubled_branch_is_ambiguous(offline_family_hub, tmp_path):
    with pytest.raises(LadderError, match=r"no checkpoint 'step23852' in ladder olmo-2-0425-1b .*Nearest available: "
                                          r"stage1-step10000-tokens21B, step50000-tokens105B"):
        resolve("olmo-2-0425-1b", "step23852")  # stage 2 restarts its step count: only its full name resolves
    model, tokenizer = tiny_olmo2(hidden=16, layers=1), dolma2_tokenizer()
    write_hub_revision(tmp_path, OLMO2_REPO, "stage1-step20000-tokens42B", model, tokenizer)
    write_hub_revision(tmp_path, OLMO2_REPO, "step20000-tokens42B", model, tokenizer)
    with pytest.raises(LadderError, match=r"'step20000' is ambiguous .*\['stage1-step20000-tokens42B', "
                                          r"'step20000-tokens42B'\]; pass the full branch name"):
        resolve("olmo-2-0425-1b", "step20000", cache_dir=tmp_path)
    assert resolve("olmo-2-0425-1b", "step20000-tokens42B", cache_dir=tmp_path) == "step20000-tokens42B"


# ---------------------------------------------------------------------------------------------------------------
# safe loading: weights, tokenizers' special ids


def test_pythia_loads_from_its_fp16_bin_with_legacy_buffers(offline_family_hub):
    model, tokenizer, provenance = load("pythia-160m", "step4000", device="cpu")
    commit = offline_family_hub.commits["EleutherAI/pythia-160m"]["step4000"]
    assert provenance == {"ladder": "pythia-160m", "repo": "EleutherAI/pythia-160m", "ckpt": "step4000",
                          "revision": "step4000", "commit": commit, "step": 4000}
    assert type(model).__name__ == "GPTNeoXForCausalLM" and model.dtype == torch.float32 and not model.training
    # the fp16 file's weights, not a fresh initialisation (seed 2 = step4000's index in PYTHIA_BRANCHES)
    expected = tiny_pythia(seed=2).gpt_neox.embed_in.weight.half().float()
    assert torch.equal(model.gpt_neox.embed_in.weight, expected)
    # GPT-NeoX-20B's layout; the pad token, declared nowhere, is set by the ladder
    assert (tokenizer.eos_token, tokenizer.eos_token_id, tokenizer.pad_token, tokenizer.pad_token_id) == \
        ("<|endoftext|>", 0, "<|padding|>", 1)
    assert len(tokenizer) == 50280 <= model.get_input_embeddings().weight.shape[0] == 50304


def test_olmo2_loads_with_dolma2_special_ids(offline_family_hub):
    model, tokenizer, provenance = load("olmo-2-0425-1b", "step10000", device="cpu", dtype="bfloat16")
    assert provenance["revision"] == "stage1-step10000-tokens21B" and provenance["step"] == 10000
    assert type(model).__name__ == "Olmo2ForCausalLM" and model.dtype == torch.bfloat16
    assert torch.equal(model.model.embed_tokens.weight, tiny_olmo2(seed=0).model.embed_tokens.weight.bfloat16())
    assert (tokenizer.eos_token, tokenizer.eos_token_id, tokenizer.pad_token, tokenizer.pad_token_id) == \
        ("<|endoftext|>", 100257, "<|pad|>", 100277)
    assert tokenizer("a b<|endoftext|>").input_ids[-1] == 100257 and tokenizer.bos_token_id == 100257
    assert len(tokenizer) == 100278 <= model.get_input_embeddings().weight.shape[0] == 100352
    assert load("olmo-2-0425-1b", "main", device="cpu")[2]["revision"] == "main"


def test_a_tokenizer_of_another_family_is_refused_with_its_ids(offline_family_hub, tmp_path):
    write_hub_revision(tmp_path, "EleutherAI/pythia-160m", "step1000", tiny_pythia(hidden=16, layers=1),
                       dolma2_tokenizer())
    with pytest.raises(CheckpointMismatchError, match="EleutherAI/pythia-160m: tokenizer eos id is 100257, expected 0"):
        load("pythia-160m", "1000", device="cpu", cache_dir=tmp_path)
    write_hub_revision(tmp_path, OLMO2_REPO, "stage1-step1000-tokens2B", tiny_olmo2(hidden=16, layers=1),
                       pythia_tokenizer())
    with pytest.raises(CheckpointMismatchError, match="allenai/OLMo-2-0425-1B: tokenizer eos id is 0, expected 100257"):
        load("olmo-2-0425-1b", "1000", device="cpu", cache_dir=tmp_path)
    # right eos, wrong pad: <|extra_id_0|> (100256) where dolma2 pads with <|pad|> (100277)
    write_hub_revision(tmp_path, OLMO2_REPO, "stage1-step2000-tokens4B", tiny_olmo2(hidden=16, layers=1),
                       dolma2_tokenizer(pad_token="<|extra_id_0|>"))
    with pytest.raises(CheckpointMismatchError, match="tokenizer pad id is 100256, expected 100277"):
        load("olmo-2-0425-1b", "2000", device="cpu", cache_dir=tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# the whole pipeline per family, with no family-specific code


FAMILIES = {
    # profile, checkpoints run, their branches, the steps the frame records, the steps Table 5 uses
    "pythia": (PYTHIA_160M, ("step4000", "step143000"), ("step4000", "step143000"), [4000, 143000], [4000, 143000]),
    "olmo2": (OLMO2_1B, ("step50000", "main"), ("step50000-tokens105B", "main"), [50000, math.nan],
              [50000, 1_907_359 + 23_852]),
}


def _cut_down(profile, ckpts, tmp_path, monkeypatch):
    """A family's profile cut to what runs in seconds on a CPU (as test_pipeline's `_paper_like`): same ladder,
    loading path, recipe and records; one task, two checkpoints, six items per set. requires_gpu=False: the
    pre-flight's disk check prices the real checkpoints, not these tiny stand-ins."""
    monkeypatch.setattr(paths, "RESULTS_ROOT", tmp_path / "results")
    mnli = profile.task("mnli")
    mnli = dataclasses.replace(mnli, in_domain=("mnli_matched",), ood=("rte",), n_train=8,
                               train=dataclasses.replace(mnli.train, micro_batch_size=4, max_length=256))
    return dataclasses.replace(
        profile, name=f"{profile.name}-offline-test", ckpts=ckpts, tasks=(mnli,),
        instruction=dataclasses.replace(profile.instruction, benchmarks=("arc_easy",), llmbar=()),
        data_source="offline", eval_limit=6, eval_batch_size=4, max_length=512, device="cpu", eval_dtype="float32",
        formats=("default",), prune_revisions=False, requires_gpu=False, overtraining_pair=None,
        sensitivity=dataclasses.replace(profile.sensitivity, tokens=256, block=64))  # held-out text, before/after


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_runs_the_papers_pipeline_offline(offline_family_hub, tmp_path, monkeypatch, family):
    profile, ckpts, branches, frame_steps, table_steps = FAMILIES[family]
    prof = _cut_down(profile, ckpts, tmp_path, monkeypatch)
    repo = ladder.get_ladder(prof.ladder).repo
    points = pipeline.checkpoints(prof, "all")
    assert [(p.label, p.branch) for p in points] == list(zip(ckpts, branches))

    assert pipeline.run_base(prof, "all", progress=False) == len(ckpts) * len(plan.base_plan(prof))
    tuned = pipeline.run_sft(prof, "all", "mnli", progress=False)
    assert tuned["status"].tolist() == ["ran"] * len(ckpts)
    assert tuned["records"].tolist() == [len(plan.sft_plan(prof, prof.task("mnli")))] * len(ckpts)
    assert tuned["steps"].tolist() == [3] * len(ckpts)  # 8 examples / batch 8 × 3 epochs

    record = pipeline.store(prof).read(model=repo, ckpt=ckpts[0], fine_tune="mnli", method="full", seed=42,
                                       eval_set="rte", format="default", shots=4)
    assert record["provenance"]["revision"] == branches[0]
    assert record["provenance"]["commit"] == offline_family_hub.commits[repo][branches[0]]
    assert record["metrics"]["n"] == 6 and len(record["predictions"]) == 6

    frame = pipeline.load_frame(prof)
    assert set(frame["model"]) == {repo} and set(frame["fine_tune"]) == {"base", "mnli"}
    steps = frame.groupby("ckpt")["step"].first()
    np.testing.assert_array_equal([steps[c] for c in ckpts], frame_steps)

    # Fig. 3 and Table 5 from the family's frame, with the paper's code
    fig = plots.fig3_sft(frame, prof)
    (ax,) = fig.axes[:1]
    assert [t.get_text() for t in ax.get_xticklabels()] == [plots.ckpt_label(c) for c in ckpts]
    cells = frame[frame["eval_set"] == "mnli_matched"].set_index(["fine_tune", "ckpt"])["performance"]
    for fine_tune in ("base", "mnli"):
        wanted = [cells[(fine_tune, c)] for c in ckpts]
        assert any(np.allclose(line.get_ydata(), wanted) for line in ax.lines), fine_tune
    plt.close(fig)
    table = stats.table5(stats.Study(frame, prof))
    learned_in_ft = table[table["group"] == analysis.GROUP_FT]
    assert learned_in_ft["ckpt"].tolist() == list(ckpts) and learned_in_ft["step"].tolist() == table_steps
    assert learned_in_ft["n_pairs"].tolist() == [1] * len(ckpts)  # mnli_matched ← mnli, the one FT pair evaluated
    np.testing.assert_allclose(learned_in_ft["raw_change"].astype(float), [cells[("mnli", c)] - cells[("base", c)] for c in ckpts])
    assert table[table["group"] == analysis.GROUP_PT].empty  # arc_easy needs instruction-tuned records: none here


# ---------------------------------------------------------------------------------------------------------------
# GPU-hours


def test_cost_prices_every_new_profile(capsys):
    throughput = cost.load_throughput()
    for profile in NEW_PROFILES:
        sets = {s for job in plan.jobs(profile) for s, _ in job.evals}
        assert sets <= set(throughput["workload"]["eval_sets"]), profile.name
        trains = {run.train_set for job in plan.jobs(profile) for run in job.fine_tunes}
        assert trains <= set(throughput["workload"]["train_sets"]), profile.name
        cost.main(["--profile", profile.name])
        out = capsys.readouterr().out
        assert out.startswith(f"Plan for profile {profile.name!r}: {len(plan.jobs(profile))} jobs")
    totals = {p.name: cost.plan_table(p, throughput)[1] for p in (*NEW_PROFILES, PAPER)}
    # same study, so the hours follow the parameter counts: 0.16B < 1.01B < 1.18B (OLMo-1B) < 1.48B (OLMo-2)
    assert totals["pythia-160m"] < totals["pythia-1b"] < totals["paper"] < totals["olmo2-1b"]
    models = throughput["models"]
    assert models["pythia-1b"]["params"] == 1_011_781_632 and models["pythia-160m"]["params"] == 162_322_944
    assert models["olmo-2-0425-1b"]["params"] == 1_484_916_736
    job = plan.find_job(OLMO2_1B, "sft", "step1907359", "mnli")
    assert cost.requirements(OLMO2_1B, job)["disk_bytes"] == pytest.approx(4 * 1_484_916_736 + 2 * 1_484_916_736)
