"""Beyond the paper: the paper's open questions, judged like its claims and kept apart from them.

The paper leaves open (its words): whether there are "different stages of learning and forgetting during
fine-tuning" (§6.3); "a measure available during pre-training that correlated with post-fine-tuning task
performance" (Discussion); "model internals during pre-training dynamics and how they relate to the effects of
fine-tuning" and fixed epochs while "the model may converge at a different speed" (Limitations).

Each question below is stated with its hypothesis and direction BEFORE anything is computed (QUESTIONS; printed
in the scorecard's "Beyond the paper" section), and gets a statistic of amuro_utils.stats, a 95 % CI and a verdict
by the rules of amuro_utils.verdicts.claims (units interval, measurement-only interval, leave-one-out, readings). The
inputs are the run's records along fine-tuning (`dynamics`), its linear probes (`probes`), its Springer frames and
fine-tuning records (`forgetting`, with the zero-step loss), and the records of the fine-tune-to-convergence
schedule; the authors released none of them, so on the release every question is *not measurable*.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import stats
from ..stats import Study, Unmeasurable, wmean
from . import claims
from .claims import Part, Reading, _fmt, _labelled

# id -> (question, hypothesis with its direction, why we expect it)
QUESTIONS = {
    "D1": ("Does in-domain performance rise before out-of-domain performance changes?",
           "t½(OOD) − t½(ID) > 0: the in-domain curve covers half its change earlier in fine-tuning than the "
           "out-of-domain one (t½ = the fraction of fine-tuning at which a curve covers half of its change)",
           "a model first fits its training task, then drifts elsewhere (§6.3's stages of learning and forgetting)"),
    "D2": ("Do later rungs learn faster?",
           "the fitted change over the ladder of t½(ID) < 0: later checkpoints reach half their in-domain gain "
           "sooner", "the paper's Limitations: stages of pre-training may converge at different speeds"),
    "D3": ("Where in fine-tuning does the format sensitivity appear?",
           "t½ of the fine-tuned format gap (default − other formats) < 0.5: it appears in the first half",
           "the template is the first thing a fine-tuned model fits (§6.1)"),
    "P1": ("Does a linear probe see the latent gain that few-shot evaluation misses (claim A1)?",
           "on the classification tasks, the fitted change over the ladder of the best layer's probe accuracy minus "
           "that of the 4-shot base accuracy > 0",
           "A1 says pre-training improves the model in ways only fine-tuning reveals; a probe may reveal them first"),
    "R": ("Which measure available before fine-tuning predicts the fine-tuned score and the gain?",
          "Spearman ρ across (rung, task) of each measure with the fine-tuned score and with the gain, in the "
          "direction listed per measure (PREDICTORS)",
          "the paper's Discussion asks for such a measure to guide pre-training; Springer et al. propose sensitivity"),
    "C": ("Do the claims that compare rungs hold when every rung is fine-tuned to convergence?",
          "A1, B3 and B4 reach the same verdict under early stopping on the held-out loss as under the paper's "
          "fixed epochs", "fixed epochs may under- or over-train some rungs (the paper's Limitations)"),
}
# measure -> (label, direction with the fine-tuned score, direction with the gain, why)
PREDICTORS = {
    "few_shot": ("4-shot base score", ">", "<", "a model that already does the task ends higher and gains less "
                 "(the paper's learned-in-PT sets)"),
    "probe": ("best layer's probe accuracy", ">", ">", "linearly decodable task knowledge is what fine-tuning "
              "surfaces"),
    "heldout_loss": ("held-out pre-training loss", "<", "<", "a better language model fine-tunes better"),
    "sensitivity": ("Springer sensitivity (Δ loss under weight noise)", "<", "<", "Springer et al.: sensitive "
                    "checkpoints are harder to fine-tune"),
    "zero_step_loss": ("zero-step loss on the fine-tuning completions", "<", ">", "more to learn: a lower score, "
                       "a larger gain"),
}
CONVERGED_IDS = ("A1", "B3", "B4")
TARGETS = {"fine_tuned": "fine-tuned score", "gain": "gain"}
def _require_dynamics(study: Study) -> None:
    if study.dynamics_frame is None:
        raise Unmeasurable("no records along fine-tuning (Profile.dynamics; pipeline.dynamics_frame)")


def _half_times(study: Study, g, w, what: str, tasks) -> list:
    """[(label, t½ vector, weight)] per (task, rung) model with a curve."""
    _require_dynamics(study)
    out = []
    names = [t.name for t in tasks]
    for task in tasks:
        for c in study.ladder:
            t = stats.half_time(study.fractions(), stats.along_curve(study, g, task, c, what))
            if t is not None:
                out.append((f"{task.name}@{c}", t, w("task", task.name, names) * w("ckpt", c, study.ladder)))
    return out


def _d1(study: Study):
    tasks = [t for t in study.profile.tasks if t.ood]

    def compute(g, w):
        ids = {label: (t, wt) for label, t, wt in _half_times(study, g, w, "id", tasks)}
        terms = [(ood - ids[label][0], wt) for label, ood, wt in _half_times(study, g, w, "ood", tasks) if label in ids]
        return wmean(terms, "model with in-domain and out-of-domain curves", nan_ok=True), [f"{len(terms)} models"]
    return compute


def _d2(study: Study):
    def compute(g, w):
        _require_dynamics(study)
        names = [t.name for t in study.profile.tasks]
        changes = []
        for task in study.profile.tasks:
            by_ckpt = {c: stats.half_time(study.fractions(), stats.along_curve(study, g, task, c, "id")) for c in study.ladder}
            change = stats.trend(study, g, w, by_ckpt.get, study.ladder)
            if change is not None:
                changes.append((task.name, change, w("task", task.name, names)))
        return wmean([(v, wt) for _, v, wt in changes], "task with half-times at 2 rungs", nan_ok=True), \
            [f"per task: {_labelled(changes)}"]
    return compute


def _d3(study: Study):
    def compute(g, w):
        terms = _half_times(study, g, w, "gap", list(study.profile.tasks))
        return wmean([(t, wt) for _, t, wt in terms], "model with a format-gap curve", nan_ok=True), \
            [f"{len(terms)} models"]
    return compute


def _best_probe(g, task: str, ckpt: str, layers) -> np.ndarray | None:
    vals = [g("probe", task, layer, ckpt) for layer in layers]
    vals = [v for v in vals if v is not None]
    return np.max(vals, axis=0) if vals else None


def _layers(study: Study) -> list:
    return sorted(set(study.probe_frame["layer"])) if study.probe_frame is not None else []


def _p1(study: Study):
    tasks = [t for t in study.profile.tasks if t.kind == "classification"]

    def compute(g, w):
        if study.probe_frame is None:
            raise Unmeasurable("no probe rows (Profile.probes; pipeline.probe_frame)")
        names, terms = [t.name for t in tasks], []
        for task in tasks:
            probe = stats.trend(study, g, w, lambda c, task=task: _best_probe(g, task.name, c, _layers(study)),
                                study.ladder)
            few = stats.trend(study, g, w, lambda c, task=task: g("perf", task.primary, "base", c, "default"),
                              study.ladder)
            if probe is not None and few is not None:
                terms.append((task.name, probe - few, w("task", task.name, names)))
        return wmean([(v, wt) for _, v, wt in terms], "classification task with probes and base records"), \
            [f"per task (probe − few-shot): {_labelled(terms)}"]
    return compute


# ---------------------------------------------------------------------------------------------------------------
# predictors of the fine-tuned score and of the gain


def measure(study: Study, g, name: str, task, ckpt: str) -> np.ndarray | None:
    """A measure available before fine-tuning, for one (task, rung) unit."""
    if name == "few_shot":
        return g("perf", task.primary, "base", ckpt, "default")
    if name == "probe":
        return _best_probe(g, task.name, ckpt, _layers(study)) if task.kind == "classification" else None
    if name == "heldout_loss":
        return study.fixed_measure("heldout", ckpt)
    if name == "sensitivity":
        frame = study.sensitivity_frame
        if frame is None:
            return None
        scaling = study.profile.sensitivity.scaling
        magnitudes = sorted(frame.loc[frame["scaling"] == scaling, "magnitude"])
        return g("sens", scaling, magnitudes[0], ckpt) if magnitudes else None
    if name == "zero_step_loss":
        return study.fixed_measure("zero_step", task.name, ckpt)
    raise ValueError(f"unknown measure {name!r}; known: {list(PREDICTORS)}")


def _target(g, task, ckpt: str, target: str):
    if target == "fine_tuned":
        return g("perf", task.primary, task.name, ckpt, "default")
    return stats.gain(lambda *key: g("perf", *key), task.primary, task.name, ckpt)


def _predictor(study: Study, name: str, target: str, within_task: bool = False):
    def compute(g, w):
        units, xs, ys, ws = [], [], [], []
        labels = [f"{t.name}@{c}" for t in study.profile.tasks for c in study.ladder]
        for task in study.profile.tasks:
            for c in study.ladder:
                x, y = measure(study, g, name, task, c), _target(g, task, c, target)
                if x is not None and y is not None:
                    units.append(task.name)
                    xs.append(x)
                    ys.append(y)
                    ws.append(np.broadcast_to(np.asarray(w("unit", f"{task.name}@{c}", labels), float), x.shape))
        if len(xs) < 3:
            raise Unmeasurable(f"fewer than 3 (rung, task) units with {PREDICTORS[name][0]} and a {target} score")
        x, y, wt = np.vstack(xs), np.vstack(ys), np.vstack(ws)
        if not within_task:
            return stats.spearman(x, y, wt), [f"{len(xs)} (rung, task) units"]
        per_task = []
        for task in dict.fromkeys(units):
            rows = [i for i, u in enumerate(units) if u == task]
            if len(rows) >= 3:
                per_task.append((stats.spearman(x[rows], y[rows], wt[rows]), 1.0))
        return wmean(per_task, "task with 3 rungs", nan_ok=True), [f"{len(per_task)} tasks"]
    return compute


# ---------------------------------------------------------------------------------------------------------------
# parts


def parts(study: Study) -> list[Part]:
    """Every question's parts, as claims.Part over the study's union of cells."""
    why = "fine-tuning tasks × rungs: a sample of tasks and of stages"
    out = [
        Part("D1", QUESTIONS["D1"][0], "§6.3 (open)", "mean over models of t½(OOD) − t½(ID)", ">", _d1(study),
             ("task", "ckpt"), why, cells="union"),
        Part("D2", QUESTIONS["D2"][0], "Limitations (open)", "mean over tasks of the fitted change of t½(ID)", "<",
             _d2(study), ("task",), "tasks: a sample of tasks; " + claims.TREND_WHY, cells="union"),
        Part("D3", QUESTIONS["D3"][0], "§6.1 (open)", "mean over models of t½(fine-tuned format gap)", "<",
             _d3(study), ("task", "ckpt"), why, threshold=0.5, cells="union"),
        Part("P1", QUESTIONS["P1"][0], "Limitations (open); A1", "mean over tasks of fitted change (probe − 4-shot)",
             ">", _p1(study), ("task",), "classification tasks: a sample; " + claims.TREND_WHY, cells="union"),
    ]
    for name, (label, to_score, to_gain, _) in PREDICTORS.items():
        for target, direction in (("fine_tuned", to_score), ("gain", to_gain)):
            out.append(Part(
                f"R-{name}-{target}", f"{label} predicts the {TARGETS[target]}", "Discussion (open)",
                f"Spearman ρ across (rung, task): {label} vs {TARGETS[target]}", direction,
                _predictor(study, name, target), ("unit",), "(rung, task) units: a sample of models", cells="union",
                readings=(Reading("within each task, across rungs (mean ρ)", _predictor(study, name, target, True)),)))
    return out


def evaluate(df: pd.DataFrame, profile, *, study: Study | None = None, converged: Study | None = None,
             **frames) -> pd.DataFrame:
    """The 'Beyond the paper' scorecard: one row per question part (claims.SCORECARD_COLUMNS + `hypothesis`), then
    the rung-comparing claims (A1, B3, B4) judged on the fine-tune-to-convergence records (`converged`), with the
    fixed-epoch verdict beside them."""
    study = study or Study(df, profile, **frames)
    rows = []
    for part in parts(study):
        row = claims._evaluate_part(study, part)
        key = part.id.split("-")[0]
        row["hypothesis"] = QUESTIONS[key][1] if key != "R" else _predictor_hypothesis(part.id)
        rows.append(row)
    fixed = claims.evaluate_all(df, profile, ids=CONVERGED_IDS, study=study).set_index("id")
    if converged is not None and len(converged.cells.rows):
        table = claims.evaluate_all(df, profile, ids=CONVERGED_IDS, study=converged)
    else:
        table = pd.DataFrame([{**claims._empty_row(p), "missing": "no fine-tune-to-convergence records "
                               "(Profile.converge; ./run_all.sh --set converge=true)"}
                              for cid in CONVERGED_IDS for p in claims.CLAIMS[cid](study)])
    for row in table.to_dict("records"):
        row["hypothesis"] = f"same verdict as with fixed epochs ({fixed.loc[row['id'], 'verdict']})"
        row["id"] = f"C-{row['id']}"
        rows.append(row)
    out = pd.DataFrame(rows, columns=[*claims.SCORECARD_COLUMNS, "hypothesis"])
    out.attrs.update(profile=profile.name)
    return out


def _predictor_hypothesis(part_id: str) -> str:
    _, name, target = part_id.split("-", 2)
    label, to_score, to_gain, why = PREDICTORS[name]
    direction = to_score if target == "fine_tuned" else to_gain
    return f"ρ({label}, {TARGETS[target]}) {direction} 0 — {why}"


def ranking(table: pd.DataFrame) -> pd.DataFrame:
    """The predictor rows ranked by |ρ| per target: measure, target, ρ, its CI, the verdict."""
    rows = table[table["id"].str.startswith("R-")].copy()
    if rows.empty:
        return pd.DataFrame(columns=["target", "measure", "rho", "ci_low", "ci_high", "verdict"])
    rows["measure"] = rows["id"].str.split("-").str[1].map(lambda m: PREDICTORS[m][0])
    rows["target"] = rows["id"].str.split("-").str[2].map(TARGETS)
    rows["rho"] = rows["value"]
    rows["abs"] = rows["rho"].abs()
    return rows.sort_values(["target", "abs"], ascending=[True, False], na_position="last")[
        ["target", "measure", "rho", "ci_low", "ci_high", "verdict"]].reset_index(drop=True)


def section_markdown(table: pd.DataFrame) -> str:
    """The scorecard's 'Beyond the paper' section: every question with its hypothesis, then the verdict table and
    the predictor ranking."""
    lines = ["## Beyond the paper", "",
             "The paper's open questions, each stated with its hypothesis before it was computed "
             "(amuro_utils/verdicts/beyond.py), judged by the same rules as the paper's claims and counted apart from them.",
             ""]
    for key, (question, hypothesis, why) in QUESTIONS.items():
        lines.append(f"- **{key}** — {question} Hypothesis: {hypothesis}. Why: {why}.")
    lines += ["", claims.headline(table), "", claims.scorecard_markdown(table), "",
              "Predictors ranked by |ρ| (Spearman across (rung, task) units):", ""]
    rank = ranking(table)
    lines += ["| target | measure | ρ | 95 % CI | verdict |", "|---|---|---|---|---|"]
    lines += [f"| {r.target} | {r.measure} | {_fmt(r.rho)} | [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}] | {r.verdict} |"
              for r in rank.itertuples()]
    return "\n".join(lines) + "\n"


