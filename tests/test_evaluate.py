"""evaluate: k-shot prompts, classification, generation, rank classification, truncation, metrics, bootstrap.

Models are a tiny randomly initialised OlmoForCausalLM (seeded, vocab 50,304) with the real OLMo tokenizer.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from transformers import OlmoConfig, OlmoForCausalLM

from amuro_utils import stats as amuro_stats
from amuro_utils.data import tasks
from amuro_utils.data.offline import olmo_tokenizer
from amuro_utils.models import evaluate as ev

NLI_WORDS = tasks.NLI_FORCE
PARAPHRASE_WORDS = tasks.PARAPHRASE_FORCE
LLMBAR_WORDS = tasks.LLMBAR_FORCE

# Prompts of very different lengths (1 to ~190 tokens) so batches carry heavy left padding.
PROMPTS = [
    "Hi",
    "### Input_1: A man is playing a guitar.\n ### Input_2: A person plays music.\n ### Inference: ",
    "### Input: " + "The council approved the new park after a long public consultation. " * 14 + "\n ### Summary: ",
    "Question: Which gas do plants absorb?\nAnswer:",
    "x y",
    "### Input_1: The cat sat.\n ### Input_2: A dog barked loudly at the mailman this morning.\n ### Inference: ",
]


@pytest.fixture(scope="module")
def tok():
    return olmo_tokenizer()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = OlmoConfig(vocab_size=50304, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    return OlmoForCausalLM(config).eval()


# --- k-shot prompts -----------------------------------------------------------------------------------------
def _nli_example(i, premise, hypothesis, target):
    return {"id": f"toy-{i}", "fields": {"premise": premise, "hypothesis": hypothesis}, "target": target}


TOY_NLI = [_nli_example(0, "A dog runs.", "An animal moves.", "entailment"),
           _nli_example(1, "It is sunny.", "It is raining.", "contradiction"),
           _nli_example(2, "She sings.", "She is a professional.", "neutral")]


def test_kshot_prompt_exact_string():
    prompts = ev.kshot_prompts(tasks.get("mnli_matched"), TOY_NLI, "default", 2)
    demos = ("### Input_1: A dog runs.\n ### Input_2: An animal moves.\n ### Inference: entailment\n"
             "### Input_1: It is sunny.\n ### Input_2: It is raining.\n ### Inference: contradiction\n")
    assert prompts == [demos + "### Input_1: A dog runs.\n ### Input_2: An animal moves.\n ### Inference: ",
                       demos + "### Input_1: It is sunny.\n ### Input_2: It is raining.\n ### Inference: ",
                       demos + "### Input_1: She sings.\n ### Input_2: She is a professional.\n ### Inference: "]
    io = ev.kshot_prompts(tasks.get("mnli_matched"), TOY_NLI, "inputoutput", 1)
    assert io[2] == "A dog runs. An animal moves.entailment\nShe sings. She is a professional."


def test_kshot_prompt_zero_shot_and_custom_render():
    assert ev.kshot_prompts(tasks.get("mnli_matched"), TOY_NLI[:1], "instruct", 0) == [
        "Consider the following texts: Text 1: A dog runs. Text 2: An animal moves. The relation is "]
    toy = [{"q": "1+1", "target": "2"}, {"q": "2+2", "target": "4"}]
    prompts = ev.kshot_prompts(tasks.get("mnli_matched"), toy, "default", 1, render=lambda d, ex, f: ex["q"] + "=",
                               demo=lambda d, ex, f: ex["q"] + "=" + ex["target"] + "\n")
    assert prompts == ["1+1=2\n1+1=", "1+1=2\n2+2="]


def test_kshot_prompt_too_few_examples():
    with pytest.raises(ValueError, match="needs at least 5 examples"):
        ev.kshot_prompts(tasks.get("mnli_matched"), TOY_NLI, "default", 4)


# --- classification -----------------------------------------------------------------------------------------
def test_candidate_token_ids_match_protocol(tok):
    assert ev.candidate_token_ids(tok, NLI_WORDS) == (
        [290, 647, 420, 27912, 19657, 324, 2474, 46518, 9238, 20620], [0, 0, 0, 1, 2, 2, 2, 3, 4, 5])
    assert ev.candidate_token_ids(tok, PARAPHRASE_WORDS) == ([9820, 2369, 4754, 642], [0, 1, 2, 3])
    assert ev.candidate_token_ids(tok, LLMBAR_WORDS) == ([18, 19, 337, 374], [0, 1, 2, 3])


def test_strip_label_and_accuracy():
    nli, para = tasks.NLI_STRIP, tasks.PARAPHRASE_STRIP
    assert [ev.strip_label(w, nli) for w in NLI_WORDS] == ["entailment", "neutral", "contradiction"] * 2
    assert ev.strip_label("unknown", nli) is None
    assert [ev.strip_label(w, para) for w in PARAPHRASE_WORDS] == ["yes", "no", "yes", "no"]
    assert ev.strip_label("yes or no", para) == "no"  # "no" is tested first, as the release
    # RTE is binary: gold "neutral" = not_entailment; a predicted contradiction counts wrong.
    np.testing.assert_array_equal(
        ev.accuracy([" entailment", "contradiction", " neutral"], ["entailment", "neutral", "neutral"], nli), [1, 0, 1])
    # LLMBar: no stripping, exact string equality, so ' 1' is wrong.
    np.testing.assert_array_equal(ev.accuracy(["1", " 1", "2", " 2"], ["1", "1", "1", "2"], ()), [1, 0, 0, 0])
    with pytest.raises(ValueError, match="matches none"):
        ev.accuracy(["yes"], ["maybe"], para)


def _reference_classify(model, tok, prompt, force_words):
    """The release's procedure, literally: full forward, softmax over the vocab, argmax over the candidate list."""
    ids = torch.tensor([tok(prompt)["input_ids"]])
    probs = torch.softmax(model(input_ids=ids).logits[0, -1].float(), dim=-1)
    cand = [t for w in force_words for t in tok(w, add_special_tokens=False)["input_ids"]]
    owner = [w for w in force_words for _ in tok(w, add_special_tokens=False)["input_ids"]]
    return owner[int(probs[cand].argmax())]


