"""What a profile has, as frames: set-up (a profile resolved, with overrides and its results source, and checked
against this machine), the records that are current under today's settings (`load_frame`), and the other artifacts the
figures and claims read (sensitivity rows, training records, forgetting rows, probe rows, records along
fine-tuning). Only results made under the settings identity the profile gives now are read; what was left out is
said in the frame's notes."""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
import pandas as pd

from .. import stats
from ..config import profiles
from ..config.profiles import Profile
from ..models import ladder, lmeval, probes as probes_module, sensitivity as probe
from ..store import artifacts, identity, results
from . import overrides as profile_overrides, plan, stages

# ---------------------------------------------------------------------------------------------------------------
# set-up and results


def setup(profile_name: str, results_source: str = "", overrides: str = "", *,
          force_cpu: bool | None = None) -> Profile:
    """Resolve a profile (a name or a profile file, with `overrides` such as "eval_limit=5;seeds=1,2", and with
    `results_source` if given: profiles.RESULTS_SOURCES) and check, before any download or hour is spent, that this
    machine can run it."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-file loading/saving bars would flood executed notebooks
    profile = profile_overrides.load(profile_name, overrides)
    if results_source:
        profiles.results_source_kind(results_source)  # an unknown source is refused with the options
        profile = lmeval.bind(dataclasses.replace(profile, results_source=results_source))
    if not runs_models(profile):
        return profile
    if profile.data_source == "offline":
        from ..data.offline import ensure_assets

        ensure_assets(verbose=False)
    if force_cpu is None:
        force_cpu = os.environ.get("AMURO_FORCE_CPU", "") == "1"
    if force_cpu and profile.device != "cpu":
        profile = dataclasses.replace(profile, device="cpu", eval_dtype="float32")
    from . import cost

    refusal = cost.gpu_refusal(profile)
    if refusal:
        raise RuntimeError(refusal)
    return profile


def runs_models(profile: Profile) -> bool:
    """False when the profile's results are read (released or published numbers, lm-eval output): nothing to run."""
    return profiles.runs_models(profile)


def source_words(profile: Profile) -> str:
    """What a profile's results are, in words: 'the authors' released numbers', 'lm-eval output in …', …"""
    kind = profiles.results_source_kind(profile.results_source)
    if kind == "lm-eval":
        return f"lm-evaluation-harness output in {profiles.results_source_dir(profile.results_source)}"
    return {"run": "this project's records", "paper": "the authors' released numbers",
            "pythia-evals": f"EleutherAI's published zero-shot evaluations of {profile.ladder} "
                            "(data/pythia_evals/)"}[kind]


def store(profile: Profile, kind: str = "base") -> results.Store:
    """The records store of a profile: results/<profile>/records (schema-1 records are migrated on first use); the
    fine-tune-to-convergence records (`kind` 'converge') have their own, results/<profile>/converge/records."""
    st = results.Store(plan.records_dir(profile, kind))
    st.migrate()
    return st


def load_frame(profile: Profile, source: str | None = None, *, items: bool = False,
               kinds: tuple[str, ...] = stages.FIXED_KINDS, stale: bool = False) -> pd.DataFrame:
    """The records of a profile as one DataFrame: its own runs ('run'), the authors' released numbers ('paper'), or
    lm-eval output ('pythia-evals', 'lm-eval:<dir>': base models only, with per-item scores where the files hold them).

    Run records of the given kinds ('base', 'instruction', 'sft'; 'converge': the models fine-tuned to convergence,
    from their own store) that are current under today's settings: a record made under other settings, or by a
    model today's profile does not make (another seed, method or evaluation plan), is left out, so no frame mixes
    settings. Column `schedule` says which fine-tuning schedule made a row ('fixed', the paper's epochs, or
    'converge'; stats.select keeps one). How many were left out, per kind, is in `frame.attrs['left_out']` and said
    in `frame.attrs['note']`; their jobs recompute them. `stale=True` loads every record of those kinds as stored.
    `items` adds per-item scores, predictions, references and each record's identity.
    """
    source = source or profile.results_source
    source_kind = profiles.results_source_kind(source)
    if source_kind == "paper":
        return results.load_paper_results().assign(schedule="fixed")
    if source_kind != "run":
        frame = lmeval.load(dataclasses.replace(profile, results_source=source)).assign(schedule="fixed")
        return frame if items else frame.drop(columns=list(results.ITEM_COLUMNS))
    parts, left_out = [], {}
    for schedule, kind_of, wanted_kinds in (("fixed", None, kinds), (plan.CONVERGE, plan.CONVERGE, kinds)):
        if kind_of == plan.CONVERGE and plan.CONVERGE not in kinds:
            continue
        frame = store(profile, kind_of or "base").frame(items=True)
        kind = frame["fine_tune"].map(lambda name: plan.record_kind(profile, name))
        if kind_of is not None:  # every record of that store is of its kind (base models are never in it)
            kind = kind.where(kind.isna() | (kind == "base"), kind_of)
        frame = frame[kind.isin(wanted_kinds)]
        if not stale:
            current = _current_rows(profile, frame, schedule)
            for name, n in kind[frame.index][~current].value_counts().items():
                left_out[name] = left_out.get(name, 0) + int(n)
            frame = frame[current]
        parts.append(frame.assign(schedule=schedule))
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    frame = (frame if items else frame.drop(columns=list(results.ITEM_COLUMNS))).reset_index(drop=True)
    frame.attrs.update(left_out=left_out, note=_left_out_note(profile, left_out))
    return frame


