"""The steps the notebooks call: evaluate base checkpoints, fine-tune and evaluate, probe sensitivity, load records,
draw a notebook's figures.

Every step is resumable and settings-aware: a record is reused only when it was made under the settings identity the
profile gives now (amuro_utils.identity); a stale one is recomputed and the old one kept aside; a fine-tuned model is
trained only while some record of its evaluation plan is missing or stale. Every step is a no-op on a profile whose
results are the authors' released numbers, so a notebook reads top to bottom with no branches.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import analysis, evaluate, identity, ladder, plan, results, sensitivity as probe, stats, tasks, tiny_ladder
from .paths import results_dir
from .profiles import FineTune, Profile, TaskPlan, ckpt_step, get_profile

log = logging.getLogger(__name__)
SOURCES = ("run", "paper")


# ---------------------------------------------------------------------------------------------------------------
# set-up and results


def setup(profile_name: str, results_source: str = "", *, force_cpu: bool | None = None) -> Profile:
    """Resolve a profile (with `results_source` 'run' or 'paper' if given) and check, before any download or hour is
    spent, that this machine can run it."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-file loading/saving bars would flood executed notebooks
    profile = get_profile(profile_name)
    if results_source:
        if results_source not in SOURCES:
            raise ValueError(f"unknown results source {results_source!r}; use 'run' or 'paper' (or '' for the "
                             f"profile's own, {profile.results_source!r})")
        profile = dataclasses.replace(profile, results_source=results_source)
    if profile.results_source == "paper":
        return profile
    if profile.data_source == "offline":
        from .offline import ensure_assets

        ensure_assets(verbose=False)
    if force_cpu is None:
        force_cpu = os.environ.get("AMURO_FORCE_CPU", "") == "1"
    if force_cpu and profile.device != "cpu":
        profile = dataclasses.replace(profile, device="cpu", eval_dtype="float32")
    if profile.requires_gpu and profile.device != "cpu":
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError(
                f"profile {profile.name!r} needs a CUDA GPU and none is visible. Run it on a GPU machine, use "
                "`--profile tiny` for the offline CPU demo, or set AMURO_FORCE_CPU=1 to force the CPU (debugging only: "
                "OLMo-1B fine-tuning on a CPU takes days).")
    return profile


def runs_models(profile: Profile) -> bool:
    """False when the profile's results are the authors' released numbers (nothing to run)."""
    return profile.results_source == "run"


def store(profile: Profile) -> results.Store:
    """The results store of a profile: results/<profile>/records (schema-1 records are migrated on first use)."""
    st = results.Store(results_dir(profile.name) / "records")
    st.migrate()
    return st


