"""What a profile's study costs in GPU-hours, and the pre-flight checks that refuse a job that cannot finish.

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
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from ..config.paths import DATA_DIR, RESULTS_ROOT
from ..config.profiles import (
    DynamicsSettings,
    FineTune,
    ProbeSettings,
    Profile,
    fixed_paraphrase,
    get_profile,
    runs_models,
)
from ..data import tasks
from . import plan as study_plan, stages
from .plan import Job, jobs

THROUGHPUT_FILE = DATA_DIR / "throughput.json"
FORCE_CPU_ENV = "AMURO_FORCE_CPU"
PAPER_A100_HOURS = 1067  # the paper's reported compute
GOAL_H100_HOURS = 10
GB = 1e9


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
    spec["n"] = n if profile.eval_limit is None else min(n, profile.eval_limit)
    return spec


def _prompt_tokens(spec: dict, profile: Profile) -> tuple[float, float, bool]:
    """Mean k-shot prompt length, its demo part, and whether it is left-truncated to max_length - max_new_tokens."""
    k = profile.shots
    demos = k * (spec["query_tokens"] + spec["target_tokens"] + 1)  # demo = prompt + gold + "\n"
    budget = profile.max_length - profile.max_new_tokens
    total = min(demos + spec["query_tokens"], budget)
    return total, min(demos, total), demos + spec["query_tokens"] >= budget


def _train_size(throughput: dict, run: FineTune) -> tuple[int, dict]:
    spec = throughput["workload"]["train_sets"].get(run.train_set)
    if spec is None:
        raise ValueError(f"train set {run.train_set!r} has no workload entry in throughput.json")
    n = run.n_train if run.n_train is not None else int(run.fraction * spec["n_full"])
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
    """How the work is executed; none changes a result."""

    eval_batch_size: int | None = None  # None = the profile's
    sort_by_length: bool = True  # evaluate.py batches prompts sorted by length
    generation_engine: str = "hf"  # "hf" (transformers generate) | "vllm" (continuous batching, CUDA graphs)
    prefix_cache: bool = False  # vLLM generation: the shared 4-shot demo prefix is computed once per set (APC)
    # transformers evaluation with the demos' key/value cache computed once per set (evaluate.py shared_prefix);
    # priced with the cached/uncached time ratios of throughput.json's "shared_prefix" entry
    shared_prefix: bool = True
    # None = the TrainSettings'; "fastest" = the quickest divisor of the batch per job. Every micro-batch size gives
    # the same gradient (train.py); larger ones trade per-step overhead for padding.
    micro_batch_size: int | str | None = None


def _prefill_s(e: dict, n_params: float, tokens: float, batches: float) -> float:
    compute = 2 * n_params * tokens / (e["peak_bf16_flops"] * e["mfu_prefill"])
    return max(compute, batches * 2 * n_params / e["hbm_bytes_per_s"]) + batches * e["forward_overhead_s"]


def _eval_seconds(job: Job, throughput: dict, knobs: Knobs, continuous: bool = True) -> dict[str, float]:
    """Seconds of one model's evaluation plan by kind of scoring, and ('continuous') the teacher-forced pass over
    the generation sets' references that their continuous reading needs (evaluate.reference_bpb; off for the
    evaluations along fine-tuning, which record none)."""
    e, model, profile = throughput["entry"], throughput["models"][job.profile.ladder], job.profile
    batch = knobs.eval_batch_size or profile.eval_batch_size
    new = throughput["workload"]["generated_tokens"]
    out = {"classification": 0.0, "generation": 0.0, "multiple_choice": 0.0}
    if continuous:
        out["continuous"] = 0.0
    ratios = throughput.get("shared_prefix", {}).get("ratios", {}) if knobs.shared_prefix else {}
    for eval_set, _fmt in job.evals:
        kind = tasks.get(eval_set).kind
        spec = _eval_spec(throughput, profile, eval_set)
        seconds = _set_seconds(e, model, profile, spec, kind, batch, new, knobs)
        truncated = kind != "multiple_choice" and _prompt_tokens(spec, profile)[2]
        hf_path = kind != "generation" or knobs.generation_engine == "hf"
        # over-budget prompts take the uncached path (evaluate.py), as does vLLM generation
        out[kind] += seconds * (ratios.get(kind, 1.0) if hf_path and not truncated else 1.0)
        if continuous and kind == "generation":  # one transformers forward pass, priced like classification's
            forward = _teacher_forced_seconds(e, model, profile, spec, batch)
            out["continuous"] += forward * (ratios.get("classification", 1.0) if not truncated else 1.0)
    return out


def _teacher_forced_seconds(e: dict, model: dict, profile: Profile, spec: dict, batch: int) -> float:
    """Seconds of one forward pass over every item's prompt and reference (the continuous reading of generation)."""
    n = spec["n"]
    if e["source"] == "measured":  # a forward pass per item, as a classification prompt is scored
        return n / e["prompts_per_s"]["classification"]
    tokens = min(_prompt_tokens(spec, profile)[0] + spec["target_tokens"], profile.max_length)
    return _prefill_s(e, model["params"], n * tokens, math.ceil(n / batch))


