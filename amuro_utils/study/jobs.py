"""The model jobs a stage runs: evaluate base checkpoints, fine-tune and evaluate (fixed epochs or to convergence),
instruction-tune, perturb weights (sensitivity), probe hidden states; each result stored through one call (`put`),
with the path and identity the plan gives.

Every job is resumable and settings-aware: a result is reused only when it was made under the settings identity the
profile gives now (amuro_utils.store.identity), through the one artifact store (amuro_utils.store.artifacts); a stale
one is recomputed and the old one kept aside. A fine-tuned model is trained only while some record of its evaluation
plan, or its training record, is missing or stale; forgetting rows are re-measured from kept weights, never by
retraining. Every job is a no-op on a profile whose results are read (the authors' release, lm-eval output)."""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .. import stats
from ..config import reporter
from ..config.paths import results_dir
from ..config.profiles import FineTune, Profile, TaskPlan, ckpt_step
from ..data import tasks
from ..models import evaluate, ladder, sensitivity as probe, tiny_ladder
from ..stats import analysis
from ..store import artifacts, identity, results
from . import plan, stages
from .frames import (
    PROBE_FRAME_COLUMNS,
    model_identity,
    probe_rows_of,
    runs_models,
    sensitivity_rows_of,
    source_words,
    store,
)

log = logging.getLogger(__name__)


def model_id(profile: Profile) -> str:
    """The model name recorded for this profile's ladder (e.g. allenai/OLMo-1B-hf)."""
    return ladder.get_ladder(profile.ladder).repo


def prepare_ladder(profile: Profile) -> dict | None:
    """Build the profile's self-pre-trained ladder if it has one (reused when its settings are unchanged)."""
    if not runs_models(profile) or not ladder.get_ladder(profile.ladder).local:
        return None
    return tiny_ladder.build_tiny_ladder(profile)


def ladder_report(profile: Profile) -> str:
    """Markdown: what this profile's ladder is (building a local one first) and, for a local one, whether it learned."""
    if not runs_models(profile):
        return f"The figures come from {source_words(profile)}: no checkpoint is loaded."
    built = prepare_ladder(profile)
    if built is not None:
        return tiny_ladder.describe(built)
    spec = ladder.get_ladder(profile.ladder)
    return (f"Ladder: `{spec.repo}`, checkpoints {', '.join(profile.ckpts)} (each resolved to its hub branch by "
            f"listing the repo's refs). {spec.note}")


def checkpoints(profile: Profile, ckpt="all") -> list[ladder.Checkpoint]:
    """The checkpoints named by `ckpt`, each resolved once (branch, commit, step): 'all' → the study's checkpoints;
    otherwise one rung of the ladder by label ('step424000'), bare step ('424000'), 'main' or hub branch name. A
    local ladder is built first if it is not there yet."""
    if isinstance(ckpt, ladder.Checkpoint):
        return [ckpt]
    if isinstance(ckpt, (list, tuple)):
        return [c for one in ckpt for c in checkpoints(profile, one)]
    prepare_ladder(profile)
    ckpt = str(ckpt)
    if ckpt == "all":
        return [plan.resolve(profile, label) for label in profile.ckpts]
    labels = profile.rung_labels()
    step = ckpt_step(ckpt, bare_number=True)
    for label in labels:
        if label == ckpt or (step is not None and ckpt_step(label) == step):
            return [plan.resolve(profile, label)]
    wanted = ladder.checkpoint(profile.ladder, ckpt, cache_dir=plan.hub_cache(profile),  # a branch name (or error)
                               labels=profile.rungs)
    for label in labels:
        point = plan.resolve(profile, label)
        if point.branch == wanted.branch:
            return [point]
    if not profile.rungs and wanted.step is not None:  # any step branch of a hub ladder, labelled by its step
        return [dataclasses.replace(wanted, label=f"step{wanted.step}")]
    raise ValueError(f"checkpoint {ckpt!r} (branch {wanted.branch}) is not a rung of the {profile.name!r} ladder "
                     f"{list(labels)}; pass one of those or 'all'")


def select_tasks(profile: Profile, task: str) -> list[TaskPlan]:
    """'all' → every supervised task of the profile; otherwise the one named (error lists them)."""
    return list(profile.tasks) if task == "all" else [profile.task(task)]


def pending(profile: Profile, job: plan.Job, ckpt: ladder.Checkpoint) -> list[tuple[dict, dict]]:
    """(key, identity) of the records of a job that are missing, stale or corrupt (each reported), in plan order."""
    st, todo = store(profile, job.kind), []
    for key, wanted in plan.record_requests(job, model_identity(ckpt)):
        status = st.status(key, wanted)
        if status.state == "done":
            continue
        if status.state == "stale":
            log.warning("record %s was made under other settings (changed: %s): recomputing; the old one is kept in "
                        "%s/", status.path, ", ".join(status.changed), results.STALE_DIR)
        elif status.state == "corrupt":
            log.warning("record %s is not valid (%s): recomputing", status.path, status.changed[0])
        todo.append((key, wanted))
    return todo


