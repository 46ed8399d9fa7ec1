"""The steps the notebooks call: evaluate base checkpoints, fine-tune and evaluate, probe sensitivity, load records,
draw a notebook's figures and judge its claims.

Every step is resumable and settings-aware: a result is reused only when it was made under the settings identity the
profile gives now (amuro_utils.identity), through the one artifact store (amuro_utils.artifacts); a stale one is
recomputed and the old one kept aside. A fine-tuned model is trained only while some record of its evaluation plan, or
its training record, is missing or stale; forgetting rows are re-measured from kept weights, never by retraining.
Figures, tables and verdicts read only the results that are current under today's settings. Every step is a no-op
on a profile whose results are the authors' released numbers, so a notebook reads top to bottom with no branches.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import math
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import (analysis, artifacts, evaluate, identity, ladder, lmeval, nbtools, overrides as profile_overrides, plan,
               probes as probes_module, profiles, results, sensitivity as probe, stages, stats, tasks, tiny_ladder)
from .paths import results_dir
from .profiles import FineTune, Profile, TaskPlan, ckpt_step

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------------------
# set-up and results


def setup(profile_name: str, results_source: str = "", overrides: str = "", *,
          force_cpu: bool | None = None) -> Profile:
    """Resolve a profile (a name or a profile file, with `overrides` such as "eval_limit=5;seeds=1,2", and with
    `results_source` if given: profiles.RESULTS_SOURCES) and check, before any download or hour is spent, that this
    machine can run it."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-file loading/saving bars would flood executed notebooks
    profile = profile_overrides.load(profile_name, overrides)
    if results_source:
        profiles.results_source_kind(results_source)  # an unknown source is refused with the options
        profile = lmeval.bind(dataclasses.replace(profile, results_source=results_source))
    if not runs_models(profile):
        return profile
    if profile.data_source == "offline":
        from .offline import ensure_assets

        ensure_assets(verbose=False)
    if force_cpu is None:
        force_cpu = os.environ.get("AMURO_FORCE_CPU", "") == "1"
    if force_cpu and profile.device != "cpu":
        profile = dataclasses.replace(profile, device="cpu", eval_dtype="float32")
    from . import cost

    refusal = cost.gpu_refusal(profile)
    if refusal:
        raise RuntimeError(refusal)
    return profile


def runs_models(profile: Profile) -> bool:
    """False when the profile's results are read (released or published numbers, lm-eval output): nothing to run."""
    return profiles.runs_models(profile)


def source_words(profile: Profile) -> str:
    """What a profile's results are, in words: 'the authors' released numbers', 'lm-eval output in …', …"""
    kind = profiles.results_source_kind(profile.results_source)
    if kind == "lm-eval":
        return f"lm-evaluation-harness output in {profiles.results_source_dir(profile.results_source)}"
    return {"run": "this project's records", "paper": "the authors' released numbers",
            "pythia-evals": f"EleutherAI's published zero-shot evaluations of {profile.ladder} "
                            "(data/pythia_evals/)"}[kind]


def store(profile: Profile, kind: str = "base") -> results.Store:
    """The records store of a profile: results/<profile>/records (schema-1 records are migrated on first use); the
    fine-tune-to-convergence records (`kind` 'converge') have their own, results/<profile>/converge/records."""
    st = results.Store(plan.records_dir(profile, kind))
    st.migrate()
    return st


def load_frame(profile: Profile, source: str | None = None, *, items: bool = False,
               kinds: tuple[str, ...] = stages.FIXED_KINDS, stale: bool = False) -> pd.DataFrame:
    """The records of a profile as one DataFrame: its own runs ('run'), the authors' released numbers ('paper'), or
    lm-eval output ('pythia-evals', 'lm-eval:<dir>': base models only, with per-item scores where the files hold them).

    Run records of the given kinds ('base', 'instruction', 'sft'; 'converge': the models fine-tuned to convergence,
    from their own store) that are current under today's settings: a record made under other settings, or by a
    model today's profile does not make (another seed, method or evaluation plan), is left out, so no frame mixes
    settings. Column `schedule` says which fine-tuning schedule made a row ('fixed', the paper's epochs, or
    'converge'; stats.select keeps one). How many were left out, per kind, is in `frame.attrs['left_out']` and said
    in `frame.attrs['note']`; their jobs recompute them. `stale=True` loads every record of those kinds as stored.
    `items` adds per-item scores, predictions, references and each record's identity.
    """
    source = source or profile.results_source
    source_kind = profiles.results_source_kind(source)
    if source_kind == "paper":
        return results.load_paper_results().assign(schedule="fixed")
    if source_kind != "run":
        frame = lmeval.load(dataclasses.replace(profile, results_source=source)).assign(schedule="fixed")
        return frame if items else frame.drop(columns=list(results.ITEM_COLUMNS))
    parts, left_out = [], {}
    for schedule, kind_of, wanted_kinds in (("fixed", None, kinds), (plan.CONVERGE, plan.CONVERGE, kinds)):
        if kind_of == plan.CONVERGE and plan.CONVERGE not in kinds:
            continue
        frame = store(profile, kind_of or "base").frame(items=True)
        kind = frame["fine_tune"].map(lambda name: plan.record_kind(profile, name))
        if kind_of is not None:  # every record of that store is of its kind (base models are never in it)
            kind = kind.where(kind.isna() | (kind == "base"), kind_of)
        frame = frame[kind.isin(wanted_kinds)]
        if not stale:
            current = _current_rows(profile, frame, schedule)
            for name, n in kind[frame.index][~current].value_counts().items():
                left_out[name] = left_out.get(name, 0) + int(n)
            frame = frame[current]
        parts.append(frame.assign(schedule=schedule))
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    frame = (frame if items else frame.drop(columns=list(results.ITEM_COLUMNS))).reset_index(drop=True)
    frame.attrs.update(left_out=left_out, note=_left_out_note(profile, left_out))
    return frame


