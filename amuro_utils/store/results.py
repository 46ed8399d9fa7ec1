"""The results store (one JSON record per evaluation) and the paper's released CSVs in the same tidy schema.

A record lives at <root>/<model-slug>/<ckpt>/<run>/<eval_set>__<format>__<shots>shot.json, where <run> is `base` or
`<fine_tune>.<method>.seed<seed>`, and holds the key, the settings identity it was made under (amuro_utils.store.identity)
and its hash, the metrics (performance = bootstrap CI midpoint, the paper's number), the provenance and the per-item
scores, predictions and gold references. A record is an artifact of the one store (amuro_utils.store.artifacts): written
atomically, so a killed job leaves either the old record, the new one or a stray temp file that is never read back.

A stored record answers a request only when its identity equals the requested one. Policy on a mismatch (the one
set-aside policy): recompute, and keep the old record aside under <root>/.stale/ (a corrupt file under
<root>/.corrupt/), so no recorded result is ever lost; `status()` names the changed fields. Records of schema 1 (before identities) are migrated in place by
`Store.migrate()`: they keep loading, and count as stale (their settings are unknown) until recomputed.
"""

from __future__ import annotations

import json
import logging
import math
import re
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from ..config.paths import DATA_DIR
from ..config.profiles import PAPER, PAPER_FINAL_STEP, ckpt_step
from . import artifacts
from .artifacts import (  # noqa: F401  (the store's folders, re-exported)
    CORRUPT_DIR,
    STALE_DIR,
    Status as RecordStatus,  # noqa: F401  (a record's status is an artifact's)
    atomic_write,
)

log = logging.getLogger(__name__)

KEY_FIELDS = ("model", "ckpt", "fine_tune", "method", "seed", "eval_set", "format", "shots")
BASE, BASE_METHOD = "base", "none"  # a base model's fine_tune and method; its seed is None
METRIC_FIELDS = ("metric", "performance", "mean", "std", "ci_low", "ci_high", "n", "n_truncated")
PROVENANCE_FIELDS = ("revision", "commit", "config_hash", "versions", "created")
# One schema for run records and the paper's rows; `variant` is "standard" for every row the paper's figures use
# (and for every run record), otherwise why the row is set aside ("shots0", "lr2e-05", "pre_hf_fix", ...).
COLUMNS = ("model", "ckpt", "step", "fine_tune", "method", "seed", "eval_set", "format", "shots", "metric",
           "performance", "mean", "std", "ci_low", "ci_high", "n", "n_truncated", "source", "profile",
           *PROVENANCE_FIELDS, "identity_hash", "variant", "lr", "epochs", "model_id", "origin", "constant")
# The continuous readings a record may carry per item beside its scores (evaluate.CONTINUOUS names which, per kind
# of scoring; amuro_utils.stats.signal says what each measures).
CONTINUOUS_COLUMNS = ("gold_logprob", "gold_share", "gold_margin", "gold_bpb")
# Store.frame(items=True) adds these object columns: per-item scores (np.ndarray), predictions and gold references
# (lists; references None for records written before they were stored), the settings identity (dict), and each
# continuous reading (np.ndarray; None where the record has none).
ITEM_COLUMNS = ("scores", "predictions", "references", "identity", *CONTINUOUS_COLUMNS)
SCHEMA_VERSION = 2
STANDARD = "standard"
_PACKAGES = ("amuro_utils", "torch", "transformers", "tokenizers", "datasets", "accelerate", "numpy", "pandas",
             "scipy", "rouge-score", "peft")
_SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


# ---------------------------------------------------------------------------------------------------------------
# helpers


def package_versions(packages=_PACKAGES) -> dict[str, str | None]:
    """Installed versions of the packages that decide a number (None where a package is not installed)."""
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def model_slug(model: str) -> str:
    """Folder name of a model id: 'allenai/OLMo-1B-hf' -> 'allenai--OLMo-1B-hf'."""
    return model.replace("/", "--")


def run_name(fine_tune: str, method: str, seed: int | None) -> str:
    """Folder of one model's records: 'base', or '<fine_tune>.<method>.seed<seed>' for a fine-tuned model."""
    return BASE if fine_tune == BASE else f"{fine_tune}.{method}.seed{seed}"


# ---------------------------------------------------------------------------------------------------------------
# the store


