"""lm-evaluation-harness output as a results source: published or your own checkpoint sweeps, judged by the claims.

`./run_all.sh --profile P --set results_source=lm-eval:<dir>` reads every lm-eval results file under <dir> instead
of running models, as `paper-reference` reads the authors' release; `results_source=pythia-evals` reads the shipped
extract of Pythia's published evaluations (data/pythia_evals/, built by scripts/build_pythia_extract.py). Both give
the records schema of amuro_utils.store.results: one base-model row per (checkpoint, evaluation set), its accuracy as
`performance`, lm-eval's standard error as `std` (so stats.Cells resamples N(performance, std²)), `n` where known,
and per-item scores (`scores`, the paired bootstrap's input) where the files carry them.

Two formats are read:
- 0.3 (Pythia's files): {"results": {task: {"acc": …, "acc_stderr": …}}, "versions": …, "config": {"model_args":
  "pretrained=…,revision=stepN", "num_fewshot": k, …}};
- 0.4: {"results": {task: {"acc,none": …, "acc_stderr,none": …}}, "n-shot": {task: k}, "n-samples": {task:
  {"effective": n}}, "config": {"model_args": …}}, with `samples_<task>_<date>.jsonl` beside `results_<date>.json`
  holding one line per item (its `acc`).

The training step comes from `revision=stepN` in the model arguments, else from `stepN` in the file's path; a file
with neither is refused. lm-eval task names map to the registry's evaluation sets (TASKS); a task the registry has
no set for is listed (`frame.attrs["unknown_tasks"]`) and kept out, never guessed. The sets keep their registry
names, but their items, split and prompt are lm-eval's: the `metric` column (`acc`, lm-eval's unnormalised
multiple-choice accuracy) says so, and `origin` names the file.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..config.paths import DATA_DIR
from ..config.profiles import Profile, ckpt_step, results_source_dir, results_source_kind, span_from_first_rung
from ..store import results
from . import ladder

log = logging.getLogger(__name__)

# lm-eval task name -> the registry's evaluation set (amuro_utils.data.tasks.REGISTRY); nothing else is imported.
TASKS = {"arc_easy": "arc_easy", "arc_challenge": "arc_challenge", "sciq": "sciq_mc", "piqa": "piqa",
         "hellaswag": "hellaswag", "openbookqa": "openbookqa", "boolq": "boolq"}
METRIC = "acc"  # lm-eval's accuracy: the choice with the highest summed log-likelihood (acc_norm divides by length)
FILTER = "none"  # lm-eval 0.4's filter of multiple-choice metrics ("acc,none")
SOURCES = {"lm-eval": "lm-eval", "pythia-evals": "pythia-evals"}  # the `source` column of each kind's rows
EXTRACT = DATA_DIR / "pythia_evals" / "zero_shot.csv"
EXTRACT_COLUMNS = ("ladder", "step", "task", "acc", "acc_stderr", "n")
MAX_LISTED = 12  # unknown tasks named in a warning before "… and N more"
_STEP = re.compile(r"step(\d+)")
_RESULTS_NAME = re.compile(r"results_(?P<date>.+)\.json")


class LmEvalError(ValueError):
    """An lm-eval results file or folder that cannot be read as records (the message names the file)."""


# ---------------------------------------------------------------------------------------------------------------
# one results file


def model_args(config: dict, path: Path) -> dict:
    """The model arguments of a results file's config as a dict ('pretrained=x,revision=step1' or a mapping)."""
    args = config.get("model_args", "")
    if isinstance(args, dict):
        return {str(k): str(v) for k, v in args.items()}
    if not isinstance(args, str):
        raise LmEvalError(f"{path}: config.model_args is {type(args).__name__}, expected 'key=value,…' text or a "
                          "mapping")
    pairs = [part.split("=", 1) for part in args.split(",") if part.strip()]
    return {k.strip(): v.strip() for k, v in (p for p in pairs if len(p) == 2)}


def step_of(path: Path, args: dict, root: Path | None = None) -> int:
    """The training step a results file evaluates: `revision=stepN` in its model arguments, else `stepN` in its path
    (below `root`); both present and different, or neither, is refused naming the file."""
    from_revision = ckpt_step(args.get("revision", ""))
    where = path.relative_to(root) if root is not None and path.is_relative_to(root) else Path(path.name)
    named = [int(m.group(1)) for part in reversed(where.parts) for m in [_STEP.search(part)] if m]
    from_path = named[0] if named else None
    if from_revision is not None and from_path is not None and from_revision != from_path:
        raise LmEvalError(f"{path}: its model arguments say revision=step{from_revision} but its path says "
                          f"step{from_path}; rename the file or fix the revision")
    step = from_revision if from_revision is not None else from_path
    if step is None:
        raise LmEvalError(f"{path}: no training step — neither revision=stepN in config.model_args "
                          f"({args.get('revision', 'no revision')!r}) nor stepN in the file's path; rerun lm-eval with "
                          "--model_args revision=step1000 or name the file …_step1000.json")
    return step


