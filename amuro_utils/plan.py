"""The job plan of a profile, its cost in GPU-hours, and the pre-flight checks that refuse a job that cannot finish.

Costs come from data/throughput.json: an entry per GPU, either derived from FLOP and byte counts
("source": "estimate-flops", the formulas below) or measured on the machine ("source": "measured"). The workload
(set sizes, token lengths) sits in the same file with the provenance of every number.

Time model of an "estimate-flops" entry (N parameters, P peak bf16 FLOP/s, W HBM bytes/s):
  training micro-step  max(6·N·tokens / (P·mfu_train), train_bytes_per_param·N / W) + train_micro_step_overhead_s
  optimizer step       optimizer_bytes_per_param·N / W
  prefill (a batch)    max(2·N·tokens / (P·mfu_prefill), 2·N / W) + forward_overhead_s
  decode (one step)    (2·N + sequences·context·kv_bytes_per_token) / W + decode_step_overhead_s
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from .paths import DATA_DIR, RESULTS_ROOT
from .profiles import Profile, TrainSettings, get_profile

THROUGHPUT_FILE = DATA_DIR / "throughput.json"
FORCE_CPU_ENV = "AMURO_FORCE_CPU"
PAPER_A100_HOURS = 1067  # the paper's reported compute
GOAL_H100_HOURS = 10
GB = 1e9


@dataclass(frozen=True)
class Job:
    """One unit of GPU work: a notebook run on one checkpoint for one fine_tune ('base' = no training)."""

    notebook: str  # "pretrain_probe" | "sft" | "instruction_tuning"
    ckpt: str
    task: str  # "base" or the fine_tune label
    evals: tuple[tuple[str, str], ...]  # (eval_set, format) pairs scored by this job
    train_set: str | None = None
    n_train: int | None = None  # None with `fraction`: int(fraction · mixture size)
    fraction: float | None = None
    train: TrainSettings | None = None
    profile: Profile = field(default=None, compare=False, repr=False)


def jobs(profile: Profile) -> list[Job]:
    """Every job of the study, in run order: base evaluations, supervised fine-tunes, instruction tuning."""
    from . import pipeline

    if profile.results_source == "paper":
        return []  # figures from the released numbers: no model is run

    out = [Job("pretrain_probe", ckpt, "base", tuple(pipeline.base_plan(profile)), profile=profile)
           for ckpt in profile.ckpts]
    for task in profile.tasks:
        evals = tuple(pipeline.sft_plan(profile, task))
        out += [Job("sft", ckpt, task.name, evals, task.train_set, task.n_train, None, task.train, profile)
                for ckpt in profile.ckpts]
    it = profile.instruction
    evals = tuple(pipeline.instruction_plan(profile))
    out += [Job("instruction_tuning", ckpt, it.name, evals, it.train_set, it.n_train, it.fraction, it.train, profile)
            for ckpt in profile.ckpts]
    return out


# ---------------------------------------------------------------------------------------------------------------
# throughput file


def load_throughput(path: str | Path = THROUGHPUT_FILE, gpu: str | None = None) -> dict:
    """The throughput file with `entry` set to the GPU's entry (a measured one wins over an estimate)."""
    data = json.loads(Path(path).read_text())
    entries = [e for e in data["hardware"] if gpu is None or e["gpu"] == gpu]
    if not entries:
        raise ValueError(f"no throughput entry for gpu {gpu!r} in {path}; have {[e['gpu'] for e in data['hardware']]}")
    data["entry"] = sorted(entries, key=lambda e: e["source"] != "measured")[0]
    return data


def flops_derived(entry: dict, model: dict) -> dict:
    """The headline rates of an estimate-flops entry, from its peak FLOP/s, bandwidth and MFU (see module doc)."""
    n, peak = model["params"], entry["peak_bf16_flops"]
    return {"train_tokens_per_s": peak * entry["mfu_train"] / (6 * n),
            "prefill_tokens_per_s": peak * entry["mfu_prefill"] / (2 * n),
            "decode_weight_read_s": 2 * n / entry["hbm_bytes_per_s"]}


# ---------------------------------------------------------------------------------------------------------------
# workload


