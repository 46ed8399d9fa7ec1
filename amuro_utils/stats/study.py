"""The study of one source: its cells (of one fine-tuning method and schedule), the step of each checkpoint, the
held-out-loss banks (sensitivity, forgetting), the records along fine-tuning and the probe rows (`Study`)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..config.profiles import Profile, ckpt_step
from ..store.results import STANDARD
from .cells import Cells, CellsUnion, estimate
from .resampling import FORGETTING_COLUMNS, N_BOOT, RELEASE_N, SENSITIVITY_COLUMNS, Estimate


class Study:
    """What every statistic reads: a profile's standard cells (of one fine-tuning method), the step of each
    checkpoint, and the Springer frames (sensitivity, forgetting) as cells of held-out blocks.

    df: Store.frame(items=True) (paired item resampling) or results.load_paper_results(). `main` takes the step
    recorded in the frame, else `profile.main_step`: one mapping of `main` for every statistic.
    """

    def __init__(self, df: pd.DataFrame | None, profile: Profile, *, sensitivity: pd.DataFrame | None = None,
                 forgetting: pd.DataFrame | None = None, method: str = "full", n_boot: int = N_BOOT, seed: int = 0,
                 dynamics: pd.DataFrame | None = None, probes: pd.DataFrame | None = None,
                 schedule: str = "fixed"):
        self.profile, self.method, self.n_boot, self.seed, self.schedule = profile, method, n_boot, seed, schedule
        if df is None:  # a study of the Springer frames only
            df = pd.DataFrame(columns=["ckpt", "step", "fine_tune", "eval_set", "format", "shots", "performance"])
        self.df = df
        rows = select(df, profile, method, schedule)
        std_col = "std" if "std" in rows else None

        def release_n(row) -> float:
            n = row.get("n", math.nan)
            if pd.notna(n):
                return float(n)
            return float(RELEASE_N.get(row["eval_set"], math.nan)) if row.get("source") == "paper" else math.nan

        self.cells = Cells(rows, ("eval_set", "fine_tune", "ckpt", "format"), value_col="performance",
                           items_col="scores", pair_col="eval_set", std_col=std_col, n_boot=n_boot, seed=seed,
                           binomial_n=release_n)
        self.steps = ladder_steps(rows, profile)
        self.sensitivity_frame = None if sensitivity is None or not len(sensitivity) else \
            sensitivity_frame(sensitivity)
        self.forgetting_frame = None if forgetting is None or not len(forgetting) else \
            _forgetting_frame(forgetting, method, schedule)
        self.dynamics_frame = None if dynamics is None or not len(dynamics) else \
            select(dynamics, profile, method, schedule)
        self.probe_frame = None if probes is None or not len(probes) else probes
        self._blocks: dict[str, Cells] = {}
        self._union: CellsUnion | None = None
        self._fixed: dict[tuple, float | None] = {}

    def fixed_measure(self, kind: str, *key) -> np.ndarray | None:
        """A scalar measure read from the forgetting rows, without resamples, as a vector of n_boot + 1 equal values:
        'heldout' (key: ckpt) the base checkpoint's held-out pre-training loss, 'zero_step' (key: fine_tune, ckpt) a
        fine-tuning's loss before its first update; None where the rows lack it. Read once per key: every resample
        of every leave-one-out asks again."""
        if (kind, *key) not in self._fixed:
            frame, value = self.forgetting_frame, None
            if frame is not None and (kind == "heldout" or "zero_step_loss" in frame):
                if kind == "heldout":
                    rows = frame.loc[frame["ckpt"] == key[0], "base_loss"]
                else:
                    rows = frame.loc[(frame["fine_tune"] == key[0]) & (frame["ckpt"] == key[1]), "zero_step_loss"]
                rows = rows.dropna()
                value = None if rows.empty else float(rows.mean())
            self._fixed[(kind, *key)] = value
        value = self._fixed[(kind, *key)]
        return None if value is None else np.full(self.n_boot + 1, value)

    @property
    def ladder(self) -> list[str]:
        return list(self.profile.ckpts)

    def final_step(self) -> float:
        known = [self.steps[c] for c in self.ladder if np.isfinite(self.steps.get(c, math.nan))]
        return max(known) if known else math.nan

    def _where(self, keep) -> list[str]:
        final = self.final_step()
        eps = 1e-9 * final  # 424000/738020 × 738020 must still count as step 424000
        return [c for c in self.ladder if np.isfinite(self.steps.get(c, math.nan)) and keep(self.steps[c], final, eps)]

    def before(self, fraction: float) -> list[str]:
        """Ladder checkpoints earlier than `fraction` of the final step."""
        return self._where(lambda s, final, eps: s < fraction * final - eps)

    def from_(self, fraction: float) -> list[str]:
        """Ladder checkpoints at or after `fraction` of the final step."""
        return self._where(lambda s, final, eps: s >= fraction * final - eps)

    def until(self, fraction: float) -> list[str]:
        """Ladder checkpoints up to and including `fraction` of the final step."""
        return self._where(lambda s, final, eps: s <= fraction * final + eps)

    def blocks(self, which: str) -> Cells | None:
        """Cells of held-out-loss deltas: 'sensitivity' keyed (scaling, magnitude, ckpt), 'forgetting' keyed
        (fine_tune, ckpt); None without a frame."""
        frame = {"sensitivity": self.sensitivity_frame, "forgetting": self.forgetting_frame}[which]
        if frame is None:
            return None
        if which not in self._blocks:
            keys = ("scaling", "magnitude", "ckpt") if which == "sensitivity" else ("fine_tune", "ckpt")
            self._blocks[which] = Cells(frame, keys, value_col="delta_loss", items_col="block_deltas", pair_col=None,
                                        n_boot=self.n_boot, seed=self.seed, item_mode="blocks")
            for c, s in zip(frame["ckpt"], frame["step"] if "step" in frame else [math.nan] * len(frame)):
                if pd.notna(s) and not np.isfinite(self.steps.get(c, math.nan)):
                    self.steps[c] = float(s)
        return self._blocks[which]

    def fractions(self) -> list[float]:
        """The points along fine-tuning the study has records of: 0 (the base model), those of the dynamics rows,
        and 1 (the fine-tuned model)."""
        cached = self.__dict__.get("_fractions")
        if cached is None:  # asked once per curve and resample: the dynamics rows do not change within a study
            frame = self.dynamics_frame
            inner = sorted(set(frame["ft_fraction"].astype(float))) if frame is not None else []
            cached = self.__dict__["_fractions"] = sorted({0.0, 1.0, *inner})
        return list(cached)

    def cells_for(self, name: str):
        """The cells a statistic reads: 'performance' (records), 'sensitivity' / 'forgetting' (held-out blocks) or
        'union' (all of them and the dynamics and probe rows, keys prefixed: `union`)."""
        if name == "performance":
            return self.cells
        return self.union() if name == "union" else self.blocks(name)

    def union(self) -> CellsUnion:
        """Every bank of the study in one (stats.CellsUnion): 'perf' (records), 'dyn' (records along fine-tuning,
        keyed eval_set, fine_tune, ckpt, format, ft_fraction), 'probe' (task, layer, ckpt), 'sens', 'forget'."""
        if self._union is None:
            banks = {"perf": self.cells, "sens": self.blocks("sensitivity"), "forget": self.blocks("forgetting")}
            if self.dynamics_frame is not None:
                banks["dyn"] = Cells(self.dynamics_frame, ("eval_set", "fine_tune", "ckpt", "format", "ft_fraction"),
                                     value_col="performance", items_col="scores", pair_col="eval_set",
                                     n_boot=self.n_boot, seed=self.seed)
            if self.probe_frame is not None:
                banks["probe"] = Cells(self.probe_frame, ("task", "layer", "ckpt"), value_col="accuracy",
                                       items_col="scores", pair_col="task", n_boot=self.n_boot, seed=self.seed)
            self._union = CellsUnion(banks)
        return self._union

    def estimate(self, compute, resample=(), *, cells: Cells | None = None, **kwargs) -> Estimate:
        """`estimate` on this study's performance cells (or on `cells`)."""
        return estimate(self.cells if cells is None else cells, compute, resample, **kwargs)