def _current_rows(profile: Profile, frame: pd.DataFrame, schedule: str = "fixed") -> pd.Series:
    """Per row: is the record the one today's settings ask for (its identity hash equals the wanted identity's)?"""
    cache: dict = {}
    flags = []
    for row in frame.itertuples(index=False):
        key = {f: getattr(row, f) for f in results.KEY_FIELDS}
        key["seed"] = None if key["fine_tune"] == results.BASE else int(key["seed"])
        point = plan.resolved(profile, key["ckpt"], cache)
        wanted = None if point is None else plan.wanted_identity(profile, key, model_identity(point), schedule)
        flags.append(wanted is not None and identity.digest(wanted) == row.identity_hash)
    return pd.Series(flags, index=frame.index, dtype=bool)


def _left_out_note(profile: Profile, left_out: dict[str, int]) -> str:
    """One line: how many records of which kinds were left out, and that their jobs recompute them."""
    if not left_out:
        return ""
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(left_out.items()))
    writers = sorted({stages.runner_of(kind).notebook for kind in left_out})
    return (f"Left out: {counts} records made under other settings than today's (or by models this profile no longer "
            f"makes); the {', '.join(writers)} job(s) recompute them (`./run_all.sh --status` lists them).")


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


def model_identity(ckpt: ladder.Checkpoint) -> dict:
    """The settings identity of a base checkpoint (its repo and commit)."""
    return identity.model_identity(ckpt.repo, ckpt.commit)


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


def _examples(profile: Profile, eval_set: str) -> list[dict]:
    return tasks.load_examples(eval_set, source=profile.data_source, limit=profile.eval_limit)


def _generator(profile: Profile, loaded: Loaded, weights: Path | None):
    """The vLLM generation function for this model when the profile asks for it (else None: transformers)."""
    if profile.generation_backend != "vllm":
        return None
    from . import vllm_backend

    source = (str(weights), None) if weights is not None else (loaded.provenance["repo"],
                                                              loaded.provenance["revision"])
    llm = vllm_backend.engine(*source, dtype=profile.eval_dtype, max_model_len=profile.max_length)
    return lambda prompts, max_new_tokens, max_length: vllm_backend.generate(llm, loaded.tokenizer, prompts,
                                                                            max_new_tokens, max_length)


def evaluate_requests(profile: Profile, model, tokenizer, requests: list[tuple[dict, dict]], provenance: dict, *,
                      progress: bool = True, generate_fn=None, kind: str = "base") -> int:
    """Score `model` on every requested (key, identity) record and write each one (into the store of record `kind`);
    returns how many ran."""
    from .nbtools import tqdm

    st = store(profile, kind)
    cache: dict[str, list[dict]] = {}
    first = requests[0][0] if requests else {}
    for key, wanted in tqdm(requests, desc=f"eval {first.get('ckpt')}/{first.get('fine_tune')}",
                            disable=not progress or not requests, mininterval=10):
        eval_set, fmt = key["eval_set"], key["format"]
        dataset = tasks.get(eval_set)
        if eval_set not in cache:
            cache[eval_set] = _examples(profile, eval_set)
        start = time.perf_counter()
        out = evaluate.evaluate_examples(model, tokenizer, dataset, cache[eval_set], fmt, profile.shots,
                                         batch_size=profile.eval_batch_size, max_length=profile.max_length,
                                         max_new_tokens=profile.max_new_tokens,
                                         gold_leak=profile.llmbar_gold_leak,
                                         exact_match=profile.llmbar_exact_match, generate_fn=generate_fn,
                                         shared_prefix=profile.shared_prefix)
        summary = evaluate.bootstrap_ci(out.scores, seed=profile.bootstrap_seed)
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
        nbtools.progress("evaluating the base model", ckpt=point.label, task=results.BASE, run=0, phase="evaluate")
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
    """Whether the artifact at `path` was made under `wanted` (amuro_utils.artifacts' one rule)."""
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
        (folder / "train_log.json").write_text(json.dumps(train_log))
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
        self.examples = {s: _examples(self.scored, s) for s, _ in self.plan}
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
                          **evaluate.bootstrap_ci(out.scores, seed=self.profile.bootstrap_seed),
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
    from . import train

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
    from . import train

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
        nbtools.progress(f"fine-tuning {run}", ckpt=ckpt.label, task=job.task, run=index, phase="train")
        loaded, summary = fine_tuned_model(profile, ckpt, spec, progress=progress, dynamics=dynamics)
        nbtools.progress(f"evaluating the {run} model", ckpt=ckpt.label, task=job.task, run=index, phase="evaluate")
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
    if not runs_models(profile) or not profile.converge:
        return pd.DataFrame()
    notebook = stages.runner_of(plan.CONVERGE).notebook
    names = None if task == "all" else {task}
    rows = [outcome for point in checkpoints(profile, ckpt)
            for job in plan.jobs(profile) if job.notebook == notebook and job.ckpt == point.label
            and (names is None or job.task in names)
            for outcome in _fine_tune_and_evaluate(profile, job, point, progress=progress)]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------------
# the other artifacts the figures and claims read: sensitivity rows, training records, forgetting rows


