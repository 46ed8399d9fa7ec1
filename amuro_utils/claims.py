"""Every claim of Amuro & Char (Sun & Dredze) and of Springer et al. 2025 as a computed verdict: the scorecard.

One function per claim (ids of ../shared/CLAIMS.md: A1–A4 the abstract's findings, B1–B8 the statements behind
Figs. 2–7, Table 5 and Fig. 8, S1–S3 Springer et al.). Each returns one or more parts, each a statistic with a
95 % CI, the direction the paper states and a verdict:

- *supported*: the CI lies on the paper's side of the claim's threshold (0 unless stated), or inside ±margin for a
  "flat / no change" claim;
- *contradicted*: the CI lies on the other side of the threshold, or wholly outside ±margin;
- *inconclusive*: the CI straddles the threshold or a margin (or no CI can be formed);
- *not measurable*: the cells the statistic needs are missing; the missing cells are named.

What is resampled (column `resampled`), per cell, best available first:
- per-item scores in the records (`Store.frame(items=True)`): a paired bootstrap over items — every cell on one
  evaluation set uses the same resampled item indices in a resample (items are aligned by position; records of
  one set with different n are resampled separately and the note says so); with several training seeds for one
  cell, seeds are resampled first, then items;
- a released cell with a bootstrap std (all_perf_table.csv) or a run frame without items: N(performance, std²);
- a released cell without std (official_eval_table.csv): N(p, p(1−p)/n), n = the validation size (RELEASE_N);
- otherwise the cell is not resampled and a statistic resting only on such cells has no CI.
Every aggregate (group means, mean relative change, trend, min/max over checkpoints) is recomputed inside each of
N_BOOT resamples; the CI is the 2.5–97.5 percentile of those. These CIs measure evaluation-sample (and seed)
noise for the models at hand; they do not resample checkpoints, task pairs or pre-training runs.

Trends over checkpoints use one statistic throughout, the *fitted change*: the ordinary least-squares slope of
the score on log10(step), times the log10 span of the checkpoints used, i.e. the rise the fitted line implies
from the first to the last checkpoint, in score units. It uses every checkpoint (not only the ends), and the log
step matches the ladders (OLMo-1B: 1k, 18k, then 342k–738k; the tiny ladder 10–160), where most change happens
early. "Flat" claims are made falsifiable with an equivalence margin: FLAT_MARGIN in score units (RELATIVE_MARGIN
for relative changes); flat = the CI of the largest |fitted change| (or of the change) lies within the margin.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
import zlib
from collections.abc import Callable

import numpy as np
import pandas as pd

from . import analysis, stages
from .profiles import SPRINGER_BENCHMARKS, Profile, ckpt_step
from .results import STANDARD

N_BOOT = 2000
CONFIDENCE = 0.95
FLAT_MARGIN = 0.02  # accuracy / ROUGE-L F1 points (as fractions): |change| ≤ 0.02 counts as "flat" / "no gain"
RELATIVE_MARGIN = 5.0  # percent of the base score: |mean relative change| ≤ 5 % counts as "no change" (B6)
# The paper's landmarks on the OLMo-1B ladder, as fractions of pre-training (final step 738,020), so that any
# ladder has them: B1 "improvements stop past ~step 342,000", B4 "increasing until ~step 424,000".
PLATEAU_FRACTION = 342_000 / 738_020
PEAK_FRACTION = 424_000 / 738_020
SPRINGER_DROP = 0.02  # "over 2 % worse", read as 2 accuracy points (absolute)
# official_eval_table.csv has no std: validation sizes (PROTOCOL §2.2) give the binomial standard error.
RELEASE_N = {"arc_easy": 570, "arc_challenge": 299, "boolq": 3270, "hellaswag": 10042, "openbookqa": 500,
             "sciq_mc": 1000}
MOSTLY_CONSTANT = 0.5  # a claim whose cells are more than half constant predictors says so
MAX_LISTED = 12  # missing cells named in a note before "… and N more"

SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_MEASURABLE = "supported", "contradicted", "inconclusive", "not measurable"
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_MEASURABLE)
SCORECARD_COLUMNS = ("id", "claim", "where", "statistic", "value", "ci_low", "ci_high", "direction", "verdict",
                     "n_cells", "constant_cells", "resampled", "defect", "seed_spread", "missing", "note")
# Which notebook ends with which claims' verdicts: the stage registry's (amuro_utils.stages).
NOTEBOOK_CLAIMS = {stage.notebook: stage.claims for stage in stages.STAGES}
_MODE_LABELS = {
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


# ---------------------------------------------------------------------------------------------------------------
# verdicts


def verdict(value: float, low: float, high: float, direction: str, threshold: float = 0.0,
            margin: float | None = None) -> str:
    """The verdict rule: '>'/'<' compare the CI with `threshold`; '≈' asks the CI to lie within ±margin."""
    if value is None or not np.isfinite(value):
        return NOT_MEASURABLE
    if not (np.isfinite(low) and np.isfinite(high)):
        return INCONCLUSIVE
    if direction == ">":
        return SUPPORTED if low > threshold else CONTRADICTED if high < threshold else INCONCLUSIVE
    if direction == "<":
        return SUPPORTED if high < threshold else CONTRADICTED if low > threshold else INCONCLUSIVE
    if direction == "≈":
        if margin is None:
            raise ValueError("direction '≈' needs an equivalence margin")
        if -margin <= low and high <= margin:
            return SUPPORTED
        return CONTRADICTED if low > margin or high < -margin else INCONCLUSIVE
    raise ValueError(f"direction must be '>', '<' or '≈', got {direction!r}")


def _direction_text(direction: str, threshold: float, margin: float | None, unit: str = "") -> str:
    if direction == "≈":
        return f"within ±{margin:g}{unit}"
    return f"{direction} {threshold:g}{unit}"


# ---------------------------------------------------------------------------------------------------------------
# cells and their resamples


def _hash(*parts) -> int:
    return zlib.crc32("\x1f".join(map(str, parts)).encode("utf-8"))


class _Bank:
    """Rows of one source, grouped into cells, each cell a vector [point estimate, N_BOOT resampled values].

    key_cols name a cell; pair_col groups the rows whose items are aligned (None = all rows share items);
    value_col is the point estimate without items, std_col its standard error, items_col per-item values.
    """

    def __init__(self, rows: pd.DataFrame, key_cols, *, value_col: str, items_col: str | None, pair_col,
                 std_col: str | None = None, n_boot: int = N_BOOT, seed: int = 0, item_mode: str = "items",
                 binomial_n: Callable[[pd.Series], float] | None = None):
        self.rows = rows.reset_index(drop=True)
        self.key_cols = tuple(key_cols)
        self.value_col, self.items_col, self.pair_col, self.std_col = value_col, items_col, pair_col, std_col
        self.n_boot, self.seed, self.item_mode, self.binomial_n = n_boot, seed, item_mode, binomial_n
        self.cells: dict[tuple, list[int]] = {}
        for i, key in enumerate(zip(*(self.rows[c] for c in self.key_cols))):
            self.cells.setdefault(tuple(key), []).append(i)
        n = len(self.rows)
        self._sources = self.rows["source"].tolist() if "source" in self.rows else [None] * n
        self._constants = self.rows["constant"].tolist() if "constant" in self.rows else [None] * n
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
        value = self.rows.at[i, self.items_col]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        arr = np.asarray(value, dtype=float)
        return arr if arr.ndim == 1 and len(arr) > 0 else None

    def _fill_items_group(self, group) -> None:
        """Paired bootstrap of every row with items in one pairing group: shared item indices per resample."""
        members = [i for i in range(len(self.rows))
                   if (self.pair_col is None or self.rows.at[i, self.pair_col] == group) and self._items(i) is not None]
        by_items: dict[tuple, list[int]] = {}
        for i in members:
            n = len(self._items(i))
            refs = self.rows.at[i, "references"] if "references" in self.rows else None
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
            self._fill_items_group(None if self.pair_col is None else self.rows.at[i, self.pair_col])
            return self._row_vec[i]
        point = float(self.rows.at[i, self.value_col])
        std = float(self.rows.at[i, self.std_col]) if self.std_col and self.std_col in self.rows else math.nan
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
        return tuple(self.rows.at[i, c] for c in self.key_cols)

    def _seed_of(self, i: int):
        return self.rows.at[i, "seed"] if "seed" in self.rows else None

    def _describe(self, i: int) -> str:
        return ", ".join(f"{c}={self.rows.at[i, c]}" for c in self.key_cols)

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
        """How a cell is resampled (a key of _MODE_LABELS)."""
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


class _View:
    """A claim's window onto a bank: records the cells it used and the ones it lacked; can hide defect cells."""

    def __init__(self, bank: _Bank, exclude=frozenset()):
        self.bank, self.exclude = bank, exclude
        self.used: dict[tuple, None] = {}
        self.missing: dict[tuple, None] = {}

    def __call__(self, *key) -> np.ndarray | None:
        key = tuple(key)
        if key in self.exclude:
            return None
        vec = self.bank.vector(key)
        if vec is None:
            self.missing[key] = None
        else:
            self.used[key] = None
        return vec


