"""The paper's pre-training claims on sixteen real ladders: Pythia's published evaluations, judged by the same code.

The Pythia suite (EleutherAI) trains eight sizes, 70M to 12B parameters, each on the Pile and on the deduplicated
Pile, on the same data order for 143,000 steps (~300B tokens), and publishes lm-evaluation-harness results of 27
checkpoints per ladder (data/pythia_evals/, read by amuro_utils.models.lmeval). For each ladder this module judges the
paper's base-model claims (B1: the Learned-in-PT benchmarks rise with pre-training, then level off past 46 % of it;
the fine-tuning tasks stay flat) with `claims.evaluate_all` and the ladder's `profiles.pythia_evals` profile: cells
~ N(acc, stderr²), units as the claim defines them, the paper's landmarks as fractions of 143,000 steps.

The groups: Learned in PT is the paper's list (analysis.LEARNED_IN_PT) as far as Pythia evaluated it — ARC-Easy,
ARC-Challenge, SciQ (HellaSwag and OpenBookQA are not among its evaluations, and are named missing). PIQA is not on
the paper's list; B1 with PIQA added is given beside it as a reading. Learned in FT: none of the paper's
fine-tuning sets or BoolQ was evaluated, so B1c is not measurable on every ladder. WinoGrande, LAMBADA, LogiQA and
WSC have no registry set (lmeval keeps them out of the claims); they appear in the signal-to-noise table only.

Beyond the paper, what depends on size is asked as questions stated here BEFORE computing (QUESTIONS), each with
its hypothesis and direction, and judged by the claims' rules (units interval, measurement interval, leave one
out, readings). Signal-to-noise per set and size follows Heineman et al. (2025), "Signal and Noise: A Framework for
Reducing Uncertainty in Language Model Evaluation" (arXiv 2508.13144).

`python -m amuro_utils.verdicts.pythia_suite` writes figures/pythia_ladders/ (the B1 table, the size questions, the
signal-to-noise table, Fig. 2 with sizes as panels, index.html) in seconds.
"""

from __future__ import annotations

import argparse
import math
import re
import time
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .. import stats
from ..config.paths import figures_dir
from ..config.profiles import PYTHIA_FINAL_STEP, PYTHIA_LADDERS, PYTHIA_SIZES, Profile, ckpt_step, pythia_evals
from ..data import tasks
from ..figures import plots, report
from ..models import lmeval
from ..stats import Unmeasurable, analysis, wmean
from ..store import artifacts
from . import claims

NAME = "pythia-ladders"  # its folder: figures/pythia_ladders/
TOKENS = 299_892_736_000  # tokens every Pythia model saw (the repository's README)
PLATEAU_STEP = claims.PLATEAU_FRACTION * PYTHIA_FINAL_STEP  # the paper's 342k of 738k: step 66,268 of 143,000
# Springer et al. found OLMo-1B harder to fine-tune after 2.3T–3T tokens, ~2,000–2,600 tokens per parameter; the
# Pythia ladders trained on at least 1,000 tokens per parameter (70M: 4,300; 160M: 1,900) are the ones near that
# regime (the next, 410M, saw 730). Fixed before computing, from the tokens and sizes alone.
OVERTRAINED_TOKENS_PER_PARAM = 1_000
EXTRA_SET = "piqa"  # the reading that adds PIQA to the paper's Learned-in-PT list
# Columns of the claims table shown beside each verdict where it has them (n/a otherwise): the unit that decides an
# every-unit verdict, the smallest effect the design detects 80 % of the time (mde) and what that means (power), and
# the release's own value with whether this design could see it.
OPTIONAL_COLUMNS = ("deciding", "mde", "power", "paper_value", "sees_paper")
SNR_TASKS = ("arc_easy", "arc_challenge", "sciq", "piqa", "winogrande", "lambada_openai", "logiqa", "wsc")