def current_artifacts(profile: Profile, kind: str, kinds: tuple[str, ...] = stages.RECORD_KINDS
                      ) -> tuple[list[tuple[str, dict]], list[str]]:
    """([(its identity hash, the stored artifact)] of every artifact of `kind` ('sensitivity', 'training',
    'forgetting') that the model jobs of `kinds` make and that is current, [one line per one that is not])."""
    if not runs_models(profile):
        return [], []
    found, notes = [], []
    cache: dict = {}
    resolve = lambda label: plan.resolved(profile, label, cache)  # noqa: E731
    for what, path, wanted in plan.artifacts(profile, kind, plan.read_jobs(profile, kinds), resolve) or []:
        state = artifacts.status(path, wanted)
        if state.state == "done":
            found.append((identity.digest(wanted), artifacts.read(path)[0]))
        elif state.state != "missing":
            notes.append(f"{what}: {state.state}" + (f" (changed: {', '.join(state.changed)})"
                                                     if state.state == "stale" else f" ({state.changed[0]})"))
    return found, notes


def _sensitivity_frame(stored: dict) -> pd.DataFrame:
    frame = pd.DataFrame(stored["rows"], columns=list(probe.FRAME_COLUMNS))
    frame["block_deltas"] = [np.asarray(d, dtype=float) for d in frame["block_deltas"]]
    frame.insert(0, "step", stored["step"])
    frame.insert(0, "ckpt", stored["ckpt"])
    return frame


def _frames(parts: list[pd.DataFrame], columns, digests: list[str], notes: list[str]) -> pd.DataFrame:
    """Rows of several artifacts as one frame, with the identity hashes read and what was left out in its attrs."""
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(columns))
    frame.attrs.update(digests=sorted(digests), left_out=notes)
    return frame


def _write_sensitivity(profile: Profile, point: ladder.Checkpoint, rows: pd.DataFrame, provenance: dict) -> None:
    """A checkpoint's sensitivity rows, under the identity of the checkpoint, the noise and the held-out text."""
    put(profile, "sensitivity", point, {"provenance": provenance, "rows": rows.to_dict("records")})


def sensitivity(profile: Profile, ckpt="all", *, enabled: bool = True, progress: bool = True) -> pd.DataFrame:
    """Springer et al. (2025) progressive sensitivity of each checkpoint named by `ckpt` (amuro_utils.sensitivity):
    one row per (ckpt, scaling, magnitude, seed) with ckpt, step, scaling, magnitude, seed, base_loss, loss,
    delta_loss, block_deltas, n_tokens. Each checkpoint's rows are stored in results/<profile>/sensitivity/<ckpt>.json
    under their settings identity and recomputed when it changes. Empty when disabled or for released numbers."""
    columns = ["ckpt", "step", *probe.FRAME_COLUMNS]
    if enabled and runs_models(profile):
        nbtools.progress("perturbing weights (Springer sensitivity)", unit="sensitivity")
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
        frames.append(_sensitivity_frame(stored))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def sensitivity_rows(profile: Profile) -> pd.DataFrame:
    """The current sensitivity rows of the study's checkpoints (nothing is computed; empty if none); attrs: the
    identity hashes read and what was left out (stale rows)."""
    found, notes = current_artifacts(profile, "sensitivity", ("base",))
    return _frames([_sensitivity_frame(stored) for _, stored in found], ["ckpt", "step", *probe.FRAME_COLUMNS],
                   [digest for digest, _ in found], notes)


TRAINING_COLUMNS = ("ckpt", "step", "fine_tune", "method", "seed", "schedule", "n_examples", "steps", "first_loss",
                    "final_loss", "train_loss", "zero_step_loss", "base_loss", "loss", "delta_loss", "block_deltas")
_RUN = ("ckpt", "fine_tune", "method", "seed", "schedule")


def _fine_tune_rows(profile: Profile, lead: str) -> pd.DataFrame:
    """One row per fine-tuned model of the study whose `lead` artifact ('training' or 'forgetting') is current, with
    the other one's columns where that one is current too (forgetting rows: the fixed schedule's only)."""
    rows: dict[tuple, dict] = {}
    read = {kind: current_artifacts(profile, kind) for kind in ("training", "forgetting")}
    for stored in (s for _, s in read["training"][0]):
        loss = stored["loss"]
        run = {c: stored.get(c, "fixed") for c in _RUN}
        rows.setdefault(tuple(run.values()), {}).update(
            run, **{c: stored[c] for c in ("step", "n_examples", "steps")}, first_loss=loss[0], final_loss=loss[-1],
            train_loss=loss, zero_step_loss=stored.get("zero_step_loss", math.nan), training=True)
    for stored in (s for _, s in read["forgetting"][0]):
        base, tuned = np.asarray(stored["base_heldout"]), np.asarray(stored["heldout"])
        run = {**{c: stored[c] for c in _RUN if c != "schedule"}, "schedule": "fixed"}
        rows.setdefault(tuple(run.values()), {}).update(
            run, step=stored["step"], base_loss=float(base.mean()), loss=float(tuned.mean()),
            delta_loss=float((tuned - base).mean()), block_deltas=tuned - base, forgetting=True)
    frame = pd.DataFrame([row for row in rows.values() if row.get(lead)], columns=list(TRAINING_COLUMNS))
    frame.attrs.update(digests=sorted(d for d, _ in read[lead][0]), left_out=read[lead][1])
    return frame


def training_frame(profile: Profile) -> pd.DataFrame:
    """One row per fine-tuned model of the study whose training record is current: its training-loss curve
    (`train_loss`, per optimizer step), its zero-step loss (`zero_step_loss`: the base model's training loss on the
    run's examples before any update, nats/token), its `schedule` ('fixed', or 'converge' beyond the paper) and,
    where its forgetting rows are current, its held-out pre-training-text loss (`loss`) against its base's
    (`base_loss`), per block (`block_deltas`). Empty for released numbers."""
    return _fine_tune_rows(profile, "training")


def forgetting_frame(profile: Profile) -> pd.DataFrame:
    """The forgetting frame of claim S3: one row per fine-tuned model whose forgetting rows are current (columns of
    `training_frame`); attrs['left_out'] names the stale ones. Empty for released numbers."""
    return _fine_tune_rows(profile, "forgetting")


