"""The stages of the study as data: one entry per notebook says what it runs, writes, reads, draws, judges and costs.

The runner (run order, job identities), SLURM (arrays and their dependencies), the cost plan (what a job's overhead
scales with), the figures (what each notebook draws) and the claims (what each notebook judges) all read this
registry. Adding a notebook is one entry here plus the notebook file.

Kinds of results a stage writes or reads:
- records (amuro_utils.store.results): "base" (base checkpoints evaluated), "instruction" (instruction-tuned models),
  "sft" (models fine-tuned on a supervised task), "converge" (models fine-tuned to convergence, beyond the paper:
  a store of their own);
- other artifacts (amuro_utils.store.artifacts): "training" (a fine-tuning's loss curve and zero-step loss),
  "forgetting" (a fine-tuned model's held-out pre-training-text loss against its base's), "sensitivity" (a
  checkpoint's weight-noise probe), "dynamics" (a fine-tuned model's records along its fine-tuning), "probes" (a
  checkpoint's linear probes), "ladder" (a ladder pre-trained here), "scorecard" (every claim judged, and the
  questions beyond the paper).
A stage reads what its figures, tables and verdicts read; its job goes stale when any of those changes.

Figures and tables are named "module:function" and resolved only when drawn (`resolve`), so this module imports
nothing of the package and a maker can move to another module by changing its name here.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field

FIXED_KINDS = ("base", "instruction", "sft")  # the paper's records (the fixed fine-tuning schedule)
RECORD_KINDS = (*FIXED_KINDS, "converge")
ARTIFACT_KINDS = ("training", "forgetting", "sensitivity", "dynamics", "probes", "ladder", "scorecard")


@dataclass(frozen=True)
class Stage:
    """One notebook of the study."""

    notebook: str
    runs: str | None  # the model jobs it runs: "base" | "instruction" | "sft" (a record kind), or None
    writes: tuple[str, ...]  # kinds of results it writes (RECORD_KINDS, ARTIFACT_KINDS)
    reads: tuple[str, ...]  # kinds its figures, tables and verdicts read
    # figures drawn from the records it reads: file stem -> "module:function" called (stats.Study, profile, overlay=);
    # a function that returns None has nothing to draw for these records (continuous readings of the release)
    figures: Mapping[str, str] = field(default_factory=dict)
    # figures drawn from another artifact kind it reads: file stem -> (kind, "module:function")
    artifact_figures: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    tables: Mapping[str, str] = field(default_factory=dict)  # file stem -> "module:function" called (stats.Study)
    # beyond the paper (amuro_utils.verdicts.beyond): file stem -> (what it is drawn from, "module:function" called (it,
    # profile)): "study" = the study with every bank (records, dynamics, probes, held-out losses), "table" = the
    # questions' verdict table (beyond.evaluate)
    beyond_figures: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    claims: tuple[str, ...] = ()  # the claims whose verdicts end the notebook (amuro_utils.verdicts.claims ids)
    title: str = ""  # its section of the report (amuro_utils.figures.report)
    other_files: tuple[str, ...] = ()  # file stems it writes besides its figures and tables (the report places them)
    # the cost model: what a job's measured overhead (loading, saving, probing) scales with
    cost_unit: str | None = None  # "checkpoint" | "fine_tune" | None (a fixed overhead)

    @property
    def stems(self) -> tuple[str, ...]:
        """Every figure and table file stem it writes (a method's variant adds `_<method>`)."""
        return (*self.figures, *self.artifact_figures, *self.tables, *self.beyond_figures, *self.other_files)

    @property
    def record_reads(self) -> tuple[str, ...]:
        """The kinds of records it reads."""
        return tuple(k for k in self.reads if k in RECORD_KINDS)


# In run order. instruction_tuning runs before sft: Table 5 and Fig. 3b (in sft) compare the "learned in
# pre-training" group, scored on instruction-tuned models, with the "learned in fine-tuning" group.
STAGES = (
    Stage("pretrain_probe", runs="base", writes=("base", "sensitivity", "probes", "ladder"),
          reads=("base", "sensitivity", "probes", "ladder"),
          figures={"fig2_pretrain_probe": "figures.plots:fig2_pretrain_probe",
                   "fig2_pretrain_probe_answer_text": "figures.plots:fig2_answer_text",
                   "fig2_pretrain_probe_discrimination": "figures.plots:fig2_discrimination"},
          artifact_figures={"figS_sensitivity": ("sensitivity", "figures.plots:fig_sensitivity")},
          tables={"snr_base": "stats.signal:snr_base"},
          claims=("B1", "S1"), cost_unit="checkpoint", other_files=("tiny_ladder_loss",),
          title="Pre-training probe (Fig. 2, Springer sensitivity, signal-to-noise)"),
    Stage("instruction_tuning", runs="instruction", writes=("instruction", "training", "forgetting"),
          reads=("base", "instruction", "training"),
          figures={"fig4_instruction_tuning": "figures.plots:fig4_instruction_tuning"},
          artifact_figures={"figT_instruction_training_loss": ("training", "figures.plots:fig_training_loss")},
          claims=("B8", "S2"), cost_unit="fine_tune", title="Instruction tuning (Fig. 4)"),
    Stage("sft", runs="sft", writes=("sft", "training", "forgetting", "dynamics"),
          reads=("base", "instruction", "sft", "training", "forgetting"),
          figures={"fig3_sft": "figures.plots:fig3_sft", "fig3_sft_answer_text": "figures.plots:fig3_answer_text",
                   "fig3_sft_discrimination": "figures.plots:fig3_discrimination", "fig3b_gain_bars": "figures.plots:fig3b_gain_bars"},
          artifact_figures={"figT_sft_training_loss": ("training", "figures.plots:fig_training_loss"),
                            "figS3_forgetting": ("forgetting", "figures.plots:fig_forgetting")},
          tables={"table5_learned_groups": "stats:table5", "snr_fine_tuned": "stats.signal:snr_fine_tuned"},
          claims=("A1", "A2", "B2", "B3", "B4", "S3"), cost_unit="fine_tune",
          title="Supervised fine-tuning (Fig. 3, Table 5, forgetting, signal-to-noise)"),
    Stage("format", runs=None, writes=(), reads=("base", "sft"),
          figures={"fig5_format": "figures.plots:fig5_format"}, tables={"format_gap": "stats:format_gap_table"},
          claims=("A4", "B5"), title="Prompt format (Fig. 5)"),
    Stage("transfer", runs=None, writes=(), reads=("base", "sft"),
          figures={"fig6_transfer": "figures.plots:fig6_transfer"}, tables={"mrc_cross_task": "stats:mrc_table"},
          claims=("B6", "A3"), title="Cross-task transfer (Fig. 6)"),
    Stage("ood", runs=None, writes=(), reads=("base", "sft"),
          figures={"fig7_ood": "figures.plots:fig7_ood"}, tables={"ood_groups": "stats:ood_table"},
          claims=("B7", "A3"), title="Out-of-domain (Fig. 7)"),
    # Beyond the paper: the open questions, judged apart from the paper's claims. It runs the models of the
    # fine-tune-to-convergence schedule when the profile switches it on; as the last notebook it writes the whole
    # scorecard, so it reads everything a claim or a question reads.
    # (its models' weights and training records are the "converge" kind's, in results/<profile>/converge/)
    Stage("beyond", runs="converge", writes=("converge", "scorecard"),
          reads=("base", "instruction", "sft", "converge", "sensitivity", "forgetting", "training", "dynamics",
                 "probes"),
          beyond_figures={"figB_dynamics": ("study", "figures.plots:fig_dynamics"), "figB_probes": ("study", "figures.plots:fig_probes"),
                          "figB_predictors": ("table", "figures.plots:fig_predictors"),
                          "figB_converge": ("studies", "figures.plots:fig_converge")},
          other_files=("beyond",), cost_unit="fine_tune", title="Beyond the paper"),
)

RUN_ORDER = tuple(s.notebook for s in STAGES)  # the shipped registry's (the functions below read STAGES when asked)


def get(notebook: str) -> Stage:
    """The stage of `notebook` (an unknown name lists the stages)."""
    for stage in STAGES:
        if stage.notebook == notebook:
            return stage
    raise ValueError(f"unknown notebook {notebook!r}; stages: {[s.notebook for s in STAGES]}")


def runner_of(kind: str) -> Stage:
    """The stage that runs the model jobs of a record kind ('base', 'instruction', 'sft')."""
    for stage in STAGES:
        if stage.runs == kind:
            return stage
    raise ValueError(f"no stage runs {kind!r} models; kinds run: {[s.runs for s in STAGES if s.runs]}")


def writers_of(kind: str) -> tuple[str, ...]:
    """The notebooks that write results of `kind`, in run order."""
    return tuple(s.notebook for s in STAGES if kind in s.writes)


def resolve(name: str):
    """The function a "module:function" name of this registry stands for, the module named below the package
    ("figures.plots:fig3_sft"), imported now, not before."""
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(f"{__package__.rpartition('.')[0]}.{module}"), attr)
