"""Shared-prefix (key/value cache) evaluation vs the uncached path, side by side, per evaluation kind and model.

Prints, for each model and kind, uncached and cached wall-clock seconds (the fastest of --repeats alternating calls),
the ratio cached / uncached of wall time and of this process's CPU time (steadier on a shared machine), how many
items took the uncached path (`n_prefix_fallback`) and whether the outputs are equal (classification and
generation: identical text; rank classification: log-likelihoods within 1e-4 and the same choice under every
metric). Not a test.

Models (random init, float32, CPU; matrices scaled ×8 so that greedy generation is not one repeated token):
  tiny      the tiny OLMo shape: hidden 64, 2 layers, 2 heads, MLP 256, vocab 50,304
  1b-width  OLMo-1B width: hidden 2048, 16 heads, MLP 8192, vocab 50,304, but 2 layers (not 16)
Prompts: 4-shot, the paper's rule (demos = the set's first 4 items), default format, real shipped data:
  (default item counts 16 / 12 / 8 / 5, modest so a run takes minutes on 2 quiet cores)
  classification       MNLI matched (first --n-cls items, ~230-300 tokens, 201 of them the demos)
  rank classification  ARC-Easy (first --n-rank items x 4 choices, acc_uncond, so the 'Answer:' scoring too)
  generation           XSum (first --n-xsum items; 4-shot prompts are 2,400-4,500 tokens) and SocialIQa question
                       generation (first --n-gen items, ~300 tokens), 60 new tokens each (eos off, min_new_tokens=60)
max_length 2048 as the paper profile. Every 4-shot XSum prompt is over the 2048 - 60 budget (its 4 demos alone are
2,289 tokens), so all take the truncating uncached path; the `XSum, no cap` row (max_length None, as the authors'
release, which never truncates) shows what the cache does at XSum's full length.

    .venv/bin/python benchmarks/bench_prefix.py [--models tiny,1b-width] [--threads 2] [--batch-size 16] [--repeats 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from transformers import OlmoConfig, OlmoForCausalLM

from amuro_utils.data import tasks
from amuro_utils.data.offline import olmo_tokenizer
from amuro_utils.models import evaluate

SHOTS = 4
MAX_LENGTH = 2048
MODELS = {"tiny": dict(hidden_size=64, num_attention_heads=2, intermediate_size=256),
          "1b-width": dict(hidden_size=2048, num_attention_heads=16, intermediate_size=8192)}


def random_olmo(shape: str, seed: int = 0) -> OlmoForCausalLM:
    """A randomly initialised 2-layer OLMo of the given width, float32, matrices ×8 (varied greedy text)."""
    torch.manual_seed(seed)
    config = OlmoConfig(vocab_size=50304, num_hidden_layers=2, max_position_embeddings=8192, pad_token_id=1,
                        eos_token_id=50279, **MODELS[shape])
    model = OlmoForCausalLM(config).eval()
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() == 2:
                weight.mul_(8)
    return model


def kshot(name: str, n: int):
    """(dataset, examples, prompts, shared prefix) of the first n items of a shipped set, 4-shot, default format."""
    dataset = tasks.get(name)
    examples = tasks.load_examples(name, limit=n)
    prompts = evaluate.kshot_prompts(dataset, examples, "default", SHOTS)
    return dataset, examples, prompts, evaluate.kshot_demos(dataset, examples, "default", SHOTS)


def side_by_side(uncached, cached, repeats: int):
    """Both functions' results and their fastest (wall, CPU) seconds over `repeats` alternating calls."""
    outputs, best = [None, None], [(float("inf"),) * 2, (float("inf"),) * 2]
    for _ in range(repeats):
        for k, fn in enumerate((uncached, cached)):
            wall, cpu = time.perf_counter(), time.process_time()
            outputs[k] = fn()
            seconds = (time.perf_counter() - wall, time.process_time() - cpu)
            best[k] = tuple(min(a, b) for a, b in zip(best[k], seconds))
    return outputs[0], best[0], outputs[1], best[1]


def rank_equal(a: list[dict], b: list[dict]) -> bool:
    """Log-likelihoods within 1e-4 and the same choice under every metric."""
    return all(np.allclose(x["loglik"], y["loglik"], atol=1e-4, rtol=0)
               and np.allclose(x["loglik_uncond"], y["loglik_uncond"], atol=1e-4, rtol=0)
               and all(evaluate.rank_choice(x, m) == evaluate.rank_choice(y, m) for m in evaluate.RANK_METRICS)
               for x, y in zip(a, b))


