"""Continuous readings beside the paper's metrics, and how well each evaluation set tells the ladder's checkpoints
apart: its signal-to-noise ratio.

**Readings** (`READINGS`; recorded per item by amuro_utils.models.evaluate, `evaluate.CONTINUOUS` says which kind of scoring
records which). Each reading says what it measures, and the two things are kept apart: *answer text* (how well the
model predicts the gold answer's text: bits per byte of the gold choice or reference, log-probability of the gold
label word) and *discrimination* (how much it prefers the gold answer to the others: the gold share of probability,
the margin over the best distractor). A small model can learn the first long before the second. Accuracy and ROUGE-L
stay the paper's metrics; a reading is judged beside them, never instead. `metric_view(frame, reading)` gives a
results frame whose scores are a reading, so every statistic of amuro_utils.stats (cells, intervals, figures) runs on
it unchanged.

**Signal and noise** (Heineman et al. 2025, "Signal and Noise: A Framework for Reducing Uncertainty in Language
Model Evaluation", arXiv 2508.13144, §2; their `signal_to_noise_ratio` in allenai/signal-and-noise `snr/metrics.py`):
signal is the relative dispersion of a benchmark's scores over a population of models, max_{j,k} |m_j − m_k| / m̄;
noise is the relative standard deviation σ_m / m̄ of one model's scores over its final training checkpoints; SNR =
signal / noise. Here, per evaluation set, model (base or fine-tuned on a task) and metric, over the ladder:

- the scores m_c are the set's scores at the ladder's checkpoints c (the mean over items; over training seeds where a
  cell has several), so signal = (max_c m_c − min_c m_c) / |m̄|, the checkpoints standing for Heineman's models;
- the noise cannot be the spread across checkpoints (on a ladder that spread is the signal), so it is the standard
  error each score carries: σ_c² = SE_items,c² + SD_seeds,c², the item-resampled standard error of one run's score
  (2,000 paired bootstrap resamples of the items, as amuro_utils.stats; for the release, its bootstrap std, or the
  binomial √(p(1−p)/n) where it has none) plus the variance across training seeds where there are several; σ = the
  root mean square of σ_c over the checkpoints, and noise = σ / |m̄|;
- SNR = signal / noise = (max_c m_c − min_c m_c) / σ: the mean cancels, so the ratio is defined for readings near 0 or
  below it (ROUGE-L of a base model, log-probabilities, margins).

A set with SNR < 1 moves less across the whole ladder than one score's own noise: it cannot tell any two checkpoints
apart. Even with no signal at all, the range of k noisy scores is on average d₂(k)·σ (`no_signal_snr`: 2.85 for 8
rungs): an SNR below that floor is what noise alone gives.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..store.results import metric_kind
from .. import stats

CELL_KEY = ("eval_set", "fine_tune", "ckpt", "format")


@dataclass(frozen=True)
class Reading:
    """A continuous reading of a record: what it measures, its axis label and which way is better."""

    name: str
    label: str  # axis label, with its unit
    measures: str  # "answer text" | "discrimination"
    higher_is_better: bool
    about: str


READINGS = {
    "gold_bpb": Reading("gold_bpb", "gold bits per byte (lower = better)", "answer text", False,
                        "bits per UTF-8 byte of the gold choice (multiple choice) or reference (generation, "
                        "teacher-forced) given the prompt"),
    "gold_logprob": Reading("gold_logprob", "gold label log-probability (nats)", "answer text", True,
                            "log-probability of the gold label word's tokens under the next-token distribution"),
    "gold_share": Reading("gold_share", "gold share of probability", "discrimination", True,
                          "the gold answer's share of the probability on the label words (classification) or on the "
                          "choices as the set's metric normalises them (multiple choice)"),
    "gold_margin": Reading("gold_margin", "gold margin over the best distractor", "discrimination", True,
                           "the gold choice's score minus the best distractor's, in the set's metric's log units "
                           "(> 0: ranked first)"),
}
# What a figure's continuous panel draws per kind of scoring, for each of the two things a reading can measure.
FIGURE_READINGS = {
    "answer text": {"classification": "gold_logprob", "multiple_choice": "gold_bpb", "generation": "gold_bpb"},
    "discrimination": {"classification": "gold_share", "multiple_choice": "gold_share"},
}
PAPER_METRIC = "paper metric"  # the `metric` column of a table row read on the record's own metric
SNR_COLUMNS = ("eval_set", "fine_tune", "metric", "measures", "n_ckpts", "mean", "dispersion", "noise_items",
               "noise_seeds", "noise", "signal", "relative_noise", "snr", "no_signal_snr", "snr_below_1")


# ---------------------------------------------------------------------------------------------------------------
# readings as a results frame


def metric_view(frame: pd.DataFrame, reading: str) -> pd.DataFrame:
    """`frame` (Store.frame(items=True) / pipeline.load_frame(items=True)) with each record's scores replaced by a
    continuous reading: `scores` its per-item values, `performance` and `mean` their mean, `std` their standard
    error (sample SD / √n), `metric` the reading's name. Records without the reading (another kind of scoring, or
    written before readings were recorded) are left out; items without a value (an empty reference) are dropped
    from every record of their set alike, so records stay paired. The release has no per-item readings: empty."""
    if reading not in READINGS:
        raise ValueError(f"unknown reading {reading!r}; the readings are {list(READINGS)}")
    if reading not in frame.columns:
        if "source" in frame.columns and set(frame["source"].dropna()) <= {"paper"}:
            return frame.iloc[0:0].assign(**{reading: pd.Series(dtype=object)})
        raise ValueError(f"the frame has no {reading!r} column; load it with per-item values: "
                         "Store(...).frame(items=True) or pipeline.load_frame(profile, items=True)")
    has = frame[reading].map(lambda v: isinstance(v, np.ndarray) and v.size > 0)
    rows = frame[has].copy()
    if not len(rows):
        return rows
    columns = {c: [] for c in ("scores", "predictions", "references", "performance", "mean", "std", "n")}
    for values, predictions, references in zip(rows[reading], _column(rows, "predictions"),
                                               _column(rows, "references")):
        keep = np.isfinite(values)
        values = values[keep]
        if not values.size:
            raise ValueError(f"a record has no finite {reading} value; its set's references are all empty")
        columns["scores"].append(values)
        columns["predictions"].append(_kept(predictions, keep))
        columns["references"].append(_kept(references, keep))
        columns["performance"].append(float(values.mean()))
        columns["mean"].append(float(values.mean()))
        columns["std"].append(float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else 0.0)
        columns["n"].append(float(values.size))
    for name, values in columns.items():
        rows[name] = values
    # a reading is not a vote: constant prediction and the accuracy CI do not apply to it
    rows = rows.assign(metric=reading, ci_low=math.nan, ci_high=math.nan, constant=math.nan)
    rows.attrs = {**frame.attrs, "reading": reading}
    return rows


def _column(rows: pd.DataFrame, name: str) -> list:
    return list(rows[name]) if name in rows.columns else [None] * len(rows)


def _kept(values, keep: np.ndarray):
    """The items of a per-item list that `keep` keeps (None stays None)."""
    if not isinstance(values, (list, tuple)) or len(values) != len(keep):
        return values
    return [v for v, k in zip(values, keep) if k]


CLAIM_READING_LABELS = {  # what a claim judged on each FIGURE_READINGS entry reads, signed higher = better
    "answer text": "answer text: gold label log-probability (classification, nats), −gold bits per byte (multiple "
                   "choice, generation)",
    "discrimination": "discrimination: gold share of probability (classification, multiple choice; generation has "
                      "none)",
}


def reading_view(frame: pd.DataFrame, measures: str, *, signed: bool = False) -> pd.DataFrame:
    """`frame` (per-item records) as one results frame on the readings that show `measures` ('answer text' or
    'discrimination'): each set on FIGURE_READINGS' reading for its kind of scoring (metric_view), sets of a kind
    without one (generation under discrimination) and records without readings left out; empty for the release.
    `signed`: higher = better on every set (a reading whose lower is better, bits per byte, enters negated and its
    metric is named '−gold_bpb'), what a claim is judged on beside the paper's metric (claims.evaluate_readings)."""
    if measures not in FIGURE_READINGS:
        raise ValueError(f"a reading measures {sorted(FIGURE_READINGS)}, not {measures!r}")
    parts = []
    for name in dict.fromkeys(FIGURE_READINGS[measures].values()):
        if name not in frame.columns:
            continue
        mine = frame[frame["metric"].map(lambda metric: figure_reading(metric, measures) == name)]
        view = metric_view(mine, name) if len(mine) else mine.iloc[0:0]
        if not len(view):
            continue
        if signed and not READINGS[name].higher_is_better:
            view = view.assign(scores=[-v for v in view["scores"]], performance=-view["performance"],
                               mean=-view["mean"], metric="−" + name)
        parts.append(view)
    if not parts:
        return frame.iloc[0:0]
    out = pd.concat(parts, ignore_index=True)
    out.attrs = {**frame.attrs, "reading": measures}
    return out