# id -> (question, hypothesis with its direction, why we expect it); stated before anything is computed
QUESTIONS = {
    "L1": ("Does 'level off' hold at every size?",
           "at every ladder, the mean fitted change of the Learned-in-PT sets from 46 % of pre-training on lies "
           "within ±0.02 (the claims' every-unit rule: each ladder's 95 % interval inside the margin; contradicted "
           "when one ladder's Bonferroni-adjusted interval lies wholly outside it)",
           "the paper's §4 states it of OLMo-1B; a claim about pre-training in general should hold across sizes"),
    "L2": ("Does late pre-training hurt small models?",
           f"on the ladders trained on ≥ {OVERTRAINED_TOKENS_PER_PARAM:,} tokens per parameter (70M, 160M, both data "
           "sets) the mean fitted change of the Learned-in-PT sets from 46 % on is < 0",
           "overtraining (Springer et al. 2025): models trained far past their compute-optimal token count degrade; "
           "here on the base model's own benchmarks"),
    "L2b": ("Does the late change grow with size?",
            "the fitted change, over log10(parameters) across the eight sizes, of that late change is > 0",
            "larger models are further from saturation at 300B tokens, smaller ones past it"),
    "L3": ("Does deduplication change it?",
           "the mean over sizes of (deduplicated − Pile) late change lies within ±0.02",
           "both ladders of a size see the same data order; the deduplicated Pile is repeated for ~0.5 epochs in the "
           "second half, which could matter for small models"),
}


def parameters(ladder: str) -> float:
    """A Pythia ladder's nominal parameter count from its name ('pythia-1.4b-deduped' → 1.4e9)."""
    match = re.fullmatch(r"pythia-(\d+(?:\.\d+)?)([mb])(?:-deduped)?", ladder)
    if match is None:
        raise ValueError(f"{ladder!r} is not a Pythia ladder name; ladders: {list(PYTHIA_LADDERS)}")
    return float(match[1]) * (1e6 if match[2] == "m" else 1e9)


def describe(ladder: str) -> dict:
    """size, data set and tokens per parameter of one ladder."""
    return {"ladder": ladder, "size": ladder.removeprefix("pythia-").removesuffix("-deduped").upper(),
            "data": "deduplicated Pile" if ladder.endswith("-deduped") else "Pile",
            "tokens_per_param": round(TOKENS / parameters(ladder))}


def with_extra_set(profile: Profile, eval_set: str = EXTRA_SET) -> Profile:
    """The profile with `eval_set` added to the paper's Learned-in-PT list (and to the benchmarks it evaluates)."""
    it = profile.instruction
    return replace(profile, learned_in_pt=(*analysis.LEARNED_IN_PT, eval_set),
                   instruction=replace(it, benchmarks=(*it.benchmarks, eval_set)))


def _ladder_of(model: str) -> str:
    return model.split("/", 1)[1]


def suite_frame(path=lmeval.EXTRACT) -> pd.DataFrame:
    """The extract's rows of every ladder (registry sets only, as records), with a `ladder` column."""
    frame = lmeval.load_extract(path=path)
    return frame.assign(ladder=frame["model"].map(_ladder_of))


def pt_sets(profile: Profile, frame: pd.DataFrame) -> list[str]:
    """The Learned-in-PT sets of `profile` that the frame holds, in the group's order."""
    group = analysis.learned_groups(profile)[analysis.GROUP_PT]
    return [s for s in dict.fromkeys(e for e, _ in group) if (frame["eval_set"] == s).any()]


# ---------------------------------------------------------------------------------------------------------------
# B1 across the sixteen ladders


def _optional(row: dict, column: str):
    value = row.get(column, math.nan)
    return "n/a" if value is None or value == "" or (isinstance(value, float) and math.isnan(value)) else value