# ---------------------------------------------------------------------------------------------------------------
# running models


@dataclasses.dataclass
class Loaded:
    """A loaded checkpoint: model, tokenizer and provenance (repo, revision = hub branch, commit, step)."""

    model: object
    tokenizer: object
    provenance: dict


def load_base(profile: Profile, ckpt: ladder.Checkpoint, dtype: str | None = None) -> Loaded:
    """Load one base checkpoint of the profile's ladder (safe loading: no missing or unexpected keys)."""
    model, tokenizer, provenance = ladder.load(profile.ladder, ckpt, device=profile.device,
                                               dtype=dtype or profile.eval_dtype, cache_dir=plan.hub_cache(profile))
    return Loaded(model, tokenizer, provenance)


def _preflight(profile: Profile, job: plan.Job) -> None:
    """Refuse a GPU job this machine cannot finish before anything is downloaded (see cost.preflight)."""
    if profile.requires_gpu:
        from . import cost

        cost.preflight(profile, job)


def _prune(profile: Profile, ckpt: ladder.Checkpoint) -> None:
    """Delete a used hub revision from the HF cache (paper profile: one ~4.7 GB checkpoint on disk at a time)."""
    if profile.prune_revisions:
        ladder.prune_revision(ckpt.repo, ckpt.branch, plan.hub_cache(profile))


def eval_examples(profile: Profile, eval_set: str) -> list[dict]:
    return tasks.load_examples(eval_set, source=profile.data_source, limit=profile.eval_limit)


def _generator(profile: Profile, loaded: Loaded, weights: Path | None):
    """The vLLM generation function for this model when the profile asks for it (else None: transformers)."""
    if profile.generation_backend != "vllm":
        return None
    from ..models import vllm_backend

    source = (str(weights), None) if weights is not None else (loaded.provenance["repo"],
                                                              loaded.provenance["revision"])
    llm = vllm_backend.engine(*source, dtype=profile.eval_dtype, max_model_len=profile.max_length)
    return lambda prompts, max_new_tokens, max_length: vllm_backend.generate(llm, loaded.tokenizer, prompts,
                                                                            max_new_tokens, max_length)


def evaluate_requests(profile: Profile, model, tokenizer, requests: list[tuple[dict, dict]], provenance: dict, *,
                      progress: bool = True, generate_fn=None, kind: str = "base") -> int:
    """Score `model` on every requested (key, identity) record and write each one (into the store of record `kind`);
    returns how many ran."""
    from ..config.reporter import tqdm

    st = store(profile, kind)
    cache: dict[str, list[dict]] = {}
    first = requests[0][0] if requests else {}
    for key, wanted in tqdm(requests, desc=f"eval {first.get('ckpt')}/{first.get('fine_tune')}",
                            disable=not progress or not requests, mininterval=10):
        eval_set, fmt = key["eval_set"], key["format"]
        dataset = tasks.get(eval_set)
        if eval_set not in cache:
            cache[eval_set] = eval_examples(profile, eval_set)
        start = time.perf_counter()
        out = evaluate.evaluate_examples(model, tokenizer, dataset, cache[eval_set], fmt, profile.shots,
                                         batch_size=profile.eval_batch_size, max_length=profile.max_length,
                                         max_new_tokens=profile.max_new_tokens,
                                         gold_leak=profile.llmbar_gold_leak,
                                         exact_match=profile.llmbar_exact_match, generate_fn=generate_fn,
                                         shared_prefix=profile.shared_prefix)
        summary = stats.bootstrap_ci(out.scores, seed=profile.bootstrap_seed)
        seconds = time.perf_counter() - start
        # `seconds` is the paper's scoring alone, `seconds_continuous` the passes only the continuous readings need
        # (cost.calibrate_cpu prices them apart)
        metrics = {"metric": dataset.metric, **summary, "n_truncated": int(out.n_truncated),
                   "n_prefix_fallback": int(out.n_prefix_fallback),
                   "seconds": round(seconds - out.continuous_seconds, 3),
                   "seconds_continuous": round(out.continuous_seconds, 3),
                   "constant_prediction": analysis.constant_predictor(out.predictions, dataset.kind,
                                                                      dataset.strip_order)}
        st.write(key, metrics, {**provenance, "config_hash": identity.digest(wanted)},
                 scores=np.asarray(out.scores).tolist(), predictions=list(out.predictions),
                 references=list(out.references), identity=wanted, continuous=out.continuous)
    return len(requests)