def test_classify_batched_equals_batch1_and_reference(model, tok):
    reference = [_reference_classify(model, tok, p, NLI_WORDS) for p in PROMPTS]
    one = [ev.classify(model, tok, [p], NLI_WORDS, batch_size=1)[0][0] for p in PROMPTS]
    batched, n_truncated = ev.classify(model, tok, PROMPTS, NLI_WORDS, batch_size=4)
    assert one == reference and batched == reference and n_truncated == 0
    assert len(set(reference)) > 1  # the check is not vacuous


def test_label_logprobs_are_the_full_vocabulary_log_softmax_at_the_candidates(model, tok):
    cand, _ = ev.candidate_token_ids(tok, NLI_WORDS)
    words, n_truncated, logprobs = ev.label_logprobs(model, tok, PROMPTS, NLI_WORDS, batch_size=4)
    assert (words, n_truncated) == ev.classify(model, tok, PROMPTS, NLI_WORDS, batch_size=4)
    for prompt, row in zip(PROMPTS, logprobs):
        full = torch.log_softmax(model(input_ids=torch.tensor([tok(prompt)["input_ids"]])).logits[0, -1].float(), -1)
        np.testing.assert_allclose(row, full[cand].detach().numpy(), atol=1e-5, rtol=0)


def test_label_readings_known_rows():
    # NLI candidates: entailment 3 tokens, neutral 1, contradiction 3, then the three spaced words (owners below)
    owner = [0, 0, 0, 1, 2, 2, 2, 3, 4, 5]
    logp = np.log([[0.10, 0.05, 0.05, 0.20, 0.01, 0.01, 0.03, 0.30, 0.05, 0.05]] * 2)
    out = ev.label_readings(logp, owner, NLI_WORDS, ["entailment", "neutral"], tasks.NLI_STRIP)
    # entailment: columns of "entailment" and " entailment" = 0.10 + 0.05 + 0.05 + 0.30 = 0.50 of 0.85 on the labels
    # neutral: "neutral" and " neutral" = 0.20 + 0.05 = 0.25 of 0.85
    np.testing.assert_allclose(out["gold_logprob"], np.log([0.50, 0.25]), rtol=1e-12)
    np.testing.assert_allclose(out["gold_share"], [0.50 / 0.85, 0.25 / 0.85], rtol=1e-12)
    # LLMBar's exact match: only "1" names the gold "1" (" 1" is scored wrong), so only its column counts
    llmbar = ev.label_readings(np.log([[0.4, 0.1, 0.3, 0.2]]), [0, 1, 2, 3], LLMBAR_WORDS, ["1"], ())
    np.testing.assert_allclose([llmbar["gold_logprob"][0], llmbar["gold_share"][0]], [np.log(0.4), 0.4], rtol=1e-12)
    loose = ev.label_readings(np.log([[0.4, 0.1, 0.3, 0.2]]), [0, 1, 2, 3], LLMBAR_WORDS, ["1"], (), False)
    np.testing.assert_allclose(loose["gold_share"], [0.7], rtol=1e-12)
    with pytest.raises(ValueError, match="named by none of the force words"):
        ev.label_readings(np.log([[0.5, 0.5]]), [0, 1], ("yes", "no"), ["maybe"], ())
    with pytest.raises(ValueError, match="pass label_logprobs' rows"):
        ev.label_readings(logp, owner[:3], NLI_WORDS, ["entailment", "neutral"], tasks.NLI_STRIP)


