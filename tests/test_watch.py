"""A run you can watch: the progress line a job's notebook writes and the runner's line with its ETA."""

from __future__ import annotations

import time

import pytest

from amuro_utils.config import reporter
from amuro_utils.config.profiles import get_profile
from amuro_utils.run import runner
from amuro_utils.study import cost, jobs as model_jobs, plan


def test_every_progress_event_is_logged_whole_with_its_time(tmp_path, monkeypatch):
    path = tmp_path / "job.progress.jsonl"
    reporter.progress("nothing asked")  # no runner: a no-op
    assert not path.exists()
    monkeypatch.setenv(reporter.PROGRESS_ENV, str(path))
    reporter.progress("fine-tuning mnli", ckpt="step424000", task="mnli", run=0, phase="train")
    reporter.progress("evaluating the mnli model", ckpt="step424000", task="mnli", run=0, phase="evaluate")
    events = reporter.read_progress(path)
    assert [(e["what"], e["ckpt"], e["phase"]) for e in events] == [
        ("fine-tuning mnli", "step424000", "train"), ("evaluating the mnli model", "step424000", "evaluate")]
    assert events[0]["t"] <= events[1]["t"] and [p.name for p in tmp_path.iterdir()] == [path.name]
    with open(path, "a") as log:  # a line cut short by a kill (or being written) is left out, the rest read
        log.write('{"what": "evaluat')
    assert reporter.read_progress(path) == events and reporter.read_progress(tmp_path / "none") == []


def test_the_eta_follows_the_cost_models_timeline_and_the_observed_pace(monkeypatch):
    profile = get_profile("tiny")
    job = next(j for j in plan.notebook_jobs(profile) if j.notebook == "sft")
    timeline = [(("ladder",), 100.0), (("step1000", "mnli", 0, "train"), 50.0), (("rest",), 10.0)]
    monkeypatch.setattr(cost, "job_timeline", lambda profile, job: timeline)
    watch = runner._Watch(profile, job)
    first = watch.line({"what": "pre-training the tiny ladder (step 1/300)", "unit": "ladder", "fraction": 0.0},
                       now=watch.start)
    assert first == "   sft: pre-training the tiny ladder (step 1/300), ETA 2 min 40 s"  # nothing done: the model's
    assert watch.line({"what": "pre-training the tiny ladder (step 1/300)", "unit": "ladder"}) is None  # unchanged
    # half the ladder took 100 s where the model said 50: (160 − 50) s of the model's work left, at the measured pace
    # blended with the model's (a tenth of the job, 16 s, at pace 1): 110 × (100 + 16) / (50 + 16) = 193 s
    half = watch.line({"what": "pre-training the tiny ladder (step 150/300)", "unit": "ladder", "fraction": 0.5},
                      now=watch.start + 100)
    assert half.endswith("ETA 3 min 13 s")
    tuned = watch.line({"what": "fine-tuning mnli", "ckpt": "step1000", "task": "mnli", "run": 0, "phase": "train"},
                       now=watch.start + 200)
    rung = f"(rung 1/{len(profile.ckpts)})"
    assert tuned == f"   sft: fine-tuning mnli at step1000 {rung}, ETA 1 min 52 s"  # 60 × (200 + 16) / (100 + 16)
    assert watch.line({"what": "a step the model does not price", "ckpt": "nowhere"}) == \
        "   sft: a step the model does not price at nowhere"  # no ETA where the plan has no such unit
    # an event without run and phase (a notebook of an earlier version) is its unit's first run, training
    assert runner._Watch.unit({"ckpt": "main", "task": "mnli"}) == ("main", "mnli", 0, "train")
    assert runner._Watch.unit({"ckpt": "main", "task": "base"}) == ("main", "base", 0, "evaluate")
    assert runner._Watch.unit({"ckpt": "main", "unit": "probes"}) == ("probes", "main")


def test_the_timeline_is_in_the_order_the_notebooks_run_their_work(monkeypatch):
    from types import SimpleNamespace

    from amuro_utils import pipeline

    profile = get_profile("tiny")
    jobs = {nb.notebook: nb for nb in plan.notebook_jobs(profile)}
    # the order run_sft fine-tunes in: checkpoint by checkpoint, each checkpoint's tasks (the plan lists task by task)
    ran = []
    monkeypatch.setattr(model_jobs, "checkpoints", lambda prof, ckpt="all": [SimpleNamespace(label=c)
                                                                           for c in prof.ckpts])
    monkeypatch.setattr(model_jobs, "_fine_tune_and_evaluate",
                        lambda prof, job, point, progress: ran.append((job.ckpt, job.task)) or [])
    pipeline.run_sft(profile, progress=False)
    timeline = cost.job_timeline(profile, jobs["sft"])
    trained = [key[:2] for key, _ in timeline if key[-1] == "train"]
    assert trained == ran and len(ran) == len(profile.ckpts) * len(profile.tasks)
    assert [key[-1] for key, _ in timeline[:4]] == ["train", "evaluate", "train", "evaluate"]
    assert ran[:2] == [("step1000", "mnli"), ("step1000", "qqp")]  # not step1000 then step18000 of mnli
    # pretrain_probe: the ladder, every checkpoint's evaluation, the sensitivity probe, then the linear probes
    keys = [key for key, _ in cost.job_timeline(profile, jobs["pretrain_probe"])]
    n = len(profile.ckpts)
    assert keys == [("ladder",), *[(c, "base", 0, "evaluate") for c in profile.ckpts], ("sensitivity",),
                    *[("probes", c) for c in profile.ckpts], ("rest",)] and n == 8
    for nb in jobs.values():  # the timeline prices the whole job: its units sum to the plan's estimate
        estimate = cost.cpu_estimate(profile).set_index("job").loc[nb.id, "seconds"]
        assert sum(s for _, s in cost.job_timeline(profile, nb)) == pytest.approx(estimate)


