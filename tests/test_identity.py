"""Results that know their settings: every class of setting recomputes exactly the records that depend on it; stale,
corrupt and half-written records never answer a request; migration of schema-1 records; ENOSPC."""

from __future__ import annotations

import dataclasses
import errno
import json
import logging

import pytest
from checks import mixed_settings

from amuro_utils import pipeline
from amuro_utils.config import paths
from amuro_utils.config.profiles import PAPER, SMOKE, SensitivitySettings, fixed_paraphrase
from amuro_utils.data import tasks
from amuro_utils.models import ladder
from amuro_utils.store import artifacts, identity, results
from amuro_utils.study import plan

TINY = SMOKE  # the tiny profile at its smallest: two checkpoints, so every test writes ~200 records, not ~700

COMMITS = {c: f"{i:040x}" for i, c in enumerate(TINY.ckpts)}
METRICS = {"metric": "accuracy", "performance": 0.5, "mean": 0.5, "std": 0.1, "ci_low": 0.4, "ci_high": 0.6, "n": 4}


def _requests(profile, commits=COMMITS):
    """(key, identity) of every record of the profile's plan, with made-up commits (no model is loaded)."""
    return [req for job in plan.jobs(profile)
            for req in plan.record_requests(job, identity.model_identity("amuro-local/tiny-olmo", commits[job.ckpt]))]


def _recorded(tmp_path):
    """A store holding every record of the TINY plan (made-up metrics) under the current settings."""
    store = results.Store(tmp_path / "records")
    for key, wanted in _requests(TINY):
        store.write(key, METRICS, {}, identity=wanted)
    return store


def _stale_after(tmp_path, changed, commits=COMMITS, store=None):
    """Record the TINY plan (unless `store` holds it), then list the records that `changed` (a profile) finds stale,
    and those it finds new."""
    store = store or _recorded(tmp_path)
    stale, new = set(), set()
    for key, wanted in _requests(changed, commits):
        state = store.status(key, wanted).state
        cell = (key["ckpt"], key["fine_tune"], key["eval_set"], key["format"])
        if state == "stale":
            stale.add(cell)
        elif state == "missing":
            new.add(cell)
        else:
            assert state == "done", state
    return stale, new


def _cells(profile, where):
    return {(k["ckpt"], k["fine_tune"], k["eval_set"], k["format"]) for k, _ in _requests(profile) if where(k)}


def test_learning_rate_and_sample_size_restale_only_that_task(tmp_path):
    xsum = TINY.task("xsum")
    faster = dataclasses.replace(TINY, tasks=tuple(dataclasses.replace(t, train=dataclasses.replace(t.train, lr=1e-3))
                                                   if t is xsum else t for t in TINY.tasks))
    stale, new = _stale_after(tmp_path / "lr", faster)
    assert stale == _cells(TINY, lambda k: k["fine_tune"] == "xsum") and not new
    bigger = dataclasses.replace(TINY, tasks=tuple(dataclasses.replace(t, n_train=t.n_train + 8) if t is xsum else t
                                                   for t in TINY.tasks))
    assert _stale_after(tmp_path / "n", bigger) == (stale, set())


def test_eval_limit_and_bootstrap_seed_restale_every_record(tmp_path):
    everything = _cells(TINY, lambda k: True)
    assert _stale_after(tmp_path / "limit", dataclasses.replace(TINY, eval_limit=100)) == (everything, set())
    assert _stale_after(tmp_path / "seed", dataclasses.replace(TINY, bootstrap_seed=1)) == (everything, set())


def test_generation_and_llmbar_settings_restale_only_their_sets(tmp_path):
    generation = _cells(TINY, lambda k: tasks.get(k["eval_set"]).kind == "generation")
    assert _stale_after(tmp_path / "tokens", dataclasses.replace(TINY, max_new_tokens=30)) == (generation, set())
    llmbar = _cells(TINY, lambda k: k["eval_set"].startswith("llmbar_"))
    assert _stale_after(tmp_path / "leak", dataclasses.replace(TINY, llmbar_gold_leak=True)) == (llmbar, set())


