"""Checkpoint ladders: resolve `step424000`/`main` to hub branches, load them safely, prune used revisions.

Hub branch names are never constructed (token counts are rounded differently per repo, PROTOCOL B §1.1): they
come from the repo's own ref listing, cached as JSON on first online use, or offline from the HF cache. A label is
resolved once into a `Checkpoint` (label, branch, commit, step) that is passed down to loading, records and pruning.
The tiny profile's ladder (amuro_utils.models.tiny_ladder) lives in a local HF hub cache, so every profile loads through the
same `from_pretrained(repo, revision=branch, cache_dir=...)` call.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..config.paths import DATA_DIR, results_dir
from ..config.profiles import PYTHIA_LADDERS, ckpt_step


@dataclass(frozen=True)
class Ladder:
    """A model family's intermediate checkpoints: where they live and how their branches are named."""

    name: str
    repo: str  # hub repo id (the tiny ladder's id inside its local cache)
    step_pattern: str  # regex whose fullmatch on a branch name captures its step as group "step"
    eos_id: int | None  # expected tokenizer ids (None = not checked)
    eos_token: str | None
    pad_id: int | None
    pad_token: str | None  # set as the pad token when the tokenizer has none
    local: bool = False  # True: lives only in its local cache, never listed online
    note: str = ""


LADDERS = {
    "olmo-1b": Ladder(
        "olmo-1b", "allenai/OLMo-1B-hf", r"step(?P<step>\d+)-tokens\d+B", 50279, "<|endoftext|>", 1, "<|padding|>",
        note="The paper's ladder (PROTOCOL A §1); 351 branches step1000-tokens4B … step738020-tokens3094B."),
    "pythia-1b": Ladder(
        "pythia-1b", "EleutherAI/pythia-1b", r"step(?P<step>\d+)", 0, "<|endoftext|>", 1, "<|padding|>",
        note="154 branches: step0, step1 … step512 (log-spaced), step1000 … step143000; main == step143000."),
    "pythia-160m": Ladder(
        "pythia-160m", "EleutherAI/pythia-160m", r"step(?P<step>\d+)", 0, "<|endoftext|>", 1, "<|padding|>",
        note="Pythia-160M (12 layers, d_model 768): the same 154 branches and tokenizer as pythia-1b."),
    "olmo-2-0425-1b": Ladder(
        "olmo-2-0425-1b", "allenai/OLMo-2-0425-1B", r"(?:stage1-)?step(?P<step>\d+)-tokens\d+B",
        100257, "<|endoftext|>", 100277, "<|pad|>",
        note="Stage-1 branches stage1-stepN-tokensMB (some lack the stage1- prefix); stage-2 branches "
             "(stage2-ingredientK-…) resolve only by their full name."),
    "olmo-1b-0724": Ladder(
        "olmo-1b-0724", "allenai/OLMo-1B-0724-hf", r"step(?P<step>\d+)-tokens\d+B", None, None, None, None,
        note="1,446 branches step0-tokens0B … step1454000-tokens3048B; untied head, clip_qkv 8."),
    "tiny-olmo": Ladder(
        "tiny-olmo", "amuro-local/tiny-olmo", r"step(?P<step>\d+)", 0, "<|endoftext|>", 1, "<|padding|>",
        local=True, note="Pre-trained here by amuro_utils.models.tiny_ladder into results/<profile>/hub_cache, with its own "
                         "byte-level BPE tokenizer (eos 0, pad 1) saved in every checkpoint."),
}

# The rest of the Pythia suite (8 sizes × the Pile / the deduplicated Pile): the same branches and tokenizer.
LADDERS.update({name: Ladder(name, f"EleutherAI/{name}", r"step(?P<step>\d+)", 0, "<|endoftext|>", 1, "<|padding|>",
                             note="The Pythia suite: the same 154 branches and tokenizer as pythia-1b.")
                for name in PYTHIA_LADDERS if name not in LADDERS})

LISTING_DIR = DATA_DIR / "ladders"


class LadderError(ValueError):
    """A checkpoint name that cannot be resolved, or a ladder that is not available here."""


