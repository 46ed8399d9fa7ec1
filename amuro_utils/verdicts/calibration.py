"""Every verdict rule's error rate, measured: each claim part is simulated on frames with the structure and noise
of a real source, at truths where the right answer is known, and the verdicts are counted.

A *source* is a noise model with a real study's structure:

- `release_source()`: the authors' release (profile `paper-reference`): its cells (pairs, sets, checkpoints,
  formats), each observed as N(true value, std²) with the release's own standard error (its bootstrap std, or
  √(p(1−p)/n) for the benchmark table), resampled as the scorecard resamples the release.
- `tiny_source()`: the offline `tiny` profile: per-item 0/1 scores, `eval_limit` items per set, paired across the
  cells of a set (one latent uniform per item; each cell redraws an item's uniform with probability REFRESH, so two
  cells of equal score disagree on ~17 % of items, as two real models do), and constant predictors (one label, or
  one string, for every item) drawn at the share the tiny run measured, per side (base / fine-tuned).

A *truth* plants the claim's statistic (or, for an every / some claim, each unit's value) at a known place relative
to the rule's threshold or margin, with the units spread around it (UNIT_SPREAD, zero-sum): `boundary` (exactly at
the threshold or margin: any decisive verdict is wrong), `boundary_one` (every / some claims: one unit at the
boundary, the others clearly on the claim's side — every — or clearly off it — some: the worst case for the other
wrong verdict), `holds` and `fails` (clearly on / off the claim's side: 2 × the design's mde away) and `mde` (the
claim holding by exactly the power column's mde: it should be supported ≈ 80 % of the time, the check of the
power column). Every replication draws new items (or new cell noise) and new constant predictors; the verdict is the
scorecard's (claims.decide: the rule, then the degenerate-cell rule; leave-one-out, readings and defects are not
simulated). Wrong decisive verdicts: `false_support` (supported where the claim is at its boundary or fails) and
`false_contradiction` (contradicted where it is at its boundary or holds); a rule is calibrated when both are at
most 5 % at the boundary.
"""

from __future__ import annotations

import dataclasses
import math
import time
import zlib
from collections.abc import Callable

import numpy as np
import pandas as pd

from .. import stats
from ..config.profiles import Profile, ckpt_step, get_profile
from ..stats import analysis
from ..store import artifacts
from ..study import plan
from . import claims

TRUTHS = ("boundary", "boundary_one", "holds", "fails", "mde")
UNIT_SPREAD = 0.02  # the units' own effects spread ±UNIT_SPREAD around the planted one (score units; zero-sum)
RELATIVE_SPREAD = 10.0  # … and ±10 percentage points for a relative change (B6)
REFRESH = 0.19  # per item and cell: the chance an item's latent uniform is redrawn (17 % disagreement at p = .5)
HOLDS_FACTOR = 2.0  # "clearly" holds / fails: this many mde from the boundary …
CLEAR_CAP = {"": 0.3, " %": 90.0}  # … at most this far (score units; % of base): a truth must stay a valid score
LABEL_SHARE = 0.4  # the share of items whose gold is the label a constant classification predictor answers
MAX_WRONG = 0.05  # a calibrated rule: wrong decisive verdicts at the boundary at most this often
SIMULATED = ("A1a", "A1b", "A2", "A3", "A4a", "A4b", "B1a", "B1b", "B2", "B3", "B4a", "B4b", "B4c", "B5a", "B5b",
             "B6a", "B6b", "B7a", "B7b", "B8a", "B8b", "S2")  # every performance part (B1c is A1b's row)
HELD_OUT = ("S1", "S3")  # Springer et al.'s held-out-loss parts (blocks sources; none in the release)
# held-out-loss noise where no run measured it (nats/token): a block's own difficulty (shared by every model, which
# pairs the blocks), each row's per-block noise, and a seed's offset
BLOCK_NOISE = {"block_sd": 0.02, "noise_sd": 0.01, "seed_sd": 0.005}


def _stable(*parts) -> int:
    return zlib.crc32("\x1f".join(map(str, parts)).encode("utf-8"))


# ---------------------------------------------------------------------------------------------------------------
# sources: the structure and noise of a real study


@dataclasses.dataclass
class Source:
    """A real study's cells and noise. `cells`: one row per (eval_set, fine_tune, ckpt, format) with its true base
    level (`level`), metric, step and, for a normal source, `std`. `constant_share`: per side, the share of cells
    that are constant predictors (items sources)."""

    name: str
    profile: Profile
    cells: pd.DataFrame
    kind: str  # "normal" | "items" | "blocks"
    n_items: int = 0
    constant_share: dict = dataclasses.field(default_factory=dict)
    origin: str = ""  # where the noise model's numbers come from, in words
    blocks: dict = dataclasses.field(default_factory=dict)  # held-out-loss parts: which -> BlockNoise


