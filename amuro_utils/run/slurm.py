"""SLURM job arrays for the study: one array per stage, chained with `afterok`, holding only the unfinished jobs.

`python -m amuro_utils.run.slurm --profile paper --out DIR` (or `./run_all.sh --profile paper --slurm DIR`) writes
`DIR/<stage>.sbatch`, `DIR/tasks/<stage>.tsv` and `DIR/submit.sh`. Array task i of a stage runs line i+1 of its tasks
file: one job of `python -m amuro_utils.run.runner --jobs`, executed as the papermill command `--dry-run` prints for it, by
`python -m amuro_utils.run.runner --job ID`, the runner run_all.sh uses too. So both paths write the same marker
(`results/<profile>/jobs/<job>.done`, with the job's settings identity, only on success), skip a job that is done
under the current settings, and print the failing cell's error.

Stages, in submission order, and what each waits for (`--dependency=afterok`):

- `pretrain_probe`, `instruction_tuning`, `sft`: the model work of each notebook, i.e. its per-checkpoint jobs
  (`jobs_per_ckpt`, the paper profile) or its one whole-notebook job (tiny, smoke).
  * A ladder pre-trained here (tiny, smoke) is built by `pretrain_probe`, and every other model job loads its
    checkpoints, so those arrays wait for `pretrain_probe`; that array then runs one task at a time (`%1`) because
    concurrent builds of the ladder would share one folder. A hub ladder (paper) needs no such wait: the three
    arrays run at once and share the results store (one file per record, written atomically).
  * A whole-notebook job also draws its notebook's figures, so it also waits for the records they read (`reads`):
    Fig. 4 (instruction_tuning) compares base with instruction-tuned models; Fig. 3 (sft) compares base with
    fine-tuned models and its Table 5 reads the instruction-tuned benchmarks ("learned in pre-training").
- `figures`: the `ckpt=all` jobs that draw the figures of a notebook whose model work was split per checkpoint.
  They wait for every model array their figures read, and get the model stages' GPU because they run whatever
  their notebook finds missing (e.g. a sensitivity row) with the profile's own settings.
- `analysis`: notebooks that run no model in this profile (format, transfer and ood; all six for paper-reference).
  They read base and fine-tuned records (`reads`) and wait for those arrays. They ask for no GPU; on a GPU profile
  AMURO_FORCE_CPU=1 lets `pipeline.setup` pass on a CPU node, which is safe because they load no model.

A stage without unfinished jobs gets no array, and the arrays that would wait for it do not.

Resources (#SBATCH lines): `--gres=gpu:1` where the profile requires a GPU; `--time` = the array's longest job in the
cost plan (`cost.estimate`, an estimate) × TIME_HEADROOM + SETUP_S per checkpoint for download and loading, or
UNESTIMATED_S where the cost plan has no GPU-hour model (CPU profiles, figure-only jobs); `--mem` = MEMORY_HEADROOM ×
(PROCESS_BYTES + the job's checkpoint bytes from `cost.requirements`: the revision passes through host memory on its
way to the GPU, and the bf16 fine-tuned copy is saved from it). The partition, account and every extra option are
written after these, verbatim: sbatch judges them, and for a repeated option sbatch keeps the last one, so
`--sbatch-option=--time=12:00:00` overrides the generated limit.
"""

from __future__ import annotations

import argparse
import csv
import math
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..config import paths
from ..config.paths import results_dir
from ..config.profiles import Profile
from ..models.ladder import get_ladder
from ..study import cost, overrides, plan, stages as registry
from . import runner

FIGURES, ANALYSIS = "figures", "analysis"


def reads() -> dict[str, tuple[str, ...]]:
    """Per notebook, the notebooks whose results must be written before its figures, tables and verdicts (read from
    the stage registry when asked, so a stage added to it is scheduled too)."""
    return {s.notebook: tuple(dict.fromkeys(w for kind in s.reads for w in registry.writers_of(kind)
                                            if kind != "ladder")) for s in registry.STAGES}


def ladder_builder() -> str:
    """The notebook that builds a ladder pre-trained here (pipeline.prepare_ladder)."""
    return registry.writers_of("ladder")[0]


def run_order() -> tuple[str, ...]:
    return tuple(s.notebook for s in registry.STAGES)

