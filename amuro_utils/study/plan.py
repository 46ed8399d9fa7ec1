"""The study a profile describes: its fine-tunes, the evaluation plan of every kind of model, the jobs that run them
(one papermill execution each), where each of their results lives and the settings identity it must carry.

Nothing here runs a model (amuro_utils.pipeline does) or prices one (amuro_utils.study.cost does). What each notebook
runs, writes and reads is the stage registry's (amuro_utils.study.stages).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..config.paths import results_dir
from ..config.profiles import (
    METHODS,
    SPRINGER_BENCHMARKS,
    FineTune,
    InstructionPlan,
    Profile,
    TaskPlan,
    ckpt_step,
    runs_models,
    source_record_kinds,
)
from ..data import tasks
from ..models import ladder, sensitivity
from ..stats import analysis
from ..store import identity
from ..store.results import BASE, BASE_METHOD, run_name
from . import stages

CONVERGE = "converge"  # the record kind (and schedule) of fine-tuning to convergence (Profile.converge)
SCHEDULES = ("fixed", CONVERGE)


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


def resolved(profile: Profile, label: str, cache: dict) -> ladder.Checkpoint | None:
    """`resolve`, once per label and `cache`; None while the label cannot be resolved (a local ladder not built yet,
    a hub ladder neither reachable nor cached)."""
    if label not in cache:
        try:
            cache[label] = resolve(profile, label)
        except ladder.LadderError:
            cache[label] = None
    return cache[label]


def sensitivity_identity(profile: Profile, ckpt: ladder.Checkpoint) -> dict:
    """The settings identity of one checkpoint's sensitivity rows (Springer et al. probe)."""
    return identity.sensitivity_identity(identity.model_identity(ckpt.repo, ckpt.commit), profile.sensitivity,
                                         sensitivity.HELDOUT_TEXT)


def weights_identity(profile: Profile, ckpt: ladder.Checkpoint, spec: FineTune) -> dict:
    """The settings identity of a fine-tuned model: its base checkpoint and its training."""
    return identity.weights_identity(profile, identity.model_identity(ckpt.repo, ckpt.commit), spec)


def training_identity(profile: Profile, ckpt: ladder.Checkpoint, spec: FineTune) -> dict:
    """What a fine-tuning's training record (its loss curve and zero-step loss) depends on: the training that made
    the model, and the training record's declared version."""
    return {**weights_identity(profile, ckpt, spec), "training_record_version": identity.TRAINING_RECORD_VERSION}


def forgetting_identity(profile: Profile, ckpt: ladder.Checkpoint, spec: FineTune) -> dict:
    """What a fine-tuned model's forgetting rows depend on: its weights and the held-out text they are scored on."""
    return identity.forgetting_identity(weights_identity(profile, ckpt, spec), profile.sensitivity,
                                        sensitivity.HELDOUT_TEXT)


def dynamics_identity(profile: Profile, ckpt: ladder.Checkpoint, spec: FineTune) -> dict:
    """What a fine-tuned model's records along its fine-tuning depend on: its training, the points, every evaluation
    at them (with the dynamics' item limit) and the held-out text their loss is scored on."""
    settings, task = profile.dynamics, profile.task(spec.name)
    scored = dynamics_profile(profile)
    evals = {f"{s}/{f}": identity.eval_identity(scored, s, f) for s, f in dynamics_plan(profile, task)}
    heldout = (identity.heldout_identity(sensitivity.HELDOUT_TEXT, profile.sensitivity.block, profile.sensitivity.tokens)
               if settings.heldout else None)
    return identity.dynamics_identity(weights_identity(profile, ckpt, spec), settings, evals, heldout)


def probes_identity(profile: Profile, ckpt: ladder.Checkpoint) -> dict:
    """What one checkpoint's linear-probe rows depend on: the checkpoint, the probe settings and the probed rows."""
    return identity.linear_probe_identity(identity.model_identity(ckpt.repo, ckpt.commit), profile.probes,
                                          probe_tasks(profile), profile.data_source, profile.max_length)


