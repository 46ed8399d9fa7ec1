"""Every claim of Amuro & Char (Sun & Dredze) and of Springer et al. 2025 as a computed verdict: the scorecard.

One function per claim (ids of ../shared/CLAIMS.md: A1–A4 the abstract's findings, B1–B8 the statements behind
Figs. 2–7, Table 5 and Fig. 8, S1–S3 Springer et al.). Each returns one or more parts; a part is a statistic of
`amuro_utils.stats` (the same function the figures and tables read), the units it ranges over, the direction the
paper states and the other reasonable readings of the paper's sentence. Each part is judged:

- *supported*: the 95 % CI lies on the paper's side of the claim's threshold (0 unless stated), or inside ±margin
  for a "flat / no change" claim; *contradicted*: on the other side, or wholly outside ±margin; *inconclusive*: the
  CI straddles the threshold or a margin (or no CI can be formed); *not measurable*: the cells are missing (named);
- a claim about *every* unit ("every set stays flat", "at every checkpoint") is judged on each unit's own interval
  (an intersection–union test, Berger 1982: supported when every unit's 95 % CI satisfies it; contradicted when
  some unit's Bonferroni-adjusted CI lies wholly on the other side), a claim about *some* unit is the mirror image
  (judge_units); the scorecard names the deciding unit. Never the interval of a maximum or minimum taken inside
  each resample: the extreme of noisy values is biased away from the margin;
- *uninformative*: degenerate cells decide it — constant predictors on the side of the comparison where they make
  the statistic measure something else (Part.degenerate, per claim), or, for a relative change, a base whose own
  interval reaches 0 — without them the verdict changes, or fewer than MIN_INFORMATIVE_SHARE of its cells are
  informative (the reason is given); *decided by a known defect*: without a named defect's cells the verdict
  changes. Both are counted apart from the others, and neither is ever robust.

The default interval resamples the units the claim quantifies (task pairs, sets, tasks, checkpoints: `resample`,
justified per part), then items, then seeds; the measurement-only interval (items and seeds: the paper's own
bootstrap) is reported beside it with its verdict. Beside each verdict: whether it survives leaving out any one
unit (a pair, a set, a task, a checkpoint), the verdicts of the sentence's other readings, the verdict without
degenerate cells, the known defects that decide it, and its power: the smallest true effect its design detects
80 % of the time (`mde`), beside the effect the authors' release shows. Every rule's error rate at its boundary is
measured by simulation (amuro_utils.verdicts.calibration; figures/<profile>/calibration.md).

Trends over checkpoints use one statistic throughout, the *fitted change* (stats.fitted_change): the OLS slope of
the score on log10(step), times the log10 span of the checkpoints used. "Flat" claims are falsifiable through an
equivalence margin: FLAT_MARGIN in score units, RELATIVE_MARGIN for relative changes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from statistics import NormalDist

import numpy as np
import pandas as pd

from .. import stats
from ..config import paths
from ..config.profiles import PAPER_FINAL_STEP, SPRINGER_BENCHMARKS, Profile
from ..stats import CONFIDENCE, N_BOOT, Study, Unmeasurable, analysis, pair_label, signal, wmean
from ..study import stages

FLAT_MARGIN = 0.02  # accuracy / ROUGE-L F1 points (as fractions): |change| ≤ 0.02 counts as "flat" / "no gain"
RELATIVE_MARGIN = 5.0  # percent of the base score: |mean relative change| ≤ 5 % counts as "no change" (B6)
# The paper's landmarks on the OLMo-1B ladder, as fractions of pre-training (final step 738,020), so that any
# ladder has them: B1 "improvements stop past ~step 342,000", B4 "increasing until ~step 424,000".
PLATEAU_FRACTION = 342_000 / PAPER_FINAL_STEP
PEAK_FRACTION = 424_000 / PAPER_FINAL_STEP
SPRINGER_DROP = 0.02  # "over 2 % worse", read as 2 accuracy points (absolute)
MOSTLY_CONSTANT = 0.5  # a claim whose cells are more than half constant predictors says so …
MIN_INFORMATIVE_SHARE = 0.5  # … and is uninformative when fewer than half of its cells are informative
MAX_LISTED = 12  # missing cells named in a note before "… and N more"
POWER = 0.8  # the power column: the smallest true effect a part's design decides 80 % of the time
FEW_UNITS = 4  # a units interval over this many units or fewer covers them, not the kind they stand for (noted)
RELEASE_N = stats.RELEASE_N

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
UNINFORMATIVE, NOT_MEASURABLE = "uninformative", "not measurable"
DEFECT_DECIDED = "decided by a known defect"
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, UNINFORMATIVE, DEFECT_DECIDED, NOT_MEASURABLE)
EVERY, SOME = "every", "some"  # a part's quantifier over its units (None: one statistic)
SCORECARD_COLUMNS = (
    "id", "claim", "where", "statistic", "value", "ci_low", "ci_high", "resampled", "direction", "verdict",
    "judged", "deciding", "meas_low", "meas_high", "resampled_measurement", "verdict_measurement", "leave_one_out",
    "holds_leave_one_out", "readings", "holds_readings", "without_degenerate", "uninformative_why", "n_cells",
    "constant_cells", "degenerate_cells", "low_snr", "defect", "mde", "power", "paper_value", "sees_paper", "also_decides",
    "seed_spread", "missing", "note")
# Which notebook ends with which claims' verdicts: the stage registry's (amuro_utils.study.stages).
UNIT_WORDS = {"pair": "pair", "set": "set", "task": "task", "ckpt": "checkpoint", "group": "group"}
PAPER_SCORECARD = paths.REPO_ROOT / "figures" / "paper_reference" / "claims.csv"  # the release's values (paper_value)


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


def _direction_text(direction: str, threshold: float, margin: float | None, unit: str = "",
                    quantifier: str | None = None, unit_word: str = "") -> str:
    text = f"within ±{margin:g}{unit}" if direction == "≈" else f"{direction} {threshold:g}{unit}"
    return f"{quantifier} {unit_word}: {text}" if quantifier else text


@dataclasses.dataclass(frozen=True)
class Rule:
    """What a part (or one of its readings) asserts: direction, threshold or margin, interval level, and whether it
    is one statistic (quantifier None) or a claim about every / some unit."""

    direction: str
    threshold: float = 0.0
    margin: float | None = None
    confidence: float = CONFIDENCE
    quantifier: str | None = None

    def slack(self, low: float, high: float) -> float:
        """How far an interval lies inside the claim's side (> 0: satisfied); −inf without an interval."""
        if not (np.isfinite(low) and np.isfinite(high)):
            return -math.inf
        if self.direction == ">":
            return low - self.threshold
        if self.direction == "<":
            return self.threshold - high
        return min(low + self.margin, self.margin - high)

    def violation(self, low: float, high: float) -> float:
        """How far an interval lies wholly on the other side (> 0: violated); −inf without an interval."""
        if not (np.isfinite(low) and np.isfinite(high)):
            return -math.inf
        if self.direction == ">":
            return self.threshold - high
        if self.direction == "<":
            return low - self.threshold
        return max(low - self.margin, -self.margin - high)


@dataclasses.dataclass(frozen=True)
class Judgement:
    """A rule applied to an estimate: the verdict, the value and interval that decided it (for a quantified part:
    the deciding unit's, at `level`), the standard error behind it, and how the interval was formed."""

    verdict: str
    value: float
    low: float
    high: float
    level: float
    deciding: str = ""
    how: str = ""
    se: float = math.nan  # the statistic's (a quantified part's: the deciding unit's) resampled standard error
    n_units: int = 1
    unit_ses: tuple = ()  # a quantified part: every unit's standard error


def judge_units(est: stats.UnitsEstimate, rule: Rule, which: str = "units") -> Judgement:
    """The verdict on every unit / some unit, each judged on its own interval (an intersection–union test).

    every: supported when each unit's own `confidence` interval satisfies the rule (family error ≤ 1 − confidence,
    no adjustment: Berger 1982); contradicted when some unit's Bonferroni-adjusted interval (1 − (1 −
    confidence) / K) lies wholly on the other side; else inconclusive. some: supported when some unit's
    Bonferroni-adjusted interval satisfies it; contradicted when every unit's own interval lies on the other side.
    The deciding unit: the one that settles the verdict, or, when inconclusive, the one nearest to settling it.
    """
    units = est.per_unit
    k = len(units)
    family = 1 - (1 - rule.confidence) / k

    def judged(level):
        out = []
        for u in units:
            low, high, how = u.interval(which, level)
            out.append((u, low, high, how, verdict(u.point, low, high, rule.direction, rule.threshold, rule.margin)))
        return out

    own, adjusted = judged(rule.confidence), judged(family)

    ses = tuple(u.se(which) for u in units)

    def pick(rows, key, best, level, result):
        u, low, high, how, _ = (max if best else min)(rows, key=lambda r: key(r[1], r[2]))
        return Judgement(result, u.point, low, high, level, u.label, how, u.se(which), k, ses)

    if rule.quantifier == EVERY:
        violated = [r for r in adjusted if r[4] == CONTRADICTED]
        if violated:
            return pick(violated, rule.violation, True, family, CONTRADICTED)
        if all(r[4] == SUPPORTED for r in own):
            return pick(own, rule.slack, False, rule.confidence, SUPPORTED)
        return pick(own, rule.slack, False, rule.confidence, INCONCLUSIVE)
    if rule.quantifier != SOME:
        raise ValueError(f"quantifier must be {EVERY!r} or {SOME!r}, got {rule.quantifier!r}")
    satisfied = [r for r in adjusted if r[4] == SUPPORTED]
    if satisfied:
        return pick(satisfied, rule.slack, True, family, SUPPORTED)
    if all(r[4] == CONTRADICTED for r in own):
        return pick(own, rule.violation, False, rule.confidence, CONTRADICTED)
    return pick(own, rule.slack, True, rule.confidence, INCONCLUSIVE)