def release_source() -> Source:
    """The authors' release as a noise model: its cells, levels (each set's mean base score over the ladder, per
    format) and standard errors."""
    from ..store.results import load_paper_results

    profile = get_profile("paper-reference")
    rows = stats.select(load_paper_results(), profile, "full")
    rows = rows[rows["ckpt"].isin(profile.ckpts)]
    level = rows[rows["fine_tune"] == "base"].groupby(["eval_set", "format"])["performance"].mean()
    out = rows[["eval_set", "fine_tune", "ckpt", "format", "metric", "step"]].copy()
    own = rows["performance"].to_numpy(dtype=float)
    out["level"] = [level.get((e, f), p) for e, f, p in zip(out["eval_set"], out["format"], own)]
    n = np.array([stats.RELEASE_N.get(e, math.nan) for e in rows["eval_set"]], dtype=float)
    std = rows["std"].to_numpy(dtype=float)
    p = np.clip(out["level"].to_numpy(dtype=float), 0.01, 0.99)
    binomial = np.sqrt(p * (1 - p) / n)
    out["std"] = np.where(np.isfinite(std), std, binomial)
    return Source("release", profile, out.reset_index(drop=True), "normal",
                  origin="the release's cells with their own standard errors (all_perf_table.csv std; "
                         "√(p(1−p)/n) for official_eval_table.csv)")


def reading_source(frame: pd.DataFrame, profile: Profile, measures: str) -> Source:
    """A run's continuous reading as a noise model (claims.evaluate_readings judges the claims on it): its cells on
    the reading that measures `measures` (signal.claim_view: higher = better on every set), levels the sets' mean
    base readings, and each cell's own standard error (the items' SD / √n; seeds pooled) as normal noise, as the
    release's source. The items' pairing is not simulated: this calibrates the rule, not the run's exact power."""
    from ..stats import signal

    view = signal.claim_view(frame, measures)
    rows = stats.select(view, profile, profile.method)
    rows = rows[rows["ckpt"].isin(plan.instruction_ckpts(profile))]  # the ladder and the instruction-only rung
    if not len(rows):
        raise ValueError(f"no record of profile {profile.name!r} carries the {measures!r} reading: run ./run_all.sh "
                         f"--profile {profile.name} with readings recorded (scorer version 2) first")
    keys = ["eval_set", "fine_tune", "ckpt", "format"]
    cells = rows.groupby(keys, sort=False).agg(metric=("metric", "first"), performance=("performance", "mean"),
                                              std=("std", lambda v: float(np.sqrt(np.mean(np.square(v))))))
    cells = cells.reset_index()
    level = cells[cells["fine_tune"] == "base"].groupby(["eval_set", "format"])["performance"].mean()
    cells["level"] = [level.get((e, f), p) for e, f, p in zip(cells["eval_set"], cells["format"],
                                                               cells["performance"])]
    steps = tiny_steps(profile) if profile.tiny_ladder else {}
    cells["step"] = [steps.get(c, math.nan) for c in cells["ckpt"]]
    return Source(f"{profile.name}: {measures}", profile, cells.drop(columns="performance"), "normal",
                  origin=f"the {profile.name} run's {signal.CLAIM_READING_LABELS[measures]} readings: each cell's "
                         "own standard error (the items' SD / √n), as normal noise around the sets' mean base reading")


def tiny_steps(profile: Profile) -> dict[str, float]:
    """The tiny ladder's step of each label (its rung's branch; `main` = the ladder's last step)."""
    last = float(profile.tiny_ladder.total_steps) if profile.tiny_ladder else math.nan
    return {c: (float(ckpt_step(profile.rungs[c])) if profile.rungs and profile.rungs.get(c, "main") != "main"
                else last) for c in plan.instruction_ckpts(profile)}


def tiny_source(frame: pd.DataFrame | None = None, profile: Profile | None = None,
                constant_share: dict | None = None, held_out: dict | None = None) -> Source:
    """The tiny profile as a noise model: the plan's cells, `eval_limit` items per set. With `frame` (the tiny run's
    records, Store.frame(items=True)) the levels are its mean base scores and the constant-predictor shares its
    measured ones; without, levels spread over 0.35–0.55 and `constant_share` as given (default none). `held_out`
    ({'sensitivity': frame, 'forgetting': frame}): the run's held-out-loss frames, whose noise S1 and S3 take."""
    profile = profile or get_profile("tiny")
    steps = tiny_steps(profile)
    keys = []
    for c in plan.instruction_ckpts(profile):
        if c in profile.ckpts:
            keys += [(s, "base", c, f) for s, f in plan.base_plan(profile)]
            for task in profile.tasks:
                keys += [(s, task.name, c, f) for s, f in plan.sft_plan(profile, task)]
        else:
            keys += [(s, "base", c, f) for s, f in plan.instruction_plan(profile)]
        keys += [(s, profile.instruction.name, c, f) for s, f in plan.instruction_plan(profile)]
    out = pd.DataFrame(list(dict.fromkeys(keys)), columns=["eval_set", "fine_tune", "ckpt", "format"])
    out["step"] = out["ckpt"].map(steps)
    from ..data import tasks as registry

    out["metric"] = [registry.get(e).metric for e in out["eval_set"]]
    origin = "levels 0.35–0.55 by set (no tiny run given)"
    share = dict(constant_share or {})
    if frame is not None and len(frame):
        rows = stats.select(frame, profile, profile.method)
        base = rows[rows["fine_tune"] == "base"].groupby(["eval_set", "format"])["performance"].mean()
        out["level"] = [base.get((e, f), math.nan) for e, f in zip(out["eval_set"], out["format"])]
        if constant_share is None:
            flags = rows["constant"].map(lambda v: v if isinstance(v, (bool, np.bool_)) else None)
            for side, mask in (("base", rows["fine_tune"] == "base"), ("fine_tuned", rows["fine_tune"] != "base")):
                known = flags[mask].dropna()
                share[side] = float(known.astype(bool).mean()) if len(known) else 0.0
        origin = (f"the tiny run's records: levels = mean base score per set and format; constant predictors "
                  f"{share.get('base', 0):.0%} of base, {share.get('fine_tuned', 0):.0%} of fine-tuned records")
    fallback = out["eval_set"].map(lambda e: 0.35 + 0.2 * (_stable(e) % 1000) / 1000)
    out["level"] = out["level"].fillna(fallback) if "level" in out else fallback
    blocks = _block_cells(profile, held_out)
    origin += "; held-out Δ loss: " + ", ".join(
        f"{w} {b.seeds} seed(s) × {b.n_blocks} blocks, block sd {b.block_sd:.3g}, noise sd {b.noise_sd:.3g}, seed sd "
        f"{b.seed_sd:.3g}" for w, b in blocks.items()) + (" (the run's frames)" if held_out else " (BLOCK_NOISE)")
    return Source("tiny", profile, out, "items", n_items=int(profile.eval_limit or 50), constant_share=share,
                  origin=origin + f"; {int(profile.eval_limit or 50)} items per set, paired, REFRESH = {REFRESH}",
                  blocks=blocks)