def load_frame(profile: Profile, source: str | None = None, *, items: bool = False, mixed: bool = False) -> pd.DataFrame:
    """All records of a profile as one DataFrame: its own runs ('run') or the authors' released numbers ('paper').

    Run records made under different settings where they must agree (e.g. two item limits, or two learning rates
    for one task across the ladder) are refused, naming the fields, unless `mixed=True`. `items` adds per-item
    scores, predictions, references and each record's identity.
    """
    source = source or profile.results_source
    if source == "paper":
        return results.load_paper_results()
    if source != "run":
        raise ValueError(f"unknown results source {source!r}; use 'run' or 'paper'")
    frame = store(profile).frame(items=True)
    conflicts = results.mixed_settings(frame)
    if conflicts and not mixed:
        raise ValueError(f"the records of profile {profile.name!r} were made under different settings: "
                         + "; ".join(conflicts) + ". Rerun `./run_all.sh --profile " + profile.name
                         + "` (it recomputes stale records; `--status` lists them), or pass mixed=True to load them "
                         "anyway")
    return frame if items else frame.drop(columns=list(results.ITEM_COLUMNS))


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
        return "The figures come from the authors' released numbers: no checkpoint is loaded."
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
    st, todo = store(profile), []
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
                      progress: bool = True, generate_fn=None) -> int:
    """Score `model` on every requested (key, identity) record and write each one; returns how many ran."""
    from tqdm.auto import tqdm

    st = store(profile)
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
        metrics = {"metric": dataset.metric, **summary, "n_truncated": int(out.n_truncated),
                   "n_prefix_fallback": int(out.n_prefix_fallback),
                   "seconds": round(time.perf_counter() - start, 3),
                   "constant_prediction": analysis.constant_predictor(out.predictions, dataset.kind,
                                                                      dataset.strip_order)}
        st.write(key, metrics, {**provenance, "config_hash": identity.digest(wanted)},
                 scores=np.asarray(out.scores).tolist(), predictions=list(out.predictions),
                 references=list(out.references), identity=wanted)
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
        job = plan.find_job(profile, "pretrain_probe", point.label, results.BASE)
        todo = pending(profile, job, point)
        if not todo:
            continue
        _preflight(profile, job)
        loaded = load_base(profile, point)
        done += evaluate_requests(profile, loaded.model, loaded.tokenizer, todo,
                                  _provenance(profile, loaded, None), progress=progress,
                                  generate_fn=_generator(profile, loaded, None))
        _release(loaded)
        _prune(profile, point)
    return done


def _weights_dir(profile: Profile, ckpt: ladder.Checkpoint, spec: FineTune) -> Path:
    return results_dir(profile.name) / "models" / ckpt.label / results.run_name(spec.name, spec.method, spec.seed)


def train_examples(profile: Profile, spec: FineTune) -> list[dict]:
    """Training examples as the paper made them: shuffle(seed=42), first n (or a fraction); supervised sets rendered
    in the default "###" template as prompt/completion pairs, chat sets as Tulu messages."""
    dataset = tasks.get(spec.train_set)
    rows = tasks.sample_train(spec.train_set, n=spec.n_train if spec.n_train is not None else 6000,
                              fraction=spec.fraction, seed=identity.DATA_SEED, source=profile.data_source)
    if dataset.kind == "chat":
        return [{"messages": row["messages"]} for row in rows]
    return [{"prompt": tasks.render(dataset, row, "default"), "completion": row["target"]} for row in rows]


def _training_record(profile: Profile, ckpt: ladder.Checkpoint, spec: FineTune) -> Path:
    return results_dir(profile.name) / "fine_tunes" / ckpt.label / f"{results.run_name(spec.name, spec.method, spec.seed)}.json"


def _heldout_losses(profile: Profile, model, tokenizer) -> np.ndarray:
    """Per-block loss of `model` on the held-out pre-training text (the sensitivity probe's blocks)."""
    blocks = probe.heldout_token_blocks(tokenizer, profile.sensitivity.block, profile.sensitivity.tokens)
    return probe.block_losses(model, blocks)