class CheckpointMismatchError(RuntimeError):
    """A checkpoint whose weights do not match the model class (would load with random weights)."""


class CorruptCheckpointError(RuntimeError):
    """A truncated or corrupted weight file in the HF cache."""


def get_ladder(name: str | Ladder) -> Ladder:
    """The ladder called `name`; an unknown name lists the available ones."""
    if isinstance(name, Ladder):
        return name
    try:
        return LADDERS[name]
    except KeyError:
        raise LadderError(f"unknown ladder {name!r}; available: {sorted(LADDERS)}") from None


def tiny_cache_dir(profile_name: str = "tiny") -> Path:
    """A local ladder's HF hub cache: results/<profile>/hub_cache."""
    return results_dir(profile_name) / "hub_cache"


def _cache_dir(ladder: Ladder, cache_dir) -> Path:
    from huggingface_hub import constants

    if cache_dir is not None:
        return Path(cache_dir)
    # Read at call time: HF_HUB_CACHE is captured when huggingface_hub is imported, tests patch the constant.
    return tiny_cache_dir() if ladder.local else Path(constants.HF_HUB_CACHE)


def repo_folder(cache_dir: Path, repo: str) -> Path:
    return cache_dir / f"models--{repo.replace('/', '--')}"


def _fill_hint(ladder: Ladder, cache_dir: Path) -> str:
    if ladder.local:
        return ("Build it with `python -m amuro_utils.models.tiny_ladder` or "
                "`amuro_utils.models.tiny_ladder.build_tiny_ladder(get_profile('tiny'))`.")
    return (f"On a networked machine run `hf download {ladder.repo} --revision <branch>` (huggingface-cli download "
            f"on older huggingface_hub) and copy its HF cache to {cache_dir}, or run once online so that the "
            f"branch listing is saved under {LISTING_DIR}.")


def _cached_refs(ladder: Ladder, cache_dir: Path) -> dict[str, str]:
    """Branch -> commit for the revisions present in an HF cache (scan_cache_dir works offline)."""
    from huggingface_hub import scan_cache_dir

    if not cache_dir.is_dir():
        return {}
    for repo in scan_cache_dir(cache_dir).repos:
        if repo.repo_id == ladder.repo and repo.repo_type == "model":
            return {ref: rev.commit_hash for ref, rev in repo.refs.items()}
    return {}


def _listing_path(ladder: Ladder, listing_dir) -> Path:
    return Path(listing_dir or LISTING_DIR) / f"{ladder.repo.replace('/', '--')}.json"


def _online_refs(ladder: Ladder, listing_path: Path) -> dict[str, str] | None:
    """Branch -> commit from the hub (saved as JSON), or None when the hub cannot be reached."""
    from huggingface_hub import list_repo_refs
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        refs = list_repo_refs(ladder.repo)
    except RepositoryNotFoundError:
        raise
    except Exception:  # OfflineModeIsEnabled, httpx.ConnectError, timeouts: all mean "no hub here"
        return None
    branches = {ref.name: ref.target_commit for ref in refs.branches}
    listing_path.parent.mkdir(parents=True, exist_ok=True)
    listing_path.write_text(json.dumps({
        "repo": ladder.repo, "source": "huggingface_hub.list_repo_refs",
        "fetched": datetime.now(timezone.utc).isoformat(timespec="seconds"), "branches": branches,
    }, indent=1, sort_keys=True) + "\n")
    return branches


def available_branches(ladder, *, cache_dir=None, listing_dir=None, refresh=False) -> tuple[dict[str, str], str]:
    """(branch -> commit, where the listing came from): saved listing, else the hub, else the local HF cache."""
    ladder = get_ladder(ladder)
    cache = _cache_dir(ladder, cache_dir)
    if ladder.local:
        return _cached_refs(ladder, cache), f"local cache {cache}"
    listing = _listing_path(ladder, listing_dir)
    if listing.exists() and not refresh:
        return _saved_refs(ladder, listing_dir), f"saved listing {listing}"
    online = _online_refs(ladder, listing)
    if online is not None:
        return online, f"hub listing of {ladder.repo}"
    return _cached_refs(ladder, cache), f"HF cache {cache} (hub unreachable, no saved listing)"


