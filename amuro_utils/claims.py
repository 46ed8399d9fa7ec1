"""Every claim of Amuro & Char (Sun & Dredze) and of Springer et al. 2025 as a computed verdict: the scorecard.

One function per claim (ids of ../shared/CLAIMS.md: A1–A4 the abstract's findings, B1–B8 the statements behind
Figs. 2–7, Table 5 and Fig. 8, S1–S3 Springer et al.). Each returns one or more parts; a part is a statistic of
`amuro_utils.stats` (the same function the figures and tables read), the units it ranges over, the direction the
paper states and the other reasonable readings of the paper's sentence. Each part is judged:

- *supported*: the 95 % CI lies on the paper's side of the claim's threshold (0 unless stated), or inside ±margin
  for a "flat / no change" claim; *contradicted*: on the other side, or wholly outside ±margin; *inconclusive*: the
  CI straddles the threshold or a margin (or no CI can be formed); *not measurable*: the cells are missing (named);
- *uninformative*: constant-predictor cells decide it — without them the verdict changes, or fewer than
  MIN_INFORMATIVE_SHARE of its cells are informative (the reason is given). Counted apart from the others.

The default interval resamples the units the claim quantifies (task pairs, sets, tasks, checkpoints: `resample`,
justified per part), then items, then seeds; the measurement-only interval (items and seeds: the paper's own
bootstrap) is reported beside it with its verdict. Beside each verdict: whether it survives leaving out any one
unit (a pair, a set, a task, a checkpoint), the verdicts of the sentence's other readings, the verdict without
constant predictors, and the known defects that decide it.

Trends over checkpoints use one statistic throughout, the *fitted change* (stats.fitted_change): the OLS slope of
the score on log10(step), times the log10 span of the checkpoints used. "Flat" claims are falsifiable through an
equivalence margin: FLAT_MARGIN in score units, RELATIVE_MARGIN for relative changes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from . import analysis, stages, stats
from .profiles import SPRINGER_BENCHMARKS, Profile
from .stats import CONFIDENCE, N_BOOT, Study, Unmeasurable, pair_label, wextreme, wmean

FLAT_MARGIN = 0.02  # accuracy / ROUGE-L F1 points (as fractions): |change| ≤ 0.02 counts as "flat" / "no gain"
RELATIVE_MARGIN = 5.0  # percent of the base score: |mean relative change| ≤ 5 % counts as "no change" (B6)
# The paper's landmarks on the OLMo-1B ladder, as fractions of pre-training (final step 738,020), so that any
# ladder has them: B1 "improvements stop past ~step 342,000", B4 "increasing until ~step 424,000".
PLATEAU_FRACTION = 342_000 / 738_020
PEAK_FRACTION = 424_000 / 738_020
SPRINGER_DROP = 0.02  # "over 2 % worse", read as 2 accuracy points (absolute)
MOSTLY_CONSTANT = 0.5  # a claim whose cells are more than half constant predictors says so …
MIN_INFORMATIVE_SHARE = 0.5  # … and is uninformative when fewer than half of its cells are informative
MAX_LISTED = 12  # missing cells named in a note before "… and N more"
RELEASE_N = stats.RELEASE_N

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
UNINFORMATIVE, NOT_MEASURABLE = "uninformative", "not measurable"
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, UNINFORMATIVE, NOT_MEASURABLE)
SCORECARD_COLUMNS = (
    "id", "claim", "where", "statistic", "value", "ci_low", "ci_high", "resampled", "direction", "verdict",
    "judged", "meas_low", "meas_high", "resampled_measurement", "verdict_measurement", "leave_one_out",
    "holds_leave_one_out", "readings", "holds_readings", "without_constant", "uninformative_why", "n_cells",
    "constant_cells", "defect", "seed_spread", "missing", "note")
# Which notebook ends with which claims' verdicts: the stage registry's (amuro_utils.stages).
NOTEBOOK_CLAIMS = {stage.notebook: stage.claims for stage in stages.STAGES}
UNIT_WORDS = {"pair": "pair", "set": "set", "task": "task", "ckpt": "checkpoint", "group": "group"}


# ---------------------------------------------------------------------------------------------------------------
# the verdict rule


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


fitted_change = stats.fitted_change  # re-exported: the one trend statistic


# ---------------------------------------------------------------------------------------------------------------
# parts


@dataclasses.dataclass
class Reading:
    """Another reasonable reading of the paper's sentence: its own statistic (and units; direction unless given)."""

    name: str
    compute: Callable  # (g, w) -> (vector, [notes])
    resample: tuple = ()
    direction: str | None = None
    threshold: float | None = None
    margin: float | None = None
    confidence: float | None = None


def _cell_name(key: tuple) -> str:
    """'xsum←mnli at step342000: no fine-tuned row' style names of performance cells."""
    eval_set, fine_tune, ckpt, fmt = key
    what = "base" if fine_tune == "base" else "fine-tuned"
    pair = eval_set if fine_tune == "base" else f"{eval_set}←{fine_tune}"
    return f"{pair} at {ckpt}{'' if fmt == 'default' else f' ({fmt})'}: no {what} row"


@dataclasses.dataclass
class Part:
    """One verdict row: what is measured, over which units, the paper's direction, and its other readings."""

    id: str
    claim: str
    where: str
    statistic: str
    direction: str
    compute: Callable | None  # (g, w) -> (vector, [notes])
    resample: tuple = ()  # unit dimensions of the default interval
    units_why: str = ""  # why those units (the definitions section prints it)
    threshold: float = 0.0
    margin: float | None = None
    unit: str = ""
    cells: str = "performance"  # "performance" | "sensitivity" | "forgetting" | "union" (stats.Study.cells_for)
    names: Callable = _cell_name  # how a missing cell is named
    unmeasurable: str = ""  # set when the part cannot be computed at all (no frame, no profile field)
    readings: tuple = ()
    confidence: float = CONFIDENCE  # the interval's level (an existential claim over G groups: Bonferroni)

    def rule(self, reading: Reading | None = None) -> "_Rule":
        """The verdict rule of this part, or of one of its readings (its own direction / threshold where given)."""
        if reading is None:
            return _Rule(self.direction, self.threshold, self.margin, self.confidence)
        return _Rule(reading.direction or self.direction,
                     self.threshold if reading.threshold is None else reading.threshold,
                     self.margin if reading.margin is None else reading.margin,
                     self.confidence if reading.confidence is None else reading.confidence)


@dataclasses.dataclass(frozen=True)
class _Rule:
    direction: str
    threshold: float
    margin: float | None
    confidence: float


def _fmt(v: float) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:+.4g}"


def _labelled(items) -> str:
    return ", ".join(f"{item[0]} {_fmt(item[1][0])}" for item in items)


def _trend_mean(study: Study, items, ckpts, kind: str, what: str, last_minus_first: bool = False):
    """A statistic: the unit-weighted mean over items of their fitted change (or last − first) over `ckpts`."""
    def compute(g, w):
        changes, notes = stats.cell_trends(study, g, w, items, ckpts, kind, last_minus_first=last_minus_first)
        return wmean([(v, wt) for _, v, wt in changes], what), notes + [f"per item: {_labelled(changes)}"]
    return compute


def _trend_flat(study: Study, items, ckpts, kind: str, last_minus_first: bool = False):
    """A statistic: the largest |fitted change| (or |last − first|) over items — "every item stays flat"."""
    def compute(g, w):
        changes, notes = stats.cell_trends(study, g, w, items, ckpts, kind, last_minus_first=last_minus_first)
        if not changes:
            raise Unmeasurable(f"no item with 2 checkpoints among {ckpts}")
        return wextreme([(np.abs(v), wt) for _, v, wt in changes], np.max), \
            notes + [f"checkpoints {', '.join(ckpts)}; per item: {_labelled(changes)}"]
    return compute


def _require_window(study: Study, ckpts: list, where: str, fraction: float) -> None:
    """Unmeasurable when the ladder has no checkpoint in a window of pre-training (e.g. a 2-checkpoint ladder)."""
    if not ckpts:
        raise Unmeasurable(f"no checkpoint of the ladder {study.ladder} is {where} {fraction:.0%} of pre-training "
                           f"(step {fraction * study.final_step():,.0f})")