def model_identity(ckpt: ladder.Checkpoint) -> dict:
    """The settings identity of a base checkpoint (its repo and commit)."""
    return identity.model_identity(ckpt.repo, ckpt.commit)


def _current_rows(profile: Profile, frame: pd.DataFrame, schedule: str = "fixed") -> pd.Series:
    """Per row: is the record the one today's settings ask for (its identity hash equals the wanted identity's)?"""
    cache: dict = {}
    flags = []
    for row in frame.itertuples(index=False):
        key = {f: getattr(row, f) for f in results.KEY_FIELDS}
        key["seed"] = None if key["fine_tune"] == results.BASE else int(key["seed"])
        point = plan.resolved(profile, key["ckpt"], cache)
        wanted = None if point is None else plan.wanted_identity(profile, key, model_identity(point), schedule)
        flags.append(wanted is not None and identity.digest(wanted) == row.identity_hash)
    return pd.Series(flags, index=frame.index, dtype=bool)


def _left_out_note(profile: Profile, left_out: dict[str, int]) -> str:
    """One line: how many records of which kinds were left out, and that their jobs recompute them."""
    if not left_out:
        return ""
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(left_out.items()))
    writers = sorted({stages.runner_of(kind).notebook for kind in left_out})
    return (f"Left out: {counts} records made under other settings than today's (or by models this profile no longer "
            f"makes); the {', '.join(writers)} job(s) recompute them (`./run_all.sh --status` lists them).")


# ---------------------------------------------------------------------------------------------------------------
# the other artifacts the figures and claims read: sensitivity rows, training records, forgetting rows


def current_artifacts(profile: Profile, kind: str, kinds: tuple[str, ...] = stages.RECORD_KINDS
                      ) -> tuple[list[tuple[str, dict]], list[str]]:
    """([(its identity hash, the stored artifact)] of every artifact of `kind` ('sensitivity', 'training',
    'forgetting') that the model jobs of `kinds` make and that is current, [one line per one that is not])."""
    if not runs_models(profile):
        return [], []
    found, notes = [], []
    cache: dict = {}
    resolve = lambda label: plan.resolved(profile, label, cache)  # noqa: E731
    for what, path, wanted in plan.artifacts(profile, kind, plan.read_jobs(profile, kinds), resolve) or []:
        state = artifacts.status(path, wanted)
        if state.state == "done":
            found.append((identity.digest(wanted), artifacts.read(path)[0]))
        elif state.state != "missing":
            notes.append(f"{what}: {state.state}" + (f" (changed: {', '.join(state.changed)})"
                                                     if state.state == "stale" else f" ({state.changed[0]})"))
    return found, notes


def sensitivity_rows_of(stored: dict) -> pd.DataFrame:
    """A checkpoint's stored sensitivity rows (study.jobs.sensitivity's artifact) as a frame, with its step."""
    frame = pd.DataFrame(stored["rows"], columns=list(probe.FRAME_COLUMNS))
    frame["block_deltas"] = [np.asarray(d, dtype=float) for d in frame["block_deltas"]]
    frame.insert(0, "step", stored["step"])
    frame.insert(0, "ckpt", stored["ckpt"])
    return frame