def _provenance(profile: Profile, loaded: Loaded, spec: FineTune | None) -> dict:
    prov = {"revision": loaded.provenance["revision"], "commit": loaded.provenance["commit"],
            "step": loaded.provenance["step"], "versions": results.package_versions(), "profile": profile.name}
    if spec is not None:
        prov.update(lr=spec.train.lr, epochs=spec.train.epochs)
    return prov


def _release(loaded: Loaded) -> None:
    """Drop a model's weights now, so one checkpoint at a time is in memory."""
    loaded.model = None
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_base(profile: Profile, ckpt="all", *, progress: bool = True) -> int:
    """Evaluate every base checkpoint named by `ckpt` on the base plan; returns the number of new records."""
    if not runs_models(profile):
        return 0
    done = 0
    for point in checkpoints(profile, ckpt):
        job = plan.find_job(profile, stages.runner_of("base").notebook, point.label, results.BASE)
        todo = pending(profile, job, point)
        if not todo:
            continue
        _preflight(profile, job)
        reporter.progress("evaluating the base model", ckpt=point.label, task=results.BASE, run=0, phase="evaluate")
        loaded = load_base(profile, point)
        done += evaluate_requests(profile, loaded.model, loaded.tokenizer, todo,
                                  _provenance(profile, loaded, None), progress=progress,
                                  generate_fn=_generator(profile, loaded, None))
        _release(loaded)
        _prune(profile, point)
    return done


def _as_examples(dataset: tasks.Dataset, rows: list[dict]) -> list[dict]:
    """Training rows as the training loop takes them: Tulu messages (chat sets) or prompt/completion pairs rendered in
    the default "###" template."""
    if dataset.kind == "chat":
        return [{"messages": row["messages"]} for row in rows]
    return [{"prompt": tasks.render(dataset, row, "default"), "completion": row["target"]} for row in rows]


def _sample(profile: Profile, spec: FineTune, extra: int = 0) -> list[dict]:
    """The training set's rows after the paper's shuffle(seed=42): the training sample's (first n, or a fraction),
    then `extra` more."""
    if spec.n_train is not None:
        n = spec.n_train
    elif spec.fraction is not None:
        n = len(tasks.sample_train(spec.train_set, fraction=spec.fraction, seed=identity.DATA_SEED,
                                   source=profile.data_source))
    else:
        n = 6000
    return tasks.sample_train(spec.train_set, n=n + extra, seed=identity.DATA_SEED, source=profile.data_source)


def train_examples(profile: Profile, spec: FineTune) -> list[dict]:
    """Training examples as the paper made them: shuffle(seed=42), first n (or a fraction); supervised sets rendered
    in the default "###" template as prompt/completion pairs, chat sets as Tulu messages."""
    dataset = tasks.get(spec.train_set)
    rows = tasks.sample_train(spec.train_set, n=spec.n_train if spec.n_train is not None else 6000,
                              fraction=spec.fraction, seed=identity.DATA_SEED, source=profile.data_source)
    return _as_examples(dataset, rows)


def validation_examples(profile: Profile, spec: FineTune) -> list[dict]:
    """The fine-tune-to-convergence schedule's validation split: the `convergence.n_val` rows that follow the training
    sample in the same seeded shuffle of the training data, so disjoint from it (tested); rendered as training
    examples."""
    n_val = spec.convergence.n_val
    try:
        rows = _sample(profile, spec, n_val)
    except ValueError as err:
        raise ValueError(f"{spec.train_set!r} has too few rows for a validation split of {n_val} after the "
                         f"training sample: lower convergence.n_val ({err})") from None
    return _as_examples(tasks.get(spec.train_set), rows[len(rows) - n_val:])


def _heldout_losses(profile: Profile, model, tokenizer) -> np.ndarray:
    """Per-block loss of `model` on the held-out pre-training text (the sensitivity probe's blocks)."""
    blocks = probe.heldout_token_blocks(tokenizer, profile.sensitivity.block, profile.sensitivity.tokens)
    return probe.block_losses(model, blocks)


def _current(path: Path, wanted: dict) -> bool:
    """Whether the artifact at `path` was made under `wanted` (amuro_utils.store.artifacts' one rule)."""
    return artifacts.status(path, wanted).state == "done"


CONVERGE_LOG = ("validation", "best_step", "best_loss", "stopped_step", "kept_step", "stopped_early", "epochs_horizon",
                "total_steps")