def _per_set_gain(study: Study, pairs, ckpts, reduce):
    """A statistic for "every pair": reduce (np.min / np.max) over pairs of each pair's mean gain over ckpts."""
    def compute(g, w):
        terms = stats.pair_gains(g, w, pairs, ckpts)
        if not terms:
            raise Unmeasurable("no pair with both rows")
        return wextreme([(v, wt) for _, v, wt in terms], reduce), [f"per pair: {_labelled(terms)}"]
    return compute


def _per_row_gain(pairs, ckpts, reduce):
    """A statistic for "at every checkpoint, every set": reduce over every (pair, checkpoint) gain."""
    def compute(g, w):
        rows = stats.gain_rows(g, w, pairs, ckpts)
        if not rows:
            raise Unmeasurable("no (pair, checkpoint) with both rows")
        worst = (min if reduce is np.min else max)(rows, key=lambda r: r[2][0])
        return wextreme([(r[2], r[4]) for r in rows], reduce), \
            [f"extreme row: {pair_label(worst[0])} at {worst[1]} {_fmt(worst[2][0])}"]
    return compute


def _ratio_of_means(pairs, ckpts):
    """(mean fine-tuned − mean base) / mean base over the (pair, checkpoint) rows, in %: the MRC's other reading."""
    def compute(g, w):
        rows = stats.gain_rows(g, w, pairs, ckpts)
        gain = wmean([(r[2], r[4]) for r in rows], "(pair, checkpoint) with both rows")
        base = wmean([(r[3], r[4]) for r in rows], "(pair, checkpoint) with both rows")
        with np.errstate(divide="ignore", invalid="ignore"):
            return 100 * gain / base, [f"{len(rows)} rows"]
    return compute


PAIRS_WHY = "the claim is about a kind of task (its pairs are a sample of such tasks)"
CKPTS_WHY = "and about pre-training in general (its checkpoints are a sample of stages)"
UNIVERSAL_WHY = ("a statement about every listed unit: each one counts, none is a sample, so units are not "
                 "resampled (leave-one-out shows whether one unit decides it)")
TREND_WHY = "checkpoints are the trend's x-axis and are not resampled"


# ---------------------------------------------------------------------------------------------------------------
# the claims: Amuro & Char, abstract


def claim_a1(study: Study) -> list[Part]:
    """A1 (abstract (i); §5, Fig. 3): pre-training improves the model latently — the fine-tuned score rises with
    pre-training on the "learned in fine-tuning" sets while their base score stays flat.

    A1a: mean over the "Learned in FT" pairs (analysis.learned_groups) of the fine-tuned score's fitted change
    over the ladder, > 0; units: pairs. Reading: the last − first checkpoint difference instead of the fit.
    A1b: the largest |fitted change| of the base score over those pairs' sets, < FLAT_MARGIN (as B1c); every set
    counts. Reading: the largest |last − first|.
    """
    pairs = analysis.learned_groups(study.profile)[analysis.GROUP_FT]
    sets = list(dict.fromkeys(e for e, _ in pairs))
    ladder = study.ladder
    return [
        Part("A1a", "fine-tuned score rises with pre-training (Learned-in-FT sets)", "abstract (i); §5, Fig. 3",
             "mean fitted change of the fine-tuned score over the ladder", ">",
             _trend_mean(study, pairs, ladder, "fine_tuned", "fine-tuned trend"), ("pair",),
             f"pairs: {PAIRS_WHY}; {TREND_WHY}",
             readings=(Reading("last − first checkpoint", _trend_mean(study, pairs, ladder, "fine_tuned",
                                                                      "fine-tuned change", True), ("pair",)),)),
        Part("A1b", "… while the base score of those sets stays flat", "abstract (i); §5, Fig. 3",
             "max |fitted change| of the base score over the sets", "<",
             _trend_flat(study, sets, ladder, "base"), (), UNIVERSAL_WHY, threshold=FLAT_MARGIN,
             readings=(Reading("max |last − first|", _trend_flat(study, sets, ladder, "base", True)),)),
    ]


def claim_a2(study: Study) -> list[Part]:
    """A2 (abstract (ii); §5, Fig. 4, Table 5): sets the base model cannot do gain much more from fine-tuning than
    sets it already does.

    Mean raw change (fine-tuned − base) over the "Learned in FT" (pair, checkpoint) rows minus the same mean over
    the "Learned in PT" rows (Table 5's pairs; SciQ counted twice as in the release), > 0; units: pairs within
    each group × checkpoints. Reading: the same difference in relative change (% of base).
    """
    groups = analysis.learned_groups(study.profile)

    def diff(relative):
        def compute(g, w):
            ft = stats.mean_gain(g, w, groups[analysis.GROUP_FT], study.ladder, what="Learned-in-FT pair",
                                 relative=relative)
            pt = stats.mean_gain(g, w, groups[analysis.GROUP_PT], study.ladder, what="Learned-in-PT pair",
                                 relative=relative)
            return ft - pt, [f"Learned in FT {_fmt(ft[0])}, Learned in PT {_fmt(pt[0])}"]
        return compute

    return [Part("A2", "fine-tuning gains more on sets not learned in pre-training", "abstract (ii); §5, Table 5",
                 "mean gain (Learned in FT) − mean gain (Learned in PT)", ">", diff(False), ("pair", "ckpt"),
                 f"pairs within each group: {PAIRS_WHY}; checkpoints: {CKPTS_WHY}",
                 readings=(Reading("relative gain (% of base)", diff(True), ("pair", "ckpt")),))]


def forgetting_groups(profile: Profile) -> dict[str, list]:
    """A3's groups: Class→Gen, Gen→Class (Fig. 6) and each OOD group (Fig. 7)."""
    groups = stats.cross_task_groups(profile)
    groups.update({f"OOD {k}": v for k, v in analysis.ood_groups(profile).items()})
    return groups


def _lowest(terms, what: str):
    """The (label, vector) of the unit with the lowest point estimate among those that weigh more than 0 at the
    point: an existential claim ("some group drops") is judged on the unit it selects, not on a resampled minimum,
    which is biased below 0 when nothing drops; its interval is Bonferroni-adjusted for the selection."""
    kept = [(label, vec) for label, vec, weight in terms if vec is not None and np.asarray(weight).flat[0] > 0]
    if not kept:
        raise Unmeasurable(f"no {what}")
    return min(kept, key=lambda t: t[1][0])


def claim_a3(study: Study) -> list[Part]:
    """A3 (abstract (iii); §6.2–6.3, Figs. 6–7): fine-tuning can forget — performance on a task or domain not seen
    in fine-tuning drops.

    Over the groups Class→Gen, Gen→Class (Fig. 6) and each OOD group (Fig. 7), the group with the lowest mean raw
    change (fine-tuned − base) over its (pair, checkpoint) rows: its mean, < 0 ("some unseen task or domain
    drops"). Existential: the group is selected on its point estimate and judged on its own interval, at
    95 % Bonferroni-adjusted for the number of groups (a minimum taken inside each resample is biased below 0 when
    no group drops — the planted-effect test showed it). Units: pairs within the group × checkpoints. Reading:
    the pair with the lowest mean change, Bonferroni-adjusted for the number of pairs.
    """
    groups = forgetting_groups(study.profile)
    names = list(groups)
    every_pair = list(dict.fromkeys(p for pairs in groups.values() for p in pairs))

    def lowest(g, w):
        means = []
        for name, pairs in groups.items():
            try:
                means.append((name, stats.mean_gain(g, w, pairs, study.ladder), w("group", name, names)))
            except Unmeasurable:
                continue
        name, vec = _lowest(means, "cross-task or OOD pair")
        return vec, [f"lowest: {name}; group means: {_labelled(means)}"]

    def lowest_pair(g, w):
        label, vec = _lowest(stats.pair_gains(g, w, every_pair, study.ladder), "pair with both rows")
        return vec, [f"lowest: {label}"]

    bonferroni = 1 - (1 - CONFIDENCE) / max(len(groups), 1)
    return [Part("A3", "fine-tuning forgets: some unseen task or domain drops", "abstract (iii); §6.2–6.3, Figs. 6–7",
                 "mean raw change of the lowest group", "<", lowest, ("pair", "ckpt"),
                 f"pairs within the selected group: {PAIRS_WHY}; checkpoints: {CKPTS_WHY}; the groups are the "
                 "paper's, the lowest is selected (Bonferroni-adjusted interval)", confidence=bonferroni,
                 readings=(Reading("some pair drops (the pair with the lowest mean change)", lowest_pair, ("ckpt",),
                                   confidence=1 - (1 - CONFIDENCE) / max(len(every_pair), 1)),))]