def analysis_identity(profile: Profile) -> dict:
    """What the verdicts of every notebook (and the scorecard) depend on beyond the results they read: the claims
    code's declared version and the profile settings the claims read."""
    return {"claims_version": identity.CLAIMS_VERSION, "ckpts": list(profile.ckpts), "methods": list(profile.methods),
            "learned_in_pt": profile.learned_in_pt, "learned_in_ft": profile.learned_in_ft,
            "main_step": profile.main_step, "overtraining_pair": profile.overtraining_pair,
            "llmbar_exact_match": profile.llmbar_exact_match, "llmbar_gold_leak": profile.llmbar_gold_leak}


def scorecard_identity(profile: Profile, *, records=(), sensitivity=(), forgetting=(), released=None,
                       **beyond) -> dict:
    """The scorecard's identity: the identity hashes of every record, sensitivity row and forgetting row it reads (or
    the released tables' digest), of what its "Beyond the paper" section reads besides (`beyond`: 'training' records
    with their zero-step loss, 'dynamics' and 'probes' rows; converge records are among `records`), and the analysis
    identity."""
    inputs = {"released": released} if released is not None else {
        "records": sorted(records), "sensitivity": sorted(sensitivity), "forgetting": sorted(forgetting),
        **{kind: sorted(digests) for kind, digests in sorted(beyond.items()) if digests}}
    return {**inputs, "analysis": analysis_identity(profile)}


# ---------------------------------------------------------------------------------------------------------------
# where each result of a profile lives (records: results.Store)


def _schedule_root(profile: Profile, spec: FineTune | None = None, kind: str | None = None) -> Path:
    """results/<profile>/, or results/<profile>/converge/ for what the fine-tune-to-convergence schedule makes (its
    weights, training records and records: never read as the fixed schedule's)."""
    converge = (spec is not None and spec.schedule == "converge") or kind == CONVERGE
    return results_dir(profile.name) / (CONVERGE if converge else "")


def records_dir(profile: Profile, kind: str = "base") -> Path:
    """The records store of a record kind: results/<profile>/records, the converge schedule's its own."""
    return _schedule_root(profile, kind=kind) / "records"


def weights_dir(profile: Profile, ckpt: str, spec: FineTune) -> Path:
    """The folder of a fine-tuned model's weights (a folder artifact: its DONE file carries the identity)."""
    return _schedule_root(profile, spec) / "models" / ckpt / run_name(spec.name, spec.method, spec.seed)


def training_path(profile: Profile, ckpt: str, spec: FineTune) -> Path:
    """A fine-tuning's training record: its loss curve (converge: and its validation curve)."""
    return _schedule_root(profile, spec) / "fine_tunes" / ckpt / f"{run_name(spec.name, spec.method, spec.seed)}.json"


def dynamics_path(profile: Profile, ckpt: str, spec: FineTune) -> Path:
    """A fine-tuned model's records along its fine-tuning (its own folder: never read as the final records)."""
    return results_dir(profile.name) / "dynamics" / ckpt / f"{run_name(spec.name, spec.method, spec.seed)}.json"


def probes_path(profile: Profile, ckpt: str) -> Path:
    """A checkpoint's linear-probe rows."""
    return results_dir(profile.name) / "probes" / f"{ckpt}.json"


def forgetting_path(profile: Profile, ckpt: str, spec: FineTune) -> Path:
    """A fine-tuned model's forgetting rows: per-block held-out loss of the model and of its base."""
    return _schedule_root(profile, spec) / "forgetting" / ckpt / f"{run_name(spec.name, spec.method, spec.seed)}.json"


def sensitivity_path(profile: Profile, ckpt: str) -> Path:
    """A checkpoint's sensitivity rows."""
    return results_dir(profile.name) / "sensitivity" / f"{ckpt}.json"


def scorecard_path(profile: Profile) -> Path:
    """The scorecard: every claim judged (figures/<profile>/claims*.md and .csv are drawn from it)."""
    return results_dir(profile.name) / "scorecard.json"


