"""The steps the notebooks call: evaluate a checkpoint, fine-tune and evaluate, probe sensitivity, load results.

Every step is resumable: an evaluation already in the results store is never recomputed, and a fine-tuned model
is trained only while some record of its evaluation plan is missing.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import evaluate, ladder, results, tasks
from .paths import results_dir
from .profiles import Profile, TaskPlan, get_profile


# ---------------------------------------------------------------------------------------------------------------
# set-up and results


def setup(profile_name: str, *, force_cpu: bool | None = None) -> Profile:
    """Resolve a profile and check, before any download or hour is spent, that this machine can run it."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-file loading/saving bars would flood executed notebooks
    profile = get_profile(profile_name)
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


def store(profile: Profile) -> results.Store:
    """The results store of a profile: results/<profile>/records."""
    return results.Store(results_dir(profile.name) / "records")


def load_frame(profile: Profile, source: str | None = None) -> pd.DataFrame:
    """All records of a profile as one DataFrame: its own runs ('run') or the authors' released numbers ('paper')."""
    source = source or profile.results_source
    if source == "paper":
        return results.load_paper_results()
    if source == "run":
        return store(profile).frame()
    raise ValueError(f"unknown results source {source!r}; use 'run' or 'paper'")


def model_id(profile: Profile) -> str:
    """The model name recorded for this profile's ladder (e.g. allenai/OLMo-1B-hf)."""
    return ladder.get_ladder(profile.ladder).repo


def select_ckpts(profile: Profile, ckpt: str) -> list[str]:
    """'all' → the profile's whole ladder; otherwise the one checkpoint named ('step424000', '424000', 'main' or a
    hub branch), as its ladder label."""
    ckpt = str(ckpt)
    if ckpt == "all":
        return list(profile.ckpts)
    for label in (ckpt, f"step{ckpt}"):
        if label in profile.ckpts:
            return [label]
    branch = ladder.resolve(profile.ladder, ckpt, cache_dir=hub_cache(profile))
    for label in profile.ckpts:
        if ladder.resolve(profile.ladder, label, cache_dir=hub_cache(profile)) == branch:
            return [label]
    raise ValueError(f"checkpoint {ckpt!r} (branch {branch}) is not on the {profile.name!r} ladder "
                     f"{list(profile.ckpts)}; pass one of those or 'all'")


def select_tasks(profile: Profile, task: str) -> list[TaskPlan]:
    """'all' → every supervised task of the profile; otherwise the one named (error lists them)."""
    return list(profile.tasks) if task == "all" else [profile.task(task)]


def hub_cache(profile: Profile) -> Path | None:
    """HF cache folder of the profile's ladder: a local ladder's own cache, else None (the user's HF cache)."""
    return ladder.tiny_cache_dir(profile.name) if ladder.get_ladder(profile.ladder).local else None


def prepare_ladder(profile: Profile) -> dict | None:
    """Build the profile's self-pre-trained ladder if it has one (reused when its configuration is unchanged)."""
    if not ladder.get_ladder(profile.ladder).local:
        return None
    return ladder.build_tiny_ladder(profile)


def describe_ladder(summary: dict) -> str:
    """Markdown: what the tiny ladder is and whether it learned (held-out loss vs the corpus's unigram entropy)."""
    st = summary["settings"]
    heldout = dict(zip(summary["heldout"]["step"], summary["heldout"]["loss"]))
    rows = "\n".join(f"| step{k} | {v:.3f} |" for k, v in heldout.items() if k in st["save_steps"])
    verdict = "below" if summary["final_heldout_loss"] < summary["unigram_entropy"] else "NOT below"
    return (f"Tiny OLMo ({summary['params'] / 1e6:.2f}M parameters, hidden {st['hidden_size']}, {st['num_layers']} "
            f"layers) pre-trained for {st['total_steps']} steps of {st['batch_size']}×{st['seq_len']} tokens on "
            f"{summary['train_tokens']:,} tokens of {', '.join(st['corpus'])} passages "
            f"({'built now' if summary['built'] else 'reused'}; {summary['wall_s']} s to build).\n\n"
            f"Held-out loss **{summary['final_heldout_loss']:.3f}** nats/token, {verdict} the corpus's unigram entropy "
            f"**{summary['unigram_entropy']:.3f}**: the model learned more than word frequencies.\n\n"
            f"| checkpoint | held-out loss (nats/token) |\n|---|---|\n{rows}\n\nLoss curve: `{summary['figure'][0]}`")