def claim_a4(study: Study) -> list[Part]:
    """A4 (abstract (iv); §6.1, Fig. 5): the fine-tuned model is highly sensitive to the prompt format; more
    pre-training reduces that sensitivity.

    Format gap = score in the default (training) format − mean score in the other formats, on each task's
    primary set. A4a: mean over (task, checkpoint) of gap(fine-tuned) − gap(base), > 0; units: tasks ×
    checkpoints. A4b: mean over tasks of the fitted change of the fine-tuned gap over the ladder, < 0; units:
    tasks. Readings: the gap against the max, or the min, of the other formats.
    """
    ladder = study.ladder

    def sensitive(against):
        def compute(g, w):
            value = stats.mean_format_gap(study, g, w, ladder, fine_tuned=True, minus_base=True, against=against)
            return value, ["scores mix accuracy and ROUGE-L"]
        return compute

    def falls(against):
        def compute(g, w):
            names = [t.name for t in study.profile.tasks]
            changes = []
            for task in study.profile.tasks:
                change = stats.trend(study, g, w, lambda c, task=task: stats.format_gap(
                    g, task, task.name, c, study.profile.formats, against), ladder)
                if change is not None:
                    changes.append((task.primary, change, w("task", task.name, names)))
            return wmean([(v, wt) for _, v, wt in changes], "fine-tuned format-gap trend"), \
                [f"per task: {_labelled(changes)}"]
        return compute

    return [
        Part("A4a", "fine-tuned models are more format-sensitive than their base", "abstract (iv); §6.1, Fig. 5",
             "mean format gap (fine-tuned − base)", ">", sensitive("mean"), ("task", "ckpt"),
             f"tasks: {PAIRS_WHY}; checkpoints: {CKPTS_WHY}",
             readings=tuple(Reading(f"gap against the {a} of the other formats", sensitive(a), ("task", "ckpt"))
                            for a in ("max", "min"))),
        Part("A4b", "that sensitivity falls with more pre-training", "abstract (iv); §6.1, Fig. 5",
             "mean fitted change of the fine-tuned format gap", "<", falls("mean"), ("task",),
             f"tasks: {PAIRS_WHY}; {TREND_WHY}",
             readings=tuple(Reading(f"gap against the {a} of the other formats", falls(a), ("task",))
                            for a in ("max", "min"))),
    ]


# ---------------------------------------------------------------------------------------------------------------
# the claims: Amuro & Char, the figures


def claim_b1(study: Study) -> list[Part]:
    """B1 (§4, Fig. 2): base scores fall into two groups — benchmarks that improve with pre-training and level off
    (past ~step 342,000: HellaSwag, ARC-E/C, SciQ, OpenBookQA), and sets that stay flat throughout (MNLI, PAWS,
    XSum, SocialIQa QG, BoolQ).

    B1a: mean over the "Learned in PT" sets of the base score's fitted change over the ladder, > 0; units: sets.
    B1b: their largest |fitted change| over the checkpoints from PLATEAU_FRACTION (342k/738k) of pre-training on,
    < FLAT_MARGIN. B1c: the largest |fitted change| of the "Learned in FT" sets' base score, < FLAT_MARGIN; every
    set counts. Readings: last − first instead of the fit.
    """
    groups = analysis.learned_groups(study.profile)
    pt = list(dict.fromkeys(e for e, _ in groups[analysis.GROUP_PT]))
    ft = list(dict.fromkeys(e for e, _ in groups[analysis.GROUP_FT]))
    late, ladder = study.from_(PLATEAU_FRACTION), study.ladder
    return [
        Part("B1a", "benchmarks learned in pre-training improve with it", "§4, Fig. 2",
             "mean fitted change of the base score (Learned-in-PT sets)", ">",
             _trend_mean(study, pt, ladder, "base", "base trend"), ("set",), f"sets: {PAIRS_WHY}; {TREND_WHY}",
             readings=(Reading("last − first checkpoint", _trend_mean(study, pt, ladder, "base", "base change", True),
                               ("set",)),)),
        Part("B1b", "… and level off past ~step 342,000", "§4, Fig. 2",
             "max |fitted change| of their base score from 46 % of pre-training on", "<",
             _trend_flat(study, pt, late, "base"), (), UNIVERSAL_WHY, threshold=FLAT_MARGIN,
             readings=(Reading("max |last − first|", _trend_flat(study, pt, late, "base", True)),)),
        Part("B1c", "the fine-tuning tasks' base scores stay flat", "§4, Fig. 2",
             "max |fitted change| of the base score (Learned-in-FT sets)", "<", _trend_flat(study, ft, ladder, "base"),
             (), UNIVERSAL_WHY, threshold=FLAT_MARGIN,
             readings=(Reading("max |last − first|", _trend_flat(study, ft, ladder, "base", True)),)),
    ]


def _group_extreme(study: Study, pairs, reduce, relative: bool = False):
    """A statistic: reduce (max / min) over checkpoints of the group's mean gain there (a Table 5 column)."""
    def compute(g, w):
        by_ckpt = stats.gain_by_ckpt(g, w, pairs, study.ladder, relative=relative)
        if not by_ckpt:
            raise Unmeasurable("no pair of the group")
        return wextreme([(v, 1.0) for v in by_ckpt.values()], reduce), \
            [f"per checkpoint: {_labelled(by_ckpt.items())}"]
    return compute


def claim_b2(study: Study) -> list[Part]:
    """B2 (§5, Fig. 3b, Table 5): datasets learned in pre-training do not improve with fine-tuning at any checkpoint.

    The largest, over checkpoints, of the "Learned in PT" group's mean raw change (Table 5 row), < FLAT_MARGIN;
    units: pairs (the group mean); every checkpoint counts. Reading: per set — the largest (pair, checkpoint) gain.
    """
    pairs = analysis.learned_groups(study.profile)[analysis.GROUP_PT]
    return [Part("B2", "sets learned in pre-training gain nothing from fine-tuning at any checkpoint",
                 "§5, Fig. 3b, Table 5", "max over checkpoints of the Learned-in-PT mean gain", "<",
                 _group_extreme(study, pairs, np.max), ("pair",),
                 f"pairs: {PAIRS_WHY}; every checkpoint counts ('at any checkpoint')", threshold=FLAT_MARGIN,
                 readings=(Reading("per set: the largest (pair, checkpoint) gain",
                                   _per_row_gain(pairs, study.ladder, np.max)),))]


def claim_b3(study: Study) -> list[Part]:
    """B3 (§5, Fig. 4, Table 5): datasets not learned in pre-training improve with fine-tuning at every checkpoint.

    The smallest, over checkpoints, of the "Learned in FT" group's mean raw change (Table 5 row), > 0; units:
    pairs; every checkpoint counts. Reading: per set — the smallest (pair, checkpoint) gain.
    """
    pairs = analysis.learned_groups(study.profile)[analysis.GROUP_FT]
    return [Part("B3", "sets not learned in pre-training gain from fine-tuning at every checkpoint",
                 "§5, Fig. 4, Table 5", "min over checkpoints of the Learned-in-FT mean gain", ">",
                 _group_extreme(study, pairs, np.min), ("pair",),
                 f"pairs: {PAIRS_WHY}; every checkpoint counts ('at every checkpoint')",
                 readings=(Reading("per set: the smallest (pair, checkpoint) gain",
                                   _per_row_gain(pairs, study.ladder, np.min)),))]


