"""SLURM job arrays: the generated scripts for the paper profile, and the smoke study run through them on a real
one-node SLURM cluster (../shared/slurm/local-slurm.sh), or, where none can start, task by task by hand."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import nbformat
import pytest

from amuro_utils.config import paths
from amuro_utils.config.profiles import PAPER, PAPER_REFERENCE, SMOKE
from amuro_utils.run import runner, slurm
from amuro_utils.study import cost, plan

REPO = Path(__file__).resolve().parents[1]
LOCAL_SLURM = REPO / ".." / "shared" / "slurm" / "local-slurm.sh"
GiB = 2**30


@pytest.fixture
def results_root(tmp_path, monkeypatch):
    """A throw-away results store: the generator reads its job markers, the scripts export it. The paper ladder's
    checkpoints cannot be resolved offline here, so a job's settings identity is stood in by its id (runner tests
    cover the real identities); a marker carrying it makes the job done."""
    root = tmp_path / "results"
    monkeypatch.setattr(paths, "RESULTS_ROOT", root)
    monkeypatch.setattr(runner, "job_identity", lambda profile, job, cache=None: {"job": job.id})
    return root


def _mark_done(root: Path, profile: str, job_ids) -> None:
    folder = root / profile / "jobs"
    folder.mkdir(parents=True, exist_ok=True)
    for job_id in job_ids:
        (folder / f"{job_id}.done").write_text(json.dumps({"identity": {"job": job_id}, "seconds": 1.0}))


def _per_ckpt(job) -> bool:
    """A job that runs one checkpoint's model work (jobs_per_ckpt), not a notebook's figures."""
    return bool(job.model_jobs) and not job.reads


def _directives(script: Path) -> list[str]:
    return [line[len("#SBATCH "):] for line in script.read_text().splitlines() if line.startswith("#SBATCH ")]


def _tasks(out: Path, stage: str) -> list[list[str]]:
    return [line.split("\t") for line in (out / "tasks" / f"{stage}.tsv").read_text().splitlines()]


def _dry_run_lines(profile) -> list[str]:
    """The papermill commands of `run_all.sh --dry-run`, without their GPU-hour comments."""
    return [line.split("  # ")[0] for line in runner.dry_run(profile).splitlines() if line.startswith("papermill ")]


def _dependencies(submit_sh: Path) -> dict[str, list[str]]:
    """stage -> the stages its sbatch call waits for (afterok), read from submit.sh."""
    out = {}
    for match in re.finditer(r"^id_(\w+)=\$\(sbatch --parsable(?: --dependency=afterok:(\S+))? (\w+)\.sbatch\)",
                             submit_sh.read_text(), re.M):
        stage, deps, script = match.groups()
        assert stage == script
        out[stage] = re.findall(r"\$\{id_(\w+)\}", deps or "")
    return out


# ---------------------------------------------------------------------------------------------------------------
# the generated scripts (no cluster needed)


def test_paper_profile_one_array_per_stage_with_the_dry_run_commands(results_root, tmp_path):
    out = tmp_path / "slurm"
    built = slurm.write_scripts(PAPER, out)
    assert [(s.name, len(s.jobs)) for s in built] == [
        ("pretrain_probe", 8), ("instruction_tuning", 9), ("sft", 32), ("figures", 3), ("analysis", 4)]
    assert sorted(p.name for p in out.glob("*.sbatch")) == sorted(f"{s.name}.sbatch" for s in built)
    every = plan.notebook_jobs(PAPER)
    assert sum(len(s.jobs) for s in built) == len(every) == 56  # each job in exactly one array
    assert {j.id for s in built for j in s.jobs} == {j.id for j in every}
    dry_run = _dry_run_lines(PAPER)
    listed = []
    for stage in built:
        script = out / f"{stage.name}.sbatch"
        assert f"--array=0-{len(stage.jobs) - 1}" in _directives(script)
        # task i of the array = line i+1 of its tasks file = the job plan.py lists, in run order
        assert _tasks(out, stage.name) == [[j.id, j.notebook, j.papermill_args()] for j in stage.jobs]
        comments = re.findall(r"^#   task (\d+): (.*)$", script.read_text(), re.M)
        assert [int(i) for i, _ in comments] == list(range(len(stage.jobs)))
        listed += [command for _, command in comments]
    assert sorted(listed) == sorted(dry_run)  # the same 56 papermill commands as --dry-run
    sft = _tasks(out, "sft")
    assert sft[11] == ["03_sft_step424000_paws", "sft", "-p profile paper -p ckpt step424000 -p task paws "
                                                        "-p make_figures False"]
    assert [t[0] for t in _tasks(out, "figures")] == ["01_pretrain_probe_figures", "02_instruction_tuning_figures",
                                                      "03_sft_figures"]
    assert [t[0] for t in _tasks(out, "analysis")] == ["04_format", "05_transfer", "06_ood", "07_beyond"]


def test_paper_dependency_chain_puts_the_figure_jobs_last(results_root, tmp_path):
    out = tmp_path / "slurm"
    slurm.write_scripts(PAPER, out)
    # a hub ladder: the three model arrays run at once; Table 5 (sft figures) reads instruction-tuned records;
    # format/transfer/ood read base and fine-tuned records, and ood writes the whole scorecard (instruction-tuned too)
    assert _dependencies(out / "submit.sh") == {
        "pretrain_probe": [], "instruction_tuning": [], "sft": [],
        "figures": ["pretrain_probe", "instruction_tuning", "sft"],
        "analysis": ["pretrain_probe", "instruction_tuning", "sft"]}
    text = (out / "submit.sh").read_text()
    assert text.index("sft.sbatch") < text.index("figures.sbatch") < text.index("analysis.sbatch")


def test_smoke_profile_local_ladder_and_whole_notebook_jobs(results_root, tmp_path):
    out = tmp_path / "slurm"
    built = slurm.write_scripts(SMOKE, out)
    assert [(s.name, [j.id for j in s.jobs]) for s in built] == [
        ("pretrain_probe", ["01_pretrain_probe"]), ("instruction_tuning", ["02_instruction_tuning"]),
        ("sft", ["03_sft"]), ("analysis", ["04_format", "05_transfer", "06_ood", "07_beyond"])]
    # pretrain_probe builds the ladder everything loads; the sft job also draws Table 5 from instruction-tuned records
    assert _dependencies(out / "submit.sh") == {
        "pretrain_probe": [], "instruction_tuning": ["pretrain_probe"], "sft": ["pretrain_probe", "instruction_tuning"],
        "analysis": ["pretrain_probe", "instruction_tuning", "sft"]}
    for stage in built:
        directives = _directives(out / f"{stage.name}.sbatch")
        assert not [d for d in directives if d.startswith("--gres")]  # a CPU profile asks for no GPU
        assert f"--time={slurm._slurm_time(slurm.UNESTIMATED_S)}" in directives  # no GPU-hour model for a CPU ladder
        assert "--mem=6G" in directives  # 1.5 × 4 GiB per process


def test_profile_variants_split_or_whole_notebooks(results_root, tmp_path):
    # a local ladder split per checkpoint: the first pretrain_probe task builds the ladder, so one task at a time
    split = replace(SMOKE, jobs_per_ckpt=True)
    built = {s.name: s for s in slurm.write_scripts(split, tmp_path / "split", jobs=plan.notebook_jobs(split))}
    assert {n: (len(s.jobs), s.after) for n, s in built.items()} == {
        "pretrain_probe": (2, ()), "instruction_tuning": (2, ("pretrain_probe",)), "sft": (8, ("pretrain_probe",)),
        "figures": (3, ("pretrain_probe", "instruction_tuning", "sft")),
        "analysis": (4, ("pretrain_probe", "instruction_tuning", "sft"))}
    assert "--array=0-1%1" in _directives(tmp_path / "split" / "pretrain_probe.sbatch")
    assert "--array=0-7" in _directives(tmp_path / "split" / "sft.sbatch")
    # a GPU profile run one job per notebook: each job runs its notebook's whole ladder in turn
    whole = replace(PAPER, jobs_per_ckpt=False)
    built = {s.name: s for s in slurm.write_scripts(whole, tmp_path / "whole", jobs=plan.notebook_jobs(whole))}
    assert {n: (len(s.jobs), s.after) for n, s in built.items()} == {
        "pretrain_probe": (1, ()), "instruction_tuning": (1, ("pretrain_probe",)),
        "sft": (1, ("pretrain_probe", "instruction_tuning")),
        "analysis": (4, ("pretrain_probe", "instruction_tuning", "sft"))}
    throughput = cost.load_throughput()
    probes = [j for j in plan.jobs(whole) if j.notebook == "pretrain_probe"]
    hours = sum(cost.estimate(j, throughput) for j in probes)
    assert built["pretrain_probe"].time_s == math.ceil((2.0 * hours * 3600 + 1800 * len(probes)) / 900) * 900


def test_resource_lines_come_from_the_cost_plan(results_root, tmp_path):
    out = tmp_path / "slurm"
    built = {s.name: s for s in slurm.write_scripts(PAPER, out)}
    throughput = cost.load_throughput()
    for name in ("pretrain_probe", "instruction_tuning", "sft"):
        jobs = [j.model_jobs[0] for j in built[name].jobs]
        longest = max(cost.estimate(j, throughput) for j in jobs)
        seconds = math.ceil((2.0 * longest * 3600 + 1800) / 900) * 900  # × headroom + set-up, whole quarter hours
        need = cost.requirements(PAPER, jobs[0], throughput)
        memory = math.ceil(1.5 * (4 * GiB + need["disk_bytes"]) / GiB)
        directives = _directives(out / f"{name}.sbatch")
        assert "--gres=gpu:1" in directives
        assert f"--time={seconds // 3600:02d}:{seconds % 3600 // 60:02d}:00" in directives
        assert f"--mem={memory}G" in directives
        assert f"{need['gpu_memory_bytes'] / 1e9:.1f} GB of GPU memory" in (out / f"{name}.sbatch").read_text()
    # the numbers themselves, for the record: longest sft task (xsum, with its evaluations along fine-tuning and the
    # generation sets' teacher-forced pass for their continuous reading) ≈ 1.46 GPU-hours → 3.5 h
    assert "--time=03:30:00" in _directives(out / "sft.sbatch")
    assert "--mem=16G" in _directives(out / "sft.sbatch") and "--mem=13G" in _directives(out / "pretrain_probe.sbatch")
    assert "--gres=gpu:1" in _directives(out / "figures.sbatch")  # ckpt=all jobs run what they find missing
    analysis = out / "analysis.sbatch"
    assert not [d for d in _directives(analysis) if d.startswith("--gres")]
    assert "export AMURO_FORCE_CPU=1" in analysis.read_text()  # format/transfer/ood load no model
    assert "AMURO_FORCE_CPU" not in (out / "figures.sbatch").read_text()
    assert slurm._slurm_time(30 * 3600 + 15 * 60) == "1-06:15:00"


def test_partition_account_and_options_pass_through_verbatim_after_the_generated_lines(results_root, tmp_path):
    out = tmp_path / "slurm"
    options = ["--qos=no-such-qos", "--bogus-option=3", "--time=12:00:00", "--gres=gpu:a100:1"]
    slurm.write_scripts(PAPER, out, partition="no-such-partition", account="acct-42", sbatch_options=options)
    for script in out.glob("*.sbatch"):
        directives = _directives(script)
        tail = ["--partition=no-such-partition", "--account=acct-42", *options]
        assert directives[-len(tail):] == tail  # last: sbatch keeps the last of a repeated option
        generated = [d for d in directives if d.startswith("--time=")]
        assert generated[-1] == "--time=12:00:00" and len(generated) == 2
    with pytest.raises(ValueError, match="one non-empty line"):
        slurm.write_scripts(PAPER, out, sbatch_options=["--qos=a\nrm -rf /"])
    with pytest.raises(ValueError, match="partition"):
        slurm.write_scripts(PAPER, out, partition="")


def test_half_finished_study_gets_only_its_unfinished_jobs_and_no_empty_array(results_root, tmp_path):
    out = tmp_path / "slurm"
    every = plan.notebook_jobs(PAPER)
    pretrain = [j.id for j in every if j.notebook == "pretrain_probe"]
    sft_done = [j.id for j in every if j.notebook == "sft" and _per_ckpt(j)][:5]
    _mark_done(results_root, "paper", pretrain + sft_done)
    assert [j.id for j in slurm.unfinished_jobs(PAPER)] == [j.id for j in every
                                                            if j.id not in set(pretrain + sft_done)]
    built = slurm.write_scripts(PAPER, out)
    assert [(s.name, len(s.jobs)) for s in built] == [
        ("instruction_tuning", 9), ("sft", 27), ("figures", 2), ("analysis", 4)]
    assert [t[0] for t in _tasks(out, "sft")] == [j.id for j in every if j.notebook == "sft" and _per_ckpt(j)
                                                  and j.id not in sft_done]
    assert not (out / "pretrain_probe.sbatch").exists() and "id_pretrain_probe" not in (out / "submit.sh").read_text()
    assert _dependencies(out / "submit.sh") == {"instruction_tuning": [], "sft": [],
                                                "figures": ["instruction_tuning", "sft"],
                                                "analysis": ["instruction_tuning", "sft"]}
    # every model job finished: the figure jobs alone, waiting for nothing
    _mark_done(results_root, "paper", [j.id for j in every if _per_ckpt(j)])
    built = slurm.write_scripts(PAPER, out)
    assert [(s.name, s.after) for s in built] == [("figures", ()), ("analysis", ())]
    assert sorted(p.name for p in out.glob("*.sbatch")) == ["analysis.sbatch", "figures.sbatch"]  # stale ones removed
    # everything finished: no array at all
    _mark_done(results_root, "paper", [j.id for j in every])
    assert slurm.write_scripts(PAPER, out) == [] and not list(out.glob("*.sbatch"))
    assert "nothing to submit" in (out / "submit.sh").read_text()


def test_paper_reference_runs_no_model_so_one_cpu_array(results_root, tmp_path):
    built = slurm.write_scripts(PAPER_REFERENCE, tmp_path / "slurm")
    assert [(s.name, len(s.jobs), s.after, s.gpus, s.env) for s in built] == [("analysis", 7, (), 0, ())]


def test_reads_covers_every_notebook():
    assert set(slurm.reads()) == set(slurm.run_order())


def test_run_all_slurm_option_writes_the_scripts(tmp_path):
    env = {**os.environ, "AMURO_RESULTS_DIR": str(tmp_path / "results")}
    start = time.perf_counter()
    proc = subprocess.run(["./run_all.sh", "--profile", "paper", "--slurm", str(tmp_path / "arrays"),
                           "--partition", "gpu", "--sbatch-option", "--qos=high"], cwd=REPO, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-2000:]
    print(f"run_all.sh --slurm (paper profile, 5 arrays): {wall:.1f} s")
    assert "sft.sbatch                32 task(s)  gpus 1" in proc.stdout and "submit.sh" in proc.stdout
    assert _directives(tmp_path / "arrays" / "sft.sbatch")[-2:] == ["--partition=gpu", "--qos=high"]
    assert f"export AMURO_RESULTS_DIR={tmp_path / 'results'}" in (tmp_path / "arrays" / "sft.sbatch").read_text()
    bad = subprocess.run(["./run_all.sh", "--profile", "paper", "--partition", "gpu"], cwd=REPO,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--partition only goes with --slurm DIR" in bad.stderr


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without a GPU")
def test_array_task_runs_its_job_and_reports_a_failing_cell(results_root, tmp_path):
    out = tmp_path / "slurm"
    slurm.write_scripts(PAPER, out)
    script = out / "sft.sbatch"
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "31", "AMURO_FORCE_CPU": ""}
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    # task 31 = the last sft job; without a GPU the paper profile stops in its first cell
    assert proc.returncode == 1
    assert "notebook 'sft' failed (job 03_sft_main_socialiqa)" in proc.stderr
    assert "RuntimeError: profile 'paper' needs a CUDA GPU" in proc.stderr
    executed = results_root / "paper" / "notebooks" / "03_sft_main_socialiqa.ipynb"
    params = nbformat.read(str(executed), as_version=4).metadata["papermill"]["parameters"]
    assert params == {"profile": "paper", "ckpt": "main", "task": "socialiqa", "make_figures": False}
    assert not list((results_root / "paper" / "jobs").glob("*.done"))  # a failed job is not marked finished
    wrong = subprocess.run(["bash", str(script)], env={**env, "SLURM_ARRAY_TASK_ID": "32"}, capture_output=True,
                           text=True)
    assert wrong.returncode == 2 and "no task 32" in wrong.stderr and "it has 32: 0..31" in wrong.stderr
    unset = subprocess.run(["bash", str(script)], env={k: v for k, v in os.environ.items()
                                                       if k != "SLURM_ARRAY_TASK_ID"}, capture_output=True, text=True)
    assert unset.returncode != 0 and "submit this script with sbatch" in unset.stderr


# ---------------------------------------------------------------------------------------------------------------
# the smoke study through the generated arrays: on a real SLURM cluster, or task by task where none can start

SMOKE_FIGURES = ["fig2_pretrain_probe", "fig3_sft", "fig3b_gain_bars", "fig4_instruction_tuning", "fig5_format",
                 "fig6_transfer", "fig7_ood", "figS_sensitivity"]
SMOKE_TABLES = ["table5_learned_groups", "mrc_cross_task", "ood_groups", "format_gap"]
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
            "DEADLINE"}
WAIT_S = 3600  # the smoke study takes 2-5 minutes on a quiet 2-core machine; 33 min were measured on a crowded one


@pytest.fixture(scope="module")
def local_slurm():
    """(SLURM_CONF of a one-node cluster started for this module, None) or (None, why none could start)."""
    if not LOCAL_SLURM.exists():
        reason = f"{LOCAL_SLURM.resolve()} not found (CI has it at ../shared relative to the repository)"
        print(f"no SLURM cluster: {reason}")
        yield None, reason
        return
    # munged runs as the munge user: its folder must be reachable by it, which pytest's 0700 tmp folders are not
    folder = Path(tempfile.mkdtemp(prefix="amuro-slurm-"))
    folder.chmod(0o755)
    start = time.perf_counter()
    try:
        proc = subprocess.run(["bash", str(LOCAL_SLURM), "start", str(folder)], capture_output=True, text=True,
                              timeout=600)
        reason = None if proc.returncode == 0 else (
            f"local-slurm.sh start exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-500:]}")
    except subprocess.TimeoutExpired:
        reason = "local-slurm.sh start took over 600 s"
    try:
        if reason:
            print(f"no SLURM cluster: {reason}")
            yield None, reason
        else:
            print(f"one-node SLURM cluster up in {time.perf_counter() - start:.1f} s ({folder})")
            yield folder / "slurm.conf", None
    finally:
        daemons = [int(f.read_text()) for f in folder.glob("*.pid")]
        subprocess.run(["bash", str(LOCAL_SLURM), "stop", str(folder)], capture_output=True)
        deadline = time.time() + 30
        while time.time() < deadline and any(Path(f"/proc/{pid}").exists() for pid in daemons):
            time.sleep(0.2)  # slurmctld saves its state into the folder as it exits
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def smoke_store(results_root, tmp_path, monkeypatch):
    """Results and figures folders of one smoke study (the scripts export them to every task)."""
    monkeypatch.setattr(paths, "FIGURES_ROOT", tmp_path / "figures")
    return results_root, tmp_path / "figures"


def _log_tails(out: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted((out / "logs").glob("*.out")))


def _check_smoke_study(results: Path, figures: Path) -> None:
    """Every job marked finished, executed without an error cell, with the dry-run's parameters; every record,
    figure and table of the study present."""
    from amuro_utils.store.results import Store

    jobs = plan.notebook_jobs(SMOKE)
    assert sorted(p.stem for p in (results / "smoke" / "jobs").glob("*.done")) == sorted(j.id for j in jobs)
    for job in jobs:
        nb = nbformat.read(str(results / "smoke" / "notebooks" / f"{job.id}.ipynb"), as_version=4)
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{job.id}: {errors[:1]}"
        assert nb.metadata["papermill"]["parameters"] == dict(job.params)
    frame = Store(results / "smoke" / "records").frame()
    assert set(frame["ckpt"]) == set(SMOKE.ckpts)
    assert set(frame["fine_tune"]) == {"base", *(run.name for job in plan.jobs(SMOKE) for run in job.fine_tunes)}
    assert frame.groupby("fine_tune")["ckpt"].nunique().eq(len(SMOKE.ckpts)).all()  # every model on both checkpoints
    for stem in SMOKE_FIGURES:
        assert (figures / "smoke" / f"{stem}.png").stat().st_size > 10_000, stem
        assert (figures / "smoke" / f"{stem}.pdf").exists(), stem
    for stem in SMOKE_TABLES:
        assert (figures / "smoke" / f"{stem}.csv").exists(), stem


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def _wait_for_arrays(ids: dict[str, str], counts: dict[str, int], env: dict, out: Path) -> dict:
    """Poll scontrol until every task of every array has ended; (stage, task) -> its last scontrol fields.

    Polled every 2 s because the controller forgets finished jobs after MinJobAge (300 s) and has no accounting
    database here (no sacct)."""
    seen: dict[tuple[str, int], dict] = {}
    deadline = time.time() + WAIT_S
    while True:
        for stage, job_id in ids.items():
            shown = subprocess.run(["scontrol", "-o", "show", "job", job_id], env=env, capture_output=True,
                                   text=True).stdout
            for line in shown.splitlines():
                fields = dict(re.findall(r"(\w+)=(\S*)", line))
                if fields.get("ArrayTaskId", "").isdigit():
                    seen[(stage, int(fields["ArrayTaskId"]))] = fields
                assert fields.get("Reason") != "DependencyNeverSatisfied", (
                    f"{stage} can never start: an array it waits for failed\n{_log_tails(out)}")
        states = {key: seen.get(key, {}).get("JobState", "PENDING")
                  for key in [(s, i) for s, n in counts.items() for i in range(n)]}
        if all(state in TERMINAL for state in states.values()):
            return seen
        assert time.time() < deadline, f"arrays not finished after {WAIT_S} s: {states}\n{_log_tails(out)}"
        time.sleep(2)


@pytest.mark.slow
def test_smoke_study_through_real_slurm_arrays(local_slurm, smoke_store, tmp_path):
    conf, reason = local_slurm
    if conf is None:
        pytest.skip(f"no SLURM cluster could start: {reason}")
    results, figures = smoke_store
    env = {**os.environ, "SLURM_CONF": str(conf), "AMURO_RESULTS_DIR": str(results),
           "AMURO_FIGURES_DIR": str(figures)}

    # bad input: an unknown partition is written untouched and sbatch refuses it; nothing is queued
    bad = tmp_path / "bad"
    slurm.write_scripts(SMOKE, bad, partition="no-such-partition")
    refused = subprocess.run(["bash", str(bad / "submit.sh")], env=env, capture_output=True, text=True)
    assert refused.returncode == 1 and "invalid partition" in refused.stderr.lower(), refused.stderr
    assert (bad / "submitted.tsv").read_text() == ""

    out = tmp_path / "arrays"
    start = time.perf_counter()
    proc = subprocess.run(["./run_all.sh", "--profile", "smoke", "--slurm", str(out), "--submit"], cwd=REPO, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    ids = dict(line.split("\t") for line in (out / "submitted.tsv").read_text().splitlines())
    counts = {"pretrain_probe": 1, "instruction_tuning": 1, "sft": 1, "analysis": 4}  # format, transfer, ood, beyond
    assert {stage: len(_tasks(out, stage)) for stage in ids} == counts
    try:  # a failed or timed-out test leaves nothing running on the cluster
        seen = _wait_for_arrays(ids, counts, env, out)
    finally:
        subprocess.run(["scancel", *ids.values()], env=env, capture_output=True)
    wall = time.perf_counter() - start
    assert {key: (f["JobState"], f["ExitCode"]) for key, f in seen.items()} == {
        key: ("COMPLETED", "0:0") for key in seen}, _log_tails(out)
    longest = {stage: max((_when(f["EndTime"]) - _when(f["StartTime"])).total_seconds()
                          for (name, _), f in seen.items() if name == stage) for stage in counts}
    print(f"smoke study through SLURM arrays: {wall:.0f} s wall (submission to the last task's end); longest task "
          "per array: " + ", ".join(f"{stage} {secs:.0f} s" for stage, secs in longest.items()))
    _check_smoke_study(results, figures)

    # afterok held: no array started before every array it waits for had ended
    span = {stage: (min(_when(f["StartTime"]) for (s, _), f in seen.items() if s == stage),
                    max(_when(f["EndTime"]) for (s, _), f in seen.items() if s == stage)) for stage in counts}
    for stage, after in _dependencies(out / "submit.sh").items():
        for dep in after:
            assert span[stage][0] >= span[dep][1], (stage, dep, span)
    # the three analysis tasks share one results store; at least two ran at the same time (2 CPUs, 1 per task)
    analysis = sorted((_when(f["StartTime"]), _when(f["EndTime"])) for (s, _), f in seen.items() if s == "analysis")
    assert any(b[0] < a[1] for a, b in zip(analysis, analysis[1:])), analysis

    # rerun on a half-finished study: only the unfinished job is submitted, as a one-task array waiting for nothing
    (results / "smoke" / "jobs" / "05_transfer.done").unlink()
    again = subprocess.run(["./run_all.sh", "--profile", "smoke", "--slurm", str(out), "--submit"], cwd=REPO, env=env,
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    ids = dict(line.split("\t") for line in (out / "submitted.tsv").read_text().splitlines())
    assert list(ids) == ["analysis"] and _tasks(out, "analysis") == [["05_transfer", "transfer", "-p profile smoke"]]
    try:
        seen = _wait_for_arrays(ids, {"analysis": 1}, env, out)
    finally:
        subprocess.run(["scancel", *ids.values()], env=env, capture_output=True)
    assert seen[("analysis", 0)]["JobState"] == "COMPLETED"
    _check_smoke_study(results, figures)
    done = subprocess.run([sys.executable, "-m", "amuro_utils.run.slurm", "--profile", "smoke", "--out", str(out)],
                          env=env, capture_output=True, text=True, check=True)
    assert "has finished" in done.stdout and not list(out.glob("*.sbatch"))


@pytest.mark.slow
def test_smoke_array_tasks_by_hand_where_slurm_cannot_start(local_slurm, smoke_store, tmp_path):
    conf, reason = local_slurm
    if conf is not None:
        pytest.skip("a real SLURM cluster ran the arrays (test_smoke_study_through_real_slurm_arrays)")
    print(f"no SLURM cluster ({reason}): running every array task's command with SLURM_ARRAY_TASK_ID set")
    results, figures = smoke_store
    out = tmp_path / "arrays"
    built = slurm.write_scripts(SMOKE, out)
    assert [(s.name, len(s.jobs)) for s in built] == [("pretrain_probe", 1), ("instruction_tuning", 1), ("sft", 1),
                                                       ("analysis", 4)]  # format, transfer, ood, beyond
    for stage in built:  # submission order satisfies every afterok
        logs = [open(out / "logs" / f"{stage.name}_{i}.out", "w") for i in range(len(stage.jobs))]
        tasks = [subprocess.Popen(["bash", str(out / f"{stage.name}.sbatch")], stdout=log, stderr=subprocess.STDOUT,
                                  env={**os.environ, "SLURM_ARRAY_TASK_ID": str(i)}, start_new_session=True)
                 for i, log in enumerate(logs)]
        try:
            time.sleep(1)
            running = sum(task.poll() is None for task in tasks)
            codes = [task.wait(timeout=WAIT_S) for task in tasks]
        finally:
            for task in tasks:  # a timed-out or interrupted task must not outlive the test
                if task.poll() is None:
                    os.killpg(task.pid, signal.SIGTERM)
            for log in logs:
                log.close()
        assert codes == [0] * len(tasks), _log_tails(out)
        if stage.name == "analysis":
            assert running >= 2  # several tasks at once against one results store
    _check_smoke_study(results, figures)
