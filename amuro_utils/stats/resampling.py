"""Resampling: a statistic's interval from its resamples (`interval`), the record's own bootstrap (`bootstrap_ci`, the
paper's Performance), unit weights (`Weights`: bootstrap counts or a unit left out), what the estimators return
(`Estimate`, `UnitsEstimate`), and the weighted building blocks (`wmean`,
`fitted_change`, `half_time`, `spearman`)."""

from __future__ import annotations

import dataclasses
import math
import zlib
from statistics import NormalDist

import numpy as np

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