# --- generation ---------------------------------------------------------------------------------------------
def test_generate_batched_equals_batch1(model, tok):
    one = [ev.generate(model, tok, [p], max_new_tokens=12, batch_size=1)[0][0] for p in PROMPTS]
    batched, n_truncated = ev.generate(model, tok, PROMPTS, max_new_tokens=12, batch_size=4)
    assert batched == one and n_truncated == 0
    assert len(set(one)) == len(PROMPTS) and all(one)


def test_generate_stops_at_eos_in_a_batch(model, tok):
    # Make the 3rd token greedy decoding emits for PROMPTS[1] the "eos": that row must stop after 2 tokens while
    # the rest of its batch goes on, and its text must equal batch size 1.
    ids = tok(PROMPTS[1])["input_ids"]
    full = model.generate(torch.tensor([ids]), max_new_tokens=3, do_sample=False, eos_token_id=None,
                          pad_token_id=1)[0, len(ids):].tolist()
    eos = full[2]
    assert eos not in full[:2]
    one = [ev.generate(model, tok, [p], max_new_tokens=8, batch_size=1, eos_token_id=eos)[0][0] for p in PROMPTS]
    batched = ev.generate(model, tok, PROMPTS, max_new_tokens=8, batch_size=6, eos_token_id=eos)[0]
    assert batched == one
    assert batched[1] == tok.decode(full[:2], skip_special_tokens=True)


# --- truncation ---------------------------------------------------------------------------------------------
def test_overlong_prompt_keeps_its_last_tokens(model, tok):
    long_prompt = PROMPTS[2]
    ids = tok(long_prompt)["input_ids"]
    assert len(ids) > 100
    kept = tok.decode(ids[-40:])
    assert tok(kept)["input_ids"] == ids[-40:] and kept.endswith("\n ### Summary: ")
    # generation: budget = max_length - max_new_tokens = 40 prompt tokens
    texts, n = ev.generate(model, tok, [long_prompt, "Hi"], max_new_tokens=10, batch_size=2, max_length=50)
    assert n == 1 and texts == ev.generate(model, tok, [kept, "Hi"], max_new_tokens=10, batch_size=2)[0]
    # classification: budget = max_length (only the prompt is read)
    words, n = ev.classify(model, tok, [long_prompt, "Hi"], NLI_WORDS, batch_size=2, max_length=40)
    assert n == 1 and words == ev.classify(model, tok, [kept, "Hi"], NLI_WORDS, batch_size=2)[0]
    # beyond the model's 512 positions without truncation: RoPE extrapolates, nothing crashes
    assert ev.classify(model, tok, [long_prompt * 4], NLI_WORDS)[1] == 0
    with pytest.raises(ValueError, match="no room for a prompt"):
        ev.generate(model, tok, ["Hi"], max_new_tokens=60, max_length=60)


# --- rank classification ------------------------------------------------------------------------------------
def _reference_loglik(model, tok, context, choice):
    ctx, cont = tok(context)["input_ids"], tok(choice, add_special_tokens=False)["input_ids"]
    logprobs = torch.log_softmax(model(input_ids=torch.tensor([ctx + cont])).logits[0].float(), dim=-1)
    return sum(logprobs[len(ctx) - 1 + j, t].item() for j, t in enumerate(cont))


