"""Steering a run without editing Python: one override syntax for run_all, the runner, SLURM and every notebook, a
profile file for a new study, and refusals that name the valid fields, types and choices."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from amuro_utils.config.profiles import PAPER, SMOKE, TINY, tiny_rungs
from amuro_utils.run import slurm
from amuro_utils.store import identity
from amuro_utils.study import overrides, plan
from amuro_utils.study.overrides import OverrideError

REPO = Path(__file__).resolve().parents[1]


def test_fields_nested_fields_and_tasks_take_typed_values():
    prof = overrides.load("smoke", "eval_limit=5;seeds=1,2;methods=full,lora;keep_weights=false;"
                                   "overtraining_pair=none;sensitivity.tokens=256;sensitivity.dtype=none;lora.rank=4;"
                                   "tasks.mnli.n_train=12;tasks.*.train.epochs=2;instruction.train.lr=1e-3;"
                                   "sensitivity.also.relative=0.01,0.1;formats=default,instruct")
    assert (prof.eval_limit, prof.seeds, prof.methods, prof.keep_weights) == (5, (1, 2), ("full", "lora"), False)
    assert prof.overtraining_pair is None and prof.sensitivity.tokens == 256 and prof.sensitivity.dtype is None
    assert prof.lora.rank == 4 and prof.formats == ("default", "instruct")
    assert [t.n_train for t in prof.tasks] == [12, 16, 16, 16] and {t.train.epochs for t in prof.tasks} == {2}
    assert prof.instruction.train.lr == 1e-3 and prof.sensitivity.also == {"relative": (0.01, 0.1)}
    assert overrides.load("smoke", "sensitivity.also=").sensitivity.also == {}
    assert overrides.load("smoke", ["eval_limit=7"]).eval_limit == 7  # --set: one assignment per item
    assert overrides.load("smoke") is SMOKE and overrides.load("smoke", "").params == ()


def test_an_override_is_remembered_for_every_notebook_and_array_task():
    prof = overrides.load("smoke", ["eval_limit=5", "seeds=1,2"])
    assert prof.name == "smoke" and prof.params == (("profile", "smoke"), ("overrides", "eval_limit=5;seeds=1,2"))
    assert "Overrides: eval_limit=5;seeds=1,2." in prof.description and "eval_limit=5" in prof.figure_note
    job = plan.notebook_jobs(prof)[0]
    assert job.papermill_args() == "-p profile smoke -p overrides 'eval_limit=5;seeds=1,2'"
    assert slurm.runner_profile_args(prof) == "--profile smoke --set eval_limit=5 --set seeds=1,2"
    again = overrides.load(*dict(job.params).values())  # what the notebook rebuilds from its parameters
    assert again == prof


@pytest.mark.parametrize("assignment, message", [
    ("eval_limt=5", r"unknown field 'eval_limt' in Profile \(did you mean 'eval_limit'\?\); fields: .*eval_limit"),
    ("eval_limit=five", r"eval_limit expects an integer, got 'five'"),
    ("keep_weights=maybe", r"keep_weights expects true or false, got 'maybe'"),
    ("methods=full,adapter", r"methods: 'adapter' is not one of \['full', 'lora'\]"),
    ("ckpts=step1000,step999", r"ckpts: 'step999' is not one of \['step1000', 'main'\]"),
    ("sensitivity.tokenz=5", r"unknown field 'tokenz' in sensitivity .*fields: .*tokens"),
    ("sensitivity.tokens=2", r"sensitivity.tokens='2': sensitivity needs .*tokens ≥ block"),
    ("tasks.paws.n_train=5", r"tasks.paws.n_train: name one of \['mnli', 'qqp', 'xsum', 'socialiqa'\] or '\*'"),
    ("overtraining_pair=main", r"overtraining_pair takes 2 values, got 1"),
    ("name=mine", r"'name' cannot be overridden: give a new study its own name in a profile file"),
    ("eval_limit", r"override 'eval_limit' is not FIELD=VALUE"),
    ("sensitivity=1", r"sensitivity \(.*SensitivitySettings.*\) cannot be set from an override"),
])
def test_bad_overrides_are_refused_with_the_valid_choices(assignment, message):
    with pytest.raises(OverrideError, match=message):
        overrides.load("smoke", assignment)


def test_a_profile_without_the_nested_settings_refuses_them():
    with pytest.raises(OverrideError, match="profile 'paper' has no TinyLadderSettings to change"):
        overrides.load("paper", "tiny_ladder.total_steps=40")


def test_overridden_values_enter_the_identities_of_what_they_change():
    job = plan.find_job(SMOKE, "sft", "main", "mnli")
    model = identity.model_identity("amuro-local/tiny-olmo", "c0ffee")
    changed = overrides.load("smoke", "eval_limit=5;tasks.mnli.train.lr=1e-3")
    pairs = zip(plan.record_requests(job, model), plan.record_requests(plan.find_job(changed, "sft", "main", "mnli"),
                                                                       model))
    assert {tuple(identity.changed_fields(a, b)) for (_, a), (_, b) in pairs} == {
        ("eval.items.limit", "fine_tune.settings.lr")}


def test_a_profile_file_makes_a_new_study_in_toml_or_json(tmp_path):
    toml = tmp_path / "my_study.toml"
    toml.write_text('profile = "smoke"\neval_limit = 4\nseeds = [1, 2]\nkeep_weights = false\n\n'
                    '[sensitivity]\ntokens = 256\n\n[tasks.mnli]\nn_train = 8\n')
    prof = overrides.load(toml)
    assert (prof.name, prof.eval_limit, prof.seeds, prof.keep_weights) == ("my_study", 4, (1, 2), False)
    assert prof.sensitivity.tokens == 256 and prof.task("mnli").n_train == 8 and prof.ckpts == SMOKE.ckpts
    assert prof.params == (("profile", str(toml.resolve())),)
    with_set = overrides.load(toml, ["eval_limit=3"])
    assert with_set.eval_limit == 3 and with_set.params[1] == ("overrides", "eval_limit=3")
    study = tmp_path / "study.json"
    study.write_text(json.dumps({"profile": "tiny", "name": "wide", "methods": ["full", "lora"]}))
    assert (overrides.load(study).name, overrides.load(study).methods) == ("wide", ("full", "lora"))
    for text, message in [('eval_limit = 4\n', "must name the profile it starts from"),
                          ('profile = "tiny"\nname = "tiny"\n', "name 'tiny' must be a folder name .* not a named"),
                          ('profile = "tiny"\neval_limit = "four"\n', "eval_limit expects an integer, got 'four'"),
                          ('profile = "tiny"\nseeds = 1.5\n', "seeds expects an integer, got 1.5")]:
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(OverrideError, match=message):
            overrides.load(bad)


def test_the_command_lines_take_the_same_options(tmp_path):
    study = tmp_path / "my_study.toml"
    study.write_text('profile = "smoke"\neval_limit = 4\n')
    jobs = subprocess.run([sys.executable, "-m", "amuro_utils.run.runner", "--profile-file", str(study), "--set",
                           "seeds=1,2", "--jobs"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert f"-p profile {study.resolve()} -p overrides seeds=1,2" in jobs.splitlines()[0]
    refused = subprocess.run(["./run_all.sh", "--profile", "smoke", "--set", "eval_limit=lots", "--dry-run"],
                             cwd=REPO, capture_output=True, text=True)
    assert refused.returncode == 2 and "eval_limit expects an integer, got 'lots'" in refused.stderr
    planned = subprocess.run(["./run_all.sh", "--profile", "smoke", "--set", "eval_limit=5", "--dry-run"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout
    assert "-p profile smoke -p overrides eval_limit=5" in planned


def test_tiny_and_smoke_name_no_override_of_their_own():
    assert TINY.params == SMOKE.params == PAPER.params == ()
    assert dataclasses.replace(TINY, eval_limit=5).params == ()


def test_a_longer_tiny_ladder_keeps_its_rungs_at_the_papers_fractions():
    longer = overrides.load("tiny", "tiny_ladder.total_steps=800")
    assert longer.rungs == tiny_rungs(800, (5, 10)) and longer.rungs["step342000"] == "step371"  # 46 % of 800
    assert TINY.rungs["step342000"] == "step139"  # 46 % of 300
    # rungs given with the length are kept as given, and a length the early rungs do not fit is refused
    mine = overrides.load("tiny", "tiny_ladder.total_steps=800;rungs.step342000=step300")
    assert mine.rungs["step342000"] == "step300" and mine.rungs["step424000"] == "step172"
    with pytest.raises(OverrideError, match="total_steps=8"):
        overrides.load("tiny", "tiny_ladder.total_steps=8")