def select(df: pd.DataFrame, profile: Profile, method: str, schedule: str = "fixed") -> pd.DataFrame:
    """Standard rows at the profile's shots; with a `method` column, base rows and fine-tuned rows of `method`;
    with a `schedule` column, fine-tuned rows of that fine-tuning schedule ('fixed' epochs or 'converge')."""
    lacking = [c for c in ("ckpt", "fine_tune", "eval_set", "format", "shots", "performance") if c not in df]
    if lacking:
        raise ValueError(f"results frame lacks columns {lacking}; pass results.Store(...).frame(items=True) or "
                         "results.load_paper_results()")
    rows = df[df["shots"] == profile.shots]
    if "variant" in rows:
        rows = rows[rows["variant"] == STANDARD]
    if "method" in rows:
        rows = rows[(rows["fine_tune"] == "base") | (rows["method"] == method)]
    if "schedule" in rows:
        rows = rows[(rows["fine_tune"] == "base") | (rows["schedule"].fillna("fixed") == schedule)]
    return rows


def ladder_steps(rows: pd.DataFrame, profile: Profile) -> dict:
    """Step of each ladder checkpoint: recorded in the frame, else named by its label, else `profile.main_step`
    for `main` (NaN if none)."""
    steps = {}
    for c in profile.ckpts:
        recorded = rows.loc[rows["ckpt"] == c, "step"].dropna() if "step" in rows else pd.Series(dtype=float)
        label_step = ckpt_step(c)
        if len(recorded):
            steps[c] = float(recorded.iloc[0])
        elif label_step is not None:
            steps[c] = float(label_step)
        elif c == "main" and profile.main_step is not None:
            steps[c] = float(profile.main_step)
        else:
            steps[c] = math.nan
    return steps