def put(profile: Profile, kind: str, ckpt: ladder.Checkpoint, payload: dict, spec: FineTune | None = None) -> Path:
    """Store one artifact of `kind` (plan.ARTIFACTS: training, forgetting, dynamics, sensitivity, probes) of a
    checkpoint or of one fine-tuning of it: where the plan puts it, under the identity the plan gives it, with the
    checkpoint (and the fine-tuning's name, method and seed) beside `payload`; one atomic write (artifacts.write)."""
    path, wanted = plan.artifact(profile, kind, ckpt, spec)
    head = {"ckpt": ckpt.label, "step": ckpt.step}
    if spec is not None:
        head.update(fine_tune=spec.name, method=spec.method, seed=spec.seed)
    return artifacts.write(results_dir(profile.name), path, wanted, {**head, **payload})


def _write_training_record(profile: Profile, ckpt: ladder.Checkpoint, spec: FineTune, train_log: dict,
                           provenance: dict) -> None:
    """The fine-tuning's own record: its loss curve and zero-step loss (the fine-tune-to-convergence schedule: and its
    validation curve, where it stopped and which step's weights it kept), under the identity of the training that
    made it."""
    put(profile, "training", ckpt, {
        "schedule": spec.schedule, "provenance": provenance, "loss": train_log["loss"], "lr": train_log["lr"],
        "zero_step_loss": train_log["zero_step_loss"], "n_examples": train_log["n_examples"],
        "steps": len(train_log["loss"]), "seconds": train_log.get("seconds"),
        **{k: train_log[k] for k in CONVERGE_LOG if k in train_log}}, spec)


def _write_forgetting(profile: Profile, ckpt: ladder.Checkpoint, spec: FineTune, base_losses: np.ndarray,
                      tuned_losses: np.ndarray, provenance: dict) -> None:
    """How much a fine-tuning forgot of the pre-training text (Springer S3): the held-out loss per block of the
    fine-tuned model and of its base, under the identity of the weights and the held-out text."""
    put(profile, "forgetting", ckpt, {"provenance": provenance, "base_heldout": base_losses.tolist(),
                                      "heldout": tuned_losses.tolist()}, spec)


def _save_weights(profile: Profile, ckpt: ladder.Checkpoint, spec: FineTune, save, train_log: dict, summary: dict,
                  provenance: dict) -> Path:
    """Save a fine-tuned model as a folder artifact: `save(folder)` writes weights and tokenizer into a folder of this
    process's own, then its training log and DONE (identity, summary, provenance); renamed into place when complete."""
    out = plan.weights_dir(profile, ckpt.label, spec)
    with artifacts.atomic_folder(out) as folder:
        save(folder)
        artifacts.atomic_write(folder / "train_log.json", json.dumps(train_log))
        artifacts.write(folder, folder / artifacts.DONE, plan.weights_identity(profile, ckpt, spec),
                        {"summary": summary, "provenance": provenance})
    return out


class _Dynamics:
    """The evaluations along one supervised fine-tuning (Profile.dynamics): called by the training loop after the
    optimizer step each fraction falls on, it scores the model on the dynamics plan (the dynamics' first items of
    each set) and on the held-out pre-training text, and keeps every point for `write`."""

    def __init__(self, profile: Profile, spec: FineTune, tokenizer):
        self.profile, self.spec, self.tokenizer = profile, spec, tokenizer
        self.scored = plan.dynamics_profile(profile)
        self.plan = plan.dynamics_plan(profile, profile.task(spec.name))
        self.examples = {s: eval_examples(self.scored, s) for s, _ in self.plan}
        settings = profile.sensitivity
        self.blocks = (probe.heldout_token_blocks(tokenizer, settings.block, settings.tokens)
                       if profile.dynamics.heldout else None)
        self.points: list[dict] = []

    def __call__(self, fraction: float, step: int, model) -> None:
        start = time.perf_counter()
        scored = self._scoring_model(model)
        evals = []
        for eval_set, fmt in self.plan:
            dataset = tasks.get(eval_set)
            # the dynamics questions read scores only, so the continuous readings (a teacher-forced pass on the
            # generation sets) are not spent at every point
            out = evaluate.evaluate_examples(scored, self.tokenizer, dataset, self.examples[eval_set], fmt,
                                             self.profile.shots, batch_size=self.profile.eval_batch_size,
                                             max_length=self.profile.max_length,
                                             max_new_tokens=self.profile.max_new_tokens,
                                             gold_leak=self.profile.llmbar_gold_leak,
                                             shared_prefix=self.profile.shared_prefix, continuous=False)
            evals.append({"eval_set": eval_set, "format": fmt, "metric": dataset.metric,
                          **stats.bootstrap_ci(out.scores, seed=self.profile.bootstrap_seed),
                          "n_truncated": int(out.n_truncated), "scores": np.asarray(out.scores).tolist(),
                          "predictions": list(out.predictions), "references": list(out.references)})
        began = time.perf_counter()
        heldout = probe.block_losses(scored, self.blocks).tolist() if self.blocks is not None else None
        heldout_seconds = round(time.perf_counter() - began, 3)
        if scored is not model:
            del scored
            gc.collect()
        self.points.append({"fraction": fraction, "step": step, "evals": evals, "heldout": heldout,
                            "heldout_seconds": heldout_seconds if heldout is not None else None,
                            "heldout_tokens": int(self.blocks.numel()) if heldout is not None else 0,
                            "seconds": round(time.perf_counter() - start, 3)})

    def _scoring_model(self, model):
        """The model as the final records score it: in the evaluation dtype (a copy when it is not the training's
        float32 master weights)."""
        import copy

        dtype = ladder.torch_dtype(self.profile.eval_dtype, self.profile.device)
        if next(model.parameters()).dtype == dtype:
            return model
        return copy.deepcopy(model).to(dtype).eval()

    def write(self, ckpt: ladder.Checkpoint, total_steps: int, provenance: dict) -> None:
        """Every point, under the identity of the training, the points, the evaluations and the held-out text."""
        put(self.profile, "dynamics", ckpt, {"schedule": self.spec.schedule, "total_steps": total_steps,
                                             "shots": self.profile.shots, "provenance": provenance,
                                             "points": self.points}, self.spec)