class Store:
    """One folder of JSON records, one per (model, ckpt, fine_tune, method, seed, eval_set, format, shots)."""

    def __init__(self, root):
        self.root = Path(root)

    def path(self, **key) -> Path:
        """Where the record of `key` lives (the key is validated first)."""
        key = _check_key(key)
        name = f"{key['eval_set']}__{key['format']}__{key['shots']}shot.json"
        run = run_name(key["fine_tune"], key["method"], key["seed"])
        return self.root / model_slug(key["model"]) / key["ckpt"] / run / name

    def has(self, **key) -> bool:
        """True if a complete, valid record of `key` is stored (whatever settings it was made under)."""
        return self._read(self.path(**key), quiet=True) is not None

    def status(self, key: dict, identity: dict) -> RecordStatus:
        """done: a valid record made under `identity`; stale: made under other settings (the changed fields);
        corrupt: a file that is not a valid record (why); missing: nothing stored."""
        path = self.path(**key)
        return artifacts.status(path, identity, self._check(path))

    def read(self, **key) -> dict:
        """The full record of `key` (with per-item scores/predictions if stored); KeyError if there is none."""
        path = self.path(**key)
        record = self._read(path, quiet=False)
        if record is None:
            raise KeyError(f"no valid record for {_check_key(key)} at {path}")
        return record

    def write(self, key: dict, metrics: dict, provenance: dict, scores=None, predictions=None, references=None, *,
              identity: dict | None = None, continuous: dict | None = None) -> Path:
        """Write one record atomically (temp file in the same folder, fsync, os.replace) and return its path.

        `references` are the gold labels/texts per item, aligned with `scores` and `predictions`; `continuous` maps
        a reading of CONTINUOUS_COLUMNS to its per-item values, aligned likewise. A record already
        there that was made under another identity, or a corrupt file, is first moved aside (`.stale/`,
        `.corrupt/`), so a recompute never destroys a recorded result.
        """
        key = _check_key(key)
        missing = [f for f in ("metric", "performance") if f not in metrics]
        if missing:
            raise ValueError(f"metrics lack {missing}; pass stats.bootstrap_ci(...) plus 'metric' and 'n_truncated'")
        provenance = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **provenance}
        record = {"schema": SCHEMA_VERSION, "key": key, "metrics": metrics, "provenance": provenance}
        for name, values in (("scores", scores), ("predictions", predictions), ("references", references)):
            if values is not None:
                record[name] = values
        if continuous:
            unknown = sorted(set(continuous) - set(CONTINUOUS_COLUMNS))
            if unknown:
                raise ValueError(f"unknown continuous readings {unknown}; a record carries {CONTINUOUS_COLUMNS}")
            record["continuous"] = {name: [float(v) for v in values] for name, values in continuous.items()}
        path = self.path(**key)
        return artifacts.write(self.root, path, identity, record, self._check(path))

    def set_aside(self, path: Path, folder: str = STALE_DIR) -> Path:
        """Move a record file out of the store's reach into <root>/<folder>/ (same relative path, timestamped)."""
        return artifacts.set_aside(self.root, path, folder)

    def files(self) -> list[Path]:
        """Every record file of the store (records set aside are not included)."""
        return sorted(p for p in self.root.glob("*/*/*/*.json"))

    def frame(self, items: bool = False) -> pd.DataFrame:
        """Every valid record as one tidy DataFrame (columns COLUMNS; with `items`, also ITEM_COLUMNS: per-item
        scores, predictions, references and the identity dict); corrupt files are reported with their path."""
        rows = []
        for path in self.files():
            record = self._read(path, quiet=False)
            if record is not None:
                rows.append(_record_row(record, path.relative_to(self.root).as_posix(), items))
        return _as_frame(rows, items)

    def migrate(self) -> int:
        """Move schema-1 records (6-field keys, no identity) to this schema's layout; returns how many moved.

        Their settings are unknown, so they stay loadable but count as stale until recomputed.
        """
        moved = 0
        for path in sorted(self.root.glob("*/*/*/*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError, UnicodeDecodeError):
                continue
            if not isinstance(record, dict) or record.get("schema", 1) != 1 or "key" not in record:
                continue
            key = dict(record["key"])
            base = key.get("fine_tune") == BASE
            seed = record.get("provenance", {}).get("seed")
            key.update(method=BASE_METHOD if base else "full", seed=None if base else seed)
            record.update(schema=SCHEMA_VERSION, key=key, identity=None, identity_hash=None, migrated_from=1)
            target = self.path(**key)
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, json.dumps(record, allow_nan=True))
            if target != path:
                path.unlink()
            moved += 1
        if moved:
            log.warning("migrated %d records of schema 1 in %s to schema %d: their settings are unknown, so they count "
                        "as stale; a rerun recomputes them and keeps the old ones in %s/", moved, self.root,
                        SCHEMA_VERSION, STALE_DIR)
        return moved

    def _check(self, path: Path):
        """Why a stored artifact at `path` is not a valid record of this store (None if it is)."""
        return lambda record: _record_problem(record, path, self)

    def _load(self, path: Path) -> tuple[dict | None, str | None]:
        """(record, None) if the file at `path` is a complete record that belongs there, else (None, why not)."""
        return artifacts.read(path, self._check(path))

    def _read(self, path: Path, quiet: bool) -> dict | None:
        """The record at `path` if it is complete and belongs there; None (with a warning unless quiet) otherwise."""
        if not path.is_file():
            return None
        record, problem = self._load(path)
        if problem:
            if not quiet:
                log.warning("skipping record %s: %s; the step that writes it recomputes it (the file is set aside)",
                            path, problem)
            return None
        return record


def _check_key(key: dict) -> dict:
    """The key with exactly KEY_FIELDS, shots an int, every part safe as a file-name component."""
    unknown, absent = set(key) - set(KEY_FIELDS), [f for f in KEY_FIELDS if f not in key]
    if unknown or absent:
        raise ValueError(f"a record key needs exactly {KEY_FIELDS}; missing {absent}, unexpected {sorted(unknown)}")
    shots = key["shots"]
    if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots < 0:
        raise ValueError(f"shots must be a non-negative int, got {shots!r}")
    out = {f: str(key[f]) for f in KEY_FIELDS if f not in ("shots", "seed")} | {"shots": int(shots)}
    base = out["fine_tune"] == BASE
    seed = key["seed"]
    if base != (out["method"] == BASE_METHOD) or base != (seed is None):
        raise ValueError(f"a base model's key has method={BASE_METHOD!r} and seed=None, a fine-tuned one a method and "
                         f"an int seed; got fine_tune={out['fine_tune']!r}, method={out['method']!r}, seed={seed!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ValueError(f"seed must be an int (or None for a base model), got {seed!r}")
    out["seed"] = None if seed is None else int(seed)
    for field in ("ckpt", "fine_tune", "method", "eval_set", "format"):
        if not _SAFE_PART.match(out[field]) or "__" in out[field]:
            raise ValueError(f"{field}={out[field]!r} is not usable in a record file name "
                             "(letters, digits, '.', '_', '+', '-', no '__', no leading symbol)")
    if not all(_SAFE_PART.match(part) for part in out["model"].split("/")):
        raise ValueError(f"model={out['model']!r} must look like 'owner/name' (letters, digits, '.', '_', '-')")
    return {f: out[f] for f in KEY_FIELDS}


def _record_problem(record, path: Path, store: Store) -> str | None:
    """Why `record` is not a valid record for `path` (None if it is)."""
    if not isinstance(record, dict) or not {"key", "metrics", "provenance"} <= set(record):
        return "not a record (needs key, metrics, provenance)"
    if record.get("schema", 1) != SCHEMA_VERSION:
        return f"schema {record.get('schema', 1)} (this code reads {SCHEMA_VERSION}; Store.migrate() converts it)"
    try:
        key = _check_key(record["key"])
    except (ValueError, TypeError) as err:
        return f"bad key ({err})"
    if store.path(**key) != path:
        return f"its key {key} belongs at {store.path(**key)}"
    metrics = record["metrics"]
    if not isinstance(metrics, dict) or not isinstance(metrics.get("performance"), (int, float)):
        return "metrics lack a numeric performance"
    return None


def _record_row(record: dict, origin: str, items: bool = False) -> dict:
    """One DataFrame row from a record (with its per-item lists and identity if `items`)."""
    key, metrics, prov = record["key"], record["metrics"], record["provenance"]
    # The training step the checkpoint was saved at (recorded), else the one its label or branch names.
    step = prov.get("step")
    if step is None:
        step = ckpt_step(key["ckpt"])
    if step is None:
        step = ckpt_step(str(prov.get("revision") or "").split("-")[0])
    versions = prov.get("versions")
    row = {**key, "step": math.nan if step is None else float(step),
           **{f: metrics.get(f, math.nan) for f in METRIC_FIELDS}, "source": "run", "profile": prov.get("profile"),
           **{f: prov.get(f) for f in PROVENANCE_FIELDS}, "identity_hash": record.get("identity_hash"),
           "versions": json.dumps(versions, sort_keys=True) if versions is not None else None,
           "variant": STANDARD, "lr": prov.get("lr", math.nan), "epochs": prov.get("epochs", math.nan),
           "model_id": None, "origin": origin, "constant": _flag(metrics.get("constant_prediction"))}
    if items:
        scores = record.get("scores")
        row.update(scores=None if scores is None else np.asarray(scores, dtype=float),
                   predictions=record.get("predictions"), references=record.get("references"),
                   identity=record.get("identity"))
        readings = record.get("continuous") or {}
        row.update({name: None if readings.get(name) is None else np.asarray(readings[name], dtype=float)
                    for name in CONTINUOUS_COLUMNS})
        if isinstance(row["constant"], float) and row["predictions"] is not None:  # written before the flag was
            row["constant"] = _flag(constant_predictor(row["predictions"], metric_kind(row["metric"])))
    return row


def _flag(value):
    """A stored True/False as a bool; anything else (None, absent) as NaN (= not known / not applicable)."""
    return bool(value) if isinstance(value, bool) else math.nan


# Metric → kind of evaluation (the registry's Dataset.kind) for records that carry only the metric name.
_METRIC_KINDS = {"accuracy": "classification", "rougeL": "generation", "acc_raw": "multiple_choice",
                 "acc_per_token": "multiple_choice", "acc_per_char": "multiple_choice",
                 "acc_uncond": "multiple_choice", "acc": "multiple_choice"}  # acc: lm-eval's (amuro_utils.models.lmeval)


def metric_kind(metric) -> str | None:
    """'classification', 'multiple_choice' or 'generation' for a metric name; None if unknown."""
    return _METRIC_KINDS.get(metric) if isinstance(metric, str) else None


def item_label(prediction, strip_order=()) -> str:
    """Canonical label of a prediction or gold: the strip_order label it contains (evaluate.strip_label's rule),
    else the text without surrounding spaces (" entailment" and "entailment" are one label; "3" a choice index)."""
    text = str(prediction)
    for substring, label in strip_order:
        if substring in text:
            return label
    return text.strip()


def constant_predictor(predictions, kind: str | None, strip_order=()) -> bool | None:
    """True when every prediction is the same label (classification, multiple choice) or the same text, empty
    included (generation: a model that answers every prompt alike, e.g. with a label word); None where undefined.

    Undefined: an unknown kind, or fewer than 2 items (one item is trivially constant).
    """
    if kind not in ("classification", "multiple_choice", "generation") or predictions is None or len(predictions) < 2:
        return None
    if kind == "generation":
        return len({str(p).strip() for p in predictions}) == 1
    return len({item_label(p, strip_order) for p in predictions}) == 1


def _as_frame(rows: list[dict], items: bool = False) -> pd.DataFrame:
    """Rows -> DataFrame with exactly COLUMNS (+ ITEM_COLUMNS) and stable dtypes (also when there are no rows)."""
    frame = pd.DataFrame(rows, columns=list(COLUMNS) + (list(ITEM_COLUMNS) if items else []))
    for col in ("step", "seed", "performance", "mean", "std", "ci_low", "ci_high", "n", "n_truncated", "lr", "epochs"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    frame["shots"] = frame["shots"].astype("int64")
    frame["constant"] = frame["constant"].astype(object)
    return frame




def standard_cells(rows: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """The standard-variant rows, refusing two rows for one `key` cell (e.g. a run's and the paper's mixed)."""
    if "variant" in rows.columns:
        rows = rows[rows["variant"] == STANDARD]
    dup = rows[rows.duplicated(key, keep=False)]
    if len(dup):
        cells = dup[key].drop_duplicates().head(5).to_dict("records")
        sources = sorted(dup["source"].astype(str).unique()) if "source" in dup else []
        raise ValueError(f"{len(dup)} rows share a ({', '.join(key)}) cell, e.g. {cells} (sources {sources}); "
                         "pass one source and one model, e.g. df[df.source == 'run']")
    return rows


def model_cells(rows: pd.DataFrame, key: list[str], method: str = "full") -> pd.DataFrame:
    """Standard rows of base models and of one fine-tuning `method`, one row per `key` cell: the runs of several
    training seeds are averaged (performance and std = their means; seed_std = the spread across seeds, n_seeds).
    Two sources or models in one cell are refused."""
    if "method" in rows.columns:
        if method not in set(rows["method"]) | {"full"} and len(rows):
            raise ValueError(f"no records of fine-tuning method {method!r}; methods here: {sorted(set(rows['method']))}")
        rows = rows[rows["method"].isin([BASE_METHOD, method])]
    if "seed" not in rows.columns or not rows.duplicated(key, keep=False).any():
        return standard_cells(rows, key).assign(seed_std=math.nan, n_seeds=1)
    rows = rows[rows["variant"] == STANDARD] if "variant" in rows.columns else rows
    with_seed = key + ["seed"]
    standard_cells(rows.assign(seed=rows["seed"].fillna(-1)), with_seed)  # one row per (cell, seed)
    numeric = {"performance": "mean", "std": "mean", "mean": "mean", "ci_low": "mean", "ci_high": "mean"}
    grouped = rows.groupby(key, dropna=False, sort=False)
    merged = grouped.agg({**{c: "first" for c in rows.columns if c not in numeric and c not in key}, **numeric})
    merged["seed_std"] = grouped["performance"].std(ddof=1)
    merged["n_seeds"] = grouped["performance"].size()
    return merged.reset_index()


# ---------------------------------------------------------------------------------------------------------------
# the paper's released CSVs (PROTOCOL §6)

PAPER_MODEL = "allenai/OLMo-1B-hf"
# The paper's learning rate and epochs per fine-tune (the release notebook's LRS), from the `paper` profile.
PAPER_LRS = {t.name: t.train.lr for t in PAPER.tasks} | {PAPER.instruction.name: PAPER.instruction.train.lr}
PAPER_EPOCHS = {t.name: t.train.epochs for t in PAPER.tasks} | {PAPER.instruction.name: PAPER.instruction.train.epochs}
PAPER_SEED = PAPER.tasks[0].train.seed  # the release's fine-tuning seed (42)
GENERATION_SETS = ("xsum", "xlsum", "cnn", "socialiqa", "sciq", "tweetqa")  # ROUGE-L; the rest accuracy
# official_eval_table: catwalk rank-classification primary metric per task (PROTOCOL §4.5)
OFFICIAL_METRICS = {"arc_easy": "acc_uncond", "arc_challenge": "acc_uncond", "openbookqa": "acc_uncond",
                    "hellaswag": "acc_per_token", "sciq": "acc_raw", "boolq": "acc_raw"}
# catwalk's SciQ (multiple choice) is a different set from the SFT question-generation `sciq`
OFFICIAL_EVAL_SETS = {"sciq": "sciq_mc"}

_FT_ID = re.compile(r"olmo1b_hf_(?:ckpt(?P<step>\d+)|main)_(?P<fine_tune>mnli|paws|socialiqa|xsum|tulu)_"
                    r"(?P<epochs>\d+)epoch_(?P<lr>\d+(?:\.\d+)?e-\d+)(?:_(?P<shots>\d+)shots)?")
_BASE_ID = re.compile(r"olmo1b_(?:checkpoint-(?P<step>\d+)_)?original_hf(?:_(?P<shots>\d+)shots)?")
_PRE_FIX_ID = re.compile(r"olmo1b_checkpoint-(?P<step>\d+)_original")
_BARE_ID = re.compile(r"checkpoint-(?P<step>\d+)(?:_(?P<shots>\d+)shots)?")


def parse_model_id(model_id: str, table: str = "all_perf") -> dict | None:
    """ckpt, fine_tune, shots, lr, epochs, variant of a released model_id (PROTOCOL §6.2); None if it does not parse.

    `table` is "all_perf" or "official_eval": the same id means different runs in the two tables (official_eval is
    OLMo-Eval 4-shot rank classification, so its ids carry no shots suffix).
    """
    if table not in ("all_perf", "official_eval"):
        raise ValueError(f"table must be 'all_perf' or 'official_eval', got {table!r}")
    default_shots = 4 if table == "official_eval" else 0
    reasons = []
    if match := _FT_ID.fullmatch(model_id):
        fine_tune = match["fine_tune"]
        lr, epochs = float(match["lr"]), int(match["epochs"])
        if lr != PAPER_LRS[fine_tune] or epochs != PAPER_EPOCHS[fine_tune]:
            reasons.append(f"lr{lr:g}" if lr != PAPER_LRS[fine_tune] else f"epochs{epochs}")
    elif match := _BASE_ID.fullmatch(model_id):
        fine_tune, lr, epochs = "base", math.nan, math.nan
    elif match := _PRE_FIX_ID.fullmatch(model_id):
        # converted with hf_olmo before the authors' transformers-native fix (figure_before_hf_fix/)
        fine_tune, lr, epochs = "base", math.nan, math.nan
        reasons.append("pre_hf_fix")
    elif match := _BARE_ID.fullmatch(model_id):
        fine_tune, lr, epochs = "base", math.nan, math.nan
        if table == "all_perf":
            reasons.append("unprefixed_id")
    else:
        return None
    groups = match.groupdict()
    shots = int(groups["shots"]) if groups.get("shots") else default_shots
    if shots != 4:
        reasons.append(f"shots{shots}")
    ckpt = f"step{groups['step']}" if groups.get("step") else "main"
    return {"ckpt": ckpt, "fine_tune": fine_tune, "shots": shots, "lr": lr, "epochs": epochs,
            "variant": "+".join(reasons) or STANDARD}


def _eval_key(name: str, table: str) -> tuple[str, str, str, list[str]]:
    """(eval_set, format, metric, extra variant reasons) of a released `eval dataset` name."""
    if table == "official_eval":
        if name not in OFFICIAL_METRICS:
            # rte/qqp were also run through catwalk for base checkpoints; no figure uses them
            return name, "default", "acc", ["catwalk_extra"]
        return OFFICIAL_EVAL_SETS.get(name, name), "default", OFFICIAL_METRICS[name], []
    eval_set, fmt = name, "default"
    for suffix in ("instruct", "inputoutput"):
        if name.endswith("_" + suffix):
            eval_set, fmt = name[: -len(suffix) - 1], suffix
    return eval_set, fmt, ("rougeL" if eval_set in GENERATION_SETS else "accuracy"), []


def _paper_rows(path: Path, table: str, unparsed: list[str]) -> list[dict]:
    """Rows of one released CSV in the store's schema; ids that do not parse are appended to `unparsed`."""
    raw = pd.read_csv(path, index_col=0)
    required = {"model_id", "eval dataset", "Performance"}
    if not required <= set(raw.columns):
        raise ValueError(f"{path} lacks columns {sorted(required - set(raw.columns))}; is it the authors' release?")
    rows = []
    for index, model_id, eval_name, performance, std in zip(
            raw.index, raw["model_id"], raw["eval dataset"], raw["Performance"],
            raw["std"] if "std" in raw.columns else [math.nan] * len(raw)):
        parsed = parse_model_id(model_id, table)
        if parsed is None:
            unparsed.append(f"{path.name} row {index}: {model_id!r}")
            continue
        eval_set, fmt, metric, extra = _eval_key(eval_name, table)
        reasons = [r for r in parsed.pop("variant").split("+") if r != STANDARD] + extra
        base = parsed["fine_tune"] == BASE
        rows.append({"model": PAPER_MODEL, **parsed, "method": BASE_METHOD if base else "full",
                     "seed": math.nan if base else PAPER_SEED, "eval_set": eval_set, "format": fmt, "metric": metric,
                     "step": float(PAPER_FINAL_STEP if parsed["ckpt"] == "main" else ckpt_step(parsed["ckpt"])),
                     "performance": performance, "std": std, "source": "paper", "profile": "paper",
                     "variant": "+".join(reasons) or STANDARD, "model_id": model_id,
                     "origin": f"{path.name}:{index}"})
    return rows


def load_paper_results(data_dir=DATA_DIR / "paper_results") -> pd.DataFrame:
    """all_perf_table.csv + official_eval_table.csv as one frame in the store's schema (source='paper').

    Rows the paper's figures use have variant 'standard'; the rest are kept and marked. Ids that do not parse are
    logged and listed in `frame.attrs['unparsed']`.
    """
    data_dir = Path(data_dir)
    files = {"all_perf": data_dir / "all_perf_table.csv", "official_eval": data_dir / "official_eval_table.csv"}
    absent = [str(p) for p in files.values() if not p.is_file()]
    if absent:
        raise FileNotFoundError(f"released result tables not found: {absent}; they ship in data/paper_results/ "
                                "(copied from the authors' repository, see its README.md)")
    unparsed: list[str] = []
    rows = [row for table, path in files.items() for row in _paper_rows(path, table, unparsed)]
    if unparsed:
        log.warning("%d released rows did not parse and were left out: %s", len(unparsed), "; ".join(unparsed))
    frame = _as_frame(rows)
    frame.attrs["unparsed"] = unparsed
    return frame