def _eval_spec(throughput: dict, profile: Profile, eval_set: str) -> dict:
    specs = throughput["workload"]["eval_sets"]
    if eval_set not in specs:
        raise ValueError(f"{eval_set!r} has no workload entry in throughput.json; add its size and token lengths")
    spec = dict(specs[eval_set])
    n = spec["n"]
    if isinstance(n, dict):
        n = n[profile.paraphrase_splits]
    spec["n"] = n if profile.eval_limit is None else min(n, profile.eval_limit)
    return spec


def _prompt_tokens(spec: dict, profile: Profile) -> tuple[float, float, bool]:
    """Mean k-shot prompt length, its demo part, and whether it is left-truncated to max_length - max_new_tokens."""
    k = profile.shots
    demos = k * (spec["query_tokens"] + spec["target_tokens"] + 1)  # demo = prompt + gold + "\n"
    budget = profile.max_length - profile.max_new_tokens
    total = min(demos + spec["query_tokens"], budget)
    return total, min(demos, total), demos + spec["query_tokens"] >= budget


def _train_size(throughput: dict, job: Job) -> tuple[int, dict]:
    spec = throughput["workload"]["train_sets"].get(job.train_set)
    if spec is None:
        raise ValueError(f"train set {job.train_set!r} has no workload entry in throughput.json")
    n = job.n_train if job.n_train is not None else int(job.fraction * spec["n_full"])
    return n, spec


def _padding(std: float, mean: float, batch: int, sort_by_length: bool) -> float:
    """Padded / real tokens of a batch: 1 when sorted by length; unsorted, the longest of `batch` normal draws
    (≈ mean + std·sqrt(2·ln batch)) sets the width."""
    if batch <= 1 or sort_by_length or mean <= 0:
        return 1.0
    return 1.0 + std * math.sqrt(2 * math.log(batch)) / mean


# ---------------------------------------------------------------------------------------------------------------
# time model


@dataclass(frozen=True)
class Knobs:
    """How the work is executed; none changes a result except `paraphrase_splits` (a named deviation)."""

    eval_batch_size: int | None = None  # None = the profile's
    sort_by_length: bool = True  # evaluate.py batches prompts sorted by length
    generation_engine: str = "hf"  # "hf" (transformers generate) | "vllm" (continuous batching, CUDA graphs)
    prefix_cache: bool = False  # vLLM generation: the shared 4-shot demo prefix is computed once per set (APC)
    # None = the TrainSettings'; "fastest" = the quickest divisor of the batch per job. Every micro-batch size gives
    # the same gradient (train.py); larger ones trade per-step overhead for padding.
    micro_batch_size: int | str | None = None


def _prefill_s(e: dict, n_params: float, tokens: float, batches: float) -> float:
    compute = 2 * n_params * tokens / (e["peak_bf16_flops"] * e["mfu_prefill"])
    return max(compute, batches * 2 * n_params / e["hbm_bytes_per_s"]) + batches * e["forward_overhead_s"]