def _zero_step_loss(profile: Profile, ckpt: ladder.Checkpoint, spec: FineTune) -> float:
    """The base checkpoint's training loss on the run's examples before any update (for a training record written
    before the zero-step loss was: measured from the base, no retraining)."""
    from ..models import train

    base = load_base(profile, ckpt, dtype="float32")
    loss = train.completion_loss(base.model, base.tokenizer, train_examples(profile, spec), spec.train, kind=spec.kind)
    _release(base)
    return loss


def fine_tuned_model(profile: Profile, ckpt: ladder.Checkpoint, spec: FineTune, *, progress: bool = True,
                     dynamics: bool = False):
    """The checkpoint fine-tuned as `spec` says: loaded from results/<profile>/models if a finished copy made under
    the same settings is there (so an interrupted evaluation, or a changed evaluation setting, needs no retraining),
    else trained now and saved there with its training record (loss curve, zero-step loss). Its forgetting rows
    (held-out loss of the model and of its base) are measured too unless they are current. `dynamics`: train it
    again, evaluating it along the way (Profile.dynamics; the points cannot be had otherwise), and store those
    records. A `spec` of the fine-tune-to-convergence schedule trains until its validation loss stops improving.
    Returns (Loaded, training summary)."""
    from ..models import train

    out = plan.weights_dir(profile, ckpt.label, spec)
    wanted = plan.weights_identity(profile, ckpt, spec)
    measure = plan.measures_forgetting(spec) and not _current(*plan.artifact(profile, "forgetting", ckpt, spec))
    dtype = ladder.torch_dtype(profile.eval_dtype, profile.device)
    done = None if dynamics else artifacts.load(out / artifacts.DONE, wanted, "fine-tuned model")
    if done is not None:  # the folder holds weights and tokenizer (LoRA: the adapter), its DONE their identity
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if spec.method == "lora":  # merge the adapter into its base checkpoint
            base = load_base(profile, ckpt, dtype="float32")
            model = train.load_lora(base.model, out).to(dtype).eval()
        else:
            model = AutoModelForCausalLM.from_pretrained(out, dtype=dtype).to(profile.device).eval()
        loaded = Loaded(model, AutoTokenizer.from_pretrained(out), done["provenance"])
        if not _current(*plan.artifact(profile, "training", ckpt, spec)):
            train_log = json.loads((out / "train_log.json").read_text())
            if "zero_step_loss" not in train_log:  # trained before the zero-step loss was recorded
                train_log["zero_step_loss"] = _zero_step_loss(profile, ckpt, spec)
            _write_training_record(profile, ckpt, spec, train_log, loaded.provenance)
        if measure:
            base = load_base(profile, ckpt)
            base_losses = _heldout_losses(profile, base.model, base.tokenizer)
            _release(base)
            _write_forgetting(profile, ckpt, spec, base_losses, _heldout_losses(profile, model, loaded.tokenizer),
                              loaded.provenance)
        return loaded, done["summary"]
    loaded = load_base(profile, ckpt, dtype="float32")  # fp32 master weights; bf16 autocast on GPU
    base_losses = _heldout_losses(profile, loaded.model, loaded.tokenizer) if measure else None
    examples = train_examples(profile, spec)
    trained = train.attach_lora(loaded.model, spec.lora, spec.seed) if spec.method == "lora" else loaded.model
    along = _Dynamics(profile, spec, loaded.tokenizer) if dynamics else None
    extra = {}
    if along is not None:
        extra.update(points=profile.dynamics.fractions, on_point=along)
    if spec.schedule == plan.CONVERGE:  # the validation split, encoded once, scored with the training objective
        validation = train.encode_examples(loaded.tokenizer, validation_examples(profile, spec), kind=spec.kind,
                                           max_length=spec.train.max_length)
        pad = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else \
            loaded.tokenizer.eos_token_id
        extra.update(converge=spec.convergence,
                     validate=lambda model: train.mean_loss(model, validation, spec.train, pad))
    # the per-step bar only where someone watches a terminal; the notebooks show the returned summary
    train_log = train.fine_tune(trained, loaded.tokenizer, examples, spec.train, kind=spec.kind,
                                progress=progress and sys.stderr.isatty(), device=profile.device, **extra)
    summary = {"n_train": len(examples), "steps": len(train_log["loss"]), "final_loss": train_log["loss"][-1],
               "first_loss": train_log["loss"][0], "zero_step_loss": train_log["zero_step_loss"],
               "seconds": train_log.get("seconds")}
    if spec.schedule == plan.CONVERGE:
        summary.update(kept_step=train_log["kept_step"], best_loss=train_log["best_loss"],
                       stopped_early=train_log["stopped_early"])
    # Trained again only to be evaluated along the way: kept weights and a training record made under the same
    # settings stay as they are (training is seeded, so this run made the same model).
    kept = _current(out / artifacts.DONE, wanted)
    if spec.method == "lora":  # keep the small adapter; evaluate the merged model with the same code as full FT
        if not kept:
            _save_weights(profile, ckpt, spec, lambda folder: train.save_adapter(trained, loaded.tokenizer, folder),
                          train_log, summary, loaded.provenance)
        loaded.model = train.merge_lora(trained)
    elif not kept:
        _save_weights(profile, ckpt, spec, lambda folder: train.save_fine_tuned(
            loaded.model, loaded.tokenizer, folder, dtype=profile.eval_dtype), train_log, summary, loaded.provenance)
    if not _current(*plan.artifact(profile, "training", ckpt, spec)):
        _write_training_record(profile, ckpt, spec, train_log, loaded.provenance)
    if along is not None:
        along.write(ckpt, train_log["total_steps"], loaded.provenance)
    if measure:
        _write_forgetting(profile, ckpt, spec, base_losses, _heldout_losses(profile, loaded.model, loaded.tokenizer),
                          loaded.provenance)
    loaded.model.to(dtype).eval()
    return loaded, summary