@dataclasses.dataclass(frozen=True)
class BlockNoise:
    """The held-out-loss cells of S1 ('sensitivity': scaling, magnitude) or S3 ('forgetting': fine-tuning task):
    rows per (cell, checkpoint) and seed, each a vector of per-block Δ losses."""

    cells: tuple  # (scaling, magnitude) or (fine_tune,) tuples
    seeds: int
    n_blocks: int
    block_sd: float
    noise_sd: float
    seed_sd: float


def block_noise(frame: pd.DataFrame | None, which: str, cells: tuple, seeds: int, n_blocks: int) -> BlockNoise:
    """The noise of a held-out-loss frame (the run's, else BLOCK_NOISE): the spread of the blocks' shared
    difficulty, of each row's per-block residual, and of the seeds' means within a cell."""
    if frame is None or not len(frame) or "block_deltas" not in frame:
        return BlockNoise(cells, seeds, n_blocks, **BLOCK_NOISE)
    keys = ["scaling", "magnitude"] if which == "sensitivity" else ["fine_tune"]
    deltas = [np.asarray(d, dtype=float) for d in frame["block_deltas"]]
    n = min(len(d) for d in deltas)
    rows = np.vstack([d[:n] - d[:n].mean() for d in deltas])
    shared = rows.mean(axis=0)
    means = pd.Series([d.mean() for d in deltas], index=frame.index)
    within = frame.assign(mean=means).groupby([*keys, "ckpt"])["mean"].std(ddof=1).dropna()
    seeds_in = int(frame.groupby([*keys, "ckpt"]).size().max())
    return BlockNoise(cells, max(seeds, seeds_in), n, float(shared.std(ddof=1)), float((rows - shared).std(ddof=1)),
                      float(within.mean()) if len(within) else 0.0)


def _block_cells(profile: Profile, frames: dict | None) -> dict:
    """The tiny profile's S1 and S3 cells with the noise of the run's frames (where given)."""
    settings = profile.sensitivity
    blocks = settings.tokens // settings.block
    heldout = profile.tiny_ladder.heldout_blocks if profile.tiny_ladder else blocks
    frames = frames or {}
    sensitivity = tuple((scaling, m) for scaling, mags in settings.readings().items() for m in mags
                        if scaling == settings.scaling)
    forgetting = tuple((t.name,) for t in profile.tasks)
    return {"sensitivity": block_noise(frames.get("sensitivity"), "sensitivity", sensitivity, settings.seeds, blocks),
            "forgetting": block_noise(frames.get("forgetting"), "forgetting", forgetting, 1, heldout)}


def draw_blocks(noise: BlockNoise, which: str, ckpts, steps: dict, delta_at: Callable,
                rng: np.random.Generator) -> pd.DataFrame:
    """One replication of a held-out-loss frame: per (cell, checkpoint, seed) the block Δ losses around
    delta_at(cell, ckpt), the blocks' shared difficulty pairing every row."""
    names = ("scaling", "magnitude") if which == "sensitivity" else ("fine_tune",)
    shared = noise.block_sd * rng.standard_normal(noise.n_blocks)
    rows = []
    for cell in noise.cells:
        for c in ckpts:
            for seed in range(noise.seeds):
                deltas = (delta_at(cell, c) + shared + noise.seed_sd * rng.standard_normal()
                          + noise.noise_sd * rng.standard_normal(noise.n_blocks))
                rows.append({**dict(zip(names, cell)), "ckpt": c, "step": steps[c], "seed": seed, "method": "full",
                             "base_loss": 6.0, "loss": 6.0 + deltas.mean(), "delta_loss": float(deltas.mean()),
                             "block_deltas": deltas})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------------
# truths: where each part's statistic (or each unit) is planted


def _positions(study: stats.Study, ckpts) -> dict[str, float]:
    """0 at the first of `ckpts` … 1 at the last, on the log-step axis the fitted change uses."""
    logs = {c: math.log10(study.steps[c]) for c in ckpts if np.isfinite(study.steps.get(c, math.nan))}
    if len(logs) < 2:
        return {c: 0.0 for c in logs}
    first, last = min(logs.values()), max(logs.values())
    return {c: (x - first) / (last - first) for c, x in logs.items()}