def judge(est, rule: Rule, which: str = "units") -> Judgement:
    """The verdict of one estimate under a rule: one statistic's interval, or judge_units for a quantified part."""
    if isinstance(est, stats.UnitsEstimate):
        return judge_units(est, rule, which)
    low, high, how = est.interval(which, rule.confidence)
    return Judgement(verdict(est.point, low, high, rule.direction, rule.threshold, rule.margin), est.point, low,
                     high, rule.confidence, "", how, est.se(which))


def detectable(judgement: Judgement, rule: Rule, power: float = POWER) -> float:
    """The smallest distance from the rule's boundary at which a true value is decided on the claim's side with
    probability `power`, under the design's noise (the resampled standard errors; normal approximation): for a
    one-sided claim the true value must lie that far beyond the threshold; for a flat claim (≈) that far inside
    ±margin. An every-unit claim needs every unit that far inside (the product of the units' chances of clearing
    their own intervals is `power`); a some-unit claim one unit that far, clearing its Bonferroni-adjusted interval
    (the noisiest unit's error: the effect may sit in any of them)."""
    ses = [s for s in judgement.unit_ses if np.isfinite(s)] or \
        ([judgement.se] if np.isfinite(judgement.se) else [])
    if not ses or max(ses) == 0:  # no spread (a zero-width interval): nothing to size a power from
        return math.nan
    if rule.quantifier == EVERY and len(ses) > 1:
        z = stats.normal_z(rule.confidence)

        def chance(d):
            return float(np.prod([NormalDist().cdf(d / s - z) if s > 0 else 1.0 for s in ses]))

        low, high = 0.0, max(ses) * (z + 10)
        for _ in range(60):  # bisection: chance() rises with d
            mid = (low + high) / 2
            low, high = (mid, high) if chance(mid) < power else (low, mid)
        return high
    z = stats.normal_z(1 - (1 - rule.confidence) / judgement.n_units) if rule.quantifier == SOME else \
        stats.normal_z(rule.confidence)
    return max(ses) * (z + _normal_quantile(power))


def _normal_quantile(p: float) -> float:
    return float(NormalDist().inv_cdf(p))


def _fmt(v: float) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:+.4g}"


def _labelled(items) -> str:
    return ", ".join(f"{item[0]} {_fmt(item[1][0])}" for item in items)


# ---------------------------------------------------------------------------------------------------------------
# parts


@dataclasses.dataclass(frozen=True)
class Degeneracy:
    """Which constant-predictor cells make a claim's statistic measure something else (a record that answers one
    label, or one string, for every item): those of the base models, of the fine-tuned models, or both — and why."""

    sides: frozenset
    why: str

    def counts(self, key: tuple) -> bool:
        """Whether a constant-predictor cell with this key is degenerate for the claim."""
        return ("base" if key[1] == "base" else "fine_tuned") in self.sides


BOTH_SIDES = Degeneracy(frozenset({"base", "fine_tuned"}),
                        "a constant predictor on either side makes the comparison one of label biases")
BASE_SIDE = Degeneracy(frozenset({"base"}), "a constant base model's score is label bias, not the task")
TUNED_SIDE = Degeneracy(frozenset({"fine_tuned"}),
                        "a fine-tuned model that answers one label for every item (flipping it from rung to rung) "
                        "shows no gain; a constant base is the 'cannot do it yet' state the claim compares against")
DROP_SIDE = Degeneracy(frozenset({"base"}),
                       "a drop from a constant base is a drop from label bias; a fine-tuned model that answers every "
                       "item alike (classification label words on a generation prompt) is the forgetting itself")


@dataclasses.dataclass
class Reading:
    """Another reasonable reading of the paper's sentence: its own statistic (and units; direction unless given)."""

    name: str
    compute: Callable  # (g, w) -> (vector, [notes]); with a quantifier: ([(unit, vector, weight)], [notes])
    resample: tuple = ()
    direction: str | None = None
    threshold: float | None = None
    margin: float | None = None
    confidence: float | None = None
    quantifier: str | None = None


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
    compute: Callable | None  # (g, w) -> (vector, [notes]); with a quantifier: ([(unit, vector, weight)], [notes])
    resample: tuple = ()  # unit dimensions of the default interval (for a quantified part: within each unit)
    units_why: str = ""  # why those units (the definitions section prints it)
    threshold: float = 0.0
    margin: float | None = None
    unit: str = ""
    cells: str = "performance"  # "performance" | "sensitivity" | "forgetting" | "union" (stats.Study.cells_for)
    names: Callable = _cell_name  # how a missing cell is named
    unmeasurable: str = ""  # set when the part cannot be computed at all (no frame, no profile field)
    readings: tuple = ()
    confidence: float = CONFIDENCE  # the interval's level
    quantifier: str | None = None  # EVERY / SOME unit (judge_units), or None: one statistic
    unit_word: str = ""  # what one unit of a quantified part is ("checkpoint", "set", …)
    degenerate: Degeneracy = BOTH_SIDES  # which constant-predictor cells make the statistic measure something else
    relative: bool = False  # a relative change: a base whose own interval reaches 0 is degenerate too
    same_as: str = ""  # the id of a part with the same statistic: one row decides both

    def rule(self, reading: Reading | None = None) -> Rule:
        """The verdict rule of this part, or of one of its readings (its own direction / threshold where given)."""
        if reading is None:
            return Rule(self.direction, self.threshold, self.margin, self.confidence, self.quantifier)
        return Rule(reading.direction or self.direction,
                    self.threshold if reading.threshold is None else reading.threshold,
                    self.margin if reading.margin is None else reading.margin,
                    self.confidence if reading.confidence is None else reading.confidence, reading.quantifier)


def _trend_mean(study: Study, items, ckpts, kind: str, what: str, last_minus_first: bool = False):
    """A statistic: the unit-weighted mean over items of their fitted change (or last − first) over `ckpts`."""
    def compute(g, w):
        changes, notes = stats.cell_trends(study, g, w, items, ckpts, kind, last_minus_first=last_minus_first)
        return wmean([(v, wt) for _, v, wt in changes], what), notes + [f"per item: {_labelled(changes)}"]
    return compute


def _trend_units(study: Study, items, ckpts, kind: str, last_minus_first: bool = False):
    """Units: each item's (set's or pair's) own fitted change (or last − first) over `ckpts` — "every set stays
    flat" judged set by set."""
    def compute(g, w):
        changes, notes = stats.cell_trends(study, g, w, items, ckpts, kind, last_minus_first=last_minus_first)
        if not changes:
            raise Unmeasurable(f"no item with 2 checkpoints among {ckpts}")
        return changes, notes + [f"checkpoints {', '.join(ckpts)}; per item: {_labelled(changes)}"]
    return compute


def _require_window(study: Study, ckpts: list, where: str, fraction: float) -> None:
    """Unmeasurable when the ladder has no checkpoint in a window of pre-training (e.g. a 2-checkpoint ladder)."""
    if not ckpts:
        raise Unmeasurable(f"no checkpoint of the ladder {study.ladder} is {where} {fraction:.0%} of pre-training "
                           f"(step {fraction * study.final_step():,.0f})")


def _pair_units(pairs, ckpts):
    """Units: each pair's mean gain over `ckpts` — "every set" / "some set" readings, judged set by set."""
    def compute(g, w):
        terms = stats.pair_gains(g, w, pairs, ckpts)
        if not terms:
            raise Unmeasurable("no pair with both rows")
        return terms, [f"per pair: {_labelled(terms)}"]
    return compute


def _row_units(pairs, ckpts):
    """Units: every (pair, checkpoint) gain — "at every checkpoint, every set"."""
    def compute(g, w):
        rows = stats.gain_rows(g, w, pairs, ckpts)
        if not rows:
            raise Unmeasurable("no (pair, checkpoint) with both rows")
        return [(f"{pair_label(r[0])} at {r[1]}", r[2], r[4]) for r in rows], [f"{len(rows)} (pair, checkpoint) rows"]
    return compute