def test_rank_classify_loglikelihoods(model, tok):
    contexts = [PROMPTS[3], PROMPTS[2], "Answer:"]
    choices = [[" oxygen", " carbon dioxide gas"], [" parks", " a new park", " rain"], [" yes", " no"]]
    items, n = ev.rank_classify(model, tok, contexts, choices, batch_size=3, uncond_context="Answer:")
    one = [ev.rank_classify(model, tok, [c], [ch], batch_size=1, uncond_context="Answer:")[0][0]
           for c, ch in zip(contexts, choices)]
    assert n == 0
    for item, single, context, options in zip(items, one, contexts, choices):
        expected = [_reference_loglik(model, tok, context, o) for o in options]
        np.testing.assert_allclose(item["loglik"], expected, rtol=1e-5)
        np.testing.assert_allclose(single["loglik"], expected, rtol=1e-5)
        uncond = [_reference_loglik(model, tok, "Answer:", o) for o in options]
        np.testing.assert_allclose(item["loglik_uncond"], uncond, rtol=1e-5)
        assert item["n_chars"].tolist() == [len(o) for o in options]
    assert items[0]["n_tokens"].tolist() == [1, 3] and items[1]["n_tokens"].tolist() == [1, 3, 1]
    # the uncond context scores like any context: "Answer:" + " yes" in item 2 equals its uncond value
    np.testing.assert_allclose(items[2]["loglik"], items[2]["loglik_uncond"], rtol=1e-6)
    # over-long context: the choice survives whole, the context keeps its last tokens
    cut, n = ev.rank_classify(model, tok, [PROMPTS[2]], [[" a new park", " rain"]], max_length=20)
    ctx = tok(PROMPTS[2])["input_ids"][-17:]
    assert n == 1 and cut[0]["loglik"][0] == pytest.approx(
        _reference_loglik(model, tok, tok.decode(ctx), " a new park"), rel=1e-5)


def test_rank_choice_metrics():
    item = {"loglik": np.array([-4.0, -6.0, -5.0, -9.0]), "n_tokens": np.array([1, 3, 1, 2]),
            "n_chars": np.array([4, 4, 10, 3]), "loglik_uncond": np.array([-1.0, -2.0, -1.0, -8.5])}
    # raw [-4 -6 -5 -9]; per token [-4 -2 -5 -4.5]; per char [-1 -1.5 -0.5 -3]; uncond [-3 -4 -4 -0.5]
    assert [ev.rank_choice(item, m) for m in ev.RANK_METRICS] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="unknown rank-classification metric"):
        ev.rank_choice(item, "acc_norm")
    with pytest.raises(ValueError, match="pass uncond_context"):
        ev.rank_choice({**item, "loglik_uncond": None}, "acc_uncond")


def test_choice_readings_known_item():
    item = {"loglik": np.array([-4.0, -6.0, -5.0, -9.0]), "n_tokens": np.array([1, 3, 1, 2]),
            "n_chars": np.array([4, 4, 10, 3]), "n_bytes": np.array([4, 4, 10, 3]),
            "loglik_uncond": np.array([-1.0, -2.0, -1.0, -8.5])}
    raw = ev.choice_readings([item], [2], "acc_raw")
    # bits per byte of the gold choice: 5 nats / (ln 2 · 10 bytes); its share of e^-4 + e^-6 + e^-5 + e^-9
    assert raw["gold_bpb"][0] == pytest.approx(5 / (np.log(2) * 10), rel=1e-12)
    assert raw["gold_share"][0] == pytest.approx(np.exp(-5) / np.exp([-4, -6, -5, -9]).sum(), rel=1e-12)
    assert raw["gold_margin"][0] == pytest.approx(-1.0)  # -5 against the best distractor's -4: ranked second
    per_char = ev.choice_readings([item], [2], "acc_per_char")  # scores [-1, -1.5, -0.5, -3]
    assert per_char["gold_bpb"][0] == raw["gold_bpb"][0]  # the answer text's bits do not depend on the ranking rule
    assert per_char["gold_share"][0] == pytest.approx(np.exp(-0.5) / np.exp([-1, -1.5, -0.5, -3]).sum(), rel=1e-12)
    assert per_char["gold_margin"][0] == pytest.approx(0.5)  # ranked first, as acc_per_char's prediction (2)
    with pytest.raises(ValueError, match="gold index 4 of 4 choices"):
        ev.choice_readings([item], [4], "acc_raw")


def test_rank_classify_counts_bytes(model, tok):
    items, _ = ev.rank_classify(model, tok, ["Q:"], [[" café", " tea"]])
    assert items[0]["n_chars"].tolist() == [5, 4] and items[0]["n_bytes"].tolist() == [6, 4]