def claim_b4(study: Study) -> list[Part]:
    """B4 (§5): the benefit of fine-tuning keeps increasing until ~step 424,000, then levels off; earlier
    checkpoints obtain larger gains than later ones.

    On the "Learned in FT" group's mean change per checkpoint (Table 5 row): B4a its fitted change over the
    checkpoints up to PEAK_FRACTION (424k/738k) of pre-training, > 0; B4b its |fitted change| from there on,
    < FLAT_MARGIN (units: pairs); B4c mean gain at the checkpoints before PLATEAU_FRACTION (1k, 18k on OLMo-1B)
    minus the mean gain at the later ones, > 0 (units: pairs × checkpoints within each window). Read in raw change,
    as Table 5 reports it; the other readings are the relative change (% of base), and "the first checkpoint's
    relative gain beats every later one" (on the release step 1000's +292 % does, the early mean does not).
    """
    pairs = analysis.learned_groups(study.profile)[analysis.GROUP_FT]
    rising, after = study.until(PEAK_FRACTION), study.from_(PEAK_FRACTION)
    early, late = study.before(PLATEAU_FRACTION), study.from_(PLATEAU_FRACTION)

    def trend(ckpts, absolute, relative=False):
        def compute(g, w):
            by_ckpt = stats.gain_by_ckpt(g, w, pairs, ckpts, relative=relative)
            change = stats.trend(study, g, w, by_ckpt.get, ckpts)
            if change is None:
                raise Unmeasurable(f"fewer than 2 of {ckpts} with Learned-in-FT gains")
            return (np.abs(change) if absolute else change), [f"checkpoints {', '.join(by_ckpt)}"]
        return compute

    def window_mean(g, w, ckpts, relative):
        by_ckpt = stats.gain_by_ckpt(g, w, pairs, ckpts, relative=relative)
        return wmean([(v, w("ckpt", c, ckpts)) for c, v in by_ckpt.items()], f"gain at checkpoints {ckpts}",
                     nan_ok=True)

    def early_minus_late(relative=False):
        def compute(g, w):
            _require_window(study, early, "before", PLATEAU_FRACTION)
            e, lt = window_mean(g, w, early, relative), window_mean(g, w, late, relative)
            return e - lt, [f"early {', '.join(early)}: {_fmt(e[0])}; late: {_fmt(lt[0])}"]
        return compute

    def first_beats_later(g, w):
        by_ckpt = stats.gain_by_ckpt(g, w, pairs, study.ladder, relative=True)
        if len(by_ckpt) < 2:
            raise Unmeasurable("fewer than 2 checkpoints with Learned-in-FT gains")
        first, *later = by_ckpt
        return wextreme([(by_ckpt[first] - by_ckpt[c], w("ckpt", c, later)) for c in later], np.min), \
            [f"{first}: {_fmt(by_ckpt[first][0])} %"]

    return [
        Part("B4a", "the gain from fine-tuning increases until ~step 424,000", "§5, Table 5",
             "fitted change of the Learned-in-FT mean gain up to 57 % of pre-training", ">", trend(rising, False),
             ("pair",), f"pairs: {PAIRS_WHY}; {TREND_WHY}",
             readings=(Reading("relative gain (% of base)", trend(rising, False, True), ("pair",)),)),
        Part("B4b", "… and levels off after it", "§5, Table 5",
             "|fitted change| of the Learned-in-FT mean gain from 57 % of pre-training on", "<", trend(after, True),
             ("pair",), f"pairs: {PAIRS_WHY}; {TREND_WHY}", threshold=FLAT_MARGIN),
        Part("B4c", "earlier checkpoints obtain larger gains than later ones", "§5",
             "mean gain (checkpoints < 46 %) − mean gain (≥ 46 %)", ">", early_minus_late(), ("pair", "ckpt"),
             f"pairs: {PAIRS_WHY}; checkpoints within each window: {CKPTS_WHY}",
             readings=(Reading("relative gain (% of base)", early_minus_late(True), ("pair", "ckpt")),
                       Reading("the first checkpoint's relative gain beats every later one (smallest difference, %)",
                               first_beats_later, ("pair",)))),
    ]


def claim_b5(study: Study) -> list[Part]:
    """B5 (§6.1, Fig. 5): early in pre-training, matching the fine-tuning format matters; fine-tuned later
    checkpoints are more flexible across formats.

    Fine-tuned format gap as in A4. B5a: its mean over tasks and the checkpoints before PLATEAU_FRACTION, > 0.
    B5b: its mean at the later checkpoints minus its mean at the early ones, < 0. Units: tasks × checkpoints
    (within each window). Readings: the gap against the max, or the min, of the other formats.
    """
    early, late = study.before(PLATEAU_FRACTION), study.from_(PLATEAU_FRACTION)

    def early_gap(against):
        def compute(g, w):
            _require_window(study, early, "before", PLATEAU_FRACTION)
            return stats.mean_format_gap(study, g, w, early, fine_tuned=True, against=against), \
                [f"checkpoints {', '.join(early)}"]
        return compute

    def late_minus_early(against):
        def compute(g, w):
            _require_window(study, early, "before", PLATEAU_FRACTION)
            e = stats.mean_format_gap(study, g, w, early, fine_tuned=True, against=against)
            lt = stats.mean_format_gap(study, g, w, late, fine_tuned=True, against=against)
            return lt - e, [f"early {_fmt(e[0])}, late {_fmt(lt[0])}"]
        return compute

    why = f"tasks: {PAIRS_WHY}; checkpoints within each window: {CKPTS_WHY}"
    return [
        Part("B5a", "early checkpoints: fine-tuned models need the training format", "§6.1, Fig. 5",
             "mean fine-tuned format gap before 46 % of pre-training", ">", early_gap("mean"), ("task", "ckpt"), why,
             readings=tuple(Reading(f"gap against the {a} of the other formats", early_gap(a), ("task", "ckpt"))
                            for a in ("max", "min"))),
        Part("B5b", "later checkpoints: fine-tuned models are more flexible across formats", "§6.1, Fig. 5",
             "fine-tuned format gap, late − early", "<", late_minus_early("mean"), ("task", "ckpt"), why,
             readings=tuple(Reading(f"gap against the {a} of the other formats", late_minus_early(a),
                                    ("task", "ckpt")) for a in ("max", "min"))),
    ]


def claim_b6(study: Study) -> list[Part]:
    """B6 (§6.2, Fig. 6): fine-tuned on classification and evaluated on generation, performance falls by 61.4 % on
    average; fine-tuned on generation and evaluated on classification, +0.3 %, not significantly different from 0.

    Mean relative change (PROTOCOL §6.3): the plain mean over (pair, checkpoint) rows, all checkpoints incl. main,
    of (fine-tuned − base) / base, in %. B6a Class→Gen, < 0. B6b Gen→Class, within ±RELATIVE_MARGIN %. Units:
    pairs × checkpoints. Reading: the ratio of the means ((mean fine-tuned − mean base) / mean base).
    """
    directions = stats.cross_task_groups(study.profile)

    def mrc(pairs):
        def compute(g, w):
            rows = stats.gain_rows(g, w, pairs, study.ladder)
            value = stats.mean_relative_change(rows)
            kept = [r for r in rows if r[3][0] != 0]
            undefined = int(np.isnan(np.vstack([r[2] / np.where(r[3] == 0, np.nan, r[3]) for r in kept])[:, 1:])
                            .any(axis=0).sum()) if kept else 0
            return value, [f"{len(kept)} rows"] + (
                [f"{undefined} resamples drew a base of 0 for some row (left out there)"] if undefined else [])
        return compute

    why = f"pairs: {PAIRS_WHY}; checkpoints: {CKPTS_WHY}"
    return [
        Part("B6a", "classification→generation transfer hurts (−61.4 %)", "§6.2, Fig. 6",
             "mean relative change Class→Gen (%)", "<", mrc(directions["Class→Gen"]), ("pair", "ckpt"), why,
             unit=" %", readings=(Reading("ratio of means", _ratio_of_means(directions["Class→Gen"], study.ladder),
                                          ("pair", "ckpt")),)),
        Part("B6b", "generation→classification transfer does not (+0.3 %, n.s.)", "§6.2, Fig. 6",
             "mean relative change Gen→Class (%)", "≈", mrc(directions["Gen→Class"]), ("pair", "ckpt"), why,
             margin=RELATIVE_MARGIN, unit=" %",
             readings=(Reading("ratio of means", _ratio_of_means(directions["Gen→Class"], study.ladder),
                               ("pair", "ckpt")),)),
    ]