def _eval_seconds(job: Job, throughput: dict, knobs: Knobs) -> dict[str, float]:
    from . import tasks

    e, model, profile = throughput["entry"], throughput["models"][job.profile.ladder], job.profile
    n_params, kv = model["params"], model["kv_bytes_per_token"]
    batch = knobs.eval_batch_size or profile.eval_batch_size
    new = throughput["workload"]["generated_tokens"]
    out = {"classification": 0.0, "generation": 0.0, "multiple_choice": 0.0}
    for eval_set, _fmt in job.evals:
        kind = tasks.get(eval_set, profile.paraphrase_splits).kind
        spec = _eval_spec(throughput, profile, eval_set)
        n = spec["n"]
        if e["source"] == "measured":
            out[kind] += n / e["prompts_per_s"][kind]
            continue
        if kind == "multiple_choice":
            seqs = n * spec["choices"]
            length = min(spec["context_tokens"] + spec["choice_tokens"], profile.max_length)
            out[kind] += _prefill_s(e, n_params, seqs * length, math.ceil(seqs / batch))
            continue
        prompt, demos, truncated = _prompt_tokens(spec, profile)
        # Only vLLM generation has the prefix cache here (vllm_backend enables it); HF classification does not.
        cached = knobs.prefix_cache and kind == "generation" and knobs.generation_engine == "vllm"
        per_item = prompt - demos if cached else prompt
        # Truncated prompts all have the budget's length: nothing to pad.
        pad = _padding(spec["query_std"], prompt, batch, knobs.sort_by_length or truncated)
        if kind == "classification":
            out[kind] += _prefill_s(e, n_params, n * per_item * pad, math.ceil(n / batch))
            continue
        if knobs.generation_engine == "vllm":
            # Continuous batching: no padding, decode batch = vllm_decode_batch, CUDA-graph step overhead.
            gen_batch, overhead, pad = e["vllm_decode_batch"], e["vllm_decode_step_overhead_s"], 1.0
        else:
            gen_batch, overhead = batch, e["decode_step_overhead_s"]
        prefill = _prefill_s(e, n_params, n * per_item * pad + (demos if cached else 0), math.ceil(n / batch))
        # Each decode step reads the weights once per batch and every sequence's KV cache (prompt + half the output).
        context = prompt * pad + new / 2
        weights = math.ceil(n / gen_batch) * (2 * n_params / e["hbm_bytes_per_s"] + overhead)
        out[kind] += prefill + new * (weights + n * context * kv / e["hbm_bytes_per_s"])
    return out


def _train_seconds(job: Job, throughput: dict, knobs: Knobs) -> float:
    if job.train is None:
        return 0.0
    settings = job.train
    if knobs.micro_batch_size == "fastest":
        sizes = [m for m in range(1, settings.batch_size + 1) if settings.batch_size % m == 0]
        return min(_train_seconds(job, throughput, replace(knobs, micro_batch_size=m)) for m in sizes)
    e, model = throughput["entry"], throughput["models"][job.profile.ladder]
    n, spec = _train_size(throughput, job)
    micro = knobs.micro_batch_size or settings.micro_batch_size
    length = min(spec["tokens"], settings.max_length)
    tokens = n * settings.epochs * length
    if e["source"] == "measured":
        return tokens / e["train_tokens_per_s"]
    n_params = model["params"]
    micro_steps = settings.epochs * math.ceil(n / micro)
    optimizer_steps = settings.epochs * math.ceil(n / settings.batch_size)
    padded = tokens * _padding(spec["std"], length, micro, sort_by_length=False)
    compute = 6 * n_params * padded / (e["peak_bf16_flops"] * e["mfu_train"])
    memory = micro_steps * e["train_bytes_per_param"] * n_params / e["hbm_bytes_per_s"]
    return (max(compute, memory) + micro_steps * e["train_micro_step_overhead_s"]
            + optimizer_steps * e["optimizer_bytes_per_param"] * n_params / e["hbm_bytes_per_s"])


def breakdown(job: Job, throughput: dict, knobs: Knobs = Knobs()) -> dict[str, float]:
    """Seconds of one job on the throughput entry's GPU, by stage (train, classification, generation, …)."""
    if job.profile.ladder not in throughput["models"]:
        raise ValueError(f"ladder {job.profile.ladder!r} has no model entry in throughput.json "
                         f"(have {sorted(throughput['models'])}); GPU-hour estimates need its parameter count")
    seconds = {"train": _train_seconds(job, throughput, knobs), **_eval_seconds(job, throughput, knobs)}
    if job.notebook == "pretrain_probe":  # Springer sensitivity probe: held-out forwards, clean + each noise draw
        profile, e = job.profile, throughput["entry"]
        probe = profile.sensitivity
        tokens = (1 + probe.seeds * sum(map(len, probe.readings().values()))) * probe.tokens
        rate = e.get("prefill_tokens_per_s") or flops_derived(e, throughput["models"][profile.ladder])[
            "prefill_tokens_per_s"]
        seconds["sensitivity"] = tokens / rate
    return seconds


def estimate(job: Job, throughput: dict, knobs: Knobs = Knobs()) -> float:
    """GPU-hours of one job."""
    return sum(breakdown(job, throughput, knobs).values()) / 3600


