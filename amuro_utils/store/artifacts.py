"""One identity-keyed, atomic store for every cached result: evaluation records, fine-tuned weights, training
records, forgetting rows, sensitivity rows, the tiny ladder, the scorecard and job markers.

An artifact is a JSON file `{"identity": ..., "identity_hash": ..., **payload}` (amuro_utils.store.identity says what an
identity holds). A folder artifact (fine-tuned weights) carries that file inside it, named DONE and written last.

- One write: a file goes to a temp file in its folder, is fsynced and renamed into place (`atomic_write`); a folder
  is built under a temp name beside its place and renamed into place when complete (`atomic_folder`). A kill at any
  moment leaves the old artifact or the new one, never a part of one; a stray temp is never read back.
- One rule for reading (`status`): done (the stored identity hash equals the requested identity's), stale (made
  under other settings: the changed fields, as dotted paths), missing, or corrupt (why it cannot be read).
- One set-aside policy (`write`, `set_aside`): a file about to be replaced by one of another identity is moved to
  <root>/.stale/ (an unreadable one to <root>/.corrupt/), with its path below <root> and a timestamp, so no recorded
  result is ever lost. A folder is replaced, not kept: weights are remade from the recipe their identity names.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, NamedTuple

from .identity import changed_fields, digest, plain

log = logging.getLogger(__name__)

STALE_DIR, CORRUPT_DIR = ".stale", ".corrupt"
DONE = "DONE"  # the identity file of a folder artifact, written last


class Status(NamedTuple):
    """Whether a stored artifact answers a request: done, stale (the changed fields), missing or corrupt (why)."""

    state: str  # "done" | "stale" | "missing" | "corrupt"
    changed: tuple[str, ...]  # stale: the settings that differ (dotted paths); corrupt: why the file is unreadable
    path: Path


# ---------------------------------------------------------------------------------------------------------------
# the one write


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` so that readers see the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(err.errno, f"no space left on the device writing {path} ({err.strerror}); nothing "
                                     "partial was kept and every earlier record is intact: free disk space and rerun "
                                     "(finished work is reused)") from err
        raise
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make a rename in `folder` survive a crash (not possible on every OS)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def atomic_folder(path: Path):
    """Build a folder artifact: yields a fresh temp folder beside `path` (this process's own, so two jobs may build
    the same artifact at once); when the block ends normally it replaces `path`, else it is removed. If another
    process put a complete folder in place first, that one is kept (it is as good as ours)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.partial-"))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():  # moved aside whole first: removing it in place could be killed half-way, leaving its DONE
        old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old-")) / path.name
        try:
            path.rename(old)
        except OSError:  # another process moved it first
            old = None
    try:
        tmp.rename(path)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    _sync_folder(path.parent)
    if old is not None:
        shutil.rmtree(old.parent, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# the one read-compare rule


def read(path: Path, check: Callable[[dict], str | None] | None = None) -> tuple[dict | None, str | None]:
    """(artifact, None) if the file at `path` is a complete artifact (and `check` finds nothing wrong), else (None,
    why not). A missing file is (None, None)."""
    path = Path(path)
    if not path.is_file():
        return None, None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        return None, f"not valid JSON ({err})"
    if not isinstance(stored, dict):
        return None, "not a JSON object"
    problem = check(stored) if check is not None else None
    return (None, problem) if problem else (stored, None)


def status(path: Path, identity: dict | None, check: Callable[[dict], str | None] | None = None) -> Status:
    """done: a valid artifact made under `identity`; stale: made under other settings (the changed fields);
    corrupt: a file that is not a valid artifact (why); missing: nothing stored."""
    path = Path(path)
    stored, problem = read(path, check)
    if problem:
        return Status("corrupt", (problem,), path)
    if stored is None:
        return Status("missing", (), path)
    # an artifact written before hashes were stored beside identities (a job marker, the ladder) compares by its
    # identity
    stored_hash = stored.get("identity_hash") or digest(stored.get("identity"))
    if stored_hash is not None and stored_hash == digest(identity):
        return Status("done", (), path)
    return Status("stale", tuple(changed_fields(stored.get("identity"), identity)), path)


def load(path: Path, identity: dict | None, what: str = "artifact",
         check: Callable[[dict], str | None] | None = None) -> dict | None:
    """The stored artifact if it was made under `identity`; else None, saying why (stale: the changed fields)."""
    state = status(path, identity, check)
    if state.state == "done":
        return read(path, check)[0]
    if state.state == "stale":
        log.warning("%s %s was made under other settings (changed: %s): it is recomputed and the old one kept aside",
                    what, path, ", ".join(state.changed))
    elif state.state == "corrupt":
        log.warning("%s %s is not valid (%s): it is recomputed", what, path, state.changed[0])
    return None


# ---------------------------------------------------------------------------------------------------------------
# the one set-aside policy


def set_aside(root: Path, path: Path, folder: str = STALE_DIR, *, keep: bool = False) -> Path:
    """Move an artifact file out of reach into <root>/<folder>/ (same path below root, timestamped); returns where.
    `keep`: link it there and leave it in place too (its writer replaces it next)."""
    root, path = Path(root), Path(path)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    target = root / folder / path.relative_to(root).with_suffix(f".{stamp}{path.suffix}")
    target.parent.mkdir(parents=True, exist_ok=True)
    if keep:
        try:
            os.link(path, target)
        except OSError:  # a file system without hard links
            shutil.copy2(path, target)
    else:
        os.replace(path, target)
    log.warning("moved %s aside to %s (%s)", path, target, "made under other settings" if folder == STALE_DIR
                else "not a valid artifact")
    return target


def write(root: Path, path: Path, identity: dict | None, payload: dict,
          check: Callable[[dict], str | None] | None = None) -> Path:
    """Write one artifact atomically under `identity`; a file already there that was made under another identity
    (or is unreadable) is first kept aside below `root` (a hard link, so that until the new one replaces it the old
    one stays in place), so a recompute never destroys a recorded result."""
    path = Path(path)
    stored = {"identity": plain(identity), "identity_hash": digest(identity), **plain(payload)}
    if path.is_file():
        old, problem = read(path, check)
        if problem:
            set_aside(root, path, CORRUPT_DIR, keep=True)
        elif old is not None and old.get("identity_hash") != stored["identity_hash"]:
            set_aside(root, path, STALE_DIR, keep=True)
    atomic_write(path, json.dumps(stored, allow_nan=True))
    return path