def claim_b7(study: Study) -> list[Part]:
    """B7 (§6.3, Fig. 7, Fig. 10): fine-tuning on MNLI boosts every out-of-domain NLI set; fine-tuning on PAWS
    hurts the other paraphrase sets — both learning and forgetting happen.

    Mean raw change (fine-tuned − base) over the group's (OOD set, checkpoint) rows (analysis.ood_groups, the Fig.
    7 bars): B7a NLI, > 0; B7b Paraphrase Detection, < 0. Units: sets × checkpoints. Reading: per set — every OOD
    set's mean change (the smallest for B7a, "boosts every"; the largest for B7b).
    """
    groups = analysis.ood_groups(study.profile)

    def group_mean(name):
        def compute(g, w):
            if name not in groups:
                raise Unmeasurable(f"profile {study.profile.name!r} has no {name} task with OOD sets")
            rows = stats.gain_rows(g, w, groups[name], study.ladder)
            per_set: dict = {}
            for pair, _, gain, _, _ in rows:
                per_set.setdefault(pair_label(pair), []).append(gain)
            return stats.mean_gain(g, w, groups[name], study.ladder, what=f"{name} OOD row"), \
                [f"per set: {_labelled((k, np.mean(v, axis=0)) for k, v in per_set.items())}"]
        return compute

    def every(name, reduce):
        def compute(g, w):
            if name not in groups:
                raise Unmeasurable(f"profile {study.profile.name!r} has no {name} task with OOD sets")
            return _per_set_gain(study, groups[name], study.ladder, reduce)(g, w)
        return compute

    why = f"OOD sets: {PAIRS_WHY}; checkpoints: {CKPTS_WHY}"
    return [
        Part("B7a", "fine-tuning on NLI boosts the out-of-domain NLI sets", "§6.3, Fig. 7",
             "mean raw change, OOD NLI group", ">", group_mean("NLI"), ("pair", "ckpt"), why,
             readings=(Reading("every OOD NLI set gains (the smallest set mean)", every("NLI", np.min), ("ckpt",)),)),
        Part("B7b", "fine-tuning on paraphrase hurts the other paraphrase sets", "§6.3, Fig. 7",
             "mean raw change, OOD Paraphrase group", "<", group_mean("Paraphrase Detection"), ("pair", "ckpt"), why,
             readings=(Reading("every OOD paraphrase set drops (the largest set mean)",
                               every("Paraphrase Detection", np.max), ("ckpt",)),)),
    ]


def claim_b8(study: Study) -> list[Part]:
    """B8 (§3, Fig. 8 (appendix)): instruction tuning improves instruction following (LLMBar) and leaves the
    benchmarks learned in pre-training about unchanged.

    Raw change instruction-tuned − base. B8a: mean over (LLMBar split, checkpoint), > 0. B8b: mean over
    ("Learned in PT" benchmark, checkpoint), each benchmark once, within ±FLAT_MARGIN. Units: splits / benchmarks
    × checkpoints. Readings: per split, the smallest split mean (B8a); per benchmark, the largest |mean| (B8b).
    """
    it = study.profile.instruction
    benchmarks = list(dict.fromkeys(e for e, _ in analysis.learned_groups(study.profile)[analysis.GROUP_PT]))

    def mean_gain(sets):
        pairs = [(s, it.name) for s in sets]

        def compute(g, w):
            value = stats.mean_gain(g, w, pairs, study.ladder)
            return value, [f"{stats.count_rows(study, pairs, study.ladder)} rows"]
        return compute

    def most_changed(sets):
        pairs = [(s, it.name) for s in sets]

        def compute(g, w):
            terms = stats.pair_gains(g, w, pairs, study.ladder)
            return wextreme([(np.abs(v), wt) for _, v, wt in terms], np.max), [f"per benchmark: {_labelled(terms)}"]
        return compute

    why = f"splits / benchmarks: {PAIRS_WHY}; checkpoints: {CKPTS_WHY}"
    pairs = [(s, it.name) for s in it.llmbar]
    return [
        Part("B8a", "instruction tuning improves instruction following (LLMBar)", "§3, Fig. 8",
             "mean gain on LLMBar", ">", mean_gain(it.llmbar), ("pair", "ckpt"), why,
             readings=(Reading("every split gains (the smallest split mean)",
                               _per_set_gain(study, pairs, study.ladder, np.min), ("ckpt",)),)),
        Part("B8b", "… and leaves the benchmarks learned in pre-training about unchanged", "§3, Fig. 8",
             "mean gain on the Learned-in-PT benchmarks", "≈", mean_gain(benchmarks), ("pair", "ckpt"), why,
             margin=FLAT_MARGIN,
             readings=(Reading("every benchmark unchanged (the largest |benchmark mean|)", most_changed(benchmarks),
                               ("ckpt",), direction="<", threshold=FLAT_MARGIN),)),
    ]


# ---------------------------------------------------------------------------------------------------------------
# the claims: Springer et al. 2025


def claim_s1(study: Study) -> list[Part]:
    """S1 (Springer et al. 2025 §3, progressive sensitivity): the same Gaussian perturbation of the parameters
    raises the pre-training (held-out) loss more at later checkpoints.

    Per noise scaling: the mean over noise magnitudes of the fitted change, over the ladder, of Δ held-out loss
    (perturbed − unperturbed, nats/token), > 0. No units are resampled: the statement is about this ladder, and
    its noise seeds and held-out blocks are the measurement (seeds, then blocks, paired across checkpoints).
    Reading: last − first checkpoint.
    """
    cells = study.blocks("sensitivity")
    if cells is None:
        return [Part("S1", "parameter-perturbation sensitivity grows with pre-training", "Springer et al. §3",
                     "mean fitted change of Δ held-out loss", ">", None, unit=" nats",
                     unmeasurable="no sensitivity frame: run pipeline.sensitivity (notebook pretrain_probe); "
                                  "the authors released none")]
    frame = study.sensitivity_frame
    parts = []
    for scaling in sorted(frame["scaling"].unique()):
        magnitudes = sorted(frame.loc[frame["scaling"] == scaling, "magnitude"].unique())

        def compute(g, w, scaling=scaling, magnitudes=magnitudes, last_minus_first=False):
            changes = []
            for m in magnitudes:
                at = lambda c, m=m: g(scaling, m, c)  # noqa: E731
                change = (stats.end_to_end(study, w, at, study.ladder) if last_minus_first
                          else stats.trend(study, g, w, at, study.ladder))
                if change is not None:
                    changes.append((f"{m:g}", change))
            return wmean([(v, 1.0) for _, v in changes], "magnitude with 2 checkpoints"), \
                [f"per magnitude: {_labelled(changes)}"]

        parts.append(Part(
            "S1" if len(frame["scaling"].unique()) == 1 else f"S1-{scaling}",
            f"parameter-perturbation sensitivity grows with pre-training ({scaling} noise)", "Springer et al. §3",
            "mean over magnitudes of the fitted change of Δ held-out loss", ">", compute, (),
            "one ladder: noise seeds and held-out blocks are the measurement; " + TREND_WHY, unit=" nats",
            cells="sensitivity", names=lambda k: f"{k[0]} noise {k[1]:g} at {k[2]}: no row",
            readings=(Reading("last − first checkpoint",
                              lambda g, w, compute=compute: compute(g, w, last_minus_first=True)),)))
    return parts