def _ckpt_units(study: Study, pairs, relative: bool = False):
    """Units: the group's mean gain at each checkpoint (a Table 5 column), pairs resampled within each."""
    def compute(g, w):
        by_ckpt = stats.gain_by_ckpt(g, w, pairs, study.ladder, relative=relative)
        if not by_ckpt:
            raise Unmeasurable("no pair of the group")
        return [(c, v, w("ckpt", c, study.ladder)) for c, v in by_ckpt.items()], \
            [f"per checkpoint: {_labelled(by_ckpt.items())}"]
    return compute


def _ratio_of_means(pairs, ckpts):
    """The MRC's other reading over the (pair, checkpoint) rows (stats.ratio_of_means)."""
    def compute(g, w):
        rows = stats.gain_rows(g, w, pairs, ckpts)
        return stats.ratio_of_means(rows), [f"{len(rows)} rows"]
    return compute


PAIRS_WHY = "the claim is about a kind of task (its pairs are a sample of such tasks)"
CKPTS_WHY = "and about pre-training in general (its checkpoints are a sample of stages)"
EVERY_WHY = ("a statement about every listed unit: each unit is judged on its own interval (intersection–union "
             "test; a contradiction needs one unit's Bonferroni-adjusted interval on the other side)")
SOME_WHY = ("a statement about some unit: supported when one unit's Bonferroni-adjusted interval satisfies it, "
            "contradicted when every unit's own interval lies on the other side")
TREND_WHY = "checkpoints are the trend's x-axis and are not resampled"

# ---------------------------------------------------------------------------------------------------------------
# the claims: Amuro & Char, abstract


def claim_a1(study: Study) -> list[Part]:
    """A1 (abstract (i); §5, Fig. 3): pre-training improves the model latently — the fine-tuned score rises with
    pre-training on the "learned in fine-tuning" sets while their base score stays flat.

    A1a: mean over the "Learned in FT" pairs (analysis.learned_groups) of the fine-tuned score's fitted change
    over the ladder, > 0; units: pairs. Reading: the last − first checkpoint difference instead of the fit.
    A1b (the same statistic as B1c: one row decides both): every one of those pairs' sets keeps its base score
    flat — each set's fitted change within ±FLAT_MARGIN, judged set by set. Reading: last − first per set.
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
                                                                      "fine-tuned change", True), ("pair",)),),
             degenerate=TUNED_SIDE),
        Part("A1b", "… while the base score of those sets stays flat", "abstract (i); §5, Fig. 3",
             "fitted change of the base score, per set", "≈", _trend_units(study, sets, ladder, "base"), (),
             EVERY_WHY, margin=FLAT_MARGIN, quantifier=EVERY, unit_word="set", degenerate=BASE_SIDE,
             readings=(Reading("last − first, per set", _trend_units(study, sets, ladder, "base", True),
                               quantifier=EVERY),)),
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
                 readings=(Reading("relative gain (% of base)", diff(True), ("pair", "ckpt")),),
                 degenerate=TUNED_SIDE)]


def claim_a3(study: Study) -> list[Part]:
    """A3 (abstract (iii); §6.2–6.3, Figs. 6–7): fine-tuning can forget — performance on a task or domain not seen
    in fine-tuning drops.

    Some group drops: over the groups Class→Gen, Gen→Class (Fig. 6) and each OOD group (Fig. 7), each group's mean
    raw change (fine-tuned − base) over its (pair, checkpoint) rows, < 0 for some group — judged group by group
    (judge_units: supported when one group's Bonferroni-adjusted interval lies below 0; contradicted when every
    group's own interval lies above it). Units within a group: pairs × checkpoints. Reading: some pair drops (each
    pair's mean change over the ladder, checkpoints resampled).
    """
    groups = stats.forgetting_groups(study.profile)
    names = list(groups)
    every_pair = list(dict.fromkeys(p for pairs in groups.values() for p in pairs))

    def per_group(g, w):
        means = []
        for name, pairs in groups.items():
            try:
                means.append((name, stats.mean_gain(g, w, pairs, study.ladder), w("group", name, names)))
            except Unmeasurable:
                continue
        if not means:
            raise Unmeasurable("no cross-task or OOD pair with both rows")
        return means, [f"group means: {_labelled(means)}"]

    return [Part("A3", "fine-tuning forgets: some unseen task or domain drops", "abstract (iii); §6.2–6.3, Figs. 6–7",
                 "mean raw change, per cross-task / OOD group", "<", per_group, ("pair", "ckpt"),
                 f"{SOME_WHY}; pairs within a group: {PAIRS_WHY}; checkpoints: {CKPTS_WHY}", quantifier=SOME,
                 unit_word="group", degenerate=DROP_SIDE,
                 readings=(Reading("some pair drops (each pair's mean change)", _pair_units(every_pair, study.ladder),
                                   ("ckpt",), quantifier=SOME),))]


def _on_reading(study: Study) -> bool:
    """Whether the study's scores are a continuous reading (signal.claim_view), not the paper's metric."""
    return bool(getattr(study.df, "attrs", {}).get("reading"))


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
            return value, [] if _on_reading(study) else ["scores mix accuracy and ROUGE-L"]
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
                            for a in ("max", "min")), degenerate=BOTH_SIDES),
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
    B1b: every one of them levels off — each set's fitted change over the checkpoints from PLATEAU_FRACTION
    (342k/738k) of pre-training on within ±FLAT_MARGIN, judged set by set. B1c: every "Learned in FT" set's base
    score stays flat, each set's fitted change over the ladder within ±FLAT_MARGIN (the statistic of A1b: one row
    decides both). Readings: last − first instead of the fit.
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
                               ("set",)),), degenerate=BASE_SIDE),
        Part("B1b", "… and level off past ~step 342,000", "§4, Fig. 2",
             "fitted change of the base score from 46 % of pre-training on, per set", "≈",
             _trend_units(study, pt, late, "base"), (), EVERY_WHY, margin=FLAT_MARGIN, quantifier=EVERY,
             unit_word="set", degenerate=BASE_SIDE,
             readings=(Reading("last − first, per set", _trend_units(study, pt, late, "base", True),
                               quantifier=EVERY),)),
        Part("B1c", "the fine-tuning tasks' base scores stay flat", "§4, Fig. 2",
             "fitted change of the base score, per set", "≈", _trend_units(study, ft, ladder, "base"), (), EVERY_WHY,
             margin=FLAT_MARGIN, quantifier=EVERY, unit_word="set", degenerate=BASE_SIDE, same_as="A1b",
             readings=(Reading("last − first, per set", _trend_units(study, ft, ladder, "base", True),
                               quantifier=EVERY),)),
    ]


def claim_b2(study: Study) -> list[Part]:
    """B2 (§5, Fig. 3b, Table 5): datasets learned in pre-training do not improve with fine-tuning at any checkpoint.

    At every checkpoint, the "Learned in PT" group's mean raw change (Table 5 row) < FLAT_MARGIN, judged checkpoint
    by checkpoint (judge_units); units within a checkpoint: pairs (the group mean). Reading: per set — every
    (pair, checkpoint) gain < FLAT_MARGIN.
    """
    pairs = analysis.learned_groups(study.profile)[analysis.GROUP_PT]
    return [Part("B2", "sets learned in pre-training gain nothing from fine-tuning at any checkpoint",
                 "§5, Fig. 3b, Table 5", "Learned-in-PT mean gain, per checkpoint", "<", _ckpt_units(study, pairs),
                 ("pair",), f"{EVERY_WHY} ('at any checkpoint'); pairs within a checkpoint: {PAIRS_WHY}",
                 threshold=FLAT_MARGIN, quantifier=EVERY, unit_word="checkpoint", degenerate=TUNED_SIDE,
                 readings=(Reading("per set: every (pair, checkpoint) gain", _row_units(pairs, study.ladder),
                                   quantifier=EVERY),))]


def claim_b3(study: Study) -> list[Part]:
    """B3 (§5, Fig. 4, Table 5): datasets not learned in pre-training improve with fine-tuning at every checkpoint.

    At every checkpoint, the "Learned in FT" group's mean raw change (Table 5 row) > 0, judged checkpoint by
    checkpoint (judge_units); units within a checkpoint: pairs. Reading: per set — every (pair, checkpoint) gain > 0.
    """
    pairs = analysis.learned_groups(study.profile)[analysis.GROUP_FT]
    return [Part("B3", "sets not learned in pre-training gain from fine-tuning at every checkpoint",
                 "§5, Fig. 4, Table 5", "Learned-in-FT mean gain, per checkpoint", ">", _ckpt_units(study, pairs),
                 ("pair",), f"{EVERY_WHY} ('at every checkpoint'); pairs within a checkpoint: {PAIRS_WHY}",
                 quantifier=EVERY, unit_word="checkpoint", degenerate=TUNED_SIDE,
                 readings=(Reading("per set: every (pair, checkpoint) gain", _row_units(pairs, study.ladder),
                                   quantifier=EVERY),))]


def claim_b4(study: Study) -> list[Part]:
    """B4 (§5): the benefit of fine-tuning keeps increasing until ~step 424,000, then levels off; earlier
    checkpoints obtain larger gains than later ones.

    On the "Learned in FT" group's mean change per checkpoint (Table 5 row): B4a its fitted change over the
    checkpoints up to PEAK_FRACTION (424k/738k) of pre-training, > 0; B4b its fitted change from there on,
    within ±FLAT_MARGIN (units: pairs); B4c mean gain at the checkpoints before PLATEAU_FRACTION (1k, 18k on OLMo-1B)
    minus the mean gain at the later ones, > 0 (units: pairs × checkpoints within each window). Read in raw change,
    as Table 5 reports it; the other readings are the relative change (% of base), and "the first checkpoint's
    relative gain beats every later one" (on the release step 1000's +292 % does, the early mean does not), judged
    checkpoint by checkpoint.
    """
    pairs = analysis.learned_groups(study.profile)[analysis.GROUP_FT]
    rising, after = study.until(PEAK_FRACTION), study.from_(PEAK_FRACTION)
    early, late = study.before(PLATEAU_FRACTION), study.from_(PLATEAU_FRACTION)

    def trend(ckpts, relative=False):
        def compute(g, w):
            by_ckpt = stats.gain_by_ckpt(g, w, pairs, ckpts, relative=relative)
            change = stats.trend(study, g, w, by_ckpt.get, ckpts)
            if change is None:
                raise Unmeasurable(f"fewer than 2 of {ckpts} with Learned-in-FT gains")
            return change, [f"checkpoints {', '.join(by_ckpt)}"]
        return compute

    def early_minus_late(relative=False):
        def compute(g, w):
            _require_window(study, early, "before", PLATEAU_FRACTION)
            e, lt = (stats.window_gain(g, w, pairs, window, relative) for window in (early, late))
            return e - lt, [f"early {', '.join(early)}: {_fmt(e[0])}; late: {_fmt(lt[0])}"]
        return compute

    def first_beats_later(g, w):
        by_ckpt = stats.gain_by_ckpt(g, w, pairs, study.ladder, relative=True)
        if len(by_ckpt) < 2:
            raise Unmeasurable("fewer than 2 checkpoints with Learned-in-FT gains")
        first, *later = by_ckpt
        return [(c, by_ckpt[first] - by_ckpt[c], w("ckpt", c, later)) for c in later], \
            [f"{first}: {_fmt(by_ckpt[first][0])} %"]

    return [
        Part("B4a", "the gain from fine-tuning increases until ~step 424,000", "§5, Table 5",
             "fitted change of the Learned-in-FT mean gain up to 57 % of pre-training", ">", trend(rising),
             ("pair",), f"pairs: {PAIRS_WHY}; {TREND_WHY}",
             readings=(Reading("relative gain (% of base)", trend(rising, True), ("pair",)),), degenerate=TUNED_SIDE),
        Part("B4b", "… and levels off after it", "§5, Table 5",
             "fitted change of the Learned-in-FT mean gain from 57 % of pre-training on", "≈", trend(after),
             ("pair",), f"pairs: {PAIRS_WHY}; {TREND_WHY}", margin=FLAT_MARGIN, degenerate=TUNED_SIDE),
        Part("B4c", "earlier checkpoints obtain larger gains than later ones", "§5",
             "mean gain (checkpoints < 46 %) − mean gain (≥ 46 %)", ">", early_minus_late(), ("pair", "ckpt"),
             f"pairs: {PAIRS_WHY}; checkpoints within each window: {CKPTS_WHY}",
             readings=(Reading("relative gain (% of base)", early_minus_late(True), ("pair", "ckpt")),
                       Reading("the first checkpoint's relative gain beats every later one (per later checkpoint, %)",
                               first_beats_later, ("pair",), quantifier=EVERY)), degenerate=TUNED_SIDE),
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
                            for a in ("max", "min")), degenerate=BOTH_SIDES),
        Part("B5b", "later checkpoints: fine-tuned models are more flexible across formats", "§6.1, Fig. 5",
             "fine-tuned format gap, late − early", "<", late_minus_early("mean"), ("task", "ckpt"), why,
             readings=tuple(Reading(f"gap against the {a} of the other formats", late_minus_early(a),
                                    ("task", "ckpt")) for a in ("max", "min")), degenerate=BOTH_SIDES),
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
                                          ("pair", "ckpt")),), degenerate=DROP_SIDE, relative=True),
        Part("B6b", "generation→classification transfer does not (+0.3 %, n.s.)", "§6.2, Fig. 6",
             "mean relative change Gen→Class (%)", "≈", mrc(directions["Gen→Class"]), ("pair", "ckpt"), why,
             margin=RELATIVE_MARGIN, unit=" %",
             readings=(Reading("ratio of means", _ratio_of_means(directions["Gen→Class"], study.ladder),
                               ("pair", "ckpt")),), degenerate=BOTH_SIDES, relative=True),
    ]


def claim_b7(study: Study) -> list[Part]:
    """B7 (§6.3, Fig. 7, Fig. 10): fine-tuning on MNLI boosts every out-of-domain NLI set; fine-tuning on PAWS
    hurts the other paraphrase sets — both learning and forgetting happen.

    Mean raw change (fine-tuned − base) over the group's (OOD set, checkpoint) rows (analysis.ood_groups, the Fig.
    7 bars): B7a NLI, > 0; B7b Paraphrase Detection, < 0. Units: sets × checkpoints. Reading: per set — every OOD
    set gains (B7a, "boosts every") / drops (B7b), each set's mean change judged on its own interval.
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

    def every(name):
        def compute(g, w):
            if name not in groups:
                raise Unmeasurable(f"profile {study.profile.name!r} has no {name} task with OOD sets")
            return _pair_units(groups[name], study.ladder)(g, w)
        return compute

    why = f"OOD sets: {PAIRS_WHY}; checkpoints: {CKPTS_WHY}"
    return [
        Part("B7a", "fine-tuning on NLI boosts the out-of-domain NLI sets", "§6.3, Fig. 7",
             "mean raw change, OOD NLI group", ">", group_mean("NLI"), ("pair", "ckpt"), why,
             readings=(Reading("every OOD NLI set gains (per set)", every("NLI"), ("ckpt",), quantifier=EVERY),),
             degenerate=TUNED_SIDE),
        Part("B7b", "fine-tuning on paraphrase hurts the other paraphrase sets", "§6.3, Fig. 7",
             "mean raw change, OOD Paraphrase group", "<", group_mean("Paraphrase Detection"), ("pair", "ckpt"), why,
             readings=(Reading("every OOD paraphrase set drops (per set)", every("Paraphrase Detection"), ("ckpt",),
                               quantifier=EVERY),), degenerate=DROP_SIDE),
    ]