def plan_table(profile: Profile, throughput: dict | None = None, knobs: Knobs = Knobs()) -> tuple[pd.DataFrame, float]:
    """One row per job (notebook, ckpt, task, evaluations, GPU-hours by stage) and the total GPU-hours."""
    throughput = throughput or load_throughput()
    rows = []
    for job in jobs(profile):
        seconds = breakdown(job, throughput, knobs)
        rows.append({"notebook": job.notebook, "ckpt": job.ckpt, "task": job.task, "evals": len(job.evals),
                     **{f"{k}_h": v / 3600 for k, v in seconds.items()}, "gpu_hours": sum(seconds.values()) / 3600})
    frame = pd.DataFrame(rows).fillna(0.0)
    return frame, float(frame["gpu_hours"].sum())


KNOB_STEPS = (
    ("the release's execution: eval batch 1, HF generate", Knobs(eval_batch_size=1, sort_by_length=False)),
    ("+ batched evaluation (profile batch size, unsorted)", Knobs(sort_by_length=False)),
    ("+ length-sorted batches (this code's default)", Knobs()),
    ("+ vLLM for generation", Knobs(generation_engine="vllm")),
    ("+ vLLM prefix caching of the shared 4-shot demos", Knobs(generation_engine="vllm", prefix_cache=True)),
    ("+ fastest training micro-batch per task (same gradient)",
     Knobs(generation_engine="vllm", prefix_cache=True, micro_batch_size="fastest")),
)


def knob_table(profile: Profile, throughput: dict | None = None) -> pd.DataFrame:
    """Total GPU-hours as each execution knob is added in turn, and the hours each one saves."""
    throughput = throughput or load_throughput()
    rows, previous = [], None
    for label, knobs in KNOB_STEPS:
        total = plan_table(profile, throughput, knobs)[1]
        rows.append({"execution": label, "gpu_hours": total, "saves_h": 0.0 if previous is None else previous - total})
        previous = total
    if profile.paraphrase_splits == "paper":
        fixed = plan_table(replace(profile, paraphrase_splits="fixed"), throughput, KNOB_STEPS[-1][1])[1]
        rows.append({"execution": "+ paraphrase_splits='fixed' (DEVIATION: GLUE QQP/STS-B validation)",
                     "gpu_hours": fixed, "saves_h": previous - fixed})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------------
# pre-flight


class PreflightError(RuntimeError):
    """A job that cannot finish on this machine; the message says what is missing and how much."""


def force_cpu() -> bool:
    """True when AMURO_FORCE_CPU=1 (debugging a GPU profile on a CPU)."""
    return os.environ.get(FORCE_CPU_ENV, "") == "1"


def _gpu_memory() -> int:
    import torch

    if not torch.cuda.is_available():
        return 0
    return torch.cuda.get_device_properties(0).total_memory


def _free_disk() -> int:
    from huggingface_hub import constants

    folders = [Path(constants.HF_HUB_CACHE), RESULTS_ROOT]
    existing = [next(p for p in (f, *f.parents) if p.exists()) for f in folders]
    return min(shutil.disk_usage(p).free for p in existing)


def requirements(profile: Profile, job: Job, throughput: dict | None = None) -> dict[str, float]:
    """Bytes of disk and GPU memory one job needs (model download, bf16 fine-tuned copy, training state)."""
    throughput = throughput or load_throughput()
    model = throughput["models"].get(profile.ladder)
    if model is None:
        return {"disk_bytes": 0.0, "gpu_memory_bytes": 0.0}
    n = model["params"]
    disk = model["download_bytes"] + (2 * n if job.train is not None else 0)  # fp32 revision + bf16 fine-tuned copy
    if job.train is not None:
        settings = job.train
        # fp32 weights + grads + AdamW m, v (16 B/param) + bf16 autocast copy (2 B/param) + activations
        # (≈ 34·hidden·tokens bytes per layer, Korthikanti et al. 2022, sdpa attention) + fp32 logits at targets.
        tokens = settings.micro_batch_size * settings.max_length
        activations = 34 * model["hidden"] * tokens * model["layers"] + 4 * tokens * model["vocab"]
        memory = 18 * n + activations
    else:
        tokens = profile.eval_batch_size * profile.max_length
        memory = 2 * n + tokens * model["kv_bytes_per_token"] + 4 * profile.eval_batch_size * model["vocab"]
    return {"disk_bytes": float(disk), "gpu_memory_bytes": float(memory * 1.1)}  # 10 % allocator headroom


