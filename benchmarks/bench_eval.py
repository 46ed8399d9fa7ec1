"""Evaluation throughput, batched vs batch size 1, on a tiny OLMo (h64, 2 layers, vocab 50,304) and real prompts.

Prints figures (not a test): 60-token greedy generation (eos disabled, min_new_tokens=60, so every sequence
really generates 60 tokens) and next-token classification, each at batch size 1 and batched, as seq/s and the
speed-up ratio. Also checks that batched outputs equal batch-size-1 outputs.

`--continuous` instead measures what the continuous readings add to evaluation: each real set scored as the
pipeline scores it (evaluate_examples, the profile's shots, batch size, context and shared prefix) without and with
the readings, side by side, alternating, `--repeats` times; it prints per set the seconds of each and their ratio,
and for generation the teacher-forced pass's share of the scoring. The model is the random h64 OLMo above, or with
`--ladder` a rung of the tiny profile's own ladder (built by ./run_all.sh), its tokenizer and its item limit.

    .venv/bin/python benchmarks/bench_eval.py [--threads 2] [--batch-size 16] [--n-gen 32] [--n-cls 64]
    .venv/bin/python benchmarks/bench_eval.py --continuous [--ladder main] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from transformers import OlmoConfig, OlmoForCausalLM

from amuro_utils.config.paths import DATA_DIR
from amuro_utils.data.offline import olmo_tokenizer
from amuro_utils.models import evaluate

NLI_WORDS = ("entailment", "neutral", "contradiction", " entailment", " neutral", " contradiction")


def tiny_model(seed: int = 0) -> OlmoForCausalLM:
    """The MEASURED.md h64/l2 tiny OLMo, randomly initialised."""
    torch.manual_seed(seed)
    config = OlmoConfig(vocab_size=50304, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=256, max_position_embeddings=2048)
    return OlmoForCausalLM(config).eval()


def real_prompts(n_gen: int, n_cls: int) -> tuple[list[str], list[str]]:
    """XSum summary prompts (~100-400 tokens, varied lengths) and MNLI inference prompts, in the default template."""
    xsum = [json.loads(line) for line in (DATA_DIR / "xsum" / "test.jsonl").open()][:n_gen]
    mnli = [json.loads(line) for line in (DATA_DIR / "mnli" / "validation_matched.jsonl").open()][:n_cls]
    gen = [f"### Input: {row['document'][:1500]}\n ### Summary: " for row in xsum]
    cls = [f"### Input_1: {row['premise']}\n ### Input_2: {row['hypothesis']}\n ### Inference: " for row in mnli]
    return gen, cls


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


CONTINUOUS_SETS = ("xsum", "socialiqa", "mnli_matched", "qqp_glue", "arc_easy", "hellaswag")


def continuous_cost(ladder_rung: str | None, repeats: int) -> None:
    """Seconds of evaluate_examples without and with the continuous readings, per set, side by side."""
    import statistics

    from amuro_utils import pipeline
    from amuro_utils.config.profiles import get_profile
    from amuro_utils.data import tasks
    from amuro_utils.study import jobs

    profile = get_profile("tiny")
    if ladder_rung is None:
        model, tokenizer, what = tiny_model(), olmo_tokenizer(), "random h64 OLMo, OLMo tokenizer"
    else:
        loaded = jobs.load_base(profile, pipeline.checkpoints(profile, ladder_rung)[0])
        model, tokenizer, what = loaded.model, loaded.tokenizer, f"tiny ladder {ladder_rung}"
    print(f"{what}; {profile.shots}-shot, {profile.eval_limit} items, batch {profile.eval_batch_size}, shared prefix "
          f"{profile.shared_prefix}, {repeats} alternating repeats (medians), {torch.get_num_threads()} threads")
    settings = dict(batch_size=profile.eval_batch_size, max_length=profile.max_length,
                    max_new_tokens=profile.max_new_tokens, shared_prefix=profile.shared_prefix)
    print(f"{'set':<14}{'kind':<17}{'without s':>10}{'with s':>9}{'wall ratio':>11}{'CPU ratio':>10}"
          f"{'extra pass':>12}")
    by_kind: dict[str, list[float]] = {}
    for name in CONTINUOUS_SETS:
        dataset = tasks.get(name)
        examples = tasks.load_examples(name, limit=profile.eval_limit)
        evaluate.evaluate_examples(model, tokenizer, dataset, examples[:6], "default", profile.shots,
                                   **settings)  # warm-up: encodings, kernels
        runs = {False: [], True: []}  # continuous -> [(wall, cpu, extra wall)]
        for _ in range(repeats):
            for continuous in (False, True):
                wall, cpu = time.perf_counter(), time.process_time()
                out = evaluate.evaluate_examples(model, tokenizer, dataset, examples, "default", profile.shots,
                                                 continuous=continuous, **settings)
                runs[continuous].append((time.perf_counter() - wall, time.process_time() - cpu,
                                         out.continuous_seconds))
        without, with_ = ([statistics.median(r[i] for r in runs[c]) for i in range(3)] for c in (False, True))
        by_kind.setdefault(dataset.kind, []).append(with_[1] / without[1])
        # the teacher-forced pass against the scoring it adds to, inside the same calls (robust to a busy machine)
        share = statistics.median(r[2] / (r[0] - r[2]) for r in runs[True])
        print(f"{name:<14}{dataset.kind:<17}{without[0]:>10.3f}{with_[0]:>9.3f}{with_[0] / without[0]:>11.3f}"
              f"{with_[1] / without[1]:>10.3f}{share:>12.3f}")
    print("CPU-time ratio with/without, per kind: "
          + ", ".join(f"{k} {min(v):.3f}-{max(v):.3f}" for k, v in by_kind.items())
          + "; extra pass: the teacher-forced seconds over the scoring's own in the same call (generation)")


def main() -> None:
    """Run both benchmarks and print seq/s and ratios (or, with --continuous, the readings' extra cost)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--n-gen", type=int, default=32)
    parser.add_argument("--n-cls", type=int, default=64)
    parser.add_argument("--continuous", action="store_true", help="the continuous readings' extra cost per set")
    parser.add_argument("--ladder", metavar="RUNG", help="with --continuous: a rung of the built tiny ladder")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.continuous:
        continuous_cost(args.ladder, args.repeats)
        return
    model, tokenizer = tiny_model(), olmo_tokenizer()
    gen_prompts, cls_prompts = real_prompts(args.n_gen, args.n_cls)
    lengths = [len(x) for x in tokenizer(gen_prompts)["input_ids"]]
    print(f"threads={args.threads} batch={args.batch_size}; generation prompts: {len(gen_prompts)} "
          f"({min(lengths)}-{max(lengths)} tokens); classification prompts: {len(cls_prompts)}")

    full_60 = dict(eos_token_id=None, min_new_tokens=60)
    evaluate.generate(model, tokenizer, gen_prompts[:2], max_new_tokens=4, batch_size=2)  # warm-up
    one, t_one = timed(lambda: evaluate.generate(model, tokenizer, gen_prompts, 60, 1, **full_60)[0])
    many, t_many = timed(lambda: evaluate.generate(model, tokenizer, gen_prompts, 60, args.batch_size, **full_60)[0])
    print(f"generate 60 tokens: bs1 {len(gen_prompts) / t_one:.2f} seq/s, bs{args.batch_size} "
          f"{len(gen_prompts) / t_many:.2f} seq/s, ratio {t_one / t_many:.2f}x, identical text: {one == many}")

    one, t_one = timed(lambda: evaluate.classify(model, tokenizer, cls_prompts, NLI_WORDS, 1)[0])
    many, t_many = timed(lambda: evaluate.classify(model, tokenizer, cls_prompts, NLI_WORDS, args.batch_size)[0])
    print(f"classify: bs1 {len(cls_prompts) / t_one:.1f} prompts/s, bs{args.batch_size} "
          f"{len(cls_prompts) / t_many:.1f} prompts/s, ratio {t_one / t_many:.2f}x, "
          f"identical predictions: {one == many}")


if __name__ == "__main__":
    main()