def claim_view(frame: pd.DataFrame, measures: str) -> pd.DataFrame:
    """reading_view signed: what a claim is judged on beside the paper's metric (higher = better on every set)."""
    return reading_view(frame, measures, signed=True)


def readings_of(frame: pd.DataFrame) -> list[str]:
    """The continuous readings some record of `frame` carries, in READINGS order."""
    return [r for r in READINGS if r in frame.columns and frame[r].map(lambda v: isinstance(v, np.ndarray)).any()]


def figure_reading(eval_set_metric: str, measures: str) -> str | None:
    """The reading a continuous figure draws for a set scored with `eval_set_metric` (accuracy, rougeL, acc_uncond,
    …) when it shows what `measures` ('answer text' or 'discrimination'); None where the kind has none."""
    if measures not in FIGURE_READINGS:
        raise ValueError(f"a figure's reading measures 'answer text' or 'discrimination', not {measures!r}")
    return FIGURE_READINGS[measures].get(metric_kind(eval_set_metric))


# ---------------------------------------------------------------------------------------------------------------
# signal and noise over the ladder


def no_signal_snr(k: int) -> float:
    """d₂(k): the expected range of k independent standard normal draws, i.e. the SNR (range / σ) a set shows on
    average over k checkpoints when its scores differ only by noise (2/√π for 2; 2.847 for 8)."""
    from scipy import integrate
    from scipy.stats import norm

    if k < 2:
        raise ValueError(f"a range needs at least 2 checkpoints, got {k}")
    value, _ = integrate.quad(lambda x: 1 - norm.cdf(x) ** k - norm.sf(x) ** k, -np.inf, np.inf)
    return float(value)


