"""The paper profile's whole code path (hub revision loading, fine-tuning, evaluation, records) offline, on a tiny
model placed in a local HF cache under allenai/OLMo-1B-hf; and the refusals that come before any download."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest
import torch

from amuro_utils import pipeline
from amuro_utils.config import paths
from amuro_utils.config.profiles import PAPER, SensitivitySettings, get_profile
from amuro_utils.study import jobs, plan


def _paper_like(tmp_path, monkeypatch):
    """The paper profile cut to what runs in seconds on a CPU: same ladder, loading path, recipe and records."""
    monkeypatch.setattr(paths, "RESULTS_ROOT", tmp_path / "results")
    mnli = PAPER.task("mnli")
    mnli = dataclasses.replace(mnli, in_domain=("mnli_matched",), ood=("rte",), n_train=8,
                               train=dataclasses.replace(mnli.train, micro_batch_size=4, max_length=256))
    return dataclasses.replace(
        PAPER, name="paper-offline-test", ckpts=("step1000", "step424000", "main"), tasks=(mnli,),
        instruction=dataclasses.replace(PAPER.instruction, benchmarks=("arc_easy",), llmbar=("llmbar_Natural",)),
        data_source="offline", eval_limit=6, eval_batch_size=4, max_length=512, device="cpu", eval_dtype="float32",
        formats=("default", "instruct"), prune_revisions=False,
        sensitivity=SensitivitySettings(magnitudes=(3.0,), seeds=2, tokens=512, block=64, batch_size=8, also={}))


def test_paper_code_path_through_the_offline_hub(offline_olmo_hub, tmp_path, monkeypatch):
    prof = _paper_like(tmp_path, monkeypatch)
    assert [c.label for c in pipeline.checkpoints(prof, "424000")] == ["step424000"]
    (point,) = pipeline.checkpoints(prof, "step424000-tokens1778B")
    assert (point.label, point.branch, point.step) == ("step424000", "step424000-tokens1778B", 424000)
    with pytest.raises(Exception, match="Nearest available: step1000-tokens4B"):
        pipeline.checkpoints(prof, "18000")  # on the paper ladder but not in this cache

    assert pipeline.run_base(prof, "step424000", progress=False) == len(plan.base_plan(prof))
    (result,) = pipeline.run_sft(prof, "step424000", "mnli", progress=False).to_dict("records")
    assert result["status"] == "ran" and result["records"] == len(plan.sft_plan(prof, prof.task("mnli")))
    assert result["steps"] == 3  # 8 examples / batch 8 × 3 epochs
    assert not (paths.RESULTS_ROOT / prof.name / "models" / "step424000" / "mnli.full.seed42").exists()  # not kept

    store = pipeline.store(prof)
    record = store.read(model="allenai/OLMo-1B-hf", ckpt="step424000", fine_tune="mnli", method="full", seed=42,
                        eval_set="rte", format="instruct", shots=4)
    assert record["provenance"]["revision"] == "step424000-tokens1778B"
    assert record["provenance"]["commit"] == offline_olmo_hub.commits["step424000-tokens1778B"]
    assert record["metrics"]["n"] == 6 and len(record["predictions"]) == 6
    assert set(record["predictions"]) <= {"entailment", "neutral", "contradiction", " entailment", " neutral",
                                          " contradiction"}
    frame = pipeline.load_frame(prof)
    assert set(frame["fine_tune"]) == {"base", "mnli"} and (frame["source"] == "run").all()
    # a rerun finds everything recorded and loads no model
    assert pipeline.run_sft(prof, "step424000", "mnli", progress=False)["status"].tolist() == ["recorded"]
    assert pipeline.run_base(prof, "step424000", progress=False) == 0

    sens = pipeline.sensitivity(prof, "step424000", progress=False)
    assert list(sens["seed"]) == [0, 1] and set(sens["ckpt"]) == {"step424000"} and set(sens["step"]) == {424000}
    assert (sens["delta_loss"] > 0).all()  # noise of 3× the init spread raises the held-out loss
    assert sens["block_deltas"].iloc[0].shape == (8,)
    monkeypatch.setattr(jobs, "load_base", lambda *a, **k: pytest.fail("a cached checkpoint was reloaded"))
    cached = pipeline.sensitivity(prof, "step424000", progress=False)  # read back from its JSON
    pd.testing.assert_frame_equal(cached.drop(columns="block_deltas"), sens.drop(columns="block_deltas"))


def test_missing_records_name_the_notebook_to_run(tmp_path, monkeypatch):
    prof = _paper_like(tmp_path, monkeypatch)
    with pytest.raises(RuntimeError, match="papermill notebooks/sft.ipynb"):
        pipeline.require(pipeline.load_frame(prof), prof, ["base", "mnli"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_paper_profile_refuses_without_gpu_before_any_download(monkeypatch):
    monkeypatch.delenv("AMURO_FORCE_CPU", raising=False)
    with pytest.raises(RuntimeError, match="AMURO_FORCE_CPU=1"):
        pipeline.setup("paper")
    monkeypatch.setenv("AMURO_FORCE_CPU", "1")
    assert pipeline.setup("paper").device == "cpu"


def test_unknown_names_list_what_exists():
    with pytest.raises(ValueError, match="available: .*tiny"):
        get_profile("tinny")
    with pytest.raises(ValueError, match="tasks: .*mnli"):
        get_profile("tiny").task("paws")
    with pytest.raises(ValueError, match="unknown results source 'nope'; one of: run .*; paper .*; pythia-evals .*; "
                                         "lm-eval:<dir>"):
        pipeline.load_frame(get_profile("tiny"), "nope")


def test_records_are_json_with_provenance_fields(offline_olmo_hub, tmp_path, monkeypatch):
    prof = _paper_like(tmp_path, monkeypatch)
    pipeline.run_base(prof, "main", progress=False)
    files = sorted((paths.RESULTS_ROOT / prof.name / "records").rglob("*.json"))
    assert len(files) == len(plan.base_plan(prof))
    record = json.loads(files[0].read_text())
    for field in ("revision", "commit", "config_hash", "versions", "profile"):
        assert record["provenance"][field], field
    assert record["identity"]["model"]["commit"] == record["provenance"]["commit"]
    assert len(record["references"]) == len(record["predictions"]) == record["metrics"]["n"]
    # main's step comes from the step branch with the same commit (the final checkpoint, step738020)
    assert pipeline.load_frame(prof)["step"].unique().tolist() == [738020]


def test_interrupted_evaluation_resumes_from_the_saved_fine_tuned_model(offline_olmo_hub, tmp_path, monkeypatch):
    prof = dataclasses.replace(_paper_like(tmp_path, monkeypatch), keep_weights=True)
    first = pipeline.run_sft(prof, "step1000", "mnli", progress=False).iloc[0]
    store = pipeline.store(prof)
    key = dict(model="allenai/OLMo-1B-hf", ckpt="step1000", fine_tune="mnli", method="full", seed=42, eval_set="rte",
               format="default", shots=4)
    before = store.read(**key)
    store.path(**key).unlink()  # as if the job was killed before this evaluation was recorded

    def no_base_load(*args, **kwargs):
        raise AssertionError("the finished fine-tuned model must be reused, not retrained from the base")

    monkeypatch.setattr(jobs, "load_base", no_base_load)
    again = pipeline.run_sft(prof, "step1000", "mnli", progress=False).iloc[0]
    assert again["status"] == "ran" and again["records"] == 1 and again["steps"] == first["steps"]
    after = store.read(**key)
    assert after["predictions"] == before["predictions"]
    assert after["metrics"]["performance"] == before["metrics"]["performance"]
    assert after["provenance"]["commit"] == before["provenance"]["commit"] == offline_olmo_hub.commits[
        "step1000-tokens4B"]


def test_a_new_kind_of_model_job_is_one_registry_entry_and_one_runner(offline_olmo_hub, tmp_path, monkeypatch):
    """A toy kind of model job — a second fine-tuning of the task under another name, scored on its primary set —
    added as one entry of plan.KINDS and one stage, run by one runner function: the plan, the records' identities,
    the cost model, the runner's job states, SLURM and the report all pick it up."""
    from amuro_utils.figures import report
    from amuro_utils.run import runner, slurm
    from amuro_utils.study import cost, stages

    prof = _paper_like(tmp_path, monkeypatch)
    toy = plan.JobKind("toy", lambda p: ("mnli_toy",), lambda p, label: [("mnli_matched", "default")],
                       lambda p, label: plan.fine_tunes(p, dataclasses.replace(p.task("mnli"), name=label)))
    stage = stages.Stage("toy", runs="toy", writes=("toy", "training"), reads=("base", "toy"),
                         title="A toy kind of model job", cost_unit="fine_tune")
    monkeypatch.setattr(plan, "KINDS", {**plan.KINDS, "toy": toy})
    monkeypatch.setattr(stages, "STAGES", (*stages.STAGES, stage))

    def run_toy(profile, ckpt="all"):  # the runner function a notebook would call
        return jobs.run_kind(profile, "toy", ckpt, progress=False)

    # plan: one job per checkpoint, with its fine-tuning; its records are this profile's, with their identities
    made = [j for j in plan.jobs(prof) if j.kind == "toy"]
    assert [(j.notebook, j.ckpt, j.task) for j in made] == [("toy", c, "mnli_toy") for c in prof.ckpts]
    assert [s.name for s in made[0].fine_tunes] == ["mnli_toy"] and plan.record_kind(prof, "mnli_toy") == "toy"
    toy_jobs = [j for j in plan.notebook_jobs(prof) if j.notebook == "toy"]  # the paper's: a job per checkpoint
    assert [j.id for j in toy_jobs] == [f"08_toy_{c}" for c in prof.ckpts] + ["08_toy_figures"]
    assert [m for j in toy_jobs for m in j.model_jobs] == made
    toy_job = toy_jobs[1]
    # cost: priced like any fine-tuning (GPU hours) and counted in its stage's overhead units
    throughput = cost.load_throughput()
    assert cost.breakdown(made[0], throughput)["train"] > 0 and cost._units("toy", made) == len(prof.ckpts)
    # runner: a job of its own, pending until its records exist; SLURM: an array of its own
    assert runner.job_state(prof, toy_job).state != "done" and "08_toy_step424000" in runner.status(prof)
    arrays = {s.name: s for s in slurm.stages(prof, toy_jobs)}
    assert [j.id for j in arrays["toy"].jobs] == [j.id for j in toy_jobs[:-1]]
    # the report: a section of its own
    assert stage.title in report.sections()

    (result,) = run_toy(prof, "step424000").to_dict("records")
    assert result["status"] == "ran" and result["records"] == 1
    frame = pipeline.load_frame(prof, kinds=("toy",))
    assert set(frame["fine_tune"]) == {"mnli_toy"} and set(frame["eval_set"]) == {"mnli_matched"}
    assert run_toy(prof, "step424000")["status"].tolist() == ["recorded"]  # current: not retrained