def _set_seconds(e: dict, model: dict, profile: Profile, spec: dict, kind: str, batch: int, new: int,
                 knobs: Knobs) -> float:
    """Seconds to evaluate one set (uncached demos) on the throughput entry's GPU."""
    n_params, kv, n = model["params"], model["kv_bytes_per_token"], spec["n"]
    if e["source"] == "measured":
        return n / e["prompts_per_s"][kind]
    if kind == "multiple_choice":
        seqs = n * spec["choices"]
        length = min(spec["context_tokens"] + spec["choice_tokens"], profile.max_length)
        return _prefill_s(e, n_params, seqs * length, math.ceil(seqs / batch))
    prompt, demos, truncated = _prompt_tokens(spec, profile)
    # vLLM's automatic prefix caching of the demos (vllm_backend enables it), priced from token counts
    cached = knobs.prefix_cache and kind == "generation" and knobs.generation_engine == "vllm"
    per_item = prompt - demos if cached else prompt
    # Truncated prompts all have the budget's length: nothing to pad.
    pad = _padding(spec["query_std"], prompt, batch, knobs.sort_by_length or truncated)
    if kind == "classification":
        return _prefill_s(e, n_params, n * per_item * pad, math.ceil(n / batch))
    if knobs.generation_engine == "vllm":
        # Continuous batching: no padding, decode batch = vllm_decode_batch, CUDA-graph step overhead.
        gen_batch, overhead, pad = e["vllm_decode_batch"], e["vllm_decode_step_overhead_s"], 1.0
    else:
        gen_batch, overhead = batch, e["decode_step_overhead_s"]
    prefill = _prefill_s(e, n_params, n * per_item * pad + (demos if cached else 0), math.ceil(n / batch))
    # Each decode step reads the weights once per batch and every sequence's KV cache (prompt + half the output).
    context = prompt * pad + new / 2
    weights = math.ceil(n / gen_batch) * (2 * n_params / e["hbm_bytes_per_s"] + overhead)
    return prefill + new * (weights + n * context * kv / e["hbm_bytes_per_s"])


def _train_seconds(job: Job, throughput: dict, knobs: Knobs) -> float:
    """Seconds of every fine-tuning run of a job (one per training seed)."""
    return sum(_run_seconds(job.profile, run, throughput, knobs) for run in job.fine_tunes)


def epochs_of(run: FineTune) -> int:
    """The epochs a run is priced at: its fixed epochs, or the convergence schedule's horizon (at most that many)."""
    return run.convergence.epochs(run.train.epochs) if run.schedule == study_plan.CONVERGE else run.train.epochs


def _run_seconds(profile: Profile, run: FineTune, throughput: dict, knobs: Knobs) -> float:
    settings = replace(run.train, epochs=epochs_of(run))
    if knobs.micro_batch_size == "fastest":
        sizes = [m for m in range(1, settings.batch_size + 1) if settings.batch_size % m == 0]
        return min(_run_seconds(profile, run, throughput, replace(knobs, micro_batch_size=m)) for m in sizes)
    e, model = throughput["entry"], throughput["models"][profile.ladder]
    n, spec = _train_size(throughput, run)
    micro = knobs.micro_batch_size or settings.micro_batch_size
    length = min(spec["tokens"], settings.max_length)
    tokens = n * settings.epochs * length
    # forward passes without an update: the zero-step loss (one pass over the examples) and, to convergence, the
    # validation loss (n_val rows at every evaluation)
    evaluations = settings.epochs * run.convergence.evals_per_epoch if run.schedule == study_plan.CONVERGE else 0
    forward = (n + evaluations * (run.convergence.n_val if evaluations else 0)) * length
    if e["source"] == "measured":
        return (tokens + forward / 3) / e["train_tokens_per_s"]
    n_params = model["params"]
    micro_steps = settings.epochs * math.ceil(n / micro)
    optimizer_steps = settings.epochs * math.ceil(n / settings.batch_size)
    padded = tokens * _padding(spec["std"], length, micro, sort_by_length=False)
    compute = 6 * n_params * padded / (e["peak_bf16_flops"] * e["mfu_train"])
    memory = micro_steps * e["train_bytes_per_param"] * n_params / e["hbm_bytes_per_s"]
    return (max(compute, memory) + micro_steps * e["train_micro_step_overhead_s"]
            + optimizer_steps * e["optimizer_bytes_per_param"] * n_params / e["hbm_bytes_per_s"]
            + forward / _forward_rate(throughput, profile))


def _forward_rate(throughput: dict, profile: Profile) -> float:
    """Tokens per second of a forward pass without generation (held-out blocks, probe prompts, validation rows)."""
    e = throughput["entry"]
    return e.get("prefill_tokens_per_s") or flops_derived(e, throughput["models"][profile.ladder])[
        "prefill_tokens_per_s"]


def breakdown(job: Job, throughput: dict, knobs: Knobs = Knobs()) -> dict[str, float]:
    """Seconds of one job on the throughput entry's GPU, by stage (train, classification, generation, …)."""
    if job.profile.ladder not in throughput["models"]:
        raise ValueError(f"ladder {job.profile.ladder!r} has no model entry in throughput.json "
                         f"(have {sorted(throughput['models'])}); GPU-hour estimates need its parameter count")
    seconds = {"train": _train_seconds(job, throughput, knobs), **_eval_seconds(job, throughput, knobs)}
    profile, writes = job.profile, stages.get(job.notebook).writes
    if "sensitivity" in writes:  # Springer sensitivity probe: held-out forwards, clean + each noise draw
        probe = profile.sensitivity
        tokens = (1 + probe.seeds * sum(map(len, probe.readings().values()))) * probe.tokens
        seconds["sensitivity"] = tokens / _forward_rate(throughput, profile)
    seconds.update(beyond_seconds(job, throughput, knobs))
    if job.kind == study_plan.CONVERGE:  # a whole job of the convergence schedule (at most its horizon's epochs)
        return {"converge": sum(seconds.values())}
    return seconds


