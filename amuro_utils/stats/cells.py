"""Cells, the measurement layer: the rows of one source grouped into cells, each a vector [point, resamples…] drawn
from what the records hold (paired items, seeds, a released std); views and unions of them; a cell's interval; and
the estimators that evaluate a statistic on them under each weighting of its units (`estimate`, `estimate_units`)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from .resampling import (
    CONFIDENCE,
    N_BOOT,
    Estimate,
    UnitEstimate,
    UnitsEstimate,
    Unmeasurable,
    Weights,
    _hash,
    interval,
)


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


def _evaluate(cells: Cells, compute, resample, exclude, leave, accept):
    """`compute(g, w)` with unit weights 1, its result checked by `accept(result, notes)` (which raises Unmeasurable,
    given the missing cells), then again with the `resample` dimensions bootstrapped where one of them has more than
    one unit (else None): (view, weights, accepted, result with the units resampled or None, notes)."""
    n_cols = cells.n_boot + 1
    view, w = View(cells, exclude), Weights(n_cols, (), cells.seed, leave)
    try:
        result, notes = compute(view, w)
        accepted = accept(result, notes)
    except Unmeasurable as err:
        err.missing = list(view.missing)
        raise
    again = None
    if any(d in resample and len(labels) > 1 for d, labels in w.seen.items()):
        again, _ = compute(View(cells, exclude), Weights(n_cols, resample, cells.seed, leave, w.seen))
    return view, w, accepted, again, notes


def estimate_units(cells: Cells, compute, resample=(), *, exclude=frozenset(), leave: tuple | None = None,
                   measurement: bool = True) -> UnitsEstimate:
    """Evaluate `compute(g, w) -> ([(label, vector, weight)], notes)`, one vector per unit of a quantified claim, as
    `estimate` does (weights 1, then the `resample` dimensions bootstrapped within each unit). A unit whose weight
    at the point is 0 (left out) or whose point is not finite is dropped. Raises Unmeasurable with no unit left."""
    def kept(terms):
        return {label: np.asarray(vec, dtype=float) for label, vec, weight in terms
                if vec is not None and np.asarray(weight).flat[0] > 0 and np.isfinite(np.asarray(vec)[0])}

    def accept(terms, notes):
        points = kept(terms)
        if not points:
            raise Unmeasurable("; ".join(notes) or "no unit")
        return points

    view, w, points, again, notes = _evaluate(cells, compute, resample, exclude, leave, accept)
    resampled = points if again is None else kept(again)
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
    def accept(vec, notes):
        if vec is None or not np.isfinite(vec[0]):
            raise Unmeasurable("; ".join(notes) or "no value")
        return vec

    view, w, vec, again, notes = _evaluate(cells, compute, resample, exclude, leave, accept)
    units_vec = vec if again is None else again
    used = list(view.used)
    return Estimate(float(vec[0]), np.asarray(units_vec[1:], dtype=float),
                    np.asarray(vec[1:], dtype=float) if measurement else np.full(cells.n_boot, np.nan),
                    tuple(resample), {d: list(v) for d, v in w.seen.items()}, used, list(view.missing),
                    sorted({cells.mode(k) for k in used}), list(notes))