def claim_s2(study: Study) -> list[Part]:
    """S2 (Springer et al. 2025 abstract, §2, Fig. 1, catastrophic overtraining): after instruction tuning, the
    final OLMo-1B checkpoint (3T tokens) ends worse on standard benchmarks than its 2.3T-token checkpoint.

    Mean over ARC-E, ARC-C, PIQA and HellaSwag (those the source evaluated) of instruction-tuned score at the
    profile's `overtraining_pair` later checkpoint minus at the earlier one, < 0; units: benchmarks. The note
    says whether it is also below −SPRINGER_DROP ("over 2 % worse", read as points). Reading: every benchmark
    ends worse (the largest benchmark difference < 0).
    """
    part = Part("S2", "the later checkpoint ends worse after instruction tuning", "Springer et al. abstract, Fig. 1",
                "mean instruction-tuned score, late − early checkpoint", "<", None, ("set",),
                f"benchmarks: {PAIRS_WHY}")
    pair = study.profile.overtraining_pair
    if pair is None:
        part.unmeasurable = f"profile {study.profile.name!r} defines no overtraining_pair"
        return [part]
    early, late = pair
    it = study.profile.instruction.name
    have = set(study.cells.rows["eval_set"]) if len(study.cells.rows) else set()
    sets = [b for b in SPRINGER_BENCHMARKS if b in have]
    absent = [b for b in SPRINGER_BENCHMARKS if b not in have]

    def diffs(g, w):
        cells = {b: (g(b, it, early, "default"), g(b, it, late, "default")) for b in sets}
        return [(b, after - before, w("set", b, sets)) for b, (before, after) in cells.items()
                if before is not None and after is not None]

    def compute(g, w):
        found = diffs(g, w)
        lacking = f"; not evaluated by this source: {', '.join(absent)}" if absent else ""
        mean = wmean([(d, wt) for _, d, wt in found], f"benchmark with {it} rows at both {early} and {late}{lacking}")
        notes = [f"{early} → {late}: {_labelled(found)}",
                 f"below −{SPRINGER_DROP:g} (Springer's 'over 2 % worse'): "
                 f"{'yes' if stats.percentile_ci(mean[1:])[1] < -SPRINGER_DROP else 'not shown'}"]
        if absent:
            notes.append(f"not evaluated by this source: {', '.join(absent)}")
        return mean, notes

    part.compute = compute
    part.readings = (Reading("every benchmark ends worse (the largest difference)",
                             lambda g, w: (wextreme([(d, wt) for _, d, wt in diffs(g, w)], np.max), [])),)
    return [part]


def claim_s3(study: Study) -> list[Part]:
    """S3 (Springer et al. 2025 §3): fine-tuning at a fixed learning rate raises the pre-training-text loss more
    for later checkpoints (forgetting grows with pre-training).

    Mean over fine-tuning tasks of the fitted change, over the ladder, of Δ held-out loss (fine-tuned − its base,
    nats/token), > 0; models of `method` only; units: tasks (resampled: training seeds, then held-out blocks,
    paired). Reading: last − first checkpoint.
    """
    part = Part("S3", "forgetting of pre-training text grows with pre-training", "Springer et al. §3",
                "mean fitted change of Δ held-out loss after fine-tuning", ">", None, ("task",),
                f"tasks: {PAIRS_WHY}; {TREND_WHY}", unit=" nats", cells="forgetting",
                names=lambda k: f"{k[0]} at {k[1]}: no forgetting row")
    cells = study.blocks("forgetting")
    if cells is None:
        part.unmeasurable = ("no forgetting frame (held-out LM loss of each fine-tuned model minus its base); the "
                             "authors released none")
        return [part]
    tasks = sorted(study.forgetting_frame["fine_tune"].unique())

    def compute(g, w, last_minus_first=False):
        changes = []
        for task in tasks:
            at = lambda c, task=task: g(task, c)  # noqa: E731
            change = (stats.end_to_end(study, w, at, study.ladder) if last_minus_first
                      else stats.trend(study, g, w, at, study.ladder))
            if change is not None:
                changes.append((task, change, w("task", task, tasks)))
        return wmean([(v, wt) for _, v, wt in changes], f"fine-tuning task with 2 checkpoints ({study.method})"), \
            [f"per task: {_labelled(changes)}"]

    part.compute = compute
    part.readings = (Reading("last − first checkpoint", lambda g, w: compute(g, w, True), ("task",)),)
    return [part]


CLAIMS: dict[str, Callable[[Study], list[Part]]] = {
    "A1": claim_a1, "A2": claim_a2, "A3": claim_a3, "A4": claim_a4,
    "B1": claim_b1, "B2": claim_b2, "B3": claim_b3, "B4": claim_b4, "B5": claim_b5, "B6": claim_b6,
    "B7": claim_b7, "B8": claim_b8,
    "S1": claim_s1, "S2": claim_s2, "S3": claim_s3,
}


# ---------------------------------------------------------------------------------------------------------------
# known defects of the release and of faithful runs (README "Known defects", PROTOCOL §2.2, §4.2, §4.5, §6.3)


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
    Defect("LLMBar exact match",
           "LLMBar accuracy is exact string equality with '1'/'2', so a prediction ' 1' counts as wrong (PROTOCOL "
           "§4.2); the release, and runs with llmbar_exact_match (the faithful default; False strips the space)",
           lambda k, p, src: k[0].startswith("llmbar_") and (p.llmbar_exact_match or "paper" in src)),
    Defect("MNLI step1000 fine-tuned ≈ base",
           "release: the MNLI model fine-tuned from step1000 scores as its base on MNLI (PROTOCOL §6.3)",
           lambda k, p, src: "paper" in src and k[1] == "mnli" and k[2] == "step1000" and k[0].startswith("mnli_")),
    Defect("XSum step424000 base outlier",
           "release: base XSum at step424000 (.019) is an outlier that drives ratio statistics (PROTOCOL §6.3)",
           lambda k, p, src: "paper" in src and k[:3] == ("xsum", "base", "step424000")),
)


# ---------------------------------------------------------------------------------------------------------------
# judging a part


def _judge(est: stats.Estimate, rule: _Rule, which: str = "units") -> str:
    low, high = est.ci(which, rule.confidence)
    return verdict(est.point, low, high, rule.direction, rule.threshold, rule.margin)


def _attempt(cells, compute, resample, rule: _Rule, **kwargs) -> tuple[str, stats.Estimate | None]:
    """(verdict under the default interval, estimate) — 'not measurable' when the statistic cannot be formed."""
    try:
        est = stats.estimate(cells, compute, resample, measurement=False, **kwargs)
    except Unmeasurable:
        return NOT_MEASURABLE, None
    return _judge(est, rule), est


def _listed(names: list[str]) -> str:
    head = names[:MAX_LISTED]
    more = len(names) - len(head)
    return "; ".join(head) + (f"; … and {more} more" if more > 0 else "")


def _missing_names(study: Study, part: Part, keys: list) -> list[str]:
    """Missing cells by name; a performance pair missing at every ladder checkpoint is named once."""
    if part.cells == "union":
        return [f"{k[0]} {' / '.join(map(str, k[1:]))}: no row" for k in keys]
    if part.cells != "performance":
        return [part.names(k) for k in keys]
    by_pair: dict[tuple, list] = {}
    for k in keys:
        by_pair.setdefault((k[0], k[1], k[3]), []).append(k)
    names = []
    for (eval_set, fine_tune, fmt), ks in by_pair.items():
        if len(ks) > 1 and {k[2] for k in ks} >= set(study.ladder):
            what = "base" if fine_tune == "base" else "fine-tuned"
            pair = eval_set if fine_tune == "base" else f"{eval_set}←{fine_tune}"
            names.append(f"{pair}{'' if fmt == 'default' else f' ({fmt})'}: no {what} row at any checkpoint")
        else:
            names += [part.names(k) for k in ks]
    return names


def _leave_one_out(cells, part: Part, est: stats.Estimate, judged: str) -> tuple[str, bool]:
    """Whether the verdict survives leaving out any one unit the statistic ranges over; (summary, holds)."""
    changes, counted = [], []
    for dim, labels in est.units.items():
        counted.append(f"{len(labels)} {UNIT_WORDS.get(dim, dim)}{'s' if len(labels) != 1 else ''}")
        for label in labels:
            without, _ = _attempt(cells, part.compute, part.resample, part.rule(), leave=(dim, label))
            if without != judged:
                changes.append(f"without {UNIT_WORDS.get(dim, dim)} {label}: {without}")
    if not counted:
        return "no units", True
    if changes:
        return _listed(changes), False
    return "holds leaving out any one of " + ", ".join(counted), True