def _series_cells(rows: pd.DataFrame, n_boot: int, seed: int) -> tuple[stats.Cells, stats.Cells]:
    """(cells per run, keyed by CELL_KEY + seed; cells per checkpoint, seeds pooled) over the same resamples."""
    rows = rows.assign(seed=rows["seed"].fillna(-1) if "seed" in rows else -1)
    kwargs = dict(value_col="performance", items_col="scores", pair_col="eval_set",
                  std_col="std" if "std" in rows else None, n_boot=n_boot, seed=seed,
                  binomial_n=_release_n)
    return stats.Cells(rows, (*CELL_KEY, "seed"), **kwargs), stats.Cells(rows, CELL_KEY, **kwargs)


def _release_n(row) -> float:
    """The item count a released cell without a std is binomial over (stats.RELEASE_N), as the scorecard's cells."""
    n = row.get("n", math.nan)
    if pd.notna(n):
        return float(n)
    return float(stats.RELEASE_N.get(row["eval_set"], math.nan)) if row.get("source") == "paper" else math.nan


def snr_rows(rows: pd.DataFrame, ckpts, metric: str, *, n_boot: int = stats.N_BOOT, seed: int = 0) -> list[dict]:
    """One row of SNR_COLUMNS per (eval set, model) series in `rows` (one metric, format default) over `ckpts`."""
    rows = rows[(rows["format"] == "default") & rows["ckpt"].isin(list(ckpts))].reset_index(drop=True)
    if not len(rows):
        return []
    per_run, per_cell = _series_cells(rows, n_boot, seed)
    out = []
    for (eval_set, fine_tune), series in rows.groupby(["eval_set", "fine_tune"], sort=True):
        points, items, seeds = [], [], []
        for ckpt in [c for c in ckpts if c in set(series["ckpt"])]:
            key = (eval_set, fine_tune, ckpt, "default")
            points.append(float(per_cell.vector(key)[0]))
            runs = [k for k in per_run.cells if k[:4] == key]
            # a cell with nothing to resample (no items, no std, no binomial n) has no known noise
            items.append(math.nan if any(per_run.mode(k) == "fixed" for k in runs) else
                         float(np.mean([np.var(per_run.vector(k)[1:], ddof=1) for k in runs])))
            spread = per_cell.seed_sd(key)
            seeds.append(spread ** 2 if np.isfinite(spread) else math.nan)
        if len(points) < 2:
            continue
        out.append(_snr_row(eval_set, fine_tune, metric, np.array(points), np.array(items), np.array(seeds)))
    return out