def _cell_name(key: tuple) -> str:
    """'xsum←mnli at step342000: no fine-tuned row' style names of performance cells."""
    eval_set, fine_tune, ckpt, fmt = key
    what = "base" if fine_tune == "base" else "fine-tuned"
    pair = eval_set if fine_tune == "base" else f"{eval_set}←{fine_tune}"
    return f"{pair} at {ckpt}{'' if fmt == 'default' else f' ({fmt})'}: no {what} row"


# ---------------------------------------------------------------------------------------------------------------
# statistics over cells (each value a vector [point, resamples…])


class Unmeasurable(Exception):
    """Raised by a statistic whose cells are missing; the message says what is lacking."""


def _mean(vectors, what: str) -> np.ndarray:
    vectors = [v for v in vectors if v is not None]
    if not vectors:
        raise Unmeasurable(f"no {what}")
    return np.mean(vectors, axis=0)


def fitted_change(steps, vectors) -> np.ndarray | None:
    """OLS slope of score on log10(step) × the log10 span of the steps: the fitted rise first → last checkpoint."""
    pts = [(math.log10(s), v) for s, v in zip(steps, vectors) if v is not None and s and np.isfinite(s) and s > 0]
    if len({x for x, _ in pts}) < 2:
        return None
    x = np.array([p[0] for p in pts])
    y = np.vstack([p[1] for p in pts])
    xc = x - x.mean()
    return (xc @ (y - y.mean(axis=0))) / (xc @ xc) * (x.max() - x.min())  # centred: equal scores give exactly 0


@dataclasses.dataclass
class _Ctx:
    """What a claim function sees: the profile, the bank of performance cells, the ladder's steps, other frames."""

    profile: Profile
    bank: _Bank
    steps: dict
    sensitivity: pd.DataFrame | None
    forgetting: pd.DataFrame | None
    method: str
    n_boot: int
    seed: int

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


@dataclasses.dataclass
class _Part:
    """One verdict row: what is measured, the paper's direction, and how to compute it from a view."""

    id: str
    claim: str
    where: str
    statistic: str
    direction: str
    compute: Callable  # view -> (vector, [notes])
    threshold: float = 0.0
    margin: float | None = None
    unit: str = ""
    bank: _Bank | None = None  # None = the performance bank
    names: Callable = _cell_name  # how a missing cell of this part's bank is named
    unmeasurable: str = ""  # set when the part cannot be computed at all (no frame, no profile field)


def _trend(ctx: _Ctx, g, pairs_or_sets, ckpts, kind: str, fmt: str = "default") -> tuple[list, list]:
    """Fitted change per item of `pairs_or_sets` over `ckpts`: kind 'base' | 'fine_tuned' | 'gain'."""
    out, notes = [], []
    for item in pairs_or_sets:
        eval_set, fine_tune = item if isinstance(item, tuple) else (item, "base")
        values = []
        for c in ckpts:
            base = g(eval_set, "base", c, fmt) if kind in ("base", "gain") else None
            tuned = g(eval_set, fine_tune, c, fmt) if kind in ("fine_tuned", "gain") else None
            values.append(base if kind == "base" else tuned if kind == "fine_tuned"
                          else (tuned - base if tuned is not None and base is not None else None))
        change = fitted_change([ctx.steps.get(c, math.nan) for c in ckpts], values)
        label = eval_set if kind == "base" else f"{eval_set}←{fine_tune}"
        if change is None:
            notes.append(f"{label}: fewer than 2 checkpoints with a step")
        else:
            out.append((label, change))
    return out, notes


def _gain_rows(g, pairs, ckpts, fmt: str = "default"):
    """[(pair, ckpt, fine-tuned − base vector, base vector)] for every (pair, checkpoint) with both cells."""
    rows = []
    for eval_set, fine_tune in pairs:
        for c in ckpts:
            base, tuned = g(eval_set, "base", c, fmt), g(eval_set, fine_tune, c, fmt)
            if base is not None and tuned is not None:
                rows.append(((eval_set, fine_tune), c, tuned - base, base))
    return rows


def _group_gain_by_ckpt(g, pairs, ckpts) -> dict[str, np.ndarray]:
    """Table 5: per checkpoint, the mean raw change over the group's pairs (pairs listed twice count twice)."""
    by_ckpt: dict[str, list] = {}
    for _, c, gain, _ in _gain_rows(g, pairs, ckpts):
        by_ckpt.setdefault(c, []).append(gain)
    return {c: np.mean(v, axis=0) for c, v in by_ckpt.items()}


def _require_window(ctx: _Ctx, ckpts: list, where: str, fraction: float) -> None:
    """Unmeasurable when the ladder has no checkpoint in a window of pre-training (e.g. a 2-checkpoint ladder)."""
    if not ckpts:
        raise Unmeasurable(f"no checkpoint of the ladder {ctx.ladder} is {where} {fraction:.0%} of pre-training "
                           f"(step {fraction * ctx.final_step():,.0f})")


def _fmt(v: float) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:+.4g}"


def _labelled(items) -> str:
    return ", ".join(f"{label} {_fmt(vec[0])}" for label, vec in items)


# ---------------------------------------------------------------------------------------------------------------
# the claims: Amuro & Char, abstract


