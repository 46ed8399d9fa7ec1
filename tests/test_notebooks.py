"""The notebooks as users meet them: paired sources in sync, parameters listed, run_all.sh plans, smoke runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import papermill
import pytest
from checks import mixed_settings, paired_text

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["pretrain_probe", "instruction_tuning", "sft", "format", "transfer", "ood", "beyond"]  # run_all's order
PY = sys.executable


def _strip_header(text: str) -> str:
    """The py:percent text without the jupytext header block (its version lines differ between installs)."""
    lines = text.splitlines()
    if lines and lines[0] == "# ---":
        end = lines.index("# ---", 1)
        lines = lines[end + 1:]
    return "\n".join(lines).strip()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_pair_in_sync_and_without_outputs(name):
    ipynb, py = REPO / "notebooks" / f"{name}.ipynb", REPO / "notebooks" / f"{name}.py"
    assert _strip_header(paired_text(ipynb)) == _strip_header(py.read_text()), (
        f"{ipynb.name} and {py.name} differ: run `jupytext --sync notebooks/{name}.py`")
    nb = nbformat.read(str(ipynb), as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{ipynb.name} carries outputs"
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{ipynb.name} needs exactly one cell tagged 'parameters'"


# A number of the profile typed into prose drifts from the run ("5 epochs" where the profile trains 8): prose states
# such numbers through Markdown(f"...") from the profile (amuro_utils.show), never typed in.
PROFILE_NUMBER = re.compile(r"\d+(\s*-shot|\s*-token|\s*%|\s+epochs?\b|\s+items?\b|\s+seeds?\b|\s+steps?\b|"
                            r"\s+examples?\b|\s+checkpoints?\b|\s+rungs?\b)")


def profile_numbers_in_prose(text: str) -> list[str]:
    """The numbers of a profile setting typed into a notebook's markdown (code spans aside)."""
    import jupytext

    nb = jupytext.reads(text, fmt="py:percent")
    return [m.group(0) for c in nb.cells if c.cell_type == "markdown"
            for m in PROFILE_NUMBER.finditer(re.sub(r"`[^`]*`", "", c.source))]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_prose_states_no_number_of_the_profile(name):
    found = profile_numbers_in_prose((REPO / "notebooks" / f"{name}.py").read_text())
    assert not found, f"{name}.py types {found} into its prose: state them from the profile (amuro_utils.show)"