def _step(ladder: Ladder, branch: str) -> int | None:
    match = re.fullmatch(ladder.step_pattern, branch)
    return int(match.group("step")) if match else None


def _twin_step(ladder: Ladder, branch: str, branches: dict[str, str]) -> int | None:
    """Step of a branch named without one (`main`): the latest step branch pointing at the same commit."""
    if _step(ladder, branch) is not None:
        return _step(ladder, branch)
    twins = [_step(ladder, b) for b, c in branches.items() if c == branches.get(branch) and b != branch]
    twins = [t for t in twins if t is not None]
    return max(twins) if twins else None


def _match(ladder: Ladder, name: str, branches) -> list[str]:
    if name in branches:
        return [name]
    wanted = ckpt_step(name, bare_number=True)
    if wanted is None:
        return []
    return sorted(b for b in branches if _step(ladder, b) == wanted)


def _nearest(ladder: Ladder, name: str, branches, k: int = 5) -> list[str]:
    wanted = ckpt_step(name, bare_number=True)
    stepped = [(s, b) for b in branches if (s := _step(ladder, b)) is not None]
    if wanted is not None and stepped:
        return [b for _, b in sorted(stepped, key=lambda sb: (abs(sb[0] - wanted), sb[0]))[:k]]
    return difflib.get_close_matches(name, list(branches), n=k, cutoff=0.0)


def _nearest_labels(name: str, labels, k: int = 5) -> list[str]:
    """The profile labels nearest to `name` by step ('main' and other step-less names by spelling)."""
    wanted = ckpt_step(name, bare_number=True)
    stepped = [(s, label) for label in labels if (s := ckpt_step(label)) is not None]
    if wanted is not None and stepped:
        return [label for _, label in sorted(stepped, key=lambda sl: (abs(sl[0] - wanted), sl[0]))[:k]]
    return difflib.get_close_matches(name, list(labels), n=k, cutoff=0.0)


def _saved_refs(ladder: Ladder, listing_dir) -> dict[str, str]:
    listing = _listing_path(ladder, listing_dir)
    return json.loads(listing.read_text())["branches"] if listing.exists() else {}


def resolve(ladder, name, *, cache_dir=None, listing_dir=None) -> str:
    """The branch for `name` ("step424000", "424000", "main" or a full branch name), from the repo's own refs."""
    ladder = get_ladder(ladder)
    return _resolve(ladder, str(name), _cache_dir(ladder, cache_dir), listing_dir)[0]


@dataclass(frozen=True)
class Checkpoint:
    """One rung of a ladder, resolved once and passed down: the study's label, hub branch, commit and step."""

    label: str  # the ladder label records and figures use ("step424000", "main")
    ladder: str  # LADDERS key
    repo: str
    branch: str
    commit: str | None  # the branch's commit from the ref listing (None if the listing has no commits)
    step: int | None  # training step of the branch (main: of the step branch sharing its commit)


def checkpoint(ladder, label, *, branch: str | None = None, cache_dir=None, listing_dir=None,
               labels=None) -> Checkpoint:
    """Resolve a ladder label (or the given `branch` for it) once into a Checkpoint: branch, commit and step.

    labels: the profile's named rungs (label -> branch) when its labels are not branch names (the tiny ladder's
    step1000 … main on its own step10 … main): an error then names those labels, never the internal branches.
    """
    ladder = get_ladder(ladder)
    cache = _cache_dir(ladder, cache_dir)
    found, branches = _resolve(ladder, str(branch or label), cache, listing_dir, labels=labels, label=str(label))
    return Checkpoint(str(label), ladder.name, ladder.repo, found, branches.get(found),
                      _twin_step(ladder, found, branches))