# ---------------------------------------------------------------------------------------------------------------
# beyond the paper: linear probes per rung, records along fine-tuning


def _probe_frame(stored: dict) -> pd.DataFrame:
    frame = pd.DataFrame(stored["rows"], columns=list(probes_module.PROBE_COLUMNS))
    frame["scores"] = [np.asarray(v, dtype=float) for v in frame["scores"]]
    frame["C"] = pd.to_numeric(frame["C"], errors="coerce")
    frame.insert(0, "step", stored["step"])
    frame.insert(0, "ckpt", stored["ckpt"])
    return frame


PROBE_FRAME_COLUMNS = ("ckpt", "step", *probes_module.PROBE_COLUMNS)


def probes(profile: Profile, ckpt="all", *, enabled: bool = True) -> pd.DataFrame:
    """Beyond the paper: linear probes (amuro_utils.probes) on the frozen hidden states of each checkpoint named by
    `ckpt`, one row per (ckpt, classification task, layer): held-out accuracy with its per-item scores, chance, the
    held-out majority share, the rows used and the chosen C. Each checkpoint's rows are stored in
    results/<profile>/probes/<ckpt>.json under their identity (the checkpoint, the probe settings, the probed rows,
    the probe code's version) and recomputed only when it changes. Empty when off (Profile.probes None, `enabled`
    False, no classification task) or for released numbers."""
    from . import probes as linear

    chosen = plan.probe_tasks(profile)
    if not enabled or not chosen or not runs_models(profile):
        return pd.DataFrame(columns=list(PROBE_FRAME_COLUMNS))
    frames = []
    for point in checkpoints(profile, ckpt):
        path, wanted = plan.artifact(profile, "probes", point)
        stored = artifacts.load(path, wanted, "probe rows")
        if stored is None:
            nbtools.progress("probing the frozen hidden states", ckpt=point.label, unit="probes")
            start = time.perf_counter()
            loaded = load_base(profile, point)
            rows = linear.probe_model(loaded.model, loaded.tokenizer, chosen, profile.probes,
                                      source=profile.data_source, max_length=profile.max_length)
            put(profile, "probes", point, {"provenance": _provenance(profile, loaded, None),
                                           "seconds": round(time.perf_counter() - start, 3),
                                           "rows": rows.assign(scores=[s.tolist() for s in rows["scores"]]).to_dict("records")})
            _release(loaded)
            stored = artifacts.read(path)[0]  # as stored: the same frame whether computed now or read back
        frames.append(_probe_frame(stored))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(PROBE_FRAME_COLUMNS))


def probe_frame(profile: Profile) -> pd.DataFrame:
    """The current linear-probe rows of the study's checkpoints (nothing is computed; empty if none): ckpt, step and
    probes.PROBE_COLUMNS (scores: per held-out item, np.ndarray); attrs: the identity hashes read, what was left
    out."""
    found, notes = current_artifacts(profile, "probes", ("base",))
    return _frames([_probe_frame(stored) for _, stored in found], PROBE_FRAME_COLUMNS,
                   [digest for digest, _ in found], notes)


DYNAMICS_COLUMNS = ("ckpt", "step", "fine_tune", "method", "seed", "schedule", "ft_fraction", "ft_step", "eval_set",
                    "format", "shots", "metric", "performance", "n", "scores", "predictions", "references", "source",
                    "derived")
HELDOUT_LOSS = "heldout_loss"  # the eval_set of held-out pre-training-text loss rows along fine-tuning


def dynamics_frame(profile: Profile) -> pd.DataFrame:
    """Beyond the paper: one row per cell along fine-tuning, for every fine-tuned model whose records along its
    fine-tuning are current: ckpt, step, fine_tune, method, seed, schedule, ft_fraction (of its optimizer steps),
    ft_step (the optimizer step), eval_set, format, shots, metric, performance, n, scores (np.ndarray per item),
    predictions, references. Held-out pre-training-text loss rows have eval_set 'heldout_loss' (metric 'loss',
    performance = the mean loss, scores = the per-block losses). Fractions 0 (the base model) and 1 (the fine-tuned
    model) are added from the ordinary records and the forgetting rows, cut to the items scored along the way (the
    first items of each set, scored alike: `derived` True), so every point of a curve scores the same items.
    attrs: the identity hashes read, what was left out."""
    found, notes = current_artifacts(profile, "dynamics", ("sft",))
    rows = []
    for _, stored in found:
        run = {c: stored[c] for c in ("ckpt", "step", "fine_tune", "method", "seed", "schedule")}
        for point in stored["points"]:
            where = {**run, "ft_fraction": float(point["fraction"]), "ft_step": int(point["step"]),
                     "shots": stored["shots"], "source": "run", "derived": False}
            for e in point["evals"]:
                rows.append({**where, **{c: e[c] for c in ("eval_set", "format", "metric", "performance", "n")},
                             "scores": np.asarray(e["scores"], dtype=float), "predictions": e["predictions"],
                             "references": e["references"]})
            if point.get("heldout") is not None:
                rows.append({**where, **_loss_row(point["heldout"])})
    frame = pd.DataFrame(rows, columns=list(DYNAMICS_COLUMNS))
    if len(frame):
        frame = pd.concat([frame, _dynamics_ends(profile, frame, found)], ignore_index=True)
    frame.attrs.update(digests=sorted(d for d, _ in found), left_out=notes)
    return frame


def _loss_row(losses) -> dict:
    losses = np.asarray(losses, dtype=float)
    return {"eval_set": HELDOUT_LOSS, "format": "default", "metric": "loss", "performance": float(losses.mean()),
            "n": len(losses), "scores": losses, "predictions": None, "references": None}


