"""A notebook's figures and tables, from the registry: each stage's figures drawn from the study of its current
records (`draw`), its artifact figures from their frames, its tables from `stats`."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import pandas as pd

from .. import stats
from ..config import reporter
from ..config.profiles import Profile
from ..study import plan, stages
from ..study.frames import (
    claim_inputs,
    forgetting_frame,
    load_frame,
    runs_models,
    sensitivity_rows,
    source_words,
    studies,
    training_frame,
)

# ---------------------------------------------------------------------------------------------------------------
# what the notebooks draw


@dataclasses.dataclass
class Drawn:
    """What a notebook's figure step produced: the files written, the tables to show, what it was drawn from."""

    files: list[Path]
    tables: dict[str, pd.DataFrame]
    note: str = ""
    study: "stats.Study | None" = None  # what the leading method's figures and tables read (show.numbers)
    inputs: dict | None = None  # what the stage reads (frames.claim_inputs), loaded once, and the study of each
    studies: dict | None = None  # method built once from it: the notebook's verdicts read both (pipeline.verdicts)

    def _repr_markdown_(self) -> str:
        files = "\n".join(f"- `{p}`" for p in self.files) or "(nothing drawn: make_figures=False)"
        return f"{self.note}\n\nWritten:\n{files}" if self.note else f"Written:\n{files}"


def _fine_tune_names(profile: Profile, stage: stages.Stage) -> list[str]:
    """The fine-tunes a stage runs (its artifact figures show those)."""
    return [profile.instruction.name] if stage.runs == "instruction" else [t.name for t in profile.tasks]


def _artifact_figure_input(profile: Profile, stage: stages.Stage, kind: str, inputs: dict
                           ) -> tuple[pd.DataFrame, tuple]:
    """(the rows, the extra arguments) an artifact figure of `stage` is drawn from (from `inputs`, where loaded)."""
    loaded = inputs.get(kind)
    if kind == "sensitivity":
        return (sensitivity_rows(profile) if loaded is None else loaded), ()
    frame = loaded if loaded is not None else training_frame(profile) if kind == "training" else \
        forgetting_frame(profile)
    names = _fine_tune_names(profile, stage)
    chosen = frame[(frame["method"] == profile.method) & frame["fine_tune"].isin(names)]
    chosen.attrs.update(frame.attrs)
    return chosen, ((names,) if kind == "training" else ())


def draw(profile: Profile, notebook: str, *, overlay_paper: bool = False, enabled: bool = True,
         beyond=None) -> Drawn:
    """Draw a notebook's figures (PDF + PNG) and tables (CSV + markdown), as its stage names them
    (amuro_utils.study.stages), into figures/<profile>/ from the results current under today's settings, with the paper's
    released numbers overlaid if asked; prints what they were drawn from and what was left out. A profile with
    several fine-tuning methods also gets each other method's figures (file suffix `_<method>`) with the leading
    method's curves drawn dotted beside them. Analysis notebooks stop with the commands to run when the records they
    need are missing. `enabled=False` (per-checkpoint cluster jobs) draws nothing. `beyond`: the questions beyond
    the paper, for a stage that draws their figures: called with (profile, inputs, studies), it returns what
    draws them (amuro_utils.verdicts.scorecard.beyond_run: `figure(stem)`, `notes`). The study of each method is
    built once (frames.studies) and returned with the inputs, for the notebook's verdicts."""
    from . import plots

    if not enabled:
        return Drawn([], {})
    reporter.progress("drawing the figures", unit="rest")
    stage = stages.get(notebook)
    df, overlay = figure_inputs(profile, notebook, overlay_paper)
    inputs = claim_inputs(profile, stage.reads, df=df)
    built = studies(profile, inputs)
    files, tables = [], {}
    variants = [(profile, overlay, "")]
    for other in profile.methods[1:]:
        leading = df.copy()
        leading.attrs.update(method=profile.method, label=f"{profile.method} fine-tuning")
        rest = tuple(m for m in profile.methods if m != other)
        variants.append((dataclasses.replace(profile, methods=(other, *rest)), leading, f"_{other}"))
    for shown, over, suffix in variants:
        study = built[shown.method]  # one study per method: figures, tables and verdicts read it
        for stem, maker in stage.figures.items():
            fig = stages.resolve(maker)(study, shown, overlay=over)
            if fig is not None:
                files += plots.save(fig, profile, stem + suffix)  # inline
        for stem, maker in stage.tables.items():
            tables[stem + suffix] = stages.resolve(maker)(study)
            files += plots.write_table(tables[stem + suffix], profile, stem + suffix)
    notes = [df.attrs["note"]] if df.attrs.get("note") else []
    if stage.beyond_figures:
        run = beyond(profile, inputs, built)
        for stem in stage.beyond_figures:
            files += run.figure(stem)
        notes += run.notes
    if runs_models(profile):
        for stem, (kind, maker) in stage.artifact_figures.items():
            rows, extra = _artifact_figure_input(profile, stage, kind, inputs)
            notes += [f"Left out of {stem}: {line}." for line in rows.attrs.get("left_out", [])]
            if len(rows):
                files += plots.save(stages.resolve(maker)(rows, profile, *extra), profile, stem)
    source = (source_words(profile) if not runs_models(profile) else
              f"{len(df)} records ({', '.join(stage.record_reads)}) made under today's settings")
    note = " ".join([f"Figures of {notebook} drawn from {source}."] + notes)
    reporter.say(note)
    return Drawn(files, tables, note, built[profile.method], inputs, built)


# ---------------------------------------------------------------------------------------------------------------
# what the analysis notebooks read


def figure_inputs(profile: Profile, notebook: str, overlay_paper: bool = False
                  ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(the current records of the kinds a notebook's stage reads, the paper's released rows to overlay or None).
    A stage that runs no model stops with the commands to run when base or fine-tuned records are missing."""
    stage = stages.get(notebook)
    df = load_frame(profile, items=True, kinds=stage.record_reads)  # per-item scores: the scorecard's intervals
    if stage.runs is None:
        require(df, profile, ["base", *[t.name for t in profile.tasks]])
    return df, (load_frame(profile, "paper") if overlay_paper else None)


def require(df: pd.DataFrame, profile: Profile, fine_tunes: list[str]) -> None:
    """Stop with the exact notebook commands to run when records an analysis needs are missing."""
    have = set(df["fine_tune"]) if len(df) else set()
    lacking = [f for f in fine_tunes if f not in have]
    if lacking:
        params = " ".join(f"-p {k} {shlex.quote(v)}" for k, v in profile.params or (("profile", profile.name),))
        cmds = sorted({f"papermill notebooks/{stages.runner_of(plan.record_kind(profile, f) or 'sft').notebook}.ipynb "
                       f"out.ipynb {params}" for f in lacking})
        raise RuntimeError(f"no records for fine_tune {lacking} in profile {profile.name!r}; run first:\n  "
                           + "\n  ".join(cmds))