def claim_b8(study: Study) -> list[Part]:
    """B8 (§3, Fig. 8 (appendix)): instruction tuning improves instruction following (LLMBar) and leaves the
    benchmarks learned in pre-training about unchanged.

    Raw change instruction-tuned − base. B8a: mean over (LLMBar split, checkpoint), > 0. B8b: mean over
    ("Learned in PT" benchmark, checkpoint), each benchmark once, within ±FLAT_MARGIN. Units: splits / benchmarks
    × checkpoints. Readings: every split gains (B8a); every benchmark's mean change within ±FLAT_MARGIN (B8b),
    each judged on its own interval.
    """
    it = study.profile.instruction
    benchmarks = list(dict.fromkeys(e for e, _ in analysis.learned_groups(study.profile)[analysis.GROUP_PT]))

    def mean_gain(sets):
        pairs = [(s, it.name) for s in sets]

        def compute(g, w):
            value = stats.mean_gain(g, w, pairs, study.ladder)
            return value, [f"{stats.count_rows(study, pairs, study.ladder)} rows"]
        return compute

    why = f"splits / benchmarks: {PAIRS_WHY}; checkpoints: {CKPTS_WHY}"
    pairs = [(s, it.name) for s in it.llmbar]
    return [
        Part("B8a", "instruction tuning improves instruction following (LLMBar)", "§3, Fig. 8",
             "mean gain on LLMBar", ">", mean_gain(it.llmbar), ("pair", "ckpt"), why,
             readings=(Reading("every split gains (per split)", _pair_units(pairs, study.ladder), ("ckpt",),
                               quantifier=EVERY),), degenerate=TUNED_SIDE),
        Part("B8b", "… and leaves the benchmarks learned in pre-training about unchanged", "§3, Fig. 8",
             "mean gain on the Learned-in-PT benchmarks", "≈", mean_gain(benchmarks), ("pair", "ckpt"), why,
             margin=FLAT_MARGIN,
             readings=(Reading("every benchmark unchanged (per benchmark)",
                               _pair_units([(s, it.name) for s in benchmarks], study.ladder), ("ckpt",),
                               quantifier=EVERY),), degenerate=BOTH_SIDES),
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
            mean, changes = stats.sensitivity_change(study, g, w, scaling, magnitudes, last_minus_first)
            return mean, [f"per magnitude: {_labelled(changes)}"]

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
                f"benchmarks: {PAIRS_WHY}", degenerate=TUNED_SIDE)
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
        return stats.change_between(g, w, sets, it, early, late)

    def compute(g, w):
        found = diffs(g, w)
        lacking = f"; not evaluated by this source: {', '.join(absent)}" if absent else ""
        mean = wmean([(d, wt) for _, d, wt in found], f"benchmark with {it} rows at both {early} and {late}{lacking}")
        notes = [f"{early} → {late}: {_labelled(found)}"]
        if not _on_reading(study):  # the drop is in accuracy points
            notes.append(f"below −{SPRINGER_DROP:g} (Springer's 'over 2 % worse'): "
                         f"{'yes' if stats.interval(mean[1:], point=mean[0])[1] < -SPRINGER_DROP else 'not shown'}")
        if absent:
            notes.append(f"not evaluated by this source: {', '.join(absent)}")
        return mean, notes

    part.compute = compute
    part.readings = (Reading("every benchmark ends worse (per benchmark)", lambda g, w: (diffs(g, w), []),
                             quantifier=EVERY),)
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