def _dynamics_ends(profile: Profile, along: pd.DataFrame, found: list) -> pd.DataFrame:
    """Fractions 0 and 1 of every curve along fine-tuning (unless scored along the way, as 1.0 may be): the base and
    the fine-tuned model's current records (and forgetting rows), cut to as many items as the points along the way
    scored."""
    records = load_frame(profile, items=True, kinds=("base", "sft"))
    run_of = lambda s: (s["ckpt"], s["fine_tune"], s["method"], s["seed"])  # noqa: E731
    forgetting = {run_of(s): s for _, s in current_artifacts(profile, "forgetting", ("sft",))[0]}
    runs = {run_of(s): s for _, s in found}
    out = []
    cells = along[["ckpt", "fine_tune", "method", "seed", "eval_set", "format", "n"]].drop_duplicates(
        ["ckpt", "fine_tune", "method", "seed", "eval_set", "format"])
    for cell in cells.itertuples(index=False):
        stored = runs[(cell.ckpt, cell.fine_tune, cell.method, cell.seed)]
        base = {c: stored[c] for c in ("ckpt", "step", "fine_tune", "method", "seed", "schedule")}
        scored = {float(p["fraction"]) for p in stored["points"]}
        for fraction, ft_step in ((0.0, 0), (1.0, stored["total_steps"])):
            if fraction in scored:
                continue
            where = {**base, "ft_fraction": fraction, "ft_step": ft_step, "shots": stored["shots"], "source": "run",
                     "derived": True}
            if cell.eval_set == HELDOUT_LOSS:
                rows = forgetting.get(run_of(stored))
                if rows is not None:
                    out.append({**where, **_loss_row(rows["base_heldout" if fraction == 0.0 else "heldout"])})
                continue
            model = results.BASE if fraction == 0.0 else cell.fine_tune
            match = records[(records["ckpt"] == cell.ckpt) & (records["fine_tune"] == model)
                            & (records["eval_set"] == cell.eval_set) & (records["format"] == cell.format)
                            & (records["shots"] == stored["shots"])]
            if model != results.BASE:
                match = match[(match["method"] == cell.method) & (match["seed"] == cell.seed)]
            if not len(match):
                continue
            row = match.iloc[0]
            n = min(int(cell.n), len(row["scores"]))
            scores = np.asarray(row["scores"], dtype=float)[:n]
            out.append({**where, "eval_set": cell.eval_set, "format": cell.format, "metric": row["metric"],
                        "performance": float(scores.mean()), "n": n, "scores": scores,
                        "predictions": list(row["predictions"])[:n] if row["predictions"] is not None else None,
                        "references": list(row["references"])[:n] if row["references"] is not None else None})
    return pd.DataFrame(out, columns=list(DYNAMICS_COLUMNS))


# ---------------------------------------------------------------------------------------------------------------
# what the notebooks draw


@dataclasses.dataclass
class Drawn:
    """What a notebook's figure step produced: the files written, the tables to show, what it was drawn from."""

    files: list[Path]
    tables: dict[str, pd.DataFrame]
    note: str = ""
    study: "stats.Study | None" = None  # what the leading method's figures and tables read (show.numbers)

    def _repr_markdown_(self) -> str:
        files = "\n".join(f"- `{p}`" for p in self.files) or "(nothing drawn: make_figures=False)"
        return f"{self.note}\n\nWritten:\n{files}" if self.note else f"Written:\n{files}"


def _fine_tune_names(profile: Profile, stage: stages.Stage) -> list[str]:
    """The fine-tunes a stage runs (its artifact figures show those)."""
    return [profile.instruction.name] if stage.runs == "instruction" else [t.name for t in profile.tasks]


def _artifact_figure_input(profile: Profile, stage: stages.Stage, kind: str) -> tuple[pd.DataFrame, tuple]:
    """(the rows, the extra arguments) an artifact figure of `stage` is drawn from."""
    if kind == "sensitivity":
        return sensitivity_rows(profile), ()
    frame = training_frame(profile) if kind == "training" else forgetting_frame(profile)
    names = _fine_tune_names(profile, stage)
    chosen = frame[(frame["method"] == profile.method) & frame["fine_tune"].isin(names)]
    chosen.attrs.update(frame.attrs)
    return chosen, ((names,) if kind == "training" else ())


def draw(profile: Profile, notebook: str, *, overlay_paper: bool = False, enabled: bool = True) -> Drawn:
    """Draw a notebook's figures (PDF + PNG) and tables (CSV + markdown), as its stage names them
    (amuro_utils.stages), into figures/<profile>/ from the results current under today's settings, with the paper's
    released numbers overlaid if asked; prints what they were drawn from and what was left out. A profile with
    several fine-tuning methods also gets each other method's figures (file suffix `_<method>`) with the leading
    method's curves drawn dotted beside them. Analysis notebooks stop with the commands to run when the records they
    need are missing. `enabled=False` (per-checkpoint cluster jobs) draws nothing."""
    from . import plots

    if not enabled:
        return Drawn([], {})
    nbtools.progress("drawing the figures", unit="rest")
    stage = stages.get(notebook)
    df, overlay = figure_inputs(profile, notebook, overlay_paper)
    files, tables = [], {}
    variants = [(profile, overlay, "")]
    for other in profile.methods[1:]:
        leading = df.copy()
        leading.attrs.update(method=profile.method, label=f"{profile.method} fine-tuning")
        rest = tuple(m for m in profile.methods if m != other)
        variants.append((dataclasses.replace(profile, methods=(other, *rest)), leading, f"_{other}"))
    lead = None
    for shown, over, suffix in variants:
        study = stats.Study(df, shown, method=shown.method)  # one study per method: figures and tables read it
        lead = lead or study
        for stem, maker in stage.figures.items():
            fig = stages.resolve(maker)(study, shown, overlay=over)
            if fig is not None:
                files += plots.save(fig, profile, stem + suffix)  # inline
        for stem, maker in stage.tables.items():
            tables[stem + suffix] = stages.resolve(maker)(study)
            files += plots.write_table(tables[stem + suffix], profile, stem + suffix)
    notes = [df.attrs["note"]] if df.attrs.get("note") else []
    if stage.beyond_figures:
        run = beyond_run(profile)
        for stem in stage.beyond_figures:
            files += run.figure(stem)
        notes += run.notes
    if runs_models(profile):
        for stem, (kind, maker) in stage.artifact_figures.items():
            rows, extra = _artifact_figure_input(profile, stage, kind)
            notes += [f"Left out of {stem}: {line}." for line in rows.attrs.get("left_out", [])]
            if len(rows):
                files += plots.save(stages.resolve(maker)(rows, profile, *extra), profile, stem)
    source = (source_words(profile) if not runs_models(profile) else
              f"{len(df)} records ({', '.join(stage.record_reads)}) made under today's settings")
    note = " ".join([f"Figures of {notebook} drawn from {source}."] + notes)
    print(note)
    return Drawn(files, tables, note, lead)


