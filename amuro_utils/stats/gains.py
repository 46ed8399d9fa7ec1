"""The statistics, each one definition (`g` a cell accessor, `w` a Weights): gains, relative change, trends and
end-to-end change over the ladder, format gaps, and a model's cells along its fine-tuning."""

from __future__ import annotations

import math
import warnings

import numpy as np

from .resampling import Unmeasurable, fitted_change, wmean
from .study import Study


def _unique(items) -> list[tuple]:
    """(item, multiplicity) in first-seen order: a pair listed twice (the release's SciQ) counts twice."""
    counts: dict = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return list(counts.items())


def pair_label(pair) -> str:
    """'xsum←mnli' for (eval_set, fine_tune)."""
    return f"{pair[0]}←{pair[1]}"


def gain(g, eval_set: str, fine_tune: str, ckpt: str, fmt: str = "default"):
    """One fine-tuned model's gain on one set: its cell − its base checkpoint's (vectors; None where either is
    missing). `g(eval_set, fine_tune, ckpt, fmt)` a performance-cell accessor."""
    base, tuned = g(eval_set, "base", ckpt, fmt), g(eval_set, fine_tune, ckpt, fmt)
    return None if base is None or tuned is None else tuned - base


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


def ratio_of_means(rows, what: str = "(pair, checkpoint) with both rows") -> np.ndarray:
    """(mean fine-tuned − mean base) / mean base over gain rows, in %: the mean relative change's other reading."""
    gain = wmean([(r[2], r[4]) for r in rows], what)
    base = wmean([(r[3], r[4]) for r in rows], what)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100 * gain / base


def gain_by_ckpt(g, w, pairs, ckpts, relative: bool = False) -> dict[str, np.ndarray]:
    """Table 5: per checkpoint, the mean raw (or relative, %) change over the group's pairs with both cells there."""
    out = {}
    for c in ckpts:
        rows = gain_rows(g, w, pairs, [c])
        if rows:
            out[c] = (mean_relative_change(rows) if relative else
                      wmean([(gain, weight) for _, _, gain, _, weight in rows], "pair"))
    return out


def window_gain(g, w, pairs, ckpts, relative: bool = False) -> np.ndarray:
    """The mean over a window of checkpoints (each weighed by its unit weight) of the mean gain at each checkpoint
    (`gain_by_ckpt`): claim B4's early and late windows."""
    by_ckpt = gain_by_ckpt(g, w, pairs, ckpts, relative=relative)
    return wmean([(v, w("ckpt", c, ckpts)) for c, v in by_ckpt.items()], f"gain at checkpoints {ckpts}", nan_ok=True)


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


def sensitivity_change(study, g, w, scaling: str, magnitudes, last_minus_first: bool = False):
    """Claim S1's statistic: the mean over noise magnitudes of the change over the ladder of Δ held-out loss under one
    noise scaling (`g(scaling, magnitude, ckpt)`), fitted (`trend`) or last − first checkpoint (`end_to_end`);
    (the mean, [(magnitude, its change)])."""
    changes = []
    for m in magnitudes:
        at = lambda c, m=m: g(scaling, m, c)  # noqa: E731
        change = (end_to_end(study, w, at, study.ladder) if last_minus_first
                  else trend(study, g, w, at, study.ladder))
        if change is not None:
            changes.append((f"{m:g}", change))
    return wmean([(v, 1.0) for _, v in changes], "magnitude with 2 checkpoints"), changes


def change_between(g, w, eval_sets, model: str, early: str, late: str, fmt: str = "default") -> list[tuple]:
    """[(set, its score at `late` − at `early`, the set's weight)] of one model, over the sets with both cells (claim
    S2: an instruction-tuned model at two checkpoints)."""
    cells = {s: (g(s, model, early, fmt), g(s, model, late, fmt)) for s in eval_sets}
    return [(s, after - before, w("set", s, eval_sets)) for s, (before, after) in cells.items()
            if before is not None and after is not None]


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
