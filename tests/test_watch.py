"""A run you can watch: the progress line a job's notebook writes and the runner's line with its ETA."""

from __future__ import annotations

import time

import pytest

from amuro_utils import cost, nbtools, plan, runner
from amuro_utils.profiles import get_profile


def test_a_progress_line_is_written_whole_and_read_back(tmp_path, monkeypatch):
    path = tmp_path / "job.progress.json"
    nbtools.progress("nothing asked")  # no runner: a no-op
    assert not path.exists()
    monkeypatch.setenv(nbtools.PROGRESS_ENV, str(path))
    nbtools.progress("fine-tuning mnli", ckpt="step424000", task="mnli")
    event = nbtools.read_progress(path)
    assert (event["what"], event["ckpt"], event["task"]) == ("fine-tuning mnli", "step424000", "mnli")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left beside it


def test_the_eta_follows_the_cost_models_timeline_and_the_observed_pace(monkeypatch):
    profile = get_profile("tiny")
    job = next(j for j in plan.notebook_jobs(profile) if j.notebook == "sft")
    timeline = [(("ladder",), 100.0), (("step1000", "mnli"), 50.0), (("rest",), 10.0)]
    monkeypatch.setattr(cost, "job_timeline", lambda profile, job: timeline)
    watch = runner._Watch(profile, job)
    first = watch.line({"what": "pre-training the tiny ladder (step 1/300)", "unit": "ladder", "fraction": 0.0})
    assert first == "   sft: pre-training the tiny ladder (step 1/300), ETA 2 min 40 s"  # nothing done: the model's
    assert watch.line({"what": "pre-training the tiny ladder (step 1/300)", "unit": "ladder"}) is None  # unchanged
    watch.start = time.perf_counter() - 100  # half the ladder took 100 s where the model said 50: twice as slow
    half = watch.line({"what": "pre-training the tiny ladder (step 150/300)", "unit": "ladder", "fraction": 0.5})
    assert half.endswith("ETA 3 min 40 s")  # (160 - 50) s of the model's work left, at twice its pace
    tuned = watch.line({"what": "fine-tuning mnli", "ckpt": "step1000", "task": "mnli"})
    rung = f"(rung 1/{len(profile.ckpts)})"
    assert tuned.startswith(f"   sft: fine-tuning mnli at step1000 {rung}, ETA ")
    assert watch.line({"what": "a step the model does not price", "ckpt": "nowhere"}) == \
        "   sft: a step the model does not price at nowhere"  # no ETA where the plan has no such unit


# ---------------------------------------------------------------------------------------------------------------
# a plan that cannot run here is refused before any job starts


def test_a_gpu_profile_is_refused_before_any_job_starts_on_a_machine_without_a_gpu(offline_olmo_hub, monkeypatch,
                                                                                   tmp_path, capsys):
    import dataclasses

    from amuro_utils import paths, pipeline
    from amuro_utils.profiles import PAPER

    paper = dataclasses.replace(PAPER, ckpts=("step1000", "main"))  # two rungs: the plan's states are quick to read
    monkeypatch.setattr(paths, "RESULTS_ROOT", tmp_path / "results")
    monkeypatch.delenv(cost.FORCE_CPU_ENV, raising=False)
    monkeypatch.setattr(cost, "_gpu_memory", lambda: 0)
    started = []
    monkeypatch.setattr(runner, "run_job", lambda profile, job, state=None: started.append(job.id) or False)
    assert runner.run(paper) == 2 and started == []
    message = ("profile 'paper' needs a CUDA GPU and none is visible. Run it on a GPU machine, use `--profile tiny` "
               "for the offline CPU demo, or set AMURO_FORCE_CPU=1 to force the CPU (debugging only: OLMo-1B "
               "fine-tuning on a CPU takes days).")
    assert capsys.readouterr().err == f"!! {message}\n"
    with pytest.raises(RuntimeError) as raised:  # the same message a notebook's set-up raises
        pipeline.setup("paper")
    assert str(raised.value) == message
    # with a GPU, or the CPU forced for debugging, the plan goes on to its first job
    monkeypatch.setattr(cost, "_gpu_memory", lambda: 80 * 10**9)
    assert runner.run(paper) == 1 and started == ["01_pretrain_probe_step1000"]
    monkeypatch.setattr(cost, "_gpu_memory", lambda: 0)
    monkeypatch.setenv(cost.FORCE_CPU_ENV, "1")
    assert runner.run(paper) == 1 and started[-1] == "01_pretrain_probe_step1000"
    assert cost.gpu_refusal(get_profile("tiny"), gpu_memory=0) is None  # a CPU profile needs none
    assert cost.gpu_refusal(get_profile("paper-reference"), gpu_memory=0) is None  # released numbers: no model