def claim_a1(ctx: _Ctx) -> list[_Part]:
    """A1 (abstract (i); §5, Fig. 3): pre-training improves the model latently — the fine-tuned score rises with
    pre-training on the "learned in fine-tuning" sets while their base score stays flat.

    A1a: mean over the "Learned in FT" pairs (analysis.learned_groups) of the fine-tuned score's fitted change
    over the ladder, > 0. A1b: the largest |fitted change| of the base score over those pairs' sets, < FLAT_MARGIN
    (the same statistic as B1c).
    """
    pairs = analysis.learned_groups(ctx.profile)[analysis.GROUP_FT]
    sets = list(dict.fromkeys(e for e, _ in pairs))

    def rise(g):
        changes, notes = _trend(ctx, g, pairs, ctx.ladder, "fine_tuned")
        return _mean([v for _, v in changes], "fine-tuned trend"), notes + [f"per pair: {_labelled(changes)}"]

    def flat(g):
        changes, notes = _trend(ctx, g, sets, ctx.ladder, "base")
        if not changes:
            raise Unmeasurable("no base trend")
        return np.max(np.abs([v for _, v in changes]), axis=0), notes + [f"per set: {_labelled(changes)}"]

    return [
        _Part("A1a", "fine-tuned score rises with pre-training (Learned-in-FT sets)", "abstract (i); §5, Fig. 3",
              "mean fitted change of the fine-tuned score over the ladder", ">", rise),
        _Part("A1b", "… while the base score of those sets stays flat", "abstract (i); §5, Fig. 3",
              "max |fitted change| of the base score over the sets", "<", flat, threshold=FLAT_MARGIN),
    ]


def claim_a2(ctx: _Ctx) -> list[_Part]:
    """A2 (abstract (ii); §5, Fig. 4, Table 5): sets the base model cannot do gain much more from fine-tuning than
    sets it already does.

    Mean raw change (fine-tuned − base) over the "Learned in FT" (pair, checkpoint) rows minus the same mean over
    the "Learned in PT" rows (Table 5's pairs; SciQ counted twice as in the release), > 0.
    """
    groups = analysis.learned_groups(ctx.profile)

    def diff(g):
        ft = _mean([r[2] for r in _gain_rows(g, groups[analysis.GROUP_FT], ctx.ladder)], "Learned-in-FT pair")
        pt = _mean([r[2] for r in _gain_rows(g, groups[analysis.GROUP_PT], ctx.ladder)], "Learned-in-PT pair")
        return ft - pt, [f"Learned in FT {_fmt(ft[0])}, Learned in PT {_fmt(pt[0])}"]

    return [_Part("A2", "fine-tuning gains more on sets not learned in pre-training", "abstract (ii); §5, Table 5",
                  "mean gain (Learned in FT) − mean gain (Learned in PT)", ">", diff)]


def _forgetting_groups(ctx: _Ctx) -> dict[str, list]:
    groups = {"Class→Gen": analysis.class_to_gen_pairs(ctx.profile),
              "Gen→Class": analysis.gen_to_class_pairs(ctx.profile)}
    groups.update({f"OOD {k}": v for k, v in analysis.ood_groups(ctx.profile).items()})
    return groups


def claim_a3(ctx: _Ctx) -> list[_Part]:
    """A3 (abstract (iii); §6.2–6.3, Figs. 6–7): fine-tuning can forget — performance on a task or domain not seen
    in fine-tuning drops.

    The smallest, over the groups Class→Gen, Gen→Class (Fig. 6) and each OOD group (Fig. 7), of the group's mean
    raw change (fine-tuned − base) over its (pair, checkpoint) rows, < 0 ("some unseen task or domain drops").
    """
    groups = _forgetting_groups(ctx)

    def lowest(g):
        means = []
        for name, pairs in groups.items():
            rows = _gain_rows(g, pairs, ctx.ladder)
            if rows:
                means.append((name, np.mean([r[2] for r in rows], axis=0)))
        if not means:
            raise Unmeasurable("no cross-task or OOD pair")
        worst = min(means, key=lambda m: m[1][0])
        return np.min([m[1] for m in means], axis=0), [f"lowest: {worst[0]}; group means: {_labelled(means)}"]

    return [_Part("A3", "fine-tuning forgets: some unseen task or domain drops", "abstract (iii); §6.2–6.3, Figs. 6–7",
                  "min over groups of the mean raw change", "<", lowest)]


def _format_gaps(ctx: _Ctx, g, fine_tuned: bool, ckpts) -> dict:
    """{(task, ckpt): default − mean(other formats)} on each task's primary set, fine-tuned or base model."""
    others = [f for f in ctx.profile.formats if f != "default"]
    gaps = {}
    for task in ctx.profile.tasks:
        model = task.name if fine_tuned else "base"
        for c in ckpts:
            default = g(task.primary, model, c, "default")
            rest = [v for v in (g(task.primary, model, c, f) for f in others) if v is not None]
            if default is not None and rest:
                gaps[(task.name, c)] = default - np.mean(rest, axis=0)
    return gaps


def claim_a4(ctx: _Ctx) -> list[_Part]:
    """A4 (abstract (iv); §6.1, Fig. 5): the fine-tuned model is highly sensitive to the prompt format; more
    pre-training reduces that sensitivity.

    Format gap = score in the default (training) format − mean score in the other formats, on each task's
    primary set. A4a: mean over (task, checkpoint) of gap(fine-tuned) − gap(base), > 0. A4b: mean over tasks of
    the fitted change of the fine-tuned gap over the ladder, < 0.
    """

    def sensitive(g):
        tuned, base = _format_gaps(ctx, g, True, ctx.ladder), _format_gaps(ctx, g, False, ctx.ladder)
        both = [tuned[k] - base[k] for k in tuned if k in base]
        return _mean(both, "(task, checkpoint) with fine-tuned and base gaps"), \
            [f"{len(both)} (task, checkpoint) cells; scores mix accuracy and ROUGE-L"]

    def falls(g):
        gaps = _format_gaps(ctx, g, True, ctx.ladder)
        changes = []
        for task in ctx.profile.tasks:
            change = fitted_change([ctx.steps.get(c, math.nan) for c in ctx.ladder], [gaps.get((task.name, c))
                                                                                      for c in ctx.ladder])
            if change is not None:
                changes.append((task.primary, change))
        return _mean([v for _, v in changes], "fine-tuned format-gap trend"), [f"per task: {_labelled(changes)}"]

    return [
        _Part("A4a", "fine-tuned models are more format-sensitive than their base", "abstract (iv); §6.1, Fig. 5",
              "mean format gap (fine-tuned − base)", ">", sensitive),
        _Part("A4b", "that sensitivity falls with more pre-training", "abstract (iv); §6.1, Fig. 5",
              "mean fitted change of the fine-tuned format gap", "<", falls),
    ]


# ---------------------------------------------------------------------------------------------------------------
# the claims: Amuro & Char, the figures