def _frames(parts: list[pd.DataFrame], columns, digests: list[str], notes: list[str]) -> pd.DataFrame:
    """Rows of several artifacts as one frame, with the identity hashes read and what was left out in its attrs."""
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(columns))
    frame.attrs.update(digests=sorted(digests), left_out=notes)
    return frame


def sensitivity_rows(profile: Profile) -> pd.DataFrame:
    """The current sensitivity rows of the study's checkpoints (nothing is computed; empty if none); attrs: the
    identity hashes read and what was left out (stale rows)."""
    found, notes = current_artifacts(profile, "sensitivity", ("base",))
    return _frames([sensitivity_rows_of(stored) for _, stored in found], ["ckpt", "step", *probe.FRAME_COLUMNS],
                   [digest for digest, _ in found], notes)


TRAINING_COLUMNS = ("ckpt", "step", "fine_tune", "method", "seed", "schedule", "n_examples", "steps", "first_loss",
                    "final_loss", "train_loss", "zero_step_loss", "base_loss", "loss", "delta_loss", "block_deltas")
_RUN = ("ckpt", "fine_tune", "method", "seed", "schedule")


def _fine_tune_rows(profile: Profile, lead: str) -> pd.DataFrame:
    """One row per fine-tuned model of the study whose `lead` artifact ('training' or 'forgetting') is current, with
    the other one's columns where that one is current too (forgetting rows: the fixed schedule's only)."""
    rows: dict[tuple, dict] = {}
    read = {kind: current_artifacts(profile, kind) for kind in ("training", "forgetting")}
    for stored in (s for _, s in read["training"][0]):
        loss = stored["loss"]
        run = {c: stored.get(c, "fixed") for c in _RUN}
        rows.setdefault(tuple(run.values()), {}).update(
            run, **{c: stored[c] for c in ("step", "n_examples", "steps")}, first_loss=loss[0], final_loss=loss[-1],
            train_loss=loss, zero_step_loss=stored.get("zero_step_loss", math.nan), training=True)
    for stored in (s for _, s in read["forgetting"][0]):
        base, tuned = np.asarray(stored["base_heldout"]), np.asarray(stored["heldout"])
        run = {**{c: stored[c] for c in _RUN if c != "schedule"}, "schedule": "fixed"}
        rows.setdefault(tuple(run.values()), {}).update(
            run, step=stored["step"], base_loss=float(base.mean()), loss=float(tuned.mean()),
            delta_loss=float((tuned - base).mean()), block_deltas=tuned - base, forgetting=True)
    frame = pd.DataFrame([row for row in rows.values() if row.get(lead)], columns=list(TRAINING_COLUMNS))
    frame.attrs.update(digests=sorted(d for d, _ in read[lead][0]), left_out=read[lead][1])
    return frame


def training_frame(profile: Profile) -> pd.DataFrame:
    """One row per fine-tuned model of the study whose training record is current: its training-loss curve
    (`train_loss`, per optimizer step), its zero-step loss (`zero_step_loss`: the base model's training loss on the
    run's examples before any update, nats/token), its `schedule` ('fixed', or 'converge' beyond the paper) and,
    where its forgetting rows are current, its held-out pre-training-text loss (`loss`) against its base's
    (`base_loss`), per block (`block_deltas`). Empty for released numbers."""
    return _fine_tune_rows(profile, "training")


def forgetting_frame(profile: Profile) -> pd.DataFrame:
    """The forgetting frame of claim S3: one row per fine-tuned model whose forgetting rows are current (columns of
    `training_frame`); attrs['left_out'] names the stale ones. Empty for released numbers."""
    return _fine_tune_rows(profile, "forgetting")


# ---------------------------------------------------------------------------------------------------------------
# beyond the paper: linear probes per rung, records along fine-tuning