def _write_training_record(profile: Profile, ckpt: ladder.Checkpoint, spec: FineTune, train_log: dict,
                           base_losses: np.ndarray, tuned_losses: np.ndarray, provenance: dict) -> dict:
    """The fine-tuning's own record: its loss curve and how much it forgot of the pre-training text (Springer S3)."""
    wanted = plan.training_identity(profile, ckpt, spec)
    record = {"identity": wanted, "identity_hash": identity.digest(wanted), "ckpt": ckpt.label, "step": ckpt.step,
              "fine_tune": spec.name, "method": spec.method, "seed": spec.seed, "provenance": provenance,
              "loss": train_log["loss"], "lr": train_log["lr"], "n_examples": train_log["n_examples"],
              "steps": len(train_log["loss"]), "seconds": train_log.get("seconds"),
              "base_heldout": base_losses.tolist(), "heldout": tuned_losses.tolist()}
    path = _training_record(profile, ckpt, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    results.atomic_write(path, json.dumps(identity.plain(record)))
    return record


def _training_record_current(profile: Profile, ckpt: ladder.Checkpoint, spec: FineTune) -> bool:
    path = _training_record(profile, ckpt, spec)
    if not path.is_file():
        return False
    try:
        stored = json.loads(path.read_text()).get("identity_hash")
    except ValueError:
        return False
    return stored == identity.digest(plan.training_identity(profile, ckpt, spec))


def fine_tuned_model(profile: Profile, ckpt: ladder.Checkpoint, spec: FineTune, *, progress: bool = True):
    """The checkpoint fine-tuned as `spec` says: loaded from results/<profile>/models if a finished copy made under
    the same settings is there (so an interrupted evaluation resumes without retraining), else trained now and
    saved there, with its fine-tuning record (loss curve, held-out loss before and after). Returns (Loaded, training
    summary)."""
    from . import train

    out = _weights_dir(profile, ckpt, spec)
    wanted = identity.weights_identity(profile, model_identity(ckpt), spec)
    dtype = ladder.torch_dtype(profile.eval_dtype, profile.device)
    if (out / "DONE").exists():  # the folder holds weights and tokenizer; DONE their identity and provenance
        done = json.loads((out / "DONE").read_text())
        if done.get("identity_hash") == identity.digest(wanted):
            from transformers import AutoModelForCausalLM, AutoTokenizer

            if spec.method == "lora":  # the folder holds the adapter only: merge it into its base checkpoint
                base = load_base(profile, ckpt, dtype="float32")
                model = train.load_lora(base.model, out).to(dtype).eval()
            else:
                model = AutoModelForCausalLM.from_pretrained(out, dtype=dtype).to(profile.device).eval()
            loaded = Loaded(model, AutoTokenizer.from_pretrained(out), done["provenance"])
            if not _training_record_current(profile, ckpt, spec):
                base = load_base(profile, ckpt)
                base_losses = _heldout_losses(profile, base.model, base.tokenizer)
                _release(base)
                train_log = json.loads((out / "train_log.json").read_text())
                _write_training_record(profile, ckpt, spec, train_log, base_losses,
                                       _heldout_losses(profile, model, loaded.tokenizer), loaded.provenance)
            return loaded, done["summary"]
        log.warning("fine-tuned model %s was trained under other settings (changed: %s): retraining", out,
                    ", ".join(identity.changed_fields(done.get("identity"), wanted)))
    loaded = load_base(profile, ckpt, dtype="float32")  # fp32 master weights; bf16 autocast on GPU
    base_losses = _heldout_losses(profile, loaded.model, loaded.tokenizer)
    examples = train_examples(profile, spec)
    trained = train.attach_lora(loaded.model, spec.lora, spec.seed) if spec.method == "lora" else loaded.model
    # the per-step bar only where someone watches a terminal; the notebooks show the returned summary
    train_log = train.fine_tune(trained, loaded.tokenizer, examples, spec.train, kind=spec.kind,
                                progress=progress and sys.stderr.isatty(), device=profile.device)
    # A folder of this process's own (two jobs may train the same model at once), renamed into place when complete.
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    if spec.method == "lora":  # keep the small adapter; evaluate the merged model with the same code as full FT
        train.save_adapter(trained, loaded.tokenizer, tmp)
        loaded.model = train.merge_lora(trained)
    else:
        train.save_fine_tuned(loaded.model, loaded.tokenizer, tmp, dtype=profile.eval_dtype)
    _write_training_record(profile, ckpt, spec, train_log, base_losses,
                           _heldout_losses(profile, loaded.model, loaded.tokenizer), loaded.provenance)
    summary = {"n_train": len(examples), "steps": len(train_log["loss"]), "final_loss": train_log["loss"][-1],
               "first_loss": train_log["loss"][0], "seconds": train_log.get("seconds")}
    (tmp / "train_log.json").write_text(json.dumps(train_log))
    (tmp / "DONE").write_text(json.dumps({"summary": summary, "provenance": loaded.provenance, "identity": wanted,
                                          "identity_hash": identity.digest(wanted)}))
    shutil.rmtree(out, ignore_errors=True)
    try:
        tmp.rename(out)
    except OSError:  # another job finished the same model first: its copy is as good as ours
        shutil.rmtree(tmp, ignore_errors=True)
    loaded.model.to(dtype).eval()
    return loaded, summary


def _fine_tune_and_evaluate(profile: Profile, job: plan.Job, ckpt: ladder.Checkpoint, *, progress: bool) -> list[dict]:
    """Fine-tune one checkpoint per training run of `job` (if any of its records is missing or stale), run the job's
    evaluation plan on each, then drop the weights that are not kept."""
    outcomes = []
    for spec in job.fine_tunes:
        single = dataclasses.replace(job, fine_tunes=(spec,))
        todo = pending(profile, single, ckpt)
        row = {"ckpt": ckpt.label, "task": spec.name, "method": spec.method, "seed": spec.seed}
        if not todo and _training_record_current(profile, ckpt, spec):
            outcomes.append({**row, "status": "recorded"})
            continue
        _preflight(profile, job)
        loaded, summary = fine_tuned_model(profile, ckpt, spec, progress=progress)
        weights = _weights_dir(profile, ckpt, spec)
        records = evaluate_requests(profile, loaded.model, loaded.tokenizer, todo, _provenance(profile, loaded, spec),
                                    progress=progress, generate_fn=_generator(profile, loaded, weights))
        _release(loaded)
        if not profile.keep_weights:
            shutil.rmtree(weights, ignore_errors=True)
        outcomes.append({**row, "status": "ran", "records": records, **summary})
    _prune(profile, ckpt)
    return outcomes


def run_sft(profile: Profile, ckpt="all", task: str | TaskPlan = "all", *, progress: bool = True) -> pd.DataFrame:
    """Fine-tune each checkpoint named by `ckpt` on each task named by `task` (if any of its records is missing or
    stale) and run each fine-tuned model's whole evaluation plan; one row per fine-tuning run."""
    if not runs_models(profile):
        return pd.DataFrame()
    chosen = [task] if isinstance(task, TaskPlan) else select_tasks(profile, task)
    rows = [outcome for point in checkpoints(profile, ckpt) for t in chosen
            for outcome in _fine_tune_and_evaluate(profile, plan.find_job(profile, "sft", point.label, t.name), point,
                                                   progress=progress)]
    return pd.DataFrame(rows)


def run_instruction_tuning(profile: Profile, ckpt="all", *, progress: bool = True) -> pd.DataFrame:
    """Instruction-tune each checkpoint named by `ckpt` (TULU v2 5 % in the paper) and score it on the benchmarks
    and LLMBar; one row per fine-tuning run."""
    if not runs_models(profile):
        return pd.DataFrame()
    name = profile.instruction.name
    chosen = list(plan.instruction_ckpts(profile)) if str(ckpt) == "all" else ckpt
    rows = [outcome for point in checkpoints(profile, chosen)
            for outcome in _fine_tune_and_evaluate(profile, plan.find_job(profile, "instruction_tuning", point.label,
                                                                          name), point, progress=progress)]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------------
# Springer et al. 2025: progressive sensitivity


def _sensitivity_path(profile: Profile, ckpt: ladder.Checkpoint) -> Path:
    return results_dir(profile.name) / "sensitivity" / f"{ckpt.label}.json"


def _cached_sensitivity(profile: Profile, point: ladder.Checkpoint) -> pd.DataFrame | None:
    """A checkpoint's probe rows if they were made under the current settings identity, else None."""
    path = _sensitivity_path(profile, point)
    if not path.is_file():
        return None
    try:
        cached = json.loads(path.read_text())
    except ValueError:
        log.warning("sensitivity rows %s are not valid JSON: recomputing", path)
        return None
    wanted = plan.sensitivity_identity(profile, point)
    if cached.get("identity_hash") != identity.digest(wanted):
        log.warning("sensitivity rows %s were made under other settings (changed: %s): recomputing", path,
                    ", ".join(identity.changed_fields(cached.get("identity"), wanted)))
        return None
    frame = pd.DataFrame(cached["rows"], columns=list(probe.FRAME_COLUMNS))
    frame["block_deltas"] = [np.asarray(d, dtype=float) for d in frame["block_deltas"]]
    frame.insert(0, "step", cached["step"])
    frame.insert(0, "ckpt", point.label)
    return frame


def sensitivity(profile: Profile, ckpt="all", *, enabled: bool = True, progress: bool = True) -> pd.DataFrame:
    """Springer et al. (2025) progressive sensitivity of each checkpoint named by `ckpt` (amuro_utils.sensitivity):
    one row per (ckpt, scaling, magnitude, seed) with ckpt, step, scaling, magnitude, seed, base_loss, loss,
    delta_loss, block_deltas, n_tokens. Each checkpoint's rows are cached in results/<profile>/sensitivity/<ckpt>.json
    with their settings identity and recomputed when it changes. Empty when disabled or for released numbers."""
    columns = ["ckpt", "step", *probe.FRAME_COLUMNS]
    if not enabled or not runs_models(profile):
        return pd.DataFrame(columns=columns)
    settings, frames, blocks = profile.sensitivity, [], None
    for point in checkpoints(profile, ckpt):
        frame = _cached_sensitivity(profile, point)
        if frame is None:
            loaded = load_base(profile, point, dtype=settings.dtype)
            if blocks is None:  # one ladder, one tokenizer: the held-out text is tokenized once
                blocks = probe.heldout_token_blocks(loaded.tokenizer, settings.block, settings.tokens)
            rows = probe.probe(loaded.model, blocks, settings, progress=progress and sys.stderr.isatty())
            wanted = plan.sensitivity_identity(profile, point)
            record = {"identity": wanted, "identity_hash": identity.digest(wanted), "step": point.step,
                      "provenance": _provenance(profile, loaded, None), "rows": rows.to_dict("records")}
            path = _sensitivity_path(profile, point)
            path.parent.mkdir(parents=True, exist_ok=True)
            results.atomic_write(path, json.dumps(identity.plain(record)))
            _release(loaded)
            frame = _cached_sensitivity(profile, point)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def sensitivity_rows(profile: Profile) -> pd.DataFrame:
    """The cached, current sensitivity rows of the study's checkpoints (nothing is computed; empty if none)."""
    frames = []
    if runs_models(profile):
        for label in profile.ckpts:
            try:
                point = plan.resolve(profile, label)
            except ladder.LadderError:
                continue
            frame = _cached_sensitivity(profile, point)
            if frame is not None:
                frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["ckpt", "step", *probe.FRAME_COLUMNS])


