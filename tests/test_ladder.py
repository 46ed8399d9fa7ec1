"""Checkpoint ladders: branch resolution, safe loading through an HF cache, the tiny self-pre-trained ladder."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from conftest import OLMO_HF_REPO, tiny_olmo
from safetensors.torch import load_file, save_file

from amuro_utils.config.profiles import PAPER, PROFILES, TINY, TinyLadderSettings, tiny_rungs
from amuro_utils.data import tasks
from amuro_utils.data.offline import olmo_tokenizer
from amuro_utils.models import ladder
from amuro_utils.models.ladder import (
    CheckpointMismatchError,
    CorruptCheckpointError,
    LadderError,
    check_safetensors,
    load,
    resolve,
    write_hub_revision,
)
from amuro_utils.models.tiny_ladder import (
    build_tiny_ladder,
    corpus_docs,
    label_word_problems,
    split_corpus,
    tiny_settings,
    train_tokenizer,
    unigram_entropy,
)
from amuro_utils.study import jobs

SMALL = TinyLadderSettings(vocab_size=512, hidden_size=16, num_layers=1, num_heads=1, intermediate_size=32, seq_len=32,
                           batch_size=4, total_steps=6, save_steps=(2, 4, 6), corpus=("drop",),
                           max_docs_per_source=20, heldout_fraction=0.1, heldout_blocks=4, eval_every=3,
                           lr=3e-2, warmup_steps=1)
LOCAL_PROFILES = [p for p in PROFILES.values() if ladder.get_ladder(p.ladder).local]


@pytest.mark.parametrize("name, branch", [
    ("step424000", "step424000-tokens1778B"),
    ("424000", "step424000-tokens1778B"),
    (424000, "step424000-tokens1778B"),
    ("step424000-tokens1778B", "step424000-tokens1778B"),
    ("main", "main"),
    ("step738000", "step738000-tokens3095B"),  # not the final step738020
    ("step738020", "step738020-tokens3094B"),
])
def test_resolve_accepts_every_name_form(offline_olmo_hub, name, branch):
    assert resolve("olmo-1b", name) == branch


def test_paper_ladder_is_the_hf_repo():
    assert ladder.LADDERS[PAPER.ladder].repo == "allenai/OLMo-1B-hf"


def test_checkpoint_is_resolved_once_with_commit_and_step(offline_olmo_hub):
    point = ladder.checkpoint("olmo-1b", "424000")
    assert (point.label, point.branch, point.step) == ("424000", "step424000-tokens1778B", 424000)
    assert point.commit == offline_olmo_hub.commits["step424000-tokens1778B"]
    final = ladder.checkpoint("olmo-1b", "main")
    assert (final.branch, final.step, final.commit) == ("main", 738020, offline_olmo_hub.commits["main"])
    _, _, provenance = load("olmo-1b", point, device="cpu")  # a resolved Checkpoint is loaded without resolving
    assert (provenance["revision"], provenance["commit"], provenance["step"]) == (point.branch, point.commit, 424000)


def test_unknown_ckpt_lists_the_nearest(offline_olmo_hub):
    with pytest.raises(LadderError) as err:
        resolve("olmo-1b", "step18000")
    assert ("Nearest available: step1000-tokens4B, step342000-tokens1434B, step424000-tokens1778B, "
            "step505000-tokens2118B, step592000-tokens2483B.") in str(err.value)
    assert "8 branches from HF cache" in str(err.value)


def test_unknown_ladder_lists_ladders():
    with pytest.raises(LadderError, match=r"unknown ladder 'olmo-7b'; available: \['olmo-1b', 'olmo-1b-0724', "
                                          r"'olmo-2-0425-1b', 'pythia-1.4b', 'pythia-1.4b-deduped', 'pythia-12b', "
                                          r"'pythia-12b-deduped', 'pythia-160m', 'pythia-160m-deduped', 'pythia-1b', "
                                          r"'pythia-1b-deduped', 'pythia-2.8b', 'pythia-2.8b-deduped', 'pythia-410m', "
                                          r"'pythia-410m-deduped', 'pythia-6.9b', 'pythia-6.9b-deduped', 'pythia-70m', "
                                          r"'pythia-70m-deduped', 'tiny-olmo'\]"):
        resolve("olmo-7b", "main")


def test_offline_without_listing_or_cache_says_how_to_fill_it(offline_olmo_hub, tmp_path):
    with pytest.raises(LadderError) as err:
        resolve("olmo-1b", "step424000", cache_dir=tmp_path / "empty")
    message = str(err.value)
    assert "no branches found" in message
    assert "`hf download allenai/OLMo-1B-hf --revision <branch>`" in message
    with pytest.raises(LadderError, match=r"Build it with `python -m amuro_utils.models.tiny_ladder`"):
        resolve("tiny-olmo", "main", cache_dir=tmp_path / "empty")


def test_saved_listing_is_used_before_the_cache(offline_olmo_hub, tmp_path):
    listing = {"repo": OLMO_HF_REPO, "branches": {"step2000-tokens8B": "b" * 40, "main": "c" * 40}}
    (tmp_path / "allenai--OLMo-1B-hf.json").write_text(json.dumps(listing))
    assert resolve("olmo-1b", "2000", listing_dir=tmp_path) == "step2000-tokens8B"  # listed, not cached
    assert resolve("olmo-1b", "1000", listing_dir=tmp_path) == "step1000-tokens4B"  # cached, not listed


def test_online_listing_is_saved_and_a_dead_network_falls_back(monkeypatch, tmp_path):
    import huggingface_hub

    refs = SimpleNamespace(branches=[SimpleNamespace(name="step1000-tokens4B", target_commit="a" * 40),
                                     SimpleNamespace(name="main", target_commit="d" * 40)])
    monkeypatch.setattr(huggingface_hub, "list_repo_refs", lambda repo: refs)
    assert resolve("olmo-1b", "step1000", cache_dir=tmp_path / "cache", listing_dir=tmp_path) == "step1000-tokens4B"
    saved = json.loads((tmp_path / "allenai--OLMo-1B-hf.json").read_text())
    assert saved["branches"] == {"main": "d" * 40, "step1000-tokens4B": "a" * 40}
    assert saved["source"] == "huggingface_hub.list_repo_refs"

    class ConnectError(Exception):  # like httpx's: a dead network that is not an OSError
        pass

    def unreachable(repo):
        raise ConnectError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub, "list_repo_refs", unreachable)
    with pytest.raises(LadderError, match="no branches found"):
        resolve("pythia-1b", "step1000", cache_dir=tmp_path / "cache", listing_dir=tmp_path)


def test_load_through_the_offline_cache(offline_olmo_hub):
    model, tokenizer, provenance = load("olmo-1b", "step424000", device="cpu")
    assert provenance == {"ladder": "olmo-1b", "repo": OLMO_HF_REPO, "ckpt": "step424000",
                          "revision": "step424000-tokens1778B",
                          "commit": offline_olmo_hub.commits["step424000-tokens1778B"], "step": 424000}
    assert load("olmo-1b", "main", device="cpu")[2]["step"] == 738020  # main = the step branch with its commit
    assert type(model).__name__ == "OlmoForCausalLM" and model.dtype == torch.float32 and not model.training
    assert torch.equal(model.model.embed_tokens.weight, tiny_olmo(seed=2).model.embed_tokens.weight)
    assert (tokenizer.eos_token, tokenizer.eos_token_id, tokenizer.pad_token, tokenizer.pad_token_id) == \
        ("<|endoftext|>", 50279, "<|padding|>", 1)
    bf16, _, provenance = load("olmo-1b", "main", device="cpu", dtype="bfloat16")
    assert bf16.dtype == torch.bfloat16
    assert provenance["commit"] == offline_olmo_hub.commits["step738020-tokens3094B"]


def test_paper_path_from_pretrained_runs_offline(offline_olmo_hub):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(OLMO_HF_REPO, revision="step1000-tokens4B")
    assert torch.equal(model.model.embed_tokens.weight, tiny_olmo(seed=0).model.embed_tokens.weight)


def test_write_hub_revision_layout_is_content_addressed(tmp_path):
    model, tokenizer = tiny_olmo(hidden=16, layers=1), olmo_tokenizer()
    commit = write_hub_revision(tmp_path, "org/name", "step5", model, tokenizer)
    again = write_hub_revision(tmp_path, "org/name", "main", model, tokenizer)
    folder = tmp_path / "models--org--name"
    assert again == commit and len(commit) == 40 and int(commit, 16) >= 0
    assert (folder / "refs" / "step5").read_text() == commit == (folder / "refs" / "main").read_text()
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= \
        {p.name for p in (folder / "snapshots" / commit).iterdir()}
    assert [p.name for p in (folder / "snapshots").iterdir()] == [commit]


def _cached_revision(tmp_path, branch="step1000-tokens4B"):
    commit = write_hub_revision(tmp_path, OLMO_HF_REPO, branch, tiny_olmo(hidden=16, layers=1), olmo_tokenizer())
    return tmp_path / "models--allenai--OLMo-1B-hf" / "snapshots" / commit / "model.safetensors"


def test_missing_keys_are_refused(offline_olmo_hub, tmp_path):
    weights = _cached_revision(tmp_path)
    # The old (non -hf) OLMo layout: every block's weights under other names.
    renamed = {k.replace("model.layers.", "model.transformer.blocks."): v for k, v in load_file(weights).items()}
    save_file(renamed, weights, metadata={"format": "pt"})
    with pytest.raises(CheckpointMismatchError) as err:
        load("olmo-1b", "step1000", device="cpu", cache_dir=tmp_path)
    message = str(err.value)
    assert "allenai/OLMo-1B-hf@step1000-tokens4B does not match OlmoForCausalLM: 7 missing_keys" in message
    assert "7 unexpected_keys, e.g. ['model.transformer.blocks.0.mlp.down_proj.weight'" in message
    assert "randomly initialised" in message


def test_truncated_safetensors_is_refused_with_its_path(offline_olmo_hub, tmp_path):
    weights = _cached_revision(tmp_path)
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptCheckpointError) as err:
        load("olmo-1b", "step1000", device="cpu", cache_dir=tmp_path)
    assert str(err.value).startswith(f"{weights} is truncated or corrupted: {len(data) // 2} bytes on disk, "
                                     f"header says {len(data)}.")
    weights.write_bytes(b"\xff" * 16)
    with pytest.raises(CorruptCheckpointError, match="header length 18446744073709551615 does not fit in 16 bytes"):
        check_safetensors(weights)


def test_tokenizer_is_checked_and_padded(offline_olmo_hub, tmp_path):
    from transformers import PreTrainedTokenizerFast

    from amuro_utils.data.offline import TOKENIZER_FILE, asset_path

    no_pad = PreTrainedTokenizerFast(tokenizer_file=str(asset_path(TOKENIZER_FILE)), eos_token="<|endoftext|>")
    assert no_pad.pad_token is None
    write_hub_revision(tmp_path, OLMO_HF_REPO, "main", tiny_olmo(hidden=16, layers=1), no_pad)
    _, tokenizer, _ = load("olmo-1b", "main", device="cpu", cache_dir=tmp_path)
    assert (tokenizer.pad_token, tokenizer.pad_token_id) == ("<|padding|>", 1)
    # Pythia's <|endoftext|> is id 0: an OLMo tokenizer under a Pythia name is refused.
    write_hub_revision(tmp_path, "EleutherAI/pythia-1b", "step1000", tiny_olmo(hidden=16, layers=1), no_pad)
    with pytest.raises(CheckpointMismatchError, match="EleutherAI/pythia-1b: tokenizer eos id is 50279, expected 0"):
        load("pythia-1b", "1000", device="cpu", cache_dir=tmp_path)


def test_unigram_entropy_in_nats():
    assert unigram_entropy([7, 7, 9, 9]) == pytest.approx(math.log(2))
    assert unigram_entropy([3, 3, 3]) == 0.0
    assert unigram_entropy([0, 1, 2, 3]) == pytest.approx(math.log(4))


def test_tiny_settings_follow_the_profile():
    settings = tiny_settings(TINY)
    # every named rung (the paper's labels) is saved: the first two stretched, then the paper's fractions
    assert settings.save_steps == tuple(sorted(int(b[4:]) for b in TINY.rungs.values() if b != "main")) + (
        settings.total_steps,)
    assert TINY.ckpts == PAPER.ckpts and set(TINY.rungs) == {*PAPER.ckpts, "step550000"}
    with pytest.raises(LadderError, match="uses hub ladder 'olmo-1b'"):
        tiny_settings(PAPER)


def test_tiny_rungs_sit_at_the_papers_fractions():
    rungs = tiny_rungs(160, (10, 20))
    assert rungs == {"step1000": "step10", "step18000": "step20", "step342000": "step74", "step424000": "step92",
                     "step505000": "step109", "step550000": "step119", "step592000": "step128",
                     "step738000": "step159", "main": "main"}
    # the tiny profile: every rung from 46 % on at the paper's fraction of its ladder, the first two stretched
    total = TINY.tiny_ladder.total_steps
    steps = {label: int(branch[4:]) for label, branch in TINY.rungs.items() if branch != "main"}
    assert list(steps) == ["step1000", "step18000", "step342000", "step424000", "step505000", "step550000",
                           "step592000", "step738000"] and TINY.rungs["main"] == "main"
    for label, step in steps.items():
        if label not in ("step1000", "step18000", "step738000"):
            assert abs(step - int(label[4:]) / 738_020 * total) <= 0.5
    assert steps["step738000"] == total - 1
    assert steps["step1000"] < steps["step18000"] <= TINY.tiny_ladder.warmup_steps  # stretched into the warm-up
    with pytest.raises(ValueError, match="must increase from step 1"):
        tiny_rungs(40, (10, 20))  # step342000 at 46 % of 40 steps = 19 comes before the early rung 20


@pytest.mark.parametrize("profile", LOCAL_PROFILES, ids=[p.name for p in LOCAL_PROFILES])
def test_label_words_keep_distinct_first_subtokens(profile):
    """Restricted next-token classification tells labels apart by their words' first sub-tokens: under the
    ladder's own tokenizer, no two labels of a classification set the profile evaluates may share one."""
    settings = tiny_settings(profile)
    tokenizer = train_tokenizer(settings, split_corpus(settings, corpus_docs(settings))[0])
    sets = {s for t in profile.tasks for s in (*t.in_domain, *t.ood)} | set(profile.instruction.llmbar)
    classification = [tasks.get(s) for s in sorted(sets) if tasks.get(s).kind == "classification"]
    assert {d.name for d in classification} >= {"mnli_matched", "qqp_glue", "llmbar_Natural"}
    for dataset in classification:
        first = {}  # label -> first sub-token ids of its words
        for word in dataset.force_words:
            label = next((lab for sub, lab in dataset.strip_order if sub in word), word.strip())
            first.setdefault(label, set()).add(tokenizer(word, add_special_tokens=False)["input_ids"][0])
        labels = list(first)
        for i, a in enumerate(labels):
            for b in labels[i + 1:]:
                assert not first[a] & first[b], f"{dataset.name}: {a!r} and {b!r} share a first sub-token"
    assert label_word_problems(tokenizer) == []