# Each kind of per-model artifact: where it lives and the identity it carries, (profile, ckpt, spec) -> …; the
# checkpoint's artifacts (sensitivity, probes) take no fine-tuning.
ARTIFACTS = {
    "training": (lambda p, c, s: training_path(p, c.label, s), training_identity),
    "forgetting": (lambda p, c, s: forgetting_path(p, c.label, s), forgetting_identity),
    "dynamics": (lambda p, c, s: dynamics_path(p, c.label, s), dynamics_identity),
    "sensitivity": (lambda p, c, s: sensitivity_path(p, c.label), lambda p, c, s: sensitivity_identity(p, c)),
    "probes": (lambda p, c, s: probes_path(p, c.label), lambda p, c, s: probes_identity(p, c)),
}


def artifact(profile: Profile, kind: str, ckpt: ladder.Checkpoint, spec: FineTune | None = None) -> tuple[Path, dict]:
    """(where, under which identity) one artifact of `kind` (ARTIFACTS) of a checkpoint, or of a fine-tuning of it."""
    try:
        where, what = ARTIFACTS[kind]
    except KeyError:
        raise ValueError(f"unknown artifact kind {kind!r}; kinds: {sorted(ARTIFACTS)}") from None
    return where(profile, ckpt, spec), what(profile, ckpt, spec)


def forgetting_fix(profile: Profile, job_id: str = "JOB", what: str = "forgetting") -> str:
    """How to re-measure forgetting rows whose fine-tuned weights were not kept, or the records along a fine-tuning
    (`what`; only its training can redo them): neither is ever retrained for unasked."""
    rerun = (f"rerun the job that trained them (`./run_all.sh --profile {profile.name} --rerun {job_id}`: retrains and "
             "re-evaluates; `--status` names the job)")
    if what != "forgetting":
        return f"{what} can only be re-measured by training again, which is never done unasked: {rerun}"
    return (f"the fine-tuned weights were not kept, and forgetting is never re-measured by retraining: {rerun}, or "
            "keep the weights (`--set keep_weights=true`) in the next run that trains them")


def marker_path(profile: Profile, job_id: str) -> Path:
    """A papermill job's marker: written when the job finishes, carrying the identity of what it wrote and read."""
    return results_dir(profile.name) / "jobs" / f"{job_id}.done"


def artifacts(profile: Profile, kind: str, model_jobs: list["Job"],
              resolve_ckpt: Callable[[str], ladder.Checkpoint | None]) -> list[tuple[str, Path, dict]] | None:
    """(what, where, identity) of every artifact of `kind` ('training', 'forgetting', 'sensitivity', 'ladder') that
    `model_jobs` make, given how to resolve a ladder label (None while a checkpoint cannot be resolved)."""
    out = []
    if kind == "ladder":
        from ..models.tiny_ladder import ladder_identity_of

        wanted = ladder_identity_of(profile)
        return [] if wanted is None else [("ladder", results_dir(profile.name) / "tiny_ladder.json", wanted)]
    for job in model_jobs:
        point = resolve_ckpt(job.ckpt)
        if point is None:
            return None
        if kind == "sensitivity" and job.kind == BASE:
            out.append((f"{job.ckpt} sensitivity", sensitivity_path(profile, job.ckpt),
                        sensitivity_identity(profile, point)))
        if kind == "probes" and job.kind == BASE and probe_tasks(profile):
            out.append((f"{job.ckpt} probes", probes_path(profile, job.ckpt), probes_identity(profile, point)))
        for spec in job.fine_tunes if kind in ("training", "forgetting", "dynamics") else ():
            name = f"{job.ckpt}/{run_name(spec.name, spec.method, spec.seed)}" + \
                (f" {CONVERGE}" if spec.schedule == CONVERGE else "") + f" {kind}"
            if kind == "training":
                out.append((name, training_path(profile, job.ckpt, spec), training_identity(profile, point, spec)))
            elif kind == "forgetting" and measures_forgetting(spec):
                out.append((name, forgetting_path(profile, job.ckpt, spec), forgetting_identity(profile, point, spec)))
            elif kind == "dynamics" and has_dynamics(profile, spec):
                out.append((name, dynamics_path(profile, job.ckpt, spec), dynamics_identity(profile, point, spec)))
    return out