# ---------------------------------------------------------------------------------------------------------------
# fine-tuning records: loss curves and forgetting (Springer et al. S3)

TRAINING_COLUMNS = ("ckpt", "step", "fine_tune", "method", "seed", "n_examples", "steps", "first_loss", "final_loss",
                    "train_loss", "base_loss", "loss", "delta_loss", "block_deltas")


def training_frame(profile: Profile) -> pd.DataFrame:
    """One row per fine-tuned model of the study whose fine-tuning record is current: its training-loss curve
    (`train_loss`, per optimizer step), and its held-out pre-training-text loss (`loss`) against its base's
    (`base_loss`), per block (`block_deltas`) — the forgetting frame of claim S3. Empty for released numbers."""
    rows = []
    if runs_models(profile):
        for job in plan.jobs(profile):
            if not job.fine_tunes:
                continue
            try:
                point = plan.resolve(profile, job.ckpt)
            except ladder.LadderError:
                continue
            for spec in job.fine_tunes:
                if not _training_record_current(profile, point, spec):
                    continue
                record = json.loads(_training_record(profile, point, spec).read_text())
                base, tuned = np.asarray(record["base_heldout"]), np.asarray(record["heldout"])
                rows.append({"ckpt": job.ckpt, "step": record["step"], "fine_tune": spec.name, "method": spec.method,
                             "seed": spec.seed, "n_examples": record["n_examples"], "steps": record["steps"],
                             "first_loss": record["loss"][0], "final_loss": record["loss"][-1],
                             "train_loss": record["loss"], "base_loss": float(base.mean()), "loss": float(tuned.mean()),
                             "delta_loss": float((tuned - base).mean()), "block_deltas": tuned - base})
    return pd.DataFrame(rows, columns=list(TRAINING_COLUMNS))