BEYOND_ANALYSES = {"probes": "probes", "dynamics": "dynamics", "converge": "converge"}  # analysis -> Profile switch


def beyond_seconds(job: Job, throughput: dict, knobs: Knobs = Knobs()) -> dict[str, float]:
    """GPU seconds of what a job does beyond the paper: linear probes of a base checkpoint (forward passes over the
    probed rows), evaluations along each supervised fine-tuning (the dynamics plan at the dynamics' item limit, and
    the held-out loss, at every point); a fine-tune-to-convergence job is priced whole under 'converge'."""
    profile, out = job.profile, {}
    if job.kind == "base" and study_plan.probe_tasks(profile):
        rows = profile.probes.n_train + profile.probes.n_test
        tokens = sum(rows * throughput["workload"]["train_sets"].get(t.train_set, {"tokens": 64.0})["tokens"]
                     for t in study_plan.probe_tasks(profile))
        out["probes"] = tokens / _forward_rate(throughput, profile)
    dynamic = [run for run in job.fine_tunes if study_plan.has_dynamics(profile, run)]
    if dynamic:
        points = len(profile.dynamics.fractions)
        along = replace(job, evals=tuple(study_plan.dynamics_plan(profile, profile.task(job.task))), fine_tunes=(),
                        profile=study_plan.dynamics_profile(profile))
        evals = sum(_eval_seconds(along, throughput, knobs, continuous=False).values())
        heldout = profile.sensitivity.tokens / _forward_rate(throughput, profile) if profile.dynamics.heldout else 0.0
        out["dynamics"] = len(dynamic) * points * (evals + heldout)
    return out


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


def beyond_gpu_line(profile: Profile, throughput: dict | None = None) -> str:
    """One sentence: the GPU-hours of each analysis beyond the paper in this plan, and what a switched-off one
    would add."""
    throughput = throughput or load_throughput()

    def hours(chosen: Profile) -> dict[str, float]:
        out = {name: 0.0 for name in BEYOND_ANALYSES}
        for job in jobs(chosen):
            for name, seconds in breakdown(job, throughput).items():
                if name in out:
                    out[name] += seconds / 3600
        return out

    planned = hours(profile)
    everything = hours(replace(profile, converge=True, probes=profile.probes or ProbeSettings(),
                               dynamics=profile.dynamics or DynamicsSettings()))
    on = {"probes": profile.probes is not None, "dynamics": profile.dynamics is not None,
          "converge": profile.converge}
    parts = [f"{name} {planned[name]:.2f} h" if on[name] else f"{name} off (on: +{everything[name]:.2f} h)"
             for name in BEYOND_ANALYSES]
    return (f"Beyond the paper (h, in the totals above): {', '.join(parts)}; switches: --set probes=none, "
            "dynamics=none, converge=true (converge: at most, its horizon's epochs).")


KNOB_STEPS = (
    ("the release's execution: eval batch 1, HF generate",
     Knobs(eval_batch_size=1, sort_by_length=False, shared_prefix=False)),
    ("+ batched evaluation (profile batch size, unsorted)", Knobs(sort_by_length=False, shared_prefix=False)),
    ("+ length-sorted batches", Knobs(shared_prefix=False)),
    ("+ shared-prefix KV cache (this code's default; transformers only)", Knobs()),
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
    fixed_profile = fixed_paraphrase(profile)
    if fixed_profile.tasks != profile.tasks:
        fixed = plan_table(fixed_profile, throughput, KNOB_STEPS[-1][1])[1]
        rows.append({"execution": "+ labelled GLUE QQP/STS-B as paraphrase OOD (DEVIATION: profile paper-fixed)",
                     "gpu_hours": fixed, "saves_h": previous - fixed})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------------
# pre-flight


class PreflightError(RuntimeError):
    """A job that cannot finish on this machine; the message says what is missing and how much."""


def force_cpu() -> bool:
    """True when AMURO_FORCE_CPU=1 (debugging a GPU profile on a CPU)."""
    return os.environ.get(FORCE_CPU_ENV, "") == "1"


def gpu_refusal(profile: Profile, gpu_memory: int | None = None) -> str | None:
    """Why this machine cannot run `profile` at all: it needs a CUDA GPU and none is visible (the message names the
    fixes); None when it can (a results source that runs no model, a CPU profile or device, a visible GPU). `gpu_memory`: bytes on
    the GPU, None asks torch. The notebooks' set-up and the runner's plan refuse with this one message."""
    if not runs_models(profile) or not profile.requires_gpu or profile.device == "cpu":
        return None  # released numbers or lm-eval output: no model runs
    if _gpu_memory() if gpu_memory is None else gpu_memory:
        return None
    return (f"profile {profile.name!r} needs a CUDA GPU and none is visible. Run it on a GPU machine, use "
            f"`--profile tiny` for the offline CPU demo, or set {FORCE_CPU_ENV}=1 to force the CPU (debugging only: "
            "OLMo-1B fine-tuning on a CPU takes days).")


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
    trains = bool(job.fine_tunes)
    disk = model["download_bytes"] + (2 * n if trains else 0)  # fp32 revision + bf16 fine-tuned copy
    if trains:
        settings = max((run.train for run in job.fine_tunes), key=lambda t: t.micro_batch_size * t.max_length)
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
    """Refuse, before any download, a job this machine cannot finish: no GPU, too little disk or GPU memory, or a
    hub dataset source with no pinned commit (tasks.require_pinned; --allow-unpinned lifts it).

    gpu_memory: bytes on the GPU (0 = none); None asks torch. free_disk: bytes free; None measures the HF cache
    and results folders. Returns the requirements when the job fits.
    """
    if profile.data_source == "hub":  # a dataset source with no pinned commit is refused before the model download
        tasks.require_pinned([*(spec.train_set for spec in job.fine_tunes), *(name for name, _ in job.evals)])
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
                + (", or a smaller micro_batch_size"
                   if any(run.train.micro_batch_size > 1 for run in job.fine_tunes) else "") + ".")
    free_disk = _free_disk() if free_disk is None else free_disk
    if free_disk < need["disk_bytes"]:
        raise PreflightError(
            f"job {job.notebook}/{job.ckpt}/{job.task} needs {need['disk_bytes'] / GB:.1f} GB of disk (one "
            f"{profile.ladder} revision + the bf16 fine-tuned copy), {free_disk / GB:.1f} GB is free. Free space, or "
            "delete used revisions with amuro_utils.models.ladder.prune_revision(repo, revision, cache_dir).")
    return need