def test_a_new_commit_restales_that_checkpoint_only(tmp_path):
    stale, new = _stale_after(tmp_path, TINY, {**COMMITS, "main": "f" * 40})
    assert stale == _cells(TINY, lambda k: k["ckpt"] == "main") and not new


def test_a_template_fix_restales_its_set_and_the_models_trained_on_it(tmp_path, monkeypatch):
    store = _recorded(tmp_path)
    instruct = ("mnli_matched", "instruct")
    nli = tasks.get("mnli_matched")
    fixed = {**nli.templates, "instruct": nli.templates["instruct"].replace("The relation is ", "The relation is: ")}
    monkeypatch.setitem(tasks.REGISTRY, "mnli_matched", dataclasses.replace(nli, templates=fixed))
    stale, new = _stale_after(tmp_path, TINY, store=store)
    assert stale == _cells(TINY, lambda k: (k["eval_set"], k["format"]) == instruct) and not new
    train = tasks.get("mnli")
    monkeypatch.setitem(tasks.REGISTRY, "mnli", dataclasses.replace(
        train, templates={"default": train.templates["default"].replace("### Inference: ", "### Label: ")}))
    stale, _ = _stale_after(tmp_path, TINY, store=store)
    assert stale == _cells(TINY, lambda k: k["fine_tune"] == "mnli" or (k["eval_set"], k["format"]) == instruct)


def test_dataset_variants_live_side_by_side(tmp_path):
    """The paper's paraphrase OOD sets and their labelled GLUE entries are different records in one store."""
    paper_like = dataclasses.replace(PAPER, data_source="offline")
    store = results.Store(tmp_path)
    commits = {c: "a" * 40 for c in PAPER.ckpts}
    for profile in (paper_like, fixed_paraphrase(paper_like)):
        for key, wanted in [r for job in plan.jobs(profile) if job.task == "paws" and job.ckpt == "main"
                            for r in plan.record_requests(job, identity.model_identity(job.profile.ladder, commits[job.ckpt]))]:
            store.write({**key, "model": "allenai/OLMo-1B-hf"}, METRICS, {}, identity=wanted)
    sets = set(store.frame()["eval_set"])
    assert {"qqp", "qqp_glue", "stsb", "stsb_glue", "paws"} <= sets


def test_sensitivity_identity_follows_the_noise_grid():
    point = identity.model_identity("amuro-local/tiny-olmo", "a" * 40)
    base = identity.sensitivity_identity(point, TINY.sensitivity, TINY.tiny_ladder)
    other = identity.sensitivity_identity(point, dataclasses.replace(TINY.sensitivity, magnitudes=(0.5, 1.0)),
                                          TINY.tiny_ladder)
    assert identity.changed_fields(base, other) == ["probe.magnitudes"]


# ---------------------------------------------------------------------------------------------------------------
# dataset pins: the commit a hub source is read at is part of every record identity that reads the source