# ---------------------------------------------------------------------------------------------------------------
# what the notebooks draw


@dataclasses.dataclass
class Drawn:
    """What a notebook's figure step produced: the files written and the tables to show."""

    files: list[Path]
    tables: dict[str, pd.DataFrame]

    def _repr_markdown_(self) -> str:
        files = "\n".join(f"- `{p}`" for p in self.files) or "(nothing drawn: make_figures=False)"
        return f"Written:\n{files}"


def draw(profile: Profile, notebook: str, *, overlay_paper: bool = False, enabled: bool = True) -> Drawn:
    """Draw a notebook's figures (PDF + PNG) and tables (CSV + markdown) into figures/<profile>/ from its records,
    with the paper's released numbers overlaid if asked. A profile with several fine-tuning methods also gets each
    other method's figures (file suffix `_<method>`) with the leading method's curves drawn dotted beside them.
    Analysis notebooks stop with the commands to run when the records they need are missing. `enabled=False`
    (per-checkpoint cluster jobs) draws nothing."""
    from . import plots

    if not enabled:
        return Drawn([], {})
    df, overlay = figure_inputs(profile, overlay_paper, needs_sft=notebook in ("format", "transfer", "ood"))
    files, tables = [], {}
    variants = [(profile, overlay, "")]
    for other in profile.methods[1:]:
        leading = df.copy()
        leading.attrs.update(method=profile.method, label=f"{profile.method} fine-tuning")
        rest = tuple(m for m in profile.methods if m != other)
        variants.append((dataclasses.replace(profile, methods=(other, *rest)), leading, f"_{other}"))
    for shown, over, suffix in variants:
        study = stats.Study(df, shown, method=shown.method)  # figures and tables read one study per method
        for stem, make in plots.NOTEBOOK_FIGURES[notebook].items():
            files += plots.save(make(study, shown, overlay=over), profile, stem + suffix)  # open: shown inline
        for stem, make in plots.NOTEBOOK_TABLES.get(notebook, {}).items():
            tables[stem + suffix] = make(study)
            files += plots.write_table(tables[stem + suffix], profile, stem + suffix)
    if notebook == "pretrain_probe" and len(probed := sensitivity_rows(profile)):
        files += plots.save(plots.fig_sensitivity(probed, profile), profile, "figS_sensitivity")
    if notebook in ("sft", "instruction_tuning") and runs_models(profile):
        training = training_frame(profile)
        training = training[training["method"] == profile.method]
        names = [t.name for t in profile.tasks] if notebook == "sft" else [profile.instruction.name]
        stem = "figT_sft_training_loss" if notebook == "sft" else "figT_instruction_training_loss"
        files += plots.save(plots.fig_training_loss(training[training["fine_tune"].isin(names)], profile, names),
                            profile, stem)
        if notebook == "sft":
            files += plots.save(plots.fig_forgetting(training[training["fine_tune"].isin(names)], profile), profile,
                                "figS3_forgetting")
    return Drawn(files, tables)


