"""The results store (one JSON record per evaluation) and the paper's released CSVs in the same tidy schema.

A record lives at <root>/<model-slug>/<ckpt>/<fine_tune>/<eval_set>__<format>__<shots>shot.json and holds the key,
the metrics (performance = bootstrap CI midpoint, the paper's number), the provenance and optionally per-item
scores and predictions. Records are written atomically, so a killed job leaves either the old record, the new one
or a stray temp file that is never read back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from .paths import DATA_DIR

log = logging.getLogger(__name__)

KEY_FIELDS = ("model", "ckpt", "fine_tune", "eval_set", "format", "shots")
METRIC_FIELDS = ("metric", "performance", "mean", "std", "ci_low", "ci_high", "n", "n_truncated")
PROVENANCE_FIELDS = ("revision", "commit", "config_hash", "seed", "versions", "created")
# One schema for run records and the paper's rows; `variant` is "standard" for every row the paper's figures use
# (and for every run record), otherwise why the row is set aside ("shots0", "lr2e-05", "pre_hf_fix", ...).
COLUMNS = ("model", "ckpt", "step", "fine_tune", "eval_set", "format", "shots", "metric", "performance", "mean",
           "std", "ci_low", "ci_high", "n", "n_truncated", "source", "profile", *PROVENANCE_FIELDS, "variant", "lr",
           "epochs", "model_id", "origin", "constant")
# Store.frame(items=True) adds these object columns: per-item scores (np.ndarray), predictions and gold references
# (lists; references None for records written before they were stored).
ITEM_COLUMNS = ("scores", "predictions", "references")
SCHEMA_VERSION = 1
STANDARD = "standard"
_PACKAGES = ("amuro_utils", "torch", "transformers", "tokenizers", "datasets", "accelerate", "numpy", "pandas",
             "scipy", "rouge-score")
_SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


# ---------------------------------------------------------------------------------------------------------------
# helpers


def config_hash(obj) -> str:
    """Stable 16-hex-digit SHA-256 of a dict/dataclass/list (key order, tuples vs lists and numpy types ignored)."""
    canonical = json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


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


def ckpt_step(ckpt: str) -> float:
    """Training step of a ladder label: 'step1000' -> 1000.0; anything else ('main') -> NaN."""
    match = re.fullmatch(r"step(\d+)", ckpt)
    return float(match.group(1)) if match else math.nan


def _plain(obj):
    """JSON-ready copy: dataclasses -> dicts, tuples -> lists, numpy scalars/arrays -> Python values, Paths -> str."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _plain(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


# ---------------------------------------------------------------------------------------------------------------
# the store


class Store:
    """One folder of JSON records, one per (model, ckpt, fine_tune, eval_set, format, shots)."""

    def __init__(self, root):
        self.root = Path(root)

    def path(self, **key) -> Path:
        """Where the record of `key` lives (the key is validated first)."""
        key = _check_key(key)
        name = f"{key['eval_set']}__{key['format']}__{key['shots']}shot.json"
        return self.root / model_slug(key["model"]) / key["ckpt"] / key["fine_tune"] / name

    def has(self, **key) -> bool:
        """True if a complete, valid record of `key` is stored (a corrupt or half-written one does not count)."""
        return self._read(self.path(**key), quiet=True) is not None

    def read(self, **key) -> dict:
        """The full record of `key` (with per-item scores/predictions if stored); KeyError if there is none."""
        path = self.path(**key)
        record = self._read(path, quiet=False)
        if record is None:
            raise KeyError(f"no valid record for {_check_key(key)} at {path}")
        return record

    def write(self, key: dict, metrics: dict, provenance: dict, scores=None, predictions=None,
              references=None) -> Path:
        """Write one record atomically (temp file in the same folder, fsync, os.replace) and return its path.

        `references` are the gold labels/texts per item, aligned with `scores` and `predictions`.
        """
        key = _check_key(key)
        missing = [f for f in ("metric", "performance") if f not in metrics]
        if missing:
            raise ValueError(f"metrics lack {missing}; pass evaluate.bootstrap_ci(...) plus 'metric' and 'n_truncated'")
        provenance = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **provenance}
        record = {"schema": SCHEMA_VERSION, "key": key, "metrics": _plain(metrics), "provenance": _plain(provenance)}
        if scores is not None:
            record["scores"] = _plain(scores)
        if predictions is not None:
            record["predictions"] = _plain(predictions)
        if references is not None:
            record["references"] = _plain(references)
        path = self.path(**key)
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, json.dumps(record, allow_nan=True))
        return path

    def frame(self, items: bool = False) -> pd.DataFrame:
        """Every valid record as one tidy DataFrame (columns COLUMNS); corrupt files are skipped with a warning.

        items=True adds ITEM_COLUMNS (per-item scores, predictions, references) for paired resampling and for the
        majority-class share; it also derives `constant` for records written before it was stored.
        """
        rows, extra = [], []
        for path in sorted(self.root.glob("*/*/*/*.json")):
            record = self._read(path, quiet=False)
            if record is not None:
                rows.append(_record_row(record, path.relative_to(self.root).as_posix()))
                if items:
                    extra.append(_item_fields(record, rows[-1]))
        frame = _as_frame(rows)
        if items:
            for col in ITEM_COLUMNS:
                frame[col] = pd.Series([e[col] for e in extra], index=frame.index, dtype=object)
        return frame

    def _read(self, path: Path, quiet: bool) -> dict | None:
        """The record at `path` if it is complete and belongs there; None (with a warning unless quiet) otherwise."""
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            problem = _record_problem(record, path, self)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            problem = f"not valid JSON ({err})"
        if problem:
            if not quiet:
                log.warning("skipping record %s: %s; delete it and rerun the step that writes it", path, problem)
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
    out = {f: str(key[f]) for f in KEY_FIELDS if f != "shots"} | {"shots": int(shots)}
    for field in ("ckpt", "fine_tune", "eval_set", "format"):
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