def test_moving_one_pin_restales_exactly_the_records_that_read_its_source(tmp_path, monkeypatch):
    """Every record of the paper plan, its hub sources pinned; a moved pin restales the records whose evaluation
    set or training set reads that source, and nothing else; where a pin came from changes nothing."""
    pins = {key: tasks.Pin(f"{i + 1:040x}", "public code that pins it, 2024-07-08")
            for i, key in enumerate(sorted({tasks.pin_key(d.hub) for d in tasks.REGISTRY.values() if tasks.reads_hub(d)}))}
    commits = {c: f"{i:040x}" for i, c in enumerate(sorted({job.ckpt for job in plan.jobs(PAPER)}))}

    def requests(pinned):
        monkeypatch.setattr(tasks, "REGISTRY", tasks.with_pins(pinned))
        return [r for job in plan.jobs(PAPER)
                for r in plan.record_requests(job, identity.model_identity("allenai/OLMo-1B-hf", commits[job.ckpt]))]

    store = results.Store(tmp_path / "records")
    for key, wanted in requests(pins):
        store.write(key, METRICS, {}, identity=wanted)
    everything = {tuple(key.values()) for key, _ in requests(pins)}

    def stale_after(moved: dict) -> set:
        states = {tuple(key.values()): store.status(key, wanted).state for key, wanted in requests({**pins, **moved})}
        assert set(states.values()) <= {"done", "stale"} and set(states) == everything
        return {cell for cell, state in states.items() if state == "stale"}

    def cells(where) -> set:
        return {tuple(key.values()) for key, _ in requests(pins) if where(key)}

    glue, arc = "nyu-mll/glue@main", "allenai/ai2_arc@main"
    # nyu-mll/glue: MNLI's training set (the 112 records of MNLI-tuned models) and the MNLI / RTE evaluations of the
    # base and other fine-tuned models (112 more), of the paper plan's 860 records.
    reads_glue = cells(lambda k: k["fine_tune"] == "mnli" or k["eval_set"] in ("mnli_matched", "mnli_mismatched", "rte"))
    assert stale_after({glue: tasks.Pin("f" * 40, "resolved 2026-12-06")}) == reads_glue
    assert (len(reads_glue), len(everything)) == (224, 860)
    assert stale_after({glue: tasks.Pin(None)}) == reads_glue  # unpinned (--allow-unpinned) is another identity too
    # allenai/ai2_arc: evaluation only (ARC-Easy and ARC-Challenge, 16 records of base models and 18 of TULU-tuned).
    reads_arc = cells(lambda k: k["eval_set"] in ("arc_easy", "arc_challenge"))
    assert stale_after({arc: tasks.Pin("e" * 40, "resolved 2026-12-06")}) == reads_arc and len(reads_arc) == 34
    # The same commits with other provenance: nothing is stale.
    assert stale_after({key: tasks.Pin(pin.commit, "resolved 2026-12-06", "a note") for key, pin in pins.items()}) \
        == set()


# ---------------------------------------------------------------------------------------------------------------
# code enters an identity through its declared versions only: bumping one marks exactly what that code made stale


def _artifact_identities(profile, commits=COMMITS) -> dict[str, dict]:
    """what -> identity of every fine-tuned model's weights, training record and forgetting rows, and every
    checkpoint's sensitivity rows."""
    resolve = lambda label: ladder.Checkpoint(label, profile.ladder, "amuro-local/tiny-olmo", label,  # noqa: E731
                                              commits[label], None)
    out = {}
    for kind in ("training", "forgetting", "sensitivity"):
        out.update({what: wanted for what, _, wanted in plan.artifacts(profile, kind, plan.jobs(profile), resolve)})
    for job in plan.jobs(profile):
        for spec in job.fine_tunes:
            out[f"{job.ckpt}/{spec.name} weights"] = plan.weights_identity(profile, resolve(job.ckpt), spec)
    return out


def _changed_artifacts(before: dict, after: dict) -> set[str]:
    return {what for what in before if identity.digest(before[what]) != identity.digest(after[what])}


def test_reformatting_a_builder_changes_nothing_and_bumping_its_version_restales_its_sets(tmp_path, monkeypatch):
    store = _recorded(tmp_path)
    reformatted = tasks.builder(version=1)(lambda row: tasks._arc(row))  # same output, other source text
    arc = tasks.get("arc_easy")
    monkeypatch.setitem(tasks.REGISTRY, "arc_easy", dataclasses.replace(
        arc, target=dataclasses.replace(arc.target, build=reformatted)))
    assert _stale_after(tmp_path, TINY, store=store) == (set(), set())
    monkeypatch.undo()
    monkeypatch.setattr(tasks._hellaswag, "version", 2)  # e.g. after an edit of _hellaswag_clean, which it calls
    stale, new = _stale_after(tmp_path, TINY, store=store)
    assert stale == _cells(TINY, lambda k: k["eval_set"] == "hellaswag") and stale and not new
    monkeypatch.setattr(tasks._arc, "version", 2)  # one builder, two sets
    stale, _ = _stale_after(tmp_path, TINY, store=store)
    assert stale == _cells(TINY, lambda k: k["eval_set"] in ("hellaswag", "arc_easy", "arc_challenge"))


def test_a_builder_without_a_declared_version_is_refused():
    undeclared = dataclasses.replace(tasks.get("piqa").target, build=lambda row: tasks._piqa(row))
    with pytest.raises(ValueError, match=r"declares no version; decorate it with @builder\(version=1\)"):
        undeclared.version