def b1_table(frame: pd.DataFrame, n_boot: int = stats.N_BOOT) -> pd.DataFrame:
    """One row per (ladder, B1 part): the claims table's verdict, value and interval (the paper's groups), its
    deciding unit, mde and power where it has them, and the verdict with PIQA added."""
    rows = []
    for ladder in PYTHIA_LADDERS:
        profile = pythia_evals(ladder)
        cells = frame[frame["ladder"] == ladder]
        table = claims.evaluate_all(cells, profile, ids=["B1"], n_boot=n_boot)
        extra = claims.evaluate_all(cells, with_extra_set(profile), ids=["B1"], n_boot=n_boot).set_index("id")
        for row in table.to_dict("records"):
            plus = extra.loc[row["id"]]
            rows.append({**describe(ladder), "id": row["id"], "verdict": row["verdict"], "value": row["value"],
                         "ci_low": row["ci_low"], "ci_high": row["ci_high"],
                         "verdict_measurement": row["verdict_measurement"],
                         "holds_leave_one_out": row["holds_leave_one_out"],
                         **{c: _optional(row, c) for c in OPTIONAL_COLUMNS},
                         "verdict_with_piqa": plus["verdict"], "value_with_piqa": plus["value"],
                         "ci_low_with_piqa": plus["ci_low"], "ci_high_with_piqa": plus["ci_high"],
                         "missing": row["missing"], "note": row["note"]})
    return pd.DataFrame(rows)


def _mde(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) and np.isfinite(value) else "n/a"


def _cell(value, low, high, verdict) -> str:
    if not np.isfinite(value):
        return verdict
    return f"{value:+.3f} [{low:+.3f}, {high:+.3f}] **{verdict}**"


def b1_wide(table: pd.DataFrame) -> pd.DataFrame:
    """The B1 table as one row per ladder: each part's value [95 % CI] verdict, with PIQA, power."""
    rows = []
    for ladder, part in table.groupby("ladder", sort=False):
        by = part.set_index("id")
        row = {"ladder": ladder, "tokens / param": int(by["tokens_per_param"].iloc[0])}
        for pid, label in (("B1a", "B1a rise"), ("B1b", "B1b level off (deciding set's late change)")):
            r = by.loc[pid]
            row[label] = _cell(r["value"], r["ci_low"], r["ci_high"], r["verdict"])
            row[f"{pid} with PIQA"] = _cell(r["value_with_piqa"], r["ci_low_with_piqa"], r["ci_high_with_piqa"],
                                           r["verdict_with_piqa"])
        row["B1b deciding set"] = str(by.loc["B1b", "deciding"]).split(":")[0].removeprefix("set ")
        row["B1c flat group"] = by.loc["B1c", "verdict"]
        row["mde (B1a / B1b)"] = " / ".join(_mde(by.loc[pid, "mde"]) for pid in ("B1a", "B1b"))
        rows.append(row)
    out = pd.DataFrame(rows)
    profile = pythia_evals(PYTHIA_LADDERS[0])
    out.attrs["caption"] = (
        f"B1 across {len(rows)} ladders (Pythia's published zero-shot evaluations, {len(profile.ckpts)} checkpoints "
        f"{profile.ckpts[0]}–{profile.ckpts[-1]}, lm-eval acc, cells ~ N(acc, stderr²)): value [95 % CI, units "
        "resampled] verdict. Learned in PT = the paper's list as Pythia evaluated it (ARC-E, ARC-C, SciQ); 'with "
        f"PIQA' adds PIQA. B1b: every set's fitted change from {late_ckpts(profile)[0]} on "
        f"({100 * claims.PLATEAU_FRACTION:.0f} % of {PYTHIA_FINAL_STEP:,} = step {PLATEAU_STEP:,.0f}) within "
        f"±{claims.FLAT_MARGIN:g}, judged set by set; shown: the deciding set's change and its interval at the "
        "level that decided it (95 %, Bonferroni-adjusted for a contradiction). B1c: no "
        "Learned-in-FT set was evaluated. mde: the smallest effect the design decides 80 % of the time (n/a where "
        "the claims table has none)")
    return out


# ---------------------------------------------------------------------------------------------------------------
# what depends on size


class _SuiteStudy:
    """What claims._evaluate_part reads of a study, for cells keyed (ladder, eval_set, ckpt) across ladders."""

    def __init__(self, cells: stats.Cells):
        self.cells = cells

    def cells_for(self, name: str) -> stats.Cells:
        """Every statistic here reads the one bank of suite cells."""
        return self.cells


def suite_cells(frame: pd.DataFrame, n_boot: int = stats.N_BOOT, seed: int = 0) -> stats.Cells:
    """Cells keyed (ladder, eval_set, ckpt), each ~ N(acc, stderr²) (the extract carries no per-item scores)."""
    rows = frame[["ladder", "eval_set", "ckpt", "step", "performance", "std", "source"]]
    return stats.Cells(rows, ("ladder", "eval_set", "ckpt"), value_col="performance", items_col=None, pair_col=None,
                       std_col="std", n_boot=n_boot, seed=seed)


