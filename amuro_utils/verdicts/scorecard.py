"""What each notebook's run judges: the claims of both papers on the current records and artifacts (`verdicts`,
`scorecard`: figures/<profile>/claims.*, beyond.*, claims_readings.*, written once each under the scorecard's
identity), and the questions beyond the paper (`beyond_run`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from .. import stats
from ..config import reporter
from ..config.paths import results_dir
from ..config.profiles import Profile
from ..store import artifacts, identity
from ..study import plan, stages
from ..study.frames import (
    BEYOND_FRAMES,
    SCORECARD_READS,
    claim_inputs,
    runs_models,
    source_words,
    studies,
)

# ---------------------------------------------------------------------------------------------------------------
# what each notebook's run shows: the claims of both papers, computed

# The claims that read an artifact besides the records (their verdict notes say why rows were left out).
ARTIFACT_CLAIMS = {"sensitivity": ("S1",), "forgetting": ("S3",)}


def _judges_beyond(inputs: dict) -> bool:
    """Whether these inputs are those of the questions beyond the paper (the stage that reads them all)."""
    return all(inputs.get(kind) is not None for kind in BEYOND_FRAMES)


def verdicts(profile: Profile, notebook: str, drawn=None) -> str:
    """Markdown: the verdicts of the claims a notebook's figures bear on (its stage's `claims`), computed from the
    results it reads, one table per fine-tuning method. The notebook that writes the scorecard also writes it
    (figures/<profile>/claims.md and .csv, with its "Beyond the paper" section, and beyond.md / .csv) and, when it is
    the notebook of the questions beyond the paper, shows their section. `drawn`: what the notebook's figure step
    made (pipeline.draw's Drawn, or beyond_run's BeyondRun), whose inputs and studies the verdicts read instead of
    loading and building them again."""
    from . import claims

    reporter.progress("judging the claims", unit="rest")
    stage = stages.get(notebook)
    inputs, built = getattr(drawn, "inputs", None), getattr(drawn, "studies", None)
    if inputs is None:
        inputs = claim_inputs(profile, stage.reads)
        built = studies(profile, inputs) if stage.claims or "scorecard" in stage.writes else None
    parts = [claims.notebook_verdicts(notebook, inputs["df"], profile, sensitivity=inputs["sensitivity"],
                                      forgetting=inputs["forgetting"], method=method, study=built[method])
             for method in profile.methods if stage.claims]
    if "scorecard" in stage.writes:
        complete = set(SCORECARD_READS) <= set(stage.reads)  # else the scorecard loads what it reads itself
        tables = judged(profile, inputs if complete else None, built if complete else None)
        paths = _write_files(profile, tables)
        if _judges_beyond(inputs):
            from . import beyond

            parts.append(beyond.section_markdown(tables[BEYOND_STEM]))
        parts.append(f"The whole scorecard: `{next(p for p in paths if p.name == 'claims.md')}`")
    return "\n\n".join(parts)


def scorecard_identity(profile: Profile, inputs: dict) -> dict:
    """What a scorecard was judged from: the identity hashes of the records (the converge schedule's among them),
    sensitivity and forgetting rows, training records, records along fine-tuning and probe rows it read (or the
    released tables), the claims code's version and the settings the claims read."""
    if not runs_models(profile):
        return plan.scorecard_identity(profile, released=identity.source_digest(profile.results_source))
    beyond = {kind: inputs[kind].attrs["digests"] for kind in BEYOND_FRAMES if inputs.get(kind) is not None}
    return plan.scorecard_identity(profile, records=list(inputs["df"]["identity_hash"]),
                                   sensitivity=inputs["sensitivity"].attrs["digests"],
                                   forgetting=inputs["forgetting"].attrs["digests"], **beyond)


def beyond_studies(profile: Profile, inputs: dict, built: dict | None = None) -> tuple[stats.Study, stats.Study | None]:
    """(the study of the questions beyond the paper: the leading method's — records of the fixed schedule with every
    other bank: dynamics, probes, sensitivity and forgetting with the zero-step loss; `built[method]` where the
    studies are built already (frames.studies) —, the study of the fine-tune-to-convergence records or None where
    there are none)."""
    method = profile.method
    df = inputs["df"]
    frames = {"sensitivity": inputs["sensitivity"], "forgetting": inputs["forgetting"]}
    study = (built or studies(profile, inputs))[method]
    converged = None
    if "schedule" in df and (df["schedule"] == plan.CONVERGE).any():
        converged = stats.Study(df, profile, method=method, schedule=plan.CONVERGE, **frames)
    return study, converged


def stored_beyond_table(profile: Profile, inputs: dict | None = None, built: dict | None = None) -> pd.DataFrame:
    """The questions beyond the paper judged on this run (beyond.evaluate), as the scorecard stores them (judged
    first if the stored scorecard is not current)."""
    return judged(profile, inputs, built)[BEYOND_STEM]


def _left_out_lines(inputs: dict) -> dict[str, list[str]]:
    """Artifact kind -> why some of its rows were left out of the scorecard (stale or unreadable)."""
    return {kind: inputs[kind].attrs.get("left_out", []) for kind in ARTIFACT_CLAIMS
            if inputs.get(kind) is not None and inputs[kind].attrs.get("left_out")}


def _write_scorecard(profile: Profile, wanted: dict, tables: dict[str, dict]) -> None:
    """The scorecard (file stem -> its rows, one per verdict, and the table's attrs: sources, constant counts, the
    units of each part) under the identity of what it was judged from."""
    artifacts.write(results_dir(profile.name), plan.scorecard_path(profile), wanted, {"tables": tables})


BEYOND_STEM = "beyond"  # the scorecard's table of the questions beyond the paper (figures/<profile>/beyond.*)
READINGS_STEM = "claims_readings"  # the same claims on continuous readings (figures/<profile>/claims_readings.*)


def scorecard(profile: Profile, inputs: dict | None = None, built: dict | None = None) -> list[Path]:
    """Judge every claim of both papers on this profile's current results (each fine-tuning method) and the
    questions beyond the paper (the leading method), store the scorecard under the identity of what it read
    (results/<profile>/scorecard.json: reused while that is unchanged) and write figures/<profile>/claims.md and
    claims.csv (other methods: claims_<method>.*) from it, claims.md ending with the "Beyond the paper" section, and
    beyond.md / beyond.csv. Rows left out (stale sensitivity or forgetting rows) are named in the notes of the claims
    that read them. `built`: the studies of `inputs` (frames.studies), where built already."""
    return _write_files(profile, judged(profile, inputs, built))


def judged(profile: Profile, inputs: dict | None = None, built: dict | None = None) -> dict[str, pd.DataFrame]:
    """The scorecard's tables (the claims per method, the readings, the questions beyond the paper) as stored under
    the identity of what they were judged from: judged now (and stored) where the stored scorecard is not current,
    read back otherwise. Nothing is written to figures/ (`scorecard` writes its files)."""
    from . import beyond, claims

    inputs = inputs or claim_inputs(profile)
    wanted, path = scorecard_identity(profile, inputs), plan.scorecard_path(profile)
    if artifacts.load(path, wanted, "scorecard") is None:
        tables, left_out = {}, _left_out_lines(inputs)
        built = built or studies(profile, inputs)
        for method in profile.methods:
            table = claims.evaluate_all(inputs["df"], profile, sensitivity=inputs["sensitivity"],
                                        forgetting=inputs["forgetting"], method=method, study=built[method])
            for kind, lines in left_out.items():
                why = f"Left out: {'; '.join(lines)}."
                if kind == "forgetting" and not profile.keep_weights:
                    why += " Fix: " + plan.forgetting_fix(profile) + "."
                chosen = table["id"].isin(ARTIFACT_CLAIMS[kind])
                table.loc[chosen, "note"] = [f"{n} {why}".strip() if isinstance(n, str) else why
                                             for n in table.loc[chosen, "note"]]
            tables["claims" if method == profile.method else f"claims_{method}"] = {
                "rows": table.to_dict("records"), "attrs": dict(table.attrs)}
            if method == profile.method:
                lead = table
        readings = claims.evaluate_readings(inputs["df"], profile, method=profile.method, paper=lead)
        tables[READINGS_STEM] = {"rows": readings.to_dict("records"), "attrs": dict(readings.attrs)}
        if _judges_beyond(inputs):
            study, converged = beyond_studies(profile, inputs, built)
            table = beyond.evaluate(inputs["df"], profile, study=study, converged=converged)
            tables[BEYOND_STEM] = {"rows": table.to_dict("records"), "attrs": dict(table.attrs)}
        _write_scorecard(profile, wanted, tables)
    stored = artifacts.read(path)[0]  # drawn from what is stored: the same files whether judged now or before
    tables = {}
    for stem, stored_table in stored["tables"].items():
        columns = ([*claims.SCORECARD_COLUMNS, "hypothesis"] if stem == BEYOND_STEM else
                   list(claims.READING_COLUMNS) if stem == READINGS_STEM else list(claims.SCORECARD_COLUMNS))
        tables[stem] = pd.DataFrame(stored_table["rows"], columns=columns)
        tables[stem].attrs.update(stored_table["attrs"])
    return tables


def _write_files(profile: Profile, tables: dict[str, pd.DataFrame]) -> list[Path]:
    """figures/<profile>/claims.md and .csv (other methods: claims_<method>.*), claims_readings.*, beyond.*, each
    written once from the judged tables; claims.md ends with the readings' summary and the beyond section."""
    from . import beyond, claims

    tables = dict(tables)
    written, sections = [], []  # claims.md ends with the readings' summary and the questions beyond the paper
    readings_table, beyond_table = tables.pop(READINGS_STEM, None), tables.pop(BEYOND_STEM, None)
    if readings_table is not None and len(readings_table):  # beside the paper's metric: its own files
        written += claims.write_readings(readings_table, profile, stem=READINGS_STEM)
        sections.append(claims.readings_summary(readings_table))
    if beyond_table is not None:  # kept apart from the paper's claims: its own section and its own files
        from ..figures import plots

        section = beyond.section_markdown(beyond_table)
        written += plots.write_table(beyond_table, profile, BEYOND_STEM, markdown=section)
        sections.append(section)
    scorecards = []  # each file written once; the lead method's claims.md ends with the sections
    for stem, table in tables.items():
        scorecards += claims.write_scorecard(table, profile, stem=stem, sections=tuple(sections) if stem == "claims" else ())
    return scorecards + written


QUESTION_PREFIXES = {"D": ("D1", "D2", "D3"), "P": ("P1",), "R": ("R-",), "C": ("C-",)}


@dataclasses.dataclass
class BeyondRun:
    """The questions beyond the paper on this run, for their notebook: the study every figure reads (records of the
    fixed schedule with the dynamics, probe and held-out-loss banks), the verdict table as the scorecard stores it,
    and what was left out; the study of the fine-tune-to-convergence records where there are some."""

    profile: Profile
    study: stats.Study
    table: pd.DataFrame
    notes: list[str]
    converged: stats.Study | None = None
    inputs: dict | None = None  # what the study was built from (claim_inputs), and the study of each method:
    studies: dict | None = None  # the notebook's verdicts read these (verdicts(profile, notebook, run))

    def figure(self, stem: str) -> list[Path]:
        """Draw one figure of the stage (figures/<profile>/<stem>.pdf and .png; shown inline in a notebook); nothing,
        with a note, where its rows are missing (e.g. a switch is off, or the authors' release)."""
        from ..figures import plots

        source, maker = stages.get(stages.writers_of("scorecard")[0]).beyond_figures[stem]
        lacking = {"figB_dynamics": (self.study.dynamics_frame, "no records along fine-tuning (Profile.dynamics)"),
                   "figB_probes": (self.study.probe_frame, "no probe rows (Profile.probes)"),
                   "figB_converge": (self.converged, "no fine-tune-to-convergence records (./run_all.sh --set "
                                                     "converge=true)")}.get(stem)
        if lacking is not None and lacking[0] is None:
            reporter.say(f"{stem} not drawn: {lacking[1]}.")
            return []
        what = {"study": (self.study,), "studies": (self.study, self.converged)}.get(source, (self.table,))
        return plots.save(stages.resolve(maker)(*what, self.profile), self.profile, stem)

    def shows(self, question: str) -> str:
        """Markdown: what this run shows for one question ('D' dynamics, 'P' probes, 'R' predictors, 'C' claims under
        fine-tuning to convergence): per part its statistic, hypothesis, value, 95 % CI, verdict and note."""
        from . import beyond as questions

        rows = self.table[self.table["id"].str.startswith(QUESTION_PREFIXES[question])]
        lines = ["| id | statistic | hypothesis | value | 95 % CI | verdict | note |", "|---|---|---|---|---|---|---|"]
        for r in rows.itertuples(index=False):
            ci = f"[{r.ci_low:.3g}, {r.ci_high:.3g}]" if np.isfinite(r.ci_low) else ""
            value = f"{r.value:.3g}" if isinstance(r.value, float) and np.isfinite(r.value) else ""
            note = "; ".join(str(x) for x in (r.missing and f"missing: {r.missing}", r.note)
                             if isinstance(x, str) and x)
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in (
                r.id, r.statistic, r.hypothesis, value, ci, f"**{r.verdict}**", note)) + " |")
        if question == "R":
            lines += ["", "Ranked by |ρ| (beyond.ranking):", "", _markdown_table(questions.ranking(self.table))]
        return "\n".join(lines) + "\n"