def test_colliding_label_words_are_refused_before_pretraining(tmp_path):
    small_vocab = replace(SMALL, vocab_size=300, corpus=("coqa", "drop", "lambada"), max_docs_per_source=None)
    with pytest.raises(LadderError) as err:
        build_tiny_ladder(small_vocab, out_dir=tmp_path, progress=False)
    message = str(err.value)
    # " neutral" and " no" start with a bare space token at 300 ids: credited to " entailment" and " yes"
    assert "' neutral' = ['Ġ', 'n', 'e', 'u', 't', 'r', 'a', 'l'], its first sub-token 'Ġ' is credited to " \
           "' entailment'" in message
    assert "' no'" in message and "TinyLadderSettings(keep_whole=(" in message and "raise vocab_size" in message
    assert not (tmp_path / "hub_cache.partial" / "models--amuro-local--tiny-olmo" / "snapshots").exists()


def test_keep_whole_words_become_single_tokens():
    settings = replace(SMALL, vocab_size=600, keep_whole=(" entailment", " neutral", " contradiction"))
    tokenizer = train_tokenizer(settings, split_corpus(settings, corpus_docs(settings))[0])
    assert [len(tokenizer(w, add_special_tokens=False)["input_ids"]) for w in settings.keep_whole] == [1, 1, 1]
    assert len(tokenizer(" entailment", add_special_tokens=False)["input_ids"]) == 1
    plain = train_tokenizer(replace(settings, keep_whole=()), split_corpus(settings, corpus_docs(settings))[0])
    assert len(plain(" contradiction", add_special_tokens=False)["input_ids"]) > 1