def offsets(units, spread: float = UNIT_SPREAD) -> dict:
    """Each unit's fixed deviation from the planted effect: evenly from −spread to +spread over the distinct units,
    centred so that it sums to 0 counted with each unit's multiplicity (the release lists SciQ twice)."""
    distinct = list(dict.fromkeys(units))
    if len(distinct) < 2:
        return {u: 0.0 for u in distinct}
    raw = {u: spread * (2 * i / (len(distinct) - 1) - 1) for i, u in enumerate(distinct)}
    centre = sum(raw[u] for u in units) / len(units)
    return {u: v - centre for u, v in raw.items()}


def random_offsets(rng: np.random.Generator) -> Callable:
    """offsets() for units drawn at random: each unit's deviation N(0, (spread / √3)²) — the fixed offsets'
    spread — not centred, so the units' mean strays from the planted value as a sample of units does."""
    def spread_of(units, spread: float = UNIT_SPREAD) -> dict:
        return {u: spread / math.sqrt(3) * rng.standard_normal() for u in dict.fromkeys(units)}
    return spread_of


def scenario(study: stats.Study, part_id: str, levels: dict, offsets=offsets) -> tuple[Callable, list]:
    """(effect(value_of, key, level) -> the planted change of a cell's true score, the part's units). `value_of(unit)`
    is the planted value of the part's statistic (one statistic: unit None) or of one unit of an every / some part;
    `levels[(eval_set, format)]` the source's true base levels, `level` the cell's own; `offsets` the units'
    deviations (fixed and zero-sum, or random_offsets)."""
    profile = study.profile
    groups = analysis.learned_groups(profile)
    pt_pairs, ft_pairs = groups[analysis.GROUP_PT], groups[analysis.GROUP_FT]
    pt_sets = list(dict.fromkeys(e for e, _ in pt_pairs))
    ft_sets = list(dict.fromkeys(e for e, _ in ft_pairs))
    ladder = study.ladder
    pos = _positions(study, ladder)
    tasks = {t.name: t for t in profile.tasks}
    it = profile.instruction.name

    def gains(pairs, value):  # fine-tuned = base + value(unit of the pair) + the pair's offset
        spread = offsets(pairs)

        def effect(value_of, key, level):
            e, f, c, fmt = key
            if (e, f) not in spread or fmt != "default":
                return 0.0
            return value(value_of, e, f, c) + spread[(e, f)]
        return effect

    def window(ckpts):
        return _positions(study, ckpts)

    if part_id == "A1a":
        spread = offsets(ft_pairs)
        return (lambda value_of, key, level: (value_of(None) + spread[key[:2]]) * pos.get(key[2], 0)
                if key[:2] in spread and key[3] == "default" else 0.0), []
    if part_id in ("A1b", "B1c"):
        return (lambda value_of, key, level: value_of(key[0]) * pos.get(key[2], 0)
                if key[1] == "base" and key[0] in ft_sets and key[3] == "default" else 0.0), ft_sets
    if part_id == "B1b":
        late = study.from_(claims.PLATEAU_FRACTION)
        wpos, at = window(late), pos.get(late[0], 0) if late else 0

        def b1b(value_of, key, level):
            e, f, c, fmt = key
            if f != "base" or e not in pt_sets or fmt != "default":
                return 0.0
            return 0.2 * min(pos.get(c, 0), at) + value_of(e) * wpos.get(c, 0)
        return b1b, pt_sets
    if part_id == "B1a":
        spread = offsets(pt_sets)
        return (lambda value_of, key, level: (value_of(None) + spread[key[0]]) * pos.get(key[2], 0)
                if key[1] == "base" and key[0] in spread and key[3] == "default" else 0.0), []
    if part_id == "A2":
        ft = gains(ft_pairs, lambda v, e, f, c: v(None))
        pt = gains(pt_pairs, lambda v, e, f, c: 0.0)
        return (lambda value_of, key, level: ft(value_of, key, level) + pt(value_of, key, level)), []
    if part_id == "A3":
        named = stats.forgetting_groups(profile)
        effects = {name: gains(pairs, lambda v, e, f, c, name=name: v(name)) for name, pairs in named.items()}
        return (lambda value_of, key, level: sum(fn(value_of, key, level) for fn in effects.values())), list(named)
    if part_id in ("B2", "B3"):
        pairs = pt_pairs if part_id == "B2" else ft_pairs
        return gains(pairs, lambda v, e, f, c: v(c)), list(ladder)
    if part_id in ("B7a", "B7b"):
        ood = analysis.ood_groups(profile)
        pairs = ood.get("NLI" if part_id == "B7a" else "Paraphrase Detection", [])
        return gains(pairs, lambda v, e, f, c: v(None)), []
    if part_id == "B8a":
        return gains([(s, it) for s in profile.instruction.llmbar], lambda v, e, f, c: v(None)), []
    if part_id == "B8b":
        return gains([(s, it) for s in pt_sets], lambda v, e, f, c: v(None)), []
    if part_id in ("B4a", "B4b", "B4c"):
        rising, after = study.until(claims.PEAK_FRACTION), study.from_(claims.PEAK_FRACTION)
        early = set(study.before(claims.PLATEAU_FRACTION))
        up, down = window(rising), window(after)
        shape = {"B4a": lambda v, c: 0.1 + v * (up[c] if c in up else 1.0),
                 "B4b": lambda v, c: 0.1 + v * down.get(c, 0.0),
                 "B4c": lambda v, c: 0.1 + (v if c in early else 0.0)}[part_id]
        return gains(ft_pairs, lambda v, e, f, c: shape(v(None), c)), []
    if part_id in ("A4a", "A4b", "B5a", "B5b"):
        early = set(study.before(claims.PLATEAU_FRACTION))
        spread = offsets(list(tasks))
        others = [f for f in profile.formats if f != "default"]

        def gap(value_of, key, level):
            e, f, c, fmt = key
            task = tasks.get(f)
            if task is None or e != task.primary or fmt != "default":
                return 0.0
            v, off = value_of(None), spread[f]
            if part_id == "A4a":  # fine-tuned gap − base gap: the base's own gap cancels
                return v + off
            if part_id == "B5a":  # the fine-tuned gap itself: planted over the other formats' levels
                return np.mean([levels.get((e, o), level) for o in others]) - level + v + off
            if part_id == "A4b":
                return 0.1 + (v + off) * pos.get(c, 0)
            return 0.1 + (v + off if c not in early else off)
        return gap, []
    if part_id in ("B6a", "B6b"):
        spread = offsets(stats.cross_task_groups(profile)["Class→Gen" if part_id == "B6a" else "Gen→Class"],
                         RELATIVE_SPREAD)

        def relative(value_of, key, level):
            e, f, c, fmt = key
            if (e, f) not in spread or fmt != "default":
                return 0.0
            return level * (value_of(None) + spread[(e, f)]) / 100
        return relative, []
    if part_id == "S2":
        early, late = profile.overtraining_pair or (None, None)
        spread = offsets(list(claims.SPRINGER_BENCHMARKS))
        return (lambda value_of, key, level: value_of(None) + spread[key[0]]
                if key[1] == it and key[2] == late and key[0] in spread else 0.0), []
    if part_id in HELD_OUT:  # Δ held-out loss rises by the planted value over the ladder (cells spread around it)
        which = "sensitivity" if part_id == "S1" else "forgetting"
        frame = study.sensitivity_frame if which == "sensitivity" else study.forgetting_frame
        cells = list(dict.fromkeys(zip(*(frame[c] for c in (("scaling", "magnitude") if which == "sensitivity"
                                                                 else ("fine_tune",))))))
        spread = offsets(cells, UNIT_SPREAD if which == "forgetting" else 0.0)

        def held_out(value_of, cell, ckpt):
            return 0.1 + (value_of(None) + spread[cell]) * pos.get(ckpt, 0)
        held_out.which = which
        return held_out, []
    raise ValueError(f"no calibration scenario for part {part_id!r}; simulated: "
                     f"{', '.join(SIMULATED + HELD_OUT)}")