def probe_rows_of(stored: dict) -> pd.DataFrame:
    """A checkpoint's stored probe rows (study.jobs.probes' artifact) as a frame, with its step."""
    frame = pd.DataFrame(stored["rows"], columns=list(probes_module.PROBE_COLUMNS))
    frame["scores"] = [np.asarray(v, dtype=float) for v in frame["scores"]]
    frame["C"] = pd.to_numeric(frame["C"], errors="coerce")
    frame.insert(0, "step", stored["step"])
    frame.insert(0, "ckpt", stored["ckpt"])
    return frame


PROBE_FRAME_COLUMNS = ("ckpt", "step", *probes_module.PROBE_COLUMNS)


def probe_frame(profile: Profile) -> pd.DataFrame:
    """The current linear-probe rows of the study's checkpoints (nothing is computed; empty if none): ckpt, step and
    probes.PROBE_COLUMNS (scores: per held-out item, np.ndarray); attrs: the identity hashes read, what was left
    out."""
    found, notes = current_artifacts(profile, "probes", ("base",))
    return _frames([probe_rows_of(stored) for _, stored in found], PROBE_FRAME_COLUMNS,
                   [digest for digest, _ in found], notes)


DYNAMICS_COLUMNS = ("ckpt", "step", "fine_tune", "method", "seed", "schedule", "ft_fraction", "ft_step", "eval_set",
                    "format", "shots", "metric", "performance", "n", "scores", "predictions", "references", "source",
                    "derived")
HELDOUT_LOSS = "heldout_loss"  # the eval_set of held-out pre-training-text loss rows along fine-tuning


def dynamics_frame(profile: Profile) -> pd.DataFrame:
    """Beyond the paper: one row per cell along fine-tuning, for every fine-tuned model whose records along its
    fine-tuning are current: ckpt, step, fine_tune, method, seed, schedule, ft_fraction (of its optimizer steps),
    ft_step (the optimizer step), eval_set, format, shots, metric, performance, n, scores (np.ndarray per item),
    predictions, references. Held-out pre-training-text loss rows have eval_set 'heldout_loss' (metric 'loss',
    performance = the mean loss, scores = the per-block losses). Fractions 0 (the base model) and 1 (the fine-tuned
    model) are added from the ordinary records and the forgetting rows, cut to the items scored along the way (the
    first items of each set, scored alike: `derived` True), so every point of a curve scores the same items.
    attrs: the identity hashes read, what was left out."""
    found, notes = current_artifacts(profile, "dynamics", ("sft",))
    rows = []
    for _, stored in found:
        run = {c: stored[c] for c in ("ckpt", "step", "fine_tune", "method", "seed", "schedule")}
        for point in stored["points"]:
            where = {**run, "ft_fraction": float(point["fraction"]), "ft_step": int(point["step"]),
                     "shots": stored["shots"], "source": "run", "derived": False}
            for e in point["evals"]:
                rows.append({**where, **{c: e[c] for c in ("eval_set", "format", "metric", "performance", "n")},
                             "scores": np.asarray(e["scores"], dtype=float), "predictions": e["predictions"],
                             "references": e["references"]})
            if point.get("heldout") is not None:
                rows.append({**where, **_loss_row(point["heldout"])})
    frame = pd.DataFrame(rows, columns=list(DYNAMICS_COLUMNS))
    if len(frame):
        frame = pd.concat([frame, _dynamics_ends(profile, frame, found)], ignore_index=True)
    frame.attrs.update(digests=sorted(d for d, _ in found), left_out=notes)
    return frame


def _loss_row(losses) -> dict:
    losses = np.asarray(losses, dtype=float)
    return {"eval_set": HELDOUT_LOSS, "format": "default", "metric": "loss", "performance": float(losses.mean()),
            "n": len(losses), "scores": losses, "predictions": None, "references": None}