# ---------------------------------------------------------------------------------------------------------------
# what each notebook's run shows: the claims of both papers, computed

# The claims that read an artifact besides the records (their verdict notes say why rows were left out).
ARTIFACT_CLAIMS = {"sensitivity": ("S1",), "forgetting": ("S3",)}
SCORECARD_READS = stages.get(stages.writers_of("scorecard")[0]).reads


# What the questions beyond the paper read besides the claims' inputs (pipeline frames, in `claim_inputs`).
BEYOND_FRAMES = {"training": training_frame, "dynamics": dynamics_frame, "probes": probe_frame}


def claim_inputs(profile: Profile, reads: tuple[str, ...] = SCORECARD_READS) -> dict:
    """What the claims judge, current under today's settings: the records of the kinds in `reads` (with per-item
    scores; 'converge' adds the fine-tune-to-convergence records, column `schedule`), and, where `reads` names them,
    the sensitivity rows, the forgetting rows and what the questions beyond the paper read (training records with
    their zero-step loss, records along fine-tuning, probe rows); of this profile's run or of the authors' release."""
    kinds = tuple(k for k in reads if k in stages.RECORD_KINDS)
    inputs = {"df": load_frame(profile, items=True, kinds=kinds),
              "sensitivity": sensitivity_rows(profile) if "sensitivity" in reads else None,
              "forgetting": forgetting_frame(profile) if "forgetting" in reads else None}
    inputs.update({kind: make(profile) if kind in reads else None for kind, make in BEYOND_FRAMES.items()})
    return inputs


def _judges_beyond(inputs: dict) -> bool:
    """Whether these inputs are those of the questions beyond the paper (the stage that reads them all)."""
    return all(inputs.get(kind) is not None for kind in BEYOND_FRAMES)


def verdicts(profile: Profile, notebook: str) -> str:
    """Markdown: the verdicts of the claims a notebook's figures bear on (its stage's `claims`), computed from the
    results it reads, one table per fine-tuning method. The notebook that writes the scorecard also writes it
    (figures/<profile>/claims.md and .csv, with its "Beyond the paper" section, and beyond.md / .csv) and, when it is
    the notebook of the questions beyond the paper, shows their section."""
    from . import claims

    nbtools.progress("judging the claims", unit="rest")
    stage = stages.get(notebook)
    inputs = claim_inputs(profile, stage.reads)
    parts = [claims.notebook_verdicts(notebook, inputs["df"], profile, sensitivity=inputs["sensitivity"],
                                      forgetting=inputs["forgetting"], method=method)
             for method in profile.methods if stage.claims]
    if "scorecard" in stage.writes:
        paths = scorecard(profile, inputs if set(SCORECARD_READS) <= set(stage.reads) else None)
        if _judges_beyond(inputs):
            from . import beyond

            parts.append(beyond.section_markdown(stored_beyond_table(profile)))
        parts.append(f"The whole scorecard: `{next(p for p in paths if p.name == 'claims.md')}`")
    return "\n\n".join(parts)


def scorecard_identity(profile: Profile, inputs: dict) -> dict:
    """What a scorecard was judged from: the identity hashes of the records (the converge schedule's among them),
    sensitivity and forgetting rows, training records, records along fine-tuning and probe rows it read (or the
    released tables), the claims code's version and the settings the claims read."""
    if not runs_models(profile):
        return plan.scorecard_identity(profile, released=identity.source_digest(profile.results_source))
    beyond = {kind: inputs[kind].attrs["digests"] for kind in BEYOND_FRAMES if inputs.get(kind) is not None}
    return plan.scorecard_identity(profile, records=list(inputs["df"]["identity_hash"]),
                                   sensitivity=inputs["sensitivity"].attrs["digests"],
                                   forgetting=inputs["forgetting"].attrs["digests"], **beyond)


def beyond_studies(profile: Profile, inputs: dict, method: str | None = None) -> tuple[stats.Study, stats.Study | None]:
    """(the study of the questions beyond the paper: records of the fixed schedule with every other bank — dynamics,
    probes, sensitivity and forgetting with the zero-step loss —, the study of the fine-tune-to-convergence records or
    None where there are none)."""
    method = method or profile.method
    df = inputs["df"]
    frames = {"sensitivity": inputs["sensitivity"], "forgetting": inputs["forgetting"]}
    study = stats.Study(df, profile, method=method, dynamics=inputs.get("dynamics"), probes=inputs.get("probes"),
                        **frames)
    converged = None
    if "schedule" in df and (df["schedule"] == plan.CONVERGE).any():
        converged = stats.Study(df, profile, method=method, schedule=plan.CONVERGE, **frames)
    return study, converged