def _estimate(cells, compute, resample, quantifier, **kwargs):
    """stats.estimate_units for a quantified part, stats.estimate for one statistic."""
    return (stats.estimate_units if quantifier else stats.estimate)(cells, compute, resample, **kwargs)


def _attempt(cells, compute, resample, rule: Rule, **kwargs) -> tuple[str, Judgement | None]:
    """(verdict under the default interval, its judgement) — 'not measurable' when the statistic cannot be formed."""
    try:
        est = _estimate(cells, compute, resample, rule.quantifier, measurement=False, **kwargs)
    except Unmeasurable:
        return NOT_MEASURABLE, None
    judgement = judge(est, rule)
    return judgement.verdict, judgement


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


def _leave_one_out(cells, part: Part, est, judged: str) -> tuple[str, bool]:
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
        result, judgement = _attempt(cells, reading.compute, reading.resample, part.rule(reading))
        value = ""
        if judgement is not None:
            value = f" ({judgement.deciding} {_fmt(judgement.value)})" if judgement.deciding else \
                f" ({_fmt(judgement.value)})"
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
               direction=_direction_text(part.direction, part.threshold, part.margin, part.unit, part.quantifier,
                                         part.unit_word),
               value=math.nan, ci_low=math.nan, ci_high=math.nan, meas_low=math.nan, meas_high=math.nan,
               verdict=NOT_MEASURABLE, judged=NOT_MEASURABLE, verdict_measurement=NOT_MEASURABLE, n_cells=0,
               constant_cells=math.nan, degenerate_cells=math.nan, seed_spread=math.nan, mde=math.nan,
               paper_value=math.nan, holds_leave_one_out=math.nan, holds_readings=math.nan)
    return row


def decide(study: Study, part: Part, cells=None) -> tuple[str, Judgement | None]:
    """The part's verdict as the scorecard gives it, less the robustness columns and known defects: the rule on
    the default interval, then the degenerate-cell rule (uninformative). What the calibration simulates."""
    cells = study.cells_for(part.cells) if cells is None else cells
    try:
        est = _estimate(cells, part.compute, part.resample, part.quantifier, measurement=False)
    except Unmeasurable:
        return NOT_MEASURABLE, None
    judgement = judge(est, part.rule())
    row = {"judged": judgement.verdict, "verdict": judgement.verdict}
    if part.cells == "performance":
        _degenerate_rule(study, part, est, row, [], cells)
    return row["verdict"], judgement


def _evaluate_part(study: Study, part: Part) -> dict:
    row = _empty_row(part)
    if part.unmeasurable:
        row["missing"] = part.unmeasurable
        return row
    cells = study.cells_for(part.cells)
    try:
        est = _estimate(cells, part.compute, part.resample, part.quantifier)
    except Unmeasurable as err:
        row["missing"] = _listed(_missing_names(study, part, err.missing))
        row["note"] = str(err)
        return row
    notes = list(est.notes)
    row["missing"] = _listed(_missing_names(study, part, est.missing))
    row["n_cells"] = len(est.used)
    rule = part.rule()
    main, measured = judge(est, rule), judge(est, rule, "measurement")
    row.update(value=main.value, ci_low=main.low, ci_high=main.high, meas_low=measured.low, meas_high=measured.high,
               judged=main.verdict, verdict=main.verdict, resampled=est.describe("units"),
               resampled_measurement=est.describe("measurement"), verdict_measurement=measured.verdict)
    if part.quantifier:
        row["deciding"] = (f"{part.unit_word} {main.deciding}: {_fmt(main.value)} [{_fmt(main.low)}, "
                           f"{_fmt(main.high)}] ({main.level:.2%} CI, {main.n_units} {part.unit_word}s)")
        notes.append(_units_note(est, rule))
    if main.how:
        notes.append(main.how)
    few = [f"{len(est.units[d])} {UNIT_WORDS.get(d, d)}s" for d in est.resampled_here if len(est.units[d]) <= FEW_UNITS]
    if few and not part.quantifier:
        notes.append(f"the interval resamples only {' × '.join(few)}: it covers these units; read as a sample of "
                     "such units it is too narrow (calibration.md, 'When the units are a sample')")
    if est.modes == ["fixed"]:
        notes.append("no measurement CI: no cell carries items, seeds or a standard error")
    elif "fixed" in est.modes:
        notes.append("some cells are not resampled: the CI is too narrow")
    if main.low == main.high == main.value:
        notes.append("zero-width CI: the compared cells agree on every resampled item")
    row["leave_one_out"], row["holds_leave_one_out"] = _leave_one_out(cells, part, est, main.verdict)
    if part.readings:
        row["readings"], row["holds_readings"] = _readings(cells, part, main.verdict)
    if part.cells == "performance":
        _degenerate_rule(study, part, est, row, notes)
        row["low_snr"] = "; ".join(signal.low_snr(study, est.used))
        unpaired = sorted({k[0] for k in est.used if k[0] in cells.unpaired})
        if unpaired:
            notes.append("unpaired (records of one set with different n): " + ", ".join(
                f"{s} n={cells.unpaired[s]}" for s in unpaired))
        row["defect"], defect_notes = _defects(study, part, est.used, main.verdict)
        notes += defect_notes
        if row["defect"]:
            row["verdict"] = DEFECT_DECIDED
    row["mde"], row["power"] = _power(main, rule, part.unit)
    degenerate = row["degenerate_cells"]
    if row["power"] and isinstance(degenerate, (int, float)) and degenerate > 0:
        row["power"] += (f" — optimistic: {int(degenerate)} of its {len(est.used)} cells are degenerate and carry no "
                         "effect")
    spreads = [s for s in (cells.seed_sd(k) for k in est.used) if np.isfinite(s)]
    if spreads:
        row["seed_spread"] = float(np.mean(spreads))
        notes.append(f"{len(spreads)} cells with several seeds (mean seed sd {np.mean(spreads):.4g})")
    row["note"] = "; ".join(n for n in notes if n)
    return row


def _units_note(est: stats.UnitsEstimate, rule: Rule) -> str:
    """Every unit's point and own interval, in one note."""
    parts = []
    for u in est.per_unit:
        low, high, _ = u.interval("units", rule.confidence)
        parts.append(f"{u.label} {_fmt(u.point)} [{_fmt(low)}, {_fmt(high)}]")
    return f"per unit ({rule.confidence:.0%} CI): " + ", ".join(parts)


def _power(judgement: Judgement, rule: Rule, unit: str = "") -> tuple[float, str]:
    """(mde, in words): how far inside the claim's side a true value must lie to be supported 80 % of the time,
    and how far outside to be contradicted, under this design's noise (detectable)."""
    support, contradict = detectable(judgement, rule), detectable(judgement, _mirror(rule))
    if not np.isfinite(support):
        return math.nan, ("no spread to size a power from: the interval has zero width" if judgement.se == 0 else "")
    who = "every unit" if rule.quantifier == EVERY else "some unit" if rule.quantifier == SOME else "true value"
    contra_who = "some unit" if rule.quantifier == EVERY else "every unit" if rule.quantifier == SOME else "it"
    if rule.direction == "≈":
        inside = (f"supported if {who} lies within ±{rule.margin - support:.3g}{unit}" if support < rule.margin else
                  f"cannot confirm ±{rule.margin:g}{unit} (needs a standard error ≤ "
                  f"{judgement.se * rule.margin / support:.3g}, has {judgement.se:.3g})")
        return support, f"{inside}; contradicted if {contra_who} lies beyond ±{rule.margin + contradict:.3g}{unit}"
    sign = 1 if rule.direction == ">" else -1
    return support, (f"supported if {who} is {rule.direction} {rule.threshold + sign * support:.3g}{unit}; "
                     f"contradicted if {contra_who} is {'<' if sign > 0 else '>'} "
                     f"{rule.threshold - sign * contradict:.3g}{unit}")


