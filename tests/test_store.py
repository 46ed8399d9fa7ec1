"""The one artifact store: its read-compare rule and set-aside policy, a kill -9 in the middle of every artifact's
write, and a changed held-out probe that recomputes the sensitivity rows, the forgetting rows and the scorecard
without retraining a model (from kept weights; where weights are not kept, it is reported with the fix)."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from amuro_utils import pipeline
from amuro_utils.config import paths
from amuro_utils.config.profiles import PAPER, SensitivitySettings
from amuro_utils.models import ladder
from amuro_utils.run import runner
from amuro_utils.store import artifacts, identity
from amuro_utils.study import plan

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------------------------
# the rule and the policy


def test_status_is_done_stale_missing_or_corrupt_and_a_replaced_file_is_kept_aside(tmp_path):
    path, old, new = tmp_path / "rows" / "a.json", {"probe": {"tokens": 512}}, {"probe": {"tokens": 256}}
    assert artifacts.status(path, old).state == "missing"
    artifacts.write(tmp_path, path, old, {"rows": [1, 2]})
    assert artifacts.status(path, old).state == "done" and artifacts.load(path, old)["rows"] == [1, 2]
    assert artifacts.status(path, new) == artifacts.Status("stale", ("probe.tokens",), path)
    assert artifacts.load(path, new) is None
    artifacts.write(tmp_path, path, new, {"rows": [3]})
    kept = list((tmp_path / artifacts.STALE_DIR / "rows").glob("a.*.json"))
    assert len(kept) == 1 and json.loads(kept[0].read_text())["rows"] == [1, 2]  # never lost
    artifacts.write(tmp_path, path, new, {"rows": [4]})  # the same identity: replaced, nothing more kept aside
    assert len(list((tmp_path / artifacts.STALE_DIR).rglob("*.json"))) == 1
    path.write_text('{"identity": ')
    assert artifacts.status(path, new).state == "corrupt"
    artifacts.write(tmp_path, path, new, {"rows": [5]})
    assert len(list((tmp_path / artifacts.CORRUPT_DIR).rglob("*.json"))) == 1


def test_an_artifact_written_before_hashes_compares_by_its_identity(tmp_path):
    """Job markers and the ladder summary of earlier versions carry an identity but no hash."""
    path = tmp_path / "jobs" / "01_pretrain_probe.done"
    path.parent.mkdir()
    path.write_text(json.dumps({"identity": {"writes": ["ab"]}, "seconds": 3.0}))
    assert artifacts.status(path, {"writes": ["ab"]}).state == "done"
    assert artifacts.status(path, {"writes": ["cd"]}).changed == ("writes",)


def test_a_failed_folder_write_leaves_the_old_folder_and_no_partial(tmp_path):
    out = tmp_path / "models" / "main" / "mnli.full.seed42"
    with artifacts.atomic_folder(out) as folder:
        (folder / "weights.bin").write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk gone"):
        with artifacts.atomic_folder(out) as folder:
            (folder / "weights.bin").write_bytes(b"ne")
            raise RuntimeError("disk gone")
    assert (out / "weights.bin").read_bytes() == b"old"
    assert [p.name for p in out.parent.iterdir()] == ["mnli.full.seed42"]


# ---------------------------------------------------------------------------------------------------------------
# kill -9 in the middle of every artifact's write

# A child process that rewrites one kind of artifact through its own writer, alternating two versions (identities A
# and B) with payloads large enough that a kill lands inside a write. Each artifact's payload says which version it
# is, so the parent can check that what is on disk is one whole version.
_WRITER = r"""
import dataclasses, sys
from pathlib import Path
import numpy as np
import pandas as pd
from amuro_utils.config import paths
from amuro_utils.models import ladder, tiny_ladder
from amuro_utils.run import runner
from amuro_utils.store import results
from amuro_utils.study import jobs, plan
from amuro_utils.verdicts import scorecard
from amuro_utils.config.profiles import SMOKE, TINY
from tests.conftest import tiny_olmo