def planted(rule: claims.Rule, truth: str, units: list, mde: float, cap: float = CLEAR_CAP[""]):
    """value_of(unit) for a truth: where the statistic (or each unit) is planted relative to the rule's boundary
    (clearly = HOLDS_FACTOR × mde from it, at most `cap`)."""
    if rule.direction == "≈":
        boundary, inward, outward = rule.margin, -1.0, 1.0
    else:
        boundary = rule.threshold
        inward = 1.0 if rule.direction == ">" else -1.0
        outward = -inward
    clear = min(HOLDS_FACTOR * mde, cap)
    on = (0.0 if rule.direction == "≈" else boundary + inward * clear)  # clearly on the claim's side
    off = boundary + outward * clear  # clearly off it
    at_mde = max(boundary + inward * mde, 0.0) if rule.direction == "≈" else boundary + inward * mde
    first = units[0] if units else None
    if rule.quantifier == claims.SOME:  # the others clearly off the claim's side: one unit decides
        table = {"boundary": lambda u: boundary, "boundary_one": lambda u: boundary if u == first else off,
                 "holds": lambda u: on if u == first else off, "fails": lambda u: off,
                 "mde": lambda u: at_mde if u == first else off}
    else:  # one statistic, or every unit (the others clearly on the claim's side)
        table = {"boundary": lambda u: boundary, "boundary_one": lambda u: boundary if u == first else on,
                 "holds": lambda u: on, "fails": lambda u: off if (u == first or u is None) else on,
                 "mde": lambda u: at_mde}
    return table[truth]


WRONG = {"boundary": ("false_support", "false_contradiction"), "boundary_one": ("false_support", "false_contradiction"),
         "holds": ("false_contradiction",), "fails": ("false_support",), "mde": ("false_contradiction",)}


# ---------------------------------------------------------------------------------------------------------------
# drawing frames


