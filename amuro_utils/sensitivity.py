"""Springer et al. (2025) progressive sensitivity: Gaussian noise added to a checkpoint's parameters, measured as the
rise of its loss on held-out pre-training text. Serves every ladder: the held-out text is the tiny ladder's held-out
passages (real English no profile trains on).
"""

from __future__ import annotations

from .profiles import TinyLadderSettings
from .tiny_ladder import corpus_docs, heldout_loss, split_corpus, token_blocks

# The held-out text: the passages the default tiny-ladder recipe holds out (its corpus, split seed and fraction).
HELDOUT_TEXT = TinyLadderSettings()


def heldout_token_blocks(tokenizer, seq_len: int, n_tokens: int, settings: TinyLadderSettings | None = None):
    """Held-out pre-training text (the tiny ladder's held-out passages) as [n, seq_len] token blocks."""
    settings = settings or HELDOUT_TEXT
    blocks = token_blocks(split_corpus(settings, corpus_docs(settings))[1], tokenizer, seq_len)[0]
    return blocks[: max(1, n_tokens // seq_len)]


def mean_token_loss(model, blocks, batch_size: int = 16) -> float:
    """Mean next-token cross-entropy (nats/token) of `model` over token blocks."""
    return heldout_loss(model, blocks.to(model.device), batch_size)


def probe(model, blocks, sigmas, seed: int = 0) -> list[dict]:
    """Δ held-out loss after adding isotropic N(0, σ²) noise to every parameter, per σ (σ = 0 is the baseline);
    the clean weights are restored afterwards."""
    import torch

    if not sigmas or sigmas[0] != 0:
        raise ValueError(f"the noise grid must start with σ = 0 (the unperturbed baseline), got {list(sigmas)}")
    clean = {k: v.detach().clone() for k, v in model.state_dict().items()}
    rows, base_loss = [], None
    try:
        for sigma in sigmas:
            gen = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                for name, param in model.named_parameters():
                    noise = torch.randn(param.shape, generator=gen, dtype=torch.float32) * sigma
                    param.copy_(clean[name] + noise.to(param.dtype).to(param.device))
            loss = mean_token_loss(model, blocks)
            base_loss = loss if sigma == 0 else base_loss
            rows.append({"sigma": sigma, "loss": loss, "delta_loss": loss - base_loss})
    finally:
        model.load_state_dict(clean)
    return rows