def _dynamics_ends(profile: Profile, along: pd.DataFrame, found: list) -> pd.DataFrame:
    """Fractions 0 and 1 of every curve along fine-tuning (unless scored along the way, as 1.0 may be): the base and
    the fine-tuned model's current records (and forgetting rows), cut to as many items as the points along the way
    scored."""
    records = load_frame(profile, items=True, kinds=("base", "sft"))
    run_of = lambda s: (s["ckpt"], s["fine_tune"], s["method"], s["seed"])  # noqa: E731
    forgetting = {run_of(s): s for _, s in current_artifacts(profile, "forgetting", ("sft",))[0]}
    runs = {run_of(s): s for _, s in found}
    out = []
    cells = along[["ckpt", "fine_tune", "method", "seed", "eval_set", "format", "n"]].drop_duplicates(
        ["ckpt", "fine_tune", "method", "seed", "eval_set", "format"])
    for cell in cells.itertuples(index=False):
        stored = runs[(cell.ckpt, cell.fine_tune, cell.method, cell.seed)]
        base = {c: stored[c] for c in ("ckpt", "step", "fine_tune", "method", "seed", "schedule")}
        scored = {float(p["fraction"]) for p in stored["points"]}
        for fraction, ft_step in ((0.0, 0), (1.0, stored["total_steps"])):
            if fraction in scored:
                continue
            where = {**base, "ft_fraction": fraction, "ft_step": ft_step, "shots": stored["shots"], "source": "run",
                     "derived": True}
            if cell.eval_set == HELDOUT_LOSS:
                rows = forgetting.get(run_of(stored))
                if rows is not None:
                    out.append({**where, **_loss_row(rows["base_heldout" if fraction == 0.0 else "heldout"])})
                continue
            model = results.BASE if fraction == 0.0 else cell.fine_tune
            match = records[(records["ckpt"] == cell.ckpt) & (records["fine_tune"] == model)
                            & (records["eval_set"] == cell.eval_set) & (records["format"] == cell.format)
                            & (records["shots"] == stored["shots"])]
            if model != results.BASE:
                match = match[(match["method"] == cell.method) & (match["seed"] == cell.seed)]
            if not len(match):
                continue
            row = match.iloc[0]
            n = min(int(cell.n), len(row["scores"]))
            scores = np.asarray(row["scores"], dtype=float)[:n]
            out.append({**where, "eval_set": cell.eval_set, "format": cell.format, "metric": row["metric"],
                        "performance": float(scores.mean()), "n": n, "scores": scores,
                        "predictions": list(row["predictions"])[:n] if row["predictions"] is not None else None,
                        "references": list(row["references"])[:n] if row["references"] is not None else None})
    return pd.DataFrame(out, columns=list(DYNAMICS_COLUMNS))


# ---------------------------------------------------------------------------------------------------------------
# what a stage reads, loaded once, and its studies, built once

# The kinds the scorecard reads (the stage that writes it), and what the questions beyond the paper read besides the
# claims' inputs.
SCORECARD_READS = stages.get(stages.writers_of("scorecard")[0]).reads
BEYOND_FRAMES = {"training": training_frame, "dynamics": dynamics_frame, "probes": probe_frame}


def claim_inputs(profile: Profile, reads: tuple[str, ...] = SCORECARD_READS, df: pd.DataFrame | None = None) -> dict:
    """What a stage's figures and claims read, current under today's settings: the records of the kinds in `reads`
    (with per-item scores; 'converge' adds the fine-tune-to-convergence records, column `schedule`; `df` when they
    are loaded already), and, where `reads` names them, the sensitivity rows, the forgetting rows and what the
    questions beyond the paper read (training records with their zero-step loss, records along fine-tuning, probe
    rows); of this profile's run or of the authors' release."""
    kinds = tuple(k for k in reads if k in stages.RECORD_KINDS)
    inputs = {"df": load_frame(profile, items=True, kinds=kinds) if df is None else df,
              "sensitivity": sensitivity_rows(profile) if "sensitivity" in reads else None,
              "forgetting": forgetting_frame(profile) if "forgetting" in reads else None}
    inputs.update({kind: make(profile) if kind in reads else None for kind, make in BEYOND_FRAMES.items()})
    return inputs


def studies(profile: Profile, inputs: dict) -> dict[str, stats.Study]:
    """The study of each fine-tuning method (stats.Study), built once from a stage's inputs: the figures, the tables,
    the notebook's verdicts, the scorecard and the questions beyond the paper all read it. The leading method's also
    holds the records along fine-tuning and the probe rows (the questions beyond the paper read those)."""
    beyond = {"dynamics": inputs.get("dynamics"), "probes": inputs.get("probes")}
    return {method: stats.Study(inputs["df"], profile, method=method, sensitivity=inputs["sensitivity"],
                                forgetting=inputs["forgetting"], **(beyond if method == profile.method else {}))
            for method in profile.methods}