def _number(value, path: Path, what: str) -> float:
    """A metric value as a float (lm-eval 0.4 writes 'N/A' for a stderr it did not compute: NaN)."""
    if value == "N/A" or value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LmEvalError(f"{path}: {what} is {value!r}, expected a number")
    return float(value)


def metric(metrics: dict, name: str, path: Path, task: str) -> tuple[float, float] | None:
    """(value, stderr) of metric `name` in one task's results (0.3 'acc' / 'acc_stderr', 0.4 'acc,none' /
    'acc_stderr,none'); None when the task has no such metric."""
    if not isinstance(metrics, dict):
        raise LmEvalError(f"{path}: results[{task!r}] is {type(metrics).__name__}, expected a mapping of metrics")
    if name in metrics:
        return (_number(metrics[name], path, f"{task} {name}"),
                _number(metrics.get(f"{name}_stderr"), path, f"{task} {name}_stderr"))
    key = f"{name},{FILTER}"
    if key in metrics:
        return (_number(metrics[key], path, f"{task} {key}"),
                _number(metrics.get(f"{name}_stderr,{FILTER}"), path, f"{task} {name}_stderr,{FILTER}"))
    filters = sorted(k.split(",", 1)[1] for k in metrics if k.startswith(f"{name},"))
    if filters:
        raise LmEvalError(f"{path}: {task} reports {name} under filters {filters}, not {FILTER!r}; this importer reads "
                          f"multiple-choice accuracy ({name},{FILTER})")
    return None


def derived_n(p: float, stderr: float) -> float:
    """The item count lm-eval's standard error implies, sqrt(p(1 − p) / (n − 1)), where that count is a whole number
    that makes p a whole share of it; NaN otherwise (p of 0 or 1, no stderr, or an inexact fit)."""
    if not (np.isfinite(p) and np.isfinite(stderr)) or stderr <= 0 or not 0 < p < 1:
        return math.nan
    n = p * (1 - p) / stderr**2 + 1
    whole = round(n)
    exact = abs(n - whole) < 1e-3 * whole and abs(p * whole - round(p * whole)) < 1e-6 * whole
    return float(whole) if exact else math.nan


def _shots(data: dict, task: str, path: Path) -> int:
    """num_fewshot of one task: 0.4's n-shot / configs, else 0.3's config.num_fewshot."""
    configs = (data.get("configs") or {}).get(task) or {}
    candidates = ((data.get("n-shot") or {}).get(task), configs.get("num_fewshot"),
                  (data.get("config") or {}).get("num_fewshot"))
    for value in candidates:
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise LmEvalError(f"{path}: num_fewshot of {task} is {value!r}, expected a non-negative integer")
            return value
    raise LmEvalError(f"{path}: no num_fewshot for {task} (0.3: config.num_fewshot; 0.4: n-shot)")


def _samples_file(path: Path, task: str) -> Path | None:
    """The per-item file lm-eval 0.4 writes beside `results_<date>.json`: samples_<task>_<date>.jsonl (or, for a
    results file named otherwise, the one samples_<task>_*.jsonl there is)."""
    match = _RESULTS_NAME.fullmatch(path.name)
    if match:
        candidate = path.with_name(f"samples_{task}_{match['date']}.jsonl")
        return candidate if candidate.is_file() else None
    found = sorted(path.parent.glob(f"samples_{task}_*.jsonl"))
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise LmEvalError(f"{path}: {len(found)} sample files for {task} beside it ({names}); name the results file "
                          "results_<date>.json as lm-eval does, so its samples are known")
    return found[0] if found else None