root, start, kind = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
paths.RESULTS_ROOT = root / "results"
ckpt = ladder.Checkpoint("main", "tiny-olmo", "amuro-local/tiny-olmo", "main", "c" * 40, 160)
big = list(np.linspace(0, 1, 100_000))
profiles = [dataclasses.replace(p, name="kill") for p in (SMOKE, TINY)]  # two settings: every identity differs
spec = {v: plan.fine_tunes(p, p.task("mnli"))[0] for v, p in enumerate(profiles)}
model = tiny_olmo(hidden=64) if kind == "weights" else None
runner.job_identity = lambda profile, job, cache=None: {"version": profile.eval_limit}
tiny_ladder._plot_loss = lambda summary, stem: []
tiny_ladder.corpus_docs = lambda settings: ["a passage"]
refs = lambda cache: ladder.repo_folder(cache, "amuro-local/tiny-olmo") / "refs"


def pretrain(settings, docs, cache, progress):
    # a stand-in for pre-training: a large weight file, and a branch whose commit names the version
    refs(cache).mkdir(parents=True)
    (cache / "weights.bin").write_bytes(bytes([settings.seed]) * 5_000_000)
    (refs(cache) / "main").write_text(f"commit{settings.seed}")
    return {"train": {"step": [1], "loss": [1.0]}, "heldout": {"step": [1], "loss": [1.0]},
            "branches": {"main": f"commit{settings.seed}"}, "unigram_entropy": 9.0, "train_tokens": 1,
            "heldout_tokens": 1, "train_docs": 1, "heldout_docs": 1, "params": 1}


tiny_ladder._pretrain = pretrain


def write(v):
    profile = profiles[v]
    if kind == "record":
        key, wanted = plan.record_requests(plan.jobs(profile)[0], {"repo": "amuro-local/tiny-olmo", "commit": "c"})[0]
        results.Store(root / "results" / "kill" / "records").write(
            key, {"metric": "accuracy", "performance": float(v)}, {"version": v}, scores=big, identity=wanted)
    elif kind == "training record":
        jobs._write_training_record(profile, ckpt, spec[v], {"loss": big, "lr": [0.1], "n_examples": v,
                                                             "zero_step_loss": 1.0},
                                    {"version": v})
    elif kind == "forgetting rows":
        jobs._write_forgetting(profile, ckpt, spec[v], np.full(100_000, v), np.full(100_000, v), {"version": v})
    elif kind == "sensitivity rows":
        rows = pd.DataFrame({"scaling": ["init"], "magnitude": [1.0], "seed": [0], "base_loss": [1.0], "loss": [1.0],
                             "delta_loss": [0.0], "block_deltas": [big], "n_tokens": [v]})
        jobs._write_sensitivity(profile, ckpt, rows, {"version": v})
    elif kind == "scorecard":
        scorecard._write_scorecard(profile, {"version": v}, {"claims": [{"id": "S1", "value": float(v), "big": big}]})
    elif kind == "job marker":
        runner.write_marker(profile, plan.notebook_jobs(profile)[0], float(v))
    elif kind == "weights":
        jobs._save_weights(profile, ckpt, spec[v], lambda folder: model.save_pretrained(folder),
                           {"loss": [float(v)]}, {"version": v}, {"version": v})
    else:
        tiny_ladder.build_tiny_ladder(dataclasses.replace(SMOKE.tiny_ladder, seed=v, save_steps=(20,), total_steps=20),
                                      force=True, out_dir=root / "ladder", progress=False)


print("ready", flush=True)
i = start  # launches alternate which version they write first
while True:
    write(i % 2)
    i += 1