def bench(model, tok, args):
    """Yields rows (kind, items, prompt tokens, prefix tokens, uncached (wall, cpu), cached (wall, cpu), fallback,
    equal), one per kind, as each is measured."""
    bs = args.batch_size

    def lengths(prompts, prefix):
        n = [len(x) for x in tok(prompts)["input_ids"]]
        return f"{min(n)}-{max(n)}", len(tok(prefix)["input_ids"])

    dataset, _, prompts, prefix = kshot("mnli_matched", args.n_cls)
    words = dataset.force_words
    evaluate.classify(model, tok, prompts[:2], words, 2, MAX_LENGTH)  # warm-up
    (plain, _), t_plain, (cached, _, n_fb), t_cached = side_by_side(
        lambda: evaluate.classify(model, tok, prompts, words, bs, MAX_LENGTH),
        lambda: evaluate.classify_shared_prefix(model, tok, prompts, words, bs, MAX_LENGTH, prefix=prefix),
        args.repeats)
    yield ("classification, MNLI", len(prompts), *lengths(prompts, prefix), t_plain, t_cached, n_fb,
           plain == cached)

    dataset, examples, prompts, prefix = kshot("arc_easy", args.n_rank)
    choices, uncond = [ex["choices"] for ex in examples], dataset.target.uncond_context
    (plain, _), t_plain, (cached, _, n_fb), t_cached = side_by_side(
        lambda: evaluate.rank_classify(model, tok, prompts, choices, bs, MAX_LENGTH, uncond),
        lambda: evaluate.rank_classify_shared_prefix(model, tok, prompts, choices, bs, MAX_LENGTH, uncond,
                                                     prefix=prefix), args.repeats)
    yield ("rank classification, ARC-Easy", len(prompts), *lengths(prompts, prefix), t_plain, t_cached, n_fb,
           rank_equal(plain, cached))

    full_60 = dict(eos_token_id=None, min_new_tokens=60)
    generation = [("generation 60 tok, SocialIQa QG", "socialiqa", args.n_gen, MAX_LENGTH),
                  ("generation 60 tok, XSum", "xsum", args.n_xsum, MAX_LENGTH),
                  ("generation 60 tok, XSum, no cap", "xsum", args.n_xsum, None)]
    for label, name, n, max_length in generation:
        _, _, prompts, prefix = kshot(name, n)
        (plain, _), t_plain, (cached, _, n_fb), t_cached = side_by_side(
            lambda: evaluate.generate(model, tok, prompts, 60, bs, max_length, **full_60),
            lambda: evaluate.generate_shared_prefix(model, tok, prompts, 60, bs, max_length, prefix=prefix,
                                                    **full_60), args.repeats)
        equal = plain == cached and len(set(plain)) > 1  # distinct texts: the check is not vacuous
        yield (label, len(prompts), *lengths(prompts, prefix), t_plain, t_cached, n_fb, equal)


def main() -> None:
    """Run every kind on every model and print the side-by-side table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny,1b-width")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--n-cls", type=int, default=16)
    parser.add_argument("--n-rank", type=int, default=12)
    parser.add_argument("--n-gen", type=int, default=8)
    parser.add_argument("--n-xsum", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1, help="alternating timings per kind; the fastest counts")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tok = olmo_tokenizer()
    print(f"threads={args.threads} batch={args.batch_size} repeats={args.repeats} float32 CPU, 4-shot, "
          f"max_length {MAX_LENGTH}; "
          f"ratio = cached / uncached seconds (lower is better), of wall time and of CPU time")
    print(f"{'model':9s} {'kind':32s} {'items':>5s} {'tokens':>9s} {'prefix':>6s} {'uncached':>9s} {'cached':>8s} "
          f"{'ratio':>6s} {'cpu ratio':>9s} {'fallback':>8s}  equal")
    for shape in args.models.split(","):
        model = random_olmo(shape)
        for kind, n, tokens, prefix, plain, cached, n_fb, equal in bench(model, tok, args):
            print(f"{shape:9s} {kind:32s} {n:5d} {tokens:>9s} {prefix:6d} {plain[0]:8.2f}s {cached[0]:7.2f}s "
                  f"{cached[0] / plain[0]:6.2f} {cached[1] / plain[1]:9.2f} {n_fb:8d}  {equal}", flush=True)


if __name__ == "__main__":
    main()
