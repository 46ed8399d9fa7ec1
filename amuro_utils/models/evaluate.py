"""Evaluation (PROTOCOL §4): k-shot prompts, next-token classification, greedy generation, rank classification,
ROUGE-L / accuracy (the bootstrap CI whose midpoint is the paper's `Performance` is stats.bootstrap_ci).

Every model function works on plain prompt strings with any causal LM + tokenizer, runs in batches (left
padding, sequences sorted by length, original order restored) and gives the same predictions as batch size 1.

Over-long prompts never crash: they are left-truncated, keeping their LAST tokens, so the query and its template
survive and the oldest demo text goes first. Budgets: generation `max_length - max_new_tokens` prompt tokens
(room for the continuation), classification `max_length` (it reads the prompt only), rank classification
`max_length` for context + choice together (the choice is never cut). Each function returns how many prompts
it truncated.

Shared demo prefix (`*_shared_prefix`, `evaluate_examples(shared_prefix=True)`): every k-shot prompt of a set starts
with the same demos, so their key/value cache is computed once (batch size 1) and each batch runs only its query
tokens, left-padded BETWEEN prefix and query (mask 0 on the pads, positions continuing from the prefix length).
Predictions equal the uncached path's. A prompt over its budget (the truncation rule above) or whose tokens do not
start with the cached prefix tokens (all of the prefix's but the last, which BPE can merge with the query) goes
through the uncached path; each function returns how many did (`n_prefix_fallback`).

Continuous readings beside the paper's metric (`CONTINUOUS`, per item, named for what each measures): from the
distributions classification and rank classification already compute, and, for generation, one teacher-forced
pass over the reference (its time is `EvalOutput.continuous_seconds`). Accuracy and ROUGE-L stay the scores.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import logging
import math
import time
import weakref
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from ..data import tasks

log = logging.getLogger(__name__)

RANK_METRICS = ("acc_raw", "acc_per_token", "acc_per_char", "acc_uncond")
# The continuous readings each kind of scoring records per item (records' `continuous`). Two things are kept apart:
# modelling the gold answer's text (gold_bpb, gold_logprob) and telling the gold answer from the others (gold_share,
# gold_margin); a model can learn the first long before the second.
CONTINUOUS = {
    # log-probability (nats) of the gold label word's candidate tokens under the next-token distribution over the
    # whole vocabulary; and their share of the probability on all label words' candidate tokens
    "classification": ("gold_logprob", "gold_share"),
    # the gold choice's bits per UTF-8 byte given the context; its share of the choices' probabilities as the set's
    # metric normalises them; and its score minus the best distractor's in that normalisation (> 0: ranked first)
    "multiple_choice": ("gold_bpb", "gold_share", "gold_margin"),
    # the reference's bits per UTF-8 byte given the prompt, teacher-forced
    "generation": ("gold_bpb",),
}


@dataclass
class EvalOutput:
    """Per-item results of one (model, eval set, format, shots) evaluation."""

    scores: np.ndarray  # per item: 0/1 correctness or ROUGE-L F1
    predictions: list[str]  # predicted force word, generated text, or index of the chosen choice
    references: list[str]  # gold completion (choice index for multiple choice)
    n_truncated: int  # prompts left-truncated to fit the context
    # Items the shared-prefix path sent through the uncached one: over budget (n_truncated of them) or a token merge
    # at the demo/query boundary (the rest); 0 without shared_prefix.
    n_prefix_fallback: int = 0
    continuous: dict[str, np.ndarray] = field(default_factory=dict)  # CONTINUOUS[kind] -> per-item values
    continuous_seconds: float = 0.0  # wall time of the forward passes only the continuous readings need


# ---------------------------------------------------------------------------------------------------------------
# prompts


def kshot_prompts(dataset, examples: Sequence[dict], fmt: str, shots: int,
                  render: Callable[..., str] = tasks.render, demo: Callable[..., str] = tasks.demo) -> list[str]:
    """One prompt per example: the first `shots` examples as demos (`tasks.demo`), then the query (`tasks.render`)."""
    if shots < 0:
        raise ValueError(f"shots must be >= 0, got {shots}")
    if len(examples) < shots + 1:
        raise ValueError(f"{shots}-shot evaluation of {dataset.name!r} needs at least {shots + 1} examples "
                         f"(the first {shots} are the demos), got {len(examples)}; load more examples or lower shots")
    demos = kshot_demos(dataset, examples, fmt, shots, demo=demo)
    return [demos + render(dataset, ex, fmt) for ex in examples]


def kshot_demos(dataset, examples: Sequence[dict], fmt: str, shots: int,
                demo: Callable[..., str] = tasks.demo) -> str:
    """The demo text every prompt of `kshot_prompts` starts with (the shared prefix)."""
    # Paper rule (PROTOCOL §4.1): the demos are the first k items of the eval set itself, and are scored too.
    return "".join(demo(dataset, ex, fmt) for ex in examples[:shots])


# ---------------------------------------------------------------------------------------------------------------
# tokenisation, truncation, batching


_FINGERPRINTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_ENCODED: "collections.OrderedDict" = collections.OrderedDict()
_ENCODED_MAX = 256  # (tokenizer, prompt list) entries kept: a rung's sets and formats several times over


def _fingerprint(tokenizer) -> str | None:
    """What decides a tokenizer's ids (its serialised fast tokenizer, hashed): the same for every copy loaded from
    the same files, so the models of a ladder that share a tokenizer share its encodings. None: not cacheable."""
    try:
        return _FINGERPRINTS[tokenizer]
    except (KeyError, TypeError):
        pass
    try:
        digest = hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()
    except (AttributeError, TypeError):  # a slow or stand-in tokenizer: encoded every time
        return None
    try:
        _FINGERPRINTS[tokenizer] = digest
    except TypeError:
        pass
    return digest


def _token_ids(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """tokenizer(texts)["input_ids"], memoised per tokenizer fingerprint and prompt list: every model of a rung (base,
    fine-tuned, each point along a fine-tuning) is scored on the same prompts, which are encoded once. Copies are
    returned, so a caller may change its lists."""
    key = _fingerprint(tokenizer)
    if key is None:
        return tokenizer(list(texts), add_special_tokens=True)["input_ids"]
    key = (key, tuple(texts))
    if key in _ENCODED:
        _ENCODED.move_to_end(key)
    else:
        _ENCODED[key] = tokenizer(list(texts), add_special_tokens=True)["input_ids"]
        while len(_ENCODED) > _ENCODED_MAX:
            _ENCODED.popitem(last=False)
    return [list(x) for x in _ENCODED[key]]


def _encode(tokenizer, texts: Sequence[str], budget: int | None) -> tuple[list[list[int]], list[bool]]:
    """Token ids of each text (the tokenizer's own special tokens; OLMo adds none), left-truncated to `budget`."""
    if budget is not None and budget < 1:
        raise ValueError(f"no room for a prompt: token budget {budget}; raise max_length or lower max_new_tokens")
    ids = _token_ids(tokenizer, texts)
    truncated = [budget is not None and len(x) > budget for x in ids]
    ids = [x[-budget:] if cut else x for x, cut in zip(ids, truncated)]
    return ids, truncated


def _log_truncated(n: int, total: int, budget) -> None:
    if n:  # recorded per record as n_truncated; the rule is documented, so this is information, not a warning
        log.info("%d of %d prompts exceeded %s tokens and were left-truncated (oldest demo text dropped)",
                    n, total, budget)


def _pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def _length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (less padding), longest first so memory peaks early."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def _left_pad(seqs: Sequence[Sequence[int]], pad_id: int, device) -> dict[str, torch.Tensor]:
    """Left-padded input_ids, attention_mask and position_ids (0 at each sequence's first real token)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        ids[row, width - len(s):] = torch.tensor(s, dtype=torch.long)
        mask[row, width - len(s):] = 1
    # Positions as at batch size 1, so padding changes nothing but the masked columns.
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "position_ids": position_ids.to(device)}


def _check_nonempty(ids: Sequence[Sequence[int]], texts: Sequence[str]) -> None:
    for x, text in zip(ids, texts):
        if not x:
            raise ValueError(f"prompt {text!r} tokenizes to no tokens; every prompt needs at least one token")


# ---------------------------------------------------------------------------------------------------------------
# classification (PROTOCOL §4.2)


def candidate_token_ids(tokenizer, force_words: Sequence[str]) -> tuple[list[int], list[int]]:
    """Ids of every sub-token of every force word, each with the index of the first force word that holds it."""
    ids, owner = [], []
    for w, word in enumerate(force_words):
        for token_id in tokenizer(word, add_special_tokens=False)["input_ids"]:
            # The release argmaxes over the list with duplicates; equal columns resolve to the first occurrence.
            if token_id not in ids:
                ids.append(token_id)
                owner.append(w)
    if not ids:
        raise ValueError(f"force words {list(force_words)!r} give no token ids")
    return ids, owner


def strip_label(word: str, strip_order: Sequence[tuple[str, str]]) -> str | None:
    """Canonical label of a predicted word: the first substring of `strip_order` it contains, else None."""
    for substring, label in strip_order:
        if substring in word:
            return label
    return None


@torch.inference_mode()
def classify(model, tokenizer, prompts: Sequence[str], force_words: Sequence[str], batch_size: int = 16,
             max_length: int | None = None) -> tuple[list[str], int]:
    """Predicted force word per prompt (argmax of the next-token softmax over all force-word sub-tokens)."""
    words, n_truncated, _ = label_logprobs(model, tokenizer, prompts, force_words, batch_size, max_length)
    return words, n_truncated


@torch.inference_mode()
def label_logprobs(model, tokenizer, prompts: Sequence[str], force_words: Sequence[str], batch_size: int = 16,
                   max_length: int | None = None) -> tuple[list[str], int, np.ndarray]:
    """`classify`, plus each prompt's next-token log-probabilities over the whole vocabulary at the candidate tokens
    (one row per prompt, columns in `candidate_token_ids` order): what `label_readings` reads."""
    cand_ids, owner = candidate_token_ids(tokenizer, force_words)
    ids, truncated = _encode(tokenizer, prompts, max_length)
    _check_nonempty(ids, prompts)
    _log_truncated(sum(truncated), len(prompts), max_length)
    cand = torch.tensor(cand_ids, device=model.device)
    words: list[str | None] = [None] * len(prompts)
    logprobs = np.zeros((len(prompts), len(cand_ids)))
    for batch in _length_batches([len(x) for x in ids], batch_size):
        inputs = _left_pad([ids[i] for i in batch], _pad_id(tokenizer), model.device)
        logits = model(**inputs, logits_to_keep=1).logits[:, -1]
        chosen, rows = _force_words(logits, cand, owner, force_words)
        for i, word, row in zip(batch, chosen, rows):
            words[i], logprobs[i] = word, row
    return words, sum(truncated), logprobs


def _force_words(logits: torch.Tensor, cand: torch.Tensor, owner: Sequence[int],
                 force_words: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The predicted force word per row and the rows' log-probabilities at the candidate columns."""
    # Softmax over the full vocabulary as the release does (float32), then argmax over the candidate columns; the
    # log-probabilities come from log_softmax, which keeps tiny probabilities a float32 softmax would round to 0.
    logits = logits.float()
    probs = torch.softmax(logits, dim=-1)[:, cand]
    words = [force_words[owner[best]] for best in probs.argmax(dim=-1).tolist()]
    return words, torch.log_softmax(logits, dim=-1)[:, cand].double().cpu().numpy()


def label_readings(logprobs: np.ndarray, owner: Sequence[int], force_words: Sequence[str], references: Sequence[str],
                   strip_order: Sequence[tuple[str, str]], exact_match: bool = True) -> dict[str, np.ndarray]:
    """Per item, from `label_logprobs`' rows: gold_logprob, the log-probability (nats) of the candidate tokens that
    name the gold label (those an argmax would score correct, `accuracy`'s rule), and gold_share, their share of
    the probability on every candidate token."""
    logprobs = np.asarray(logprobs, dtype=float)
    if logprobs.shape != (len(references), len(owner)):
        raise ValueError(f"{logprobs.shape} log-probabilities for {len(references)} references and {len(owner)} "
                         "candidate tokens; pass label_logprobs' rows with candidate_token_ids' owners")
    words = [force_words[w] for w in owner]
    gold_logprob, gold_share = np.zeros(len(references)), np.zeros(len(references))
    for i, reference in enumerate(references):
        gold = accuracy(words, [reference] * len(words), strip_order, exact_match).astype(bool)
        if not gold.any():
            raise ValueError(f"gold label {reference!r} is named by none of the force words {list(force_words)}; "
                             "fix the registry entry")
        gold_logprob[i] = _logsumexp(logprobs[i, gold])
        gold_share[i] = math.exp(gold_logprob[i] - _logsumexp(logprobs[i]))
    return {"gold_logprob": gold_logprob, "gold_share": gold_share}


def _logsumexp(values: np.ndarray) -> float:
    top = float(np.max(values))
    return top + math.log(float(np.exp(np.asarray(values) - top).sum()))


def accuracy(predictions: Sequence[str], references: Sequence[str],
             strip_order: Sequence[tuple[str, str]], exact_match: bool = True) -> np.ndarray:
    """Per-item 0/1: stripped prediction == stripped gold; with an empty strip_order, exact string equality
    (`exact_match=False`: equality after stripping surrounding whitespace, the named LLMBar deviation)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not strip_order:  # LLMBar: '1'/'2' compared as strings, so ' 1' counts wrong (PROTOCOL §4.2)
        if not exact_match:
            return np.array([float(str(p).strip() == str(r).strip()) for p, r in zip(predictions, references)])
        return np.array([float(p == r) for p, r in zip(predictions, references)])
    scores = []
    for p, r in zip(predictions, references):
        gold = strip_label(r, strip_order)
        if gold is None:
            raise ValueError(f"gold label {r!r} matches none of {[s for s, _ in strip_order]}; fix the registry entry")
        scores.append(float(strip_label(p, strip_order) == gold))
    return np.array(scores)


# ---------------------------------------------------------------------------------------------------------------
# generation (PROTOCOL §4.3)


@torch.inference_mode()
def generate(model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 60, batch_size: int = 16,
             max_length: int | None = None, **generate_kwargs) -> tuple[list[str], int]:
    """Greedy continuation of each prompt, decoded without special tokens; same text as batch size 1.

    `generate_kwargs` override the model.generate settings (e.g. `eos_token_id=None, min_new_tokens=60` to time
    exactly 60 tokens). Returns (texts, n_truncated).
    """
    budget = None if max_length is None else max_length - max_new_tokens
    ids, truncated = _encode(tokenizer, prompts, budget)
    _check_nonempty(ids, prompts)
    _log_truncated(sum(truncated), len(prompts), budget)
    settings = _generate_settings(tokenizer, max_new_tokens, generate_kwargs)
    eos = settings["eos_token_id"]
    texts: list[str | None] = [None] * len(prompts)
    for batch in _length_batches([len(x) for x in ids], batch_size):
        inputs = _left_pad([ids[i] for i in batch], settings["pad_token_id"], model.device)
        inputs.pop("position_ids")  # generate derives them from the attention mask at every step
        out = model.generate(**inputs, **settings)
        for i, row in zip(batch, out[:, inputs["input_ids"].shape[1]:].tolist()):
            texts[i] = _continuation_text(tokenizer, row, eos)
    return texts, sum(truncated)


def _generate_settings(tokenizer, max_new_tokens: int, generate_kwargs: dict) -> dict:
    settings = dict(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                    eos_token_id=tokenizer.eos_token_id, pad_token_id=_pad_id(tokenizer))
    settings.update(generate_kwargs)
    return settings


def _continuation_text(tokenizer, row: list[int], eos: int | None) -> str:
    # Finished rows are filled with padding after EOS; cut at EOS so text matches batch size 1.
    if eos is not None and eos in row:
        row = row[:row.index(eos)]
    return tokenizer.decode(row, skip_special_tokens=True)


def rouge_l(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """Per-item ROUGE-L F1 (rouge_score, rouge_types=['rougeL'], no stemming), as the release's eval_pred.py."""
    from rouge_score import rouge_scorer

    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return np.array([scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, references)])