"""
KINDS = ("record", "training record", "forgetting rows", "sensitivity rows", "scorecard", "job marker", "weights",
         "ladder")


def _whole_versions(root: Path) -> dict[str, int | None]:
    """artifact -> the version (0 or 1) that is on disk, whole; None where none is there yet. Fails on a part."""
    results = root / "results" / "kill"
    found = {}
    records = list((results / "records").glob("*/*/*/*.json"))
    for name, paths_, version_of in [
        ("record", records, lambda a: a["provenance"]["version"]),
        ("training record", list(results.glob("fine_tunes/*/*.json")), lambda a: a["provenance"]["version"]),
        ("forgetting rows", list(results.glob("forgetting/*/*.json")), lambda a: a["provenance"]["version"]),
        ("sensitivity rows", list(results.glob("sensitivity/*.json")), lambda a: a["provenance"]["version"]),
        ("scorecard", [results / "scorecard.json"], lambda a: a["identity"]["version"]),
        ("job marker", list(results.glob("jobs/*.done")), lambda a: int(a["seconds"])),
        ("weights", list(results.glob("models/*/*/DONE")), lambda a: a["summary"]["version"]),
        ("ladder", [root / "ladder" / "tiny_ladder.json"], lambda a: a["settings"]["seed"]),
    ]:
        versions = set()
        for path in (p for p in paths_ if p.exists() and not any(part.startswith(".") for part in p.parts[-4:])):
            stored = json.loads(path.read_text())  # a part would not parse
            assert stored["identity_hash"] == identity.digest(stored["identity"]), path
            versions.add(version_of(stored))
            if name == "weights":  # the folder's weights are the ones its DONE names: a complete save
                assert (path.parent / "model.safetensors").stat().st_size > 10_000_000
            if name == "ladder":  # a summary vouches only for a cache whose branches it recorded: then it is its own
                cache = root / "ladder" / "hub_cache"
                ref = ladder.repo_folder(cache, "amuro-local/tiny-olmo") / "refs" / "main"
                if ref.read_text() == stored["branches"]["main"]:
                    assert (cache / "weights.bin").read_bytes()[:1] == bytes([version_of(stored)])
        assert len(versions) <= 1, f"{name}: more than one version on disk {versions}"
        found[name] = versions.pop() if versions else None
    return found


@pytest.mark.slow
def test_kill_9_in_the_middle_of_every_artifacts_write_leaves_the_old_or_the_new_one(tmp_path):
    """SIGKILL (no cleanup runs) at random moments while a process rewrites records, training records, forgetting
    rows, sensitivity rows, the scorecard, job markers, fine-tuned weights and the tiny ladder: every artifact on
    disk is always one whole version, and every kind was seen in both versions."""
    rng, seen, inside = random.Random(0), {}, 0
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def temps() -> set[Path]:  # what a write in progress leaves when it is killed: never read as an artifact
        return {p for p in tmp_path.rglob("*") if ".partial-" in p.name or ".old-" in p.name or p.name.endswith(".tmp")}

    launch = 0  # two rounds of every kind, and more (up to six) until three kills landed inside a write
    while launch < 2 * len(KINDS) or (inside < 3 and launch < 6 * len(KINDS)):
        kind, before = KINDS[launch % len(KINDS)], temps()
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), str(launch // len(KINDS) % 2), kind],
                                cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[-3000:]
        time.sleep(rng.uniform(1.5, 5.0))
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        inside += bool(temps() - before)  # the kill landed inside a write
        for name, version in _whole_versions(tmp_path).items():
            seen.setdefault(name, set()).add(version)
        launch += 1
    assert all(v - {None} for v in seen.values()), f"an artifact was never written whole: {seen}"
    assert inside >= 3, f"only {inside} of {launch} kills landed inside a write"
    assert all(p.name.startswith(".") for p in temps())


# ---------------------------------------------------------------------------------------------------------------
# a changed held-out probe: the probe's rows, the forgetting rows and the scorecard are recomputed, no model retrains


def _probe_profile(tmp_path, monkeypatch, keep_weights: bool):
    """The paper profile's code path cut to seconds (offline hub, tiny random OLMo), two checkpoints and one task."""
    monkeypatch.setattr(paths, "RESULTS_ROOT", tmp_path / "results")
    monkeypatch.setattr(paths, "FIGURES_ROOT", tmp_path / "figures")
    mnli = PAPER.task("mnli")
    mnli = dataclasses.replace(mnli, in_domain=("mnli_matched",), ood=("rte",), n_train=8,
                               train=dataclasses.replace(mnli.train, micro_batch_size=4, max_length=256))
    return dataclasses.replace(
        PAPER, name=f"probe-test-{keep_weights}", ckpts=("step1000", "main"), tasks=(mnli,),
        instruction=dataclasses.replace(PAPER.instruction, benchmarks=("arc_easy",), llmbar=()), overtraining_pair=None,
        data_source="offline", eval_limit=6, eval_batch_size=6, max_length=512, device="cpu", eval_dtype="float32",
        formats=("default",), prune_revisions=False, jobs_per_ckpt=False, keep_weights=keep_weights,
        sensitivity=SensitivitySettings(magnitudes=(3.0,), seeds=2, tokens=512, block=64, batch_size=8, also={}))


def _snapshot(root: Path, *folders: str) -> dict[Path, bytes]:
    return {p: p.read_bytes() for folder in folders for p in (root / folder).rglob("*") if p.is_file()}