def _readings(cells, part: Part, judged: str) -> tuple[str, bool]:
    """The verdicts of the claim sentence's other readings; (summary, all agree with the verdict)."""
    out, agree = [], True
    for reading in part.readings:
        result, est = _attempt(cells, reading.compute, reading.resample, part.rule(reading))
        value = "" if est is None else f" ({_fmt(est.point)})"
        out.append(f"{reading.name}: {result}{value}")
        agree &= result == judged
    return "; ".join(out), agree


def _defects(study: Study, part: Part, used: list, judged: str) -> tuple[str, list[str]]:
    """Names of the known defects that decide this verdict (it changes without their cells), and notes."""
    deciding, notes = [], []
    for defect in DEFECTS:
        tainted = frozenset(k for k in used if defect.applies(k, study.profile, study.cells.sources(k)))
        if not tainted:
            continue
        without, _ = _attempt(study.cells, part.compute, part.resample, part.rule(), exclude=tainted)
        if without != judged:
            deciding.append(defect.name)
            notes.append(f"without the {len(tainted)} '{defect.name}' cells: {without}")
        else:
            notes.append(f"'{defect.name}' touches {len(tainted)} cells, verdict unchanged without them")
    return "; ".join(deciding), notes


def _empty_row(part: Part) -> dict:
    row = {c: "" for c in SCORECARD_COLUMNS}
    row.update(id=part.id, claim=part.claim, where=part.where,
               statistic=part.statistic + (" (nats/token)" if part.unit == " nats" else ""),
               direction=_direction_text(part.direction, part.threshold, part.margin, part.unit),
               value=math.nan, ci_low=math.nan, ci_high=math.nan, meas_low=math.nan, meas_high=math.nan,
               verdict=NOT_MEASURABLE, judged=NOT_MEASURABLE, verdict_measurement=NOT_MEASURABLE, n_cells=0,
               constant_cells=math.nan, seed_spread=math.nan, holds_leave_one_out=math.nan, holds_readings=math.nan)
    return row


def _evaluate_part(study: Study, part: Part) -> dict:
    row = _empty_row(part)
    if part.unmeasurable:
        row["missing"] = part.unmeasurable
        return row
    cells = study.cells_for(part.cells)
    try:
        est = stats.estimate(cells, part.compute, part.resample)
    except Unmeasurable as err:
        row["missing"] = _listed(_missing_names(study, part, err.missing))
        row["note"] = str(err)
        return row
    notes = list(est.notes)
    row["missing"] = _listed(_missing_names(study, part, est.missing))
    row["n_cells"] = len(est.used)
    low, high = est.ci("units", part.confidence)
    mlow, mhigh = est.ci("measurement", part.confidence)
    judged = _judge(est, part.rule())
    row.update(value=est.point, ci_low=low, ci_high=high, meas_low=mlow, meas_high=mhigh, judged=judged,
               verdict=judged, resampled=est.describe("units"), resampled_measurement=est.describe("measurement"),
               verdict_measurement=_judge(est, part.rule(), "measurement"))
    if part.confidence != CONFIDENCE:
        notes.append(f"{part.confidence:.2%} intervals: {CONFIDENCE:.0%} Bonferroni-adjusted for the "
                     f"{round((1 - CONFIDENCE) / (1 - part.confidence))} candidates the claim selects among")
    if est.modes == ["fixed"]:
        notes.append("no measurement CI: no cell carries items, seeds or a standard error")
    elif "fixed" in est.modes:
        notes.append("some cells are not resampled: the CI is too narrow")
    if low == high == est.point:
        notes.append("zero-width CI: the compared cells agree on every resampled item")
    row["leave_one_out"], row["holds_leave_one_out"] = _leave_one_out(cells, part, est, judged)
    if part.readings:
        row["readings"], row["holds_readings"] = _readings(cells, part, judged)
    if part.cells == "performance":
        _constant_rule(study, part, est, row, notes)
        unpaired = sorted({k[0] for k in est.used if k[0] in cells.unpaired})
        if unpaired:
            notes.append("unpaired (records of one set with different n): " + ", ".join(
                f"{s} n={cells.unpaired[s]}" for s in unpaired))
        row["defect"], defect_notes = _defects(study, part, est.used, judged)
        notes += defect_notes
    spreads = [s for s in (cells.seed_sd(k) for k in est.used) if np.isfinite(s)]
    if spreads:
        row["seed_spread"] = float(np.mean(spreads))
        notes.append(f"{len(spreads)} cells with several seeds (mean seed sd {np.mean(spreads):.4g})")
    row["note"] = "; ".join(n for n in notes if n)
    return row


def _constant_rule(study: Study, part: Part, est: stats.Estimate, row: dict, notes: list) -> None:
    """Degenerate evidence is not evidence: the verdict without constant-predictor cells, and the uninformative
    rule (the verdict changes without them, or fewer than MIN_INFORMATIVE_SHARE of the cells are informative)."""
    flags = [study.cells.constant(k) for k in est.used]
    if not any(f is not None for f in flags):
        return
    constant = frozenset(k for k, f in zip(est.used, flags) if f)
    row["constant_cells"] = len(constant)
    if not constant:
        row["without_constant"] = row["judged"]
        return
    if len(constant) > MOSTLY_CONSTANT * len(est.used):
        notes.append(f"{len(constant)} of {len(est.used)} cells are constant predictors: the statistic measures "
                     "label bias more than the task")
    without, _ = _attempt(study.cells, part.compute, part.resample, part.rule(), exclude=constant)
    row["without_constant"] = without
    share = 1 - len(constant) / len(est.used)
    why = []
    if without != row["judged"]:
        why.append(f"without its {len(constant)} constant-predictor cells the verdict is {without}")
    if share < MIN_INFORMATIVE_SHARE:
        why.append(f"only {share:.0%} of its {len(est.used)} cells are informative (< {MIN_INFORMATIVE_SHARE:.0%})")
    if why:
        row["verdict"], row["uninformative_why"] = UNINFORMATIVE, "; ".join(why)


# ---------------------------------------------------------------------------------------------------------------
# running claims


def evaluate_all(df: pd.DataFrame, profile: Profile, *, sensitivity: pd.DataFrame | None = None,
                 forgetting: pd.DataFrame | None = None, method: str = "full", ids=None, n_boot: int = N_BOOT,
                 seed: int = 0, study: Study | None = None) -> pd.DataFrame:
    """The scorecard: one row per claim part (columns SCORECARD_COLUMNS), claims `ids` (default all 15).

    df: a results frame (Store.frame(items=True) for paired item resampling, or load_paper_results()).
    sensitivity / forgetting: the Springer frames for S1 / S3 (None → not measurable). method: which fine-tuning
    method's rows count where the frame has a `method` column. `study`: a stats.Study already built from these.
    """
    ids = list(CLAIMS) if ids is None else list(ids)
    unknown = [i for i in ids if i not in CLAIMS]
    if unknown:
        raise ValueError(f"unknown claim ids {unknown}; known: {list(CLAIMS)}")
    study = study or Study(df, profile, sensitivity=sensitivity, forgetting=forgetting, method=method,
                           n_boot=n_boot, seed=seed)
    rows = [_evaluate_part(study, part) for cid in ids for part in CLAIMS[cid](study)]
    table = pd.DataFrame(rows, columns=list(SCORECARD_COLUMNS))
    table.attrs.update(_source_summary(df, study))
    table.attrs["units"] = {p.id: p.units_why for cid in ids for p in CLAIMS[cid](study)}
    return table


def _source_summary(df: pd.DataFrame, study: Study) -> dict:
    rows = study.cells.rows
    classification = rows[rows["metric"].map(analysis.metric_kind).isin(["classification", "multiple_choice"])] \
        if "metric" in rows else rows.iloc[0:0]
    known = classification["constant"].map(lambda v: isinstance(v, (bool, np.bool_))) \
        if "constant" in classification else pd.Series(False, index=classification.index)
    return {"sources": sorted(map(str, df["source"].dropna().unique())) if "source" in df else [],
            "rows": len(rows), "items": bool("scores" in rows and rows["scores"].notna().any()),
            "classification_rows": len(classification), "constant_known": int(known.sum()),
            "constant_rows": int(classification.loc[known, "constant"].astype(bool).sum()) if known.any() else 0,
            "method": study.method, "profile": study.profile.name}


