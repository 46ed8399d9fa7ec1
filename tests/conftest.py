"""Shared pytest fixtures: an offline Hugging Face hub cache that stands in for allenai/OLMo-1B-hf."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

OLMO_HF_REPO = "allenai/OLMo-1B-hf"
# Real OLMo-1B branch names from PROTOCOL A §1 / B §1.1. step18000 is deliberately absent (its -hf token count is
# not documented), which also gives tests a paper checkpoint that is missing from the cache.
OLMO_HF_BRANCHES = ("step1000-tokens4B", "step342000-tokens1434B", "step424000-tokens1778B",
                    "step505000-tokens2118B", "step592000-tokens2483B", "step738000-tokens3095B",
                    "step738020-tokens3094B")


@dataclass(frozen=True)
class OfflineHub:
    """An HF hub cache folder and what it holds."""

    cache_dir: Path
    repo: str
    commits: dict  # branch -> commit (main == step738020-tokens3094B, the final checkpoint)


def tiny_olmo(seed: int = 0, hidden: int = 32, layers: int = 2):
    """A random OLMo-architecture model (vocab 50,304, tied embeddings, 512 positions), seeded."""
    import torch
    from transformers import OlmoConfig, OlmoForCausalLM

    torch.manual_seed(seed)
    config = OlmoConfig(vocab_size=50304, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=512, tie_word_embeddings=True,
                        pad_token_id=1, eos_token_id=50279)
    return OlmoForCausalLM(config)


@pytest.fixture(scope="session")
def olmo_hub_cache(tmp_path_factory) -> OfflineHub:
    """Build (once per session) an HF cache holding a tiny random OLMo under allenai/OLMo-1B-hf.

    Every branch of OLMO_HF_BRANCHES gets its own random weights (seed = its index) plus the real OLMo-1B
    tokenizer; `main` points at the last one. Use `offline_olmo_hub` to make a test load from it.
    """
    from amuro_utils.data.offline import olmo_tokenizer
    from amuro_utils.models.ladder import write_hub_revision

    cache = tmp_path_factory.mktemp("hf_hub_cache")
    commits = {}
    for seed, branch in enumerate(OLMO_HF_BRANCHES):
        model = tiny_olmo(seed)
        commits[branch] = write_hub_revision(cache, OLMO_HF_REPO, branch, model, olmo_tokenizer())
    commits["main"] = write_hub_revision(cache, OLMO_HF_REPO, "main", model, olmo_tokenizer())
    return OfflineHub(cache, OLMO_HF_REPO, commits)


@pytest.fixture
def offline_olmo_hub(olmo_hub_cache, monkeypatch, tmp_path) -> OfflineHub:
    """The paper's hub path, offline, for one test.

    Sets HF_HUB_OFFLINE=1 and HF_HUB_CACHE to `olmo_hub_cache` (environment, for subprocesses such as papermill
    kernels, and huggingface_hub's constants, which are read once at import), and points the saved branch
    listings at an empty folder. Then `AutoModelForCausalLM.from_pretrained("allenai/OLMo-1B-hf",
    revision="step424000-tokens1778B")` and `amuro_utils.models.ladder.load("olmo-1b", "step424000")` run offline.
    """
    from huggingface_hub import constants

    from amuro_utils.models import ladder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(olmo_hub_cache.cache_dir))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(olmo_hub_cache.cache_dir))
    monkeypatch.setattr(ladder, "LISTING_DIR", tmp_path / "ladder_listings")
    return olmo_hub_cache


# ---------------------------------------------------------------------------------------------------------------
# More ladders: Pythia and OLMo-2 stand-ins in an offline HF cache (tests/test_families.py)

PYTHIA_REPOS = ("EleutherAI/pythia-160m", "EleutherAI/pythia-1b")
# Real Pythia branch names (PROTOCOL B §1.3): plain stepN. step3000 is deliberately absent (a rung missing here).
PYTHIA_BRANCHES = ("step0", "step256", "step4000", "step66000", "step143000")
OLMO2_REPO = "allenai/OLMo-2-0425-1B"
# Real OLMo-2-0425-1B branch names, plus "step50000-tokens105B" written without its "stage1-" prefix, as some stage-1
# branches of the OLMo-2 repos are (PROTOCOL B §1.2). main is the stage-2 (mid-trained) model.
OLMO2_BRANCHES = ("stage1-step10000-tokens21B", "step50000-tokens105B", "stage1-step1907359-tokens4001B",
                  "stage2-ingredient3-step23852-tokens51B")
# dolma2's special tokens, ids 100256 … 100277 (cl100k_base's ranks below them)
DOLMA2_SPECIALS = ("<|extra_id_0|>", "<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
                   "|||PHONE_NUMBER|||", "|||EMAIL_ADDRESS|||", "|||IP_ADDRESS|||", "<|im_start|>", "<|im_end|>",
                   *(f"<|extra_id_{i}|>" for i in range(1, 11)), "<|endofprompt|>", "<|pad|>")
DOLMA2_FIRST_SPECIAL = 100256


@dataclass(frozen=True)
class FamilyHub:
    """An HF hub cache folder holding the Pythia and OLMo-2 stand-ins: repo -> branch -> commit."""

    cache_dir: Path
    commits: dict


def tiny_pythia(seed: int = 0, hidden: int = 32, layers: int = 2):
    """A random GPT-NeoX (Pythia-architecture) model: vocab 50,304, untied head, rotary on 25 % of each head, seeded."""
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(seed)
    config = GPTNeoXConfig(vocab_size=50304, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                           intermediate_size=4 * hidden, max_position_embeddings=2048, rotary_pct=0.25,
                           use_parallel_residual=True, tie_word_embeddings=False, bos_token_id=0, eos_token_id=0)
    return GPTNeoXForCausalLM(config)


def tiny_olmo2(seed: int = 0, hidden: int = 32, layers: int = 2):
    """A random OLMo-2-architecture model: vocab 100,352, untied head, eos 100257, pad 100277, seeded."""
    import torch
    from transformers import Olmo2Config, Olmo2ForCausalLM

    torch.manual_seed(seed)
    config = Olmo2Config(vocab_size=100352, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                         intermediate_size=2 * hidden, max_position_embeddings=4096, rope_theta=500000,
                         tie_word_embeddings=False, eos_token_id=100257, pad_token_id=100277, bos_token_id=None)
    return Olmo2ForCausalLM(config)


def _olmo_tokenizer_json() -> dict:
    import json

    from amuro_utils.data.offline import TOKENIZER_FILE, asset_path

    return json.loads(asset_path(TOKENIZER_FILE).read_text())


def _fast_tokenizer(data: dict, **special):
    import json

    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(data)), **special)


def pythia_tokenizer():
    """A stand-in for Pythia's GPT-NeoX-20B tokenizer, which cannot be downloaded here.

    The OLMo tokenizer file (GPT-NeoX-20B-derived) with ids 0 and 50279 swapped is GPT-NeoX-20B's special-token
    layout: `<|endoftext|>` = 0 (also bos and unk), `<|padding|>` = 1 (OLMo issues #597/#757). Like some Pythia
    tokenizer_configs it declares no pad token: amuro_utils.models.ladder.load sets `<|padding|>`. 50,280 tokens (the real
    one has 50,277), within the 50,304 embedding rows.
    """
    data = _olmo_tokenizer_json()
    swap = {0: 50279, 50279: 0}
    for token in data["added_tokens"]:
        token["id"] = swap.get(token["id"], token["id"])
    data["added_tokens"].sort(key=lambda token: token["id"])
    vocab = data["model"]["vocab"]
    for piece, index in list(vocab.items()):
        vocab[piece] = swap.get(index, index)
    return _fast_tokenizer(data, eos_token="<|endoftext|>", bos_token="<|endoftext|>", unk_token="<|endoftext|>")


def dolma2_tokenizer(pad_token: str = "<|pad|>"):
    """A stand-in for OLMo-2's dolma2 tokenizer (cl100k-based), which cannot be downloaded here.

    Same special-token layout: `<|endoftext|>` = 100257 (eos and bos, none prepended), `<|pad|>` = 100277, the other
    dolma2 specials at 100256 … 100276, 100,278 tokens within the 100,352 embedding rows. Below them sits the OLMo
    (GPT-NeoX-derived) BPE vocabulary, its own special tokens renamed, and unused filler pieces up to id 100255 that
    no merge produces: text is tokenized as OLMo-1B tokenizes it, not as cl100k does.
    """
    data = _olmo_tokenizer_json()
    vocab = data["model"]["vocab"]
    olmo_specials = {t["id"] for t in data["added_tokens"] if t["special"] or t["content"].startswith("|||")}
    for piece, index in list(vocab.items()):
        if index in olmo_specials:  # |||IP_ADDRESS|||, <|padding|>, … <|endoftext|>: dolma2 has them elsewhere
            del vocab[piece]
            vocab[f"<|olmo_reserved_{index}|>"] = index
    vocab.update({f"<|unused_{index}|>": index for index in range(len(vocab), DOLMA2_FIRST_SPECIAL)})
    vocab.update({piece: DOLMA2_FIRST_SPECIAL + i for i, piece in enumerate(DOLMA2_SPECIALS)})
    data["added_tokens"] = [t for t in data["added_tokens"] if t["id"] not in olmo_specials] + [
        {"id": DOLMA2_FIRST_SPECIAL + i, "content": piece, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True} for i, piece in enumerate(DOLMA2_SPECIALS)]
    return _fast_tokenizer(data, eos_token="<|endoftext|>", bos_token="<|endoftext|>", pad_token=pad_token)


def write_legacy_pythia_revision(cache_dir, repo: str, branch: str, model, tokenizer) -> str:
    """Save `branch` of `repo` in an HF hub cache as Pythia's stepN branches are stored: one float16
    pytorch_model.bin that also holds each layer's attention-mask buffers (`attention.bias`, `attention.masked_bias`,
    `attention.rotary_emb.inv_freq`), no safetensors; returns the commit (a hash of the files)."""
    import hashlib
    import shutil
    import tempfile

    import torch
    from safetensors.torch import load_file

    from amuro_utils.models.ladder import repo_folder

    folder = repo_folder(Path(cache_dir), repo)
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "snapshots").mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    state = {k: v.half() for k, v in load_file(tmp / "model.safetensors").items()}
    config = model.config
    positions, rotary = config.max_position_embeddings, int(config.hidden_size // config.num_attention_heads * 0.25)
    for layer in range(config.num_hidden_layers):
        prefix = f"gpt_neox.layers.{layer}.attention."
        state[prefix + "bias"] = torch.tril(torch.ones(1, 1, positions, positions, dtype=torch.bool))
        state[prefix + "masked_bias"] = torch.tensor(-1e9)
        state[prefix + "rotary_emb.inv_freq"] = 1.0 / (10000 ** (torch.arange(0, rotary, 2).float() / rotary))
    (tmp / "model.safetensors").unlink()
    torch.save(state, tmp / "pytorch_model.bin")
    digest = hashlib.sha1()
    for path in sorted(tmp.iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    commit = digest.hexdigest()
    snapshot = folder / "snapshots" / commit
    if snapshot.exists():
        shutil.rmtree(tmp)
    else:
        tmp.rename(snapshot)
    (folder / "refs" / branch).write_text(commit)
    return commit


@pytest.fixture(scope="session")
def family_hub_cache(tmp_path_factory) -> FamilyHub:
    """Build (once per session) an HF cache holding tiny random stand-ins of the Pythia and OLMo-2 ladders.

    EleutherAI/pythia-160m and EleutherAI/pythia-1b: a GPT-NeoX per PYTHIA_BRANCHES (seed = its index) stored as
    Pythia's step branches are (fp16 pytorch_model.bin with the legacy attention buffers), with `pythia_tokenizer()`;
    `main` holds step143000's weights as safetensors under its own commit, as the hub's main (re-uploaded as
    safetensors) does. allenai/OLMo-2-0425-1B: an OLMo-2 per OLMO2_BRANCHES with `dolma2_tokenizer()`; `main` is
    the stage-2 branch. Use `offline_family_hub` to make a test load from it.
    """
    from amuro_utils.models.ladder import write_hub_revision

    cache = tmp_path_factory.mktemp("family_hub_cache")

    def ladder(repo, tokenizer, names, make_model, write):
        """One seeded model per branch, written by `write`; `main` = the last model in the current layout."""
        branches = {}
        for seed, branch in enumerate(names):
            model = make_model(seed)
            branches[branch] = write(cache, repo, branch, model, tokenizer)
        branches["main"] = write_hub_revision(cache, repo, "main", model, tokenizer)
        return branches

    commits = {repo: ladder(repo, pythia_tokenizer(), PYTHIA_BRANCHES, tiny_pythia, write_legacy_pythia_revision)
               for repo in PYTHIA_REPOS}
    commits[OLMO2_REPO] = ladder(OLMO2_REPO, dolma2_tokenizer(), OLMO2_BRANCHES, tiny_olmo2, write_hub_revision)
    return FamilyHub(cache, commits)


@pytest.fixture
def offline_family_hub(family_hub_cache, monkeypatch, tmp_path) -> FamilyHub:
    """The hub path of the Pythia and OLMo-2 ladders, offline, for one test (as `offline_olmo_hub` does for OLMo-1B:
    HF_HUB_OFFLINE=1, HF_HUB_CACHE at the cache, saved branch listings pointed at an empty folder)."""
    from huggingface_hub import constants

    from amuro_utils.models import ladder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(family_hub_cache.cache_dir))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(family_hub_cache.cache_dir))
    monkeypatch.setattr(ladder, "LISTING_DIR", tmp_path / "ladder_listings")
    return family_hub_cache
