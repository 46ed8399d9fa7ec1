"""Supervised and instruction fine-tuning, faithful to the paper's open-instruct run (PROTOCOL §3).

Encoding, masking, optimizer, schedule and loss reduction follow `open_instruct/finetune.py` of the release; the
loss is computed only at supervised positions (same value, ~14× faster, MEASURED.md). One code path for one CPU,
one GPU or many GPUs (`accelerate launch`): every process draws the same seeded order, takes its share of each
effective batch, and gradients are averaged across processes.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..config.profiles import ConvergeSettings, LoraSettings, TrainSettings

IGNORE = -100
KINDS = ("prompt_completion", "chat")
LOSS_NORMALIZATIONS = ("sequence_mean", "token_mean")
# open-instruct's no-decay groups (matched as substrings of parameter names).
NO_DECAY = ("bias", "layer_norm.weight")
_WHITESPACE = (" ", "\n", "\t")


# ---------------------------------------------------------------------------------------------------------------
# encoding (PROTOCOL §3 "Encoding details")


def _tokenize(tokenizer, text: str, max_length: int) -> list[int]:
    # As finetune.py: the tokenizer's own special tokens (OLMo adds none), right-truncated to max_length.
    return tokenizer(text, max_length=max_length, truncation=True)["input_ids"]


def _eos(tokenizer) -> str:
    if tokenizer.eos_token is None:
        raise ValueError("the tokenizer has no eos_token; load the model's own tokenizer (OLMo: <|endoftext|> = 50279)")
    return tokenizer.eos_token


def encode_prompt_completion(tokenizer, prompt: str, completion: str, max_length: int) -> dict[str, list[int]]:
    """input_ids/labels of prompt + completion (+ a space if neither side has one) + EOS; the prompt is masked."""
    if not prompt.endswith(_WHITESPACE) and not completion.startswith(_WHITESPACE):
        text = prompt + " " + completion
    else:
        text = prompt + completion
    input_ids = _tokenize(tokenizer, text + _eos(tokenizer), max_length)
    # The paper's rule: a trailing space of the prompt merges into the completion's first token ("Ġentail"), so the
    # mask covers the tokens of prompt[:-1]; masking len(tokenize(prompt)) would also hide that first token.
    masked_prompt = prompt[:-1] if prompt.endswith(_WHITESPACE) else prompt
    n_masked = len(_tokenize(tokenizer, masked_prompt, max_length))
    labels = [IGNORE] * min(n_masked, len(input_ids)) + input_ids[n_masked:]
    return {"input_ids": input_ids, "labels": labels}


def _concat_messages(messages: Sequence[Mapping[str, str]], eos: str) -> str:
    text = ""
    for message in messages:
        role, content = message["role"], message["content"].strip()
        if role == "system":
            text += "<|system|>\n" + content + "\n"
        elif role == "user":
            text += "<|user|>\n" + content + "\n"
        elif role == "assistant":
            text += "<|assistant|>\n" + content + eos + "\n"
        else:
            raise ValueError(f"invalid chat role {role!r}; expected 'system', 'user' or 'assistant'")
    return text


def encode_messages(tokenizer, messages: Sequence[Mapping[str, str]], max_length: int) -> dict[str, list[int]]:
    """input_ids/labels of a Tulu-format chat; loss only on assistant turns (their `<|assistant|>\\n` header masked)."""
    if not messages:
        raise ValueError("a chat example has an empty 'messages' list")
    eos = _eos(tokenizer)
    input_ids = _tokenize(tokenizer, _concat_messages(messages, eos).strip(), max_length)
    labels = list(input_ids)
    # Span boundaries exactly as finetune.py computes them: token counts of the (unstripped) prefixes.
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            continue
        start = 0 if i == 0 else len(_tokenize(tokenizer, _concat_messages(messages[:i], eos), max_length))
        prefix = _concat_messages(messages[:i + 1], eos)
        if i + 1 < len(messages) and messages[i + 1]["role"] == "assistant":
            prefix += "<|assistant|>\n"
        end = len(_tokenize(tokenizer, prefix, max_length))
        labels[start:end] = [IGNORE] * len(labels[start:end])
        if end >= max_length:
            break
    return {"input_ids": input_ids, "labels": labels}


def encode_examples(tokenizer, examples: Sequence[Mapping], *, kind: str, max_length: int) -> list[dict]:
    """Encode every example; those whose labels are all masked after truncation are dropped (as the paper)."""
    if kind not in KINDS:
        raise ValueError(f"unknown fine-tuning kind {kind!r}; use one of {KINDS}")
    need = ("prompt", "completion") if kind == "prompt_completion" else ("messages",)
    encoded = []
    for n, example in enumerate(examples):
        lacking = [k for k in need if k not in example]
        if lacking:
            raise ValueError(f"training example {n} lacks {lacking} (kind={kind!r} needs {need}); "
                             f"render prompt/completion with tasks.render before fine-tuning")
        if kind == "prompt_completion":
            item = encode_prompt_completion(tokenizer, example["prompt"], example["completion"], max_length)
        else:
            item = encode_messages(tokenizer, example["messages"], max_length)
        if any(label != IGNORE for label in item["labels"]):
            encoded.append(item)
    return encoded


def collate(items: Sequence[Mapping[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded input_ids, attention_mask and labels (−100 on padding), like DataCollatorForSeq2Seq."""
    width = max(len(x["input_ids"]) for x in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    for row, x in enumerate(items):
        n = len(x["input_ids"])
        ids[row, :n] = torch.tensor(x["input_ids"])
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(x["labels"])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


# ---------------------------------------------------------------------------------------------------------------
# loss at supervised positions only (MEASURED.md fast path)


def supervised_token_losses(model, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence sum of next-token cross-entropy over supervised targets, and the number of those targets.

    The decoder runs on every position, but lm_head only where the next token is supervised (a boolean
    `logits_to_keep` mask, applied inside the model's own forward so DDP sees a normal call). Equal to the
    labels= loss of transformers: sum / count is its value for one sequence.
    """
    labels = batch["labels"]
    targets = labels[:, 1:]
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = targets != IGNORE
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep,
                use_cache=False)
    logits = out.logits.reshape(-1, out.logits.shape[-1]).float()  # (n_targets, vocab), row-major like `keep`
    token_loss = F.cross_entropy(logits, labels[:, 1:][targets != IGNORE], reduction="none")
    rows = keep.nonzero()[:, 0]
    sums = torch.zeros(labels.shape[0], dtype=token_loss.dtype, device=token_loss.device).index_add(0, rows, token_loss)
    return sums, (targets != IGNORE).sum(dim=1)


def mean_loss(model, encoded: Sequence[Mapping[str, list[int]]], settings: TrainSettings, pad_id: int,
              device=None) -> float:
    """The training objective of `model` on encoded examples, without an update (nats/token): with
    "sequence_mean" the mean over examples of each one's mean completion-token loss, with "token_mean" the total
    completion-token loss over the total completion tokens. Scored in micro-batches of the training's size, in eval
    mode and without gradients; the model is left in the mode it was in."""
    if not encoded:
        raise ValueError("no encoded example to score")
    device = device or next(model.parameters()).device
    training = model.training
    model.eval()
    sums, counts = [], []
    with torch.no_grad():
        for first in range(0, len(encoded), settings.micro_batch_size):
            batch = collate(encoded[first:first + settings.micro_batch_size], pad_id)
            s, c = supervised_token_losses(model, {k: v.to(device) for k, v in batch.items()})
            sums.append(s.double().cpu())
            counts.append(c.double().cpu())
    model.train(training)
    total, count = torch.cat(sums), torch.cat(counts)
    if settings.loss_normalization == "sequence_mean":
        return float((total / count).mean())
    return float(total.sum() / count.sum())


def completion_loss(model, tokenizer, examples: Sequence[Mapping], settings: TrainSettings, *, kind: str) -> float:
    """`mean_loss` of raw examples (encoded as for training; examples with nothing to predict are dropped)."""
    encoded = encode_examples(tokenizer, examples, kind=kind, max_length=settings.max_length)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return mean_loss(model, encoded, settings, pad_id)


class EarlyStopping:
    """Stop when the validation loss has not improved on its best by more than `min_delta` for `patience`
    evaluations in a row; `best_step` is where the curve turned."""

    def __init__(self, patience: int, min_delta: float = 0.0):
        if patience < 1 or min_delta < 0:
            raise ValueError(f"early stopping needs patience ≥ 1 and min_delta ≥ 0, got {patience}, {min_delta}")
        self.patience, self.min_delta = patience, min_delta
        self.best_loss, self.best_step, self.waited = math.inf, None, 0
        self.history: list[tuple[int, float]] = []

    def update(self, step: int, loss: float) -> tuple[bool, bool]:
        """Record the loss at `step`: (is it the best so far, should training stop now)."""
        self.history.append((step, float(loss)))
        if loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_step, self.waited = float(loss), step, 0
            return True, False
        self.waited += 1
        return False, self.waited >= self.patience


def evaluation_steps(steps_per_epoch: int, evals_per_epoch: int) -> set[int]:
    """The optimizer steps of an epoch (1-based) after which the validation loss is evaluated: evenly spaced, the
    epoch's last step included."""
    return {max(1, round(k * steps_per_epoch / evals_per_epoch)) for k in range(1, evals_per_epoch + 1)}


def point_steps(fractions: Sequence[float], total_steps: int) -> list[int]:
    """The optimizer step each fraction of a run falls on: max(1, round(f · total)) (the model after that step)."""
    return [min(total_steps, max(1, round(f * total_steps))) for f in fractions]


# ---------------------------------------------------------------------------------------------------------------
# optimizer and schedule


def schedule_steps(n_examples: int, settings: TrainSettings) -> dict[str, int]:
    """Optimizer steps per epoch (ceil(n / effective batch)), total steps and warmup steps int(total · ratio)."""
    per_epoch = math.ceil(n_examples / settings.batch_size)
    total = per_epoch * settings.epochs
    return {"steps_per_epoch": per_epoch, "total_steps": total, "warmup_steps": int(total * settings.warmup_ratio)}


def build_optimizer(model, settings: TrainSettings, total_steps: int):
    """AdamW (β 0.9/0.999, eps 1e-8) with bias/layer-norm weights undecayed, and the linear warmup/decay schedule."""
    from transformers import get_scheduler

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in named if not any(nd in n for nd in NO_DECAY)], "weight_decay": settings.weight_decay},
        {"params": [p for n, p in named if any(nd in n for nd in NO_DECAY)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=settings.lr, betas=(0.9, 0.999), eps=1e-8)
    scheduler = get_scheduler("linear", optimizer=optimizer, num_training_steps=total_steps,
                              num_warmup_steps=int(total_steps * settings.warmup_ratio))
    return optimizer, scheduler


# ---------------------------------------------------------------------------------------------------------------
# one optimizer step's worth of gradient


def accumulate_window(accelerator, model, window: Sequence[Mapping[str, list[int]]], settings: TrainSettings,
                      pad_id: int, autocast_dtype: torch.dtype | None = None) -> float:
    """Forward/backward one effective batch (this process's share, in micro-batches); returns the batch's loss.

    The objective is explicit (settings.loss_normalization):
      sequence_mean: Σ_i mean-token-loss(seq_i) / batch_size — the paper's open-instruct run (reduce_loss='mean',
                     micro-batch 1, accumulation 8; a short last batch of an epoch is still divided by batch_size,
                     as accelerate divides every micro-batch by the accumulation steps);
      token_mean:    Σ_i sum-token-loss(seq_i) / (target tokens in the whole effective batch).
    Each micro-batch's loss is multiplied by accumulation steps × processes, undoing accelerate's 1/accumulation and
    DDP's 1/processes, so the gradient is that of the objective whatever the micro-batch size.
    """
    world, rank = accelerator.num_processes, accelerator.process_index
    scale = accelerator.gradient_accumulation_steps * world
    window_tokens = sum(sum(label != IGNORE for label in x["labels"][1:]) for x in window)
    local = list(window[rank::world])
    weight = 1.0
    if not local:
        # A short last batch can leave a process empty; it still joins the gradient all-reduce, with zero weight.
        local, weight = [window[0]], 0.0
    micro = [local[i:i + settings.micro_batch_size] for i in range(0, len(local), settings.micro_batch_size)]
    objective = torch.zeros((), device=accelerator.device)
    for k, items in enumerate(micro):
        batch = {key: value.to(accelerator.device) for key, value in collate(items, pad_id).items()}
        sync = accelerator.no_sync(model) if k < len(micro) - 1 else contextlib.nullcontext()
        with sync:
            with torch.autocast(accelerator.device.type, dtype=autocast_dtype or torch.float32,
                                enabled=autocast_dtype is not None):
                sums, counts = supervised_token_losses(model, batch)
            if settings.loss_normalization == "sequence_mean":
                contribution = (sums / counts).sum() / settings.batch_size
            else:
                contribution = sums.sum() / window_tokens
            contribution = contribution * weight
            accelerator.backward(contribution * scale)  # outside autocast, as torch recommends
        objective += contribution.detach()
    return accelerator.reduce(objective, reduction="sum").item() if world > 1 else objective.item()


# ---------------------------------------------------------------------------------------------------------------
# the training loop


def _check(settings: TrainSettings, world: int) -> None:
    if settings.loss_normalization not in LOSS_NORMALIZATIONS:
        raise ValueError(f"unknown loss_normalization {settings.loss_normalization!r}; "
                         f"use one of {LOSS_NORMALIZATIONS}")
    if settings.dtype not in ("float32", "bfloat16"):
        raise ValueError(f"unknown training dtype {settings.dtype!r}; use 'float32' or 'bfloat16' (mixed precision)")
    if settings.micro_batch_size < 1 or settings.batch_size % (settings.micro_batch_size * world):
        raise ValueError(f"batch_size {settings.batch_size} must be a multiple of micro_batch_size "
                         f"{settings.micro_batch_size} × {world} process(es); change micro_batch_size")


def fine_tune(model, tokenizer, examples: Sequence[Mapping], settings: TrainSettings, *, kind: str,
              progress: bool = True, device: str | None = None, points: Sequence[float] = (),
              on_point: Callable | None = None, converge: ConvergeSettings | None = None,
              validate: Callable | None = None) -> dict:
    """Fine-tune `model` in place on prompt/completion (kind='prompt_completion') or chat examples (kind='chat').

    device: 'cpu' forces the CPU; None or 'cuda' uses the accelerator's device (every GPU under `accelerate launch`).
    points / on_point: after the optimizer step each fraction of the run falls on (`point_steps`), call
    `on_point(fraction, step, model)` with the model in eval mode (the loss, the order of training and the RNG are
    untouched; its time is not counted in `seconds`). converge / validate: train for up to `converge.epochs(...)`
    epochs (the schedule's horizon) and stop when `validate(model)` (a loss) has not improved for `converge.patience`
    evaluations (`EarlyStopping`), keeping the best evaluation's weights if `converge.restore_best`.
    Returns the log: the zero-step loss (the objective before any update), loss and lr per optimizer step, token
    counts, seconds, steps, the settings used and, when converging, the validation curve and where it stopped.
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from ..config.reporter import tqdm

    if device not in (None, "cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; use 'cpu', 'cuda' or None")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' but no CUDA GPU is visible; use device='cpu' (or AMURO_FORCE_CPU=1)")
    if converge is not None and validate is None:
        raise ValueError("fine-tuning to convergence needs `validate`, the validation loss of the model")
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes != {torch.float32}:
        raise ValueError(f"the model's weights are {sorted(map(str, dtypes))}; load it in float32 for training "
                         "(settings.dtype='bfloat16' already runs the forward pass in bf16 mixed precision)")
    encoded = encode_examples(tokenizer, examples, kind=kind, max_length=settings.max_length)
    if not encoded:
        raise ValueError(f"no trainable example among {len(examples)}: every label was masked after truncation "
                         f"to max_length={settings.max_length}")
    accelerator = Accelerator(cpu=device == "cpu")
    _check(settings, accelerator.num_processes)
    accelerator.gradient_accumulation_steps = (
        settings.batch_size // (settings.micro_batch_size * accelerator.num_processes))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    start = time.perf_counter()
    model.to(accelerator.device)
    zero_step = mean_loss(model, encoded, settings, pad_id, accelerator.device)  # no RNG drawn, no weight changed
    set_seed(settings.seed)
    epochs = converge.epochs(settings.epochs) if converge is not None else settings.epochs
    steps = schedule_steps(len(encoded), replace(settings, epochs=epochs))
    optimizer, scheduler = build_optimizer(model, settings, steps["total_steps"])
    # The scheduler stays unprepared: accelerate would step it once per process; we step it once per update.
    model.train()
    wrapped, optimizer = accelerator.prepare(model, optimizer)
    use_bf16 = settings.dtype == "bfloat16" and accelerator.device.type == "cuda"
    log = {"loss": [], "lr": [], **steps, "zero_step_loss": zero_step, "n_examples": len(examples),
           "n_dropped": len(examples) - len(encoded), "kind": kind, "settings": dict(vars(settings)),
           "device": str(accelerator.device), "num_processes": accelerator.num_processes,
           "mixed_precision": "bf16" if use_bf16 else "no"}
    at_step: dict[int, list[float]] = {}
    for fraction, step in zip(points, point_steps(points, steps["total_steps"])):
        at_step.setdefault(step, []).append(fraction)
    stopping = EarlyStopping(converge.patience, converge.min_delta) if converge is not None else None
    check_at = evaluation_steps(steps["steps_per_epoch"], converge.evals_per_epoch) if converge is not None else set()
    best_state, aside = None, 0.0

    def off_the_clock(call):
        nonlocal aside
        began = time.perf_counter()
        model.eval()
        out = call()
        model.train()
        aside += time.perf_counter() - began
        return out

    bar = tqdm(total=steps["total_steps"], desc="fine-tune", disable=not progress or not accelerator.is_main_process)
    done, stop = 0, False
    for epoch in range(epochs):
        order = np.random.default_rng([settings.seed, epoch]).permutation(len(encoded))
        for index, first in enumerate(range(0, len(encoded), settings.batch_size), start=1):
            window = [encoded[i] for i in order[first:first + settings.batch_size]]
            loss = accumulate_window(accelerator, wrapped, window, settings, pad_id,
                                     torch.bfloat16 if use_bf16 else None)
            if settings.max_grad_norm is not None:
                accelerator.clip_grad_norm_(wrapped.parameters(), settings.max_grad_norm)
            log["lr"].append(scheduler.get_last_lr()[0])
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            log["loss"].append(loss)
            done += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", epoch=epoch)
            for fraction in at_step.get(done, ()):
                off_the_clock(lambda: on_point(fraction, done, model))
            if stopping is not None and index in check_at:
                with torch.no_grad():
                    improved, stop = stopping.update(done, off_the_clock(lambda: validate(model)))
                if improved and converge.restore_best:
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if stop:
                break
        if stop:
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    log["seconds"] = time.perf_counter() - start - aside
    log["callback_seconds"] = aside
    if stopping is not None:
        kept = stopping.best_step if converge.restore_best else done
        log.update(validation=[{"step": s, "loss": v} for s, v in stopping.history], stopped_step=done,
                   best_step=stopping.best_step, best_loss=stopping.best_loss, kept_step=kept,
                   stopped_early=stop, epochs_horizon=epochs)
    share = done / steps["total_steps"] * epochs  # epochs' worth of examples seen
    log["target_tokens"] = round(share * sum(sum(y != IGNORE for y in x["labels"][1:]) for x in encoded))
    log["input_tokens"] = round(share * sum(len(x["input_ids"]) for x in encoded))
    log["tokens_per_s"] = log["input_tokens"] / log["seconds"]
    model.eval()
    accelerator.free_memory()  # drops the optimizer's state (2 × fp32 copies of the weights)
    return log


def save_fine_tuned(model, tokenizer, path: str | Path, *, dtype: str = "bfloat16") -> Path:
    """Write the fine-tuned weights (default bf16, as the paper kept them) and tokenizer to `path`; model unchanged."""
    from accelerate import PartialState

    if dtype not in ("bfloat16", "float32"):
        raise ValueError(f"unknown save dtype {dtype!r}; use 'bfloat16' or 'float32'")
    path = Path(path)
    if not PartialState().is_main_process:
        return path
    torch_dtype = getattr(torch, dtype)
    state = {k: v.detach().to("cpu", torch_dtype) for k, v in model.state_dict().items()}
    model.save_pretrained(path, state_dict=state)
    tokenizer.save_pretrained(path)
    # save_pretrained records the in-memory (fp32) dtype; the file holds `dtype`, so dtype="auto" must read that.
    config_file = path / "config.json"
    config = json.loads(config_file.read_text())
    config["dtype"] = dtype
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return path


# ---------------------------------------------------------------------------------------------------------------
# parameter-efficient fine-tuning (the paper's Limitations): LoRA through peft


def lora_targets(model) -> list[str]:
    """The module names a LoRA adapter can wrap in `model`: the last name part of every nn.Linear."""
    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                   if isinstance(module, torch.nn.Linear) and name})


def attach_lora(model, lora: LoraSettings, seed: int):
    """`model` wrapped in a peft LoRA adapter (rank, alpha, dropout and target modules from `lora`); only the adapter
    is trainable. The adapter's initialisation is seeded. A target that names no module is refused, listing the
    modules that exist."""
    from peft import LoraConfig, get_peft_model

    available = lora_targets(model)
    absent = [t for t in lora.target_modules if t not in available]
    if absent or not lora.target_modules:
        raise ValueError(f"LoRA target modules {absent or list(lora.target_modules)} are not in "
                         f"{type(model).__name__}; its linear modules are {available}")
    torch.manual_seed(seed)
    config = LoraConfig(r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=list(lora.target_modules), task_type="CAUSAL_LM")
    with _peft_reads_is_gradient_checkpointing():
        return get_peft_model(model, config)


@contextlib.contextmanager
def _peft_reads_is_gradient_checkpointing():
    """Silence the one FutureWarning that peft's own code triggers, and nothing else.

    PeftModel.__init__ (peft <= 0.21.2, the newest) reads `getattr(model, "is_gradient_checkpointing", True)`, a
    property transformers 5.24 deprecates (removed in v6) in favour of `is_activation_checkpointing`. This package
    never reads it; the call is inside peft, so the warning would only teach a user to ignore warnings. When v6
    removes the property, peft's getattr default applies (it then enables input gradients, harmless for LoRA).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def save_adapter(peft_model, tokenizer, path: str | Path) -> Path:
    """Write only the LoRA adapter (a few MB for OLMo-1B) and the tokenizer to `path`."""
    path = Path(path)
    peft_model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def merge_lora(peft_model):
    """The base model with the adapter merged into its weights: evaluated by exactly the same code as full
    fine-tuning."""
    return peft_model.merge_and_unload()


def load_lora(base_model, path: str | Path):
    """A base model with a saved adapter (save_adapter) merged in."""
    from peft import PeftModel

    with _peft_reads_is_gradient_checkpointing():
        return PeftModel.from_pretrained(base_model, str(path)).merge_and_unload()