# ---------------------------------------------------------------------------------------------------------------
# writing the scorecard


def headline(table: pd.DataFrame) -> str:
    """'Verdicts: 3 supported (1 robust), …' — uninformative counted apart from supported and contradicted."""
    counts = table["verdict"].value_counts()
    decided = table[table["verdict"].isin([SUPPORTED, CONTRADICTED])]
    robust = decided[(decided["verdict_measurement"] == decided["verdict"])
                     & (decided["holds_leave_one_out"] == True)  # noqa: E712  (NaN / '' are not True)
                     & decided["holds_readings"].map(lambda v: v is True or v == "" or (isinstance(v, float)
                                                                                       and math.isnan(v)))]
    parts = []
    for v in VERDICTS:
        n = int(counts.get(v, 0))
        if v in (SUPPORTED, CONTRADICTED):
            parts.append(f"{n} {v} ({int((robust['verdict'] == v).sum())} robust)")
        else:
            parts.append(f"{n} {v}")
    return "Verdicts: " + ", ".join(parts) + "."


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
    constant = (f"{a['constant_rows']} of {a['constant_known']} classification / multiple-choice records are constant "
                "predictors (one label for every item)" if a.get("constant_known") else
                "not known (no predictions in the source)")
    return "\n".join([
        f"# Claims scorecard — profile `{profile.name}`", "",
        f"Source: {source}; {a.get('rows', 0)} standard {profile.shots}-shot rows"
        + (f"; fine-tuning method `{a.get('method')}`" if a.get("method") else "") + ".",
        *([f"Profile note: {profile.figure_note}."] if profile.figure_note else []),
        f"Constant predictors: {constant}.", "",
        headline(table) + " *Robust*: the same verdict under the measurement-only interval, leaving out any one "
        "unit, and every other reading of the sentence.", ""])


def _definitions(table: pd.DataFrame | None = None) -> str:
    lines = ["## Definitions", "",
             f"Verdict rule ({CONFIDENCE:.0%} CI, {N_BOOT} resamples): *supported* — the CI lies on the paper's side "
             "of the threshold (or inside ±margin for a flat claim); *contradicted* — on the other side (or wholly "
             "outside the margin); *inconclusive* — the CI straddles it; *not measurable* — the cells are missing "
             "(named); *uninformative* — constant-predictor cells decide it: without them the verdict changes, or "
             f"fewer than {MIN_INFORMATIVE_SHARE:.0%} of its cells are informative (`uninformative_why`).",
             "",
             "Intervals: `ci_low`/`ci_high` resample the units the claim ranges over (column `resampled`: task "
             "pairs, sets, tasks, checkpoints — why, per part, below), then items, then seeds — each resample draws "
             "unit counts and uses the matching item resample; `meas_low`/`meas_high` resample items and seeds only "
             "(the paper's own bootstrap), with their verdict in `verdict_measurement`. The point estimate is the "
             "same. The figures and tables draw the first interval of the same statistic (amuro_utils/stats.py).",
             "",
             "Robustness: `leave_one_out` recomputes the verdict without each unit in turn (a pair, a set, a task, a "
             "checkpoint, a group); `readings` judges the sentence's other reasonable readings; `without_constant` "
             "leaves out constant-predictor cells.",
             "",
             f"Margins: FLAT_MARGIN = {FLAT_MARGIN} (score units), RELATIVE_MARGIN = {RELATIVE_MARGIN} % of base. "
             f"Landmarks as fractions of pre-training: PLATEAU_FRACTION = {PLATEAU_FRACTION:.4f} (342k/738k), "
             f"PEAK_FRACTION = {PEAK_FRACTION:.4f} (424k/738k). `main` has one step for every statistic: the step "
             "recorded with its records (OLMo-1B: 738,020), else the profile's `main_step`.",
             "",
             "Fitted change = OLS slope of the score on log10(step) × the log10 span of the checkpoints used.", "",
             "Cells are resampled as: " + "; ".join(f"*{v}*" for v in stats.MODE_LABELS.values()) + ".",
             "A `defect` names a known defect whose cells decide the verdict (it changes when they are left out):", ""]
    lines += [f"- *{d.name}*: {d.description}" for d in DEFECTS]
    lines += ["", "Claims (ids of CLAIMS.md):", ""]
    for cid, fn in CLAIMS.items():
        doc = " ".join(line.strip() for line in (fn.__doc__ or "").strip().splitlines() if line.strip())
        lines.append(f"- **{cid}** — {doc}")
    units = (table.attrs.get("units") if table is not None else None) or {}
    if units:
        lines += ["", "Units of each part's default interval, and why:", ""]
        lines += [f"- **{pid}** — {why}" for pid, why in units.items() if why]
    return "\n".join(lines) + "\n"


def _num(v):
    return "" if v is None or isinstance(v, str) or not np.isfinite(v) else f"{v:.4g}"


def scorecard_markdown(table: pd.DataFrame) -> str:
    """The scorecard table as GitHub markdown (value and CIs rounded; robustness and notes kept)."""
    def count(v):
        return "" if v is None or isinstance(v, str) or (isinstance(v, float) and not np.isfinite(v)) else str(int(v))

    head = ("| id | claim | statistic | value | 95 % CI (resampled) | paper says | verdict | measurement-only CI → "
            "verdict | leave one out | other readings | without constant predictors | cells (constant) "
            "| defect deciding | missing / note |\n|" + "---|" * 14)
    lines = [head]
    for r in table.itertuples(index=False):
        ci = f"[{_num(r.ci_low)}, {_num(r.ci_high)}] ({r.resampled})" if np.isfinite(r.ci_low) else ""
        meas = (f"[{_num(r.meas_low)}, {_num(r.meas_high)}] → {r.verdict_measurement}" if np.isfinite(r.meas_low)
                else (r.verdict_measurement if r.verdict != NOT_MEASURABLE else ""))
        cells = f"{r.n_cells}" + (f" ({count(r.constant_cells)})" if count(r.constant_cells) else "")
        verdict_text = f"**{r.verdict}**" + (f" ({r.uninformative_why}; judged {r.judged})"
                                             if r.verdict == UNINFORMATIVE else "")
        extra = "; ".join(x for x in (r.missing and f"missing: {r.missing}", r.note) if x)
        cols = [r.id, r.claim, r.statistic, _num(r.value), ci, r.direction, verdict_text, meas, r.leave_one_out,
                r.readings, r.without_constant, cells, r.defect, extra]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(lines) + "\n"


def write_scorecard(table: pd.DataFrame, profile: Profile, stem: str = "claims") -> list:
    """figures/<profile>/<stem>.csv (every column) and <stem>.md (source header, table, definitions)."""
    from . import plots

    paths = plots.write_table(table, profile, stem)
    paths[1].write_text(_header(table, profile) + "\n" + scorecard_markdown(table) + "\n" + _definitions(table))
    return paths


def notebook_verdicts(notebook: str, df: pd.DataFrame, profile: Profile, *, sensitivity=None, forgetting=None,
                      method: str = "full", n_boot: int = N_BOOT, study: Study | None = None) -> str:
    """Markdown for a notebook's last cell: the verdicts of its own claims (NOTEBOOK_CLAIMS), computed."""
    if notebook not in NOTEBOOK_CLAIMS:
        raise ValueError(f"unknown notebook {notebook!r}; known: {sorted(NOTEBOOK_CLAIMS)}")
    table = evaluate_all(df, profile, sensitivity=sensitivity, forgetting=forgetting, method=method,
                         ids=NOTEBOOK_CLAIMS[notebook], n_boot=n_boot, study=study)
    header = _header(table, profile).replace("# Claims scorecard", f"### Claims of this notebook ({notebook})")
    return header + "\n" + scorecard_markdown(table) + \
        "\nDefinitions: `amuro_utils/claims.py` and the scorecard `figures/<profile>/claims.md`.\n"
