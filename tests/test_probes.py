"""Linear probes (beyond the paper): they recover a planted linear signal and stay at chance on shuffled labels."""

from __future__ import annotations

import numpy as np
import pytest

from amuro_utils.config.profiles import ProbeSettings
from amuro_utils.models import probes

SETTINGS = ProbeSettings(n_train=200, n_test=200, folds=5)


def planted(n: int, dim: int = 32, signal: float = 1.5, seed: int = 0):
    """Features with one planted direction that separates two labels (plus noise in every dimension)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(0, 1, (n, dim))
    x[:, 3] += signal * (2 * y - 1)
    return x, np.where(y == 1, "yes", "no")


def test_a_probe_recovers_a_planted_linear_signal():
    x, y = planted(400)
    scores, c = probes.fit_probe(x[:200], y[:200], x[200:], y[200:], SETTINGS)
    assert scores.shape == (200,) and scores.mean() > 0.85 and c in SETTINGS.Cs


def test_a_probe_stays_at_chance_on_shuffled_labels():
    x, y = planted(400)
    shuffled = np.random.default_rng(1).permutation(y)
    scores, _ = probes.fit_probe(x[:200], shuffled[:200], x[200:], shuffled[200:], SETTINGS)
    # 200 held-out items: chance 0.5 ± 0.035; the probe must not find a signal that is not there
    assert abs(scores.mean() - 0.5) < 0.1


def test_held_out_rows_never_inform_the_fit():
    x, y = planted(400)
    flipped = y.copy()
    flipped[200:] = np.where(y[200:] == "yes", "no", "yes")  # held-out labels reversed
    scores, _ = probes.fit_probe(x[:200], y[:200], x[200:], flipped[200:], SETTINGS)
    assert scores.mean() < 0.15  # the probe predicts from what it learned, so reversed gold scores near 0


def test_a_label_too_rare_to_cross_validate_is_refused_with_the_fix():
    x, y = planted(40)
    y[:20] = "no"
    y[0] = "yes"
    with pytest.raises(ValueError, match="raise ProbeSettings.n_train"):
        probes.fit_probe(x[:20], y[:20], x[20:], y[20:], SETTINGS)


def test_hidden_features_read_every_layer_at_the_last_prompt_token():
    from conftest import tiny_olmo

    from amuro_utils.data.offline import olmo_tokenizer

    model, tokenizer = tiny_olmo(), olmo_tokenizer()
    prompts = ["### Premise: a cat\\n### Inference: ", "a much longer prompt that goes on " * 3]
    together = probes.hidden_features(model, tokenizer, prompts, batch_size=2)
    alone = np.concatenate([probes.hidden_features(model, tokenizer, [p]) for p in prompts], axis=1)
    assert together.shape == (model.config.num_hidden_layers + 1, 2, model.config.hidden_size)
    np.testing.assert_allclose(together, alone, atol=1e-5)  # right padding leaves each prompt's last token alone