# ---------------------------------------------------------------------------------------------------------------
# CPU wall time of a local profile (tiny, smoke): priced from a measured run, checked against the profile's budget

CPU_THROUGHPUT_FILE = DATA_DIR / "cpu_throughput.json"


class BudgetError(RuntimeError):
    """A profile whose estimated wall time exceeds its declared budget (refused before anything runs)."""


def _json_files(folder: Path, pattern: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob(pattern)) if p.is_file()]


def _units(notebook: str, model_jobs) -> int:
    """What a model notebook's per-unit overhead (loading, saving, forgetting losses, sensitivity) scales with: its
    stage's `cost_unit` (amuro_utils.study.stages), checkpoints or fine-tunes."""
    if stages.get(notebook).cost_unit == "checkpoint":
        return len(model_jobs)
    return sum(len(job.fine_tunes) for job in model_jobs)


def _cpu_work(profile: Profile, nb, rates: dict) -> float:
    """Seconds of measured-rate work in one papermill job: ladder pre-training, fine-tuning, evaluation (and what it
    does beyond the paper: `_cpu_beyond`)."""
    return sum(seconds for _, seconds in _cpu_units(profile, nb, rates))


def _cpu_units(profile: Profile, nb, rates: dict) -> list[tuple[tuple, float]]:
    """The measured-rate work of one papermill job in run order: ("ladder",) pre-training, then one entry per model
    job (its checkpoint and task: fine-tuning, evaluation and what it does beyond the paper), in seconds."""
    from ..models.tiny_ladder import tiny_settings

    units = []
    if "ladder" in stages.get(nb.notebook).writes and nb.model_jobs and profile.tiny_ladder is not None:
        st = tiny_settings(profile)
        units.append((("ladder",), rates["pretrain_s_per_token"] * st.total_steps * st.batch_size * st.seq_len))
    for job in nb.model_jobs:
        seconds = 0.0
        for run in job.fine_tunes:
            seconds += _cpu_train(rates, run)
        seconds += _cpu_evals(profile, rates, job.evals) * max(1, len(job.fine_tunes))
        seconds += sum(_cpu_beyond(profile, rates, job).values())
        units.append(((job.ckpt, job.task), seconds))
    return units


def job_timeline(profile: Profile, nb) -> list[tuple[tuple, float]] | None:
    """What one papermill job will spend its time on, in the order its notebook does it, as the cost model prices it
    (seconds; the runner's ETA reads it): ("start",) its kernel's start where the calibration measured it;
    ("ladder",) pre-training; per model job, checkpoint by checkpoint
    (plan.run_order), each training run's (ckpt, task, run, "train") and (ckpt, task, run, "evaluate") — a base
    checkpoint's (ckpt, "base", 0, "evaluate") —; ("sensitivity",) the Springer probe; ("probes", ckpt) per
    checkpoint; ("rest",) the rest of the notebook (figures, verdicts). A CPU profile's units sum to its job's
    estimate: the measured per-checkpoint or per-fine-tune overhead (loading, saving, forgetting losses) goes into
    the unit it belongs to, the sensitivity probe's share of it into its own unit, the start and the figures and
    verdicts (`start_s`, `tail_s`: measured from the progress logs) first and last. GPU profiles: the GPU-hour
    model. None where it cannot be priced."""
    if not runs_models(profile):
        return None
    if profile.device == "cpu":
        frame = cpu_estimate(profile)
        if frame is None:
            return None
        rates = rates_for(profile, json.loads(CPU_THROUGHPUT_FILE.read_text()))
        units = _cpu_timeline(profile, nb, rates)
        start = rates["overhead"].get(nb.notebook, {}).get("start_s", 0.0) if nb.model_jobs else 0.0
        total = float(frame.set_index("job").loc[nb.id, "seconds"]) if nb.id in set(frame["job"]) else 0.0
        return [(("start",), start)] * (start > 0) + units + \
            [(("rest",), max(total - start - sum(s for _, s in units), 0.0))]
    throughput = load_throughput()
    units, sensitivity, probes = [], 0.0, []
    for job in study_plan.run_order(nb.model_jobs):
        seconds = breakdown(job, throughput)
        sensitivity += seconds.get("sensitivity", 0.0)
        if seconds.get("probes"):
            probes.append((("probes", job.ckpt), seconds["probes"]))
        evals = sum(seconds.get(kind, 0.0) for kind in (*EVAL_KINDS, "continuous"))
        units += _run_units(job, seconds.get("train", 0.0) + seconds.get("dynamics", 0.0), evals)
    return units + [(("sensitivity",), sensitivity)] * (sensitivity > 0) + probes + [(("rest",), 0.0)]