def _mirror(rule: Rule) -> Rule:
    """The rule whose support is this rule's contradiction (for its power): every ↔ some, the sides swapped."""
    quantifier = {EVERY: SOME, SOME: EVERY}.get(rule.quantifier)
    return dataclasses.replace(rule, quantifier=quantifier)


def _reaches_zero(cells, key: tuple) -> bool:
    """Whether a cell's own measurement interval reaches 0 (a base a relative change cannot divide by)."""
    vec = cells.vector(key)
    if vec is None:
        return False
    low, _ = stats.percentile_ci(vec[1:])
    return bool(vec[0] == 0 or (np.isfinite(low) and low <= 0))


def _degenerate_rule(study: Study, part: Part, est, row: dict, notes: list, cells=None) -> None:
    """Degenerate evidence is not evidence: the verdict without the cells that make this claim's statistic measure
    something else — constant predictors on the side Part.degenerate names, and, for a relative change, base cells
    whose own interval reaches 0 — and the uninformative rule (the verdict changes without them, or fewer than
    MIN_INFORMATIVE_SHARE of the cells are informative)."""
    cells = study.cells if cells is None else cells
    flags = {k: cells.constant(k) for k in est.used}
    known = any(f is not None for f in flags.values())
    constant = [k for k, f in flags.items() if f]
    near_zero = [k for k in est.used if k[1] == "base" and _reaches_zero(cells, k)] if part.relative else []
    if not known and not near_zero:
        return
    row["constant_cells"] = len(constant) if known else math.nan
    degenerate = frozenset(k for k in constant if part.degenerate.counts(k)) | frozenset(near_zero)
    row["degenerate_cells"] = len(degenerate)
    if len(constant) > MOSTLY_CONSTANT * len(est.used):
        notes.append(f"{len(constant)} of {len(est.used)} cells are constant predictors: the statistic measures "
                     "label bias more than the task")
    if not degenerate:
        row["without_degenerate"] = row["judged"]
        return
    without, _ = _attempt(cells, part.compute, part.resample, part.rule(), exclude=degenerate)
    row["without_degenerate"] = without
    kinds = []
    n_constant = len(degenerate - frozenset(near_zero))
    if n_constant:
        kinds.append(f"{n_constant} constant-predictor cells ({part.degenerate.why})")
    if near_zero:
        kinds.append(f"{len(near_zero)} base cells whose interval reaches 0 (a relative change against them is not "
                     "evidence)")
    what = " and ".join(kinds)
    share = 1 - len(degenerate) / len(est.used)
    why = []
    if without != row["judged"]:
        why.append(f"without its {what} the verdict is {without}")
    if share < MIN_INFORMATIVE_SHARE:
        why.append(f"only {share:.0%} of its {len(est.used)} cells are informative (< {MIN_INFORMATIVE_SHARE:.0%}; "
                   f"degenerate: {what})")
    if why:
        row["verdict"], row["uninformative_why"] = UNINFORMATIVE, "; ".join(why)


# ---------------------------------------------------------------------------------------------------------------
# running claims


def evaluate_all(df: pd.DataFrame, profile: Profile, *, sensitivity: pd.DataFrame | None = None,
                 forgetting: pd.DataFrame | None = None, method: str = "full", ids=None, n_boot: int = N_BOOT,
                 seed: int = 0, study: Study | None = None) -> pd.DataFrame:
    """The scorecard: one row per claim part (columns SCORECARD_COLUMNS), claims `ids` (default all 15); a part
    with the same statistic as an earlier one (Part.same_as: B1c is A1b) is that row's `also_decides`.

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
    parts = [part for cid in ids for part in CLAIMS[cid](study)]
    present = {p.id for p in parts}
    rows, by_id = [], {}
    for part in parts:
        if part.same_as in present:
            first = by_id[part.same_as]
            first["also_decides"] = ", ".join(x for x in (first["also_decides"], part.id) if x)
            first["claim"] += f" = {part.id}: {part.claim}"
            continue
        by_id[part.id] = _evaluate_part(study, part)
        rows.append(by_id[part.id])
    table = pd.DataFrame(rows, columns=list(SCORECARD_COLUMNS))
    table.attrs.update(_source_summary(df, study))
    table.attrs["n_boot"] = study.n_boot
    table.attrs["units"] = {p.id: p.units_why for p in parts}
    _paper_columns(table, parts)
    return table


# ---------------------------------------------------------------------------------------------------------------
# the same claims on continuous readings (beside the paper's metric, never instead)

READING_COLUMNS = ("id", "reading", "statistic", "direction", "value", "ci_low", "ci_high", "resampled", "verdict",
                   "deciding", "verdict_measurement", "holds_leave_one_out", "n_cells", "low_snr", "defect", "mde",
                   "power", "paper_metric_verdict", "missing", "note")
NOT_ON_READING = "not judged on a reading"


def reading_why_not(part: Part) -> str:
    """Why a part is not judged on a continuous reading ('' when it is): only claims about a direction (> 0, < 0) of
    accuracy or ROUGE-L carry over; a margin or threshold is in the paper metric's units and a relative change
    needs a zero the readings do not have."""
    if part.cells != "performance" or part.unit.strip() == "nats":
        return "not a claim about accuracy or ROUGE-L"
    if part.relative:
        return "a relative change (% of base) needs a score whose 0 means nothing learned; log-probabilities have none"
    if part.direction not in (">", "<") or part.margin is not None or part.threshold != 0:
        return (f"its boundary ({_direction_text(part.direction, part.threshold, part.margin, part.unit, None, '')})"
                " is in the paper metric's units")
    return ""


def evaluate_readings(df: pd.DataFrame, profile: Profile, *, paper: pd.DataFrame | None = None,
                      method: str = "full", ids=None, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Every claim part about a direction of accuracy or ROUGE-L judged again on each continuous reading
    (signal.claim_view: 'answer text' and 'discrimination', higher = better on every set) with the same
    statistic, units, interval, rule and power column (one row per part and reading, READING_COLUMNS); parts whose
    boundary does not carry over are listed as NOT_ON_READING with why. `paper`: the scorecard on the paper's
    metric (its verdict beside each row). Empty where no record carries readings (the release)."""
    from ..stats import signal

    ids = list(CLAIMS) if ids is None else list(ids)
    rows = []
    paper_verdicts = {} if paper is None else {pid: part_row(paper, pid)["verdict"]
                                               for pid in paper["id"].tolist() + [
                                                   x for v in paper["also_decides"] for x in str(v).split(", ") if x]}
    for measures in signal.CLAIM_READING_LABELS:
        view = signal.claim_view(df, measures)
        if not len(view):
            continue
        study = Study(view, profile, method=method, n_boot=n_boot, seed=seed)
        for part in (p for cid in ids for p in CLAIMS[cid](study)):
            if part.same_as or part.id.startswith("S1") or part.id.startswith("S3"):
                continue  # B1c is A1b's row; the Springer held-out-loss parts are no accuracy claims
            why = reading_why_not(part)
            row = {c: "" for c in READING_COLUMNS}
            row.update(id=part.id, reading=measures, statistic=part.statistic, value=math.nan, ci_low=math.nan,
                       ci_high=math.nan, mde=math.nan, n_cells=0, holds_leave_one_out=math.nan,
                       paper_metric_verdict=paper_verdicts.get(part.id, ""),
                       direction=_direction_text(part.direction, part.threshold, part.margin, part.unit,
                                                 part.quantifier, part.unit_word))
            if why:
                row.update(verdict=NOT_ON_READING, note=why)
            else:
                full = _evaluate_part(study, part)
                row.update({c: full[c] for c in READING_COLUMNS if c in full and c not in ("reading", "id")})
            rows.append(row)
    table = pd.DataFrame(rows, columns=list(READING_COLUMNS))
    table.attrs.update(n_boot=n_boot, labels=dict(signal.CLAIM_READING_LABELS))
    return table