def item_scores(samples: Path, metric: str = METRIC, filter_name: str = FILTER) -> np.ndarray:
    """Per-item `metric` of an lm-eval 0.4 samples file, in doc_id order (lines of one filter)."""
    by_doc: dict[int, float] = {}
    for number, line in enumerate(samples.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise LmEvalError(f"{samples}: line {number} is not JSON ({err})") from None
        if not isinstance(item, dict) or "doc_id" not in item or metric not in item:
            raise LmEvalError(f"{samples}: line {number} lacks doc_id or {metric!r}")
        if item.get("filter", filter_name) != filter_name:
            continue
        if item["doc_id"] in by_doc:
            raise LmEvalError(f"{samples}: doc_id {item['doc_id']} appears twice")
        by_doc[item["doc_id"]] = _number(item[metric], samples, f"line {number} {metric}")
    if not by_doc:
        raise LmEvalError(f"{samples}: no items of filter {filter_name!r}")
    return np.array([by_doc[k] for k in sorted(by_doc)], dtype=float)


def read_file(path, root=None) -> tuple[list[dict], dict[str, str]]:
    """(rows in the records schema, {unknown task: why kept out}) of one lm-eval results file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LmEvalError(f"{path}: not a readable JSON file ({err}); is it lm-evaluation-harness output?") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise LmEvalError(f"{path}: no 'results' mapping of tasks; is it an lm-evaluation-harness results file?")
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    args = model_args(config, path)
    model = args.get("pretrained") or data.get("model_name")
    if not model:
        raise LmEvalError(f"{path}: names no model (config.model_args pretrained=…, or model_name)")
    step = step_of(path, args, root)
    rows, unknown = [], {}
    for task, metrics in data["results"].items():
        eval_set = TASKS.get(task)
        if eval_set is None:
            unknown[task] = "no registry set"
            continue
        found = metric(metrics, METRIC, path, task)
        if found is None:
            unknown[task] = f"no {METRIC}"
            continue
        acc, stderr = found
        scores, n = None, _number(((data.get("n-samples") or {}).get(task) or {}).get("effective"), path,
                                  f"n-samples of {task}")
        samples = _samples_file(path, task)
        if samples is not None:
            scores = item_scores(samples)
            if not math.isclose(scores.mean(), acc, abs_tol=1e-9):
                raise LmEvalError(f"{samples}: the items' mean {METRIC} is {scores.mean():.6f}, the results file says "
                                  f"{acc:.6f}; are they from the same run?")
            if np.isfinite(n) and n != len(scores):
                raise LmEvalError(f"{samples}: {len(scores)} items, the results file's n-samples says {n:.0f}")
            n = float(len(scores))
        if not np.isfinite(n):
            n = derived_n(acc, stderr)
        rows.append({"model": model, "ckpt": f"step{step}", "step": float(step), "fine_tune": results.BASE,
                     "method": results.BASE_METHOD, "seed": math.nan, "eval_set": eval_set, "format": "default",
                     "shots": _shots(data, task, path), "metric": METRIC, "performance": acc, "mean": acc,
                     "std": stderr, "n": n, "source": SOURCES["lm-eval"], "revision": args.get("revision"),
                     "variant": results.STANDARD, "origin": f"{path.name}:{task}", "scores": scores})
    return rows, unknown


# ---------------------------------------------------------------------------------------------------------------
# a folder of them, and the shipped Pythia extract


def _frame(rows: list[dict], unknown: dict[str, list[str]], where: str, level: int = logging.WARNING) -> pd.DataFrame:
    """Rows as the records frame (with per-item scores), refusing two rows for one cell; unknown tasks listed."""
    frame = results._as_frame(rows, items=True)
    dup = frame[frame.duplicated(["model", "step", "eval_set", "shots"], keep=False)]
    if len(dup):
        first = dup.iloc[0]
        cell = dup[(dup["step"] == first["step"]) & (dup["eval_set"] == first["eval_set"])]
        raise LmEvalError(f"{where}: {first['eval_set']} at step{first['step']:.0f} ({first['shots']}-shot) twice: "
                          f"{', '.join(cell['origin'])}; keep one evaluation per checkpoint")
    if unknown:
        names = sorted(unknown)
        head = ", ".join(f"{t} ({', '.join(sorted(set(unknown[t])))})" for t in names[:MAX_LISTED])
        log.log(level, "%s: %d lm-eval tasks kept out (no registry set or no %s): %s%s", where, len(names), METRIC,
                    head, f" … and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")
    frame.attrs["unknown_tasks"] = {t: sorted(set(why)) for t, why in sorted(unknown.items())}
    return frame


def import_dir(path) -> pd.DataFrame:
    """Every lm-eval results file (*.json) under `path` (or the one file `path` is) as one model's records frame."""
    given = root = Path(path)
    if root.is_file():
        files, root = [root], root.parent.parent  # a step in the file's own folder name counts
    elif root.is_dir():
        files = sorted(root.rglob("*.json"))
    else:
        raise LmEvalError(f"{root}: no such folder of lm-eval results")
    if not files:
        raise LmEvalError(f"{root}: no lm-eval results files (*.json) in it or below it")
    rows, unknown = [], {}
    for file in files:
        file_rows, file_unknown = read_file(file, root)
        rows += file_rows
        for task, why in file_unknown.items():
            unknown.setdefault(task, []).append(why)
    models = pd.Series([r["model"] for r in rows], dtype=object).value_counts()
    if len(models) > 1:
        counts = ", ".join(f"{m}: {n} rows" for m, n in models.items())
        raise LmEvalError(f"{given}: results of several models ({counts}); point results_source at one model's folder")
    if not rows:
        raise LmEvalError(f"{given}: none of its tasks has a registry set ({', '.join(sorted(unknown))}); known "
                          f"lm-eval tasks: {', '.join(sorted(TASKS))}")
    return _frame(rows, unknown, str(given))


def load_extract(ladders=None, path=EXTRACT) -> pd.DataFrame:
    """The shipped extract of Pythia's published zero-shot evaluations as records (its tasks mapped as an lm-eval
    folder's are), for the given ladders (default: all of them)."""
    path = Path(path)
    if not path.is_file():
        raise LmEvalError(f"{path}: the Pythia extract is missing; rebuild it with scripts/build_pythia_extract.py "
                          "from a copy of github.com/EleutherAI/pythia")
    raw = pd.read_csv(path)
    lacking = [c for c in EXTRACT_COLUMNS if c not in raw.columns]
    if lacking:
        raise LmEvalError(f"{path}: lacks columns {lacking}; rebuild it with scripts/build_pythia_extract.py")
    if ladders is not None:
        absent = sorted(set(ladders) - set(raw["ladder"]))
        if absent:
            raise LmEvalError(f"{path}: no published evaluations of {absent}; ladders there: "
                              f"{sorted(set(raw['ladder']))}")
        raw = raw[raw["ladder"].isin(list(ladders))]
    rows, unknown = [], {}
    for r in raw.itertuples(index=False):
        eval_set = TASKS.get(r.task)
        if eval_set is None:
            unknown.setdefault(r.task, []).append("no registry set")
            continue
        step = int(r.step)
        rows.append({"model": ladder.get_ladder(r.ladder).repo, "ckpt": f"step{step}", "step": float(step),
                     "fine_tune": results.BASE, "method": results.BASE_METHOD, "seed": math.nan,
                     "eval_set": eval_set, "format": "default", "shots": 0, "metric": METRIC,
                     "performance": float(r.acc), "mean": float(r.acc), "std": float(r.acc_stderr), "n": float(r.n),
                     "source": SOURCES["pythia-evals"], "revision": f"step{step}", "variant": results.STANDARD,
                     "origin": f"{path.name}:{r.ladder}/step{step}/{r.task}", "scores": None})
    # the extract ships MMLU-free benchmarks the registry lacks (WinoGrande, LAMBADA, LogiQA, WSC) on purpose
    return _frame(rows, unknown, str(path), logging.INFO)


def load(profile: Profile) -> pd.DataFrame:
    """The records of a profile whose results source is 'pythia-evals' (its ladder's rows of the extract) or
    'lm-eval:<dir>' (every results file under <dir>)."""
    kind = results_source_kind(profile.results_source)
    if kind == "pythia-evals":
        return load_extract([profile.ladder])
    if kind == "lm-eval":
        return import_dir(results_source_dir(profile.results_source))
    raise ValueError(f"profile {profile.name!r} reads results source {profile.results_source!r}, not lm-eval output")


def bind(profile: Profile) -> Profile:
    """The profile on what its lm-eval source holds: its shots (the profile's own if the source has them, else the
    one value the source has) and its checkpoints (the profile's own if the source has every one, else the source's
    steps from the one nearest the paper's first rung, 0.14 % of pre-training, on: the stretch the paper's ladder
    spans). Other sources: the profile unchanged."""
    if results_source_kind(profile.results_source) not in SOURCES:
        return profile
    frame = load(profile)
    shots = sorted(int(s) for s in set(frame["shots"]))
    if profile.shots not in shots:
        if len(shots) > 1:
            raise LmEvalError(f"results source {profile.results_source!r} holds {shots}-shot evaluations, not the "
                              f"profile's {profile.shots}-shot; choose with --set shots=N")
        profile = replace(profile, shots=shots[0])
    steps = sorted(int(s) for s in set(frame.loc[frame["shots"] == profile.shots, "step"]))
    if all(ckpt_step(c) in steps for c in profile.ckpts):
        return profile
    positive = [s for s in steps if s > 0]
    if len(positive) < 2:
        raise LmEvalError(f"results source {profile.results_source!r} holds {len(positive)} trained checkpoint(s) "
                          f"({steps}); a ladder needs at least 2")
    ckpts = tuple(f"step{s}" for s in span_from_first_rung(positive, max(positive)))
    return replace(profile, ckpts=ckpts, rungs=None)
