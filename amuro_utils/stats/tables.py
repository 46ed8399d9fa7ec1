"""The tables the notebooks write, each row a statistic of `gains` with its interval: count and change tables,
Table 5, the cross-task MRC, the OOD groups, the format gaps, the held-out-loss blocks, the best probe layer."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..config.profiles import Profile
from . import analysis
from .analysis import cross_task_groups
from .cells import View
from .gains import _unique, gain_by_ckpt, gain_rows, mean_format_gap, mean_gain, pair_label
from .resampling import N_BOOT, Estimate, Unmeasurable, percentile_ci
from .study import Study


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