def _snr_row(eval_set: str, fine_tune: str, metric: str, points: np.ndarray, item_var: np.ndarray,
             seed_var: np.ndarray) -> dict:
    """The signal, noise and SNR of one series (points over the ladder, per-point item and seed variances)."""
    mean, dispersion = float(points.mean()), float(points.max() - points.min())
    noise_items = math.sqrt(float(item_var.mean()))  # NaN where some score's noise is unknown
    seeded = np.isfinite(seed_var)
    noise_seeds = math.sqrt(float(seed_var[seeded].mean())) if seeded.any() else math.nan
    noise = math.sqrt(noise_items ** 2 + (0.0 if math.isnan(noise_seeds) else noise_seeds ** 2))
    scale = abs(mean) if abs(mean) > 1e-12 else math.nan
    snr = dispersion / noise if noise > 0 else (math.inf if dispersion > 0 else math.nan)  # NaN noise: NaN
    reading = READINGS.get(metric)
    return {"eval_set": eval_set, "fine_tune": fine_tune, "metric": metric,
            "measures": reading.measures if reading else PAPER_METRIC, "n_ckpts": len(points), "mean": mean,
            "dispersion": dispersion, "noise_items": noise_items, "noise_seeds": noise_seeds, "noise": noise,
            "signal": dispersion / scale, "relative_noise": noise / scale, "snr": snr,
            "no_signal_snr": no_signal_snr(len(points)), "snr_below_1": bool(snr < 1)}