def test_reference_bpb_is_teacher_forced_bits_per_byte(model, tok):
    prompts, references = [PROMPTS[1], PROMPTS[3], PROMPTS[4]], ["entailment", " oxygen and café", ""]
    bpb = ev.reference_bpb(model, tok, prompts, references, batch_size=2)
    for prompt, reference, value in zip(prompts[:2], references, bpb):
        bits = -_reference_loglik(model, tok, prompt, reference) / np.log(2)
        assert value == pytest.approx(bits / len(reference.encode("utf-8")), rel=1e-5)
    assert np.isnan(bpb[2])  # an empty reference has no bytes to score


# --- metrics ------------------------------------------------------------------------------------------------
def test_rouge_l_known_pairs():
    scores = ev.rouge_l(["the cat sat on the mat", "A quick brown fox", "running dogs", "Hello, world!", ""],
                        ["the cat is on the mat", "the quick brown dog jumps", "run dog", "hello world", "x"])
    # LCS 5 of 6|6 -> 5/6; LCS 2, P 2/4, R 2/5 -> F 4/9; no stemming -> 0; lower-cased, punctuation split -> 1
    np.testing.assert_allclose(scores, [5 / 6, 4 / 9, 0.0, 1.0, 0.0], rtol=1e-12)


def test_bootstrap_ci_definitions_and_seed():
    scores = [1, 1, 1, 1, 1, 1, 1, 1, 1, 0]
    out = amuro_stats.bootstrap_ci(scores, seed=0)
    ref = stats.bootstrap((np.array(scores, float),), np.mean, confidence_level=0.95, n_resamples=3000,
                          method="percentile", random_state=0)
    low, high = ref.confidence_interval.low, ref.confidence_interval.high
    assert out == {"mean": 0.9, "ci_low": low, "ci_high": high, "performance": low + (high - low) / 2,
                   "std": ref.standard_error, "n": 10}
    assert out["performance"] != out["mean"]  # the paper's number is the CI midpoint, not the mean
    assert amuro_stats.bootstrap_ci(scores, seed=0) == out
    assert amuro_stats.bootstrap_ci(scores, seed=1)["std"] != out["std"]


def test_bootstrap_ci_degenerate_inputs():
    assert amuro_stats.bootstrap_ci([0.25]) == {"mean": 0.25, "ci_low": 0.25, "ci_high": 0.25, "performance": 0.25,
                                       "std": 0.0, "n": 1}
    assert amuro_stats.bootstrap_ci([1, 1, 1])["performance"] == 1.0
    with pytest.raises(ValueError, match="non-empty"):
        amuro_stats.bootstrap_ci([])


# --- one evaluation set -------------------------------------------------------------------------------------
def test_evaluate_examples_by_kind(model, tok):
    nli = ev.evaluate_examples(model, tok, tasks.get("mnli_matched"), TOY_NLI, "default", 1, batch_size=2,
                               max_length=512)
    prompts = ev.kshot_prompts(tasks.get("mnli_matched"), TOY_NLI, "default", 1)
    assert nli.predictions == ev.classify(model, tok, prompts, NLI_WORDS)[0]
    assert nli.references == ["entailment", "contradiction", "neutral"]
    np.testing.assert_array_equal(nli.scores, ev.accuracy(nli.predictions, nli.references, tasks.NLI_STRIP))

    gen_examples = [{"id": i, "fields": {"doc": d}, "target": t} for i, (d, t) in
                    enumerate([("A long article.", "short"), ("Another text here.", "a summary"), ("Third.", "x")])]
    gen = ev.evaluate_examples(model, tok, tasks.get("xsum"), gen_examples, "default", 1, batch_size=3,
                               max_length=60, max_new_tokens=5)
    assert gen.n_truncated == 0 and gen.references == ["short", "a summary", "x"]
    np.testing.assert_array_equal(gen.scores, ev.rouge_l(gen.predictions, gen.references))

    mc_examples = [{"id": 0, "context": "Question: Sky color?\nAnswer:", "choices": [" blue", " green"], "gold": 0},
                   {"id": 1, "context": "Question: Two plus two?\nAnswer:", "choices": [" three", " four"], "gold": 1}]
    arc = tasks.get("arc_easy")
    mc = ev.evaluate_examples(model, tok, arc, mc_examples, "default", 1, batch_size=4, max_length=512)
    items = ev.rank_classify(model, tok, ev.kshot_prompts(arc, mc_examples, "default", 1),
                             [e["choices"] for e in mc_examples], uncond_context="Answer:")[0]
    chosen = [ev.rank_choice(item, "acc_uncond") for item in items]
    assert mc.predictions == [str(c) for c in chosen] and mc.references == ["0", "1"]
    np.testing.assert_array_equal(mc.scores, [float(c == g) for c, g in zip(chosen, [0, 1])])

    with pytest.raises(ValueError, match="only classification, generation and multiple_choice"):
        ev.evaluate_examples(model, tok, tasks.get("tulu_v2"), TOY_NLI, "default", 0, batch_size=1, max_length=64)