def _resolve(ladder: Ladder, name: str, cache: Path, listing_dir, *, labels=None,
             label: str | None = None) -> tuple[str, dict[str, str]]:
    """(branch for `name`, the branch -> commit listing it was found in); errors name `labels` when given."""
    # Cheapest source first, so that a filled cache never touches the network: the saved listing, the branches
    # already in the HF cache (they came from the hub), and only then the hub itself.
    sources = [(f"HF cache {cache}", lambda: _cached_refs(ladder, cache))]
    if not ladder.local:
        listing = _listing_path(ladder, listing_dir)
        sources = [(f"saved listing {listing}", lambda: _saved_refs(ladder, listing_dir)), *sources,
                   (f"hub listing of {ladder.repo}", lambda: _online_refs(ladder, listing) or {})]
    best, best_source = {}, ""
    for source, fetch in sources:
        branches = fetch()
        found = _match(ladder, name, branches)
        if len(found) > 1:
            raise LadderError(f"{name!r} is ambiguous in ladder {ladder.name} ({ladder.repo}): {found}; "
                              "pass the full branch name.")
        if found:
            return found[0], branches
        if len(branches) > len(best):
            best, best_source = branches, source
    if not best:
        tried = "; ".join(source for source, _ in sources)
        raise LadderError(f"cannot resolve {name!r} for ladder {ladder.name} ({ladder.repo}): no branches found "
                          f"(tried: {tried}). {_fill_hint(ladder, cache)}")
    if labels:  # the user typed a profile label: answer in labels, the branches are the ladder's own business
        label = label or name
        missing = f"; its branch {name} is not in {best_source}" if name != label else ""
        available = [other for other, rung in labels.items() if rung in best and other != label]
        raise LadderError(f"no checkpoint {label!r} in ladder {ladder.name}{missing}. Nearest available: "
                          f"{', '.join(_nearest_labels(label, available))} (this profile's checkpoints: "
                          f"{', '.join(labels)})." + (f" {_fill_hint(ladder, cache)}" if missing else ""))
    nearest = ", ".join(_nearest(ladder, name, best))
    raise LadderError(f"no checkpoint {name!r} in ladder {ladder.name} ({ladder.repo}; {len(best)} branches from "
                      f"{best_source}). Nearest available: {nearest}. {_fill_hint(ladder, cache)}")


def check_safetensors(path: Path) -> None:
    """Refuse a truncated or corrupted .safetensors file (its size must match its own header)."""
    path = Path(path)
    size = path.stat().st_size
    problem = None
    with path.open("rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n < 2 or 8 + n > size:
            problem = f"header length {n} does not fit in {size} bytes"
        else:
            try:
                header = json.loads(f.read(n))
                end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
            except (ValueError, KeyError, TypeError, IndexError) as err:
                problem = f"unreadable header ({err})"
            else:
                if 8 + n + end != size:
                    problem = f"{size} bytes on disk, header says {8 + n + end}"
    if problem:
        raise CorruptCheckpointError(f"{path} is truncated or corrupted: {problem}. Delete it (or its snapshot "
                                     "folder) and download the revision again.")


def _snapshot(repo: str, branch: str, cache_dir: Path) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(repo, "config.json", cache_dir=cache_dir, revision=branch)
    return Path(hit).parent if isinstance(hit, str) else None


def _check_snapshot(snapshot: Path | None) -> None:
    for path in sorted(snapshot.glob("*.safetensors")) if snapshot else ():
        check_safetensors(path)


def torch_dtype(dtype, device: str):
    """The torch dtype for a name ("bfloat16", "float32"); None = bf16 on GPU, fp32 on CPU."""
    import torch

    if dtype is None:
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype), None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}; use e.g. 'bfloat16' or 'float32'")
    return value


def _check_tokenizer(ladder: Ladder, tokenizer, vocab_rows: int) -> None:
    if ladder.pad_token is not None and tokenizer.pad_token is None:
        tokenizer.pad_token = ladder.pad_token
    expected = (("eos", ladder.eos_id, ladder.eos_token), ("pad", ladder.pad_id, ladder.pad_token))
    for role, want_id, want_token in expected:
        got_id = getattr(tokenizer, f"{role}_token_id")
        if want_id is not None and got_id != want_id:
            raise CheckpointMismatchError(f"{ladder.repo}: tokenizer {role} id is {got_id}, expected {want_id}")
        if want_token is not None and tokenizer.convert_ids_to_tokens(want_id) != want_token:
            raise CheckpointMismatchError(f"{ladder.repo}: token {want_id} is "
                                          f"{tokenizer.convert_ids_to_tokens(want_id)!r}, expected {want_token!r}")
    if len(tokenizer) > vocab_rows:
        raise CheckpointMismatchError(f"{ladder.repo}: tokenizer has {len(tokenizer)} tokens but the model's "
                                      f"embedding only {vocab_rows} rows")


