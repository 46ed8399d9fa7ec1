"""Beyond the paper, the data half (issue 21): records along fine-tuning, probes per rung, the zero-step loss and
fine-tuning to convergence, made by the pipeline on the paper's code path (a tiny OLMo in an offline hub cache),
stored under their identities and read back as the analysis (amuro_utils.verdicts.beyond) expects them."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from test_pipeline import _paper_like

from amuro_utils import pipeline, stats
from amuro_utils.config import paths
from amuro_utils.config.profiles import ConvergeSettings, DynamicsSettings, ProbeSettings
from amuro_utils.run import runner
from amuro_utils.store import artifacts, identity
from amuro_utils.study import jobs, plan

CKPT = "step424000"


@pytest.fixture
def study(offline_olmo_hub, tmp_path, monkeypatch):
    """The paper-like profile (MNLI only, 6 items per set, 3 optimizer steps per fine-tuning) with points along
    fine-tuning at half and at all of its steps, small probes and a convergence schedule of a few epochs."""
    prof = _paper_like(tmp_path, monkeypatch)
    monkeypatch.setattr(paths, "FIGURES_ROOT", tmp_path / "figures")  # the scorecard and figures land there
    # no overtraining pair: its step550000 is not in the offline hub, and artifacts are read only where every
    # checkpoint of the plan resolves
    return dataclasses.replace(prof, keep_weights=True, overtraining_pair=None,
                               dynamics=DynamicsSettings(fractions=(0.5, 1.0), eval_limit=None),
                               probes=ProbeSettings(n_train=24, n_test=12, folds=3, Cs=(0.1, 1.0)),
                               convergence=ConvergeSettings(max_epochs=4, patience=1, n_val=16))


def _record(prof, fine_tune, eval_set, fmt):
    seed = None if fine_tune == "base" else 42
    return pipeline.store(prof).read(model="allenai/OLMo-1B-hf", ckpt=CKPT, fine_tune=fine_tune,
                                     method="none" if seed is None else "full", seed=seed, eval_set=eval_set,
                                     format=fmt, shots=4)


def test_records_along_fine_tuning_end_at_the_ordinary_fine_tuned_records(study):
    prof = study
    pipeline.run_base(prof, CKPT, progress=False)
    (result,) = pipeline.run_sft(prof, CKPT, "mnli", progress=False).to_dict("records")
    assert result["status"] == "ran" and result["steps"] == 3
    frame = pipeline.dynamics_frame(prof)
    along = frame[~frame["derived"]]
    assert sorted(set(zip(along["ft_fraction"], along["ft_step"]))) == [(0.5, 2), (1.0, 3)]  # round(1.5) = 2
    assert set(zip(along["eval_set"], along["format"])) == {*plan.dynamics_plan(prof, prof.task("mnli")),
                                                            (pipeline.HELDOUT_LOSS, "default")}
    last = along[along["ft_fraction"] == 1.0]
    for row in last[last["eval_set"] != pipeline.HELDOUT_LOSS].itertuples():
        record = _record(prof, "mnli", row.eval_set, row.format)  # the ordinary record of the fine-tuned model
        assert row.scores.tolist() == record["scores"] and row.predictions == record["predictions"]
        assert row.performance == record["metrics"]["performance"] and row.references == record["references"]
    forgetting = json.loads(plan.forgetting_path(prof, CKPT, plan.fine_tunes(prof, prof.task("mnli"))[0]).read_text())
    (heldout,) = last[last["eval_set"] == pipeline.HELDOUT_LOSS]["scores"]
    np.testing.assert_allclose(heldout, forgetting["heldout"], rtol=1e-6)  # the same blocks, the same model
    # fractions 0 and 1 from the ordinary records, cut to the items scored along the way (all of them here)
    ends = frame[frame["derived"]]
    base = ends[(ends["ft_fraction"] == 0.0) & (ends["eval_set"] == "rte")].iloc[0]
    assert base.scores.tolist() == _record(prof, "base", "rte", "default")["scores"] and base.ft_step == 0
    # the analysis reads them as a bank of its study: keyed (eval_set, fine_tune, ckpt, format, ft_fraction)
    s = stats.Study(pipeline.load_frame(prof, items=True), prof, dynamics=frame, n_boot=50)
    assert s.fractions() == [0.0, 0.5, 1.0]
    assert s.union().vector(("dyn", "rte", "mnli", CKPT, "default", 0.5)) is not None
    # the training record holds the zero-step loss: the base model's training loss before any update
    training = pipeline.training_frame(prof)
    (zero,) = training["zero_step_loss"]
    assert zero == pytest.approx(result["zero_step_loss"]) and zero > training["final_loss"].iloc[0]
    assert list(pipeline.forgetting_frame(prof)["zero_step_loss"]) == [zero]


def test_a_changed_dynamics_setting_retrains_in_memory_and_keeps_the_stored_model(study, monkeypatch):
    prof = study
    pipeline.run_sft(prof, CKPT, "mnli", progress=False)
    spec = plan.fine_tunes(prof, prof.task("mnli"))[0]
    weights = plan.weights_dir(prof, CKPT, spec) / "model.safetensors"
    kept = {p: p.read_bytes() for p in (weights, plan.training_path(prof, CKPT, spec))}
    fewer = dataclasses.replace(prof, dynamics=dataclasses.replace(prof.dynamics, fractions=(0.5,)))
    (again,) = pipeline.run_sft(fewer, CKPT, "mnli", progress=False).to_dict("records")
    assert again["status"] == "ran" and again["records"] == 0  # no ordinary record was stale
    assert all(p.read_bytes() == before for p, before in kept.items())  # the seeded retraining made the same model
    assert sorted(set(pipeline.dynamics_frame(fewer)["ft_fraction"])) == [0.0, 0.5, 1.0]
    stored = artifacts.read(plan.dynamics_path(fewer, CKPT, spec))[0]
    assert stored["identity"]["fractions"] == [0.5] and (paths.RESULTS_ROOT / prof.name / ".stale").exists()
    monkeypatch.setattr(jobs, "load_base", lambda *a, **k: pytest.fail("nothing is stale: nothing is loaded"))
    assert pipeline.run_sft(fewer, CKPT, "mnli", progress=False)["status"].tolist() == ["recorded"]


def test_probe_rows_are_stored_under_their_identity_and_a_probe_setting_recomputes_only_them(study, monkeypatch):
    prof = study
    pipeline.run_base(prof, CKPT, progress=False)
    pipeline.sensitivity(prof, CKPT, progress=False)
    rows = pipeline.probes(prof, CKPT)
    assert set(rows["task"]) == {"mnli"} and sorted(rows["layer"]) == [0, 1, 2]  # embeddings + 2 layers
    assert (rows["n_train"] == 24).all() and all(len(s) == 12 for s in rows["scores"]) and (rows["step"] == 424000).all()
    stored = artifacts.read(plan.probes_path(prof, CKPT))[0]
    assert stored["identity"]["probe"]["n_train"] == 24 and stored["identity"]["data"]["mnli"]["name"] == "mnli"
    read = pipeline.probe_frame(prof)  # read back under its identity: nothing computed
    assert read["accuracy"].tolist() == rows["accuracy"].tolist() and read.attrs["digests"] == [
        identity.digest(plan.probes_identity(prof, plan.resolve(prof, CKPT)))]

    job = next(nb for nb in plan.notebook_jobs(prof) if nb.notebook == "pretrain_probe" and CKPT in nb.id)
    before = runner.job_identity(prof, job)
    results_root = paths.RESULTS_ROOT / prof.name
    untouched = {p: p.read_bytes() for p in [*(results_root / "records").rglob("*.json"),
                                              *(results_root / "sensitivity").glob("*.json")]}
    changed = dataclasses.replace(prof, probes=dataclasses.replace(prof.probes, n_test=10))
    after = runner.job_identity(changed, job)
    assert identity.changed_fields(before, after) == ["probes"]  # the job's records and sensitivity rows stay
    calls = []
    from amuro_utils.models import probes as linear

    real = linear.probe_model
    monkeypatch.setattr(linear, "probe_model", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert pipeline.run_base(changed, CKPT, progress=False) == 0
    pipeline.sensitivity(changed, CKPT, progress=False)
    assert all(len(s) == 10 for s in pipeline.probes(changed, CKPT)["scores"]) and calls == [1]
    assert all(p.read_bytes() == b for p, b in untouched.items())
    assert pipeline.probe_frame(prof).empty and pipeline.probe_frame(prof).attrs["left_out"]  # the old rows: stale
    assert pipeline.probes(dataclasses.replace(prof, probes=None), CKPT).empty  # switched off


def test_fine_tuning_to_convergence_has_its_own_store_schedule_and_validation_split(study):
    prof = dataclasses.replace(study, converge=True)
    assert [(j.notebook, j.ckpt, j.evals) for j in plan.jobs(prof) if j.kind == plan.CONVERGE and j.ckpt == CKPT] == \
        [("beyond", CKPT, (("mnli_matched", "default"),))]  # the "Learned in FT" set of the only task
    spec = plan.fine_tunes(prof, prof.task("mnli"), plan.CONVERGE)[0]
    train = {e["prompt"] for e in pipeline.train_examples(prof, spec)}
    validation = pipeline.validation_examples(prof, spec)
    assert len(validation) == 16 and not train & {e["prompt"] for e in validation}  # disjoint from the sample
    pipeline.run_base(prof, CKPT, progress=False)
    pipeline.run_sft(prof, CKPT, "mnli", progress=False)
    (result,) = pipeline.run_converge(prof, CKPT, progress=False).to_dict("records")
    assert result["status"] == "ran" and result["records"] == 1 and result["steps"] <= 4
    assert pipeline.store(prof, plan.CONVERGE).root == paths.RESULTS_ROOT / prof.name / "converge" / "records"
    frame = pipeline.load_frame(prof, items=True, kinds=("base", "sft", plan.CONVERGE))
    converged = frame[frame["schedule"] == plan.CONVERGE]
    assert list(converged["eval_set"]) == ["mnli_matched"] and set(frame["schedule"]) == {"fixed", plan.CONVERGE}
    assert len(stats.select(frame, prof, "full", plan.CONVERGE).query("fine_tune == 'mnli'")) == 1
    assert len(pipeline.load_frame(prof)) == len(frame) - 1  # the default frame: the paper's fixed schedule only
    record = json.loads(plan.training_path(prof, CKPT, spec).read_text())
    assert record["schedule"] == plan.CONVERGE and record["total_steps"] == 4 and record["validation"]
    assert record["identity"]["fine_tune"]["schedule"]["settings"]["patience"] == 1
    training = pipeline.training_frame(prof)
    assert sorted(training["schedule"]) == ["converge", "fixed"]
    assert pipeline.run_converge(dataclasses.replace(prof, converge=False), CKPT).empty  # switched off
    # its figure: the converged model's in-domain score beside the fixed schedule's, at the rung it ran
    import matplotlib.pyplot as plt

    from amuro_utils.figures import plots

    fixed, converged_study = pipeline.beyond_studies(prof, pipeline.claim_inputs(prof))
    fig = plots.fig_converge(fixed, converged_study, prof)
    lines = {line.get_label(): line.get_ydata() for line in fig.axes[0].get_lines()}
    rung = list(prof.ckpts).index(CKPT)
    # the spine's point of a cell: the mean of its item scores (a record's `performance` is the paper's CI midpoint)
    assert lines["fine-tuned to convergence"][rung] == pytest.approx(float(np.mean(converged["scores"].iloc[0])))
    tuned = frame[(frame["schedule"] == "fixed") & (frame["fine_tune"] == "mnli") & (frame["format"] == "default")]
    assert lines["fine-tuned, fixed epochs (the paper's)"][rung] == \
        pytest.approx(float(np.mean(tuned[tuned["eval_set"] == "mnli_matched"]["scores"].iloc[0])))
    plt.close(fig)


def test_the_scorecard_holds_the_questions_beyond_the_paper_under_the_identity_of_what_they_read(study):
    prof = study
    for ckpt in ("step1000", CKPT):
        pipeline.run_base(prof, ckpt, progress=False)
        pipeline.run_sft(prof, ckpt, "mnli", progress=False)
        pipeline.probes(prof, ckpt)
    inputs = pipeline.claim_inputs(prof)
    wanted = pipeline.scorecard_identity(prof, inputs)
    assert set(wanted) >= {"records", "training", "dynamics", "probes"} and len(wanted["dynamics"]) == 2
    written = pipeline.scorecard(prof, inputs)
    claims_md = next(p for p in written if p.name == "claims.md").read_text()
    beyond_md = next(p for p in written if p.name == "beyond.md").read_text()
    assert beyond_md.startswith("## Beyond the paper") and claims_md.endswith(beyond_md)
    table = pipeline.stored_beyond_table(prof, inputs)
    assert {"D1", "P1", "R-zero_step_loss-gain", "C-A1a"} <= set(table["id"])
    assert table.set_index("id").loc["C-A1a", "verdict"] == "not measurable"  # the switch is off
    run = pipeline.beyond_run(prof)
    assert "| P1 |" in run.shows("P") and "Ranked by |ρ|" in run.shows("R")