def _job_id(profile: Profile, job: plan.Job) -> str:
    """The papermill job (run_all.sh's id) that runs a model job."""
    return next(nb.id for nb in plan.notebook_jobs(profile)
                if any((j.notebook, j.ckpt, j.task) == (job.notebook, job.ckpt, job.task) for j in nb.model_jobs))


def _fine_tune_and_evaluate(profile: Profile, job: plan.Job, ckpt: ladder.Checkpoint, *, progress: bool) -> list[dict]:
    """Fine-tune one checkpoint per training run of `job` when any of its records, its training record or its
    records along fine-tuning (Profile.dynamics) are missing or stale, run the job's evaluation plan on each, then
    drop the weights that are not kept. Stale forgetting rows are re-measured from kept weights; where the weights
    are gone they are reported, with the fix, not retrained for."""
    outcomes = []
    for index, spec in enumerate(job.fine_tunes):
        single = dataclasses.replace(job, fine_tunes=(spec,))
        todo = pending(profile, single, ckpt)
        row = {"ckpt": ckpt.label, "task": spec.name, "method": spec.method, "seed": spec.seed}
        trained = _current(*plan.artifact(profile, "training", ckpt, spec))
        forgetting = artifacts.status(*plan.artifact(profile, "forgetting", ckpt, spec))
        forgotten = forgetting.state == "done" or not plan.measures_forgetting(spec)
        along = None if not plan.has_dynamics(profile, spec) else artifacts.status(
            *plan.artifact(profile, "dynamics", ckpt, spec))
        # records along a finished training that went stale only with the held-out text (the probe's settings) are
        # never a reason to retrain: only the training can redo them, so they are reported with the fix (forgetting
        # rows likewise where the weights were not kept). Missing ones (the switch just turned on) and ones whose own
        # settings changed (fractions, items) are what the user asked for: made by training again, seeded
        stale_along = along is not None and along.state == "stale" and trained and not todo and \
            all(field.split(".")[0] in ("heldout", "probe_version") for field in along.changed)
        dynamics = along is not None and along.state != "done" and not stale_along
        if stale_along:
            log.warning("dynamics rows %s are stale (changed: %s); %s", along.path, ", ".join(along.changed),
                        plan.forgetting_fix(profile, _job_id(profile, job), "a fine-tuning's dynamics"))
        if not todo and trained and forgotten and not dynamics:
            outcomes.append({**row, "status": "dynamics stale: not retrained" if stale_along else "recorded"})
            continue
        weights = plan.weights_dir(profile, ckpt.label, spec)
        if not todo and trained and not dynamics and \
                not _current(weights / artifacts.DONE, plan.weights_identity(profile, ckpt, spec)):
            changed = f" (changed: {', '.join(forgetting.changed)})" if forgetting.state == "stale" else ""
            log.warning("forgetting rows %s are %s%s; %s", forgetting.path, forgetting.state, changed,
                        plan.forgetting_fix(profile, _job_id(profile, job)))
            status = f"forgetting {forgetting.state}" + (", dynamics stale" if stale_along else "")
            outcomes.append({**row, "status": f"{status}: weights not kept"})
            continue
        _preflight(profile, job)
        run = spec.name + (f" ({spec.method}, seed {spec.seed})" if len(job.fine_tunes) > 1 else "")
        reporter.progress(f"fine-tuning {run}", ckpt=ckpt.label, task=job.task, run=index, phase="train")
        loaded, summary = fine_tuned_model(profile, ckpt, spec, progress=progress, dynamics=dynamics)
        reporter.progress(f"evaluating the {run} model", ckpt=ckpt.label, task=job.task, run=index, phase="evaluate")
        records = evaluate_requests(profile, loaded.model, loaded.tokenizer, todo, _provenance(profile, loaded, spec),
                                    progress=progress, generate_fn=_generator(profile, loaded, weights),
                                    kind=job.kind)
        _release(loaded)
        if not profile.keep_weights:
            shutil.rmtree(weights, ignore_errors=True)
        outcomes.append({**row, "status": "ran", "records": records, **summary})
    _prune(profile, ckpt)
    return outcomes