def test_a_scorer_version_restales_exactly_the_records_it_scored(tmp_path, monkeypatch):
    store = _recorded(tmp_path)
    monkeypatch.setitem(identity.SCORER_VERSIONS, "generation", identity.SCORER_VERSIONS["generation"] + 1)
    stale, new = _stale_after(tmp_path, TINY, store=store)
    assert stale == _cells(TINY, lambda k: tasks.get(k["eval_set"]).kind == "generation") and stale and not new
    before = _artifact_identities(TINY)
    assert _changed_artifacts(before, _artifact_identities(TINY)) == set()  # weights and probes: not scored


def test_a_recipe_version_restales_its_fine_tunes_and_what_they_made(tmp_path, monkeypatch):
    store = _recorded(tmp_path)
    before = _artifact_identities(TINY)
    monkeypatch.setitem(identity.RECIPE_VERSIONS, "chat", 2)
    stale, new = _stale_after(tmp_path, TINY, store=store)
    assert stale == _cells(TINY, lambda k: k["fine_tune"] == TINY.instruction.name) and stale and not new
    changed = _changed_artifacts(before, _artifact_identities(TINY))
    assert changed == {what for what in before if f"/{TINY.instruction.name}" in what} and changed


def test_the_probe_version_restales_sensitivity_and_forgetting_rows_only(tmp_path, monkeypatch):
    store = _recorded(tmp_path)
    before = _artifact_identities(TINY)
    monkeypatch.setattr(identity, "PROBE_VERSION", 2)
    assert _stale_after(tmp_path, TINY, store=store) == (set(), set())
    changed = _changed_artifacts(before, _artifact_identities(TINY))
    assert changed == {w for w in before if w.endswith((" sensitivity", " forgetting"))}


def test_the_prompt_version_restales_every_record_and_every_fine_tune(tmp_path, monkeypatch):
    store = _recorded(tmp_path)
    before = _artifact_identities(TINY)
    monkeypatch.setattr(identity, "PROMPT_VERSION", 2)
    assert _stale_after(tmp_path, TINY, store=store) == (_cells(TINY, lambda k: True), set())
    assert _changed_artifacts(before, _artifact_identities(TINY)) == {
        w for w in before if not w.endswith(" sensitivity")}


def test_the_claims_version_restales_the_jobs_that_judge_claims_only(monkeypatch):
    from amuro_utils.run import runner

    _resolvable(monkeypatch)
    jobs = plan.notebook_jobs(TINY)
    before = {job.id: runner.job_identity(TINY, job) for job in jobs}
    monkeypatch.setattr(identity, "CLAIMS_VERSION", identity.CLAIMS_VERSION + 1)
    after = {job.id: runner.job_identity(TINY, job) for job in jobs}
    assert {j for j in before if before[j] != after[j]} == {job.id for job in jobs if job.reads}
    assert all(identity.changed_fields(before[j], after[j]) == ["analysis.claims_version"] for j in before
               if before[j] != after[j])


def test_forgetting_is_its_own_artifact_keyed_by_the_weights_and_the_heldout_text(monkeypatch):
    """The probe's token count changes the forgetting and sensitivity rows, never a fine-tuned model's identity."""
    before = _artifact_identities(TINY)
    more = dataclasses.replace(TINY, sensitivity=dataclasses.replace(TINY.sensitivity, tokens=256))
    after = _artifact_identities(more)
    assert _changed_artifacts(before, after) == {w for w in before if w.endswith((" sensitivity", " forgetting"))}
    forgetting = next(w for w in before if w.endswith(" forgetting"))
    assert identity.changed_fields(before[forgetting], after[forgetting]) == ["heldout.tokens"]
    noise = dataclasses.replace(TINY, sensitivity=dataclasses.replace(TINY.sensitivity, seeds=9))
    assert _changed_artifacts(before, _artifact_identities(noise)) == {w for w in before if w.endswith(" sensitivity")}


def test_cosmetic_and_execution_settings_change_nothing(tmp_path):
    cosmetic = dataclasses.replace(TINY, figure_note="another note", description="x", eval_batch_size=3,
                                   jobs_per_ckpt=True, keep_weights=True)
    assert _stale_after(tmp_path, cosmetic) == (set(), set())