def _markdown_table(frame: pd.DataFrame) -> str:
    def cell(v):
        return f"{v:.3g}" if isinstance(v, float) and np.isfinite(v) else ("" if isinstance(v, float) else str(v))

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)])


def beyond_run(profile: Profile, inputs: dict | None = None, built: dict | None = None) -> BeyondRun:
    """The questions beyond the paper on this profile's current results: their study and their verdict table (judged
    with the whole scorecard and stored with it, or read back when current); prints what they are drawn from.
    `inputs` / `built`: the scorecard's inputs (claim_inputs) and their studies, where loaded and built already."""
    inputs = inputs or claim_inputs(profile)
    built = built or studies(profile, inputs)
    study, converged = beyond_studies(profile, inputs, built)
    notes = [line for line in ([inputs["df"].attrs.get("note", "")] + [
        f"Left out of the questions beyond the paper: {line}." for kind in BEYOND_FRAMES
        for line in inputs[kind].attrs.get("left_out", [])]) if line]
    df = inputs["df"]
    source = (source_words(profile) if not runs_models(profile) else
              f"{len(inputs['dynamics'])} rows along fine-tuning, {len(inputs['probes'])} probe rows and {len(df)} "
              f"records ({', '.join(sorted(set(df['schedule'])))} schedule) made under today's settings")
    reporter.say(" ".join([f"Figures of beyond drawn from {source}."] + notes))
    return BeyondRun(profile, study, stored_beyond_table(profile, inputs, built), notes, converged, inputs, built)