def claim_b1(ctx: _Ctx) -> list[_Part]:
    """B1 (§4, Fig. 2): base scores fall into two groups — benchmarks that improve with pre-training and level off
    (past ~step 342,000: HellaSwag, ARC-E/C, SciQ, OpenBookQA), and sets that stay flat throughout (MNLI, PAWS,
    XSum, SocialIQa QG, BoolQ).

    B1a: mean over the "Learned in PT" sets of the base score's fitted change over the ladder, > 0.
    B1b: their largest |fitted change| over the checkpoints from PLATEAU_FRACTION (342k/738k) of pre-training on,
    < FLAT_MARGIN. B1c: the largest |fitted change| of the "Learned in FT" sets' base score, < FLAT_MARGIN.
    """
    groups = analysis.learned_groups(ctx.profile)
    pt = list(dict.fromkeys(e for e, _ in groups[analysis.GROUP_PT]))
    ft = list(dict.fromkeys(e for e, _ in groups[analysis.GROUP_FT]))
    late = ctx.from_(PLATEAU_FRACTION)

    def rise(g):
        changes, notes = _trend(ctx, g, pt, ctx.ladder, "base")
        return _mean([v for _, v in changes], "base trend"), notes + [f"per set: {_labelled(changes)}"]

    def flat(sets, ckpts):
        def compute(g):
            changes, notes = _trend(ctx, g, sets, ckpts, "base")
            if not changes:
                raise Unmeasurable(f"no set with 2 checkpoints among {ckpts}")
            return np.max(np.abs([v for _, v in changes]), axis=0), \
                notes + [f"checkpoints {', '.join(ckpts)}; per set: {_labelled(changes)}"]
        return compute

    return [
        _Part("B1a", "benchmarks learned in pre-training improve with it", "§4, Fig. 2",
              "mean fitted change of the base score (Learned-in-PT sets)", ">", rise),
        _Part("B1b", "… and level off past ~step 342,000", "§4, Fig. 2",
              "max |fitted change| of their base score from 46 % of pre-training on", "<", flat(pt, late),
              threshold=FLAT_MARGIN),
        _Part("B1c", "the fine-tuning tasks' base scores stay flat", "§4, Fig. 2",
              "max |fitted change| of the base score (Learned-in-FT sets)", "<", flat(ft, ctx.ladder),
              threshold=FLAT_MARGIN),
    ]


def claim_b2(ctx: _Ctx) -> list[_Part]:
    """B2 (§5, Fig. 3b, Table 5): datasets learned in pre-training do not improve with fine-tuning at any checkpoint.

    The largest, over checkpoints, of the "Learned in PT" group's mean raw change (Table 5 row), < FLAT_MARGIN.
    """
    pairs = analysis.learned_groups(ctx.profile)[analysis.GROUP_PT]

    def most(g):
        by_ckpt = _group_gain_by_ckpt(g, pairs, ctx.ladder)
        if not by_ckpt:
            raise Unmeasurable("no Learned-in-PT pair")
        return np.max(list(by_ckpt.values()), axis=0), [f"per checkpoint: {_labelled(by_ckpt.items())}"]

    return [_Part("B2", "sets learned in pre-training gain nothing from fine-tuning at any checkpoint",
                  "§5, Fig. 3b, Table 5", "max over checkpoints of the Learned-in-PT mean gain", "<", most,
                  threshold=FLAT_MARGIN)]


def claim_b3(ctx: _Ctx) -> list[_Part]:
    """B3 (§5, Fig. 4, Table 5): datasets not learned in pre-training improve with fine-tuning at every checkpoint.

    The smallest, over checkpoints, of the "Learned in FT" group's mean raw change (Table 5 row), > 0.
    """
    pairs = analysis.learned_groups(ctx.profile)[analysis.GROUP_FT]

    def least(g):
        by_ckpt = _group_gain_by_ckpt(g, pairs, ctx.ladder)
        if not by_ckpt:
            raise Unmeasurable("no Learned-in-FT pair")
        return np.min(list(by_ckpt.values()), axis=0), [f"per checkpoint: {_labelled(by_ckpt.items())}"]

    return [_Part("B3", "sets not learned in pre-training gain from fine-tuning at every checkpoint",
                  "§5, Fig. 4, Table 5", "min over checkpoints of the Learned-in-FT mean gain", ">", least)]


def claim_b4(ctx: _Ctx) -> list[_Part]:
    """B4 (§5): the benefit of fine-tuning keeps increasing until ~step 424,000, then levels off; earlier
    checkpoints obtain larger gains than later ones.

    On the "Learned in FT" group's mean raw change per checkpoint (Table 5 row): B4a its fitted change over the
    checkpoints up to PEAK_FRACTION (424k/738k) of pre-training, > 0; B4b its |fitted change| from there on,
    < FLAT_MARGIN; B4c mean gain at the checkpoints before PLATEAU_FRACTION (1k, 18k on OLMo-1B) minus the mean
    gain at the later ones, > 0 (read in raw change, as Table 5 reports it).
    """
    pairs = analysis.learned_groups(ctx.profile)[analysis.GROUP_FT]
    rising, after = ctx.until(PEAK_FRACTION), ctx.from_(PEAK_FRACTION)
    early, late = ctx.before(PLATEAU_FRACTION), ctx.from_(PLATEAU_FRACTION)

    def trend(ckpts, absolute):
        def compute(g):
            by_ckpt = _group_gain_by_ckpt(g, pairs, ckpts)
            change = fitted_change([ctx.steps[c] for c in by_ckpt], list(by_ckpt.values()))
            if change is None:
                raise Unmeasurable(f"fewer than 2 of {ckpts} with Learned-in-FT gains")
            return (np.abs(change) if absolute else change), [f"checkpoints {', '.join(by_ckpt)}"]
        return compute

    def early_minus_late(g):
        _require_window(ctx, early, "before", PLATEAU_FRACTION)
        e = _mean(list(_group_gain_by_ckpt(g, pairs, early).values()), f"gain at early checkpoints {early}")
        lt = _mean(list(_group_gain_by_ckpt(g, pairs, late).values()), f"gain at late checkpoints {late}")
        return e - lt, [f"early {', '.join(early)}: {_fmt(e[0])}; late: {_fmt(lt[0])}"]

    return [
        _Part("B4a", "the gain from fine-tuning increases until ~step 424,000", "§5, Table 5",
              "fitted change of the Learned-in-FT mean gain up to 57 % of pre-training", ">", trend(rising, False)),
        _Part("B4b", "… and levels off after it", "§5, Table 5",
              "|fitted change| of the Learned-in-FT mean gain from 57 % of pre-training on", "<", trend(after, True),
              threshold=FLAT_MARGIN),
        _Part("B4c", "earlier checkpoints obtain larger gains than later ones", "§5",
              "mean gain (checkpoints < 46 %) − mean gain (≥ 46 %)", ">", early_minus_late),
    ]


def claim_b5(ctx: _Ctx) -> list[_Part]:
    """B5 (§6.1, Fig. 5): early in pre-training, matching the fine-tuning format matters; fine-tuned later
    checkpoints are more flexible across formats.

    Fine-tuned format gap as in A4. B5a: its mean over tasks and the checkpoints before PLATEAU_FRACTION, > 0.
    B5b: its mean at the later checkpoints minus its mean at the early ones, < 0.
    """
    early, late = ctx.before(PLATEAU_FRACTION), ctx.from_(PLATEAU_FRACTION)

    def early_gap(g):
        _require_window(ctx, early, "before", PLATEAU_FRACTION)
        gaps = _format_gaps(ctx, g, True, early)
        return _mean(list(gaps.values()), f"fine-tuned format gap at {early}"), [f"checkpoints {', '.join(early)}"]

    def late_minus_early(g):
        _require_window(ctx, early, "before", PLATEAU_FRACTION)
        e = _mean(list(_format_gaps(ctx, g, True, early).values()), f"fine-tuned format gap at {early}")
        lt = _mean(list(_format_gaps(ctx, g, True, late).values()), f"fine-tuned format gap at {late}")
        return lt - e, [f"early {_fmt(e[0])}, late {_fmt(lt[0])}"]

    return [
        _Part("B5a", "early checkpoints: fine-tuned models need the training format", "§6.1, Fig. 5",
              "mean fine-tuned format gap before 46 % of pre-training", ">", early_gap),
        _Part("B5b", "later checkpoints: fine-tuned models are more flexible across formats", "§6.1, Fig. 5",
              "fine-tuned format gap, late − early", "<", late_minus_early),
    ]