EVAL_KINDS = ("classification", "generation", "multiple_choice")


def _run_units(job, train: float, evals: float, overhead: float = 0.0) -> list[tuple[tuple, float]]:
    """A model job's units: per training run, its training (with the job's per-run overhead) then its evaluation;
    a base checkpoint's evaluation (with the overhead). `train` and `evals` are the whole job's."""
    if not job.fine_tunes:
        return [((job.ckpt, job.task, 0, "evaluate"), evals + overhead)]
    n = len(job.fine_tunes)
    return [unit for k in range(n) for unit in (((job.ckpt, job.task, k, "train"), (train + overhead) / n),
                                                ((job.ckpt, job.task, k, "evaluate"), evals / n))]


def _cpu_timeline(profile: Profile, nb, rates: dict) -> list[tuple[tuple, float]]:
    """A CPU job's units in run order (job_timeline), without the rest."""
    units = [unit for unit in _cpu_units(profile, nb, rates) if unit[0] == ("ladder",)]
    per_unit = rates["overhead"].get(nb.notebook, {}).get("per_unit_s", 0.0)
    ordered = study_plan.run_order(nb.model_jobs)
    base = [job for job in ordered if not job.fine_tunes]
    # the sensitivity probe runs after every checkpoint's evaluation; it is measured inside the per-checkpoint
    # overhead, so its modelled share (held-out forward passes) moves out of the checkpoints' units into its own
    sensitivity = 0.0
    if "sensitivity" in stages.get(nb.notebook).writes and base:
        probe = profile.sensitivity
        tokens = (1 + probe.seeds * sum(map(len, probe.readings().values()))) * probe.tokens * len(base)
        sensitivity = min(rates.get("heldout_s_per_token", 0.0) * tokens, per_unit * len(base))
    probes = []
    for job in ordered:
        beyond = _cpu_beyond(profile, rates, job)
        if beyond.get("probes"):  # the linear probes run after the sensitivity probe
            probes.append((("probes", job.ckpt), beyond.pop("probes")))
        overhead = per_unit * _units(nb.notebook, [job]) - (sensitivity / len(base) if not job.fine_tunes else 0.0)
        train = sum(_cpu_train(rates, run) for run in job.fine_tunes) + sum(beyond.values())
        evals = _cpu_evals(profile, rates, job.evals) * max(1, len(job.fine_tunes))
        units += _run_units(job, train, evals, overhead)
    return units + [(("sensitivity",), sensitivity)] * (sensitivity > 0) + probes


def _cpu_train(rates: dict, run: FineTune) -> float:
    """Seconds of one fine-tuning (the zero-step loss included in the measured rate); to convergence, at most the
    horizon's epochs (or the measured share of it) and a validation pass (≈ 1/3 of a training pass) per evaluation."""
    rate = rates["train_s_per_example_epoch"].get(run.train_set)
    if rate is None:
        raise KeyError(f"train set {run.train_set!r}")
    if run.schedule != study_plan.CONVERGE:
        return rate * run.n_train * run.train.epochs
    epochs = epochs_of(run) * rates.get("converge_epoch_share", 1.0)
    evaluations = epochs * run.convergence.evals_per_epoch
    return rate * (run.n_train * epochs + evaluations * run.convergence.n_val / 3)


def _cpu_evals(profile: Profile, rates: dict, evals, continuous: bool = True) -> float:
    """Seconds to score one model on (eval_set, format) pairs at the profile's item limit, with the continuous
    readings' extra pass (generation: `continuous_s_per_item` measured per set, else the benchmark's
    `continuous_ratio` of the set's scoring time; off for the evaluations along fine-tuning)."""
    seconds = 0.0
    for eval_set, _ in evals:
        rate, items = rates["eval_s_per_item"].get(eval_set, (None, None))
        if rate is None:
            raise KeyError(f"eval set {eval_set!r}")
        n = profile.eval_limit if items >= rates["eval_limit"] else min(items, profile.eval_limit)
        seconds += rate * n
        if continuous and tasks.get(eval_set).kind == "generation":
            measured = rates.get("continuous_s_per_item", {}).get(eval_set)
            ratio = rates.get("continuous_ratio", {}).get("generation", 0.0)
            seconds += (measured if measured is not None else rate * ratio) * n
    return seconds


def _cpu_beyond(profile: Profile, rates: dict, job) -> dict[str, float]:
    """CPU seconds of what a model job does beyond the paper (the rates of the paper's work, plus the measured probe
    and held-out-loss rates): probes of a base checkpoint, evaluations along each supervised fine-tuning."""
    out = {}
    if job.kind == "base" and study_plan.probe_tasks(profile):
        rows = (profile.probes.n_train + profile.probes.n_test) * len(study_plan.probe_tasks(profile))
        out["probes"] = rates.get("probe_s_per_row", 0.0) * rows
    dynamic = [run for run in job.fine_tunes if study_plan.has_dynamics(profile, run)]
    if dynamic:
        points = len(profile.dynamics.fractions)
        evals = _cpu_evals(study_plan.dynamics_profile(profile), rates,
                           study_plan.dynamics_plan(profile, profile.task(job.task)), continuous=False)
        heldout = rates.get("heldout_s_per_token", 0.0) * profile.sensitivity.tokens if profile.dynamics.heldout else 0
        out["dynamics"] = len(dynamic) * points * (evals + heldout)
    return out