def stored_beyond_table(profile: Profile, inputs: dict | None = None) -> pd.DataFrame:
    """The questions beyond the paper judged on this run (beyond.evaluate), as the scorecard stores them (judged
    first if the stored scorecard is not current)."""
    from . import claims

    scorecard(profile, inputs)
    stored = artifacts.read(plan.scorecard_path(profile))[0]["tables"][BEYOND_STEM]
    table = pd.DataFrame(stored["rows"], columns=[*claims.SCORECARD_COLUMNS, "hypothesis"])
    table.attrs.update(stored["attrs"])
    return table


def _left_out_lines(inputs: dict) -> dict[str, list[str]]:
    """Artifact kind -> why some of its rows were left out of the scorecard (stale or unreadable)."""
    return {kind: inputs[kind].attrs.get("left_out", []) for kind in ARTIFACT_CLAIMS
            if inputs.get(kind) is not None and inputs[kind].attrs.get("left_out")}


def _write_scorecard(profile: Profile, wanted: dict, tables: dict[str, dict]) -> None:
    """The scorecard (file stem -> its rows, one per verdict, and the table's attrs: sources, constant counts, the
    units of each part) under the identity of what it was judged from."""
    artifacts.write(results_dir(profile.name), plan.scorecard_path(profile), wanted, {"tables": tables})


BEYOND_STEM = "beyond"  # the scorecard's table of the questions beyond the paper (figures/<profile>/beyond.*)
READINGS_STEM = "claims_readings"  # the same claims on continuous readings (figures/<profile>/claims_readings.*)


def scorecard(profile: Profile, inputs: dict | None = None) -> list[Path]:
    """Judge every claim of both papers on this profile's current results (each fine-tuning method) and the
    questions beyond the paper (the leading method), store the scorecard under the identity of what it read
    (results/<profile>/scorecard.json: reused while that is unchanged) and write figures/<profile>/claims.md and
    claims.csv (other methods: claims_<method>.*) from it, claims.md ending with the "Beyond the paper" section, and
    beyond.md / beyond.csv. Rows left out (stale sensitivity or forgetting rows) are named in the notes of the claims
    that read them."""
    from . import beyond, claims

    inputs = inputs or claim_inputs(profile)
    wanted, path = scorecard_identity(profile, inputs), plan.scorecard_path(profile)
    if artifacts.load(path, wanted, "scorecard") is None:
        tables, left_out = {}, _left_out_lines(inputs)
        for method in profile.methods:
            table = claims.evaluate_all(inputs["df"], profile, sensitivity=inputs["sensitivity"],
                                        forgetting=inputs["forgetting"], method=method)
            for kind, lines in left_out.items():
                why = f"Left out: {'; '.join(lines)}."
                if kind == "forgetting" and not profile.keep_weights:
                    why += " Fix: " + plan.forgetting_fix(profile) + "."
                chosen = table["id"].isin(ARTIFACT_CLAIMS[kind])
                table.loc[chosen, "note"] = [f"{n} {why}".strip() if isinstance(n, str) else why
                                             for n in table.loc[chosen, "note"]]
            tables["claims" if method == profile.method else f"claims_{method}"] = {
                "rows": table.to_dict("records"), "attrs": dict(table.attrs)}
            if method == profile.method:
                lead = table
        readings = claims.evaluate_readings(inputs["df"], profile, method=profile.method, paper=lead)
        tables[READINGS_STEM] = {"rows": readings.to_dict("records"), "attrs": dict(readings.attrs)}
        if _judges_beyond(inputs):
            study, converged = beyond_studies(profile, inputs)
            table = beyond.evaluate(inputs["df"], profile, study=study, converged=converged)
            tables[BEYOND_STEM] = {"rows": table.to_dict("records"), "attrs": dict(table.attrs)}
        _write_scorecard(profile, wanted, tables)
    stored = artifacts.read(path)[0]  # drawn from what is stored: the same files whether judged now or before
    tables = {}
    for stem, stored_table in stored["tables"].items():
        columns = ([*claims.SCORECARD_COLUMNS, "hypothesis"] if stem == BEYOND_STEM else
                   list(claims.READING_COLUMNS) if stem == READINGS_STEM else list(claims.SCORECARD_COLUMNS))
        tables[stem] = pd.DataFrame(stored_table["rows"], columns=columns)
        tables[stem].attrs.update(stored_table["attrs"])
    written, sections = [], []  # claims.md ends with the readings' summary and the questions beyond the paper
    readings_table, beyond_table = tables.pop(READINGS_STEM, None), tables.pop(BEYOND_STEM, None)
    if readings_table is not None and len(readings_table):  # beside the paper's metric: its own files
        written += claims.write_readings(readings_table, profile, stem=READINGS_STEM)
        sections.append(claims.readings_summary(readings_table))
    if beyond_table is not None:  # kept apart from the paper's claims: its own section and its own files
        from . import plots

        section = beyond.section_markdown(beyond_table)
        written += plots.write_table(beyond_table, profile, BEYOND_STEM, markdown=section)
        sections.append(section)
    scorecards = []  # each file written once; the lead method's claims.md ends with the sections
    for stem, table in tables.items():
        scorecards += claims.write_scorecard(table, profile, stem=stem, sections=tuple(sections) if stem == "claims" else ())
    return scorecards + written


QUESTION_PREFIXES = {"D": ("D1", "D2", "D3"), "P": ("P1",), "R": ("R-",), "C": ("C-",)}


