"""The Springer et al. sensitivity probe: exact restoration, the three noise scalings, seeding, pairing per block, the
two-level bootstrap, and a loss rise on a random tiny OLMo."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from amuro_utils import stats
from amuro_utils.config.profiles import PAPER, SMOKE, TINY, SensitivitySettings
from amuro_utils.models import sensitivity
from tests.conftest import tiny_olmo


def _state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _random_blocks(n_blocks: int = 6, length: int = 24, seed: int = 0):
    return torch.randint(2, 50000, (n_blocks, length), generator=torch.Generator().manual_seed(seed))


def test_perturb_restores_the_clean_weights_bit_for_bit():
    model = tiny_olmo()
    clean = _state(model)
    with sensitivity.perturb(model, "init", 1.0, seed=3):
        assert not torch.equal(model.model.embed_tokens.weight, clean["model.embed_tokens.weight"])
        assert model.lm_head.weight is model.model.embed_tokens.weight  # the tied head moves with its embedding
    assert all(torch.equal(v, clean[k]) for k, v in model.state_dict().items())
    with pytest.raises(RuntimeError, match="inside"):
        with sensitivity.perturb(model, "isotropic", 0.5, seed=0):
            raise RuntimeError("error inside the block")
    assert all(torch.equal(v, clean[k]) for k, v in model.state_dict().items())
    sensitivity.probe(model, _random_blocks(), SensitivitySettings(magnitudes=(1.0,), seeds=2, tokens=48, block=24))
    assert all(torch.equal(v, clean[k]) for k, v in model.state_dict().items())


def test_unknown_scaling_lists_the_options():
    model = tiny_olmo()
    for call in (lambda: sensitivity.perturb(model, "gaussian", 1.0, 0).__enter__(),
                 lambda: sensitivity.noise_std(model, "per-layer", 1.0),
                 lambda: SensitivitySettings(scaling="gaussian"),
                 lambda: SensitivitySettings(also={"relativ": (0.1,)})):
        with pytest.raises(ValueError, match=r"unknown noise scaling .*options: 'init'.*'relative'.*'isotropic'"):
            call()
    with pytest.raises(ValueError, match="must be positive"):
        SensitivitySettings(magnitudes=(0.0, 1.0))


def test_relative_noise_has_the_stated_rms_ratio_per_tensor():
    model = tiny_olmo(hidden=64)
    with torch.no_grad():  # give tensors different scales, as pre-training does
        model.model.embed_tokens.weight.mul_(3.0)
        model.model.layers[0].mlp.down_proj.weight.mul_(0.25)
    clean = _state(model)
    gamma = 0.1
    with sensitivity.perturb(model, "relative", gamma, seed=1):
        for name in ("model.embed_tokens.weight", "model.layers[0].mlp.down_proj.weight"):
            key = name.replace("[0]", ".0")
            noise = model.state_dict()[key] - clean[key]
            ratio = noise.pow(2).mean().sqrt() / clean[key].pow(2).mean().sqrt()
            # 3.2M / 16k draws: the sample RMS is within 0.3 % / 3 % of σ with overwhelming probability
            assert ratio.item() == pytest.approx(gamma, rel=0.003 if "embed" in key else 0.03)
            assert noise.mean().abs().item() < 0.05 * gamma * clean[key].pow(2).mean().sqrt().item()
    stds = sensitivity.noise_std(model, "relative", gamma)
    assert stds["model.embed_tokens.weight"] == pytest.approx(gamma * 3.0 * 0.02, rel=0.01)
    assert stds["model.layers.0.mlp.down_proj.weight"] == pytest.approx(gamma * 0.25 * 0.02, rel=0.05)


def test_init_noise_uses_the_init_std():
    from transformers import Olmo2Config, Olmo2ForCausalLM

    model = tiny_olmo()
    assert set(sensitivity.init_std(model).values()) == {0.02}  # every OLMo tensor: N(0, initializer_range²)
    model.config.initializer_range = 0.05
    clean = _state(model)
    with sensitivity.perturb(model, "init", 0.5, seed=0):
        noise = model.model.embed_tokens.weight - clean["model.embed_tokens.weight"]
        assert noise.std().item() == pytest.approx(0.5 * 0.05, rel=0.005)
    assert sensitivity.noise_std(model, "init", 0.5) == sensitivity.noise_std(model, "isotropic", 0.025)

    olmo2 = Olmo2ForCausalLM(Olmo2Config(vocab_size=512, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=64, eos_token_id=0, pad_token_id=1))
    stds = sensitivity.init_std(olmo2)
    assert stds["model.norm.weight"] == 0.0 and stds["model.layers.0.self_attn.q_norm.weight"] == 0.0
    assert stds["lm_head.weight"] == stds["model.layers.0.mlp.down_proj.weight"] == 0.02
    norm = olmo2.model.norm.weight.detach().clone()
    with sensitivity.perturb(olmo2, "init", 1.0, seed=0):
        assert torch.equal(olmo2.model.norm.weight, norm)  # constant-initialised: no noise under "init"
    with sensitivity.perturb(olmo2, "isotropic", 0.02, seed=0):
        assert not torch.equal(olmo2.model.norm.weight, norm)


def test_init_refuses_an_architecture_with_its_own_init():
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=128, n_embd=16, n_layer=1, n_head=2, n_positions=32))
    with pytest.raises(ValueError, match="overrides _init_weights.*'relative' or 'isotropic'"):
        sensitivity.noise_std(gpt2, "init", 1.0)
    assert len(sensitivity.noise_std(gpt2, "relative", 1.0)) == len(list(gpt2.parameters()))


def test_noise_seeds_reproduce_and_do_not_depend_on_order_or_model_instance():
    a, b = tiny_olmo(seed=0), tiny_olmo(seed=1)  # two "checkpoints" of one architecture
    with sensitivity.perturb(a, "isotropic", 0.01, seed=7):
        first = {k: v.clone() for k, v in a.state_dict().items()}
    with sensitivity.perturb(a, "isotropic", 0.01, seed=7):
        assert all(torch.equal(v, first[k]) for k, v in a.state_dict().items())
    with sensitivity.perturb(a, "isotropic", 0.01, seed=8):
        assert not torch.equal(a.model.embed_tokens.weight, first["model.embed_tokens.weight"])
    clean_a, clean_b = _state(a), _state(b)
    with sensitivity.perturb(a, "isotropic", 0.01, seed=7), sensitivity.perturb(b, "isotropic", 0.01, seed=7):
        key = "model.layers.1.self_attn.q_proj.weight"
        torch.testing.assert_close(a.state_dict()[key] - clean_a[key], b.state_dict()[key] - clean_b[key])
    shape = (64, 32)
    late = sensitivity.standard_noise("x.weight", shape, 4)
    sensitivity.standard_noise("y.weight", shape, 4)
    assert torch.equal(sensitivity.standard_noise("x.weight", shape, 4), late)
    assert not torch.equal(sensitivity.standard_noise("y.weight", shape, 4), late)


def test_probe_rows_and_block_deltas_pair_per_block():
    model = tiny_olmo()
    blocks = _random_blocks(n_blocks=5)
    settings = SensitivitySettings(scaling="init", magnitudes=(0.5, 2.0), seeds=2, tokens=120, block=24,
                                   batch_size=2, also={"relative": (0.3,)})
    frame = sensitivity.probe(model, blocks, settings)
    assert list(frame.columns) == list(sensitivity.FRAME_COLUMNS)
    assert list(zip(frame["seed"], frame["scaling"], frame["magnitude"])) == [
        (s, sc, m) for s in (0, 1) for sc, m in (("init", 0.5), ("init", 2.0), ("relative", 0.3))]
    assert (frame["n_tokens"] == 5 * 23).all()
    clean = sensitivity.block_losses(model, blocks, batch_size=3)
    np.testing.assert_allclose(frame["base_loss"], clean.mean(), rtol=1e-6)
    row = frame.iloc[4]  # seed 1, init γ=2
    with sensitivity.perturb(model, "init", 2.0, seed=1):
        perturbed = sensitivity.block_losses(model, blocks, batch_size=5)
    np.testing.assert_allclose(row["block_deltas"], perturbed - clean, atol=1e-5)
    assert row["delta_loss"] == pytest.approx(row["block_deltas"].mean())
    assert row["loss"] == pytest.approx(row["base_loss"] + row["delta_loss"])
    reordered = sensitivity.probe(model, blocks[[4, 3, 2, 1, 0]], dataclasses.replace(settings, also={}))
    np.testing.assert_allclose(reordered.iloc[3]["block_deltas"], row["block_deltas"][::-1], atol=1e-5)


def test_block_losses_match_the_model_loss():
    model = tiny_olmo()
    blocks = _random_blocks(n_blocks=4)
    with torch.no_grad():
        expected = [model(input_ids=b[None], labels=b[None]).loss.item() for b in blocks]
    np.testing.assert_allclose(sensitivity.block_losses(model, blocks, batch_size=3), expected, rtol=1e-5)
    assert sensitivity.mean_token_loss(model, blocks) == pytest.approx(np.mean(expected), rel=1e-5)


def test_large_noise_raises_the_loss_of_a_random_tiny_olmo():
    from amuro_utils.data.offline import olmo_tokenizer

    blocks = sensitivity.heldout_token_blocks(olmo_tokenizer(), 64, 512)
    assert blocks.shape == (8, 64) and int(blocks.max()) < 50304
    frame = sensitivity.probe(tiny_olmo(), blocks, SensitivitySettings(magnitudes=(10.0,), seeds=2, tokens=512,
                                                                       block=64, also={"isotropic": (0.2,)}))
    assert (frame["delta_loss"] > 0.3).all()  # noise ten times the init spread: the loss of 10.8 rises markedly
    assert (stats.sensitivity_table(frame.assign(ckpt="main"), TINY)["ci_low"] > 0).all()  # its 95 % CI excludes 0
    # for OLMo every tensor is initialised N(0, 0.02²): "init" γ = 10 is "isotropic" σ = 0.2, draw for draw
    np.testing.assert_allclose(frame["block_deltas"][0], frame["block_deltas"][1], atol=1e-6)


def test_heldout_text_is_limited_and_says_how_much_there_is():
    from amuro_utils.data.offline import olmo_tokenizer

    with pytest.raises(ValueError, match=r"hold 37,082 tokens = 72 blocks of 512.*at most 36,864"):
        sensitivity.heldout_token_blocks(olmo_tokenizer(), 512, 40_000)


def test_heldout_text_is_never_trained_on():
    """The probe's held-out passages are disjoint from the training passages of every profile's local ladder (the
    smoke ladder's, trained on a share of the corpus, included), and the paper profile's 32,768 tokens fit."""
    from amuro_utils.config.profiles import PROFILES
    from amuro_utils.data.offline import olmo_tokenizer
    from amuro_utils.models.ladder import get_ladder
    from amuro_utils.models.tiny_ladder import corpus_docs, split_corpus, tiny_settings

    heldout = set(split_corpus(sensitivity.HELDOUT_TEXT, corpus_docs(sensitivity.HELDOUT_TEXT))[1])
    local = [p for p in PROFILES.values() if get_ladder(p.ladder).local]
    assert {p.name for p in local} >= {"tiny", "smoke"}
    for profile in local:
        settings = tiny_settings(profile)
        train, own_heldout = split_corpus(settings, corpus_docs(settings))
        assert not heldout & set(train), f"{profile.name} trains on the probe's held-out text"
        assert set(own_heldout) <= heldout
    blocks = sensitivity.heldout_token_blocks(olmo_tokenizer(), PAPER.sensitivity.block, PAPER.sensitivity.tokens)
    assert blocks.numel() == PAPER.sensitivity.tokens


def test_profiles_carry_valid_sensitivity_settings():
    for profile in (PAPER, TINY, SMOKE):
        settings = profile.sensitivity
        assert settings.scaling == "init" and settings.tokens % settings.block == 0
        assert list(settings.readings())[0] == "init"
    assert TINY.sensitivity.tokens <= 37_082 and SMOKE.sensitivity.tokens <= TINY.sensitivity.tokens