def beyond_cpu(profile: Profile, rates: dict | None = None) -> dict[str, float] | None:
    """CPU seconds of each analysis beyond the paper on a local profile, as the plan prices it: 'probes',
    'dynamics', and 'converge' (its fine-tuning and evaluation, at most); the analyses switched off cost 0 (None
    where the profile cannot be priced)."""
    from .plan import notebook_jobs

    rates = rates or _cpu_rates()
    if rates is None or cpu_estimate(profile, rates) is None:
        return None
    rates = rates_for(profile, rates)
    out = {"probes": 0.0, "dynamics": 0.0, "converge": 0.0}
    for nb in notebook_jobs(profile):
        for job in nb.model_jobs:
            for analysis, seconds in _cpu_beyond(profile, rates, job).items():
                out[analysis] += seconds
            if job.kind == study_plan.CONVERGE:
                out["converge"] += sum(_cpu_train(rates, run) for run in job.fine_tunes) + \
                    _cpu_evals(profile, rates, job.evals) * len(job.fine_tunes)
    return out


def _cpu_rates() -> dict | None:
    return json.loads(CPU_THROUGHPUT_FILE.read_text()) if CPU_THROUGHPUT_FILE.exists() else None


REFERENCE_BODY = "64x2"  # the body the rates of cpu_throughput.json were measured on (the tiny ladder's)


def body_of(profile: Profile) -> str | None:
    """A local ladder's body, "HIDDENxLAYERS" (None: a hub ladder)."""
    st = profile.tiny_ladder
    return None if st is None else f"{st.hidden_size}x{st.num_layers}"


def rates_for(profile: Profile, rates: dict) -> dict:
    """The rates a profile is priced with: the measured ones where its ladder has the body they were measured on;
    for another body, each kind of work scaled by that body's measured cost over the reference body's
    (`body_cost` in cpu_throughput.json: pre-training, fine-tuning, and the model's forward passes — evaluation,
    held-out losses, probes, and the per-checkpoint loading and scoring of the overhead). KeyError where the body has
    no measured factors (the profile cannot be priced: run it once, then --calibrate it)."""
    body = body_of(profile)
    measured_on = rates.get("body", REFERENCE_BODY)
    if body is None or body == measured_on:
        return rates
    factors = rates.get("body_cost", {}).get("bodies", {}).get(body)
    if factors is None:
        raise KeyError(f"body {body}")
    pre, train, forward = factors["pretrain"], factors["train"], factors["forward"]
    scaled = {**rates, "body": body,
              "pretrain_s_per_token": rates["pretrain_s_per_token"] * pre,
              "train_s_per_example_epoch": {k: v * train for k, v in rates["train_s_per_example_epoch"].items()},
              "eval_s_per_item": {k: (v * forward, n) for k, (v, n) in rates["eval_s_per_item"].items()},
              "continuous_s_per_item": {k: v * forward for k, v in rates.get("continuous_s_per_item", {}).items()},
              "overhead": {nb: {k: v * forward if k == "per_unit_s" else v for k, v in o.items()}
                           for nb, o in rates["overhead"].items()}}
    for key in ("heldout_s_per_token", "probe_s_per_row"):
        if key in rates:
            scaled[key] = rates[key] * forward
    return scaled


def _body_factors(reference: dict, measured: dict) -> dict[str, float]:
    """A body's cost over the reference body's, per kind of work, from the rates two runs measured: pre-training per
    token; fine-tuning and forward passes as the ratio of their summed rates over the train / eval sets both ran."""
    def ratio(a: dict, b: dict) -> float:
        common = sorted(set(a) & set(b))
        if not common:
            raise ValueError("the two calibrations share no set to compare")
        return sum(b[k] for k in common) / sum(a[k] for k in common)

    return {"pretrain": measured["pretrain_s_per_token"] / reference["pretrain_s_per_token"],
            "train": ratio(reference["train_s_per_example_epoch"], measured["train_s_per_example_epoch"]),
            "forward": ratio({k: v for k, (v, _) in reference["eval_s_per_item"].items()},
                             {k: v for k, (v, _) in measured["eval_s_per_item"].items()})}