def draw(source: Source, cells: pd.DataFrame, effect: Callable, value_of: Callable, rng: np.random.Generator,
         n_boot: int, degenerate: Callable = lambda key: True) -> stats.Cells:
    """One replication: the cells' observed scores under the truth, as the stats.Cells the scorecard reads. Constant
    predictors are drawn (at the source's shares) only on cells where `degenerate(key)`: elsewhere a model that
    answers every item alike is the claim's effect itself (Part.degenerate), which the truth already plants."""
    truths = np.array([level + effect(value_of, key, level) for key, level in
                       zip(zip(cells["eval_set"], cells["fine_tune"], cells["ckpt"], cells["format"]), cells["level"])],
                      dtype=float)
    frame = cells[["eval_set", "fine_tune", "ckpt", "format", "metric", "step"]].copy()
    frame["shots"] = source.profile.shots
    frame["source"] = "calibration"
    frame["method"] = np.where(frame["fine_tune"] == "base", "none", source.profile.method)
    frame["seed"] = None
    if source.kind == "normal":
        frame["performance"] = truths + cells["std"].to_numpy() * rng.standard_normal(len(truths))
        frame["std"] = cells["std"].to_numpy()
        return stats.Cells(frame, ("eval_set", "fine_tune", "ckpt", "format"), value_col="performance",
                           items_col=None, pair_col="eval_set", std_col="std", n_boot=n_boot,
                           seed=int(rng.integers(2**31)))
    n = source.n_items
    truths = np.clip(truths, 0.0, 1.0)
    latent, label, scores, constant = {}, {}, [], []
    keys = zip(frame["eval_set"], frame["fine_tune"], frame["ckpt"], frame["format"])
    for key, metric, p in zip(keys, frame["metric"], truths):
        e, f = key[:2]
        if e not in latent:
            latent[e], label[e] = rng.random(n), (rng.random(n) < LABEL_SHARE).astype(float)
        side = "base" if f == "base" else "fine_tuned"
        if degenerate(key) and rng.random() < source.constant_share.get(side, 0.0):
            scores.append(np.zeros(n) if analysis.metric_kind(metric) == "generation" else label[e])
            constant.append(True)
            continue
        u = np.where(rng.random(n) < REFRESH, rng.random(n), latent[e])
        scores.append((u < p).astype(float))
        constant.append(False)
    frame["scores"] = scores
    frame["performance"] = [s.mean() for s in scores]
    frame["constant"] = constant
    frame["n"] = n
    return stats.Cells(frame, ("eval_set", "fine_tune", "ckpt", "format"), value_col="performance",
                       items_col="scores", pair_col="eval_set", n_boot=n_boot, seed=int(rng.integers(2**31)))


# ---------------------------------------------------------------------------------------------------------------
# the calibration


def _template(source: Source) -> stats.Study:
    """A study with the source's structure (its cells at their levels; held-out-loss frames where it has them): the
    parts are built on it once."""
    frame = source.cells.assign(performance=source.cells["level"], shots=source.profile.shots, source="calibration",
                                method=np.where(source.cells["fine_tune"] == "base", "none", source.profile.method),
                                seed=None)
    steps = dict(zip(source.cells["ckpt"], source.cells["step"]))
    held = {which: draw_blocks(noise, which, source.profile.ckpts, steps, lambda cell, c: 0.1,
                               np.random.default_rng(0)) for which, noise in source.blocks.items()}
    return stats.Study(frame, source.profile, n_boot=20, method=source.profile.method,
                       sensitivity=held.get("sensitivity"), forgetting=held.get("forgetting"))


def _part(study: stats.Study, part_id: str) -> claims.Part:
    for cid, fn in claims.CLAIMS.items():
        if part_id.startswith(cid):
            for part in fn(study):
                if part.id == part_id:
                    return part
    raise ValueError(f"unknown part {part_id!r}")


class Simulation:
    """One part on one source, ready to replicate: the part built once on the source's structure, the cells it reads,
    and the effect that plants a truth."""

    def __init__(self, source: Source, part_id: str, n_boot: int = stats.N_BOOT, random_units: bool = False):
        self.source, self.n_boot, self.random_units = source, n_boot, random_units
        self.study = _template(source)
        self.part = _part(self.study, part_id)
        self.rule = self.part.rule()
        if self.part.unmeasurable:
            raise stats.Unmeasurable(self.part.unmeasurable)
        estimate = stats.estimate_units if self.part.quantifier else stats.estimate
        used = estimate(self.study.cells_for(self.part.cells), self.part.compute,
                        self.part.resample)  # raises Unmeasurable
        wanted = set(used.used)
        keys = zip(source.cells["eval_set"], source.cells["fine_tune"], source.cells["ckpt"], source.cells["format"])
        self.cells = source.cells[[k in wanted for k in keys]].reset_index(drop=True)
        self.levels = dict(zip(zip(source.cells["eval_set"], source.cells["format"]), source.cells["level"]))
        self.effect, self.units = scenario(self.study, part_id, self.levels)
        self.cap = CLEAR_CAP.get(self.part.unit, CLEAR_CAP[""])

    def truth(self, truth: str, mde: float):
        """value_of(unit) of a named truth (planted)."""
        return planted(self.rule, truth, self.units, mde, self.cap)

    def run(self, value_of, rng: np.random.Generator) -> tuple[str, claims.Judgement | None]:
        """One replication: draw the cells under the truth and give the scorecard's verdict (claims.decide). With
        `random_units`, the units' own deviations are drawn anew for each replication (a sample of such units)."""
        if self.random_units:
            self.effect, _ = scenario(self.study, self.part.id, self.levels, random_offsets(rng))
        which = getattr(self.effect, "which", None)
        if which is not None:  # a held-out-loss part: a new frame of blocks, as the study's cells of that bank
            frame = draw_blocks(self.source.blocks[which], which, self.study.ladder, self.study.steps,
                                lambda cell, c: self.effect(value_of, cell, c), rng)
            keys = ("scaling", "magnitude", "ckpt") if which == "sensitivity" else ("fine_tune", "ckpt")
            template = self.study._blocks[which]
            self.study._blocks[which] = stats.Cells(frame, keys, value_col="delta_loss", items_col="block_deltas",
                                                    pair_col=None, n_boot=self.n_boot,
                                                    seed=int(rng.integers(2**31)), item_mode="blocks")
            try:
                return claims.decide(self.study, self.part)
            finally:
                self.study._blocks[which] = template
        template = self.study.cells
        self.study.cells = draw(self.source, self.cells, self.effect, value_of, rng, self.n_boot,
                                self.part.degenerate.counts)
        try:
            return claims.decide(self.study, self.part)
        finally:
            self.study.cells = template

    def mde(self, rng: np.random.Generator, reps: int) -> float:
        """The power column's mde under this noise: the median over `reps` replications at the boundary."""
        found = [claims.detectable(j, self.rule) for _, j in (self.run(self.truth("boundary", 0.0), rng)
                                                              for _ in range(reps)) if j is not None]
        return float(np.nanmedian(found)) if found and np.isfinite(found).any() else math.nan