def sensitivity_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The sensitivity frame in its schema (perturbed rows only); the older pipeline.sensitivity() frame (ckpt,
    sigma, loss, delta_loss: isotropic noise, one seed, no per-block losses) is read as scaling 'isotropic'."""
    if "magnitude" not in frame and "sigma" in frame:
        frame = frame.rename(columns={"sigma": "magnitude"}).assign(scaling="isotropic", seed=0)
    if "delta_loss" not in frame and "block_deltas" in frame:
        frame = frame.assign(delta_loss=[float(np.mean(d)) for d in frame["block_deltas"]])
    lacking = [c for c in SENSITIVITY_COLUMNS if c not in frame]
    if lacking:
        raise ValueError(f"sensitivity frame lacks columns {lacking}; expected one row per (ckpt, scaling, magnitude, "
                         "seed) with ckpt, step, scaling, magnitude, seed, base_loss, loss, delta_loss, block_deltas")
    return frame[frame["magnitude"] > 0]


def _forgetting_frame(frame: pd.DataFrame, method: str, schedule: str = "fixed") -> pd.DataFrame:
    lacking = [c for c in FORGETTING_COLUMNS if c not in frame]
    if lacking:
        raise ValueError(f"forgetting frame lacks columns {lacking}; expected one row per fine-tuned model with ckpt, "
                         "step, fine_tune, method, seed, base_loss, loss, delta_loss, block_deltas")
    if "method" in frame:
        frame = frame[frame["method"] == method]
    if "schedule" in frame:
        frame = frame[frame["schedule"].fillna("fixed") == schedule]
    return frame