TIME_HEADROOM = 2.0  # the cost plan's GPU-hours are FLOP-based estimates until data/throughput.json has a measurement
SETUP_S = 1800  # per checkpoint a job loads: download (~4.7 GB for OLMo-1B), loading, dataset preparation
UNESTIMATED_S = 2 * 3600  # CPU profiles' notebooks take minutes; figure-only jobs read records and draw
TIME_STEP_S = 900  # limits are rounded up to quarter hours
PROCESS_BYTES = 4 * 2**30  # Python, torch, transformers, datasets and the records frame of one job
MEMORY_HEADROOM = 1.5


@dataclass(frozen=True)
class Stage:
    """One sbatch job array: its jobs (array task i runs jobs[i]), the stages it waits for, its resources."""

    name: str
    jobs: tuple[plan.NotebookJob, ...]
    after: tuple[str, ...]
    gpus: int
    memory_bytes: int
    time_s: int
    max_running: int | None = None  # the array's `%N` throttle
    env: tuple[tuple[str, str], ...] = ()
    gpu_memory_bytes: float = 0.0  # per task, from cost.requirements (for the reader: no portable sbatch option)
    disk_bytes: float = 0.0
    longest_gpu_hours: float | None = None  # the cost plan's estimate for the array's longest task


def unfinished_jobs(profile: Profile) -> list[plan.NotebookJob]:
    """The profile's notebook jobs, in run order, that are not done under the current settings (runner.job_state:
    a marker carrying the identity the settings give now)."""
    return runner.unfinished_jobs(profile)


def _throughput(profile: Profile) -> dict | None:
    """The cost plan's throughput data when it models this profile's ladder (the paper's OLMo-1B), else None."""
    if not plan.jobs(profile):
        return None
    throughput = cost.load_throughput()
    return throughput if profile.ladder in throughput["models"] else None


def _resources(profile: Profile, name: str, jobs: list[plan.NotebookJob], gpu_jobs: list[plan.Job],
               throughput: dict | None) -> dict:
    """gpus, memory_bytes, time_s and the per-task requirements of one array (the maximum over its jobs)."""
    times, memories, gpu_memory, disk, hours = [], [], [0.0], [0.0], []
    for job in jobs:
        # the cost plan's jobs this one runs: its own, or its notebook's whole ladder (ckpt=all: what is missing)
        work = [] if name == ANALYSIS else list(job.model_jobs) if job.model_jobs and job.reads == () else [
            j for j in gpu_jobs if j.notebook == job.notebook]
        needs = [cost.requirements(profile, j, throughput) for j in work] if throughput else []
        checkpoint = max((n["disk_bytes"] for n in needs), default=0.0)
        memories.append(MEMORY_HEADROOM * (PROCESS_BYTES + checkpoint))
        gpu_memory.append(max((n["gpu_memory_bytes"] for n in needs), default=0.0))
        disk.append(checkpoint)
        if throughput is None or not work or name == FIGURES:
            times.append(UNESTIMATED_S)
            continue
        job_hours = sum(cost.estimate(j, throughput) for j in work)
        hours.append(job_hours)
        times.append(TIME_HEADROOM * job_hours * 3600 + SETUP_S * len(work))
    return {"gpus": int(profile.requires_gpu and name != ANALYSIS),
            "memory_bytes": int(math.ceil(max(memories) / 2**30) * 2**30),
            "time_s": int(math.ceil(max(times) / TIME_STEP_S) * TIME_STEP_S),
            "gpu_memory_bytes": max(gpu_memory), "disk_bytes": max(disk),
            "longest_gpu_hours": max(hours) if hours else None}