def claim_b6(ctx: _Ctx) -> list[_Part]:
    """B6 (§6.2, Fig. 6): fine-tuned on classification and evaluated on generation, performance falls by 61.4 % on
    average; fine-tuned on generation and evaluated on classification, +0.3 %, not significantly different from 0.

    Mean relative change (PROTOCOL §6.3): the plain mean over (pair, checkpoint) rows, all checkpoints incl. main,
    of (fine-tuned − base) / base, in %. B6a Class→Gen, < 0. B6b Gen→Class, within ±RELATIVE_MARGIN %.
    """

    def mrc(pairs):
        def compute(g):
            rows = [r for r in _gain_rows(g, pairs, ctx.ladder) if r[3][0] != 0]
            if not rows:
                raise Unmeasurable("no (pair, checkpoint) with base and fine-tuned rows")
            # A resample can draw a base of 0 (a near-zero base, e.g. ROUGE-L of a tiny model): its ratio is
            # undefined, and that row is left out of that resample's mean.
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios = np.array([gain / base for _, _, gain, base in rows], dtype=float)
            ratios[~np.isfinite(ratios)] = np.nan
            undefined = int(np.isnan(ratios[:, 1:]).any(axis=0).sum()) if ratios.ndim == 2 else 0
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                value = 100 * np.nanmean(ratios, axis=0)
            note = [f"{len(rows)} rows"] + ([f"{undefined} resamples drew a base of 0 for some row (left out there)"]
                                            if undefined else [])
            return value, note
        return compute

    return [
        _Part("B6a", "classification→generation transfer hurts (−61.4 %)", "§6.2, Fig. 6",
              "mean relative change Class→Gen (%)", "<", mrc(analysis.class_to_gen_pairs(ctx.profile)), unit=" %"),
        _Part("B6b", "generation→classification transfer does not (+0.3 %, n.s.)", "§6.2, Fig. 6",
              "mean relative change Gen→Class (%)", "≈", mrc(analysis.gen_to_class_pairs(ctx.profile)),
              margin=RELATIVE_MARGIN, unit=" %"),
    ]


def claim_b7(ctx: _Ctx) -> list[_Part]:
    """B7 (§6.3, Fig. 7, Fig. 10): fine-tuning on MNLI boosts every out-of-domain NLI set; fine-tuning on PAWS
    hurts the other paraphrase sets — both learning and forgetting happen.

    Mean raw change (fine-tuned − base) over the group's (OOD set, checkpoint) rows (analysis.ood_groups):
    B7a NLI, > 0; B7b Paraphrase Detection, < 0.
    """
    groups = analysis.ood_groups(ctx.profile)

    def group_mean(name):
        def compute(g):
            if name not in groups:
                raise Unmeasurable(f"profile {ctx.profile.name!r} has no {name} task with OOD sets")
            rows = _gain_rows(g, groups[name], ctx.ladder)
            per_set = {}
            for (e, f), _, gain, _ in rows:
                per_set.setdefault(f"{e}←{f}", []).append(gain)
            return _mean([r[2] for r in rows], f"{name} OOD row"), \
                [f"per set: {_labelled((k, np.mean(v, axis=0)) for k, v in per_set.items())}"]
        return compute

    return [
        _Part("B7a", "fine-tuning on NLI boosts the out-of-domain NLI sets", "§6.3, Fig. 7",
              "mean raw change, OOD NLI group", ">", group_mean("NLI")),
        _Part("B7b", "fine-tuning on paraphrase hurts the other paraphrase sets", "§6.3, Fig. 7",
              "mean raw change, OOD Paraphrase group", "<", group_mean("Paraphrase Detection")),
    ]


def claim_b8(ctx: _Ctx) -> list[_Part]:
    """B8 (§3, Fig. 8 (appendix)): instruction tuning improves instruction following (LLMBar) and leaves the
    benchmarks learned in pre-training about unchanged.

    Raw change instruction-tuned − base. B8a: mean over (LLMBar split, checkpoint), > 0. B8b: mean over
    ("Learned in PT" benchmark, checkpoint), each benchmark once, within ±FLAT_MARGIN.
    """
    it = ctx.profile.instruction
    benchmarks = list(dict.fromkeys(e for e, _ in analysis.learned_groups(ctx.profile)[analysis.GROUP_PT]))

    def mean_gain(sets):
        def compute(g):
            rows = _gain_rows(g, [(s, it.name) for s in sets], ctx.ladder)
            return _mean([r[2] for r in rows], "(set, checkpoint) with both rows"), [f"{len(rows)} rows"]
        return compute

    return [
        _Part("B8a", "instruction tuning improves instruction following (LLMBar)", "§3, Fig. 8",
              "mean gain on LLMBar", ">", mean_gain(it.llmbar)),
        _Part("B8b", "… and leaves the benchmarks learned in pre-training about unchanged", "§3, Fig. 8",
              "mean gain on the Learned-in-PT benchmarks", "≈", mean_gain(benchmarks), margin=FLAT_MARGIN),
    ]


# ---------------------------------------------------------------------------------------------------------------
# the claims: Springer et al. 2025


def _block_bank(ctx: _Ctx, frame: pd.DataFrame, key_cols) -> _Bank:
    return _Bank(frame, key_cols, value_col="delta_loss", items_col="block_deltas", pair_col=None,
                 n_boot=ctx.n_boot, seed=ctx.seed, item_mode="blocks")


def _frame_steps(frame: pd.DataFrame, ctx: _Ctx) -> dict:
    steps = dict(ctx.steps)
    if "step" in frame:
        for c, s in zip(frame["ckpt"], frame["step"]):
            if pd.notna(s):
                steps[c] = float(s)
    return steps


SENSITIVITY_COLUMNS = ("ckpt", "scaling", "magnitude", "delta_loss")
FORGETTING_COLUMNS = ("ckpt", "fine_tune", "delta_loss")