@dataclasses.dataclass
class BeyondRun:
    """The questions beyond the paper on this run, for their notebook: the study every figure reads (records of the
    fixed schedule with the dynamics, probe and held-out-loss banks), the verdict table as the scorecard stores it,
    and what was left out; the study of the fine-tune-to-convergence records where there are some."""

    profile: Profile
    study: stats.Study
    table: pd.DataFrame
    notes: list[str]
    converged: stats.Study | None = None

    def figure(self, stem: str) -> list[Path]:
        """Draw one figure of the stage (figures/<profile>/<stem>.pdf and .png; shown inline in a notebook); nothing,
        with a note, where its rows are missing (e.g. a switch is off, or the authors' release)."""
        from . import plots

        source, maker = stages.get(stages.writers_of("scorecard")[0]).beyond_figures[stem]
        lacking = {"figB_dynamics": (self.study.dynamics_frame, "no records along fine-tuning (Profile.dynamics)"),
                   "figB_probes": (self.study.probe_frame, "no probe rows (Profile.probes)"),
                   "figB_converge": (self.converged, "no fine-tune-to-convergence records (./run_all.sh --set "
                                                     "converge=true)")}.get(stem)
        if lacking is not None and lacking[0] is None:
            print(f"{stem} not drawn: {lacking[1]}.")
            return []
        what = {"study": (self.study,), "studies": (self.study, self.converged)}.get(source, (self.table,))
        return plots.save(stages.resolve(maker)(*what, self.profile), self.profile, stem)

    def shows(self, question: str) -> str:
        """Markdown: what this run shows for one question ('D' dynamics, 'P' probes, 'R' predictors, 'C' claims under
        fine-tuning to convergence): per part its statistic, hypothesis, value, 95 % CI, verdict and note."""
        from . import beyond as questions

        rows = self.table[self.table["id"].str.startswith(QUESTION_PREFIXES[question])]
        lines = ["| id | statistic | hypothesis | value | 95 % CI | verdict | note |", "|---|---|---|---|---|---|---|"]
        for r in rows.itertuples(index=False):
            ci = f"[{r.ci_low:.3g}, {r.ci_high:.3g}]" if np.isfinite(r.ci_low) else ""
            value = f"{r.value:.3g}" if isinstance(r.value, float) and np.isfinite(r.value) else ""
            note = "; ".join(str(x) for x in (r.missing and f"missing: {r.missing}", r.note)
                             if isinstance(x, str) and x)
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in (
                r.id, r.statistic, r.hypothesis, value, ci, f"**{r.verdict}**", note)) + " |")
        if question == "R":
            lines += ["", "Ranked by |ρ| (beyond.ranking):", "", _markdown_table(questions.ranking(self.table))]
        return "\n".join(lines) + "\n"


def _markdown_table(frame: pd.DataFrame) -> str:
    def cell(v):
        return f"{v:.3g}" if isinstance(v, float) and np.isfinite(v) else ("" if isinstance(v, float) else str(v))

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)])


def beyond_run(profile: Profile) -> BeyondRun:
    """The questions beyond the paper on this profile's current results: their study and their verdict table (judged
    with the whole scorecard and stored with it, or read back when current); prints what they are drawn from."""
    inputs = claim_inputs(profile)
    study, converged = beyond_studies(profile, inputs)
    notes = [line for line in ([inputs["df"].attrs.get("note", "")] + [
        f"Left out of the questions beyond the paper: {line}." for kind in BEYOND_FRAMES
        for line in inputs[kind].attrs.get("left_out", [])]) if line]
    df = inputs["df"]
    source = (source_words(profile) if not runs_models(profile) else
              f"{len(inputs['dynamics'])} rows along fine-tuning, {len(inputs['probes'])} probe rows and {len(df)} "
              f"records ({', '.join(sorted(set(df['schedule'])))} schedule) made under today's settings")
    print(" ".join([f"Figures of beyond drawn from {source}."] + notes))
    return BeyondRun(profile, study, stored_beyond_table(profile, inputs), notes, converged)


# ---------------------------------------------------------------------------------------------------------------
# what the analysis notebooks read


def figure_inputs(profile: Profile, notebook: str, overlay_paper: bool = False
                  ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(the current records of the kinds a notebook's stage reads, the paper's released rows to overlay or None).
    A stage that runs no model stops with the commands to run when base or fine-tuned records are missing."""
    stage = stages.get(notebook)
    df = load_frame(profile, items=True, kinds=stage.record_reads)  # per-item scores: the scorecard's intervals
    if stage.runs is None:
        require(df, profile, ["base", *[t.name for t in profile.tasks]])
    return df, (load_frame(profile, "paper") if overlay_paper else None)


def require(df: pd.DataFrame, profile: Profile, fine_tunes: list[str]) -> None:
    """Stop with the exact notebook commands to run when records an analysis needs are missing."""
    have = set(df["fine_tune"]) if len(df) else set()
    lacking = [f for f in fine_tunes if f not in have]
    if lacking:
        params = " ".join(f"-p {k} {shlex.quote(v)}" for k, v in profile.params or (("profile", profile.name),))
        cmds = sorted({f"papermill notebooks/{stages.runner_of(plan.record_kind(profile, f) or 'sft').notebook}.ipynb "
                       f"out.ipynb {params}" for f in lacking})
        raise RuntimeError(f"no records for fine_tune {lacking} in profile {profile.name!r}; run first:\n  "
                           + "\n  ".join(cmds))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Judge every claim of both papers on a profile's recorded results (or "
                                                 "the authors' release): figures/<profile>/claims.md and claims.csv.")
    profile_overrides.add_arguments(parser, "paper-reference")
    args = parser.parse_args()
    chosen = setup(args.profile_file or args.profile, overrides=";".join(args.overrides))
    print("\n".join(map(str, scorecard(chosen))))