def measures_forgetting(spec: FineTune) -> bool:
    """Whether a fine-tuning's forgetting rows are measured: the fixed schedule's (claim S3 reads those)."""
    return spec.schedule == "fixed"


def has_dynamics(profile: Profile, spec: FineTune) -> bool:
    """Whether a fine-tuning is evaluated along the way: a supervised task's, on the fixed schedule, with
    `profile.dynamics` on."""
    return profile.dynamics is not None and spec.schedule == "fixed" and spec.kind == "prompt_completion" and \
        spec.name in {t.name for t in profile.tasks}


def probe_tasks(profile: Profile) -> list[TaskPlan]:
    """The tasks a checkpoint is probed on: the classification tasks, with `profile.probes` on."""
    return [t for t in profile.tasks if t.kind == "classification"] if profile.probes is not None else []


# ---------------------------------------------------------------------------------------------------------------
# fine-tunes


def seeds(profile: Profile, settings) -> tuple[int, ...]:
    """The training seeds of a fine-tune: the profile's `seeds`, else its TrainSettings' one seed."""
    chosen = profile.seeds if profile.seeds is not None else (settings.seed,)
    if not chosen or len(set(chosen)) != len(chosen):
        raise ValueError(f"profile {profile.name!r} seeds {chosen!r}: give at least one seed and no duplicates")
    return tuple(chosen)