# ---------------------------------------------------------------------------------------------------------------
# rank classification (PROTOCOL §4.5; catwalk / OLMo-Eval conventions)


@torch.inference_mode()
def continuation_loglikelihoods(model, tokenizer, pairs: Sequence[tuple[str, str]], batch_size: int = 16,
                                max_length: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Summed log-probability of each continuation given its context, its token count, and whether it was cut."""
    # Context and continuation are tokenised separately (catwalk); an empty context becomes [eos] (catwalk).
    contexts = _token_ids(tokenizer, [p[0] for p in pairs])  # memoised: generation encoded these prompts already
    contexts = [c or [tokenizer.eos_token_id] for c in contexts]
    conts = tokenizer([p[1] for p in pairs], add_special_tokens=False)["input_ids"]
    truncated = np.zeros(len(pairs), dtype=bool)
    for k, (ctx, cont) in enumerate(zip(contexts, conts)):
        if not cont:
            raise ValueError(f"continuation {pairs[k][1]!r} tokenizes to no tokens")
        if max_length is not None and len(ctx) + len(cont) > max_length:
            if len(cont) >= max_length:
                raise ValueError(f"continuation of {len(cont)} tokens does not fit max_length={max_length}")
            contexts[k] = ctx[-(max_length - len(cont)):]
            truncated[k] = True
    _log_truncated(int(truncated.sum()), len(pairs), max_length)
    seqs = [c + x for c, x in zip(contexts, conts)]
    loglik = np.zeros(len(pairs))
    for batch in _length_batches([len(s) for s in seqs], batch_size):
        inputs = _left_pad([seqs[i] for i in batch], _pad_id(tokenizer), model.device)
        loglik[batch] = _continuation_scores(model, inputs, [conts[i] for i in batch])
    return loglik, np.array([len(c) for c in conts]), truncated


def _continuation_scores(model, inputs: dict, conts: Sequence[Sequence[int]], **forward) -> list[float]:
    """Summed log-probability of each row's continuation, which left padding puts at the end of the row."""
    # Only the last (longest continuation + 1) positions count.
    keep = max(len(c) for c in conts) + 1
    logprobs = torch.log_softmax(model(**inputs, logits_to_keep=keep, **forward).logits.float(), dim=-1)
    scores = []
    for row, cont in enumerate(conts):
        predicting = logprobs[row, keep - len(cont) - 1:keep - 1]
        target = torch.tensor(cont, device=predicting.device)
        scores.append(predicting.gather(1, target[:, None]).sum().item())
    return scores


def rank_classify(model, tokenizer, contexts: Sequence[str], choices: Sequence[Sequence[str]], batch_size: int = 16,
                  max_length: int | None = None, uncond_context: str | None = None) -> tuple[list[dict], int]:
    """Per item: log-likelihood of every choice (+ token and char counts, and given `uncond_context` if set).

    Returns (items, n_truncated): one dict per item with arrays `loglik`, `n_tokens`, `n_chars`, `n_bytes` (UTF-8),
    `loglik_uncond` (None without `uncond_context`); n_truncated counts items whose context was cut. `rank_choice`
    picks the answer.
    """
    pairs = _rank_pairs(contexts, choices)
    loglik, n_tokens, truncated = continuation_loglikelihoods(model, tokenizer, pairs, batch_size, max_length)
    return _rank_items(model, tokenizer, choices, loglik, n_tokens, truncated, batch_size, max_length, uncond_context)


def _rank_pairs(contexts: Sequence[str], choices: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    if len(contexts) != len(choices):
        raise ValueError(f"{len(contexts)} contexts for {len(choices)} choice lists")
    return [(ctx, choice) for ctx, options in zip(contexts, choices) for choice in options]


def _rank_items(model, tokenizer, choices, loglik, n_tokens, truncated, batch_size, max_length,
                uncond_context) -> tuple[list[dict], int]:
    """rank_classify's items from its per-pair log-likelihoods, with the unconditional ones if asked."""
    if uncond_context is not None:
        # The unconditional context is the same for every item: score each distinct choice once.
        distinct = sorted({choice for options in choices for choice in options})
        distinct_ll, _, _ = continuation_loglikelihoods(model, tokenizer, [(uncond_context, c) for c in distinct],
                                                        batch_size, max_length)
        uncond = dict(zip(distinct, distinct_ll))
    items, n_truncated, start = [], 0, 0
    for options in choices:
        stop = start + len(options)
        item_uncond = np.array([uncond[c] for c in options]) if uncond_context is not None else None
        items.append({"loglik": loglik[start:stop], "n_tokens": n_tokens[start:stop],
                      "n_chars": np.array([len(c) for c in options]),
                      "n_bytes": np.array([len(c.encode("utf-8")) for c in options]), "loglik_uncond": item_uncond})
        n_truncated += bool(truncated[start:stop].any())
        start = stop
    return items, n_truncated


def rank_scores(item: dict, metric: str) -> np.ndarray:
    """The score of each option that a rank-classification metric (acc_raw, acc_per_token, …, acc_uncond) ranks by:
    log-likelihood in nats, per token, per character, or minus the unconditional log-likelihood."""
    if metric == "acc_raw":
        return item["loglik"]
    if metric == "acc_per_token":
        return item["loglik"] / item["n_tokens"]
    if metric == "acc_per_char":
        return item["loglik"] / item["n_chars"]
    if metric == "acc_uncond":
        if item["loglik_uncond"] is None:
            raise ValueError("acc_uncond needs the unconditional log-likelihoods: pass uncond_context to rank_classify")
        return item["loglik"] - item["loglik_uncond"]
    raise ValueError(f"unknown rank-classification metric {metric!r}; choose from {RANK_METRICS}")


def rank_choice(item: dict, metric: str) -> int:
    """Index of the chosen option under a rank-classification metric (acc_raw, acc_per_token, …, acc_uncond)."""
    return int(np.argmax(rank_scores(item, metric)))  # ties go to the first choice, as torch/catwalk argmax


def choice_readings(items: Sequence[dict], golds: Sequence[int], metric: str) -> dict[str, np.ndarray]:
    """Per item of `rank_classify`: gold_bpb, the gold choice's bits per UTF-8 byte given its context (answer-text
    modelling; lower is better); gold_share, its share of the choices' probabilities as `metric` normalises them
    (exp of `rank_scores`, so the choice with the largest share is the prediction); gold_margin, its score minus
    the best distractor's (> 0: ranked first)."""
    if len(items) != len(golds):
        raise ValueError(f"{len(items)} items for {len(golds)} gold indices")
    out = {name: np.zeros(len(items)) for name in CONTINUOUS["multiple_choice"]}
    for i, (item, gold) in enumerate(zip(items, golds)):
        scores = np.asarray(rank_scores(item, metric), dtype=float)
        if not 0 <= gold < len(scores) or len(scores) < 2:
            raise ValueError(f"item {i}: gold index {gold} of {len(scores)} choices; a multiple-choice item needs "
                             "at least two choices and a gold index among them")
        out["gold_bpb"][i] = -item["loglik"][gold] / (math.log(2) * item["n_bytes"][gold])
        out["gold_share"][i] = math.exp(scores[gold] - _logsumexp(scores))
        out["gold_margin"][i] = scores[gold] - np.delete(scores, gold).max()
    return out


def reference_bpb(model, tokenizer, prompts: Sequence[str], references: Sequence[str], batch_size: int = 16,
                  max_length: int | None = None, prefix: str | None = None) -> np.ndarray:
    """Per item: the reference's bits per UTF-8 byte given its prompt, teacher-forced (the reference follows the
    prompt as in a demo); the prompt keeps its last tokens to fit `max_length` with the reference whole; with
    `prefix`, the shared demos' cache is reused. NaN for an empty reference (nothing to score)."""
    if len(prompts) != len(references):
        raise ValueError(f"{len(prompts)} prompts for {len(references)} references")
    scored = [i for i, ref in enumerate(references) if ref]
    out = np.full(len(references), math.nan)
    if not scored:
        return out
    pairs = [(prompts[i], references[i]) for i in scored]
    if prefix is None:
        loglik = continuation_loglikelihoods(model, tokenizer, pairs, batch_size, max_length)[0]
    else:
        loglik = continuation_loglikelihoods_shared_prefix(model, tokenizer, pairs, batch_size, max_length,
                                                           prefix=prefix)[0]
    n_bytes = np.array([len(references[i].encode("utf-8")) for i in scored])
    out[scored] = -loglik / (math.log(2) * n_bytes)
    return out


# ---------------------------------------------------------------------------------------------------------------
# shared demo prefix: its key/value cache computed once per (set, format, model) and reused for every item


def _prefix_ids(tokenizer, prefix: str, texts: Sequence[str]) -> list[int]:
    """The token ids to cache: the shared prefix's, less its last token; checks that every text starts with it."""
    for k, text in enumerate(texts):
        if not text.startswith(prefix):
            raise ValueError(f"prompt {k} ({text[:60]!r}…) does not start with the shared prefix; pass the demo text "
                             "the prompts were built with (kshot_demos), or use the uncached function")
    # The last token is re-run with each query: the token at the demo/query boundary is the one a BPE merge changes.
    # Every multiple-choice set needs this: its demos end in "\n\n", one token alone but "\n", "\n" before
    # "Question". Deeper merges are caught per item (_prefix_route).
    return tokenizer(prefix, add_special_tokens=True)["input_ids"][:-1]


def _prefix_route(ids: Sequence[Sequence[int]], prefix_ids: Sequence[int],
                  fits: Sequence[bool]) -> tuple[list[int], list[int]]:
    """Indices that reuse the prefix cache, and indices that take the uncached path (over budget, boundary merge)."""
    n_prefix, prefix_ids = len(prefix_ids), list(prefix_ids)
    # At least one token after the prefix: the prediction is read from the query's last position, never the cache's.
    shares = [len(x) > n_prefix and list(x[:n_prefix]) == prefix_ids for x in ids]
    cached = [i for i in range(len(ids)) if fits[i] and shares[i]]
    fallback = [i for i in range(len(ids)) if not (fits[i] and shares[i])]
    if fallback:
        n_over = sum(not f for f in fits)
        log.info("%d of %d prompts took the uncached path: %d over the token budget, %d whose tokens do not start "
                 "with the cached demo tokens (a BPE merge across the demo/query boundary)",
                 len(fallback), len(ids), n_over, len(fallback) - n_over)
    return cached, fallback


def _fill_uncached(out: list, fallback: list[int], prompts: Sequence[str], run) -> int:
    """Put `run`'s outputs for the fallback prompts (the uncached path) in their places; returns its n_truncated."""
    if not fallback:
        return 0
    outputs, n_truncated = run([prompts[i] for i in fallback])
    for i, value in zip(fallback, outputs):
        out[i] = value
    return n_truncated


def _prefix_cache(model, prefix_ids: Sequence[int]):
    """Key/value cache (transformers DynamicCache) of the prefix, computed once at batch size 1."""
    from transformers import DynamicCache

    prefix = torch.tensor([list(prefix_ids)], device=model.device)
    # transformers >= 5.24 names the key/value cache `cache` (input and output); `past_key_values` is deprecated.
    cache = model(input_ids=prefix, use_cache=True, logits_to_keep=1).cache
    if not isinstance(cache, DynamicCache) or any(cache.is_sliding):
        raise ValueError(f"shared-prefix evaluation needs a full-attention DynamicCache, the model returned "
                         f"{type(cache).__name__}; evaluate this model with the uncached functions")
    return cache


def _expand_cache(cache, batch: int):
    """A fresh cache holding the prefix for each of `batch` rows; the batch-1 original is never modified."""
    from transformers import DynamicCache

    # Memory: batch × prefix length × layers × 2 (keys, values) × hidden values, materialised here (and one layer's
    # worth more while that layer appends the query). OLMo-1B in bf16 at batch 32: a 200-token 4-shot MNLI prefix
    # is 32·200·16·2·2048·2 B ≈ 0.8 GB, a 943-token LLMBar-Natural one ≈ 4 GB; lower eval_batch_size if it runs out.
    return DynamicCache([(layer.keys.expand(batch, -1, -1, -1), layer.values.expand(batch, -1, -1, -1))
                         for layer in cache.layers])


def _after_prefix(queries: Sequence[Sequence[int]], prefix_len: int, pad_id: int, device) -> dict[str, torch.Tensor]:
    """Query tokens left-padded BETWEEN the cached prefix and the query: mask over prefix + query, query positions."""
    inputs = _left_pad(queries, pad_id, device)
    prefix_mask = torch.ones((len(queries), prefix_len), dtype=torch.long, device=device)
    mask = torch.cat([prefix_mask, inputs["attention_mask"]], dim=1)
    # Real query tokens get positions prefix_len, prefix_len + 1, …: those of the unpadded prompt at batch size 1.
    inputs["position_ids"] = (mask.cumsum(-1) - 1)[:, prefix_len:]
    inputs["attention_mask"] = mask
    return inputs


@torch.inference_mode()
def classify_shared_prefix(model, tokenizer, prompts: Sequence[str], force_words: Sequence[str], batch_size: int = 16,
                           max_length: int | None = None, *, prefix: str) -> tuple[list[str], int, int]:
    """`classify` with the shared prefix's key/value cache; returns (words, n_truncated, n_prefix_fallback)."""
    words, n_truncated, n_fallback, _ = label_logprobs_shared_prefix(model, tokenizer, prompts, force_words,
                                                                     batch_size, max_length, prefix=prefix)
    return words, n_truncated, n_fallback


@torch.inference_mode()
def label_logprobs_shared_prefix(model, tokenizer, prompts: Sequence[str], force_words: Sequence[str],
                                 batch_size: int = 16, max_length: int | None = None, *,
                                 prefix: str) -> tuple[list[str], int, int, np.ndarray]:
    """`label_logprobs` with the shared prefix's key/value cache; returns (words, n_truncated, n_prefix_fallback,
    log-probabilities at the candidate tokens)."""
    prefix_ids = _prefix_ids(tokenizer, prefix, prompts)
    if not prefix_ids:  # zero-shot (or a one-token prefix): nothing to share
        words, n_truncated, logprobs = label_logprobs(model, tokenizer, prompts, force_words, batch_size, max_length)
        return words, n_truncated, 0, logprobs
    ids, over = _encode(tokenizer, prompts, max_length)
    _check_nonempty(ids, prompts)
    cached, fallback = _prefix_route(ids, prefix_ids, [not cut for cut in over])
    cand_ids, owner = candidate_token_ids(tokenizer, force_words)
    scored: list[tuple[str, np.ndarray] | None] = [None] * len(prompts)  # (word, candidate log-probabilities)

    def uncached(some):
        words, n_truncated, logprobs = label_logprobs(model, tokenizer, some, force_words, batch_size, max_length)
        return list(zip(words, logprobs)), n_truncated

    n_truncated = _fill_uncached(scored, fallback, prompts, uncached)
    if cached:
        cand = torch.tensor(cand_ids, device=model.device)
        cache, n_prefix = _prefix_cache(model, prefix_ids), len(prefix_ids)
        for batch in _length_batches([len(ids[i]) for i in cached], batch_size):
            rows = [cached[b] for b in batch]
            inputs = _after_prefix([ids[i][n_prefix:] for i in rows], n_prefix, _pad_id(tokenizer), model.device)
            logits = model(**inputs, cache=_expand_cache(cache, len(rows)), logits_to_keep=1).logits[:, -1]
            for i, word, row in zip(rows, *_force_words(logits, cand, owner, force_words)):
                scored[i] = (word, row)
    logprobs = np.vstack([row for _, row in scored]) if scored else np.zeros((0, len(cand_ids)))
    return [word for word, _ in scored], n_truncated, len(fallback), logprobs


@torch.inference_mode()
def generate_shared_prefix(model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 60, batch_size: int = 16,
                           max_length: int | None = None, *, prefix: str,
                           **generate_kwargs) -> tuple[list[str], int, int]:
    """`generate` continuing from the shared prefix's cache; returns (texts, n_truncated, n_prefix_fallback)."""
    prefix_ids = _prefix_ids(tokenizer, prefix, prompts)
    if not prefix_ids:
        return (*generate(model, tokenizer, prompts, max_new_tokens, batch_size, max_length, **generate_kwargs), 0)
    ids, over = _encode(tokenizer, prompts, None if max_length is None else max_length - max_new_tokens)
    _check_nonempty(ids, prompts)
    cached, fallback = _prefix_route(ids, prefix_ids, [not cut for cut in over])
    texts: list[str | None] = [None] * len(prompts)
    n_truncated = _fill_uncached(texts, fallback, prompts, lambda some: generate(
        model, tokenizer, some, max_new_tokens, batch_size, max_length, **generate_kwargs))
    if cached:
        settings = _generate_settings(tokenizer, max_new_tokens, generate_kwargs)
        cache, n_prefix = _prefix_cache(model, prefix_ids), len(prefix_ids)
        prefix_row = torch.tensor([list(prefix_ids)], device=model.device)
        for batch in _length_batches([len(ids[i]) for i in cached], batch_size):
            rows = [cached[b] for b in batch]
            inputs = _after_prefix([ids[i][n_prefix:] for i in rows], n_prefix, settings["pad_token_id"],
                                   model.device)
            inputs.pop("position_ids")  # generate derives them from the mask: cumsum − 1, the same positions
            # The full sequence, with a cache holding its first n_prefix tokens and a mask over all of it: generate
            # feeds the model only the rest (the "restarting from previous cache" case of transformers 5's prefill).
            input_ids = torch.cat([prefix_row.expand(len(rows), -1), inputs["input_ids"]], dim=1)
            out = model.generate(input_ids=input_ids, attention_mask=inputs["attention_mask"],
                                 cache=_expand_cache(cache, len(rows)), **settings)
            for i, row in zip(rows, out[:, input_ids.shape[1]:].tolist()):
                texts[i] = _continuation_text(tokenizer, row, settings["eos_token_id"])
    return texts, n_truncated, len(fallback)


@torch.inference_mode()
def continuation_loglikelihoods_shared_prefix(model, tokenizer, pairs: Sequence[tuple[str, str]], batch_size: int = 16,
                                              max_length: int | None = None, *,
                                              prefix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`continuation_loglikelihoods` with the shared prefix cached, plus which pairs took the uncached path."""
    prefix_ids = _prefix_ids(tokenizer, prefix, [p[0] for p in pairs])
    if not prefix_ids:
        return (*continuation_loglikelihoods(model, tokenizer, pairs, batch_size, max_length),
                np.zeros(len(pairs), dtype=bool))
    contexts = _token_ids(tokenizer, [p[0] for p in pairs])
    conts = tokenizer([p[1] for p in pairs], add_special_tokens=False)["input_ids"]
    for pair, cont in zip(pairs, conts):
        if not cont:
            raise ValueError(f"continuation {pair[1]!r} tokenizes to no tokens")
    fits = [max_length is None or len(ctx) + len(cont) <= max_length for ctx, cont in zip(contexts, conts)]
    cached, fallback = _prefix_route(contexts, prefix_ids, fits)
    loglik, truncated = np.zeros(len(pairs)), np.zeros(len(pairs), dtype=bool)
    if fallback:
        loglik[fallback], _, truncated[fallback] = continuation_loglikelihoods(
            model, tokenizer, [pairs[i] for i in fallback], batch_size, max_length)
    if cached:
        cache, n_prefix = _prefix_cache(model, prefix_ids), len(prefix_ids)
        for batch in _length_batches([len(contexts[i]) + len(conts[i]) for i in cached], batch_size):
            rows = [cached[b] for b in batch]
            inputs = _after_prefix([contexts[i][n_prefix:] + conts[i] for i in rows], n_prefix, _pad_id(tokenizer),
                                   model.device)
            loglik[rows] = _continuation_scores(model, inputs, [conts[i] for i in rows],
                                                cache=_expand_cache(cache, len(rows)))
    fallback_mask = np.zeros(len(pairs), dtype=bool)
    fallback_mask[fallback] = True
    return loglik, np.array([len(c) for c in conts]), truncated, fallback_mask


def rank_classify_shared_prefix(model, tokenizer, contexts: Sequence[str], choices: Sequence[Sequence[str]],
                                batch_size: int = 16, max_length: int | None = None, uncond_context: str | None = None,
                                *, prefix: str) -> tuple[list[dict], int, int]:
    """`rank_classify` with the shared prefix cached; returns (items, n_truncated, n_prefix_fallback items)."""
    pairs = _rank_pairs(contexts, choices)
    loglik, n_tokens, truncated, fallback = continuation_loglikelihoods_shared_prefix(
        model, tokenizer, pairs, batch_size, max_length, prefix=prefix)
    # The unconditional context ("Answer:") carries no demos, so _rank_items scores it uncached.
    items, n_truncated = _rank_items(model, tokenizer, choices, loglik, n_tokens, truncated, batch_size, max_length,
                                     uncond_context)
    bounds = np.cumsum([0] + [len(options) for options in choices])
    n_fallback = sum(bool(fallback[start:stop].any()) for start, stop in zip(bounds[:-1], bounds[1:]))
    return items, n_truncated, n_fallback




# ---------------------------------------------------------------------------------------------------------------
# one evaluation set


def evaluate_examples(model, tokenizer, dataset, examples: Sequence[dict], fmt: str, shots: int, *, batch_size: int,
                      max_length: int, max_new_tokens: int = 60, gold_leak: bool = False,
                      exact_match: bool = True, generate_fn=None, shared_prefix: bool = False,
                      continuous: bool = True) -> EvalOutput:
    """Score `model` on `examples` of `dataset` in format `fmt` with `shots` demos, by the dataset's kind and metric.

    gold_leak=True replicates the release's LLMBar prompt, which contains the gold answer (PROTOCOL §4.5);
    exact_match=False scores LLMBar ignoring the space before "1"/"2" (a named deviation; the release: True).
    generate_fn(prompts, max_new_tokens, max_length) -> (texts, n_truncated) replaces `generate` (e.g. vLLM).
    shared_prefix=True computes the demos' key/value cache once and reuses it for every item (same predictions;
    `generate_fn`, e.g. vLLM with its own prefix caching, is called unchanged).
    continuous=True also records the kind's continuous readings (`CONTINUOUS`) per item; generation then runs one
    teacher-forced pass over the references with `model` (timed in `continuous_seconds`).
    """
    if dataset.kind not in ("classification", "generation", "multiple_choice"):
        raise ValueError(f"{dataset.name!r} is a {dataset.kind!r} set; only classification, generation and "
                         "multiple_choice sets are evaluated")
    render = functools.partial(tasks.render, gold_leak=gold_leak) if gold_leak else tasks.render
    prompts = kshot_prompts(dataset, examples, fmt, shots, render=render)
    prefix = kshot_demos(dataset, examples, fmt, shots) if shared_prefix else None
    n_fallback, readings, extra_seconds = 0, {}, 0.0
    if dataset.kind == "classification":
        if dataset.metric != "accuracy" or not dataset.force_words:
            raise ValueError(f"{dataset.name!r}: classification needs metric 'accuracy' and force words, "
                             f"got metric {dataset.metric!r} and force words {dataset.force_words!r}")
        if prefix is None:
            predictions, n_truncated, logprobs = label_logprobs(model, tokenizer, prompts, dataset.force_words,
                                                                batch_size, max_length)
        else:
            predictions, n_truncated, n_fallback, logprobs = label_logprobs_shared_prefix(
                model, tokenizer, prompts, dataset.force_words, batch_size, max_length, prefix=prefix)
        references = [ex["target"] for ex in examples]
        scores = accuracy(predictions, references, dataset.strip_order, exact_match)
        if continuous:
            owner = candidate_token_ids(tokenizer, dataset.force_words)[1]
            readings = label_readings(logprobs, owner, dataset.force_words, references, dataset.strip_order,
                                      exact_match)
    elif dataset.kind == "generation":
        if dataset.metric != "rougeL":
            raise ValueError(f"{dataset.name!r}: generation is scored with 'rougeL', got {dataset.metric!r}")
        if generate_fn is not None:
            predictions, n_truncated = generate_fn(prompts, max_new_tokens, max_length)
        elif prefix is None:
            predictions, n_truncated = generate(model, tokenizer, prompts, max_new_tokens, batch_size, max_length)
        else:
            predictions, n_truncated, n_fallback = generate_shared_prefix(
                model, tokenizer, prompts, max_new_tokens, batch_size, max_length, prefix=prefix)
        references = [ex["target"] for ex in examples]
        scores = rouge_l(predictions, references)
        if continuous:
            start = time.perf_counter()
            readings = {"gold_bpb": reference_bpb(model, tokenizer, prompts, references, batch_size, max_length,
                                                  prefix)}
            extra_seconds = time.perf_counter() - start
    else:
        if dataset.metric not in RANK_METRICS:
            raise ValueError(f"{dataset.name!r}: multiple choice needs a metric in {RANK_METRICS}, "
                             f"got {dataset.metric!r}")
        uncond = dataset.target.uncond_context if dataset.metric == "acc_uncond" else None
        choices = [ex["choices"] for ex in examples]
        if prefix is None:
            items, n_truncated = rank_classify(model, tokenizer, prompts, choices, batch_size, max_length,
                                               uncond_context=uncond)
        else:
            items, n_truncated, n_fallback = rank_classify_shared_prefix(
                model, tokenizer, prompts, choices, batch_size, max_length, uncond_context=uncond, prefix=prefix)
        chosen = [rank_choice(item, dataset.metric) for item in items]
        predictions = [str(c) for c in chosen]
        references = [str(ex["gold"]) for ex in examples]
        scores = np.array([float(c == ex["gold"]) for c, ex in zip(chosen, examples)])
        if continuous:
            readings = choice_readings(items, [ex["gold"] for ex in examples], dataset.metric)
    return EvalOutput(scores, predictions, references, n_truncated, n_fallback, readings, extra_seconds)