def _study(prof) -> None:
    pipeline.run_base(prof, progress=False)
    pipeline.sensitivity(prof, progress=False)
    pipeline.run_sft(prof, progress=False)
    for job in plan.notebook_jobs(prof):
        runner.write_marker(prof, job, 1.0)


@pytest.mark.slow
def test_a_changed_probe_token_count_recomputes_probe_forgetting_and_scorecard_from_kept_weights(
        offline_olmo_hub, tmp_path, monkeypatch):
    from amuro_utils.models import train

    prof = _probe_profile(tmp_path, monkeypatch, keep_weights=True)
    _study(prof)
    pipeline.scorecard(prof)
    root = paths.RESULTS_ROOT / prof.name
    before = _snapshot(root, "records", "fine_tunes", "models")
    scorecard = json.loads((root / "scorecard.json").read_text())["identity_hash"]
    shorter = dataclasses.replace(prof, sensitivity=dataclasses.replace(prof.sensitivity, tokens=256))
    stale = {job.id for job in plan.notebook_jobs(shorter) if runner.job_state(shorter, job).state == "stale"}
    # not format, transfer, ood: the scorecard is the last notebook's (beyond), which reads every held-out loss
    assert stale == {"01_pretrain_probe", "02_instruction_tuning", "03_sft", "07_beyond"}

    monkeypatch.setattr(train, "fine_tune", lambda *a, **k: pytest.fail("a model was retrained"))
    sens = pipeline.sensitivity(shorter, progress=False)
    assert set(sens["n_tokens"]) == {4 * 63} and sens["block_deltas"].iloc[0].shape == (4,)  # 4 blocks of 64
    outcomes = pipeline.run_sft(shorter, progress=False)
    assert outcomes["status"].tolist() == ["ran", "ran"] and outcomes["records"].tolist() == [0, 0]
    forgetting = pipeline.forgetting_frame(shorter)
    assert len(forgetting) == 2 and all(d.shape == (4,) for d in forgetting["block_deltas"])
    assert _snapshot(root, "records", "fine_tunes", "models") == before  # no record, loss curve or weight rewritten
    assert len(list((root / ".stale" / "forgetting").rglob("*.json"))) == 2  # the old rows, kept aside
    assert len(list((root / ".stale" / "sensitivity").rglob("*.json"))) == 2
    pipeline.scorecard(shorter)
    card = json.loads((root / "scorecard.json").read_text())
    assert card["identity_hash"] != scorecard
    assert identity.changed_fields(json.loads(next((root / ".stale").glob("scorecard.*.json")).read_text())["identity"],
                                   card["identity"]) == ["dynamics", "forgetting", "sensitivity"]  # stale dynamics out


@pytest.mark.slow
def test_stale_forgetting_without_kept_weights_is_reported_with_the_fix_never_retrained(
        offline_olmo_hub, tmp_path, monkeypatch):
    from amuro_utils.models import train

    prof = _probe_profile(tmp_path, monkeypatch, keep_weights=False)
    _study(prof)
    shorter = dataclasses.replace(prof, sensitivity=dataclasses.replace(prof.sensitivity, tokens=256))
    monkeypatch.setattr(train, "fine_tune", lambda *a, **k: pytest.fail("a model was retrained"))
    outcomes = pipeline.run_sft(shorter, progress=False)
    # the records along each fine-tuning hold its held-out loss too: stale, reported, and not retrained for either
    assert outcomes["status"].tolist() == ["forgetting stale, dynamics stale: weights not kept"] * 2
    forgetting = pipeline.forgetting_frame(shorter)
    assert forgetting.empty and len(forgetting.attrs["left_out"]) == 2
    assert "stale (changed: heldout.tokens)" in forgetting.attrs["left_out"][0]
    assert len(pipeline.training_frame(shorter)) == 2  # the loss curves are still current
    status = runner.status(shorter)
    assert "stale    step1000/mnli.full.seed42 forgetting (changed: heldout.tokens)" in status
    assert f"--rerun 03_sft" in status and "keep_weights=true" in status
    pipeline.scorecard(shorter)
    card = (paths.FIGURES_ROOT / prof.name.replace("-", "_") / "claims.md").read_text()
    s3 = next(line for line in card.splitlines() if line.startswith("| S3"))
    assert "not measurable" in s3 and "Left out: step1000/mnli.full.seed42 forgetting: stale" in s3
    assert "--rerun" in s3