def _atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` so that readers see the old file or the whole new one, never a part."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # the rename itself must survive a crash, so the folder entry is synced too (not possible on every OS)
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _record_row(record: dict, origin: str) -> dict:
    """One DataFrame row from a record."""
    key, metrics, prov = record["key"], record["metrics"], record["provenance"]
    step = ckpt_step(key["ckpt"])
    if math.isnan(step):
        # 'main' (or another branch label): the ladder's final step if the run recorded it
        recorded = prov.get("step")
        match = re.match(r"step(\d+)", str(prov.get("revision") or ""))
        step = float(recorded) if recorded is not None else float(match.group(1)) if match else math.nan
    versions = prov.get("versions")
    return {**key, "step": step, **{f: metrics.get(f, math.nan) for f in METRIC_FIELDS},
            "source": "run", "profile": prov.get("profile"),
            **{f: prov.get(f) for f in PROVENANCE_FIELDS},
            "versions": json.dumps(versions, sort_keys=True) if versions is not None else None,
            "variant": STANDARD, "lr": prov.get("lr", math.nan), "epochs": prov.get("epochs", math.nan),
            "model_id": None, "origin": origin, "constant": _flag(metrics.get("constant_prediction"))}


def _flag(value):
    """A stored True/False as a bool; anything else (None, absent) as NaN (= not known / not applicable)."""
    return bool(value) if isinstance(value, bool) else math.nan


def _item_fields(record: dict, row: dict) -> dict:
    """Per-item scores/predictions/references of a record; fills `row['constant']` from predictions if unset."""
    scores = record.get("scores")
    fields = {"scores": None if scores is None else np.asarray(scores, dtype=float),
              "predictions": record.get("predictions"), "references": record.get("references")}
    if isinstance(row["constant"], float) and fields["predictions"] is not None:
        from .analysis import constant_predictor, metric_kind

        row["constant"] = _flag(constant_predictor(fields["predictions"], metric_kind(row["metric"])))
    return fields


def _as_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows -> DataFrame with exactly COLUMNS and stable dtypes (also when there are no rows)."""
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for col in ("step", "performance", "mean", "std", "ci_low", "ci_high", "n", "n_truncated", "lr", "epochs"):
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


def combined(run: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """A run's frame and the paper's rows in one frame (tell them apart by `source`), e.g. to overlay curves."""
    for name, frame in (("run", run), ("paper", paper)):
        absent = [c for c in COLUMNS if c not in frame.columns]
        if absent:
            raise ValueError(f"{name} frame lacks columns {absent}; build it with Store.frame() / load_paper_results()")
    parts = [f[list(COLUMNS)] for f in (run, paper) if len(f)]
    return _as_frame([]) if not parts else pd.concat(parts, ignore_index=True)


# ---------------------------------------------------------------------------------------------------------------
# the paper's released CSVs (PROTOCOL §6)

PAPER_MODEL = "allenai/OLMo-1B-hf"
PAPER_FINAL_STEP = 738020  # "main" = step738020 (PROTOCOL §1)
PAPER_LRS = {"mnli": 2e-6, "paws": 2e-6, "socialiqa": 2e-6, "xsum": 2e-7, "tulu": 2e-6}  # the notebook's LRS
PAPER_EPOCHS = {"mnli": 3, "paws": 3, "socialiqa": 3, "xsum": 3, "tulu": 5}
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
        rows.append({"model": PAPER_MODEL, **parsed, "eval_set": eval_set, "format": fmt, "metric": metric,
                     "step": float(PAPER_FINAL_STEP) if parsed["ckpt"] == "main" else ckpt_step(parsed["ckpt"]),
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