# ---------------------------------------------------------------------------------------------------------------
# what each notebook's run shows: the claims of both papers, computed


def claim_inputs(profile: Profile) -> dict:
    """Everything the scorecard judges: the records (with per-item scores), the sensitivity rows and the fine-tuning
    records (forgetting), of this profile's run or of the authors' release."""
    return {"df": load_frame(profile, items=True), "sensitivity": sensitivity_rows(profile),
            "forgetting": training_frame(profile)}


def studies(profile: Profile, inputs: dict | None = None) -> dict[str, "stats.Study"]:
    """One stats.Study per fine-tuning method of the profile, from the scorecard's inputs (claim_inputs)."""
    inputs = inputs or claim_inputs(profile)
    return {method: stats.Study(inputs["df"], profile, sensitivity=inputs["sensitivity"],
                                forgetting=inputs["forgetting"], method=method) for method in profile.methods}


def verdicts(profile: Profile, notebook: str) -> str:
    """Markdown: the verdicts of the claims a notebook's figures bear on (claims.NOTEBOOK_CLAIMS), computed from this
    run, one table per fine-tuning method. The last notebook also writes the whole scorecard
    (figures/<profile>/claims.md and .csv)."""
    from . import claims

    inputs = claim_inputs(profile)
    by_method = studies(profile, inputs)
    parts = [claims.notebook_verdicts(notebook, inputs["df"], profile, method=method, study=study)
             for method, study in by_method.items()]
    if notebook == plan.RUN_ORDER[-1]:
        paths = scorecard(profile, inputs, by_method)
        parts.append(f"The whole scorecard: `{paths[-1]}`")
    return "\n\n".join(parts)


