"""The study a profile describes: its fine-tunes, the evaluation plan of every kind of model, the jobs that run them
(one papermill execution each), and the settings identity of every record a job writes or reads.

Nothing here runs a model (amuro_utils.pipeline does) or prices one (amuro_utils.cost does).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pathlib import Path

from . import identity, ladder, sensitivity, tasks
from .profiles import SPRINGER_BENCHMARKS, FineTune, InstructionPlan, Profile, TaskPlan, ckpt_step
from .results import BASE, BASE_METHOD

# instruction_tuning runs before sft: Table 5 and Fig. 3b (in sft) compare the "learned in pre-training" group,
# scored on instruction-tuned models, with the "learned in fine-tuning" group.
RUN_ORDER = ("pretrain_probe", "instruction_tuning", "sft", "format", "transfer", "ood")
MODEL_NOTEBOOKS = ("pretrain_probe", "instruction_tuning", "sft")  # notebooks that run models
METHODS = ("full", "lora")
# The records each notebook's figures and tables read (kinds of model: base, instruction-tuned, supervised).
NOTEBOOK_READS = {"pretrain_probe": ("base",), "instruction_tuning": ("base", "instruction"),
                  "sft": ("base", "sft", "instruction"), "format": ("base", "sft"), "transfer": ("base", "sft"),
                  "ood": ("base", "sft", "instruction")}


# ---------------------------------------------------------------------------------------------------------------
# checkpoints


def hub_cache(profile: Profile) -> Path | None:
    """HF cache folder of the profile's ladder: a local ladder's own cache, else None (the user's HF cache)."""
    return ladder.tiny_cache_dir(profile.name) if ladder.get_ladder(profile.ladder).local else None


def resolve(profile: Profile, label: str) -> ladder.Checkpoint:
    """One ladder label of the profile resolved to its branch (its named rung's, else the label itself), commit and
    step."""
    branch = profile.rungs.get(label) if profile.rungs else None
    return ladder.checkpoint(profile.ladder, label, branch=branch, cache_dir=hub_cache(profile), labels=profile.rungs)


def sensitivity_identity(profile: Profile, ckpt: ladder.Checkpoint) -> dict:
    """The settings identity of one checkpoint's sensitivity rows (Springer et al. probe)."""
    return identity.sensitivity_identity(identity.model_identity(ckpt.repo, ckpt.commit), profile.sensitivity,
                                         sensitivity.HELDOUT_TEXT)


def training_identity(profile: Profile, ckpt: ladder.Checkpoint, spec: FineTune) -> dict:
    """What a fine-tuning record (loss curve, forgetting) depends on: the fine-tuned model and the held-out text."""
    return {"weights": identity.weights_identity(profile, identity.model_identity(ckpt.repo, ckpt.commit), spec),
            "heldout": {"block": profile.sensitivity.block, "tokens": profile.sensitivity.tokens}}


# ---------------------------------------------------------------------------------------------------------------
# fine-tunes


def seeds(profile: Profile, settings) -> tuple[int, ...]:
    """The training seeds of a fine-tune: the profile's `seeds`, else its TrainSettings' one seed."""
    chosen = profile.seeds if profile.seeds is not None else (settings.seed,)
    if not chosen or len(set(chosen)) != len(chosen):
        raise ValueError(f"profile {profile.name!r} seeds {chosen!r}: give at least one seed and no duplicates")
    return tuple(chosen)


def fine_tunes(profile: Profile, source: TaskPlan | InstructionPlan) -> list[FineTune]:
    """Every fine-tuning run of one task (or of the instruction plan): one per (method, training seed)."""
    unknown = [m for m in profile.methods if m not in METHODS]
    if unknown or not profile.methods or len(set(profile.methods)) != len(profile.methods):
        raise ValueError(f"profile {profile.name!r} methods {profile.methods!r}: give distinct fine-tuning methods "
                         f"among {METHODS}")
    instruction = isinstance(source, InstructionPlan)
    return [FineTune(source.name, source.train_set, "chat" if instruction else "prompt_completion",
                     source.n_train, source.fraction if instruction else None, replace(source.train, seed=seed),
                     method, profile.lora if method == "lora" else None)
            for method in profile.methods for seed in seeds(profile, source.train)]


# ---------------------------------------------------------------------------------------------------------------
# evaluation plans: which (eval_set, format) pairs each kind of model is scored on


def _formats(profile: Profile, eval_set: str) -> list[str]:
    available = tasks.get(eval_set).templates
    return [f for f in profile.formats if f in available]


def base_plan(profile: Profile) -> list[tuple[str, str]]:
    """A base checkpoint is scored on every set of the study in every format it has (pretrain_probe, Fig. 2)."""
    plan = []
    for t in profile.tasks:
        for eval_set in (*t.in_domain, *t.ood):
            plan += [(eval_set, f) for f in _formats(profile, eval_set)]
    return list(dict.fromkeys(plan + instruction_plan(profile)))


def sft_plan(profile: Profile, task: TaskPlan) -> list[tuple[str, str]]:
    """A model fine-tuned on `task`: its ID and OOD sets in every format, the other tasks' ID sets (cross-task)."""
    plan = [(s, f) for s in (*task.in_domain, *task.ood) for f in _formats(profile, s)]
    for other in profile.tasks:
        if other.name != task.name:
            plan += [(s, "default") for s in other.in_domain]
    return list(dict.fromkeys(plan))


def instruction_plan(profile: Profile) -> list[tuple[str, str]]:
    """An instruction-tuned model: the rank-classification benchmarks and LLMBar (Fig. 4), and, with an
    `overtraining_pair`, Springer et al.'s Fig. 1 benchmarks (PIQA joins)."""
    it = profile.instruction
    springer = SPRINGER_BENCHMARKS if profile.overtraining_pair else ()
    names = (*it.benchmarks, *[b for b in springer if b not in it.benchmarks], *it.llmbar)
    return [(b, "default") for b in names]


def instruction_ckpts(profile: Profile) -> tuple[str, ...]:
    """The checkpoints that are instruction-tuned: the study's, and the earlier rung of the overtraining pair."""
    extra = profile.overtraining_pair[0] if profile.overtraining_pair else None
    if extra is None or extra in profile.ckpts:
        return profile.ckpts
    def position(label: str) -> float:  # ladder order: named rungs in their order, else by step, main last
        if profile.rungs:
            return list(profile.rung_labels()).index(label)
        step = ckpt_step(label)
        return float("inf") if step is None else step

    return tuple(sorted((*profile.ckpts, extra), key=position))


# ---------------------------------------------------------------------------------------------------------------
# jobs


@dataclass(frozen=True)
class Job:
    """One unit of model work: a notebook run on one checkpoint for one task ('base' = no training), with every
    fine-tuning run it does (one per seed) and the (eval_set, format) pairs each resulting model is scored on."""

    notebook: str  # "pretrain_probe" | "sft" | "instruction_tuning"
    ckpt: str
    task: str  # "base" or the fine_tune label
    evals: tuple[tuple[str, str], ...]
    fine_tunes: tuple[FineTune, ...] = ()
    profile: Profile = field(default=None, compare=False, repr=False)


def jobs(profile: Profile) -> list[Job]:
    """Every model job of the study, in run order: base evaluations, supervised fine-tunes, instruction tuning."""
    if profile.results_source == "paper":
        return []  # figures from the released numbers: no model is run
    out = [Job("pretrain_probe", ckpt, BASE, tuple(base_plan(profile)), (), profile) for ckpt in profile.ckpts]
    for task in profile.tasks:
        evals, runs = tuple(sft_plan(profile, task)), tuple(fine_tunes(profile, task))
        out += [Job("sft", ckpt, task.name, evals, runs, profile) for ckpt in profile.ckpts]
    it = profile.instruction
    evals, runs = tuple(instruction_plan(profile)), tuple(fine_tunes(profile, it))
    out += [Job("instruction_tuning", ckpt, it.name, evals, runs, profile) for ckpt in instruction_ckpts(profile)]
    return out


def find_job(profile: Profile, notebook: str, ckpt: str, task: str) -> Job:
    """The model job of (notebook, checkpoint, task), also for a rung of the ladder outside the study's `ckpts`."""
    if ckpt not in profile.ckpts:
        # a named rung of a local ladder, or any step label of a hub ladder (e.g. step550000 of OLMo-1B)
        if ckpt not in profile.rung_labels() and (profile.rungs or ckpt_step(ckpt) is None):
            raise ValueError(f"checkpoint {ckpt!r} is not on the {profile.name!r} ladder {list(profile.rung_labels())}")
        profile = replace(profile, ckpts=(ckpt,))
    for job in jobs(profile):
        if (job.notebook, job.ckpt, job.task) == (notebook, ckpt, task):
            return job
    raise ValueError(f"profile {profile.name!r} has no {notebook} job for checkpoint {ckpt!r} and task {task!r}")


def record_keys(job: Job) -> list[tuple[dict, FineTune | None]]:
    """(record key, its fine-tuning run or None for a base model) of every record a job writes, in plan order."""
    profile = job.profile
    repo = ladder.get_ladder(profile.ladder).repo
    return [({"model": repo, "ckpt": job.ckpt, "fine_tune": BASE if spec is None else spec.name,
              "method": BASE_METHOD if spec is None else spec.method, "seed": None if spec is None else spec.seed,
              "eval_set": eval_set, "format": fmt, "shots": profile.shots}, spec)
            for spec in (job.fine_tunes or (None,)) for eval_set, fmt in job.evals]


def record_requests(job: Job, model: dict) -> list[tuple[dict, dict]]:
    """(record key, settings identity) of every record a job writes, given its base checkpoint's model identity."""
    return [(key, identity.record_identity(job.profile, model, spec, key["eval_set"], key["format"]))
            for key, spec in record_keys(job)]


# ---------------------------------------------------------------------------------------------------------------
# papermill executions


@dataclass(frozen=True)
class NotebookJob:
    """One papermill execution of a notebook: its id (the output file's name), notebook and parameters, the model
    jobs it runs, and the kinds of records its figures read."""

    id: str
    notebook: str
    params: tuple[tuple[str, str], ...]
    model_jobs: tuple[Job, ...] = ()  # the model work it does (none: drawing figures from records)
    reads: tuple[str, ...] = ()  # record kinds its figures read (NOTEBOOK_READS); empty when it draws nothing

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
        work = by_notebook.get(notebook, [])
        if profile.jobs_per_ckpt and work:
            for job in work:
                task = (("task", job.task),) if notebook == "sft" else ()
                suffix = f"_{job.task}" if notebook == "sft" else ""
                out.append(NotebookJob(f"{stem}_{job.ckpt}{suffix}", notebook,
                                       base + (("ckpt", job.ckpt),) + task + (("make_figures", "False"),), (job,)))
            out.append(NotebookJob(f"{stem}_figures", notebook, base + (("ckpt", "all"),), (),
                                   NOTEBOOK_READS[notebook]))
        else:
            out.append(NotebookJob(stem, notebook, base, tuple(work), NOTEBOOK_READS[notebook]))
    return out


def read_jobs(profile: Profile, kinds: tuple[str, ...]) -> list[Job]:
    """The model jobs whose records are of the given kinds ('base', 'sft', 'instruction')."""
    notebook_of = {"base": "pretrain_probe", "sft": "sft", "instruction": "instruction_tuning"}
    wanted = {notebook_of[k] for k in kinds}
    return [j for j in jobs(profile) if j.notebook in wanted]