def late_ckpts(profile: Profile) -> list[str]:
    """The ladder's checkpoints from the paper's plateau landmark (46 % of pre-training) on, as claim B1b's."""
    return stats.Study(None, profile).from_(claims.PLATEAU_FRACTION)


def _late_change(g, w, ladder: str, sets: list[str], ckpts: list[str]) -> np.ndarray:
    """Mean over `sets` (unit weights) of the fitted change of one ladder's score over `ckpts`."""
    steps = [float(ckpt_step(c)) for c in ckpts]
    terms = []
    for eval_set in sets:
        change = stats.fitted_change(steps, [g(ladder, eval_set, c) for c in ckpts])
        if change is not None:
            terms.append((change, w("set", eval_set, sets)))
    return wmean(terms, f"set of {ladder} with two late checkpoints")


def _small(ladders) -> list[str]:
    return [lad for lad in ladders if TOKENS / parameters(lad) >= OVERTRAINED_TOKENS_PER_PARAM]


def _mean_over(ladders, sets, ckpts, dim: str = "ladder"):
    def compute(g, w):
        terms = [(_late_change(g, w, lad, sets, ckpts), w(dim, lad, ladders)) for lad in ladders]
        return wmean(terms, "ladder"), [f"{len(terms)} ladders: {', '.join(ladders)}; sets {', '.join(sets)}"]
    return compute


def _size_trend(sets, ckpts):
    def compute(g, w):
        sizes = list(PYTHIA_SIZES)
        by_size = []
        for size in sizes:
            pair = [_late_change(g, w, f"pythia-{size}{d}", sets, ckpts) for d in ("", "-deduped")]
            by_size.append(np.mean(pair, axis=0))
        change = stats.fitted_change([parameters(f"pythia-{s}") for s in sizes], by_size,
                                     [w("size", s, sizes) for s in sizes])
        if change is None:
            raise Unmeasurable("fewer than two sizes")
        return change, [f"per size (mean of both data sets): "
                        + ", ".join(f"{s} {v[0]:+.4f}" for s, v in zip(sizes, by_size))]
    return compute


def _dedup_difference(sets, ckpts):
    def compute(g, w):
        sizes = list(PYTHIA_SIZES)
        terms = [(_late_change(g, w, f"pythia-{s}-deduped", sets, ckpts) - _late_change(g, w, f"pythia-{s}", sets,
                                                                                           ckpts), w("size", s, sizes))
                 for s in sizes]
        return wmean(terms, "size"), ["per size: " + ", ".join(f"{s} {v[0]:+.4f}" for s, (v, _) in zip(sizes, terms))]
    return compute


def parts(sets: list[str], extra: list[str], ckpts: list[str]) -> list[claims.Part]:
    """The size questions L1 (every ladder, judged ladder by ladder), L2, L2b, L3 as claims.Part over the suite
    cells."""
    small = _small(PYTHIA_LADDERS)
    sizes_why = "sizes: the suite's eight, a sample of model sizes; sets: " + claims.PAIRS_WHY
    ladders = list(PYTHIA_LADDERS)
    return [
        claims.Part("L1", QUESTIONS["L1"][0], "§4 (beyond the paper: every size)",
                    "late fitted change of the Learned-in-PT sets (their mean), per ladder", "≈",
                    _per_ladder(ladders, sets, ckpts), ("set",), "every ladder counts; within a ladder, sets: "
                    + claims.PAIRS_WHY, margin=claims.FLAT_MARGIN, cells="union", quantifier=claims.EVERY,
                    unit_word="ladder",
                    readings=(claims.Reading("with PIQA", _per_ladder(ladders, extra, ckpts), ("set",),
                                             quantifier=claims.EVERY),)),
        claims.Part("L2", QUESTIONS["L2"][0], "Springer et al. (beyond the paper)",
                    "mean late fitted change of the Learned-in-PT sets, ladders with ≥ 1,000 tokens/parameter", "<",
                    _mean_over(small, sets, ckpts), ("set",), "sets: " + claims.PAIRS_WHY + "; the four ladders are "
                    "the ones named", cells="union",
                    readings=(claims.Reading("with PIQA", _mean_over(small, extra, ckpts), ("set",)),)),
        claims.Part("L2b", QUESTIONS["L2b"][0], "beyond the paper",
                    "fitted change over log10(parameters) of the late change (mean of both data sets per size)", ">",
                    _size_trend(sets, ckpts), ("set",), "sets: " + claims.PAIRS_WHY + "; sizes are the trend's "
                    "x-axis and are not resampled", cells="union",
                    readings=(claims.Reading("with PIQA", _size_trend(extra, ckpts), ("set",)),)),
        claims.Part("L3", QUESTIONS["L3"][0], "beyond the paper",
                    "mean over sizes of the late change, deduplicated − Pile", "≈", _dedup_difference(sets, ckpts),
                    ("size", "set"), sizes_why, margin=claims.FLAT_MARGIN, cells="union",
                    readings=(claims.Reading("with PIQA", _dedup_difference(extra, ckpts), ("size", "set")),)),
    ]


