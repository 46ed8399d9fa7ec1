"""A run you can watch: the progress line a job's notebook writes and the runner's line with its ETA."""

from __future__ import annotations

import time

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