def stages(profile: Profile, jobs: list[plan.NotebookJob] | None = None) -> list[Stage]:
    """The study's job arrays in submission order, for `jobs` (default: the unfinished ones); see the module doc."""
    todo = unfinished_jobs(profile) if jobs is None else list(jobs)
    gpu_jobs = plan.jobs(profile)
    model_notebooks = {j.notebook for j in gpu_jobs}
    split = {j.notebook for j in plan.notebook_jobs(profile) if j.model_jobs and not j.reads}
    local_ladder = bool(model_notebooks) and get_ladder(profile.ladder).local
    groups: dict[str, list[plan.NotebookJob]] = {}
    for job in todo:
        if job.notebook not in model_notebooks:
            name = ANALYSIS
        elif job.notebook in split and not job.model_jobs:
            name = FIGURES
        else:
            name = job.notebook
        groups.setdefault(name, []).append(job)
    throughput = _throughput(profile)
    out: list[Stage] = []
    needed, builder = reads(), ladder_builder()
    for name in [n for n in run_order() if n in model_notebooks] + [FIGURES, ANALYSIS]:
        members = groups.get(name)
        if not members:
            continue
        if name in model_notebooks:
            needs = {builder} if local_ladder and name != builder else set()
            if name not in split:
                needs |= set(needed[name]) - {name}
        else:
            needs = {n for j in members for n in needed[j.notebook]}
        throttle = 1 if local_ladder and name == builder and len(members) > 1 else None
        env = (("AMURO_FORCE_CPU", "1"),) if name == ANALYSIS and profile.requires_gpu else ()
        out.append(Stage(name, tuple(members), tuple(s.name for s in out if s.name in needs), max_running=throttle,
                         env=env, **_resources(profile, name, members, gpu_jobs, throughput)))
    return out


# ---------------------------------------------------------------------------------------------------------------
# scripts


def dry_run_command(profile: Profile, job: plan.NotebookJob) -> str:
    """The papermill command `run_all.sh --dry-run` prints for a job (results/ = $AMURO_RESULTS_DIR)."""
    return (f"papermill notebooks/{job.notebook}.ipynb results/{profile.name}/notebooks/{job.id}.ipynb "
            f"{job.papermill_args()}")


def runner_profile_args(profile: Profile) -> str:
    """The runner's profile options that rebuild `profile` (its name, or its profile file and overrides)."""
    params = dict(profile.params) or {"profile": profile.name}
    sets = overrides.parse(params.get("overrides"))
    return " ".join([f"--profile {shlex.quote(params['profile'])}",
                     *(f"--set {shlex.quote(f'{field}={value}')}" for field, value in sets)])


def _slurm_time(seconds: int) -> str:
    days, rest = divmod(int(seconds), 86400)
    clock = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{clock}" if days else clock


def _job_name(profile: Profile, stage: str) -> str:
    return f"amuro-{profile.name}-{stage}"


def _checked(kind: str, value: str) -> str:
    """A user value for an #SBATCH line: anything sbatch may judge, but one line (a newline would inject commands)."""
    if not value.strip() or "\n" in value or "\r" in value:
        raise ValueError(f"{kind} {value!r} must be one non-empty line; pass one option per --sbatch-option, "
                         "e.g. --sbatch-option=--qos=high --sbatch-option=--constraint=a100")
    return value.strip()


def _sbatch_text(profile: Profile, stage: Stage, out_dir: Path, extra_lines: list[str]) -> str:
    n = len(stage.jobs)
    tasks = out_dir / "tasks" / f"{stage.name}.tsv"
    array = f"0-{n - 1}" + (f"%{stage.max_running}" if stage.max_running else "")
    lines = ["#!/bin/bash",
             f"#SBATCH --job-name={_job_name(profile, stage.name)}",
             f"#SBATCH --array={array}"]
    if stage.gpus:
        lines.append(f"#SBATCH --gres=gpu:{stage.gpus}")
    lines += [f"#SBATCH --mem={stage.memory_bytes // 2**30}G",
              f"#SBATCH --time={_slurm_time(stage.time_s)}",
              f"#SBATCH --output={out_dir / 'logs' / stage.name}_%A_%a.out",
              *extra_lines,
              "#",
              f"# Amuro & Char, profile {profile.name!r}, stage {stage.name!r}: {n} array task(s). Task i runs line i+1 "
              f"of tasks/{stage.name}.tsv",
              f"# through `python -m amuro_utils.run.runner --job` (run_all.sh's runner); results/ below is "
              f"{paths.RESULTS_ROOT}.",
              *(f"#   task {i}: {dry_run_command(profile, job)}" for i, job in enumerate(stage.jobs))]
    if stage.longest_gpu_hours is not None:
        lines.append(f"# --time: longest task ≈ {stage.longest_gpu_hours:.2f} GPU-hours in the cost plan (an estimate) "
                     f"× {TIME_HEADROOM:g} + {SETUP_S // 60} min per checkpoint loaded.")
    if stage.gpu_memory_bytes:
        lines.append(f"# Each task needs ≈ {stage.gpu_memory_bytes / 1e9:.1f} GB of GPU memory and "
                     f"{stage.disk_bytes / 1e9:.1f} GB of disk for the HF cache (cost.requirements); choose GPUs "
                     "with --sbatch-option (e.g. --gres=gpu:a100:1).")
    if stage.max_running:
        lines.append("# One task at a time: the first builds the profile's local ladder, the others reuse it.")
    lines.append("# Waits for (afterok): " + (", ".join(stage.after) if stage.after else "nothing") + " (submit.sh).")
    lines += ["set -euo pipefail",
              ': "${SLURM_ARRAY_TASK_ID:?submit this script with sbatch (see submit.sh), or set SLURM_ARRAY_TASK_ID='
              f'0..{n - 1} to run one task by hand}}"',
              f"cd {shlex.quote(str(paths.REPO_ROOT))}",
              f"export PATH={shlex.quote(str(Path(sys.executable).parent))}:\"$PATH\"",
              f"export AMURO_RESULTS_DIR={shlex.quote(str(paths.RESULTS_ROOT.absolute()))}",
              f"export AMURO_FIGURES_DIR={shlex.quote(str(paths.FIGURES_ROOT.absolute()))}",
              f"export AMURO_DATA_DIR={shlex.quote(str(paths.DATA_DIR.absolute()))}"]
    if stage.env:
        lines.append("# these notebooks load no model; pipeline.setup would refuse a GPU profile on a CPU node")
        lines += [f"export {k}={shlex.quote(v)}" for k, v in stage.env]
    lines += [f"line=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {shlex.quote(str(tasks))})",
              f'[ -n "$line" ] || {{ echo "no task $SLURM_ARRAY_TASK_ID in {tasks} (it has {n}: 0..{n - 1})" >&2; '
              "exit 2; }",
              "IFS=$'\\t' read -r job notebook params <<< \"$line\"",
              f"exec python -m amuro_utils.run.runner {runner_profile_args(profile)} --job \"$job\"", ""]
    return "\n".join(lines)