def _per_ladder(ladders, sets, ckpts):
    def compute(g, w):
        terms = [(lad, _late_change(g, w, lad, sets, ckpts), w("ladder", lad, ladders)) for lad in ladders]
        return terms, [f"sets {', '.join(sets)}"]
    return compute


def per_ladder(cells: stats.Cells, sets: list[str], ckpts: list[str]) -> pd.DataFrame:
    """Each ladder's late change (the mean over `sets` of the fitted change over `ckpts`) with its 95 % interval,
    sets resampled, then cells ~ N(acc, stderr²): the units L1 judges."""
    rows = []
    for ladder in PYTHIA_LADDERS:
        est = stats.estimate(cells, _mean_over([ladder], sets, ckpts), ("set",))
        low, high, _ = est.interval("units", stats.CONFIDENCE)
        rows.append({**describe(ladder), "late_change": est.point, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


def questions(frame: pd.DataFrame, n_boot: int = stats.N_BOOT) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the questions' verdict table: the parts of L1, L2, L2b, L3 with the claims' columns and their hypothesis;
    the per-ladder late changes L1 judges)."""
    profile = pythia_evals(PYTHIA_LADDERS[0])
    sets = pt_sets(profile, frame)
    extra = pt_sets(with_extra_set(profile), frame)
    ckpts = late_ckpts(profile)
    cells = suite_cells(frame, n_boot)
    study = _SuiteStudy(cells)
    rows = [{**claims._evaluate_part(study, part), "hypothesis": QUESTIONS[part.id][1]}
            for part in parts(sets, extra, ckpts)]
    return pd.DataFrame(rows, columns=[*claims.SCORECARD_COLUMNS, "hypothesis"]), per_ladder(cells, sets, ckpts)


# ---------------------------------------------------------------------------------------------------------------
# signal and noise


def snr_table(path=lmeval.EXTRACT) -> pd.DataFrame:
    """Signal-to-noise per benchmark and ladder over the judged checkpoints (step256–step143000): signal = the
    spread (max − min) of its accuracy across checkpoints, noise = the median lm-eval standard error there
    (Heineman et al. 2025: a benchmark whose signal is not well above its noise cannot tell checkpoints apart); the
    same from 46 % of pre-training on (B1b's window)."""
    raw = pd.read_csv(path)
    profile = pythia_evals(PYTHIA_LADDERS[0])
    judged = {ckpt_step(c) for c in profile.ckpts}
    late = {ckpt_step(c) for c in late_ckpts(profile)}
    rows = []
    for (ladder, task), cell in raw[raw["step"].isin(judged)].groupby(["ladder", "task"], sort=False):
        window = cell[cell["step"].isin(late)]
        noise = float(cell["acc_stderr"].median())
        signal, late_signal = float(np.ptp(cell["acc"])), float(np.ptp(window["acc"]))
        rows.append({**describe(ladder), "task": task, "eval_set": lmeval.TASKS.get(task, ""),
                     "signal": signal, "noise": noise, "snr": signal / noise if noise > 0 else math.nan,
                     "late_signal": late_signal, "late_snr": late_signal / noise if noise > 0 else math.nan})
    out = pd.DataFrame(rows)
    out["task"] = pd.Categorical(out["task"], SNR_TASKS, ordered=True)
    out["ladder"] = pd.Categorical(out["ladder"], PYTHIA_LADDERS, ordered=True)
    return out.sort_values(["task", "ladder"]).reset_index(drop=True).astype({"task": str, "ladder": str})


def snr_wide(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """One row per benchmark, one column per ladder: `column` (snr or late_snr) rounded to one decimal."""
    wide = table.pivot(index="task", columns="ladder", values=column).reindex(index=list(SNR_TASKS),
                                                                                   columns=list(PYTHIA_LADDERS))
    wide.columns = [c.removeprefix("pythia-").replace("-deduped", "-d") for c in wide.columns]
    return wide.round(1).reset_index()


# ---------------------------------------------------------------------------------------------------------------
# Fig. 2 with sizes as panels


def fig2_ladders(frame: pd.DataFrame):
    """Fig. 2 on the Pythia suite: one panel per size, the Learned-in-PT sets (and PIQA) over pre-training, the Pile
    solid and the deduplicated Pile dashed, ± lm-eval stderr, B1b's window shaded."""
    profile = pythia_evals(PYTHIA_LADDERS[0])
    sets = pt_sets(with_extra_set(profile), frame)
    colours = plots.series_colours(sets)
    judged = list(profile.ckpts)
    fig, axes = plt.subplots(2, 4, figsize=(16, 7.6), sharex=True, sharey=True, layout="constrained")
    for ax, size in zip(axes.flat, PYTHIA_SIZES):
        for dedup, style in (("", "-"), ("-deduped", "--")):
            rows = frame[(frame["ladder"] == f"pythia-{size}{dedup}") & frame["ckpt"].isin(judged)]
            for eval_set in sets:
                cell = rows[rows["eval_set"] == eval_set].sort_values("step")
                x, y, se = cell["step"].to_numpy(), cell["performance"].to_numpy(), cell["std"].to_numpy()
                ax.plot(x, y, linestyle=style, color=colours[eval_set], linewidth=1.5, marker="o", markersize=2.5)
                ax.fill_between(x, y - se, y + se, color=colours[eval_set], alpha=0.15, linewidth=0)
        for value in sorted({round(_chance(s), 2) for s in sets if _chance(s) is not None}):
            ax.axhline(value, **plots.CHANCE_STYLE)
        ax.axvspan(PLATEAU_STEP, PYTHIA_FINAL_STEP, color="0.85", alpha=0.5, linewidth=0)
        ax.set_xscale("log")
        ax.set_title(f"Pythia-{size.upper()} ({round(TOKENS / parameters(f'pythia-{size}')):,} tokens/param)",
                     fontsize=10, loc="left")
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("pre-training step (log)")
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy (lm-eval acc, 0-shot)")
    handles = [Line2D([], [], color=colours[s], label=s) for s in sets] + [
        Line2D([], [], color="0.3", linestyle="-", label="the Pile"),
        Line2D([], [], color="0.3", linestyle="--", label="deduplicated Pile"),
        Patch(color="0.85", alpha=0.5, label="B1b's window (≥ 46 %)"),
        Line2D([], [], label="chance", **plots.CHANCE_STYLE)]
    fig.legend(handles=handles, loc="outside right center", frameon=False, fontsize=9)
    fig.suptitle("Fig. 2 on the Pythia suite — base checkpoints step256–step143000, EleutherAI's published zero-shot "
                 "evaluations (band = ± stderr)", fontsize=12)
    return fig


def _chance(eval_set: str) -> float | None:
    """Chance accuracy of a registry set from its shipped items (None where they cannot be read here)."""
    try:
        examples = tasks.load_examples(eval_set, source="offline")
    except (FileNotFoundError, ValueError, KeyError):
        return None
    return analysis.chance_level(tasks.get(eval_set), examples)


# ---------------------------------------------------------------------------------------------------------------
# writing it all


def questions_markdown(table: pd.DataFrame) -> str:
    """The size questions: each with its hypothesis (stated before computing), then the verdict table."""
    lines = ["## What depends on size: the Pythia suite", "",
             "Questions stated with their hypotheses before anything was computed (amuro_utils/verdicts/pythia_suite.py), "
             "judged by the claims' rules on Pythia's published evaluations (cells ~ N(acc, stderr²)).", ""]
    for key, (question, hypothesis, why) in QUESTIONS.items():
        lines.append(f"- **{key}** — {question} Hypothesis: {hypothesis}. Why: {why}.")
    lines += ["", "| id | statistic | value | CI | hypothesis | verdict | deciding / leave one out | readings |",
              "|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples(index=False):
        ci = f"[{r.ci_low:+.4f}, {r.ci_high:+.4f}]" if np.isfinite(r.ci_low) else ""
        robust = "; ".join(x for x in (r.deciding and f"deciding: {r.deciding}", r.leave_one_out) if x)
        lines.append(f"| {r.id} | {r.statistic} | {r.value:+.4f} | {ci} | {r.direction} | **{r.verdict}** | "
                     f"{robust} | {r.readings} |")
    return "\n".join(lines) + "\n"


def write(out_name: str = NAME, n_boot: int = stats.N_BOOT) -> dict:
    """Judge and draw everything into figures/<out_name>/; returns the tables and the seconds each step took."""
    seconds, t0 = {}, time.perf_counter()
    frame = suite_frame()
    seconds["read the extract"] = time.perf_counter() - t0
    t = time.perf_counter()
    b1 = b1_table(frame, n_boot)
    seconds["B1 on 16 ladders (twice: the paper's groups, with PIQA)"] = time.perf_counter() - t
    t = time.perf_counter()
    table, per_ladder = questions(frame, n_boot)
    seconds["size questions"] = time.perf_counter() - t
    t = time.perf_counter()
    snr = snr_table()
    out = figures_dir(out_name)
    out.mkdir(parents=True, exist_ok=True)
    artifacts.atomic_write(out / "ladders_b1_long.csv", b1.to_csv(index=False))  # every column; the report shows the wide table
    plots.write_table(b1_wide(b1), out_name, "ladders_b1")
    plots.write_table(per_ladder, out_name, "ladders_L1_per_ladder")
    artifacts.atomic_write(out / "ladders_questions.csv", table.to_csv(index=False))
    artifacts.atomic_write(out / "ladders_questions.md", questions_markdown(table))
    artifacts.atomic_write(out / "ladders_snr_long.csv", snr.to_csv(index=False))
    for column, what in (("snr", "step256–step143000"), ("late_snr", "from 46 % of pre-training on")):
        wide = snr_wide(snr, column)
        wide.attrs["caption"] = (f"Signal-to-noise per benchmark and ladder, {what}: the spread (max − min) of "
                                 "accuracy across checkpoints over the median lm-eval standard error (Heineman et "
                                 "al. 2025); -d = deduplicated Pile")
        plots.write_table(wide, out_name, f"ladders_{column}")
    fig = fig2_ladders(frame)
    plots.save(fig, out_name, "ladders_fig2")
    plt.close(fig)
    report.write_report(out_name, notebooks=False, scorecard=False)
    seconds["tables, figure, report"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    return {"b1": b1, "questions": table, "per_ladder": per_ladder, "snr": snr, "seconds": seconds}


def main(argv=None) -> None:
    """`python -m amuro_utils.verdicts.pythia_suite`: judge the 16 ladders and write figures/pythia_ladders/."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-boot", type=int, default=stats.N_BOOT, help="resamples per interval")
    args = parser.parse_args(argv)
    done = write(n_boot=args.n_boot)
    counts = done["b1"].groupby("id")["verdict"].value_counts().unstack(fill_value=0)
    print("B1 verdicts on 16 ladders (the paper's groups):\n" + counts.to_string())
    print(done["questions"][["id", "value", "ci_low", "ci_high", "verdict"]].to_string(index=False))
    print("seconds: " + "; ".join(f"{k} {v:.1f}" for k, v in done["seconds"].items()))
    print(f"written: {figures_dir(NAME)}/ (index.html)")


if __name__ == "__main__":
    main()