def run_sft(profile: Profile, ckpt="all", task: str | TaskPlan = "all", *, progress: bool = True) -> pd.DataFrame:
    """Fine-tune each checkpoint named by `ckpt` on each task named by `task` (if any of its records is missing or
    stale) and run each fine-tuned model's whole evaluation plan; one row per fine-tuning run. With
    Profile.dynamics, each fine-tuning is also evaluated along the way (its records: `dynamics_frame`)."""
    if not runs_models(profile):
        return pd.DataFrame()
    chosen = [task] if isinstance(task, TaskPlan) else select_tasks(profile, task)
    notebook = stages.runner_of("sft").notebook
    rows = [outcome for point in checkpoints(profile, ckpt) for t in chosen
            for outcome in _fine_tune_and_evaluate(profile, plan.find_job(profile, notebook, point.label, t.name),
                                                   point, progress=progress)]
    return pd.DataFrame(rows)


def run_instruction_tuning(profile: Profile, ckpt="all", *, progress: bool = True) -> pd.DataFrame:
    """Instruction-tune each checkpoint named by `ckpt` (TULU v2 5 % in the paper) and score it on the benchmarks
    and LLMBar; one row per fine-tuning run."""
    if not runs_models(profile):
        return pd.DataFrame()
    name, notebook = profile.instruction.name, stages.runner_of("instruction").notebook
    chosen = list(plan.instruction_ckpts(profile)) if str(ckpt) == "all" else ckpt
    rows = [outcome for point in checkpoints(profile, chosen)
            for outcome in _fine_tune_and_evaluate(profile, plan.find_job(profile, notebook, point.label, name), point,
                                                   progress=progress)]
    return pd.DataFrame(rows)


def run_converge(profile: Profile, ckpt="all", task: str = "all", *, progress: bool = True) -> pd.DataFrame:
    """Beyond the paper (Profile.converge): fine-tune each checkpoint named by `ckpt` on each task named by `task` (and
    the instruction mixture) until its validation loss stops improving, and score it where the claims that compare
    rungs read it (the "Learned in FT" sets); one row per fine-tuning run. Nothing when the switch is off."""
    return run_kind(profile, plan.CONVERGE, ckpt, task, progress=progress)