def _sensitivity_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The sensitivity frame in its schema; the older pipeline.sensitivity() frame (ckpt, sigma, loss,
    delta_loss: isotropic noise, one seed, no per-block losses) is read as scaling 'isotropic', seed 0."""
    if "magnitude" not in frame and "sigma" in frame:
        frame = frame.rename(columns={"sigma": "magnitude"}).assign(scaling="isotropic", seed=0)
    lacking = [c for c in SENSITIVITY_COLUMNS if c not in frame]
    if lacking:
        raise ValueError(f"sensitivity frame lacks columns {lacking}; expected one row per (ckpt, scaling, magnitude, "
                         "seed) with ckpt, step, scaling, magnitude, seed, base_loss, loss, delta_loss, block_deltas")
    return frame[frame["magnitude"] > 0]


def claim_s1(ctx: _Ctx) -> list[_Part]:
    """S1 (Springer et al. 2025 §3, progressive sensitivity): the same Gaussian perturbation of the parameters
    raises the pre-training (held-out) loss more at later checkpoints.

    Per noise scaling: the mean over noise magnitudes of the fitted change, over the ladder, of Δ held-out loss
    (perturbed − unperturbed, nats/token), > 0. Resampled: noise seeds, then held-out blocks (paired: the same
    blocks at every checkpoint).
    """
    if ctx.sensitivity is None or not len(ctx.sensitivity):
        return [_Part("S1", "parameter-perturbation sensitivity grows with pre-training", "Springer et al. §3",
                      "mean fitted change of Δ held-out loss", ">", None, unit=" nats",
                      unmeasurable="no sensitivity frame: run pipeline.sensitivity (notebook pretrain_probe); "
                                   "the authors released none")]
    frame = _sensitivity_frame(ctx.sensitivity)
    bank = _block_bank(ctx, frame, ("scaling", "magnitude", "ckpt"))
    steps = _frame_steps(frame, ctx)
    parts = []
    for scaling in sorted(frame["scaling"].unique()):
        magnitudes = sorted(frame.loc[frame["scaling"] == scaling, "magnitude"].unique())

        def compute(g, scaling=scaling, magnitudes=magnitudes):
            changes = []
            for m in magnitudes:
                change = fitted_change([steps.get(c, math.nan) for c in ctx.ladder],
                                       [g(scaling, m, c) for c in ctx.ladder])
                if change is not None:
                    changes.append((f"{m:g}", change))
            return _mean([v for _, v in changes], "magnitude with 2 checkpoints"), \
                [f"per magnitude: {_labelled(changes)}"]

        parts.append(_Part("S1" if len(frame["scaling"].unique()) == 1 else f"S1-{scaling}",
                           f"parameter-perturbation sensitivity grows with pre-training ({scaling} noise)",
                           "Springer et al. §3", "mean over magnitudes of the fitted change of Δ held-out loss",
                           ">", compute, unit=" nats", bank=bank,
                           names=lambda k: f"{k[0]} noise {k[1]:g} at {k[2]}: no row"))
    return parts


def claim_s2(ctx: _Ctx) -> list[_Part]:
    """S2 (Springer et al. 2025 abstract, §2, Fig. 1, catastrophic overtraining): after instruction tuning, the
    final OLMo-1B checkpoint (3T tokens) ends worse on standard benchmarks than its 2.3T-token checkpoint.

    Mean over ARC-E, ARC-C, PIQA and HellaSwag (those the source evaluated) of instruction-tuned score at the
    profile's `overtraining_pair` later checkpoint minus at the earlier one, < 0; the note says whether it is
    also below −SPRINGER_DROP ("over 2 % worse", read as points).
    """
    part = _Part("S2", "the later checkpoint ends worse after instruction tuning", "Springer et al. abstract, Fig. 1",
                 "mean instruction-tuned score, late − early checkpoint", "<", None)
    pair = ctx.profile.overtraining_pair
    if pair is None:
        part.unmeasurable = f"profile {ctx.profile.name!r} defines no overtraining_pair"
        return [part]
    early, late = pair
    it = ctx.profile.instruction.name
    have = set(ctx.bank.rows["eval_set"]) if len(ctx.bank.rows) else set()
    sets = [b for b in SPRINGER_BENCHMARKS if b in have]
    absent = [b for b in SPRINGER_BENCHMARKS if b not in have]

    def compute(g):
        cells = {b: (g(b, it, early, "default"), g(b, it, late, "default")) for b in sets}
        diffs = [(b, after - before) for b, (before, after) in cells.items() if before is not None and after is not None]
        lacking = f"; not evaluated by this source: {', '.join(absent)}" if absent else ""
        mean = _mean([d for _, d in diffs], f"benchmark with {it} rows at both {early} and {late}{lacking}")
        notes = [f"{early} → {late}: {_labelled(diffs)}",
                 f"below −{SPRINGER_DROP:g} (Springer's 'over 2 % worse'): "
                 f"{'yes' if np.percentile(mean[1:], 97.5) < -SPRINGER_DROP else 'not shown'}"]
        if absent:
            notes.append(f"not evaluated by this source: {', '.join(absent)}")
        return mean, notes

    part.compute = compute
    return [part]


def claim_s3(ctx: _Ctx) -> list[_Part]:
    """S3 (Springer et al. 2025 §3): fine-tuning at a fixed learning rate raises the pre-training-text loss more
    for later checkpoints (forgetting grows with pre-training).

    Mean over fine-tuning tasks of the fitted change, over the ladder, of Δ held-out loss (fine-tuned − its base,
    nats/token), > 0; models of `method` only. Resampled: training seeds, then held-out blocks (paired).
    """
    part = _Part("S3", "forgetting of pre-training text grows with pre-training", "Springer et al. §3",
                 "mean fitted change of Δ held-out loss after fine-tuning", ">", None, unit=" nats")
    if ctx.forgetting is None or not len(ctx.forgetting):
        part.unmeasurable = ("no forgetting frame (held-out LM loss of each fine-tuned model minus its base); the "
                             "authors released none")
        return [part]
    frame = ctx.forgetting
    lacking = [c for c in FORGETTING_COLUMNS if c not in frame]
    if lacking:
        raise ValueError(f"forgetting frame lacks columns {lacking}; expected one row per fine-tuned model with ckpt, "
                         "step, fine_tune, method, seed, base_loss, loss, delta_loss, block_deltas")
    if "method" in frame:
        frame = frame[frame["method"] == ctx.method]
    steps = _frame_steps(frame, ctx)
    part.bank = _block_bank(ctx, frame, ("fine_tune", "ckpt"))
    part.names = lambda k: f"{k[0]} at {k[1]}: no forgetting row"
    tasks = sorted(frame["fine_tune"].unique())

    def compute(g):
        changes = []
        for task in tasks:
            change = fitted_change([steps.get(c, math.nan) for c in ctx.ladder], [g(task, c) for c in ctx.ladder])
            if change is not None:
                changes.append((task, change))
        return _mean([v for _, v in changes], f"fine-tuning task with 2 checkpoints ({ctx.method})"), \
            [f"per task: {_labelled(changes)}"]

    part.compute = compute
    return [part]


CLAIMS: dict[str, Callable[[_Ctx], list[_Part]]] = {
    "A1": claim_a1, "A2": claim_a2, "A3": claim_a3, "A4": claim_a4,
    "B1": claim_b1, "B2": claim_b2, "B3": claim_b3, "B4": claim_b4, "B5": claim_b5, "B6": claim_b6,
    "B7": claim_b7, "B8": claim_b8,
    "S1": claim_s1, "S2": claim_s2, "S3": claim_s3,
}


# ---------------------------------------------------------------------------------------------------------------
# known defects of the release (README "Known defects", PROTOCOL §2.2, §4.5, §6.3)


@dataclasses.dataclass(frozen=True)
class Defect:
    """A known defect: which performance cells it taints, given the profile and the cell's sources."""

    name: str  # short, for the `defect` column
    description: str
    applies: Callable  # (key, profile, sources) -> bool


DEFECTS = (
    Defect("paraphrase OOD gold all 'no'",
           "QQP/STS-B on the unlabelled SetFit test splits: every gold label is 'no' (PROTOCOL §2.2); the release and "
           "any run of the eval sets qqp/stsb (their labelled GLUE entries are qqp_glue/stsb_glue)",
           lambda k, p, src: k[0] in ("qqp", "stsb")),
    Defect("LLMBar gold leak",
           "the LLMBar prompt contains the gold answer (PROTOCOL §4.5); the release, and runs with llmbar_gold_leak",
           lambda k, p, src: k[0].startswith("llmbar_") and (p.llmbar_gold_leak or "paper" in src)),
    Defect("MNLI step1000 fine-tuned ≈ base",
           "release: the MNLI model fine-tuned from step1000 scores as its base on MNLI (PROTOCOL §6.3)",
           lambda k, p, src: "paper" in src and k[1] == "mnli" and k[2] == "step1000" and k[0].startswith("mnli_")),
    Defect("XSum step424000 base outlier",
           "release: base XSum at step424000 (.019) is an outlier that drives ratio statistics (PROTOCOL §6.3)",
           lambda k, p, src: "paper" in src and k[:3] == ("xsum", "base", "step424000")),
)