def test_stale_record_is_set_aside_when_recomputed_and_changed_fields_are_named(tmp_path):
    store = results.Store(tmp_path)
    key, wanted = _requests(TINY)[0]
    store.write(key, METRICS, {}, identity=wanted)
    newer = identity.record_identity(dataclasses.replace(TINY, eval_limit=32), wanted["model"], None,
                                     key["eval_set"], key["format"])
    status = store.status(key, newer)
    assert status.state == "stale" and status.changed == ("eval.items.limit",)
    store.write(key, {**METRICS, "performance": 0.7}, {}, identity=newer)
    assert store.status(key, newer).state == "done"
    kept = list((tmp_path / results.STALE_DIR).rglob("*.json"))
    assert len(kept) == 1 and json.loads(kept[0].read_text())["metrics"]["performance"] == 0.5
    assert len(store.frame()) == 1  # records set aside are not read back


def test_corrupt_record_is_reported_with_its_path_and_replaced(tmp_path, caplog):
    store = results.Store(tmp_path)
    key, wanted = _requests(TINY)[0]
    path = store.write(key, METRICS, {}, identity=wanted)
    path.write_text('{"schema": 2, "key": {"model"')
    status = store.status(key, wanted)
    assert status.state == "corrupt" and "not valid JSON" in status.changed[0] and status.path == path
    with caplog.at_level(logging.WARNING, logger="amuro_utils.store.results"):
        store.frame()
    assert str(path) in caplog.text
    store.write(key, METRICS, {}, identity=wanted)
    assert store.status(key, wanted).state == "done"
    assert len(list((tmp_path / results.CORRUPT_DIR).rglob("*.json"))) == 1


def test_no_space_left_gives_a_clear_error_and_leaves_nothing_valid(tmp_path, monkeypatch):
    store = results.Store(tmp_path)
    key, wanted = _requests(TINY)[0]
    real_fdopen = artifacts.os.fdopen

    class Full:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, text):
            self.handle.write(text[: len(text) // 3])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(artifacts.os, "fdopen", lambda fd, *a, **k: Full(real_fdopen(fd, *a, **k)))
    with pytest.raises(OSError, match="no space left on the device writing .*free disk space and rerun"):
        store.write(key, METRICS, {}, identity=wanted)
    monkeypatch.undo()
    assert store.status(key, wanted).state == "missing"
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no temp file, no partial record
    store.write(key, METRICS, {}, identity=wanted)  # a rerun finishes
    assert store.status(key, wanted).state == "done"


def test_schema_1_records_are_migrated_and_count_as_stale(tmp_path, caplog):
    old_key = {"model": "amuro-local/tiny-olmo", "ckpt": "step10", "fine_tune": "mnli", "eval_set": "rte",
               "format": "default", "shots": 4}
    old = tmp_path / "amuro-local--tiny-olmo" / "step10" / "mnli" / "rte__default__4shot.json"
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"schema": 1, "key": old_key, "metrics": METRICS, "provenance": {"seed": 42},
                               "scores": [1, 0], "predictions": ["a", "b"]}))
    store = results.Store(tmp_path)
    with caplog.at_level(logging.WARNING, logger="amuro_utils.store.results"):
        assert store.migrate() == 1
    assert "count as stale" in caplog.text and not old.exists()
    key = {**old_key, "method": "full", "seed": 42}
    record = store.read(**key)
    assert record["migrated_from"] == 1 and record["scores"] == [1, 0]
    wanted = dict(_requests(TINY)[0][1])
    assert store.status(key, wanted) == results.RecordStatus("stale", ("(no settings identity recorded)",),
                                                              store.path(**key))
    assert store.migrate() == 0  # idempotent


def _resolvable(monkeypatch, commits=COMMITS):
    """Make the made-up commits what the ladder labels resolve to (no ladder is built here)."""
    monkeypatch.setattr(plan, "resolve", lambda profile, label: ladder.Checkpoint(
        label, profile.ladder, "amuro-local/tiny-olmo", label, commits[label], None))