def _submit_text(profile: Profile, built: list[Stage]) -> str:
    names = [_job_name(profile, n) for n in [*run_order(), FIGURES, ANALYSIS]]
    lines = ["#!/usr/bin/env bash",
             f"# Submit the unfinished jobs of profile {profile.name!r}: one array per stage, in order, each waiting "
             "(afterok)",
             "# for the arrays whose records it reads. Writes submitted.tsv (stage, job id). Written by "
             "amuro_utils.run.slurm.",
             "set -euo pipefail",
             'cd "$(dirname "$0")"',
             'command -v sbatch >/dev/null || { echo "sbatch not found: run this on a SLURM login node" >&2; exit 1; }',
             "# A job of this study still queued or running would be submitted twice: refuse.",
             "queued=$(squeue -h -u \"$(id -un)\" -o %j | grep -Fx " + " ".join(f"-e {n}" for n in names)
             + " | sort -u || true)",
             'if [ -n "$queued" ]; then',
             f'  echo "jobs of profile {profile.name!r} are still queued or running: $(echo $queued). Wait for them, '
             'or scancel them (scancel --name=NAME), then write the scripts again (run_all.sh --slurm) and submit." >&2',
             "  exit 1",
             "fi",
             ": > submitted.tsv"]
    if not built:
        lines.append(f'echo "every job of profile {profile.name!r} has finished: nothing to submit"')
    for stage in built:
        var = f"id_{stage.name}"
        dep = (" --dependency=afterok:" + ":".join(f"${{id_{a}}}" for a in stage.after)) if stage.after else ""
        lines += [f"{var}=$(sbatch --parsable{dep} {stage.name}.sbatch) || {{ echo \"submitting {stage.name} failed; "
                  "already submitted (scancel them):\" >&2; cat submitted.tsv >&2; exit 1; }",
                  f"{var}=${{{var}%%;*}}",
                  f"printf '%s\\t%s\\n' {stage.name} \"${var}\" >> submitted.tsv",
                  f"echo \"== {stage.name}: array job ${var} ({len(stage.jobs)} task(s))"
                  + (f", after {', '.join(stage.after)}" if stage.after else "") + "\""]
    return "\n".join(lines) + "\n"