# ---------------------------------------------------------------------------------------------------------------
# running claims


def _select(df: pd.DataFrame, profile: Profile, method: str) -> pd.DataFrame:
    """Standard rows at the profile's shots; with a `method` column, base rows and fine-tuned rows of `method`."""
    lacking = [c for c in ("ckpt", "fine_tune", "eval_set", "format", "shots", "performance") if c not in df]
    if lacking:
        raise ValueError(f"results frame lacks columns {lacking}; pass results.Store(...).frame(items=True) or "
                         "results.load_paper_results()")
    rows = df[df["shots"] == profile.shots]
    if "variant" in rows:
        rows = rows[rows["variant"] == STANDARD]
    if "method" in rows:
        rows = rows[(rows["fine_tune"] == "base") | (rows["method"] == method)]
    return rows


def _steps(rows: pd.DataFrame, profile: Profile) -> dict:
    steps = {}
    for c in profile.ckpts:
        recorded = rows.loc[rows["ckpt"] == c, "step"].dropna() if "step" in rows else pd.Series(dtype=float)
        label_step = ckpt_step(c)
        steps[c] = float(recorded.iloc[0]) if len(recorded) else (math.nan if label_step is None else float(label_step))
    return steps


def _context(df, profile, sensitivity, forgetting, method, n_boot, seed) -> _Ctx:
    rows = _select(df, profile, method)
    std_col = "std" if "std" in rows else None

    def release_n(row) -> float:
        n = row.get("n", math.nan)
        if pd.notna(n):
            return float(n)
        return float(RELEASE_N.get(row["eval_set"], math.nan)) if row.get("source") == "paper" else math.nan

    bank = _Bank(rows, ("eval_set", "fine_tune", "ckpt", "format"), value_col="performance", items_col="scores",
                 pair_col="eval_set", std_col=std_col, n_boot=n_boot, seed=seed, binomial_n=release_n)
    return _Ctx(profile, bank, _steps(rows, profile), sensitivity, forgetting, method, n_boot, seed)


def _listed(names: list[str]) -> str:
    head = names[:MAX_LISTED]
    more = len(names) - len(head)
    return "; ".join(head) + (f"; … and {more} more" if more > 0 else "")


def _missing_names(ctx: _Ctx, part: _Part, keys: list) -> list[str]:
    """Missing cells by name; a performance pair missing at every ladder checkpoint is named once."""
    if part.bank is not None:
        return [part.names(k) for k in keys]
    by_pair: dict[tuple, list] = {}
    for k in keys:
        by_pair.setdefault((k[0], k[1], k[3]), []).append(k)
    names = []
    for (eval_set, fine_tune, fmt), ks in by_pair.items():
        if len(ks) > 1 and {k[2] for k in ks} >= set(ctx.ladder):
            what = "base" if fine_tune == "base" else "fine-tuned"
            pair = eval_set if fine_tune == "base" else f"{eval_set}←{fine_tune}"
            names.append(f"{pair}{'' if fmt == 'default' else f' ({fmt})'}: no {what} row at any checkpoint")
        else:
            names += [part.names(k) for k in ks]
    return names


def _evaluate_part(ctx: _Ctx, part: _Part) -> dict:
    row = {"id": part.id, "claim": part.claim, "where": part.where,
           "statistic": part.statistic + (" (nats/token)" if part.unit == " nats" else ""),
           "direction": _direction_text(part.direction, part.threshold, part.margin, part.unit),
        "value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "verdict": NOT_MEASURABLE, "n_cells": 0,
        "constant_cells": math.nan, "resampled": "", "defect": "", "seed_spread": math.nan, "missing": "", "note": ""}
    if part.unmeasurable:
        row["missing"] = part.unmeasurable
        return row
    bank = part.bank or ctx.bank
    view = _View(bank)
    try:
        vec, notes = part.compute(view)
    except Unmeasurable as err:
        vec, notes = None, [str(err)]
    row["missing"] = _listed(_missing_names(ctx, part, list(view.missing)))
    used = list(view.used)
    row["n_cells"] = len(used)
    if vec is None:
        row["note"] = "; ".join(notes)
        return row
    modes = sorted({bank.mode(k) for k in used})
    row["resampled"] = "; ".join(_MODE_LABELS[m] for m in modes)
    value = float(vec[0])
    if modes == ["fixed"]:
        low = high = math.nan
        notes.append("no CI: no cell carries items, seeds or a standard error")
    else:
        low, high = (float(x) for x in np.nanpercentile(vec[1:], [50 * (1 - CONFIDENCE), 50 * (1 + CONFIDENCE)]))
        if "fixed" in modes:
            notes.append("some cells are not resampled: the CI is too narrow")
    row.update(value=value, ci_low=low, ci_high=high,
               verdict=verdict(value, low, high, part.direction, part.threshold, part.margin))
    if low == high == value:
        notes.append("zero-width CI: the compared cells agree on every resampled item")
    if bank is ctx.bank:
        flags = [bank.constant(k) for k in used]
        if any(f is not None for f in flags):
            row["constant_cells"] = sum(bool(f) for f in flags)
            if row["constant_cells"] > MOSTLY_CONSTANT * len(used):
                notes.append(f"{row['constant_cells']} of {len(used)} cells are constant predictors: the statistic "
                             "measures label bias more than the task")
        unpaired = sorted({k[0] for k in used if k[0] in bank.unpaired})
        if unpaired:
            notes.append("unpaired (records of one set with different n): " + ", ".join(
                f"{s} n={bank.unpaired[s]}" for s in unpaired))
        row["defect"], defect_notes = _defects(ctx, part, used, row["verdict"])
        notes += defect_notes
    spreads = [s for s in (bank.seed_sd(k) for k in used) if np.isfinite(s)]
    if spreads:
        row["seed_spread"] = float(np.mean(spreads))
        notes.append(f"{len(spreads)} cells with several seeds (mean seed sd {np.mean(spreads):.4g})")
    row["note"] = "; ".join(n for n in notes if n)
    return row


def _defects(ctx: _Ctx, part: _Part, used: list, verdict_with: str) -> tuple[str, list[str]]:
    """Names of the known defects that decide this verdict (it changes without their cells), and notes."""
    deciding, notes = [], []
    for defect in DEFECTS:
        tainted = frozenset(k for k in used if defect.applies(k, ctx.profile, ctx.bank.sources(k)))
        if not tainted:
            continue
        try:
            vec, _ = part.compute(_View(ctx.bank, exclude=tainted))
        except Unmeasurable:
            vec = None
        if vec is None:
            without = NOT_MEASURABLE
        else:
            low, high = np.nanpercentile(vec[1:], [50 * (1 - CONFIDENCE), 50 * (1 + CONFIDENCE)])
            without = verdict(float(vec[0]), float(low), float(high), part.direction, part.threshold, part.margin)
        if without != verdict_with:
            deciding.append(defect.name)
            notes.append(f"without the {len(tainted)} '{defect.name}' cells: {without}")
        else:
            notes.append(f"'{defect.name}' touches {len(tainted)} cells, verdict unchanged without them")
    return "; ".join(deciding), notes