def run_kind(profile: Profile, kind: str, ckpt="all", task: str = "all", *, progress: bool = True) -> pd.DataFrame:
    """The model jobs of one kind of fine-tuning (plan.KINDS) on the checkpoints named by `ckpt` (default: the
    kind's rungs) and the labels named by `task`: each model fine-tuned where any of its records is missing or stale,
    then scored on its evaluation plan; one row per fine-tuning run. The work behind a new kind's runner function."""
    spec = plan.KINDS[kind]
    if not runs_models(profile) or not spec.labels(profile):  # e.g. fine-tuning to convergence switched off
        return pd.DataFrame()
    rungs = spec.ckpts(profile)
    chosen = list(rungs) if str(ckpt) == "all" and rungs != tuple(profile.ckpts) else ckpt
    made = [job for job in plan.jobs(profile) if job.kind == kind and task in ("all", job.task)]  # planned once
    rows = [outcome for point in checkpoints(profile, chosen) for job in made if job.ckpt == point.label
            for outcome in _fine_tune_and_evaluate(profile, job, point, progress=progress)]
    return pd.DataFrame(rows)


def _write_sensitivity(profile: Profile, point: ladder.Checkpoint, rows: pd.DataFrame, provenance: dict) -> None:
    """A checkpoint's sensitivity rows, under the identity of the checkpoint, the noise and the held-out text."""
    put(profile, "sensitivity", point, {"provenance": provenance, "rows": rows.to_dict("records")})


def sensitivity(profile: Profile, ckpt="all", *, enabled: bool = True, progress: bool = True) -> pd.DataFrame:
    """Springer et al. (2025) progressive sensitivity of each checkpoint named by `ckpt` (amuro_utils.models.sensitivity):
    one row per (ckpt, scaling, magnitude, seed) with ckpt, step, scaling, magnitude, seed, base_loss, loss,
    delta_loss, block_deltas, n_tokens. Each checkpoint's rows are stored in results/<profile>/sensitivity/<ckpt>.json
    under their settings identity and recomputed when it changes. Empty when disabled or for released numbers."""
    columns = ["ckpt", "step", *probe.FRAME_COLUMNS]
    if enabled and runs_models(profile):
        reporter.progress("perturbing weights (Springer sensitivity)", unit="sensitivity")
    if not enabled or not runs_models(profile):
        return pd.DataFrame(columns=columns)
    settings, frames, blocks = profile.sensitivity, [], None
    for point in checkpoints(profile, ckpt):
        path, wanted = plan.artifact(profile, "sensitivity", point)
        stored = artifacts.load(path, wanted, "sensitivity rows")
        if stored is None:
            loaded = load_base(profile, point, dtype=settings.dtype)
            if blocks is None:  # one ladder, one tokenizer: the held-out text is tokenized once
                blocks = probe.heldout_token_blocks(loaded.tokenizer, settings.block, settings.tokens)
            rows = probe.probe(loaded.model, blocks, settings, progress=progress and sys.stderr.isatty())
            _write_sensitivity(profile, point, rows, _provenance(profile, loaded, None))
            _release(loaded)
            stored = artifacts.read(path)[0]  # as stored: the same frame whether computed now or read back
        frames.append(sensitivity_rows_of(stored))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def probes(profile: Profile, ckpt="all", *, enabled: bool = True) -> pd.DataFrame:
    """Beyond the paper: linear probes (amuro_utils.models.probes) on the frozen hidden states of each checkpoint named by
    `ckpt`, one row per (ckpt, classification task, layer): held-out accuracy with its per-item scores, chance, the
    held-out majority share, the rows used and the chosen C. Each checkpoint's rows are stored in
    results/<profile>/probes/<ckpt>.json under their identity (the checkpoint, the probe settings, the probed rows,
    the probe code's version) and recomputed only when it changes. Empty when off (Profile.probes None, `enabled`
    False, no classification task) or for released numbers."""
    from ..models import probes as linear

    chosen = plan.probe_tasks(profile)
    if not enabled or not chosen or not runs_models(profile):
        return pd.DataFrame(columns=list(PROBE_FRAME_COLUMNS))
    frames = []
    for point in checkpoints(profile, ckpt):
        path, wanted = plan.artifact(profile, "probes", point)
        stored = artifacts.load(path, wanted, "probe rows")
        if stored is None:
            reporter.progress("probing the frozen hidden states", ckpt=point.label, unit="probes")
            start = time.perf_counter()
            loaded = load_base(profile, point)
            rows = linear.probe_model(loaded.model, loaded.tokenizer, chosen, profile.probes,
                                      source=profile.data_source, max_length=profile.max_length)
            put(profile, "probes", point, {"provenance": _provenance(profile, loaded, None),
                                           "seconds": round(time.perf_counter() - start, 3),
                                           "rows": rows.assign(scores=[s.tolist() for s in rows["scores"]]).to_dict("records")})
            _release(loaded)
            stored = artifacts.read(path)[0]  # as stored: the same frame whether computed now or read back
        frames.append(probe_rows_of(stored))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(PROBE_FRAME_COLUMNS))