def preflight(profile: Profile, job: Job, *, free_disk: int | None = None, gpu_memory: int | None = None) -> dict:
    """Refuse, before any download, a job this machine cannot finish: no GPU, too little disk or GPU memory.

    gpu_memory: bytes on the GPU (0 = none); None asks torch. free_disk: bytes free; None measures the HF cache
    and results folders. Returns the requirements when the job fits.
    """
    need = requirements(profile, job)
    cpu = force_cpu() or profile.device == "cpu"
    if profile.requires_gpu and not cpu:
        gpu_memory = _gpu_memory() if gpu_memory is None else gpu_memory
        if not gpu_memory:
            raise PreflightError(
                f"profile {profile.name!r} needs a CUDA GPU (job {job.notebook}/{job.ckpt}/{job.task}: "
                f"{need['gpu_memory_bytes'] / GB:.1f} GB of GPU memory) and none is visible. Run it on a GPU "
                f"machine, use --profile tiny offline, or set {FORCE_CPU_ENV}=1 to force the CPU (debugging only).")
        if gpu_memory < need["gpu_memory_bytes"]:
            raise PreflightError(
                f"job {job.notebook}/{job.ckpt}/{job.task} needs ~{need['gpu_memory_bytes'] / GB:.1f} GB of GPU "
                f"memory, the GPU has {gpu_memory / GB:.1f} GB. Use a larger GPU"
                + (", or a smaller micro_batch_size" if job.train is not None and job.train.micro_batch_size > 1
                   else "") + ".")
    free_disk = _free_disk() if free_disk is None else free_disk
    if free_disk < need["disk_bytes"]:
        raise PreflightError(
            f"job {job.notebook}/{job.ckpt}/{job.task} needs {need['disk_bytes'] / GB:.1f} GB of disk (one "
            f"{profile.ladder} revision + the bf16 fine-tuned copy), {free_disk / GB:.1f} GB is free. Free space, or "
            "delete used revisions with amuro_utils.plan.prune_revision(repo, revision, cache_dir).")
    return need


# ---------------------------------------------------------------------------------------------------------------
# disk hygiene


def prune_revision(repo: str, revision: str, cache_dir: str | Path | None = None) -> int:
    """Delete one downloaded revision (branch name or commit) of a model from the HF cache; returns bytes freed."""
    from huggingface_hub import scan_cache_dir

    info = scan_cache_dir(cache_dir)
    commits = {rev.commit_hash for cached in info.repos if cached.repo_id == repo and cached.repo_type == "model"
               for rev in cached.revisions if revision == rev.commit_hash or revision in rev.refs}
    if not commits:
        return 0
    strategy = info.delete_revisions(*sorted(commits))
    strategy.execute()
    return strategy.expected_freed_size


# ---------------------------------------------------------------------------------------------------------------
# command line


