"""One registry of stages: every notebook is one entry, and the plan, the runner, SLURM, the cost model, the figures and
the claims read it (adding a notebook is one entry plus the notebook file)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from amuro_utils.config.profiles import PAPER, SMOKE
from amuro_utils.figures import report
from amuro_utils.models import ladder
from amuro_utils.run import runner, slurm
from amuro_utils.store import identity
from amuro_utils.study import cost, plan, stages
from amuro_utils.verdicts import claims

REPO = Path(__file__).resolve().parents[1]


def test_every_notebook_is_one_entry_and_every_name_in_it_resolves():
    assert set(stages.RUN_ORDER) == {p.stem for p in (REPO / "notebooks").glob("*.py")}
    kinds = set(stages.RECORD_KINDS) | set(stages.ARTIFACT_KINDS)
    for index, stage in enumerate(stages.STAGES):
        assert set(stage.writes) <= kinds and set(stage.reads) <= kinds, stage.notebook
        assert stage.runs in (None, *stages.RECORD_KINDS) and (stage.runs is None or stage.runs in stage.writes)
        for kind in stage.reads:  # whatever a stage reads is written by it or by an earlier stage
            assert set(stages.writers_of(kind)) & set(stages.RUN_ORDER[:index + 1]), (stage.notebook, kind)
        for maker in [*stage.figures.values(), *stage.tables.values(), *(m for _, m in stage.artifact_figures.values()),
                      *(m for _, m in stage.beyond_figures.values())]:
            assert callable(stages.resolve(maker)), maker
        assert set(stage.claims) <= set(claims.CLAIMS), stage.notebook
    assert set().union(*(s.claims for s in stages.STAGES)) == set(claims.CLAIMS)
    with pytest.raises(ValueError, match="stages: .*'pretrain_probe'"):
        stages.get("dynamics")


def test_the_plan_runner_slurm_cost_and_claims_read_the_registry():
    assert stages.RUN_ORDER == slurm.run_order() == tuple(s.notebook for s in stages.STAGES)
    assert [s.notebook for s in stages.STAGES if s.runs] == ["pretrain_probe", "instruction_tuning", "sft", "beyond"]
    assert list(plan.KINDS) == ["base", "sft", "instruction", "converge"]  # beyond runs fine-tuning to convergence
    assert {s.runs for s in stages.STAGES if s.runs} == set(plan.KINDS)
    reads = slurm.reads()
    assert reads["sft"] == ("pretrain_probe", "instruction_tuning", "sft")
    assert reads["ood"] == ("pretrain_probe", "sft") and slurm.ladder_builder() == "pretrain_probe"
    assert reads["beyond"] == ("pretrain_probe", "instruction_tuning", "sft", "beyond")
    assert [j.notebook for j in plan.jobs(SMOKE)][:1] == [stages.runner_of("base").notebook]
    jobs = plan.notebook_jobs(SMOKE)
    assert [j.reads for j in jobs] == [s.reads for s in stages.STAGES]
    assert [j.writes for j in jobs] == [(), (), (), (), (), (), ("scorecard",)]  # the last one, beyond, judges all
    assert cost._units("pretrain_probe", jobs[0].model_jobs) == len(SMOKE.ckpts)  # its cost_unit: checkpoints
    assert cost._units("sft", jobs[2].model_jobs) == len(SMOKE.ckpts) * len(SMOKE.tasks)  # fine-tunes


def test_a_new_notebook_is_one_entry(monkeypatch):
    """An analysis stage appended to the registry becomes a job of the study, with a job identity of what it reads."""
    extra = stages.Stage("dynamics", runs=None, writes=(), reads=("base", "sft", "training"),
                         figures={"figD_dynamics": "plots:fig5_format"}, claims=("A4",))
    monkeypatch.setattr(stages, "STAGES", (*stages.STAGES, extra))
    jobs = plan.notebook_jobs(SMOKE)
    assert (jobs[-1].id, jobs[-1].notebook, jobs[-1].reads) == ("08_dynamics", "dynamics", extra.reads)
    monkeypatch.setattr(plan, "resolve", lambda profile, label: ladder.Checkpoint(
        label, profile.ladder, "amuro-local/tiny-olmo", label, "c" * 40, None))
    wanted = runner.job_identity(SMOKE, jobs[-1])
    assert set(wanted) == {"reads", "writes", "training", "analysis"} and len(wanted["training"]) == 8
    assert wanted["analysis"]["claims_version"] == identity.CLAIMS_VERSION
    # the report gives it a section of its own, after the stages before it, with its figures in it
    extra = dataclasses.replace(extra, title="Fine-tuning dynamics (toy)")
    monkeypatch.setattr(stages, "STAGES", (*stages.STAGES[:-1], extra))
    assert report.sections()[len(stages.STAGES) - 1] == "Fine-tuning dynamics (toy)"
    assert report.section_of("figD_dynamics") == report.section_of("figD_dynamics_lora") == extra.title


def test_the_report_sections_are_the_stages():
    assert report.sections()[:len(stages.STAGES)] == [s.title for s in stages.STAGES] and all(report.sections())
    for stage in stages.STAGES:
        for stem in stage.stems:
            assert report.section_of(stem) == stage.title, stem


def test_the_readme_lists_the_notebooks_in_run_order():
    """Every list of the notebooks in the README (five names or more in one line) is the registry's run order."""
    names = set(stages.RUN_ORDER)
    lists = []
    for line in (REPO / "README.md").read_text().splitlines():
        found = [w for w in re.findall(r"[a-z_]+", line) if w in names]
        if len(set(found)) >= 5:
            lists.append(list(dict.fromkeys(found)))
    assert lists, "the README lists the notebooks somewhere"
    for found in lists:
        assert found == [n for n in stages.RUN_ORDER if n in found], found


def test_per_checkpoint_jobs_split_where_a_stage_runs_models():
    jobs = plan.notebook_jobs(dataclasses.replace(PAPER, ckpts=("step1000", "main")))
    sft = [j.id for j in jobs if j.notebook == "sft"]
    assert sft[:2] == ["03_sft_step1000_mnli", "03_sft_main_mnli"] and sft[-1] == "03_sft_figures"
    assert [j.id for j in jobs if j.notebook == "ood"] == ["06_ood"]
    assert [j.id for j in jobs if j.notebook == "beyond"] == ["07_beyond"]  # converge off: analysis only
    converge = plan.notebook_jobs(dataclasses.replace(PAPER, ckpts=("step1000", "main"), converge=True))
    beyond = [j.id for j in converge if j.notebook == "beyond"]
    assert beyond[:2] == ["07_beyond_step1000_mnli", "07_beyond_main_mnli"] and beyond[-1] == "07_beyond_figures"
    assert "07_beyond_main_tulu" in beyond  # the instruction mixture too (boolq is "learned in fine-tuning")