def readings_markdown(table: pd.DataFrame, profile: Profile) -> str:
    """The claims on continuous readings as markdown: what each reading is, then one table per reading (the paper
    metric's verdict beside each), the parts not judged on a reading listed once with why."""
    lines = [f"# The claims on continuous readings — profile `{profile.name}`", "",
             "Accuracy and ROUGE-L decide the paper's verdicts (`claims.md`). Here every claim part about a direction "
             "of those scores is judged again, with the same statistic, units, interval, rule and power column, on "
             "a continuous reading of the same records (`amuro_utils.stats.signal`), higher = better on every set. "
             "Readings of different kinds of scoring are in different units (nats of a label word, bits per byte); "
             "a mean over sets mixes them as the paper's mixes accuracy and ROUGE-L, so only its sign is judged. "
             "Calibration on the run's reading noise: `calibration_readings.md` where measured "
             "(`benchmarks/bench_calibration.py --profile tiny --reading 'answer text'`).", ""]
    if not len(table):
        return "\n".join(lines + ["No record of this profile carries continuous readings (the release has none)."]) + "\n"
    for measures, label in table.attrs.get("labels", {}).items():
        mine = table[(table["reading"] == measures) & (table["verdict"] != NOT_ON_READING)]
        if not len(mine):
            continue
        counts = mine["verdict"].value_counts()
        lines += [f"## {label}", "", "Verdicts: " + ", ".join(f"{int(counts.get(v, 0))} {v}" for v in VERDICTS
                                                             if counts.get(v, 0)) + ".", "",
                  "| id | statistic | value | CI (resampled) | claim | verdict | deciding unit | power (80 %) | "
                  "paper metric's verdict | cells (SNR < 1) | note |", "|" + "---|" * 11]
        for r in mine.itertuples(index=False):
            ci = f"[{_num(r.ci_low)}, {_num(r.ci_high)}] ({r.resampled})" if np.isfinite(r.ci_low) else ""
            cells = f"{r.n_cells}" + (f"; SNR < 1: {r.low_snr}" if r.low_snr else "")
            note = "; ".join(x for x in (r.missing and f"missing: {r.missing}", r.defect and f"defect: {r.defect}",
                                         r.note) if x)
            cols = [r.id, r.statistic, _num(r.value), ci, r.direction, f"**{r.verdict}**", r.deciding, r.power,
                    r.paper_metric_verdict, cells, note]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cols) + " |")
        lines.append("")
    skipped = table[table["verdict"] == NOT_ON_READING].drop_duplicates("id")
    if len(skipped):
        lines += ["Not judged on a reading:", ""] + [f"- **{r.id}** — {r.note}" for r in skipped.itertuples()]
    return "\n".join(lines) + "\n"


def readings_summary(table: pd.DataFrame) -> str:
    """The scorecard's section on the continuous readings: per reading, the parts judged and their verdicts beside
    the paper metric's (where the two differ, named)."""
    lines = ["## The same claims on continuous readings", "",
             "Beside the paper's metric, never instead: each claim part about a direction of accuracy or ROUGE-L "
             "judged on each continuous reading ([claims_readings.md](claims_readings.md): values, intervals, power)."]
    for measures, label in table.attrs.get("labels", {}).items():
        mine = table[(table["reading"] == measures) & (table["verdict"] != NOT_ON_READING)]
        if not len(mine):
            continue
        counts = mine["verdict"].value_counts()
        differ = [f"{r.id} ({r.paper_metric_verdict} → {r.verdict})" for r in mine.itertuples()
                  if r.paper_metric_verdict and r.verdict != r.paper_metric_verdict]
        lines += ["", f"- *{label}*: " + ", ".join(f"{int(counts.get(v, 0))} {v}" for v in VERDICTS
                                                   if counts.get(v, 0))
                  + (f"; differs from the paper's metric on {', '.join(differ)}" if differ else
                     "; every verdict as on the paper's metric") + "."]
    return "\n".join(lines) + "\n"


def write_readings(table: pd.DataFrame, profile: Profile, stem: str = "claims_readings") -> list:
    """figures/<profile>/<stem>.csv (every column) and <stem>.md (readings_markdown)."""
    from ..figures import plots

    return plots.write_table(table, profile, stem, markdown=readings_markdown(table, profile))


def part_row(table: pd.DataFrame, pid: str) -> pd.Series:
    """The scorecard row that decides part `pid` (its own, or the row whose `also_decides` names it)."""
    hit = table[(table["id"] == pid) | table["also_decides"].map(lambda v: pid in str(v).split(", "))]
    if hit.empty:
        raise KeyError(f"no scorecard row decides {pid}; rows: {table['id'].tolist()}")
    return hit.iloc[0]


def paper_values() -> dict[str, float]:
    """The value of each part on the authors' release (figures/paper_reference/claims.csv, written by
    `./run_all.sh --profile paper-reference` and tested to be current); {} where that file is absent."""
    if not PAPER_SCORECARD.exists():
        return {}
    release = pd.read_csv(PAPER_SCORECARD)
    values = {}
    for r in release.itertuples(index=False):
        for pid in [r.id, *str(getattr(r, "also_decides", "") or "").split(", ")]:
            if pid and pid != "nan" and np.isfinite(r.value):
                values[pid] = float(r.value)
    return values


def _paper_columns(table: pd.DataFrame, parts: list[Part]) -> None:
    """`paper_value` (the release's value of the same part; the run's own where the source is the release) and
    `sees_paper`: whether this design decides a true effect of that size 80 % of the time (the `mde` column)."""
    own = table.attrs.get("sources") == ["paper"]
    release = {} if own else paper_values()
    rules = {p.id: p.rule() for p in parts}
    for i, r in table.iterrows():
        value = r["value"] if own else release.get(r["id"], math.nan)
        table.at[i, "paper_value"] = value
        rule = rules[r["id"]]
        if not (np.isfinite(value) and np.isfinite(r["mde"])):
            table.at[i, "sees_paper"] = ""
            continue
        inside = rule.slack(value, value)
        table.at[i, "sees_paper"] = ("yes" if inside >= r["mde"] else
                                     "no: the release's value is closer to the boundary than this design resolves"
                                     if inside > 0 else "the release's value is on the other side")


def _source_summary(df: pd.DataFrame, study: Study) -> dict:
    rows = study.cells.rows
    kinds = rows["metric"].map(analysis.metric_kind) if "metric" in rows else pd.Series(dtype=object)
    classification = rows[kinds.isin(["classification", "multiple_choice"])] if "metric" in rows else rows.iloc[0:0]
    generation = rows[kinds == "generation"] if "metric" in rows else rows.iloc[0:0]

    def counts(part):
        known = part["constant"].map(lambda v: isinstance(v, (bool, np.bool_))) \
            if "constant" in part else pd.Series(False, index=part.index)
        return int(known.sum()), int(part.loc[known, "constant"].astype(bool).sum()) if known.any() else 0

    (c_known, c_rows), (g_known, g_rows) = counts(classification), counts(generation)
    return {"sources": sorted(map(str, df["source"].dropna().unique())) if "source" in df else [],
            "rows": len(rows), "items": bool("scores" in rows and rows["scores"].notna().any()),
            "classification_rows": len(classification), "constant_known": c_known, "constant_rows": c_rows,
            "generation_known": g_known, "generation_constant": g_rows,
            "method": study.method, "profile": study.profile.name}


# ---------------------------------------------------------------------------------------------------------------
# writing the scorecard


def _robust(table: pd.DataFrame) -> pd.DataFrame:
    """The supported / contradicted rows whose verdict holds under the measurement-only interval, leaving out any one
    unit and every other reading (uninformative and defect-decided rows are never robust)."""
    decided = table[table["verdict"].isin([SUPPORTED, CONTRADICTED])]
    return decided[(decided["verdict_measurement"] == decided["verdict"])
                   & (decided["holds_leave_one_out"] == True)  # noqa: E712  (NaN / '' are not True)
                   & decided["holds_readings"].map(lambda v: v is True or v == "" or (isinstance(v, float)
                                                                                     and math.isnan(v)))]


def headline(table: pd.DataFrame) -> str:
    """'Verdicts: 3 supported (1 robust), …' — uninformative and defect-decided rows counted apart; a row that
    decides two parts (A1b = B1c) counts once."""
    counts = table["verdict"].value_counts()
    robust = _robust(table)
    parts = []
    for v in VERDICTS:
        n = int(counts.get(v, 0))
        if v in (SUPPORTED, CONTRADICTED):
            parts.append(f"{n} {v} ({int((robust['verdict'] == v).sum())} robust)")
        elif v == DEFECT_DECIDED:
            decided = table[table["verdict"] == DEFECT_DECIDED]
            parts.append(f"{n} {v}" + (" (" + ", ".join(f"{r.id}: {r.judged}" for r in decided.itertuples()) + ")"
                                       if n else ""))
        else:
            parts.append(f"{n} {v}")
    return "Verdicts: " + ", ".join(parts) + "."


def calibration_link(profile: Profile) -> str:
    """A sentence linking figures/<profile>/calibration.md where it exists (the rules' measured error rates)."""
    name = paths.figures_dir(profile.name) / "calibration.md"
    if not name.exists():
        return ("Calibration: no `calibration.md` for this profile yet (`python benchmarks/bench_calibration.py "
                f"--profile {profile.name}` measures each rule's error rate at its boundary).")
    return ("Calibration: [calibration.md](calibration.md) — each rule's rate of wrong decisive verdicts at its "
            "boundary, simulated with this source's noise.")


