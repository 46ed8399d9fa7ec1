"""Body size against held-out loss and cost per rung, for the tiny ladder (prints figures, not a test).

    python benchmarks/bench_tiny_ladder.py                          # the tiny profile's recipe at three bodies
    python benchmarks/bench_tiny_ladder.py --bodies 64x2,128x4 --steps 200 --repeats 3 --olmo

For each body (hidden × layers; one head per 32 hidden, MLP 4 × hidden) with the profile's own tokenizer and
pre-training recipe (`--steps` overrides its length), a ladder is pre-trained in a temporary folder (its `main`
checkpoint only) and timed. Then, on that checkpoint, one rung's work of the study is timed, `--repeats` times with
the bodies interleaved (so that a busy machine slows every body alike; the median and the range are printed):
- fine-tuning: every fine-tuning run of the profile (4 tasks + instruction tuning), timed for one and for two
  epochs on its first 32 real training examples; the difference (one epoch) is scaled to n_train × epochs and the
  rest (set-up) added once;
- evaluation, by kind: every (set, format) a rung's base, fine-tuned and instruction-tuned models are scored on, at
  the profile's eval_limit, all run on the base model (classification, generation, rank classification).
`--olmo` adds today's ladder for comparison: the 64 × 2 body over OLMo-1B's tokenizer (50,304-row embedding) at
random weights; its per-rung costs only (it is not pre-trained here).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("AMURO_RESULTS_DIR", tempfile.mkdtemp(prefix="bench_tiny_ladder_"))
N_TRAIN_SAMPLE = 32  # training examples timed per fine-tuning run (one epoch)


def body(settings, spec: str):
    """`settings` with the body "HIDDENxLAYERS"."""
    hidden, layers = (int(x) for x in spec.lower().split("x"))
    return replace(settings, hidden_size=hidden, num_layers=layers, num_heads=max(1, hidden // 32),
                   intermediate_size=4 * hidden)


def rung_work(profile):
    """(fine-tuning runs, (eval_set, format) pairs) of one rung: its base, fine-tuned and instruction-tuned models."""
    from amuro_utils.study import plan

    jobs = [j for j in plan.jobs(profile) if j.ckpt == profile.ckpts[-1]]
    runs = [spec for j in jobs for spec in j.fine_tunes]
    evals = [pair for j in jobs for _ in (j.fine_tunes or (None,)) for pair in j.evals]
    return runs, evals


def time_rung(profile, model, tokenizer, runs, evals, examples) -> dict:
    """(wall, CPU) seconds of one rung's fine-tuning (scaled from N_TRAIN_SAMPLE examples) and evaluation, by kind."""
    from amuro_utils import pipeline
    from amuro_utils.data import tasks
    from amuro_utils.models import evaluate, train

    out = {k: [0.0, 0.0] for k in ("fine-tuning", "classification", "generation", "multiple_choice")}
    for spec in runs:
        sample = pipeline.train_examples(profile, spec)[:N_TRAIN_SAMPLE]
        took = {}
        for epochs in (1, 2):  # the difference is one epoch's steps; the rest is the run's fixed set-up
            tuned = copy.deepcopy(model).float()
            wall, cpu = time.perf_counter(), time.process_time()
            train.fine_tune(tuned, tokenizer, sample, replace(spec.train, epochs=epochs), kind=spec.kind,
                            progress=False, device="cpu")
            took[epochs] = (time.perf_counter() - wall, time.process_time() - cpu)
        epochs = spec.n_train * spec.train.epochs / len(sample)  # sample-epochs of the real run
        for i in (0, 1):
            per_epoch = max(took[2][i] - took[1][i], 0.0)
            out["fine-tuning"][i] += took[1][i] - per_epoch + per_epoch * epochs
    model.eval()
    for eval_set, fmt in evals:
        dataset = tasks.get(eval_set)
        wall, cpu = time.perf_counter(), time.process_time()
        evaluate.evaluate_examples(model, tokenizer, dataset, examples[eval_set], fmt, profile.shots,
                                   batch_size=profile.eval_batch_size, max_length=profile.max_length,
                                   max_new_tokens=profile.max_new_tokens, gold_leak=profile.llmbar_gold_leak,
                                   shared_prefix=profile.shared_prefix)
        kind = dataset.kind if dataset.kind in out else "multiple_choice"
        out[kind][0] += time.perf_counter() - wall
        out[kind][1] += time.process_time() - cpu
    out["evaluation"] = [sum(out[k][i] for k in ("classification", "generation", "multiple_choice")) for i in (0, 1)]
    out["rung"] = [out["fine-tuning"][i] + out["evaluation"][i] for i in (0, 1)]
    return out


def olmo_model(settings):
    """Today's ladder for comparison: the body over OLMo-1B's tokenizer, random weights."""
    import torch
    from transformers import OlmoConfig, OlmoForCausalLM

    from amuro_utils.data.offline import olmo_tokenizer

    torch.manual_seed(settings.seed)
    config = OlmoConfig(vocab_size=50304, hidden_size=settings.hidden_size, num_hidden_layers=settings.num_layers,
                        num_attention_heads=settings.num_heads, intermediate_size=settings.intermediate_size,
                        max_position_embeddings=settings.max_position_embeddings, tie_word_embeddings=True,
                        pad_token_id=1, eos_token_id=50279)
    return OlmoForCausalLM(config).eval(), olmo_tokenizer()


