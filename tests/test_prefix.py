"""Shared-prefix (key/value cache) evaluation equals the uncached path, for every evaluation kind.

Real 4-shot prompts from the shipped data (MNLI, SocialIQa QG, ARC-Easy, HellaSwag), the real OLMo tokenizer and
`tiny_olmo` random models in float32. The model's matrices are scaled ×8 so that greedy generation from ~300-token
prompts is not one repeated token (at the default init std of 0.02 it emits only spaces, and equal text would
prove little).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_olmo

from amuro_utils.data import tasks
from amuro_utils.data.offline import olmo_tokenizer
from amuro_utils.models import evaluate as ev

SHOTS = 4


@pytest.fixture(scope="module")
def tok():
    return olmo_tokenizer()


@pytest.fixture(scope="module")
def model():
    model = tiny_olmo(seed=0).eval()
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() == 2:
                weight.mul_(8)
    return model


def kshot(name: str, n: int, fmt: str = "default"):
    """(dataset, examples, prompts, prefix) of a real eval set, 4-shot."""
    dataset = tasks.get(name)
    examples = tasks.load_examples(name, limit=n)
    prompts = ev.kshot_prompts(dataset, examples, fmt, SHOTS)
    return dataset, examples, prompts, ev.kshot_demos(dataset, examples, fmt, SHOTS)


class TokenCounter:
    """Counts the tokens the model embeds (a forward pre-hook on the input embedding)."""

    def __init__(self, model):
        self.tokens = 0
        self.handle = model.get_input_embeddings().register_forward_pre_hook(self._count)

    def _count(self, module, args):
        self.tokens += args[0].numel()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


# --- the pieces ---------------------------------------------------------------------------------------------
def test_kshot_demos_is_what_every_prompt_starts_with():
    dataset, examples, prompts, prefix = kshot("mnli_matched", 6)
    assert prefix == "".join(tasks.demo(dataset, ex, "default") for ex in examples[:SHOTS])
    assert prefix.endswith("\n") and prefix.count("### Inference: ") == SHOTS
    assert all(p == prefix + tasks.render(dataset, ex, "default") for p, ex in zip(prompts, examples))
    assert ev.kshot_demos(dataset, examples, "default", 0) == ""


def test_padding_between_prefix_and_query():
    inputs = ev._after_prefix([[7, 8, 9], [5]], prefix_len=4, pad_id=1, device="cpu")
    assert inputs["input_ids"].tolist() == [[7, 8, 9], [1, 1, 5]]
    assert inputs["attention_mask"].tolist() == [[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 1]]
    # Real query tokens continue from the prefix length, exactly as in the unpadded prompt.
    assert inputs["position_ids"].tolist()[0] == [4, 5, 6]
    assert inputs["position_ids"].tolist()[1][-1] == 4


def test_cached_next_token_logprobs_within_1e4(model, tok):
    """Full-vocabulary next-token log-probabilities, padded batch after the cached prefix vs each prompt alone."""
    _, _, prompts, prefix = kshot("mnli_matched", 9)
    prefix_ids = ev._prefix_ids(tok, prefix, prompts)
    ids = tok(prompts)["input_ids"]
    cache = ev._prefix_cache(model, prefix_ids)
    inputs = ev._after_prefix([x[len(prefix_ids):] for x in ids], len(prefix_ids), 1, "cpu")
    with torch.no_grad():
        cached = model(**inputs, cache=ev._expand_cache(cache, len(ids)), logits_to_keep=1).logits[:, -1]
        alone = torch.cat([model(input_ids=torch.tensor([x]), logits_to_keep=1).logits[:, -1] for x in ids])
    assert len({len(x) for x in ids}) > 1  # the batch really has padding between prefix and query
    assert torch.allclose(cached.log_softmax(-1), alone.log_softmax(-1), atol=1e-4, rtol=0)
    assert cache.get_seq_length() == len(prefix_ids)  # expanding and running batches left the prefix cache as is


# --- the three evaluation kinds ----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["default", "inputoutput"])
def test_classify_cached_equals_uncached(model, tok, fmt):
    dataset, _, prompts, prefix = kshot("mnli_matched", 16, fmt)
    uncached, n_truncated = ev.classify(model, tok, prompts, dataset.force_words, batch_size=1)
    with TokenCounter(model) as counter:
        cached, n_cut, n_fallback = ev.classify_shared_prefix(model, tok, prompts, dataset.force_words, batch_size=4,
                                                              prefix=prefix)
    assert cached == uncached and len(set(uncached)) > 1
    assert (n_truncated, n_cut, n_fallback) == (0, 0, 0)
    # The prefix ran once (less its last token), then each padded batch of queries (with that token) alone.
    ids = tok(prompts)["input_ids"]
    n_cached = len(tok(prefix)["input_ids"]) - 1
    batches = ev._length_batches([len(x) for x in ids], 4)
    assert counter.tokens == n_cached + sum(len(b) * (max(len(ids[i]) for i in b) - n_cached) for b in batches)
    assert counter.tokens < sum(len(x) for x in ids) / 3


@pytest.mark.parametrize("name", ["arc_easy", "hellaswag"])
def test_rank_classify_cached_equals_uncached(model, tok, name):
    dataset, examples, prompts, prefix = kshot(name, 10)
    choices = [ex["choices"] for ex in examples]
    uncond = dataset.target.uncond_context if dataset.metric == "acc_uncond" else None
    uncached, n_truncated = ev.rank_classify(model, tok, prompts, choices, batch_size=4, uncond_context=uncond)
    cached, n_cut, n_fallback = ev.rank_classify_shared_prefix(model, tok, prompts, choices, batch_size=8,
                                                               uncond_context=uncond, prefix=prefix)
    assert (n_truncated, n_cut, n_fallback) == (0, 0, 0)
    for u, c in zip(uncached, cached):
        np.testing.assert_allclose(c["loglik"], u["loglik"], atol=1e-4, rtol=0)
        np.testing.assert_array_equal(c["n_tokens"], u["n_tokens"])
        if uncond is not None:
            np.testing.assert_allclose(c["loglik_uncond"], u["loglik_uncond"], atol=1e-4, rtol=0)
        for metric in ev.RANK_METRICS if uncond else ("acc_raw", "acc_per_token", "acc_per_char"):
            assert ev.rank_choice(c, metric) == ev.rank_choice(u, metric)
    assert len({ev.rank_choice(u, "acc_raw") for u in uncached}) > 1


def test_generate_cached_equals_uncached_at_batch_1_4_16(model, tok):
    _, _, prompts, prefix = kshot("socialiqa", 17)  # batch 16 = a batch of 16 and one of 1
    reference = ev.generate(model, tok, prompts, max_new_tokens=10, batch_size=1)[0]
    assert len(set(reference)) > len(prompts) / 2 and all(t.strip() for t in reference)
    assert ev.generate(model, tok, prompts, max_new_tokens=10, batch_size=16)[0] == reference
    for batch_size in (1, 4, 16):
        texts, n_truncated, n_fallback = ev.generate_shared_prefix(model, tok, prompts, 10, batch_size, prefix=prefix)
        assert texts == reference, batch_size
        assert (n_truncated, n_fallback) == (0, 0)


def test_generate_cached_stops_at_eos_in_a_batch(model, tok):
    # Take as "eos" the 3rd token greedy decoding emits for one prompt: that row stops after 2 tokens while the
    # rest of its batch goes on; cached text must still equal the uncached batch-1 text.
    _, _, prompts, prefix = kshot("socialiqa", 9)
    ids = tok(prompts[5])["input_ids"]
    full = model.generate(torch.tensor([ids]), max_new_tokens=3, do_sample=False, eos_token_id=None,
                          pad_token_id=1)[0, len(ids):].tolist()
    eos = full[2]
    assert eos not in full[:2]
    one = ev.generate(model, tok, prompts, max_new_tokens=8, batch_size=1, eos_token_id=eos)[0]
    cached = ev.generate_shared_prefix(model, tok, prompts, 8, 9, prefix=prefix, eos_token_id=eos)[0]
    assert cached == one and cached[5] == tok.decode(full[:2])


# --- fallback: over budget, boundary merge ------------------------------------------------------------------
def test_over_budget_items_take_the_truncating_uncached_path(model, tok):
    dataset, examples, prompts, prefix = kshot("mnli_matched", 16)
    lengths = sorted(len(x) for x in tok(prompts)["input_ids"])
    max_length = lengths[10]  # the 5 longest prompts are over budget
    n_over = sum(n > max_length for n in lengths)
    assert n_over == 5
    uncached, n_truncated = ev.classify(model, tok, prompts, dataset.force_words, 4, max_length)
    cached, n_cut, n_fallback = ev.classify_shared_prefix(model, tok, prompts, dataset.force_words, 4, max_length,
                                                          prefix=prefix)
    assert cached == uncached and (n_truncated, n_cut, n_fallback) == (n_over, n_over, n_over)

    _, _, gen_prompts, gen_prefix = kshot("socialiqa", 12)
    lengths = sorted(len(x) for x in tok(gen_prompts)["input_ids"])
    max_length = lengths[8] + 6  # generation budget = max_length - max_new_tokens
    n_over = sum(n > lengths[8] for n in lengths)
    uncached, n_truncated = ev.generate(model, tok, gen_prompts, 6, 4, max_length)
    cached, n_cut, n_fallback = ev.generate_shared_prefix(model, tok, gen_prompts, 6, 4, max_length,
                                                          prefix=gen_prefix)
    assert cached == uncached and n_over >= 2 and (n_truncated, n_cut, n_fallback) == (n_over, n_over, n_over)

    dataset, examples, mc_prompts, mc_prefix = kshot("arc_easy", 10)
    choices = [ex["choices"] for ex in examples]
    max_length = max(len(x) for x in tok(mc_prompts)["input_ids"]) - 2  # some context + choice pairs are over
    uncached, n_truncated = ev.rank_classify(model, tok, mc_prompts, choices, 4, max_length)
    cached, n_cut, n_fallback = ev.rank_classify_shared_prefix(model, tok, mc_prompts, choices, 4, max_length,
                                                               prefix=mc_prefix)
    assert n_truncated >= 1 and (n_cut, n_fallback) == (n_truncated, n_truncated)
    for u, c in zip(uncached, cached):
        np.testing.assert_allclose(c["loglik"], u["loglik"], atol=1e-4, rtol=0)


def test_boundary_merge_takes_the_uncached_path(model, tok):
    # A prefix ending inside a word: " unbeliev" is two tokens alone, but "unbelievable" is not those two plus more,
    # so the prompts that complete the word do not start with the cached prefix tokens.
    dataset, examples, prompts, demos = kshot("mnli_matched", 10)
    prefix = demos + "Note: unbeliev"
    queries = [("able\n" if k % 3 == 0 else "\n") + p[len(demos):] for k, p in enumerate(prompts)]
    merged = [prefix + q for q in queries]
    cached_ids = ev._prefix_ids(tok, prefix, merged)
    starts = [tok(p)["input_ids"][:len(cached_ids)] == cached_ids for p in merged]
    assert starts == [k % 3 != 0 for k in range(len(merged))]  # the construction really merges, 4 of 10
    uncached, _ = ev.classify(model, tok, merged, dataset.force_words, 1)
    cached, n_truncated, n_fallback = ev.classify_shared_prefix(model, tok, merged, dataset.force_words, 4,
                                                                prefix=prefix)
    assert cached == uncached and (n_truncated, n_fallback) == (0, 4)
    pairs = [(p, " entailment") for p in merged]
    loglik, _, _ = ev.continuation_loglikelihoods(model, tok, pairs, 4)
    cached_ll, _, _, fallback = ev.continuation_loglikelihoods_shared_prefix(model, tok, pairs, 4, prefix=prefix)
    np.testing.assert_allclose(cached_ll, loglik, atol=1e-4, rtol=0)
    assert fallback.tolist() == [not s for s in starts]


def test_multiple_choice_boundary_is_handled_by_rerunning_the_last_prefix_token(tok):
    # Multiple-choice demos end in "\n\n": one token alone, "\n", "\n" before "Question". Caching all prefix tokens
    # would send every item to the uncached path; caching all but the last sends none.
    _, _, prompts, prefix = kshot("arc_easy", 8)
    prefix_tokens = tok(prefix)["input_ids"]
    assert tok.decode(prefix_tokens[-1:]) == "\n\n"
    assert not any(tok(p)["input_ids"][:len(prefix_tokens)] == prefix_tokens for p in prompts)
    assert ev._prefix_ids(tok, prefix, prompts) == prefix_tokens[:-1]
    cached, fallback = ev._prefix_route(tok(prompts)["input_ids"], prefix_tokens[:-1], [True] * len(prompts))
    assert (len(cached), fallback) == (len(prompts), [])


# --- evaluate_examples and errors ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mnli_matched", "socialiqa", "arc_easy"])
def test_evaluate_examples_shared_prefix_same_output(model, tok, name):
    dataset = tasks.get(name)
    examples = tasks.load_examples(name, limit=8)
    settings = dict(batch_size=4, max_length=512, max_new_tokens=8)
    plain = ev.evaluate_examples(model, tok, dataset, examples, "default", SHOTS, **settings)
    shared = ev.evaluate_examples(model, tok, dataset, examples, "default", SHOTS, shared_prefix=True, **settings)
    assert shared.predictions == plain.predictions and shared.references == plain.references
    np.testing.assert_array_equal(shared.scores, plain.scores)
    assert set(shared.continuous) == set(plain.continuous) == set(ev.CONTINUOUS[dataset.kind])
    for reading, values in plain.continuous.items():  # the continuous readings too, to float32 rounding
        np.testing.assert_allclose(shared.continuous[reading], values, atol=1e-4, rtol=0)
    assert (plain.n_prefix_fallback, shared.n_prefix_fallback, shared.n_truncated) == (0, 0, 0)


def test_zero_shot_and_bad_prefix(model, tok):
    dataset, _, prompts, _ = kshot("mnli_matched", 6)
    queries = [p[len(ev.kshot_demos(dataset, tasks.load_examples("mnli_matched", limit=6), "default", SHOTS)):]
               for p in prompts]
    # Zero-shot: no demos to share, the uncached path for every item, and no fallback to report.
    assert ev.classify_shared_prefix(model, tok, queries, dataset.force_words, prefix="") == (
        (*ev.classify(model, tok, queries, dataset.force_words), 0))
    with pytest.raises(ValueError, match="does not start with the shared prefix"):
        ev.classify_shared_prefix(model, tok, prompts, dataset.force_words, prefix="### Input_2:")
    assert ev.EvalOutput(np.zeros(1), ["x"], ["y"], 0).n_prefix_fallback == 0