def _header(table: pd.DataFrame, profile: Profile) -> str:
    a = table.attrs
    sources = a.get("sources", [])
    if sources == ["paper"]:
        source = ("the authors' released tables (data/paper_results/: all_perf_table.csv with a bootstrap std per "
                  "cell, official_eval_table.csv without one) — no per-item scores")
    elif sources and set(sources) <= {"lm-eval", "pythia-evals"}:  # amuro_utils.models.lmeval: base models only
        source = (f"lm-evaluation-harness output ({profile.results_source}): base models only, "
                  + ("with per-item scores" if a.get("items") else "cells ~ N(acc, stderr²), no per-item scores"))
    else:
        source = (f"this project's records (sources {', '.join(sources) or 'n/a'}), "
                  + ("with per-item scores" if a.get("items") else "without per-item scores (load with "
                                                                   "Store.frame(items=True) for paired resampling)"))
    constant = (f"{a['constant_rows']} of {a['constant_known']} classification / multiple-choice records are constant "
                "predictors (one label for every item)" if a.get("constant_known") else
                "not known (no predictions in the source)")
    if a.get("generation_known"):
        constant += (f"; {a['generation_constant']} of {a['generation_known']} generation records answer every item "
                     "alike (empty or one string)")
    return "\n".join([
        f"# Claims scorecard — profile `{profile.name}`", "",
        f"Source: {source}; {a.get('rows', 0)} standard {profile.shots}-shot rows"
        + (f"; fine-tuning method `{a.get('method')}`" if a.get("method") else "") + ".",
        *([f"Profile note: {profile.figure_note}."] if profile.figure_note else []),
        f"Constant predictors: {constant}.", "",
        headline(table) + " *Robust*: the same verdict under the measurement-only interval, leaving out any one "
        "unit, and every other reading of the sentence.", "", calibration_link(profile), ""])


def _definitions(table: pd.DataFrame | None = None) -> str:
    n_boot = (table.attrs.get("n_boot") if table is not None else None) or N_BOOT
    lines = ["## Definitions", "",
             f"Verdict rule ({CONFIDENCE:.0%} CI, {n_boot} resamples): *supported* — the CI lies on the paper's side "
             "of the threshold (or inside ±margin for a flat claim); *contradicted* — on the other side (or wholly "
             "outside the margin); *inconclusive* — the CI straddles it; *not measurable* — the cells are missing "
             "(named); *uninformative* — degenerate cells decide it: without them the verdict changes, or "
             f"fewer than {MIN_INFORMATIVE_SHARE:.0%} of its cells are informative (`uninformative_why`); *decided "
             "by a known defect* — without a named defect's cells the verdict (`judged`) changes. The last two are "
             "counted apart and never robust.",
             "",
             "Every / some: a claim about *every* unit (\"every set stays flat\", \"at every checkpoint\") is "
             "supported when each unit's own 95 % CI satisfies it (an intersection–union test, Berger 1982: family "
             "error ≤ 5 % with no adjustment) and contradicted when some unit's Bonferroni-adjusted CI (95 % for the "
             "family) lies wholly on the other side; a claim about *some* unit is the mirror image. `deciding` names "
             "the unit that decides, with its interval and level. A maximum or minimum taken inside each resample "
             "is never judged: the extreme of noisy values is biased away from the margin.",
             "",
             "Intervals: `ci_low`/`ci_high` resample the units the claim ranges over (column `resampled`: task "
             "pairs, sets, tasks, checkpoints — why, per part, below), then items, then seeds — each resample draws "
             "unit counts and uses the matching item resample; `meas_low`/`meas_high` resample items and seeds only "
             "(the paper's own bootstrap), with their verdict in `verdict_measurement`. The point estimate is the "
             "same. Percentile intervals; with fewer than "
             f"{stats.MIN_VALID_SHARE:.0%} valid resamples no interval (inconclusive, said in the note); where a "
             f"tail would hold fewer than {stats.MIN_TAIL} resamples (a Bonferroni level), the normal interval "
             "point ± z × resample sd. The figures and tables draw the first interval of the same statistic "
             "(amuro_utils/stats/).",
             "",
             f"Power: `mde` is how far inside the claim's side a true value must lie to be supported {POWER:.0%} of "
             "the time under this design's noise (normal approximation from the resampled standard error; for an "
             f"every-unit claim each of K units must clear its own interval, power {POWER:.0%}^(1/K) each); `power` "
             "says it in the claim's units, with the contradiction side. It assumes every cell carries the effect: "
             "where many cells are constant predictors it is optimistic (the mde rows of calibration.md measure how "
             "much). `paper_value` is the same part on the authors' release; `sees_paper` whether this design decides "
             "an effect of that size.",
             "",
             "Robustness: `leave_one_out` recomputes the verdict without each unit in turn (a pair, a set, a task, a "
             "checkpoint, a group); `readings` judges the sentence's other reasonable readings; `without_degenerate` "
             "leaves out the claim's degenerate cells (constant predictors on the side where they make its "
             "statistic measure something else; for a relative change, base cells whose interval reaches 0).",
             "The cells column names the series among the verdict's cells (an evaluation set under one model over "
             "the ladder) whose signal-to-noise ratio on the paper's metric is below 1 (`low_snr`; Heineman et al. "
             "2025, `amuro_utils.stats.signal`): over the whole ladder they move less than one score's own standard error.",
             "",
             f"Margins: FLAT_MARGIN = {FLAT_MARGIN} (score units), RELATIVE_MARGIN = {RELATIVE_MARGIN} % of base. "
             f"Landmarks as fractions of pre-training: PLATEAU_FRACTION = {PLATEAU_FRACTION:.4f} (342k/738k), "
             f"PEAK_FRACTION = {PEAK_FRACTION:.4f} (424k/738k). `main` has one step for every statistic: the step "
             f"recorded with its records (OLMo-1B: {PAPER_FINAL_STEP:,}), else the profile's `main_step`.",
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
    """The scorecard table as GitHub markdown (value and CIs rounded; robustness, power and notes kept)."""
    def count(v):
        return "" if v is None or isinstance(v, str) or (isinstance(v, float) and not np.isfinite(v)) else str(int(v))

    head = ("| id | claim | statistic | value | CI (resampled) | paper says | verdict | deciding unit | "
            "measurement-only CI → verdict | leave one out | other readings | without degenerate cells | "
            "cells (constant / degenerate) | defect deciding | power (80 %) | release's value (seen?) | "
            "missing / note |\n|" + "---|" * 17)
    lines = [head]
    for r in table.itertuples(index=False):
        ci = f"[{_num(r.ci_low)}, {_num(r.ci_high)}] ({r.resampled})" if np.isfinite(r.ci_low) else ""
        meas = (f"[{_num(r.meas_low)}, {_num(r.meas_high)}] → {r.verdict_measurement}" if np.isfinite(r.meas_low)
                else (r.verdict_measurement if r.verdict != NOT_MEASURABLE else ""))
        flags = "/".join(x for x in (count(r.constant_cells), count(r.degenerate_cells)) if x)
        cells = f"{r.n_cells}" + (f" ({flags})" if flags else "") + (f"; SNR < 1: {r.low_snr}" if r.low_snr else "")
        verdict_text = f"**{r.verdict}**" + (f" ({r.uninformative_why}; judged {r.judged})"
                                             if r.verdict == UNINFORMATIVE else
                                             f" (judged {r.judged})" if r.verdict == DEFECT_DECIDED else "")
        paper = f"{_num(r.paper_value)} ({r.sees_paper})" if _num(r.paper_value) else ""
        extra = "; ".join(x for x in (r.missing and f"missing: {r.missing}", r.note) if x)
        ident = r.id + (f" = {r.also_decides}" if r.also_decides else "")
        cols = [ident, r.claim, r.statistic, _num(r.value), ci, r.direction, verdict_text, r.deciding, meas,
                r.leave_one_out, r.readings, r.without_degenerate, cells, r.defect, r.power, paper, extra]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(lines) + "\n"


def write_scorecard(table: pd.DataFrame, profile: Profile, stem: str = "claims", sections: tuple[str, ...] = ()) -> list:
    """figures/<profile>/<stem>.csv (every column) and <stem>.md (source header, table, definitions, then each of
    `sections`), each written once."""
    from ..figures import plots

    text = _header(table, profile) + "\n" + scorecard_markdown(table) + "\n" + _definitions(table)
    return plots.write_table(table, profile, stem, markdown="\n".join((text, *sections)))


def notebook_verdicts(notebook: str, df: pd.DataFrame, profile: Profile, *, sensitivity=None, forgetting=None,
                      method: str = "full", n_boot: int = N_BOOT, study: Study | None = None) -> str:
    """Markdown for a notebook's last cell: the verdicts of its own claims (its stage's `claims`), computed."""
    ids = stages.get(notebook).claims  # an unknown notebook is refused with the stages
    table = evaluate_all(df, profile, sensitivity=sensitivity, forgetting=forgetting, method=method,
                         ids=ids, n_boot=n_boot, study=study)
    header = _header(table, profile).replace("# Claims scorecard", f"### Claims of this notebook ({notebook})")
    return header + "\n" + scorecard_markdown(table) + \
        "\nDefinitions: `amuro_utils/verdicts/claims.py` and the scorecard `figures/<profile>/claims.md`.\n"