def test_the_tiny_tokenizer_is_deterministic_and_byte_level():
    docs = split_corpus(SMALL, corpus_docs(SMALL))[0]
    first, second = train_tokenizer(SMALL, docs), train_tokenizer(SMALL, docs)
    assert first.backend_tokenizer.to_str() == second.backend_tokenizer.to_str()
    assert len(first) <= SMALL.vocab_size and first.convert_ids_to_tokens([0, 1]) == ["<|endoftext|>", "<|padding|>"]
    text = "### Input: naïve café — 42 €\n ### Summary: "
    ids = first(text, add_special_tokens=False)["input_ids"]
    assert first.decode(ids) == text  # byte-level: any text round-trips, no unknown token
    assert first.convert_ids_to_tokens(ids)[-1] == "Ġ"  # the prompt's trailing space is a token of its own, as OLMo's
    with pytest.raises(LadderError, match="vocab_size 100 is below the 256 bytes"):
        train_tokenizer(replace(SMALL, vocab_size=100), docs)


def test_tiny_ladder_is_deterministic_and_reused(tmp_path):
    with pytest.warns(UserWarning, match="barely learned"):  # 6 steps cannot beat the unigram entropy
        first = build_tiny_ladder(SMALL, out_dir=tmp_path / "a", progress=False)
        second = build_tiny_ladder(SMALL, out_dir=tmp_path / "b", progress=False)
    assert first["built"] and second["built"]
    assert first["branches"] == second["branches"]  # content-addressed commits: identical bytes on disk
    assert set(first["branches"]) == {"step2", "step4", "step6", "main"}
    assert first["branches"]["main"] == first["branches"]["step6"] != first["branches"]["step4"]
    assert first["heldout"]["step"] == [0, 2, 3, 4, 6] and len(first["train"]["loss"]) == 6
    rows = -(-first["vocab_size"] // 64) * 64  # the tokenizer's ids padded to a multiple of 64
    assert first["vocab_size"] <= SMALL.vocab_size and first["embedding_params"] == 16 * rows
    assert first["heldout"]["loss"][0] == pytest.approx(math.log(rows), abs=0.05)  # untrained: uniform
    assert first["final_heldout_loss"] < first["heldout"]["loss"][0] - 0.2  # it learns
    assert [p.rsplit(".", 1)[1] for p in first["figure"]] == ["png", "pdf"]

    cached = build_tiny_ladder(SMALL, out_dir=tmp_path / "a", progress=False)
    assert not cached["built"] and cached["branches"] == first["branches"]

    model, tokenizer, provenance = load("tiny-olmo", "4", cache_dir=tmp_path / "a" / "hub_cache")
    assert provenance["revision"] == "step4" and provenance["commit"] == first["branches"]["step4"]
    assert model.config.hidden_size == 16
    # the ladder's own tokenizer, saved in every checkpoint folder and loaded from there like any model's
    trained = train_tokenizer(SMALL, split_corpus(SMALL, corpus_docs(SMALL))[0])
    assert tokenizer.backend_tokenizer.to_str() == trained.backend_tokenizer.to_str()
    assert (tokenizer.eos_token, tokenizer.eos_token_id, tokenizer.pad_token, tokenizer.pad_token_id) == \
        ("<|endoftext|>", 0, "<|padding|>", 1)
    assert (model.config.eos_token_id, model.config.pad_token_id) == (0, 1)

    with pytest.warns(UserWarning, match="barely learned"):
        retokenized = build_tiny_ladder(replace(SMALL, vocab_size=400), out_dir=tmp_path / "a", progress=False)
    assert retokenized["built"] and retokenized["config_hash"] != first["config_hash"]
    assert retokenized["settings"]["vocab_size"] == 400

    with pytest.warns(UserWarning, match="barely learned"):
        reseeded = build_tiny_ladder(replace(SMALL, seed=1), out_dir=tmp_path / "a", progress=False)
    assert reseeded["built"] and reseeded["config_hash"] != first["config_hash"]
    assert reseeded["branches"]["main"] != first["branches"]["main"]


# ---------------------------------------------------------------------------------------------------------------
# disk hygiene


def _tiny_olmo(seed):
    import torch
    from transformers import OlmoConfig, OlmoForCausalLM

    torch.manual_seed(seed)
    return OlmoForCausalLM(OlmoConfig(vocab_size=50304, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2))


def test_prune_revision_deletes_one_cached_revision(tmp_path):
    from amuro_utils.data.offline import olmo_tokenizer

    repo = "allenai/OLMo-1B-hf"
    kept = ladder.write_hub_revision(tmp_path, repo, "step18000-tokens75B", _tiny_olmo(1), olmo_tokenizer())
    pruned = ladder.write_hub_revision(tmp_path, repo, "step1000-tokens4B", _tiny_olmo(0), olmo_tokenizer())
    folder = tmp_path / "models--allenai--OLMo-1B-hf"
    size = sum(p.stat().st_size for p in (folder / "snapshots" / pruned).iterdir())
    assert ladder.prune_revision(repo, "step1000-tokens4B", tmp_path) == size
    assert [p.name for p in (folder / "snapshots").iterdir()] == [kept]
    assert [p.name for p in (folder / "refs").iterdir()] == ["step18000-tokens75B"]
    assert ladder.prune_revision(repo, "step1000-tokens4B", tmp_path) == 0  # already gone: nothing to do
    assert ladder.prune_revision(repo, kept, tmp_path) == size  # by commit hash too
    assert not folder.exists()  # huggingface_hub removes a repo folder with no revision left


def test_checkpoint_errors_on_the_tiny_ladder_name_the_labels_a_user_types(tmp_path, monkeypatch):
    """The tiny ladder's branches (step10 … main) are its own business: errors answer in the profile's labels."""
    from amuro_utils import pipeline
    from amuro_utils.config import paths
    from amuro_utils.study import plan

    monkeypatch.setattr(paths, "RESULTS_ROOT", tmp_path)
    monkeypatch.setattr(ladder, "results_dir", lambda name: tmp_path / name)
    cache = plan.hub_cache(TINY)
    model = tiny_olmo(0, hidden=16, layers=1)
    for label in ("step1000", "step18000", "step738000", "main"):  # the middle rungs not built
        branch = TINY.rungs[label]
        write_hub_revision(cache, "amuro-local/tiny-olmo", branch, model, olmo_tokenizer())
    labels = "step1000, step18000, step342000, step424000, step505000, step550000, step592000, step738000, main"
    with pytest.raises(LadderError) as err:
        plan.resolve(TINY, "step12345")
    assert str(err.value) == (f"no checkpoint 'step12345' in ladder tiny-olmo. Nearest available: step18000, "
                              f"step1000, step738000 (this profile's checkpoints: {labels}).")
    monkeypatch.setattr(jobs, "prepare_ladder", lambda profile: None)  # the ladder above stands in for it
    with pytest.raises(LadderError, match=r"^no checkpoint '12345' in ladder tiny-olmo\. Nearest available: "
                                          r"step18000, step1000, step738000 \(this"):
        pipeline.checkpoints(TINY, "12345")
    with pytest.raises(LadderError, match=r"Nearest available: main, .*\(this profile's checkpoints: "):
        pipeline.checkpoints(TINY, "mian")
    # A rung of the profile whose branch the built ladder lacks: the label, the reason, and how to build it.
    with pytest.raises(LadderError, match=rf"^no checkpoint 'step424000' in ladder tiny-olmo; its branch {TINY.rungs['step424000']} is "
                                          r"not in HF cache .*hub_cache\. Nearest available: step738000, step18000, "
                                          r"step1000 \(this.*python -m amuro_utils\.models\.tiny_ladder"):
        plan.resolve(TINY, "step424000")
    assert plan.resolve(TINY, "step18000").branch == TINY.rungs["step18000"]
    assert [c.label for c in pipeline.checkpoints(TINY, TINY.rungs["step18000"])] == ["step18000"]  # a branch still finds its rung