def test_the_prose_check_catches_typed_numbers():
    typed = "# %% [markdown]\n# Tuned for 5 epochs, 4-shot, greedy 60-token outputs, a 90 % CI.\n"
    assert profile_numbers_in_prose(typed) == ["5 epochs", "4-shot", "60-token", "90 %"]
    assert profile_numbers_in_prose("# %% [markdown]\n# Figure 3, Table 5, `n_train=64`, claim B7.\n") == []


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_help_notebook_lists_typed_parameters(name):
    out = subprocess.run([str(Path(PY).parent / "papermill"), "--help-notebook", f"notebooks/{name}.ipynb"],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "profile: str (default \"tiny\")" in out.replace("'", '"')
    assert "overrides: str (default \"\")" in out.replace("'", '"')  # the one override parameter of every notebook
    params = papermill.inspect_notebook(str(REPO / "notebooks" / f"{name}.ipynb"))
    assert all(p["help"] for p in params.values()), f"{name}: every parameter needs a comment"
    if name in ("sft", "pretrain_probe", "instruction_tuning"):
        assert params["ckpt"]["default"] == '"all"'
    if name == "sft":
        assert params["task"]["default"] == '"all"'


@pytest.mark.parametrize("profile", ["tiny", "paper"])
def test_run_all_dry_run_prints_one_papermill_command_per_job(profile):
    out = subprocess.run(["./run_all.sh", "--profile", profile, "--dry-run"], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    commands = [line for line in out.splitlines() if line.startswith("papermill ")]
    notebooks = [c.split()[1] for c in commands]
    assert [n for n in dict.fromkeys(notebooks)] == [f"notebooks/{n}.ipynb" for n in NOTEBOOKS]
    assert all(f"-p profile {profile}" in c for c in commands)
    if profile == "paper":
        assert sum("notebooks/sft.ipynb" in c and "-p ckpt step424000" in c for c in commands) >= 4
        assert "GPU-hours" in out


def test_run_all_help_and_bad_profile():
    out = subprocess.run(["./run_all.sh", "--help"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "--dry-run" in out and "--profile" in out
    bad = subprocess.run(["./run_all.sh", "--profile", "nope", "--dry-run"], cwd=REPO, capture_output=True,
                         text=True)
    assert bad.returncode != 0 and "available" in bad.stderr


# ---------------------------------------------------------------------------------------------------------------
# smoke runs of the whole study (profile "smoke": 2 checkpoints, 6 items per set) in a throw-away results folder

FIGURES = ["fig2_pretrain_probe", "fig3_sft", "fig3b_gain_bars", "fig4_instruction_tuning", "fig5_format",
           "fig6_transfer", "fig7_ood", "figS_sensitivity", "figB_dynamics", "figB_probes", "figB_predictors",
           "fig2_pretrain_probe_answer_text", "fig2_pretrain_probe_discrimination", "fig3_sft_answer_text",
           "fig3_sft_discrimination"]
TABLES = ["table5_learned_groups", "mrc_cross_task", "ood_groups", "format_gap", "beyond", "snr_base",
          "snr_fine_tuned", "claims_readings"]


def _env(root: Path) -> dict:
    return {**os.environ, "AMURO_RESULTS_DIR": str(root / "results"), "AMURO_FIGURES_DIR": str(root / "figures")}


def _records(root: Path) -> dict:
    """Every record's path -> (identity hash, performance, scores, predictions), read straight from the JSON files."""
    out = {}
    for path in (root / "results" / "smoke" / "records").glob("*/*/*/*.json"):
        record = json.loads(path.read_text())  # every file on disk must be complete JSON
        out[path.relative_to(root / "results")] = (record["identity_hash"], record["metrics"]["performance"],
                                                    record["scores"], record["predictions"])
    return out


def _run_all(root: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["./run_all.sh", "--profile", "smoke", *args], cwd=REPO, env=_env(root),
                          capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One uninterrupted `./run_all.sh --profile smoke` from scratch (ladder pre-training included)."""
    root = tmp_path_factory.mktemp("smoke")
    start = time.perf_counter()
    proc = subprocess.run(["./run_all.sh", "--profile", "smoke"], cwd=REPO, env=_env(root), capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root, proc.stdout, time.perf_counter() - start


@pytest.mark.slow
def test_smoke_run_executes_every_notebook_and_emits_every_figure(smoke_run):
    root, stdout, _ = smoke_run
    for index, name in enumerate(NOTEBOOKS, start=1):
        nb = nbformat.read(str(root / "results" / "smoke" / "notebooks" / f"{index:02d}_{name}.ipynb"), as_version=4)
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{name}: {errors[:1]}"
        # no progress-bar widget saved without its state (it reads "0%" in the executed notebook)
        bars = [o for c in nb.cells for o in c.get("outputs", []) if "application/vnd.jupyter.widget-view+json"
                in o.get("data", {}) or "0%|" in str(o.get("data", {}).get("text/plain", ""))]
        assert not bars, f"{name}: {bars[:1]}"
    out = root / "figures" / "smoke"
    for stem in FIGURES:
        assert (out / f"{stem}.png").stat().st_size > 10_000 and (out / f"{stem}.pdf").exists(), stem
    for stem in TABLES:
        assert (out / f"{stem}.csv").exists() and (out / f"{stem}.md").exists(), stem
    assert (out / "tiny_ladder_loss.png").exists()
    # a run you can watch: what each job is doing, where on the ladder, an ETA; the kernel's own chatter in its log
    assert "pretrain_probe: pre-training the tiny ladder (step " in stdout and ", ETA " in stdout
    assert re.search(r"sft: (fine-tuning|evaluating) .* at step1000 \(rung 1/2\)", stdout) and "TCP" not in stdout
    assert "   scorecard: Verdicts: " in stdout and "   report: " in stdout
    claims_md = (out / "claims.md").read_text()  # the scorecard, with the questions beyond the paper kept apart
    assert "## Beyond the paper" in claims_md and (out / "beyond.md").read_text() in claims_md
    # the same claims on the continuous readings: their own table, summarised in the scorecard, linked by the report
    assert "## The same claims on continuous readings" in claims_md and "*answer text:" in claims_md
    assert 'href="claims_readings.html"' in (out / "index.html").read_text()
    # a second run skips every recorded job
    again = _run_all(root, check=True).stdout
    assert again.count("done earlier, skipped") == len(NOTEBOOKS)
    status = _run_all(root, "--status", check=True).stdout
    assert status.count(": done") == len(NOTEBOOKS) and "missing" not in status and "stale" not in status
    assert f"records: {len(_records(root))} done" in status


@pytest.mark.slow
def test_one_checkpoint_job_with_papermill(smoke_run, tmp_path):
    root, _, _ = smoke_run
    out = tmp_path / "sft_one.ipynb"
    # "10" is the smoke ladder's step10 branch, the rung labelled step1000 (the paper's first rung); its records
    # exist, so this job only re-reads and re-draws
    subprocess.run([str(Path(PY).parent / "papermill"), "notebooks/sft.ipynb", str(out), "-p", "profile", "smoke",
                    "-p", "ckpt", "10", "-p", "task", "mnli"], cwd=REPO, env=_env(root), check=True,
                   capture_output=True)
    nb = nbformat.read(str(out), as_version=4)
    tables = [o["data"]["text/plain"] for c in nb.cells for o in c.get("outputs", [])
              if "text/plain" in o.get("data", {}) and "status" in o["data"]["text/plain"]]
    assert len(tables) == 1
    header, row = tables[0].splitlines()[:2]
    assert header.split() == ["ckpt", "task", "method", "seed", "status"]
    assert row.split()[1:] == ["step1000", "mnli", "full", "42", "recorded"]


def _wait_for(proc, condition, what: str, timeout: float = 600):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"run_all.sh finished (or timed out) before {what}")


@pytest.mark.slow
def test_kill_9_at_three_points_then_rerun_equals_an_uninterrupted_run(smoke_run, tmp_path):
    """SIGKILL of the whole process group (no cleanup handlers run) during base evaluation, during fine-tuning and
    evaluation, and during a figure-only notebook; after each kill every record on disk is complete and equals the
    uninterrupted run's, and the final rerun's records equal the uninterrupted run's."""
    root, _, _ = smoke_run
    reference = _records(root)
    records = tmp_path / "results" / "smoke" / "records"
    jobs = tmp_path / "results" / "smoke" / "jobs"
    points = [
        ("a base record is written", lambda: any(records.glob("*/*/base/*.json"))),
        ("a fine-tuned record is written", lambda: any(records.glob("*/*/mnli.*/*.json"))),
        ("the figure-only format notebook starts", lambda: (jobs / "03_sft.done").exists()),
    ]
    for what, condition in points:
        proc = subprocess.Popen(["./run_all.sh", "--profile", "smoke"], cwd=REPO, env=_env(tmp_path),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        _wait_for(proc, condition, what)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        now = _records(tmp_path)  # every file parses: nothing half-written
        assert now and all(now[k] == reference[k] for k in now), what
    rerun = _run_all(tmp_path)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "01_pretrain_probe: done earlier, skipped" in rerun.stdout
    assert _records(tmp_path) == reference  # same records, same scores, same predictions


@pytest.mark.slow
def test_two_checkpoint_jobs_write_one_store_at_once(smoke_run, tmp_path):
    """Two papermill jobs (one per checkpoint) evaluate into the same results store concurrently."""
    root, _, _ = smoke_run
    shutil.copytree(root / "results" / "smoke" / "hub_cache", tmp_path / "results" / "smoke" / "hub_cache")
    shutil.copy(root / "results" / "smoke" / "tiny_ladder.json", tmp_path / "results" / "smoke" / "tiny_ladder.json")
    papermill_bin = str(Path(PY).parent / "papermill")
    procs = [subprocess.Popen([papermill_bin, "notebooks/pretrain_probe.ipynb", str(tmp_path / f"{ckpt}.ipynb"),
                               "-p", "profile", "smoke", "-p", "ckpt", ckpt, "-p", "sensitivity", "False",
                               "-p", "make_figures", "False"], cwd=REPO, env=_env(tmp_path),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for ckpt in ("step10", "main")]
    for proc in procs:
        assert proc.wait(timeout=900) == 0, proc.stderr.read()[-3000:]
    written = _records(tmp_path)
    base = {k: v for k, v in _records(root).items() if k.parent.name == "base"}
    assert written == base


@pytest.mark.slow
def test_rerun_forces_one_job_and_keeps_its_old_records_aside(smoke_run, tmp_path):
    root, _, _ = smoke_run
    shutil.copytree(root / "results", tmp_path / "results")
    rerun = _run_all(tmp_path, "--rerun", "02_instruction_tuning")
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "forcing a rerun of 02_instruction_tuning" in rerun.stdout
    assert "02_instruction_tuning: papermill" in rerun.stdout and "01_pretrain_probe: done earlier" in rerun.stdout
    # recomputed under the same settings: identical records, so the jobs that read them stay done
    assert "03_sft: done earlier" in rerun.stdout
    assert _records(tmp_path) == _records(root)
    kept = list((tmp_path / "results" / "smoke" / "records" / ".stale").rglob("*.json"))
    assert len(kept) == sum(1 for k in _records(root) if k.parent.name.startswith("instruct_mix."))
    bad = _run_all(tmp_path, "--rerun", "99_nope")
    assert bad.returncode != 0 and "unknown job '99_nope'" in bad.stderr


def _notebook_lines(root: Path, job_id: str, text: str) -> list[str]:
    """The output lines of an executed notebook that contain `text`."""
    nb = nbformat.read(str(root / "results" / "smoke" / "notebooks" / f"{job_id}.ipynb"), as_version=4)
    return [line for c in nb.cells for o in c.get("outputs", []) for line in o.get("text", "").splitlines()
            if text in line]


@pytest.mark.slow
def test_a_changed_evaluation_setting_recomputes_exactly_its_records_and_the_run_finishes(smoke_run, tmp_path,
                                                                                          monkeypatch):
    """The smoke study, then the same command with one evaluation setting changed (an override) and no --rerun: every
    job finishes, exactly the records the setting decides are recomputed (the old ones kept aside), no model is
    retrained, and every figure is drawn from records of one setting."""
    from amuro_utils import pipeline
    from amuro_utils.config import paths
    from amuro_utils.data import tasks
    from amuro_utils.store import results
    from amuro_utils.study import overrides, plan

    root, _, _ = smoke_run
    shutil.copytree(root / "results", tmp_path / "results")
    smoke = tmp_path / "results" / "smoke"
    before = {p: p.read_bytes() for p in smoke.rglob("*") if p.is_file() and "notebooks" not in p.parts}
    started = time.time()
    rerun = _run_all(tmp_path, "--set", "max_new_tokens=30")
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "Left out" not in rerun.stdout

    profile = overrides.load("smoke", "max_new_tokens=30")
    keys = [k for job in plan.jobs(profile) for k, _ in plan.record_keys(job)]
    store = results.Store(smoke / "records")
    generation = {store.path(**k) for k in keys if tasks.get(k["eval_set"]).kind == "generation"}
    assert 0 < len(generation) < len(keys) == len(_records(root))  # base and fine-tuned xsum, socialiqa, sciq
    kept = list((smoke / "records" / ".stale").rglob("*.json"))
    assert len(kept) == len(generation)  # exactly the dependent records, recomputed; the old ones kept aside
    for path in (store.path(**k) for k in keys):
        if path in generation:
            assert json.loads(path.read_text())["identity"]["eval"]["scoring"]["max_new_tokens"] == 30
        else:
            assert path.read_bytes() == before[path], path  # untouched
    for folder in ("fine_tunes", "forgetting", "models", "sensitivity", "hub_cache"):  # no model retrained
        assert all(before[p] == p.read_bytes() for p in before if folder in p.relative_to(smoke).parts[:1]), folder

    monkeypatch.setattr(paths, "RESULTS_ROOT", tmp_path / "results")  # this process reads the copy the run wrote
    frame = pipeline.load_frame(profile, items=True, stale=True)
    assert mixed_settings(frame) == [] and len(frame) == len(keys)  # one setting in the whole store
    for index, name in enumerate(NOTEBOOKS, start=1):
        drawn = _notebook_lines(tmp_path, f"{index:02d}_{name}", "drawn from")
        assert len(drawn) == 1 and "made under today's settings." in drawn[0] and "Left out" not in drawn[0], drawn
    assert all(p.stat().st_mtime > started for p in (tmp_path / "figures" / "smoke").glob("fig*.png"))
    status = _run_all(tmp_path, "--set", "max_new_tokens=30", "--status", check=True).stdout
    assert status.count(": done") == len(NOTEBOOKS) and f"records: {len(keys)} done" in status


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without a GPU")
def test_failed_notebook_stops_the_run_with_its_name_and_the_cell_error(tmp_path):
    env = {**_env(tmp_path), "AMURO_FORCE_CPU": ""}
    # the whole plan of a GPU profile is refused before any job starts, with the message its notebooks would raise
    proc = subprocess.run(["./run_all.sh", "--profile", "paper"], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and "!! profile 'paper' needs a CUDA GPU and none is visible" in proc.stderr
    assert "papermill" not in proc.stdout and not (tmp_path / "results" / "paper" / "notebooks").exists()
    # one job run by itself (as a SLURM array task runs it) fails inside its notebook: named, with the cell's error
    proc = subprocess.run([sys.executable, "-m", "amuro_utils.run.runner", "--profile", "paper", "--job",
                           "01_pretrain_probe_step1000"], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "notebook 'pretrain_probe' failed" in proc.stderr
    assert "RuntimeError: profile 'paper' needs a CUDA GPU" in proc.stderr
    partial = tmp_path / "results" / "paper" / "notebooks" / "01_pretrain_probe_step1000.ipynb"
    assert partial.exists()  # left for inspection
    assert not list((tmp_path / "results" / "paper" / "jobs").glob("*.done"))