# ---------------------------------------------------------------------------------------------------------------
# a plan that cannot run here is refused before any job starts


def test_a_gpu_profile_is_refused_before_any_job_starts_on_a_machine_without_a_gpu(offline_olmo_hub, monkeypatch,
                                                                                   tmp_path, capsys):
    import dataclasses

    from amuro_utils import pipeline
    from amuro_utils.config import paths
    from amuro_utils.config.profiles import PAPER

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


def test_a_jobs_start_and_its_figures_and_verdicts_are_measured_from_its_progress_log(tmp_path, monkeypatch):
    import json

    log = tmp_path / "03_sft.progress.jsonl"
    events = [{"what": "job started", "t": 100.0},
              {"what": "fine-tuning mnli", "ckpt": "step1000", "task": "mnli", "run": 0, "phase": "train", "t": 104.5},
              {"what": "drawing the figures", "unit": "rest", "t": 180.0},
              {"what": "judging the claims", "unit": "rest", "t": 190.0}, {"what": "job finished", "t": 201.0}]
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert cost._job_ends(log) == (4.5, 21.0)  # kernel start to first event; first figure to the end
    log.write_text("".join(json.dumps(e) + "\n" for e in events[:-1]))
    assert cost._job_ends(log) is None  # a job killed before its end measures nothing
    # calibrated, they come first and last on the job's timeline, which still prices the whole job
    rates = json.loads(cost.CPU_THROUGHPUT_FILE.read_text())
    rates["overhead"]["sft"].update(start_s=4.5, tail_s=21.0)
    path = tmp_path / "cpu_throughput.json"
    path.write_text(json.dumps(rates))
    monkeypatch.setattr(cost, "CPU_THROUGHPUT_FILE", path)
    profile = get_profile("tiny")
    sft = next(nb for nb in plan.notebook_jobs(profile) if nb.notebook == "sft")
    timeline = cost.job_timeline(profile, sft)
    assert timeline[0] == (("start",), 4.5) and timeline[-1] == (("rest",), pytest.approx(21.0))
    assert sum(s for _, s in timeline) == pytest.approx(cost.cpu_estimate(profile).set_index("job").loc[sft.id,
                                                                                                      "seconds"])


# ---------------------------------------------------------------------------------------------------------------
# the ETA on a recorded job


def _replay(recording: dict, profile) -> list[tuple[float, float, float]]:
    """(time into the job, the ETA the runner prints, the time the job really still took) of every line, replaying
    a recorded progress log against the timeline the cost model gave that job."""
    job = next(nb for nb in plan.notebook_jobs(profile) if nb.id == recording["job"])
    timeline = [(tuple(unit), seconds) for unit, seconds in recording["timeline"]]
    events = recording["events"]
    watch = runner._Watch(profile, job)
    watch.timeline, watch.total, watch.start = timeline, sum(s for _, s in timeline), 0.0
    watch.kind_total = {}
    for unit, seconds in timeline:
        watch.kind_total[watch.kind(unit)] = watch.kind_total.get(watch.kind(unit), 0.0) + seconds
    end, lines = events[-1]["t"], []
    for event in events[1:-1]:  # between the runner's "job started" and "job finished"
        if watch.line(event, now=event["t"]) is not None:
            lines.append((event["t"], watch.eta(event, now=event["t"]), end - event["t"]))
    return lines


def test_the_eta_of_a_recorded_job_falls_steadily_and_tells_the_time():
    import json
    from pathlib import Path

    recording = json.loads((Path(__file__).parent / "data" / "progress_tiny_sft.json").read_text())
    lines = _replay(recording, get_profile("tiny"))
    end = recording["events"][-1]["t"]
    assert len(lines) == 66 and end == pytest.approx(3323.9, abs=0.1)  # 32 fine-tunes, figures, verdicts
    # Steady: once a training and an evaluation have been timed, no line raises the ETA by more than a quarter of the
    # line before (it rose at most 12 % here, as the machine slowed); before this fix the same log made it jump up
    # 5- to 15-fold whenever the next task's first rung came up (the timeline was task by task, the run rung by rung)
    steps = [(earlier, later) for (_, earlier, _), (_, later, _) in zip(lines[2:], lines[3:])]
    assert all(later <= 1.25 * earlier for earlier, later in steps)
    assert max(later / earlier for earlier, later in steps if earlier > 0) == pytest.approx(1.12, abs=0.01)
    # Tells the time: within ±25 % of what the job really still took, on every line from a third of the job to nine
    # tenths of it. Before a third, the machine kept slowing (15-fold its calibration by then: no pace measured so
    # far could foresee it); in the last tenth the figures and verdicts are not in this calibration's timeline
    # (its rest is 0 s; a calibration from progress logs measures them).
    middle = [(t, eta / left - 1) for t, eta, left in lines if end / 3 <= t <= 0.9 * end]
    assert len(middle) == 35 and all(abs(error) <= 0.25 for _, error in middle), middle