def main() -> None:
    """Pre-train each body, time one rung's work on it (interleaved repeats) and print the trade-off table."""
    import torch

    from amuro_utils.config.profiles import get_profile
    from amuro_utils.data import tasks
    from amuro_utils.models import ladder
    from amuro_utils.models.tiny_ladder import build_tiny_ladder, tiny_settings

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--bodies", default="64x2,96x2,128x2", help="comma-separated HIDDENxLAYERS")
    parser.add_argument("--steps", type=int, default=None, help="pre-training steps (default: the profile's)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--olmo", action="store_true", help="add today's OLMo-tokenizer ladder (per-rung costs)")
    parser.add_argument("--eval-batch-sizes", default=None,
                        help="comma-separated evaluation batch sizes to time (default: the profile's)")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    profile = get_profile(args.profile)
    base = tiny_settings(profile)
    if args.steps:
        base = replace(base, total_steps=args.steps, save_steps=(args.steps,),
                       eval_every=max(1, args.steps // 4), warmup_steps=min(base.warmup_steps, args.steps // 2))
    else:
        base = replace(base, save_steps=(base.total_steps,))
    runs, evals = rung_work(profile)
    examples = {s: tasks.load_examples(s, source=profile.data_source, limit=profile.eval_limit)
                for s in dict.fromkeys(s for s, _ in evals)}

    rows, models = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.bodies.split(","):
            settings = body(base, spec)
            built = build_tiny_ladder(settings, out_dir=Path(tmp) / spec, progress=False)
            model, tokenizer, _ = ladder.load("tiny-olmo", "main", device="cpu", dtype="float32",
                                              cache_dir=Path(tmp) / spec / "hub_cache")
            tokens = settings.total_steps * settings.batch_size * settings.seq_len
            rows[spec] = {"params": built["params"], "embedding": built["embedding_params"],
                          "vocab": built["vocab_size"], "pretrain_s": built["wall_s"],
                          "tokens_per_s": tokens / built["wall_s"], "heldout": built["final_heldout_loss"],
                          "unigram": built["unigram_entropy"], "tokens": tokens}
            models[spec] = (model, tokenizer)
        if args.olmo:
            model, tokenizer = olmo_model(body(base, "64x2"))
            embedding = model.get_input_embeddings().weight.numel()
            rows["olmo 64x2"] = {"params": sum(p.numel() for p in model.parameters()), "embedding": embedding,
                                 "vocab": len(tokenizer)}
            models["olmo 64x2"] = (model, tokenizer)
        batch_sizes = [int(b) for b in args.eval_batch_sizes.split(",")] if args.eval_batch_sizes else [
            profile.eval_batch_size]
        times = {(name, bs): [] for name in models for bs in batch_sizes}
        for _ in range(args.repeats):
            for (name, bs), log in times.items():
                model, tokenizer = models[name]
                log.append(time_rung(replace(profile, eval_batch_size=bs), model, tokenizer, runs, evals, examples))

    print(f"profile {profile.name}: {len(runs)} fine-tuning runs and {len(evals)} evaluations per rung; "
          f"{args.threads} torch thread(s) on {os.cpu_count()} CPU cores, {args.repeats} interleaved repeat(s): "
          f"median [min–max] wall s (median CPU s); load average {os.getloadavg()[0]:.1f} at the end")
    keys = ("fine-tuning", "classification", "generation", "multiple_choice", "evaluation", "rung")
    print("| body (hidden × layers) | vocabulary | parameters (embedding, body) | pre-training wall s, tokens/s | "
          "held-out loss after N tokens (unigram entropy) | eval batch | " + " | ".join(f"{k} s/rung" for k in keys)
          + " |")
    print("|" + "---|" * (6 + len(keys)))
    for (name, bs), log in times.items():
        row = rows[name]
        cells = []
        for k in keys:
            walls, cpus = [t[k][0] for t in log], [t[k][1] for t in log]
            spread = f" [{min(walls):.1f}–{max(walls):.1f}]" if len(walls) > 1 else ""
            cells.append(f"{statistics.median(walls):.1f}{spread} ({statistics.median(cpus):.1f})")
        pretrain = (f"{row['pretrain_s']:.0f} s, {row['tokens_per_s']:,.0f}" if "tokens_per_s" in row else "—")
        heldout = (f"{row['heldout']:.3f} after {row['tokens']:,} ({row['unigram']:.3f})" if "heldout" in row
                   else "— (not pre-trained)")
        print(f"| {name} | {row['vocab']:,} | {row['params'] / 1e6:.2f}M ({row['embedding'] / 1e6:.2f}M, "
              f"{(row['params'] - row['embedding']) / 1e6:.2f}M) | {pretrain} | {heldout} | {bs} | "
              + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