# ---------------------------------------------------------------------------------------------------------------
# evaluation plans: which (eval_set, format) pairs each kind of model is scored on


def _formats(profile: Profile, eval_set: str) -> list[str]:
    available = tasks.get(eval_set, profile.paraphrase_splits).templates
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
    """An instruction-tuned model: the rank-classification benchmarks and LLMBar (Fig. 4)."""
    return [(b, "default") for b in (*profile.instruction.benchmarks, *profile.instruction.llmbar)]


def missing(profile: Profile, ckpt: str, fine_tune: str, plan: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (eval_set, format) pairs of a plan that have no record yet."""
    st, model = store(profile), model_id(profile)
    return [(s, f) for s, f in plan
            if not st.has(model=model, ckpt=ckpt, fine_tune=fine_tune, eval_set=s, format=f, shots=profile.shots)]


# ---------------------------------------------------------------------------------------------------------------
# running models


@dataclasses.dataclass
class Loaded:
    """A loaded checkpoint: model, tokenizer and provenance (repo, revision = hub branch, commit)."""

    model: object
    tokenizer: object
    provenance: dict


def load_base(profile: Profile, ckpt: str, dtype: str | None = None) -> Loaded:
    """Load one base checkpoint of the profile's ladder (safe loading: no missing or unexpected keys)."""
    model, tokenizer, provenance = ladder.load(profile.ladder, ckpt, device=profile.device,
                                               dtype=dtype or profile.eval_dtype, cache_dir=hub_cache(profile))
    return Loaded(model, tokenizer, provenance)


def _preflight(profile: Profile, notebook: str, ckpt: str, task: str) -> None:
    """Refuse a GPU job this machine cannot finish before anything is downloaded (see plan.preflight)."""
    if profile.requires_gpu:
        from . import plan

        job = next(j for j in plan.jobs(profile) if (j.notebook, j.ckpt, j.task) == (notebook, ckpt, task))
        plan.preflight(profile, job)


def _prune(profile: Profile, ckpt: str) -> None:
    """Delete a used hub revision from the HF cache (paper profile: one ~4.7 GB checkpoint on disk at a time)."""
    if profile.prune_revisions:
        from . import plan

        plan.prune_revision(model_id(profile), ladder.resolve(profile.ladder, ckpt, cache_dir=hub_cache(profile)),
                            hub_cache(profile))


def _examples(profile: Profile, eval_set: str) -> list[dict]:
    return tasks.load_examples(eval_set, source=profile.data_source, limit=profile.eval_limit,
                               paraphrase_splits=profile.paraphrase_splits)


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


def evaluate_plan(profile: Profile, model, tokenizer, *, ckpt: str, fine_tune: str, plan, provenance: dict,
                  progress: bool = True, generate_fn=None) -> int:
    """Score `model` on every missing (eval_set, format) of `plan` and record each result; returns how many ran."""
    from tqdm.auto import tqdm

    st, todo = store(profile), missing(profile, ckpt, fine_tune, plan)
    cache: dict[str, list[dict]] = {}
    for eval_set, fmt in tqdm(todo, desc=f"eval {ckpt}/{fine_tune}", disable=not progress or not todo,
                              mininterval=10):
        dataset = tasks.get(eval_set, profile.paraphrase_splits)
        if eval_set not in cache:
            cache[eval_set] = _examples(profile, eval_set)
        start = time.perf_counter()
        out = evaluate.evaluate_examples(model, tokenizer, dataset, cache[eval_set], fmt, profile.shots,
                                         batch_size=profile.eval_batch_size, max_length=profile.max_length,
                                         max_new_tokens=profile.max_new_tokens,
                                         gold_leak=profile.llmbar_gold_leak, generate_fn=generate_fn)
        summary = evaluate.bootstrap_ci(out.scores, seed=profile.bootstrap_seed)
        metrics = {"metric": dataset.metric, **summary, "n_truncated": int(out.n_truncated),
                   "seconds": round(time.perf_counter() - start, 3)}
        key = dict(model=model_id(profile), ckpt=ckpt, fine_tune=fine_tune, eval_set=eval_set, format=fmt,
                   shots=profile.shots)
        st.write(key, metrics, provenance, scores=np.asarray(out.scores).tolist(), predictions=list(out.predictions))
    return len(todo)


def _provenance(profile: Profile, loaded: Loaded, fine_tune: str, train_settings=None) -> dict:
    config = {"profile": dataclasses.asdict(profile), "fine_tune": fine_tune,
              "train": dataclasses.asdict(train_settings) if train_settings else None}
    return {"revision": loaded.provenance["revision"], "commit": loaded.provenance["commit"],
            "step": loaded.provenance["step"], "config_hash": results.config_hash(config),
            "seed": (train_settings.seed if train_settings else None), "versions": results.package_versions(),
            "profile": profile.name}


def run_base(profile: Profile, ckpts: list[str], *, progress: bool = True) -> int:
    """Evaluate every base checkpoint on the base plan; returns the number of new records."""
    done = 0
    for ckpt in ckpts:
        plan = base_plan(profile)
        if not missing(profile, ckpt, "base", plan):
            continue
        _preflight(profile, "pretrain_probe", ckpt, "base")
        loaded = load_base(profile, ckpt)
        done += evaluate_plan(profile, loaded.model, loaded.tokenizer, ckpt=ckpt, fine_tune="base", plan=plan,
                              provenance=_provenance(profile, loaded, "base"), progress=progress,
                              generate_fn=_generator(profile, loaded, None))
        _release(loaded)
        _prune(profile, ckpt)
    return done


def _release(loaded: Loaded) -> None:
    """Drop a model's weights now, so one checkpoint at a time is in memory."""
    loaded.model = None
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _weights_dir(profile: Profile, ckpt: str, fine_tune: str) -> Path:
    return results_dir(profile.name) / "models" / ckpt / fine_tune


def train_examples(profile: Profile, train_set: str, n: int | None, fraction: float | None = None) -> list[dict]:
    """Training examples as the paper made them: shuffle(seed=42), first n (or a fraction); supervised sets rendered
    in the default "###" template as prompt/completion pairs, chat sets as Tulu messages."""
    dataset = tasks.get(train_set)
    rows = tasks.sample_train(train_set, n=n if n is not None else 6000, fraction=fraction, seed=42,
                              source=profile.data_source)
    if dataset.kind == "chat":
        return [{"messages": row["messages"]} for row in rows]
    return [{"prompt": tasks.render(dataset, row, "default"), "completion": row["target"]} for row in rows]


def fine_tuned_model(profile: Profile, ckpt: str, fine_tune: str, train_set: str, settings, *, n: int | None,
                     fraction: float | None = None, kind: str, progress: bool = True):
    """The checkpoint fine-tuned on `train_set`: loaded from results/<profile>/models if a finished copy is there
    (so an interrupted evaluation resumes without retraining), else trained now and saved there."""
    from . import train

    out = _weights_dir(profile, ckpt, fine_tune)
    dtype = ladder.torch_dtype(profile.eval_dtype, profile.device)
    if (out / "DONE").exists():  # the folder holds weights and tokenizer; DONE the base checkpoint's provenance
        from transformers import AutoModelForCausalLM, AutoTokenizer

        done = json.loads((out / "DONE").read_text())
        model = AutoModelForCausalLM.from_pretrained(out, dtype=dtype).to(profile.device).eval()
        return Loaded(model, AutoTokenizer.from_pretrained(out), done["provenance"]), done["summary"]
    loaded = load_base(profile, ckpt, dtype="float32")  # fp32 master weights; bf16 autocast on GPU
    examples = train_examples(profile, train_set, n, fraction)
    # the per-step bar only where someone watches a terminal; the notebooks show the returned summary
    train_log = train.fine_tune(loaded.model, loaded.tokenizer, examples, settings, kind=kind,
                                progress=progress and sys.stderr.isatty(), device=profile.device)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    train.save_fine_tuned(loaded.model, loaded.tokenizer, tmp, dtype=profile.eval_dtype)
    summary = {"n_train": len(examples), "steps": len(train_log["loss"]), "final_loss": train_log["loss"][-1],
               "first_loss": train_log["loss"][0], "seconds": train_log.get("seconds")}
    (tmp / "train_log.json").write_text(json.dumps(train_log))
    (tmp / "DONE").write_text(json.dumps({"summary": summary, "provenance": loaded.provenance}))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    loaded.model.to(dtype).eval()
    return loaded, summary


def _fine_tune_and_evaluate(profile: Profile, ckpt: str, *, notebook: str, name: str, train_set: str, settings,
                            n: int | None, fraction: float | None, kind: str, plan, progress: bool) -> dict:
    """Fine-tune one checkpoint (if any record of `plan` is missing), run `plan`, then drop what is not kept."""
    if not missing(profile, ckpt, name, plan):
        return {"ckpt": ckpt, "task": name, "status": "recorded"}
    _preflight(profile, notebook, ckpt, name)
    loaded, summary = fine_tuned_model(profile, ckpt, name, train_set, settings, n=n, fraction=fraction, kind=kind,
                                       progress=progress)
    weights = _weights_dir(profile, ckpt, name)
    records = evaluate_plan(profile, loaded.model, loaded.tokenizer, ckpt=ckpt, fine_tune=name, plan=plan,
                            provenance=_provenance(profile, loaded, name, settings), progress=progress,
                            generate_fn=_generator(profile, loaded, weights))
    _release(loaded)
    _prune(profile, ckpt)
    if not profile.keep_weights:
        shutil.rmtree(weights, ignore_errors=True)
    return {"ckpt": ckpt, "task": name, "status": "ran", "records": records, **summary}


def run_sft(profile: Profile, ckpt: str, task: TaskPlan, *, progress: bool = True) -> dict:
    """Fine-tune one checkpoint on one task (if any of its records is missing) and run its whole evaluation plan."""
    return _fine_tune_and_evaluate(profile, ckpt, notebook="sft", name=task.name, train_set=task.train_set,
                                   settings=task.train, n=task.n_train, fraction=None, kind="prompt_completion",
                                   plan=sft_plan(profile, task), progress=progress)


def run_instruction_tuning(profile: Profile, ckpt: str, *, progress: bool = True) -> dict:
    """Instruction-tune one checkpoint (TULU v2 5 % in the paper) and score it on the benchmarks and LLMBar."""
    it = profile.instruction
    return _fine_tune_and_evaluate(profile, ckpt, notebook="instruction_tuning", name=it.name,
                                   train_set=it.train_set, settings=it.train, n=it.n_train, fraction=it.fraction,
                                   kind="chat", plan=instruction_plan(profile), progress=progress)


# ---------------------------------------------------------------------------------------------------------------
# Springer et al. 2025: progressive sensitivity


def sensitivity(profile: Profile, ckpts: list[str], *, progress: bool = True) -> pd.DataFrame:
    """Springer et al. progressive sensitivity (amuro_utils.sensitivity.probe) of each checkpoint: one row per
    (ckpt, scaling, magnitude, seed) with columns ckpt, step, scaling, magnitude, seed, base_loss, loss, delta_loss,
    block_deltas, n_tokens. Cached per checkpoint in results/<profile>/sensitivity/<ckpt>.json; recomputed only when
    the profile's `sensitivity` settings change."""
    from . import sensitivity as springer

    settings, folder = profile.sensitivity, results_dir(profile.name) / "sensitivity"
    frames, blocks = [], None
    for ckpt in ckpts:
        frame = springer.load_frame(folder / f"{ckpt}.json", settings)
        if frame is None:
            loaded = load_base(profile, ckpt, dtype=settings.dtype)
            if blocks is None:  # one ladder, one tokenizer: the held-out text is tokenized once
                blocks = springer.heldout_token_blocks(loaded.tokenizer, settings.block, settings.tokens)
            frame = springer.probe(loaded.model, blocks, settings, progress=progress)
            frame.insert(0, "step", loaded.provenance["step"])
            frame.insert(0, "ckpt", ckpt)
            springer.save_frame(folder / f"{ckpt}.json", frame, settings, _provenance(profile, loaded, "base"))
            _release(loaded)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["ckpt", "step", *springer.FRAME_COLUMNS])


def figure_inputs(profile: Profile, results_source: str = "", overlay_paper: bool = False, *,
                  needs_sft: bool = False) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(records a notebook draws, the paper's released rows to overlay or None). results_source '' = the
    profile's own; needs_sft: stop with the commands to run when base or fine-tuned records are missing."""
    df = load_frame(profile, results_source or profile.results_source)
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
