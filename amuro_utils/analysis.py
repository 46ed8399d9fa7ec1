"""Change tables, mean relative change, learned-in-PT/FT groups (Table 5) and OOD groups (PROTOCOL §5, §6.3).

A pair is (eval_set, fine_tune): the fine-tuned model's row on eval_set is compared with the base checkpoint's row
on the same eval_set, at every checkpoint where both exist. raw = fine_tuned − base, ratio = raw / base.
Missing cells are reported (logged and listed in `table.attrs["missing"]`), never fatal.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from .profiles import PAPER, Profile, ckpt_step
from .results import constant_predictor, item_label, metric_kind, model_cells  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

# The paper's manual split (PROTOCOL §5; no threshold in code). Names are registry eval sets: `sciq_mc` is
# catwalk's multiple-choice SciQ, scored for the instruction-tuned model. The release's table lists SciQ twice,
# so the "Learned in PT" group has 6 pairs and SciQ weighs double; kept for fidelity.
LEARNED_IN_PT = ("sciq_mc", "hellaswag", "arc_challenge", "arc_easy", "openbookqa", "sciq_mc")
LEARNED_IN_FT = ("mnli_matched", "paws", "xsum", "mnli_mismatched", "xlsum", "socialiqa", "boolq")
GROUP_PT, GROUP_FT = "Learned in PT", "Learned in FT"
# Fig. 7 bar names per task family
OOD_GROUP_NAMES = {"nli": "NLI", "summarization": "Summary Generation", "question_generation": "Question Generation",
                   "paraphrase": "Paraphrase Detection"}
PAPER_MAIN_STEP = PAPER.table5_main_step  # the release's Table 5 slope treats "main" as step 750,000
OOD_CONFIDENCE = 0.90


# ---------------------------------------------------------------------------------------------------------------
# change tables


def _select(df: pd.DataFrame, format: str, shots: int, method: str) -> pd.DataFrame:
    """Rows of one format, shot count and fine-tuning method (base rows kept), standard variant only, one row per
    cell (training seeds averaged)."""
    return model_cells(df[(df["format"] == format) & (df["shots"] == shots)], ["eval_set", "fine_tune", "ckpt"],
                       method)


def _profile_select(profile: Profile, select: dict) -> dict:
    """The cell selection an analysis of `profile` uses: its shots, ladder and method unless overridden."""
    return {"shots": profile.shots, "ckpts": list(profile.ckpts), "method": profile.method, **select}


def _ckpt_order(sel: pd.DataFrame) -> list[str]:
    """Checkpoints of `sel` in training order (unknown steps, e.g. an unrecorded 'main', last)."""
    steps = sel.groupby("ckpt")["step"].first() if "step" in sel else pd.Series(dtype=float)
    ckpts = sel["ckpt"].unique()
    key = {c: steps.get(c, _label_step(c)) for c in ckpts}
    return sorted(ckpts, key=lambda c: (math.isnan(key[c]), 0.0 if math.isnan(key[c]) else key[c], c))


def _label_step(ckpt: str) -> float:
    step = ckpt_step(ckpt)
    return math.nan if step is None else float(step)


def change_table(df: pd.DataFrame, pairs, value: str = "performance", *, format: str = "default", shots: int = 4,
                 ckpts=None, method: str = "full") -> pd.DataFrame:
    """Rows eval_set, fine_tune, ckpt, step, base, fine_tuned, raw, ratio for every (pair, ckpt) with both rows.

    `ckpts` (default: every checkpoint in the selected rows) are the cells expected; a cell lacking its base or
    fine-tuned row is logged and listed in `result.attrs["missing"]`. A pair listed twice appears twice (the
    release's weighting). ratio is NaN where base is 0.
    """
    pairs = [tuple(p) for p in pairs]
    if any(len(p) != 2 for p in pairs):
        raise ValueError("pairs must be (eval_set, fine_tune) tuples, e.g. [('xsum', 'mnli')]")
    if value not in df.columns:
        raise ValueError(f"no column {value!r}; numeric columns: {list(df.select_dtypes('number').columns)}")
    sel = _select(df, format, shots, method)
    order = list(ckpts) if ckpts is not None else _ckpt_order(sel)
    cell = {(e, f, c): v for e, f, c, v in zip(sel["eval_set"], sel["fine_tune"], sel["ckpt"], sel[value])}
    steps = dict(zip(sel["ckpt"], sel["step"])) if "step" in sel else {}
    rows, missing = [], []
    for eval_set, fine_tune in pairs:
        for ckpt in order:
            base, fine_tuned = cell.get((eval_set, "base", ckpt)), cell.get((eval_set, fine_tune, ckpt))
            absent = [name for name, v in (("base", base), ("fine_tuned", fine_tuned)) if v is None or pd.isna(v)]
            if absent:
                missing.append({"eval_set": eval_set, "fine_tune": fine_tune, "ckpt": ckpt,
                                "missing": "+".join(absent)})
                continue
            raw = fine_tuned - base
            rows.append({"eval_set": eval_set, "fine_tune": fine_tune, "ckpt": ckpt,
                         "step": steps.get(ckpt, _label_step(ckpt)), "base": base, "fine_tuned": fine_tuned,
                         "raw": raw, "ratio": raw / base if base != 0 else math.nan})
    table = pd.DataFrame(rows, columns=["eval_set", "fine_tune", "ckpt", "step", "base", "fine_tuned", "raw", "ratio"])
    if missing:
        log.warning("change_table: %d missing cells (left out): %s", len(missing), "; ".join(
            f"{m['eval_set']}←{m['fine_tune']} at {m['ckpt']} (no {m['missing']})" for m in missing))
    zero = table[table["base"] == 0]
    if len(zero):
        log.warning("change_table: base is 0, ratio undefined (NaN) for %s",
                    list(zip(zero["eval_set"], zero["fine_tune"], zero["ckpt"])))
    table.attrs["missing"] = missing
    table.attrs["ckpts"] = order
    return table


def mean_relative_change(df: pd.DataFrame, pairs, **select) -> float:
    """Plain mean of ratio over all (pair, ckpt) rows incl. main (PROTOCOL §6.3); a fraction (×100 for %)."""
    table = change_table(df, pairs, **select)
    ratios = table["ratio"].dropna()
    if ratios.empty:
        raise ValueError(f"no (pair, checkpoint) has both a base and a fine-tuned row for pairs {list(pairs)}; "
                         f"missing: {table.attrs['missing'][:8]}")
    return float(ratios.mean())


# ---------------------------------------------------------------------------------------------------------------
# pairs from a profile


def class_to_gen_pairs(profile: Profile) -> list[tuple[str, str]]:
    """(primary ID set of each generation task, each classification task): Fig. 6 Class→Gen."""
    return [(g.primary, c.name) for c in _tasks(profile, "classification") for g in _tasks(profile, "generation")]


def gen_to_class_pairs(profile: Profile) -> list[tuple[str, str]]:
    """(primary ID set of each classification task, each generation task): Fig. 6 Gen→Class."""
    return [(c.primary, g.name) for g in _tasks(profile, "generation") for c in _tasks(profile, "classification")]


def ood_pairs(profile: Profile) -> list[tuple[str, str]]:
    """(each OOD set of a task, that task): Fig. 7."""
    return [pair for group in ood_groups(profile).values() for pair in group]


def ood_groups(profile: Profile) -> dict[str, list[tuple[str, str]]]:
    """OOD pairs grouped by task family, named as in Fig. 7 (NLI, Summary, Question Generation, Paraphrase)."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for task in profile.tasks:
        if task.ood:
            name = OOD_GROUP_NAMES.get(task.family, task.family)
            groups.setdefault(name, []).extend((s, task.name) for s in task.ood)
    return groups


def learned_groups(profile: Profile) -> dict[str, list[tuple[str, str]]]:
    """Table 5 / Fig. 3 groups: {"Learned in PT": pairs, "Learned in FT": pairs} from the manual split.

    The lists are LEARNED_IN_PT / LEARNED_IN_FT unless the profile sets `learned_in_pt` / `learned_in_ft`.
    A benchmark is paired with the instruction-tuned model, an SFT set with the task that
    has it in domain. Default-list sets this profile does not evaluate are dropped (logged); a profile's own list
    must name only sets it evaluates.
    """
    groups = {}
    for group, key, default in ((GROUP_PT, "learned_in_pt", LEARNED_IN_PT), (GROUP_FT, "learned_in_ft", LEARNED_IN_FT)):
        own = getattr(profile, key) is not None
        names = getattr(profile, key) if own else default
        pairs, dropped = [], []
        for eval_set in names:
            fine_tune = _trained_for(profile, eval_set)
            if fine_tune is None:
                if own:
                    raise ValueError(f"profile {profile.name!r} {key} names {eval_set!r}, which none of its "
                                     f"tasks has in domain and which is not one of its instruction benchmarks")
                dropped.append(eval_set)
            else:
                pairs.append((eval_set, fine_tune))
        if dropped:
            log.info("%s: profile %r does not evaluate %s; left out of the group", group, profile.name, dropped)
        groups[group] = pairs
    return groups


def _tasks(profile: Profile, kind: str):
    return [t for t in profile.tasks if t.kind == kind]


def _trained_for(profile: Profile, eval_set: str) -> str | None:
    """The fine_tune whose 'learning' eval_set measures: instruction tuning for its benchmarks, else the SFT task."""
    if eval_set in (*profile.instruction.benchmarks, *profile.instruction.llmbar):
        return profile.instruction.name
    return next((t.name for t in profile.tasks if eval_set in t.in_domain), None)


# ---------------------------------------------------------------------------------------------------------------
# summaries


def learning_table(df: pd.DataFrame, pairs, *, main_step: float | None = None, **select) -> pd.DataFrame:
    """Per checkpoint: mean raw change, mean % change, pairs counted, slope per 100k steps (one Table 5 group).

    slope = (mean raw change here − at the previous checkpoint) / (step difference) × 100,000, NaN at the first
    checkpoint (the release prints 0.0 there). `main` counts as `main_step` if given (the release's Table 5 uses
    PAPER_MAIN_STEP = 750,000), else as the step recorded in the frame (NaN if none).
    """
    table = change_table(df, pairs, **select)
    rows, previous = [], None
    for ckpt in table.attrs["ckpts"]:
        group = table[table["ckpt"] == ckpt]
        if group.empty:
            continue
        step = main_step if ckpt == "main" and main_step is not None else float(group["step"].iloc[0])
        raw = float(group["raw"].mean())
        slope = math.nan if previous is None else (raw - previous[1]) / (step - previous[0]) * 100_000
        rows.append({"ckpt": ckpt, "step": step, "raw_change": raw, "pct_change": float(group["ratio"].mean()) * 100,
                     "n_pairs": len(group), "slope_per_100k": slope})
        previous = (step, raw)
    result = pd.DataFrame(rows, columns=["ckpt", "step", "raw_change", "pct_change", "n_pairs", "slope_per_100k"])
    result.attrs["missing"] = table.attrs["missing"]
    return result


def table5(df: pd.DataFrame, profile: Profile, *, main_step: float | None = None, **select) -> pd.DataFrame:
    """Table 5: `learning_table` of the "Learned in PT" and "Learned in FT" groups, stacked with a `group` column.

    `main` counts as `main_step`, by default the profile's `table5_main_step` (the paper: 750,000)."""
    main_step = main_step if main_step is not None else profile.table5_main_step
    select = _profile_select(profile, select)
    parts = []
    for group, pairs in learned_groups(profile).items():
        part = learning_table(df, pairs, main_step=main_step, **select)
        parts.append(part.assign(group=group)[["group", *part.columns]])
    return pd.concat(parts, ignore_index=True)


def mean_ci(values, confidence: float = OOD_CONFIDENCE, n_boot: int = 1000,
            seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap CI of the mean, seaborn's `errorbar=('ci', 90)` recipe, seeded."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    if len(x) == 1:
        return float(x[0]), math.nan, math.nan
    means = x[np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    edge = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [edge, 100 - edge])
    return float(x.mean()), float(low), float(high)


def ood_summary(df: pd.DataFrame, profile: Profile, *, confidence: float = OOD_CONFIDENCE, n_boot: int = 1000,
                seed: int = 0, **select) -> pd.DataFrame:
    """Per OOD group: mean raw change over its (pair, ckpt) rows with a bootstrap CI (Fig. 7 bars)."""
    select = _profile_select(profile, select)
    rows, missing = [], []
    for group, pairs in ood_groups(profile).items():
        table = change_table(df, pairs, **select)
        mean, low, high = mean_ci(table["raw"], confidence, n_boot, seed)
        rows.append({"group": group, "pairs": ", ".join(f"{e}←{f}" for e, f in pairs), "n": len(table),
                     "raw_change": mean, "ci_low": low, "ci_high": high})
        missing += table.attrs["missing"]
    result = pd.DataFrame(rows, columns=["group", "pairs", "n", "raw_change", "ci_low", "ci_high"])
    result.attrs["missing"] = missing
    return result


def mrc_table(df: pd.DataFrame, profile: Profile, **select) -> pd.DataFrame:
    """The two headline mean relative changes (Fig. 6): Class→Gen and Gen→Class, in %, with the rows they average."""
    select = _profile_select(profile, select)
    rows = []
    for direction, pairs in (("Class→Gen", class_to_gen_pairs(profile)), ("Gen→Class", gen_to_class_pairs(profile))):
        table = change_table(df, pairs, **select)
        ratios = table["ratio"].dropna()
        rows.append({"direction": direction, "pairs": ", ".join(f"{e}←{f}" for e, f in pairs),
                     "n_rows": len(ratios), "n_missing": len(table.attrs["missing"]),
                     "mrc_pct": float(ratios.mean()) * 100 if len(ratios) else math.nan})
    return pd.DataFrame(rows, columns=["direction", "pairs", "n_rows", "n_missing", "mrc_pct"])


def format_gap_table(df: pd.DataFrame, profile: Profile, *, method: str = "full") -> pd.DataFrame:
    """Fig. 5 in numbers: per task's primary set, mean performance over the ladder per format, base vs fine-tuned."""
    rows = df[(df["shots"] == profile.shots) & df["ckpt"].isin(profile.ckpts)]
    sel = model_cells(rows, ["eval_set", "fine_tune", "ckpt", "format"], method)
    rows = []
    for task in profile.tasks:
        for kind, fine_tune in (("base", "base"), ("fine_tuned", task.name)):
            cells = sel[(sel["eval_set"] == task.primary) & (sel["fine_tune"] == fine_tune)]
            means = cells.groupby("format")["performance"].mean()
            row = {"eval_set": task.primary, "fine_tune": task.name, "model": kind,
                   **{fmt: float(means.get(fmt, math.nan)) for fmt in profile.formats}}
            others = [row[f] for f in profile.formats if f != "default" and not math.isnan(row[f])]
            row["default_minus_others"] = row["default"] - float(np.mean(others)) if others else math.nan
            rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------------
# reading a score honestly: chance, the majority class, constant predictors

# Majority-class shares of the release's test sets that are documented without per-item records: PAWS test
# (PROTOCOL §6.3: base PAWS sits at the majority class, .558) and the SetFit QQP/STS-B test splits, whose gold
# labels are all "no" (PROTOCOL §2.2). Used only for rows of the authors' release (source "paper").
RELEASE_MAJORITY_SHARE = {"paws": 0.558, "qqp": 1.0, "stsb": 1.0}


def majority_share(references, kind: str | None, strip_order=()) -> float | None:
    """Share of the evaluated items whose gold label is the most common one (what a constant predictor of that
    label scores); None for generation or without references. Multiple choice: the gold choice position."""
    if kind not in ("classification", "multiple_choice") or not references:
        return None
    labels = pd.Series([item_label(r, strip_order) for r in references])
    return float(labels.value_counts().iloc[0] / len(labels))


def chance_level(dataset, examples=None) -> float | None:
    """Expected accuracy of a uniform random guess over the labels a prediction can take; None for generation.

    Classification: 1 / number of distinct labels (strip_order labels, else the distinct force words): NLI 1/3
    (also for binary RTE, whose predictions may say "contradiction"), paraphrase 1/2, LLMBar 1/2. Multiple choice:
    the mean of 1 / (number of choices) over `examples` (ARC has a few 3- and 5-choice items); None without them.
    """
    if dataset.kind == "classification":
        labels = {label for _, label in dataset.strip_order} or {w.strip() for w in dataset.force_words}
        return 1.0 / len(labels) if labels else None
    if dataset.kind == "multiple_choice" and examples:
        return float(np.mean([1.0 / len(ex["choices"]) for ex in examples]))
    return None