def report(profile: Profile, throughput: dict | None = None) -> str:
    """The plan table, the total against the paper's compute and the 10 H100-hour goal, and the knob table."""
    throughput = throughput or load_throughput()
    e = throughput["entry"]
    planned = jobs(profile)
    if profile.ladder not in throughput["models"] or not planned:
        return (f"Profile {profile.name!r}: {len(planned)} jobs, none needing a GPU estimate "
                f"({'released numbers only' if not planned else 'runs on ' + profile.device}).")
    frame, total = plan_table(profile, throughput)
    lines = [f"Plan for profile {profile.name!r}: {len(frame)} jobs on {e['gpu']} ({e['source']}; "
             f"{e.get('label', '')})",
             frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"),
             f"\nTotal: {total:.1f} GPU-hours (paper: ~{PAPER_A100_HOURS:,} A100-hours; goal: <= {GOAL_H100_HOURS} "
             "H100-hours)."]
    if total > GOAL_H100_HOURS:
        lines.append(f"The faithful plan exceeds the goal by {total - GOAL_H100_HOURS:.1f} h "
                     f"({total / GOAL_H100_HOURS:.1f}x).")
    by_stage = frame[[c for c in frame.columns if c.endswith("_h")]].sum()
    lines.append("By stage (h): " + ", ".join(f"{k[:-2]} {v:.2f}" for k, v in by_stage.items()))
    lines.append("\nExecution knobs (estimates, each added to the previous):")
    lines.append(knob_table(profile, throughput).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return "\n".join(lines)


# instruction_tuning runs before sft: Table 5 and Fig. 3b (in sft) compare the "learned in pre-training" group,
# scored on instruction-tuned models, with the "learned in fine-tuning" group.
RUN_ORDER = ("pretrain_probe", "instruction_tuning", "sft", "format", "transfer", "ood")


@dataclass(frozen=True)
class NotebookJob:
    """One papermill execution of a notebook: its id (the output file's name), notebook and parameters."""

    id: str
    notebook: str
    params: tuple[tuple[str, str], ...]
    gpu_job: Job | None = None  # the GPU work it does (None: drawing figures from records)

    def papermill_args(self) -> str:
        """The `-p name value` words papermill takes."""
        return " ".join(f"-p {k} {v}" for k, v in self.params)


def notebook_jobs(profile: Profile) -> list[NotebookJob]:
    """Every papermill run of the study, in order. With `profile.jobs_per_ckpt` (cluster use), one job per
    (notebook, checkpoint, task) followed by a ckpt=all job that only draws the figure; else one job per notebook."""
    base = (("profile", profile.name),)
    out: list[NotebookJob] = []
    by_notebook: dict[str, list[Job]] = {}
    for job in jobs(profile):
        by_notebook.setdefault(job.notebook, []).append(job)
    for index, notebook in enumerate(RUN_ORDER, start=1):
        stem = f"{index:02d}_{notebook}"
        if profile.jobs_per_ckpt and by_notebook.get(notebook):
            for job in by_notebook[notebook]:
                task = (("task", job.task),) if notebook == "sft" else ()
                suffix = f"_{job.task}" if notebook == "sft" else ""
                out.append(NotebookJob(f"{stem}_{job.ckpt}{suffix}", notebook,
                                       base + (("ckpt", job.ckpt),) + task + (("make_figures", "False"),), job))
            out.append(NotebookJob(f"{stem}_figures", notebook, base + (("ckpt", "all"),)))
        else:
            out.append(NotebookJob(stem, notebook, base))
    return out


def commands(profile: Profile, throughput: dict | None = None) -> str:
    """The dry-run plan: one papermill command per job (with its GPU-hour estimate where it runs a model)."""
    out_dir = f"results/{profile.name}/notebooks"
    costed = profile.requires_gpu and bool(jobs(profile))
    if costed:
        throughput = throughput or load_throughput()
    lines = []
    for nb in notebook_jobs(profile):
        line = f"papermill notebooks/{nb.notebook}.ipynb {out_dir}/{nb.id}.ipynb {nb.papermill_args()}"
        if costed and nb.gpu_job is not None:
            line += f"  # ≈ {estimate(nb.gpu_job, throughput):.2f} GPU-hours (estimate)"
        lines.append(line)
    if costed:
        lines += ["", report(profile, throughput)]
    return "\n".join(lines)


def main(argv=None) -> None:
    """`python -m amuro_utils.plan --profile paper [--gpu NAME]`: print the plan and its cost."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--gpu", default=None, help="throughput entry to use (default: the first; measured wins)")
    parser.add_argument("--jobs", action="store_true", help="tab-separated job list for run_all.sh")
    parser.add_argument("--commands", action="store_true", help="one papermill command per job (run_all --dry-run)")
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    if args.jobs:
        print("\n".join(f"{nb.id}\t{nb.notebook}\t{nb.papermill_args()}" for nb in notebook_jobs(profile)))
    elif args.commands:
        print(commands(profile, load_throughput(gpu=args.gpu) if args.gpu else None))
    else:
        print(report(profile, load_throughput(gpu=args.gpu)))


if __name__ == "__main__":
    main()