def scorecard(profile: Profile, inputs: dict | None = None, by_method: dict | None = None) -> list[Path]:
    """Judge every claim of both papers on this profile's results (each fine-tuning method) and write
    figures/<profile>/claims.md and claims.csv (other methods: claims_<method>.*)."""
    from . import claims

    inputs = inputs or claim_inputs(profile)
    by_method = by_method or studies(profile, inputs)
    written = []
    for method, study in by_method.items():
        table = claims.evaluate_all(inputs["df"], profile, method=method, study=study)
        stem = "claims" if method == profile.method else f"claims_{method}"
        written += claims.write_scorecard(table, profile, stem=stem)
    return written


# ---------------------------------------------------------------------------------------------------------------
# what the analysis notebooks read


def figure_inputs(profile: Profile, overlay_paper: bool = False, *,
                  needs_sft: bool = False) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(records a notebook draws, the paper's released rows to overlay or None). needs_sft: stop with the commands
    to run when base or fine-tuned records are missing."""
    df = load_frame(profile, items=True)  # per-item scores: the figures' intervals are the scorecard's
    if needs_sft:
        require(df, profile, ["base", *[t.name for t in profile.tasks]])
    return df, (load_frame(profile, "paper") if overlay_paper else None)


def require(df: pd.DataFrame, profile: Profile, fine_tunes: list[str]) -> None:
    """Stop with the exact notebook commands to run when records an analysis needs are missing."""
    have = set(df["fine_tune"]) if len(df) else set()
    lacking = [f for f in fine_tunes if f not in have]
    if lacking:
        producers = {t.name: "sft" for t in profile.tasks} | {profile.instruction.name: "instruction_tuning",
                                                               "base": "pretrain_probe"}
        cmds = sorted({f"papermill notebooks/{producers.get(f, 'sft')}.ipynb out.ipynb -p profile {profile.name}"
                       for f in lacking})
        raise RuntimeError(f"no records for fine_tune {lacking} in profile {profile.name!r}; run first:\n  "
                           + "\n  ".join(cmds))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Judge every claim of both papers on a profile's recorded results (or "
                                                 "the authors' release): figures/<profile>/claims.md and claims.csv.")
    parser.add_argument("--profile", default="paper-reference")
    chosen = setup(parser.parse_args().profile)
    print("\n".join(map(str, scorecard(chosen))))