def write_scripts(profile: Profile, out_dir: str | Path, *, partition: str | None = None, account: str | None = None,
                  sbatch_options: list[str] | tuple[str, ...] = (),
                  jobs: list[plan.NotebookJob] | None = None) -> list[Stage]:
    """Write DIR/<stage>.sbatch, DIR/tasks/<stage>.tsv and DIR/submit.sh for `jobs` (default: the unfinished ones);
    scripts of an earlier call that no longer apply are removed. Returns the stages written."""
    extra = ([f"#SBATCH --partition={_checked('partition', partition)}"] if partition is not None else []) + \
            ([f"#SBATCH --account={_checked('account', account)}"] if account is not None else []) + \
            [f"#SBATCH {_checked('sbatch option', option)}" for option in sbatch_options]
    out_dir = Path(out_dir).resolve()
    built = stages(profile, jobs)
    (out_dir / "tasks").mkdir(parents=True, exist_ok=True)
    (out_dir / "logs").mkdir(exist_ok=True)  # sbatch does not create the folder of --output
    for old in [*out_dir.glob("*.sbatch"), *(out_dir / "tasks").glob("*.tsv"), out_dir / "submit.sh"]:
        old.unlink(missing_ok=True)
    for stage in built:
        (out_dir / "tasks" / f"{stage.name}.tsv").write_text(
            "".join(f"{j.id}\t{j.notebook}\t{j.papermill_args()}\n" for j in stage.jobs))
        script = out_dir / f"{stage.name}.sbatch"
        script.write_text(_sbatch_text(profile, stage, out_dir, extra))
        script.chmod(0o755)
    submit_sh = out_dir / "submit.sh"
    submit_sh.write_text(_submit_text(profile, built))
    submit_sh.chmod(0o755)
    return built


def submit(out_dir: str | Path) -> dict[str, str]:
    """Run DIR/submit.sh (sbatch must be on PATH); returns stage -> SLURM array job id."""
    out_dir = Path(out_dir)
    subprocess.run(["bash", str(out_dir / "submit.sh")], check=True)
    with open(out_dir / "submitted.tsv", newline="") as handle:
        return {stage: job_id for stage, job_id in csv.reader(handle, delimiter="\t")}


def summary(profile: Profile, built: list[Stage], out_dir: Path) -> str:
    """What was written: one line per array (tasks, resources, dependencies) and how to submit."""
    if not built:
        return (f"Every job of profile {profile.name!r} has finished (markers in {results_dir(profile.name) / 'jobs'}); "
                "no array written.")
    lines = [f"SLURM arrays for profile {profile.name!r} in {out_dir}:"]
    for s in built:
        lines.append(f"  {s.name + '.sbatch':<24} {len(s.jobs):>3} task(s)  gpus {s.gpus}  mem {s.memory_bytes // 2**30}G"
                     f"  time {_slurm_time(s.time_s)}  after: {', '.join(s.after) or '-'}")
    lines.append(f"Submit with: bash {out_dir / 'submit.sh'}   (logs: {out_dir / 'logs'}/)")
    return "\n".join(lines)


def main(argv=None) -> None:
    """`python -m amuro_utils.run.slurm --profile P --out DIR [--partition X] [--account Y] [--sbatch-option OPT]...
    [--submit]`: write the SLURM arrays of the unfinished jobs (and submit them)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    overrides.add_arguments(parser, "paper")
    parser.add_argument("--out", required=True, help="folder for the .sbatch scripts, tasks files, submit.sh, logs")
    parser.add_argument("--partition", help="written as #SBATCH --partition=…; sbatch checks it")
    parser.add_argument("--account", help="written as #SBATCH --account=…; sbatch checks it")
    parser.add_argument("--sbatch-option", action="append", default=[], metavar="OPT",
                        help="one extra #SBATCH line, verbatim (repeatable; use the = form: "
                             "--sbatch-option=--qos=high); it overrides a generated option of the same name")
    parser.add_argument("--submit", action="store_true", help="run submit.sh after writing")
    args = parser.parse_args(argv)
    try:
        profile = overrides.from_args(args)
    except ValueError as err:
        parser.error(str(err))
    try:
        built = write_scripts(profile, args.out, partition=args.partition, account=args.account,
                              sbatch_options=args.sbatch_option)
    except ValueError as err:
        parser.error(str(err))
    out_dir = Path(args.out).resolve()
    print(summary(profile, built, out_dir))
    if args.submit and built:
        try:
            submit(out_dir)
        except subprocess.CalledProcessError as err:  # submit.sh has printed sbatch's own message
            raise SystemExit(err.returncode) from None


if __name__ == "__main__":
    main()