def test_load_frame_reads_only_current_records_and_says_how_many_are_left_out(tmp_path, monkeypatch):
    """A stage's figures read the records current under today's settings: never a frame of mixed settings, and never
    a refusal because another job's records are stale."""
    monkeypatch.setattr(paths, "RESULTS_ROOT", tmp_path)
    _resolvable(monkeypatch)
    store = pipeline.store(TINY)
    requests = _requests(TINY)
    base = [(k, w) for k, w in requests if k["fine_tune"] == "base"]
    tuned = [(k, w) for k, w in requests if k["fine_tune"] == "mnli"]
    for key, wanted in base + tuned:
        store.write(key, METRICS, {}, identity=wanted)
    smaller = dataclasses.replace(TINY, eval_limit=5)
    for key, wanted in _requests(smaller):  # as if the base job had rerun under the new limit, the others not yet
        if key["fine_tune"] == "base":
            store.write(key, METRICS, {}, identity=wanted)
    frame = pipeline.load_frame(smaller, kinds=("base",))
    assert len(frame) == len(base) and frame.attrs["left_out"] == {}
    assert mixed_settings(pipeline.load_frame(smaller, items=True)) == []
    both = pipeline.load_frame(smaller, kinds=("base", "sft"))
    assert len(both) == len(base) and both.attrs["left_out"] == {"sft": len(tuned)}
    assert f"Left out: {len(tuned)} sft records made under other settings" in both.attrs["note"]
    assert "the sft job(s) recompute them" in both.attrs["note"]
    everything = pipeline.load_frame(smaller, stale=True)
    assert len(everything) == len(base) + len(tuned)
    assert any("eval.items.limit" in line for line in mixed_settings(
        pipeline.load_frame(smaller, items=True, stale=True)))
    # records of a model today's profile does not make (another training seed) are not current either
    reseeded = dataclasses.replace(smaller, seeds=(7,))
    assert pipeline.load_frame(reseeded, kinds=("sft",)).attrs["left_out"] == {"sft": len(tuned)}


def test_changed_lr_recomputes_only_that_fine_tune_end_to_end(offline_olmo_hub, tmp_path, monkeypatch):
    """The real pipeline on the paper's code path (tiny random OLMo in an offline HF cache)."""
    monkeypatch.setattr(paths, "RESULTS_ROOT", tmp_path / "results")
    mnli = dataclasses.replace(PAPER.task("mnli"), in_domain=("mnli_matched",), ood=("rte",), n_train=8,
                               train=dataclasses.replace(PAPER.task("mnli").train, micro_batch_size=4, max_length=256))
    prof = dataclasses.replace(
        PAPER, name="identity-test", ckpts=("main",), tasks=(mnli,), data_source="offline", eval_limit=6,
        eval_batch_size=4, max_length=512, device="cpu", eval_dtype="float32", formats=("default",),
        prune_revisions=False,
        sensitivity=SensitivitySettings(magnitudes=(1.0,), seeds=1, tokens=128, block=64, batch_size=4, also={}))
    pipeline.run_base(prof, "main", progress=False)
    pipeline.run_sft(prof, "main", "mnli", progress=False)
    before = {p.relative_to(tmp_path): json.loads(p.read_text())["provenance"]["created"]
              for p in (tmp_path / "results" / prof.name / "records").glob("*/*/*/*.json")}
    faster = dataclasses.replace(prof, tasks=(dataclasses.replace(mnli, train=dataclasses.replace(mnli.train,
                                                                                                  lr=1e-4)),))
    assert pipeline.run_base(faster, "main", progress=False) == 0
    (ran,) = pipeline.run_sft(faster, "main", "mnli", progress=False).to_dict("records")
    assert ran["status"] == "ran" and ran["records"] == len(plan.sft_plan(prof, mnli))
    stale_dir = tmp_path / "results" / prof.name / "records" / results.STALE_DIR
    assert len(list(stale_dir.rglob("*.json"))) == len(plan.sft_plan(prof, mnli))
    frame = pipeline.load_frame(faster)
    assert len(frame) == len(before)
    assert set(frame.loc[frame["fine_tune"] == "mnli", "lr"]) == {1e-4}