def fine_tunes(profile: Profile, source: TaskPlan | InstructionPlan, schedule: str = "fixed") -> list[FineTune]:
    """Every fine-tuning run of one task (or of the instruction plan): one per (method, training seed), on the
    paper's fixed epochs or (`schedule` 'converge') until the validation loss stops improving."""
    unknown = [m for m in profile.methods if m not in METHODS]
    if unknown or not profile.methods or len(set(profile.methods)) != len(profile.methods):
        raise ValueError(f"profile {profile.name!r} methods {profile.methods!r}: give distinct fine-tuning methods "
                         f"among {METHODS}")
    instruction = isinstance(source, InstructionPlan)
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown fine-tuning schedule {schedule!r}; use one of {SCHEDULES}")
    return [FineTune(source.name, source.train_set, "chat" if instruction else "prompt_completion",
                     source.n_train, source.fraction if instruction else None, replace(source.train, seed=seed),
                     method, profile.lora if method == "lora" else None, schedule,
                     profile.convergence if schedule == CONVERGE else None)
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


def dynamics_plan(profile: Profile, task: TaskPlan) -> list[tuple[str, str]]:
    """What a model fine-tuned on `task` is scored on along its fine-tuning (Profile.dynamics): the primary in-domain
    set in every format, the OOD sets and the other tasks' primary sets (default format)."""
    settings = profile.dynamics
    plan = [(task.primary, f) for f in (_formats(profile, task.primary) if settings.formats else ["default"])]
    plan += [(s, "default") for s in task.ood] if settings.ood else []
    plan += [(t.primary, "default") for t in profile.tasks if t.name != task.name] if settings.cross_task else []
    return list(dict.fromkeys(plan))


def dynamics_profile(profile: Profile) -> Profile:
    """The profile the evaluations along fine-tuning score with: its own, at the dynamics' item limit."""
    limit = profile.dynamics.eval_limit
    if limit is not None and limit <= profile.shots:
        raise ValueError(f"dynamics.eval_limit={limit} leaves no item to score after the {profile.shots} demos: "
                         f"give at least {profile.shots + 1}")
    return profile if limit is None else replace(profile, eval_limit=limit if profile.eval_limit is None
                                                  else min(limit, profile.eval_limit))


def converge_plan(profile: Profile, fine_tune: str) -> list[tuple[str, str]]:
    """What a model fine-tuned to convergence is scored on: the "Learned in FT" sets it is trained for (default
    format), the pairs the claims that compare rungs (A1, B3, B4) read."""
    pairs = analysis.learned_groups(profile)[analysis.GROUP_FT]
    return [(eval_set, "default") for eval_set, tuned in pairs if tuned == fine_tune]


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

    notebook: str  # the stage that runs it: "pretrain_probe" | "sft" | "instruction_tuning"
    ckpt: str
    task: str  # "base" or the fine_tune label
    evals: tuple[tuple[str, str], ...]
    fine_tunes: tuple[FineTune, ...] = ()
    profile: Profile = field(default=None, compare=False, repr=False)

    @property
    def kind(self) -> str:
        """The kind of records it writes: 'base', 'instruction' or 'sft' (its stage's `runs`)."""
        return stages.get(self.notebook).runs


@dataclass(frozen=True)
class JobKind:
    """A kind of model job, the `runs` of a stage: which models a profile has of it and how each is made and scored.
    Its records carry `label` as their fine_tune; one job per (checkpoint, label). A new kind of model job is one
    entry of KINDS plus its stage (study.stages) and a runner function (study.jobs.run_kind does the work)."""

    name: str
    labels: Callable[[Profile], tuple[str, ...]]  # the fine_tune labels of its models ('base': no fine-tuning)
    evals: Callable[[Profile, str], list]  # a label's evaluation plan: (eval_set, format) pairs
    runs: Callable[[Profile, str], list] = lambda profile, label: []  # a label's fine-tuning runs (FineTune per seed)
    ckpts: Callable[[Profile], tuple[str, ...]] = lambda profile: tuple(profile.ckpts)  # the rungs it runs on
    per_task: bool = False  # on a cluster (Profile.jobs_per_ckpt): one papermill job per (checkpoint, label)
    schedule: str = "fixed"  # its records' store: the paper's schedule, or fine-tuning to convergence (CONVERGE)


def _task_or_instruction(profile: Profile, label: str):
    return profile.instruction if label == profile.instruction.name else profile.task(label)


KINDS: dict[str, JobKind] = {kind.name: kind for kind in (
    JobKind("base", lambda p: (BASE,), lambda p, label: base_plan(p)),
    JobKind("sft", lambda p: tuple(t.name for t in p.tasks), lambda p, label: sft_plan(p, p.task(label)),
            lambda p, label: fine_tunes(p, p.task(label)), per_task=True),
    JobKind("instruction", lambda p: (p.instruction.name,), lambda p, label: instruction_plan(p),
            lambda p, label: fine_tunes(p, p.instruction), ckpts=lambda p: tuple(instruction_ckpts(p))),
    # every rung again, to convergence, where the claims that compare rungs read it (Profile.converge)
    JobKind(CONVERGE, lambda p: (*(t.name for t in p.tasks), p.instruction.name) if p.converge else (),
            lambda p, label: converge_plan(p, label),
            lambda p, label: fine_tunes(p, _task_or_instruction(p, label), CONVERGE), per_task=True,
            schedule=CONVERGE),
)}


def jobs(profile: Profile) -> list[Job]:
    """Every model job of the study, in the order of KINDS (base evaluations, supervised fine-tunes, instruction
    tuning, fine-tuning to convergence), each kind run by its stage: one per (label, checkpoint) with an evaluation
    plan."""
    if not runs_models(profile):
        return []  # figures from read numbers (released, published, lm-eval output): no model is run
    run = {stage.runs for stage in stages.STAGES}
    out = []
    for kind in (k for k in KINDS.values() if k.name in run):
        notebook = stages.runner_of(kind.name).notebook
        for label in kind.labels(profile):
            evals = tuple(kind.evals(profile, label))
            if evals:
                runs = tuple(kind.runs(profile, label))
                out += [Job(notebook, ckpt, label, evals, runs, profile) for ckpt in kind.ckpts(profile)]
    return out


def run_order(jobs) -> list[Job]:
    """A notebook's model jobs in the order its kernel runs them (pipeline.run_base, run_sft, run_converge):
    checkpoint by checkpoint along the ladder, each checkpoint's tasks in the plan's order. `jobs` lists them task
    by task (each task's checkpoints in ladder order), as the per-checkpoint cluster jobs are numbered."""
    ladder = list(dict.fromkeys(job.ckpt for job in jobs))
    return sorted(jobs, key=lambda job: ladder.index(job.ckpt))  # stable: a checkpoint's tasks keep their order


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


def record_kind(profile: Profile, fine_tune: str) -> str | None:
    """The kind of a record by its fine_tune: 'base', 'instruction', 'sft' (a kind of KINDS on the paper's
    schedule), or None (not a model of this profile)."""
    return next((k.name for k in KINDS.values() if k.schedule == "fixed" and fine_tune in k.labels(profile)), None)


def wanted_identity(profile: Profile, key: dict, model: dict, schedule: str = "fixed") -> dict | None:
    """The identity today's settings give the record of `key` (on a checkpoint whose model identity is `model`), or
    None when this profile makes no such record (another seed, method, shots or evaluation plan). `schedule`
    'converge': a record of the fine-tune-to-convergence store."""
    kind = KINDS[CONVERGE] if schedule == CONVERGE else KINDS.get(record_kind(profile, key["fine_tune"]))
    label = key["fine_tune"]
    if kind is None or key["shots"] != profile.shots or label not in kind.labels(profile):
        return None
    evals, specs = kind.evals(profile, label), kind.runs(profile, label) or [None]
    spec = next((s for s in specs if s is None or (s.method, s.seed) == (key["method"], key["seed"])), False)
    if spec is False or (key["eval_set"], key["format"]) not in evals:
        return None
    return identity.record_identity(profile, model, spec, key["eval_set"], key["format"])


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
    reads: tuple[str, ...] = ()  # kinds its figures and verdicts read (the stage's); empty when it draws nothing
    writes: tuple[str, ...] = ()  # kinds it writes besides its model jobs' (the scorecard)

    def papermill_args(self) -> str:
        """The `-p name value` words papermill takes (shell-quoted)."""
        return " ".join(f"-p {k} {shlex.quote(v)}" for k, v in self.params)


def notebook_jobs(profile: Profile) -> list[NotebookJob]:
    """Every papermill run of the study, in order. With `profile.jobs_per_ckpt` (cluster use), one job per
    (notebook, checkpoint, task) followed by a ckpt=all job that only draws the figure; else one job per notebook.
    A results source of base models only (lm-eval output) feeds the notebooks that read base records alone, and
    the one that writes the scorecard (every claim judged, the others not measurable)."""
    base = profile.params or (("profile", profile.name),)
    out: list[NotebookJob] = []
    by_notebook: dict[str, list[Job]] = {}
    for job in jobs(profile):
        by_notebook.setdefault(job.notebook, []).append(job)
    held = source_record_kinds(profile.results_source)
    for index, stage in enumerate(stages.STAGES, start=1):
        if held is not None and not set(stage.record_reads) <= set(held) and "scorecard" not in stage.writes:
            continue
        notebook, stem = stage.notebook, f"{index:02d}_{stage.notebook}"
        work = by_notebook.get(notebook, [])
        if profile.jobs_per_ckpt and work:
            per_task = KINDS[stage.runs].per_task  # one job per (checkpoint, task): the `task` parameter
            for job in work:
                task = (("task", job.task),) if per_task else ()
                suffix = f"_{job.task}" if per_task else ""
                out.append(NotebookJob(f"{stem}_{job.ckpt}{suffix}", notebook,
                                       base + (("ckpt", job.ckpt),) + task + (("make_figures", "False"),), (job,)))
            out.append(NotebookJob(f"{stem}_figures", notebook, base + (("ckpt", "all"),), (), stage.reads))
        else:
            out.append(NotebookJob(stem, notebook, base, tuple(work), stage.reads,
                                   tuple(k for k in stage.writes if k == "scorecard")))
    return out


def read_jobs(profile: Profile, kinds: tuple[str, ...]) -> list[Job]:
    """The model jobs whose records are of the given kinds ('base', 'sft', 'instruction'; other kinds are ignored)."""
    return [j for j in jobs(profile) if j.kind in kinds]