def calibrate_cpu(profile: Profile, root: Path | None = None) -> dict:
    """Per-unit CPU costs measured by a finished run of `profile` (its records, fine-tuning records, job markers
    and ladder summary): the rates `cpu_estimate` prices any local profile with."""
    from ..config.paths import results_dir
    from ..store.results import Store
    from .plan import notebook_jobs

    root = Path(root or results_dir(profile.name))
    markers = {p.stem: json.loads(p.read_text())["seconds"] for p in (root / "jobs").glob("*.done")}
    missing = [nb.id for nb in notebook_jobs(profile) if nb.id not in markers]
    if missing or profile.eval_limit is None:
        raise ValueError(f"calibrate from a finished run with an eval_limit: {root} lacks jobs {missing}")
    evals: dict[str, list[float]] = {}  # eval set -> [seconds, items scored, most items in one record]
    continuous: dict[str, list[float]] = {}  # generation set -> [seconds of the teacher-forced pass, items]
    for record in (json.loads(p.read_text()) for p in Store(root / "records").files()):
        seconds, n = record["metrics"].get("seconds"), len(record.get("scores") or [])
        if seconds is not None and n:
            total = evals.setdefault(record["key"]["eval_set"], [0.0, 0, 0])
            total[0], total[1], total[2] = total[0] + seconds, total[1] + n, max(total[2], n)
        extra = record["metrics"].get("seconds_continuous")
        if extra and n:
            total = continuous.setdefault(record["key"]["eval_set"], [0.0, 0])
            total[0], total[1] = total[0] + extra, total[1] + n
    train: dict[str, list[float]] = {}  # train set -> [seconds, examples × epochs]
    for record in _json_files(root / "fine_tunes", "*/*.json"):
        spec = record["identity"]["fine_tune"]  # the training's identity (plan.training_identity)
        total = train.setdefault(spec["data"]["name"], [0.0, 0])
        total[0] += record["seconds"]
        total[1] += record["n_examples"] * spec["settings"]["epochs"]
    rates = {"eval_limit": profile.eval_limit,
             "eval_s_per_item": {k: (s / n, int(most)) for k, (s, n, most) in sorted(evals.items())},
             "continuous_s_per_item": {k: s / n for k, (s, n) in sorted(continuous.items())},
             "train_s_per_example_epoch": {k: s / n for k, (s, n) in sorted(train.items())}}
    rates.update(_calibrate_beyond(root))
    ladder_file = root / "tiny_ladder.json"
    if ladder_file.exists():
        summary = json.loads(ladder_file.read_text())
        st = summary["settings"]
        rates["pretrain_s_per_token"] = summary["wall_s"] / (st["total_steps"] * st["batch_size"] * st["seq_len"])
    overhead = {}
    for nb in notebook_jobs(profile):  # what the measured work leaves of each job's wall time
        left = markers[nb.id] - _cpu_work(profile, nb, rates)
        units = _units(nb.notebook, nb.model_jobs)
        overhead[nb.notebook] = {"per_unit_s": max(left, 0.0) / units} if units else {"fixed_s": max(left, 0.0)}
        ends = _job_ends(root / "notebooks" / f"{nb.id}.progress.jsonl")
        if units and ends is not None:  # its kernel's start and its figures and verdicts, of that overhead
            start, tail = (min(max(x, 0.0), max(left, 0.0) / 2) for x in ends)
            overhead[nb.notebook] = {"per_unit_s": max(left - start - tail, 0.0) / units, "start_s": start,
                                     "tail_s": tail}
    rates["overhead"] = overhead
    return rates


def _job_ends(path: Path) -> tuple[float, float] | None:
    """(seconds from a job's start to its notebook's first event, seconds from its first figure or verdict — the
    'rest' unit — to its end), read from its progress log; None without a complete log."""
    from ..config.reporter import read_progress

    events = read_progress(path)
    if len(events) < 3 or events[0]["what"] != "job started" or events[-1]["what"] != "job finished":
        return None
    rest = next((e["t"] for e in events if e.get("unit") == "rest"), events[-1]["t"])
    return events[1]["t"] - events[0]["t"], events[-1]["t"] - rest


def _probed_rows(rows: list[dict]) -> int:
    """Rows a checkpoint's probe artifact read: per task (one row per layer), its probe-training and held-out rows."""
    by_task = {r["task"]: r["n_train"] + r["n_test"] for r in rows}
    return sum(by_task.values())


def _calibrate_beyond(root: Path) -> dict:
    """The rates of the work beyond the paper, from a finished run's artifacts: seconds per probed row (probe rows),
    per held-out token scored along fine-tuning (records along fine-tuning), and the share of its horizon a
    fine-tune-to-convergence run trains for (its training records); only those the run made."""
    out = {}
    probed = [(p["seconds"], _probed_rows(p["rows"])) for p in _json_files(root / "probes", "*.json")
              if p.get("rows") and p.get("seconds") is not None]
    if probed:
        out["probe_s_per_row"] = sum(s for s, _ in probed) / sum(n for _, n in probed)
    heldout = [(point["heldout_seconds"], point["heldout_tokens"]) for d in _json_files(root / "dynamics", "*/*.json")
               for point in d.get("points", []) if point.get("heldout_seconds") is not None]
    if heldout:
        out["heldout_s_per_token"] = sum(s for s, _ in heldout) / sum(n for _, n in heldout)
    converged = [(r["steps"], r["total_steps"]) for r in _json_files(root / study_plan.CONVERGE / "fine_tunes",
                                                                      "*/*.json") if r.get("total_steps")]
    if converged:
        out["converge_epoch_share"] = sum(s for s, _ in converged) / sum(t for _, t in converged)
    return out


def write_cpu_calibration(profile: Profile, root: Path | None = None, path: Path = CPU_THROUGHPUT_FILE) -> dict:
    """Measure the rates from a finished run and save them (with where and when) for every local profile."""
    import platform
    import time

    rates = calibrate_cpu(profile, root)
    previous = json.loads(path.read_text()) if path.exists() else None
    body = body_of(profile)
    if previous is not None and body is not None and body != previous.get("body", REFERENCE_BODY):
        # another body: its cost over the reference body's, per kind of work; the reference rates stay
        factors = {**_body_factors(previous, rates),
                   "measured_on": {"profile": profile.name, "date": time.strftime("%Y-%m-%d"),
                                   "cpus": os.cpu_count()}}
        previous.setdefault("body_cost", {}).setdefault("bodies", {})[body] = factors
        path.write_text(json.dumps(previous, indent=1) + "\n")
        return previous
    data = {"about": ("Per-unit CPU wall time measured from a finished run (python -m amuro_utils.study.cost --calibrate "
                      "PROFILE): seconds per pre-training token of the tiny ladder's architecture, per evaluated "
                      "item of each set (its 4-shot prompts, with the item count seen) and of its continuous "
                      "readings' extra pass (generation: the teacher-forced references), per training example and "
                      "epoch of each train set, and the per-checkpoint / per-fine-tune overhead of each notebook "
                      "(loading, saving, forgetting losses, sensitivity probe, kernel start). Used to price local "
                      "profiles against their budget_s."),
            "measured_on": {"profile": profile.name, "date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(),
                            "machine": platform.machine(), "python": platform.python_version()},
            **rates}
    if previous is not None and "body_cost" in previous:  # the other bodies' measured factors are kept
        data["body_cost"] = previous["body_cost"]
    path.write_text(json.dumps(data, indent=1) + "\n")
    return data