def load(ladder, ckpt, device=None, dtype=None, cache_dir=None, *, listing_dir=None):
    """(model, tokenizer, provenance) for one checkpoint (a label or a resolved Checkpoint); refuses
    missing/unexpected keys, corrupt files and tokenizers whose special ids are not the ladder's."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ladder = get_ladder(ladder)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch_dtype(dtype, device)
    cache = _cache_dir(ladder, cache_dir)
    if not isinstance(ckpt, Checkpoint):
        ckpt = checkpoint(ladder, ckpt, cache_dir=cache, listing_dir=listing_dir)
    branch = ckpt.branch
    snapshot = _snapshot(ladder.repo, branch, cache)
    _check_snapshot(snapshot)
    # A cached revision is loaded from its snapshot folder, without touching the network (no HEAD requests, e.g.
    # transformers' look-up of a peft adapter_config.json, and no retries on a dead network); branches do not move.
    source, hub = ((snapshot, {}) if snapshot is not None
                   else (ladder.repo, {"revision": branch, "cache_dir": cache}))
    try:
        model, info = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, output_loading_info=True, **hub)
    except Exception:
        _check_snapshot(_snapshot(ladder.repo, branch, cache))  # a freshly downloaded file may be the cause
        raise
    bad = {k: sorted(info[k]) for k in ("missing_keys", "unexpected_keys", "mismatched_keys") if info.get(k)}
    if bad or info.get("error_msgs"):
        detail = "; ".join(f"{len(v)} {k}, e.g. {v[:3]}" for k, v in bad.items()) or str(info["error_msgs"][:3])
        raise CheckpointMismatchError(
            f"{ladder.repo}@{branch} does not match {type(model).__name__}: {detail}. Loading it anyway would "
            "leave those weights randomly initialised (the old-format OLMo gotcha, PROTOCOL B §1.1); use the "
            "native -hf repo or convert the checkpoint.")
    tokenizer = AutoTokenizer.from_pretrained(source, **hub)
    _check_tokenizer(ladder, tokenizer, model.get_input_embeddings().weight.shape[0])
    snapshot = _snapshot(ladder.repo, branch, cache)
    provenance = {"ladder": ladder.name, "repo": ladder.repo, "ckpt": ckpt.label, "revision": branch,
                  "commit": snapshot.name if snapshot else ckpt.commit, "step": ckpt.step}
    return model.to(device).eval(), tokenizer, provenance


def prune_revision(repo: str, revision: str, cache_dir: str | Path | None = None) -> int:
    """Delete one downloaded revision (branch name or commit) of a model from the HF cache; returns bytes freed."""
    from huggingface_hub import scan_cache_dir

    info = scan_cache_dir(cache_dir)
    commits = {rev.commit_hash for cached in info.repos if cached.repo_id == repo and cached.repo_type == "model"
               for rev in cached.revisions if revision == rev.commit_hash or revision in rev.refs}
    if not commits:
        return 0
    strategy = info.delete_revisions(*sorted(commits))
    strategy.execute()
    return strategy.expected_freed_size


def write_hub_revision(cache_dir, repo: str, branch: str, model, tokenizer) -> str:
    """Save model + tokenizer as `branch` of `repo` in an HF hub cache (refs/ + snapshots/); returns the commit."""
    folder = repo_folder(Path(cache_dir), repo)
    (folder / "snapshots").mkdir(parents=True, exist_ok=True)
    (folder / "refs").mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        digest = hashlib.sha1()
        for path in sorted(tmp.iterdir()):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        commit = digest.hexdigest()  # content-addressed: identical weights give the identical commit
        snapshot = folder / "snapshots" / commit
        if not snapshot.exists():
            tmp.rename(snapshot)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    (folder / "refs" / branch).write_text(commit)  # no newline: huggingface_hub compares the raw text
    return commit