def snr_table(study: stats.Study, models: str = "all") -> pd.DataFrame:
    """Signal, noise and SNR over the ladder per evaluation set, model and metric (the record's own metric, then
    every continuous reading its records carry), format default; `models`: 'base', 'fine_tuned' or 'all'."""
    if models not in ("base", "fine_tuned", "all"):
        raise ValueError(f"models must be 'base', 'fine_tuned' or 'all', got {models!r}")
    cached = _TABLES.setdefault(study, {})
    if models in cached:
        return cached[models]
    rows = stats.select(study.df, study.profile, study.method, study.schedule)
    if models != "all":
        rows = rows[(rows["fine_tune"] == "base") == (models == "base")]
    rows = rows[rows["ckpt"].isin(study.ladder)]
    out = snr_rows(rows, study.ladder, PAPER_METRIC, n_boot=study.n_boot, seed=study.seed)
    for index, row in enumerate(out):  # the record's own metric by name (accuracy, rougeL, acc_uncond, …)
        metrics = rows.loc[rows["eval_set"] == row["eval_set"], "metric"].dropna().unique()
        out[index]["metric"] = str(metrics[0]) if len(metrics) else PAPER_METRIC
    for reading in readings_of(rows):
        out += snr_rows(metric_view(rows, reading), study.ladder, reading, n_boot=study.n_boot, seed=study.seed)
    table = pd.DataFrame(out, columns=list(SNR_COLUMNS))
    table = table.sort_values(["fine_tune", "eval_set", "measures"], key=_base_first, kind="stable")
    table = table.reset_index(drop=True)
    table.attrs["caption"] = _CAPTION  # written under the table (plots.write_table)
    cached[models] = table
    return table


def _base_first(column: pd.Series) -> pd.Series:
    """Sort key: base rows before fine-tuned ones, the paper's metric before the readings."""
    if column.name == "fine_tune":
        return column.map(lambda v: ("" if v == "base" else "~") + str(v))
    if column.name == "measures":
        return column.map(lambda v: {PAPER_METRIC: 0, "answer text": 1, "discrimination": 2}.get(v, 3))
    return column


_TABLES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_CAPTION = ("Signal and noise over the ladder (Heineman et al. 2025, adapted to a ladder): dispersion = max − min of the "
            "set's score over the checkpoints; noise = root mean square over the checkpoints of each score's standard "
            "error (noise_items: items resampled; noise_seeds: the training seeds' SD where there are several), in "
            "score units; signal and relative_noise = the two over |mean| (Heineman's relative dispersion and relative "
            "standard deviation); snr = signal / relative_noise = dispersion / noise; no_signal_snr = the SNR noise "
            "alone gives on average over these checkpoints. Format default")


def snr_base(study: stats.Study) -> pd.DataFrame:
    """The SNR table of the base models (pretrain_probe's table)."""
    return snr_table(study, "base")


def snr_fine_tuned(study: stats.Study) -> pd.DataFrame:
    """The SNR table of the fine-tuned models (sft's table)."""
    return snr_table(study, "fine_tuned")


def paper_snr(study: stats.Study) -> pd.DataFrame:
    """SNR over the ladder of every (eval set, model) series on the record's own metric only (the scorecard's flag;
    snr_table's rows whose `measures` is the paper metric, without computing the readings' rows)."""
    cached = _TABLES.setdefault(study, {})
    if "all" in cached:
        table = cached["all"]
        return table[table["measures"] == PAPER_METRIC]
    if "paper" not in cached:
        rows = stats.select(study.df, study.profile, study.method, study.schedule)
        rows = rows[rows["ckpt"].isin(study.ladder)]
        cached["paper"] = pd.DataFrame(snr_rows(rows, study.ladder, PAPER_METRIC, n_boot=study.n_boot,
                                                seed=study.seed), columns=list(SNR_COLUMNS))
    return cached["paper"]


def low_snr(study: stats.Study, keys, threshold: float = 1.0) -> list[str]:
    """The series among the cells `keys` ((eval_set, fine_tune, ckpt, format), e.g. a verdict's cells) whose SNR on
    the record's own metric is below `threshold`, as 'arc_easy (base): SNR 0.62' lines, for the scorecard's cells
    column."""
    wanted = {(k[0], k[1]) for k in keys}
    table = paper_snr(study)
    paper = table[table["snr"] < threshold]
    return [f"{row.eval_set} ({row.fine_tune}): SNR {row.snr:.2f}" for row in paper.itertuples()
            if (row.eval_set, row.fine_tune) in wanted]
