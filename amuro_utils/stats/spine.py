"""The statistics spine: every quantity a figure, a table or a verdict shows, computed once, as a point estimate plus
resamples. Figures, tables (`figures/<profile>/*.md`) and the scorecard (`amuro_utils.verdicts.claims`) all read these
functions, so the interval drawn on a figure is the interval the scorecard judges.

Two layers of uncertainty, kept apart:

- **Measurement** (cells). A cell is one (eval_set, fine_tune, ckpt, format) score. Its resamples come from what
  the records hold, best first: per-item scores, paired across every cell of one evaluation set (a resample draws
  the same item indices for all of them, so base − fine-tuned keeps its pairing); with several training seeds,
  seeds first, then items; a released cell with a bootstrap std: N(performance, std²); a released cell without one:
  N(p, p(1−p)/n), n = the validation size; otherwise the cell is fixed. Held-out-loss cells (sensitivity,
  forgetting) resample noise / training seeds, then held-out text blocks (paired across checkpoints).
- **Units**. A statistic that averages over task pairs, evaluation sets, fine-tuning tasks or checkpoints can also
  resample those units (a bootstrap over the units the claim quantifies, then items, then seeds: resample b draws
  unit counts and uses cell resample b). The point estimate is the same either way; `Estimate.resamples` is the
  units-then-measurement interval, `Estimate.measurement` the measurement-only one (the paper's own bootstrap).

A statistic is a function `compute(g, w)`: `g(*key)` gives a cell's vector [point, resamples…] (None where the
cell is missing) and `w(dim, label, stratum)` the weight of one unit in every column (1 for the point; bootstrap
counts where `dim` is resampled; 0 for a unit left out). `estimate` evaluates it under each weighting.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
import zlib
from collections.abc import Callable
from statistics import NormalDist

import numpy as np
import pandas as pd

from ..config.profiles import Profile, ckpt_step
from ..store.results import STANDARD
from . import analysis

N_BOOT = 2000
PAPER_RESAMPLES = 3000  # a record's Performance: the authors' bootstrap (PROTOCOL §4.4), `bootstrap_ci`
CONFIDENCE = 0.95
# official_eval_table.csv has no std: validation sizes (PROTOCOL §2.2) give the binomial standard error.
RELEASE_N = {"arc_easy": 570, "arc_challenge": 299, "boolq": 3270, "hellaswag": 10042, "openbookqa": 500,
             "sciq_mc": 1000}
# How a cell is resampled (Cells.mode) and what a unit dimension is called (Estimate.describe).
MODE_LABELS = {
    "items": "items (paired bootstrap per eval set)",
    "seeds+items": "training seeds, then items",
    "normal": "cells ~ N(performance, std²)",
    "seeds+normal": "training seeds, then cells ~ N(performance, std²)",
    "binomial": "cells ~ N(p, p(1−p)/n)",
    "blocks": "held-out blocks (paired bootstrap)",
    "seeds+blocks": "noise/training seeds, then held-out blocks",
    "seeds": "training/noise seeds",
    "fixed": "not resampled",
}
UNIT_LABELS = {"pair": "task pairs", "set": "evaluation sets", "task": "fine-tuning tasks", "ckpt": "checkpoints",
               "group": "groups"}
SENSITIVITY_COLUMNS = ("ckpt", "scaling", "magnitude", "delta_loss")
FORGETTING_COLUMNS = ("ckpt", "fine_tune", "delta_loss")


class Unmeasurable(Exception):
    """Raised by a statistic whose cells are missing; the message says what is lacking (`missing`: the cells
    asked for and absent, set by `estimate`)."""

    missing: list = []


def _hash(*parts) -> int:
    return zlib.crc32("\x1f".join(map(str, parts)).encode("utf-8"))


MIN_VALID_SHARE = 0.9  # a resampled interval needs at least this share of finite resamples …
MIN_TAIL = 20  # … and at least this many resamples beyond each end; fewer: the normal interval of the resamples


def interval(resamples, confidence: float = CONFIDENCE, point: float | None = None) -> tuple[float, float, str]:
    """The `confidence` interval of resamples, and how it was formed ('' for the percentile interval).

    Percentile interval of the finite resamples, unless
    - fewer than MIN_VALID_SHARE of them are finite: no interval (NaN, NaN) and the reason;
    - a tail would hold fewer than MIN_TAIL resamples (a Bonferroni-adjusted level on a few thousand resamples):
      point ± z × the resamples' standard deviation (the normal interval; centred on the mean of the resamples
      where no point is given), said in the reason.
    """
    x = np.asarray(resamples, dtype=float)
    finite = x[np.isfinite(x)]
    if not len(x) or len(finite) < MIN_VALID_SHARE * len(x):
        return math.nan, math.nan, (f"only {len(finite)} of {len(x)} resamples are valid (< {MIN_VALID_SHARE:.0%}): "
                                    "no interval")
    tail = (1 - confidence) / 2
    if tail * len(finite) < MIN_TAIL:
        centre = float(np.mean(finite)) if point is None or not np.isfinite(point) else float(point)
        half = normal_z(confidence) * float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0
        return centre - half, centre + half, (f"{confidence:.2%} normal interval (point ± {normal_z(confidence):.2f} × "
                                              f"resample sd): a percentile tail would hold "
                                              f"{tail * len(finite):.1f} < {MIN_TAIL} resamples")
    low, high = np.percentile(finite, [100 * tail, 100 * (1 - tail)])
    return float(low), float(high), ""


def normal_z(confidence: float) -> float:
    """The two-sided standard normal quantile of a confidence level (1.96 at 95 %)."""
    return float(NormalDist().inv_cdf(0.5 + confidence / 2))


def resample_se(resamples) -> float:
    """A standard error read off resamples as the 95 % percentile interval's half-width / 1.96: the spread the
    verdict's interval sees (robust to the heavy tails of a ratio's resamples, where the standard deviation is not)."""
    x = np.asarray(resamples, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return math.nan
    low, high = np.percentile(x, [100 * (1 - CONFIDENCE) / 2, 100 * (1 + CONFIDENCE) / 2])
    return float(high - low) / (2 * normal_z(CONFIDENCE))


def percentile_ci(resamples, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The `confidence` interval of resamples (stats.interval: percentile; NaN with too few valid resamples; the
    normal interval where a tail would hold too few)."""
    low, high, _ = interval(resamples, confidence)
    return low, high