def test_evaluate_examples_records_each_kinds_continuous_readings(model, tok):
    nli_set = tasks.get("mnli_matched")
    nli = ev.evaluate_examples(model, tok, nli_set, TOY_NLI, "default", 1, batch_size=2, max_length=512)
    prompts = ev.kshot_prompts(nli_set, TOY_NLI, "default", 1)
    _, _, logprobs = ev.label_logprobs(model, tok, prompts, NLI_WORDS, batch_size=2)
    expected = ev.label_readings(logprobs, ev.candidate_token_ids(tok, NLI_WORDS)[1], NLI_WORDS, nli.references,
                                 tasks.NLI_STRIP)
    assert set(nli.continuous) == set(ev.CONTINUOUS["classification"]) and nli.continuous_seconds == 0.0
    for name, values in expected.items():
        np.testing.assert_allclose(nli.continuous[name], values, rtol=1e-12)

    gen_examples = [{"id": i, "fields": {"doc": d}, "target": t} for i, (d, t) in
                    enumerate([("A long article.", "short"), ("Another text here.", "a summary")])]
    gen = ev.evaluate_examples(model, tok, tasks.get("xsum"), gen_examples, "default", 1, batch_size=2,
                               max_length=60, max_new_tokens=5)
    gen_prompts = ev.kshot_prompts(tasks.get("xsum"), gen_examples, "default", 1)
    np.testing.assert_allclose(gen.continuous["gold_bpb"], ev.reference_bpb(model, tok, gen_prompts, gen.references),
                               rtol=1e-6)
    assert list(gen.continuous) == ["gold_bpb"] and gen.continuous_seconds > 0

    mc_examples = [{"id": 0, "context": "Question: Sky color?\nAnswer:", "choices": [" blue", " green"], "gold": 0},
                   {"id": 1, "context": "Question: Two plus two?\nAnswer:", "choices": [" three", " four"], "gold": 1}]
    arc = tasks.get("arc_easy")
    mc = ev.evaluate_examples(model, tok, arc, mc_examples, "default", 1, batch_size=4, max_length=512)
    assert set(mc.continuous) == {"gold_bpb", "gold_share", "gold_margin"}
    # acc_uncond: the gold choice is ranked first exactly where its margin over the best distractor is positive
    np.testing.assert_array_equal(mc.scores, (mc.continuous["gold_margin"] > 0).astype(float))
    plain = ev.evaluate_examples(model, tok, arc, mc_examples, "default", 1, batch_size=4, max_length=512,
                                 continuous=False)
    assert plain.continuous == {} and plain.predictions == mc.predictions


def test_prompts_are_encoded_once_per_tokenizer_and_the_copies_are_the_callers(monkeypatch):
    """Every model of a rung is scored on the same prompts: the second encoding of a prompt list by a tokenizer with
    the same files is read back (equal ids), and changing the returned lists changes nothing stored."""
    first, second = olmo_tokenizer(), olmo_tokenizer()  # two loads of the same files
    texts = ["Question: what is two plus two?\nAnswer:", "A second prompt, unseen before this test."]
    expected = first(texts)["input_ids"]
    calls = []
    for tok in (first, second):
        original = tok._encode_plus
        monkeypatch.setattr(tok, "_encode_plus", lambda *a, _o=original, **k: calls.append(1) or _o(*a, **k))
    ids, _ = ev._encode(first, texts, None)
    encoded = len(calls)
    assert ids == expected and encoded > 0
    ids[0].append(-1)
    again, _ = ev._encode(second, texts, 5)
    assert len(calls) == encoded and again == [x[-5:] for x in expected]  # read back, cut to the budget
    assert ev._encode(first, texts, None)[0] == expected and len(calls) == encoded  # the appended -1 was the caller's