def calibrate_part(source: Source, part_id: str, *, reps: int = 500, truths=TRUTHS, n_boot: int = stats.N_BOOT,
                   seed: int = 0) -> list[dict]:
    """Rates of each verdict for one part under each truth (one row per truth), over `reps` replications; the
    boundary runs first and measures the mde the other truths are placed by."""
    try:
        sim = Simulation(source, part_id, n_boot)
    except stats.Unmeasurable as err:
        return [{"id": part_id, "source": source.name, "truth": t, "n": 0, "note": f"not measurable: {err}"}
                for t in truths]
    rng = np.random.default_rng([seed, _stable(source.name, part_id)])
    rows, mde = [], math.nan
    for truth in ["boundary", *[t for t in truths if t != "boundary"]]:
        if (truth == "boundary_one" and not sim.part.quantifier) or (truth != "boundary" and not np.isfinite(mde)):
            continue
        value_of = sim.truth(truth, mde)
        counts, mdes, start = dict.fromkeys(claims.VERDICTS, 0), [], time.perf_counter()
        for _ in range(reps):
            verdict, judgement = sim.run(value_of, rng)
            counts[verdict] += 1
            if truth == "boundary" and judgement is not None:
                mdes.append(claims.detectable(judgement, sim.rule))
        if truth == "boundary":
            mde = float(np.nanmedian(mdes)) if mdes and np.isfinite(mdes).any() else math.nan
        if truth in truths:
            rows.append(_rate_row(sim.part, source, truth, value_of, sim.units, counts, reps, mde,
                                  time.perf_counter() - start))
    return rows


def _rate_row(part, source, truth, value_of, units, counts, reps, mde, seconds) -> dict:
    rates = {v: counts[v] / reps for v in claims.VERDICTS}
    planted_at = (f"{value_of(None):+.4g}" if not part.quantifier else
                  ", ".join(f"{u} {value_of(u):+.4g}" for u in units[:3]) + (" …" if len(units) > 3 else ""))
    row = {"id": part.id, "source": source.name, "truth": truth, "planted": planted_at, "n": reps,
           "supported": rates[claims.SUPPORTED], "contradicted": rates[claims.CONTRADICTED],
           "inconclusive": rates[claims.INCONCLUSIVE], "uninformative": rates[claims.UNINFORMATIVE],
           "not_measurable": rates[claims.NOT_MEASURABLE], "false_support": math.nan,
           "false_contradiction": math.nan, "mde": mde, "seconds": round(seconds, 2), "note": ""}
    for column in WRONG[truth]:
        row[column] = rates[claims.SUPPORTED] if column == "false_support" else rates[claims.CONTRADICTED]
    wrong = max(v for v in (row["false_support"], row["false_contradiction"]) if np.isfinite(v))
    row["upper95_wrong"] = wilson_upper(wrong, reps)
    if truth == "mde":
        rule = part.rule()
        constant = max(source.constant_share.values(), default=0.0)
        row["note"] = (f"the design cannot confirm ±{rule.margin:g} (mde {mde:.3g} ≥ the margin): planted at 0, "
                       f"supported {rates[claims.SUPPORTED]:.0%}" if rule.direction == "≈" and mde >= rule.margin else
                       f"power check: supported {rates[claims.SUPPORTED]:.0%} (the mde column promises at least "
                       f"{claims.POWER:.0%} where every cell carries the effect; more where the interval also covers "
                       "the units' spread" + (f"; less here, where up to {constant:.0%} of the cells are constant "
                                              "predictors that carry none, and scores near 0 cannot fall further"
                                              if constant else "") + ")")
    return row


def calibrate_random_units(source: Source, part_id: str, *, reps: int = 500, n_boot: int = stats.N_BOOT,
                           seed: int = 0) -> dict | None:
    """The boundary truth with the units drawn at random (random_offsets): how the default interval fares when a
    claim's sets, pairs or tasks are read as a sample of such units. None for a part whose units are not resampled."""
    try:
        sim = Simulation(source, part_id, n_boot, random_units=True)
    except stats.Unmeasurable:
        return None
    if not sim.part.resample or sim.part.quantifier:
        return None
    rng = np.random.default_rng([seed, _stable(source.name, part_id, "random units")])
    truth = sim.truth("boundary", 0.0)
    counts = dict.fromkeys(claims.VERDICTS, 0)
    for _ in range(reps):
        counts[sim.run(truth, rng)[0]] += 1
    study = sim.study
    sizes = {dim: len(labels) for dim, labels in
             stats.estimate(study.cells_for(sim.part.cells), sim.part.compute, sim.part.resample).units.items()
             if dim in sim.part.resample}
    return {"id": part_id, "source": source.name, "n": reps, "units": ", ".join(f"{k} {d}" for d, k in sizes.items()),
            "supported": counts[claims.SUPPORTED] / reps, "contradicted": counts[claims.CONTRADICTED] / reps,
            "inconclusive": counts[claims.INCONCLUSIVE] / reps}


