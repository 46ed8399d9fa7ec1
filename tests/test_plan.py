"""The study a profile describes: jobs, evaluation plans, fine-tunes, papermill executions and record identities."""

from __future__ import annotations

from dataclasses import replace

import pytest

from amuro_utils.config.profiles import PAPER, PAPER_REFERENCE, TINY
from amuro_utils.store import identity
from amuro_utils.study import plan, stages


def test_jobs_cover_the_study():
    jobs = plan.jobs(PAPER)
    assert len(jobs) == 8 + 4 * 8 + 9  # instruction tuning also at step550000 (the overtraining pair)
    assert [j.notebook for j in jobs[:8]] == ["pretrain_probe"] * 8
    assert jobs[0].evals == tuple(plan.base_plan(PAPER)) and jobs[0].fine_tunes == ()
    xsum = next(j for j in jobs if j.task == "xsum" and j.ckpt == "step424000")
    (run,) = xsum.fine_tunes
    assert (run.train_set, run.n_train, run.train.lr, run.seed, run.method) == ("xsum_train", 6000, 2e-7, 42, "full")
    assert xsum.evals == tuple(plan.sft_plan(PAPER, PAPER.task("xsum")))
    tulu = jobs[-1]
    assert (tulu.notebook, tulu.ckpt, tulu.task, tulu.fine_tunes[0].fraction, tulu.fine_tunes[0].train.epochs,
            tulu.fine_tunes[0].kind) == ("instruction_tuning", "main", "tulu", 0.05, 5, "chat")
    assert plan.jobs(PAPER_REFERENCE) == []


def test_seeds_make_one_fine_tune_each_and_bad_seeds_are_refused():
    seeded = replace(TINY, seeds=(1, 2, 3))
    runs = plan.fine_tunes(seeded, seeded.task("mnli"))
    assert [r.seed for r in runs] == [1, 2, 3] and {r.train.lr for r in runs} == {TINY.task("mnli").train.lr}
    for bad in ((), (1, 1)):
        with pytest.raises(ValueError, match="at least one seed and no duplicates"):
            plan.fine_tunes(replace(TINY, seeds=bad), TINY.task("mnli"))
    for bad in (("adapter",), ("full", "full"), ()):
        with pytest.raises(ValueError, match=r"distinct fine-tuning methods among \('full', 'lora'\)"):
            plan.fine_tunes(replace(TINY, methods=bad), TINY.task("mnli"))
    both = plan.fine_tunes(replace(TINY, methods=("full", "lora"), seeds=(1, 2)), TINY.task("mnli"))
    assert [(r.method, r.seed, r.lora is not None) for r in both] == [
        ("full", 1, False), ("full", 2, False), ("lora", 1, True), ("lora", 2, True)]


def test_record_requests_carry_the_settings_that_decide_each_record():
    job = plan.find_job(TINY, "sft", "main", "mnli")
    requests = plan.record_requests(job, identity.model_identity("amuro-local/tiny-olmo", "c0ffee"))
    assert [k["eval_set"] for k, _ in requests] == [s for s, _ in job.evals]
    key, wanted = requests[0]
    assert (key["fine_tune"], key["method"], key["seed"]) == ("mnli", "full", 42)
    assert wanted["model"] == {"repo": "amuro-local/tiny-olmo", "commit": "c0ffee"}
    assert wanted["fine_tune"]["settings"]["lr"] == TINY.task("mnli").train.lr
    assert wanted["eval"]["items"] == {"limit": TINY.eval_limit, "shots": 4}
    assert "max_new_tokens" not in wanted["eval"]["scoring"]  # classification does not generate
    base = plan.record_requests(plan.find_job(TINY, "pretrain_probe", "main", "base"),
                                identity.model_identity("amuro-local/tiny-olmo", "c0ffee"))
    assert all(w["fine_tune"] is None and k["seed"] is None for k, w in base)


def test_notebook_jobs_follow_the_run_order():
    ids = [j.id for j in plan.notebook_jobs(TINY)]
    assert ids == [f"{index:02d}_{notebook}" for index, notebook in enumerate(stages.RUN_ORDER, start=1)]
    assert ids[0] == "01_pretrain_probe"
    paper = plan.notebook_jobs(PAPER)
    assert paper[0].id == "01_pretrain_probe_step1000" and paper[0].model_jobs[0].ckpt == "step1000"
    figures = [j for j in paper if j.id.endswith("_figures")]
    assert [j.notebook for j in figures] == ["pretrain_probe", "instruction_tuning", "sft"]
    assert all(not j.model_jobs and j.reads for j in figures)