def cpu_estimate(profile: Profile, rates: dict | None = None) -> pd.DataFrame | None:
    """Estimated wall seconds of every papermill job of a local (CPU) profile, from scratch; None where it cannot
    be priced (a GPU profile, full test sets, or a set/train set the calibration has not measured)."""
    from .plan import notebook_jobs

    if profile.device != "cpu" or not runs_models(profile) or profile.eval_limit is None:
        return None
    rates = rates or (json.loads(CPU_THROUGHPUT_FILE.read_text()) if CPU_THROUGHPUT_FILE.exists() else None)
    if rates is None:
        return None
    try:
        rates = rates_for(profile, rates)
    except KeyError:
        return None
    rows = []
    for nb in notebook_jobs(profile):
        try:
            work = _cpu_work(profile, nb, rates)
        except KeyError:
            return None
        over = rates["overhead"].get(nb.notebook, {})
        extra = over.get("per_unit_s", 0.0) * _units(nb.notebook, nb.model_jobs) + over.get("fixed_s", 0.0) + \
            over.get("start_s", 0.0) + over.get("tail_s", 0.0)
        rows.append({"job": nb.id, "work_s": work, "overhead_s": extra, "seconds": work + extra})
    return pd.DataFrame(rows)


def _budget(profile: Profile, rates: dict | None) -> tuple[str | None, bool]:
    """(the budget line, whether the estimate exceeds the budget)."""
    if profile.budget_s is None:
        return None, False
    frame = cpu_estimate(profile, rates)
    if frame is None:
        return (f"Profile {profile.name!r} declares a {profile.budget_s:.0f} s budget that cannot be priced "
                f"(no measured rate for one of its sets in {CPU_THROUGHPUT_FILE.name}; run it once, then "
                f"python -m amuro_utils.study.cost --calibrate {profile.name})."), False
    total = float(frame["seconds"].sum())
    over = total > profile.budget_s
    parts = ", ".join(f"{row.job} {row.seconds:.0f}" for row in frame.itertuples())
    return (f"Estimated wall time of profile {profile.name!r} from scratch on a 2-core CPU: {total:.0f} s "
            f"({'OVER' if over else 'within'} its budget of {profile.budget_s:.0f} s; {parts}). "
            + beyond_line(profile, rates)), over


def beyond_line(profile: Profile, rates: dict | None = None) -> str:
    """One sentence: what each analysis beyond the paper adds to a local profile's wall time, and its switch."""
    costs = beyond_cpu(profile, rates)
    if costs is None:
        return ""
    switched = {"probes": profile.probes is not None, "dynamics": profile.dynamics is not None,
                "converge": profile.converge}
    off = {}
    if not profile.converge:  # what switching it on would add
        off["converge"] = beyond_cpu(replace(profile, converge=True), rates)["converge"]
    parts = [f"{name} {costs[name]:.0f} s" if switched[name] else
             f"{name} off" + (f" (on: +{off[name]:.0f} s)" if name in off else "") for name in costs]
    return f"Beyond the paper (in these jobs): {', '.join(parts)}; switches: --set probes=none, dynamics=none, " \
           "converge=true."


def budget_report(profile: Profile, rates: dict | None = None) -> str | None:
    """One line: the study's estimated CPU wall time against the profile's budget (None when it has none)."""
    return _budget(profile, rates)[0]


def check_budget(profile: Profile, rates: dict | None = None) -> str | None:
    """The budget line; BudgetError when the estimate exceeds the budget (before anything runs)."""
    line, over = _budget(profile, rates)
    if over:
        raise BudgetError(line + " Shrink the profile (fewer checkpoints, training examples or epochs), raise its "
                          "budget_s, or run anyway with ./run_all.sh --over-budget.")
    return line


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
    lines.append(beyond_gpu_line(profile, throughput))
    lines.append("\nExecution knobs (estimates, each added to the previous):")
    lines.append(knob_table(profile, throughput).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return "\n".join(lines)


def main(argv=None) -> None:
    """`python -m amuro_utils.study.cost --profile paper [--gpu NAME]`: print every job's GPU-hours and the total."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--gpu", default=None, help="throughput entry to use (default: the first; measured wins)")
    parser.add_argument("--calibrate", metavar="PROFILE",
                        help=f"measure the CPU rates from PROFILE's finished run (a named profile or a profile file) "
                             f"into {CPU_THROUGHPUT_FILE.name}; another body's run records that body's cost factors")
    args = parser.parse_args(argv)
    if args.calibrate:
        from .overrides import is_profile_file, load

        profile = load(args.calibrate) if is_profile_file(args.calibrate) else get_profile(args.calibrate)
        write_cpu_calibration(profile)
        print(f"wrote {CPU_THROUGHPUT_FILE}\n" + (budget_report(profile) or ""))
        return
    profile = get_profile(args.profile)
    line = budget_report(profile)
    print(line if line and profile.device == "cpu" else report(profile, load_throughput(gpu=args.gpu)))


if __name__ == "__main__":
    main()