def wilson_upper(rate: float, n: int, confidence: float = 0.95) -> float:
    """The upper end of the Wilson score interval of a rate observed over n replications."""
    if n <= 0:
        return math.nan
    z = stats.normal_z(confidence)
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre + half


def calibrate(source: Source, parts=SIMULATED, **kwargs) -> pd.DataFrame:
    """The calibration table of a source: every part × truth (calibrate_part)."""
    rows = [row for pid in parts for row in calibrate_part(source, pid, **kwargs)]
    table = pd.DataFrame(rows)
    table.attrs.update(source=source.name, profile=source.profile.name, origin=source.origin)
    return table


def boundary_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per part the source can measure: the worst false-support and false-contradiction rates at the boundary
    truths, and whether both are within MAX_WRONG."""
    at = table[table["truth"].isin(["boundary", "boundary_one"]) & (table["n"] > 0)]
    out = at.groupby("id", sort=False).agg(false_support=("false_support", "max"),
                                           false_contradiction=("false_contradiction", "max"), n=("n", "min"))
    out["calibrated"] = (out[["false_support", "false_contradiction"]].max(axis=1) <= MAX_WRONG)
    return out.reset_index()


def write_calibration(table: pd.DataFrame, profile: Profile, command: str = "",
                      random_units: pd.DataFrame | None = None, stem: str = "calibration") -> list:
    """figures/<profile>/<stem>.csv (every row) and <stem>.md (summary per part, then every truth, then the
    boundary with units drawn at random where it was measured); `stem` calibration_readings for a reading."""
    from ..figures import plots

    paths = plots.write_table(table, profile, stem)
    summary = boundary_summary(table)
    bad = summary[~summary["calibrated"]]
    absent = list(dict.fromkeys(table.loc[table["n"] == 0, "id"]))
    lines = [f"# Calibration of the verdict rules — profile `{profile.name}`"
             + (f", on the {table.attrs['reading']} reading" if table.attrs.get("reading") else ""), "",
             f"Source of the noise: {table.attrs.get('origin', '')}. {int(table['n'].max())} replications per "
             f"part and truth; the scorecard's rules and resamples (amuro_utils/verdicts/calibration.py)."
             + (f" Made by `{command}`." if command else ""), "",
             f"A rule is calibrated when its wrong decisive verdicts at the boundary are at most {MAX_WRONG:.0%}: "
             f"{len(summary) - len(bad)} of {len(summary)} parts are"
             + (f"; not: {', '.join(bad['id'])}." if len(bad) else ".")
             + (f" Not measurable from this source (no cells to simulate): {', '.join(absent)}." if absent else ""),
             "",
             "| part | false support at the boundary | false contradiction at the boundary | calibrated |",
             "|---|---|---|---|"]
    for r in summary.itertuples(index=False):
        lines.append(f"| {r.id} | {_pct(r.false_support)} | {_pct(r.false_contradiction)} | "
                     f"{'yes' if r.calibrated else '**no**'} |")
    lines += ["", "Every truth (`planted`: the statistic's true value, or the first units' for an every / some "
                  "claim; `mde`: the power column's value under this noise, measured at the boundary):", "",
              "| part | truth | planted | supported | contradicted | inconclusive | uninformative | false support | "
              "false contradiction | upper 95 % of the wrong rate | mde | note |", "|" + "---|" * 12]
    for r in table[table["n"] > 0].itertuples(index=False):
        lines.append(f"| {r.id} | {r.truth} | {getattr(r, 'planted', '')} | {_pct(r.supported)} | "
                     f"{_pct(r.contradicted)} | {_pct(r.inconclusive)} | {_pct(r.uninformative)} | "
                     f"{_pct(r.false_support)} | {_pct(r.false_contradiction)} | {_pct(r.upper95_wrong)} | "
                     f"{'' if not np.isfinite(r.mde) else f'{r.mde:.4g}'} | {r.note} |")
    lines += ["", "Truths: " + __doc__.split("A *truth*", 1)[1].split("\n\n")[0].replace("\n", " ")]
    if random_units is not None and len(random_units):
        lines += ["", "## When the units are a sample", "",
                  "The truths above keep the source's own units (its sets, pairs, tasks, checkpoints) and spread their "
                  "effects around the planted value. A part whose default interval resamples units reads them as a "
                  "sample of such units; here each replication draws the units' effects at random (sd "
                  f"{UNIT_SPREAD / math.sqrt(3):.3g}, the spread above) around a population mean exactly at the "
                  "boundary. A percentile bootstrap over a handful of units is too narrow for that reading: where "
                  "the rates below pass 5 %, the verdict holds for these units, not for the kind (read the "
                  "measurement-only verdict for these units alone).", "",
                  "| part | units resampled | supported | contradicted | inconclusive |", "|---|---|---|---|---|"]
        lines += [f"| {r.id} | {r.units} | {_pct(r.supported)} | {_pct(r.contradicted)} | {_pct(r.inconclusive)} |"
                  for r in random_units.itertuples(index=False)]
    artifacts.atomic_write(paths[1], "\n".join(lines) + "\n")
    return paths


def _pct(v) -> str:
    return "" if v is None or not np.isfinite(v) else f"{100 * v:.1f} %"