def evaluate_all(df: pd.DataFrame, profile: Profile, *, sensitivity: pd.DataFrame | None = None,
                 forgetting: pd.DataFrame | None = None, method: str = "full", ids=None, n_boot: int = N_BOOT,
                 seed: int = 0) -> pd.DataFrame:
    """The scorecard: one row per claim part (columns SCORECARD_COLUMNS), claims `ids` (default all 15).

    df: a results frame (Store.frame(items=True) for paired item resampling, or load_paper_results()).
    sensitivity / forgetting: the Springer frames for S1 / S3 (None → not measurable). method: which fine-tuning
    method's rows count where the frame has a `method` column.
    """
    ids = list(CLAIMS) if ids is None else list(ids)
    unknown = [i for i in ids if i not in CLAIMS]
    if unknown:
        raise ValueError(f"unknown claim ids {unknown}; known: {list(CLAIMS)}")
    ctx = _context(df, profile, sensitivity, forgetting, method, n_boot, seed)
    rows = [_evaluate_part(ctx, part) for cid in ids for part in CLAIMS[cid](ctx)]
    table = pd.DataFrame(rows, columns=list(SCORECARD_COLUMNS))
    table.attrs.update(_source_summary(df, ctx))
    return table


def _source_summary(df: pd.DataFrame, ctx: _Ctx) -> dict:
    rows = ctx.bank.rows
    classification = rows[rows["metric"].map(analysis.metric_kind).isin(["classification", "multiple_choice"])] \
        if "metric" in rows else rows.iloc[0:0]
    known = classification["constant"].map(lambda v: isinstance(v, (bool, np.bool_))) \
        if "constant" in classification else pd.Series(False, index=classification.index)
    return {"sources": sorted(map(str, df["source"].dropna().unique())) if "source" in df else [],
            "rows": len(rows), "items": bool("scores" in rows and rows["scores"].notna().any()),
            "classification_rows": len(classification), "constant_known": int(known.sum()),
            "constant_rows": int(classification.loc[known, "constant"].astype(bool).sum()) if known.any() else 0,
            "method": ctx.method, "profile": ctx.profile.name}


# ---------------------------------------------------------------------------------------------------------------
# writing the scorecard


def _header(table: pd.DataFrame, profile: Profile) -> str:
    a = table.attrs
    sources = a.get("sources", [])
    if sources == ["paper"]:
        source = ("the authors' released tables (data/paper_results/: all_perf_table.csv with a bootstrap std per "
                  "cell, official_eval_table.csv without one) — no per-item scores")
    else:
        source = (f"this project's records (sources {', '.join(sources) or 'n/a'}), "
                  + ("with per-item scores" if a.get("items") else "without per-item scores (load with "
                                                                   "Store.frame(items=True) for paired resampling)"))
    counts = table["verdict"].value_counts()
    constant = (f"{a['constant_rows']} of {a['constant_known']} classification / multiple-choice records are constant "
                "predictors (one label for every item)" if a.get("constant_known") else
                "not known (no predictions in the source)")
    return "\n".join([
        f"# Claims scorecard — profile `{profile.name}`", "",
        f"Source: {source}; {a.get('rows', 0)} standard {profile.shots}-shot rows"
        + (f"; fine-tuning method `{a.get('method')}`" if a.get("method") else "") + ".",
        *([f"Profile note: {profile.figure_note}."] if profile.figure_note else []),
        f"Constant predictors: {constant}.", "",
        "Verdicts: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS) + ".", ""])


def _definitions() -> str:
    lines = ["## Definitions", "",
             f"Verdict rule (95 % CI, {N_BOOT} resamples): *supported* — the CI lies on the paper's side of the "
             "threshold (or inside ±margin for a flat claim); *contradicted* — on the other side (or wholly outside "
             "the margin); *inconclusive* — the CI straddles it; *not measurable* — the cells are missing (named).",
             f"Margins: FLAT_MARGIN = {FLAT_MARGIN} (score units), RELATIVE_MARGIN = {RELATIVE_MARGIN} % of base. "
             f"Landmarks as fractions of pre-training: PLATEAU_FRACTION = {PLATEAU_FRACTION:.4f} (342k/738k), "
             f"PEAK_FRACTION = {PEAK_FRACTION:.4f} (424k/738k).", "",
             "Fitted change = OLS slope of the score on log10(step) × the log10 span of the checkpoints used.", "",
             "Resampled: " + "; ".join(f"*{v}*" for v in _MODE_LABELS.values()) + " — see amuro_utils/claims.py.",
             "A `defect` names a known defect whose cells decide the verdict (it changes when they are left out):", ""]
    lines += [f"- *{d.name}*: {d.description}" for d in DEFECTS]
    lines += ["", "Claims (ids of CLAIMS.md):", ""]
    for cid, fn in CLAIMS.items():
        doc = " ".join(line.strip() for line in (fn.__doc__ or "").strip().splitlines() if line.strip())
        lines.append(f"- **{cid}** — {doc}")
    return "\n".join(lines) + "\n"


def scorecard_markdown(table: pd.DataFrame) -> str:
    """The scorecard table as GitHub markdown (value and CI rounded; long notes kept)."""
    def num(v):
        return "" if v is None or not np.isfinite(v) else f"{v:.4g}"

    def count(v):
        return "" if v is None or (isinstance(v, float) and not np.isfinite(v)) else str(int(v))

    head = ("| id | claim | where | statistic | value | 95 % CI | paper says | verdict | cells (constant) | resampled "
            "| defect deciding | missing / note |\n|" + "---|" * 12)
    lines = [head]
    for r in table.itertuples(index=False):
        ci = f"[{num(r.ci_low)}, {num(r.ci_high)}]" if np.isfinite(r.ci_low) else ""
        cells = f"{r.n_cells}" + (f" ({count(r.constant_cells)})" if count(r.constant_cells) else "")
        extra = "; ".join(x for x in (r.missing and f"missing: {r.missing}", r.note) if x)
        cols = [r.id, r.claim, r.where, r.statistic, num(r.value), ci, r.direction, f"**{r.verdict}**", cells,
                r.resampled, r.defect, extra]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(lines) + "\n"


def write_scorecard(table: pd.DataFrame, profile: Profile, stem: str = "claims") -> list:
    """figures/<profile>/<stem>.csv (every column) and <stem>.md (source header, table, definitions)."""
    from . import plots

    paths = plots.write_table(table, profile, stem)
    paths[1].write_text(_header(table, profile) + "\n" + scorecard_markdown(table) + "\n" + _definitions())
    return paths


def notebook_verdicts(notebook: str, df: pd.DataFrame, profile: Profile, *, sensitivity=None, forgetting=None,
                      method: str = "full", n_boot: int = N_BOOT) -> str:
    """Markdown for a notebook's last cell: the verdicts of its own claims (NOTEBOOK_CLAIMS), computed."""
    if notebook not in NOTEBOOK_CLAIMS:
        raise ValueError(f"unknown notebook {notebook!r}; known: {sorted(NOTEBOOK_CLAIMS)}")
    table = evaluate_all(df, profile, sensitivity=sensitivity, forgetting=forgetting, method=method,
                         ids=NOTEBOOK_CLAIMS[notebook], n_boot=n_boot)
    header = _header(table, profile).replace("# Claims scorecard", f"### Claims of this notebook ({notebook})")
    return header + "\n" + scorecard_markdown(table) + \
        "\nDefinitions: `amuro_utils/claims.py` and the scorecard `figures/<profile>/claims.md`.\n"