def bootstrap_ci(scores, seed: int = 0, n_resamples: int = PAPER_RESAMPLES, confidence: float = 0.95) -> dict:
    """A record's summary, the paper's own (PROTOCOL §4.4): percentile bootstrap of the mean of the per-item scores
    (scipy.stats.bootstrap, PAPER_RESAMPLES resamples); mean, CI, performance (= the CI's midpoint, the paper's
    number), std (SE), n. The analyses' intervals are this module's paired resamples (N_BOOT), not these."""
    from scipy.stats import bootstrap

    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 1 or scores.size == 0:
        raise ValueError(f"bootstrap_ci needs a non-empty 1-D array of per-item scores, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("bootstrap_ci got NaN or infinite scores; fix the scoring before summarising")
    mean = float(scores.mean())
    if scores.size == 1 or np.all(scores == scores[0]):
        # Every resample of a constant sample has the same mean: a zero-width CI (scipy refuses n = 1).
        low = high = mean
        std = 0.0
    else:
        res = bootstrap((scores,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                              method="percentile", random_state=seed)
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        std = float(res.standard_error)
    return {"mean": mean, "ci_low": low, "ci_high": high, "performance": low + (high - low) / 2, "std": std,
            "n": int(scores.size)}


# ---------------------------------------------------------------------------------------------------------------
# cells: the measurement layer


class Cells:
    """Rows of one source, grouped into cells, each cell a vector [point estimate, n_boot resampled values].

    key_cols name a cell; pair_col groups the rows whose items are aligned (None = all rows share items);
    value_col is the point estimate without items, std_col its standard error, items_col per-item values.
    """

    def __init__(self, rows: pd.DataFrame, key_cols, *, value_col: str, items_col: str | None, pair_col,
                 std_col: str | None = None, n_boot: int = N_BOOT, seed: int = 0, item_mode: str = "items",
                 binomial_n: Callable[[pd.Series], float] | None = None):
        self.rows = rows.reset_index(drop=True)
        self.rows.attrs = {}  # pandas deep-copies attrs on every column access: a frame's notes cost seconds here
        self.key_cols = tuple(key_cols)
        self.value_col, self.items_col, self.pair_col, self.std_col = value_col, items_col, pair_col, std_col
        self.n_boot, self.seed, self.item_mode, self.binomial_n = n_boot, seed, item_mode, binomial_n
        self.cells: dict[tuple, list[int]] = {}
        for i, key in enumerate(zip(*(self.rows[c] for c in self.key_cols))):
            self.cells.setdefault(tuple(key), []).append(i)
        n = len(self.rows)
        self._sources = self.rows["source"].tolist() if "source" in self.rows else [None] * n
        self._constants = self.rows["constant"].tolist() if "constant" in self.rows else [None] * n
        # the columns read per row, as lists: a pandas scalar lookup costs ~60 µs, and the calibration reads
        # thousands of frames
        self._col = {c: self.rows[c].tolist() if c in self.rows else [None] * n
                     for c in {*self.key_cols, value_col, items_col, pair_col, std_col, "seed", "references"} - {None}}
        self._row_vec: dict[int, np.ndarray] = {}
        self._row_mode: dict[int, str] = {}
        self._cell: dict[tuple, np.ndarray] = {}
        self.unpaired: dict[object, list[int]] = {}  # pairing group -> the different n its records have
        self._check_duplicates()

    def _check_duplicates(self) -> None:
        seeds = self.rows["seed"] if "seed" in self.rows else pd.Series([None] * len(self.rows))
        for key, idx in self.cells.items():
            if len(idx) > 1 and seeds.iloc[idx].astype(str).duplicated().any():
                raise ValueError(f"{len(idx)} rows for cell {dict(zip(self.key_cols, key))} without distinct seeds "
                                 "(two sources or models mixed?); pass one source and one model, e.g. "
                                 "df[df.source == 'run']")

    # -- per row ------------------------------------------------------------------------------------------------
    def _items(self, i: int):
        if self.items_col is None or self.items_col not in self.rows:
            return None
        value = self._col[self.items_col][i]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        arr = np.asarray(value, dtype=float)
        return arr if arr.ndim == 1 and len(arr) > 0 else None

    def _fill_items_group(self, group) -> None:
        """Paired bootstrap of every row with items in one pairing group: shared item indices per resample."""
        members = [i for i in range(len(self.rows))
                   if (self.pair_col is None or self._col[self.pair_col][i] == group) and self._items(i) is not None]
        by_items: dict[tuple, list[int]] = {}
        for i in members:
            n = len(self._items(i))
            refs = self._col["references"][i]
            if isinstance(refs, (list, tuple)) and len(refs) != n:
                raise ValueError(f"row {self._describe(i)}: {len(refs)} references for {n} scores")
            gold = _hash(*refs) if isinstance(refs, (list, tuple)) else None
            by_items.setdefault((n, gold), []).append(i)
        # rows without references pair with the one set of references of the same n, if there is exactly one
        for (n, gold) in [k for k in by_items if k[1] is None]:
            known = [k for k in by_items if k[0] == n and k[1] is not None]
            if len(known) == 1:
                by_items[known[0]] += by_items.pop((n, gold))
        if len(by_items) > 1:
            self.unpaired[group] = sorted({n for n, _ in by_items})
        for (n, gold), idx in by_items.items():
            scores = np.vstack([self._items(i) for i in idx])
            rng = np.random.default_rng([self.seed, _hash(group, n, gold)])
            means = np.empty((len(idx), self.n_boot))
            chunk = max(1, min(self.n_boot, 4_000_000 // n))
            for start in range(0, self.n_boot, chunk):
                b = min(chunk, self.n_boot - start)
                picks = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
                counts = np.bincount(picks.ravel(), minlength=b * n).reshape(b, n).astype(float)
                means[:, start:start + b] = (counts @ scores.T).T / n
            for j, i in enumerate(idx):
                self._row_vec[i] = np.concatenate([[scores[j].mean()], means[j]])
                self._row_mode[i] = self.item_mode

    def _row(self, i: int) -> np.ndarray:
        if i in self._row_vec:
            return self._row_vec[i]
        if self._items(i) is not None:
            self._fill_items_group(None if self.pair_col is None else self._col[self.pair_col][i])
            return self._row_vec[i]
        point = float(self._col[self.value_col][i])
        std = self._col[self.std_col][i] if self.std_col else None
        std = math.nan if std is None else float(std)
        mode = "normal"
        if not np.isfinite(std) and self.binomial_n is not None:
            n = self.binomial_n(self.rows.iloc[i])
            if np.isfinite(n) and n > 0 and 0.0 <= point <= 1.0:
                std, mode = math.sqrt(point * (1 - point) / n), "binomial"
        if not np.isfinite(std):
            vec, mode = np.full(self.n_boot + 1, point), "fixed"
        else:
            rng = np.random.default_rng([self.seed, _hash(*self._key_of(i), self._seed_of(i))])
            vec = np.concatenate([[point], point + std * rng.standard_normal(self.n_boot)])
        self._row_vec[i], self._row_mode[i] = vec, mode
        return vec

    def _key_of(self, i: int) -> tuple:
        return tuple(self._col[c][i] for c in self.key_cols)

    def _seed_of(self, i: int):
        return self._col["seed"][i]

    def _describe(self, i: int) -> str:
        return ", ".join(f"{c}={self._col[c][i]}" for c in self.key_cols)

    # -- per cell -----------------------------------------------------------------------------------------------
    def vector(self, key: tuple) -> np.ndarray | None:
        """[point, resamples…] of a cell (seeds resampled first where the cell has several); None if absent."""
        if key in self._cell:
            return self._cell[key]
        idx = self.cells.get(key)
        if not idx:
            return None
        rows = np.vstack([self._row(i) for i in idx])
        if len(idx) == 1:
            vec = rows[0]
        else:
            rng = np.random.default_rng([self.seed, _hash("seeds", *key)])
            choice = rng.integers(0, len(idx), size=(self.n_boot, len(idx)))
            draws = rows[:, 1:][choice, np.arange(self.n_boot)[:, None]].mean(axis=1)
            vec = np.concatenate([[rows[:, 0].mean()], draws])
        self._cell[key] = vec
        return vec

    def mode(self, key: tuple) -> str:
        """How a cell is resampled (a key of MODE_LABELS)."""
        idx = self.cells[key]
        for i in idx:
            self._row(i)
        mode = self._row_mode[idx[0]]
        if len(idx) == 1:
            return mode
        return "seeds" if mode == "fixed" else f"seeds+{mode}"

    def seed_sd(self, key: tuple) -> float:
        """Standard deviation over training seeds of a cell's point estimates (NaN with one seed)."""
        idx = self.cells[key]
        return float(np.std([self._row(i)[0] for i in idx], ddof=1)) if len(idx) > 1 else math.nan

    def constant(self, key: tuple) -> bool | None:
        """True if some row of the cell is a constant predictor; None where nothing is known."""
        flags = [self._constants[i] for i in self.cells[key]]
        known = [bool(f) for f in flags if isinstance(f, (bool, np.bool_))]
        return any(known) if known else None

    def sources(self, key: tuple) -> set:
        """The `source` values of a cell's rows ('paper' for the release)."""
        return {self._sources[i] for i in self.cells[key] if isinstance(self._sources[i], str)}


def cell_interval(cells: Cells, key: tuple, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(point, low, high) of one cell: its point estimate and the interval of its measurement resamples (items, or
    seeds then items, or N(p, std²)) — what Figs. 2–5 draw; NaN where the cell is absent or not resampled."""
    vec = cells.vector(key)
    if vec is None:
        return math.nan, math.nan, math.nan
    low, high, _ = interval(vec[1:], confidence, float(vec[0])) if cells.mode(key) != "fixed" else (math.nan,) * 3
    return float(vec[0]), low, high


class View:
    """A statistic's window onto the cells: records the cells it used and the ones it lacked; can hide cells."""

    def __init__(self, cells: Cells, exclude=frozenset()):
        self.cells, self.exclude = cells, exclude
        self.used: dict[tuple, None] = {}
        self.missing: dict[tuple, None] = {}

    def __call__(self, *key) -> np.ndarray | None:
        key = tuple(key)
        if key in self.exclude:
            return None
        vec = self.cells.vector(key)
        if vec is None:
            self.missing[key] = None
        else:
            self.used[key] = None
        return vec


class CellsUnion:
    """Several Cells read as one, a cell's key prefixed by its bank's name (e.g. ('perf', eval_set, …),
    ('probe', task, layer, ckpt)): for statistics that combine records, probes and held-out losses. Banks bootstrap
    independently, except that item groups with the same (seed, eval set, n, gold) draw the same items in every
    bank, so a set's dynamics records stay paired with its ordinary records."""

    def __init__(self, banks: dict):
        self.banks = {k: v for k, v in banks.items() if v is not None}
        first = next(iter(self.banks.values()))
        self.n_boot, self.seed = first.n_boot, first.seed
        self.unpaired = {}

    def _bank(self, key: tuple):
        return self.banks.get(key[0]), key[1:]

    def vector(self, key: tuple) -> np.ndarray | None:
        """[point, resamples…] of a prefixed cell; None if its bank or the cell is absent."""
        bank, rest = self._bank(key)
        return None if bank is None else bank.vector(rest)

    def mode(self, key: tuple) -> str:
        bank, rest = self._bank(key)
        return bank.mode(rest)

    def seed_sd(self, key: tuple) -> float:
        bank, rest = self._bank(key)
        return bank.seed_sd(rest)

    def constant(self, key: tuple) -> bool | None:
        bank, rest = self._bank(key)
        return bank.constant(rest)

    def sources(self, key: tuple) -> set:
        bank, rest = self._bank(key)
        return bank.sources(rest)


# ---------------------------------------------------------------------------------------------------------------
# units: what a statistic ranges over, and how each unit counts in one evaluation


class Weights:
    """The weight of each unit (task pair, set, task, checkpoint) in every column of one evaluation.

    Column 0 (the point estimate) weighs every unit 1. In the other columns a unit weighs 1, or, where its
    dimension is in `resample`, the number of times bootstrap resample b drew it from its stratum (multinomial,
    seeded by the stratum, so every statistic draws the same units for the same stratum). `leave` = (dim, label)
    gives that unit weight 0 everywhere (leave-one-out) and resamples the others of its stratum among themselves.
    `present` (dim -> units): the units that have cells, as the point pass asked for them; the others of a stratum
    are never drawn. `seen` collects every unit asked for.
    """

    def __init__(self, n_cols: int, resample=(), seed: int = 0, leave: tuple | None = None,
                 present: dict | None = None):
        self.n_cols, self.resample, self.seed, self.leave = n_cols, frozenset(resample), seed, leave
        self.present = present
        self.seen: dict[str, dict] = {}
        self._counts: dict[tuple, np.ndarray] = {}

    def __call__(self, dim: str, label, stratum=()):
        self.seen.setdefault(dim, {}).setdefault(label, None)
        if self.leave is not None and self.leave == (dim, label):
            return 0.0
        stratum = tuple(dict.fromkeys(stratum))
        if self.leave is not None and self.leave[0] == dim:  # the others are resampled among themselves: drawing
            stratum = tuple(u for u in stratum if u != self.leave[1])  # the left-out unit would empty resamples
        if self.present is not None and dim in self.present:  # likewise a unit without cells (a missing pair)
            stratum = tuple(u for u in stratum if u in self.present[dim] or u == label)
        if dim not in self.resample or len(stratum) < 2:
            return 1.0
        if label not in stratum:
            raise ValueError(f"unit {label!r} is not in its stratum {stratum}")
        key = (dim, stratum)
        if key not in self._counts:
            n = len(stratum)
            rng = np.random.default_rng([self.seed, _hash("units", dim, *stratum)])
            draws = rng.multinomial(n, np.full(n, 1 / n), size=self.n_cols - 1).T.astype(float)
            self._counts[key] = np.hstack([np.ones((n, 1)), draws])
        return self._counts[key][stratum.index(label)]


def wmean(terms, what: str, nan_ok: bool = False) -> np.ndarray:
    """Weighted mean over units of [(vector, weight)] (weights scalar or per column); NaN where a column weighs 0.

    With every weight 1 it is the plain mean. `nan_ok` leaves a NaN value out of its column (e.g. a ratio whose
    resampled base is 0)."""
    terms = [(v, w) for v, w in terms if v is not None]
    if not terms:
        raise Unmeasurable(f"no {what}")
    values = np.vstack([np.asarray(v, dtype=float) for v, _ in terms])
    if not nan_ok and all(isinstance(w, float) and w == 1.0 for _, w in terms):
        return values.mean(axis=0)
    weights = np.vstack([np.broadcast_to(np.asarray(w, dtype=float), values.shape[1:]) for _, w in terms])
    if nan_ok:
        weights = np.where(np.isfinite(values), weights, 0.0)
        values = np.where(np.isfinite(values), values, 0.0)
    total = weights.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (weights * values).sum(axis=0) / np.where(total > 0, total, 1.0), np.nan)


def fitted_change(steps, vectors, weights=None) -> np.ndarray | None:
    """OLS slope of score on log10(step) × the log10 span of the steps: the fitted rise first → last checkpoint.

    `weights` (per checkpoint, scalar or per column) weigh the points; a weight of 0 leaves a checkpoint out (the
    span is then that of the checkpoints kept). None when fewer than 2 distinct steps remain."""
    weights = [1.0] * len(steps) if weights is None else list(weights)
    pts = [(math.log10(s), v, w) for s, v, w in zip(steps, vectors, weights)
           if v is not None and s and np.isfinite(s) and s > 0 and not (np.isscalar(w) and w == 0)]
    if len({x for x, _, _ in pts}) < 2:
        return None
    x = np.array([p[0] for p in pts])
    y = np.vstack([p[1] for p in pts])
    if all(np.isscalar(p[2]) for p in pts):  # every kept point weighs 1
        xc = x - x.mean()
        return (xc @ (y - y.mean(axis=0))) / (xc @ xc) * (x.max() - x.min())  # centred: equal scores give exactly 0
    w = np.vstack([np.broadcast_to(np.asarray(p[2], dtype=float), y.shape[1:]) for p in pts])
    with np.errstate(invalid="ignore", divide="ignore"):
        total = w.sum(axis=0)
        xbar = (w * x[:, None]).sum(axis=0) / total
        ybar = (w * y).sum(axis=0) / total
        xc = x[:, None] - xbar
        slope = (w * xc * (y - ybar)).sum(axis=0) / (w * xc * xc).sum(axis=0)
        kept = w > 0
        span = np.where(kept, x[:, None], -np.inf).max(axis=0) - np.where(kept, x[:, None], np.inf).min(axis=0)
        out = slope * span
    return np.where(np.isfinite(out), out, np.nan)


def half_time(fractions, vectors) -> np.ndarray | None:
    """Per column, the fraction of fine-tuning at which a curve (values at `fractions`, 0 … 1) first covers half of
    its change from the first to the last point, interpolated linearly between points; NaN where it does not move.
    None with fewer than 2 points."""
    pts = [(f, v) for f, v in zip(fractions, vectors) if v is not None]
    if len(pts) < 2:
        return None
    f = np.array([p[0] for p in pts], dtype=float)
    v = np.vstack([p[1] for p in pts])
    total = v[-1] - v[0]
    target = v[0] + total / 2
    sign = np.sign(total)
    out = np.full(v.shape[1], np.nan)
    done = sign == 0
    for i in range(1, len(f)):
        reached = ~done & ((v[i] - target) * sign >= 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(v[i] != v[i - 1], (target - v[i - 1]) / (v[i] - v[i - 1]), 0.0)
        out = np.where(reached, f[i - 1] + np.clip(share, 0, 1) * (f[i] - f[i - 1]), out)
        done |= reached
    return out


def weighted_midranks(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per column of a (U, C) array: the weight of the units below each unit plus (the weight of its ties + 1) / 2.
    By sorting each column (O(U log U) per column, not the O(U²) of comparing every pair): the tie group of each
    sorted position is found by carrying its first and last index along the column."""
    a = np.asarray(a, dtype=float)
    w = np.broadcast_to(np.asarray(w, dtype=float), a.shape)
    n = a.shape[0]
    order = np.argsort(a, axis=0, kind="stable")
    a_s, w_s = np.take_along_axis(a, order, axis=0), np.take_along_axis(w, order, axis=0)
    upto = np.cumsum(w_s, axis=0)  # weight of the sorted units up to and including each
    before = upto - w_s
    index = np.arange(n)[:, None]
    starts = np.ones(a.shape, dtype=bool)
    starts[1:] = a_s[1:] != a_s[:-1]
    ends = np.ones(a.shape, dtype=bool)
    ends[:-1] = starts[1:]
    first = np.maximum.accumulate(np.where(starts, index, 0), axis=0)
    last = np.minimum.accumulate(np.where(ends, index, n - 1)[::-1], axis=0)[::-1]
    below = np.take_along_axis(before, first, axis=0)
    ties = np.take_along_axis(upto, last, axis=0) - below
    out = np.empty(a.shape)
    np.put_along_axis(out, order, below + (ties + 1) / 2, axis=0)
    return out


def spearman(x, y, w=None) -> np.ndarray:
    """Per column, Spearman's rank correlation of x and y over units (rows of (U, C) arrays), each unit counted
    w times (mid-ranks of the weighted sample, then the weighted Pearson correlation of the ranks); NaN where
    fewer than 3 units weigh more than 0 or a variable is constant."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    w = np.ones_like(x) if w is None else np.broadcast_to(np.asarray(w, dtype=float), x.shape)
    w = np.where(np.isfinite(x) & np.isfinite(y), w, 0.0)

    rx, ry = weighted_midranks(np.nan_to_num(x), w), weighted_midranks(np.nan_to_num(y), w)
    total = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = (w * rx).sum(0) / total, (w * ry).sum(0) / total
        cov = (w * (rx - mx) * (ry - my)).sum(0)
        rho = cov / np.sqrt((w * (rx - mx) ** 2).sum(0) * (w * (ry - my) ** 2).sum(0))
    return np.where(((w > 0).sum(axis=0) >= 3) & np.isfinite(rho), rho, np.nan)


class _Draws:
    """The resamples of one statistic (or of one unit of it): `resamples` (units, then measurement) and
    `measurement` (items / seeds only), around `point`."""

    def draws(self, which: str = "units") -> np.ndarray:
        """The resamples of an interval: `units` (units, then measurement) or `measurement`."""
        return self.resamples if which == "units" else self.measurement

    def se(self, which: str = "units") -> float:
        """The statistic's standard error under this design (resample_se)."""
        return resample_se(self.draws(which))


class _Resampled:
    """What the resamples of an estimate (or of each of its units) draw, in words."""

    @property
    def resampled_here(self) -> tuple[str, ...]:
        """The resampled unit dimensions in which the statistic has more than one unit."""
        return tuple(d for d in self.resampled if len(self.units.get(d, ())) > 1)

    def describe(self, which: str = "units") -> str:
        """What the interval resamples, in words ('task pairs × checkpoints, then items (paired …)')."""
        cells = "; ".join(MODE_LABELS[m] for m in self.modes)
        units = " × ".join(UNIT_LABELS.get(d, d) for d in self.resampled_here) if which == "units" else ""
        return f"{units}, then {cells}" if units else cells


@dataclasses.dataclass
class Estimate(_Draws, _Resampled):
    """A statistic: its point estimate, its resamples with units resampled (`resamples`, the default interval) and
    with measurement only (`measurement`), the units it ranges over and the cells it read."""

    point: float
    resamples: np.ndarray
    measurement: np.ndarray
    resampled: tuple[str, ...]  # unit dimensions resampled in `resamples`
    units: dict[str, list]  # dim -> the units the statistic ranges over
    used: list[tuple]  # cells read
    missing: list[tuple]  # cells asked for and absent
    modes: list[str]  # how the cells read are resampled (MODE_LABELS keys)
    notes: list[str]

    def ci(self, which: str = "units", confidence: float = CONFIDENCE) -> tuple[float, float]:
        """The interval (stats.interval): `units` (units, then measurement) or `measurement` (items / seeds only)."""
        return self.interval(which, confidence)[:2]

    def interval(self, which: str = "units", confidence: float = CONFIDENCE) -> tuple[float, float, str]:
        """(low, high, how it was formed: '' for the percentile interval, else why not)."""
        if self.modes == ["fixed"] and not (which == "units" and self.resampled_here):
            return math.nan, math.nan, "no measurement CI: no cell carries items, seeds or a standard error"
        return interval(self.draws(which), confidence, self.point)


@dataclasses.dataclass
class UnitEstimate(_Draws):
    """One unit of a quantified statistic ("every checkpoint", "some group"): its label, point and resamples."""

    label: str
    point: float
    resamples: np.ndarray  # units (within the unit) then measurement
    measurement: np.ndarray

    def interval(self, which: str = "units", confidence: float = CONFIDENCE) -> tuple[float, float, str]:
        """This unit's own interval (stats.interval) at `confidence`."""
        return interval(self.draws(which), confidence, self.point)


@dataclasses.dataclass
class UnitsEstimate(_Resampled):
    """A statistic evaluated per unit, for a claim about every unit or some unit (the verdict judges each unit's own
    interval: claims.judge_units). Fields as Estimate, with `per_unit` in place of one point and resamples."""

    per_unit: list[UnitEstimate]
    resampled: tuple[str, ...]
    units: dict[str, list]
    used: list[tuple]
    missing: list[tuple]
    modes: list[str]
    notes: list[str]


def estimate_units(cells: Cells, compute, resample=(), *, exclude=frozenset(), leave: tuple | None = None,
                   measurement: bool = True) -> UnitsEstimate:
    """Evaluate `compute(g, w) -> ([(label, vector, weight)], notes)`, one vector per unit of a quantified claim, as
    `estimate` does (weights 1, then the `resample` dimensions bootstrapped within each unit). A unit whose weight
    at the point is 0 (left out) or whose point is not finite is dropped. Raises Unmeasurable with no unit left."""
    n_cols = cells.n_boot + 1
    view, w = View(cells, exclude), Weights(n_cols, (), cells.seed, leave)

    def kept(terms):
        return {label: np.asarray(vec, dtype=float) for label, vec, weight in terms
                if vec is not None and np.asarray(weight).flat[0] > 0 and np.isfinite(np.asarray(vec)[0])}

    try:
        terms, notes = compute(view, w)
        points = kept(terms)
        if not points:
            raise Unmeasurable("; ".join(notes) or "no unit")
    except Unmeasurable as err:
        err.missing = list(view.missing)
        raise
    resampled = points
    if any(d in resample and len(labels) > 1 for d, labels in w.seen.items()):
        again, _ = compute(View(cells, exclude), Weights(n_cols, resample, cells.seed, leave, w.seen))
        resampled = kept(again)
    used = list(view.used)
    per_unit = [UnitEstimate(str(label), float(vec[0]), resampled[label][1:],
                             vec[1:] if measurement else np.full(cells.n_boot, np.nan))
                for label, vec in points.items()]
    return UnitsEstimate(per_unit, tuple(resample), {d: list(v) for d, v in w.seen.items()}, used,
                         list(view.missing), sorted({cells.mode(k) for k in used}), list(notes))


def estimate(cells: Cells, compute, resample=(), *, exclude=frozenset(), leave: tuple | None = None,
             measurement: bool = True) -> Estimate:
    """Evaluate `compute(g, w) -> (vector, notes)` with unit weights 1 (point and measurement resamples) and with
    the `resample` dimensions bootstrapped (the default interval). `leave` drops one unit from both; `exclude`
    hides cells. Raises Unmeasurable when the cells it needs are missing."""
    n_cols = cells.n_boot + 1
    view, w = View(cells, exclude), Weights(n_cols, (), cells.seed, leave)
    try:
        vec, notes = compute(view, w)
        if vec is None or not np.isfinite(vec[0]):
            raise Unmeasurable("; ".join(notes) or "no value")
    except Unmeasurable as err:
        err.missing = list(view.missing)
        raise
    units_vec = vec
    if any(d in resample and len(labels) > 1 for d, labels in w.seen.items()):
        units_vec, _ = compute(View(cells, exclude), Weights(n_cols, resample, cells.seed, leave, w.seen))
    used = list(view.used)
    return Estimate(float(vec[0]), np.asarray(units_vec[1:], dtype=float),
                    np.asarray(vec[1:], dtype=float) if measurement else np.full(cells.n_boot, np.nan),
                    tuple(resample), {d: list(v) for d, v in w.seen.items()}, used, list(view.missing),
                    sorted({cells.mode(k) for k in used}), list(notes))


# ---------------------------------------------------------------------------------------------------------------
# the study: cells, steps and windows of one source


class Study:
    """What every statistic reads: a profile's standard cells (of one fine-tuning method), the step of each
    checkpoint, and the Springer frames (sensitivity, forgetting) as cells of held-out blocks.

    df: Store.frame(items=True) (paired item resampling) or results.load_paper_results(). `main` takes the step
    recorded in the frame, else `profile.main_step`: one mapping of `main` for every statistic.
    """

    def __init__(self, df: pd.DataFrame | None, profile: Profile, *, sensitivity: pd.DataFrame | None = None,
                 forgetting: pd.DataFrame | None = None, method: str = "full", n_boot: int = N_BOOT, seed: int = 0,
                 dynamics: pd.DataFrame | None = None, probes: pd.DataFrame | None = None,
                 schedule: str = "fixed"):
        self.profile, self.method, self.n_boot, self.seed, self.schedule = profile, method, n_boot, seed, schedule
        if df is None:  # a study of the Springer frames only
            df = pd.DataFrame(columns=["ckpt", "step", "fine_tune", "eval_set", "format", "shots", "performance"])
        self.df = df
        rows = select(df, profile, method, schedule)
        std_col = "std" if "std" in rows else None

        def release_n(row) -> float:
            n = row.get("n", math.nan)
            if pd.notna(n):
                return float(n)
            return float(RELEASE_N.get(row["eval_set"], math.nan)) if row.get("source") == "paper" else math.nan

        self.cells = Cells(rows, ("eval_set", "fine_tune", "ckpt", "format"), value_col="performance",
                           items_col="scores", pair_col="eval_set", std_col=std_col, n_boot=n_boot, seed=seed,
                           binomial_n=release_n)
        self.steps = ladder_steps(rows, profile)
        self.sensitivity_frame = None if sensitivity is None or not len(sensitivity) else \
            sensitivity_frame(sensitivity)
        self.forgetting_frame = None if forgetting is None or not len(forgetting) else \
            _forgetting_frame(forgetting, method, schedule)
        self.dynamics_frame = None if dynamics is None or not len(dynamics) else \
            select(dynamics, profile, method, schedule)
        self.probe_frame = None if probes is None or not len(probes) else probes
        self._blocks: dict[str, Cells] = {}
        self._union: CellsUnion | None = None
        self._fixed: dict[tuple, float | None] = {}

    def fixed_measure(self, kind: str, *key) -> np.ndarray | None:
        """A scalar measure read from the forgetting rows, without resamples, as a vector of n_boot + 1 equal values:
        'heldout' (key: ckpt) the base checkpoint's held-out pre-training loss, 'zero_step' (key: fine_tune, ckpt) a
        fine-tuning's loss before its first update; None where the rows lack it. Read once per key: every resample
        of every leave-one-out asks again."""
        if (kind, *key) not in self._fixed:
            frame, value = self.forgetting_frame, None
            if frame is not None and (kind == "heldout" or "zero_step_loss" in frame):
                if kind == "heldout":
                    rows = frame.loc[frame["ckpt"] == key[0], "base_loss"]
                else:
                    rows = frame.loc[(frame["fine_tune"] == key[0]) & (frame["ckpt"] == key[1]), "zero_step_loss"]
                rows = rows.dropna()
                value = None if rows.empty else float(rows.mean())
            self._fixed[(kind, *key)] = value
        value = self._fixed[(kind, *key)]
        return None if value is None else np.full(self.n_boot + 1, value)

    @property
    def ladder(self) -> list[str]:
        return list(self.profile.ckpts)

    def final_step(self) -> float:
        known = [self.steps[c] for c in self.ladder if np.isfinite(self.steps.get(c, math.nan))]
        return max(known) if known else math.nan

    def _where(self, keep) -> list[str]:
        final = self.final_step()
        eps = 1e-9 * final  # 424000/738020 × 738020 must still count as step 424000
        return [c for c in self.ladder if np.isfinite(self.steps.get(c, math.nan)) and keep(self.steps[c], final, eps)]

    def before(self, fraction: float) -> list[str]:
        """Ladder checkpoints earlier than `fraction` of the final step."""
        return self._where(lambda s, final, eps: s < fraction * final - eps)

    def from_(self, fraction: float) -> list[str]:
        """Ladder checkpoints at or after `fraction` of the final step."""
        return self._where(lambda s, final, eps: s >= fraction * final - eps)

    def until(self, fraction: float) -> list[str]:
        """Ladder checkpoints up to and including `fraction` of the final step."""
        return self._where(lambda s, final, eps: s <= fraction * final + eps)

    def blocks(self, which: str) -> Cells | None:
        """Cells of held-out-loss deltas: 'sensitivity' keyed (scaling, magnitude, ckpt), 'forgetting' keyed
        (fine_tune, ckpt); None without a frame."""
        frame = {"sensitivity": self.sensitivity_frame, "forgetting": self.forgetting_frame}[which]
        if frame is None:
            return None
        if which not in self._blocks:
            keys = ("scaling", "magnitude", "ckpt") if which == "sensitivity" else ("fine_tune", "ckpt")
            self._blocks[which] = Cells(frame, keys, value_col="delta_loss", items_col="block_deltas", pair_col=None,
                                        n_boot=self.n_boot, seed=self.seed, item_mode="blocks")
            for c, s in zip(frame["ckpt"], frame["step"] if "step" in frame else [math.nan] * len(frame)):
                if pd.notna(s) and not np.isfinite(self.steps.get(c, math.nan)):
                    self.steps[c] = float(s)
        return self._blocks[which]

    def fractions(self) -> list[float]:
        """The points along fine-tuning the study has records of: 0 (the base model), those of the dynamics rows,
        and 1 (the fine-tuned model)."""
        cached = self.__dict__.get("_fractions")
        if cached is None:  # asked once per curve and resample: the dynamics rows do not change within a study
            frame = self.dynamics_frame
            inner = sorted(set(frame["ft_fraction"].astype(float))) if frame is not None else []
            cached = self.__dict__["_fractions"] = sorted({0.0, 1.0, *inner})
        return list(cached)

    def cells_for(self, name: str):
        """The cells a statistic reads: 'performance' (records), 'sensitivity' / 'forgetting' (held-out blocks) or
        'union' (all of them and the dynamics and probe rows, keys prefixed: `union`)."""
        if name == "performance":
            return self.cells
        return self.union() if name == "union" else self.blocks(name)

    def union(self) -> CellsUnion:
        """Every bank of the study in one (stats.CellsUnion): 'perf' (records), 'dyn' (records along fine-tuning,
        keyed eval_set, fine_tune, ckpt, format, ft_fraction), 'probe' (task, layer, ckpt), 'sens', 'forget'."""
        if self._union is None:
            banks = {"perf": self.cells, "sens": self.blocks("sensitivity"), "forget": self.blocks("forgetting")}
            if self.dynamics_frame is not None:
                banks["dyn"] = Cells(self.dynamics_frame, ("eval_set", "fine_tune", "ckpt", "format", "ft_fraction"),
                                     value_col="performance", items_col="scores", pair_col="eval_set",
                                     n_boot=self.n_boot, seed=self.seed)
            if self.probe_frame is not None:
                banks["probe"] = Cells(self.probe_frame, ("task", "layer", "ckpt"), value_col="accuracy",
                                       items_col="scores", pair_col="task", n_boot=self.n_boot, seed=self.seed)
            self._union = CellsUnion(banks)
        return self._union

    def estimate(self, compute, resample=(), *, cells: Cells | None = None, **kwargs) -> Estimate:
        """`estimate` on this study's performance cells (or on `cells`)."""
        return estimate(self.cells if cells is None else cells, compute, resample, **kwargs)


def select(df: pd.DataFrame, profile: Profile, method: str, schedule: str = "fixed") -> pd.DataFrame:
    """Standard rows at the profile's shots; with a `method` column, base rows and fine-tuned rows of `method`;
    with a `schedule` column, fine-tuned rows of that fine-tuning schedule ('fixed' epochs or 'converge')."""
    lacking = [c for c in ("ckpt", "fine_tune", "eval_set", "format", "shots", "performance") if c not in df]
    if lacking:
        raise ValueError(f"results frame lacks columns {lacking}; pass results.Store(...).frame(items=True) or "
                         "results.load_paper_results()")
    rows = df[df["shots"] == profile.shots]
    if "variant" in rows:
        rows = rows[rows["variant"] == STANDARD]
    if "method" in rows:
        rows = rows[(rows["fine_tune"] == "base") | (rows["method"] == method)]
    if "schedule" in rows:
        rows = rows[(rows["fine_tune"] == "base") | (rows["schedule"].fillna("fixed") == schedule)]
    return rows


def ladder_steps(rows: pd.DataFrame, profile: Profile) -> dict:
    """Step of each ladder checkpoint: recorded in the frame, else named by its label, else `profile.main_step`
    for `main` (NaN if none)."""
    steps = {}
    for c in profile.ckpts:
        recorded = rows.loc[rows["ckpt"] == c, "step"].dropna() if "step" in rows else pd.Series(dtype=float)
        label_step = ckpt_step(c)
        if len(recorded):
            steps[c] = float(recorded.iloc[0])
        elif label_step is not None:
            steps[c] = float(label_step)
        elif c == "main" and profile.main_step is not None:
            steps[c] = float(profile.main_step)
        else:
            steps[c] = math.nan
    return steps


def sensitivity_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The sensitivity frame in its schema (perturbed rows only); the older pipeline.sensitivity() frame (ckpt,
    sigma, loss, delta_loss: isotropic noise, one seed, no per-block losses) is read as scaling 'isotropic'."""
    if "magnitude" not in frame and "sigma" in frame:
        frame = frame.rename(columns={"sigma": "magnitude"}).assign(scaling="isotropic", seed=0)
    if "delta_loss" not in frame and "block_deltas" in frame:
        frame = frame.assign(delta_loss=[float(np.mean(d)) for d in frame["block_deltas"]])
    lacking = [c for c in SENSITIVITY_COLUMNS if c not in frame]
    if lacking:
        raise ValueError(f"sensitivity frame lacks columns {lacking}; expected one row per (ckpt, scaling, magnitude, "
                         "seed) with ckpt, step, scaling, magnitude, seed, base_loss, loss, delta_loss, block_deltas")
    return frame[frame["magnitude"] > 0]


def _forgetting_frame(frame: pd.DataFrame, method: str, schedule: str = "fixed") -> pd.DataFrame:
    lacking = [c for c in FORGETTING_COLUMNS if c not in frame]
    if lacking:
        raise ValueError(f"forgetting frame lacks columns {lacking}; expected one row per fine-tuned model with ckpt, "
                         "step, fine_tune, method, seed, base_loss, loss, delta_loss, block_deltas")
    if "method" in frame:
        frame = frame[frame["method"] == method]
    if "schedule" in frame:
        frame = frame[frame["schedule"].fillna("fixed") == schedule]
    return frame


# ---------------------------------------------------------------------------------------------------------------
# the statistics (each one definition; `g` a cell accessor, `w` a Weights)


def _unique(items) -> list[tuple]:
    """(item, multiplicity) in first-seen order: a pair listed twice (the release's SciQ) counts twice."""
    counts: dict = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return list(counts.items())


def pair_label(pair) -> str:
    """'xsum←mnli' for (eval_set, fine_tune)."""
    return f"{pair[0]}←{pair[1]}"


def gain_rows(g, w, pairs, ckpts, fmt: str = "default", dim: str = "pair") -> list[tuple]:
    """[(pair, ckpt, fine-tuned − base, base, weight)] for every (pair, checkpoint) with both cells; a row weighs
    its pair's multiplicity × the pair's and the checkpoint's unit weights."""
    rows = []
    unique = _unique(pairs)
    stratum = [pair_label(p) for p, _ in unique]
    for pair, times in unique:
        for c in ckpts:
            base, tuned = g(pair[0], "base", c, fmt), g(pair[0], pair[1], c, fmt)
            if base is not None and tuned is not None:
                weight = times * w(dim, pair_label(pair), stratum) * w("ckpt", c, ckpts)
                rows.append((pair, c, tuned - base, base, weight))
    return rows


def mean_gain(g, w, pairs, ckpts, fmt: str = "default", what: str = "(pair, checkpoint) with both rows",
              relative: bool = False) -> np.ndarray:
    """Mean raw change fine-tuned − base over the (pair, checkpoint) rows (Table 5, Figs. 3b and 7, A2, A3, B7,
    B8); `relative`: the mean of (fine-tuned − base) / base instead, in % (the mean relative change, B6)."""
    rows = gain_rows(g, w, pairs, ckpts, fmt)
    if not relative:
        return wmean([(gain, weight) for _, _, gain, _, weight in rows], what)
    return mean_relative_change(rows, what)


def pair_gains(g, w, pairs, ckpts, fmt: str = "default") -> list[tuple]:
    """[(pair label, the pair's mean gain over `ckpts`, the pair's unit weight)] for every pair with a row: the
    per-pair statistic of "every set" / "some set" readings."""
    labels = [pair_label(p) for p in pairs]
    out = []
    for pair in dict.fromkeys(pairs):
        rows = gain_rows(g, w, [pair], ckpts, fmt)
        if rows:
            out.append((pair_label(pair), wmean([(r[2], r[4]) for r in rows], "row"),
                        w("pair", pair_label(pair), labels)))
    return out


def mean_relative_change(rows, what: str = "(pair, checkpoint) with both rows") -> np.ndarray:
    """Mean over gain rows of (fine-tuned − base) / base, in % (PROTOCOL §6.3); rows whose base point is 0 are
    left out, and a resample that draws a base of 0 leaves that row out of that resample."""
    rows = [r for r in rows if r[3][0] != 0]
    if not rows:
        raise Unmeasurable(f"no {what} (or every base is 0)")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = [(gain / base, weight) for _, _, gain, base, weight in rows]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return 100 * wmean(terms, what, nan_ok=True)


def gain_by_ckpt(g, w, pairs, ckpts, relative: bool = False) -> dict[str, np.ndarray]:
    """Table 5: per checkpoint, the mean raw (or relative, %) change over the group's pairs with both cells there."""
    out = {}
    for c in ckpts:
        rows = gain_rows(g, w, pairs, [c])
        if rows:
            out[c] = (mean_relative_change(rows) if relative else
                      wmean([(gain, weight) for _, _, gain, _, weight in rows], "pair"))
    return out


def trend(study: Study, g, w, values_at, ckpts) -> np.ndarray | None:
    """Fitted change over `ckpts` of `values_at(ckpt)` (a vector or None), each checkpoint weighted by its unit
    weight (leave-one-out drops one)."""
    return fitted_change([study.steps.get(c, math.nan) for c in ckpts], [values_at(c) for c in ckpts],
                         [w("ckpt", c, ckpts) for c in ckpts])


def cell_trends(study: Study, g, w, items, ckpts, kind: str, fmt: str = "default",
                last_minus_first: bool = False) -> tuple[list, list]:
    """Per item of `items` (eval sets for kind 'base', pairs for 'fine_tuned' / 'gain'): its fitted change over
    `ckpts` (or its last − first checkpoint difference) with the item's unit weight; and notes."""
    out, notes = [], []
    labels = [i if isinstance(i, str) else pair_label(i) for i in items]
    dim = "set" if kind == "base" else "pair"
    for item, label in zip(items, labels):
        eval_set, fine_tune = (item, "base") if isinstance(item, str) else item

        def value(c, eval_set=eval_set, fine_tune=fine_tune):
            base = g(eval_set, "base", c, fmt) if kind in ("base", "gain") else None
            tuned = g(eval_set, fine_tune, c, fmt) if kind in ("fine_tuned", "gain") else None
            if kind == "base":
                return base
            if kind == "fine_tuned":
                return tuned
            return tuned - base if tuned is not None and base is not None else None

        change = end_to_end(study, w, value, ckpts) if last_minus_first else trend(study, g, w, value, ckpts)
        if change is None:
            notes.append(f"{label}: fewer than 2 checkpoints with a step")
        else:
            out.append((label, change, w(dim, label, labels)))
    return out, notes


def end_to_end(study: Study, w, values_at, ckpts) -> np.ndarray | None:
    """value at the last checkpoint with one minus at the first (of those not left out): the plain two-point
    reading of a trend."""
    kept = [(c, values_at(c)) for c in ckpts if not (np.isscalar(w("ckpt", c, ckpts)) and w("ckpt", c, ckpts) == 0)]
    kept = [(c, v) for c, v in kept if v is not None and np.isfinite(study.steps.get(c, math.nan))]
    if len(kept) < 2:
        return None
    return kept[-1][1] - kept[0][1]


FORMAT_READINGS = {"mean": np.mean, "max": np.max, "min": np.min}


def format_gap(g, task, model: str, ckpt: str, formats, against: str = "mean") -> np.ndarray | None:
    """Default-format score − the mean (or max / min) score in the other formats, on a task's primary set, for the
    base or the fine-tuned model at one checkpoint; None unless the default and some other format exist."""
    default = g(task.primary, model, ckpt, "default")
    rest = [v for v in (g(task.primary, model, ckpt, f) for f in formats if f != "default") if v is not None]
    if default is None or not rest:
        return None
    return default - FORMAT_READINGS[against](rest, axis=0)


def mean_format_gap(study: Study, g, w, ckpts, *, fine_tuned: bool, minus_base: bool = False,
                    against: str = "mean", tasks=None) -> np.ndarray:
    """Mean over (task, checkpoint) of the fine-tuned (or base) format gap, or of fine-tuned gap − base gap
    (`minus_base`), tasks and checkpoints weighted as units (Fig. 5's table, A4a, B5)."""
    tasks = list(study.profile.tasks if tasks is None else tasks)
    names = [t.name for t in tasks]
    terms = []
    for task in tasks:
        for c in ckpts:
            gap = format_gap(g, task, task.name if fine_tuned else "base", c, study.profile.formats, against)
            if gap is not None and minus_base:
                base = format_gap(g, task, "base", c, study.profile.formats, against)
                gap = None if base is None else gap - base
            if gap is not None:
                terms.append((gap, w("task", task.name, names) * w("ckpt", c, ckpts)))
    return wmean(terms, "(task, checkpoint) with format gaps")


def along_value(g, eval_set: str, model: str, ckpt: str, fmt: str, fraction: float):
    """A model's cell at a fraction of its fine-tuning (records along fine-tuning): its record along fine-tuning,
    else (0) the base or (1) the fine-tuned model's ordinary record; None where there is neither."""
    vec = g("dyn", eval_set, model, ckpt, fmt, fraction)
    if vec is None and fraction == 0.0:
        vec = g("perf", eval_set, "base", ckpt, fmt)
    if vec is None and fraction == 1.0:
        vec = g("perf", eval_set, model, ckpt, fmt)
    return vec


def along_mean(g, eval_sets, model: str, ckpt: str, fmt: str, fraction: float):
    """The mean over `eval_sets` of `along_value` (the sets that have one); None where none has."""
    vals = [v for v in (along_value(g, s, model, ckpt, fmt, fraction) for s in eval_sets) if v is not None]
    return np.mean(vals, axis=0) if vals else None


def along_curve(study: Study, g, task, ckpt: str, what: str) -> list:
    """[vector per fraction of fine-tuning] of one model's curve: 'id' (its primary set), 'ood' (the mean of its
    OOD sets), 'gap' (the primary set's format gap, `format_gap`, on the scores at that fraction)."""
    out = []
    for f in study.fractions():
        if what == "id":
            out.append(along_value(g, task.primary, task.name, ckpt, "default", f))
        elif what == "ood":
            out.append(along_mean(g, task.ood, task.name, ckpt, "default", f))
        else:
            out.append(format_gap(lambda s, model, c, fmt, f=f: along_value(g, s, model, c, fmt, f),
                                  task, task.name, ckpt, study.profile.formats))
    return out


# ---------------------------------------------------------------------------------------------------------------
# the tables the notebooks write (each row a statistic above, with its interval)


def _interval_columns(est: Estimate | None) -> dict:
    if est is None:
        return {"ci_low": math.nan, "ci_high": math.nan, "meas_low": math.nan, "meas_high": math.nan}
    low, high = est.ci("units")
    mlow, mhigh = est.ci("measurement")
    return {"ci_low": low, "ci_high": high, "meas_low": mlow, "meas_high": mhigh}


def _try(study: Study, compute, resample=(), **kwargs) -> Estimate | None:
    try:
        return study.estimate(compute, resample, **kwargs)
    except Unmeasurable:
        return None


def _caption(table: pd.DataFrame, text: str) -> pd.DataFrame:
    table.attrs["caption"] = text
    return table


def count_rows(study: Study, pairs, ckpts, fmt: str = "default", nonzero_base: bool = False) -> int:
    """How many (pair, checkpoint) rows have both cells (a pair listed twice counts twice); `nonzero_base`: only
    rows whose base is not 0 (the rows a mean relative change averages)."""
    count = 0
    for (eval_set, fine_tune), times in _unique(pairs):
        for c in ckpts:
            base = study.cells.vector((eval_set, "base", c, fmt))
            if base is not None and study.cells.vector((eval_set, fine_tune, c, fmt)) is not None and \
                    not (nonzero_base and base[0] == 0):
                count += times
    return count


def change_table(study: Study, pairs, ckpts=None, fmt: str = "default") -> pd.DataFrame:
    """Per (pair, checkpoint) with both cells: base, fine_tuned, raw = fine_tuned − base, ratio = raw / base (NaN
    where base is 0), and the measurement interval of raw; cells lacking are listed in `attrs['missing']`."""
    ckpts = list(study.ladder if ckpts is None else ckpts)
    rows, missing = [], []
    for pair, _ in _unique(pairs):
        for c in ckpts:
            def compute(g, w, pair=pair, c=c):
                rows_ = gain_rows(g, w, [pair], [c], fmt)
                return (rows_[0][2] if rows_ else None), ["no row"]
            view = View(study.cells)
            absent = [name for name, key in (("base", (pair[0], "base", c, fmt)), ("fine_tuned", (*pair, c, fmt)))
                      if view(*key) is None]
            if absent:
                missing.append({"eval_set": pair[0], "fine_tune": pair[1], "ckpt": c, "missing": "+".join(absent)})
                continue
            est = study.estimate(compute)
            base = float(study.cells.vector((pair[0], "base", c, fmt))[0])
            raw = est.point
            rows.append({"eval_set": pair[0], "fine_tune": pair[1], "ckpt": c, "step": study.steps.get(c, math.nan),
                         "base": base, "fine_tuned": base + raw, "raw": raw,
                         "ratio": raw / base if base != 0 else math.nan,
                         "raw_low": est.ci("measurement")[0], "raw_high": est.ci("measurement")[1]})
    table = pd.DataFrame(rows, columns=["eval_set", "fine_tune", "ckpt", "step", "base", "fine_tuned", "raw", "ratio",
                                        "raw_low", "raw_high"])
    table.attrs["missing"] = missing
    return table


def table5(study: Study) -> pd.DataFrame:
    """Table 5: per group ("Learned in PT", "Learned in FT") and checkpoint, the mean raw change over the group's
    pairs (95 % CI resampling pairs, then items), the mean % change, the pairs counted and the slope per 100k steps
    from the previous checkpoint (`main` at the study's one step for it)."""
    rows = []
    for group, pairs in analysis.learned_groups(study.profile).items():
        previous = None
        for c in study.ladder:
            est = _try(study, lambda g, w, c=c: (gain_by_ckpt(g, w, pairs, [c]).get(c), ["no pair"]), ("pair",))
            if est is None:
                continue
            pct = _try(study, lambda g, w, c=c: (gain_by_ckpt(g, w, pairs, [c], relative=True).get(c), []), ("pair",))
            step = study.steps.get(c, math.nan)
            slope = math.nan if previous is None else (est.point - previous[1]) / (step - previous[0]) * 100_000
            rows.append({"group": group, "ckpt": c, "step": step, "raw_change": est.point, **_interval_columns(est),
                         "pct_change": pct.point if pct else math.nan, "n_pairs": count_rows(study, pairs, [c]),
                         "slope_per_100k": slope})
            previous = (step, est.point)
    table = pd.DataFrame(rows, columns=["group", "ckpt", "step", "raw_change", "ci_low", "ci_high", "meas_low",
                                        "meas_high", "pct_change", "n_pairs", "slope_per_100k"])
    return _caption(table, "raw_change: mean fine-tuned − base over the group's pairs at that checkpoint; 95 % CI "
                           "[ci_low, ci_high] resampling the pairs, then items; [meas_low, meas_high] items only")


def mrc_table(study: Study) -> pd.DataFrame:
    """Fig. 6's headline numbers: the mean relative change (%) Class→Gen and Gen→Class over (pair, checkpoint)
    rows, with the 95 % CI resampling pairs × checkpoints, then items (the interval of claim B6)."""
    rows = []
    for direction, pairs in cross_task_groups(study.profile).items():
        est = _try(study, lambda g, w, pairs=pairs: (mean_gain(g, w, pairs, study.ladder, relative=True), []),
                   ("pair", "ckpt"))
        rows.append({"direction": direction, "pairs": ", ".join(pair_label(p) for p in pairs),
                     "n_rows": count_rows(study, pairs, study.ladder, nonzero_base=True),
                     "mrc_pct": math.nan if est is None else est.point, **_interval_columns(est)})
    table = pd.DataFrame(rows, columns=["direction", "pairs", "n_rows", "mrc_pct", "ci_low", "ci_high", "meas_low",
                                        "meas_high"])
    return _caption(table, "mean relative change in % of base; 95 % CI resampling pairs × checkpoints, then items "
                           "(claim B6's interval); [meas_low, meas_high] items only")


def cross_task_groups(profile: Profile) -> dict[str, list]:
    """Fig. 6's two directions: {'Class→Gen': pairs, 'Gen→Class': pairs}."""
    return {"Class→Gen": analysis.class_to_gen_pairs(profile), "Gen→Class": analysis.gen_to_class_pairs(profile)}


def forgetting_groups(profile: Profile) -> dict[str, list]:
    """Claim A3's groups, every group of pairs where a model is scored off its own task or domain: Class→Gen,
    Gen→Class (Fig. 6) and each OOD group of Fig. 7 ("OOD NLI", …)."""
    groups = cross_task_groups(profile)
    groups.update({f"OOD {k}": v for k, v in analysis.ood_groups(profile).items()})
    return groups


def ood_table(study: Study) -> pd.DataFrame:
    """Fig. 7 (B): per OOD task group, the mean raw change over its (set, checkpoint) rows with the 95 % CI
    resampling sets × checkpoints, then items (the interval of claim B7)."""
    rows = []
    for group, pairs in analysis.ood_groups(study.profile).items():
        est = _try(study, lambda g, w, pairs=pairs: (mean_gain(g, w, pairs, study.ladder), []), ("pair", "ckpt"))
        rows.append({"group": group, "pairs": ", ".join(pair_label(p) for p in pairs),
                     "n": count_rows(study, pairs, study.ladder),
                     "raw_change": math.nan if est is None else est.point, **_interval_columns(est)})
    table = pd.DataFrame(rows, columns=["group", "pairs", "n", "raw_change", "ci_low", "ci_high", "meas_low",
                                        "meas_high"])
    return _caption(table, "mean fine-tuned − base over the group's (OOD set, checkpoint) rows; 95 % CI resampling "
                           "sets × checkpoints, then items (claim B7's interval); [meas_low, meas_high] items only")


def format_gap_table(study: Study) -> pd.DataFrame:
    """Fig. 5 in numbers: per task's primary set and model (base, fine-tuned), the mean score over the ladder in each
    format and the format gap (default − mean of the other formats, per checkpoint, then averaged) with its 95 % CI
    resampling checkpoints, then items; a last row per model averages the tasks (claim A4a's ingredients)."""
    profile, rows = study.profile, []
    for label, tasks in [*[(t.primary, [t]) for t in profile.tasks], ("all tasks", list(profile.tasks))]:
        for kind in ("base", "fine_tuned"):
            row = {"eval_set": label, "fine_tune": ", ".join(t.name for t in tasks), "model": kind}
            for fmt in profile.formats:
                terms = [study.cells.vector((t.primary, t.name if kind == "fine_tuned" else "base", c, fmt))
                         for t in tasks for c in study.ladder]
                terms = [v[0] for v in terms if v is not None]
                row[fmt] = float(np.mean(terms)) if terms else math.nan
            est = _try(study, lambda g, w, tasks=tasks, kind=kind: (
                mean_format_gap(study, g, w, study.ladder, fine_tuned=kind == "fine_tuned", tasks=tasks), []),
                ("task", "ckpt"))
            row.update(default_minus_others=math.nan if est is None else est.point, **_interval_columns(est))
            rows.append(row)
    table = pd.DataFrame(rows)
    return _caption(table, "format columns: mean score over the ladder; default_minus_others: mean over checkpoints "
                           "(and tasks) of default − mean(other formats), 95 % CI resampling tasks × checkpoints, "
                           "then items; [meas_low, meas_high] items only")


def block_table(study: Study, which: str) -> pd.DataFrame:
    """Per cell of held-out-loss deltas ('sensitivity': scaling, magnitude, ckpt; 'forgetting': fine_tune, ckpt):
    the mean Δ loss (nats/token) with its 95 % CI over seeds, then held-out blocks — the interval claims S1 / S3
    resample."""
    cells = study.blocks(which)
    columns = list(cells.key_cols if cells is not None else
                   (("scaling", "magnitude", "ckpt") if which == "sensitivity" else ("fine_tune", "ckpt")))
    rows = []
    if cells is not None:
        for key in cells.cells:
            vec = cells.vector(key)
            low, high = percentile_ci(vec[1:])
            idx = cells.cells[key]
            row = dict(zip(columns, key))
            row.update(step=study.steps.get(key[-1], math.nan), delta_loss=float(vec[0]), ci_low=low, ci_high=high,
                       n_seeds=len(idx), n_blocks=len(cells._items(idx[0])) if cells._items(idx[0]) is not None else 0)
            if "base_loss" in cells.rows:
                row["base_loss"] = float(cells.rows.loc[idx, "base_loss"].mean())
            if "n_tokens" in cells.rows:
                row["n_tokens"] = cells.rows.loc[idx[0], "n_tokens"]
            rows.append(row)
    table = pd.DataFrame(rows, columns=[*columns, "step", "delta_loss", "ci_low", "ci_high", "n_seeds", "n_blocks",
                                        "base_loss", "n_tokens"])
    return _caption(table, "Δ held-out loss (nats/token); 95 % CI resampling seeds, then held-out blocks")


def best_probe_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The linear probes' best layer per (checkpoint, task): the row of highest held-out accuracy (the first such
    layer on a tie), in the rows' order of checkpoints and tasks."""
    return rows.loc[rows.groupby(["ckpt", "task"], sort=False)["accuracy"].idxmax()]


def sensitivity_table(frame: pd.DataFrame, profile: Profile, *, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """The probe's rows (pipeline.sensitivity) as block_table(…, 'sensitivity'): per (scaling, magnitude, ckpt),
    the mean Δ held-out loss over noise seeds with its 95 % CI (seeds, then blocks: claim S1's cells)."""
    return block_table(Study(None, profile, sensitivity=frame, n_boot=n_boot, seed=seed), "sensitivity")
